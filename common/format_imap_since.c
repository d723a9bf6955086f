/*
 * format_imap_since: the records of a format 2 tree matched against its
 * messages when the trusted tree is an ancestor's (see fmt_imap_since()
 * in format_p.h): only the shard numbers that changed, and in them only
 * the shard trees that changed, in the folders that changed.
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
 *
 * In an affected shard number xx, a shard tree that is T's (same id)
 * holds T's keys in T's folder; a message there whose record is T's
 * (same UID) needs no look.  So only the shard trees that changed are
 * looked at, those the walk of format_levels.c read already and kept
 * (fmt_imap_keep_shard()): T's keys of them say where T had a key, N's
 * are matched.  The unchanged trees are read only when some record of
 * xx got another UID than T's, or is new, and was not met in a changed
 * tree (an apply numbering unnumbered messages).  A record is an orphan
 * when its key is in no shard tree: it was in a changed tree of T and is
 * in no changed tree of N, or it is not T's and was met nowhere.
 *
 * Records are read in place (the blob of N was checked when it changed,
 * T's is trusted), sorted by key as the format wants, and looked up by
 * binary search: no allocation per record.
 */
#include "autoconf.h"

#include <stdarg.h>
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

/* One record, read in place. */
struct rrec {
	const char *key;
	size_t klen;
	uint32_t uid;		/* 0: unnumbered ("-") or unreadable */
	bool used;		/* met as a message of N */
	bool moved;		/* N: not T's record, or T's with another UID */
};

/* The records of one imap/<xx> blob. */
struct rset {
	git_odb_object *obj;
	struct rrec *v;
	size_t n;
};

/* A shard tree that changed, kept by the walk (format_p.h). */
struct kept_shard {
	char *folder;			/* "" for INBOX */
	char sub[4];
	unsigned xx;
	bool has_n, has_t;
	struct oid nid, tid;
	struct rtree n, t;		/* parsed, or empty: read again */
};

/* Changed shard trees kept parsed; beyond, their ids only. */
#define KEEP_TREES 256

/* A folder of N, and what T says of it. */
struct sfolder {
	bool init;
	const char *name;		/* "" for INBOX */
	const struct oid *tree;		/* N's folder tree (INBOX: NULL) */
	const struct oid *ttree;	/* T's, or NULL when T lacks it */
	bool changed;			/* N's tree is not T's */
	bool loaded;			/* n, t, have_n, have_t are set */
	bool have_n, have_t;		/* the folder records parse */
	struct imap_folder n, t;
};

struct since {
	struct checker *ck;
	const struct rtree *root, *troot;
	struct sfolder *f;		/* by root entry index; INBOX last */
	struct rtree own_n, own_t;	/* imap/ of N and T, when they differ */
	const struct rtree *nimap, *timap;	/* those, or the checker's */
	bool imap_same;			/* imap/ is T's */
	bool alias[256];		/* imap/<xx> is T's */
	struct rset *nrec[256], *trec[256];	/* read when needed; trec
						   may be nrec (same blob) */
	struct strset gone;		/* key -> T folder index + 1, of the
					   keys T's changed trees lost */
	struct strset found;		/* those met in N's changed trees */
	struct strset fresh;		/* "<folder>/<uid>" -> path, of the
					   UIDs T did not give */
	bool full;			/* a UIDVALIDITY changed */
};

/* Did shard number xx change: a message tree, or its records? */
static bool affected(const struct since *s, unsigned xx)
{
	return s->ck->affected[xx] || s->ck->imap_affected[xx];
}

/* The two hex digits of shard number xx (< 256). */
static void shard_hex(char hex[3], unsigned xx)
{
	hex[0] = "0123456789abcdef"[(xx >> 4) & 15];
	hex[1] = "0123456789abcdef"[xx & 15];
	hex[2] = '\0';
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : alen < blen ? -1 : alen > blen;
}

