/*
 * format_p: what the parts of the format check share, and nothing
 * outside common/format*.c may use.
 *
 *	format.c		the limits, the checker and its reports, the
 *				entry points, walking a tree's messages
 *	format_raw.c		a set of byte strings, raw tree objects read
 *				and parsed, mtimes records
 *	format_levels.c		the levels of a tree: root, folder, cur|new,
 *				shard, message; mtimes
 *	format_imap.c		what format 2 adds: IMAP records, matched
 *				against the messages
 *	format_imap_since.c	that match against an ancestor's tree, for
 *				what changed only
 */
#ifndef FORMAT_P_H
#define FORMAT_P_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "oid.h"
#include "purged.h"
#include "repo_p.h"
#include "strbuf.h"

#define NAME_MAX_BYTES 255
#define FORMAT_MAX 64			/* bytes worth reading of FORMAT */
#define SHOW_MAX 512			/* bytes of a path shown in a message */
#define EMPTY_BLOB_HEX "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
/* the largest entry of a valid tree: "100644 " <255 bytes> NUL <id> */
#define ENTRY_MAX (7 + NAME_MAX_BYTES + 1 + OID_RAWSZ)

/* What a tree may hold (format_set_limits()). */
extern struct format_limits fmt_limits;

/* --- byte strings, raw trees, mtimes records (format_raw.c) ------------- */

/* A set of byte strings, each with a value (keys and paths met). */
struct slot {
	char *key;		/* NULL: empty */
	size_t len;
	char *val;
	uint64_t hash;
};

struct strset {
	struct slot *s;
	size_t n, cap;		/* cap is 0 or a power of two */
};

/* One entry of a raw tree object, pointing into its bytes. */
struct rentry {
	const char *name;	/* NUL-terminated inside the object's bytes */
	size_t nlen;
	const char *mode;	/* not terminated */
	size_t mlen;
	bool dir;		/* the mode says directory (for git's order) */
	struct oid id;
};

/* A tree object read raw, and its entries as written. */
struct rtree {
	git_odb_object *obj;
	struct rentry *e;
	size_t n, alloc;
};

/* The value of key (len bytes), or NULL when the set lacks it. */
const char *fmt_strset_get(const struct strset *ss, const char *key,
			   size_t len);

/* Add key with a copy of val; if key is there already, return its value. */
const char *fmt_strset_add(struct strset *ss, const char *key, size_t len,
			   const char *val);

void fmt_strset_release(struct strset *ss);

/* Free the object and the entries; t is empty. */
void fmt_rtree_release(struct rtree *t);

/* Is e's mode, as written, exactly mode? */
bool fmt_mode_is(const struct rentry *e, const char *mode);

static inline bool fmt_is_blob(const struct rentry *e)
{
	return fmt_mode_is(e, "100644");
}

static inline bool fmt_is_tree(const struct rentry *e)
{
	return fmt_mode_is(e, "40000");
}

/* Called for each good line of an mtimes record. */
typedef void record_fn(const char *key, size_t klen, unsigned line,
		       void *data);

/* Is e's name exactly name? */
bool fmt_name_is(const struct rentry *e, const char *name);

/* What rtree_parse() says when a tree has more entries than allowed. */
extern const char fmt_too_many[];

/*
 * Parse a tree object's bytes, at most max entries; NULL, or why they
 * are not a tree (too_many when there are more than max).
 */
const char *fmt_rtree_parse(struct rtree *t, const char *p, size_t len,
			    size_t max);

/* git's order: names compared bytewise, a directory as if it ended in '/' */
int fmt_entry_cmp(const struct rentry *a, const struct rentry *b);

/*
 * The entry of a (trusted) tree with this name and kind, or NULL.  A
 * binary search, so an unsorted trusted tree only makes more work (an
 * entry not found is checked as new), never a wrong answer.
 */
const struct rentry *fmt_rtree_find(const struct rtree *t,
				    const struct rentry *like);

/* The entry of t (may be NULL) named name, or NULL; a linear search. */
const struct rentry *fmt_rtree_lookup(const struct rtree *t,
				      const char *name);

/*
 * Check an mtimes record (see format_mtimes_check()), calling fn (may be
 * NULL) for each line's key once the line is known good.
 */
int fmt_scan_records(const char *buf, size_t len, const char *xx,
		     struct strbuf *err, record_fn *fn, void *data);

/* --- the checker (format.c) ----------------------------------------------- */

