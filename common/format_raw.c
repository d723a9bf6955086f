/*
 * format_raw: what the format check reads trees with (see format.c):
 * tree objects parsed from their raw bytes, so what is checked is what a
 * later reader sees; a set of byte strings with a seeded hash, so a peer
 * cannot pick collisions; and the lines of an mtimes record.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "format_p.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

/* --- a set of byte strings, each with a value ---------------------------- */

static uint64_t hash_seed;

/* FNV-1a, 64 bits, from a random basis so a peer cannot pick collisions */
static uint64_t strset_hash(const char *p, size_t len)
{
	uint64_t h;

	if (!hash_seed) {
		if (getrandom(&hash_seed, sizeof hash_seed, GRND_NONBLOCK) !=
		    (ssize_t)sizeof hash_seed)
			hash_seed = (uint64_t)(uintptr_t)&hash_seed;
		hash_seed |= 1;
	}
	h = 14695981039346656037ull ^ hash_seed;
	while (len--) {
		h ^= (unsigned char)*p++;
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static struct slot *strset_slot(const struct strset *ss, const char *key,
				size_t len, uint64_t h)
{
	size_t i = (size_t)h & (ss->cap - 1);

	for (;; i = (i + 1) & (ss->cap - 1)) {
		struct slot *s = &ss->s[i];
		if (!s->key || (s->hash == h && s->len == len &&
				!memcmp(s->key, key, len)))
			return s;
	}
}

const char *fmt_strset_get(const struct strset *ss, const char *key,
			   size_t len)
{
	struct slot *s;

	if (!ss->cap)
		return NULL;
	s = strset_slot(ss, key, len, strset_hash(key, len));
	return s->key ? s->val : NULL;
}

const char *fmt_strset_add(struct strset *ss, const char *key, size_t len,
			   const char *val)
{
	uint64_t h = strset_hash(key, len);
	struct slot *s;

	if (2 * (ss->n + 1) > ss->cap) {
		struct strset bigger = { NULL, 0, ss->cap ? 2 * ss->cap : 64 };
		bigger.s = xcalloc(bigger.cap, sizeof *bigger.s);
		for (size_t i = 0; i < ss->cap; i++)
			if (ss->s[i].key)
				*strset_slot(&bigger, ss->s[i].key, ss->s[i].len,
					     ss->s[i].hash) = ss->s[i];
		free(ss->s);
		bigger.n = ss->n;
		*ss = bigger;
	}
	s = strset_slot(ss, key, len, h);
	if (s->key)
		return s->val;
	s->key = xstrndup(key, len);
	s->len = len;
	s->val = xstrdup(val);
	s->hash = h;
	ss->n++;
	return NULL;
}

void fmt_strset_release(struct strset *ss)
{
	for (size_t i = 0; i < ss->cap; i++) {
		free(ss->s[i].key);
		free(ss->s[i].val);
	}
	free(ss->s);
	memset(ss, 0, sizeof *ss);
}

/* --- raw tree objects ------------------------------------------------------ */

void fmt_rtree_release(struct rtree *t)
{
	git_odb_object_free(t->obj);
	free(t->e);
	memset(t, 0, sizeof *t);
}

bool fmt_mode_is(const struct rentry *e, const char *mode)
{
	return e->mlen == strlen(mode) && !memcmp(e->mode, mode, e->mlen);
}

bool fmt_name_is(const struct rentry *e, const char *name)
{
	return !strcmp(e->name, name);
}

/* Does the mode, read as git reads it (octal), say directory? */
static bool mode_dir(const char *m, size_t mlen)
{
	unsigned long v = 0;

	if (mlen == 0 || mlen > 7)
		return false;
	for (size_t i = 0; i < mlen; i++) {
		if (m[i] < '0' || m[i] > '7')
			return false;
		v = v * 8 + (unsigned long)(m[i] - '0');
	}
	return (v & 0170000) == 0040000;
}

const char fmt_too_many[] = "too many entries";

const char *fmt_rtree_parse(struct rtree *t, const char *p, size_t len,
			    size_t max)
{
	const char *end = p + len;

	while (p < end) {
		const char *sp, *nul;
		struct rentry *e;

		if (t->n == max)
			return fmt_too_many;
		if (!(sp = memchr(p, ' ', (size_t)(end - p))))
			return "corrupt tree object: no space after mode";
		if (!(nul = memchr(sp + 1, '\0', (size_t)(end - sp - 1))))
			return "corrupt tree object: name not terminated";
		if ((size_t)(end - nul - 1) < OID_RAWSZ)
			return "corrupt tree object: truncated object id";
		xgrow((void **)&t->e, &t->alloc, t->n + 1, sizeof *t->e);
		e = &t->e[t->n++];
		e->mode = p;
		e->mlen = (size_t)(sp - p);
		e->name = sp + 1;
		e->nlen = (size_t)(nul - sp - 1);
		e->dir = mode_dir(e->mode, e->mlen);
		memcpy(e->id.id, nul + 1, OID_RAWSZ);
		p = nul + 1 + OID_RAWSZ;
	}
	return NULL;
}

int fmt_entry_cmp(const struct rentry *a, const struct rentry *b)
{
	size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
	int c = memcmp(a->name, b->name, n);
	unsigned ca, cb;

	if (c)
		return c;
	ca = n < a->nlen ? (unsigned char)a->name[n] : a->dir ? '/' : 0;
	cb = n < b->nlen ? (unsigned char)b->name[n] : b->dir ? '/' : 0;
	return (int)ca - (int)cb;
}

const struct rentry *fmt_rtree_find(const struct rtree *t,
				    const struct rentry *like)
{
	size_t lo = 0, hi = t ? t->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = fmt_entry_cmp(&t->e[mid], like);
		if (c == 0)	/* same name, same directory bit */
			return &t->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct rentry *fmt_rtree_lookup(const struct rtree *t,
				      const char *name)
{
	for (size_t i = 0; t && i < t->n; i++)
		if (fmt_name_is(&t->e[i], name))
			return &t->e[i];
	return NULL;
}

/* --- mtimes records --------------------------------------------------------- */

int fmt_scan_records(const char *buf, size_t len, const char *xx,
		     struct strbuf *err, record_fn *fn, void *data)
{
	const char *p = buf, *end = buf + len, *prev = NULL;
	size_t prevlen = 0;
	unsigned line = 0;

	if (len == 0) {
		strbuf_addstr(err, "empty record (a shard without records has no blob)");
		return E_INVALID;
	}
	for (; p < end; p++) {
		const char *nl, *sp, *d;
		char key[NAME_MAX_BYTES + 1], shard[3];
		size_t klen, ndig;
		long long v = 0;
		bool neg;

		line++;
		if (!(nl = memchr(p, '\n', (size_t)(end - p)))) {
			fmt_errf(err, "line %u: no newline at the end", line);
			return E_INVALID;
		}
		if (!(sp = memchr(p, ' ', (size_t)(nl - p)))) {
			fmt_errf(err, "line %u: no space before the time", line);
			return E_INVALID;
		}
		klen = (size_t)(sp - p);
		if (klen == 0 || klen > NAME_MAX_BYTES || memchr(p, '\0', klen)) {
			fmt_errf(err, "line %u: invalid key", line);
			return E_INVALID;
		}
		memcpy(key, p, klen);
		key[klen] = '\0';
		if (!maildir_name_valid(key) || maildir_key_len(key) != klen) {
			fmt_errf(err, "line %u: invalid key", line);
			return E_INVALID;
		}
		maildir_shard_hex(shard, key, klen);
		if (memcmp(shard, xx, 2)) {
			fmt_errf(err, "line %u: key belongs in shard '%s'",
				    line, shard);
			return E_INVALID;
		}
		if (prev) {
			size_t n = prevlen < klen ? prevlen : klen;
			int c = memcmp(prev, p, n);
			if (c == 0 && prevlen == klen) {
				fmt_errf(err, "line %u: duplicate key", line);
				return E_INVALID;
			}
			if (c > 0 || (c == 0 && prevlen > klen)) {
				fmt_errf(err, "line %u: keys not sorted", line);
				return E_INVALID;
			}
		}
		/* "-?[0-9]{1,18}", no leading zero, no "-0" (mtimes.c) */
		d = sp + 1;
		neg = d < nl && *d == '-';
		d += neg;
		ndig = (size_t)(nl - d);
		if (ndig == 0 || ndig > 18 || (ndig > 1 && d[0] == '0') ||
		    (neg && ndig == 1 && d[0] == '0')) {
			fmt_errf(err, "line %u: time is not canonical decimal",
				    line);
			return E_INVALID;
		}
		for (size_t i = 0; i < ndig; i++) {
			if (d[i] < '0' || d[i] > '9') {
				fmt_errf(err, "line %u: time is not canonical decimal",
					    line);
				return E_INVALID;
			}
			v = v * 10 + (d[i] - '0');
		}
		if ((neg ? -v : v) == maildir_key_time(key)) {
			fmt_errf(err, "line %u: record not needed (the time is "
				    "the key's)", line);
			return E_INVALID;
		}
		if (fn)
			fn(p, klen, line, data);
		prev = p;
		prevlen = klen;
		p = nl;
	}
	return 0;
}

int format_mtimes_check(const char *buf, size_t len, const char *xx,
			struct strbuf *err)
{
	return fmt_scan_records(buf, len, xx, err, NULL, NULL);
}
