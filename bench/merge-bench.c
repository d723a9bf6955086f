/*
 * merge-bench: the figures of bench/merge.
 *
 *   merge-bench [-n inbox] [-f folders] [-m per-folder] [-c changes]
 *               [-r runs] [-s seed] [-g git] WORKDIR
 *
 * Builds, in WORKDIR/repo.git, a mailbox of <inbox> messages in INBOX and
 * <folders> folders of <per-folder> messages (trees written directly,
 * objects packed into one pack as after a fetch or maintenance), then two
 * sides of <changes> changes each from that base: flag changes, moves
 * between folders, expunges and deliveries, with some messages changed on
 * both sides.  Then, in the same run, best of <runs>:
 *
 *   1. merge_trees() and merge_commits() of the two sides, objects
 *      written without fsync ("cold": every tree read from the pack;
 *      "daemon": the base's and our side's changed trees already read),
 *      with fsync of every object, without fsync and one syncfs(2) at the
 *      end (what maildag merge --update does before the ref moves), and
 *      with the new objects kept in memory (what the merge costs without
 *      writing loose objects);
 *   2. git merge-tree --write-tree on the same two commits;
 *   3. a commit of one flag change in the INBOX (the 100,000-message
 *      folder), as the daemon makes it: read the ref, write the changed
 *      trees, commit, move the ref; time and bytes of loose objects
 *      written, with fsync and without.
 *
 * Every run starts from a fresh repository handle (cold object cache, as
 * a new process has) and the loose objects a run wrote are deleted before
 * the next one, so no run finds its trees already written.  Output is one
 * "key value" line per figure, for bench/merge to print and judge.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <git2/sys/mempack.h>

#include "log.h"
#include "mailbox.h"
#include "maildir_name.h"
#include "merge.h"
#include "mtimes.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

extern char **environ;

static unsigned n_inbox = 100000, n_folders = 10, n_per_folder = 1000;
static unsigned n_changes = 100, n_runs = 7;
static uint64_t rng = 0x243f6a8885a308d3ULL;
static const char *git_cmd = "git";
static char *repo_dir;
static struct oid flag_base;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static unsigned rn(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "merge-bench: %s: %s\n", what, repo_git_error());
	exit(2);
}

/* --- the mailbox ---------------------------------------------------------- */

struct msg {
	char *folder;		/* "" for INBOX */
	char *sub;		/* "cur" or "new" */
	char *name;
	struct oid blob;
	bool gone;
};

static struct msg *msgs;
static size_t nmsgs, amsgs;
static unsigned serial;

static char *folder_name(unsigned i)
{
	static const char *const names[] = { ".Sent", ".Drafts", ".Trash",
		".Archive", ".Lists.git", ".Lists.dovecot", ".Work", ".Family",
		".Spam", ".Receipts" };

	if (i < sizeof names / sizeof names[0])
		return xstrdup(names[i]);
	return xasprintf(".Folder%u", i);
}

static char *msg_path(const struct msg *m)
{
	struct strbuf sb = STRBUF_INIT;

	tree_message_path(&sb, m->folder, m->sub, m->name);
	return strbuf_detach(&sb, NULL);
}

/* a new message (written to r); returns its index */
static size_t new_msg(struct repo *r, const char *folder, bool seen)
{
	unsigned k = serial++;
	long long t = 1500000000LL + (long long)k * 97;
	char *body = xasprintf("Return-Path: <bench@example.org>\n"
			       "From: Bench <bench@example.org>\n"
			       "Subject: message %u\nMessage-ID: <%u.%llx@example.org>\n"
			       "\nbody of message %u\n", k, k,
			       (unsigned long long)rnd(), k);
	struct msg *m;

	xgrow((void **)&msgs, &amsgs, nmsgs + 1, sizeof *msgs);
	m = &msgs[nmsgs];
	m->folder = xstrdup(folder);
	m->sub = xstrdup(seen ? "cur" : "new");
	m->name = xasprintf("%lld.M%uP%uR%016llxQ1.bench.example,S=%zu%s", t,
			    k % 1000000, 1000 + k % 30000,
			    (unsigned long long)rnd(), strlen(body),
			    seen ? ":2,S" : "");
	m->gone = false;
	if (repo_blob_from_buffer(&m->blob, r, body, strlen(body)) < 0)
		die("write blob");
	free(body);
	return nmsgs++;
}

