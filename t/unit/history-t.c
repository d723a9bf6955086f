/*
 * Unit tests for common/history.c: the whole-history check of a peer's
 * commits.  Valid trees are written with repo_tree_update (FORMAT and
 * messages); a bad one is a valid root tree with one entry more that the
 * format forbids ("junk" at the root), written with a tree builder.
 */
#include "autoconf.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "history.h"
#include "log.h"
#include "mailbox.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

static struct repo *repo;
static unsigned serial;

/* A commit of parents' first tree (or none) plus one new message. */
static void good(struct oid *out, const struct oid *parents, size_t np)
{
	struct strbuf path = STRBUF_INIT;
	struct oid blob, fmt, base, tree;
	char *name = xasprintf("%u.M%uP1Q1.host,S=5:2,", 1700000000u + serial,
			       serial);
	struct repo_update ups[2];

	serial++;
	tree_message_path(&path, "", "cur", name);
	if (repo_blob_from_buffer(&blob, repo, "body\n", 5) < 0 ||
	    repo_blob_from_buffer(&fmt, repo, FORMAT_CONTENT,
				  strlen(FORMAT_CONTENT)) < 0 ||
	    (np && repo_commit_tree(&base, repo, &parents[0]) < 0))
		log_fatal("write: %s", repo_git_error());
	ups[0] = (struct repo_update){ FORMAT_PATH, &fmt, false };
	ups[1] = (struct repo_update){ path.buf, &blob, false };
	if (repo_tree_update(&tree, repo, np ? &base : NULL, ups, 2) < 0 ||
	    repo_commit(out, repo, &tree, parents, np, "good", -1, NULL,
			NULL) < 0)
		log_fatal("commit: %s", repo_git_error());
	strbuf_release(&path);
	free(name);
}

/* A commit with the tree of parent's plus "junk" at the root. */
static void bad(struct oid *out, const struct oid *parent)
{
	git_treebuilder *tb;
	git_tree *t;
	struct oid base, blob, tree;

	if (repo_commit_tree(&base, repo, parent) < 0 ||
	    git_tree_lookup(&t, repo->git, GIT_OID(&base)) < 0 ||
	    git_treebuilder_new(&tb, repo->git, t) < 0 ||
	    repo_blob_from_buffer(&blob, repo, "x", 1) < 0 ||
	    git_treebuilder_insert(NULL, tb, "junk", GIT_OID(&blob),
				   GIT_FILEMODE_BLOB) < 0 ||
	    git_treebuilder_write(GIT_OID(&tree), tb) < 0 ||
	    repo_commit(out, repo, &tree, parent, 1, "bad", -1, NULL, NULL) < 0)
		log_fatal("bad commit: %s", repo_git_error());
	git_treebuilder_free(tb);
	git_tree_free(t);
}

/* A commit of tree's tree with parents. */
static void same_tree(struct oid *out, const struct oid *tree_of,
		      const struct oid *parents, size_t np)
{
	struct oid tree;

	if (repo_commit_tree(&tree, repo, tree_of) < 0 ||
	    repo_commit(out, repo, &tree, parents, np, "same", -1, NULL,
			NULL) < 0)
		log_fatal("commit: %s", repo_git_error());
}

static int check(const struct oid *ours, const struct oid *theirs, size_t *n,
		 struct strbuf *err)
{
	strbuf_reset(err);
	return history_check(repo, ours, NULL, theirs, err, n, NULL);
}

/*
 * history_spawn, then poll and history_collect until it ends; with
 * kill_it, SIGKILL the child first (as a stop or the OOM killer would).
 * That child checks a copy of the repository whose config is a FIFO
 * nobody writes: it waits in open() until it is killed, however soon it
 * runs (a child that got to finish first approved the chain).
 */
static void in_child(struct history_result *res, const struct oid *ours,
		     const struct oid *theirs, bool kill_it)
{
	struct strbuf buf = STRBUF_INIT;
	char *stuck = xasprintf("%s.stuck", repo->path), *cmd;
	pid_t pid;
	int fd;

	memset(res, 0, sizeof *res);
	cmd = xasprintf("rm -rf '%s' && cp -a '%s' '%s' && rm '%s/config' && "
			"mkfifo '%s/config'", stuck, repo->path, stuck, stuck,
			stuck);
	if (kill_it && system(cmd) != 0)
		log_fatal("cannot make a repository a check waits on");
	free(cmd);
	if (history_spawn(&pid, &fd, kill_it ? stuck : repo->path, ours, NULL,
			  theirs, 0) < 0)
		log_fatal("cannot spawn a check child");
	if (kill_it)
		kill(pid, SIGKILL);
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, -1) > 0 &&
		    history_collect(pid, fd, &buf, res))
			break;
	}
	strbuf_release(&buf);
	cmd = xasprintf("rm -rf '%s'", stuck);
	if (kill_it && system(cmd) != 0)
		log_warn("cannot remove '%s'", stuck);
	free(cmd);
	free(stuck);
}

