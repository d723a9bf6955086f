/*
 * notify: tell whatever else wants to know that the mailbox changed
 * (DESIGN section 6, out-of-band signals): the hook command and the
 * webhooks of the configuration.
 *
 * Every time refs/heads/mail moves, maildag-syncd calls notify_change().
 * It never blocks the daemon: the command and the HTTP POSTs run in one
 * forked child, in a process group of its own, which the daemon kills
 * (SIGKILL to the group) when it is still running after NOTIFY_DEADLINE
 * seconds.  While a child runs, further changes are coalesced: when it
 * ends, one more child reports them all at once, from the old id of the
 * first to the new id of the last.
 *
 * The hook: hooks.command, an absolute path, run directly (execv, no
 * shell, no arguments) with stdin /dev/null, stdout and stderr the
 * daemon's stderr, and the daemon's environment plus MAILDAG_USER,
 * MAILDAG_NODE, MAILDAG_REF (refs/heads/mail), MAILDAG_OLD and
 * MAILDAG_NEW (40 hex digits; MAILDAG_OLD is 40 zeros when unknown, as in
 * git's hooks).
 *
 * The webhooks: each URL in hooks.webhooks gets, all in parallel, a POST
 * with Content-Type application/json and the body
 *   {"event":"change","user":"alice","node":"mx1","ref":"refs/heads/mail",
 *    "old":"<hex>"|null,"new":"<hex>","time":<seconds since the epoch>}
 * within NOTIFY_HTTP_TIMEOUT seconds; redirects are not followed, only
 * http and https are spoken.
 *
 * Every failure is logged on one line (log.h, warning) naming the hook or
 * the URL (without its user name, password, query or fragment, which may
 * be secrets): a hook that cannot be run, exits non-zero or is killed; an
 * HTTP status of 300 or more; a transfer error.
 *
 * The daemon reaps the child only through notify_poll(): it must never
 * wait for "any child" (waitpid(-1, ...)), or the child's status is lost.
 * The child closes every descriptor but 0, 1 and 2 first, so it holds no
 * lock of the daemon's (the writer lock is an flock that a copy of its
 * descriptor would keep).
 */
#ifndef NOTIFY_H
#define NOTIFY_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "oid.h"

#ifndef NOTIFY_DEADLINE		/* the unit test makes it short */
#define NOTIFY_DEADLINE 30	/* seconds for the whole child */
#endif
#define NOTIFY_HTTP_TIMEOUT 10	/* seconds for the webhooks' requests */

struct notify;

/*
 * A notifier for the user's config (borrowed; see notify_set_config).
 * Initialises libcurl for the process (curl_global_init, once), so call
 * it before the daemon starts any thread.  Never NULL; free it with
 * notify_free().
 */
struct notify *notify_new(const struct config *cfg, const char *user);
/* Kills a running child (and its group) and reaps it; NULL is a no-op. */
void notify_free(struct notify *n);

/*
 * After a config reload: the new config (borrowed).  Changes not yet
 * reported are dropped when it has no hook and no webhook left.
 */
void notify_set_config(struct notify *n, const struct config *cfg);

/*
 * refs/heads/mail moved from old (NULL or zero: unknown) to new.  Starts
 * a child at once when none runs, else remembers the change for the
 * next; does nothing when the config has no hook and no webhook.
 */
void notify_change(struct notify *n, const struct oid *old,
		   const struct oid *new);

/* The child's pid, or 0 when none runs. */
pid_t notify_pid(const struct notify *n);

/*
 * Reap the child if it has ended (non-blocking), kill it if its deadline
 * has passed, and start the next one if changes came meanwhile.  Returns
 * the seconds until it wants to be called again (0: not needed until the
 * next notify_change()).  The daemon calls it on SIGCHLD while
 * notify_pid() is not 0, and when the time it returned has passed (at
 * most a second while a child runs, so a lost SIGCHLD costs little).
 */
double notify_poll(struct notify *n);

#endif
