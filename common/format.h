/*
 * format: the repository format, version 1 (DESIGN section 2,
 * maildag-format(5)), and the validator every tree passes before maildag
 * merges it, writes it to the Maildir, or calls it healthy.
 *
 * A valid root tree holds exactly:
 *
 *	FORMAT				blob "maildag 1\n"
 *	subscriptions			blob, optional
 *	mtimes/<xx>			blobs of "<key> <seconds>\n" lines
 *	[<folder>/]maildirfolder	empty blob, folders only, optional
 *	[<folder>/](cur|new)/<xx>/<name>	message blobs
 *
 * where <folder> passes folder_dir_valid(), <name> passes
 * maildir_name_valid(), <xx> is maildir_shard_hex() of the key, every
 * blob has mode 100644 and every tree 40000 (written canonically), tree
 * entries are in git's order, no key appears twice in the whole tree,
 * and every mtimes record names a message of the tree.
 * The validator reads raw objects itself rather than trusting libgit2's
 * tree parser, which accepts unsorted and duplicate entries, modes such as
 * "0100644" or "100664", and any name.
 *
 * Invariants: the validator only reads (no object or ref is written), and
 * a tree is refused whole: callers never use part of a refused tree.
 */
#ifndef FORMAT_H
#define FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "repo.h"
#include "strbuf.h"

#define FORMAT_VERSION 1
#define FORMAT_VERSION_IMAP 2	/* format 2: the IMAP records (imaprec.h) */

/*
 * The newest format this process accepts: FORMAT_VERSION until called
 * with FORMAT_VERSION_IMAP.  Format 2 is experimental: a process accepts
 * it when its own repository is format 2 (format_use_repo()), and unit
 * tests by calling this.
 */
void format_allow_version(int v);

/*
 * The format of the repository this process works on, read from the
 * FORMAT of refs/heads/mail's tree, and what follows from it: format 2
 * is accepted (format_allow_version()) exactly when that tip is format
 * 2.  Every program calls it where it opens its repository (maildag's
 * verbs, maildag-syncd, maildag-lda).  A repository without refs/heads/
 * mail yet is format 1.  Returns the version, or E_TEMP (logged) when
 * the tip cannot be read.
 */
int format_use_repo(struct repo *r);

/*
 * The version format_use_repo() found (FORMAT_VERSION before it is
 * called); format_set_repo_version() sets it (and allows it) for a
 * repository being made (maildag init --format 2).
 */
int format_repo_version(void);
void format_set_repo_version(int v);

/*
 * The format version of commit's tree: 1, 2, or E_INVALID when its
 * FORMAT is neither (or absent), E_TEMP when it cannot be read.
 */
int format_commit_version(struct repo *r, const struct oid *commit);

/*
 * May a peer's commit theirs be taken into a repository of version
 * format_repo_version() whose refs/heads/mail is ours (doc/imap-identity.md
 * 4.9)?  A format 2 repository refuses a format 1 commit it does not
 * hold already (a format 1 peer's mail arrives once that peer upgrades);
 * a format 1 repository refuses format 2 (format_check_tree() says so).
 * 0 when it may; E_INVALID with one line in err naming both versions and
 * 'maildag upgrade'; E_TEMP.
 */
int format_peer_allowed(struct repo *r, const struct oid *ours,
			const struct oid *theirs, struct strbuf *err);
#define FORMAT_MTIMES_DIR "mtimes"
#define FORMAT_MTIMES_MAX (16 << 20)	/* bytes in one mtimes/<xx> blob */

/*
 * Limits on what a tree may hold (maildag.conf(5) names them; the
 * defaults below are config.c's and are justified there).  Sizes are
 * taken from object headers (git_odb_read_header), so an object over a
 * limit is refused without being inflated; a tree object is refused
 * unread when its size alone says it could hold more entries than
 * allowed, and its entries are counted while its bytes are parsed.
 */
