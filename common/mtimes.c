/*
 * mtimes: per-shard mtime records (see mtimes.h).
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "maildir_name.h"
#include "mtimes.h"
#include "repo_p.h"
#include "vec.h"
#include "xalloc.h"

static int rec_cmp(const void *a, const void *b)
{
	const struct mtime_rec *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

void mtimes_release(struct mtimes *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].key);
	free(m->v);
	m->v = NULL;
	m->n = m->alloc = 0;
}

static bool key_ok(const char *k, size_t len)
{
	if (!len || len > MAILDIR_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)k[i];
		if (c <= ' ' || c == '/' || c == 0x7f)
			return false;
	}
	return true;
}

/* "-?[0-9]{1,18}" exactly; the value in *out */
static bool seconds_ok(const char *p, size_t len, long long *out)
{
	bool neg = false;
	long long v = 0;

	if (len && *p == '-') {
		neg = true;
		p++;
		len--;
	}
	if (!len || len > 18 || (len > 1 && *p == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	if (neg && v == 0)
		return false;
	*out = neg ? -v : v;
	return true;
}

int mtimes_parse(struct mtimes *out, const char *buf, size_t len,
		 bool *canonical)
{
	const char *p = buf, *end = buf + len;
	bool sorted = true;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *sp;
		long long t;

		if (!eol)
			goto bad;
		sp = memchr(p, ' ', (size_t)(eol - p));
		if (!sp || !key_ok(p, (size_t)(sp - p)) ||
		    !seconds_ok(sp + 1, (size_t)(eol - sp - 1), &t))
			goto bad;
		xgrow((void **)&out->v, &out->alloc, out->n + 1, sizeof *out->v);
		out->v[out->n].key = xstrndup(p, (size_t)(sp - p));
		out->v[out->n].mtime = t;
		if (out->n && strcmp(out->v[out->n - 1].key, out->v[out->n].key) >= 0)
			sorted = false;
		out->n++;
		p = eol + 1;
	}
	if (!sorted) {
		size_t w = 0;
		qsort(out->v, out->n, sizeof *out->v, rec_cmp);
		/* of two records for one key the smaller time stays */
		for (size_t i = 0; i < out->n; i++) {
			if (w && !strcmp(out->v[w - 1].key, out->v[i].key)) {
				free(out->v[i].key);
				continue;
			}
			out->v[w++] = out->v[i];
		}
		out->n = w;
	}
	if (canonical) {
		*canonical = sorted;
		/* a record that is not needed is not canonical either */
		for (size_t i = 0; *canonical && i < out->n; i++)
			if (!mtimes_needed(out->v[i].key, out->v[i].mtime))
				*canonical = false;
	}
	return 0;
bad:
	mtimes_release(out);
	if (canonical)
		*canonical = false;
	return E_INVALID;
}

void mtimes_format(struct strbuf *out, const struct mtimes *m)
{
	for (size_t i = 0; i < m->n; i++)
		strbuf_addf(out, "%s %lld\n", m->v[i].key, m->v[i].mtime);
}

/* Index of key, or of where it would go (*found false). */
static size_t find(const struct mtimes *m, const char *key, bool *found)
{
	return VEC_FIND_KEY(m, key, found);
}

const struct mtime_rec *mtimes_find(const struct mtimes *m, const char *key)
{
	bool found;
	size_t i = find(m, key, &found);

	return found ? &m->v[i] : NULL;
}

long long mtimes_get(const struct mtimes *m, const char *key)
{
	const struct mtime_rec *rec = m ? mtimes_find(m, key) : NULL;
	long long t;

	if (rec)
		return rec->mtime;
	t = maildir_key_time(key);
	return t < 0 ? MTIME_NONE : t;
}

bool mtimes_needed(const char *key, long long mtime)
{
	/* a key with a space cannot be written as a line (see mtimes.h) */
	return mtime != MTIME_NONE && mtime != maildir_key_time(key) &&
	       !strchr(key, ' ');
}

void mtimes_remove(struct mtimes *m, const char *key)
{
	bool found;
	size_t i = find(m, key, &found);

	if (!found)
		return;
	free(m->v[i].key);
	memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof *m->v);
	m->n--;
}

