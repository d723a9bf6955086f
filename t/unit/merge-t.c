/*
 * Unit tests for common/merge.c: one case per rule of DESIGN section 3,
 * on real trees in a temporary bare repository.
 *
 * A tree is written as a list of entries, one string each:
 *
 *	"A cur/1000.a:2,S"	message with content A; the shard directory
 *				is added ("cur/<xx>/1000.a:2,S")
 *	"- .F/maildirfolder"	the empty blob
 *	"s:INBOX,Sent subscriptions"	a file of those lines
 *	"@1000.a 5000"		an mtime record, in mtimes/<xx> of its key
 *	"{dup}"			in a path: ".dup", 16 hex digits of the
 *				entry's blob id and the two characters that
 *				keep the key's shard (a key the merge gave)
 *
 * FORMAT is in every tree.  The result is listed in the same form and
 * compared entry by entry; then the sides are swapped (same tree), and
 * the same merge is done on commits (same, canonical commit).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "fsutil.h"
#include "log.h"
#include "maildir_name.h"
#include "merge.h"
#include "mtimes.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

#define MAXE 10

struct tcase {
	const char *name;
	const char *base[MAXE], *ours[MAXE], *theirs[MAXE], *expect[MAXE];
	int no_base;
};

static const struct tcase cases[] = {
	/* rules table, row 1: added / added, same blob */
	{ "added on both sides, same blob: flags merged",
	  { NULL },
	  { "A cur/1000.a:2,S" },
	  { "A cur/1000.a:2,F" },
	  { "A cur/1000.a:2,FS" }, 0 },
	{ "added on both sides, same blob: cur over new",
	  { NULL },
	  { "A new/1000.a" },
	  { "A cur/1000.a:2,S" },
	  { "A cur/1000.a:2,S" }, 0 },
	{ "added on both sides, same blob: the smaller folder",
	  { NULL },
	  { "A .Zeta/cur/1000.a:2,S", "- .Zeta/maildirfolder" },
	  { "A .Alpha/cur/1000.a:2,", "- .Alpha/maildirfolder" },
	  { "A .Alpha/cur/1000.a:2,S", "- .Alpha/maildirfolder",
	    "- .Zeta/maildirfolder" }, 0 },
	/* row 2: added / added, different blob, same key (B < A by id) */
	{ "same key, two messages: the greater blob id gets a new key",
	  { "C cur/999.c:2," },
	  { "C cur/999.c:2,", "A new/1000.a,S=10" },
	  { "C cur/999.c:2,", "B new/1000.a,S=12" },
	  { "C cur/999.c:2,", "B new/1000.a,S=12", "A new/1000.a{dup},S=10" }, 0 },
	{ "a renamed key sticks; a flag on the old name follows it",
	  { "A new/1000.a" },
	  { "A cur/1000.a:2,S" },
	  { "B new/1000.a", "A new/1000.a{dup}" },
	  { "B new/1000.a", "A cur/1000.a{dup}:2,S" }, 0 },
	{ "a renamed key met again under the old key: one message",
	  { NULL },
	  { "A new/1000.a" },
	  { "B new/1000.a", "A new/1000.a{dup}" },
	  { "B new/1000.a", "A new/1000.a{dup}" }, 0 },
	/* row 3: flags / flags */
	{ "flags changed on both sides: per flag",
	  { "A cur/1000.a:2,ST" },
	  { "A cur/1000.a:2,RS" },
	  { "A cur/1000.a:2,DST" },
	  { "A cur/1000.a:2,DRS" }, 0 },
	{ "one side adds a flag, the other removes another",
	  { "A cur/1000.a:2,S" },
	  { "A cur/1000.a:2,FS" },
	  { "A cur/1000.a:2," },
	  { "A cur/1000.a:2,F" }, 0 },
	{ "the same flag change on both sides",
	  { "A cur/1000.a:2," },
	  { "A cur/1000.a:2,S" },
	  { "A cur/1000.a:2,S" },
	  { "A cur/1000.a:2,S" }, 0 },
	/* row 4: expunged / unchanged or flags changed */
	{ "expunged / unchanged: expunged",
	  { "A cur/1000.a:2,S", "B cur/1001.b:2," },
	  { "B cur/1001.b:2," },
	  { "A cur/1000.a:2,S", "B cur/1001.b:2," },
	  { "B cur/1001.b:2," }, 0 },
	{ "expunged / flags changed: expunged",
	  { "A cur/1000.a:2,S" },
	  { NULL },
	  { "A cur/1000.a:2,FS" },
	  { NULL }, 0 },
	{ "expunged on both sides",
	  { "A cur/1000.a:2,S", "B new/1001.b" },
	  { "B new/1001.b" },
	  { "B new/1001.b" },
	  { "B new/1001.b" }, 0 },
	/* row 5: moved to F / flags changed */
	{ "moved to a folder / flags changed: there, flags merged",
	  { "A cur/1000.a:2,S", "- .F/maildirfolder" },
	  { "A .F/cur/1000.a:2,S", "- .F/maildirfolder" },
	  { "A cur/1000.a:2,FS", "- .F/maildirfolder" },
	  { "A .F/cur/1000.a:2,FS", "- .F/maildirfolder" }, 0 },
	/* row 6: moved to F / moved to G */
	{ "moved to two folders: the smaller folder name",
	  { "A cur/1000.a:2,S", "- .G/maildirfolder", "- .F/maildirfolder" },
	  { "A .G/cur/1000.a:2,S", "- .G/maildirfolder", "- .F/maildirfolder" },
	  { "A .F/cur/1000.a:2,S", "- .G/maildirfolder", "- .F/maildirfolder" },
	  { "A .F/cur/1000.a:2,S", "- .G/maildirfolder", "- .F/maildirfolder" }, 0 },
	{ "moved to a folder / moved back to INBOX from another: INBOX",
	  { "A .G/cur/1000.a:2,", "- .G/maildirfolder", "- .F/maildirfolder" },
	  { "A .F/cur/1000.a:2,", "- .G/maildirfolder", "- .F/maildirfolder" },
	  { "A cur/1000.a:2,", "- .G/maildirfolder", "- .F/maildirfolder" },
	  { "A cur/1000.a:2,", "- .G/maildirfolder", "- .F/maildirfolder" }, 0 },
	/* row 7: new -> cur / flags changed */
	{ "new/ to cur/ / flags changed: in cur/, flags merged",
	  { "A new/1000.a" },
	  { "A cur/1000.a:2,S" },
	  { "A new/1000.a:2,F" },
	  { "A cur/1000.a:2,FS" }, 0 },
	/* row 8: folder deleted / message added to it */
	{ "folder deleted / message added to it: kept with the message",
	  { "A .F/cur/1000.a:2,S", "- .F/maildirfolder" },
	  { NULL },
	  { "A .F/cur/1000.a:2,S", "B .F/new/1001.b", "- .F/maildirfolder" },
	  { "B .F/new/1001.b", "- .F/maildirfolder" }, 0 },
	{ "folder deleted / message moved into it: kept with the message",
	  { "A cur/1000.a:2,", "- .F/maildirfolder" },
	  { "A cur/1000.a:2," },
	  { "A .F/cur/1000.a:2,", "- .F/maildirfolder" },
	  { "A .F/cur/1000.a:2,", "- .F/maildirfolder" }, 0 },
	{ "folder deleted / nothing added to it: deleted",
	  { "A .F/cur/1000.a:2,S", "- .F/maildirfolder", "B cur/1001.b:2," },
	  { "B cur/1001.b:2," },
	  { "A .F/cur/1000.a:2,FS", "- .F/maildirfolder", "B cur/1001.b:2,S" },
	  { "B cur/1001.b:2,S" }, 0 },
	{ "folder created on one side: kept",
	  { "B cur/1001.b:2," },
	  { "B cur/1001.b:2,", "- .New/maildirfolder" },
	  { "B cur/1001.b:2,S" },
	  { "B cur/1001.b:2,S", "- .New/maildirfolder" }, 0 },
	/* row 9: subscriptions */
	{ "subscriptions: three-way merge of the lines, sorted",
	  { "s:INBOX,Lists,Sent subscriptions" },
	  { "s:INBOX,Lists,Sent,Trash subscriptions" },
	  { "s:INBOX,Sent,Archive subscriptions" },
	  { "s:Archive,INBOX,Sent,Trash subscriptions" }, 0 },
	{ "subscriptions changed on one side: that side's",
	  { "s:INBOX,Sent subscriptions" },
	  { "s:INBOX,Sent subscriptions" },
	  { "s:Sent,INBOX,Drafts subscriptions" },
	  { "s:Sent,INBOX,Drafts subscriptions" }, 0 },
	{ "subscriptions added on both sides",
	  { NULL },
	  { "s:INBOX,Sent subscriptions" },
	  { "s:INBOX,Drafts subscriptions" },
	  { "s:Drafts,INBOX,Sent subscriptions" }, 0 },
	/* and the cases around the table */
	{ "moved / expunged: expunged",
	  { "A cur/1000.a:2,S", "- .F/maildirfolder" },
	  { "A .F/cur/1000.a:2,S", "- .F/maildirfolder" },
	  { "- .F/maildirfolder" },
	  { "- .F/maildirfolder" }, 0 },
	{ ",S= changed / flags changed: both",
	  { "A cur/1000.a:2,S" },
	  { "A cur/1000.a,S=10:2,S" },
	  { "A cur/1000.a:2,FS" },
	  { "A cur/1000.a,S=10:2,FS" }, 0 },
	{ "fields added on both sides, differently: the smaller",
	  { NULL },
	  { "A new/1000.a,S=10,W=12" },
	  { "A new/1000.a,S=10" },
	  { "A new/1000.a,S=10" }, 0 },
	{ "added on one side only",
	  { "B cur/1001.b:2," },
	  { "B cur/1001.b:2,", "A new/1000.a", "C .X/new/1002.c", "- .X/maildirfolder" },
	  { "B cur/1001.b:2,T" },
	  { "B cur/1001.b:2,T", "A new/1000.a", "C .X/new/1002.c", "- .X/maildirfolder" }, 0 },
	{ "no common history: the union",
	  { NULL },
	  { "A new/1000.a", "s:INBOX subscriptions" },
	  { "B new/1001.b" },
	  { "A new/1000.a", "B new/1001.b", "s:INBOX subscriptions" }, 1 },
	{ "a message kept in two folders is merged per folder",
	  { "A cur/1000.a:2,S" },
	  { "A cur/1000.a:2,S", "A .F/cur/1000.a:2,S", "- .F/maildirfolder" },
	  { "A cur/1000.a:2,FS" },
	  { "A cur/1000.a:2,FS", "A .F/cur/1000.a:2,S", "- .F/maildirfolder" }, 0 },
	{ "another file: the side that changed it",
	  { "C notes" },
	  { "D notes" },
	  { "C notes", "A new/1000.a" },
	  { "D notes", "A new/1000.a" }, 0 },
	/* mtimes */
	{ "mtime set on both sides, differently: the smaller",
	  { "A cur/1000.a:2," },
	  { "A cur/1000.a:2,S", "@1000.a 5000" },
	  { "A cur/1000.a:2,", "@1000.a 4000" },
	  { "A cur/1000.a:2,S", "@1000.a 4000" }, 0 },
	{ "mtime changed / expunged: the record goes",
	  { "A cur/1000.a:2,", "B cur/1001.b:2,", "@1000.a 5000" },
	  { "B cur/1001.b:2," },
	  { "A cur/1000.a:2,", "B cur/1001.b:2,", "@1000.a 4000" },
	  { "B cur/1001.b:2," }, 0 },
	{ "mtime changed / moved: in the folder, with the mtime",
	  { "A cur/1000.a:2,", "- .F/maildirfolder" },
	  { "A .F/cur/1000.a:2,", "- .F/maildirfolder" },
	  { "A cur/1000.a:2,", "- .F/maildirfolder", "@1000.a 777" },
	  { "A .F/cur/1000.a:2,", "- .F/maildirfolder", "@1000.a 777" }, 0 },
	{ "mtime changed on one side, message untouched",
	  { "A cur/1000.a:2,", "B cur/1001.b:2," },
	  { "A cur/1000.a:2,", "B cur/1001.b:2,", "@1000.a 9" },
	  { "A cur/1000.a:2,", "B cur/1001.b:2,S" },
	  { "A cur/1000.a:2,", "B cur/1001.b:2,S", "@1000.a 9" }, 0 },
	{ "mtime back to the key time: no record",
	  { "A cur/1000.a:2,", "@1000.a 9" },
	  { "A cur/1000.a:2," },
	  { "A cur/1000.a:2,S", "@1000.a 9" },
	  { "A cur/1000.a:2,S" }, 0 },
	{ "two messages, one key: each keeps its own mtime",
	  { NULL },
	  { "A new/1000.a", "@1000.a 11" },
	  { "B new/1000.a", "@1000.a 22" },
	  { "B new/1000.a", "A new/1000.a{dup}", "@1000.a 22", "@1000.a{dup} 11" }, 0 },
	{ "a key with no time in it keeps its record",
	  { NULL },
	  { "A new/abc.x", "@abc.x 1234" },
	  { "B new/1001.b" },
	  { "A new/abc.x", "B new/1001.b", "@abc.x 1234" }, 0 },
};

