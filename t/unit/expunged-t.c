/*
 * expunged-t: common/expunged.c and common/alarm.c on real commits in a
 * temporary bare repository: what a change expunged, moved and removed,
 * the search for removed messages, and the mass-deletion thresholds and
 * alarms file.
 *
 * A tree is a list of entries "TAG path": TAG names the content (the same
 * TAG, the same bytes), path is "[.Folder/](cur|new)/<name>" (the shard
 * is put in) or ".Folder/maildirfolder".
 */
#include "autoconf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "alarm.h"
#include "config.h"
#include "expunged.h"
#include "log.h"
#include "maildir_name.h"
#include "mtimes.h"
#include "repo.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

#define MAXE 12

static struct repo *repo;
static struct oid mail;		/* refs/heads/mail, as the tests move it */
static long long clock_at = 1700000000;
static char base_id[CHANGE_HEX];	/* test_change's first commit */
static long long base_time;

static void blob_of(struct oid *out, const char *tag)
{
	char *text = xasprintf("From: %s <%s@example.org>\nSubject: about %s\n"
			       "Message-ID: <%s@example.org>\n\nbody %s\n",
			       tag, tag, tag, tag, tag);

	if (repo_blob_from_buffer(out, repo, text, strlen(text)) < 0)
		log_fatal("cannot write blob");
	free(text);
}

static char *tree_path(const char *p)
{
	const char *sub = strstr(p, "cur/");
	char shard[3];

	if (!sub || (sub != p && sub[-1] != '/'))
		sub = strstr(p, "new/");
	if (!sub || (sub != p && sub[-1] != '/'))
		return xstrdup(p);
	maildir_shard_hex(shard, sub + 4, maildir_key_len(sub + 4));
	return xasprintf("%.*s%.4s%s/%s", (int)(sub - p), p, sub, shard, sub + 4);
}

/* A commit of the entries on top of mail, by node; mail moves to it. */
static void commit(char out[CHANGE_HEX], const char *node,
		   const char *subject, const char *const *ents)
{
	struct update_list ups = UPDATE_LIST_INIT;
	struct oid fmt, tree, id, old = mail;
	char *email = xasprintf("syncd@%s", node), *msg;

	repo_blob_from_buffer(&fmt, repo, FORMAT_CONTENT, strlen(FORMAT_CONTENT));
	update_list_add(&ups, FORMAT_PATH, &fmt);
	for (size_t i = 0; i < MAXE && ents[i]; i++) {
		const char *sp = strchr(ents[i], ' ');
		char *tag = xstrndup(ents[i], (size_t)(sp - ents[i]));
		char *tp = tree_path(sp + 1);
		struct oid b;

		if (!strcmp(tag, "-"))
			repo_blob_from_buffer(&b, repo, "", 0);
		else
			blob_of(&b, tag);
		update_list_add(&ups, tp, &b);
		free(tp);
		free(tag);
	}
	msg = xasprintf("%s\n", subject);
	if (repo_tree_update(&tree, repo, NULL, ups.v, ups.n) < 0 ||
	    repo_commit(&id, repo, &tree, &old, 1, msg, clock_at++, "maildag-syncd",
			email) < 0 ||
	    repo_ref_cas(repo, REF_MAIL, &id, &old, "test") < 0)
		log_fatal("cannot commit");
	oid_cpy(&mail, &id);
	oid_tostr(out, CHANGE_HEX, &id);
	update_list_release(&ups);
	free(email);
	free(msg);
}

static bool has_msg(const struct mail_msg *v, size_t n, const char *folder,
		    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].folder, folder) && !strcmp(v[i].name, name))
			return true;
	return false;
}

static const char *const base[] = {
	"A cur/1000.a:2,S", "B cur/1001.b:2,", "C new/1002.c",
	"D .Work/cur/1003.d:2,", "E .Work/cur/1004.e:2,F", "- .Work/maildirfolder",
	"F .Old/cur/1005.f:2,", "- .Old/maildirfolder", NULL,
};

