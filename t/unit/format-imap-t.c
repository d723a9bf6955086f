/*
 * Unit tests for common/format_imap.c: the check of format 2 trees
 * (doc/imap-identity.md 4.2).  Trees are built with repo_tree_update()
 * from a list of "path=content" entries; {S} in a path is the shard of
 * the key that follows the last '/' (or of K1 in "imap/{S1}").
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "format.h"
#include "fsutil.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "repo.h"
#include "strbuf.h"
#include "xalloc.h"

#define K1 "1700000000.M1P1Q1.host"
#define K2 "1700000001.M2P2Q2.host"
#define K3 "1700000002.M3P3Q3.host"
#define K4 "1700000003.M4P4Q4.host"

static struct repo *repo;

static char *shard_of(const char *key)
{
	char hex[3];

	maildir_shard_hex(hex, key, maildir_key_len(key));
	return xstrdup(hex);
}

/* A tree of the entries (path, content) up to a NULL path. */
static void make_tree(struct oid *out, const char *const *ent)
{
	struct repo_update ups[32];
	struct oid ids[32];
	size_t n = 0;

	for (; ent[0]; ent += 2, n++) {
		if (repo_blob_from_buffer(&ids[n], repo, ent[1], strlen(ent[1])) < 0)
			log_fatal("blob");
		ups[n] = (struct repo_update){ ent[0], &ids[n], false };
	}
	if (repo_tree_update(out, repo, NULL, ups, n) < 0)
		log_fatal("tree");
}

/* Check the tree; "" when valid, else the problem line. */
static char *check(const char *const *ent)
{
	struct strbuf err = STRBUF_INIT;
	struct oid tree;

	make_tree(&tree, ent);
	format_check_tree(repo, &tree, NULL, &err);
	return strbuf_detach(&err, NULL);
}

static char *p_cur1, *p_cur2, *p_sent3, *p_imap1, *p_imap2, *p_imap3;

static void paths(void)
{
	char *s1 = shard_of(K1), *s2 = shard_of(K2), *s3 = shard_of(K3);

	p_cur1 = xasprintf("cur/%s/" K1 ":2,S", s1);
	p_cur2 = xasprintf("new/%s/" K2, s2);
	p_sent3 = xasprintf(".Sent/cur/%s/" K3 ":2,RS", s3);
	p_imap1 = xasprintf("imap/%s", s1);
	p_imap2 = xasprintf("imap/%s", s2);
	p_imap3 = xasprintf("imap/%s", s3);
	free(s1);
	free(s2);
	free(s3);
}

/* The valid format 2 tree, with entry i replaced by (path, content). */
static char *variant(const char *path, const char *content, int drop)
{
	const char *ent[] = {
		"FORMAT", "maildag 2\n",
		"uidslots", "0 mx1\n1 mx2\n",
		"imapfolder", "uidvalidity 1796206203\nuidnext 514\n",
		p_cur1, "m1",
		p_cur2, "m2",
		".Sent/maildirfolder", "",
		".Sent/imapfolder", "uidvalidity 1796206204\nuidnext 2\n",
		p_sent3, "m3",
		p_imap1, K1 "\t1\t$Forwarded work-project\n",
		p_imap2, K2 "\t513\n",
		p_imap3, K3 "\t1\n",
		NULL, NULL, NULL, NULL,
	};
	size_t n = sizeof ent / sizeof ent[0] - 4;

	if (drop >= 0) {
		memmove(&ent[2 * drop], &ent[2 * drop + 2],
			(n - 2 * drop) * sizeof *ent);
		n -= 2;
	}
	if (path) {
		size_t i;
		for (i = 0; i < n && strcmp(ent[i], path); i += 2)
			;
		ent[i] = path;
		ent[i + 1] = content;
	}
	return check(ent);
}

static void want(char *got, const char *substr, const char *what)
{
	if (!*substr)
		is_str(got, "", "%s", what);
	else if (!ok(strstr(got, substr) != NULL, "%s", what))
		diag("got '%s', want '%s'", got, substr);
	free(got);
}

/* --- the ancestor rule (format_check_tree_since) ------------------------ */

/* path of key k in folder f ("" or ".Sent/"), sub "cur"/"new", flags */
static char *mpath(const char *f, const char *sub, const char *k,
		   const char *flags)
{
	char *s = shard_of(k), *p;

	p = xasprintf("%s%s/%s/%s%s%s", f, sub, s, k, *flags ? ":2," : "",
		      flags);
	free(s);
	return p;
}

