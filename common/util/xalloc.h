/*
 * xalloc: allocation that never fails for the caller.
 *
 * Running out of memory is not a condition any caller in maildag can
 * handle better than by stopping: these wrappers print one line and abort
 * the process (the LDA's exit path maps that to EX_TEMPFAIL, see lda.c).
 */
#ifndef XALLOC_H
#define XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Grow *p, holding *alloc elements of size elem, so it holds at least want. */
void xgrow(void **p, size_t *alloc, size_t want, size_t elem);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Called instead of abort() when an allocation fails; a program may set it
 * (the LDA exits 75 so the MTA defers). It must not return.
 */
extern void (*xalloc_die)(void);

#endif
