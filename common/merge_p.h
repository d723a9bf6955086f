/*
 * merge_p: what the parts of the merge share, and nothing outside
 * common/merge*.c may use.
 *
 * The merge is cut along its steps (merge.c's head comment tells them):
 *	merge.c			small helpers, merge_trees() that runs the
 *				steps, and the merge of commits (bases,
 *				criss-cross recursion)
 *	merge_walk.c		steps 1 and 2: the walk, the mtimes shards,
 *				grouping messages into identities
 *	merge_resolve.c		step 3: each group resolved by the rules,
 *				mtimes, paths that are not messages
 *	merge_write.c		step 4: the result as changes to ours,
 *				notes and counts, and writing it
 *	merge_imap.c		the rules of format 2's IMAP records (UIDs,
 *				folder records, keywords), pure functions
 *	merge_records.c		format 2's records in the tree merge: read
 *				from the three trees, resolved by
 *				merge_imap.c's rules, written
 */
#ifndef MERGE_P_H
#define MERGE_P_H

#include <stdbool.h>
#include <stddef.h>

#include "maildir_name.h"
#include "merge.h"
#include "mtimes.h"
#include "oid.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strvec.h"
#include "imaprec.h"

enum { B = 0, O = 1, T = 2 };		/* base, ours, theirs */
enum { SUB_CUR = 0, SUB_NEW = 1 };
enum { DIFF_OURS = 0, DIFF_THEIRS = 1, DIFF_COMMON = 2 };

/* Deeper criss-cross recursion than this uses the first base alone. */
#define MAX_BASE_DEPTH 64

enum leaf_kind {
	LEAF_MESSAGE,
	LEAF_MARKER,
	LEAF_MTIMES,
	LEAF_OTHER,		/* FORMAT, subscriptions, anything else */
	/* format 2 only (m->imap), merged by merge_records.c */
	LEAF_IMAPREC,		/* imap/<xx> */
	LEAF_IMAPFOLDER,	/* [<folder>/]imapfolder */
};

/*
 * A blob path that differs between the base and a side: the base's entry
 * (added == 0) or the side's (added == 1).  DIFF_COMMON leaves are
 * entries found by lookup that all three trees share.
 */
struct leaf {
	char *path;		/* owned */
	struct oid id;
	unsigned diff : 2;
	unsigned added : 1;
	enum leaf_kind kind;
	/* messages: [<folder>/]<cur|new>/<xx>/<name> */
	size_t flen;		/* the folder is path[0, flen) (also of
				   an imapfolder leaf) */
	unsigned sub;
	const char *name;	/* in path */
	size_t keylen;		/* of name */
	char *bkey;		/* identity key; owned */
	unsigned shard;		/* messages, mtimes and imap blobs */
};

/* One message entry of a side, parsed. */
struct view {
	const char *path;
	char *folder;		/* owned */
	unsigned sub;
	struct maildir_name mn;
};

/* One message entry of the result. */
struct res {
	char *folder;
	unsigned sub;
	char *key, *fields, *info;	/* info may be NULL */
	char *path;		/* built once the key is final */
};

/* One message (identity) that a side changed, and its resolution. */
struct ident {
	const char *bkey;
	const struct oid *id;
	struct view *v[3];	/* each side's entries, sorted by path */
	size_t n[3];
	struct res *res;
	size_t nres;
	long long mtime;	/* resolved, when nres */
};

/* The mtimes blob of one shard in the three trees. */
struct mshard {
	bool touched;		/* some diff changed this blob */
	bool seen[2], added[2];
	bool known[3], present[3];
	struct oid id[3];
	bool parsed[3];
	struct mtimes rec[3];
};

/* A directory the walk went into: where a side differs from the base. */
struct dirrec {
	char *path;		/* owned */
	unsigned diff;		/* DIFF_OURS or DIFF_THEIRS */
	bool present;		/* the side has it (as a tree) */
	struct oid id;		/* the side's tree */
};

/*
 * A shard directory ([<folder>/](cur|new)/<xx>) where a side differs
 * from the base, before it is read.
 */
struct pending {
	char *path;		/* owned */
	unsigned diff;
	unsigned shard;
	bool has_a, has_b;	/* the base's and the side's trees */
	struct oid ida, idb;
};

