/*
 * journal-t: the delivery journal's protocol (common/journal.c), on a
 * scratch directory: publish, withdraw, the two ways of claiming, the
 * cleaning of what dead writers left, and the listing fsck prints.  A
 * writer is alive while its entry's descriptor is open (the flock goes
 * with it), so one process plays every part.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tap.h"
#include "fsutil.h"
#include "journal.h"
#include "log.h"
#include "repo.h"
#include "xalloc.h"

#define KEY1 "1700000001.M1P1R0000000000000001Q1.host"
#define KEY2 "1700000002.M2P2R0000000000000002Q1.host"
#define KEY3 "1700000003.M3P3R0000000000000003Q1.w"

static char *top, *dir, *maildir;

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write_full(fd, text, strlen(text)) < 0 || close(fd) < 0)
		log_fatal("cannot write '%s'", path);
}

static char *file_text(const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);

	if (fd >= 0)
		close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

static size_t entries(void)
{
	struct journal_snapshot s;
	size_t n;

	journal_snapshot_read(&s, dir);
	n = s.n;
	journal_snapshot_release(&s);
	return n;
}

static void blob_of(struct oid *out, int i)
{
	char hex[OID_HEXSZ + 1];

	snprintf(hex, sizeof hex, "%040x", i);
	oid_fromstr(out, hex);
}

/* What journal_claim_all hands out, and what to answer. */
struct seen {
	enum journal_verdict answer;
	struct journal_claim c[4];
	size_t n;
};

static enum journal_verdict record(struct journal_claim *c, void *data)
{
	struct seen *s = data;

	if (s->n < 4) {
		s->c[s->n] = *c;
		s->c[s->n].path = xstrdup(c->path);
		s->c[s->n].folder = xstrdup(c->folder);
		s->c[s->n].name = xstrdup(c->name);
		s->n++;
	}
	return s->answer;
}

static void seen_release(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		journal_claim_release(&s->c[i]);
	s->n = 0;
}

struct listed {
	char lines[8][256];
	size_t n;
};

static void list_one(const struct journal_item *it, void *data)
{
	struct listed *l = data;
	static const char *const states[] = { "published", "claimed",
					      "withdrawn" };

	if (l->n < 8)
		snprintf(l->lines[l->n++], sizeof l->lines[0], "%s %s %s",
			 it->target ? it->target : "(malformed)",
			 states[it->state], it->alive ? "alive" : "dead");
}

static void test_publish_withdraw(void)
{
	struct journal_entry e;
	char *msg = xasprintf("%s/new/" KEY1 ",S=5", maildir), *text;
	struct oid b;

	blob_of(&b, 1);
	is_int(journal_publish(&e, dir, &b, KEY1, "", KEY1 ",S=5"), 0,
	       "publish");
	text = file_text(e.path);
	is_str(text, "new/" KEY1 ",S=5\n", "the entry holds the target");
	free(text);
	ok(journal_entry_present(&e), "published: present");
	ok(journal_has_blob(dir, &b), "found by its blob");
	put(msg, "hello");
	ok(journal_withdraw(&e, msg), "withdrawn");
	ok(!path_exists(msg) && !journal_entry_present(&e) && entries() == 0,
	   "withdrawal removes the message and the entry");
	ok(!journal_has_blob(dir, &b), "the blob is no longer journalled");
	journal_entry_close(&e);
	free(msg);
}

static void test_syncd_claim(void)
{
	struct journal_entry e;
	struct journal_snapshot s;
	char *msg = xasprintf("%s/.Sent/new/" KEY2 ",S=5", maildir), *claim = NULL;
	struct oid b, other;

	blob_of(&b, 2);
	blob_of(&other, 3);
	journal_publish(&e, dir, &b, KEY2, ".Sent", KEY2 ",S=5");
	put(msg, "hello");
	journal_snapshot_read(&s, dir);
	is_int(journal_snapshot_claim(&claim, &s, &other, KEY2, strlen(KEY2)),
	       JOURNAL_FOUND_NONE, "other bytes: not a journalled delivery");
	is_int(journal_snapshot_claim(&claim, &s, &b, KEY2 ",S=5",
				      strlen(KEY2)),
	       JOURNAL_FOUND_CLAIMED, "claimed by the key of the name");
	is_str(claim, e.claimed, "the claim is the entry's claimed name");
	ok(!journal_withdraw(&e, msg), "a claimed entry cannot be withdrawn");
	ok(path_exists(msg), "and its message stays");
	ok(journal_entry_present(&e), "the writer sees it still present");
	journal_done(claim);
	ok(!journal_entry_present(&e), "done: gone, the writer sees it committed");
	journal_snapshot_release(&s);
	free(claim);

	/* a withdrawal seen in the snapshot leaves the message out */
	claim = NULL;
	journal_publish(&e, dir, &b, KEY2, ".Sent", KEY2 ",S=5");
	journal_snapshot_read(&s, dir);
	journal_withdraw(&e, NULL);
	is_int(journal_snapshot_claim(&claim, &s, &b, KEY2, strlen(KEY2)),
	       JOURNAL_FOUND_WITHDRAWN, "withdrawn after the snapshot: left out");
	ok(claim == NULL && entries() == 0, "and nothing claimed");
	journal_snapshot_release(&s);
	journal_entry_close(&e);
	unlink(msg);
	free(msg);
}

