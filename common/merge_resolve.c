/*
 * merge_resolve: step 3 of the Maildir merge (see merge.c and merge.h
 * for the rules): each identity resolved from its three states alone,
 * the keys two messages claim given apart, mtimes resolved and their
 * shards re-written, and the paths that are not messages (markers,
 * subscriptions, anything else) merged.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "log.h"
#include "merge_p.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

/* --- step 3: resolution ------------------------------------------------ */

static void res_from_view(struct res *r, const struct view *v)
{
	r->folder = xstrdup(v->folder);
	r->sub = v->sub;
	r->key = xstrdup(v->mn.key);
	r->fields = xstrdup(v->mn.fields);
	r->info = v->mn.info ? xstrdup(v->mn.info) : NULL;
	r->path = NULL;
}

void mg_res_release(struct res *r)
{
	free(r->folder);
	free(r->key);
	free(r->fields);
	free(r->info);
	free(r->path);
}

static bool info_is_flags(const char *info)
{
	return !info || (info[0] == '2' && info[1] == ',');
}

/* The merged info: per flag letter when all are "2,<flags>" or absent. */
static char *merge_info(const struct view *b, const struct view *o,
			const struct view *t)
{
	const char *bi = b ? b->mn.info : NULL, *oi = o->mn.info, *ti = t->mn.info;
	const char *r;

	if (info_is_flags(oi) && info_is_flags(ti) && info_is_flags(bi)) {
		unsigned char in[3][256];
		const char *f[3] = { bi ? bi + 2 : "", oi ? oi + 2 : "",
				     ti ? ti + 2 : "" };
		bool has, hb = bi != NULL, ho = oi != NULL, ht = ti != NULL;
		char flags[256];
		size_t n = 0;

		memset(in, 0, sizeof in);
		for (int k = 0; k < 3; k++)
			for (const unsigned char *p = (const unsigned char *)f[k]; *p; p++)
				in[k][*p] = 1;
		for (int c = 1; c < 256; c++) {
			/* the side that changed this letter wins */
			bool v = in[O][c] != in[B][c] ? in[O][c] : in[T][c];
			if (v)
				flags[n++] = (char)c;
		}
		flags[n] = '\0';
		/* ":2," present: three-way too, present on a tie */
		has = b ? (ho != hb ? ho : ht) : (ho || ht);
		if (has || n)
			return xasprintf("2,%s", flags);
		return NULL;
	}
	r = mg_pick3(b != NULL, bi, oi, ti, mg_nstrcmp);
	return r ? xstrdup(r) : NULL;
}

static void res_merge(struct res *r, const struct view *b,
		      const struct view *o, const struct view *t)
{
	bool hb = b != NULL;

	r->folder = xstrdup(mg_pick3(hb, hb ? b->folder : NULL, o->folder,
				     t->folder, strcmp));
	if (hb && o->sub == b->sub)
		r->sub = t->sub;
	else if (hb && t->sub == b->sub)
		r->sub = o->sub;
	else
		r->sub = o->sub < t->sub ? o->sub : t->sub;	/* cur */
	r->key = xstrdup(mg_pick3(hb, hb ? b->mn.key : NULL, o->mn.key,
				  t->mn.key, mg_key_tie));
	r->fields = xstrdup(mg_pick3(hb, hb ? b->mn.fields : NULL, o->mn.fields,
				     t->mn.fields, strcmp));
	r->info = merge_info(b, o, t);
	r->path = NULL;
}

static void res_add(struct ident *id, size_t *alloc, const struct view *b,
		    const struct view *o, const struct view *t)
{
	struct res *r;

	xgrow((void **)&id->res, alloc, id->nres + 1, sizeof *id->res);
	r = &id->res[id->nres++];
	if (!o) {
		res_from_view(r, t);
	} else if (!t) {
		res_from_view(r, o);
	} else if (b && !strcmp(o->path, b->path)) {
		res_from_view(r, t);
	} else if (b && !strcmp(t->path, b->path)) {
		res_from_view(r, o);
	} else if (!strcmp(o->path, t->path)) {
		res_from_view(r, o);
	} else {
		res_merge(r, b, o, t);
	}
}

