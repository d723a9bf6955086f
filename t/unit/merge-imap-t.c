/*
 * Unit tests of the merge of format 2 trees (common/merge_records.c with
 * the rules of merge_imap.c): UIDs kept or left unnumbered ("-"),
 * UIDVALIDITY, keywords, folder records, uidslots; on real trees in a
 * temporary bare repository.
 *
 * A tree is a list of entries, one string each:
 *
 *	"M cur/1000.a:2,S A"	message with content A; the shard directory
 *				is put in ("cur/<xx>/1000.a:2,S")
 *	"R 1000.a 5 $Junk work"	its record, in imap/<xx> of its key
 *				("-" for an unnumbered one)
 *	"F .Sent 7 20"		a folder record: UIDVALIDITY, uidnext
 *				("F - 7 20" for INBOX)
 *	"P .Sent/maildirfolder"	an empty file at that path
 *	"S 0 mx1"		a uidslots line
 *
 * FORMAT is "maildag 2" unless the list says "1" first.  Each case
 * merges both ways (the same tree), checks the result against the
 * expected tree (the same language) and with format_check_tree().
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "format.h"
#include "fsutil.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "merge.h"
#include "mtimes.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define MAXE 12

struct tcase {
	const char *name;
	const char *base[MAXE], *ours[MAXE], *theirs[MAXE], *expect[MAXE];
	int no_base;
};

#define A1 "M cur/1000.a:2,S A"
#define B1 "M cur/1001.b:2, B"
#define I "P .F/maildirfolder"

static const struct tcase cases[] = {
	{ "delivered on both sides: the UID below the other's uidnext is "
	  "left unnumbered, the other kept",
	  { "F - 9 1" },
	  { "F - 9 2", A1, "R 1000.a 1" },
	  { "F - 9 514", B1, "R 1001.b 513" },
	  { "F - 9 514", A1, "R 1000.a -", B1, "R 1001.b 513" }, 0 },
	{ "one side delivers: its UID stands",
	  { "F - 9 5", A1, "R 1000.a 4" },
	  { "F - 9 5", A1, "R 1000.a 4" },
	  { "F - 9 514", A1, "R 1000.a 4", B1, "R 1001.b 513" },
	  { "F - 9 514", A1, "R 1000.a 4", B1, "R 1001.b 513" }, 0 },
	{ "a side's shard untouched by the other, contested folder: "
	  "its UID below the other's uidnext is not kept",
	  { "F - 9 1" },
	  { "F - 9 4098", A1, "R 1000.a 4097" },
	  { "F - 9 514", B1, "R 1001.b 513" },
	  { "F - 9 4098", A1, "R 1000.a 4097", B1, "R 1001.b -" }, 0 },
	{ "both numbered a message the merge left unnumbered: the one at "
	  "or above the other's uidnext",
	  { "F - 9 514", A1, "R 1000.a -" },
	  { "F - 9 4098", A1, "R 1000.a 4097" },
	  { "F - 9 515", A1, "R 1000.a 514" },
	  { "F - 9 4098", A1, "R 1000.a 4097" }, 0 },
	{ "an unnumbered record on one side, a UID on the other",
	  { "F - 9 514", A1, "R 1000.a -" },
	  { "F - 9 514", A1, "R 1000.a -" },
	  { "F - 9 515", A1, "R 1000.a 514" },
	  { "F - 9 515", A1, "R 1000.a 514" }, 0 },
	{ "one side's keyword, the other's delivery in another shard: both "
	  "shards taken whole from the side that changed them",
	  { "F - 9 5", A1, "R 1000.a 4" },
	  { "F - 9 5", A1, "R 1000.a 4 $Junk" },
	  { "F - 9 514", A1, "R 1000.a 4", B1, "R 1001.b 513" },
	  { "F - 9 514", A1, "R 1000.a 4 $Junk", B1, "R 1001.b 513" }, 0 },
	{ "keywords: per name, a side that changed it decides",
	  { "F - 9 2", A1, "R 1000.a 1 $Junk work" },
	  { "F - 9 2", A1, "R 1000.a 1 $Forwarded $Junk work" },
	  { "F - 9 2", A1, "R 1000.a 1 $Junk" },
	  { "F - 9 2", A1, "R 1000.a 1 $Forwarded $Junk" }, 0 },
	{ "keywords: two spellings, the byte-wise smaller",
	  { "F - 9 2", A1, "R 1000.a 1" },
	  { "F - 9 2", A1, "R 1000.a 1 work" },
	  { "F - 9 2", A1, "R 1000.a 1 Work" },
	  { "F - 9 2", A1, "R 1000.a 1 Work" }, 0 },
	{ "keywords: the spelling one side changed stands",
	  { "F - 9 2", A1, "R 1000.a 1 Work" },
	  { "F - 9 2", A1, "R 1000.a 1 work" },
	  { "F - 9 2", A1, "R 1000.a 1 $Junk Work" },
	  { "F - 9 2", A1, "R 1000.a 1 $Junk work" }, 0 },
	{ "keywords and flags changed on the two sides",
	  { "F - 9 2", A1, "R 1000.a 1" },
	  { "F - 9 2", "M cur/1000.a:2,FS A", "R 1000.a 1" },
	  { "F - 9 2", A1, "R 1000.a 1 $Junk" },
	  { "F - 9 2", "M cur/1000.a:2,FS A", "R 1000.a 1 $Junk" }, 0 },
	{ "across the upgrade (format 1 base): keywords are the union",
	  { "1", A1 },
	  { "F - 9 2", A1, "R 1000.a 1 $Junk", "S 0 mx1" },
	  { "F - 9 2", A1, "R 1000.a 1 NonJunk", "S 0 mx1" },
	  { "F - 9 2", A1, "R 1000.a 1 $Junk NonJunk", "S 0 mx1" }, 0 },
	{ "UIDVALIDITY: the greater wins; the loser's messages unnumbered",
	  { "F - 9 1", I, "F .F 5 1" },
	  { "F - 9 1", I, "F .F 6 2", "M .F/cur/1000.a:2, A", "R 1000.a 1" },
	  { "F - 9 1", I, "F .F 7 514", "M .F/cur/1001.b:2, B", "R 1001.b 513" },
	  { "F - 9 1", I, "F .F 7 514", "M .F/cur/1000.a:2, A", "R 1000.a -",
	    "M .F/cur/1001.b:2, B", "R 1001.b 513" }, 0 },
	{ "UIDVALIDITY: a side that replaced the base's incarnation wins, "
	  "even with the smaller value",
	  { "F - 9 1", I, "F .F 5 1" },
	  { "F - 9 1", I, "F .F 5 2", "M .F/cur/1000.a:2, A", "R 1000.a 1" },
	  { "F - 9 1", I, "F .F 3 514", "M .F/cur/1001.b:2, B", "R 1001.b 513" },
	  { "F - 9 1", I, "F .F 3 514", "M .F/cur/1000.a:2, A", "R 1000.a -",
	    "M .F/cur/1001.b:2, B", "R 1001.b 513" }, 0 },
	{ "a folder created on one side comes with its record",
	  { "F - 9 1" },
	  { "F - 9 1", I, "F .F 5 2", "M .F/cur/1000.a:2, A", "R 1000.a 1" },
	  { "F - 9 1" },
	  { "F - 9 1", I, "F .F 5 2", "M .F/cur/1000.a:2, A", "R 1000.a 1" }, 0 },
	{ "a folder deleted on one side, a record numbered on the other: gone",
	  { "F - 9 1", I, "F .F 5 514", "M .F/cur/1000.a:2, A", "R 1000.a -" },
	  { "F - 9 1" },
	  { "F - 9 1", I, "F .F 5 515", "M .F/cur/1000.a:2, A", "R 1000.a 514" },
	  { "F - 9 1" }, 0 },
	{ "a folder deleted on one side, given a message on the other: kept, "
	  "as a new incarnation (a greater UIDVALIDITY, unnumbered)",
	  { "F - 9 1", I, "F .F 5 1" },
	  { "F - 9 1" },
	  { "F - 9 1", I, "F .F 5 514", "M .F/cur/1001.b:2, B", "R 1001.b 513" },
	  { NULL }, 0 },
	{ "a folder deleted on one side, re-created on the other: the new one",
	  { "F - 9 1", I, "F .F 5 1" },
	  { "F - 9 1" },
	  { "F - 9 1", I, "F .F 70 514", "M .F/cur/1001.b:2, B", "R 1001.b 513" },
	  { "F - 9 1", I, "F .F 70 514", "M .F/cur/1001.b:2, B", "R 1001.b 513" },
	  0 },
	{ "moved on one side (a new UID there), keyword on the other",
	  { "F - 9 2", A1, "R 1000.a 1", I, "F .F 5 1" },
	  { "F - 9 2", "M .F/cur/1000.a:2,S A", "R 1000.a 1", I, "F .F 5 2" },
	  { "F - 9 2", A1, "R 1000.a 1 $Junk", I, "F .F 5 1" },
	  { "F - 9 2", "M .F/cur/1000.a:2,S A", "R 1000.a 1 $Junk", I,
	    "F .F 5 2" }, 0 },
	{ "expunged on one side, keyword on the other: expunged",
	  { "F - 9 3", A1, "R 1000.a 1", B1, "R 1001.b 2" },
	  { "F - 9 3", B1, "R 1001.b 2" },
	  { "F - 9 3", A1, "R 1000.a 1 $Junk", B1, "R 1001.b 2" },
	  { "F - 9 3", B1, "R 1001.b 2" }, 0 },
	{ "one key, two messages: the renamed one is unnumbered",
	  { "F - 9 1" },
	  { "F - 9 2", "M new/1000.a X", "R 1000.a 1" },
	  { "F - 9 514", "M new/1000.a Y", "R 1000.a 513" },
	  { NULL }, 0 },
	{ "uidslots: the union of the lines",
	  { "F - 9 1", "S 0 mx1" },
	  { "F - 9 1", "S 0 mx1", "S 1 mx2" },
	  { "F - 9 1", "S 0 mx1", "S 2 mx3" },
	  { "F - 9 1", "S 0 mx1", "S 1 mx2", "S 2 mx3" }, 0 },
	{ "no common history: records from both, INBOX by UIDVALIDITY",
	  { NULL },
	  { "F - 8 2", A1, "R 1000.a 1" },
	  { "F - 9 514", B1, "R 1001.b 513" },
	  { "F - 9 514", A1, "R 1000.a -", B1, "R 1001.b 513" }, 1 },
};

static struct repo *repo;

/* One imap/<xx> or uidslots or folder record being built. */
struct build {
	struct update_list ups;
	struct strbuf recs[256];
	struct strvec slots;
};

