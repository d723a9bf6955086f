/*
 * format_imap_since: the records of a format 2 tree matched against its
 * messages when the trusted tree is an ancestor's (see fmt_imap_since()
 * in format_p.h): only the shard numbers that changed, in every folder,
 * and the folder records of the folders that changed.
 *
 * Why it is enough, for a tree N checked against an ancestor T that is
 * valid.  A message of an unaffected shard number has the tree entry
 * and the record it had in T: same folder, same UID, below T's uidnext
 * there, which N may not lower.  A message of an affected shard either
 * has T's (key, folder, UID) too, or a UID at or above T's uidnext in
 * its folder, unique among those.  Two messages of one folder with one
 * UID would then both be T's (T was invalid), or one T's (below T's
 * uidnext) and one not (at or above it): impossible.  Nothing valid is
 * refused: a replica only allocates at or above its uidnext, and the
 * merge keeps a side's UID only at or above the other side's uidnext or
 * gives a new one above both (doc/imap-identity.md 4.3, 4.4).  A folder
 * whose UIDVALIDITY is not T's renumbered everything it holds: then the
 * whole tree gets fmt_imap_cross_check().
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "folder.h"
#include "format_p.h"
#include "imaprec.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "xalloc.h"

/* A folder of N, and what T says of it. */
struct sfolder {
	const char *name;		/* "" for INBOX */
	const struct oid *tree;		/* N's folder tree (INBOX: NULL) */
	const struct oid *ttree;	/* T's, or NULL when T lacks it */
	bool changed;			/* N's tree is not T's */
	bool loaded;
	bool have_n, have_t;		/* the folder records parse */
	struct imap_folder n, t;
};

struct since {
	struct checker *ck;
	const struct rtree *root, *troot;
	struct sfolder *f;
	size_t nf;
	struct strset recs, trecs;	/* key -> "<uid>", N's and T's,
					   of the affected shard numbers */
	struct strset used;		/* keys met as messages */
	struct strset fresh;		/* "<folder>/<uid>" -> path, of the
					   UIDs T did not give */
	bool full;			/* a UIDVALIDITY changed */
};

/* The folder record at entry name of tree t (NULL: none).  true if read. */
static bool read_folder_record(struct checker *ck, const struct rtree *t,
			       struct imap_folder *out)
{
	const struct rentry *e = fmt_rtree_lookup(t, IMAPREC_FOLDER);
	git_odb_object *obj;
	bool ok;

	if (!e || !fmt_is_blob(e) ||
	    git_odb_read(&obj, ck->odb, GIT_OID(&e->id)) < 0)
		return false;
	ok = imap_folder_parse(out, git_odb_object_data(obj),
			       git_odb_object_size(obj), NULL) == 0;
	git_odb_object_free(obj);
	return ok;
}

/* N's and T's folder records of f, once; a folder that changed is checked. */
static void load_folder(struct since *s, struct sfolder *f,
			const struct rtree *nt, const struct rtree *tt)
{
	struct strbuf p = STRBUF_INIT;

	if (f->loaded)
		return;
	f->loaded = true;
	f->have_n = read_folder_record(s->ck, nt, &f->n);
	f->have_t = tt && read_folder_record(s->ck, tt, &f->t);
	if (!f->changed)
		return;
	strbuf_addf(&p, "%s%s" IMAPREC_FOLDER, f->name, *f->name ? "/" : "");
	if (!fmt_rtree_lookup(nt, IMAPREC_FOLDER))
		fmt_report_path(s->ck, p.buf, "missing (every folder has one)");
	else if (f->have_n && f->have_t) {
		if (f->n.uidvalidity != f->t.uidvalidity)
			s->full = true;
		else if (f->n.uidnext < f->t.uidnext)
			fmt_report_path(s->ck, p.buf, "uidnext lowered from %u "
					"to %u", (unsigned)f->t.uidnext,
					(unsigned)f->n.uidnext);
	}
	strbuf_release(&p);
}

/* The two hex digits of shard number xx (< 256). */
static void shard_hex(char hex[3], unsigned xx)
{
	hex[0] = "0123456789abcdef"[(xx >> 4) & 15];
	hex[1] = "0123456789abcdef"[xx & 15];
	hex[2] = '\0';
}

