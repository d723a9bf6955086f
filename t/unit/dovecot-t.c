/*
 * Unit tests for common/dovecot.c: dovecot-uidlist read and written back
 * as read, appends, the dotlock, dovecot-keywords and its mtime, and
 * which Dovecot settings are unsafe for failing over.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../tap.h"
#include "dovecot.h"
#include "fsutil.h"
#include "imaprec.h"
#include "log.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

static char dir[] = "/tmp/dovecot-t.XXXXXX";

static void put(const char *name, const char *s)
{
	char *p = xasprintf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write_full(fd, s, strlen(s)) < 0)
		log_fatal("write '%s'", p);
	close(fd);
	free(p);
}

static char *get(const char *name)
{
	char *p = xasprintf("%s/%s", dir, name), *s = xmalloc(65536);
	int fd = open(p, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, s, 65535);

	s[n < 0 ? 0 : n] = '\0';
	if (fd >= 0)
		close(fd);
	free(p);
	return s;
}

#define UL "3 V1796206203 N21 G8a5c2b1d0e3f4a5b6c7d8e9f0a1b2c3d Xkept\n" \
	"1 :1700000000.M1P1Q1.host,S=10\n" \
	"2 W123 GabC :1700000001.M2P2Q2.host\n" \
	"20 :a name with spaces\n"

static void test_uidlist(void)
{
	struct uidlist u = UIDLIST_INIT;
	char *s;

	put(DOVECOT_UIDLIST, UL);
	is_int(uidlist_read(&u, dir), 0, "a uidlist");
	ok(u.uidvalidity == 1796206203u && u.nextuid == 21 && u.n == 3,
	   "V, N and three records");
	is_str(u.v[1].ext, " W123 GabC", "extension fields kept");
	is_str(u.v[2].base, "a name with spaces", "a base name with spaces");
	ok(uidlist_find(&u, "1700000001.M2P2Q2.host") == &u.v[1], "find");
	is_int(uidlist_next(&u), 21, "next UID");
	is_int(uidlist_rewrite(dir, &u), 0, "rewrite");
	s = get(DOVECOT_UIDLIST);
	is_str(s, UL, "written back as read");
	free(s);
	is_int(uidlist_add(&u, 20, "x", ""), E_INVALID, "no record below next");
	is_int(uidlist_add(&u, 513, "1700000005.M5P5Q5.host", ""), 0, "add 513");
	is_int(uidlist_append(dir, &u, 3), 0, "append");
	s = get(DOVECOT_UIDLIST);
	is_str(s, UL "513 :1700000005.M5P5Q5.host\n", "appended at the end");
	free(s);
	is_int(uidlist_next(&u), 514, "next UID above the last record");
	uidlist_release(&u);
	is_int(uidlist_read(&u, dir), 0, "read again");
	is_int(uidlist_rewrite(dir, &u), 0, "rewrite");
	s = get(DOVECOT_UIDLIST);
	ok(!strncmp(s, "3 V1796206203 N514 G", 20), "N is raised: %.30s", s);
	free(s);
	uidlist_release(&u);

	put(DOVECOT_UIDLIST, "3 V1 N5\n3 :a\n2 :b\n");
	is_int(uidlist_read(&u, dir), E_INVALID, "UIDs out of order refused");
	put(DOVECOT_UIDLIST, "3 V0 N5\n");
	is_int(uidlist_read(&u, dir), E_INVALID, "V0 refused");
	put(DOVECOT_UIDLIST, "1 123 5\n");
	is_int(uidlist_read(&u, dir), E_INVALID, "version 1 not read");
	put(DOVECOT_UIDLIST, "3 V1 N5\n3 :a/b\n");
	is_int(uidlist_read(&u, dir), E_INVALID, "a / in a name refused");
	put(DOVECOT_UIDLIST, "3 V1 N5\n3 :a\n4 :b");
	is_int(uidlist_read(&u, dir), 0, "a half-written last line");
	is_int(u.n, 1, "is not read");
	uidlist_release(&u);
}

/*
 * uidlist_read_some() against the full read: the same records, those
 * asked for and the tail, in UID order, whatever is asked.
 */
