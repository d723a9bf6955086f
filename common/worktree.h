/*
 * worktree: the Maildir on disk and its picture in the repository
 * (DESIGN sections 2 and 5).
 *
 * refs/maildag/worktree names a commit whose tree is what the Maildir
 * holds: every message file of every folder's cur/ and new/ at its tree
 * path, a maildirfolder marker for every folder but INBOX, the
 * subscriptions file, and an mtimes/ record for every message whose mtime
 * is not the time in its name.  This module keeps that true:
 *
 *  - worktree_commit() looks at what changed on disk since (the names the
 *    watcher reported, whole folders, or everything), compares it with the
 *    worktree tree -- diff(worktree, disk), never diff(mail, disk) -- and
 *    makes one commit of it on refs/heads/mail, then moves worktree to a
 *    commit whose tree is exactly the disk.  A file whose key the worktree
 *    already knows reuses that blob (Maildir messages are immutable); only
 *    new keys are read.  When mail has moved on since the disk was last
 *    written (an apply pending or cut short), the local change is merged
 *    into it three ways against the worktree tree (merge_trees(), the
 *    rules every replica uses).  A message maildag-lda renamed into new/
 *    and has not committed yet is claimed through its journal and
 *    committed as a delivery (journal.h, delivery.h).  A second file with a key the
 *    mailbox already holds (Dovecot's COPY keeps the name) is given a key
 *    of its own, "<key>.c<8 hex>", once it is clearly not half of a move.
 *    A file that cannot be read is left out, logged once, and looked at
 *    again by every commit (worktree_unreadable()).
 *  - worktree_apply() writes diff(worktree, mail) to disk as a mail server
 *    would: new messages through tmp/, fsync and rename, flag changes and
 *    moves as renames, expunges as unlinks, each only when the file is
 *    still the one the worktree names.  A key whose bytes changed is
 *    written anew (tmp/, fsync, rename), the old file then removed: never
 *    renamed, which would leave the old bytes under the new name.  Then worktree moves to what the
 *    disk now holds.  A change the mail client beat us to is left alone;
 *    the client's version is committed by the next worktree_commit() and
 *    merged.
 *
 * Crash safety: worktree moves only after the disk (and its directories,
 * fsynced) holds what it will say.  After a crash in the middle of an
 * apply the disk holds part of diff(worktree, mail); the next commit sees
 * those parts as local changes equal to what mail already has, which
 * change nothing in mail, and the apply finishes the rest.  A message the
 * apply has not written yet is absent from both the disk and the worktree,
 * so it is never committed as deleted.
 *
 * Both calls must be made holding the writer lock (repo_lock), as
 * maildag-lda holds it when it commits deliveries and records them in the
 * worktree (a delivery it renamed into new/ before taking the lock has a
 * journal entry, which whoever holds the lock claims and commits).  The
 * dirty-marking calls need no lock.
 *
 * folder_limit (format.h, maildag.conf(5)) holds for what this replica
 * commits as for what it takes in from peers: a tree this replica commits
 * is never one its peers would refuse for its folders.  Counted on mail's
 * tree, INBOX always counted: the folders it holds stay; a folder on
 * disk it lacks is admitted while there is room, in name order when a
 * look at the root decides (a folder met through an event is admitted at
 * once only when every folder that look could reach fits too).  The
 * rest are left out: nothing of them is read, committed or told to the
 * watcher, nothing on disk is changed; worktree_left_out() counts them,
 * and the log says so once when the count changes.  Room made later
 * (folders gone, from the disk or by an apply; a limit raised and
 * worktree_dirty_all()) takes them in by the next look at the root.
 *
 * Folders are named by their directory: "" for INBOX, ".Name" otherwise
 * (folder.h).
 */
#ifndef WORKTREE_H
#define WORKTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "repo.h"

struct worktree;

/* What one step did, for logs and tests. */
struct worktree_counts {
	size_t added;		/* messages that are new */
	size_t expunged;	/* messages that are gone */
	size_t moved;		/* to another folder or between new/ and cur/ */
	size_t flagged;		/* same place, another name */
	size_t mtimes;		/* mtime changes alone */
	size_t folders_added;
	size_t folders_removed;
	size_t other;		/* subscriptions */
};

