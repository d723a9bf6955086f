/*
 * maint: the daemon packs its repository's loose objects in a child
 * process (objects.h), so its loop never waits for the packing.
 */
#ifndef MAINT_H
#define MAINT_H

#include <sys/types.h>

/*
 * objects_pack_loose() in a child when more than OBJECTS_LOOSE_MAX loose
 * objects are there.  Returns the child's pid, 0 when nothing was
 * needed, < 0 when the child could not start.  The caller reaps it.
 */
pid_t maint_start(const char *repo_path);

#endif
