/*
 * Unit tests for common/worktree.c: the Maildir <-> tree mapping.
 *
 * Each case changes a scratch Maildir (or refs/heads/mail, as a merge
 * would), runs worktree_commit() or worktree_apply() and compares three
 * listings: the files on disk, the tree of refs/heads/mail and the tree
 * of refs/maildag/worktree, each as sorted "<folder>/<sub>/<name>" lines.
 */
#include "autoconf.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../tap.h"
#include "fsutil.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "mtimes.h"
#include "repo_p.h"
#include "strbuf.h"
#include "worktree.h"
#include "xalloc.h"

static char *base, *maildir;
static struct repo *repo;
static struct worktree *wt;

#define K1 "1700000001.M1P1.host"
#define K2 "1700000002.M2P2.host"
#define K3 "1700000003.M3P3.host"
#define K4 "1700000004.M4P4.host"
#define K5 "1700000005.M5P5.host"

static void put(const char *rel, const char *content, time_t mtime)
{
	char *p = xasprintf("%s/%s", maildir, rel);
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	FILE *f;

	f = fopen(p, "w");
	if (!f)
		log_fatal("fopen '%s'", p);
	fputs(content, f);
	fclose(f);
	utimensat(AT_FDCWD, p, ts, 0);
	free(p);
}

static void mv(const char *from, const char *to)
{
	char *a = xasprintf("%s/%s", maildir, from);
	char *b = xasprintf("%s/%s", maildir, to);

	if (rename(a, b) < 0)
		log_fatal("rename '%s'", a);
	free(a);
	free(b);
}

/* Unlink every file of INBOX's sub/ whose name starts with key. */
static void unlink_key(const char *sub, const char *key)
{
	char *d = xasprintf("%s/%s", maildir, sub);
	DIR *dh = opendir(d);
	struct dirent *de;

	while (dh && (de = readdir(dh)))
		if (!strncmp(de->d_name, key, strlen(key))) {
			char *f = xasprintf("%s/%s", d, de->d_name);
			unlink(f);
			free(f);
		}
	if (dh)
		closedir(dh);
	free(d);
}

static void mkfolder(const char *f)
{
	char *p = xasprintf("%s/%s/cur", maildir, f);
	mkdir_p(p, 0700);
	free(p);
	p = xasprintf("%s/%s/new", maildir, f);
	mkdir_p(p, 0700);
	free(p);
	p = xasprintf("%s/%s/tmp", maildir, f);
	mkdir_p(p, 0700);
	free(p);
	p = xasprintf("%s/maildirfolder", f);
	put(p, "", time(NULL));
	free(p);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join_sorted(char **v, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	qsort(v, n, sizeof *v, cmp);
	for (size_t i = 0; i < n; i++) {
		strbuf_addf(&sb, "%s%s", i ? " " : "", v[i]);
		free(v[i]);
	}
	free(v);
	return strbuf_detach(&sb, NULL);
}

/* Files on disk: "<folder>/<sub>/<name>" ("" folder for INBOX). */
static char *disk_list(void)
{
	char **folders, **v = NULL;
	size_t nf, n = 0, alloc = 0;

	layout_list_folders(&folders, &nf, maildir);
	for (size_t i = 0; i < nf; i++)
		for (int s = 0; s < 2; s++) {
			const char *sub = s ? "new" : "cur";
			char *d = *folders[i] ? xasprintf("%s/%s/%s", maildir,
							  folders[i], sub)
					      : xasprintf("%s/%s", maildir, sub);
			DIR *dh = opendir(d);
			struct dirent *de;
			while (dh && (de = readdir(dh))) {
				if (de->d_name[0] == '.')
					continue;
				xgrow((void **)&v, &alloc, n + 1, sizeof *v);
				v[n++] = xasprintf("%s/%s/%s", folders[i], sub,
						   de->d_name);
			}
			if (dh)
				closedir(dh);
			free(d);
		}
	layout_list_free(folders, nf);
	return join_sorted(v, n);
}

struct walk {
	char **v;
	size_t n, alloc;
	bool all;
};

static int walk_cb(const char *root, const git_tree_entry *e, void *data)
{
	struct walk *w = data;
	struct strbuf p = STRBUF_INIT;
	char *folder = NULL, *slash;

	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		return 0;
	strbuf_addf(&p, "%s%s", root, git_tree_entry_name(e));
	if (!w->all) {
		/* "[.F/]cur/xx/name" -> "F/cur/name" */
		if (!strncmp(p.buf, "mtimes/", 7) || !strcmp(p.buf, "FORMAT") ||
		    strstr(p.buf, "maildirfolder") ||
		    !strcmp(p.buf, "subscriptions")) {
			strbuf_release(&p);
			return 0;
		}
		folder = p.buf[0] == '.' ? xstrndup(p.buf, strcspn(p.buf, "/"))
					 : xstrdup("");
		slash = p.buf + (*folder ? strlen(folder) + 1 : 0);
		xgrow((void **)&w->v, &w->alloc, w->n + 1, sizeof *w->v);
		w->v[w->n++] = xasprintf("%s/%.3s/%s", folder, slash,
					 strrchr(p.buf, '/') + 1);
		free(folder);
	} else {
		xgrow((void **)&w->v, &w->alloc, w->n + 1, sizeof *w->v);
		w->v[w->n++] = xstrdup(p.buf);
	}
	strbuf_release(&p);
	return 0;
}

static char *tree_list_of(const char *ref, bool all)
{
	struct walk w = { NULL, 0, 0, all };
	struct oid c, t;
	git_tree *tree;

	if (repo_ref_read(&c, repo, ref) < 0 || repo_commit_tree(&t, repo, &c) < 0 ||
	    git_tree_lookup(&tree, repo->git, GIT_OID(&t)) < 0)
		log_fatal("read '%s'", ref);
	git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, &w);
	git_tree_free(tree);
	return join_sorted(w.v, w.n);
}

