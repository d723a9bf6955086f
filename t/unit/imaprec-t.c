/*
 * Unit tests for common/imaprec.c: format 2's folder records, message
 * records, keywords, uidslots and the UID block arithmetic.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "strbuf.h"

#define K1 "1700000000.M1P1Q1.host"
#define K2 "1700000001.M2P2Q2.host"

static int folder_ok(const char *s)
{
	struct imap_folder f;
	struct strbuf out = STRBUF_INIT;
	int ret = imap_folder_parse(&f, s, strlen(s), NULL);

	if (ret == 0) {
		imap_folder_format(&out, &f);
		ret = strcmp(out.buf, s) ? -100 : 0;	/* not canonical */
	}
	strbuf_release(&out);
	return ret;
}

static void test_folder(void)
{
	struct imap_folder f;

	is_int(folder_ok("uidvalidity 1796206203\nuidnext 21\n"), 0,
	       "a folder record");
	is_int(folder_ok("uidvalidity 4294967295\nuidnext 1\n"), 0,
	       "the largest UIDVALIDITY");
	is_int(folder_ok("uidvalidity 4294967296\nuidnext 1\n"), E_INVALID,
	       "2^32 refused");
	is_int(folder_ok("uidvalidity 0\nuidnext 1\n"), E_INVALID,
	       "zero refused");
	is_int(folder_ok("uidvalidity 01\nuidnext 1\n"), E_INVALID,
	       "a leading zero refused");
	is_int(folder_ok("uidnext 1\nuidvalidity 1\n"), E_INVALID,
	       "lines in the wrong order refused");
	is_int(folder_ok("uidvalidity 1\nuidnext 1"), E_INVALID,
	       "a missing newline refused");
	is_int(folder_ok("uidvalidity 1\nuidnext 1\n\n"), E_INVALID,
	       "a third line refused");
	is_int(folder_ok("uidvalidity  1\nuidnext 1\n"), E_INVALID,
	       "two spaces refused");
	imap_folder_parse(&f, "uidvalidity 7\nuidnext 9\n", 24, NULL);
	ok(f.uidvalidity == 7 && f.uidnext == 9, "the values read");
}

static void test_keywords(void)
{
	ok(imap_keyword_valid("$Forwarded", 10), "$Forwarded");
	ok(imap_keyword_valid("work-project", 12), "work-project");
	ok(!imap_keyword_valid("\\Seen", 5), "no system flag");
	ok(!imap_keyword_valid("a b", 3), "no space");
	ok(!imap_keyword_valid("a]", 2), "no ]");
	ok(!imap_keyword_valid("\xc3\xa9", 2), "no 8-bit byte");
	ok(!imap_keyword_valid("", 0), "not empty");
	ok(imap_keyword_cmp("$Junk", "$junk") == 0, "names ignore case");
	ok(imap_keyword_cmp("A", "b") < 0 && imap_keyword_cmp("b", "A") > 0,
	   "sorted by the lowercase form");
}

static int recs_ok(const char *s, const char *xx)
{
	struct imap_recs r = IMAP_RECS_INIT;
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
	int ret = imap_recs_parse(&r, s, strlen(s), xx, &err);

	if (ret == 0) {
		imap_recs_format(&out, &r);
		ret = strcmp(out.buf, s) ? -100 : 0;
	} else {
		diag("%s", err.buf);
	}
	imap_recs_release(&r);
	strbuf_release(&out);
	strbuf_release(&err);
	return ret;
}