static void commit_ups(struct oid *out, struct repo *r, const struct oid *parent,
		       struct update_list *ups, time_t when, const char *msg)
{
	struct oid tree, ptree, *pt = NULL;

	if (parent) {
		if (repo_commit_tree(&ptree, r, parent) < 0)
			die("read commit");
		pt = &ptree;
	}
	if (repo_tree_update(&tree, r, pt, ups->v, ups->n) < 0 ||
	    repo_commit(out, r, &tree, parent, parent ? 1 : 0, msg, when,
			NULL, NULL) < 0)
		die("commit");
}

/* --- one side's changes --------------------------------------------------- */

static size_t pick_live(void)
{
	for (;;) {
		size_t i = rn((unsigned)nmsgs);
		if (!msgs[i].gone)
			return i;
	}
}

static void rename_line(struct update_list *ups, const struct msg *m,
			const char *folder, const char *sub, const char *flags)
{
	struct msg n = *m;
	struct maildir_name mn;
	struct strbuf name = STRBUF_INIT;
	char *from = msg_path(m), *to;

	maildir_name_parse(&mn, m->name);
	if (flags)
		maildir_name_set_flags(&mn, flags);
	else if (!mn.info)
		maildir_name_set_flags(&mn, "");
	maildir_name_format(&name, &mn);
	n.folder = (char *)folder;
	n.sub = (char *)sub;
	n.name = name.buf;
	to = msg_path(&n);
	if (strcmp(from, to)) {
		update_list_add(ups, from, NULL);
		update_list_add(ups, to, &m->blob);
	}
	free(from);
	free(to);
	strbuf_release(&name);
	maildir_name_release(&mn);
}

/*
 * changes from the base: 40% flags, 20% moves, 20% expunges, 20%
 * deliveries; shared[] (may be NULL) are messages to change too
 */
static void make_side(struct oid *out, struct repo *r, const struct oid *base,
		      time_t when, const size_t *shared, size_t nshared,
		      char **folders)
{
	struct update_list ups = UPDATE_LIST_INIT;
	size_t *used = xcalloc(n_changes + nshared + 1, sizeof *used);
	size_t nused = 0;
	unsigned nflags = n_changes * 4 / 10, nmoves = n_changes / 5;
	unsigned nexp = n_changes / 5;
	unsigned ndel = n_changes - nflags - nmoves - nexp;

	for (unsigned c = 0; c < n_changes; c++) {
		size_t i;
		bool dup;
		if (c >= nflags + nmoves + nexp) {
			new_msg(r, rn(2) ? "" : folders[rn(n_folders)], false);
			continue;
		}
		do {
			i = c < nshared ? shared[c] : pick_live();
			dup = false;
			for (size_t k = 0; k < nused; k++)
				dup |= used[k] == i;
		} while (dup && c >= nshared);
		used[nused++] = i;
		if (c < nflags) {
			/* never the flags it has: a flag change is a change */
			static const char *const f[] = { "FS", "RS", "", "ST", "DS" };
			rename_line(&ups, &msgs[i], msgs[i].folder, "cur", f[rn(5)]);
		} else if (c < nflags + nmoves) {
			const char *to = rn(3) == 0 ? "" : folders[rn(n_folders)];
			if (!strcmp(to, msgs[i].folder))
				to = *to ? "" : folders[0];
			rename_line(&ups, &msgs[i], to, "cur", NULL);
		} else {
			char *p = msg_path(&msgs[i]);
			update_list_add(&ups, p, NULL);
			free(p);
		}
	}
	/* the deliveries of this side are the last ndel messages */
	for (size_t i = nmsgs - ndel; i < nmsgs; i++) {
		char *p = msg_path(&msgs[i]);
		update_list_add(&ups, p, &msgs[i].blob);
		free(p);
		msgs[i].gone = true;	/* not in the base: never picked again */
	}
	commit_ups(out, r, base, &ups, when, "side\n");
	update_list_release(&ups);
	free(used);
}

/* --- loose objects -------------------------------------------------------- */

struct loose {
	char **v;
	size_t n, alloc;
	unsigned long long bytes;
};