static void test_read_some(void)
{
	struct strbuf b = STRBUF_INIT;
	struct uidlist full = UIDLIST_INIT, u = UIDLIST_INIT;
	unsigned long seed = 12345;
	int bad = 0;

	strbuf_addstr(&b, "3 V77 N5000 Gabc\n");
	for (unsigned i = 0; i < 1000; i++)
		strbuf_addf(&b, "%u%s :m%u.host,S=%u\n", 2 * i + 1,
			    i % 7 ? "" : " W12", i, i * 3);
	put(DOVECOT_UIDLIST, b.buf);
	is_int(uidlist_read(&full, dir), 0, "the full read");
	for (int c = 0; c < 300; c++) {
		uint32_t want[6], tail;
		size_t n = 0;
		seed = seed * 6364136223846793005UL + 1442695040888963407UL;
		tail = (uint32_t)(seed >> 33) % 2100;
		for (int k = 0; k < 6; k++) {
			seed = seed * 6364136223846793005UL + 1;
			want[n++] = (uint32_t)(seed >> 33) % 2100;
		}
		if (uidlist_read_some(&u, dir, want, n, tail) != 0) {
			bad++;
			continue;
		}
		for (size_t i = 0, j = 0; i < full.n; i++) {
			const struct uidlist_rec *x = &full.v[i];
			bool asked = x->uid >= tail || i == full.n - 1;
			for (size_t k = 0; k < n; k++)
				asked |= want[k] == x->uid;
			if (!asked)
				continue;
			if (j >= u.n || u.v[j].uid != x->uid ||
			    strcmp(u.v[j].base, x->base) ||
			    strcmp(u.v[j].ext, x->ext))
				bad++;
			j++;
			if (i == full.n - 1 && j != u.n)
				bad++;
		}
		if (u.uidvalidity != 77 || strcmp(u.hdr, " Gabc") ||
		    uidlist_next(&u) != uidlist_next(&full))
			bad++;
		uidlist_release(&u);
	}
	is_int(bad, 0, "300 partial reads agree with the full read");
	uidlist_release(&full);

	{
		uint32_t want[] = { 3, 4 };
		put(DOVECOT_UIDLIST, "3 V1 N9\n1 :a\n3 :b\n5 :c\n7 :d");
		is_int(uidlist_read_some(&u, dir, want, 2, 100), 0,
		       "a half-written last line");
		ok(u.n == 2 && u.v[0].uid == 3 && u.v[1].uid == 5 &&
		   uidlist_next(&u) == 9, "b and the last complete record");
		uidlist_release(&u);
		put(DOVECOT_UIDLIST, "3 V1 N9\n1 :a\n3 :b/x\n5 :c\n");
		is_int(uidlist_read_some(&u, dir, want, 1, 100), UIDLIST_WHOLE,
		       "a bad line looked at: the whole read");
		put(DOVECOT_UIDLIST, "3 V1 N9\n1 :a\nx :b\n5 :c\n");
		is_int(uidlist_read_some(&u, dir, want, 1, 100), UIDLIST_WHOLE,
		       "no UID where the search looks");
		put(DOVECOT_UIDLIST, "3 V1 N9\n");
		is_int(uidlist_read_some(&u, dir, want, 2, 1), 0, "no record");
		ok(u.n == 0 && uidlist_next(&u) == 9, "none read, N kept");
		uidlist_release(&u);
		{
			char *p = xasprintf("%s/" DOVECOT_UIDLIST, dir);
			unlink(p);
			free(p);
		}
		is_int(uidlist_read_some(&u, dir, want, 2, 1), E_NOTFOUND,
		       "no uidlist");
	}
	strbuf_release(&b);
}

static void test_lock(void)
{
	struct dovecot_lock a = DOVECOT_LOCK_INIT, b = DOVECOT_LOCK_INIT;
	char *s;

	is_int(dovecot_lock(&a, dir, 0), 0, "lock");
	s = get(DOVECOT_UIDLIST ".lock");
	ok(atol(s) == (long)getpid() && strchr(s, ':'), "pid:host in it");
	free(s);
	is_int(dovecot_lock(&b, dir, 30), E_TEMP, "a held lock is waited for, then E_TEMP");
	dovecot_unlock(&a);
	is_int(dovecot_lock(&b, dir, 0), 0, "free again");
	dovecot_unlock(&b);

	/* (t3013) a client's RENAME took the folder, our lock in it */
	{
		char *f = xasprintf("%s/.F", dir), *g = xasprintf("%s/.G", dir);
		char *gl = xasprintf("%s/" DOVECOT_UIDLIST ".lock", g);
		mkdir(f, 0700);
		is_int(dovecot_lock(&a, f, 0), 0, "lock in a folder");
		ok(rename(f, g) == 0, "the folder renamed");
		dovecot_unlock(&a);
		ok(!path_exists(gl), "our lock is gone from the renamed folder");
		rm_rf(g);
		free(f);
		free(g);
		free(gl);
	}
}