/* One check of a tree: how it reports, and what it met so far. */
struct checker {
	git_odb *odb;
	bool all;			/* report every problem, not the first */
	format_problem_fn *fn;
	void *data;
	int problems;
	int fatal;			/* E_TEMP once an object read failed */
	bool stop;			/* nothing more to check */
	bool incremental;		/* a trusted tree was given */
	bool ancestor;			/* ... and it is an ancestor's
					   (fmt_imap_since()) */
	struct strbuf path;		/* raw path of the tree being checked */
	struct strset keys;		/* key -> path, of the checked shards */
	struct strset changed;		/* "<folder>/<sub>/<xx>" checked */
	bool affected[256];		/* shard numbers checked somewhere */
	bool imap_affected[256];	/* imap/<xx> changed (format 2) */
	bool bad_records[256];		/* mtimes/<xx> refused already */
	struct strset seen;		/* keys of unchanged trees of them */
	struct format_stats st;
	bool merge;			/* check limits.merge_bytes */
	int version;			/* FORMAT's; 0 until it is read */
	const struct oid *trusted;	/* the trusted root, or NULL */
	struct added {			/* message blobs new by path */
		struct oid id;
		unsigned long long size;
	} *add;
	size_t nadd, aladd;
	unsigned long long added;	/* their sizes summed */
	struct kept_shard *kept;	/* fmt_imap_keep_shard() */
	size_t nkept, alkept;
	struct rtree imap_n, imap_t;	/* imap/ of both, when it changed */
	git_odb_object *imap_blob[256];	/* the imap/<xx> that changed */
	/* purged/ (format_purged.c): 0 the checked tree's, 1 the trusted */
	struct rtree ptree[2];
	struct purged pset[2];		/* the shards read so far */
	bool ploaded[2][256];
	struct purged pnew;		/* listed here, not in trusted */
};

/* Append a formatted line to a caller's buffer. */
__attribute__((format(printf, 2, 3)))
void fmt_errf(struct strbuf *err, const char *fmt, ...);

/* Escape a path for a message, cut to SHOW_MAX bytes. */
void fmt_show_path(struct strbuf *out, const char *p, size_t len);

/* A problem at the entry name of the tree being checked. */
__attribute__((format(printf, 4, 5)))
void fmt_report(struct checker *ck, const char *name, size_t nlen,
		const char *fmt, ...);

/* A problem at a full raw path. */
__attribute__((format(printf, 3, 4)))
void fmt_report_path(struct checker *ck, const char *path,
		     const char *fmt, ...);

/* Go down into entry e: ck->path gets "/<name>"; returns what
 * fmt_path_pop() takes to come back. */
size_t fmt_path_push(struct checker *ck, const struct rentry *e);
void fmt_path_pop(struct checker *ck, size_t old);

/*
 * Reading the object id named by entry name (NULL: the tree being
 * checked) failed: a problem of the tree (1), or a transient failure of
 * this host (E_TEMP).
 */
int fmt_read_failed(struct checker *ck, const char *name, size_t nlen,
		    const struct oid *id, int err, const char *what);

/*
 * Read the tree named by entry e (of the tree being checked) or, with e
 * NULL, the root tree id.  0, 1 after reporting a problem, or E_TEMP.
 */
int fmt_read_tree(struct checker *ck, struct rtree *out,
		  const struct rentry *e, const struct oid *id);

/* Read a tree we only trust, not check: failures leave it empty. */
void fmt_read_trusted(struct checker *ck, struct rtree *out,
		      const struct oid *id);

/* The blob named by e exists and is a blob.  0, 1 (problem), E_TEMP. */
int fmt_check_blob_object(struct checker *ck, const struct rentry *e,
			  size_t *size);

/*
 * What every entry must satisfy: a sane name, a mode maildag writes, and
 * git's order after prev.  Returns false after reporting a problem.
 */
bool fmt_check_entry(struct checker *ck, const struct rentry *e,
		     const struct rentry *prev);

/* Is e a tree (a blob)?  Else false after reporting the problem. */
bool fmt_want_tree(struct checker *ck, const struct rentry *e);
bool fmt_want_blob(struct checker *ck, const struct rentry *e);

/* Is e's name a shard's, two lower-case hex digits (layout.h)? */
bool fmt_is_shard_name(const struct rentry *e);

/* The number of a shard name fmt_is_shard_name() accepted. */
unsigned fmt_shard_value(const char *xx);

/* Entry e of the tree being checked is unchanged from trusted tree t. */
bool fmt_unchanged(const struct rtree *t, const struct rentry *e);

