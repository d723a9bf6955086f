/*
 * x4-packbuilder: how long libgit2 1.5.1's packbuilder takes to put a
 * whole repository into one pack (the consolidation step of
 * doc/purge.md), next to `git repack -ad` (x4-repack.sh runs both).
 *
 *   x4-packbuilder REPO foreach|walk THREADS [SKIPFILE]
 *
 * foreach: every object of the object database, as today's
 *          objects_pack_loose() inserts loose objects (no path names, so
 *          no name hash to order the delta search);
 * walk:    git_packbuilder_insert_walk() from every ref (commits, trees
 *          and blobs with their names), as git pack-objects --revs does.
 * SKIPFILE: hex ids, one a line, left out (a purge: foreach mode only).
 *
 * The pack is written into REPO/objects/pack (the indexer's pass is
 * included).  Prints: mode, threads, objects, seconds, pack bytes.
 *
 * Build: cc -O2 -o x4-packbuilder x4-packbuilder.c $(pkg-config --cflags --libs libgit2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <git2.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct ctx {
	git_packbuilder *pb;
	git_oid *skip;
	size_t nskip;
};

static int cmp_oid(const void *a, const void *b)
{
	return git_oid_cmp(a, b);
}

static int insert_one(const git_oid *id, void *data)
{
	struct ctx *c = data;

	if (c->nskip && bsearch(id, c->skip, c->nskip, sizeof *c->skip, cmp_oid))
		return 0;
	return git_packbuilder_insert(c->pb, id, NULL);
}

static int push_ref(git_reference *ref, void *data)
{
	git_revwalk *rw = data;
	const git_oid *id = git_reference_target(ref);

	if (id)
		git_revwalk_push(rw, id);
	git_reference_free(ref);
	return 0;
}

int main(int argc, char **argv)
{
	git_repository *repo;
	git_odb *odb;
	struct ctx c = { 0 };
	char dir[4096];
	double t0, t1;
	struct stat st;
	int e;

	if (argc < 4)
		return 2;
	git_libgit2_init();
	/* the repositories belong to the bench user, not to root */
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	if (git_repository_open(&repo, argv[1]) < 0 ||
	    git_repository_odb(&odb, repo) < 0 ||
	    git_packbuilder_new(&c.pb, repo) < 0)
		goto fail;
	git_packbuilder_set_threads(c.pb, (unsigned)atoi(argv[3]));
	if (argc > 4) {
		FILE *f = fopen(argv[4], "r");
		char line[128];
		size_t alloc = 0;
		while (f && fgets(line, sizeof line, f)) {
			if (c.nskip == alloc)
				c.skip = realloc(c.skip, (alloc = alloc * 2 + 64) * sizeof *c.skip);
			if (git_oid_fromstrn(&c.skip[c.nskip], line, GIT_OID_HEXSZ) == 0)
				c.nskip++;
		}
		if (f)
			fclose(f);
		qsort(c.skip, c.nskip, sizeof *c.skip, cmp_oid);
	}
	t0 = now();
	if (!strcmp(argv[2], "walk")) {
		git_revwalk *rw;
		if (git_revwalk_new(&rw, repo) < 0 ||
		    git_reference_foreach(repo, push_ref, rw) < 0 ||
		    git_packbuilder_insert_walk(c.pb, rw) < 0)
			goto fail;
		git_revwalk_free(rw);
	} else if ((e = git_odb_foreach(odb, insert_one, &c)) < 0)
		goto fail;
	t1 = now();
	snprintf(dir, sizeof dir, "%s/objects/pack", argv[1]);
	if (git_packbuilder_write(c.pb, dir, 0, NULL, NULL) < 0)
		goto fail;
	snprintf(dir, sizeof dir, "%s/objects/pack/pack-%s.pack", argv[1],
		 git_oid_tostr_s(git_packbuilder_hash(c.pb)));
	stat(dir, &st);
	printf("%s threads=%s objects=%zu insert_s=%.1f total_s=%.1f pack_bytes=%lld\n",
	       argv[2], argv[3], git_packbuilder_object_count(c.pb), t1 - t0,
	       now() - t0, (long long)st.st_size);
	return 0;
fail:
	fprintf(stderr, "x4-packbuilder: %s\n", git_error_last() ? git_error_last()->message : "?");
	return 1;
}
