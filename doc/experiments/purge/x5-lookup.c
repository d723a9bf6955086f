/*
 * x5-lookup: what an object lookup costs libgit2 1.5.1 as the number of
 * packs grows (doc/purge.md, compaction).
 *
 *   x5-lookup REPO IDSFILE N
 *
 * Reads the first N ids of IDSFILE (hex, one a line, in random order)
 * and, on one repository handle, times:
 *   open      git_repository_open + git_repository_odb
 *   header    git_odb_read_header of each id (what the validator and
 *             the packbuilder ask)
 *   read      git_odb_read of each id (inflates the object)
 *   absent    git_odb_exists of N ids that are in no pack (what every
 *             object write asks first: a miss searches every pack)
 * Prints microseconds per operation.
 *
 * Build: cc -O2 -o x5-lookup x5-lookup.c $(pkg-config --cflags --libs libgit2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <git2.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	git_repository *repo;
	git_odb *odb;
	git_oid *ids, *absent;
	size_t n, got = 0;
	char line[128];
	FILE *f;
	double t0, t_open, t_hdr, t_read, t_abs;
	unsigned long long bytes = 0;

	if (argc != 4)
		return 2;
	n = (size_t)atol(argv[3]);
	ids = calloc(n, sizeof *ids);
	absent = calloc(n, sizeof *absent);
	if (!(f = fopen(argv[2], "r")))
		return 2;
	while (got < n && fgets(line, sizeof line, f))
		if (git_oid_fromstrn(&ids[got], line, GIT_OID_HEXSZ) == 0)
			got++;
	fclose(f);
	n = got;
	srandom(42);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < GIT_OID_RAWSZ; j++)
			absent[i].id[j] = (unsigned char)random();

	git_libgit2_init();
	/* the repositories belong to the bench user, not to root */
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	t0 = now();
	if (git_repository_open(&repo, argv[1]) < 0 ||
	    git_repository_odb(&odb, repo) < 0)
		return 1;
	t_open = now() - t0;

	t0 = now();
	for (size_t i = 0; i < n; i++) {
		size_t len;
		git_object_t type;
		if (git_odb_read_header(&len, &type, odb, &ids[i]) < 0) {
			fprintf(stderr, "header %s: %s\n", git_oid_tostr_s(&ids[i]),
				git_error_last()->message);
			return 1;
		}
	}
	t_hdr = now() - t0;

	t0 = now();
	for (size_t i = 0; i < n; i++) {
		git_odb_object *o;
		if (git_odb_read(&o, odb, &ids[i]) < 0)
			return 1;
		bytes += git_odb_object_size(o);
		git_odb_object_free(o);
	}
	t_read = now() - t0;

	t0 = now();
	for (size_t i = 0; i < n; i++)
		if (git_odb_exists(odb, &absent[i]))
			return 1;
	t_abs = now() - t0;

	printf("n=%zu open_ms=%.1f header_us=%.1f read_us=%.1f absent_us=%.1f read_MB=%.0f\n",
	       n, t_open * 1e3, t_hdr / n * 1e6, t_read / n * 1e6,
	       t_abs / n * 1e6, bytes / 1e6);
	git_odb_free(odb);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return 0;
}