/* One entry (or none) per side. */
static void resolve_single(struct ident *id, size_t *alloc,
			   const struct view *b, const struct view *o,
			   const struct view *t)
{
	if (b && (!o || !t))
		return;		/* expunged: wins over anything */
	if (!o && !t)
		return;
	res_add(id, alloc, b, o, t);
}

static int view_folder_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Several entries on a side (one message in several folders): each
 * folder on its own; several in one folder: per path.
 */
static void resolve_multi(struct ident *id, size_t *alloc)
{
	size_t nf = 0, total = id->n[B] + id->n[O] + id->n[T];
	const char **folders = xmalloc(total * sizeof *folders);

	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < id->n[k]; i++)
			folders[nf++] = id->v[k][i].folder;
	qsort(folders, nf, sizeof *folders, view_folder_cmp);
	for (size_t f = 0; f < nf; f++) {
		const struct view *one[3] = { NULL, NULL, NULL };
		size_t cnt[3] = { 0, 0, 0 };

		if (f && !strcmp(folders[f], folders[f - 1]))
			continue;
		for (int k = 0; k < 3; k++)
			for (size_t i = 0; i < id->n[k]; i++)
				if (!strcmp(id->v[k][i].folder, folders[f])) {
					one[k] = &id->v[k][i];
					cnt[k]++;
				}
		if (cnt[B] <= 1 && cnt[O] <= 1 && cnt[T] <= 1) {
			resolve_single(id, alloc, one[B], one[O], one[T]);
			continue;
		}
		/* per path: a path is kept unless a side removed it */
		for (int k = 0; k < 3; k++) {
			for (size_t i = 0; i < id->n[k]; i++) {
				const struct view *v = &id->v[k][i];
				bool in[3] = { false, false, false }, dup = false;
				if (strcmp(v->folder, folders[f]))
					continue;
				for (int q = 0; q < 3; q++)
					for (size_t z = 0; z < id->n[q]; z++)
						if (!strcmp(id->v[q][z].path, v->path)) {
							in[q] = true;
							if (q < k)
								dup = true;
						}
				if (dup)
					continue;
				if (in[O] != in[B] ? in[O] : in[T])
					res_add(id, alloc, NULL, v, NULL);
			}
		}
	}
	free(folders);
}

void mg_resolve(struct ident *id)
{
	size_t alloc = 0;

	if (id->n[B] <= 1 && id->n[O] <= 1 && id->n[T] <= 1)
		resolve_single(id, &alloc, id->n[B] ? id->v[B] : NULL,
			       id->n[O] ? id->v[O] : NULL,
			       id->n[T] ? id->v[T] : NULL);
	else
		resolve_multi(id, &alloc);
}

static char *res_name(const struct res *r)
{
	return r->info ? xasprintf("%s%s:%s", r->key, r->fields, r->info) :
			 xasprintf("%s%s", r->key, r->fields);
}

void mg_res_build_path(struct res *r)
{
	struct strbuf p = STRBUF_INIT;
	char *name = res_name(r);

	if (!maildir_name_valid(name))
		log_warn("merged name '%s' is not a valid Maildir name", name);
	tree_message_path(&p, r->folder, r->sub == SUB_CUR ? "cur" : "new",
			  name);
	free(name);
	free(r->path);
	r->path = strbuf_detach(&p, NULL);
}

/* For the key collision pass: one result entry. */
struct claim {
	const char *key;
	const struct oid *id;
	struct ident *ident;
	struct res *res;
};

static int claim_cmp(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : oid_cmp(x->id, y->id);
}

static bool key_taken(const struct claim *cl, size_t n, char **extra,
		      size_t nextra, const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(cl[mid].key, key);
		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < nextra; i++)
		if (!strcmp(extra[i], key))
			return true;
	return false;
}