/* One line of an imap/<xx> blob, as it is (merge_records.c). */
struct rline {
	const char *key, *line;	/* in the blob */
	size_t klen, len;	/* len: with the LF */
};

/* An imap/<xx> blob and its lines, in key order. */
struct rindex {
	struct strbuf buf;
	struct rline *v;
	size_t n;
};

void rindex_release(struct rindex *ix);

/* The imap/<xx> blob of one shard in the three trees, read when asked. */
struct ishard {
	bool touched;		/* a leaf of it was read */
	bool loaded[3], present[3];
	struct oid id[3];
	int alias[3];		/* whose ix[] holds side s's records */
	struct rindex ix[3];
};

/* The folder record of one folder in the three trees, and the result's. */
struct ifolder {
	char *folder;		/* owned; "" is INBOX */
	bool has[3];
	struct oid id[3];
	struct imap_folder f[3];
	bool leaf;		/* a side changed it */
	bool contested;		/* both changed it, one UIDVALIDITY */
	bool computed;		/* out is the result's record */
	struct imap_folder out;
};

/* A subtree of the result taken whole from theirs (absent: removed). */
struct tree_up {
	char *path;		/* owned */
	bool present;
	struct oid id;
};

struct mctx {
	struct repo *r;
	const struct oid *tree[3];	/* tree[B] may be NULL: the empty tree */
	const struct merge_opts *opts;
	struct merge_stats *st;
	struct leaf *lv;
	size_t ln, la;
	struct ident *ids;
	size_t nids;
	struct mshard *ms;	/* 256 of them */
	struct update_list ups;
	struct dirrec *dirs;
	size_t ndirs, adirs;
	bool defer;		/* the first pass: stop at shard directories */
	bool full;		/* read every changed shard (for notes, counts) */
	struct pending *pend;
	size_t npend, apend;
	struct tree_up *tups;
	size_t ntups, atups;
	/* format 2 (merge_records.c) */
	bool imap;		/* ours and theirs are format 2 */
	bool contested;		/* a folder record both sides changed */
	bool contested_all;	/* ... or UIDVALIDITYs differ, or revived,
				   or the base is virtual */
	bool vbase;		/* the base is a merge of merge bases */
	struct ishard *is;	/* 256 of them, when imap */
	struct ifolder *ifs;
	size_t nifs, aifs;
};

/* --- small helpers (merge.c) --------------------------------------------- */

/* Read tree id (counted in m->st); the caller frees *out.  0, or E_FAIL
 * (logged). */
int mg_tree_load(git_tree **out, struct mctx *m, const struct oid *id);

/* NULL sorts first */
int mg_nstrcmp(const char *a, const char *b);

/* The longer key first: a .dup spelling, once given, sticks. */
int mg_key_tie(const char *a, const char *b);

/*
 * Three-way choice of one part: the side that changed it, else (both
 * changed, or no base) the one tie() puts first.
 */
const char *mg_pick3(bool hasb, const char *b, const char *o,
		     const char *t, int (*tie)(const char *, const char *));

/* Append bkey[0, blen) ".dup" hex[0, hexlen) and the two characters. */
void mg_dup_key(struct strbuf *out, const char *bkey, size_t blen,
		const char *hex, size_t hexlen, unsigned shard);

/*
 * The identity key of a message: its key, less a ".dup<hex><c1><c2>"
 * suffix when the hex digits begin the message's own blob id and the key
 * is in the shard of what remains (a key the merge gave).
 */
char *mg_identity_key(const char *key, size_t len, const struct oid *id);

/* --- steps 1 and 2: the walk, mtimes, grouping (merge_walk.c) ------------- */

/* The shard number of a shard directory path, or -1. */
int mg_shard_dir(const char *path);

/*
 * Every blob that differs between trees a and b (either may be NULL, the
 * empty tree), never reading a subtree whose id is the same in both.
 */
int mg_walk(struct mctx *m, int diff, const struct oid *a, const struct oid *b,
	    struct strbuf *path);

