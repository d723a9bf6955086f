/*
 * merge_records: format 2's IMAP records in the tree merge
 * (doc/imap-identity.md 4.2, 4.4): the folder records
 * [<folder>/]imapfolder, the message records imap/<xx> and uidslots of
 * the result, from the rules of merge_imap.c.
 *
 * Only when ours and theirs are both format 2 (m->imap); a format-1
 * merge never comes here, so its trees stay what they were.
 *
 * What is read, and why it is enough.  Along any valid history from a
 * base B to a side S, a message in folder F (same UIDVALIDITY) either
 * keeps the UID B gave it there or has one at or above B's uidnext(F):
 * replicas allocate above their uidnext, a merge keeps a UID only at or
 * above the other side's uidnext, and the applying replica numbers above
 * the result's.  So when one side's record of F is the base's, every UID
 * the other side gives in F stands (it is the base's, or at or above the
 * base's uidnext, which is then that side's), and a shard number only
 * one side changed is taken from it whole, imap/<xx> included, as the
 * walk already does for the messages and mtimes/.  A folder is contested
 * when both sides have its record and changed it, or their UIDVALIDITYs
 * differ: then a side's new UID may not stand, and the merge reads every
 * changed shard (still O(changed shards), never O(mailbox)).  Untouched
 * messages have one UID on both sides and keep it.
 *
 * The rule holds for a real common ancestor, not for a virtual base
 * (criss-cross histories: the merge of the merge bases X and Y).  That
 * can take X's uidnext with Y's placement of a message, which a side
 * holding X's placement does not follow: its UID lies below the virtual
 * base's uidnext though the base gives it no message there.  So a
 * virtual base makes every changed shard read (m->vbase), and merge.c
 * does not answer "the other side" when it equals one side.
 *
 * Invariants: every decision is a function of (base, ours, theirs) and
 * the same when they swap; a folder of the result has its record exactly
 * when it exists (INBOX always); records are canonical.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fnv.h"
#include "format.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "merge_p.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

/* --- which format ------------------------------------------------------ */

/* Is tree format 2?  0 / 1, or < 0 when FORMAT cannot be read. */
static int tree_is_v2(struct mctx *m, const struct oid *tree)
{
	struct strbuf buf = STRBUF_INIT;
	struct oid id;
	char want[32];
	int ret;

	snprintf(want, sizeof want, "maildag %d\n", FORMAT_VERSION_IMAP);
	ret = repo_tree_lookup(&id, m->r, tree, FORMAT_PATH);
	if (ret == E_NOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	if (repo_blob_read(&buf, m->r, &id) < 0) {
		strbuf_release(&buf);
		return log_error("read '" FORMAT_PATH "' of tree %s", oid_hex(tree));
	}
	ret = !strcmp(buf.buf ? buf.buf : "", want);
	strbuf_release(&buf);
	return ret;
}

int mg_imap_detect(struct mctx *m)
{
	int o = tree_is_v2(m, m->tree[O]), t;

	if (o < 0 || (t = tree_is_v2(m, m->tree[T])) < 0)
		return E_FAIL;
	if (o != t) {
		log_error("cannot merge a format 1 tree with a format 2 tree");
		return E_INVALID;
	}
	m->imap = o;
	if (m->imap) {
		m->is = xcalloc(256, sizeof *m->is);
		for (unsigned x = 0; x < 256; x++)
			for (int s = 0; s < 3; s++)
				strbuf_init(&m->is[x].ix[s].buf, 0);
	}
	return 0;
}

void mg_imap_release(struct mctx *m)
{
	if (m->is)
		for (unsigned x = 0; x < 256; x++)
			for (int s = 0; s < 3; s++)
				rindex_release(&m->is[x].ix[s]);
	free(m->is);
	for (size_t i = 0; i < m->nifs; i++)
		free(m->ifs[i].folder);
	free(m->ifs);
}

/* --- the records of the three trees, read when asked -------------------- */

/*
 * A record blob is read as it is, not parsed into records: an index of
 * its lines by key (the blob is canonical, sorted by key, in a tree the
 * caller checked), so the thousands of records of the shards a merge
 * touches cost no allocation each; a line is decoded only when its
 * message is merged.
 */
void rindex_release(struct rindex *ix)
{
	strbuf_release(&ix->buf);
	free(ix->v);
	ix->v = NULL;
	ix->n = 0;
}

static int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

/* Index ix->buf; false when it is not lines "<key> TAB ..." sorted. */
static bool rindex_build(struct rindex *ix)
{
	const char *p = ix->buf.buf, *end = p + ix->buf.len;
	size_t alloc = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *tab = eol ? memchr(p, '\t', (size_t)(eol - p)) : NULL;
		struct rline *l;

		if (!tab || tab == p)
			return false;
		xgrow((void **)&ix->v, &alloc, ix->n + 1, sizeof *ix->v);
		l = &ix->v[ix->n++];
		l->key = p;
		l->klen = (size_t)(tab - p);
		l->line = p;
		l->len = (size_t)(eol + 1 - p);
		if (ix->n > 1 && key_cmp(l[-1].key, l[-1].klen, l->key,
					 l->klen) >= 0)
			return false;
		p = eol + 1;
	}
	return true;
}

