/*
 * strmap: string-keyed hash map (see strmap.h).  The table stays at most
 * half full, so probe runs are short.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "fnv.h"
#include "strmap.h"
#include "xalloc.h"

static size_t slot_of(const struct strmap *m, const char *key, unsigned h)
{
	size_t i = h & (m->cap - 1);

	while (m->v[i].key && (m->v[i].hash != h || strcmp(m->v[i].key, key)))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void grow(struct strmap *m)
{
	struct strmap_slot *old = m->v;
	size_t ocap = m->cap;

	m->cap = ocap ? ocap * 2 : 16;
	m->v = xcalloc(m->cap, sizeof *m->v);
	for (size_t i = 0; i < ocap; i++)
		if (old[i].key)
			m->v[slot_of(m, old[i].key, old[i].hash)] = old[i];
	free(old);
}

bool strmap_put(struct strmap *m, const char *key, size_t value)
{
	unsigned h = fnv1a32(key, strlen(key));
	size_t i;

	if ((m->n + 1) * 2 > m->cap)
		grow(m);
	i = slot_of(m, key, h);
	m->v[i].value = value;
	if (m->v[i].key)
		return false;
	m->v[i].key = xstrdup(key);
	m->v[i].hash = h;
	m->n++;
	return true;
}

bool strmap_get(const struct strmap *m, const char *key, size_t *out)
{
	size_t i;

	if (!m->n)
		return false;
	i = slot_of(m, key, fnv1a32(key, strlen(key)));
	if (!m->v[i].key)
		return false;
	if (out)
		*out = m->v[i].value;
	return true;
}

bool strmap_del(struct strmap *m, const char *key)
{
	size_t i, j;

	if (!m->n)
		return false;
	i = slot_of(m, key, fnv1a32(key, strlen(key)));
	if (!m->v[i].key)
		return false;
	free(m->v[i].key);
	m->v[i].key = NULL;
	m->n--;
	/* shift back the entries of the run that probed past slot i */
	for (j = (i + 1) & (m->cap - 1); m->v[j].key; j = (j + 1) & (m->cap - 1)) {
		size_t home = m->v[j].hash & (m->cap - 1);
		bool between = i <= j ? (i < home && home <= j)
				      : (i < home || home <= j);
		if (between)
			continue;
		m->v[i] = m->v[j];
		m->v[j].key = NULL;
		i = j;
	}
	return true;
}

void strmap_clear(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->v[i].key);
	free(m->v);
	m->v = NULL;
	m->n = m->cap = 0;
}