static struct repo *repo;
static const char *const tags = "ABCDEF";

static void content(struct strbuf *out, const char *tag)
{
	if (!strcmp(tag, "-"))
		return;
	if (!strncmp(tag, "s:", 2)) {
		for (const char *p = tag + 2; *p;) {
			size_t n = strcspn(p, ",");
			strbuf_add(out, p, n);
			strbuf_addch(out, '\n');
			p += n + (p[n] == ',');
		}
		return;
	}
	strbuf_addf(out, "Subject: %s\n\nmessage %s\n", tag, tag);
}

static void blob_of(struct oid *out, const char *tag)
{
	struct strbuf sb = STRBUF_INIT;

	content(&sb, tag);
	if (repo_blob_from_buffer(out, repo, sb.len ? sb.buf : "", sb.len) < 0)
		log_fatal("cannot write blob");
	strbuf_release(&sb);
}

/*
 * ".dup", 16 hex digits of id and the two characters of
 * [0-9A-Za-z_-] (first in that order) that keep key's shard: the form
 * merge.h gives, computed here from its definition.
 */
static char *dup_suffix(const char *key, size_t klen, const struct oid *id)
{
	static const char bal[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";
	char hex[OID_HEXSZ + 1], *full, *out = NULL;
	unsigned want = maildir_shard(key, klen);

	oid_tostr(hex, sizeof hex, id);
	full = xasprintf("%.*s.dup%.16s__", (int)klen, key, hex);
	for (const char *a = bal; *a && !out; a++)
		for (const char *b = bal; *b && !out; b++) {
			full[strlen(full) - 2] = *a;
			full[strlen(full) - 1] = *b;
			if (maildir_shard(full, strlen(full)) == want)
				out = xstrdup(full + klen);
		}
	free(full);
	return out;
}

/* "1000.a{dup},S=10" with the blob's id spelled in */
static char *expand(const char *s, const struct oid *id)
{
	struct strbuf sb = STRBUF_INIT;
	const char *p = strstr(s, "{dup}"), *k;
	char *suffix;

	if (!p)
		return xstrdup(s);
	for (k = p; k > s && k[-1] != '/'; k--)
		;
	suffix = dup_suffix(k, (size_t)(p - k), id);
	strbuf_add(&sb, s, (size_t)(p - s));
	strbuf_addf(&sb, "%s%s", suffix, p + 5);
	free(suffix);
	return strbuf_detach(&sb, NULL);
}

/* The tree path of "[.F/](cur|new)/<name>": the shard put in. */
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

static int build(struct oid *out, const char *const *ents)
{
	struct update_list ups = UPDATE_LIST_INIT;
	struct mtimes mt[256];
	struct oid fmt;
	int ret;

	memset(mt, 0, sizeof mt);
	repo_blob_from_buffer(&fmt, repo, FORMAT_CONTENT, strlen(FORMAT_CONTENT));
	update_list_add(&ups, FORMAT_PATH, &fmt);
	for (size_t i = 0; i < MAXE && ents[i]; i++) {
		const char *sp = strchr(ents[i], ' ');
		char *tag = xstrndup(ents[i], (size_t)(sp - ents[i]));
		struct oid id;

		if (tag[0] == '@') {
			char *key = xstrndup(tag + 1, strlen(tag + 1));
			char *k;
			/* the {dup} of a record is that of message A */
			blob_of(&id, "A");
			k = expand(key, &id);
			mtimes_set(&mt[maildir_shard(k, strlen(k))], k,
				   atoll(sp + 1));
			free(k);
			free(key);
		} else {
			char *p, *tp;
			blob_of(&id, tag);
			p = expand(sp + 1, &id);
			tp = tree_path(p);
			update_list_add(&ups, tp, &id);
			free(tp);
			free(p);
		}
		free(tag);
	}
	for (unsigned x = 0; x < 256; x++) {
		struct strbuf sb = STRBUF_INIT, path = STRBUF_INIT;
		struct oid id;
		if (!mt[x].n)
			continue;
		mtimes_format(&sb, &mt[x]);
		mtimes_shard_path(&path, x);
		repo_blob_from_buffer(&id, repo, sb.buf, sb.len);
		update_list_add(&ups, path.buf, &id);
		strbuf_release(&sb);
		strbuf_release(&path);
		mtimes_release(&mt[x]);
	}
	ret = repo_tree_update(out, repo, NULL, ups.v, ups.n);
	update_list_release(&ups);
	return ret;
}

/* --- listing a tree in the entry language ------------------------------ */

struct listing {
	char **v;
	size_t n, alloc;
};

static void list_add(struct listing *l, char *s)
{
	xgrow((void **)&l->v, &l->alloc, l->n + 1, sizeof *l->v);
	l->v[l->n++] = s;
}

static void list_release(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The tag whose blob is id, or its hex. */
static char *tag_of(const struct oid *id, const char *path)
{
	struct oid t;
	char one[2] = { 0, 0 };

	blob_of(&t, "-");
	if (oid_equal(&t, id))
		return xstrdup("-");
	for (const char *p = tags; *p; p++) {
		one[0] = *p;
		blob_of(&t, one);
		if (oid_equal(&t, id))
			return xstrdup(one);
	}
	(void)path;
	return xstrdup(oid_hex(id));
}

/* "{dup}" back in place of the suffix dup_suffix() gives, as the table writes it */
static char *unexpand(const char *s, const struct oid *id)
{
	char hex[OID_HEXSZ + 1], *mark, *p, *out = xstrdup(s);

	oid_tostr(hex, sizeof hex, id);
	mark = xasprintf(".dup%.16s", hex);
	p = strstr(out, mark);
	if (p && strlen(p) >= strlen(mark) + 2) {
		const char *k;
		char *suffix, *o;
		for (k = p; k > out && k[-1] != '/'; k--)
			;
		suffix = dup_suffix(k, (size_t)(p - k), id);
		/* only the exact form counts: anything else shows as it is */
		if (!strncmp(p, suffix, strlen(suffix))) {
			o = xasprintf("%.*s{dup}%s", (int)(p - out), out,
				      p + strlen(suffix));
			free(out);
			out = o;
		}
		free(suffix);
	}
	free(mark);
	return out;
}

struct walk_data {
	struct listing *l;
	int bad;
};

static int list_cb(const char *root, const git_tree_entry *e, void *payload)
{
	struct walk_data *wd = payload;
	char *path, *tag;
	const struct oid *id = OID(git_tree_entry_id(e));

	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		return 0;
	path = xasprintf("%s%s", root, git_tree_entry_name(e));
	if (!strcmp(path, FORMAT_PATH)) {
		struct oid fmt;
		repo_blob_from_buffer(&fmt, repo, FORMAT_CONTENT,
				      strlen(FORMAT_CONTENT));
		if (!oid_equal(&fmt, id))
			list_add(wd->l, xstrdup("!bad FORMAT"));
		free(path);
		return 0;
	}
	if (!strncmp(path, "mtimes/", 7) || !strcmp(path, "subscriptions")) {
		git_blob *b;
		struct mtimes mt = MTIMES_INIT;
		bool canon;
		git_blob_lookup(&b, repo->git, GIT_OID(id));
		if (path[0] == 's') {
			struct strbuf sb = STRBUF_INIT;
			const char *p = git_blob_rawcontent(b);
			size_t n = (size_t)git_blob_rawsize(b);
			strbuf_addstr(&sb, "s:");
			for (size_t i = 0; i < n; i++)
				strbuf_addch(&sb, p[i] == '\n' ?
					     (i + 1 < n ? ',' : ' ') : p[i]);
			strbuf_addstr(&sb, "subscriptions");
			list_add(wd->l, strbuf_detach(&sb, NULL));
		} else if (mtimes_parse(&mt, git_blob_rawcontent(b),
					(size_t)git_blob_rawsize(b), &canon) < 0 ||
			   !canon) {
			list_add(wd->l, xasprintf("!bad %s", path));
		} else {
			struct oid a;
			blob_of(&a, "A");
			for (size_t i = 0; i < mt.n; i++) {
				char *k = unexpand(mt.v[i].key, &a);
				char hex[3];
				maildir_shard_hex(hex, mt.v[i].key,
						  strlen(mt.v[i].key));
				if (strcmp(hex, path + 7))
					list_add(wd->l, xasprintf("!shard %s", k));
				list_add(wd->l, xasprintf("@%s %lld", k,
							  mt.v[i].mtime));
				free(k);
			}
		}
		mtimes_release(&mt);
		git_blob_free(b);
		free(path);
		return 0;
	}
	tag = tag_of(id, path);
	{
		/* take the shard out again, checking it */
		const char *name = git_tree_entry_name(e);
		size_t rl = strlen(root);
		char shard[3];
		char *shown = NULL;
		maildir_shard_hex(shard, name, maildir_key_len(name));
		if (rl >= 7 && !strncmp(root + rl - 3, shard, 2) &&
		    root[rl - 1] == '/' &&
		    (!strncmp(root + rl - 7, "cur/", 4) ||
		     !strncmp(root + rl - 7, "new/", 4))) {
			char *tmp = xasprintf("%.*s%s", (int)(rl - 3), root, name);
			shown = unexpand(tmp, id);
			free(tmp);
		} else {
			shown = xstrdup(path);
		}
		list_add(wd->l, xasprintf("%s %s", tag, shown));
		free(shown);
	}
	free(tag);
	free(path);
	return 0;
}

static void list_tree(struct listing *l, const struct oid *id)
{
	git_tree *t;
	struct walk_data wd = { l, 0 };

	git_tree_lookup(&t, repo->git, GIT_OID(id));
	git_tree_walk(t, GIT_TREEWALK_PRE, list_cb, &wd);
	git_tree_free(t);
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, strp_cmp);
}

static void list_expected(struct listing *l, const char *const *ents)
{
	for (size_t i = 0; i < MAXE && ents[i]; i++)
		list_add(l, xstrdup(ents[i]));
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, strp_cmp);
}

