/*
 * strvec: a growable array of owned strings (see strvec.h).
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "strvec.h"
#include "xalloc.h"

void strvec_push_nodup(struct strvec *sv, char *s)
{
	xgrow((void **)&sv->v, &sv->alloc, sv->n + 1, sizeof *sv->v);
	sv->v[sv->n++] = s;
}

void strvec_push(struct strvec *sv, const char *s)
{
	strvec_push_nodup(sv, xstrdup(s));
}

void strvec_clear(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->alloc = 0;
}

bool strvec_has(const struct strvec *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return true;
	return false;
}

int strvec_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strvec_sort(struct strvec *sv)
{
	if (sv->n > 1)
		qsort(sv->v, sv->n, sizeof *sv->v, strvec_cmp);
}