static void test_group_commit(void)
{
	struct journal_entry mine, dead, alive;
	struct seen s = { .answer = JOURNAL_COMMIT };
	struct listed l = { 0 };
	struct oid b1, b2, b3;
	char *old;

	blob_of(&b1, 1);
	blob_of(&b2, 2);
	blob_of(&b3, 3);
	journal_publish(&mine, dir, &b1, KEY1, "", KEY1 ",S=5");
	journal_publish(&dead, dir, &b2, KEY2, ".Sent", KEY2 ",S=5");
	journal_entry_close(&dead);
	journal_publish(&alive, dir, &b3, KEY3, "", KEY3 ",S=5");
	/* an unpublished entry of a dead writer, old enough to go */
	old = xasprintf("%s/.new-99999999", dir);
	put(old, "x");
	{
		struct timespec ts[2] = { { 1000, 0 }, { 1000, 0 } };
		utimensat(AT_FDCWD, old, ts, 0);
	}
	{
		char *junk = xasprintf("%s/junk", dir);
		put(junk, "junk\n");
		free(junk);
	}

	journal_list(dir, list_one, &l);
	is_int((long long)l.n, 4, "fsck lists four entries");
	is_str(l.lines[0], "new/" KEY1 ",S=5 published alive", "mine");
	is_str(l.lines[1], ".Sent/new/" KEY2 ",S=5 published dead", "a dead writer's");
	is_str(l.lines[2], "new/" KEY3 ",S=5 published alive",
	       "a key that ends as a withdrawal does (host \"w\")");
	is_str(l.lines[3], "(malformed) published dead", "and junk");

	s.answer = JOURNAL_GIVE_BACK;
	is_int(journal_claim_all(dir, maildir, &mine, record, &s), 0,
	       "claim all, give back");
	is_int((long long)s.n, 3, "every entry was handed out");
	ok(s.n == 3 && s.c[0].mine && s.c[0].alive && !s.c[1].mine &&
	   !s.c[1].alive && s.c[2].alive && !s.c[2].mine,
	   "mine, dead and alive told apart");
	ok(s.n == 3 && !strcmp(s.c[1].folder, ".Sent") &&
	   !strcmp(s.c[1].name, KEY2 ",S=5") && oid_equal(&s.c[1].blob, &b2),
	   "folder, name and blob of an entry");
	ok(path_exists(mine.path) && path_exists(alive.path) &&
	   path_exists(dead.path), "given back: every entry under its name");
	ok(!path_exists(old), "a dead writer's unpublished entry is removed");
	seen_release(&s);

	s.answer = JOURNAL_COMMIT;
	journal_claim_all(dir, maildir, &mine, record, &s);
	ok(path_exists(mine.claimed) && path_exists(dead.claimed) &&
	   !path_exists(mine.path), "committing: the claims stay");
	for (size_t i = 0; i < s.n; i++)
		journal_done(s.c[i].path);
	ok(!journal_entry_present(&mine) && !journal_entry_present(&alive),
	   "done: the entries are gone");
	seen_release(&s);

	s.answer = JOURNAL_DROP;
	journal_claim_all(dir, maildir, NULL, record, &s);
	is_int((long long)s.n, 0, "nothing left to claim but junk");
	journal_entry_close(&mine);
	journal_entry_close(&alive);
	free(old);
}

static void test_dead_withdrawal(void)
{
	struct journal_entry e;
	struct seen s = { .answer = JOURNAL_COMMIT };
	char *msg = xasprintf("%s/new/" KEY1 ",S=5", maildir);
	char *junk = xasprintf("%s/junk", dir);
	struct oid b;

	blob_of(&b, 1);
	journal_publish(&e, dir, &b, KEY1, "", KEY1 ",S=5");
	put(msg, "hello");
	/* killed between the rename to withdrawn and the unlink */
	rename(e.path, e.withdrawn);
	journal_entry_close(&e);
	journal_claim_all(dir, maildir, NULL, record, &s);
	ok(s.n == 0 && !path_exists(msg) && !path_exists(e.withdrawn),
	   "a dead writer's withdrawal is finished");
	unlink(junk);
	is_int((long long)entries(), 0, "the journal is empty");
	free(junk);
	free(msg);
}

