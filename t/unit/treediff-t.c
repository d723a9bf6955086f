/*
 * Unit tests for common/treediff.c, the one tree walk of the merge and
 * the worktree: what it reports, in which order, and that it never reads
 * a subtree whose id both sides share.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>

#include "../tap.h"
#include "fsutil.h"
#include "log.h"
#include "repo.h"
#include "repo_p.h"
#include "strbuf.h"
#include "treediff.h"
#include "xalloc.h"

static struct repo *repo;
static struct oid blob[6];

/* What a walk told: "T path", "L path -|+|~" lines, and the loads. */
struct seen {
	struct strbuf log;
	unsigned loads;
	const char *skip;	/* a subtree the tree callback leaves */
	int fail_leaf;		/* returned by the leaf callback when < 0 */
};

static int on_load(git_tree **out, const struct oid *id, void *data)
{
	((struct seen *)data)->loads++;
	return git_tree_lookup(out, repo->git, GIT_OID(id)) < 0 ? -1 : 0;
}

static int on_tree(const char *path, const struct oid *a, const struct oid *b,
		   void *data)
{
	struct seen *s = data;

	strbuf_addf(&s->log, "T %s %s\n", path, !a ? "+" : !b ? "-" : "~");
	return s->skip && !strcmp(path, s->skip);
}

static int on_leaf(const char *path, const git_tree_entry *a,
		   const git_tree_entry *b, void *data)
{
	struct seen *s = data;

	strbuf_addf(&s->log, "L %s %s\n", path, !a ? "+" : !b ? "-" : "~");
	return s->fail_leaf;
}

static const struct treediff_ops ops = { on_load, on_tree, on_leaf };

/* The tree of these "path=blob index" updates on the empty tree. */
static struct oid tree_of(const char *const *spec)
{
	struct repo_update ups[16];
	struct oid out;
	size_t n = 0;

	for (; spec[n]; n++) {
		const char *eq = strchr(spec[n], '=');
		ups[n] = (struct repo_update){ xstrndup(spec[n], (size_t)(eq - spec[n])),
					       &blob[eq[1] - '0'], false };
	}
	if (repo_tree_update(&out, repo, NULL, ups, n) < 0)
		memset(&out, 0, sizeof out);
	for (size_t i = 0; i < n; i++)
		free((char *)ups[i].path);
	return out;
}

static void run(struct seen *s, const struct oid *a, const struct oid *b, int want,
		const char *what)
{
	struct strbuf path = STRBUF_INIT;

	is_int(treediff(repo, a, b, &path, &ops, s), want, "%s: returns", what);
	is_int((long long)path.len, 0, "%s: path as it was", what);
	strbuf_release(&path);
}

static void test_walks(void)
{
	static const char *const t0[] = {
		"FORMAT=0", "cur/9c/m1=1", ".A/cur/00/x=2", ".A/maildirfolder=0",
		".B/new/11/y=3", NULL,
	};
	static const char *const t1[] = {
		"FORMAT=0", "cur/9c/m1=4", ".A/cur/00/x=2", ".A/maildirfolder=0",
		".C/cur/22/z=5", NULL,
	};
	struct oid a = tree_of(t0), b = tree_of(t1);
	struct seen s = { STRBUF_INIT, 0, NULL, 0 };

	run(&s, &a, &b, 0, "a change");
	is_str(s.log.buf,
	       "T .B -\nT .B/new -\nT .B/new/11 -\nL .B/new/11/y -\n"
	       "T .C +\nT .C/cur +\nT .C/cur/22 +\nL .C/cur/22/z +\n"
	       "T cur ~\nT cur/9c ~\nL cur/9c/m1 ~\n",
	       "a change: what differs, in git's order, .A never entered");
	is_int(s.loads, 2 + 3 + 3 + 4, "a change: only the trees that differ read");

	strbuf_reset(&s.log);
	s.loads = 0;
	s.skip = "cur";
	run(&s, &a, &b, 0, "a subtree left");
	ok(strstr(s.log.buf, "T cur ~\n") && !strstr(s.log.buf, "cur/9c"),
	   "a subtree the callback takes is not gone into");
	s.skip = NULL;

	strbuf_reset(&s.log);
	run(&s, &a, &a, 0, "equal trees");
	is_str(s.log.buf, "", "equal trees: nothing");

	strbuf_reset(&s.log);
	run(&s, NULL, &b, 0, "against the empty tree");
	ok(strstr(s.log.buf, "L FORMAT +\n") &&
	   strstr(s.log.buf, "L .A/maildirfolder +\n") &&
	   strstr(s.log.buf, "T .A/cur/00 +\n"),
	   "against the empty tree: all of it, added");

	strbuf_reset(&s.log);
	s.fail_leaf = -7;
	run(&s, &a, &b, -7, "a callback that fails");
	is_str(s.log.buf, "T .B -\nT .B/new -\nT .B/new/11 -\nL .B/new/11/y -\n",
	       "a callback that fails stops the walk");
	strbuf_release(&s.log);
}

/* A root tree of one entry name with mode and id. */
static struct oid one_entry(const char *name, const struct oid *id, git_filemode_t mode)
{
	git_treebuilder *tb = NULL;
	struct oid out;

	memset(&out, 0, sizeof out);
	if (git_treebuilder_new(&tb, repo->git, NULL) == 0 &&
	    git_treebuilder_insert(NULL, tb, name, GIT_OID(id), mode) == 0)
		git_treebuilder_write(GIT_OID(&out), tb);
	git_treebuilder_free(tb);
	return out;
}

static void test_kinds(void)
{
	static const char *const sub[] = { "y=1", NULL };
	struct oid inner = tree_of(sub);
	struct oid a = one_entry("x", &blob[0], GIT_FILEMODE_BLOB);
	struct oid b = one_entry("x", &inner, GIT_FILEMODE_TREE);
	struct oid c = one_entry("x", &blob[0], GIT_FILEMODE_BLOB_EXECUTABLE);
	struct seen s = { STRBUF_INIT, 0, NULL, 0 };

	run(&s, &a, &b, 0, "a blob becomes a tree");
	is_str(s.log.buf, "L x -\nT x +\nL x/y +\n",
	       "a blob that becomes a tree: the blob gone, the tree's blobs come");
	strbuf_reset(&s.log);
	run(&s, &b, &a, 0, "a tree becomes a blob");
	is_str(s.log.buf, "L x +\nT x -\nL x/y -\n",
	       "a tree that becomes a blob: the other way round");
	strbuf_reset(&s.log);
	run(&s, &a, &c, 0, "a mode changes");
	is_str(s.log.buf, "L x ~\n", "a mode alone changed: told, both sides");
	strbuf_release(&s.log);
}

int main(void)
{
	char tmpl[] = "/tmp/treediff-t.XXXXXX";
	char *dir = mkdtemp(tmpl), *path;

	log_init("treediff-t", LOG_TO_STDERR, LOG_LVL_WARN);
	if (!dir || repo_global_init() < 0) {
		ok(0, "set-up");
		return tap_done();
	}
	path = xasprintf("%s/r.git", dir);
	if (repo_open(&repo, path, REPO_CREATE | REPO_NO_FSYNC) < 0) {
		ok(0, "repository");
		return tap_done();
	}
	for (int i = 0; i < 6; i++) {
		char body[16];
		snprintf(body, sizeof body, "blob %d\n", i);
		repo_blob_from_buffer(&blob[i], repo, body, strlen(body));
	}
	test_walks();
	test_kinds();
	repo_free(repo);
	rm_rf(dir);
	free(path);
	return tap_done();
}
