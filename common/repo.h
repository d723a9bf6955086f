/*
 * repo: the bare git repository that holds a Maildir's history
 * (DESIGN sections 1 and 2).  Every libgit2 call of maildag lives behind
 * this module and the other common/ modules, so the programs speak in
 * Maildir terms: struct repo is opaque, ids are struct oid (oid.h), and
 * only common/ sources include repo_p.h, which holds the struct and
 * <git2.h>.
 *
 * Invariants:
 * - maildag never uses git's index or checkout: trees are written
 *   directly (repo_tree_update) and refs move by compare-and-swap only
 *   (repo_ref_cas), by a process holding the writer lock (repo_lock).
 * - Objects and refs are durable before a ref names them: fsynced as
 *   they are written (libgit2's GIT_OPT_ENABLE_FSYNC_GITDIR, set by
 *   repo_global_init), or written unsynced in a batch (struct
 *   repo_batch; REPO_NO_FSYNC) that one syncfs(2) makes durable before
 *   the ref moves (maildag-lda's group commit, merge_into_ref).
 * - Global and system git configuration is never read: what a hostile
 *   ~/.gitconfig says cannot change how a message is stored.
 */
#ifndef REPO_H
#define REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "oid.h"

struct strbuf;

#define REF_MAIL "refs/heads/mail"
#define REF_WORKTREE "refs/maildag/worktree"
#define FORMAT_PATH "FORMAT"
#define FORMAT_CONTENT "maildag 1\n"

/* A repository opened by repo_open(); its parts are repo_p.h's. */
struct repo;

enum repo_open_flags {
	REPO_CREATE = 1 << 0,	/* create the repository if absent */
	/*
	 * libgit2 syncs nothing while the repository is open (a batch from
	 * repo_open() to repo_free()); the caller makes what it wrote
	 * durable with repo_syncfs() and repo_sync_ref().
	 */
	REPO_NO_FSYNC = 1 << 1,
};

/*
 * Initialise libgit2 once per process, with maildag's settings.  Also
 * masks group and other out of the process's umask (umask |= 077): what
 * libgit2 writes into a repository follows the umask alone, and a
 * repository holds mail.
 */
int repo_global_init(void);
/*
 * In a forked child: shut libgit2 down for good and start it again with
 * maildag's settings.  libgit2 shares open pack files between all the
 * repositories of a process; after fork() the child must not use the
 * parent's (their descriptors may be closed or shared offsets).
 *
 * The shutdown does not empty libgit2's list of open pack files, and
 * past REPO_PACKS_MAPPED of them it closes the least recently used one's
 * descriptor: one the parent had, whose number the child may have
 * reused ("failed to mmap ... Bad file descriptor" in a maintenance pass
 * of a repository of hundreds of packs; libgit2 1.5.1, mwindow.c).  So
 * the child keeps the parent's pack descriptors open
 * (child_close_fds(.., true), CHILD_KEEP_PACKS) and passes false; with
 * packs_closed, when they were closed (no /proc to tell them apart, or
 * the long-lived network worker, which would otherwise hold the disk
 * space of packs maintenance removed), libgit2 closes no pack file in
 * this process by itself (each stays open until its repository's object
 * database lets go of it).
 */
int repo_global_reinit(bool packs_closed);
/*
 * At the end of a program, after the last repo_free(): release libgit2's
 * global state.
 */
void repo_global_shutdown(void);

/*
 * A batch of writes that libgit2 does not fsync one by one (a merge, a
 * commit of thousands of renames, an import): what is written between
 * repo_batch_begin() and repo_batch_end(b, true) is made durable by the
 * one syncfs(2) of the end, before a ref names it.  libgit2's setting is
 * process-wide, so batches nest: fsync is off from the first begin to
 * the last end (of the batches and the REPO_NO_FSYNC repositories), and
 * on again after it.  Beginning a batch that is open, or ending one
 * that was not begun or has ended, does nothing, so a function's way out
 * may always end its batch:
 *
 *	struct repo_batch batch = REPO_BATCH_INIT;
 *	repo_batch_begin(&batch, r);
 *	... write objects; on failure goto done ...
 *	if (repo_batch_end(&batch, true) < 0)
 *		goto done;
 *	repo_ref_cas(...);
 * done:
 *	repo_batch_end(&batch, false);
 */
struct repo_batch {
	struct repo *r;		/* while begun, else NULL */
};

#define REPO_BATCH_INIT { NULL }

