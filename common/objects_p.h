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

#endif
