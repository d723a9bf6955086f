/*
 * maint: the daemon runs the maintenance pass (objects.h: packs rolled
 * up by class, unreachable objects pruned after the grace, loose objects
 * packed) in a child process, at nice 10 and the idle I/O class, so its
 * loop never waits for it and deliveries never wait on it: the pass
 * takes no writer lock.
 */
#ifndef MAINT_H
#define MAINT_H

#include <stdbool.h>
#include <sys/types.h>

struct config;

/*
 * Start a pass in a child when one is due (objects_maint_due: the
 * configured interval is over, loose objects piled up, or one is an
 * hour old), or now.  The pass begins with the retention step and
 * removes what purged/ lists (purge.h).  Returns the child's pid, 0 when nothing was needed, < 0
 * when the child could not start.  The caller reaps it; its exit status
 * is 0 when the pass went well.
 */
pid_t maint_start(const char *repo_path, const struct config *cfg,
		  bool now);

#endif
