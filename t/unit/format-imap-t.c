/*
 * Unit tests for common/format_imap.c: the check of format 2 trees
 * (doc/imap-identity.md 4.2).  Trees are built with repo_tree_update()
 * from a list of "path=content" entries; {S} in a path is the shard of
 * the key that follows the last '/' (or of K1 in "imap/{S1}").
 */
#include "autoconf.h"

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

	want(variant(NULL, NULL, -1), "newer than this maildag",
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
	repo_free(repo);
	rm_rf(dir);
	free(path);
	return tap_done();
}
