/*
 * repo-t: repo_object_check(), the check of loose objects a crash may
 * have cut short (maildag-lda runs it on what a dead delivery left).
 * libgit2 1.5.1 itself loops forever on such a file, so each case here
 * also shows that the check returns.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "fsutil.h"
#include "log.h"
#include "repo_p.h"
#include "xalloc.h"

static struct repo *repo;
static char *dir;

static char *loose_path(const struct oid *id)
{
	char hex[OID_HEXSZ + 1];

	oid_tostr(hex, sizeof hex, id);
	return xasprintf("%s/objects/%.2s/%s", repo_path(repo), hex, hex + 2);
}

/* A file of n bytes: compressible when pattern, else pseudo-random. */
static char *make_file(const char *name, size_t n, unsigned seed, bool pattern)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *buf = xmalloc(n);
	unsigned x = seed | 1;
	int fd;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = pattern ? "Received: from mx\r\n"[i % 19] : (char)x;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write_full(fd, buf, n) < 0 || close(fd) < 0)
		log_fatal("cannot write '%s'", path);
	free(buf);
	return path;
}

static void cut(const struct oid *id, off_t to)
{
	char *p = loose_path(id);

	if (truncate(p, to) < 0)
		log_fatal("truncate '%s'", p);
	free(p);
}

static bool loose(const struct oid *id)
{
	char *p = loose_path(id);
	bool there = access(p, F_OK) == 0;

	free(p);
	return there;
}

static void test_blob(const char *what, size_t n, bool pattern)
{
	char *f = make_file("m", n, (unsigned)n, pattern);
	char *other = make_file("o", n, (unsigned)n + 1, !pattern);
	char *shorter = make_file("s", n - 1, (unsigned)n, pattern);
	struct oid id;

	if (repo_blob_from_file(&id, repo, f) < 0)
		log_fatal("cannot write a blob");
	is_int(repo_object_check(repo, &id, f), 0, "%s: whole, against its file", what);
	is_int(repo_object_check(repo, &id, NULL), 0, "%s: whole, hashed", what);
	is_int(repo_object_check(repo, &id, other), E_INVALID,
	       "%s: against other bytes of the same size: damaged", what);
	ok(!loose(&id), "%s: and removed", what);
	repo_blob_from_file(&id, repo, f);
	is_int(repo_object_check(repo, &id, shorter), E_INVALID,
	       "%s: against a file one byte shorter: damaged", what);
	repo_blob_from_file(&id, repo, f);
	{
		char *p = loose_path(&id);
		struct stat st;
		stat(p, &st);
		cut(&id, st.st_size / 2);
		free(p);
	}
	is_int(repo_object_check(repo, &id, f), E_INVALID,
	       "%s: cut to half: damaged", what);
	ok(!loose(&id) && !repo_object_exists(repo, &id), "%s: and removed", what);
	repo_blob_from_file(&id, repo, f);
	cut(&id, 0);
	is_int(repo_object_check(repo, &id, NULL), E_INVALID,
	       "%s: cut to nothing: damaged", what);
	repo_blob_from_file(&id, repo, f);
	is_int(repo_object_check(repo, &id, f), 0, "%s: written again: whole", what);
	unlink(f);
	unlink(other);
	unlink(shorter);
	free(f);
	free(other);
	free(shorter);
}

/* Batches nest, end once each, and leave fsync on when the last ends. */
static void test_batches(const char *path)
{
	struct repo_batch b1 = REPO_BATCH_INIT, b2 = REPO_BATCH_INIT;
	struct repo *r, *quiet;

	ok(repo_fsync_on(), "batches: fsync on with no batch open");
	if (repo_open(&r, path, 0) < 0)
		log_fatal("cannot open '%s'", path);
	ok(repo_fsync_on(), "batches: a plain repository changes nothing");
	is_int(repo_batch_end(&b1, true), 0, "batches: ending one not begun");
	ok(repo_fsync_on(), "batches: ... leaves fsync on");
	repo_batch_begin(&b1, r);
	ok(!repo_fsync_on(), "batches: off in a batch");
	repo_batch_begin(&b2, r);
	is_int(repo_batch_end(&b1, true), 0, "batches: the outer ends, synced");
	ok(!repo_fsync_on(), "batches: off while the inner is open");
	repo_batch_end(&b1, false);
	ok(!repo_fsync_on(), "batches: ending the outer again changes nothing");
	repo_batch_end(&b2, false);
	ok(repo_fsync_on(), "batches: on when the last ends");
	if (repo_open(&quiet, path, REPO_NO_FSYNC) < 0)
		log_fatal("cannot open '%s'", path);
	repo_batch_begin(&b1, r);
	repo_batch_end(&b1, false);
	ok(!repo_fsync_on(), "batches: off while a REPO_NO_FSYNC one is open");
	repo_free(quiet);
	ok(repo_fsync_on(), "batches: on once it is freed");
	is_int(repo_open(&quiet, "/nonexistent/repo.git", REPO_NO_FSYNC),
	       E_NOTFOUND, "batches: a REPO_NO_FSYNC open that fails");
	ok(repo_fsync_on(), "batches: ... leaves fsync on");
	repo_free(r);
}

int main(void)
{
	char tmpl[] = "/tmp/repo-t.XXXXXX";
	char *path;
	struct oid a, b, tree, absent;

	log_init("repo-t", LOG_TO_STDERR, LOG_LVL_ERROR);
	if (!mkdtemp(tmpl))
		log_fatal("mkdtemp: failed");
	dir = tmpl;
	path = xasprintf("%s/repo.git", dir);
	if (repo_open(&repo, path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		log_fatal("cannot create '%s'", path);

	test_blob("a small message", 700, true);
	/* inflates to more than one 64 KB buffer per read */
	test_blob("a 1 MB compressible message", (size_t)1 << 20, true);
	test_blob("a 300 KB message", 300000, false);

	{
		struct repo_update up = { "cur/00/x", NULL, false };
		if (repo_blob_from_buffer(&a, repo, "A", 1) < 0 ||
		    repo_blob_from_buffer(&b, repo, "B", 1) < 0)
			log_fatal("cannot write blobs");
		up.blob = &a;
		if (repo_tree_update(&tree, repo, NULL, &up, 1) < 0)
			log_fatal("cannot write a tree");
	}
	is_int(repo_object_check(repo, &tree, NULL), 0, "a tree, whole");
	{
		/* the file of one object under another's name */
		char *pa = loose_path(&a), *pb = loose_path(&b);
		unlink(pb);
		if (link(pa, pb) < 0)
			log_fatal("link");
		is_int(repo_object_check(repo, &b, NULL), E_INVALID,
		       "another object's bytes under its name: damaged");
		free(pa);
		free(pb);
	}
	{
		char *p = loose_path(&a);
		int fd = open(p, O_WRONLY | O_TRUNC);
		chmod(p, 0600);
		fd = fd < 0 ? open(p, O_WRONLY | O_TRUNC) : fd;
		if (fd < 0 || write_full(fd, "not zlib at all", 15) < 0)
			log_fatal("cannot overwrite '%s'", p);
		close(fd);
		is_int(repo_object_check(repo, &a, NULL), E_INVALID,
		       "a file that is not zlib: damaged");
		free(p);
	}
	oid_fromstr(&absent, "0123456789abcdef0123456789abcdef01234567");
	is_int(repo_object_check(repo, &absent, NULL), E_NOTFOUND, "absent");

	repo_free(repo);
	test_batches(path);
	repo_global_shutdown();
	if (!tap_failed)
		rm_rf(dir);
	else
		diag("repository kept in %s", dir);
	free(path);
	return tap_done();
}
