/*
 * repo_p: libgit2 as the library's modules see it; included by common/
 * sources only, never by a program (their folders do not include
 * <git2.h>: STYLE.md).
 *
 * A struct oid has git_oid's layout, so an id passes between the two
 * as it is: GIT_OID() gives libgit2's view of a struct oid, OID() the
 * reverse; each keeps const and refuses any other pointer type.
 */
#ifndef REPO_P_H
#define REPO_P_H

#include <git2.h>

#include "oid.h"
#include "repo.h"

_Static_assert(sizeof(struct oid) == sizeof(git_oid) &&
	       sizeof(((git_oid *)0)->id) == OID_RAWSZ,
	       "struct oid and git_oid must have one layout");

#define GIT_OID(p) _Generic((p), \
	struct oid *: (git_oid *)(void *)(p), \
	const struct oid *: (const git_oid *)(const void *)(p))
#define OID(p) _Generic((p), \
	git_oid *: (struct oid *)(void *)(p), \
	const git_oid *: (const struct oid *)(const void *)(p))

#endif