static void add_blob(struct update_list *ups, const char *path,
		     const char *data, size_t len)
{
	struct oid id;

	if (repo_blob_from_buffer(&id, repo, len ? data : "", len) < 0)
		log_fatal("cannot write blob");
	update_list_add(ups, path, &id);
}

/* "[.F/](cur|new)/<name>" with its shard directory put in */
static char *tree_path(const char *p)
{
	const char *sub = strstr(p, "cur/");
	char shard[3];

	if (!sub || (sub != p && sub[-1] != '/'))
		sub = strstr(p, "new/");
	maildir_shard_hex(shard, sub + 4, maildir_key_len(sub + 4));
	return xasprintf("%.*s%.4s%s/%s", (int)(sub - p), p, sub, shard, sub + 4);
}

static void entry(struct build *b, const char *e)
{
	char a[128], c[128], d[128];
	int n = sscanf(e + 2, "%127s %127s %127[^\n]", a, c, d);

	switch (e[0]) {
	case 'M': {
		char *p = tree_path(a), *body = xasprintf("Subject: %s\n\n%s\n",
							 c, c);
		add_blob(&b->ups, p, body, strlen(body));
		free(body);
		free(p);
		break;
	}
	case 'R': {
		struct strbuf *s = &b->recs[maildir_shard(a, strlen(a))];
		strbuf_addf(s, "%s\t%s", a, c);
		if (n > 2)
			strbuf_addf(s, "\t%s", d);
		strbuf_addch(s, '\n');
		break;
	}
	case 'F': {
		char *p = strcmp(a, "-") ? xasprintf("%s/imapfolder", a) :
					   xstrdup("imapfolder");
		char *rec = xasprintf("uidvalidity %s\nuidnext %s\n", c, d);
		add_blob(&b->ups, p, rec, strlen(rec));
		free(rec);
		free(p);
		break;
	}
	case 'P':
		add_blob(&b->ups, a, "", 0);
		break;
	case 'S': {
		char *l = xasprintf("%s %s\n", a, c);
		strvec_push(&b->slots, l);
		free(l);
		break;
	}
	default:
		log_fatal("bad entry '%s'", e);
	}
}