static void loose_list(struct loose *l)
{
	char *objdir = xasprintf("%s/objects", repo_dir);
	DIR *d = opendir(objdir);
	struct dirent *de;

	memset(l, 0, sizeof *l);
	while (d && (de = readdir(d))) {
		char *sub;
		DIR *sd;
		struct dirent *se;
		if (strlen(de->d_name) != 2)
			continue;
		sub = xasprintf("%s/%s", objdir, de->d_name);
		sd = opendir(sub);
		while (sd && (se = readdir(sd))) {
			struct stat st;
			char *p;
			if (se->d_name[0] == '.')
				continue;
			p = xasprintf("%s/%s", sub, se->d_name);
			if (stat(p, &st) == 0)
				l->bytes += (unsigned long long)st.st_size;
			xgrow((void **)&l->v, &l->alloc, l->n + 1, sizeof *l->v);
			l->v[l->n++] = p;
		}
		if (sd)
			closedir(sd);
		free(sub);
	}
	if (d)
		closedir(d);
	free(objdir);
}

static void loose_release(struct loose *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static bool loose_has(const struct loose *l, const char *p)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], p))
			return true;
	return false;
}

/* remove what is loose now and was not in before; count it */
static void loose_reset(const struct loose *before, size_t *objects,
			unsigned long long *bytes)
{
	struct loose now;

	loose_list(&now);
	*objects = 0;
	*bytes = 0;
	for (size_t i = 0; i < now.n; i++) {
		struct stat st;
		if (loose_has(before, now.v[i]))
			continue;
		if (stat(now.v[i], &st) == 0)
			*bytes += (unsigned long long)st.st_size;
		(*objects)++;
		unlink(now.v[i]);
	}
	loose_release(&now);
}

/* --- building the mailbox ------------------------------------------------- */

static void pack_mempack(struct repo *r, git_odb_backend *mem)
{
	git_buf pack = GIT_BUF_INIT;
	git_indexer *idx = NULL;
	git_indexer_progress stats;
	git_odb *odb = NULL;
	char *dir = xasprintf("%s/objects/pack", repo_dir);

	if (git_mempack_dump(&pack, r->git, mem) < 0 ||
	    git_repository_odb(&odb, r->git) < 0 ||
	    git_indexer_new(&idx, dir, 0, NULL, NULL) < 0 ||
	    git_indexer_append(idx, pack.ptr, pack.size, &stats) < 0 ||
	    git_indexer_commit(idx, &stats) < 0)
		die("write the pack");
	printf("pack_objects %u\npack_bytes %zu\n", stats.total_objects, pack.size);
	git_indexer_free(idx);
	git_odb_free(odb);
	git_buf_dispose(&pack);
	free(dir);
}

