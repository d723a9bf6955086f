/*
 * vec: the growable array of any element type, for the vectors a module
 * keeps of its own structs (a scan's entries, a diff's changes).
 *
 * A vector is the caller's struct with three members: v (the elements),
 * n (how many are in use) and alloc (how many there is room for), all
 * zero while it is empty.  VEC_PUSH appends a zeroed element and returns
 * its address (valid until the next push); VEC_FREE frees the array and
 * leaves the vector empty.  What the elements point at is the caller's
 * to free, before VEC_FREE.
 *
 *	struct entv { struct ent *v; size_t n, alloc; } ev = { 0 };
 *	struct ent *e = VEC_PUSH(&ev);
 */
#ifndef VEC_H
#define VEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static inline void *vec_push_(void **v, size_t *n, size_t *alloc,
			      size_t elem)
{
	char *slot;

	xgrow(v, alloc, *n + 1, elem);
	slot = (char *)*v + (*n)++ * elem;
	memset(slot, 0, elem);
	return slot;
}

#define VEC_PUSH(vec) \
	vec_push_((void **)&(vec)->v, &(vec)->n, &(vec)->alloc, \
		  sizeof *(vec)->v)

#define VEC_FREE(vec) \
	do { \
		free((vec)->v); \
		(vec)->v = NULL; \
		(vec)->n = (vec)->alloc = 0; \
	} while (0)

/*
 * In a vector of structs sorted by their "char *key" member (strcmp
 * order): the index of key, or of where it would go (*found false).
 */
static inline size_t vec_find_key_(const void *v, size_t n, size_t elem,
				   size_t off, const char *key, bool *found)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *k = *(char *const *)((const char *)v + mid * elem + off);
		int c = strcmp(k, key);
		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

#define VEC_FIND_KEY(vec, k, found)					\
	vec_find_key_((vec)->v, (vec)->n, sizeof *(vec)->v,		\
		      offsetof(__typeof__(*(vec)->v), key), (k), (found))

#endif