/* The record of key in rs (sorted), or NULL. */
static struct rrec *rset_find(struct rset *rs, const char *key, size_t klen)
{
	size_t lo = 0, hi = rs ? rs->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(key, klen, rs->v[mid].key, rs->v[mid].klen);
		if (!c)
			return &rs->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Lines "<key> TAB <uid>[ TAB ...] LF" of buf, in place. */
static void rset_scan(struct rset *rs, const char *p, size_t len)
{
	const char *end = p + len;
	size_t alloc = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *tab = memchr(p, '\t', (size_t)((nl ? nl : end) - p));
		struct rrec *r;
		uint32_t uid = 0;

		if (!nl)
			nl = end;
		if (tab) {
			xgrow((void **)&rs->v, &alloc, rs->n + 1, sizeof *rs->v);
			r = &rs->v[rs->n++];
			memset(r, 0, sizeof *r);
			r->key = p;
			r->klen = (size_t)(tab - p);
			for (const char *q = tab + 1; q < nl && *q >= '0' &&
			     *q <= '9' && uid <= IMAP_UID_MAX / 10; q++)
				uid = uid * 10 + (uint32_t)(*q - '0');
			r->uid = uid;
		}
		p = nl + 1;
	}
}

/* The records of entry e (imap/<xx>, may be NULL), or an empty set. */
static struct rset *rset_read(struct checker *ck, const struct rentry *e)
{
	struct rset *rs = xcalloc(1, sizeof *rs);

	if (e && fmt_is_blob(e) &&
	    git_odb_read(&rs->obj, ck->odb, GIT_OID(&e->id)) == 0)
		rset_scan(rs, git_odb_object_data(rs->obj),
			  git_odb_object_size(rs->obj));
	return rs;
}

static void rset_free(struct rset *rs)
{
	if (!rs)
		return;
	git_odb_object_free(rs->obj);
	free(rs->v);
	free(rs);
}

/* --- what the walk kept ---------------------------------------------------- */

static bool keeping(const struct checker *ck)
{
	return ck->version == FORMAT_VERSION_IMAP && ck->incremental &&
	       ck->ancestor;
}

static struct kept_shard *keep(struct checker *ck, const char *folder,
			       const char *sub, unsigned xx)
{
	struct kept_shard *k;

	xgrow((void **)&ck->kept, &ck->alkept, ck->nkept + 1, sizeof *ck->kept);
	k = &ck->kept[ck->nkept++];
	memset(k, 0, sizeof *k);
	k->folder = xstrdup(folder ? folder : "");
	snprintf(k->sub, sizeof k->sub, "%s", sub ? sub : "");
	k->xx = xx;
	return k;
}

void fmt_imap_keep_shard(struct checker *ck, const char *folder,
			 const char *sub, unsigned xx, struct rtree *n,
			 struct rtree *t, const struct oid *nid,
			 const struct oid *tid)
{
	struct kept_shard *k;

	if (!keeping(ck))
		return;
	k = keep(ck, folder, sub, xx);
	k->has_n = true;
	oid_cpy(&k->nid, nid);
	if ((k->has_t = tid != NULL))
		oid_cpy(&k->tid, tid);
	if (ck->nkept > KEEP_TREES)
		return;
	k->n = *n;
	k->t = *t;
	memset(n, 0, sizeof *n);
	memset(t, 0, sizeof *t);
}

void fmt_imap_keep_removed(struct checker *ck, const char *folder,
			   const char *sub, unsigned xx, const struct oid *tid)
{
	struct kept_shard *k;

	if (!keeping(ck))
		return;
	k = keep(ck, folder, sub, xx);
	k->has_t = true;
	oid_cpy(&k->tid, tid);
}

void fmt_imap_kept_release(struct checker *ck)
{
	for (size_t i = 0; i < ck->nkept; i++) {
		free(ck->kept[i].folder);
		fmt_rtree_release(&ck->kept[i].n);
		fmt_rtree_release(&ck->kept[i].t);
	}
	free(ck->kept);
	ck->kept = NULL;
	ck->nkept = ck->alkept = 0;
	fmt_rtree_release(&ck->imap_n);
	fmt_rtree_release(&ck->imap_t);
	for (unsigned xx = 0; xx < 256; xx++) {
		git_odb_object_free(ck->imap_blob[xx]);
		ck->imap_blob[xx] = NULL;
	}
}