static int build(struct oid *out, const char *const *ents)
{
	struct build b;
	struct strbuf slots = STRBUF_INIT;
	bool v1 = ents[0] && !strcmp(ents[0], "1");
	const char *fmt = v1 ? "maildag 1\n" : "maildag 2\n";
	int ret;

	memset(&b, 0, sizeof b);
	add_blob(&b.ups, FORMAT_PATH, fmt, strlen(fmt));
	for (size_t i = v1; i < MAXE && ents[i]; i++)
		entry(&b, ents[i]);
	for (unsigned x = 0; x < 256; x++) {
		struct strbuf path = STRBUF_INIT;
		if (!b.recs[x].len)
			continue;
		imap_recs_shard_path(&path, x);
		add_blob(&b.ups, path.buf, b.recs[x].buf, b.recs[x].len);
		strbuf_release(&path);
		strbuf_release(&b.recs[x]);
	}
	strvec_sort(&b.slots);
	for (size_t i = 0; i < b.slots.n; i++)
		strbuf_addstr(&slots, b.slots.v[i]);
	if (b.slots.n)
		add_blob(&b.ups, IMAPREC_SLOTS, slots.buf, slots.len);
	ret = repo_tree_update(out, repo, NULL, b.ups.v, b.ups.n);
	update_list_release(&b.ups);
	strvec_clear(&b.slots);
	strbuf_release(&slots);
	return ret;
}

