/*
 * expunged: the mailbox's history read in mail terms, for finding what
 * was removed and bringing it back (maildag log --expunged, restore,
 * undo) and for the mass-deletion alarm (alarm.h).
 *
 * A change is a commit of refs/heads/mail's history read against its
 * first parent: a client's expunge, a folder deleted, an rm -rf seen by
 * maildag-syncd, a peer's change merged in.  A change is named by its
 * commit id, or by a prefix of it as `maildag log` prints it (ten hex
 * digits); it is the same commit, so the same name, on every replica.
 * Merge commits are not changes of their own: what a merge removes, a
 * change on one of its sides removed, and that change is in the history
 * too.
 *
 * Per message key (maildir_name.h), a change
 *  - expunged a message when the parent's tree holds the key and the
 *    change's tree holds it nowhere (no folder, neither cur/ nor new/),
 *    nor its bytes under a key the change added;
 *  - moved it (another folder, new/ <-> cur/, other flags) when both hold
 *    the key, at different paths, or when the change added its bytes
 *    under a new key (a client's MOVE that copies under a new name and
 *    expunges the original);
 *  - removed a folder when the parent's tree holds the folder's
 *    directory and the change's does not (its messages are expunged by
 *    the same change, or moved elsewhere).
 * A message whose key or bytes the mailbox holds now (refs/heads/mail)
 * is not "removed", whatever its history: it is there.
 *
 * The cost of reading one change is O(changed shards), as for the merge:
 * subtrees with equal ids are not read.  Finding removed messages walks
 * the whole history (or back to a time), reading every change.
 *
 * Invariants: everything here only reads the repository.  The interface
 * speaks plain C: commit and blob ids are 40-digit lowercase hex strings.
 */
#ifndef EXPUNGED_H
#define EXPUNGED_H

#include <stdbool.h>
#include <stddef.h>

#include "repo.h"

#define CHANGE_HEX 41		/* a commit or blob id in hex, and its NUL */
#define CHANGE_SHORT 10		/* the hex digits `maildag log` prints */

/* One message as a tree holds it. */
struct mail_msg {
	char *folder;		/* "" for INBOX, else ".Name" (folder.h); owned */
	const char *sub;	/* "cur" or "new" (static) */
	char *name;		/* the file name; owned */
	char blob[CHANGE_HEX];	/* the message's blob id */
};

void mail_msg_release(struct mail_msg *m);

/* What one change did. */
struct change {
	char id[CHANGE_HEX];
	char parent[CHANGE_HEX];	/* the first parent; "" for a root */
	size_t nparents;
	long long time;			/* commit time, seconds */
	char *subject;			/* its message's first line */
	char *committer;		/* the committer's e-mail address */
	struct mail_msg *expunged;	/* as the parent held them */
	size_t nexpunged;
	struct mail_msg *from, *to;	/* moved: from[i] became to[i] */
	size_t nmoved;
	char **folders_gone;		/* folder directories the parent held */
	size_t nfolders_gone;
};

/*
 * Read the change commit id makes against its first parent (against an
 * empty tree for a root commit).  A merge commit is read the same way,
 * against its first parent, with nparents saying what it is.  Free with
 * change_release().  0, E_NOTFOUND (logged) when id names no commit, or
 * E_FAIL (logged).
 */
int change_read(struct change *out, struct repo *r, const char *id);
void change_release(struct change *c);

/*
 * The commit of refs/heads/mail's history that name (a full id or a
 * prefix of at least four hex digits) names, in out.  E_NOTFOUND or
 * E_INVALID (ambiguous, not hex, not in the mailbox's history), logged
 * with the reason.
 */
int change_resolve(char out[CHANGE_HEX], struct repo *r, const char *name);

/*
 * The messages of folder ("" INBOX) in commit's tree (cur/ and new/).
 * 0 with *out, or E_FAIL.
 */
int change_folder_size(size_t *out, struct repo *r, const char *commit,
		       const char *folder);

/*
 * Called for each change of a walk, newest first; a non-zero return stops
 * the walk and is returned by it.
 */
typedef int change_fn(const struct change *c, void *data);