/*
 * The second pass.  A message keeps its shard number for life (moves
 * keep its key; a key the merge gives keeps the shard, see mg_dup_key()),
 * so a shard number that only one side changed -- in every folder and in
 * mtimes/ -- holds no message the other side touched: the result there
 * is that side's, tree for tree, and nothing of it needs reading.  The
 * shard numbers both sides changed are read, leaf by leaf.  With m->full
 * every one is read (to count and note every change); the tree written
 * is the same.
 */
int mg_read_pending(struct mctx *m);

/* What the walk's leaves tell of each mtimes shard: touched, and its
 * blob in the base and in the side that changed it. */
void mg_mtimes_states_from_leaves(struct mctx *m);

/* Parsed records of shard x on side s. */
int mg_mshard_get(const struct mtimes **out, struct mctx *m, unsigned x,
		  int s);

/* Keys whose record differs between the base's and a side's blob. */
int mg_changed_record_keys(struct mctx *m, char ***out, size_t *nout);

/*
 * Add DIFF_COMMON leaves for every message of ours whose key is key: it
 * is the same in all three trees (no diff touched it).
 */
int mg_lookup_key(struct mctx *m, const char *key);

/* Leaves in group order: by kind, messages by identity (key, blob id),
 * then by path; for qsort(3). */
int mg_leaf_ident_cmp(const void *a, const void *b);

/* Free what v owns. */
void mg_view_release(struct view *v);

/* The identities of the message leaves lv[s, e) (sorted by
 * mg_leaf_ident_cmp), appended to m->ids with each side's entries. */
void mg_build_idents(struct mctx *m, size_t s, size_t e);

/* --- step 3: resolution (merge_resolve.c) ----------------------------------- */

/* Free what r owns. */
void mg_res_release(struct res *r);

/* Resolve one identity by the rules: id->res, from the three sides'
 * entries alone. */
void mg_resolve(struct ident *id);

/* r's tree path, from its folder, sub and name (r->path, replaced). */
void mg_res_build_path(struct res *r);

/*
 * Two messages that claim one key: the smaller blob id keeps it, each
 * other one becomes <identity key>.dup<16 hex> (40 if even that is taken).
 */
void mg_resolve_collisions(struct mctx *m);

/* The resolved mtime of id (id->mtime): a side's alone when the other
 * lacks it or kept the base's, else the tie rule.  0, or < 0 when a
 * record cannot be read. */
int mg_resolve_mtime(struct mctx *m, struct ident *id);

/*
 * Re-write every mtimes shard a side touched or a changed message lives
 * in: ours' records, less those of every key involved (gone[]), plus the
 * resolved ones (set[]), in canonical form.
 */
int mg_write_mtimes(struct mctx *m, char **ckeys, size_t nckeys);

/* Tell the caller's notify callback (merge_opts) of one change. */
void mg_note(struct mctx *m, enum merge_note_kind kind, const char *from,
	     const char *to);

/*
 * Markers, subscriptions and any other path, lv[s, e) sorted by path:
 * the side that changed it; kept over removed; subscriptions merged by
 * line; else the smaller blob id.
 */
int mg_resolve_paths(struct mctx *m, size_t s, size_t e);

/* --- step 4: the result (merge_write.c) ---------------------------------- */

/*
 * What the result changes in side s for one message: counted, and for
 * ours turned into updates and notes.
 */
void mg_ident_changes(struct mctx *m, struct ident *id, int s);

/* One update per path: an upsert beats a removal, the smaller blob wins. */
void mg_updates_normalize(struct update_list *l);

/*
 * Every folder of the result that holds messages has its marker, or gets
 * one back (a folder deleted on one side, given a message on the other).
 * A function of the result tree alone: the same whatever was read.
 */
int mg_restore_markers(struct oid *tree, struct mctx *m);

/*
 * Apply the updates (sorted, one per path) to ours.  A directory ours
 * left as the base had it, whose updates are exactly theirs' changes, is
 * theirs' directory: its tree is reused, not rebuilt (a shard only one
 * side touched costs nothing to write).
 */
int mg_write_result(struct oid *out, struct mctx *m);

/* --- format 2's IMAP records (merge_imap.c) ---------------------------- */

/* A side's folder record of one folder of the result. */
struct imap_fside {
	bool has;		/* false: the side lacks the folder */
	struct imap_folder f;
};

