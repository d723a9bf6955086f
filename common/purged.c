/*
 * purged: the set of purged blob ids, its records' bytes (see purged.h);
 * purged_tree.c reads and writes them in trees.  This file needs no
 * repository, so the fuzz targets link it alone.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "purged.h"
#include "xalloc.h"

void purged_release(struct purged *p)
{
	free(p->v);
	p->v = NULL;
	p->n = p->alloc = 0;
}

/* The index of the first id >= id. */
static size_t lower(const struct purged *p, const struct oid *id)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (oid_cmp(&p->v[mid], id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool purged_has(const struct purged *p, const struct oid *id)
{
	size_t i = lower(p, id);

	return i < p->n && oid_equal(&p->v[i], id);
}

void purged_add(struct purged *p, const struct oid *id)
{
	size_t i;

	/* records are read in order: the common case appends */
	if (p->n && oid_cmp(&p->v[p->n - 1], id) < 0)
		i = p->n;
	else if ((i = lower(p, id)) < p->n && oid_equal(&p->v[i], id))
		return;
	xgrow((void **)&p->v, &p->alloc, p->n + 1, sizeof *p->v);
	memmove(&p->v[i + 1], &p->v[i], (p->n - i) * sizeof *p->v);
	oid_cpy(&p->v[i], id);
	p->n++;
}

void purged_union(struct purged *out, const struct purged *add)
{
	struct oid *v;
	size_t i = 0, j = 0, n = 0, cap = out->n + add->n;

	if (!add->n)
		return;
	v = xcalloc(cap, sizeof *v);
	while (i < out->n || j < add->n) {
		int c = i == out->n ? 1 : j == add->n ? -1 :
			oid_cmp(&out->v[i], &add->v[j]);
		if (c <= 0)
			oid_cpy(&v[n++], &out->v[i++]);
		else
			oid_cpy(&v[n++], &add->v[j++]);
		if (c == 0)
			j++;
	}
	free(out->v);
	out->v = v;
	out->n = n;
	out->alloc = cap;
}

bool purged_equal(const struct purged *a, const struct purged *b)
{
	return a->n == b->n &&
	       (!a->n || !memcmp(a->v, b->v, a->n * sizeof *a->v));
}

int purged_parse(struct purged *out, const char *buf, size_t len,
		 unsigned shard, struct strbuf *err)
{
	static const char hex[] = "0123456789abcdef";
	struct oid prev, id;
	unsigned line = 0;

	if (!len) {
		strbuf_addstr(err, "empty record");
		return E_INVALID;
	}
	for (size_t off = 0; off < len; off += PURGED_LINE) {
		char h[OID_HEXSZ + 1];

		line++;
		if (len - off < PURGED_LINE || buf[off + OID_HEXSZ] != '\n') {
			strbuf_addf(err, "line %u: not a blob id and a newline",
				    line);
			return E_INVALID;
		}
		memcpy(h, buf + off, OID_HEXSZ);
		h[OID_HEXSZ] = '\0';
		if (strspn(h, hex) != OID_HEXSZ || oid_fromstr(&id, h) < 0) {
			strbuf_addf(err, "line %u: not a lowercase blob id",
				    line);
			return E_INVALID;
		}
		if (id.id[0] != shard) {
			strbuf_addf(err, "line %u: id %.12s in the wrong shard",
				    line, h);
			return E_INVALID;
		}
		if (line > 1 && oid_cmp(&prev, &id) >= 0) {
			strbuf_addf(err, "line %u: ids not sorted and unique",
				    line);
			return E_INVALID;
		}
		oid_cpy(&prev, &id);
		if (out)
			purged_add(out, &id);
	}
	return 0;
}

void purged_format_shard(struct strbuf *out, const struct purged *p,
			 unsigned x)
{
	struct oid first;
	char h[OID_HEXSZ + 1];

	memset(&first, 0, sizeof first);
	first.id[0] = (unsigned char)x;
	for (size_t i = lower(p, &first); i < p->n && p->v[i].id[0] == x; i++) {
		oid_tostr(h, sizeof h, &p->v[i]);
		strbuf_addstr(out, h);
		strbuf_addch(out, '\n');
	}
}