static char *ipath(const char *k)
{
	char *s = shard_of(k), *p = xasprintf("imap/%s", s);

	free(s);
	return p;
}

/*
 * The ancestor T: INBOX (uidvalidity 1, uidnext 10) holds K1 at 1 and
 * K2 at 5; .Sent (uidvalidity 2, uidnext 3) holds K3 at 2.  A variant N
 * is T with the entries of ch (path, content; content NULL removes)
 * changed; checked against T as its ancestor.
 */
static struct oid since_t;

static char *since_check(const char *const *ch, bool ancestor)
{
	struct repo_update ups[32];
	struct oid ids[32], n;
	struct strbuf err = STRBUF_INIT;
	size_t k = 0;

	for (; ch[0]; ch += 2, k++) {
		if (ch[1] && repo_blob_from_buffer(&ids[k], repo, ch[1],
						   strlen(ch[1])) < 0)
			log_fatal("blob");
		ups[k] = (struct repo_update){ ch[0], ch[1] ? &ids[k] : NULL,
					       false };
	}
	if (repo_tree_update(&n, repo, &since_t, ups, k) < 0)
		log_fatal("tree");
	if (ancestor)
		format_check_tree_since(repo, &n, &since_t, &err);
	else
		format_check_tree(repo, &n, &since_t, &err);
	return strbuf_detach(&err, NULL);
}

/* The records of shard(k) for key/uid pairs (a NULL key ends), sorted. */
static char *recs_of(const char *k0, ...)
{
	struct imap_recs r = IMAP_RECS_INIT;
	struct strbuf b = STRBUF_INIT;
	va_list ap;

	va_start(ap, k0);
	for (const char *k = k0; k; k = va_arg(ap, const char *)) {
		unsigned u = va_arg(ap, unsigned);
		imap_recs_set(&r, k, u, NULL, 0);
	}
	va_end(ap);
	imap_recs_format(&b, &r);
	imap_recs_release(&r);
	return strbuf_detach(&b, NULL);
}

/*
 * More changed shard trees than the walk keeps parsed (KEEP_TREES, 256):
 * 2,000 messages in .Sent and 2,000 in INBOX, every one's flags changed
 * (about 512 shard trees); then one INBOX message, in a tree read again,
 * given a UID another message holds.
 */