void repo_batch_begin(struct repo_batch *b, struct repo *r);
/*
 * End the batch; with sync, first make everything written so far durable
 * (repo_syncfs()).  0, or E_FAIL when the sync failed (logged; the batch
 * has ended all the same).
 */
int repo_batch_end(struct repo_batch *b, bool sync);

/*
 * Bound libgit2's object cache (process-wide; libgit2's default is
 * 256 MB), for a daemon that reads many trees over a long life.
 */
void repo_set_cache_max(size_t bytes);
/*
 * Let libgit2's cache keep parsed trees of up to bytes (its default is 4
 * KB: a root tree of thousands of folders, or a shard of a large folder,
 * was inflated again on every lookup).  Process-wide; only ever raised.
 */
void repo_cache_trees_up_to(size_t bytes);
/*
 * Hash every object read again and refuse one whose content does not
 * match its id (off by default, as in git; maildag fsck turns it on).
 */
void repo_verify_reads(bool on);

/*
 * Open the repository at path; with REPO_CREATE make it (bare, mode 0700,
 * an initial commit holding FORMAT on refs/heads/mail and
 * refs/maildag/worktree) if it does not exist.  Creation is atomic: the
 * repository is built beside its final place and renamed there, so
 * concurrent first deliveries agree on one.  E_NOTFOUND when absent and
 * not created.  The caller frees *out with repo_free().
 */
int repo_open(struct repo **out, const char *path, unsigned flags);
void repo_free(struct repo *r);

/*
 * Take the writer lock (flock on <repo>/maildag/lock), waiting at most
 * timeout_ms (< 0: as long as it takes); E_TEMP on timeout.  Holding it, stale libgit2 lock files of
 * the refs maildag writes are removed (their writer is dead: it would
 * hold the lock).
 */
int repo_lock(struct repo *r, int timeout_ms);
void repo_unlock(struct repo *r);

/*
 * Open the object database afresh: after a maintenance pass removed
 * packs, the old handle keeps them mapped, and their bytes on disk
 * (objects.h).  0, or E_FAIL with the old one kept.
 */
int repo_reload_objects(struct repo *r);
/*
 * Let go of everything libgit2 holds for r until it is next used: its
 * object database (an open pack keeps its index mapped), the objects it
 * parsed, its refs and config, read again on the next use.  For a daemon
 * of many mailboxes, most of them idle at any moment: each mapping it
 * holds is copied by every fork of a child (doc/virtual.md).
 */
void repo_release(struct repo *r);

/* The repository's directory, as given to repo_open(); r keeps it. */
const char *repo_path(const struct repo *r);

/*
 * Read objects from objdir too (an objects directory: git's quarantine
 * of a push under way, which a pre-receive hook checks).  0 or E_FAIL.
 */
int repo_add_objects(struct repo *r, const char *objdir);

/* A file or directory under <repo>/maildag/; the caller frees it. */
char *repo_state_path(const struct repo *r, const char *name);

/* The commit a ref points at; E_NOTFOUND if the ref does not exist. */
int repo_ref_read(struct oid *out, struct repo *r, const char *ref);
/*
 * Move ref to id if it still points at old (old NULL: only if it does
 * not exist yet).  E_RACE if it moved meanwhile.
 */
int repo_ref_cas(struct repo *r, const char *ref, const struct oid *id,
		 const struct oid *old, const char *why);

/*
 * A peer's refs/peers/<node>/mail (net.h): 1 with its commit in *out; 0
 * when there is none, or it is not a plain ref (ignored, logged at
 * debug level: maildag never writes another kind); < 0 when it cannot be
 * read (logged).
 */
int repo_peer_ref_read(struct oid *out, struct repo *r, const char *node);

/* Called with a ref's full name; a non-zero return stops the walk. */
typedef int repo_ref_fn(const char *ref, void *data);

/*
 * Call fn with the name of every refs/peers/<node>/mail, packed or loose,
 * in byte order and each once, whether or not its node is configured.  A
 * loose ref file that libgit2 cannot parse is named too (libgit2's own
 * listing skips it; fsck reports it).  Returns fn's non-zero value, 0,
 * or E_FAIL (logged) when the refs cannot be listed.
 */
int repo_foreach_peer_ref(struct repo *r, repo_ref_fn *fn, void *data);

