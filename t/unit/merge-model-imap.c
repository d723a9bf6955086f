/*
 * The model test of format 2's IMAP rules (common/merge_imap.c), part of
 * merge-model-t.
 *
 * Each case makes 2 to 4 replicas of one folder: a folder record and,
 * per message key, a UID and keyword names.  Random operations on random
 * replicas -- deliver (a UID from the replica's own blocks), expunge,
 * add or remove a keyword in a random case spelling, re-create the folder
 * with a new UIDVALIDITY -- alternate with syncs of random pairs, both
 * ways: the message set by three-way rules against the pair's last
 * common state (a common ancestor), the folder record and UIDs by
 * merge_imap_folder(), keywords by merge_imap_keywords().  Each merge is
 * done both ways round and must agree.  The merge numbers nothing: each
 * of the pair then numbers the messages the merge left unnumbered from
 * its own slot, above the result's uidnext ("number at apply",
 * doc/imap-progress.md), so the two replicas differ until a later merge
 * keeps one side's UID.  Checked after every merge: no UID twice, uidnext
 * above every UID, a kept UID is one the other side never showed, and
 * the recorder: every (UIDVALIDITY, UID) any replica ever showed names
 * one message.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "imaprec.h"
#include "log.h"
#include "merge-model.h"
#include "merge_p.h"
#include "strvec.h"
#include "xalloc.h"

#define IR 4			/* replicas at most */
#define IK 48			/* message keys at most */
#define IW 6			/* keyword names */

static const char *const kwnames[IW][2] = {
	{ "$Junk", "$junk" }, { "$Forwarded", "$FORWARDED" },
	{ "work", "Work" }, { "NonJunk", "nonjunk" }, { "a1", "A1" },
	{ "$Label1", "$label1" },
};

struct istate {
	struct imap_folder f;
	bool has[IK];
	uint32_t uid[IK];
	unsigned kw[IK];	/* bit w: name w */
	unsigned sp[IK];	/* bit w: the second spelling */
};

struct icase {
	uint64_t rng;
	int n;
	struct istate r[IR];
	struct istate base[IR][IR];	/* the pair's last common state */
	unsigned nkeys;
	uint32_t clock;
	/* the recorder: (uidvalidity, uid) -> key */
	struct seen { uint32_t v, uid; unsigned key; } *seen;
	size_t nseen, alseen;
	unsigned long long failed;
	unsigned long long numbered;	/* UIDs given at apply */
};

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t irnd(struct icase *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545f4914f6cdd1dULL;
}

static unsigned irn(struct icase *c, unsigned n)
{
	return n ? (unsigned)(irnd(c) % n) : 0;
}

