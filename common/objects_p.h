/*
 * objects_p: what objects.c shares with packs.c (the maintenance pass).
 */
#ifndef OBJECTS_P_H
#define OBJECTS_P_H

#include "oid.h"

/*
 * Call fn for every loose object of the repository (its id and path);
 * stops at the first non-zero return, which it returns.
 */
int objects_each_loose(const char *repo_path,
		       int (*fn)(const struct oid *, const char *, void *),
		       void *data);

struct objects_maint_result;

/* Write what a pass did to <repo>/maildag/maintenance; 0 or E_FAIL. */
int objects_write_record(const char *repo_path,
			 const struct objects_maint_result *r);

#endif
