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

#endif