/* One message of one folder of the result. */
struct imap_msg {
	const char *key;	/* the result's key (a .dup key is new) */
	uint32_t uid[3];	/* [O], [T]: the UID the side gives this key
				   in this folder, 0: none there; [B] unused */
	uint32_t out;		/* set: its UID in the result, 0: unnumbered */
};

/*
 * The folder record of the result and every message's UID (4.4): a UID
 * both sides give stays; a side's UID stays when the other side's
 * uidnext is at or below it (a side without the folder, or whose
 * UIDVALIDITY is the smaller, counts as uidnext 1 with no UIDs); UID 0
 * on a side (an unnumbered record) is no UID.  The rest get UID 0: the
 * merge does not number, each replica that applies the result numbers
 * them from its own slot.  uidnext is the greater of the sides'.  A UID
 * that would be kept for two messages (sides that break format 2's
 * rules) is kept for neither.
 * fs[B] is not used; msgs[].uid is changed.  0, or E_FAIL (logged) when
 * neither side has the folder.
 */
int merge_imap_folder(struct imap_folder *out, const struct imap_fside fs[3],
		      struct imap_msg *msgs, size_t n);

/* One side's keywords of a message (any folder). */
struct imap_kwside {
	bool has;		/* false: the side has no record of the key */
	const char *const *kw;
	size_t n;
};

/*
 * The keywords of a message in the result (4.4), pushed to out: per
 * name, ignoring case, a side that added or removed it against the base
 * decides; without a base record, the union; a side without the message
 * gives way to the other.  Of two spellings, the one of the side that
 * changed it against the base, else the byte-wise smaller (so a side's
 * record stands whole where the other left the message alone, as when
 * the merge takes a shard whole from one side).
 */
void merge_imap_keywords(struct strvec *out, const struct imap_kwside sd[3]);

/* --- format 2's records in the tree merge (merge_records.c) -------------- */

/*
 * m->imap: are ours and theirs format 2?  E_INVALID (logged) when one is
 * and the other is not.
 */
int mg_imap_detect(struct mctx *m);

/* Free what the records' part of m owns. */
void mg_imap_release(struct mctx *m);

/*
 * From the walk's first pass (imapfolder leaves): m->contested, when
 * some folder's record changed on both sides or their UIDVALIDITYs
 * differ.  Then no shard may be taken whole from one side
 * (mg_read_pending reads them all).
 */
int mg_imap_contested(struct mctx *m);

/*
 * Must shard number x, which only diff d changed, be read although some
 * folder is contested?  Not when none of the UIDs that side gave anew in
 * x can fall below the other side's uidnext in a contested folder (see
 * merge_records.c); true when unsure, or on an error (then logged and
 * *err set).
 */
bool mg_imap_must_read(struct mctx *m, unsigned x, int d, int *err);

/* Keys whose record differs between the base and a side, in the
 * imap/<xx> blobs the walk read; sorted, owned by the caller. */
int mg_imap_changed_keys(struct mctx *m, char ***out, size_t *nout);

/*
 * The records of the result (after mg_resolve_collisions and the paths
 * are built): every folder with a resolved message or a changed record
 * by merge_imap_folder(), every resolved message's record (UID, 0 when
 * unnumbered, and merge_imap_keywords()), as updates to ours' imap/<xx>
 * and imapfolder blobs.  ckeys: the keys mg_imap_changed_keys() gave.
 */
int mg_imap_resolve(struct mctx *m, char **ckeys, size_t nckeys);

/*
 * After the tree is written: every folder of the result has its record
 * (the merged one) and a folder left with nothing but its record is
 * gone.  A function of the result tree and the sides' records.
 */
int mg_imap_restore_folders(struct oid *tree, struct mctx *m);

/* --- purged/ (merge_purge.c) ---------------------------------------------- */

/*
 * Last, on the written result *tree: purged/ the union of ours' and
 * theirs', and no message (nor its mtimes or IMAP record) whose blob it
 * lists.  Reads nothing more when the two sides' sets are the same.
 */
int mg_purge(struct oid *tree, struct mctx *m);

/* uidslots changed on both sides: the union of their lines, in *out. */
int mg_imap_slots_union(struct oid *out, struct mctx *m, const struct oid *o,
			const struct oid *t);

#endif