static void child_cases(const struct oid *r, const struct oid *b, const struct oid *x,
			const struct oid *y)
{
	struct history_result res;
	char want[64];

	in_child(&res, r, b, false);
	is_int(res.status, 0, "child: a good chain is approved");
	ok(oid_equal(&res.theirs, b), "child: for the commit it was given");
	is_int((int)res.checked, 2, "child: what ours lacks is checked");
	is_str(res.why, "", "child: an approval says nothing more");
	ok(res.max_rss_kb > 0, "child: its memory is told (%ld kB)",
	   res.max_rss_kb);
	in_child(&res, NULL, b, false);
	is_int(res.status, 0, "child: from nothing");
	is_int((int)res.checked, 3, "child: every commit checked");

	in_child(&res, b, y, false);
	is_int(res.status, E_INVALID, "child: a bad commit deep down refuses all");
	ok(oid_equal(&res.bad, x), "child: the bad commit is named by id");
	snprintf(want, sizeof want, "commit %.12s of its history: ",
		 oid_hex(x));
	ok(!strncmp(res.why, want, strlen(want)) && strstr(res.why, "junk"),
	   "child: and why: %s", res.why);

	in_child(&res, r, b, true);
	is_int(res.status, E_TEMP, "child: killed, it approved nothing");
	ok(strstr(res.why, "signal 9") != NULL, "child: said so: %s", res.why);
}

int main(void)
{
	char dir[] = "/tmp/history-t.XXXXXX";
	struct strbuf err = STRBUF_INIT;
	struct oid r, a, b, x, y, m[2], z, pair[2];
	char *path, want[64];
	size_t n;

	log_init("history-t", LOG_TO_STDERR, LOG_LVL_WARN);
	if (!mkdtemp(dir) || repo_global_init() < 0)
		return 99;
	path = xasprintf("%s/repo.git", dir);
	if (repo_open(&repo, path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		return 99;

	good(&r, NULL, 0);
	good(&a, &r, 1);
	good(&b, &a, 1);
	is_int(check(&r, &b, &n, &err), 0, "a good chain passes");
	is_int((int)n, 2, "only what ours lacks is checked");
	is_int(check(NULL, &b, &n, &err), 0, "from nothing: the root in full");
	is_int((int)n, 3, "every commit checked");
	is_int(check(&b, &b, &n, &err), 0, "nothing new");
	is_int((int)n, 0, "nothing checked");
	strbuf_reset(&err);
	is_int(history_check(repo, &r, &a, &b, &err, &n, NULL), 0,
	       "an approved commit is trusted as ours is");
	is_int((int)n, 1, "only what came since it is checked");

	/* x: bad; y on top of it has b's good tree again */
	bad(&x, &b);
	same_tree(&y, &b, &x, 1);
	is_int(check(&b, &x, &n, &err), E_INVALID, "a bad tip is refused");
	ok(strstr(err.buf, "junk") && strncmp(err.buf, "commit ", 7),
	   "the tip's reason alone: %s", err.buf);
	is_int(check(&b, &y, &n, &err), E_INVALID,
	       "a good tip over a bad commit is refused whole");
	snprintf(want, sizeof want, "commit %.12s of its history: ",
		 oid_hex(&x));
	ok(!strncmp(err.buf, want, strlen(want)) && strstr(err.buf, "junk"),
	   "the bad commit is named: %s", err.buf);
	is_int(check(&a, &y, &n, &err), E_INVALID,
	       "also when ours is further back");
	is_int(check(NULL, &y, &n, &err), E_INVALID, "and from nothing");
	child_cases(&r, &b, &x, &y);

	/* merges: the bad commit as second parent, then as first */
	pair[0] = b;
	pair[1] = x;
	same_tree(&m[0], &b, pair, 2);
	is_int(check(&b, &m[0], &n, &err), E_INVALID,
	       "a merge with a bad second parent is refused");
	ok(!strncmp(err.buf, want, strlen(want)), "naming it: %s", err.buf);
	pair[0] = x;
	pair[1] = b;
	same_tree(&m[1], &b, pair, 2);
	is_int(check(&b, &m[1], &n, &err), E_INVALID,
	       "a merge with a bad first parent is refused");
	good(&z, &m[0], 1);
	is_int(check(&b, &z, &n, &err), E_INVALID,
	       "and anything on top of such a merge");

	/* a good merge of two good branches */
	good(&x, &a, 1);
	pair[0] = b;
	pair[1] = x;
	good(&z, pair, 2);
	is_int(check(&a, &z, &n, &err), 0, "a merge of good branches passes");
	is_int((int)n, 3, "both branches and the merge are checked");

	repo_free(repo);
	{
		char *cmd = xasprintf("rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
		free(cmd);
	}
	free(path);
	strbuf_release(&err);
	return tap_done();
}
