/*
 * treeedit-t: repo_tree_update() against libgit2's
 * git_tree_create_updated() on random trees and random updates: the
 * two must write the same tree, id for id.  Names come from a small set
 * chosen to stress git's entry order ("a" before "a-b" before "a.b"
 * before the tree "a", which sorts as "a/", before "a0").
 *
 *	treeedit-t [seed [cases]]	(or TREEEDIT_SEED, TREEEDIT_CASES)
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tap.h"
#include "fsutil.h"
#include "log.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

static struct repo *repo;
static uint64_t rng;
static uint64_t compared;	/* random rounds libgit2 also wrote */

static const char *const names[] = {
	"a", "a-b", "a.b", "a0", "ab", "b", "cur", "new", "0a", "ff",
	"1700000000.M1P2.host,S=12:2,S", "1700000000.M1P2.host,S=12:2,RS",
};
#define NNAMES (sizeof names / sizeof names[0])
#define NBLOBS 6

static struct oid blobs[NBLOBS];

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned pick(unsigned n)
{
	return (unsigned)(next() % n);
}

/*
 * Whether a name under a directory is a directory, fixed per case: a
 * path never has a blob where another has a tree.
 */
static uint64_t kind_salt;

static bool kind_is_dir(const char *dir, size_t dlen, const char *name)
{
	uint64_t h = kind_salt;

	for (size_t i = 0; i < dlen; i++)
		h = (h ^ (unsigned char)dir[i]) * 0x100000001b3ULL;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	return (h >> 29) % 3 == 0;
}

/* A random path of a file (want_dir false) or a directory. */
static bool random_path(struct strbuf *sb, bool want_dir)
{
	unsigned depth = 1 + pick(3);

	strbuf_reset(sb);
	for (unsigned d = 0; d < depth; d++) {
		bool last = d + 1 == depth, found = false;
		bool dir = !last || want_dir;
		size_t len = sb->len;
		for (unsigned tries = 0; tries < 16 && !found; tries++) {
			const char *n = names[pick(NNAMES)];
			if (kind_is_dir(sb->buf, len, n) == dir) {
				if (len)
					strbuf_addch(sb, '/');
				strbuf_addstr(sb, n);
				found = true;
			}
		}
		if (!found)
			return false;
	}
	return true;
}

static bool prefix_of(const char *a, const char *b)
{
	size_t n = strlen(a);

	return !strncmp(a, b, n) && (b[n] == '/' || b[n] == '\0');
}

struct upd {
	const char *path;
	struct oid id;
	bool has_id, tree;
};

/* Both ways; 1 when they agree, 0 when not, -1 when libgit2 refused. */
static int compare(const struct oid *base, const struct upd *u, size_t n,
		   struct oid *out)
{
	struct repo_update *ru = xcalloc(n + 1, sizeof *ru);
	git_tree_update *gu = xcalloc(n + 1, sizeof *gu);
	git_tree *bt = NULL;
	struct oid ours, theirs;
	int ret = -1;

	for (size_t i = 0; i < n; i++) {
		ru[i] = (struct repo_update){ u[i].path, u[i].has_id ? &u[i].id : NULL,
					      u[i].tree };
		gu[i].path = u[i].path;
		gu[i].action = u[i].has_id ? GIT_TREE_UPDATE_UPSERT :
			       GIT_TREE_UPDATE_REMOVE;
		gu[i].filemode = u[i].tree ? GIT_FILEMODE_TREE : GIT_FILEMODE_BLOB;
		if (u[i].has_id)
			oid_cpy(OID(&gu[i].id), &u[i].id);
	}
	if (git_tree_lookup(&bt, repo->git, GIT_OID(base)) == 0 &&
	    git_tree_create_updated(GIT_OID(&theirs), repo->git, bt, n, gu) == 0) {
		ret = repo_tree_update(&ours, repo, base, ru, n) == 0 &&
		      oid_equal(&ours, &theirs);
		if (!ret)
			diag("ours %s, libgit2's %s", oid_hex(&ours),
			     oid_hex(&theirs));
		oid_cpy(out, &theirs);
	}
	git_tree_free(bt);
	free(ru);
	free(gu);
	return ret;
}

static void release(struct upd *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)u[i].path);
}

/* Every path under tree, directories and files apart, with the trees' ids. */
struct paths {
	char **files, **dirs;
	struct oid *trees;
	size_t nf, af, nd, ad, at;
};