__attribute__((format(printf, 2, 3)))
static void ifail(struct icase *c, const char *fmt, ...)
{
	va_list ap;

	if (c->failed++ < 3) {
		printf("# imap model: ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
}

static void record(struct icase *c, const struct istate *s)
{
	for (unsigned k = 0; k < c->nkeys; k++) {
		size_t i;
		if (!s->has[k])
			continue;
		for (i = 0; i < c->nseen; i++)
			if (c->seen[i].v == s->f.uidvalidity &&
			    c->seen[i].uid == s->uid[k])
				break;
		if (i == c->nseen) {
			xgrow((void **)&c->seen, &c->alseen, c->nseen + 1,
			      sizeof *c->seen);
			c->seen[c->nseen++] = (struct seen){ s->f.uidvalidity,
							     s->uid[k], k };
		} else if (c->seen[i].key != k) {
			ifail(c, "UID %u of UIDVALIDITY %u names keys %u and %u",
			      s->uid[k], s->f.uidvalidity, c->seen[i].key, k);
		}
	}
}

static void op_deliver(struct icase *c, int r)
{
	struct istate *s = &c->r[r];
	unsigned k = c->nkeys;
	uint32_t u;

	if (k >= IK)
		return;
	u = imap_uid_alloc(s->f.uidnext, (unsigned)r, 1);
	if (!u)
		return;
	c->nkeys++;
	s->has[k] = true;
	s->uid[k] = u;
	s->kw[k] = irn(c, 1u << IW);
	s->sp[k] = irn(c, 1u << IW);
	s->f.uidnext = u + 1;
}

static void op_keyword(struct icase *c, int r)
{
	struct istate *s = &c->r[r];
	unsigned k = irn(c, c->nkeys ? c->nkeys : 1), w = irn(c, IW);

	if (!s->has[k])
		return;
	s->kw[k] ^= 1u << w;
	if (irn(c, 2))
		s->sp[k] ^= 1u << w;
}

static void op_recreate(struct icase *c, int r)
{
	struct istate *s = &c->r[r];

	memset(s->has, 0, sizeof s->has);
	s->f.uidvalidity = ++c->clock;
	s->f.uidnext = 1;
}

/* The keywords of key k in s, as strings in v (at most IW). */
static size_t kwlist(const char **v, const struct istate *s, unsigned k)
{
	size_t n = 0;

	for (unsigned w = 0; s->has[k] && w < IW; w++)
		if (s->kw[k] & (1u << w))
			v[n++] = kwnames[w][(s->sp[k] >> w) & 1];
	return n;
}

/* Keywords of one key: the result into out's bits, or false. */
static bool merge_kw(struct istate *out, unsigned k, const struct istate *b,
		     const struct istate *o, const struct istate *t)
{
	const char *kv[3][IW];
	struct imap_kwside sd[3];
	const struct istate *st[3] = { b, o, t };
	struct strvec res = STRVEC_INIT;

	for (int s = B; s <= T; s++) {
		sd[s].n = kwlist(kv[s], st[s], k);
		sd[s].kw = kv[s];
		sd[s].has = st[s]->has[k];
	}
	merge_imap_keywords(&res, sd);
	out->kw[k] = out->sp[k] = 0;
	for (size_t i = 0; i < res.n; i++)
		for (unsigned w = 0; w < IW; w++)
			for (unsigned v = 0; v < 2; v++)
				if (!strcmp(res.v[i], kwnames[w][v])) {
					out->kw[k] |= 1u << w;
					out->sp[k] |= v << w;
				}
	strvec_clear(&res);
	return true;
}

/* out = merge(b, o, t); checks the rules of the result. */
static void merge3(struct icase *c, struct istate *out, const struct istate *b,
		   const struct istate *o, const struct istate *t)
{
	struct imap_fside fs[3] = { { false, { 0, 0 } }, { true, o->f },
				    { true, t->f } };
	struct imap_msg msgs[IK];
	char keys[IK][8];
	unsigned idx[IK];
	size_t n = 0;

	memset(out, 0, sizeof *out);
	for (unsigned k = 0; k < c->nkeys; k++) {
		/* a side that removed it decides; an add on one side stays */
		bool in = b->has[k] ? o->has[k] && t->has[k]
				    : o->has[k] || t->has[k];
		if (!in)
			continue;
		snprintf(keys[n], sizeof keys[n], "k%03u", k);
		msgs[n] = (struct imap_msg){ keys[n], { 0, o->has[k] ? o->uid[k] : 0,
				t->has[k] ? t->uid[k] : 0 }, 0 };
		idx[n++] = k;
		out->has[k] = true;
		merge_kw(out, k, b, o, t);
	}
	if (merge_imap_folder(&out->f, fs, msgs, n) < 0) {
		ifail(c, "merge_imap_folder failed");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned k = idx[i];
		uint32_t u = msgs[i].out;
		bool oo = o->f.uidvalidity >= t->f.uidvalidity,
		     tt = t->f.uidvalidity >= o->f.uidvalidity;

		out->uid[k] = u;
		if (!u)
			continue;	/* unnumbered */
		if (u >= out->f.uidnext)
			ifail(c, "UID %u not below uidnext %u", u, out->f.uidnext);
		for (size_t j = 0; j < i; j++)
			if (msgs[j].out == u)
				ifail(c, "UID %u given twice", u);
		/* a kept UID: both agree, or the other side never showed it */
		if (oo && tt && o->has[k] && t->has[k] && o->uid[k] == t->uid[k])
			continue;
		if (oo && o->has[k] && u == o->uid[k] && tt && u < t->f.uidnext)
			ifail(c, "ours' UID %u kept below theirs' uidnext", u);
		if (tt && t->has[k] && u == t->uid[k] && oo && u < o->f.uidnext)
			ifail(c, "theirs' UID %u kept below ours' uidnext", u);
	}
}

static bool state_eq(const struct istate *x, const struct istate *y,
		     unsigned nkeys)
{
	if (x->f.uidvalidity != y->f.uidvalidity || x->f.uidnext != y->f.uidnext)
		return false;
	for (unsigned k = 0; k < nkeys; k++)
		if (x->has[k] != y->has[k] || (x->has[k] &&
		    (x->uid[k] != y->uid[k] || x->kw[k] != y->kw[k] ||
		     ((x->sp[k] ^ y->sp[k]) & x->kw[k]))))
			return false;
	return true;
}

/*
 * Replica r applies the merge x: it numbers the unnumbered messages from
 * its own slot, above x's uidnext.
 */
static void number_own(struct icase *c, struct istate *r,
		       const struct istate *x, unsigned slot)
{
	*r = *x;
	for (unsigned k = 0; k < c->nkeys; k++) {
		if (!x->has[k] || x->uid[k])
			continue;
		r->uid[k] = imap_uid_alloc(r->f.uidnext, slot, 1);
		if (!r->uid[k]) {
			ifail(c, "no UID left in slot %u", slot);
			return;
		}
		r->f.uidnext = r->uid[k] + 1;
		c->numbered++;
	}
}

static void sync_pair(struct icase *c, int a, int b)
{
	struct istate x, y, *o = &c->r[a], *t = &c->r[b];

	merge3(c, &x, &c->base[a][b], o, t);
	merge3(c, &y, &c->base[a][b], t, o);
	if (!state_eq(&x, &y, c->nkeys))
		ifail(c, "merge of %d and %d not commutative", a, b);
	c->base[a][b] = c->base[b][a] = x;
	number_own(c, &c->r[a], &x, (unsigned)a);
	number_own(c, &c->r[b], &x, (unsigned)b);
	record(c, &c->r[a]);
	record(c, &c->r[b]);
}

static void run_icase(struct icase *c)
{
	struct istate init;

	memset(&init, 0, sizeof init);
	init.f = (struct imap_folder){ ++c->clock, 1 };
	for (int i = 0; i < c->n; i++) {
		c->r[i] = init;
		for (int j = 0; j < c->n; j++)
			c->base[i][j] = init;
	}
	for (unsigned step = 0, steps = 20 + irn(c, 60); step < steps; step++) {
		int r = (int)irn(c, (unsigned)c->n), q = (int)irn(c, (unsigned)c->n);
		unsigned op = irn(c, 100);

		if (op < 35)
			op_deliver(c, r);
		else if (op < 45) {
			unsigned k = irn(c, c->nkeys ? c->nkeys : 1);
			c->r[r].has[k] = false;
		} else if (op < 65)
			op_keyword(c, r);
		else if (op < 68)
			op_recreate(c, r);
		else if (r != q)
			sync_pair(c, r, q);
		record(c, &c->r[r]);
	}
	/* heal: replica 0 merges every other, then gives them the result */
	for (int round = 0; round < 10; round++) {
		bool same = true;
		for (int i = 1; i < c->n; i++)
			sync_pair(c, 0, i);
		for (int i = 1; i < c->n; i++)
			same = same && state_eq(&c->r[0], &c->r[i], c->nkeys);
		if (same)
			break;
	}
	for (int i = 1; i < c->n; i++)
		if (!state_eq(&c->r[0], &c->r[i], c->nkeys))
			ifail(c, "replicas 0 and %d differ after healing", i);
}

/* Sides that break the rules: one UID kept for two messages goes to neither. */
static bool fixed_twice(void)
{
	struct imap_fside fs[3] = { { false, { 0, 0 } }, { true, { 9, 3 } },
				    { true, { 9, 3 } } };
	struct imap_msg m[2] = { { "k1", { 0, 5, 0 }, 0 },
				 { "k2", { 0, 0, 5 }, 0 } };
	struct imap_folder f;

	return merge_imap_folder(&f, fs, m, 2) == 0 && m[0].out == 0 &&
	       m[1].out == 0 && f.uidnext == 3;
}

unsigned long long imap_model_run(uint64_t seed, unsigned long long ncases,
				  unsigned long long *numbered)
{
	unsigned long long failed = 0;

	*numbered = 0;
	if (!fixed_twice()) {
		printf("# imap model: a UID kept for two messages\n");
		failed++;
	}
	for (unsigned long long i = 0; i < ncases; i++) {
		struct icase *c = xcalloc(1, sizeof *c);

		c->rng = mix(seed ^ mix(i + 0x1234)) | 1;
		irnd(c);
		c->n = 2 + (int)irn(c, IR - 1);
		c->clock = 1000000;
		run_icase(c);
		if (c->failed) {
			printf("# imap model case %llu failed (seed %llu)\n", i,
			       (unsigned long long)seed);
			failed++;
		}
		*numbered += c->numbered;
		free(c->seen);
		free(c);
		if (failed >= 5)
			break;
	}
	return failed;
}