/* Write a file's bytes as a blob, streaming, with no filters. */
int repo_blob_from_file(struct oid *out, struct repo *r, const char *path);
/* The blob id a file's bytes would have, without writing anything. */
int repo_blob_hash_file(struct oid *out, const char *path);
int repo_blob_from_buffer(struct oid *out, struct repo *r, const void *data,
			  size_t len);
bool repo_object_exists(struct repo *r, const struct oid *id);
/*
 * The size of an object, from its header alone.  E_NOTFOUND when it is
 * absent, E_FAIL when it cannot be read; neither is logged (callers ask
 * about objects that may be gone, and have their own words for it).
 */
int repo_object_size(size_t *out, struct repo *r, const struct oid *id);
/*
 * Append the bytes of blob id to out.  E_NOTFOUND when it is absent or
 * not a blob, E_FAIL when it cannot be read; not logged, as above.
 */
int repo_blob_read(struct strbuf *out, struct repo *r, const struct oid *id);

/*
 * One change of a tree: blob at path, or path removed when blob is NULL;
 * with tree set, blob is the id of a tree put at path whole.
 */
struct repo_update {
	const char *path;
	const struct oid *blob;
	bool tree;
};

/*
 * The tree of base (NULL: the empty tree) with the updates applied, in
 * order (of two updates of one path the later wins); only the trees on
 * the changed paths are written, and a directory left empty is removed.
 * The ids given are not checked to exist.  See treeedit.c.
 */
int repo_tree_update(struct oid *out, struct repo *r, const struct oid *base,
		     const struct repo_update *ups, size_t n);
/*
 * Check a loose object left by a writer that may have crashed before
 * syncing it: it must inflate whole and hold the bytes of file expect
 * (a blob whose id was computed from that file) or, with expect NULL,
 * hash to id.  0 when it is whole (or packed); E_NOTFOUND when absent;
 * E_INVALID when it was damaged, and is now removed so that it can be
 * written again; E_FAIL when it could not be read.
 */
int repo_object_check(struct repo *r, const struct oid *id, const char *expect);

/* fsync a loose ref's file and its directory (for REPO_NO_FSYNC). */
int repo_sync_ref(struct repo *r, const char *ref);

/*
 * Make everything written so far on the repository's file system durable
 * with one syncfs(2): for bulk writes (an import, a merge, a commit of
 * thousands of renames) written with fsync off.  Refs move only after.
 */
int repo_syncfs(struct repo *r);

/* The tree id of a commit. */
int repo_commit_tree(struct oid *out, struct repo *r, const struct oid *commit);
/* The commit time of a commit, in seconds. */
int repo_commit_time(time_t *out, struct repo *r, const struct oid *commit);

/*
 * Write a commit of tree with parents.  when < 0 means now; name/email
 * NULL give maildag's own identity.
 */
int repo_commit(struct oid *out, struct repo *r, const struct oid *tree,
		const struct oid *parents, size_t nparents, const char *message,
		time_t when, const char *name, const char *email);

/* The blob id at path in tree, or E_NOTFOUND. */
int repo_tree_lookup(struct oid *out, struct repo *r, const struct oid *tree,
		     const char *path);

/* Called with an entry's name; a non-zero return stops the walk. */
typedef int repo_name_fn(const char *name, void *data);

/*
 * Call fn with the name of each entry of the tree at path in tree, in
 * tree order, until it returns non-zero.  fn's value, 0, or E_NOTFOUND
 * when path names no tree that can be read (not logged; a root tree that
 * cannot be read is, as by repo_tree_lookup()).
 */
int repo_tree_foreach_name(struct repo *r, const struct oid *tree,
			   const char *path, repo_name_fn *fn, void *data);

/*
 * Called by repo_log() for each commit, with its id, commit time and
 * message (valid for the call only); a non-zero return stops the walk.
 */
typedef int repo_log_fn(const struct oid *id, time_t time,
			const char *message, void *data);

/*
 * Walk the history of ref newest first (by commit time), calling fn for
 * each commit until it returns non-zero.  Returns fn's non-zero value,
 * 0 at the end of the history, or E_FAIL (logged) when ref or a commit
 * cannot be read.
 */
int repo_log(struct repo *r, const char *ref, repo_log_fn *fn, void *data);

/*
 * How many commits of local's history upstream's lacks (*ahead), and the
 * other way round (*behind); libgit2's git_graph_ahead_behind().
 */
int repo_ahead_behind(size_t *ahead, size_t *behind, struct repo *r,
		      const struct oid *local, const struct oid *upstream);

#endif