static int dump_cb(const char *root, const git_tree_entry *te, void *data)
{
	struct strbuf buf = STRBUF_INIT;

	if (git_tree_entry_type(te) != GIT_OBJECT_BLOB)
		return 0;
	repo_blob_read(&buf, repo, OID(git_tree_entry_id(te)));
	for (size_t i = 0; i < buf.len; i++)
		if (buf.buf[i] == '\n' || buf.buf[i] == '\t')
			buf.buf[i] = buf.buf[i] == '\n' ? '|' : ' ';
	diag("  %s%s: %s", root, git_tree_entry_name(te), buf.len ? buf.buf : "");
	strbuf_release(&buf);
	return 0;
}

static void dump(const char *what, const struct oid *tree)
{
	git_tree *t;

	diag("%s:", what);
	if (git_tree_lookup(&t, repo->git, GIT_OID(tree)) < 0)
		return;
	git_tree_walk(t, GIT_TREEWALK_PRE, dump_cb, NULL);
	git_tree_free(t);
}

/* The record of key in tree (its UID field, "" when none). */
static char *record_of(const struct oid *tree, const char *key)
{
	struct strbuf path = STRBUF_INIT, buf = STRBUF_INIT;
	struct imap_recs r = IMAP_RECS_INIT;
	const struct imap_rec *rec;
	struct oid id;
	char *out = xstrdup("");

	imap_recs_path(&path, key, strlen(key));
	if (repo_tree_lookup(&id, repo, tree, path.buf) == 0 &&
	    repo_blob_read(&buf, repo, &id) == 0 &&
	    imap_recs_parse(&r, buf.buf, buf.len, NULL, NULL) == 0 &&
	    (rec = imap_recs_find(&r, key))) {
		free(out);
		out = rec->uid ? xasprintf("%u", rec->uid) : xstrdup("-");
	}
	imap_recs_release(&r);
	strbuf_release(&path);
	strbuf_release(&buf);
	return out;
}

static void run_case(const struct tcase *tc)
{
	struct oid b, o, t, x, y, want;
	struct strbuf err = STRBUF_INIT;

	if (build(&b, tc->base) < 0 || build(&o, tc->ours) < 0 ||
	    build(&t, tc->theirs) < 0)
		log_fatal("cannot build trees");
	if (merge_trees(&x, repo, tc->no_base ? NULL : &b, &o, &t, NULL,
			NULL) < 0 ||
	    merge_trees(&y, repo, tc->no_base ? NULL : &b, &t, &o, NULL,
			NULL) < 0) {
		ok(0, "%s: merged", tc->name);
		return;
	}
	ok(oid_equal(&x, &y), "%s: the same both ways", tc->name);
	if (format_check_tree(repo, &x, NULL, &err) < 0)
		diag("%s", err.buf);
	ok(err.len == 0, "%s: a valid format 2 tree", tc->name);
	if (tc->expect[0]) {
		build(&want, tc->expect);
		if (!ok(oid_equal(&x, &want), "%s", tc->name)) {
			dump("got", &x);
			dump("want", &want);
		}
	}
	strbuf_release(&err);
}