static int same_listing(const struct listing *got, const struct listing *want,
			const char *name)
{
	size_t i = 0, j = 0;
	int ok = 1;

	while (i < got->n || j < want->n) {
		int c = i >= got->n ? 1 : j >= want->n ? -1 :
			strcmp(got->v[i], want->v[j]);
		if (c < 0) {
			diag("%s: unexpected '%s'", name, got->v[i++]);
			ok = 0;
		} else if (c > 0) {
			diag("%s: missing '%s'", name, want->v[j++]);
			ok = 0;
		} else {
			i++;
			j++;
		}
	}
	return ok;
}

static int commit_of(struct oid *out, const struct oid *tree, const struct oid *parent,
		     time_t when)
{
	return repo_commit(out, repo, tree, parent, parent ? 1 : 0, "test\n",
			   when, "test", "test@example.org");
}

static void run_case(const struct tcase *tc)
{
	struct oid tb, to, tt, m1, m2;
	struct listing got = { 0 }, want = { 0 };
	struct merge_stats st;

	if (build(&tb, tc->base) < 0 || build(&to, tc->ours) < 0 ||
	    build(&tt, tc->theirs) < 0) {
		ok(0, "%s: build the trees", tc->name);
		return;
	}
	if (!is_int(merge_trees(&m1, repo, tc->no_base ? NULL : &tb, &to, &tt,
				NULL, &st), 0, "%s: merge", tc->name))
		return;
	if (!is_int(merge_trees(&m2, repo, tc->no_base ? NULL : &tb, &tt, &to,
				NULL, NULL), 0, "%s: merge swapped", tc->name))
		return;
	/* reading every shard (to count) writes the same tree */
	{
		struct merge_opts count = { NULL, NULL, MERGE_COUNT };
		struct oid m3;
		if (is_int(merge_trees(&m3, repo, tc->no_base ? NULL : &tb, &to,
				       &tt, &count, NULL), 0,
			   "%s: merge, counting", tc->name))
			ok(oid_equal(&m1, &m3), "%s: same tree when counting",
			   tc->name);
	}
	list_tree(&got, &m1);
	list_expected(&want, tc->expect);
	ok(same_listing(&got, &want, tc->name), "%s: merged tree", tc->name);
	if (!ok(oid_equal(&m1, &m2), "%s: same tree with sides swapped",
		tc->name)) {
		struct listing sw = { 0 };
		list_tree(&sw, &m2);
		same_listing(&sw, &got, "swapped vs not");
		list_release(&sw);
	}
	list_release(&got);
	list_release(&want);

	/* the same merge on commits: one canonical commit */
	{
		struct oid cb, co, ct, c1, c2, tree;
		git_commit *c = NULL;
		const git_signature *sig;
		int okc;

		commit_of(&cb, &tb, NULL, 1000);
		commit_of(&co, &to, tc->no_base ? NULL : &cb, 2000);
		commit_of(&ct, &tt, tc->no_base ? NULL : &cb, 3000);
		if (!is_int(merge_commits(&c1, repo, &co, &ct, 0, NULL, &st), 0,
			    "%s: merge commits", tc->name) ||
		    !is_int(merge_commits(&c2, repo, &ct, &co, 0, NULL, NULL), 0,
			    "%s: merge commits swapped", tc->name))
			return;
		ok(oid_equal(&c1, &c2), "%s: same commit with sides swapped",
		   tc->name);
		git_commit_lookup(&c, repo->git, GIT_OID(&c1));
		repo_commit_tree(&tree, repo, &c1);
		sig = git_commit_committer(c);
		okc = oid_equal(&tree, &m1) &&
		      git_commit_parentcount(c) == 2 &&
		      oid_cmp(OID(git_commit_parent_id(c, 0)),
				  OID(git_commit_parent_id(c, 1))) < 0 &&
		      !strcmp(sig->name, MERGE_NAME) &&
		      !strcmp(sig->email, MERGE_EMAIL) &&
		      sig->when.time == 3000 && sig->when.offset == 0 &&
		      !strcmp(git_commit_author(c)->email, MERGE_EMAIL) &&
		      !strcmp(git_commit_message_raw(c), MERGE_MESSAGE);
		ok(okc, "%s: canonical merge commit", tc->name);
		is_int(st.kind, MERGE_MERGED, "%s: a merge", tc->name);
		git_commit_free(c);
	}
}

