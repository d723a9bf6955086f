/*
 * objects: the repository's loose objects, kept bounded (DESIGN section
 * 6: maintenance is maildag-syncd's job, never the LDA's): counted,
 * checked after the machine restarts, packed, and the temporary files of
 * killed writers removed.  libgit2 stays in here; the daemon only starts
 * the packing child (syncd/maint.h).
 *
 * Every delivery and every commit of the client's changes writes loose
 * objects.  When there are more than OBJECTS_LOOSE_MAX of them, they are
 * written into one new pack (fsynced), and then removed.  Only objects
 * that are in the new pack are removed, so a concurrent writer's new
 * object is never lost; readers that miss a removed loose object find it
 * in the pack (libgit2 looks at new packs on a miss).
 *
 * The maintenance pass (objects_maintain, doc/purge.md 4.2) keeps the
 * packs few: it runs git pack-objects (which reuses compressed data) on
 * lists of ids, by class, each new pack marked by a pack-<id>.maildag
 * file naming its class:
 *
 *	live		blobs of messages that refs/heads/mail or the
 *			worktree ref names (--window=0: no deltas)
 *	expunged	blobs of messages only history names (--window=0)
 *	history		commits, trees, records, anything else reachable
 *			(--window=10 --depth=50, with paths)
 *
 * Per class the packs form a geometric progression of factor 2 (the
 * rule of git repack --geometric=2): the small ones, and any larger one
 * the new pack would break the progression with, are rolled up into one.
 * A pack without a mark (a fetch's, maildag init's, an older version's)
 * is split into the classes at the next pass.  A multi-pack-index is
 * written after.  Objects no ref reaches (and no reflog) are dropped
 * once their file (the loose object, or the pack holding them) is older
 * than the grace; younger ones in a pack that is rolled up are written
 * out loose keeping that pack's mtime.  A pass takes no writer lock:
 * new packs are written and made durable beside the old ones, then the
 * multi-pack-index is removed, then the old packs and the loose copies,
 * then a new multi-pack-index written; readers meet at worst a miss that
 * re-reads the pack directory.  A pass killed at any point loses
 * nothing (the next one finishes the job).  One pass at a time
 * (<repo>/maildag/maintenance.lock); what the last one did is in
 * <repo>/maildag/maintenance.
 *
 * Temporary files of killed transfers are removed once they are old (a
 * peer that times out again and again must not fill the disk with
 * partial packs).
 */
#ifndef OBJECTS_H
#define OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "oid.h"

#define OBJECTS_LOOSE_MAX 2000
#define OBJECTS_LOOSE_AGE 3600	/* seconds: the oldest loose object packed */
#define OBJECTS_PACKS_NEW 8	/* packs beyond the last pass's: a pass */
#define OBJECTS_GRACE_DEFAULT 86400	/* maintenance.grace */
#define OBJECTS_GRACE_MIN 60
#define OBJECTS_INTERVAL_DEFAULT 3600	/* maintenance.interval */

struct repo;

/*
 * What a maintenance pass is asked.  drop: blob ids to leave out of
 * every pack and remove wherever they are stored, reachable or not (the
 * purge fills it from the purged/ lists), any order, may be NULL.
 */
struct objects_maint_opts {
	long grace;		/* seconds; unreachable objects older go */
	const struct oid *drop;
	size_t ndrop;
	bool idle;		/* nice 10 and the idle I/O class */
	bool locked;		/* the caller holds objects_maint_lock() */
};

/* What a pass did; also what <repo>/maildag/maintenance records. */
struct objects_maint_result {
	long long start;	/* clock_wall() when it began */
	long long duration_ms;
	bool ok;
	size_t packs_before, packs_after;
	size_t packs_live, packs_expunged, packs_history, packs_other;
	size_t loose_before, loose_after;
	size_t packs_written, packs_removed;
	size_t objects_packed;	/* written into new packs */
	size_t pruned;		/* unreachable objects dropped */
	size_t loosened;	/* young unreachable ones written out loose */
	size_t dropped;		/* ids of the drop set removed */
	size_t drop_left;	/* ids of the drop set still stored after */
	unsigned long long bytes_before, bytes_after;	/* objects/ */
};

/*
 * The maintenance lock of the repository at repo_path: one pass at a
 * time, and what a pass reads and writes beside the objects (a purge's
 * maildag/expired) with it.  A descriptor to close(2) to let go, E_TEMP
 * when another holds it and !wait, or E_FAIL (logged).
 */
int objects_maint_lock(const char *repo_path, bool wait);

/*
 * One maintenance pass now (see the top of this file).  Waits for a
 * pass under way when wait, else returns E_TEMP at once.  *res (may be
 * NULL) is what it did.  0, or < 0 (logged) with nothing lost.
 */
int objects_maintain(const char *repo_path,
		     const struct objects_maint_opts *opts, bool wait,
		     struct objects_maint_result *res);

/*
 * Is a pass due: interval seconds since the last one began, more than
 * OBJECTS_LOOSE_MAX loose objects beyond what the last one left (young
 * unreachable ones), OBJECTS_PACKS_NEW packs or more beyond the packs it
 * left (each fetch that brings anything adds one), or a loose object
 * written since the last pass began that is OBJECTS_LOOSE_AGE old?  why
 * (may be NULL): a few words for the log.
 */
bool objects_maint_due(const char *repo_path, long interval,
		       const char **why);

/*
 * What the last pass recorded; E_NOTFOUND when none ran.  loose_after
 * and packs_after are the pass's, not now's (objects_count_now).
 */
int objects_maint_last(const char *repo_path,
		       struct objects_maint_result *res);

/*
 * The objects reachable from the commits tips[0..ntips-1] that are
 * absent (git rev-list --objects --missing=print): a new array in *out,
 * *n of them.  0, or E_FAIL (logged).
 */
int objects_missing(const char *repo_path, const struct oid *tips,
		    size_t ntips, struct oid **out, size_t *n);

/* The packs and the loose objects there are now, and their bytes. */
int objects_count_now(const char *repo_path, size_t *packs, size_t *loose,
		      unsigned long long *bytes);

/*
 * Once after each start of the machine (its boot id differs from the
 * one <repo>/maildag/boot-id recorded): check every loose object and
 * remove the damaged ones (repo_object_check).  maildag-lda syncs what
 * it writes once per commit, so a crash can leave a loose object cut
 * short under its name; no ref names it, but a later commit of the same
 * content would reuse it, and libgit2 1.5.1 hangs reading it.  To be
 * run before anything writes or packs objects.  *damaged: how many were
 * removed.  0, or E_FAIL.
 */
int objects_check_after_boot(struct repo *r, size_t *damaged);

/* How many loose objects the repository holds (*n); 0 or E_FAIL. */
int objects_count_loose(const char *repo_path, size_t *n);

/*
 * Pack every loose object of the repository into one new pack and remove
 * the loose copies.  *packed (may be NULL) is how many.  0, or < 0 with
 * nothing removed.
 */
int objects_pack_loose(const char *repo_path, size_t *packed);

/*
 * Remove the temporary files that a killed fetch (objects/pack/pack_git2_*
 * from libgit2, tmp_pack_* and tmp_idx_* from git-receive-pack) or a
 * killed object writer (tmp_object_git2_*, tmp_obj_*) left, when older
 * than max_age seconds: no live transfer is that old.  Returns how many.
 */
size_t objects_clean_tmp(const char *repo_path, long max_age);

#endif