static void test_change(void)
{
	/* A expunged; B flagged; C moved to Work; D copied under a new key
	 * into INBOX and gone from Work (a MOVE); Old removed with F; E
	 * moved to a new folder New; the folder Work stays */
	static const char *const next[] = {
		"B cur/1001.b:2,S", "C .Work/cur/1002.c:2,",
		"D cur/2000.z:2,", "- .Work/maildirfolder",
		"E .New/cur/1004.e:2,F", "- .New/maildirfolder", NULL,
	};
	char p[CHANGE_HEX], c[CHANGE_HEX], r[CHANGE_HEX];
	struct change ch;

	commit(p, "mx1", "base", base);
	memcpy(base_id, p, CHANGE_HEX);
	base_time = clock_at - 1;
	commit(c, "mx1", "mail client: many things", next);
	if (!is_int(change_read(&ch, repo, c), 0, "change_read"))
		return;
	is_str(ch.parent, p, "its parent");
	is_int((long long)ch.nparents, 1, "one parent");
	is_str(ch.subject, "mail client: many things", "its subject");
	is_str(ch.committer, "syncd@mx1", "its committer");
	is_int((long long)ch.nexpunged, 2, "two expunged: A and F");
	ok(has_msg(ch.expunged, ch.nexpunged, "", "1000.a:2,S"), "A expunged");
	ok(has_msg(ch.expunged, ch.nexpunged, ".Old", "1005.f:2,"),
	   "F expunged with its folder");
	is_int((long long)ch.nmoved, 4, "four moved: B C D E");
	ok(has_msg(ch.from, ch.nmoved, ".Work", "1003.d:2,") &&
	   has_msg(ch.to, ch.nmoved, "", "2000.z:2,"),
	   "D moved: its bytes under a new key");
	ok(has_msg(ch.to, ch.nmoved, "", "1001.b:2,S"), "B's flags");
	is_int((long long)ch.nfolders_gone, 1, "one folder gone");
	ok(ch.nfolders_gone && !strcmp(ch.folders_gone[0], ".Old"), "it is Old");
	change_release(&ch);

	is_int(change_resolve(r, repo, "zz12"), E_INVALID, "resolve: not hex");
	is_int(change_resolve(r, repo, "abc"), E_INVALID, "resolve: too short");
	ok(change_resolve(r, repo, "") < 0, "resolve: empty");
	{
		char pre[11];
		memcpy(pre, c, 10);
		pre[10] = '\0';
		is_int(change_resolve(r, repo, pre), 0, "resolve: 10 digits");
		is_str(r, c, "resolve: the full id");
	}
	{
		size_t n;
		is_int(change_folder_size(&n, repo, p, ".Work"), 0, "folder size");
		is_int((long long)n, 2, "Work held two");
		change_folder_size(&n, repo, p, "");
		is_int((long long)n, 3, "INBOX held three");
	}
}

struct seen {
	char names[8][64];
	char changes[8][CHANGE_HEX];
	long long mtimes[8];
	size_t n;
};

static int collect(const struct expunged *e, void *data)
{
	struct seen *s = data;

	if (s->n < 8) {
		snprintf(s->names[s->n], sizeof s->names[0], "%s/%s",
			 e->msg.folder, e->msg.name);
		memcpy(s->changes[s->n], e->change, CHANGE_HEX);
		s->mtimes[s->n] = e->mtime;
	}
	s->n++;
	return 0;
}