/* The folder record at path in tree ("" when none). */
static char *blob_at(const struct oid *tree, const char *path)
{
	struct strbuf buf = STRBUF_INIT;
	struct oid id;

	if (repo_tree_lookup(&id, repo, tree, path) == 0)
		repo_blob_read(&buf, repo, &id);
	return strbuf_detach(&buf, NULL);
}

/* A revived folder: a new UIDVALIDITY above the old, uidnext 1. */
static void test_revived(void)
{
	const struct tcase *tc = NULL;
	struct oid b, o, t, x;
	struct imap_folder f = { 0, 0 };
	char *rec, *u;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (!tc && strstr(cases[i].name, "new incarnation"))
			tc = &cases[i];
	build(&b, tc->base);
	build(&o, tc->ours);
	build(&t, tc->theirs);
	if (merge_trees(&x, repo, &b, &o, &t, NULL, NULL) < 0) {
		ok(0, "revived folder merged");
		return;
	}
	rec = blob_at(&x, ".F/imapfolder");
	imap_folder_parse(&f, rec, strlen(rec), NULL);
	ok(f.uidvalidity > 5 && f.uidvalidity <= 5 + 1 + 0xffff &&
	   f.uidnext == 1, "revived: UIDVALIDITY %u above 5, uidnext %u",
	   f.uidvalidity, f.uidnext);
	u = record_of(&x, "1001.b");
	is_str(u, "-", "revived: its message unnumbered");
	free(u);
	free(rec);
}

/* One key, two messages: both kept, the renamed one unnumbered. */
static void test_dup_key(void)
{
	const struct tcase *tc = NULL;
	struct oid b, o, t, x;
	char *u;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (!tc && strstr(cases[i].name, "one key, two messages"))
			tc = &cases[i];
	build(&b, tc->base);
	build(&o, tc->ours);
	build(&t, tc->theirs);
	if (merge_trees(&x, repo, &b, &o, &t, NULL, NULL) < 0) {
		ok(0, "dup key merged");
		return;
	}
	u = record_of(&x, "1000.a");
	/* which message keeps the key depends on blob ids: either UID */
	ok(!strcmp(u, "-") || !strcmp(u, "513"),
	   "the key's keeper has a UID that stands or none (%s)", u);
	free(u);
}

/* A commit of the tree ents on parents (n of them), at time when. */
static struct oid commit_of(const char *const *ents, const struct oid *parents,
			    size_t n, time_t when)
{
	struct oid tree, c;

	if (build(&tree, ents) < 0 ||
	    repo_commit(&c, repo, &tree, parents, n, "test\n", when, "t",
			"t@t") < 0)
		log_fatal("cannot commit");
	return c;
}

/*
 * Criss-cross (issue 12, merge-model-t seed 93232651327925 case 2638):
 * the virtual base of P and Q (the merge of their merge bases X and Y)
 * is P itself, so the tree merge once took Q whole: 1000.a back in INBOX
 * at 513, below the uidnext 514 P had shown without it there (P moved
 * it to .F).  A virtual base takes X's uidnext with Y's placement: the
 * ancestor rule does not hold against it, and the UID must go through
 * the rules: unnumbered.
 */
