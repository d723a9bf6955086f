/*
 * Unit tests for common/worktree_dovecot.c: format 2's worktree against
 * Dovecot's files (doc/imap-identity.md 4.1, doc/imap-progress.md item
 * 4).  A scratch Maildir is made format 2 by upgrade_repo() (as `maildag
 * init --format 2` does); each case changes the disk (as a mail client
 * or Dovecot would) or refs/heads/mail (as a merge would), commits or
 * applies, and looks at the three places that must agree: the files on
 * disk (names with this replica's keyword letters), the tree (names
 * without them, imap/<xx> records, imapfolder) and dovecot-uidlist /
 * dovecot-keywords.  Every tree of mail must pass the format 2 check.
 */
#include "autoconf.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../tap.h"
#include "dovecot.h"
#include "format.h"
#include "fsutil.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "upgrade.h"
#include "worktree.h"
#include "xalloc.h"

static char *maildir;
static struct repo *repo;
static struct worktree *wt;

#define KEY1 "1700000001.M1P1.host"
#define K1 KEY1 ",S=4"
#define KEY2 "1700000002.M2P2.host"
#define K2 KEY2 ",S=4"
#define KEY3 "1700000003.M3P3.host"
#define K3 KEY3 ",S=4"
#define KEY4 "1700000004.M4P4.host"
#define K4 KEY4 ",S=4"
#define KEY5 "1700000005.M5P5.host"
#define K5 KEY5 ",S=4"
#define KEY6 "1700000006.M6P6.host"
#define K6 KEY6 ",S=4"
#define KEY7 "1700000007.M7P7.host"
#define K7 KEY7 ",S=4"
#define KEY8 "1700000008.M8P8.host"
#define K8 KEY8 ",S=4"
#define KEY9 "1700000009.M9P9.host"
#define K9 KEY9 ",S=4"
#define KEYA "1700000010.MaPa.host"
#define KA KEYA ",S=4"
#define KEYB "1700000011.MbPb.host"
#define KB KEYB ",S=4"
#define KEYC "1700000012.McPc.host"
#define KC KEYC ",S=4"
#define KEYR1 "1700000021.MrPr.host"
#define KR1 KEYR1 ",S=9"
#define KEYS1 "1700000031.MsPs.host"
#define KS1 KEYS1 ",S=4"
#define KEYS2 "1700000032.MtPt.host"
#define KS2 KEYS2 ",S=5"
#define KEYS3 "1700000033.MuPu.host"
#define KS3 KEYS3 ",S=4"
#define KEYS4 "1700000034.MvPv.host"
#define KS4 KEYS4 ",S=4"
#define KEYG1 "1700000041.MxPx.host"
#define KEYG2 "1700000042.MyPy.host"
#define KEYN1 "1700000051.MzPz.host"
#define KEYH1 "1700000061.MhPh.host"
#define KEYW1 "1700000071.MwPw.host"
#define KEYNW "1700000081.MnPn.host"
#define KEYCP "1700000091.MkPk.host"
#define KEYO1 "1700000101.MoPo.host"
#define KEYO2 "1700000102.MqPq.host"
#define KEYD1 "1700000111.MdPd.host"
#define KEYD2 "1700000112.MePe.host"
#define KEYP1 "1700000121.MgPg.host"
#define KEYM1 "1700000131.MiPi.host"
#define KEYM2 "1700000132.MjPj.host"
#define KEYM3 "1700000133.MlPl.host"

