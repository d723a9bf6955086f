/*
 * notify_p: what the daemon's side of notify and its child share, and
 * nothing outside syncd/notify*.c may use.
 *
 *	notify.c	the daemon's side: ranges of changes per hook and
 *			webhook, the state file, starting and reaping the
 *			child, reading its results, status
 *	notify_child.c	the child: the hook command, the webhooks' POSTs,
 *			the alarms, each result a line on RESULT_FD
 */
#ifndef NOTIFY_P_H
#define NOTIFY_P_H

#include <stdbool.h>
#include <stddef.h>

#include "alarm.h"
#include "config.h"

#define RESULT_FD 3			/* the child's result lines */
#define RESULT_MAX 512			/* bytes in one result line */
#define RESULTS_MAX (1 << 20)		/* bytes of result lines in all */
#define HEX 40

/* A range of changes: from old ("" when unknown) to new. */
struct range {
	bool pending;
	char old[HEX + 1], new[HEX + 1];
};

/* One webhook's POST in the child. */
struct job {
	size_t index;		/* the webhook's, in the configuration */
	const char *url;
	const char *old, *new;	/* the range it is told of */
	char *body;
};

/* What a URL is called in the log: scheme://host[:port]/path, no secrets. */
char *notify_url_for_log(const char *url);

/*
 * The child: the hook for hook (when hook->pending), and each job's
 * POST; result lines on RESULT_FD; then each alarm.  Exits 0, or 1 when
 * the hook failed.
 */
void __attribute__((noreturn))
notify_child_main(const struct config *cfg, const char *user,
		  const struct range *hook_range, struct job *jobs,
		  size_t njobs, const struct alarm *alarms, size_t nalarms);

#endif
