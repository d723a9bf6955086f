/*
 * imaprec: format 2's IMAP identity records (see imaprec.h).
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "vec.h"
#include "xalloc.h"

__attribute__((format(printf, 2, 3)))
static int bad(struct strbuf *err, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		strbuf_vaddf(err, fmt, ap);
		va_end(ap);
	}
	return E_INVALID;
}

/* "[1-9][0-9]{0,9}" with a value up to IMAP_UID_MAX */
static bool number_ok(const char *p, size_t len, uint32_t *out)
{
	unsigned long long v = 0;

	if (!len || len > 10 || *p == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v > IMAP_UID_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* --- the folder record ------------------------------------------------ */

/* "<word> <number>\n" at *p; advances *p */
static bool field(const char **p, const char *end, const char *word,
		  uint32_t *out)
{
	size_t wl = strlen(word);
	const char *eol;

	if ((size_t)(end - *p) < wl + 1 || memcmp(*p, word, wl) ||
	    (*p)[wl] != ' ')
		return false;
	*p += wl + 1;
	eol = memchr(*p, '\n', (size_t)(end - *p));
	if (!eol || !number_ok(*p, (size_t)(eol - *p), out))
		return false;
	*p = eol + 1;
	return true;
}

int imap_folder_parse(struct imap_folder *out, const char *buf, size_t len,
		      struct strbuf *err)
{
	const char *p = buf, *end = buf + len;

	if (!field(&p, end, "uidvalidity", &out->uidvalidity))
		return bad(err, "no 'uidvalidity <n>' line first");
	if (!field(&p, end, "uidnext", &out->uidnext))
		return bad(err, "no 'uidnext <n>' line second");
	if (p != end)
		return bad(err, "more than two lines");
	return 0;
}

void imap_folder_format(struct strbuf *out, const struct imap_folder *f)
{
	strbuf_addf(out, "uidvalidity %u\nuidnext %u\n",
		    (unsigned)f->uidvalidity, (unsigned)f->uidnext);
}

/* --- keywords ---------------------------------------------------------- */

bool imap_keyword_valid(const char *s, size_t len)
{
	if (!len || len > IMAP_KEYWORD_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || strchr("\\()%*\"]{", c))
			return false;
	}
	return true;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int imap_keyword_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int x = lower((unsigned char)*a), y = lower((unsigned char)*b);
		if (x != y || !x)
			return x - y;
	}
}

/* --- message records --------------------------------------------------- */

static void rec_release(struct imap_rec *rec)
{
	free(rec->key);
	for (size_t i = 0; i < rec->nkw; i++)
		free(rec->kw[i]);
	free(rec->kw);
}

void imap_recs_release(struct imap_recs *r)
{
	for (size_t i = 0; i < r->n; i++)
		rec_release(&r->v[i]);
	free(r->v);
	r->v = NULL;
	r->n = r->alloc = 0;
}

/* a message key: maildir_name.h's rule, any byte but control ones */
static bool key_ok(const char *k, size_t len)
{
	if (!len || len > MAILDIR_NAME_MAX || *k == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)k[i];
		if (c < ' ' || c == 0x7f || c == '/' || c == ',' || c == ':')
			return false;
	}
	return true;
}

/* The keywords "kw (SP kw)*" of p..end into rec; false if malformed. */
static bool parse_keywords(struct imap_rec *rec, const char *p,
			   const char *end, struct strbuf *why)
{
	while (p <= end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t len = (size_t)((sp ? sp : end) - p);

		if (!imap_keyword_valid(p, len)) {
			strbuf_addstr(why, "not a keyword");
			return false;
		}
		rec->kw = xrealloc(rec->kw, (rec->nkw + 1) * sizeof *rec->kw);
		rec->kw[rec->nkw] = xstrndup(p, len);
		if (rec->nkw && imap_keyword_cmp(rec->kw[rec->nkw - 1],
						 rec->kw[rec->nkw]) >= 0) {
			rec->nkw++;
			strbuf_addstr(why, "keywords not sorted or twice");
			return false;
		}
		rec->nkw++;
		if (!sp)
			break;
		p = sp + 1;
	}
	return true;
}