void mg_resolve_collisions(struct mctx *m)
{
	struct claim *cl = NULL;
	size_t n = 0, alloc = 0, nextra = 0, aextra = 0;
	char **extra = NULL;

	for (size_t i = 0; i < m->nids; i++)
		for (size_t k = 0; k < m->ids[i].nres; k++) {
			xgrow((void **)&cl, &alloc, n + 1, sizeof *cl);
			/* a copy: the key of a renamed entry is replaced */
			cl[n].key = xstrdup(m->ids[i].res[k].key);
			cl[n].id = m->ids[i].id;
			cl[n].ident = &m->ids[i];
			cl[n].res = &m->ids[i].res[k];
			n++;
		}
	if (n)
		qsort(cl, n, sizeof *cl, claim_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && !strcmp(cl[j].key, cl[i].key))
			j++;
		for (size_t k = i + 1; k < j; k++) {
			char hex[OID_HEXSZ + 1];
			char *key = NULL;
			if (oid_equal(cl[k].id, cl[i].id))
				continue;	/* one message in two places */
			oid_tostr(hex, sizeof hex, cl[k].id);
			for (int len = 16; len <= OID_HEXSZ; len += OID_HEXSZ - 16) {
				const char *bkey = cl[k].ident->bkey;
				struct strbuf sb = STRBUF_INIT;
				long room = (long)MAILDIR_NAME_MAX -
					(long)strlen(MERGE_DUP_MARK) - len - 2 -
					(long)strlen(cl[k].res->fields) -
					(cl[k].res->info ? (long)strlen(cl[k].res->info) + 1 : 0);
				long blen = (long)strlen(bkey);
				/* an absurdly long name loses the end of its key */
				if (room < 1)
					room = 1;
				mg_dup_key(&sb, bkey, (size_t)(blen < room ? blen : room),
					   hex, (size_t)len,
					   maildir_shard(bkey, (size_t)blen));
				free(key);
				key = strbuf_detach(&sb, NULL);
				if (!key_taken(cl, n, extra, nextra, key))
					break;
			}
			if (key_taken(cl, n, extra, nextra, key)) {
				log_warn("no free key for message %s (key '%s')",
					 hex, cl[k].key);
				free(key);
				continue;
			}
			free(cl[k].res->key);
			cl[k].res->key = key;
			xgrow((void **)&extra, &aextra, nextra + 1, sizeof *extra);
			extra[nextra++] = key;
			if (m->st)
				m->st->collisions++;
		}
		i = j;
	}
	for (size_t i = 0; i < n; i++)
		free((char *)cl[i].key);
	free(extra);
	free(cl);
}

/* --- step 3: mtimes ---------------------------------------------------- */

/* The mtime an entry has on side s. */
static int view_mtime(long long *out, struct mctx *m, const struct view *v,
		      int s)
{
	const struct mtimes *rec;
	int ret = mg_mshard_get(&rec, m, maildir_shard(v->mn.key,
						    strlen(v->mn.key)), s);

	if (ret == 0)
		*out = mtimes_get(rec, v->mn.key);
	return ret;
}

static long long mtime_tie(long long a, long long b)
{
	if (a == MTIME_NONE)
		return b;
	if (b == MTIME_NONE)
		return a;
	return a < b ? a : b;
}

int mg_resolve_mtime(struct mctx *m, struct ident *id)
{
	long long v[3] = { MTIME_NONE, MTIME_NONE, MTIME_NONE };
	int ret;

	if (!id->nres)
		return 0;
	for (int k = 0; k < 3; k++)
		if (id->n[k] && (ret = view_mtime(&v[k], m, &id->v[k][0], k)) < 0)
			return ret;
	if (!id->n[O])
		id->mtime = v[T];
	else if (!id->n[T])
		id->mtime = v[O];
	else if (id->n[B] && v[O] == v[B])
		id->mtime = v[T];
	else if (id->n[B] && v[T] == v[B])
		id->mtime = v[O];
	else
		id->mtime = mtime_tie(v[O], v[T]);
	return 0;
}

/* A key of a shard, and (for the result's messages) its mtime. */
struct shard_key {
	unsigned shard;
	const char *key;
	long long mtime;
};

static int shard_key_cmp(const void *a, const void *b)
{
	const struct shard_key *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return strcmp(x->key, y->key);
}