/* The records of imap/<xx> of root into set (key -> "<uid>"). */
static void load_shard(struct checker *ck, const struct rtree *root,
		       unsigned xx, struct strset *set)
{
	const struct rentry *de = fmt_rtree_lookup(root, IMAPREC_DIR), *e;
	struct imap_recs recs = IMAP_RECS_INIT;
	git_odb_object *obj;
	struct rtree t;
	char hex[3];

	if (!de || !fmt_is_tree(de))
		return;
	fmt_read_trusted(ck, &t, &de->id);
	shard_hex(hex, xx);
	e = fmt_rtree_lookup(&t, hex);
	if (e && fmt_is_blob(e) &&
	    git_odb_read(&obj, ck->odb, GIT_OID(&e->id)) == 0) {
		if (imap_recs_parse(&recs, git_odb_object_data(obj),
				    git_odb_object_size(obj), hex, NULL) == 0)
			for (size_t j = 0; j < recs.n; j++) {
				char u[16];
				snprintf(u, sizeof u, "%u", recs.v[j].uid);
				fmt_strset_add(set, recs.v[j].key,
					       strlen(recs.v[j].key), u);
			}
		imap_recs_release(&recs);
		git_odb_object_free(obj);
	}
	fmt_rtree_release(&t);
}

/* Tree sub ("cur" or "new") of folder tree ft into st (empty if none). */
static void read_sub(struct checker *ck, const struct rtree *ft,
		     const char *sub, struct rtree *st)
{
	const struct rentry *e = ft ? fmt_rtree_lookup(ft, sub) : NULL;

	fmt_read_trusted(ck, st, e && fmt_is_tree(e) ? &e->id : NULL);
}

/* The shard tree xx of a cur/ or new/ tree, or NULL. */
static const struct rentry *shard_entry(const struct rtree *st, unsigned xx)
{
	const struct rentry *e;
	char hex[3];

	shard_hex(hex, xx);
	e = fmt_rtree_lookup(st, hex);
	return e && fmt_is_tree(e) ? e : NULL;
}

/* Add the keys of shard xx of T's cur/ and new/ (tsub[2]) to set. */
static void trusted_keys(struct checker *ck, const struct rtree *tsub,
			 unsigned xx, struct strset *set)
{
	for (int i = 0; i < 2; i++) {
		const struct rentry *e = shard_entry(&tsub[i], xx);
		struct rtree sh;

		if (!e)
			continue;
		fmt_read_trusted(ck, &sh, &e->id);
		for (size_t j = 0; j < sh.n; j++)
			fmt_strset_add(set, sh.e[j].name,
				       maildir_key_len(sh.e[j].name), "");
		fmt_rtree_release(&sh);
	}
}

/* One message of folder f, key k, at path. */
static void one_message(struct since *s, struct sfolder *f,
			const struct strset *tkeys, const char *path,
			const char *k, size_t klen)
{
	const char *uid = fmt_strset_get(&s->recs, k, klen), *tuid, *other;
	struct strbuf key = STRBUF_INIT;
	unsigned long u;

	if (!uid) {
		fmt_report_path(s->ck, path, "no IMAP record for this message");
		return;
	}
	fmt_strset_add(&s->used, k, klen, "");
	u = strtoul(uid, NULL, 10);
	if (u == 0)
		return;		/* unnumbered: numbered by who applies it */
	if (f->have_n && u >= f->n.uidnext)
		fmt_report_path(s->ck, path, "UID %lu not below the folder's "
				"uidnext %u", u, (unsigned)f->n.uidnext);
	tuid = fmt_strset_get(&s->trecs, k, klen);
	if (f->have_t && tuid && !strcmp(tuid, uid) &&
	    fmt_strset_get(tkeys, k, klen))
		return;		/* the ancestor's own (key, folder, UID) */
	if (f->have_t && u < f->t.uidnext) {
		fmt_report_path(s->ck, path, "UID %lu is below uidnext %u of "
				"the history it follows, where this message "
				"did not have it (a UID may not be given twice)",
				u, (unsigned)f->t.uidnext);
		return;
	}
	strbuf_addf(&key, "%s/%lu", f->name, u);
	other = fmt_strset_add(&s->fresh, key.buf, key.len, path);
	if (other) {
		struct strbuf o = STRBUF_INIT;
		fmt_show_path(&o, other, strlen(other));
		fmt_report_path(s->ck, path, "UID %lu also given to '%s'", u,
				o.buf);
		strbuf_release(&o);
	}
	strbuf_release(&key);
}

