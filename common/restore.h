/*
 * restore: bring removed messages and folders back into the Maildir, as
 * an ordinary change that replicates (maildag restore and maildag undo).
 *
 * What comes back is written the way a mail client writes a message,
 * and committed the one way every local change is committed: under the
 * writer lock (repo_lock), each message is written into its folder's
 * tmp/, fsynced, given the mtime it had (its IMAP INTERNALDATE), and
 * renamed into cur/ or new/ under the name it had (its flags), and the
 * folder is created when it is gone (cur/ new/ tmp/ and its
 * maildirfolder marker); then worktree_commit() (worktree.h), the
 * function maildag-syncd commits a mail client's changes with, commits
 * exactly those names, before the lock is let go.  A running
 * maildag-syncd therefore never sees the files half committed: it waits
 * for the lock, and finds them already in refs/maildag/worktree.  Its
 * push of refs/heads/mail takes the change to every peer, whose syncd
 * writes the files, mtimes included, as for any other change.
 *
 * Only what the mailbox lacks is written: a message whose key or bytes
 * refs/heads/mail holds now (restored already, moved elsewhere, never
 * gone) is counted as present and left alone; a file already at the
 * name is never replaced.  The T (trashed) flag a message had when it was
 * expunged is not given back: a message restored with it would be
 * expunged again by the client's next EXPUNGE.
 *
 * Large restores are cut into batches of RESTORE_BATCH messages, each
 * its own commit, with the lock let go between them so that deliveries
 * are not held up.
 */
#ifndef RESTORE_H
#define RESTORE_H

#include <stdbool.h>
#include <stddef.h>

#include "expunged.h"
#include "mailbox.h"
#include "repo.h"

#define RESTORE_BATCH 500	/* messages per commit */

struct restore;

/* A restore into mb's Maildir, committing into r (both borrowed). */
struct restore *restore_new(const struct mailbox *mb, struct repo *r);
void restore_free(struct restore *rs);	/* NULL is a no-op */

/*
 * Bring message m back where it was (its folder, cur/ or new/, its
 * name), with mtime (MTIME_NONE, mtimes.h: the time its name gives).
 * The strings are copied.
 */
void restore_add(struct restore *rs, const struct mail_msg *m,
		 long long mtime);

/*
 * Undo a move or a change of flags: the message now at now (when the
 * disk still holds it there) goes back to was.
 */
void restore_add_move(struct restore *rs, const struct mail_msg *now,
		      const struct mail_msg *was);

/* Have folder exist, with or without messages. */
void restore_add_folder(struct restore *rs, const char *folder);

/* Have this line in the Maildir's subscriptions file. */
void restore_add_subscription(struct restore *rs, const char *line);

struct restore_result {
	size_t written;		/* messages written back */
	size_t present;		/* asked for, and the mailbox holds them */
	size_t moved;		/* moves and flag changes undone */
	size_t not_moved;	/* ... not: the message is elsewhere now */
	size_t folders;		/* folders created */
	size_t subscriptions;	/* lines added */
	size_t commits;		/* commits made on refs/heads/mail */
	char commit[CHANGE_HEX];	/* refs/heads/mail after, "" none */
};

/*
 * Do it: write, commit with the message "<origin>: N added, ..." (as
 * maildag-syncd words its commits), a batch at a time.  res is filled in
 * (zeroed first).  0, or E_TEMP (logged) when the lock, a file or the
 * commit failed: what was committed before stays, and running the same
 * restore again finishes it (what is there already is left alone).
 */
int restore_run(struct restore *rs, const char *origin,
		struct restore_result *res);

#endif