static void put(const char *rel, const char *content)
{
	char *p = xasprintf("%s/%s", maildir, rel);
	FILE *f = fopen(p, "w");

	if (!f)
		log_fatal("fopen '%s'", p);
	fputs(content, f);
	fclose(f);
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

static void unlink_rel(const char *rel)
{
	char *p = xasprintf("%s/%s", maildir, rel);

	if (unlink(p) < 0)
		log_fatal("unlink %s", p);
	free(p);
}

static bool there(const char *rel)
{
	char *p = xasprintf("%s/%s", maildir, rel);
	bool yes = path_exists(p);

	free(p);
	return yes;
}

static char *slurp(const char *rel)
{
	char *p = xasprintf("%s/%s", maildir, rel);
	struct strbuf b = STRBUF_INIT;
	char buf[4096];
	size_t n;
	FILE *f = fopen(p, "r");

	while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
		strbuf_add(&b, buf, n);
	if (f)
		fclose(f);
	free(p);
	return strbuf_detach(&b, NULL);
}

static int sync_commit(struct worktree_result *res)
{
	int r;

	repo_lock(repo, 1000);
	r = worktree_commit(wt, res);
	repo_unlock(repo);
	return r;
}

static int sync_apply(struct worktree_result *res)
{
	int r;

	repo_lock(repo, 1000);
	r = worktree_apply(wt, 0, res);
	repo_unlock(repo);
	return r;
}

static int sync_apply_limit(size_t limit, struct worktree_result *res)
{
	int r;

	repo_lock(repo, 1000);
	r = worktree_apply(wt, limit, res);
	repo_unlock(repo);
	return r;
}

static void ref_tree(struct oid *t, const char *ref)
{
	struct oid c;

	if (repo_ref_read(&c, repo, ref) < 0 || repo_commit_tree(t, repo, &c) < 0)
		log_fatal("read '%s'", ref);
}

/* The blob at path in mail's tree, "" when absent. */
static char *mail_blob(const char *path)
{
	struct strbuf b = STRBUF_INIT;
	struct oid t, id;

	ref_tree(&t, REF_MAIL);
	if (repo_tree_lookup(&id, repo, &t, path) == 0)
		repo_blob_read(&b, repo, &id);
	return strbuf_detach(&b, NULL);
}

/* The record line of key in mail's tree, "" when none. */
static char *record(const char *key)
{
	struct strbuf p = STRBUF_INIT;
	char *blob, *line, *end, *out;
	size_t kl = strlen(key);

	imap_recs_path(&p, key, strlen(key));
	blob = mail_blob(p.buf);
	strbuf_release(&p);
	for (line = blob; *line; line = end + 1) {
		end = strchr(line, '\n');
		if (!end)
			break;
		if (!strncmp(line, key, kl) && line[kl] == '\t') {
			out = xstrndup(line + kl + 1, (size_t)(end - line - kl - 1));
			free(blob);
			return out;
		}
	}
	free(blob);
	return xstrdup("");
}

static bool mail_valid(void)
{
	struct strbuf err = STRBUF_INIT;
	struct oid t;
	int r;

	ref_tree(&t, REF_MAIL);
	r = format_check_tree(repo, &t, NULL, &err);
	if (r < 0)
		diag("mail's tree: %s", err.buf);
	strbuf_release(&err);
	return r == 0;
}

static bool refs_agree(void)
{
	struct oid m, w;

	ref_tree(&m, REF_MAIL);
	ref_tree(&w, REF_WORKTREE);
	return oid_equal(&m, &w);
}

/* Set paths of mail's tree to the given blobs (NULL: remove), as a merge. */
static void mail_change(const char *const *paths, const char *const *blobs,
			size_t n)
{
	struct repo_update *ups = xcalloc(n, sizeof *ups);
	struct oid *ids = xcalloc(n, sizeof *ids);
	struct oid m, t, t2, c;

	for (size_t i = 0; i < n; i++) {
		ups[i].path = paths[i];
		if (blobs[i]) {
			repo_blob_from_buffer(&ids[i], repo, blobs[i],
					      strlen(blobs[i]));
			ups[i].blob = &ids[i];
		}
	}
	if (repo_ref_read(&m, repo, REF_MAIL) < 0 ||
	    repo_commit_tree(&t, repo, &m) < 0 ||
	    repo_tree_update(&t2, repo, &t, ups, n) < 0 ||
	    repo_commit(&c, repo, &t2, &m, 1, "peer\n", -1, NULL, NULL) < 0 ||
	    repo_ref_cas(repo, REF_MAIL, &c, &m, "test") < 0)
		log_fatal("mail change");
	free(ups);
	free(ids);
}

/* Shard path of a message or of a key's records. */
static char *mpath(const char *sub, const char *name)
{
	char xx[3];

	maildir_shard_hex(xx, name, maildir_key_len(name));
	return xasprintf("%s/%s/%s", sub, xx, name);
}

static char *rpath(const char *key)
{
	struct strbuf p = STRBUF_INIT;

	imap_recs_path(&p, key, strlen(key));
	return strbuf_detach(&p, NULL);
}

/* mail's records of key's shard, with key's line set to line (NULL: gone). */
static char *shard_with(const char *key, const char *line)
{
	char *p = rpath(key), *blob = mail_blob(p), *l, *end;
	struct strbuf out = STRBUF_INIT;
	size_t kl = strlen(key);
	bool done = false;

	for (l = blob; *l; l = end + 1) {
		end = strchr(l, '\n');
		int c = strncmp(l, key, kl);
		if (!c && l[kl] != '\t')
			c = (unsigned char)l[kl] < '\t' ? -1 : 1;
		if (c > 0 && !done && line) {
			strbuf_addf(&out, "%s\t%s\n", key, line);
			done = true;
		}
		if (c)
			strbuf_add(&out, l, (size_t)(end - l + 1));
		else if (line) {
			strbuf_addf(&out, "%s\t%s\n", key, line);
			done = true;
		}
	}
	if (!done && line)
		strbuf_addf(&out, "%s\t%s\n", key, line);
	free(p);
	free(blob);
	return strbuf_detach(&out, NULL);
}

/* A peer's merge result: message key in cur/ at UID uid (0 "-"), kws. */
static void peer_adds(const char *key, const char *flags, const char *rec,
		      unsigned uidnext)
{
	char *name = xasprintf("%s,S=4:2,%s", key, flags);
	char *mp = mpath("cur", name), *rp = rpath(key);
	char *shard = shard_with(key, rec);
	const char *paths[3] = { mp, rp, "imapfolder" };
	const char *blobs[3] = { "body\n", shard, NULL };
	struct strbuf f = STRBUF_INIT;
	char *old = mail_blob("imapfolder");

	/* keep uidvalidity, set uidnext */
	strbuf_add(&f, old, strcspn(old, "\n") + 1);
	strbuf_addf(&f, "uidnext %u\n", uidnext);
	blobs[2] = f.buf;
	mail_change(paths, blobs, uidnext ? 3 : 2);
	strbuf_release(&f);
	free(old);
	free(name);
	free(mp);
	free(rp);
	free(shard);
}

/* Change key's record alone in mail (a peer's keyword or UID change). */
static void peer_record(const char *key, const char *rec, unsigned uidnext)
{
	char *rp = rpath(key), *shard = shard_with(key, rec);
	char *old = mail_blob("imapfolder");
	struct strbuf f = STRBUF_INIT;
	const char *paths[2] = { rp, "imapfolder" };
	const char *blobs[2] = { shard, NULL };

	strbuf_add(&f, old, strcspn(old, "\n") + 1);
	strbuf_addf(&f, "uidnext %u\n", uidnext);
	blobs[1] = f.buf;
	mail_change(paths, blobs, uidnext ? 2 : 1);
	strbuf_release(&f);
	free(old);
	free(rp);
	free(shard);
}

static bool uidlist_has(uint32_t uid, const char *base)
{
	struct uidlist u = UIDLIST_INIT;
	const struct uidlist_rec *r;
	bool yes;

	if (uidlist_read(&u, maildir) < 0)
		return false;
	r = uidlist_find(&u, base);
	yes = r && r->uid == uid;
	uidlist_release(&u);
	return yes;
}

static uint32_t uidlist_next_uid(void)
{
	struct uidlist u = UIDLIST_INIT;
	uint32_t n = 0;

	if (uidlist_read(&u, maildir) == 0)
		n = uidlist_next(&u);
	uidlist_release(&u);
	return n;
}

/* mail's commit passes the check against prev, its parent (the ancestor
 * rule: a UID below the parent's uidnext must be the parent's own) */
static bool valid_since(const struct oid *prev)
{
	struct strbuf err = STRBUF_INIT;
	struct oid m;
	int r;

	if (repo_ref_read(&m, repo, REF_MAIL) < 0)
		return false;
	r = format_check_commit(repo, &m, prev, &err);
	if (r < 0)
		diag("mail against its parent: %s", err.buf);
	strbuf_release(&err);
	return r == 0;
}

/* A watcher's event read during a commit: the disk changed meanwhile. */
static void disk_moved_on(void *data)
{
	(void)data;
	worktree_dirty_name(wt, "", "new", "1700000099.MqPq.host,S=4");
}

/* Make folder f (".F") on disk: cur/ new/ tmp/ and its marker. */
static void make_folder(const char *f)
{
	for (int i = 0; i < 3; i++) {
		char *d = xasprintf("%s/%s/%s", maildir, f,
				    i == 0 ? "cur" : i == 1 ? "new" : "tmp");
		mkdir_p(d, 0700);
		free(d);
	}
	{
		char *m = xasprintf("%s/maildirfolder", f);
		put(m, "");
		free(m);
	}
}

/*
 * What a Dovecot session opening folder f first does: under the uidlist
 * lock, a uidlist of its own when there is none.  True when it wrote one.
 */
static bool dovecot_session_writes(const char *f)
{
	char *lock = xasprintf("%s/%s/dovecot-uidlist.lock", maildir, f);
	char *ul = xasprintf("%s/dovecot-uidlist", f);
	int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0644);
	bool wrote = false;

	if (fd >= 0) {
		close(fd);
		if (!there(ul)) {
			put(ul, "3 V999 N1\n");
			wrote = true;
		}
		unlink(lock);
	}
	free(lock);
	free(ul);
	return wrote;
}

/* Dovecot's own append of a record (a save it numbered). */
static void dovecot_appends(uint32_t uid, const char *base)
{
	char *p = xasprintf("%s/dovecot-uidlist", maildir);
	FILE *f = fopen(p, "a");

	fprintf(f, "%u :%s\n", uid, base);
	fclose(f);
	free(p);
}