/* The messages of the affected shards of folder f (trees nt, tt). */
static void walk_folder(struct since *s, struct sfolder *f,
			const struct rtree *nt, const struct rtree *tt)
{
	static const char *const subs[] = { "cur", "new" };
	struct strbuf path = STRBUF_INIT;
	struct rtree sub[2], tsub[2];

	for (int i = 0; i < 2; i++) {
		read_sub(s->ck, nt, subs[i], &sub[i]);
		read_sub(s->ck, tt, subs[i], &tsub[i]);
	}
	for (unsigned xx = 0; xx < 256 && !s->ck->stop; xx++) {
		struct strset tkeys = { NULL, 0, 0 };
		bool tk = false;

		if (!s->ck->affected[xx])
			continue;
		for (int i = 0; i < 2; i++) {
			const struct rentry *e = shard_entry(&sub[i], xx);
			struct rtree sh;

			if (!e)
				continue;
			load_folder(s, f, nt, tt);
			if (!tk && f->have_t)
				trusted_keys(s->ck, tsub, xx, &tkeys);
			tk = true;
			fmt_read_trusted(s->ck, &sh, &e->id);
			for (size_t j = 0; j < sh.n; j++) {
				strbuf_reset(&path);
				tree_shard_path(&path, f->name, subs[i], xx);
				strbuf_addf(&path, "/%s", sh.e[j].name);
				one_message(s, f, &tkeys, path.buf, sh.e[j].name,
					    maildir_key_len(sh.e[j].name));
			}
			fmt_rtree_release(&sh);
		}
		fmt_strset_release(&tkeys);
	}
	for (int i = 0; i < 2; i++) {
		fmt_rtree_release(&sub[i]);
		fmt_rtree_release(&tsub[i]);
	}
	strbuf_release(&path);
}

/* The folders of N, with T's trees. */
static void list_folders(struct since *s)
{
	const struct rtree *root = s->root;

	s->f = xcalloc(root->n + 1, sizeof *s->f);
	s->f[s->nf++] = (struct sfolder){ .name = "", .changed = true };
	for (size_t i = 0; i < root->n; i++) {
		const struct rentry *e = &root->e[i], *te;
		struct sfolder *f;

		if (!fmt_is_tree(e) || e->name[0] != '.' ||
		    !folder_dir_valid(e->name))
			continue;
		te = fmt_rtree_find(s->troot, e);
		f = &s->f[s->nf++];
		f->name = e->name;
		f->tree = &e->id;
		f->ttree = te ? &te->id : NULL;
		f->changed = !te || !oid_equal(&te->id, &e->id);
	}
}

/* Every record of an affected shard names a message of the tree. */
static void orphans(struct since *s)
{
	struct strbuf p = STRBUF_INIT, k = STRBUF_INIT;

	for (size_t i = 0; i < s->recs.cap && !s->ck->stop; i++) {
		const struct slot *sl = &s->recs.s[i];
		char hex[3];

		if (!sl->key || fmt_strset_get(&s->used, sl->key, sl->len))
			continue;
		maildir_shard_hex(hex, sl->key, sl->len);
		strbuf_reset(&p);
		strbuf_addf(&p, IMAPREC_DIR "/%s", hex);
		strbuf_reset(&k);
		format_escape(&k, sl->key, sl->len);
		fmt_report_path(s->ck, p.buf, "no message with key '%s'", k.buf);
	}
	strbuf_release(&p);
	strbuf_release(&k);
}

void fmt_imap_since(struct checker *ck, const struct rtree *root,
		    const struct rtree *tt)
{
	struct since s = { .ck = ck, .root = root, .troot = tt };

	for (unsigned xx = 0; xx < 256; xx++) {
		if (!ck->affected[xx])
			continue;
		load_shard(ck, root, xx, &s.recs);
		load_shard(ck, tt, xx, &s.trecs);
	}
	list_folders(&s);
	/* the folders that changed: their records, UIDVALIDITY, uidnext */
	for (size_t i = 0; i < s.nf && !s.full && !ck->stop; i++) {
		struct rtree ft, ftt;

		if (!s.f[i].changed)
			continue;
		if (!*s.f[i].name) {
			load_folder(&s, &s.f[i], root, tt);
			continue;
		}
		fmt_read_trusted(ck, &ft, s.f[i].tree);
		fmt_read_trusted(ck, &ftt, s.f[i].ttree);
		load_folder(&s, &s.f[i], &ft, s.f[i].ttree ? &ftt : NULL);
		fmt_rtree_release(&ftt);
		fmt_rtree_release(&ft);
	}
	if (s.full) {
		fmt_imap_cross_check(ck, root);
		goto done;
	}
	for (size_t i = 0; i < s.nf && !ck->stop; i++) {
		struct rtree ft, ftt;

		if (!*s.f[i].name) {
			walk_folder(&s, &s.f[i], root, tt);
			continue;
		}
		fmt_read_trusted(ck, &ft, s.f[i].tree);
		fmt_read_trusted(ck, &ftt, s.f[i].ttree);
		walk_folder(&s, &s.f[i], &ft, s.f[i].ttree ? &ftt : NULL);
		fmt_rtree_release(&ftt);
		fmt_rtree_release(&ft);
	}
	orphans(&s);
done:
	free(s.f);
	fmt_strset_release(&s.recs);
	fmt_strset_release(&s.trecs);
	fmt_strset_release(&s.used);
	fmt_strset_release(&s.fresh);
}
