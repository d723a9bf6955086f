/*
 * strmap: a hash map from strings to size_t values, for the sets and
 * indexes that grow with the mailbox (folders seen, watched paths), so
 * that a lookup costs the same with 30,000 entries as with 3.
 *
 * Open addressing with linear probing; removal shifts the run back, so
 * there are no tombstones.  The map owns copies of its keys.
 */
#ifndef STRMAP_H
#define STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap {
	struct strmap_slot {
		char *key;	/* NULL: empty */
		size_t value;
		unsigned hash;
	} *v;
	size_t n, cap;
};

#define STRMAP_INIT { NULL, 0, 0 }

/* Set key to value; true when key was new. */
bool strmap_put(struct strmap *m, const char *key, size_t value);
/* The value of key in *out (when out is not NULL); false when absent. */
bool strmap_get(const struct strmap *m, const char *key, size_t *out);
static inline bool strmap_has(const struct strmap *m, const char *key)
{
	return strmap_get(m, key, NULL);
}
/* Remove key; false when it was absent. */
bool strmap_del(struct strmap *m, const char *key);
/* Free everything; the map is empty and usable again. */
void strmap_clear(struct strmap *m);

#endif