/* --- a few things beyond the table ------------------------------------- */

struct notes {
	struct strbuf sb;
};

static void notify(void *data, const struct merge_note *n)
{
	static const char *const kinds[] = { "add", "expunge", "move", "flags",
					     "rename", "other" };
	struct notes *nt = data;

	strbuf_addf(&nt->sb, "%s %s %s\n", kinds[n->kind],
		    n->from ? n->from : "-", n->to ? n->to : "-");
}

static void test_stats_and_notes(void)
{
	static const char *const base[] = { "A cur/1000.a:2,S", "B new/1001.b",
		"C cur/999.c:2,", "- .F/maildirfolder", NULL };
	static const char *const ours[] = { "A cur/1000.a:2,S", "B new/1001.b",
		"C cur/999.c:2,", "- .F/maildirfolder", NULL };
	static const char *const theirs[] = { "A .F/cur/1000.a:2,S",
		"B cur/1001.b:2,", "- .F/maildirfolder", "D new/1002.d",
		"C cur/999.c:2,F", NULL };
	struct merge_opts opts = { notify, NULL, 0 };
	struct notes nt = { STRBUF_INIT };
	struct merge_stats st;
	struct oid tb, to, tt, m;

	/* ours unchanged from base: the merge is theirs, nothing to count */
	build(&tb, base);
	build(&to, ours);
	build(&tt, theirs);
	opts.data = &nt;
	is_int(merge_trees(&m, repo, &tb, &to, &tt, &opts, &st), 0,
	       "stats: merge");
	ok(oid_equal(&m, &tt), "base == ours: the result is theirs");

	/* now ours expunges B: the counts say what ours gets */
	{
		static const char *const ours2[] = { "A cur/1000.a:2,S",
			"C cur/999.c:2,", "- .F/maildirfolder", NULL };
		build(&to, ours2);
		is_int(merge_trees(&m, repo, &tb, &to, &tt, &opts, &st), 0,
		       "stats: merge 2");
		is_int((long long)st.ours.added, 1, "ours: one added");
		is_int((long long)st.ours.moved, 1, "ours: one moved");
		is_int((long long)st.ours.flagged, 1, "ours: one flag change");
		is_int((long long)st.ours.expunged, 0, "ours: none expunged");
		is_int((long long)st.theirs.expunged, 1, "theirs: one expunged");
		is_int((long long)st.theirs.added, 0, "theirs: none added");
		is_int((long long)st.messages, 4, "four messages looked at");
		ok(strstr(nt.sb.buf, "add - new/") != NULL, "note: add");
		ok(strstr(nt.sb.buf, "move cur/") && strstr(nt.sb.buf, " .F/cur/"),
		   "note: move");
		ok(strstr(nt.sb.buf, "flags cur/") != NULL, "note: flags");
		if (tap_failed)
			diag("notes:\n%s", nt.sb.buf);
	}
	strbuf_release(&nt.sb);
}

