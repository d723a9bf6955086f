/*
 * mtimes: the records that carry message mtimes (IMAP INTERNALDATE) in
 * the repository (DESIGN section 2, maildag-format(5)).
 *
 * git keeps no mtimes, so the root tree holds a subtree "mtimes/" of
 * blobs "mtimes/<xx>", <xx> being the message's shard (the same function
 * of the key as in "cur/<xx>/").  Each blob is a list of lines
 *
 *	<key> <seconds>\n
 *
 * sorted by key (byte order), one line per key, and only for messages
 * whose mtime differs from maildir_key_time(key) (the delivery time in
 * the usual names), so a mailbox delivered by maildag carries almost
 * none.  A shard with no record has no blob.  A line is split at its
 * first space (maildag-format(5)), so a message whose key holds a space
 * (a valid Maildir name may) gets no record: its mtime is not carried.
 * Seconds are a decimal integer without leading zeros, possibly negative.
 *
 * Invariant kept by every writer (the merge included): a record exists
 * only for a key present in the same tree.
 *
 * Also here: struct update_list, an owning list of repo_update for
 * callers that build one change set from several places.
 */
#ifndef MTIMES_H
#define MTIMES_H

#include <stdbool.h>
#include <stddef.h>

#include "repo.h"
#include "strbuf.h"

#define MTIMES_DIR "mtimes"
/* No mtime known: the key has no record and no time in it. */
#define MTIME_NONE (-(1LL << 62))

struct mtime_rec {
	char *key;		/* owned */
	long long mtime;
};

/* One shard's records, sorted by key, unique. */
struct mtimes {
	struct mtime_rec *v;
	size_t n, alloc;
};

#define MTIMES_INIT { NULL, 0, 0 }

/*
 * Parse a shard blob into out (which must be empty or MTIMES_INIT).
 * Lines out of order are sorted; of two lines for one key the smaller
 * time is kept.  E_INVALID (not logged) for a line that is not
 * "<key> <seconds>\n"; out is then empty.  *canonical (may be NULL) says
 * whether buf is exactly what mtimes_format() would write.
 */
int mtimes_parse(struct mtimes *out, const char *buf, size_t len,
		 bool *canonical);
void mtimes_release(struct mtimes *m);
/* Append the canonical shard blob of m (nothing when m is empty). */
void mtimes_format(struct strbuf *out, const struct mtimes *m);

/* The record of key, or NULL. */
const struct mtime_rec *mtimes_find(const struct mtimes *m, const char *key);
/*
 * The mtime a message with this key has: its record, else
 * maildir_key_time(key), else MTIME_NONE.
 */
long long mtimes_get(const struct mtimes *m, const char *key);
/*
 * Give key the mtime: a record when it differs from maildir_key_time(key),
 * none otherwise.  MTIME_NONE removes the record.
 */
void mtimes_set(struct mtimes *m, const char *key, long long mtime);
void mtimes_remove(struct mtimes *m, const char *key);
/* Does a message with this key and mtime need (and can it have) a record? */
bool mtimes_needed(const char *key, long long mtime);

/* Append "mtimes/<xx>" for a key, or for a shard number. */
void mtimes_path(struct strbuf *out, const char *key, size_t keylen);
void mtimes_shard_path(struct strbuf *out, unsigned shard);

/*
 * Read shard's records from tree (empty when the blob is absent).
 * E_INVALID (logged) when the blob is malformed.
 */
int mtimes_read_shard(struct mtimes *out, struct repo *r,
		      const struct oid *tree,
		      unsigned shard);

/* --- update lists ------------------------------------------------------ */

/* An owning list of tree changes; paths and blob ids belong to the list. */
struct update_list {
	struct repo_update *v;
	size_t n, alloc;
};

#define UPDATE_LIST_INIT { NULL, 0, 0 }

/* Add "set path to blob" (blob NULL: remove path); both are copied. */
void update_list_add(struct update_list *l, const char *path,
		     const struct oid *blob);
void update_list_release(struct update_list *l);

/* A change of one message's mtime, for mtimes_update(). */
struct mtime_change {
	const char *key;	/* the message key */
	long long mtime;	/* MTIME_NONE: the message is gone */
};

/*
 * Add to ups the updates of tree's mtimes/ blobs that give each key its
 * mtime (writing the new blobs); shards that do not change add nothing.
 * Each key at most once.  For a commit that adds, moves or removes
 * messages, pass every delivered message whose mtime is not its key
 * time, and every removed one with MTIME_NONE.
 */
int mtimes_update(struct update_list *ups, struct repo *r,
		  const struct oid *tree,
		  const struct mtime_change *ch, size_t n);

#endif