static void collect(struct paths *p, const struct oid *tree, const char *prefix)
{
	git_tree *t;

	if (git_tree_lookup(&t, repo->git, GIT_OID(tree)) < 0)
		return;
	for (size_t i = 0; i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		char *path = xasprintf("%s%s%s", prefix, *prefix ? "/" : "",
				       git_tree_entry_name(e));
		if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
			xgrow((void **)&p->dirs, &p->ad, p->nd + 1, sizeof *p->dirs);
			xgrow((void **)&p->trees, &p->at, p->nd + 1, sizeof *p->trees);
			oid_cpy(&p->trees[p->nd], OID(git_tree_entry_id(e)));
			p->dirs[p->nd++] = path;
			collect(p, OID(git_tree_entry_id(e)), path);
		} else {
			xgrow((void **)&p->files, &p->af, p->nf + 1, sizeof *p->files);
			p->files[p->nf++] = path;
		}
	}
	git_tree_free(t);
}

static void paths_release(struct paths *p)
{
	for (size_t i = 0; i < p->nf; i++)
		free(p->files[i]);
	for (size_t i = 0; i < p->nd; i++)
		free(p->dirs[i]);
	free(p->files);
	free(p->dirs);
	free(p->trees);
	memset(p, 0, sizeof *p);
}

static bool run_case(uint64_t c, struct oid *empty)
{
	struct upd u[40];
	struct strbuf sb = STRBUF_INIT;
	struct paths p = { 0 };
	struct oid base, next_id;
	size_t n = 0;
	bool good = true;

	memset(u, 0, sizeof u);
	kind_salt = next();
	/* the base: random blobs from the empty tree */
	for (unsigned i = 0, want = pick(30); i < want; i++) {
		if (!random_path(&sb, false))
			continue;
		u[n] = (struct upd){ xstrdup(sb.buf), blobs[pick(NBLOBS)], true, false };
		for (size_t k = 0; k < n; k++)
			if (prefix_of(u[k].path, u[n].path) ||
			    prefix_of(u[n].path, u[k].path)) {
				free((char *)u[n].path);
				n--;
				break;
			}
		n++;
	}
	if (compare(empty, u, n, &base) != 1) {
		diag("case %llu: building the base", (unsigned long long)c);
		good = false;
	}
	release(u, n);
	/* then some updates of it */
	for (int round = 0; round < 3 && good; round++) {
		paths_release(&p);
		collect(&p, &base, "");
		n = 0;
		for (unsigned i = 0, want = 1 + pick(12); i < want; i++) {
			unsigned what = pick(10);
			bool dir = what >= 8, clash = false;
			/* removals and tree upserts of what is there */
			if (what >= 5 && what != 8 && (dir ? p.nd : p.nf)) {
				strbuf_reset(&sb);
				strbuf_addstr(&sb, dir ? p.dirs[pick((unsigned)p.nd)] :
					      p.files[pick((unsigned)p.nf)]);
			} else if (!random_path(&sb, dir)) {
				continue;
			}
			for (size_t k = 0; k < n && !clash; k++)
				clash = prefix_of(u[k].path, sb.buf) ||
					prefix_of(sb.buf, u[k].path);
			if (clash)
				continue;
			memset(&u[n], 0, sizeof u[n]);
			u[n].path = xstrdup(sb.buf);
			u[n].tree = dir;
			u[n].has_id = what < 5 || (dir && p.nd && what == 9);
			if (u[n].has_id && dir)
				oid_cpy(&u[n].id, &p.trees[pick((unsigned)p.nd)]);
			else if (u[n].has_id)
				oid_cpy(&u[n].id, &blobs[pick(NBLOBS)]);
			n++;
		}
		switch (compare(&base, u, n, &next_id)) {
		case 1:
			compared++;
			oid_cpy(&base, &next_id);
			break;
		case 0:
			good = false;
			diag("case %llu round %d differs; updates:",
			     (unsigned long long)c, round);
			for (size_t k = 0; k < n; k++)
				diag("  %s %s%s", u[k].has_id ? "set" : "remove",
				     u[k].path, u[k].tree ? " (tree)" : "");
			break;
		default:
			break;	/* libgit2 refused: a path through a blob,
				   or the removal of what is not there */
		}
		release(u, n);
	}
	paths_release(&p);
	strbuf_release(&sb);
	return good;
}

/* A shard-sized tree: 400 entries, one changed, one added, one gone. */
static void test_big_shard(const struct oid *empty)
{
	struct upd u[400];
	struct oid base, out;

	for (int i = 0; i < 400; i++) {
		u[i].path = xasprintf("cur/a7/17%08d.M%dP1.host,S=%d:2,%s",
				      i * 37, i, 1000 + i, i % 3 ? "S" : "");
		u[i].has_id = true;
		u[i].tree = false;
		oid_cpy(&u[i].id, &blobs[i % NBLOBS]);
	}
	ok(compare(empty, u, 400, &base) == 1, "a 400-entry shard tree");
	free((char *)u[5].path);
	u[5].path = xstrdup("cur/a7/1700000185.M5P1.host,S=1005:2,FS");
	u[6].has_id = false;
	free((char *)u[7].path);
	u[7].path = xstrdup("new/a7/1700000259.M7P1.host,S=1007");
	ok(compare(&base, u + 5, 3, &out) == 1,
	   "a flag change, an expunge and a delivery in it");
	release(u, 400);
}