/* --- the levels (format_levels.c) ---------------------------------------- */

/*
 * Settle ck->added: drop the blobs the trusted tree holds in a shard of
 * the same number (a message moved or renamed, its bytes already here).
 * Every shard number of ck->add is affected[], so those trees are all
 * that need reading.  0, or E_TEMP when the odb fails us.
 */
int fmt_new_bytes(struct checker *ck);

/*
 * Check root tree id and everything below it, going down only where it
 * differs from trusted (may be NULL).  0 (the problems are reported
 * through ck), or E_TEMP when an object cannot be read.
 */
int fmt_check_root(struct checker *ck, const struct oid *id,
		   const struct oid *trusted);

/* --- format 2 (format_imap.c) ------------------------------------------- */

/* The newest format accepted (format_allow_version()). */
extern int fmt_version_max;

/*
 * A root entry only format 2 has (uidslots, imap/, imapfolder): checked,
 * and 1; 0 when e is none of them; E_TEMP.  te is the trusted tree's
 * entry of that name, or NULL: the record blobs it holds are not read
 * again, and the shard numbers of those that changed are imap_affected[].
 */
int fmt_imap_root_entry(struct checker *ck, const struct rentry *e,
			const struct rentry *te);

/* A folder record entry [<folder>/]imapfolder.  0 or E_TEMP. */
int fmt_imap_folder_record(struct checker *ck, const struct rentry *e);

/* A message name of format 2 has no keyword letters; else reported. */
bool fmt_imap_name_ok(struct checker *ck, const struct rentry *e);

/*
 * The records against the messages of root: one record per message,
 * none without one, UIDs unique per folder and below its uidnext, every
 * folder with its folder record.  Reads the whole tree.
 */
void fmt_imap_cross_check(struct checker *ck, const struct rtree *root);

/*
 * What the ancestor match needs of the walk, kept when the check is one
 * against an ancestor in format 2 (else nothing is done): a changed
 * shard tree xx of folder ("" INBOX) and sub ("cur"/"new"), with its id
 * and the trusted one's (NULL: new), and the parsed trees n and t,
 * which may be taken over (then left empty); and a shard tree the
 * trusted tree had where the checked one has none (folder NULL: a
 * folder that is gone; sub NULL: a sub that is gone, any).
 */
void fmt_imap_keep_shard(struct checker *ck, const char *folder,
			 const char *sub, unsigned xx, struct rtree *n,
			 struct rtree *t, const struct oid *nid,
			 const struct oid *tid);
void fmt_imap_keep_removed(struct checker *ck, const char *folder,
			   const char *sub, unsigned xx, const struct oid *tid);
/* Forget what was kept. */
void fmt_imap_kept_release(struct checker *ck);

/*
 * The same match when the trusted tree tt is an ancestor's (format_imap_
 * since.c), for the shard numbers affected[] or imap_affected[] only:
 * sound because along a valid history a message keeps the UID the
 * ancestor gave it in its folder or gets one at or above the ancestor's
 * uidnext there
 * (doc/imap-identity.md 4.3, 4.4).  So a message of an affected shard
 * must have its ancestor's (key, folder, UID), or a UID at or above the
 * ancestor's uidnext and unique among those; uidnext never goes down.
 * A folder whose UIDVALIDITY changed gets fmt_imap_cross_check().
 * O(affected shards x folders).
 */
void fmt_imap_since(struct checker *ck, const struct rtree *root,
		    const struct rtree *tt);

/* --- purged/ (format_purged.c) ----------------------------------------- */

/*
 * Check the root's purged/ records against the trusted root tt's, before
 * any message is: a tree of shard blobs, each well formed, none of the
 * ancestor's ids dropped.  0 or E_TEMP.
 */
int fmt_purged_root(struct checker *ck, const struct rtree *t,
		    const struct rtree *tt);

/* Does the checked tree list message e's blob?  Then reported: true. */
bool fmt_purged_message(struct checker *ck, const struct rentry *e);

/*
 * fmt_check_blob_object() for a message blob, which may be absent when
 * the trusted tree or a hint lists it: then 2 (no size).
 */
int fmt_purged_blob(struct checker *ck, const struct rentry *e, size_t *size);

/* Every message of root against the ids the check found new in purged/
 * (incremental checks; a full check met every message already). */
void fmt_purged_scan(struct checker *ck, const struct rtree *root);

void fmt_purged_release(struct checker *ck);

#endif