static void test_keywords(void)
{
	struct dovecot_keywords k;
	struct stat st1, st2;
	char *p = xasprintf("%s/%s", dir, DOVECOT_KEYWORDS), *s;

	put(DOVECOT_KEYWORDS, "0 $Forwarded\n2 work-project\nbad\n");
	is_int(dovecot_keywords_read(&k, dir), 0, "keywords");
	is_int(dovecot_keywords_index(&k, "WORK-project", false), 2,
	       "found ignoring case");
	is_int(dovecot_keywords_index(&k, "$Junk", false), -1, "absent");
	is_int(dovecot_keywords_index(&k, "$Junk", true), 1,
	       "a new name takes the lowest free index");
	stat(p, &st1);
	is_int(dovecot_keywords_write(dir, &k), 0, "write");
	stat(p, &st2);
	ok(st2.st_mtime > st1.st_mtime || st2.st_mtime >= time(NULL),
	   "the mtime moves on");
	st1 = st2;
	is_int(dovecot_keywords_write(dir, &k), 0, "write again");
	stat(p, &st2);
	ok(st2.st_mtime > st1.st_mtime, "the mtime grows on every write");
	s = get(DOVECOT_KEYWORDS);
	is_str(s, "0 $Forwarded\n1 $Junk\n2 work-project\n", "the lines");
	free(s);
	for (int i = 0; i < 30; i++) {
		char name[16];
		snprintf(name, sizeof name, "kw%d", i);
		dovecot_keywords_index(&k, name, true);
	}
	is_int(dovecot_keywords_index(&k, "one-more", true), -1, "26 at most");
	{
		struct strvec names = STRVEC_INIT;
		struct strbuf let = STRBUF_INIT;
		const char *want[] = { "kw3", "$JUNK", "one-more", "$Forwarded" };

		dovecot_keywords_names(&names, &k, "Sca");
		ok(names.n == 2 && !strcmp(names.v[0], "work-project") &&
		   !strcmp(names.v[1], "$Forwarded"), "letters to names");
		is_int((long long)dovecot_keywords_letters(&let, &k, want, 4, true),
		       1, "one name gets no letter when all 26 are taken");
		is_str(let.buf, "abg", "names to letters, sorted");
		is_int(dovecot_keywords_gc(&k, (1u << 0) | (1u << 1)), 24,
		       "names no file uses are dropped");
		strbuf_reset(&let);
		is_int((long long)dovecot_keywords_letters(&let, &k, want, 4, true),
		       0, "then there is room again");
		is_str(let.buf, "abcd", "new names take the freed letters");
		strvec_clear(&names);
		dovecot_keywords_names(&names, &k, "z");
		is_str(names.n ? names.v[0] : NULL, "unknown-25",
		       "a letter without a name is unknown-<index>");
		strvec_clear(&names);
		strbuf_release(&let);
	}
	dovecot_keywords_release(&k);
	free(p);
}

static void test_records(void)
{
	struct uidlist u = UIDLIST_INIT;
	struct dovecot_keywords k;
	struct imap_recs recs = IMAP_RECS_INIT;
	struct imap_folder f;
	struct strbuf out = STRBUF_INIT;
	char *s;
	const char *names[] = {
		"1700000000.M1P1Q1.host,S=10:2,Sb",
		"1700000001.M2P2Q2.host:2,",
		"1700000009.M9P9Q9.host:2,Fa",
	};

	put(DOVECOT_UIDLIST, "3 V77 N21 Gabc\n1 :1700000000.M1P1Q1.host,S=10\n"
	    "20 :1700000001.M2P2Q2.host\n");
	put(DOVECOT_KEYWORDS, "0 $Junk\n1 work-project\n");
	uidlist_read(&u, dir);
	dovecot_keywords_read(&k, dir);
	is_int(dovecot_records(&recs, &f, &u, &k, names, 3, 1), 0,
	       "records of a folder");
	imap_recs_format(&out, &recs);
	is_str(out.buf, "1700000000.M1P1Q1.host\t1\twork-project\n"
	       "1700000001.M2P2Q2.host\t20\n"
	       "1700000009.M9P9Q9.host\t513\t$Junk\n",
	       "UIDs from the uidlist, a new one from slot 1, keyword names");
	ok(f.uidvalidity == 77 && f.uidnext == 514, "the folder record");
	is_int(uidlist_append(dir, &u, 2), 0, "the new record appended");
	s = get(DOVECOT_UIDLIST);
	ok(strstr(s, "\n513 :1700000009.M9P9Q9.host\n") != NULL,
	   "under its base name");
	free(s);
	imap_recs_release(&recs);
	strbuf_release(&out);
	dovecot_keywords_release(&k);
	uidlist_release(&u);
}