struct format_limits {
	unsigned long long message_bytes;	/* one message blob (size_limit) */
	unsigned long long subscriptions_bytes;	/* the subscriptions blob */
	size_t tree_entries;			/* entries of any one tree */
	size_t folders;				/* folders, INBOX counted */
	unsigned long long merge_bytes;		/* message bytes one check may
						   add to its trusted tree;
						   0: not checked */
};

#define FORMAT_DEFAULT_MESSAGE_BYTES (64ull << 20)
#define FORMAT_DEFAULT_SUBSCRIPTIONS_BYTES (1ull << 20)
#define FORMAT_DEFAULT_TREE_ENTRIES 65536
#define FORMAT_DEFAULT_FOLDERS 10000
#define FORMAT_DEFAULT_MERGE_BYTES (8ull << 30)

/*
 * The limits every check of this process uses: the defaults until
 * format_set_limits() (mailbox_open() calls it with the configuration's,
 * so every program that validates uses them).  A copy is kept.
 */
void format_set_limits(const struct format_limits *l);
const struct format_limits *format_get_limits(void);

/* format_set_limits() with the limits a configuration names. */
struct config;
void format_use_config(const struct config *cfg);

/*
 * Bytes of the message blobs in commit's tree that trusted_commit's tree
 * (NULL: an empty tree) does not hold with the same blob id in a shard of
 * the same number, by object headers: what applying diff(trusted_commit,
 * commit) writes at most.  The limits are not applied.  0, or
 * E_TEMP/E_INVALID when a commit or object cannot be read.
 */
int format_added_bytes(unsigned long long *out, struct repo *r,
		       const struct oid *commit,
		       const struct oid *trusted_commit);

/*
 * Check the tree with id tree.  0 when it is valid; E_INVALID when it is
 * not, with one line appended to err naming the first offending entry and
 * why ("'.Sent/cur/3f/..': forbidden name"; control characters and bytes
 * >= 0x80 shown as \xNN); E_TEMP when an object could not be read for a
 * reason that may pass (the line in err says which).
 *
 * trusted, when not NULL, is the tree of a commit already known valid
 * (our own refs/heads/mail, say).  Then only what differs from it is
 * checked: subtrees whose id equals trusted's at the same path are
 * skipped, and the duplicate-key check looks only at the shards <xx> that
 * changed somewhere, where it compares the keys of the changed shard
 * trees with each other and with every other tree of the same shard
 * number (a duplicate key always shares its shard, and two entries both
 * in unchanged trees were both in trusted).  Likewise the records of
 * mtimes/<xx> are matched against the messages only for those shard
 * numbers, and for the ones that lost a whole shard tree.  The cost is
 * O(changed shard trees x folders), not O(mailbox).  The answer is the
 * same as without trusted only when trusted really is valid.
 *
 * Every blob in what is checked must exist and be a blob (one object
 * header read each, skipped for an entry trusted holds at the same path
 * with the same id).
 *
 * The limits of format_get_limits() hold: no message blob larger than
 * message_bytes, no subscriptions larger than subscriptions_bytes, no
 * tree with more than tree_entries entries, no more than folders
 * folders, and (merge_bytes not 0) the message blobs that are new
 * against trusted (format_added_bytes()) sum to at most merge_bytes.
 * Each is refused like any other problem ("'.Sent/cur/3f/...': message
 * of 2147483648 bytes, more than size_limit (67108864)").
 */
int format_check_tree(struct repo *r, const struct oid *tree,
		      const struct oid *trusted, struct strbuf *err);

/*
 * format_check_tree() where trusted is the tree of an ancestor of the
 * commit whose tree is checked (its parent, say), known valid.  Then the
 * IMAP records of format 2 are matched only where they changed, with the
 * ancestor rule of fmt_imap_since() (format_p.h): a message keeps the
 * UID the ancestor gave it in its folder, or gets one at or above the
 * ancestor's uidnext there; uidnext never goes down.  Cost O(changed
 * shard trees x folders) as for format 1.  A trusted tree that is not an
 * ancestor's makes format_check_tree() match all records (O(mailbox)).
 */