static void build(struct oid *base, struct oid *a, struct oid *b, struct oid *flagbase)
{
	struct repo *r;
	git_odb_backend *mem;
	git_odb *odb;
	struct update_list ups = UPDATE_LIST_INIT;
	char *folders[64];
	struct oid root, empty;
	size_t shared[20];
	struct mtime_change *mt;
	size_t nmt = 0;
	double t0 = now_ms();

	if (repo_open(&r, repo_dir, REPO_CREATE | REPO_NO_FSYNC) < 0)
		die("create the repository");
	if (git_mempack_new(&mem) < 0 || git_repository_odb(&odb, r->git) < 0 ||
	    git_odb_add_backend(odb, mem, 999) < 0)
		die("mempack");
	git_odb_free(odb);
	if (repo_ref_read(&root, r, REF_MAIL) < 0)
		die("read the ref");
	repo_blob_from_buffer(&empty, r, "", 0);
	for (unsigned f = 0; f < n_folders; f++) {
		char *marker;
		folders[f] = folder_name(f);
		marker = xasprintf("%s/maildirfolder", folders[f]);
		update_list_add(&ups, marker, &empty);
		free(marker);
	}
	for (unsigned i = 0; i < n_inbox; i++)
		new_msg(r, "", rn(10) != 0);
	for (unsigned f = 0; f < n_folders; f++)
		for (unsigned i = 0; i < n_per_folder; i++)
			new_msg(r, folders[f], true);
	/* about 1% of the messages carry an mtime record */
	mt = xcalloc(nmsgs / 100 + 1, sizeof *mt);
	for (size_t i = 0; i < nmsgs; i++) {
		char *p = msg_path(&msgs[i]);
		update_list_add(&ups, p, &msgs[i].blob);
		free(p);
		if (i % 100 == 7) {
			mt[nmt].key = xstrndup(msgs[i].name, maildir_key_len(msgs[i].name));
			mt[nmt].mtime = maildir_key_time(mt[nmt].key) + 3600;
			nmt++;
		}
	}
	{
		struct oid tree;
		/* mtimes_update reads the tree: give it one without records */
		if (repo_tree_update(&tree, r, NULL, ups.v, ups.n) < 0 ||
		    mtimes_update(&ups, r, &tree, mt, nmt) < 0)
			die("mtimes");
	}
	commit_ups(base, r, &root, &ups, 1700000000, "import\n");
	update_list_release(&ups);
	printf("build_messages %zu\nbuild_ms %.0f\n", nmsgs, now_ms() - t0);

	/* a few messages both sides change */
	for (size_t i = 0; i < 20; i++)
		shared[i] = pick_live();
	make_side(a, r, base, 1700000100, shared, 10, folders);
	make_side(b, r, base, 1700000200, shared + 5, 10, folders);
	/* the base of the one-flag commits */
	oid_cpy(flagbase, base);
	pack_mempack(r, mem);
	repo_free(r);
	/* the refs the git CLI and the one-flag runs use */
	if (repo_open(&r, repo_dir, 0) < 0 ||
	    repo_ref_cas(r, REF_MAIL, base, &root, "bench") < 0 ||
	    repo_ref_cas(r, "refs/heads/a", a, NULL, "bench") < 0 ||
	    repo_ref_cas(r, "refs/heads/b", b, NULL, "bench") < 0)
		die("refs");
	repo_free(r);
	for (unsigned f = 0; f < n_folders; f++)
		free(folders[f]);
	for (size_t i = 0; i < nmt; i++)
		free((char *)mt[i].key);
	free(mt);
	printf("build_total_ms %.0f\n", now_ms() - t0);
}

/* --- the runs ------------------------------------------------------------- */

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *key, double *ms, unsigned n, size_t objects,
		   unsigned long long bytes)
{
	qsort(ms, n, sizeof *ms, dbl_cmp);
	printf("%s_best_ms %.3f\n%s_median_ms %.3f\n", key, ms[0], key, ms[n / 2]);
	if (objects)
		printf("%s_objects %zu\n%s_bytes %llu\n", key, objects, key, bytes);
}

/* fsync_on false: libgit2 syncs nothing while *r is open (REPO_NO_FSYNC) */
static void open_warm(struct repo **r, const struct oid *a, const struct oid *b,
		      bool fsync_on)
{
	struct oid t;

	if (repo_open(r, repo_dir, fsync_on ? 0 : REPO_NO_FSYNC) < 0)
		die("open");
	/* what a running daemon has at hand: the pack index, the commits */
	if (repo_commit_tree(&t, *r, a) < 0 || repo_commit_tree(&t, *r, b) < 0)
		die("read commits");
}

/*
 * Read the trees where a and b differ (both sides' versions): what a
 * running daemon holds after making the commits of its own side.
 */
static void read_differing(struct repo *r, const struct oid *a, const struct oid *b)
{
	git_tree *ta, *tb;

	if (oid_equal(a, b) || git_tree_lookup(&ta, r->git, GIT_OID(a)) < 0)
		return;
	if (git_tree_lookup(&tb, r->git, GIT_OID(b)) < 0) {
		git_tree_free(ta);
		return;
	}
	for (size_t i = 0; i < git_tree_entrycount(ta); i++) {
		const git_tree_entry *ea = git_tree_entry_byindex(ta, i);
		const git_tree_entry *eb = git_tree_entry_byname(tb,
						git_tree_entry_name(ea));
		if (eb && git_tree_entry_type(ea) == GIT_OBJECT_TREE &&
		    git_tree_entry_type(eb) == GIT_OBJECT_TREE)
			read_differing(r, OID(git_tree_entry_id(ea)), OID(git_tree_entry_id(eb)));
	}
	git_tree_free(ta);
	git_tree_free(tb);
}

/*
 * cold: a fresh handle, every tree read from the pack (a new process);
 * daemon: the trees of the base and of a where they differ already read
 * (a daemon merging a peer's history into the branch it committed to)
 */