/* One line p..eol (eol at its LF) into rec; false with why set. */
static bool parse_line(struct imap_rec *rec, const char *p, const char *eol,
		       const char *xx, struct strbuf *why)
{
	const char *t1 = memchr(p, '\t', (size_t)(eol - p)), *t2;
	char hex[3];

	if (!t1 || !key_ok(p, (size_t)(t1 - p))) {
		strbuf_addstr(why, "not a message key");
		return false;
	}
	rec->key = xstrndup(p, (size_t)(t1 - p));
	maildir_shard_hex(hex, p, (size_t)(t1 - p));
	if (xx && strcmp(hex, xx)) {
		strbuf_addf(why, "key of shard %s", hex);
		return false;
	}
	t2 = memchr(t1 + 1, '\t', (size_t)(eol - t1 - 1));
	if ((t2 ? t2 : eol) - t1 - 1 == 1 && t1[1] == '-')
		rec->uid = 0;		/* unnumbered */
	else if (!number_ok(t1 + 1, (size_t)((t2 ? t2 : eol) - t1 - 1),
			    &rec->uid)) {
		strbuf_addstr(why, "not a UID");
		return false;
	}
	return !t2 || parse_keywords(rec, t2 + 1, eol, why);
}

int imap_recs_parse(struct imap_recs *out, const char *buf, size_t len,
		    const char *xx, struct strbuf *err)
{
	const char *p = buf, *end = buf + len;
	struct strbuf why = STRBUF_INIT;
	unsigned line = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		struct imap_rec *rec;

		line++;
		if (!eol) {
			strbuf_addstr(&why, "no newline");
			goto fail;
		}
		xgrow((void **)&out->v, &out->alloc, out->n + 1, sizeof *out->v);
		rec = &out->v[out->n++];
		memset(rec, 0, sizeof *rec);
		if (!parse_line(rec, p, eol, xx, &why))
			goto fail;
		if (out->n > 1 && strcmp(out->v[out->n - 2].key, rec->key) >= 0) {
			strbuf_addstr(&why, "keys not sorted or twice");
			goto fail;
		}
		p = eol + 1;
	}
	strbuf_release(&why);
	return 0;
fail:
	bad(err, "line %u: %s", line, why.buf);
	strbuf_release(&why);
	imap_recs_release(out);
	return E_INVALID;
}

void imap_recs_format(struct strbuf *out, const struct imap_recs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct imap_rec *rec = &r->v[i];
		char num[16], *e = num + sizeof num, *d = e;
		uint32_t u = rec->uid;

		/* by hand: a shard's thousand lines cost no printf each */
		do
			*--d = (char)('0' + u % 10);
		while ((u /= 10));
		strbuf_addstr(out, rec->key);
		strbuf_addch(out, '\t');
		if (rec->uid)
			strbuf_add(out, d, (size_t)(e - d));
		else
			strbuf_addch(out, '-');
		for (size_t k = 0; k < rec->nkw; k++) {
			strbuf_addch(out, k ? ' ' : '\t');
			strbuf_addstr(out, rec->kw[k]);
		}
		strbuf_addch(out, '\n');
	}
}

/* Index of key, or of where it would go (*found false). */
static size_t find(const struct imap_recs *r, const char *key, bool *found)
{
	return VEC_FIND_KEY(r, key, found);
}

const struct imap_rec *imap_recs_find(const struct imap_recs *r,
				      const char *key)
{
	bool found;
	size_t i = find(r, key, &found);

	return found ? &r->v[i] : NULL;
}

/* by name ignoring case, then bytewise: the smallest spelling first */
static int kw_sort_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	int c = imap_keyword_cmp(x, y);

	return c ? c : strcmp(x, y);
}

void imap_recs_set(struct imap_recs *r, const char *key, uint32_t uid,
		   const char *const *kw, size_t nkw)
{
	struct imap_rec rec = { xstrdup(key), uid, NULL, 0 };
	bool found;
	size_t i, w = 0;

	if (nkw) {
		rec.kw = xmalloc(nkw * sizeof *rec.kw);
		for (i = 0; i < nkw; i++)
			rec.kw[i] = (char *)kw[i];
		qsort(rec.kw, nkw, sizeof *rec.kw, kw_sort_cmp);
		for (i = 0; i < nkw; i++)
			if (!w || imap_keyword_cmp(rec.kw[w - 1], rec.kw[i]))
				rec.kw[w++] = rec.kw[i];
		for (i = 0; i < w; i++)
			rec.kw[i] = xstrdup(rec.kw[i]);
		rec.nkw = w;
	}
	i = find(r, key, &found);
	if (found) {
		rec_release(&r->v[i]);
		r->v[i] = rec;
		return;
	}
	xgrow((void **)&r->v, &r->alloc, r->n + 1, sizeof *r->v);
	memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof *r->v);
	r->v[i] = rec;
	r->n++;
}