static void sk_add(struct shard_key **v, size_t *n, size_t *alloc,
		   const char *key, long long mtime)
{
	xgrow((void **)v, alloc, *n + 1, sizeof **v);
	(*v)[*n].shard = maildir_shard(key, strlen(key));
	(*v)[*n].key = key;
	(*v)[*n].mtime = mtime;
	(*n)++;
}

int mg_write_mtimes(struct mctx *m, char **ckeys, size_t nckeys)
{
	struct shard_key *gone = NULL, *set = NULL;
	size_t ng = 0, ag = 0, ns = 0, as = 0, gi = 0, si = 0;
	int ret = 0;

	for (size_t i = 0; i < nckeys; i++)
		sk_add(&gone, &ng, &ag, ckeys[i], 0);
	for (size_t i = 0; i < m->nids; i++) {
		struct ident *id = &m->ids[i];
		for (int k = 0; k < 3; k++)
			for (size_t j = 0; j < id->n[k]; j++)
				sk_add(&gone, &ng, &ag, id->v[k][j].mn.key, 0);
		for (size_t j = 0; j < id->nres; j++)
			sk_add(&set, &ns, &as, id->res[j].key, id->mtime);
	}
	if (ng)
		qsort(gone, ng, sizeof *gone, shard_key_cmp);
	if (ns)
		qsort(set, ns, sizeof *set, shard_key_cmp);
	for (unsigned x = 0; x < 256 && ret == 0; x++) {
		const struct mtimes *ours;
		struct mtimes out = MTIMES_INIT;
		struct strbuf buf = STRBUF_INIT, path = STRBUF_INIT;
		size_t g0 = gi, s0 = si;
		struct oid id;

		while (gi < ng && gone[gi].shard == x)
			gi++;
		while (si < ns && set[si].shard == x)
			si++;
		if (g0 == gi && s0 == si && !m->ms[x].touched)
			continue;
		if ((ret = mg_mshard_get(&ours, m, x, O)) < 0)
			break;
		for (size_t k = 0; k < ours->n; k++)
			mtimes_set(&out, ours->v[k].key, ours->v[k].mtime);
		for (size_t k = g0; k < gi; k++)
			mtimes_remove(&out, gone[k].key);
		for (size_t k = s0; k < si; k++)
			mtimes_set(&out, set[k].key, set[k].mtime);
		mtimes_format(&buf, &out);
		mtimes_shard_path(&path, x);
		if (!buf.len) {
			if (m->ms[x].present[O])
				update_list_add(&m->ups, path.buf, NULL);
		} else if (git_odb_hash(GIT_OID(&id), buf.buf, buf.len, GIT_OBJECT_BLOB) < 0) {
			ret = log_error("hash: %s", repo_git_error());
		} else if (!m->ms[x].present[O] ||
			   !oid_equal(&id, &m->ms[x].id[O])) {
			if ((ret = repo_blob_from_buffer(&id, m->r, buf.buf,
							 buf.len)) == 0)
				update_list_add(&m->ups, path.buf, &id);
		}
		strbuf_release(&buf);
		strbuf_release(&path);
		mtimes_release(&out);
	}
	free(gone);
	free(set);
	return ret;
}

/* --- step 3: paths that are not messages ------------------------------- */

