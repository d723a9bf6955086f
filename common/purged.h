/*
 * purged: the set of purged blob ids a tree records (doc/purge.md 3.1,
 * maildag-format(5) "Purged blobs").
 *
 *	purged/<xx>	"<40 hex>\n" lines: the purged blob ids whose
 *			first two hex digits are <xx>, sorted, unique,
 *			lowercase; no blob for an empty shard
 *
 * A purged blob is one whose bytes every replica deletes: its commits
 * and trees stay, so histories keep their ids, and a tree naming it is
 * still valid where some trusted tree lists it.  The set only grows; two
 * sets merge by union; no message of a tree has a blob its set lists
 * (purge wins over everything in the merge, an add or a restore
 * included).  The shard is the blob id's, not the message key's: the
 * same bytes under two keys are one line.
 *
 * Invariants: sets in memory are sorted and unique (purged_add() keeps
 * them so); the bytes of a shard are a pure function of the set, so two
 * replicas recording one purge write the same blob.
 */
#ifndef PURGED_H
#define PURGED_H

#include <stdbool.h>
#include <stddef.h>

#include "oid.h"
#include "repo.h"
#include "strbuf.h"

#define PURGED_DIR "purged"
#define PURGED_LINE (OID_HEXSZ + 1)

struct purged {
	struct oid *v;		/* sorted, unique */
	size_t n, alloc;
};

#define PURGED_INIT { NULL, 0, 0 }

void purged_release(struct purged *p);

/* Is id in the set?  A binary search. */
bool purged_has(const struct purged *p, const struct oid *id);

/* Add id (nothing when it is there). */
void purged_add(struct purged *p, const struct oid *id);

/* out gets every id of add. */
void purged_union(struct purged *out, const struct purged *add);

/* Are the two sets the same? */
bool purged_equal(const struct purged *a, const struct purged *b);

/*
 * Check the bytes of purged/<xx> (shard: its value) and add their ids
 * to out (may be NULL: check only).  0, or E_INVALID with the reason
 * appended to err ("line 2: ids not sorted").  An empty blob is invalid
 * (an empty shard has no blob).
 */
int purged_parse(struct purged *out, const char *buf, size_t len,
		 unsigned shard, struct strbuf *err);

/* The bytes of shard x of p ("" when it holds none of x). */
void purged_format_shard(struct strbuf *out, const struct purged *p,
			 unsigned x);

/*
 * Add tree's set to out (a tree without purged/ has none).  0, E_INVALID
 * (logged) when a record is malformed, E_FAIL when one cannot be read.
 */
int purged_read(struct purged *out, struct repo *r, const struct oid *tree);

/*
 * Add to out the ids of tree's shard x (the blob purged/<xx>).  Same
 * returns as purged_read().
 */
int purged_read_shard(struct purged *out, struct repo *r,
		      const struct oid *tree, unsigned x);

/*
 * The id of tree's purged/ subtree; E_NOTFOUND when it has none.  Two
 * trees with the same id there record the same set.
 */
int purged_dir_id(struct oid *out, struct repo *r, const struct oid *tree);

struct update_list;

/*
 * Add to ups the changes that turn the records of old (tree's set) into
 * those of p, writing the new blobs: only shards that differ.  0, or
 * E_FAIL.
 */
int purged_updates(struct update_list *ups, struct repo *r,
		   const struct purged *old, const struct purged *p);

#endif