static void test_find(void)
{
	struct expunged_filter f;
	struct seen s;

	memset(&s, 0, sizeof s);
	expunged_filter_init(&f);
	is_int(expunged_find(repo, &f, collect, &s), 0, "find: all");
	is_int((long long)s.n, 2, "find: A and F");
	memset(&s, 0, sizeof s);
	f.folder = ".Old";
	expunged_find(repo, &f, collect, &s);
	ok(s.n == 1 && !strcmp(s.names[0], ".Old/1005.f:2,"), "find: --folder");
	is_int(s.mtimes[0], 1005, "find: the mtime is the key's time");
	memset(&s, 0, sizeof s);
	expunged_filter_init(&f);
	f.from = "a@EXAMPLE";
	expunged_find(repo, &f, collect, &s);
	ok(s.n == 1 && !strcmp(s.names[0], "/1000.a:2,S"), "find: --from");
	memset(&s, 0, sizeof s);
	expunged_filter_init(&f);
	f.message_id = "F@example.org";
	expunged_find(repo, &f, collect, &s);
	is_int((long long)s.n, 1, "find: a Message-ID without <>");
	memset(&s, 0, sizeof s);
	f.message_id = "<F@example.org>";
	expunged_find(repo, &f, collect, &s);
	is_int((long long)s.n, 1, "find: a Message-ID with <>");
	memset(&s, 0, sizeof s);
	expunged_filter_init(&f);
	f.since = clock_at + 10;
	expunged_find(repo, &f, collect, &s);
	is_int((long long)s.n, 0, "find: --since after the change");
	is_int(expunged_key_present(repo, "1001.b:2,"), 1, "B is present");
	is_int(expunged_key_present(repo, "1000.a"), 0, "A is not");
}

static void test_snapshot(const char *id, long long when)
{
	struct expunged_filter f;
	char at[CHANGE_HEX];
	struct seen s;

	is_int(expunged_snapshot_at(at, repo, when), 0, "snapshot at a time");
	is_str(at, id, "the commit made by then");
	is_int(expunged_snapshot_at(at, repo, 1000), E_NOTFOUND,
	       "before the history: none");
	memset(&s, 0, sizeof s);
	expunged_filter_init(&f);
	is_int(expunged_in_snapshot(repo, id, &f, collect, &s), 0,
	       "in a snapshot");
	/* A and F are gone; B, C, D (under its new key), E are not */
	ok(s.n == 2 && !strcmp(s.names[0], ".Old/1005.f:2,") &&
	   !strcmp(s.names[1], "/1000.a:2,S"),
	   "what the snapshot has and the mailbox lacks: F and A");
	ok(!*s.changes[0], "no change names a snapshot's message");
}

static struct config *alarm_config(void)
{
	struct config *cfg = config_defaults("alice", "/nonexistent");

	free(cfg->node);
	cfg->node = xstrdup("mx1");
	cfg->alarm_messages = 4;
	cfg->alarm_share = 50;
	cfg->alarm_share_min = 2;
	return cfg;
}

