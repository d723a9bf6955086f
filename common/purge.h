/*
 * purge: retention and forget (doc/purge.md 3.2, 3.3; maildag.conf(5)
 * "retention", maildag(1) forget and maintain).
 *
 * Retention.  An expiry candidate is a blob some change of refs/heads/
 * mail's history removed that neither refs/heads/mail nor refs/maildag/
 * worktree names now.  Its expunge time is the later of the commit time
 * of the change that last removed it and the moment this replica first
 * found it unnamed (<repo>/maildag/expired, "<blob> <first seen>
 * <removed>" lines under a "tip <commit>" line: the history walked so
 * far, so each run reads only the changes since).  Once expunge time +
 * retention <= now, the blob is listed in purged/ by one commit on
 * refs/heads/mail ("purge N messages expunged before <date>"), which the
 * merge carries to every peer.  A blob named again (a restore) leaves
 * the file; expunged again, its clock starts over.  A run whose wall
 * clock moved more than PURGE_CLOCK_JUMP seconds further than the boot
 * clock since the last run, within one boot, decides no purge.
 *
 * Forget.  Every message with one of the given blobs (any key, any
 * folder) is removed and the blobs listed, in one commit ("forget N
 * messages").
 *
 * The bytes go at the next maintenance pass (objects.h), whose drop set
 * is the purged/ set of refs/heads/mail (purge_drop_set()).
 *
 * Invariants: a purge commit changes purged/ and, for a forget, removes
 * messages: nothing else; both move refs/heads/mail by compare-and-swap
 * under the writer lock (a forget's caller holds it; the retention step
 * takes it for its commit alone).
 */
#ifndef PURGE_H
#define PURGE_H

#include <stdbool.h>
#include <stddef.h>

#include "oid.h"
#include "purged.h"
#include "repo.h"

#define PURGE_CLOCK_JUMP 600	/* seconds */

struct purge_result {
	size_t candidates;	/* expunged blobs waiting out the retention */
	size_t purged;		/* blobs listed by this run */
	size_t messages;	/* messages a forget removed */
	bool clock_jump;	/* no decision: the wall clock jumped */
	struct oid commit;	/* the purge or forget commit, when one */
	bool committed;
};

/*
 * The retention step at time now (clock_wall()): read the changes since
 * the last run, keep <repo>/maildag/expired, and list what is due in one
 * commit on refs/heads/mail, under the writer lock, taken for that
 * commit alone (waiting at most lock_ms; busy, or mail moved meanwhile:
 * the purges wait for the next run, and that is said).  retention in
 * seconds, < 0: forever (the file is kept all the same, so that a later
 * finite retention counts from the first sighting).  0, or < 0 (logged).
 */
int purge_retention(struct repo *r, long long retention, long long now,
		    int lock_ms, struct purge_result *res);

/*
 * Forget the blobs ids[0..n-1]: one commit on refs/heads/mail whose tree
 * lists them in purged/ and holds no message of them.  Nothing is
 * written when all are listed already and no message has one.  The
 * caller holds the writer lock and applies the change to the Maildir.
 */
int purge_forget(struct repo *r, const struct oid *ids, size_t n,
		 struct purge_result *res);

/*
 * The blobs a forget of what takes, added to out: what is a message key
 * or, when it holds an '@', a Message-ID (with or without <>); the
 * messages refs/heads/mail holds now with it (*live) and those its
 * history removed (*gone, expunged.h).  0, or < 0 (logged).
 */
int purge_select(struct purged *out, struct repo *r, const char *what,
		 size_t *live, size_t *gone);

/*
 * Does tree (NULL: refs/heads/mail's) list blob in purged/?  1, 0, or
 * < 0 (logged).  One shard blob read.
 */
int purge_listed(struct repo *r, const struct oid *tree,
		 const struct oid *blob);

/* The purged/ set of refs/heads/mail (empty without one). */
int purge_drop_set(struct purged *out, struct repo *r);
/*
 * Has what refs/heads/mail purged reached the replica whose last mail we
 * hold as commit theirs (refs/peers/<peer>/mail)?  *total: the blobs our
 * purged/ lists; *missing: those the tree of theirs does not list yet (a
 * forget or a purge that peer had not merged when its ref was taken).
 * Nothing but the purged/ ids is read when both record the same set.
 * 0, or < 0 (logged).
 */
int purge_reach(size_t *missing, size_t *total, struct repo *r,
		const struct oid *theirs);

typedef void purge_problem_fn(const char *why, void *data);

/*
 * fsck of the purge (doc/purge.md 3.5): every object a ref reaches that
 * is absent must be listed in the purged/ of some ref's tree (else fn
 * gets "object <id> missing, and no purged/ lists it"), and no blob
 * refs/heads/mail lists may still be stored (fn: "purged blob <id> still
 * stored ...").  *absent: the listed blobs absent, as recorded.  0, or
 * < 0 (logged) when it could not look.
 */
int purge_fsck(struct repo *r, purge_problem_fn *fn, void *data,
	       size_t *absent);

struct objects_maint_opts;
struct objects_maint_result;

/*
 * What `maildag maintain` and maildag-syncd's maintenance child run, the
 * whole of it under the maintenance lock (objects_maint_lock()): the
 * retention step under the writer lock (skipped, and said, when the lock
 * stays busy), then objects_maintain() with opts and the drop set of
 * refs/heads/mail's purged/, so that what is listed leaves every pack
 * and loose object.  wait as for objects_maintain().  pres, mres may be
 * NULL.  0, or < 0 (logged).
 */
int purge_pass(const char *repo_path, long long retention,
	       const struct objects_maint_opts *opts, bool wait,
	       struct purge_result *pres, struct objects_maint_result *mres);

#endif