/* Edge cases named one by one. */
static void test_edges(const struct oid *empty)
{
	struct upd u[3];
	struct oid t1, t2, t3;

	u[0] = (struct upd){ "x/y/z", blobs[0], true, false };
	ok(compare(empty, u, 1, &t1) == 1, "a path three deep from empty");
	u[0] = (struct upd){ "x/y/z", { { 0 } }, false, false };
	ok(compare(&t1, u, 1, &t2) == 1 && oid_equal(&t2, empty),
	   "removing the only file leaves the empty tree");
	{
		/* libgit2 refuses this one; ours changes nothing */
		struct repo_update gone = { "nothing/here", NULL, false };
		ok(repo_tree_update(&t2, repo, &t1, &gone, 1) == 0 &&
		   oid_equal(&t2, &t1),
		   "removing what is not there changes nothing");
	}
	u[0] = (struct upd){ "x/y/z", blobs[0], true, false };
	ok(compare(&t1, u, 1, &t2) == 1 && oid_equal(&t2, &t1),
	   "setting what is there changes nothing");
	u[0] = (struct upd){ "x", { { 0 } }, false, true };
	u[1] = (struct upd){ "w", blobs[1], true, false };
	ok(compare(&t1, u, 2, &t3) == 1, "a directory removed whole");
	{
		struct repo_update bad = { "a/.git/config", &blobs[0], false };
		struct repo_update dot = { "a/../b", &blobs[0], false };
		ok(repo_tree_update(&t2, repo, &t1, &bad, 1) < 0,
		   "a .git component is refused");
		ok(repo_tree_update(&t2, repo, &t1, &dot, 1) < 0,
		   "a .. component is refused");
	}
	{
		/* of two updates of one path, the later one wins */
		struct repo_update two[2] = { { "p", &blobs[0], false },
					      { "p", &blobs[1], false } };
		struct repo_update one = { "p", &blobs[1], false };
		ok(repo_tree_update(&t2, repo, empty, two, 2) == 0 &&
		   repo_tree_update(&t3, repo, empty, &one, 1) == 0 &&
		   oid_equal(&t2, &t3), "the later of two updates wins");
	}
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/treeedit-t.XXXXXX";
	const char *e;
	char *path;
	uint64_t seed, cases = 3000, bad = 0;
	struct oid empty;

	log_init("treeedit-t", LOG_TO_STDERR, LOG_LVL_ERROR);
	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if ((e = getenv("TREEEDIT_SEED")) && *e)
		seed = strtoull(e, NULL, 0);
	if ((e = getenv("TREEEDIT_CASES")) && *e)
		cases = strtoull(e, NULL, 0);
	if (argc > 1)
		seed = strtoull(argv[1], NULL, 0);
	if (argc > 2)
		cases = strtoull(argv[2], NULL, 0);
	if (!mkdtemp(dir))
		log_fatal("mkdtemp: failed");
	path = xasprintf("%s/repo.git", dir);
	if (repo_open(&repo, path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		log_fatal("cannot create '%s'", path);
	for (int i = 0; i < NBLOBS; i++) {
		char b[16];
		snprintf(b, sizeof b, "blob %d\n", i);
		if (repo_blob_from_buffer(&blobs[i], repo, b, strlen(b)) < 0)
			log_fatal("cannot write a blob");
	}
	if (git_odb_hash(GIT_OID(&empty), "", 0, GIT_OBJECT_TREE) < 0 ||
	    repo_tree_update(&empty, repo, NULL, NULL, 0) < 0)
		log_fatal("cannot write the empty tree");

	test_edges(&empty);
	test_big_shard(&empty);
	for (uint64_t c = 0; c < cases; c++) {
		rng = (seed ^ (c * 0x9e3779b97f4a7c15ULL)) | 1;
		for (int w = 0; w < 4; w++)
			next();
		if (!run_case(c, &empty))
			bad++;
	}
	if (!ok(bad == 0, "%llu random cases, seed %llu: the same trees as "
		"libgit2", (unsigned long long)cases, (unsigned long long)seed))
		diag("%llu cases differ; rerun with TREEEDIT_SEED=%llu",
		     (unsigned long long)bad, (unsigned long long)seed);
	/* libgit2 refuses some (see run_case): most rounds are compared */
	ok(compared >= cases * 2, "%llu of %llu update rounds compared",
	   (unsigned long long)compared, (unsigned long long)cases * 3);

	repo_free(repo);
	git_libgit2_shutdown();
	if (!tap_failed)
		rm_rf(dir);
	else
		diag("repository kept in %s", dir);
	free(path);
	return tap_done();
}
