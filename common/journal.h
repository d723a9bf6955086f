/*
 * journal: the delivery journal in maildag's state directory.  The
 * protocol, and the names of its files, are described once, at the top
 * of journal.c; this header is its API:
 *
 *  - a delivery (maildag-lda) publishes its entry, withdraws it when its
 *    deadline passes, and finds it gone or claimed once it has the lock
 *    (journal_publish, journal_withdraw, journal_entry_present);
 *  - a committer under the writer lock claims entries, whole-journal as
 *    maildag-lda's group commit (journal_claim_all) or one message at a
 *    time as maildag-syncd finds them on disk (journal_snapshot_claim),
 *    and removes each claim once its commit is durable (journal_done);
 *  - fsck lists the entries without touching them (journal_list).
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "oid.h"

struct repo;

/* The journal directory of repository r; the caller frees it. */
char *journal_dir(const struct repo *r);

/*
 * A delivery's own entry, as its writer holds it.  The paths are kept in
 * fixed buffers so that journal_withdraw() can run in a signal handler.
 */
struct journal_entry {
	char path[PATH_MAX];		/* <dir>/<blob id>-<key> */
	char claimed[PATH_MAX];		/* its name once a committer has it */
	char withdrawn[PATH_MAX];	/* its name while taken back */
	size_t name_off;		/* where the entry's name starts in path */
	int fd;				/* open and flocked while the writer lives */
};

/*
 * Publish the entry for a message with key whose bytes are blob, to be
 * renamed into folder's ("" INBOX) new/ as name.  Written and locked
 * under a name of its own, then renamed into place: an unlocked entry
 * always means a dead writer.  out->fd stays open and locked until
 * journal_entry_close().  Returns 0; E_INVALID (nothing written) when a
 * path would not fit; E_FAIL, logged.
 */
int journal_publish(struct journal_entry *out, const char *dir,
		    const struct oid *blob, const char *key, const char *folder,
		    const char *name);

/*
 * Take the delivery back unless a committer has claimed it: mark the
 * entry withdrawn (a rename), remove message (the file in new/, may be
 * NULL), then the entry.  Returns true when it was taken back.
 * Async-signal-safe.
 */
bool journal_withdraw(const struct journal_entry *e, const char *message);

/* Is e still in the journal, claimed or not (so not committed yet)? */
bool journal_entry_present(const struct journal_entry *e);

/* Remove e from the journal, claimed or not (the delivery failed). */
void journal_entry_remove(const struct journal_entry *e);

/* Close e's descriptor, which releases its lock; e's files stay. */
void journal_entry_close(struct journal_entry *e);

/* Does the journal hold an entry, in any state, for blob? */
bool journal_has_blob(const char *dir, const struct oid *blob);

/* Remove a claimed entry once its commit is durable (logs a failure). */
void journal_done(const char *claimed);

/* --- the group commit (maildag-lda) ------------------------------------ */

/* An entry claimed by journal_claim_all(), handed to its callback. */
struct journal_claim {
	char *path;	/* the claimed entry; journal_done() it once committed */
	struct oid blob;	/* the message's bytes, from the entry's name */
	char *folder;	/* where it was delivered: "" for INBOX */
	char *name;	/* its file name in that folder's new/ */
	bool alive;	/* its writer still runs (or is the caller: mine) */
	bool mine;	/* the caller's own entry */
};

void journal_claim_release(struct journal_claim *c);

enum journal_verdict {
	JOURNAL_COMMIT,		/* to be committed: the callback took *c */
	JOURNAL_GIVE_BACK,	/* its writer has yet to rename: unclaim it */
	JOURNAL_DROP,		/* nothing to commit: remove the entry */
};

typedef enum journal_verdict journal_claim_fn(struct journal_claim *c,
					      void *data);

/*
 * Under the writer lock: claim every entry of dir and hand each
 * to fn, which decides its fate; own is the caller's entry (its flock
 * says nothing about whether it lives) or NULL.  Also removes what dead
 * writers left half-way: an entry never published, and a withdrawn one
 * whose message (under maildir) was not removed yet.  An entry that
 * cannot be read is dropped with a warning.  Returns 0, or E_FAIL when
 * dir cannot be read (a missing dir is an empty journal).
 */
int journal_claim_all(const char *dir, const char *maildir,
		      const struct journal_entry *own, journal_claim_fn *fn,
		      void *data);

/* --- claiming as messages are found (maildag-syncd) -------------------- */