static void many_trees(void)
{
	enum { M = 2000 };
	struct imap_recs recs[256];
	struct repo_update *ups = xcalloc(4 * M + 300, sizeof *ups);
	char **paths = xcalloc(4 * M + 300, sizeof *paths);
	struct oid blob, fmt, fi, fs, *rid = xcalloc(256, sizeof *rid);
	struct oid t, n, n2;
	struct strbuf b = STRBUF_INIT, err = STRBUF_INIT;
	size_t k = 0, np = 0;
	char *victim = NULL;

	memset(recs, 0, sizeof recs);
	repo_blob_from_buffer(&blob, repo, "m", 1);
	repo_blob_from_buffer(&fmt, repo, "maildag 2\n", 10);
	repo_blob_from_buffer(&fi, repo, "uidvalidity 1\nuidnext 2001\n", 27);
	repo_blob_from_buffer(&fs, repo, "uidvalidity 2\nuidnext 2001\n", 27);
	ups[k++] = (struct repo_update){ "FORMAT", &fmt, false };
	ups[k++] = (struct repo_update){ "imapfolder", &fi, false };
	ups[k++] = (struct repo_update){ ".Sent/imapfolder", &fs, false };
	for (unsigned i = 0; i < 2 * M; i++) {
		char *key = xasprintf("1700000000.M%uP1Q1.host", i);
		paths[np] = mpath(i < M ? "" : ".Sent/", "cur", key, "S");
		ups[k++] = (struct repo_update){ paths[np++], &blob, false };
		imap_recs_set(&recs[maildir_shard(key, strlen(key))], key,
			      i % M + 1, NULL, 0);
		if (i == M - 1)
			victim = xstrdup(key);
		free(key);
	}
	for (unsigned x = 0; x < 256; x++) {
		if (!recs[x].n)
			continue;
		strbuf_reset(&b);
		imap_recs_format(&b, &recs[x]);
		repo_blob_from_buffer(&rid[x], repo, b.buf, b.len);
		strbuf_reset(&b);
		imap_recs_shard_path(&b, x);
		paths[np] = strbuf_detach(&b, NULL);
		ups[k++] = (struct repo_update){ paths[np++], &rid[x], false };
	}
	if (repo_tree_update(&t, repo, NULL, ups, k) < 0)
		log_fatal("tree");
	k = 0;
	for (unsigned i = 0; i < 2 * M; i++) {
		char *key = xasprintf("1700000000.M%uP1Q1.host", i);
		ups[k++] = (struct repo_update){ paths[i], NULL, false };
		paths[np] = mpath(i < M ? "" : ".Sent/", "cur", key, "RS");
		ups[k++] = (struct repo_update){ paths[np++], &blob, false };
		free(key);
	}
	if (repo_tree_update(&n, repo, &t, ups, k) < 0)
		log_fatal("tree");
	is_int(format_check_tree(repo, &t, NULL, &err), 0,
	       "many: the ancestor is valid %s", err.buf);
	is_int(format_check_tree_since(repo, &n, &t, &err), 0,
	       "many: every flag changed, %u shard trees: valid %s", 512,
	       err.buf);
	{
		/* the victim (INBOX, UID 2000) takes UID 1 */
		unsigned x = maildir_shard(victim, strlen(victim));
		struct oid id;
		struct repo_update up;
		imap_recs_set(&recs[x], victim, 1, NULL, 0);
		strbuf_reset(&b);
		imap_recs_format(&b, &recs[x]);
		repo_blob_from_buffer(&id, repo, b.buf, b.len);
		strbuf_reset(&b);
		imap_recs_shard_path(&b, x);
		up = (struct repo_update){ b.buf, &id, false };
		if (repo_tree_update(&n2, repo, &n, &up, 1) < 0)
			log_fatal("tree");
		strbuf_reset(&err);
		is_int(format_check_tree_since(repo, &n2, &t, &err), E_INVALID,
		       "many: a UID given twice, in a tree read again, refused");
		ok(strstr(err.buf, "UID 1 is below uidnext 2001") != NULL,
		   "many: ... by the ancestor rule: %s", err.buf);
	}
	for (unsigned x = 0; x < 256; x++)
		imap_recs_release(&recs[x]);
	for (size_t i = 0; i < np; i++)
		free(paths[i]);
	free(paths);
	free(ups);
	free(rid);
	free(victim);
	strbuf_release(&b);
	strbuf_release(&err);
}