static void test_criss_cross(void)
{
	const char *c0[] = { "F - 9 2", A1, "R 1000.a 1", I, "F .F 5 1", NULL };
	/* X: 1000.a numbered anew (an apply after a merge) */
	const char *x[] = { "F - 9 514", A1, "R 1000.a 513", I, "F .F 5 1",
			    NULL };
	/* Y: moved to .F; Y2: moved back */
	const char *y[] = { "F - 9 2", "M .F/cur/1000.a:2,S A", "R 1000.a 1", I,
			    "F .F 5 2", NULL };
	const char *y2[] = { "F - 9 3", A1, "R 1000.a 2", I, "F .F 5 2", NULL };
	struct oid b, cx, cy, cy2, p, q, r1, r2, tr, tp;
	struct merge_stats st;
	struct strbuf err = STRBUF_INIT;
	char *u;

	b = commit_of(c0, NULL, 0, 1000);
	cx = commit_of(x, &b, 1, 1001);
	cy = commit_of(y, &b, 1, 1002);
	cy2 = commit_of(y2, &cy, 1, 1003);
	if (merge_commits(&p, repo, &cx, &cy, 0, NULL, NULL) < 0 ||
	    merge_commits(&q, repo, &cx, &cy2, 0, NULL, NULL) < 0)
		log_fatal("cannot merge");
	/* P moved 1000.a to .F; Q holds it in INBOX at 513 */
	repo_commit_tree(&tp, repo, &p);
	u = record_of(&tp, "1000.a");
	is_str(u, "1", "criss-cross: P keeps .F's UID 1");
	free(u);
	if (merge_commits(&r1, repo, &p, &q, 0, NULL, &st) < 0 ||
	    merge_commits(&r2, repo, &q, &p, 0, NULL, NULL) < 0) {
		ok(0, "criss-cross merged");
		return;
	}
	is_int((int)st.bases, 2, "criss-cross: two merge bases");
	ok(oid_equal(&r1, &r2), "criss-cross: the same both ways");
	repo_commit_tree(&tr, repo, &r1);
	u = record_of(&tr, "1000.a");
	is_str(u, "-", "criss-cross: a UID below P's uidnext, where P did not "
	       "have the message, is not kept");
	free(u);
	if (format_check_tree_since(repo, &tr, &tp, &err) < 0)
		diag("%s", err.buf);
	ok(err.len == 0, "criss-cross: valid against P, an ancestor");
	strbuf_reset(&err);
	repo_commit_tree(&tp, repo, &q);
	if (format_check_tree_since(repo, &tr, &tp, &err) < 0)
		diag("%s", err.buf);
	ok(err.len == 0, "criss-cross: valid against Q, an ancestor");
	strbuf_release(&err);
}

static void test_mixed_formats(void)
{
	const char *v1[] = { "1", A1, NULL };
	const char *v2[] = { "F - 9 2", A1, "R 1000.a 1", NULL };
	const char *v2b[] = { "F - 9 2", A1, "R 1000.a 1", B1, NULL };
	struct oid a, b, c, x;

	build(&a, v1);
	build(&b, v2);
	build(&c, v2b);
	is_int(merge_trees(&x, repo, &a, &a, &c, NULL, NULL) == 0 &&
	       oid_equal(&x, &c), 1, "format 1 base, ours unchanged: theirs");
	is_int(merge_trees(&x, repo, NULL, &a, &b, NULL, NULL), E_INVALID,
	       "a format 1 tree and a format 2 tree do not merge");
}

/* Format 1 trees: no record appears, whatever the paths. */
static void test_format1_untouched(void)
{
	const char *b1[] = { "1", A1, NULL };
	const char *o1[] = { "1", "M cur/1000.a:2,FS A", NULL };
	const char *t1[] = { "1", A1, B1, NULL };
	const char *w1[] = { "1", "M cur/1000.a:2,FS A", B1, NULL };
	struct oid b, o, t, x, want;

	build(&b, b1);
	build(&o, o1);
	build(&t, t1);
	build(&want, w1);
	ok(merge_trees(&x, repo, &b, &o, &t, NULL, NULL) == 0 &&
	   oid_equal(&x, &want), "a format 1 merge writes no record");
}

int main(void)
{
	char dir[] = "/tmp/merge-imap-t.XXXXXX", *path;

	log_init("merge-imap-t", LOG_TO_STDERR, LOG_LVL_ERROR);
	if (!mkdtemp(dir))
		log_fatal("mkdtemp");
	path = xasprintf("%s/r.git", dir);
	if (repo_open(&repo, path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		log_fatal("repo");
	format_allow_version(FORMAT_VERSION_IMAP);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i]);
	test_dup_key();
	test_revived();
	test_criss_cross();
	test_mixed_formats();
	test_format1_untouched();
	repo_free(repo);
	rm_rf(dir);
	free(path);
	return tap_done();
}
