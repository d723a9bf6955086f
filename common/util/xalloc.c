/*
 * xalloc: allocation wrappers that abort on failure (see xalloc.h).
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

static void default_die(void)
{
	abort();
}

void (*xalloc_die)(void) = default_die;

static void *oom(void)
{
	static const char msg[] = "fatal: out of memory\n";
	/* stderr may itself need memory; write(2) does not */
	ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)r;
	xalloc_die();
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom();
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	return p ? p : oom();
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom();
}

void xgrow(void **p, size_t *alloc, size_t want, size_t elem)
{
	size_t n = *alloc;

	if (want <= n)
		return;
	n = n ? n : 8;
	while (n < want) {
		if (n > ((size_t)-1) / 2 / elem)
			oom();
		n *= 2;
	}
	*p = xrealloc(*p, n * elem);
	*alloc = n;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	return p ? p : oom();
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	return p ? p : oom();
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		return oom();
	return p;
}
