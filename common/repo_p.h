/*
 * repo_p: libgit2 as the library's modules see it, and the parts of the
 * opaque struct repo.  Included by common/ sources (and by the unit tests
 * and benches that look inside them) only, never by a program: no
 * program's folder includes <git2.h> (STYLE.md).
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

struct repo {
	git_repository *git;
	char *path;		/* the bare repository directory */
	int lock_fd;		/* the writer lock while held, else -1 */
	bool no_fsync;		/* opened with REPO_NO_FSYNC: a batch held */
};

/* The last libgit2 error as text (never NULL). */
const char *repo_git_error(void);

/* Does libgit2 fsync what it writes now (no batch open)?  For tests. */
bool repo_fsync_on(void);

#endif