/* Criss-cross: two merge bases, merged into a virtual one. */
/*
 * The history three replicas of t6010 made in a minute of delivering,
 * flagging and moving while they merged each other: 179 commits, parents
 * first, each given by its parents' indexes ("-" for none).  Nearly every
 * merge in it is criss-cross, and the merge bases of a merge have several
 * merge bases again, level after level.  Merging the last two heads anew
 * at each level took 12,312 virtual merges (a syncd was seen at
 * full CPU for minutes, and it doubles with every level); each pair of
 * bases merged once per merge, it takes 76.  Only the shape matters here:
 * every commit has the same tree.
 */
static const char criss_cross_dag[] =
		"-;0;1;2;3;3;4,5;6;7;8;8;9,10;8;9,12;11,13;14;10,13;15,16;16;18,1"
		"4;15,19;10;21,13;22;18,23;24,14;25;20,26;17,27;28;20;30,23;17;31"
		",32;29,33;23,32;35;36,20;37,27;38,28;34,39;40;33;39;42,43;41,44;"
		"42;28,46;36,47;48;45,49;50;39,49;52;41,49;45,54;55;56;53,57;51,5"
		"8;59;60;53;62,41;45,63;51,64;65;61,66;51;53,68;69;70,64;56,71;72"
		";67,73;74;66;76,56;69,77;78;73,66;59,80;81;82;79,83;75,84;79,60;"
		"86,73;75,87;81,88;75,79;81,90;89,91;85,92;87,91;85,87;94,95;93,9"
		"6;85,94;98,89;99,95;97,100;93,98;96,102;101,103;93,100;96,105;10"
		"4,106;100,103;101,108;106,103;110,101;109,111;107,112;108,111;11"
		"3,114;109,114;116,107;115,117;109,107;119,114;118,120;115,120;12"
		"2,117;121,123;113,117;125,120;126,115;124,127;128;126,121;130,12"
		"3;129,131;127,121;133,123;132,134;134;136,131;129,137;131;127,13"
		"9;124,140;138,141;135,142;134,141;129,144;138,145;146,135;143,14"
		"7;135,141;149,138;150,145;143,151;147,150;153;152,154;148,155;14"
		"8,150;156,157;143,154;152,159;154,157;161,156;160,162;163;158,16"
		"4;158,160;166,163;165,167;160,157;169,165;170,167;168,171;158,16"
		"9;173;172,174;172,173;176,174;175,177";