void mtimes_set(struct mtimes *m, const char *key, long long mtime)
{
	bool found;
	size_t i;

	if (!mtimes_needed(key, mtime)) {
		mtimes_remove(m, key);
		return;
	}
	i = find(m, key, &found);
	if (found) {
		m->v[i].mtime = mtime;
		return;
	}
	xgrow((void **)&m->v, &m->alloc, m->n + 1, sizeof *m->v);
	memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof *m->v);
	m->v[i].key = xstrdup(key);
	m->v[i].mtime = mtime;
	m->n++;
}

void mtimes_shard_path(struct strbuf *out, unsigned shard)
{
	strbuf_addf(out, MTIMES_DIR "/%02x", shard & 0xff);
}

void mtimes_path(struct strbuf *out, const char *key, size_t keylen)
{
	mtimes_shard_path(out, maildir_shard(key, keylen));
}

int mtimes_read_shard(struct mtimes *out, struct repo *r,
		      const struct oid *tree,
		      unsigned shard)
{
	struct strbuf path = STRBUF_INIT;
	git_blob *blob = NULL;
	struct oid id;
	int ret;

	mtimes_shard_path(&path, shard);
	ret = repo_tree_lookup(&id, r, tree, path.buf);
	if (ret == E_NOTFOUND) {
		ret = 0;
		goto done;
	}
	if (ret < 0)
		goto done;
	if (git_blob_lookup(&blob, r->git, GIT_OID(&id)) < 0) {
		ret = log_error("read '%s': %s", path.buf, repo_git_error());
		goto done;
	}
	ret = mtimes_parse(out, git_blob_rawcontent(blob),
			   (size_t)git_blob_rawsize(blob), NULL);
	if (ret < 0) {
		log_error("'%s' is not a list of mtimes", path.buf);
		ret = E_INVALID;
	}
done:
	git_blob_free(blob);
	strbuf_release(&path);
	return ret;
}

/* --- update lists ------------------------------------------------------ */

void update_list_add(struct update_list *l, const char *path,
		     const struct oid *blob)
{
	struct oid *id = NULL;

	if (blob) {
		id = xmalloc(sizeof *id);
		oid_cpy(id, blob);
	}
	xgrow((void **)&l->v, &l->alloc, l->n + 1, sizeof *l->v);
	l->v[l->n] = (struct repo_update){ xstrdup(path), id, false };
	l->n++;
}

void update_list_release(struct update_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free((char *)l->v[i].path);
		free((struct oid *)l->v[i].blob);
	}
	free(l->v);
	l->v = NULL;
	l->n = l->alloc = 0;
}

static int change_cmp(const void *a, const void *b)
{
	const struct mtime_change *x = a, *y = b;
	unsigned sx = maildir_shard(x->key, strlen(x->key));
	unsigned sy = maildir_shard(y->key, strlen(y->key));

	return sx < sy ? -1 : sx > sy;
}

int mtimes_update(struct update_list *ups, struct repo *r,
		  const struct oid *tree,
		  const struct mtime_change *ch, size_t n)
{
	struct mtime_change *v;
	int ret = 0;

	if (!n)
		return 0;
	v = xmalloc(n * sizeof *v);
	memcpy(v, ch, n * sizeof *v);
	/* group by shard: one read and at most one write per shard */
	qsort(v, n, sizeof *v, change_cmp);
	for (size_t i = 0; i < n && ret == 0;) {
		unsigned shard = maildir_shard(v[i].key, strlen(v[i].key));
		struct mtimes m = MTIMES_INIT;
		struct strbuf old = STRBUF_INIT, new = STRBUF_INIT;
		struct strbuf path = STRBUF_INIT;
		size_t j;

		ret = mtimes_read_shard(&m, r, tree, shard);
		if (ret == 0) {
			mtimes_format(&old, &m);
			for (j = i; j < n && maildir_shard(v[j].key,
					strlen(v[j].key)) == shard; j++)
				mtimes_set(&m, v[j].key, v[j].mtime);
			mtimes_format(&new, &m);
			mtimes_shard_path(&path, shard);
			if (old.len != new.len ||
			    (new.len && memcmp(old.buf, new.buf, new.len))) {
				struct oid id;
				if (!new.len)
					update_list_add(ups, path.buf, NULL);
				else if ((ret = repo_blob_from_buffer(&id, r,
						new.buf, new.len)) == 0)
					update_list_add(ups, path.buf, &id);
			}
			i = j;
		}
		strbuf_release(&path);
		strbuf_release(&old);
		strbuf_release(&new);
		mtimes_release(&m);
	}
	free(v);
	return ret;
}