/*
 * The changes (merge commits left out) in the history of tip that hide
 * (NULL: none) does not hold, newest first by commit time, at most max of
 * them (0: no bound), stopping at the first one older than since (a
 * time; LLONG_MIN: none).  0, fn's return, or E_FAIL.
 */
int change_walk(struct repo *r, const char *tip, const char *hide, size_t max,
		long long since, change_fn *fn, void *data);

/* --- what was removed ------------------------------------------------ */

/* Which messages to look for; every set field must match. */
struct expunged_filter {
	const char *folder;	/* a folder directory ("" INBOX), or NULL */
	const char *from;	/* in From:, without regard to case */
	const char *subject;	/* in Subject:, without regard to case */
	const char *message_id;	/* the Message-ID, with or without <> */
	long long since, until;	/* removed (expunged_find) in [since, until];
				   LLONG_MIN, LLONG_MAX: no bound */
	size_t max;		/* messages at most; 0: all */
};

/* Every field matches. */
void expunged_filter_init(struct expunged_filter *f);

/* A message that was removed, and where it can be taken back from. */
struct expunged {
	struct mail_msg msg;		/* where it was, as it was */
	char change[CHANGE_HEX];	/* the change that removed it ("":
					   none, a snapshot's message) */
	char source[CHANGE_HEX];	/* the commit it is read from (the
					   change's parent, or the snapshot) */
	long long time;			/* when the change was made */
	long long mtime;		/* its mtime (INTERNALDATE) there;
					   MTIME_NONE when unknown */
	unsigned long long size;	/* bytes */
	char *from, *subject, *message_id;	/* header fields, "" absent */
	bool folder_gone;		/* the change removed its folder */
	bool purged;			/* its bytes are purged (purged.h):
					   it cannot come back; the header
					   fields are "" */
};

typedef int expunged_fn(const struct expunged *e, void *data);

/*
 * The messages removed from the mailbox that match f, newest removal
 * first: each message (key) once, at its last removal, and none whose
 * key refs/heads/mail holds now.  fn's non-zero return stops the walk
 * and is returned; 0 at the end, or E_FAIL.
 */
int expunged_find(struct repo *r, const struct expunged_filter *f,
		  expunged_fn *fn, void *data);

/*
 * The messages of commit's tree matching f (its time bounds are not
 * used) whose key refs/heads/mail does not hold now, in tree order:
 * what the mailbox lost since commit.  change is "" in what fn gets.
 */
int expunged_in_snapshot(struct repo *r, const char *commit,
			 const struct expunged_filter *f, expunged_fn *fn,
			 void *data);

/*
 * The messages change c expunged, each with its mtime in c's parent and
 * its header fields, in the order c lists them; f may be NULL (all).
 */
int expunged_of_change(struct repo *r, const struct change *c,
		       const struct expunged_filter *f, expunged_fn *fn,
		       void *data);

/*
 * The lines of the subscriptions file in commit's tree (none when it has
 * none), as a new NULL-terminated array of new strings; free with
 * expunged_lines_free().  0 or E_FAIL.
 */
int expunged_subscriptions(char ***out, struct repo *r, const char *commit);
void expunged_lines_free(char **v);

/*
 * The mailbox as it was at time when: the newest commit on
 * refs/heads/mail's first-parent line made at or before when.
 * E_NOTFOUND (logged) when the history starts later.
 */
int expunged_snapshot_at(char out[CHANGE_HEX], struct repo *r, long long when);

/*
 * Does refs/heads/mail hold a message with the key of name anywhere?
 * For callers that check a few; 1, 0 or E_FAIL.
 */
int expunged_key_present(struct repo *r, const char *name);

/*
 * What refs/heads/mail holds now, for callers that check many messages:
 * every message key, and every message blob id as "." and its hex
 * digits (a key never starts with '.'), put into keys (values 0).  A
 * message is in the mailbox when either is there (expunged_held()).
 * 0 or E_FAIL.
 */
struct strmap;
int expunged_mail_keys(struct strmap *keys, struct repo *r);

/*
 * Does keys (expunged_mail_keys()) hold the message with this name or
 * these bytes (blob, hex)?  With claim, it holds it from now on.
 */
bool expunged_held(struct strmap *keys, const char *name, const char *blob,
		   bool claim);

#endif
