/*
 * merge_imap: the merge rules of format 2's IMAP records
 * (doc/imap-identity.md 4.4), as pure functions of (base, ours, theirs)
 * that the tree merge calls once the folder of every message of the
 * result is known.
 *
 * The merge never numbers a message (doc/imap-progress.md, "number at
 * apply"): a message whose UID no side keeps gets UID 0, an unnumbered
 * record ("-" in imap/<xx>), and every replica that applies the merge
 * numbers it from its own slot, above the result's uidnext.
 *
 * Invariants: every answer is a function of the inputs alone and does
 * not change when ours and theirs swap (the canonical merge commit is
 * the same on every replica); no UID is kept for two messages of one
 * folder; a UID a side kept is one the other side never showed (at or
 * above its uidnext); the result's uidnext is above every kept UID.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "imaprec.h"
#include "log.h"
#include "merge_p.h"
#include "xalloc.h"

static uint32_t max32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* Does side s keep the UID it gives m (the other side never showed it)? */
static bool qualifies(const struct imap_msg *m, int s,
		      const struct imap_folder *f, const bool has[3])
{
	int y = s == O ? T : O;
	uint32_t ynext = has[y] ? f[y].uidnext : 1;

	return m->uid[s] && m->uid[s] >= ynext;
}

static int out_cmp(const void *x, const void *y)
{
	const struct imap_msg *a = *(struct imap_msg *const *)x;
	const struct imap_msg *b = *(struct imap_msg *const *)y;

	return a->out < b->out ? -1 : a->out > b->out;
}

/*
 * A UID kept for two messages (only a side that breaks format 2's rules
 * can cause it): both lose it and join v[0..nv-1] (room for n), the
 * unnumbered.  The new count of v.
 */
static size_t drop_twice(struct imap_msg **v, size_t nv,
			 struct imap_msg *msgs, size_t n)
{
	struct imap_msg **kept = xmalloc((n ? n : 1) * sizeof *kept);
	size_t nk = 0;

	for (size_t i = 0; i < n; i++)
		if (msgs[i].out)
			kept[nk++] = &msgs[i];
	qsort(kept, nk, sizeof *kept, out_cmp);
	for (size_t i = 0; i < nk;) {
		size_t j = i + 1;
		while (j < nk && kept[j]->out == kept[i]->out)
			j++;
		for (size_t k = i; j - i > 1 && k < j; k++) {
			kept[k]->uid[O] = kept[k]->uid[T] = 0;
			v[nv++] = kept[k];
		}
		i = j;
	}
	for (size_t k = 0; k < nv; k++)
		v[k]->out = 0;
	free(kept);
	return nv;
}

int merge_imap_folder(struct imap_folder *out, const struct imap_fside fs[3],
		      struct imap_msg *msgs, size_t n)
{
	struct imap_folder f[3];
	bool has[3] = { false, fs[O].has, fs[T].has };
	struct imap_msg **v;
	size_t nv = 0;

	if (!has[O] && !has[T])
		return log_error("a folder of the merge has no folder record");
	f[O] = fs[O].f;
	f[T] = fs[T].f;
	/* the greater UIDVALIDITY wins; the loser's UIDs do not count */
	if (has[O] && has[T] && f[O].uidvalidity != f[T].uidvalidity)
		has[f[O].uidvalidity < f[T].uidvalidity ? O : T] = false;
	for (size_t i = 0; i < n; i++)
		for (int s = O; s <= T; s++)
			if (!has[s])
				msgs[i].uid[s] = 0;
	out->uidvalidity = has[O] ? f[O].uidvalidity : f[T].uidvalidity;
	out->uidnext = max32(has[O] ? f[O].uidnext : 1,
			     has[T] ? f[T].uidnext : 1);

	v = xmalloc((n ? n : 1) * sizeof *v);
	for (size_t i = 0; i < n; i++) {
		struct imap_msg *m = &msgs[i];

		m->out = 0;
		if (m->uid[O] && m->uid[O] == m->uid[T])
			m->out = m->uid[O];
		else if (qualifies(m, O, f, has))
			m->out = m->uid[O];
		else if (qualifies(m, T, f, has))
			m->out = m->uid[T];
		else
			v[nv++] = m;	/* unnumbered */
	}
	drop_twice(v, nv, msgs, n);
	free(v);
	return 0;
}

/* --- keywords ---------------------------------------------------------- */

/* The spelling of name in side s, or NULL when s lacks it. */
static const char *kw_find(const struct imap_kwside *s, const char *name)
{
	for (size_t i = 0; s->has && i < s->n; i++)
		if (!imap_keyword_cmp(s->kw[i], name))
			return s->kw[i];
	return NULL;
}

/* Is name in the result, by the rule of 4.4? */
static bool kw_wanted(const struct imap_kwside sd[3], const char *name)
{
	bool b = kw_find(&sd[B], name), o = kw_find(&sd[O], name),
	     t = kw_find(&sd[T], name);

	if (!sd[O].has || !sd[T].has)
		return sd[O].has ? o : t;
	if (!sd[B].has)
		return o || t;		/* no base record: the union */
	return o != b ? o : t;		/* a side that changed it decides */
}

void merge_imap_keywords(struct strvec *out, const struct imap_kwside sd[3])
{
	for (int s = O; s <= T; s++) {
		for (size_t i = 0; sd[s].has && i < sd[s].n; i++) {
			const char *name = sd[s].kw[i], *o, *t, *b, *best;

			/* each name once: from ours, or theirs if ours lacks it */
			if (s == T && kw_find(&sd[O], name))
				continue;
			if (!kw_wanted(sd, name))
				continue;
			o = kw_find(&sd[O], name);
			t = kw_find(&sd[T], name);
			b = kw_find(&sd[B], name);
			/* the spelling too: a side that changed it decides */
			if (!o || !t)
				best = o ? o : t;
			else if (b && !strcmp(o, b))
				best = t;
			else if (b && !strcmp(t, b))
				best = o;
			else
				best = strcmp(o, t) <= 0 ? o : t;
			strvec_push(out, best);
		}
	}
}