#define TOKEN "0123456789abcdef"
#define SIEVE_KEY "1700000004.M5P6.mx1.mdg" TOKEN

static void count_list(const struct journal_item *it, void *data)
{
	(void)it;
	(*(int *)data)++;
}

/* Sieve entries: published synced, kept alive by a forked child. */
static void test_sieve(void)
{
	struct journal_sieve e, f;
	struct journal_snapshot s;
	struct seen seen = { .answer = JOURNAL_COMMIT };
	struct oid b, other;
	char *claim = NULL;
	int p[2], listed = 0, st;
	pid_t pid;

	blob_of(&b, 7);
	blob_of(&other, 8);
	is_int(journal_sieve_publish(&e, dir, &b, TOKEN), 0,
	       "a Sieve entry is published");
	ok(journal_sieve_token(e.path + strlen(dir) + 1) &&
	   !strcmp(journal_sieve_token(e.path + strlen(dir) + 1), TOKEN),
	   "its name carries the token");
	ok(!journal_sieve_token("0000000000000000000000000000000000000007-"
				KEY1), "a regular entry has no token");
	ok(journal_has_blob(dir, &b), "journal_has_blob finds it");
	if (pipe(p) < 0 || (pid = fork()) < 0)
		log_fatal("fork");
	if (pid == 0) {
		char c;
		close(p[1]);
		/* the child holds the inherited descriptor until told */
		while (read(p[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(p[0]);
	journal_sieve_close(&e);	/* the parent "dies": the child lives */
	is_int(journal_sieve_find(&f, dir, &b), 2,
	       "the lock lives while the child does");
	journal_sieve_close(&f);
	is_int(journal_sieve_find(&f, dir, &other), 0, "other bytes: none");
	journal_snapshot_read(&s, dir);
	is_int(journal_snapshot_claim(&claim, &s, &other, SIEVE_KEY,
				      strlen(SIEVE_KEY)),
	       JOURNAL_FOUND_SIEVE, "syncd leaves a live Sieve file out");
	journal_claim_all(dir, maildir, NULL, record, &seen);
	journal_list(dir, count_list, &listed);
	ok(seen.n == 0 && listed == 1 && path_exists(e.path),
	   "the group commit leaves it alone, the listing shows it");
	close(p[1]);
	waitpid(pid, &st, 0);
	is_int(journal_snapshot_claim(&claim, &s, &other, SIEVE_KEY,
				      strlen(SIEVE_KEY)),
	       JOURNAL_FOUND_NONE, "a dead one's file is the client's");
	{
		char tok[JOURNAL_TOKEN_LEN + 1] = "";
		char *lock = xasprintf("%s/dovecot-uidlist.lock", maildir);
		ok(journal_snapshot_sieve_dead(&s, SIEVE_KEY, strlen(SIEVE_KEY),
					       tok) && !strcmp(tok, TOKEN),
		   "and its token is a dead one's");
		put(lock, "4242:mx1.mdgffffffffffffffff");
		ok(!journal_sieve_clear_lock(maildir, TOKEN) &&
		   path_exists(lock), "another delivery's Dovecot lock stays");
		put(lock, "4242:mx1.mdg" TOKEN);
		ok(journal_sieve_clear_lock(maildir, TOKEN) &&
		   !path_exists(lock), "the dead child's Dovecot lock goes");
		free(lock);
	}
	journal_snapshot_release(&s);
	is_int(journal_sieve_find(&f, dir, &b), 1,
	       "dead writers: found, and the finder holds it");
	is_str(f.token, TOKEN, "with its token");
	journal_sieve_remove(&f);
	is_int((long long)entries(), 0, "removed");
}

int main(void)
{
	char tmpl[] = "/tmp/journal-t.XXXXXX";

	log_init("journal-t", LOG_TO_STDERR, LOG_LVL_ERROR);
	repo_global_init();
	top = xstrdup(mkdtemp(tmpl));
	dir = xasprintf("%s/pending", top);
	maildir = xasprintf("%s/Maildir", top);
	if (mkdir_p(maildir, 0700) < 0)
		log_fatal("mkdir");
	{
		char *d = xasprintf("%s/new", maildir);
		char *f = xasprintf("%s/.Sent/new", maildir);
		mkdir_p(d, 0700);
		mkdir_p(f, 0700);
		free(d);
		free(f);
	}
	test_publish_withdraw();
	test_syncd_claim();
	test_group_commit();
	test_dead_withdrawal();
	test_sieve();
	rm_rf(top);
	return tap_done();
}