/* one syncfs(2) of the repository's file system: every object durable */
static void sync_once(void)
{
	int fd = open(repo_dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || syncfs(fd) < 0)
		die("syncfs");
	close(fd);
}

static void bench_merge(const struct oid *base, const struct oid *a, const struct oid *b,
			bool fsync_on, bool daemon, bool in_memory, bool sync)
{
	const char *sfx = fsync_on ? "_fsync" : daemon ? "_daemon" :
			  in_memory ? "_memory" : sync ? "_syncfs" : "";
	double *mt = xcalloc(n_runs, sizeof *mt), *mc = xcalloc(n_runs, sizeof *mc);
	struct loose before;
	size_t objects = 0;
	unsigned long long bytes = 0;
	struct oid tb, ta, tt, out1, out2, c1, c2;
	char key[64];

	loose_list(&before);
	for (unsigned i = 0; i < n_runs; i++) {
		struct repo *r;
		struct merge_stats st;
		double t0;

		open_warm(&r, a, b, fsync_on);
		if (in_memory && merge_objects_in_memory(r) < 0)
			die("mempack");
		repo_commit_tree(&tb, r, base);
		repo_commit_tree(&ta, r, a);
		repo_commit_tree(&tt, r, b);
		if (daemon)
			read_differing(r, &tb, &ta);
		t0 = now_ms();
		if (merge_trees(&out1, r, &tb, &ta, &tt, NULL, &st) < 0)
			die("merge_trees");
		if (sync)
			sync_once();
		mt[i] = now_ms() - t0;
		if (i == 0 && !fsync_on && !daemon)
			printf("merge_messages %zu\nmerge_trees_read %zu\n"
			       "merge_shards_skipped %zu\n", st.messages,
			       st.trees_read, st.shards_skipped);
		repo_free(r);
		loose_reset(&before, &objects, &bytes);

		open_warm(&r, a, b, fsync_on);
		if (in_memory && merge_objects_in_memory(r) < 0)
			die("mempack");
		if (daemon) {
			repo_commit_tree(&tb, r, base);
			repo_commit_tree(&ta, r, a);
			read_differing(r, &tb, &ta);
		}
		t0 = now_ms();
		if (merge_commits(&c1, r, a, b, 0, NULL, NULL) < 0)
			die("merge_commits");
		if (sync)
			sync_once();
		mc[i] = now_ms() - t0;
		/* commutative: the other way round gives the same commit */
		if (merge_commits(&c2, r, b, a, 0, NULL, NULL) < 0 ||
		    !oid_equal(&c1, &c2))
			die("merge_commits is not commutative");
		repo_commit_tree(&out2, r, &c1);
		if (!oid_equal(&out1, &out2))
			die("merge_trees and merge_commits disagree");
		repo_free(r);
		{
			size_t o;
			unsigned long long by;
			loose_reset(&before, &o, &by);
		}
	}
	snprintf(key, sizeof key, "merge_trees%s", sfx);
	report(key, mt, n_runs, objects, bytes);
	snprintf(key, sizeof key, "merge_commits%s", sfx);
	report(key, mc, n_runs, 0, 0);
	loose_release(&before);
	free(mt);
	free(mc);
}

