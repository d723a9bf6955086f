/*
 * history-bench: what the whole-history check of a peer's commits
 * (common/history.h, run by maildag-syncd in a child process before it
 * merges a peer's ref) costs.
 *
 *   history-bench [-n base-messages] [-c commits] WORKDIR
 *   history-bench -r BASE TIP WORKDIR
 *
 * Builds, in WORKDIR/repo.git, a base commit of <base-messages> messages
 * (INBOX and 10 folders), then <commits> commits on top, each what a
 * delivery or a client makes: one new message, every fifth a flag
 * change (a rename) instead.  Then, each on a fresh repository handle
 * (a cold object cache, as after a start):
 *
 *   incremental  history_check(base, tip): a peer <commits> ahead
 *   fresh        history_check(NULL, tip): a replica with nothing in
 *                common (a new replica joining): the root in full, then
 *                every commit
 *
 * Output: one "key value" line per figure (milliseconds, commits), and
 * the base and tip ids.  Objects are loose, as a transfer may leave
 * them until maintenance packs them; -r BASE TIP runs the checks again
 * on the repository as it is (after a `git repack -ad`, say).
 *
 * Build it against a build directory BUILD:
 *   cc -O2 -Icommon -Icommon/util -IBUILD -o history-bench \
 *      bench/history-bench.c BUILD/common/libcommon.a \
 *      BUILD/common/util/libutil.a \
 *      $(pkg-config --cflags --libs libgit2 jansson zlib)
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "history.h"
#include "log.h"
#include "mailbox.h"
#include "mtimes.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

static const char *const folders[] = { "", ".Sent", ".Archive", ".Lists",
	".Work", ".Family", ".Spam", ".Receipts", ".Drafts", ".Trash", ".Old" };
#define NFOLDERS (sizeof folders / sizeof folders[0])

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "history-bench: %s: %s\n", what, repo_git_error());
	exit(2);
}

struct msg {
	const char *folder;
	char *name;
	struct oid blob;
};

static struct msg *msgs;
static size_t nmsgs, amsgs;

static char *path_of(const struct msg *m)
{
	struct strbuf sb = STRBUF_INIT;

	tree_message_path(&sb, m->folder, "cur", m->name);
	return strbuf_detach(&sb, NULL);
}

static void new_msg(struct repo *r, struct update_list *ups)
{
	unsigned k = (unsigned)nmsgs;
	char *body = xasprintf("From: bench@example.org\nSubject: %u\n"
			       "Message-ID: <%u@example.org>\n\nbody %u\n",
			       k, k, k);
	struct msg *m;
	char *p;

	xgrow((void **)&msgs, &amsgs, nmsgs + 1, sizeof *msgs);
	m = &msgs[nmsgs++];
	m->folder = folders[k % NFOLDERS];
	m->name = xasprintf("%u.M%uP%uQ1.bench,S=%zu:2,", 1500000000u + k * 7,
			    k, 1000 + k % 30000, strlen(body));
	if (repo_blob_from_buffer(&m->blob, r, body, strlen(body)) < 0)
		die("write blob");
	free(body);
	p = path_of(m);
	update_list_add(ups, p, &m->blob);
	free(p);
}

static void flag_msg(struct msg *m, struct update_list *ups)
{
	char *p = path_of(m), *name;

	update_list_add(ups, p, NULL);
	free(p);
	name = xasprintf("%s%s", m->name, "S");
	free(m->name);
	m->name = name;
	p = path_of(m);
	update_list_add(ups, p, &m->blob);
	free(p);
}

static void commit(struct oid *out, struct repo *r, const struct oid *parent,
		   struct update_list *ups)
{
	struct oid tree, ptree;

	if (parent && repo_commit_tree(&ptree, r, parent) < 0)
		die("read commit");
	if (repo_tree_update(&tree, r, parent ? &ptree : NULL, ups->v,
			     ups->n) < 0 ||
	    repo_commit(out, r, &tree, parent, parent ? 1 : 0, "bench", -1,
			NULL, NULL) < 0)
		die("commit");
	update_list_release(ups);
}

static void run(const char *key, const char *path, const struct oid *ours,
		const struct oid *tip)
{
	struct repo *r;
	struct strbuf err = STRBUF_INIT;
	size_t n = 0;
	double t0;
	int ret;

	if (repo_open(&r, path, REPO_NO_FSYNC) < 0)
		die("open");
	t0 = now_ms();
	ret = history_check(r, ours, NULL, tip, &err, &n, NULL);
	printf("%s_ms %.0f\n%s_commits %zu\n", key, now_ms() - t0, key, n);
	if (ret < 0)
		printf("%s_error %s\n", key, err.buf);
	strbuf_release(&err);
	repo_free(r);
}

int main(int argc, char **argv)
{
	unsigned nbase = 20000, ncommits = 5000;
	struct update_list ups = UPDATE_LIST_INIT;
	struct repo *r;
	struct oid base, tip, fmt;
	char *path;
	int c;

	const char *rerun = NULL;

	while ((c = getopt(argc, argv, "n:c:r:")) != -1) {
		switch (c) {
		case 'n': nbase = (unsigned)atoi(optarg); break;
		case 'c': ncommits = (unsigned)atoi(optarg); break;
		case 'r': rerun = optarg; break;
		default:
			fputs("usage: history-bench [-n base] [-c commits] DIR\n",
			      stderr);
			return 64;
		}
	}
	if (optind + 1 + (rerun != NULL) != argc)
		return 64;
	log_init("history-bench", LOG_TO_STDERR, LOG_LVL_WARN);
	if (repo_global_init() < 0)
		die("init");
	path = xasprintf("%s/repo.git", argv[argc - 1]);
	if (rerun) {
		if (oid_fromstr(&base, rerun) < 0 ||
		    oid_fromstr(&tip, argv[optind]) < 0)
			die("-r BASE TIP: two commit ids");
		run("incremental", path, &base, &tip);
		run("fresh", path, NULL, &tip);
		return 0;
	}
	if (repo_open(&r, path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		die("create");
	if (repo_blob_from_buffer(&fmt, r, FORMAT_CONTENT,
				  strlen(FORMAT_CONTENT)) < 0)
		die("write FORMAT");
	update_list_add(&ups, FORMAT_PATH, &fmt);
	for (unsigned i = 0; i < nbase; i++)
		new_msg(r, &ups);
	commit(&base, r, NULL, &ups);
	oid_cpy(&tip, &base);
	for (unsigned i = 0; i < ncommits; i++) {
		struct msg *m = &msgs[(i * 7919u) % nmsgs];
		if (i % 5 == 4 && m->name[strlen(m->name) - 1] == ',')
			flag_msg(m, &ups);
		else
			new_msg(r, &ups);
		commit(&tip, r, &tip, &ups);
	}
	repo_free(r);
	printf("base_messages %u\ncommits %u\nbase %s\n", nbase, ncommits,
	       oid_hex(&base));
	printf("tip %s\n", oid_hex(&tip));
	run("incremental", path, &base, &tip);
	run("fresh", path, NULL, &tip);
	free(path);
	return 0;
}