static void test_criss_cross_dag(void)
{
	static const char *const t0[] = { "A cur/1000.a:2,", NULL };
	struct oid tree, *c = NULL, m1, m2;
	size_t n = 0, cap = 0;
	struct merge_stats st;
	const char *p = criss_cross_dag;
	char msg[32];

	build(&tree, t0);
	while (*p) {
		struct oid ps[2];
		int np = 0;

		if (*p == '-') {
			p++;
		} else {
			do {
				char *end;
				unsigned long k = strtoul(p, &end, 10);
				if (end == p || k >= n || np == 2)
					log_fatal("criss_cross_dag: bad at %zu", n);
				oid_cpy(&ps[np++], &c[k]);
				p = end;
			} while (*p == ',' && p++);
		}
		if (*p == ';')
			p++;
		xgrow((void **)&c, &cap, n + 1, sizeof *c);
		snprintf(msg, sizeof msg, "commit %zu\n", n);
		repo_commit(&c[n], repo, &tree, ps, (size_t)np, msg,
			    (time_t)(1000 + n), NULL, NULL);
		n++;
	}
	is_int((long long)n, 179, "criss-cross history: 179 commits");
	if (!is_int(merge_commits(&m1, repo, &c[175], &c[177], 0, NULL, &st), 0,
		    "criss-cross history: merge the last two heads"))
		goto out;
	diag("%zu merge bases, %zu virtual merges", st.bases,
	     st.virtual_merges);
	is_int((long long)st.bases, 2, "criss-cross history: two merge bases");
	ok(st.virtual_merges <= n,
	   "criss-cross history: at most one virtual merge per commit (%zu)",
	   st.virtual_merges);
	is_int(merge_commits(&m2, repo, &c[177], &c[175], 0, NULL, NULL), 0,
	       "criss-cross history: swapped");
	ok(oid_equal(&m1, &m2), "criss-cross history: same commit swapped");
out:
	free(c);
}