/* The records of shard x on side s (empty when the side has none). */
static int shard_ix(const struct rindex **out, struct mctx *m, unsigned x,
		    int s)
{
	struct ishard *is = &m->is[x];
	struct strbuf path = STRBUF_INIT;
	int ret = 0;

	if (!is->loaded[s]) {
		imap_recs_shard_path(&path, x);
		ret = m->tree[s] ? repo_tree_lookup(&is->id[s], m->r, m->tree[s],
						    path.buf) : E_NOTFOUND;
		is->present[s] = ret == 0;
		is->loaded[s] = true;
		is->alias[s] = s;
		ret = ret == E_NOTFOUND ? 0 : ret;
		/* share what another side read from the same blob */
		for (int k = 0; k < 3 && ret == 0; k++)
			if (k != s && is->loaded[k] && is->alias[k] == k &&
			    is->present[k] == is->present[s] &&
			    (!is->present[s] || oid_equal(&is->id[k], &is->id[s])))
				is->alias[s] = k;
		if (ret == 0 && is->alias[s] == s && is->present[s]) {
			if (repo_blob_read(&is->ix[s].buf, m->r, &is->id[s]) < 0)
				ret = log_error("read '%s': %s", path.buf,
						repo_git_error());
			else if (!rindex_build(&is->ix[s])) {
				log_error("'%s' is not a list of IMAP records: "
					  "refusing to merge", path.buf);
				ret = E_INVALID;
			}
		}
	}
	strbuf_release(&path);
	*out = &is->ix[is->alias[s]];
	return ret;
}