static void since_tests(void)
{
	char *c1 = mpath("", "cur", K1, "S"), *c2 = mpath("", "cur", K2, "S");
	char *s3 = mpath(".Sent/", "cur", K3, "S");
	char *i1 = ipath(K1), *i2 = ipath(K2), *i3 = ipath(K3), *i4 = ipath(K4);
	char *c1r = mpath("", "cur", K1, "RS"), *c4 = mpath("", "cur", K4, "");
	char *in3 = mpath("", "cur", K3, "S"), *n4 = mpath(".New/", "cur", K4, "");
	char *r2 = recs_of(K2, 5u, NULL), *r4;
	struct strbuf err = STRBUF_INIT;
	const char *t[] = {
		"FORMAT", "maildag 2\n",
		"imapfolder", "uidvalidity 1\nuidnext 10\n",
		c1, "m1", c2, "m2",
		".Sent/maildirfolder", "",
		".Sent/imapfolder", "uidvalidity 2\nuidnext 3\n",
		s3, "m3",
		i1, NULL, i2, NULL, i3, NULL,
		NULL, NULL,
	};
	char *shard_recs[3];

	if (!strcmp(i1, i2) || !strcmp(i1, i3) || !strcmp(i2, i3) ||
	    !strcmp(i4, i1) || !strcmp(i4, i2) || !strcmp(i4, i3))
		log_fatal("the test keys share a shard");
	shard_recs[0] = recs_of(K1, 1u, NULL);
	shard_recs[1] = recs_of(K2, 5u, NULL);
	shard_recs[2] = recs_of(K3, 2u, NULL);
	t[15] = shard_recs[0];
	t[17] = shard_recs[1];
	t[19] = shard_recs[2];
	make_tree(&since_t, t);
	is_int(format_check_tree(repo, &since_t, NULL, &err), 0,
	       "since: the ancestor is valid %s", err.buf);
	strbuf_release(&err);

	{
		const char *ch[] = { c1, NULL, c1r, "m1", NULL, NULL };
		want(since_check(ch, true), "", "since: a flag changed");
	}
	{
		char *n2 = mpath("", "new", K2, "");
		const char *ch[] = { c2, NULL, n2, "m2", NULL, NULL };
		want(since_check(ch, true), "",
		     "since: a message from cur/ to new/, its UID kept");
		free(n2);
	}
	{
		/* K2's keywords change: its record changes, its UID (below
		   our uidnext) stays */
		char *r = xasprintf(K2 "\t5\t$Junk\n");
		const char *ch[] = { i2, r, NULL, NULL };
		want(since_check(ch, true), "",
		     "since: a record changed, its UID below uidnext kept");
		free(r);
	}
	r4 = recs_of(K4, 12u, NULL);
	{
		const char *ch[] = { c4, "m4", i4, r4, "imapfolder",
				     "uidvalidity 1\nuidnext 13\n", NULL, NULL };
		want(since_check(ch, true), "",
		     "since: a new message at or above the ancestor's uidnext");
	}
	free(r4);
	r4 = recs_of(K4, 5u, NULL);
	{
		const char *ch[] = { c2, NULL, i2, NULL, c4, "m4", i4, r4,
				     NULL, NULL };
		want(since_check(ch, true),
		     "UID 5 is below uidnext 10 of the history it follows",
		     "since: an expunged message's UID given again is refused");
		want(since_check(ch, false), "",
		     "(a check against a tree that is not an ancestor cannot tell)");
	}
	free(r4);
	r4 = recs_of(K4, 5u, NULL);
	{
		/* as commits: an ancestor further back is found by a walk */
		const char *ch[] = { c2, NULL, i2, NULL, c4, "m4", i4, r4,
				     NULL, NULL };
		struct oid ct, cm, cn, cx, tn;
		struct strbuf e = STRBUF_INIT;
		struct repo_update ups[4];
		struct oid ids[4];

		for (int i = 0; i < 4; i++) {
			if (ch[2 * i + 1])
				repo_blob_from_buffer(&ids[i], repo, ch[2 * i + 1],
						      strlen(ch[2 * i + 1]));
			ups[i] = (struct repo_update){ ch[2 * i],
				ch[2 * i + 1] ? &ids[i] : NULL, false };
		}
		if (repo_tree_update(&tn, repo, &since_t, ups, 4) < 0 ||
		    repo_commit(&ct, repo, &since_t, NULL, 0, "t\n", 1, NULL,
				NULL) < 0 ||
		    repo_commit(&cm, repo, &since_t, &ct, 1, "m\n", 2, NULL,
				NULL) < 0 ||
		    repo_commit(&cn, repo, &tn, &cm, 1, "n\n", 3, NULL,
				NULL) < 0 ||
		    repo_commit(&cx, repo, &tn, NULL, 0, "x\n", 4, NULL,
				NULL) < 0)
			log_fatal("commits");
		is_int(format_check_commit(repo, &cn, &ct, &e), E_INVALID,
		       "since: a grandchild checked against its grandparent "
		       "keeps the history of UIDs");
		is_int(format_check_commit(repo, &cx, &ct, &e), 0,
		       "since: an unrelated commit gets the whole match");
		strbuf_release(&e);
	}
	free(r4);
	r4 = recs_of(K4, 1u, NULL);
	{
		const char *ch[] = { c4, "m4", i4, r4, NULL, NULL };
		want(since_check(ch, true), "UID 1 is below uidnext 10",
		     "since: a UID an unchanged message holds, given again");
	}
	free(r4);
	{
		const char *ch[] = { "imapfolder", "uidvalidity 1\nuidnext 9\n",
				     NULL, NULL };
		want(since_check(ch, true),
		     "'imapfolder': uidnext lowered from 10 to 9",
		     "since: a lowered uidnext is refused");
	}
	{
		/* a new UIDVALIDITY renumbers the folder: the whole match */
		char *a = recs_of(K1, 1u, NULL), *b = recs_of(K2, 2u, NULL);
		const char *ch[] = { "imapfolder", "uidvalidity 7\nuidnext 3\n",
				     i1, a, i2, b, NULL, NULL };
		want(since_check(ch, true), "",
		     "since: a folder with a new UIDVALIDITY, renumbered");
		free(b);
		b = recs_of(K2, 1u, NULL);
		ch[5] = b;
		want(since_check(ch, true), "UID 1 also given to",
		     "since: ... and two messages with one UID there refused");
		free(a);
		free(b);
	}
	{
		/* K3 moved from .Sent to INBOX: a new UID there */
		char *r = recs_of(K3, 10u, NULL);
		const char *ch[] = { s3, NULL, in3, "m3", i3, r, "imapfolder",
				     "uidvalidity 1\nuidnext 11\n", NULL, NULL };
		want(since_check(ch, true), "", "since: a move, with a new UID");
		{
			char *r5 = recs_of(K4, 10u, NULL);
			const char *ch2[] = { s3, NULL, in3, "m3", i3, r,
					      c4, "m4", i4, r5, "imapfolder",
					      "uidvalidity 1\nuidnext 11\n",
					      NULL, NULL };
			want(since_check(ch2, true), "UID 10 also given to",
			     "since: two new messages with one new UID");
			free(r5);
		}
		ch[5] = shard_recs[2];	/* UID 2 kept from .Sent */
		want(since_check(ch, true), "UID 2 is below uidnext 10",
		     "since: a move keeping the other folder's UID is refused");
		free(r);
	}
	{
		char *r = recs_of(K4, 1u, NULL);
		const char *ch[] = { ".New/maildirfolder", "",
				     ".New/imapfolder", "uidvalidity 5\nuidnext 2\n",
				     n4, "m4", i4, r, NULL, NULL };
		want(since_check(ch, true), "", "since: a new folder");
		ch[3] = "uidvalidity 5\nuidnext 1\n";
		want(since_check(ch, true), "not below the folder's uidnext 1",
		     "since: ... whose uidnext is too low");
		ch[3] = NULL;	/* no .New/imapfolder */
		want(since_check(ch, true), "'.New/imapfolder': missing",
		     "since: ... without its folder record");
		free(r);
	}
	{
		const char *ch[] = { c2, NULL, NULL, NULL };
		want(since_check(ch, true), "no message with key '" K2 "'",
		     "since: a record whose message is gone");
	}
	{
		const char *ch[] = { ".Sent/maildirfolder", NULL,
				     ".Sent/imapfolder", NULL, s3, NULL,
				     NULL, NULL };
		want(since_check(ch, true), "no message with key '" K3 "'",
		     "since: a record whose folder is gone");
		ch[6] = i3;	/* and its record with it */
		want(since_check(ch, true), "", "since: a folder removed");
	}
	{
		/* the record alone changes UID (an apply numbering it) */
		char *r = recs_of(K2, 12u, NULL);
		const char *ch[] = { i2, r, "imapfolder",
				     "uidvalidity 1\nuidnext 13\n", NULL, NULL };
		want(since_check(ch, true), "",
		     "since: a record renumbered above uidnext");
		free(r);
		r = recs_of(K2, 7u, NULL);
		ch[1] = r;
		want(since_check(ch, true), "UID 7 is below uidnext 10",
		     "since: a record renumbered below uidnext is refused");
		free(r);
	}
	{
		const char *ch[] = { c4, "m4", NULL, NULL };
		want(since_check(ch, true), "no IMAP record for this message",
		     "since: a new message without a record");
	}
	free(r2);
	for (int i = 0; i < 3; i++)
		free(shard_recs[i]);
	many_trees();
	free(c1); free(c2); free(s3); free(i1); free(i2); free(i3); free(i4);
	free(c1r); free(c4); free(in3); free(n4);
}