static void test_criss_cross(void)
{
	static const char *const t0[] = { "A cur/1000.a:2,", NULL };
	static const char *const t1[] = { "A cur/1000.a:2,S", NULL };
	static const char *const t2[] = { "A cur/1000.a:2,", "B new/1001.b", NULL };
	struct oid c0, c1, c2, m12, m21, x, y, tr0, tr1, tr2, r1, r2, tree;
	struct listing got = { 0 }, want = { 0 };
	static const char *const expect[] = { "A cur/1000.a:2,FS",
		"C new/1002.c", NULL };

	build(&tr0, t0);
	build(&tr1, t1);
	build(&tr2, t2);
	commit_of(&c0, &tr0, NULL, 100);
	commit_of(&c1, &tr1, &c0, 200);
	commit_of(&c2, &tr2, &c0, 300);
	/* both replicas merge the two: the same commit, twice */
	merge_commits(&m12, repo, &c1, &c2, 0, NULL, NULL);
	merge_commits(&m21, repo, &c2, &c1, 0, NULL, NULL);
	ok(oid_equal(&m12, &m21), "criss-cross: first merges agree");
	/* to make a criss-cross the two merges must differ: build them by hand */
	{
		struct oid ps[2], t;
		static const char *const mx[] = { "A cur/1000.a:2,S", "B new/1001.b", NULL };
		static const char *const my[] = { "A cur/1000.a:2,S", "B new/1001.b",
			"- .Q/maildirfolder", NULL };
		oid_cpy(&ps[0], &c1);
		oid_cpy(&ps[1], &c2);
		build(&t, mx);
		repo_commit(&x, repo, &t, ps, 2, "x\n", 400, NULL, NULL);
		build(&t, my);
		repo_commit(&y, repo, &t, ps, 2, "y\n", 401, NULL, NULL);
	}
	/* x: expunges B, flags F; y: removes the folder .Q, adds C */
	{
		static const char *const x2[] = { "A cur/1000.a:2,FS", NULL };
		static const char *const y2[] = { "A cur/1000.a:2,S", "B new/1001.b",
			"C new/1002.c", NULL };
		struct oid t;
		build(&t, x2);
		commit_of(&r1, &t, &x, 500);
		build(&t, y2);
		commit_of(&r2, &t, &y, 600);
	}
	{
		struct merge_stats st;
		struct oid a, b;
		is_int(merge_commits(&a, repo, &r1, &r2, 0, NULL, &st), 0,
		       "criss-cross: merge");
		is_int((long long)st.bases, 2, "criss-cross: two merge bases");
		merge_commits(&b, repo, &r2, &r1, 0, NULL, NULL);
		ok(oid_equal(&a, &b), "criss-cross: same commit swapped");
		repo_commit_tree(&tree, repo, &a);
		list_tree(&got, &tree);
		list_expected(&want, expect);
		ok(same_listing(&got, &want, "criss-cross"),
		   "criss-cross: B expunged, C kept, .Q gone, flags merged");
		list_release(&got);
		list_release(&want);
	}
	/* and a fast-forward writes nothing */
	{
		struct merge_stats st;
		struct oid a;
		merge_commits(&a, repo, &c0, &r1, 0, NULL, &st);
		ok(oid_equal(&a, &r1) && st.kind == MERGE_FAST_FORWARD,
		   "fast-forward to the descendant");
		merge_commits(&a, repo, &r1, &c0, 0, NULL, &st);
		ok(oid_equal(&a, &r1) && st.kind == MERGE_FAST_FORWARD,
		   "fast-forward, the other way");
		merge_commits(&a, repo, &r1, &r1, 0, NULL, &st);
		ok(oid_equal(&a, &r1) && st.kind == MERGE_SAME, "same commit");
	}
}

/* merge_into_ref: the daemon's call, a merge and a compare-and-swap */
static void test_into_ref(void)
{
	static const char *const t1[] = { "A cur/1000.a:2,S", NULL };
	static const char *const t2[] = { "A cur/1000.a:2,", "B new/1001.b", NULL };
	struct oid root, tr, c1, c2, got, want, head;

	repo_ref_read(&root, repo, REF_MAIL);
	build(&tr, t1);
	commit_of(&c1, &tr, &root, 5000);
	build(&tr, t2);
	commit_of(&c2, &tr, &root, 6000);
	repo_ref_cas(repo, REF_MAIL, &c1, &root, "test");
	is_int(merge_into_ref(&got, repo, REF_MAIL, &c2, NULL, NULL), 0,
	       "merge_into_ref");
	merge_commits(&want, repo, &c2, &c1, 0, NULL, NULL);
	repo_ref_read(&head, repo, REF_MAIL);
	ok(oid_equal(&got, &want) && oid_equal(&head, &want),
	   "merge_into_ref moves the ref to the canonical merge");
	is_int(merge_into_ref(&got, repo, REF_MAIL, &c1, NULL, NULL), 0,
	       "merge_into_ref of an ancestor");
	repo_ref_read(&head, repo, REF_MAIL);
	ok(oid_equal(&head, &want), "an ancestor leaves the ref alone");
	is_int(merge_into_ref(&got, repo, "refs/heads/none", &c1, NULL, NULL),
	       E_NOTFOUND, "merge_into_ref of a missing ref");
	is_int(merge_is_ancestor(repo, &c1, &want), 1, "c1 is in the merge");
	is_int(merge_is_ancestor(repo, &want, &c1), 0, "the merge is not in c1");
}

/*
 * merge_is_ancestor: the first-parent shortcuts (16 commits) answer as
 * the full walk does, and the walk still decides past them, through a
 * second parent and for unrelated histories.  The main line's commits
 * have one time, as a burst of deliveries has.
 */