static const struct rline *rindex_find(const struct rindex *ix, const char *key)
{
	size_t lo = 0, hi = ix->n, kl = strlen(key);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(ix->v[mid].key, ix->v[mid].klen, key, kl);
		if (!c)
			return &ix->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The UID field of a line ("-": 0). */
static uint32_t line_uid(const struct rline *l)
{
	unsigned long long v = 0;

	for (const char *p = l->key + l->klen + 1;
	     p < l->line + l->len && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (unsigned)(*p - '0');
	return v > IMAP_UID_MAX ? 0 : (uint32_t)v;
}

/* The keywords of a line, pushed to out. */
static void line_keywords(struct strvec *out, const struct rline *l)
{
	const char *end = l->line + l->len - 1;	/* at the LF */
	const char *p = memchr(l->key + l->klen + 1, '\t',
			       (size_t)(end - l->key - l->klen - 1));

	while (p && ++p < end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t n = (size_t)((sp ? sp : end) - p);
		char *k = xstrndup(p, n);

		strvec_push_nodup(out, k);
		p = sp;
	}
}

static void folder_record_path(struct strbuf *out, const char *folder)
{
	if (*folder)
		strbuf_addf(out, "%s/", folder);
	strbuf_addstr(out, IMAPREC_FOLDER);
}

/* The entry of folder (created, its records read). */
static int folder_get(struct ifolder **out, struct mctx *m, const char *folder,
		      size_t flen)
{
	struct strbuf path = STRBUF_INIT, buf = STRBUF_INIT;
	struct ifolder *f;
	int ret = 0;

	for (size_t i = 0; i < m->nifs; i++)
		if (strlen(m->ifs[i].folder) == flen &&
		    !strncmp(m->ifs[i].folder, folder, flen)) {
			*out = &m->ifs[i];
			return 0;
		}
	xgrow((void **)&m->ifs, &m->aifs, m->nifs + 1, sizeof *m->ifs);
	f = &m->ifs[m->nifs++];
	memset(f, 0, sizeof *f);
	f->folder = xstrndup(folder, flen);
	folder_record_path(&path, f->folder);
	for (int s = 0; s < 3 && ret == 0; s++) {
		int r = m->tree[s] ? repo_tree_lookup(&f->id[s], m->r, m->tree[s],
						      path.buf) : E_NOTFOUND;
		if (r == E_NOTFOUND)
			continue;
		if (r < 0 || (strbuf_reset(&buf), repo_blob_read(&buf, m->r,
								 &f->id[s]) < 0)) {
			ret = log_error("read '%s'", path.buf);
			break;
		}
		if (imap_folder_parse(&f->f[s], buf.buf, buf.len, NULL) < 0) {
			log_error("'%s' is not a folder record: refusing to merge",
				  path.buf);
			ret = E_INVALID;
			break;
		}
		f->has[s] = true;
	}
	strbuf_release(&path);
	strbuf_release(&buf);
	*out = f;
	return ret;
}

/* Does side s hold the incarnation the base had (its UIDVALIDITY)? */
static bool holds_base(const struct ifolder *f, int s)
{
	return f->has[B] && f->has[s] &&
	       f->f[s].uidvalidity == f->f[B].uidvalidity;
}

static bool same_record(const struct ifolder *f, int a, int b)
{
	return f->has[a] == f->has[b] &&
	       (!f->has[a] || oid_equal(&f->id[a], &f->id[b]));
}

/*
 * One side deleted the folder, the other changed the incarnation the
 * base had (same UIDVALIDITY, a new record): it comes back, but the
 * deleting side's uidnext is lost with its record, and UIDs it showed
 * there may be above the other side's.  So it comes back as a new
 * incarnation: a new UIDVALIDITY (revived_uidvalidity()), uidnext 1,
 * every message unnumbered.
 */
static bool revived(const struct ifolder *f)
{
	int s = f->has[O] ? O : T;

	return f->has[B] && f->has[O] != f->has[T] &&
	       f->f[s].uidvalidity == f->f[B].uidvalidity &&
	       !same_record(f, s, B);
}

/*
 * The UIDVALIDITY of a revived folder: above the base's, and different
 * for two revivals of one incarnation from different sides (a replica
 * that took part in both must not see one UIDVALIDITY with two
 * histories): the base's + 1 + 16 bits of a hash of the two sides' tree
 * ids, in id order (the same whichever side is ours).
 */
static uint32_t revived_uidvalidity(const struct mctx *m, uint32_t v)
{
	const struct oid *a = m->tree[O], *b = m->tree[T];
	unsigned char buf[2 * sizeof a->id];
	uint64_t next;

	if (oid_cmp(a, b) > 0) {
		const struct oid *t = a;
		a = b;
		b = t;
	}
	memcpy(buf, a->id, sizeof a->id);
	memcpy(buf + sizeof a->id, b->id, sizeof b->id);
	next = (uint64_t)v + 1 + (fnv1a32(buf, sizeof buf) & 0xffff);
	return next > IMAP_UID_MAX ? (uint32_t)(next - IMAP_UID_MAX) : (uint32_t)next;
}

/* f->out for the messages msgs[0..n-1] of the result in f. */
static int folder_out(const struct mctx *m, struct ifolder *f,
		      struct imap_msg *msgs, size_t n)
{
	struct imap_fside fs[3] = { { false, { 0, 0 } }, { f->has[O], f->f[O] },
				    { f->has[T], f->f[T] } };
	int ret = 0;

	if (revived(f)) {
		f->out.uidvalidity = revived_uidvalidity(m, f->f[B].uidvalidity);
		f->out.uidnext = 1;
		for (size_t i = 0; i < n; i++)
			msgs[i].out = 0;
	} else if (!f->has[O] && !f->has[T]) {
		log_error("folder '%s' of the merge has no folder record on "
			  "either side: refusing to merge", f->folder);
		ret = E_INVALID;
	} else {
		/*
		 * A side that replaced the base's incarnation (another
		 * UIDVALIDITY) wins over one that kept it, whichever value
		 * is greater: the base's incarnation must not come back to a
		 * replica that dropped it, and its uidnext with it
		 */
		if (f->has[O] && f->has[T] &&
		    f->f[O].uidvalidity != f->f[T].uidvalidity) {
			if (holds_base(f, O))
				fs[O].has = false;
			else if (holds_base(f, T))
				fs[T].has = false;
		}
		ret = merge_imap_folder(&f->out, fs, msgs, n);
	}
	f->computed = ret == 0;
	return ret;
}

int mg_imap_contested(struct mctx *m)
{
	int ret = 0;

	/* a virtual base: the ancestor rule does not hold, read everything */
	if (m->vbase)
		m->contested = m->contested_all = true;
	for (size_t i = 0; i < m->ln && ret == 0; i++) {
		const struct leaf *l = &m->lv[i];
		struct ifolder *f;

		if (l->kind != LEAF_IMAPFOLDER ||
		    (ret = folder_get(&f, m, l->path, l->flen)) < 0)
			continue;
		f->leaf = true;
		/*
		 * a side whose uidnext went below the base's in the base's
		 * incarnation took a stale copy of it through a UIDVALIDITY
		 * conflict: the ancestor rule does not hold, read everything
		 */
		if ((f->has[O] && f->has[T] &&
		     f->f[O].uidvalidity != f->f[T].uidvalidity) || revived(f) ||
		    (holds_base(f, O) && f->f[O].uidnext < f->f[B].uidnext) ||
		    (holds_base(f, T) && f->f[T].uidnext < f->f[B].uidnext))
			m->contested = m->contested_all = true;
		else if (f->has[O] && f->has[T] && !same_record(f, O, B) &&
			 !same_record(f, T, B))
			m->contested = f->contested = true;
	}
	return ret;
}

/* How many folders' shard directories of x diff d changed (0, 1, 2+). */
static unsigned folders_changed(const struct mctx *m, unsigned x, int d)
{
	const char *first = NULL;
	size_t flen = 0;

	for (size_t i = 0; i < m->npend; i++) {
		const struct pending *p = &m->pend[i];
		const char *sub;
		size_t len;

		if ((int)p->diff != d || p->shard != x)
			continue;
		/* [<folder>/](cur|new)/<xx>: the folder is what precedes */
		sub = strlen(p->path) > 7 ? p->path + strlen(p->path) - 7 : p->path;
		len = (size_t)(sub - p->path);
		if (!first) {
			first = p->path;
			flen = len;
		} else if (len != flen || strncmp(first, p->path, len)) {
			return 2;
		}
	}
	return first ? 1 : 0;
}

/*
 * Along a valid history from the base, a side's message in folder F
 * whose (F, UID) pair is new has a UID at or above the base's
 * uidnext(F) (the head comment).  It stands unless F is contested and
 * the UID is below the other side's uidnext(F): in the interval
 * [base uidnext, other uidnext).  Without reading x's shard trees the
 * folder of a record is unknown, so a UID in any contested folder's
 * interval means reading; a message moved between folders may keep its
 * UID number and its record, so two folders changed in x mean reading.
 */
bool mg_imap_must_read(struct mctx *m, unsigned x, int d, int *err)
{
	int s = 1 + d, y = s == O ? T : O;
	const struct rindex *rb, *rs;
	bool imap_changed = false;
	size_t i = 0;

	if (m->contested_all || folders_changed(m, x, d) > 1)
		return true;
	for (size_t k = 0; k < m->ln && !imap_changed; k++)
		imap_changed = m->lv[k].kind == LEAF_IMAPREC &&
			       m->lv[k].shard == x && (int)m->lv[k].diff == d;
	if (!imap_changed)
		return false;	/* no UID given anew */
	if ((*err = shard_ix(&rb, m, x, B)) < 0 ||
	    (*err = shard_ix(&rs, m, x, s)) < 0)
		return true;
	for (size_t j = 0; j < rs->n; j++) {
		const struct rline *r = &rs->v[j];
		uint32_t u = line_uid(r);
		int c = 1;

		while (i < rb->n && (c = key_cmp(rb->v[i].key, rb->v[i].klen,
						 r->key, r->klen)) < 0)
			i++;
		if (!u || (i < rb->n && !c && line_uid(&rb->v[i]) == u))
			continue;
		for (size_t k = 0; k < m->nifs; k++) {
			const struct ifolder *f = &m->ifs[k];
			/* the ancestor rule holds for the base's incarnation */
			uint32_t lo = holds_base(f, s) ? f->f[B].uidnext : 1;
			if (f->contested && u >= lo && u < f->f[y].uidnext)
				return true;
		}
	}
	return false;
}

/* --- keys whose record alone changed ----------------------------------- */

int mg_imap_changed_keys(struct mctx *m, char ***out, size_t *nout)
{
	size_t n = 0, alloc = 0;
	char **keys = NULL;
	int ret = 0;

	for (size_t i = 0; i < m->ln; i++)
		if (m->lv[i].kind == LEAF_IMAPREC)
			m->is[m->lv[i].shard].touched = true;
	for (unsigned x = 0; x < 256 && ret == 0; x++) {
		const struct rindex *rb, *rs;

		if (!m->is[x].touched)
			continue;
		for (int s = O; s <= T && ret == 0; s++) {
			size_t i = 0, j = 0;

			if ((ret = shard_ix(&rb, m, x, B)) < 0 ||
			    (ret = shard_ix(&rs, m, x, s)) < 0 || rb == rs)
				continue;
			while (i < rb->n || j < rs->n) {
				const struct rline *lb = i < rb->n ? &rb->v[i] : NULL;
				const struct rline *ls = j < rs->n ? &rs->v[j] : NULL;
				int c = !lb ? 1 : !ls ? -1 :
					key_cmp(lb->key, lb->klen, ls->key, ls->klen);
				const struct rline *k = c <= 0 ? lb : ls;
				bool differ = c || lb->len != ls->len ||
					      memcmp(lb->line, ls->line, lb->len);

				i += c <= 0;
				j += c >= 0;
				if (!differ)
					continue;
				xgrow((void **)&keys, &alloc, n + 1, sizeof *keys);
				keys[n++] = xstrndup(k->key, k->klen);
			}
		}
	}
	if (n)
		qsort(keys, n, sizeof *keys, strvec_cmp);
	*out = keys;
	*nout = n;
	return ret;
}

/* --- the result's records ------------------------------------------------ */

/* One message of the result whose record the merge decides. */
struct ient {
	const char *folder, *key;
	unsigned shard;
	struct imap_msg msg;
	struct strvec kw;
};

static int ient_cmp(const void *a, const void *b)
{
	const struct ient *x = a, *y = b;
	int c = strcmp(x->folder, y->folder);

	return c ? c : strcmp(x->key, y->key);
}

/* The record side s holds for key (NULL: none). */
static int side_rec(const struct rline **out, struct mctx *m, int s,
		    const char *key)
{
	const struct rindex *ix;
	int ret = shard_ix(&ix, m, maildir_shard(key, strlen(key)), s);

	*out = ret < 0 ? NULL : rindex_find(ix, key);
	return ret;
}

/* The UIDs and keywords of one result entry r of id. */
static int ient_fill(struct ient *e, struct mctx *m, struct ident *id,
		     const struct res *r)
{
	struct imap_kwside sd[3];
	struct strvec kw[3] = { STRVEC_INIT, STRVEC_INIT, STRVEC_INIT };
	int ret = 0;

	memset(e, 0, sizeof *e);
	e->folder = r->folder;
	e->key = r->key;
	e->shard = maildir_shard(r->key, strlen(r->key));
	e->msg.key = r->key;
	e->kw = (struct strvec)STRVEC_INIT;
	for (int s = B; s <= T && ret == 0; s++) {
		const struct rline *rec = NULL;

		memset(&sd[s], 0, sizeof sd[s]);
		/* keywords: the side's record of the message, any folder */
		if (id->n[s] && (ret = side_rec(&rec, m, s, id->v[s][0].mn.key)) == 0 &&
		    rec) {
			line_keywords(&kw[s], rec);
			sd[s].has = true;
			sd[s].kw = (const char *const *)kw[s].v;
			sd[s].n = kw[s].n;
		}
		/* the UID: only under the same key in the same folder */
		for (size_t k = 0; s != B && k < id->n[s] && ret == 0; k++) {
			const struct view *v = &id->v[s][k];
			if (strcmp(v->folder, r->folder) || strcmp(v->mn.key, r->key))
				continue;
			if ((ret = side_rec(&rec, m, s, v->mn.key)) == 0 && rec)
				e->msg.uid[s] = line_uid(rec);
			break;
		}
	}
	if (ret == 0)
		merge_imap_keywords(&e->kw, sd);
	for (int s = B; s <= T; s++)
		strvec_clear(&kw[s]);
	return ret;
}

/* The folder record of f for the result, and what it means for ours. */
static int resolve_folder(struct mctx *m, struct ifolder *f,
			  struct ient *ents, size_t n)
{
	struct imap_msg *msgs = xcalloc(n ? n : 1, sizeof *msgs);
	struct strbuf path = STRBUF_INIT, buf = STRBUF_INIT;
	bool remove;
	struct oid id;
	int ret = 0;

	if (!f->has[O] && !f->has[T] && !n) {
		free(msgs);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		msgs[i] = ents[i].msg;
	if ((ret = folder_out(m, f, msgs, n)) < 0)
		goto done;
	for (size_t i = 0; i < n; i++)
		ents[i].msg.out = msgs[i].out;
	/* a side that removed it wins over one that left it alone */
	remove = (!f->has[O] && same_record(f, T, B)) ||
		 (!f->has[T] && same_record(f, O, B));
	folder_record_path(&path, f->folder);
	if (remove) {
		if (f->has[O])
			update_list_add(&m->ups, path.buf, NULL);
		goto done;
	}
	imap_folder_format(&buf, &f->out);
	if (git_odb_hash(GIT_OID(&id), buf.buf, buf.len, GIT_OBJECT_BLOB) < 0)
		ret = log_error("hash: %s", repo_git_error());
	else if ((!f->has[O] || !oid_equal(&id, &f->id[O])) &&
		 (ret = repo_blob_from_buffer(&id, m->r, buf.buf, buf.len)) == 0)
		update_list_add(&m->ups, path.buf, &id);
done:
	strbuf_release(&path);
	strbuf_release(&buf);
	free(msgs);
	return ret;
}

/* A key of a shard whose record the result drops or sets. */
struct skey {
	unsigned shard;
	const char *key;
	const struct ient *e;	/* NULL: dropped */
};

static int skey_cmp(const void *a, const void *b)
{
	const struct skey *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return strcmp(x->key, y->key);
}

static void skey_add(struct skey **v, size_t *n, size_t *alloc,
		     const char *key, const struct ient *e)
{
	xgrow((void **)v, alloc, *n + 1, sizeof **v);
	(*v)[*n].shard = maildir_shard(key, strlen(key));
	(*v)[*n].key = key;
	(*v)[*n].e = e;
	(*n)++;
}

/* The canonical line of a result entry. */
static void add_line(struct strbuf *out, const struct ient *e)
{
	struct imap_recs one = IMAP_RECS_INIT;

	imap_recs_set(&one, e->key, e->msg.out, (const char *const *)e->kw.v,
		      e->kw.n);
	imap_recs_format(out, &one);
	imap_recs_release(&one);
}

/* imap/<x>: ours' records less gone[], plus set[]; written if changed. */
static int write_shard(struct mctx *m, unsigned x, const struct skey *gone,
		       size_t ng, const struct skey *set, size_t ns)
{
	const struct rindex *ours;
	struct strbuf buf = STRBUF_INIT, path = STRBUF_INIT;
	struct ishard *is = &m->is[x];
	size_t i = 0, g = 0, k = 0;
	struct oid id;
	int ret;

	if ((ret = shard_ix(&ours, m, x, O)) < 0)
		return ret;
	/* a merge of three lists sorted by key */
	while (i < ours->n || k < ns) {
		const struct rline *l = i < ours->n ? &ours->v[i] : NULL;
		int c = !l ? 1 : k >= ns ? -1 :
			key_cmp(l->key, l->klen, set[k].key, strlen(set[k].key));

		if (c > 0) {
			add_line(&buf, set[k++].e);
			continue;
		}
		if (c == 0) {
			add_line(&buf, set[k++].e);
			i++;
			continue;
		}
		while (g < ng && key_cmp(gone[g].key, strlen(gone[g].key),
					 l->key, l->klen) < 0)
			g++;
		if (!(g < ng && !key_cmp(gone[g].key, strlen(gone[g].key),
					 l->key, l->klen)))
			strbuf_add(&buf, l->line, l->len);
		i++;
	}
	imap_recs_shard_path(&path, x);
	if (!buf.len) {
		if (is->present[O])
			update_list_add(&m->ups, path.buf, NULL);
	} else if (git_odb_hash(GIT_OID(&id), buf.buf, buf.len,
				GIT_OBJECT_BLOB) < 0) {
		ret = log_error("hash: %s", repo_git_error());
	} else if (!is->present[O] || !oid_equal(&id, &is->id[O])) {
		/* theirs' or the base's blob exists: no need to write it */
		bool have = (is->loaded[T] && is->present[T] &&
			     oid_equal(&id, &is->id[T])) ||
			    (is->loaded[B] && is->present[B] &&
			     oid_equal(&id, &is->id[B]));
		if (have || (ret = repo_blob_from_buffer(&id, m->r, buf.buf,
							  buf.len)) == 0)
			update_list_add(&m->ups, path.buf, &id);
	}
	strbuf_release(&buf);
	strbuf_release(&path);
	return ret;
}

static int write_records(struct mctx *m, const struct ient *ents, size_t ne,
			 char **ckeys, size_t nckeys)
{
	struct skey *gone = NULL, *set = NULL;
	size_t ng = 0, ag = 0, ns = 0, as = 0, gi = 0, si = 0;
	int ret = 0;

	for (size_t i = 0; i < nckeys; i++)
		skey_add(&gone, &ng, &ag, ckeys[i], NULL);
	for (size_t i = 0; i < m->nids; i++)
		for (int k = 0; k < 3; k++)
			for (size_t j = 0; j < m->ids[i].n[k]; j++)
				skey_add(&gone, &ng, &ag,
					 m->ids[i].v[k][j].mn.key, NULL);
	for (size_t i = 0; i < ne; i++)
		skey_add(&set, &ns, &as, ents[i].key, &ents[i]);
	if (ng)
		qsort(gone, ng, sizeof *gone, skey_cmp);
	if (ns)
		qsort(set, ns, sizeof *set, skey_cmp);
	for (unsigned x = 0; x < 256 && ret == 0; x++) {
		size_t g0 = gi, s0 = si;

		while (gi < ng && gone[gi].shard == x)
			gi++;
		while (si < ns && set[si].shard == x)
			si++;
		if (g0 == gi && s0 == si && !m->is[x].touched)
			continue;
		ret = write_shard(m, x, gone + g0, gi - g0, set + s0, si - s0);
	}
	free(gone);
	free(set);
	return ret;
}

int mg_imap_resolve(struct mctx *m, char **ckeys, size_t nckeys)
{
	struct ient *ents = NULL;
	size_t ne = 0, alloc = 0;
	int ret = 0;

	for (size_t i = 0; i < m->nids && ret == 0; i++) {
		struct ident *id = &m->ids[i];
		for (size_t k = 0; k < id->nres && ret == 0; k++) {
			bool dup = false;
			/* one record per key: a key in two folders has one */
			for (size_t j = 0; j < k; j++)
				dup |= !strcmp(id->res[j].key, id->res[k].key);
			if (dup)
				continue;
			xgrow((void **)&ents, &alloc, ne + 1, sizeof *ents);
			ret = ient_fill(&ents[ne++], m, id, &id->res[k]);
		}
	}
	if (ne)
		qsort(ents, ne, sizeof *ents, ient_cmp);
	/* every folder with a result message, then the changed records */
	for (size_t i = 0; i < ne && ret == 0;) {
		struct ifolder *f;
		size_t j = i;

		while (j < ne && !strcmp(ents[j].folder, ents[i].folder))
			j++;
		if ((ret = folder_get(&f, m, ents[i].folder,
				      strlen(ents[i].folder))) == 0)
			ret = resolve_folder(m, f, ents + i, j - i);
		i = j;
	}
	for (size_t i = 0; i < m->nifs && ret == 0; i++)
		if (!m->ifs[i].computed)
			ret = resolve_folder(m, &m->ifs[i], NULL, 0);
	if (ret == 0)
		ret = write_records(m, ents, ne, ckeys, nckeys);
	for (size_t i = 0; i < ne; i++)
		strvec_clear(&ents[i].kw);
	free(ents);
	return ret;
}

/* --- folders of the result --------------------------------------------- */

/* The record folder gets when the result has it but lacks its record. */
static int restored_record(struct oid *out, struct mctx *m, const char *folder)
{
	struct strbuf buf = STRBUF_INIT;
	struct ifolder *f;
	int ret;

	if ((ret = folder_get(&f, m, folder, strlen(folder))) < 0)
		return ret;
	if (!f->computed && (ret = folder_out(m, f, NULL, 0)) < 0)
		return ret;
	imap_folder_format(&buf, &f->out);
	ret = repo_blob_from_buffer(out, m->r, buf.buf, buf.len);
	strbuf_release(&buf);
	return ret;
}

int mg_imap_restore_folders(struct oid *tree, struct mctx *m)
{
	struct update_list ups = UPDATE_LIST_INIT;
	git_tree *root = NULL;
	struct oid id;
	int ret;

	if ((ret = mg_tree_load(&root, m, tree)) < 0)
		return ret;
	if (!git_tree_entry_byname(root, IMAPREC_FOLDER) &&
	    (ret = restored_record(&id, m, "")) == 0)
		update_list_add(&ups, IMAPREC_FOLDER, &id);
	for (size_t i = 0; i < git_tree_entrycount(root) && ret == 0; i++) {
		const git_tree_entry *fe = git_tree_entry_byindex(root, i);
		const char *name = git_tree_entry_name(fe);
		const git_tree_entry *re;
		git_tree *ft = NULL;
		size_t n;
		char *p;

		if (git_tree_entry_type(fe) != GIT_OBJECT_TREE || name[0] != '.')
			continue;
		if ((ret = mg_tree_load(&ft, m, OID(git_tree_entry_id(fe)))) < 0)
			break;
		re = git_tree_entry_byname(ft, IMAPREC_FOLDER);
		n = git_tree_entrycount(ft);
		p = xasprintf("%s/" IMAPREC_FOLDER, name);
		/* a folder exists exactly when its record does */
		if (re && n == 1)
			update_list_add(&ups, p, NULL);
		else if (!re && (ret = restored_record(&id, m, name)) == 0)
			update_list_add(&ups, p, &id);
		free(p);
		git_tree_free(ft);
	}
	git_tree_free(root);
	if (ret == 0 && ups.n)
		ret = repo_tree_update(tree, m->r, tree, ups.v, ups.n);
	update_list_release(&ups);
	return ret;
}

/* --- uidslots ---------------------------------------------------------- */

int mg_imap_slots_union(struct oid *out, struct mctx *m, const struct oid *o,
			const struct oid *t)
{
	struct imap_slots s[2] = { IMAP_SLOTS_INIT, IMAP_SLOTS_INIT };
	struct strbuf buf = STRBUF_INIT;
	int ret = 0;

	for (int k = 0; k < 2 && ret == 0; k++) {
		strbuf_reset(&buf);
		if (repo_blob_read(&buf, m->r, k ? t : o) < 0) {
			ret = log_error("read '" IMAPREC_SLOTS "'");
		} else if (imap_slots_parse(&s[k], buf.buf, buf.len, NULL) < 0) {
			log_error("'" IMAPREC_SLOTS "' is not a slot table: "
				  "refusing to merge");
			ret = E_INVALID;
		}
	}
	for (size_t i = 0; ret == 0 && i < s[1].n; i++)
		imap_slots_add(&s[0], s[1].v[i].slot, s[1].v[i].node);
	strbuf_reset(&buf);
	if (ret == 0) {
		imap_slots_format(&buf, &s[0]);
		ret = repo_blob_from_buffer(out, m->r, buf.len ? buf.buf : "",
					    buf.len);
	}
	imap_slots_release(&s[0]);
	imap_slots_release(&s[1]);
	strbuf_release(&buf);
	return ret;
}