int main(void)
{
	char dir[] = "/tmp/format-imap-t.XXXXXX", *path;
	char *k1 = NULL;

	log_init("format-imap-t", LOG_TO_STDERR, LOG_LVL_ERROR);
	if (!mkdtemp(dir))
		log_fatal("mkdtemp");
	path = xasprintf("%s/r.git", dir);
	if (repo_open(&repo, path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		log_fatal("repo");
	paths();

	want(variant(NULL, NULL, -1), "this repository is format 1",
	     "format 2 is refused until allowed");
	format_allow_version(FORMAT_VERSION_IMAP);
	want(variant(NULL, NULL, -1), "", "a valid format 2 tree");
	want(variant("FORMAT", "maildag 3\n", -1), "newer", "format 3 refused");
	want(variant("imapfolder", "uidvalidity 1\nuidnext 0\n", -1),
	     "'imapfolder': not a folder record", "a bad folder record");
	want(variant(NULL, NULL, 2), "'imapfolder': missing",
	     "INBOX without its folder record");
	want(variant(NULL, NULL, 6), "'.Sent/imapfolder': missing",
	     "a folder without its folder record");
	want(variant("uidslots", "7 mx1\n", -1), "'uidslots': line 1",
	     "a bad uidslots");
	want(variant(p_imap2, K2 "\t1\n", -1), "UID 1 also given to",
	     "one UID twice in a folder");
	want(variant(p_imap3, K3 "\t1\n", -1), "",
	     "one UID in two folders");
	want(variant(p_imap2, K2 "\t514\n", -1), "not below the folder's uidnext 514",
	     "a UID at uidnext");
	want(variant(p_imap2, K2 "\t-\n", -1), "",
	     "an unnumbered record ('-') is valid");
	want(variant(p_imap3, K3 "\t-\n", -1), "",
	     "an unnumbered record in another folder too");
	{
		char *two = xasprintf("%s\t-\n", K1);
		const char *ent[] = {
			"FORMAT", "maildag 2\n",
			"imapfolder", "uidvalidity 1\nuidnext 1\n",
			p_cur1, "m1",
			p_cur2, "m2",
			p_imap1, two,
			p_imap2, K2 "\t-\n",
			NULL, NULL,
		};
		want(check(ent), "", "two unnumbered records in one folder, "
		     "uidnext 1: valid (not a UID, not below uidnext)");
		free(two);
	}
	want(variant(NULL, NULL, 9), "no IMAP record for this message",
	     "a message without a record");
	k1 = xasprintf("%s%s", K1 "\t1\n", "1700000000.zzz\t5\n");
	want(variant(p_imap1, k1, -1), "key of shard",
	     "a record in the wrong shard");
	free(k1);
	want(variant(p_imap1, K1 "\t1\t$b $a\n", -1), "keywords not sorted",
	     "unsorted keywords");
	{
		char *bad = xasprintf("%s", p_cur1);
		bad[strlen(bad) - 1] = 'a';	/* ":2,a" */
		{
			const char *ent[] = {
				"FORMAT", "maildag 2\n",
				"imapfolder", "uidvalidity 1\nuidnext 2\n",
				bad, "m1",
				p_imap1, K1 "\t1\n",
				NULL, NULL,
			};
			want(check(ent), "keyword letters in a format 2 name",
			     "a keyword letter in a name");
		}
		free(bad);
	}
	{
		const char *ent[] = {
			"FORMAT", "maildag 2\n",
			"imapfolder", "uidvalidity 1\nuidnext 2\n",
			p_imap1, K1 "\t1\n",
			NULL, NULL,
		};
		want(check(ent), "no message with key '" K1 "'",
		     "a record without a message");
	}
	{
		const char *ent[] = {
			"FORMAT", "maildag 1\n",
			"imapfolder", "uidvalidity 1\nuidnext 2\n",
			NULL, NULL,
		};
		want(check(ent), "'imapfolder': unexpected entry",
		     "format 1 has no IMAP records");
	}
	{
		/* incremental: FORMAT unchanged from the trusted tree */
		const char *a[] = {
			"FORMAT", "maildag 2\n",
			"imapfolder", "uidvalidity 1\nuidnext 2\n",
			p_cur1, "m1",
			p_imap1, K1 "\t1\n",
			NULL, NULL,
		};
		const char *b[] = {
			"FORMAT", "maildag 2\n",
			"imapfolder", "uidvalidity 1\nuidnext 3\n",
			p_cur1, "m1",
			p_cur2, "m2",
			p_imap1, K1 "\t1\n",
			p_imap2, K2 "\t1\n",
			NULL, NULL,
		};
		struct oid ta, tb;
		struct strbuf err = STRBUF_INIT;

		make_tree(&ta, a);
		make_tree(&tb, b);
		is_int(format_check_tree(repo, &ta, NULL, &err), 0, "trusted tree");
		is_int(format_check_tree(repo, &tb, &ta, &err), E_INVALID,
		       "checked against it, a format 2 tree is still format 2");
		ok(strstr(err.buf, "UID 1 also given to") != NULL,
		   "and its UIDs are checked: %s", err.buf);
		strbuf_release(&err);
	}
	since_tests();
	repo_free(repo);
	rm_rf(dir);
	free(path);
	return tap_done();
}