struct worktree_result {
	bool committed;		/* commit: refs/heads/mail moved */
	struct oid mail;	/* refs/heads/mail after the step */
	struct worktree_counts counts;
	size_t skipped;		/* apply: changes the disk no longer allowed */
	size_t deferred;	/* commit: names to look at again later */
	size_t unreadable;	/* commit: files skipped, unreadable */
	bool more;		/* stopped at the limit or the slice; call again */
};

/*
 * A worktree for the Maildir at maildir, committing into r (which the
 * caller keeps open and frees after worktree_free()).  node names this
 * replica in commit identities.  Nothing is read yet.
 */
struct worktree *worktree_new(struct repo *r, const char *maildir,
			      const char *node);
void worktree_free(struct worktree *wt);

/*
 * Commits of local changes say "<origin>: 3 added, ..." ("mail client"
 * unless set; maildag init says "import existing Maildir").
 */
void worktree_set_origin(struct worktree *wt, const char *origin);

/*
 * Format 2: the UID slot (0-6) this replica numbers messages from
 * (maildag.conf(5) uid_slot); -1, the default, claims one through the
 * tree's uidslots (doc/imap-identity.md 4.3).
 */
void worktree_set_uid_slot(struct worktree *wt, int slot);

/*
 * The files the last worktree_commit() could not read (permissions, a
 * symlink put in place of a message): "<folder>/<sub>/<name>", or
 * "subscriptions".  Such a file is skipped, never a reason to stop
 * committing the rest; it is logged once, looked at again by every
 * commit, and committed once it can be read.  Valid until the next
 * commit.
 */
const char *const *worktree_unreadable(const struct worktree *wt, size_t *n);

/* --- what may have changed (no lock needed) ---------------------------- */

/*
 * A function that reads the change notifications pending right now,
 * without blocking, and marks wt with them (the daemon's inotify reader).
 * worktree_commit() calls it before it looks at the disk and again after:
 * when something changed meanwhile, a listing may have missed a file that
 * was being renamed, so what looks deleted is not committed in that round
 * but looked at again.  Without one, the disk is taken to be still.
 */
typedef void worktree_poll_fn(void *data);
void worktree_set_poll(struct worktree *wt, worktree_poll_fn *fn, void *data);

/*
 * A function told of each folder of the mailbox a commit is about to
 * look at whole (on_disk), or found gone (!on_disk): the daemon sets up
 * a folder's inotify watches there, before its directories are read, so
 * nothing changes unseen.  Folders folder_limit leaves out are never
 * told of.
 */
typedef void worktree_folder_fn(void *data, const char *folder, bool on_disk);
void worktree_set_folder_fn(struct worktree *wt, worktree_folder_fn *fn,
			    void *data);

/*
 * How many folders on disk the last whole look at the root left out
 * (folder_limit): not committed, not told to the folder function.
 */
size_t worktree_left_out(const struct worktree *wt);

/*
 * May a message delivered into folder be committed: does refs/heads/mail
 * of the repository at path hold folder, or room for one more under
 * folder_limit?  true when that cannot be told (no repository or
 * history yet, or it cannot be read).  For maildag-lda,
 * which delivers into INBOX instead of a folder left out.
 */
bool worktree_folder_fits(const char *repository, const char *folder);

/*
 * Bound each step to about seconds of work (0, the default: no bound), so
 * that a caller holding the writer lock can let it go between steps.  A
 * full rescan, and any number of marked folders, are then looked at a
 * slice at a time (the rest stay queued or marked; res->more says so),
 * and an apply stops after that long.  Each
 * slice commits what it saw, holding back every removal that no addition
 * in the slices so far explains: it may be half of a move into a folder
 * the rescan has not reached yet, and is looked at again after the last
 * folder.
 */
void worktree_set_slice(struct worktree *wt, double seconds);

/* The file name in folder's sub ("cur" or "new") changed in some way. */
void worktree_dirty_name(struct worktree *wt, const char *folder,
			 const char *sub, const char *name);
/* Anything in folder may have changed, or the folder came or went. */
void worktree_dirty_folder(struct worktree *wt, const char *folder);
/* The Maildir root changed: the subscriptions file, the folder list. */
void worktree_dirty_root(struct worktree *wt);
/* Anything may have changed (start, inotify queue overflow, doubt). */
void worktree_dirty_all(struct worktree *wt);
/* Is there anything to look at? */
bool worktree_is_dirty(const struct worktree *wt);
/*
 * When names held back (a copy that may be half of a move) are due again,
 * in CLOCK_MONOTONIC seconds; 0 when none is held back.
 */