/* The entry names of a journal at one moment, sorted. */
struct journal_snapshot {
	char *dir;
	char **names;
	size_t n;
};

void journal_snapshot_read(struct journal_snapshot *out, const char *dir);
void journal_snapshot_release(struct journal_snapshot *s);

enum journal_found {
	JOURNAL_FOUND_NONE,	/* not a journalled delivery */
	JOURNAL_FOUND_CLAIMED,	/* claimed now (or by a committer that died) */
	JOURNAL_FOUND_WITHDRAWN,/* being taken back: leave it out */
	JOURNAL_FOUND_SIEVE,	/* written by a live Sieve delivery's
				   dovecot-lda: leave it out, maildag-lda
				   commits it */
};

/*
 * A message with key (klen bytes) and bytes blob was found on disk: is
 * it a delivery in the journal?  JOURNAL_FOUND_CLAIMED sets *claimed (the
 * caller frees it, and journal_done()s it once the commit is durable).
 */
enum journal_found journal_snapshot_claim(char **claimed,
					  struct journal_snapshot *s,
					  const struct oid *blob,
					  const char *key, size_t klen);

/* --- listing (fsck) ---------------------------------------------------- */

enum journal_state {
	JOURNAL_PUBLISHED,	/* waiting for a committer */
	JOURNAL_CLAIMED,	/* claimed by a committer */
	JOURNAL_WITHDRAWN,	/* being taken back by its writer */
};

struct journal_item {
	const char *path;	/* the entry's file */
	const char *target;	/* "[<folder>/]new/<name>"; NULL: unreadable */
	enum journal_state state;
	bool alive;		/* its writer still runs */
	bool sieve;		/* a Sieve entry: target is its path */
};

typedef void journal_list_fn(const struct journal_item *it, void *data);

/* Call fn for every entry of dir, in name order; reads, changes nothing. */
void journal_list(const char *dir, journal_list_fn *fn, void *data);

/*
 * Call fn with the blob id of every entry in the journal of the
 * repository at repo_path (a delivery under way has written its blob and
 * not yet its commit).  For a process without the repository open.
 */
typedef void journal_blob_fn(const struct oid *blob, void *data);
void journal_blobs(const char *repo_path, journal_blob_fn *fn, void *data);

/* --- Sieve deliveries (maildag-lda through dovecot-lda) -------------- */

#define JOURNAL_TOKEN_LEN 16	/* lowercase hex digits */

/* A Sieve entry: its path, its token, and (open) its descriptor. */
struct journal_sieve {
	char path[PATH_MAX];
	char token[JOURNAL_TOKEN_LEN + 1];
	int fd;			/* open and flocked by its holder; or -1 */
};

/* The token of a Sieve entry's name, or NULL if name is not one. */
const char *journal_sieve_token(const char *name);

/*
 * Publish the Sieve entry for input bytes blob and token (16 lowercase
 * hex digits): written, locked, fsynced with its directory.  out->fd is
 * inheritable: a child that keeps it keeps the entry alive.  Returns 0,
 * E_INVALID (path too long) or E_FAIL, logged.
 */
int journal_sieve_publish(struct journal_sieve *out, const char *dir,
			  const struct oid *blob, const char *token);

/*
 * The Sieve entry of blob in dir, if any: 0 none; 1 found and its
 * writers are dead (out->fd open and locked: the caller holds it now);
 * 2 found and a writer lives (out->fd open, not locked).
 */
int journal_sieve_find(struct journal_sieve *out, const char *dir,
		       const struct oid *blob);

/*
 * Does key end in the token of a Sieve entry of s whose writers are
 * dead?  Sets token.  (maildag-syncd: then the file is the client's, and
 * a lock the dead child left is cleared.)
 */
bool journal_snapshot_sieve_dead(const struct journal_snapshot *s,
				 const char *key, size_t klen,
				 char token[JOURNAL_TOKEN_LEN + 1]);

/*
 * A dovecot-lda killed in its commit leaves folder_dir's
 * dovecot-uidlist.lock naming its host, which Dovecot takes for another
 * machine's and honours for minutes: remove it if it is the token's
 * (whose processes are dead).  True when removed.
 */
bool journal_sieve_clear_lock(const char *folder_dir, const char *token);

/* Remove the entry and close its descriptor. */
void journal_sieve_remove(struct journal_sieve *e);

/* Close its descriptor (the entry stays). */
void journal_sieve_close(struct journal_sieve *e);

#endif