int format_check_tree_since(struct repo *r, const struct oid *tree,
			    const struct oid *ancestor, struct strbuf *err);

/*
 * format_check_tree() on the tree of a commit; trusted_commit (or NULL) is
 * a commit whose tree is known valid; when it is an ancestor of commit
 * (a parent, found without a walk, or further back), format_check_tree_
 * since().  Use it on refs/peers/<node>/mail
 * before merging it, and on the merge bases: a base is an ancestor that
 * may never have been checked.
 */
int format_check_commit(struct repo *r, const struct oid *commit,
			const struct oid *trusted_commit, struct strbuf *err);

/* What a full check saw, for reports. */
struct format_stats {
	size_t messages;
	size_t folders;		/* INBOX counts when it holds cur/ or new/ */
	size_t mtimes;		/* lines in mtimes/ */
};

/*
 * Called once per problem: path is the escaped entry path ("" for the
 * root tree; NULL when the commit itself cannot be read, and reason says
 * which: "commit <hex>: <why>"), reason a short lowercase phrase.
 */
typedef void format_problem_fn(const char *path, const char *reason,
			       void *data);

/*
 * Check the whole tree (no trusted tree) and report every problem rather
 * than the first, for `maildag fsck`; the limits hold but merge_bytes.  Returns the number of problems
 * (0: valid), or E_TEMP.  stats may be NULL.
 */
int format_fsck_tree(struct repo *r, const struct oid *tree,
		     format_problem_fn *fn, void *data,
		     struct format_stats *stats);

/* format_fsck_tree() on the tree of a commit (which fsck reads first). */
int format_fsck_commit(struct repo *r, const struct oid *commit,
		       format_problem_fn *fn, void *data,
		       struct format_stats *stats);

/*
 * Called for each message of a tree: folder is "" for INBOX, sub "cur"
 * or "new", path the full tree path.  A non-zero return stops the walk
 * and is returned by format_foreach_message().
 */
typedef int format_message_fn(const char *path, const char *folder,
			      const char *sub, const char *name,
			      const struct oid *blob, void *data);

/*
 * Walk every message of a tree in tree order.  Entries that do not fit
 * the format are skipped silently: validate first when that matters.
 * 0, fn's non-zero return, or E_FAIL/E_TEMP when a tree cannot be read.
 */
int format_foreach_message(struct repo *r, const struct oid *tree,
			   format_message_fn *fn, void *data);

/*
 * Check the bytes of the mtimes record of shard xx (two hex digits), the
 * form common/mtimes.c writes: one or more lines "<key> <seconds>\n",
 * split at the first space; keys valid message keys of shard xx, sorted
 * bytewise and unique; seconds "-?[0-9]{1,18}" without leading zero or
 * "-0", and not the key's own time (such a record is never written).  0,
 * or E_INVALID with the reason appended to err ("line 3: keys not
 * sorted").  That every key names a message of the tree is checked by
 * format_check_tree(), not here.
 */
int format_mtimes_check(const char *buf, size_t len, const char *xx,
			struct strbuf *err);

/*
 * Purged blobs (purged.h): a message blob that is absent is valid where
 * the trusted tree lists it, or the set of a tree named here (the tip of
 * what a peer sent, whose set covers its whole history: history_check()).
 * format_purged_hint() adds tree's set (0, or purged_read()'s error);
 * format_purged_hints_clear() forgets them all.
 */
int format_purged_hint(struct repo *r, const struct oid *tree);
void format_purged_hints_clear(void);

/*
 * Append s (len bytes) to out with control characters, DEL, bytes >= 0x80
 * and backslashes escaped as \xNN, so any name prints as one safe line.
 */
void format_escape(struct strbuf *out, const char *s, size_t len);

#endif
