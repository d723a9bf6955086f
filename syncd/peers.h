/*
 * peers: maildag-syncd's replication (DESIGN section 6).
 *
 * Per configured peer, two operations, each with its own state: a push
 * of refs/heads/mail to refs/peers/<our node>/mail on the peer, and a
 * fetch of the peer's refs/heads/mail into our refs/peers/<peer>/mail.
 * Each runs in a child process (net.h) with the config's net_timeout as
 * deadline, so a hung peer costs a child, never the loop's time.
 *
 *  - A push starts as soon as refs/heads/mail moves (peers_mail_moved),
 *    for every push peer not already pushing; one that is pushing pushes
 *    again when it ends if mail moved meanwhile.
 *  - A fetch runs at start, every fetch_interval seconds, and on demand
 *    (peers_sync_now).
 *  - A failure (an error, a rejected ref, the deadline) is retried after
 *    backoff_min * 2^(failures-1) seconds, at most backoff_max, times a
 *    random factor in [0.5, 1) (jitter), forever.  A push from a peer
 *    whose own push is backing off retries that push at once: the peer
 *    is back.
 *  - peers_check (called by the sync before the writer lock) starts, for
 *    the refs/peers/<node>/mail of each configured peer that moved, a
 *    child process that checks every commit of it that refs/heads/mail
 *    does not hold (history.h); peers_merge (under the lock) merges into
 *    refs/heads/mail only what such a child approved, and the child's
 *    end brings another sync.  One commit that fails refuses the whole
 *    history, which is reported in the status and not looked at again
 *    until the ref moves.  Refs of other names are never looked at:
 *    anyone who can push can make them.
 *
 * Quorum delivery: peers_wait answers when enough peers hold a commit: a
 * peer holds it when it accepted our push of it or of a descendant, or
 * when its refs/heads/mail, as our own fetch read it from the peer,
 * contains it.  Both are what our children reported, kept in memory;
 * refs/peers/<peer>/mail in our repository never counts (anyone who can
 * write the repository can write it), nor does it keep a push from
 * starting.  Peers with the same URL are one store and count once.
 */
#ifndef PEERS_H
#define PEERS_H

#include <stdbool.h>

#include <jansson.h>

#include "config.h"
#include "loop.h"
#include "repo.h"

struct peers;

/*
 * want_sync is called when a fetch or a peer's push brought something to
 * merge: the daemon runs a sync (which calls peers_merge) soon.
 */
struct peers *peers_new(struct loop *l, struct repo *r,
			const struct config *cfg,
			void (*want_sync)(void *data), void *data);
void peers_free(struct peers *p);	/* kills running children */

/*
 * A reloaded config (borrowed, like the first): peers keep their state
 * when name and URL are unchanged; removed peers' children are killed.
 */
void peers_set_config(struct peers *p, const struct config *cfg);

/* refs/heads/mail is now mail: push it. */
void peers_mail_moved(struct peers *p, const struct oid *mail);

/*
 * Hold every push back (a mass-deletion alarm is open and held, alarm.h)
 * or let them go again: released, each peer that may lack our mail is
 * pushed to at once.  Fetches, merges and quorum waits go on (a wait
 * for an ack times out while pushes are held).
 */
void peers_set_hold(struct peers *p, bool hold);

/* Fetch from and push to every peer now, whatever the backoff says. */
void peers_sync_now(struct peers *p);

/* A refs/peers/ change was seen (inotify): look at them at the next sync. */
void peers_refs_changed(struct peers *p);

/*
 * Merge into refs/heads/mail what a check child approved of every
 * configured peer's refs/peers/<node>/mail that changed: the ref itself,
 * or, while a newer value is being checked, the last approved commit
 * when it is an ancestor of it.  The caller holds the writer lock.  1
 * when refs/heads/mail moved, 0 when not, < 0 on an error of our own (a
 * refused peer commit is not one).
 */
int peers_merge(struct peers *p);

/*
 * Before the writer lock: for every configured peer's ref that moved and
 * is neither merged, refused nor approved, start a child that checks its
 * whole history (history.h), unless one runs for that peer already (its
 * end looks again) or a failed one waits for its backoff.  A new
 * replica's first sync may check thousands of commits: seconds of CPU
 * that the loop spends answering meanwhile, and memory the daemon never
 * holds.  The child's end records the approval or the refusal (reported
 * as peers_merge would) and asks for a sync.  Reads only.
 */
void peers_check(struct peers *p);

/* The "status" answer's "peers" array (control.h). */
json_t *peers_status(struct peers *p);

/*
 * Call done when acks peers hold commit, or after timeout seconds with
 * ok false.  acked is a new JSON array of peer names (the callee takes
 * it); error is NULL when ok.
 */
typedef void peers_wait_fn(void *data, bool ok, json_t *acked,
			   const char *error);
void peers_wait(struct peers *p, const struct oid *commit, int acks,
		double timeout, peers_wait_fn *done, void *data);

/* Forget the waits whose data is data (the client went away). */
void peers_wait_cancel(struct peers *p, void *data);

#endif