static char *tree_list(const char *ref)
{
	return tree_list_of(ref, false);
}

/* The disk, mail and worktree all hold want. */
static void agree(const char *want, const char *what)
{
	char *d = disk_list(), *m = tree_list(REF_MAIL), *w = tree_list(REF_WORKTREE);

	is_str(d, want, "%s: disk", what);
	is_str(m, want, "%s: mail", what);
	is_str(w, want, "%s: worktree", what);
	free(d);
	free(m);
	free(w);
}

static int commit_count(void)
{
	git_revwalk *rw;
	struct oid id;
	int n = 0;

	git_revwalk_new(&rw, repo->git);
	git_revwalk_push_ref(rw, REF_MAIL);
	while (git_revwalk_next(GIT_OID(&id), rw) == 0)
		n++;
	git_revwalk_free(rw);
	return n;
}

static int sync_commit(struct worktree_result *res)
{
	int r;

	repo_lock(repo, 1000);
	r = worktree_commit(wt, res);
	repo_unlock(repo);
	return r;
}

static int sync_apply(size_t limit, struct worktree_result *res)
{
	int r;

	repo_lock(repo, 1000);
	r = worktree_apply(wt, limit, res);
	repo_unlock(repo);
	return r;
}

/* Make a commit on mail from its tree with ups (as a merge from a peer). */
static void mail_change(const struct repo_update *ups, size_t n)
{
	struct oid m, t, t2, c;

	if (repo_ref_read(&m, repo, REF_MAIL) < 0 || repo_commit_tree(&t, repo, &m) < 0 ||
	    repo_tree_update(&t2, repo, &t, ups, n) < 0 ||
	    repo_commit(&c, repo, &t2, &m, 1, "peer\n", -1, NULL, NULL) < 0 ||
	    repo_ref_cas(repo, REF_MAIL, &c, &m, "test") < 0)
		log_fatal("mail change");
}

static char *tpath(const char *folder, const char *sub, const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	char shard[3];

	maildir_shard_hex(shard, name, maildir_key_len(name));
	if (*folder)
		strbuf_addf(&sb, "%s/", folder);
	strbuf_addf(&sb, "%s/%s/%s", sub, shard, name);
	return strbuf_detach(&sb, NULL);
}

static long long file_mtime(const char *rel)
{
	char *p = xasprintf("%s/%s", maildir, rel);
	struct stat st;
	long long t = stat(p, &st) == 0 ? st.st_mtime : -1;

	free(p);
	return t;
}