/* The kept tree (n or t) of k, read again if it was not kept. */
static const struct rtree *kept_tree(struct checker *ck, struct kept_shard *k,
				     bool n)
{
	struct rtree *t = n ? &k->n : &k->t;

	if (!t->obj && (n ? k->has_n : k->has_t))
		fmt_read_trusted(ck, t, n ? &k->nid : &k->tid);
	return t;
}

/* --- folders ------------------------------------------------------------- */

/* The index of folder name in N (its root entry; INBOX: root->n), or -1. */
static long folder_index(const struct since *s, const char *name)
{
	struct rentry like;
	const struct rentry *e;

	if (!*name)
		return (long)s->root->n;
	memset(&like, 0, sizeof like);
	like.name = name;
	like.nlen = strlen(name);
	like.dir = true;
	e = fmt_rtree_find(s->root, &like);
	return e && fmt_is_tree(e) ? (long)(e - s->root->e) : -1;
}

/* The folder at index i (folder_index()), set up on first use. */
static struct sfolder *folder_at(struct since *s, long i)
{
	struct sfolder *f = &s->f[i];

	if (f->init)
		return f;
	f->init = true;
	if ((size_t)i == s->root->n) {
		f->name = "";
		f->changed = true;
	} else {
		const struct rentry *e = &s->root->e[i];
		const struct rentry *te = fmt_rtree_find(s->troot, e);
		f->name = e->name;
		f->tree = &e->id;
		f->ttree = te && fmt_is_tree(te) ? &te->id : NULL;
		f->changed = !te || !oid_equal(&te->id, &e->id);
	}
	return f;
}