/* what lets a CONDSTORE client moved between replicas miss changes */
static void test_failover(void)
{
	static const char dflt[] = "IMAP4rev1 SASL-IR ID ENABLE IDLE UIDPLUS ESEARCH";
	static const struct {
		const char *loc, *cap;
		unsigned want;
	} t[] = {
		{ "maildir:~/Maildir:INDEX=MEMORY", dflt, 0 },
		{ "maildir:~/Maildir:LAYOUT=fs:INDEX=MEMORY:UTF8", dflt, 0 },
		{ "maildir:~/Maildir", dflt, DOVECOT_FAILOVER_INDEX_ON_DISK },
		{ "maildir:~/Maildir:INDEX=/var/idx/%u", dflt,
		  DOVECOT_FAILOVER_INDEX_ON_DISK },
		{ "maildir:~/Maildir:INDEX=MEMORYX", dflt,
		  DOVECOT_FAILOVER_INDEX_ON_DISK },
		{ "maildir:~/INDEX=MEMORY", dflt, DOVECOT_FAILOVER_INDEX_ON_DISK },
		{ "maildir:~/Maildir:INDEX=MEMORY", "", DOVECOT_FAILOVER_CONDSTORE },
		{ "maildir:~/Maildir:INDEX=MEMORY", "+XFOO",
		  DOVECOT_FAILOVER_CONDSTORE },
		{ "maildir:~/Maildir:INDEX=MEMORY", "IMAP4rev1 condstore",
		  DOVECOT_FAILOVER_CONDSTORE },
		{ "maildir:~/Maildir:INDEX=MEMORY", "IMAP4rev1\tQRESYNC ID",
		  DOVECOT_FAILOVER_CONDSTORE },
		{ "maildir:~/Maildir:INDEX=MEMORY", "IMAP4rev1 XCONDSTORE QRESYNCX", 0 },
		{ "maildir:~/Maildir", "", DOVECOT_FAILOVER_INDEX_ON_DISK |
					   DOVECOT_FAILOVER_CONDSTORE },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		is_int(dovecot_failover_unsafe(t[i].loc, t[i].cap), t[i].want,
		       "failover: '%s', '%s'", t[i].loc, t[i].cap);
}

/* a record renamed keeps its UID and its GUID: one of its own, or the
 * old base name's as a G field (E5) */
static void test_rename(void)
{
	struct uidlist u = UIDLIST_INIT;
	const struct uidlist_rec *r;

	put(DOVECOT_UIDLIST, UL);
	if (uidlist_read(&u, dir) < 0)
		log_fatal("uidlist_read");
	ok(uidlist_rename(&u, "1700000000.M1P1Q1.host,S=10", "new1"),
	   "rename: a record without G");
	r = uidlist_find(&u, "new1");
	ok(r && r->uid == 1 && !strcmp(r->ext, " G1700000000.M1P1Q1.host,S=10"),
	   "rename: same UID, the old base name as its GUID");
	ok(!uidlist_find(&u, "1700000000.M1P1Q1.host,S=10"),
	   "rename: the old name is gone");
	ok(uidlist_rename(&u, "1700000001.M2P2Q2.host", "new2"),
	   "rename: a record with a G");
	r = uidlist_find(&u, "new2");
	ok(r && r->uid == 2 && !strcmp(r->ext, " W123 GabC"),
	   "rename: its own GUID kept, no second G");
	ok(!uidlist_rename(&u, "none", "x"), "rename: no such record");
	is_int(uidlist_next(&u), 21, "rename: the next UID unchanged");
	uidlist_release(&u);
}

int main(void)
{
	log_init("dovecot-t", LOG_TO_STDERR, LOG_LVL_ERROR);
	if (!mkdtemp(dir))
		log_fatal("mkdtemp");
	test_uidlist();
	test_read_some();
	test_lock();
	test_keywords();
	test_records();
	test_failover();
	test_rename();
	rm_rf(dir);
	return tap_done();
}