static void bench_git(void)
{
	double *ms = xcalloc(n_runs, sizeof *ms);
	struct loose before;
	size_t objects = 0;
	unsigned long long bytes = 0;
	char *gitdir = xasprintf("--git-dir=%s", repo_dir);
	char *argv[] = { (char *)git_cmd, "-c", "safe.directory=*", gitdir,
			 "merge-tree", "--write-tree", "refs/heads/a",
			 "refs/heads/b", NULL };
	int status = 0;

	loose_list(&before);
	for (unsigned i = 0; i < n_runs; i++) {
		posix_spawn_file_actions_t fa;
		pid_t pid;
		double t0 = now_ms();

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		if (posix_spawnp(&pid, git_cmd, &fa, NULL, argv, environ) != 0) {
			fprintf(stderr, "merge-bench: cannot run %s\n", git_cmd);
			exit(2);
		}
		waitpid(pid, &status, 0);
		ms[i] = now_ms() - t0;
		posix_spawn_file_actions_destroy(&fa);
		loose_reset(&before, &objects, &bytes);
	}
	/* exit 1: conflicts, which git reports; the tree is written anyway */
	printf("git_merge_tree_exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	report("git_merge_tree", ms, n_runs, objects, bytes);
	loose_release(&before);
	free(ms);
	free(gitdir);
}

/* one flag change in the INBOX, committed as the daemon would */
static void bench_flag(bool fsync_on)
{
	double *ms = xcalloc(n_runs, sizeof *ms);
	size_t *objs = xcalloc(n_runs, sizeof *objs);
	unsigned long long *bytes = xcalloc(n_runs, sizeof *bytes), maxb = 0;
	struct loose before;
	const char *sfx = fsync_on ? "_fsync" : "";
	char key[64];

	loose_list(&before);
	for (unsigned i = 0; i < n_runs; i++) {
		struct repo *r;
		struct update_list ups = UPDATE_LIST_INIT;
		struct oid head, tree, nt, c;
		size_t k;
		double t0;

		do
			k = rn((unsigned)(n_inbox));
		while (msgs[k].gone || *msgs[k].folder);
		open_warm(&r, &flag_base, &flag_base, fsync_on);
		t0 = now_ms();
		if (repo_lock(r, 1000) < 0 || repo_ref_read(&head, r, REF_MAIL) < 0 ||
		    repo_commit_tree(&tree, r, &head) < 0)
			die("read head");
		rename_line(&ups, &msgs[k], "", "cur", "FS");
		if (repo_tree_update(&nt, r, &tree, ups.v, ups.n) < 0 ||
		    repo_commit(&c, r, &nt, &head, 1, "flags\n", -1, NULL, NULL) < 0 ||
		    repo_ref_cas(r, REF_MAIL, &c, &head, "bench") < 0)
			die("flag commit");
		ms[i] = now_ms() - t0;
		repo_unlock(r);
		/* back to the base for the next run */
		if (repo_ref_cas(r, REF_MAIL, &head, &c, "bench") < 0)
			die("reset ref");
		repo_free(r);
		update_list_release(&ups);
		loose_reset(&before, &objs[i], &bytes[i]);
		if (bytes[i] > maxb)
			maxb = bytes[i];
	}
	snprintf(key, sizeof key, "flag_commit%s", sfx);
	report(key, ms, n_runs, objs[0], bytes[0]);
	printf("%s_max_bytes %llu\n", key, maxb);
	loose_release(&before);
	free(ms);
	free(objs);
	free(bytes);
}

int main(int argc, char **argv)
{
	struct oid base, a, b, flagbase;
	int c;

	log_init("merge-bench", LOG_TO_STDERR, LOG_LVL_WARN);
	while ((c = getopt(argc, argv, "n:f:m:c:r:s:g:")) != -1) {
		switch (c) {
		case 'n': n_inbox = (unsigned)atoi(optarg); break;
		case 'f': n_folders = (unsigned)atoi(optarg); break;
		case 'm': n_per_folder = (unsigned)atoi(optarg); break;
		case 'c': n_changes = (unsigned)atoi(optarg); break;
		case 'r': n_runs = (unsigned)atoi(optarg); break;
		case 's': rng = strtoull(optarg, NULL, 0) | 1; break;
		case 'g': git_cmd = optarg; break;
		default:
			fprintf(stderr, "usage: merge-bench [-n inbox] [-f folders] "
				"[-m per-folder] [-c changes] [-r runs] [-s seed] "
				"[-g git] WORKDIR\n");
			return 64;
		}
	}
	if (optind + 1 != argc || n_runs < 1 || n_folders > 64 || n_inbox < 10) {
		fprintf(stderr, "merge-bench: bad arguments\n");
		return 64;
	}
	repo_dir = xasprintf("%s/repo.git", argv[optind]);
	build(&base, &a, &b, &flagbase);
	oid_cpy(&flag_base, &flagbase);
	bench_merge(&base, &a, &b, false, false, false, false);
	bench_git();
	bench_merge(&base, &a, &b, false, true, false, false);
	bench_merge(&base, &a, &b, true, false, false, false);
	bench_merge(&base, &a, &b, false, false, false, true);
	bench_merge(&base, &a, &b, false, false, true, false);
	bench_flag(true);
	bench_flag(false);
	git_libgit2_shutdown();
	return 0;
}