/* The folder record of folder tree t.  true if read. */
static bool read_folder_record(struct checker *ck, const struct rtree *t,
			       struct imap_folder *out)
{
	const struct rentry *e = t ? fmt_rtree_lookup(t, IMAPREC_FOLDER) : NULL;
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

/*
 * The folder records of f.  With check (a folder that changed), also
 * that N has one, and, when it is not T's, its UIDVALIDITY and uidnext
 * against T's; without, the values are read (once).
 */
static void load_folder(struct since *s, struct sfolder *f, bool check)
{
	const struct rentry *ne, *te;
	struct rtree ft, ftt;
	const struct rtree *nt = s->root, *tt = s->troot;
	struct strbuf p = STRBUF_INIT;

	if (f->loaded)
		return;
	memset(&ft, 0, sizeof ft);
	memset(&ftt, 0, sizeof ftt);
	if (*f->name) {
		fmt_read_trusted(s->ck, &ft, f->tree);
		fmt_read_trusted(s->ck, &ftt, f->ttree);
		nt = &ft;
		tt = f->ttree ? &ftt : NULL;
	}
	ne = fmt_rtree_lookup(nt, IMAPREC_FOLDER);
	te = tt ? fmt_rtree_lookup(tt, IMAPREC_FOLDER) : NULL;
	if (check && ne && te && oid_equal(&ne->id, &te->id))
		goto done;	/* T's: nothing to check, read when needed */
	f->loaded = true;
	f->have_n = read_folder_record(s->ck, nt, &f->n);
	if (ne && te && oid_equal(&ne->id, &te->id)) {
		f->have_t = f->have_n;	/* one blob: read once */
		f->t = f->n;
	} else {
		f->have_t = read_folder_record(s->ck, tt, &f->t);
	}
	if (!check)
		goto done;
	strbuf_addf(&p, "%s%s" IMAPREC_FOLDER, f->name, *f->name ? "/" : "");
	if (!ne)
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
done:
	fmt_rtree_release(&ftt);
	fmt_rtree_release(&ft);
}

/* The folders that changed: their records, UIDVALIDITY, uidnext. */
static void changed_folders(struct since *s)
{
	load_folder(s, folder_at(s, (long)s->root->n), true);
	for (size_t i = 0; i < s->root->n && !s->full && !s->ck->stop; i++) {
		const struct rentry *e = &s->root->e[i];
		struct sfolder *f;

		if (!fmt_is_tree(e) || e->name[0] != '.' ||
		    !folder_dir_valid(e->name))
			continue;
		f = folder_at(s, (long)i);
		if (f->changed)
			load_folder(s, f, true);
	}
}

/* --- the records ------------------------------------------------------------- */

/* Which record blobs are T's (imap/ read only when it is not T's). */
static void find_alias(struct since *s)
{
	const struct rentry *ni = fmt_rtree_lookup(s->root, IMAPREC_DIR);
	const struct rentry *ti = fmt_rtree_lookup(s->troot, IMAPREC_DIR);

	s->imap_same = (!ni && !ti) || (ni && ti && oid_equal(&ni->id, &ti->id));
	s->nimap = &s->own_n;
	s->timap = &s->own_t;
	if (!s->imap_same && s->ck->imap_n.obj) {
		s->nimap = &s->ck->imap_n;	/* check_imap_dir() read them */
		s->timap = &s->ck->imap_t;
	} else if (!s->imap_same) {
		fmt_read_trusted(s->ck, &s->own_n, ni && fmt_is_tree(ni) ?
				 &ni->id : NULL);
		fmt_read_trusted(s->ck, &s->own_t, ti && fmt_is_tree(ti) ?
				 &ti->id : NULL);
	}
	for (unsigned xx = 0; xx < 256; xx++) {
		const struct rentry *a, *b;
		char hex[3];

		if (!affected(s, xx) || (s->alias[xx] = s->imap_same))
			continue;
		shard_hex(hex, xx);
		a = fmt_rtree_lookup(s->nimap, hex);
		b = fmt_rtree_lookup(s->timap, hex);
		s->alias[xx] = (!a && !b) || (a && b && oid_equal(&a->id, &b->id));
	}
}

/* The records of shard xx, N's and T's, read once; which are not T's. */
static void load_records(struct since *s, unsigned xx)
{
	const struct rtree *nt = s->nimap, *tt = s->timap;
	struct rtree one;
	char hex[3];

	if (s->nrec[xx])
		return;
	memset(&one, 0, sizeof one);
	if (s->imap_same) {
		const struct rentry *ni = fmt_rtree_lookup(s->root, IMAPREC_DIR);
		fmt_read_trusted(s->ck, &one, ni && fmt_is_tree(ni) ?
				 &ni->id : NULL);
		nt = tt = &one;
	}
	shard_hex(hex, xx);
	if (s->ck->imap_blob[xx]) {
		/* check_imap_dir() read and checked it */
		s->nrec[xx] = xcalloc(1, sizeof *s->nrec[xx]);
		git_odb_object_dup(&s->nrec[xx]->obj, s->ck->imap_blob[xx]);
		rset_scan(s->nrec[xx], git_odb_object_data(s->nrec[xx]->obj),
			  git_odb_object_size(s->nrec[xx]->obj));
	} else {
		s->nrec[xx] = rset_read(s->ck, fmt_rtree_lookup(nt, hex));
	}
	if (s->alias[xx]) {
		s->trec[xx] = s->nrec[xx];	/* T's records */
	} else {
		s->trec[xx] = rset_read(s->ck, fmt_rtree_lookup(tt, hex));
		for (size_t i = 0; i < s->nrec[xx]->n; i++) {
			struct rrec *r = &s->nrec[xx]->v[i];
			struct rrec *t = rset_find(s->trec[xx], r->key, r->klen);
			r->moved = !t || t->uid != r->uid;
		}
	}
	fmt_rtree_release(&one);
}

/* Where a message is, for a report: "<folder>/<sub>/<xx>/<name>". */
struct where {
	const char *folder, *sub, *name;
	unsigned xx;
};

__attribute__((format(printf, 3, 4)))
static void report_at(struct since *s, const struct where *w,
		      const char *fmt, ...)
{
	struct strbuf path = STRBUF_INIT, msg = STRBUF_INIT;
	va_list ap;

	tree_shard_path(&path, w->folder, w->sub, w->xx);
	strbuf_addf(&path, "/%s", w->name);
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	fmt_report_path(s->ck, path.buf, "%s", msg.buf);
	strbuf_release(&msg);
	strbuf_release(&path);
}

/* One message of folder f, key k; old_known: T had k in this folder. */
static void one_message(struct since *s, struct sfolder *f,
			const struct where *w, size_t klen, bool old_known)
{
	const char *k = w->name;
	struct rrec *r, *t;
	struct strbuf key = STRBUF_INIT, path = STRBUF_INIT;
	const char *other;

	load_folder(s, f, false);
	load_records(s, w->xx);
	r = rset_find(s->nrec[w->xx], k, klen);
	if (!r) {
		report_at(s, w, "no IMAP record for this message");
		return;
	}
	r->used = true;
	if (r->uid == 0)
		return;		/* unnumbered: numbered by who applies it */
	if (f->have_n && r->uid >= f->n.uidnext)
		report_at(s, w, "UID %u not below the folder's uidnext %u",
			  (unsigned)r->uid, (unsigned)f->n.uidnext);
	t = s->trec[w->xx] == s->nrec[w->xx] ? r :
	    rset_find(s->trec[w->xx], k, klen);
	if (f->have_t && t && t->uid == r->uid && old_known)
		return;		/* the ancestor's own (key, folder, UID) */
	if (f->have_t && r->uid < f->t.uidnext) {
		report_at(s, w, "UID %u is below uidnext %u of the history it "
			  "follows, where this message did not have it (a UID "
			  "may not be given twice)", (unsigned)r->uid,
			  (unsigned)f->t.uidnext);
		return;
	}
	strbuf_addf(&key, "%s/%u", f->name, (unsigned)r->uid);
	tree_shard_path(&path, w->folder, w->sub, w->xx);
	strbuf_addf(&path, "/%s", w->name);
	other = fmt_strset_add(&s->fresh, key.buf, key.len, path.buf);
	if (other) {
		struct strbuf o = STRBUF_INIT;
		fmt_show_path(&o, other, strlen(other));
		report_at(s, w, "UID %u also given to '%s'", (unsigned)r->uid,
			  o.buf);
		strbuf_release(&o);
	}
	strbuf_release(&key);
	strbuf_release(&path);
}

/* --- the walk --------------------------------------------------------------- */

/* An entry of N's changed trees that needs a look. */
struct pend {
	size_t kept;		/* which kept tree pair */
	size_t idx;		/* which entry of its N tree */
	bool same;		/* T had this very name there */
};

/* A kept pair read again (beyond KEEP_TREES) is let go after use. */
static void unkeep(struct since *s, size_t i)
{
	if (i < KEEP_TREES)
		return;
	fmt_rtree_release(&s->ck->kept[i].n);
	fmt_rtree_release(&s->ck->kept[i].t);
}

/*
 * Pair N's and T's changed trees by name (both in git's order): a name
 * in both is the same key in the same folder; T's others are "gone"
 * from their folder (gone: key -> folder index + 1), N's others are
 * pushed to *out, with the names in both when the records changed.
 */
static void pair_kept(struct since *s, struct pend **out, size_t *n,
		      size_t *alloc)
{
	for (size_t i = 0; i < s->ck->nkept && !s->ck->stop; i++) {
		struct kept_shard *k = &s->ck->kept[i];
		const struct rtree *nt = kept_tree(s->ck, k, true);
		const struct rtree *tt = kept_tree(s->ck, k, false);
		long fi = folder_index(s, k->folder);
		char fv[24];
		size_t a = 0, b = 0;

		snprintf(fv, sizeof fv, "%ld", fi + 1);
		while (a < nt->n || b < tt->n) {
			int c = a == nt->n ? 1 : b == tt->n ? -1 :
				fmt_entry_cmp(&nt->e[a], &tt->e[b]);
			if (c > 0) {
				const char *name = tt->e[b++].name;
				fmt_strset_add(&s->gone, name,
					       maildir_key_len(name), fv);
				continue;
			}
			if (c == 0)
				b++;
			if (c < 0 || !s->alias[k->xx]) {
				xgrow((void **)out, alloc, *n + 1, sizeof **out);
				(*out)[(*n)++] = (struct pend){ i, a, c == 0 };
			}
			a++;
		}
		unkeep(s, i);
	}
}

/* N's messages of the changed trees. */
static void match_kept(struct since *s)
{
	struct pend *p = NULL;
	size_t n = 0, alloc = 0;

	pair_kept(s, &p, &n, &alloc);
	for (size_t i = 0; i < n && !s->ck->stop; i++) {
		struct kept_shard *k = &s->ck->kept[p[i].kept];
		const struct rtree *nt = kept_tree(s->ck, k, true);
		const char *name = nt->e[p[i].idx].name, *tf;
		long fi = folder_index(s, k->folder);
		size_t kl = maildir_key_len(name);
		bool old = p[i].same;
		struct sfolder *f;
		struct where w;

		if (fi < 0)
			continue;	/* cannot be: a kept N tree is in N */
		f = folder_at(s, fi);
		w = (struct where){ f->name, k->sub, name, k->xx };
		if (!old && (tf = fmt_strset_get(&s->gone, name, kl))) {
			fmt_strset_add(&s->found, name, kl, "");
			old = strtol(tf, NULL, 10) == fi + 1;
		}
		if (!(old && s->alias[k->xx] && !p[i].same))
			one_message(s, f, &w, kl, old);
		/* else: same key, folder and record */
		if (i + 1 == n || p[i + 1].kept != p[i].kept)
			unkeep(s, p[i].kept);
	}
	free(p);
}

/* The tree sub ("cur"/"new") of folder tree ft into st (empty if none). */
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

/*
 * The shard trees of folder fi that are T's (unchanged), in the shard
 * numbers of all[]: their messages whose record moved and was not met.
 */
static void walk_unchanged(struct since *s, long fi, const bool *all)
{
	static const char *const names[] = { "cur", "new" };
	struct sfolder *f = folder_at(s, fi);
	struct rtree ft, sub[2];
	const struct rtree *nt = s->root;

	memset(&ft, 0, sizeof ft);
	if (*f->name) {
		if (!f->ttree)
			return;		/* new: every tree was kept */
		fmt_read_trusted(s->ck, &ft, f->tree);
		nt = &ft;
	}
	for (int i = 0; i < 2; i++)
		read_sub(s->ck, nt, names[i], &sub[i]);
	for (unsigned xx = 0; xx < 256 && !s->ck->stop; xx++) {
		if (!all[xx])
			continue;
		for (int i = 0; i < 2; i++) {
			const struct rentry *e = shard_entry(&sub[i], xx);
			struct rtree sh;
			bool kept = false;

			if (!e)
				continue;
			/* a kept (changed) tree was matched already */
			for (size_t k = 0; k < s->ck->nkept && !kept; k++)
				kept = s->ck->kept[k].has_n &&
				       oid_equal(&s->ck->kept[k].nid, &e->id);
			if (kept)
				continue;
			fmt_read_trusted(s->ck, &sh, &e->id);
			for (size_t j = 0; j < sh.n; j++) {
				size_t kl = maildir_key_len(sh.e[j].name);
				struct rrec *r = rset_find(s->nrec[xx],
							   sh.e[j].name, kl);
				struct where w = { f->name, names[i],
						   sh.e[j].name, xx };
				if (r && r->moved && !r->used) {
					one_message(s, f, &w, kl, true);
				} else if (r) {
					r->used = true;
				}
			}
			fmt_rtree_release(&sh);
		}
	}
	for (int i = 0; i < 2; i++)
		fmt_rtree_release(&sub[i]);
	fmt_rtree_release(&ft);
}

/* Which shard numbers hold a record that moved and was not met? */
static bool need_all(struct since *s, bool *all)
{
	bool any = false;

	for (unsigned xx = 0; xx < 256; xx++) {
		all[xx] = false;
		if (!affected(s, xx) || s->alias[xx])
			continue;
		load_records(s, xx);
		for (size_t i = 0; i < s->nrec[xx]->n && !all[xx]; i++)
			if (s->nrec[xx]->v[i].moved && !s->nrec[xx]->v[i].used)
				all[xx] = any = true;
	}
	return any;
}

static void report_orphan(struct since *s, const char *key, size_t klen)
{
	struct strbuf p = STRBUF_INIT, k = STRBUF_INIT;
	char hex[3];

	maildir_shard_hex(hex, key, klen);
	strbuf_addf(&p, IMAPREC_DIR "/%s", hex);
	format_escape(&k, key, klen);
	fmt_report_path(s->ck, p.buf, "no message with key '%s'", k.buf);
	strbuf_release(&p);
	strbuf_release(&k);
}

/*
 * Every record of an affected shard names a message of the tree: the
 * keys T's changed trees lost and N's did not gain have no record, and
 * a record that moved was met.
 */
static void orphans(struct since *s)
{
	for (size_t i = 0; i < s->gone.cap && !s->ck->stop; i++) {
		const struct slot *g = &s->gone.s[i];
		unsigned xx;

		if (!g->key || fmt_strset_get(&s->found, g->key, g->len))
			continue;
		xx = maildir_shard(g->key, g->len);
		if (!s->alias[xx]) {
			load_records(s, xx);
			if (!rset_find(s->nrec[xx], g->key, g->len))
				continue;
		}
		report_orphan(s, g->key, g->len);
	}
	for (unsigned xx = 0; xx < 256 && !s->ck->stop; xx++)
		for (size_t i = 0; s->nrec[xx] && !s->alias[xx] &&
				   i < s->nrec[xx]->n; i++)
			if (s->nrec[xx]->v[i].moved && !s->nrec[xx]->v[i].used &&
			    !fmt_strset_get(&s->gone, s->nrec[xx]->v[i].key,
					    s->nrec[xx]->v[i].klen))
				report_orphan(s, s->nrec[xx]->v[i].key,
					      s->nrec[xx]->v[i].klen);
}

void fmt_imap_since(struct checker *ck, const struct rtree *root,
		    const struct rtree *tt)
{
	struct since s = { .ck = ck, .root = root, .troot = tt };
	bool all[256];

	s.f = xcalloc(root->n + 1, sizeof *s.f);
	find_alias(&s);
	changed_folders(&s);
	if (!s.full && !ck->stop)
		match_kept(&s);
	if (!s.full && !ck->stop && need_all(&s, all)) {
		/* records that moved in trees that did not: every folder */
		walk_unchanged(&s, (long)root->n, all);
		for (size_t i = 0; i < root->n && !s.full && !ck->stop; i++)
			if (fmt_is_tree(&root->e[i]) && root->e[i].name[0] == '.' &&
			    folder_dir_valid(root->e[i].name))
				walk_unchanged(&s, (long)i, all);
	}
	if (s.full)
		fmt_imap_cross_check(ck, root);
	else if (!ck->stop)
		orphans(&s);
	for (unsigned xx = 0; xx < 256; xx++) {
		if (s.trec[xx] != s.nrec[xx])
			rset_free(s.trec[xx]);
		rset_free(s.nrec[xx]);
	}
	fmt_rtree_release(&s.own_n);
	fmt_rtree_release(&s.own_t);
	free(s.f);
	fmt_strset_release(&s.gone);
	fmt_strset_release(&s.found);
	fmt_strset_release(&s.fresh);
}