static void test_alarm(void)
{
	static const char *const big[] = {
		"A cur/1.a:2,", "B cur/2.b:2,", "C cur/3.c:2,", "D cur/4.d:2,",
		"E cur/5.e:2,", "G .Trash/cur/6.g:2,", "H .Trash/cur/7.h:2,",
		"- .Trash/maildirfolder", "I .Sent/cur/8.i:2,",
		"- .Sent/maildirfolder", NULL,
	};
	static const char *const two_of_five[] = {
		"C cur/3.c:2,", "D cur/4.d:2,", "E cur/5.e:2,",
		"G .Trash/cur/6.g:2,", "H .Trash/cur/7.h:2,",
		"- .Trash/maildirfolder", "I .Sent/cur/8.i:2,",
		"- .Sent/maildirfolder", NULL,
	};
	static const char *const trash_and_sent_gone[] = {
		"C cur/3.c:2,", "D cur/4.d:2,", "E cur/5.e:2,", NULL,
	};
	static const char *const most_of_inbox[] = { "E cur/5.e:2,", NULL };
	struct config *cfg = alarm_config();
	char b[CHANGE_HEX], c1[CHANGE_HEX], c2[CHANGE_HEX], c3[CHANGE_HEX];
	char u[CHANGE_HEX], pre[CHANGE_SHORT + 1], *s, *dir;
	struct alarm *v;
	size_t n;

	commit(b, "mx1", "base", big);
	commit(c1, "mx1", "two of five", two_of_five);
	is_int(alarm_check(&v, &n, repo, cfg, b, c1, clock_at), 0, "check");
	is_int((long long)n, 0, "2 of 5 in INBOX: under the share, no alarm");
	alarms_free(v, n);

	commit(c2, "mx2", "Trash and Sent gone", trash_and_sent_gone);
	alarm_check(&v, &n, repo, cfg, c1, c2, clock_at);
	if (is_int((long long)n, 1, "a folder gone with a message: an alarm")) {
		is_str(v[0].summary, "1 message expunged: folder Sent removed "
		       "with 1 message", "Trash is ignored, Sent is not");
		is_str(v[0].node, "mx2", "made on mx2");
		ok(!v[0].local && !v[0].held, "not ours, not held");
	}
	alarms_free(v, n);

	cfg->alarm_hold = true;
	commit(c3, "mx1", "most of INBOX", most_of_inbox);
	alarm_check(&v, &n, repo, cfg, c2, c3, clock_at);
	if (is_int((long long)n, 1, "2 of 3 in INBOX: an alarm")) {
		is_str(v[0].summary, "2 messages expunged: 2 of 3 in INBOX",
		       "the share");
		ok(v[0].local && v[0].held, "ours, held");
		s = alarm_undo_line(&v[0]);
		ok(!strncmp(s, "maildag undo ", 13) && strlen(s) == 23 &&
		   !strncmp(s + 13, c3, 10), "the undo line: %s", s);
		free(s);
		is_int(alarm_record(repo->path, v, n), 0, "recorded");
		is_int(alarm_record(repo->path, v, n), 0, "recorded twice");
	}
	alarms_free(v, n);
	alarm_check(&v, &n, repo, cfg, b, c3, clock_at + 8 * 24 * 3600);
	is_int((long long)n, 0, "changes older than a week are not weighed");
	alarms_free(v, n);
	alarm_load(&v, &n, repo->path);
	is_int((long long)n, 1, "the file holds it once");
	alarms_free(v, n);
	ok(alarm_holding(repo->path), "it holds");

	/* an undo made elsewhere settles it */
	s = alarm_undo_origin(c3);
	ok(alarm_undo_of("undo 0123456789: 2 added", pre) &&
	   !strcmp(pre, "0123456789"), "an undo's subject");
	ok(!alarm_undo_of("undone 0123456789: 2 added", pre), "not an undo");
	dir = xasprintf("%s: 2 added", s);
	commit(u, "mx2", dir, base);
	alarm_check(&v, &n, repo, cfg, c3, u, clock_at);
	alarms_free(v, n);
	ok(!alarm_holding(repo->path), "the undo settled it");
	is_int(alarm_settle(repo->path, c3, ALARM_CONFIRMED), E_NOTFOUND,
	       "nothing left to confirm");
	free(dir);
	free(s);
	config_free(cfg);
}

int main(void)
{
	char dir[] = "/tmp/expunged-t.XXXXXX";
	char *path;

	log_init("expunged-t", 0, LOG_LVL_ERROR);
	if (!mkdtemp(dir))
		log_fatal("mkdtemp: failed");
	path = xasprintf("%s/repo.git", dir);
	if (repo_open(&repo, path, REPO_CREATE | REPO_NO_FSYNC) < 0 ||
	    repo_ref_read(&mail, repo, REF_MAIL) < 0)
		log_fatal("cannot create '%s'", path);
	test_change();
	test_find();
	test_snapshot(base_id, base_time);
	test_alarm();
	repo_free(repo);
	{
		char *cmd = xasprintf("rm -rf '%s'", dir);
		if (system(cmd) != 0)
			diag("could not remove %s", dir);
		free(cmd);
	}
	free(path);
	return tap_done();
}