/* The subscriptions of base, ours, theirs merged as sets of lines. */
static int merge_lines(struct oid *out, bool *present, struct mctx *m,
		       const struct oid *const v[3])
{
	char **lines[3] = { NULL, NULL, NULL };
	size_t n[3] = { 0, 0, 0 }, alloc[3] = { 0, 0, 0 }, i[3] = { 0, 0, 0 };
	struct strbuf buf = STRBUF_INIT;
	int ret = 0;

	for (int k = 0; k < 3 && ret == 0; k++) {
		git_blob *blob;
		const char *p, *end;
		if (!v[k])
			continue;
		if (git_blob_lookup(&blob, m->r->git, GIT_OID(v[k])) < 0) {
			ret = log_error("read subscriptions: %s", repo_git_error());
			break;
		}
		p = git_blob_rawcontent(blob);
		end = p + git_blob_rawsize(blob);
		while (p < end) {
			const char *eol = memchr(p, '\n', (size_t)(end - p));
			size_t len = (size_t)((eol ? eol : end) - p);
			if (len && p[len - 1] == '\r')
				len--;
			if (len) {
				xgrow((void **)&lines[k], &alloc[k], n[k] + 1,
				      sizeof *lines[k]);
				lines[k][n[k]++] = xstrndup(p, len);
			}
			p = eol ? eol + 1 : end;
		}
		git_blob_free(blob);
		if (n[k])
			qsort(lines[k], n[k], sizeof *lines[k], strvec_cmp);
	}
	/* merge-join the three sorted lists; a line is three-way merged */
	while (ret == 0) {
		const char *min = NULL;
		bool in[3];
		for (int k = 0; k < 3; k++)
			if (i[k] < n[k] && (!min || strcmp(lines[k][i[k]], min) < 0))
				min = lines[k][i[k]];
		if (!min)
			break;
		for (int k = 0; k < 3; k++) {
			in[k] = i[k] < n[k] && !strcmp(lines[k][i[k]], min);
			while (i[k] < n[k] && !strcmp(lines[k][i[k]], min))
				i[k]++;
		}
		if (in[O] != in[B] ? in[O] : in[T])
			strbuf_addf(&buf, "%s\n", min);
	}
	/* no line left: the file stays only if neither side removed it */
	*present = buf.len || (v[O] && v[T]);
	if (ret == 0 && *present)
		ret = repo_blob_from_buffer(out, m->r, buf.len ? buf.buf : "",
					    buf.len);
	for (int k = 0; k < 3; k++) {
		for (size_t j = 0; j < n[k]; j++)
			free(lines[k][j]);
		free(lines[k]);
	}
	strbuf_release(&buf);
	return ret;
}

void mg_note(struct mctx *m, enum merge_note_kind kind, const char *from,
	     const char *to)
{
	struct merge_note n = { kind, from, to };

	if (m->opts && m->opts->notify)
		m->opts->notify(m->opts->data, &n);
}

static bool oid_eq(const struct oid *x, const struct oid *y)
{
	return x && y ? oid_equal(x, y) : x == y;
}

int mg_resolve_paths(struct mctx *m, size_t s, size_t e)
{
	int ret = 0;

	for (size_t i = s; i < e && ret == 0;) {
		const struct oid *v[3] = { NULL, NULL, NULL }, *res;
		const struct leaf *l = &m->lv[i];
		bool seen[2] = { false, false };
		struct oid merged;
		size_t j;

		for (j = i; j < e && !strcmp(m->lv[j].path, l->path); j++) {
			const struct leaf *x = &m->lv[j];
			if (x->diff == DIFF_COMMON || !x->added)
				v[B] = &x->id;
			else
				v[1 + x->diff] = &x->id;
			if (x->diff != DIFF_COMMON)
				seen[x->diff] = true;
		}
		/* a side whose diff does not name the path has the base's */
		for (int d = 0; d < 2; d++)
			if (!seen[d])
				v[1 + d] = v[B];
		i = j;
		if (oid_eq(v[O], v[B]))
			res = v[T];
		else if (oid_eq(v[T], v[B]) || oid_eq(v[O], v[T]))
			res = v[O];
		else if (!v[O] || !v[T])
			res = v[O] ? v[O] : v[T];
		else if (m->imap && !strcmp(l->path, IMAPREC_SLOTS)) {
			/* format 2's slot table: the union of the lines */
			if ((ret = mg_imap_slots_union(&merged, m, v[O], v[T])) < 0)
				break;
			res = &merged;
		} else if (!strcmp(l->path, "subscriptions")) {
			bool present;
			if ((ret = merge_lines(&merged, &present, m, v)) < 0)
				break;
			res = present ? &merged : NULL;
		} else {
			res = oid_cmp(v[O], v[T]) <= 0 ? v[O] : v[T];
		}
		if (!oid_eq(res, v[O])) {
			update_list_add(&m->ups, l->path, res);
			mg_note(m, MERGE_NOTE_OTHER, v[O] ? l->path : NULL,
				res ? l->path : NULL);
		}
	}
	return ret;
}