static void test_is_ancestor(void)
{
	static const char *const t1[] = { "A cur/1000.a:2,S", NULL };
	struct oid tr, c[41], side[3], m, lone, ps[2];

	build(&tr, t1);
	commit_of(&c[0], &tr, NULL, 7000);
	for (int i = 1; i <= 40; i++)
		commit_of(&c[i], &tr, &c[i - 1], 7000);
	/* another second: the same tree, parent and time would be c[11] */
	commit_of(&side[0], &tr, &c[10], 7002);
	commit_of(&side[1], &tr, &side[0], 7002);
	commit_of(&side[2], &tr, &side[1], 7002);
	oid_cpy(&ps[0], &c[40]);
	oid_cpy(&ps[1], &side[2]);
	repo_commit(&m, repo, &tr, ps, 2, "m\n", 7000, "test",
		    "test@example.org");
	commit_of(&lone, &tr, NULL, 7001);
	is_int(merge_is_ancestor(repo, &c[39], &c[40]), 1, "a parent");
	is_int(merge_is_ancestor(repo, &c[40], &c[39]), 0, "not a child");
	is_int(merge_is_ancestor(repo, &c[25], &c[40]), 1,
	       "15 first parents down");
	is_int(merge_is_ancestor(repo, &c[40], &c[25]), 0,
	       "nor 15 first parents up");
	is_int(merge_is_ancestor(repo, &c[2], &c[40]), 1,
	       "38 down: past the shortcut, the walk");
	is_int(merge_is_ancestor(repo, &c[40], &c[2]), 0, "nor 38 up");
	is_int(merge_is_ancestor(repo, &side[1], &m), 1,
	       "through the second parent");
	is_int(merge_is_ancestor(repo, &m, &side[1]), 0,
	       "the merge is not below it");
	is_int(merge_is_ancestor(repo, &side[2], &c[40]), 0,
	       "a side branch is not below the main line");
	is_int(merge_is_ancestor(repo, &c[40], &side[2]), 0, "nor the reverse");
	is_int(merge_is_ancestor(repo, &lone, &m), 0, "an unrelated root");
	is_int(merge_is_ancestor(repo, &m, &lone), 0, "nor the reverse");
}

static void test_mtimes_module(void)
{
	struct mtimes m = MTIMES_INIT;
	struct strbuf sb = STRBUF_INIT;
	bool canon;

	is_int(mtimes_parse(&m, "b 5\na 7\na 6\n", 12, &canon), 0,
	       "mtimes: parse unsorted");
	ok(!canon, "mtimes: unsorted is not canonical");
	mtimes_format(&sb, &m);
	is_str(sb.buf, "a 6\nb 5\n", "mtimes: sorted, the smaller time kept");
	mtimes_set(&m, "1000.x", 1000);
	is_int((long long)m.n, 2, "mtimes: no record for the key time");
	mtimes_set(&m, "1000.x", 999);
	is_int(mtimes_get(&m, "1000.x"), 999, "mtimes: record");
	is_int(mtimes_get(&m, "2000.y"), 2000, "mtimes: the key time");
	is_int(mtimes_get(&m, "zz"), MTIME_NONE, "mtimes: none");
	mtimes_remove(&m, "a");
	strbuf_reset(&sb);
	mtimes_format(&sb, &m);
	is_str(sb.buf, "1000.x 999\nb 5\n", "mtimes: set and remove");
	mtimes_release(&m);
	is_int(mtimes_parse(&m, "a 5", 3, NULL), E_INVALID, "mtimes: no newline");
	is_int(mtimes_parse(&m, "a b 5\n", 6, NULL), E_INVALID,
	       "mtimes: split at the first space");
	mtimes_set(&m, "a b", 5);
	is_int((long long)m.n, 0, "mtimes: no record for a key with a space");
	mtimes_release(&m);
	is_int(mtimes_parse(&m, "a 05\n", 5, NULL), E_INVALID, "mtimes: leading 0");
	is_int(mtimes_parse(&m, "a -3\n", 5, NULL), 0, "mtimes: negative");
	is_int(m.n ? m.v[0].mtime : 0, -3, "mtimes: negative value");
	mtimes_release(&m);
	strbuf_release(&sb);

	/* mtimes_update(): what the daemon calls when it commits */
	{
		static const char *const t[] = { "A cur/1000.a:2,", "B cur/1001.b:2,", NULL };
		struct mtime_change ch[] = { { "1000.a", 777 }, { "1001.b", 1001 },
					     { "abc", 5 } };
		struct update_list ups = UPDATE_LIST_INIT;
		struct oid tree, t2, t3;
		struct mtimes r = MTIMES_INIT;

		build(&tree, t);
		is_int(mtimes_update(&ups, repo, &tree, ch, 3), 0, "mtimes_update");
		repo_tree_update(&t2, repo, &tree, ups.v, ups.n);
		mtimes_read_shard(&r, repo, &t2, maildir_shard("1000.a", 6));
		is_int(mtimes_get(&r, "1000.a"), 777, "mtimes_update: a record");
		mtimes_release(&r);
		mtimes_read_shard(&r, repo, &t2, maildir_shard("1001.b", 6));
		ok(!mtimes_find(&r, "1001.b"), "mtimes_update: none for the key time");
		mtimes_release(&r);
		update_list_release(&ups);
		/* and away again: the blob goes */
		ch[0].mtime = MTIME_NONE;
		ch[2].mtime = MTIME_NONE;
		mtimes_update(&ups, repo, &t2, ch, 3);
		repo_tree_update(&t3, repo, &t2, ups.v, ups.n);
		ok(oid_equal(&t3, &tree), "mtimes_update: back to no mtimes/");
		update_list_release(&ups);
	}
}

int main(void)
{
	char dir[] = "/tmp/merge-t.XXXXXX";
	char *path;
	struct oid a, b;

	log_init("merge-t", LOG_TO_STDERR, LOG_LVL_WARN);
	if (!mkdtemp(dir))
		log_fatal("mkdtemp: failed");
	path = xasprintf("%s/repo.git", dir);
	if (repo_open(&repo, path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		log_fatal("cannot create '%s'", path);

	/* the table's "B < A" */
	blob_of(&a, "A");
	blob_of(&b, "B");
	ok(oid_cmp(&b, &a) < 0, "blob B sorts before blob A");

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i]);
	test_stats_and_notes();
	test_criss_cross();
	test_criss_cross_dag();
	test_into_ref();
	test_is_ancestor();
	test_mtimes_module();

	repo_free(repo);
	git_libgit2_shutdown();
	if (!tap_failed)
		rm_rf(dir);
	else
		diag("repository kept in %s", dir);
	free(path);
	return tap_done();
}