static const struct {
	const char *name;
	int ignored;
} names[] = {
	{ "dovecot-uidlist", 1 }, { "dovecot.index.log", 1 },
	{ "dovecot-keywords", 1 }, { "courierimapuiddb", 1 },
	{ "maildirsize", 1 }, { "tmp", 1 }, { "subscriptions.lock", 1 },
	{ ".nfs0001", 1 }, { "subscriptions", 0 }, { "maildirfolder", 0 },
	{ "tmpfile", 0 }, { "cur", 0 }, { "new", 0 },
};

int main(void)
{
	struct worktree_result res;
	char tmpl[] = "/tmp/worktree-t.XXXXXX";
	char *repo_path, *s;
	struct oid blob, oid1, oid2;
	int n;

	log_init("worktree-t", LOG_TO_STDERR, LOG_LVL_WARN);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		is_int(worktree_ignored_name(names[i].name), names[i].ignored,
		       "ignored name '%s'", names[i].name);
	base = xstrdup(mkdtemp(tmpl));
	maildir = xasprintf("%s/Maildir", base);
	repo_path = xasprintf("%s/mail.git", base);
	mkfolder("");
	if (repo_open(&repo, repo_path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		log_fatal("repo");
	wt = worktree_new(repo, maildir, "test");

	/* 1. a new message, reported by name */
	put("new/" K1 ",S=5", "one\n", 1700000001);
	worktree_dirty_name(wt, "", "new", K1 ",S=5");
	ok(sync_commit(&res) == 0 && res.committed && res.counts.added == 1,
	   "a delivery is committed");
	agree("/new/" K1 ",S=5", "delivery");
	n = commit_count();

	/* 2. nothing changed: a full rescan writes nothing */
	worktree_dirty_all(wt);
	ok(sync_commit(&res) == 0 && !res.committed, "full rescan of a clean Maildir");
	is_int(commit_count(), n, "no empty commit");

	/* 3. new/ -> cur/ with flags: one move, the blob kept */
	mv("new/" K1 ",S=5", "cur/" K1 ",S=5:2,S");
	worktree_dirty_name(wt, "", "new", K1 ",S=5");
	worktree_dirty_name(wt, "", "cur", K1 ",S=5:2,S");
	ok(sync_commit(&res) == 0 && res.committed && res.counts.moved == 1 &&
	   res.counts.added == 0, "new/ to cur/ is a move");
	agree("/cur/" K1 ",S=5:2,S", "move to cur");
	{
		struct oid m, t;
		char *p = tpath("", "cur", K1 ",S=5:2,S");
		repo_ref_read(&m, repo, REF_MAIL);
		repo_commit_tree(&t, repo, &m);
		ok(repo_tree_lookup(&oid1, repo, &t, p) == 0, "at its shard path");
		git_odb_hash(GIT_OID(&oid2), "one\n", 4, GIT_OBJECT_BLOB);
		ok(oid_equal(&oid1, &oid2), "blob is the file's bytes");
		free(p);
	}
	is_int(commit_count(), n + 1, "one commit per batch");

	/* 4. a folder, then a move into it; an mtime that is not the key's */
	mkfolder(".Lists");
	worktree_dirty_root(wt);
	ok(sync_commit(&res) == 0 && res.counts.folders_added == 1,
	   "a new empty folder is committed");
	s = tree_list_of(REF_MAIL, true);
	ok(strstr(s, ".Lists/maildirfolder") != NULL, "marker in the tree");
	free(s);
	mv("cur/" K1 ",S=5:2,S", ".Lists/cur/" K1 ",S=5:2,FS");
	put(".Lists/cur/" K2 ":2,", "two\n", 1600000000);
	worktree_dirty_folder(wt, "");
	worktree_dirty_folder(wt, ".Lists");
	ok(sync_commit(&res) == 0 && res.counts.moved == 1 && res.counts.added == 1,
	   "move to another folder and an append, found by folder scans");
	agree(".Lists/cur/" K1 ",S=5:2,FS .Lists/cur/" K2 ":2,", "folder move");
	s = tree_list_of(REF_MAIL, true);
	ok(strstr(s, "mtimes/") != NULL, "an mtime record for the append");
	free(s);
	{
		struct oid m, t;
		struct mtimes mt = MTIMES_INIT;
		repo_ref_read(&m, repo, REF_MAIL);
		repo_commit_tree(&t, repo, &m);
		mtimes_read_shard(&mt, repo, &t, maildir_shard(K2, strlen(K2)));
		is_int(mtimes_get(&mt, K2), 1600000000, "the record holds the mtime");
		is_int(mtimes_get(&mt, K1), 1700000001, "no record: the key's time");
		mtimes_release(&mt);
	}

	/*
	 * 5. Dovecot's MOVE: a hard link in the destination, the source
	 * unlinked later; held back while the source may still go, so the
	 * two halves are one move however late the second comes
	 */
	{
		char *p = xasprintf("%s/.Lists/cur/" K2 ":2,", maildir);
		char *q = xasprintf("%s/cur/" K2 ":2,", maildir);
		if (link(p, q) < 0)
			log_fatal("link");
		worktree_dirty_name(wt, "", "cur", K2 ":2,");
		ok(sync_commit(&res) == 0 && !res.committed && res.deferred == 1,
		   "a hard link is held back (it may be half a move)");
		sleep(3);
		ok(sync_commit(&res) == 0 && !res.committed && res.deferred == 1,
		   "still held after a copy's two seconds");
		unlink(p);
		worktree_dirty_name(wt, ".Lists", "cur", K2 ":2,");
		ok(sync_commit(&res) == 0 && res.committed &&
		   res.counts.moved == 1 && !res.counts.expunged &&
		   !res.counts.added, "the source gone: one move");
		free(p);
		free(q);
	}
	/* a MOVE that gave a new name: renamed back, one move */
	mv("cur/" K2 ":2,", ".Lists/cur/1800000009.M9P9.vm,W=4:2,S");
	worktree_dirty_folder(wt, "");
	worktree_dirty_folder(wt, ".Lists");
	ok(sync_commit(&res) == 0 && res.counts.moved == 1 &&
	   !res.counts.expunged && !res.counts.added,
	   "a move under a new name is one move");
	agree(".Lists/cur/" K1 ",S=5:2,FS .Lists/cur/" K2 ":2,S",
	      "under its key again");
	mv(".Lists/cur/" K2 ":2,S", ".Lists/cur/" K2 ":2,");
	worktree_dirty_folder(wt, ".Lists");
	ok(sync_commit(&res) == 0 && res.counts.flagged == 1, "flags back");

	/* a copy that keeps the key (Dovecot's COPY) gets its own key */
	put("cur/" K2 ":2,", "two\n", 1600000000);
	worktree_dirty_name(wt, "", "cur", K2 ":2,");
	ok(sync_commit(&res) == 0 && !res.committed && res.deferred == 1,
	   "a fresh copy is held back (it may be half a move)");
	ok(worktree_deferred_due(wt) > 0, "and due again later");
	sleep(3);
	ok(worktree_is_dirty(wt), "due now");
	ok(sync_commit(&res) == 0 && res.committed && res.counts.added == 1,
	   "the settled copy is committed");
	s = disk_list();
	ok(strstr(s, "/cur/" K2 ".c") != NULL, "under a key of its own");
	free(s);
	s = disk_list();
	{
		char *m = tree_list(REF_MAIL);
		is_str(m, s, "disk and mail agree after the copy");
		free(m);
	}
	free(s);
	/* drop the copy again */
	unlink_key("cur", K2);
	worktree_dirty_folder(wt, "");
	ok(sync_commit(&res) == 0 && res.counts.expunged == 1, "expunge");
	agree(".Lists/cur/" K1 ",S=5:2,FS .Lists/cur/" K2 ":2,", "after expunge");

	/*
	 * a copy whose flags a client keeps changing: each rename moves its
	 * ctime, and counted from that it never settled (a copy held back
	 * for as long as a client stored flags; doc/stress-progress.md,
	 * item 16).  Counted from when the scan first saw it: it settles.
	 */
	{
		bool in = false;
		int tries = 0;

		/* another mtime: the inode may be the last copy's, freed */
		put("cur/" K2 ":2,", "two\n", 1600000100);
		for (; tries < 15 && !in; tries++) {
			bool flagged = tries % 2;
			mv(flagged ? "cur/" K2 ":2,S" : "cur/" K2 ":2,",
			   flagged ? "cur/" K2 ":2," : "cur/" K2 ":2,S");
			worktree_dirty_folder(wt, "");
			in = sync_commit(&res) == 0 && res.counts.added == 1;
			if (!in)
				usleep(400000);
		}
		ok(in && tries <= 10, "a copy renamed every 0.4 s settles "
		   "(after %d looks)", tries);
		unlink_key("cur", K2);
		worktree_dirty_folder(wt, "");
		ok(sync_commit(&res) == 0 && res.counts.expunged == 1,
		   "and goes again");
		agree(".Lists/cur/" K1 ",S=5:2,FS .Lists/cur/" K2 ":2,",
		      "after it");
	}

	/* 6. the applier: mail adds, reflags and expunges */
	{
		struct repo_update ups[5];
		struct strbuf mp = STRBUF_INIT;
		char *a = tpath("", "new", K3 ",S=6");
		char *b = tpath(".Lists", "cur", K1 ",S=5:2,FS");
		char *c = tpath(".Lists", "cur", K1 ",S=5:2,FRS");
		char *d = tpath(".Lists", "cur", K2 ":2,");
		repo_blob_from_buffer(&blob, repo, "three\n", 6);
		ups[0] = (struct repo_update){ a, &blob };
		ups[1] = (struct repo_update){ b, NULL };
		ups[2] = (struct repo_update){ c, &oid1 };
		ups[3] = (struct repo_update){ d, NULL };
		/* K2's mtime record goes with it */
		mtimes_path(&mp, K2, strlen(K2));
		ups[4] = (struct repo_update){ mp.buf, NULL };
		mail_change(ups, 5);
		strbuf_release(&mp);
		free(a);
		free(b);
		free(c);
		free(d);
	}
	n = commit_count();
	ok(sync_apply(0, &res) == 0 && res.counts.added == 1 &&
	   res.counts.flagged == 1 && res.counts.expunged == 1 && !res.skipped,
	   "apply: one of each");
	agree(".Lists/cur/" K1 ",S=5:2,FRS /new/" K3 ",S=6", "applied");
	is_int(file_mtime("new/" K3 ",S=6"), 1700000003, "new file's mtime is its key's");
	worktree_dirty_all(wt);
	ok(sync_commit(&res) == 0 && !res.committed, "nothing to commit after an apply");
	is_int(commit_count(), n, "the apply made no commit on mail");

	/* 7. the race: the client renames while mail renames the same message */
	{
		struct repo_update ups[2];
		char *a = tpath(".Lists", "cur", K1 ",S=5:2,FRS");
		char *b = tpath(".Lists", "cur", K1 ",S=5:2,FRST");
		ups[0] = (struct repo_update){ a, NULL };
		ups[1] = (struct repo_update){ b, &oid1 };
		mail_change(ups, 2);
		free(a);
		free(b);
	}
	mv(".Lists/cur/" K1 ",S=5:2,FRS", ".Lists/cur/" K1 ",S=5:2,RS");
	ok(sync_apply(0, &res) == 0 && res.skipped == 1, "apply leaves the client's file");
	s = disk_list();
	is_str(s, ".Lists/cur/" K1 ",S=5:2,RS /new/" K3 ",S=6", "client's name stays");
	free(s);
	ok(worktree_is_dirty(wt), "and is looked at next");
	ok(sync_commit(&res) == 0 && res.committed, "the client's change is committed");
	s = tree_list(REF_MAIL);
	is_str(s, ".Lists/cur/" K1 ",S=5:2,RST /new/" K3 ",S=6",
	       "merged: F removed by the client, T added by mail");
	free(s);
	ok(sync_apply(0, &res) == 0 && !res.skipped, "then applied");
	agree(".Lists/cur/" K1 ",S=5:2,RST /new/" K3 ",S=6", "race resolved");

	/* 8. an apply cut short (as by a crash) is finished, not undone */
	{
		struct repo_update ups[3];
		struct oid b4;
		char *a = tpath("", "new", K4);
		char *b = tpath("", "new", K3 ",S=6");
		char *c = tpath("", "cur", K3 ",S=6:2,S");
		repo_blob_from_buffer(&b4, repo, "four\n", 5);
		git_odb_hash(GIT_OID(&oid2), "three\n", 6, GIT_OBJECT_BLOB);
		ups[0] = (struct repo_update){ a, &b4 };
		ups[1] = (struct repo_update){ b, NULL };
		ups[2] = (struct repo_update){ c, &oid2 };
		mail_change(ups, 3);
		free(a);
		free(b);
		free(c);
	}
	n = commit_count();
	ok(sync_apply(1, &res) == 0 && res.more, "apply one change of two");
	worktree_dirty_all(wt);
	ok(sync_commit(&res) == 0 && !res.committed,
	   "a half-applied mail is not committed again");
	ok(sync_apply(0, &res) == 0 && !res.more, "the rest");
	agree(".Lists/cur/" K1 ",S=5:2,RST /cur/" K3 ",S=6:2,S /new/" K4,
	      "finished");
	is_int(commit_count(), n, "no commit from the interrupted apply");

	/* 9. folders: deleted in mail, deleted locally */
	mkfolder(".Trash");
	worktree_dirty_root(wt);
	sync_commit(&res);
	{
		struct repo_update ups[1] = { { ".Trash/maildirfolder", NULL } };
		mail_change(ups, 1);
	}
	ok(sync_apply(0, &res) == 0 && res.counts.folders_removed == 1,
	   "a folder deleted in mail");
	{
		char *p = xasprintf("%s/.Trash", maildir);
		ok(!path_exists(p), "is gone from disk");
		free(p);
	}
	{
		char *p = xasprintf("%s/.Lists", maildir);
		rm_rf(p);
		free(p);
	}
	worktree_dirty_root(wt);
	ok(sync_commit(&res) == 0 && res.counts.folders_removed == 1 &&
	   res.counts.expunged == 1, "a folder deleted on disk");
	agree("/cur/" K3 ",S=6:2,S /new/" K4, "folder deleted");

	/* 10. no worktree ref: everything on disk is new, nothing deleted */
	git_reference_remove(repo->git, REF_WORKTREE);
	worktree_dirty_all(wt);
	n = commit_count();
	ok(sync_commit(&res) == 0 && !res.committed, "lost worktree ref");
	is_int(commit_count(), n, "mail unchanged");
	agree("/cur/" K3 ",S=6:2,S /new/" K4, "rebuilt");

	/* 11. subscriptions and ignored files */
	put("subscriptions", "V\t2\n\nLists\n", time(NULL));
	put("dovecot-uidlist", "3 V1 N1\n", time(NULL));
	worktree_dirty_all(wt);
	ok(sync_commit(&res) == 0 && res.counts.other == 1 && res.counts.added == 0,
	   "subscriptions committed, Dovecot's files not");
	s = tree_list_of(REF_MAIL, true);
	ok(strstr(s, "subscriptions") && !strstr(s, "dovecot-uidlist"),
	   "subscriptions in the tree");
	free(s);

	/* 12. a client that rewrites a file in place: new bytes, same name */
	put("new/" K4, "four, edited\n", 1700000100);
	worktree_dirty_name(wt, "", "new", K4);
	ok(sync_commit(&res) == 0 && res.committed && res.counts.flagged == 1,
	   "a rewrite in place is committed");
	{
		struct oid m, t;
		char *p = tpath("", "new", K4);
		repo_ref_read(&m, repo, REF_MAIL);
		repo_commit_tree(&t, repo, &m);
		repo_tree_lookup(&oid1, repo, &t, p);
		git_odb_hash(GIT_OID(&oid2), "four, edited\n", 13, GIT_OBJECT_BLOB);
		ok(oid_equal(&oid1, &oid2), "with the new bytes");
		free(p);
	}
	agree("/cur/" K3 ",S=6:2,S /new/" K4, "rewrite");

	/* 13. mail gives a message another mtime (INTERNALDATE) alone */
	{
		struct oid m, t, b;
		struct mtimes mt = MTIMES_INIT;
		struct strbuf rec = STRBUF_INIT, path = STRBUF_INIT;
		unsigned shard = maildir_shard(K3, strlen(K3));
		struct repo_update ups[1];
		repo_ref_read(&m, repo, REF_MAIL);
		repo_commit_tree(&t, repo, &m);
		mtimes_read_shard(&mt, repo, &t, shard);
		mtimes_set(&mt, K3, 1500000000);
		mtimes_format(&rec, &mt);
		repo_blob_from_buffer(&b, repo, rec.buf, rec.len);
		mtimes_shard_path(&path, shard);
		ups[0] = (struct repo_update){ path.buf, &b };
		mail_change(ups, 1);
		mtimes_release(&mt);
		strbuf_release(&rec);
		strbuf_release(&path);
	}
	ok(sync_apply(0, &res) == 0 && res.counts.mtimes == 1 && !res.skipped,
	   "an mtime change from mail is applied");
	is_int(file_mtime("cur/" K3 ",S=6:2,S"), 1500000000, "the file has it");
	worktree_dirty_all(wt);
	ok(sync_commit(&res) == 0 && !res.committed, "and it is not committed back");
	agree("/cur/" K3 ",S=6:2,S /new/" K4, "mtime");

	/* 14. a Maildir that is not there (moved, unmounted) is not emptied */
	{
		char *away = xasprintf("%s/away", base);
		n = commit_count();
		rename(maildir, away);
		mkdir(maildir, 0700);
		worktree_dirty_all(wt);
		ok(sync_commit(&res) == E_TEMP, "a missing Maildir is an error");
		is_int(commit_count(), n, "and nothing is committed");
		rmdir(maildir);
		rename(away, maildir);
		ok(sync_commit(&res) == 0 && !res.committed, "back again: all there");
		agree("/cur/" K3 ",S=6:2,S /new/" K4, "Maildir back");
		free(away);
	}

	/* 15. mail gives a key another name and other bytes: written anew */
	{
		struct repo_update ups[2];
		char *from = tpath("", "new", K4);
		char *to = tpath("", "cur", K4 ":2,F");
		char *p = xasprintf("%s/cur/" K4 ":2,F", maildir);
		char buf[64] = "";
		FILE *f;
		repo_blob_from_buffer(&blob, repo, "four, other bytes\n", 18);
		ups[0] = (struct repo_update){ from, NULL };
		ups[1] = (struct repo_update){ to, &blob };
		mail_change(ups, 2);
		ok(sync_apply(0, &res) == 0 && !res.skipped,
		   "a key with a new name and new bytes is applied");
		f = fopen(p, "r");
		if (f) {
			if (!fgets(buf, sizeof buf, f))
				buf[0] = '\0';
			fclose(f);
		}
		is_str(buf, "four, other bytes\n", "the file holds the new bytes");
		agree("/cur/" K3 ",S=6:2,S /cur/" K4 ":2,F", "new bytes, new name");
		free(from);
		free(to);
		free(p);
	}

	/*
	 * 16. three new files of one key (Dovecot's COPY keeps the name: a
	 * message copied twice before a commit): two get keys of their
	 * own.  The third was compared with the second's new key, kept the
	 * first's, and the commit named one key twice (a peer refused it).
	 */
	mkfolder(".Three");
	mkfolder(".Four");
	put("cur/" K5 ":2,S", "five\n", 1600000000);
	put(".Three/cur/" K5 ":2,", "five\n", 1600000000);
	put(".Four/cur/" K5 ":2,F", "five\n", 1600000000);
	worktree_dirty_all(wt);
	sleep(3);	/* copies are held back until they settle */
	ok(sync_commit(&res) == 0 && res.committed && res.counts.added == 3,
	   "three files of one key: three messages");
	s = disk_list();
	{
		char *m = tree_list(REF_MAIL);
		size_t same = 0;
		is_str(m, s, "disk and mail agree after two copies");
		for (const char *p = m; (p = strstr(p, "/" K5 ":")); p++)
			same++;
		is_int((int)same, 1, "one of them keeps the key, once");
		for (const char *p = m; (p = strstr(p, "/" K5 ".c")); p++)
			same++;
		is_int((int)same, 3, "the two others have keys of their own");
		free(m);
	}
	free(s);

	worktree_free(wt);
	repo_free(repo);
	if (getenv("WORKTREE_T_KEEP"))
		diag("kept %s", base);
	else
		rm_rf(base);
	free(base);
	free(maildir);
	free(repo_path);
	return tap_done();
}
