/*
 * strvec: a growable array of strings the vector owns (git's strvec,
 * smaller): the folder lists, the name queues, the sets of paths a scan
 * keeps.
 *
 * v holds n strings, each a copy the vector frees; v is NULL while the
 * vector is empty.  A zeroed struct (STRVEC_INIT) is an empty vector.
 */
#ifndef STRVEC_H
#define STRVEC_H

#include <stdbool.h>
#include <stddef.h>

struct strvec {
	char **v;
	size_t n, alloc;
};

#define STRVEC_INIT { NULL, 0, 0 }

/* Append a copy of s. */
void strvec_push(struct strvec *sv, const char *s);
/* Append s itself, which the vector now owns (s came from malloc). */
void strvec_push_nodup(struct strvec *sv, char *s);
/* Free every string and the array; the vector is empty and usable. */
void strvec_clear(struct strvec *sv);
/* Does the vector hold a string equal to s?  (A linear search.) */
bool strvec_has(const struct strvec *sv, const char *s);
/* Sort the strings by strcmp(3). */
void strvec_sort(struct strvec *sv);
/* For qsort(3) over an array of char *: strcmp of what they point at. */
int strvec_cmp(const void *a, const void *b);

#endif