double worktree_deferred_due(const struct worktree *wt);

/* --- the two steps (writer lock held) ---------------------------------- */

/*
 * Commit what changed on disk: one commit on refs/heads/mail (parent: the
 * current mail) holding the change, then refs/maildag/worktree to the
 * disk's tree.  With nothing changed nothing is written.  res may be
 * NULL.  E_TEMP when a file or object could not be read or written (the
 * dirty marks are kept for a retry), E_RACE when a ref moved without the
 * lock.
 */
int worktree_commit(struct worktree *wt, struct worktree_result *res);

/*
 * Apply diff(worktree, mail) to the disk, at most limit message changes
 * (0: no limit; res->more says whether some are left), and move
 * refs/maildag/worktree to what the disk then holds.  Changes the mail
 * client made first are skipped and their names marked dirty, so the next
 * worktree_commit() records the client's version.  res may be NULL.
 */
int worktree_apply(struct worktree *wt, size_t limit,
		   struct worktree_result *res);

/* Does the worktree differ from refs/heads/mail (is there work to apply)? */
int worktree_pending(struct worktree *wt, bool *out);

/*
 * maildag-lda put the n messages of ups on disk and committed them:
 * commit on refs/heads/mail, whose parent has the tree before.  Record
 * them in refs/maildag/worktree, and no more: the worktree moves to
 * commit when its tree was before, else the n entries are added to its
 * tree in a commit of its own.  Never pointed at a commit whose other
 * changes the caller did not put on disk.  Not synced: if it is lost,
 * maildag-syncd finds the files on disk and commits them again, which
 * changes nothing.  who and email name the committer.  Returns 0, or
 * E_FAIL after a warning (the delivery stands either way).
 */
int worktree_record_added(struct repo *r, const struct oid *before,
			  const struct oid *commit,
			  const struct repo_update *ups, size_t n,
			  const char *who, const char *email);

/* --- format 2: Dovecot's files (worktree_dovecot.c) ----------------------- */

/*
 * maildag-lda's delivery into a format 2 repository whose mail has tree
 * (doc/imap-identity.md 4.1): under folder's uidlist lock, a UID from
 * this node's slot (uid_slot, or its uidslots line in tree, or the
 * lowest free slot) above Dovecot's next UID and the tree's uidnext is
 * appended to dovecot-uidlist for dest's base name, then tmp is renamed
 * to dest; the lock goes after.  Dovecot never numbers the message
 * itself.  0; E_TEMP when the lock stays held (nothing done); E_FAIL
 * (logged) otherwise.
 */
int worktree_dovecot_deliver(struct repo *r, const struct oid *tree,
			     const char *maildir, const char *folder,
			     const char *node, int uid_slot, const char *tmp,
			     const char *dest);

/*
 * The format 2 records of messages put on disk outside the worktree's
 * commit (maildag-lda's group commit): for each names[i] (a file name
 * on disk, with its letters) in folders[i], its imap/<xx> record from
 * the folder's dovecot-uidlist and dovecot-keywords, read under the
 * lock (a file without a uidlist record gets one from this node's slot),
 * the folder records raised, and this node's uidslots line when tree
 * lacks it: added to ups as updates of tree.  0, or E_TEMP (logged).
 */
struct update_list;
struct strbuf;
int worktree_dovecot_records(struct update_list *ups, struct repo *r,
			     const struct oid *tree, const char *maildir,
			     const char *node, int uid_slot,
			     const char *const *folders,
			     const char *const *names, size_t n);

/* Format 2: append a file name on disk in sub ("cur", "new") without its
 * keyword letters (wt_dv_tree_name()). */
void worktree_dovecot_tree_name(struct strbuf *out, const char *sub,
				const char *disk);

/* --- the Maildir ------------------------------------------------------- */

/*
 * Is name (a file in the Maildir root or in a folder directory, beside
 * cur/ and new/) per-server state that is never tracked: Dovecot's and
 * Courier's indexes and lists, dovecot-keywords, maildirsize, lock files,
 * tmp/, dot files?  (Folders are never ignored by name: a user may call
 * one anything valid.)
 */
bool worktree_ignored_name(const char *name);

#endif
