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
 * daemon's stderr, and the daemon's environment plus MAILDAG_EVENT
 * ("change"), MAILDAG_USER, MAILDAG_NODE, MAILDAG_REF (refs/heads/mail),
 * MAILDAG_OLD and MAILDAG_NEW (40 hex digits; MAILDAG_OLD is 40 zeros
 * when unknown, as in git's hooks).
 *
 * The webhooks: each URL in hooks.webhooks gets, all in parallel, a POST
 * with Content-Type application/json and the body
 *   {"event":"change","user":"alice","node":"mx1","ref":"refs/heads/mail",
 *    "old":"<hex>"|null,"new":"<hex>","time":<seconds since the epoch>}
 * within NOTIFY_HTTP_TIMEOUT seconds; redirects are not followed, only
 * http and https are spoken.
 *
 * Each webhook is told every change at least once: a webhook that does
 * not answer with a 2xx status within NOTIFY_HTTP_TIMEOUT (a refused
 * connection, a timeout, a 5xx, a 4xx, a redirect) keeps the changes it
 * has not acknowledged as one range (from the last commit it did
 * acknowledge), later changes extend the range, and it is tried again
 * after NOTIFY_RETRY_MIN seconds, doubling up to NOTIFY_RETRY_MAX, or
 * after the server's Retry-After (kept within NOTIFY_RETRY_MIN and
 * NOTIFY_RETRY_AFTER_MAX).  A 2xx moves the webhook's acknowledged commit
 * to what it was told; that commit is kept in the state file given to
 * notify_new() (atomically rewritten, 0600), so after a restart
 * notify_start() tells each webhook what it missed.  The hook command is
 * run once per change and not retried.
 *
 * A mass-deletion alarm (alarm.h, notify_alarm()) is told the same ways,
 * once per alarm, by the next child: the hook runs again with
 * MAILDAG_EVENT "alarm", MAILDAG_OLD and MAILDAG_NEW the change's parent
 * and the change, and MAILDAG_CHANGE (the change), MAILDAG_ORIGIN (the
 * replica that made it), MAILDAG_ALARM (what it removed, one line),
 * MAILDAG_UNDO ("maildag undo <id>"), MAILDAG_CONFIRM and MAILDAG_HELD
 * ("1" when held back from peers, else "0"); each webhook gets one POST
 *   {"event":"alarm","user":..,"node":..,"ref":..,"old":"<parent>",
 *    "new":"<change>","change":"<hex>","origin":"mx1","summary":"...",
 *    "expunged":N,"held":bool,"undo":"maildag undo <id>",
 *    "confirm":"maildag confirm <id>","time":<seconds>, ...}
 * An alarm's POST is not tried again (the alarm stays in maildag status
 * until it is settled) and moves no webhook's acknowledged commit; its
 * failure is logged.
 *
 * Every failure is logged on one line (log.h, warning) naming the hook or
 * the URL (without its user name, password, query or fragment, which may
 * be secrets) and, for a webhook, when it is tried again: a hook that
 * cannot be run, exits non-zero or is killed; an HTTP status outside 2xx;
 * a transfer error.
 *
 * The daemon reaps the child only through notify_poll(): it must never
 * wait for "any child" (waitpid(-1, ...)), or the child's status is lost.
 * The child closes every descriptor but 0, 1 and 2 first, so it holds no
 * lock of the daemon's (the writer lock is an flock that a copy of its
 * descriptor would keep).
 */
#ifndef NOTIFY_H
#define NOTIFY_H

#include "oid.h"
#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

#ifndef NOTIFY_DEADLINE		/* the unit test makes it short */
#define NOTIFY_DEADLINE 30	/* seconds for the whole child */
#endif
#define NOTIFY_HTTP_TIMEOUT 10	/* seconds for the webhooks' requests */
#ifndef NOTIFY_RETRY_MIN	/* the unit test makes it short */
#define NOTIFY_RETRY_MIN 5.0	/* seconds before a webhook is tried again */
#endif
#define NOTIFY_RETRY_MAX 3600.0	/* the backoff doubles up to this */
#define NOTIFY_RETRY_AFTER_MAX 86400	/* a Retry-After longer is cut */

struct notify;

/*
 * A notifier for the user's config (borrowed; see notify_set_config).
 * state_path (or NULL: none) is the file that keeps each webhook's
 * acknowledged commit across restarts.  Initialises libcurl for the
 * process (curl_global_init, once), so call it before the daemon starts
 * any thread.  Never NULL; free it with notify_free().
 */
struct notify *notify_new(const struct config *cfg, const char *user,
			  const char *state_path);
/*
 * refs/heads/mail is mail at the daemon's start: each webhook whose
 * acknowledged commit is another is told of the changes since; one with
 * none yet (new in the configuration) is told by the daemon's first
 * sync, as the hook is.
 */
void notify_start(struct notify *n, const struct oid *mail);
/*
 * Each webhook's state, for maildag status: url (as logged), untold
 * (whether changes wait to be told), from (the first change not
 * acknowledged), acked, failures, last_ok, last_error, error_at,
 * next_try (seconds since the epoch, or null).
 */
json_t *notify_status(const struct notify *n);
/* Kills a running child (and its group) and reaps it; NULL is a no-op. */
void notify_free(struct notify *n);

/*
 * After a config reload: the new config (borrowed).  A webhook that stays
 * (the same URL) keeps its state; one removed is forgotten; one added
 * starts with the next change.
 */
void notify_set_config(struct notify *n, const struct config *cfg);

/*
 * refs/heads/mail moved from old (NULL or zero: unknown) to new.  Starts
 * a child at once when none runs, else remembers the change for the
 * next; does nothing when the config has no hook and no webhook.
 */
void notify_change(struct notify *n, const struct oid *old, const struct oid *new);

/*
 * Report the alarm a (copied) by the next child, as above; does nothing
 * when the config has no hook and no webhook.
 */
struct alarm;
void notify_alarm(struct notify *n, const struct alarm *a);

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