static void test_recs(void)
{
	struct imap_recs r = IMAP_RECS_INIT;
	struct strbuf s = STRBUF_INIT, path = STRBUF_INIT;
	const char *kw[] = { "work", "$junk", "Work", "$Forwarded", "$Junk" };
	char hex[3];

	maildir_shard_hex(hex, K1, strlen(K1));
	is_int(recs_ok(K1 "\t3\n", hex), 0, "a record without keywords");
	is_int(recs_ok(K1 "\t3\t$Forwarded $Junk work-project\n", hex), 0,
	       "a record with keywords");
	is_int(recs_ok(K1 "\t3\t$Junk $Forwarded\n", hex), E_INVALID,
	       "unsorted keywords refused");
	is_int(recs_ok(K1 "\t3\t$Junk $junk\n", hex), E_INVALID,
	       "a name twice in two spellings refused");
	is_int(recs_ok(K1 "\t3\t\n", hex), E_INVALID, "an empty keyword list refused");
	is_int(recs_ok(K1 "\t0\n", hex), E_INVALID, "UID 0 refused");
	is_int(recs_ok(K1 "\t-\n", hex), 0, "an unnumbered record ('-')");
	is_int(recs_ok(K1 "\t-\t$Junk\n", hex), 0,
	       "an unnumbered record with keywords");
	is_int(recs_ok(K1 "\t--\n", hex), E_INVALID, "'--' refused");
	is_int(recs_ok(K1 "\t-1\n", hex), E_INVALID, "'-1' refused");
	is_int(recs_ok(K1 "\t3\n", "zz"), E_INVALID, "a key of another shard refused");
	is_int(recs_ok("17 00.x\t3\n", NULL), 0, "a key with a space");
	is_int(recs_ok("b\t1\na\t2\n", NULL), E_INVALID, "unsorted keys refused");
	is_int(recs_ok("a\t1\na\t2\n", NULL), E_INVALID, "a key twice refused");
	is_int(recs_ok(".a\t1\n", NULL), E_INVALID, "a dot key refused");
	is_int(recs_ok("a:2,S\t1\n", NULL), E_INVALID, "a name is not a key");

	imap_recs_set(&r, K2, 0, kw, 5);
	imap_recs_set(&r, K1, 4, NULL, 0);
	imap_recs_format(&s, &r);
	is_str(s.buf, K1 "\t4\n" K2 "\t-\t$Forwarded $Junk Work\n",
	       "UID 0 is written '-'");
	strbuf_reset(&s);
	imap_recs_set(&r, K2, 9, kw, 5);
	imap_recs_format(&s, &r);
	is_str(s.buf, K1 "\t4\n" K2 "\t9\t$Forwarded $Junk Work\n",
	       "set sorts keys and keywords, keeps the smallest spelling");
	ok(imap_recs_find(&r, K2) && imap_recs_find(&r, K2)->uid == 9, "find");
	imap_recs_remove(&r, K2);
	ok(!imap_recs_find(&r, K2) && r.n == 1, "remove");
	imap_recs_path(&path, K1, strlen(K1));
	is_str(path.buf + 5, hex, "the path is imap/<shard>");
	imap_recs_release(&r);
	strbuf_release(&s);
	strbuf_release(&path);
}

static void test_slots(void)
{
	struct imap_slots sl = IMAP_SLOTS_INIT;
	struct strbuf s = STRBUF_INIT;
	const char *good = "0 mx1\n1 mx2\n1 mx3\n";

	is_int(imap_slots_parse(&sl, good, strlen(good), NULL), 0, "uidslots");
	is_int(imap_slots_claim(&sl, "mx3"), 1, "a node keeps its slot");
	is_int(imap_slots_claim(&sl, "mx4"), 2, "a new node claims the lowest free slot");
	imap_slots_add(&sl, 2, "mx4");
	imap_slots_add(&sl, 2, "mx4");
	imap_slots_format(&s, &sl);
	is_str(s.buf, "0 mx1\n1 mx2\n1 mx3\n2 mx4\n", "add is a set union");
	imap_slots_release(&sl);
	is_int(imap_slots_parse(&sl, "7 mx1\n", 6, NULL), E_INVALID,
	       "slot 7 is the merge's");
	is_int(imap_slots_parse(&sl, "1 b\n0 a\n", 8, NULL), E_INVALID,
	       "unsorted lines refused");
	is_int(imap_slots_parse(&sl, "1 a/b\n", 6, NULL), E_INVALID,
	       "a bad node name refused");
	strbuf_release(&s);
}

static void test_blocks(void)
{
	ok(imap_uid_slot(1) == 0 && imap_uid_slot(512) == 0 &&
	   imap_uid_slot(513) == 1 && imap_uid_slot(4096 + 1) == 0,
	   "blocks of 512 go round 8 slots");
	is_int(imap_uid_alloc(1, 0, 1), 1, "slot 0 starts at 1");
	is_int(imap_uid_alloc(1, 1, 1), 513, "slot 1 starts at 513");
	is_int(imap_uid_alloc(600, 1, 1), 600, "inside our block: the next UID");
	is_int(imap_uid_alloc(1020, 1, 10), 513 + 4096,
	       "no room for the batch: our next block");
	is_int(imap_uid_alloc(1025, 1, 1), 513 + 4096, "past our block");
	is_int(imap_uid_alloc(20, 7, 3), 7 * 512 + 1, "the merge's slot");
	is_int(imap_uid_alloc(IMAP_UID_MAX - 10, 7, 1), IMAP_UID_MAX - 10,
	       "the last block is slot 7's");
	is_int(imap_uid_alloc(IMAP_UID_MAX - 10, 0, 1), 0, "no room left");
	is_int(imap_uid_alloc(1, 0, 513), 0, "a batch larger than a block");
}

int main(void)
{
	test_folder();
	test_keywords();
	test_recs();
	test_slots();
	test_blocks();
	return tap_done();
}