void imap_recs_remove(struct imap_recs *r, const char *key)
{
	bool found;
	size_t i = find(r, key, &found);

	if (!found)
		return;
	rec_release(&r->v[i]);
	memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof *r->v);
	r->n--;
}

void imap_recs_shard_path(struct strbuf *out, unsigned shard)
{
	strbuf_addf(out, IMAPREC_DIR "/%02x", shard & 0xff);
}

void imap_recs_path(struct strbuf *out, const char *key, size_t keylen)
{
	imap_recs_shard_path(out, maildir_shard(key, keylen));
}

/* --- uidslots ---------------------------------------------------------- */

static int slot_cmp(const struct imap_slot *a, const struct imap_slot *b)
{
	if (a->slot != b->slot)
		return a->slot < b->slot ? -1 : 1;
	return strcmp(a->node, b->node);
}

void imap_slots_release(struct imap_slots *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].node);
	free(s->v);
	s->v = NULL;
	s->n = s->alloc = 0;
}

int imap_slots_parse(struct imap_slots *out, const char *buf, size_t len,
		     struct strbuf *err)
{
	const char *p = buf, *end = buf + len;
	unsigned line = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		struct imap_slot *sl;

		line++;
		if (!eol || eol - p < 3 || *p < '0' ||
		    *p >= '0' + IMAP_SLOT_MERGE || p[1] != ' ')
			goto fail;
		xgrow((void **)&out->v, &out->alloc, out->n + 1, sizeof *out->v);
		sl = &out->v[out->n++];
		sl->slot = (unsigned)(*p - '0');
		sl->node = xstrndup(p + 2, (size_t)(eol - p - 2));
		if (strlen(sl->node) != (size_t)(eol - p - 2) ||
		    !config_name_valid(sl->node))
			goto fail;
		if (out->n > 1 && slot_cmp(&out->v[out->n - 2], sl) >= 0) {
			imap_slots_release(out);
			return bad(err, "line %u: lines not sorted or twice",
				   line);
		}
		p = eol + 1;
	}
	return 0;
fail:
	imap_slots_release(out);
	return bad(err, "line %u: not '<slot 0-6> <node>'", line);
}

void imap_slots_format(struct strbuf *out, const struct imap_slots *s)
{
	for (size_t i = 0; i < s->n; i++)
		strbuf_addf(out, "%u %s\n", s->v[i].slot, s->v[i].node);
}

void imap_slots_add(struct imap_slots *s, unsigned slot, const char *node)
{
	struct imap_slot sl = { slot, (char *)node };
	size_t i = 0;
	int c = 1;

	while (i < s->n && (c = slot_cmp(&s->v[i], &sl)) < 0)
		i++;
	if (i < s->n && !c)
		return;
	xgrow((void **)&s->v, &s->alloc, s->n + 1, sizeof *s->v);
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
	s->v[i].slot = slot;
	s->v[i].node = xstrdup(node);
	s->n++;
}

int imap_slots_claim(const struct imap_slots *s, const char *node)
{
	bool taken[IMAP_SLOT_MERGE] = { false };

	for (size_t i = 0; i < s->n; i++) {
		if (!strcmp(s->v[i].node, node))
			return (int)s->v[i].slot;	/* sorted: the lowest */
		taken[s->v[i].slot] = true;
	}
	for (unsigned k = 0; k < IMAP_SLOT_MERGE; k++)
		if (!taken[k])
			return (int)k;
	return -1;
}

/* --- UID blocks -------------------------------------------------------- */

unsigned imap_uid_slot(uint32_t uid)
{
	return (unsigned)(((uid - 1) / IMAP_BLOCK) % IMAP_SLOTS);
}

uint32_t imap_uid_alloc(uint32_t from, unsigned slot, uint32_t n)
{
	unsigned long long u = from ? from : 1;

	if (!n || n > IMAP_BLOCK || slot >= IMAP_SLOTS)
		return 0;
	for (;;) {
		unsigned long long c = (u - 1) / IMAP_BLOCK;
		unsigned long long last = (c + 1) * IMAP_BLOCK;	/* of block c */

		if (c % IMAP_SLOTS == slot && u + n - 1 <= last)
			break;
		/* the first UID of slot's next block after block c */
		c += 1;
		c += (slot + IMAP_SLOTS - c % IMAP_SLOTS) % IMAP_SLOTS;
		u = c * IMAP_BLOCK + 1;
	}
	return u + n - 1 <= IMAP_UID_MAX ? (uint32_t)u : 0;
}