int main(void)
{
	struct worktree_result res;
	struct upgrade_stats st;
	char tmpl[] = "/tmp/worktree-imap-t.XXXXXX";
	char *base, *repo_path, *s;
	struct oid c;

	log_init("worktree-imap-t", LOG_TO_STDERR, LOG_LVL_WARN);
	base = xstrdup(mkdtemp(tmpl));
	maildir = xasprintf("%s/Maildir", base);
	repo_path = xasprintf("%s/mail.git", base);
	for (int i = 0; i < 3; i++) {
		char *d = xasprintf("%s/%s", maildir,
				    i == 0 ? "cur" : i == 1 ? "new" : "tmp");
		mkdir_p(d, 0700);
		free(d);
	}
	put("cur/" K1 ":2,Sa", "one\n");
	put("dovecot-keywords", "0 $Forwarded\n");
	if (repo_open(&repo, repo_path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		log_fatal("repo");
	wt = worktree_new(repo, maildir, "test");
	worktree_dirty_all(wt);
	ok(sync_commit(&res) == 0 && res.committed, "format 1 import");
	repo_lock(repo, 1000);
	ok(upgrade_repo(&c, repo, maildir, "test", "upgrade\n", false, &st) == 0,
	   "made format 2");
	repo_unlock(repo);
	is_int(format_repo_version(), FORMAT_VERSION_IMAP, "format 2 taken");
	s = record(KEY1);
	is_str(s, "1\t$Forwarded", "K1: UID 1 and its keyword by name");
	free(s);

	/* 1. a file no one numbered (mutt): a UID of our slot, appended */
	put("new/" K2, "two\n");
	worktree_dirty_name(wt, "", "new", K2);
	ok(sync_commit(&res) == 0 && res.committed && res.counts.added == 1,
	   "a client's new file is committed");
	s = record(KEY2);
	is_str(s, "2", "it has the next UID of slot 0");
	free(s);
	ok(uidlist_has(2, K2), "and its uidlist record, before the lock went");
	s = mail_blob("imapfolder");
	ok(strstr(s, "\nuidnext 3\n") != NULL, "uidnext follows (%s)", s);
	free(s);
	ok(mail_valid() && refs_agree(), "mail is a valid format 2 tree");

	/* 2. keywords changed on disk: names in the tree, no letters */
	put("dovecot-keywords", "0 $Forwarded\n1 work-project\n");
	mv("cur/" K1 ":2,Sa", "cur/" K1 ":2,Sab");
	worktree_dirty_name(wt, "", "cur", K1 ":2,Sa");
	worktree_dirty_name(wt, "", "cur", K1 ":2,Sab");
	ok(sync_commit(&res) == 0 && res.committed && res.counts.flagged == 1 &&
	   res.counts.added == 0 && res.counts.expunged == 0,
	   "a keyword set on disk is a flag change");
	s = record(KEY1);
	is_str(s, "1\t$Forwarded work-project", "by name, same UID");
	free(s);
	{
		char *p = mpath("cur", K1 ":2,S"), *b = mail_blob(p);
		is_str(b, "one\n", "the tree's name has no letters");
		free(p);
		free(b);
	}
	worktree_dirty_all(wt);
	ok(sync_commit(&res) == 0 && !res.committed,
	   "a full rescan of the same disk commits nothing");
	ok(mail_valid() && refs_agree(), "valid");

	/* 3. a file Dovecot numbered keeps Dovecot's UID */
	put("cur/" K3 ":2,", "three\n");
	dovecot_appends(7, K3);
	worktree_dirty_name(wt, "", "cur", K3 ":2,");
	ok(sync_commit(&res) == 0 && res.committed, "Dovecot's save committed");
	s = record(KEY3);
	is_str(s, "7", "with Dovecot's UID");
	free(s);
	ok(mail_valid() && refs_agree(), "valid");

	/* 4. a peer's message: letters given here, uidlist line first */
	peer_adds(KEY4, "S", "513\t$Junk NonJunk", 514);
	ok(sync_apply(&res) == 0 && res.counts.added == 1 && !res.skipped,
	   "a peer's message is applied");
	ok(there("cur/" K4 ":2,Scd"), "with this replica's letters");
	s = slurp("dovecot-keywords");
	is_str(s, "0 $Forwarded\n1 work-project\n2 $Junk\n3 NonJunk\n",
	       "new names took the free letters");
	free(s);
	ok(uidlist_has(513, K4), "the peer's UID is in the uidlist");
	ok(refs_agree(), "the worktree is mail");

	/* 4b. a peer's mtime change reaches the file under its letters */
	{
		char xx[3], *mp, *old, *l, *end;
		struct strbuf nb = STRBUF_INIT;
		const char *paths[1];
		const char *blobs[1];
		bool put_it = false;
		struct stat sb;
		char *fp = xasprintf("%s/cur/" K4 ":2,Scd", maildir);

		maildir_shard_hex(xx, KEY4, strlen(KEY4));
		mp = xasprintf("mtimes/%s", xx);
		old = mail_blob(mp);
		for (l = old; *l; l = end + 1) {
			end = strchr(l, '\n');
			if (!put_it && strncmp(l, KEY4 " ", strlen(KEY4) + 1) >= 0) {
				strbuf_addstr(&nb, KEY4 " 1600000000\n");
				put_it = true;
			}
			if (strncmp(l, KEY4 " ", strlen(KEY4) + 1))
				strbuf_add(&nb, l, (size_t)(end - l + 1));
		}
		if (!put_it)
			strbuf_addstr(&nb, KEY4 " 1600000000\n");
		paths[0] = mp;
		blobs[0] = nb.buf;
		mail_change(paths, blobs, 1);
		ok(sync_apply(&res) == 0 && res.counts.mtimes == 1,
		   "a peer's mtime change is applied");
		ok(stat(fp, &sb) == 0 && sb.st_mtime == 1600000000,
		   "to the file with this replica's letters");
		strbuf_release(&nb);
		free(old);
		free(mp);
		free(fp);
	}

	/* 5. a peer's keyword change alone renames the file (its uidlist
	 * read in part: the record mail and the worktree give, the last) */
	{
		char *ul0 = slurp("dovecot-uidlist"), *ul1;
		peer_record(KEY1, "1\t$Forwarded", 0);
		ok(sync_apply(&res) == 0 && res.counts.flagged == 1 &&
		   !res.skipped, "a keyword removed by a peer is applied");
		ok(there("cur/" K1 ":2,Sa") && !there("cur/" K1 ":2,Sab"),
		   "as a rename dropping the letter");
		ok(uidlist_has(1, K1), "UID unchanged");
		ul1 = slurp("dovecot-uidlist");
		ok(*ul0 && !strcmp(ul0, ul1), "the uidlist as it was");
		free(ul0);
		free(ul1);
	}

	/* 6. a peer renumbered a message: the uidlist record moves */
	peer_record(KEY2, "1025", 1026);
	ok(sync_apply(&res) == 0 && !res.skipped, "a new UID is applied");
	ok(uidlist_has(1025, K2), "the record moved to the new UID");
	ok(there("new/" K2), "the file stays");
	is_int(uidlist_next_uid(), 1026, "Dovecot's next UID is uidnext");
	ok(refs_agree(), "the worktree is mail");

	/* 7. unnumbered: numbered here, from slot 0, and committed */
	peer_adds(KEY5, "S", "-\tNonJunk", 0);
	ok(mail_valid(), "a tree with an unnumbered record is valid");
	ok(sync_apply(&res) == 0 && res.counts.added == 1 && !res.skipped,
	   "an unnumbered message is applied");
	s = record(KEY5);
	is_str(s, "4097\tNonJunk", "numbered in slot 0's next block above "
	       "uidnext 1026 (block 8)");
	free(s);
	ok(uidlist_has(4097, K5), "its uidlist line has that UID");
	ok(there("cur/" K5 ":2,Sd"), "its file has its letter");
	s = mail_blob("imapfolder");
	ok(strstr(s, "\nuidnext 4098\n") != NULL, "uidnext above it (%s)", s);
	free(s);
	ok(mail_valid() && refs_agree(), "valid; the worktree is mail");

	/* 7b. all 26 letters taken, most by names no file uses: dropped */
	{
		struct strbuf kw = STRBUF_INIT;
		strbuf_addstr(&kw, "0 $Forwarded\n1 work-project\n2 $Junk\n"
			      "3 NonJunk\n");
		for (int i = 4; i < 26; i++)
			strbuf_addf(&kw, "%d old%d\n", i, i);
		put("dovecot-keywords", kw.buf);
		strbuf_release(&kw);
	}
	peer_adds(KEY8, "", "4098\tbrand-new", 4099);
	ok(sync_apply(&res) == 0 && res.counts.added == 1 && !res.skipped,
	   "a new name when all 26 letters are taken");
	ok(there("cur/" K8 ":2,b"), "gets the lowest letter no file uses");
	s = slurp("dovecot-keywords");
	is_str(s, "0 $Forwarded\n1 brand-new\n2 $Junk\n3 NonJunk\n",
	       "names no file uses were dropped");
	free(s);

	/* 7c. an apply in slices: the second is not stale by the first */
	peer_adds(KEY9, "S", "4099", 4100);
	peer_adds(KEYA, "S", "4100\tNonJunk", 4101);
	ok(sync_apply_limit(1, &res) == 0 && res.more && !res.skipped &&
	   res.counts.added == 1, "the first slice of an apply");
	ok(!refs_agree(), "leaves the worktree behind mail");
	ok(sync_apply_limit(1, &res) == 0 && !res.more && !res.skipped &&
	   res.counts.added == 1, "the second goes on (not stale)");
	ok(there("cur/" K9 ":2,S") && there("cur/" KA ":2,Sd") &&
	   uidlist_has(4099, K9) && uidlist_has(4100, KA) && refs_agree(),
	   "both on disk with their UIDs; the worktree is mail");

	/* 7d. slices again, an unnumbered message first by key: numbered last */
	peer_adds(KEYB, "S", "-", 0);
	peer_adds(KEYC, "S", "4101", 4102);
	ok(sync_apply_limit(1, &res) == 0 && res.more && !res.skipped,
	   "the first slice");
	ok(there("cur/" KC ":2,S") && !there("cur/" KB ":2,S"),
	   "took the numbered message, whatever the key order");
	ok(sync_apply_limit(1, &res) == 0 && !res.more && !res.skipped,
	   "the second numbers the other");
	s = record(KEYB);
	is_str(s, "4102", "from slot 0 at uidnext 4102 (block 8 is slot 0's)");
	free(s);
	ok(uidlist_has(4101, KC) && uidlist_has(4102, KB) && refs_agree(),
	   "both in the uidlist; the worktree is mail");

	/* 7e. the tree gives INBOX a new UIDVALIDITY (a merge's, 4.4) */
	{
		char *old = mail_blob("imapfolder"), *nl = strchr(old, '\n');
		unsigned long v = strtoul(old + strlen("uidvalidity "), NULL, 10);
		struct strbuf nb = STRBUF_INIT;
		const char *paths[1] = { "imapfolder" };
		const char *blobs[1];
		struct uidlist u = UIDLIST_INIT;
		size_t before_n = 0;

		if (uidlist_read(&u, maildir) == 0)
			before_n = u.n;
		uidlist_release(&u);
		strbuf_addf(&nb, "uidvalidity %lu%s", v + 5, nl);
		blobs[0] = nb.buf;
		put("dovecot.index", "stale index\n");
		put("dovecot.index.log", "stale log\n");
		mail_change(paths, blobs, 1);
		ok(sync_apply(&res) == 0 && !res.skipped,
		   "a new UIDVALIDITY is applied");
		ok(uidlist_read(&u, maildir) == 0 && u.uidvalidity == v + 5,
		   "dovecot-uidlist has it");
		ok(u.n == before_n && uidlist_has(1, K1) &&
		   uidlist_has(4102, KB),
		   "with a record per message mail holds, its UID (%zu, "
		   "%zu before)", u.n, before_n);
		uidlist_release(&u);
		ok(!there("dovecot.index") && !there("dovecot.index.log"),
		   "Dovecot's index is gone, to be built anew (E6b)");
		ok(refs_agree(), "the worktree is mail");
		strbuf_release(&nb);
		free(old);
	}

	/* 8. stale: Dovecot numbered past what the worktree knows */
	dovecot_appends(4200, K6);
	peer_adds(KEY7, "", "4300", 4301);
	ok(sync_apply(&res) == 0 && res.skipped == 1 && res.counts.added == 0,
	   "a folder Dovecot moved on in is left");
	ok(!there("cur/" K7 ":2,"), "nothing written there");
	ok(!uidlist_has(4300, K7), "nor in the uidlist");
	ok(sync_commit(&res) == 0, "the commit after it");
	{
		struct oid t;
		struct strbuf b = STRBUF_INIT;
		struct oid id;
		ref_tree(&t, REF_WORKTREE);
		repo_tree_lookup(&id, repo, &t, "imapfolder");
		repo_blob_read(&b, repo, &id);
		ok(strstr(b.buf, "\nuidnext 4201\n") != NULL,
		   "raises the worktree's uidnext to Dovecot's (%s)", b.buf);
		strbuf_release(&b);
	}
	ok(sync_apply(&res) == 0 && res.counts.added == 1 && !res.skipped,
	   "then the apply goes on");
	ok(there("cur/" K7 ":2,") && uidlist_has(4300, K7),
	   "the file, and the peer's UID above Dovecot's");
	ok(refs_agree(), "the worktree is mail");
	/* the commit above was merged into mail by merge_trees(), which
	 * takes imapfolder as a plain file until step 3 (imapmerge) */
	if (!mail_valid())
		diag("not checked: mail's uidnext after merge_trees() "
		     "(needs the merge integration, doc/imap-progress.md 3)");

	/* 9. more than 26 keywords in use in one folder (4.6, 4.8 (3)) */
	{
#define KEYF1 "1700000020.MfPf.host"
#define KEYF2 "1700000021.MgPg.host"
		struct strbuf kw = STRBUF_INIT, fl = STRBUF_INIT;
		char *mp, *rp, *shard, *fr;
		char xx[3];
		const char *paths[3], *blobs[3];

		for (const char *d = ".Full"; d; d = NULL) {
			char *p = xasprintf("%s/%s/cur", maildir, d);
			mkdir_p(p, 0700);
			free(p);
			p = xasprintf("%s/%s/new", maildir, d);
			mkdir_p(p, 0700);
			free(p);
			p = xasprintf("%s/%s/tmp", maildir, d);
			mkdir_p(p, 0700);
			free(p);
		}
		put(".Full/maildirfolder", "");
		for (int i = 0; i < 26; i++) {
			strbuf_addf(&kw, "%d n%02d\n", i, i);
			strbuf_addch(&fl, (char)('a' + i));
		}
		put(".Full/dovecot-keywords", kw.buf);
		{
			char *f1 = xasprintf(".Full/cur/" KEYF1 ",S=4:2,S%s", fl.buf);
			put(f1, "full\n");
			free(f1);
		}
		worktree_dirty_folder(wt, ".Full");
		ok(sync_commit(&res) == 0 && res.committed,
		   "a folder with 26 keywords in use is committed");
		s = record(KEYF1);
		ok(!strncmp(s, "1\tn00 n01 ", 10) && strstr(s, " n25") != NULL,
		   "its message with 26 names (%.30s...)", s);
		free(s);

		/* a peer's message there with a 27th name */
		maildir_shard_hex(xx, KEYF2, strlen(KEYF2));
		mp = xasprintf(".Full/cur/%s/" KEYF2 ",S=4:2,S", xx);
		rp = rpath(KEYF2);
		shard = shard_with(KEYF2, "2\tn00 overflow");
		fr = mail_blob(".Full/imapfolder");
		strbuf_reset(&kw);
		strbuf_add(&kw, fr, strcspn(fr, "\n") + 1);
		strbuf_addstr(&kw, "uidnext 3\n");
		paths[0] = mp; blobs[0] = "peer\n";
		paths[1] = rp; blobs[1] = shard;
		paths[2] = ".Full/imapfolder"; blobs[2] = kw.buf;
		mail_change(paths, blobs, 3);
		ok(sync_apply(&res) == 0 && res.counts.added == 1 && !res.skipped,
		   "a 27th name from a peer is applied (logged: no letter)");
		ok(there(".Full/cur/" KEYF2 ",S=4:2,Sa"),
		   "the file has the letters it can have");
		worktree_dirty_all(wt);
		ok(sync_commit(&res) == 0 && !res.committed,
		   "a full rescan does not commit the 27th name away");
		mv(".Full/cur/" KEYF2 ",S=4:2,Sa", ".Full/cur/" KEYF2 ",S=4:2,FSa");
		worktree_dirty_name(wt, ".Full", "cur", KEYF2 ",S=4:2,Sa");
		worktree_dirty_name(wt, ".Full", "cur", KEYF2 ",S=4:2,FSa");
		ok(sync_commit(&res) == 0 && res.committed && res.counts.moved +
		   res.counts.flagged == 1, "a flag set on it is committed");
		s = record(KEYF2);
		is_str(s, "2\tn00 overflow", "the name without a letter stays");
		free(s);
		strbuf_release(&kw);
		strbuf_release(&fl);
		free(mp);
		free(rp);
		free(shard);
		free(fr);
	}

	/* 10. Dovecot numbered a file (a MOVE under load) after the scan
	 * looked, which saw only a flag change in the folder: the commit
	 * keeps uidnext at the new file's UID, so the commit that takes it
	 * in gives no UID below its parent's uidnext */
	{
		uint32_t n = uidlist_next_uid();
		struct oid prev;
		char buf[64];

		put("cur/" KR1 ":2,", "race\n");
		dovecot_appends(n, KR1);
		repo_ref_read(&prev, repo, REF_MAIL);
		mv("cur/" K1 ":2,Sa", "cur/" K1 ":2,FSa");
		worktree_dirty_name(wt, "", "cur", K1 ":2,Sa");
		worktree_dirty_name(wt, "", "cur", K1 ":2,FSa");
		ok(sync_commit(&res) == 0 && res.committed &&
		   res.counts.added == 0, "the flag change is committed");
		s = mail_blob("imapfolder");
		snprintf(buf, sizeof buf, "\nuidnext %u\n", n);
		ok(strstr(s, buf) != NULL,
		   "uidnext stops at the UID of the file not seen yet (%s)", s);
		free(s);
		ok(valid_since(&prev), "valid against its parent");
		repo_ref_read(&prev, repo, REF_MAIL);
		worktree_dirty_name(wt, "", "cur", KR1 ":2,");
		ok(sync_commit(&res) == 0 && res.committed &&
		   res.counts.added == 1, "then the new file");
		s = record(KEYR1);
		snprintf(buf, sizeof buf, "%u", n);
		is_str(s, buf, "with Dovecot's UID");
		free(s);
		s = mail_blob("imapfolder");
		snprintf(buf, sizeof buf, "\nuidnext %u\n", n + 1);
		ok(strstr(s, buf) != NULL, "uidnext follows (%s)", s);
		free(s);
		ok(valid_since(&prev), "valid against its parent");
		ok(mail_valid() && refs_agree(), "valid, and applied");
	}

	/* 11. (t3013) a folder holds back a MOVE under way (the new file's
	 * GUID names a message still on disk) while Dovecot moved another
	 * message within the folder (a new name and a new UID above the
	 * held one, renamed back to its key): uidnext still passes every
	 * UID the commit records, the held one is numbered anew later */
	{
		uint32_t n = uidlist_next_uid();
		struct oid prev;
		char *p = xasprintf("%s/dovecot-uidlist", maildir);
		FILE *f;
		char buf[64];

		put("cur/" KS1 ":2,", "one\n");
		f = fopen(p, "a");
		fprintf(f, "%u G%s :%s\n", n, KEY1, KS1);
		fclose(f);
		free(p);
		put("cur/" KS2 ":2,", "race\n");
		dovecot_appends(n + 1, KS2);
		unlink_rel("cur/" KR1 ":2,");
		repo_ref_read(&prev, repo, REF_MAIL);
		worktree_dirty_name(wt, "", "cur", KS1 ":2,");
		worktree_dirty_name(wt, "", "cur", KS2 ":2,");
		worktree_dirty_name(wt, "", "cur", KR1 ":2,");
		ok(sync_commit(&res) == 0 && res.committed,
		   "the move within the folder is committed");
		s = record(KEYR1);
		snprintf(buf, sizeof buf, "%u", n + 1);
		is_str(s, buf, "with its new UID");
		free(s);
		ok(res.deferred > 0, "the MOVE under way waits");
		s = mail_blob("imapfolder");
		snprintf(buf, sizeof buf, "\nuidnext %u\n", n + 2);
		ok(strstr(s, buf) != NULL, "uidnext passes it (%s)", s);
		free(s);
		ok(valid_since(&prev), "valid against its parent");
		ok(mail_valid(), "valid");
	}

	/* 12. (t3013) a RENAME while the new name holds back a MOVE under
	 * way: the message that came with the folder waits, and so does
	 * the old name's removal (its record too) */
	{
		char *from = xasprintf("%s/.Ren", maildir);
		char *to = xasprintf("%s/.Ren2", maildir);
		FILE *f;
		char *p;

		for (int i = 0; i < 3; i++) {
			p = xasprintf("%s/%s", from,
				      i == 0 ? "cur" : i == 1 ? "new" : "tmp");
			mkdir_p(p, 0700);
			free(p);
		}
		put(".Ren/maildirfolder", "");
		put(".Ren/cur/" KS3 ":2,", "ren\n");
		worktree_dirty_folder(wt, ".Ren");
		ok(sync_commit(&res) == 0 && res.committed, "a folder made");
		if (rename(from, to) < 0)
			log_fatal("rename");
		/* a copy of K1 (still in INBOX) Dovecot put in the new name */
		put(".Ren2/cur/" KS4 ":2,", "one\n");
		{
			struct uidlist u = UIDLIST_INIT;
			ok(uidlist_read(&u, to) == 0, "its uidlist came along");
			p = xasprintf("%s/dovecot-uidlist", to);
			f = fopen(p, "a");
			fprintf(f, "%u G%s :%s\n", uidlist_next(&u), KEY1, KS4);
			fclose(f);
			free(p);
			uidlist_release(&u);
		}
		worktree_dirty_folder(wt, ".Ren");
		worktree_dirty_folder(wt, ".Ren2");
		ok(sync_commit(&res) == 0, "the rename, half of it held");
		ok(mail_valid(), "valid: no message left without its folder record");
		free(from);
		free(to);
	}

	/* 13. (t3013) a client renamed a folder away, not committed yet,
	 * when a peer's message for it comes: the apply does not make the
	 * folder again (with its old UIDVALIDITY, below a UID Dovecot gave
	 * there), it commits the rename first */
	{
		char *from = xasprintf("%s/.Gone", maildir);
		char *to = xasprintf("%s/.Gone2", maildir);
		char *name = xasprintf("%s,S=4:2,", KEYG2);
		char *mp, *rp, *shard, *fr, *mpf;
		struct strbuf f = STRBUF_INIT;
		const char *paths[3], *blobs[3];

		for (int i = 0; i < 3; i++) {
			char *d = xasprintf("%s/%s", from,
					    i == 0 ? "cur" : i == 1 ? "new" : "tmp");
			mkdir_p(d, 0700);
			free(d);
		}
		put(".Gone/maildirfolder", "");
		put(".Gone/cur/" KEYG1 ",S=4:2,", "gone\n");
		worktree_dirty_folder(wt, ".Gone");
		ok(sync_commit(&res) == 0 && res.committed, "a folder made");
		if (rename(from, to) < 0)
			log_fatal("rename");
		/* the peer's message in .Gone, UID 2 */
		mp = mpath("cur", name);
		mpf = xasprintf(".Gone/%s", mp);
		rp = rpath(KEYG2);
		shard = shard_with(KEYG2, "2");
		fr = mail_blob(".Gone/imapfolder");
		strbuf_add(&f, fr, strcspn(fr, "\n") + 1);
		strbuf_addstr(&f, "uidnext 3\n");
		paths[0] = mpf; paths[1] = rp; paths[2] = ".Gone/imapfolder";
		blobs[0] = "peer\n"; blobs[1] = shard; blobs[2] = f.buf;
		mail_change(paths, blobs, 3);
		sync_apply(&res);
		ok(!there(".Gone"), "the folder is not made again");
		worktree_dirty_folder(wt, ".Gone2");
		ok(sync_commit(&res) == 0 && res.committed, "the rename committed");
		ok(mail_valid(), "valid");
		strbuf_release(&f);
		free(fr);
		free(shard);
		free(rp);
		free(mpf);
		free(mp);
		free(name);
		free(from);
		free(to);
	}

	/* 14. (t3013) a new message named twice, by an old name it no
	 * longer has (held back, or renamed by Dovecot since) and by its
	 * name on disk, the two differing in keyword letters alone: the
	 * name on disk is looked at, the message committed */
	{
		char *d = xasprintf("%s/.Gone2", maildir);
		struct uidlist u = UIDLIST_INIT;
		char *p;
		FILE *f;

		put(".Gone2/dovecot-keywords", "0 $Forwarded\n");
		put(".Gone2/cur/" KEYN1 ",S=4:2,Sa", "renamed\n");
		ok(uidlist_read(&u, d) == 0, "the folder's uidlist");
		p = xasprintf("%s/dovecot-uidlist", d);
		f = fopen(p, "a");
		fprintf(f, "%u :%s\n", uidlist_next(&u), KEYN1 ",S=4");
		fclose(f);
		free(p);
		free(d);
		uidlist_release(&u);
		worktree_dirty_name(wt, ".Gone2", "cur", KEYN1 ",S=4:2,S");
		worktree_dirty_name(wt, ".Gone2", "cur", KEYN1 ",S=4:2,Sa");
		ok(sync_commit(&res) == 0 && res.committed &&
		   res.counts.added == 1, "the message is committed");
		s = record(KEYN1);
		ok(s && *s, "with its record (%s)", s ? s : "none");
		free(s);
		ok(mail_valid(), "valid");
	}

	/* 15. (t3013) a client renamed a folder away, not committed yet
	 * (its removal held back while the disk was busy), and
	 * maildag-syncd started again: its first apply, which gives every
	 * folder of mail's tree its cur/ new/ tmp/, does not make that one
	 * again (Dovecot gave it a new UIDVALIDITY while the tree still
	 * had a message there: the peer refused that commit for good) */
	{
		char *mt, *old, *nb, *at;
		char xx[3];
		const char *paths[1], *blobs[1];

		make_folder(".Held");
		put(".Held/cur/" KEYH1 ",S=4:2,", "held\n");
		worktree_dirty_folder(wt, ".Held");
		ok(sync_commit(&res) == 0 && res.committed, "a folder made");
		mv(".Held", ".Held2");
		/* a peer's change, any: an mtime */
		maildir_shard_hex(xx, KEY4, strlen(KEY4));
		mt = xasprintf("mtimes/%s", xx);
		old = mail_blob(mt);
		nb = xstrdup(old);
		at = strstr(nb, KEY4 " 1600000000");
		if (at)
			memcpy(at + strlen(KEY4 " 160000"), "1", 1);
		paths[0] = mt;
		blobs[0] = nb;
		mail_change(paths, blobs, 1);
		worktree_free(wt);
		wt = worktree_new(repo, maildir, "test");
		ok(at && sync_apply(&res) == 0, "a peer's change applied, "
		   "first apply of a new start");
		ok(!there(".Held"), "the folder renamed away is not made again");
		worktree_dirty_folder(wt, ".Held");
		worktree_dirty_folder(wt, ".Held2");
		ok(sync_commit(&res) == 0 && res.committed, "the rename committed");
		ok(!there(".Held") && mail_valid(), "valid");
		free(nb);
		free(old);
		free(mt);
	}

	/* 16. (t3013) a folder deleted and made again by a client (Dovecot
	 * gave it a new UIDVALIDITY) while the disk is busy: the removal of
	 * its old message is not held back for a second look, or the new
	 * folder record (uidnext 1) would leave it at a UID not below it */
	{
		char *d = xasprintf("%s/.Again", maildir);
		struct uidlist u = UIDLIST_INIT;
		char *hdr;

		make_folder(".Again");
		put(".Again/cur/" KEYW1 ",S=4:2,", "again\n");
		worktree_dirty_folder(wt, ".Again");
		ok(sync_commit(&res) == 0 && res.committed, "a folder made");
		ok(uidlist_read(&u, d) == 0, "its uidlist");
		rm_rf(d);
		make_folder(".Again");
		hdr = xasprintf("3 V%u N1 G0123456789abcdef0123456789abcdef\n",
				u.uidvalidity + 7);
		put(".Again/dovecot-uidlist", hdr);
		worktree_dirty_folder(wt, ".Again");
		worktree_set_poll(wt, disk_moved_on, NULL);
		ok(sync_commit(&res) == 0 && res.committed &&
		   res.counts.expunged == 1, "the old message's removal committed");
		worktree_set_poll(wt, NULL, NULL);
		ok(mail_valid(), "valid: no UID at or above the new uidnext");
		s = record(KEYW1);
		ok(!s || !*s, "its record went with it");
		free(s);
		uidlist_release(&u);
		free(hdr);
		free(d);
	}

	/* 17. (t3013) a merge leaves a message in new/ with keywords (a
	 * peer moved it while another set them): the apply puts the
	 * letters on the file ("…:2,<letters>" in new/), and the commit
	 * reads that name back as the tree's ("…" in new/), not as a new
	 * message repeating its key (renamed to another key on each
	 * replica: two copies, and the tree's name on no disk) */
	{
		char *mp = mpath("new", KEYNW ",S=4"), *rp = rpath(KEYNW);
		char *fr = mail_blob("imapfolder"), *nu = strstr(fr, "uidnext ");
		unsigned uid = nu ? (unsigned)strtoul(nu + 8, NULL, 10) : 0;
		char *rec = xasprintf("%u\t$Junk", uid);
		char *shard = shard_with(KEYNW, rec);
		struct strbuf f = STRBUF_INIT;
		const char *paths[3], *blobs[3];
		char *disk = NULL;
		DIR *dh;
		struct dirent *de;

		strbuf_add(&f, fr, strcspn(fr, "\n") + 1);
		strbuf_addf(&f, "uidnext %u\n", uid + 1);
		paths[0] = mp; paths[1] = rp; paths[2] = "imapfolder";
		blobs[0] = "new with keywords\n"; blobs[1] = shard;
		blobs[2] = f.buf;
		mail_change(paths, blobs, 3);
		ok(uid && sync_apply(&res) == 0 && res.counts.added == 1,
		   "a peer's message in new/ with a keyword applied");
		{
			char *nd = xasprintf("%s/new", maildir);
			dh = opendir(nd);
			free(nd);
		}
		while (dh && !disk && (de = readdir(dh)))
			if (!strncmp(de->d_name, KEYNW, strlen(KEYNW)))
				disk = xasprintf("new/%s", de->d_name);
		if (dh)
			closedir(dh);
		ok(disk && strstr(disk, ":2,") && strpbrk(strstr(disk, ":2,"),
		   "abcdefghijklmnopqrstuvwxyz"), "with its letter (%s)",
		   disk ? disk : "none");
		/* both names marked, as the apply's own events mark them;
		 * once more after a copy's settling time (COPY_SETTLE), when
		 * a duplicate key is not held back any more but renamed */
		for (int round = 0; round < 2; round++) {
			if (round)
				sleep(3);
			worktree_dirty_name(wt, "", "new", KEYNW ",S=4");
			worktree_dirty_name(wt, "", "new",
					    disk ? disk + 4 : KEYNW);
			ok(sync_commit(&res) == 0 && !res.counts.added &&
			   !res.counts.expunged && !res.counts.flagged &&
			   !res.deferred, "the commit finds nothing new (%s)",
			   round ? "settled" : "at once");
		}
		ok(refs_agree() && mail_valid(), "the tree's name is the disk's");
		ok(disk && there(disk), "the file kept its name");
		s = record(KEYNW);
		ok(s && strstr(s, "$Junk"), "and its keyword (%s)", s ? s : "none");
		free(s);
		/* the keyword taken off by a client: an info left empty in
		 * new/ is the tree's name without info still */
		if (disk) {
			mv(disk, "new/" KEYNW ",S=4:2,");
			worktree_dirty_name(wt, "", "new", disk + 4);
			worktree_dirty_name(wt, "", "new", KEYNW ",S=4:2,");
		}
		ok(sync_commit(&res) == 0 && res.counts.flagged == 1 &&
		   !res.counts.added && !res.counts.expunged && !res.counts.moved,
		   "a keyword change");
		s = record(KEYNW);
		ok(s && !strstr(s, "$Junk"), "the keyword gone (%s)", s ? s : "none");
		free(s);
		s = mail_blob(mp);
		ok(s && *s, "the tree's name stays '%s'", mp);
		free(s);
		free(disk);
		strbuf_release(&f);
		free(shard);
		free(rec);
		free(fr);
		free(rp);
		free(mp);
	}

	/* 18. (t3013) a COPY into another folder, then the source
	 * expunged, looks like a MOVE (one key): the message has the
	 * keywords its file has there, not those of the source that have
	 * no letter there (kept only for a message that stays in its
	 * folder, 4.6) */
	{
		s = slurp("dovecot-keywords");
		ok(s && !strncmp(s, "0 $Forwarded\n", 13), "letter a is $Forwarded");
		free(s);
		put("cur/" KEYCP ",S=4:2,Sa", "copied\n");
		worktree_dirty_name(wt, "", "cur", KEYCP ",S=4:2,Sa");
		ok(sync_commit(&res) == 0 && res.counts.added == 1, "a message "
		   "with a keyword");
		s = record(KEYCP);
		ok(s && strstr(s, "$Forwarded"), "recorded (%s)", s ? s : "none");
		free(s);
		make_folder(".Copies");
		put(".Copies/cur/" KEYCP ",S=4:2,S", "copied\n");
		unlink_rel("cur/" KEYCP ",S=4:2,Sa");
		worktree_dirty_name(wt, "", "cur", KEYCP ",S=4:2,Sa");
		worktree_dirty_folder(wt, ".Copies");
		ok(sync_commit(&res) == 0 && res.counts.moved == 1, "one move");
		s = record(KEYCP);
		ok(s && !strstr(s, "$Forwarded"), "without the source's keyword "
		   "(%s)", s ? s : "none");
		free(s);
		ok(mail_valid(), "valid");
	}

	/* 19. (t3013) a peer removed a folder (a RENAME on its side) while a
	 * Dovecot session here writes the folder's dovecot-uidlist (its
	 * lock held): the apply waits for the lock, and only then takes the
	 * folder away (Dovecot logged "Our dotlock file ... was deleted"
	 * and a failed rename of its dovecot-uidlist.tmp) */
	{
		const char *paths[2] = { ".Rm/maildirfolder", ".Rm/imapfolder" };
		const char *blobs[2] = { NULL, NULL };
		pid_t pid;
		int wst = -1;

		make_folder(".Rm");
		worktree_dirty_folder(wt, ".Rm");
		ok(sync_commit(&res) == 0 && res.committed, "a folder made");
		mail_change(paths, blobs, 2);
		put(".Rm/dovecot-uidlist.lock", "1:dovecot\n");
		pid = fork();
		if (pid == 0) {
			/* Dovecot, writing: the folder must stay while it holds
			 * the lock */
			bool was = false;
			sleep(1);
			was = there(".Rm/cur") && there(".Rm/dovecot-uidlist.lock");
			unlink_rel(".Rm/dovecot-uidlist.lock");
			_exit(was ? 0 : 1);
		}
		ok(sync_apply(&res) == 0 && res.counts.folders_removed == 1,
		   "the folder's removal applied");
		waitpid(pid, &wst, 0);
		ok(WIFEXITED(wst) && WEXITSTATUS(wst) == 0,
		   "not while Dovecot held its uidlist lock");
		ok(!there(".Rm"), "then the folder went, our lock with it");
		ok(refs_agree() && mail_valid(), "valid");
	}

	/*
	 * 20. (t3013) the uidlist gives a message the tree holds another
	 * UID, at or above the worktree's uidnext (an apply that failed
	 * after writing its numbering left it so: its local commit was never
	 * made).  The apply finds the folder stale and waits for a commit;
	 * that commit kept uidnext below the line (a file Dovecot numbered
	 * that it does not take in, it thought), so every apply found the
	 * folder stale again and none went on, for ever.
	 */
	{
		struct uidlist u = UIDLIST_INIT;
		uint32_t next;
		char rec[32];

		put("new/" KEYO1 ",S=4", "body\n");
		worktree_dirty_name(wt, "", "new", KEYO1 ",S=4");
		ok(sync_commit(&res) == 0 && res.committed, "a message of ours");
		next = uidlist_next_uid();
		ok(uidlist_read(&u, maildir) == 0 &&
		   uidlist_remove(&u, KEYO1 ",S=4") &&
		   uidlist_add(&u, next + 5, KEYO1 ",S=4", "") == 0 &&
		   uidlist_rewrite(maildir, &u) == 0,
		   "its uidlist line moved up, to %u", next + 5);
		uidlist_release(&u);
		snprintf(rec, sizeof rec, "%u", next + 100);
		peer_adds(KEYO2, "", rec, next + 101);
		ok(sync_apply(&res) == 0 && res.skipped == 1 && !res.counts.added,
		   "the folder is stale: the peer's message waits");
		ok(sync_commit(&res) == 0, "the commit it waits for");
		ok(sync_apply(&res) == 0 && !res.skipped && res.counts.added == 1,
		   "then the apply goes on");
		ok(there("cur/" KEYO2 ",S=4:2,"), "the peer's message is written");
		ok(refs_agree() && mail_valid(), "valid");
		s = record(KEYO1);
		ok(strtoul(s, NULL, 10) >= next + 101, "the line's UID could "
		   "not stand: numbered anew above the peer's (%s)", s);
		free(s);
	}

	/*
	 * 21. (t3013, doc/stress-progress.md item 14) Dovecot numbers again
	 * a message the tree holds ("Expunged message reappeared, giving a
	 * new UID"): its uidlist line goes and a new one comes, the file
	 * stays.  The next commit of the folder records Dovecot's UID, so
	 * this replica's clients and the tree agree (it passed the UID and
	 * kept the old one, and the replicas showed different UIDs).  In a
	 * folder of its own: INBOX holds back 11.'s MOVE under way.
	 */
	{
		char *d = xasprintf("%s/.D", maildir);
		struct uidlist u = UIDLIST_INIT;
		const struct uidlist_rec *x;
		uint32_t was, now = 0;
		char *s1, *s2;

		make_folder(".D");
		put(".D/new/" KEYD1 ",S=4", "d-1\n");
		worktree_dirty_folder(wt, ".D");
		ok(sync_commit(&res) == 0 && res.committed, "a message of ours");
		s1 = record(KEYD1);
		was = (uint32_t)strtoul(s1, NULL, 10);
		free(s1);
		if (uidlist_read(&u, d) == 0 && (x = uidlist_find(&u, KEYD1 ",S=4")) &&
		    x->uid == was && uidlist_remove(&u, KEYD1 ",S=4")) {
			now = uidlist_next(&u);
			if (uidlist_add(&u, now, KEYD1 ",S=4", "") < 0 ||
			    uidlist_rewrite(d, &u) < 0)
				now = 0;
		}
		uidlist_release(&u);
		ok(was && now > was, "Dovecot numbers it again: %u, was %u",
		   now, was);
		put(".D/new/" KEYD2 ",S=4", "d-2\n");
		worktree_dirty_name(wt, ".D", "new", KEYD2 ",S=4");
		ok(sync_commit(&res) == 0 && res.committed && res.counts.added == 1,
		   "a commit of the folder");
		s1 = record(KEYD1);
		s2 = record(KEYD2);
		ok((uint32_t)strtoul(s1, NULL, 10) == now,
		   "it records Dovecot's UID (%s)", s1);
		ok((uint32_t)strtoul(s2, NULL, 10) > now,
		   "the new message one above it (%s)", s2);
		ok(refs_agree() && mail_valid(), "valid");
		ok(sync_apply(&res) == 0 && !res.skipped && refs_agree(),
		   "the apply has nothing to do");
		ok(uidlist_read(&u, d) == 0 &&
		   (x = uidlist_find(&u, KEYD1 ",S=4")) && x->uid == now,
		   "Dovecot's line stays");
		uidlist_release(&u);
		free(s1);
		free(s2);
		free(d);
	}

	/*
	 * 22. (t3013) an apply numbers a peer's message, and a folder the
	 * peer removed is locked by a Dovecot session longer than the apply
	 * waits: the removal waits for a later apply, and this one is
	 * recorded, numbering and all (it failed, and the uidlist line it had
	 * written for the message went unrecorded; doc/stress-progress.md,
	 * items 12 and 14).  Waits DV_LOCK_MS (10 s) for the lock.
	 */
	{
		const char *paths[2] = { ".Locked/maildirfolder", ".Locked/imapfolder" };
		const char *blobs[2] = { NULL, NULL };
		char *s1;
		uint32_t uid;

		make_folder(".Locked");
		worktree_dirty_folder(wt, ".Locked");
		ok(sync_commit(&res) == 0 && res.committed, "a folder made");
		put(".Locked/dovecot-uidlist.lock", "1:dovecot\n");
		mail_change(paths, blobs, 2);
		peer_adds(KEYP1, "S", "-", 0);
		ok(sync_apply(&res) == 0 && res.skipped >= 1 &&
		   !res.counts.folders_removed && res.counts.added == 1,
		   "applied, the locked folder's removal left for later");
		s1 = record(KEYP1);
		uid = (uint32_t)strtoul(s1, NULL, 10);
		ok(uid > 0 && uidlist_has(uid, KEYP1 ",S=4"),
		   "its numbering committed (%s), as the uidlist has it", s1);
		free(s1);
		ok(mail_valid() && there(".Locked/cur"), "valid; the folder stays");
		unlink_rel(".Locked/dovecot-uidlist.lock");
		ok(sync_commit(&res) == 0 && sync_apply(&res) == 0 &&
		   res.counts.folders_removed == 1 && !there(".Locked"),
		   "the lock gone, a later apply removes the folder");
		ok(refs_agree() && mail_valid(), "valid");
	}

	/*
	 * 23. (t3013, doc/stress-progress.md item 17) a peer's moves into
	 * .W that this apply leaves out: one out of INBOX, where Dovecot
	 * numbered a save since our last commit (held), one out of .V whose
	 * file a client renamed meanwhile (skipped).  .W's uidlist must not keep a record
	 * without its file once the lock goes: a Dovecot session drops such
	 * a record and passes its UID, and when the file came later under
	 * it, logged "Expunged message reappeared, giving a new UID".
	 */
	{
		char *w = xasprintf("%s/.W", maildir), *wold, *s1;
		char *m1 = mpath("cur", KEYM1 ",S=4:2,S");
		char *m2 = mpath(".V/cur", KEYM2 ",S=4:2,");
		char *w1 = mpath(".W/cur", KEYM1 ",S=4:2,S");
		char *w2 = mpath(".W/cur", KEYM2 ",S=4:2,");
		char *r1 = rpath(KEYM1), *sh1, *sh2, *r2 = rpath(KEYM2);
		struct uidlist u = UIDLIST_INIT;
		struct strbuf wf = STRBUF_INIT;
		const struct uidlist_rec *x;
		bool none;

		make_folder(".W");
		make_folder(".V");
		put("cur/" KEYM1 ",S=4:2,S", "m-1\n");
		put(".V/cur/" KEYM2 ",S=4:2,", "m-2\n");
		worktree_dirty_folder(wt, ".W");
		worktree_dirty_folder(wt, ".V");
		worktree_dirty_folder(wt, "");
		ok(sync_commit(&res) == 0 && res.counts.added == 2,
		   "two messages of ours, two folders");
		/* Dovecot numbers a save in INBOX; a client renames M2 */
		put("new/" KEYM3 ",S=4", "saved\n");
		dovecot_appends(uidlist_next_uid(), KEYM3 ",S=4");
		mv(".V/cur/" KEYM2 ",S=4:2,", ".V/cur/" KEYM2 ",S=4:2,F");
		/* the peer moved both into .W, giving M1 UID 1 there */
		wold = mail_blob(".W/imapfolder");
		strbuf_add(&wf, wold, strcspn(wold, "\n") + 1);
		strbuf_addstr(&wf, "uidnext 2\n");
		sh1 = shard_with(KEYM1, "1");
		sh2 = shard_with(KEYM2, "-");
		ok(strcmp(r1, r2) != 0, "the two keys' records in two shards");
		{
			const char *paths[] = { m1, m2, w1, w2, r1, r2,
						".W/imapfolder" };
			const char *b[7] = { NULL, NULL, "m-1\n", "m-2\n", sh1,
					     sh2, wf.buf };
			mail_change(paths, b, 7);
		}
		ok(sync_apply(&res) == 0 && res.skipped >= 2 &&
		   !there(".W/cur/" KEYM1 ",S=4:2,S") &&
		   !there(".W/cur/" KEYM2 ",S=4:2,"), "both moves left out");
		none = uidlist_read(&u, w) == 0 &&
		       !uidlist_find(&u, KEYM1 ",S=4") &&
		       !uidlist_find(&u, KEYM2 ",S=4");
		ok(none, "no record of either in .W's uidlist");
		ok(uidlist_next(&u) == 2, "its next UID passed the peer's UID "
		   "1 all the same, and burnt none for the skipped one (%u)",
		   uidlist_next(&u));
		uidlist_release(&u);
		s1 = record(KEYM2);
		ok(s1[0] == '-', "nor a numbering of the skipped one (%s)", s1);
		free(s1);
		ok(mail_valid(), "valid");
		ok(sync_commit(&res) == 0 && res.committed, "the commit the "
		   "held move waits for");
		ok(sync_apply(&res) == 0, "the next apply");
		ok(there(".W/cur/" KEYM1 ",S=4:2,S"), "the held move done");
		s1 = record(KEYM1);
		ok(uidlist_read(&u, w) == 0 &&
		   (x = uidlist_find(&u, KEYM1 ",S=4")) &&
		   x->uid == (uint32_t)strtoul(s1, NULL, 10) && x->uid >= 2,
		   "with the record the tree gives it (%s), above the UID "
		   "passed", s1);
		uidlist_release(&u);
		free(s1);
		ok(mail_valid(), "valid");
		free(w);
		free(wold);
		free(m1);
		free(m2);
		free(w1);
		free(w2);
		free(r1);
		free(r2);
		free(sh1);
		free(sh2);
		strbuf_release(&wf);
	}

	/*
	 * 24. (t3013, doc/stress-progress.md item 18) a folder a peer made
	 * appears here with its uidlist in it, the tree's UIDVALIDITY
	 * given: a Dovecot session that opened it in between gave it a
	 * UIDVALIDITY of its own, which the tree's then replaced under that
	 * session ("IMAP session state is inconsistent").  A child stops us
	 * the moment the folder shows and does what such a session does:
	 * takes the uidlist lock and, no uidlist there, writes one of its
	 * own.  It must find no way to.
	 */
	{
		const char *paths[2] = { ".N/maildirfolder", ".N/imapfolder" };
		const char *blobs[2] = { "", "uidvalidity 1234567\nuidnext 3\n" };
		int fd = inotify_init1(IN_CLOEXEC), wst = -1;
		pid_t pid;
		struct uidlist u = UIDLIST_INIT;

		ok(fd >= 0 && inotify_add_watch(fd, maildir, IN_CREATE |
						 IN_MOVED_TO | IN_ONLYDIR) >= 0,
		   "a watch on the Maildir");
		pid = fork();
		if (pid == 0) {
			char buf[4096];
			ssize_t n;
			int seen = 2;
			while (seen == 2 && (n = read(fd, buf, sizeof buf)) > 0)
				for (char *p = buf; p < buf + n;) {
					struct inotify_event *ev = (void *)p;
					if (ev->len && !strcmp(ev->name, ".N")) {
						kill(getppid(), SIGSTOP);
						seen = !dovecot_session_writes(".N");
						kill(getppid(), SIGCONT);
						break;
					}
					p += sizeof *ev + ev->len;
				}
			_exit(seen == 1 ? 0 : 1);
		}
		close(fd);
		mail_change(paths, blobs, 2);
		ok(sync_apply(&res) == 0 && res.counts.folders_added == 1,
		   "the peer's folder made");
		waitpid(pid, &wst, 0);
		ok(WIFEXITED(wst) && WEXITSTATUS(wst) == 0,
		   "no Dovecot session could give it a UIDVALIDITY first");
		{
			char *d = xasprintf("%s/.N", maildir);
			bool rd = uidlist_read(&u, d) == 0;
			ok(rd && u.uidvalidity == 1234567 &&
			   uidlist_next(&u) == 3, "with the tree's UIDVALIDITY "
			   "and next UID (%u, %u)", u.uidvalidity,
			   uidlist_next(&u));
			uidlist_release(&u);
			free(d);
		}
		ok(refs_agree() && mail_valid(), "valid");
	}

	worktree_free(wt);
	repo_free(repo);
	rm_rf(base);
	free(base);
	free(maildir);
	free(repo_path);
	return tap_done();
}
