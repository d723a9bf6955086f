/*
 * merge: the three-way Maildir merge (DESIGN section 3).
 *
 * Two trees that diverged from a base are joined per message, never with
 * a conflict.  A message is identified by its key (the unique part of its
 * name) together with its blob: the same key with two different contents
 * is two messages.  For each message one of the sides changed, the rules
 * are:
 *
 *   - added on one side or both (same blob): one message, place and
 *     flags merged as below;
 *   - expunged on one side: expunged, whatever the other side did;
 *   - folder, new/cur, the ,S= ,W= fields and the key's spelling are
 *     merged one by one: a side that changed it wins, and when both
 *     changed it differently: the smaller folder directory name, cur/
 *     over new/, the smaller fields;
 *   - flags: per letter, the value of the side that changed that letter
 *     (so two sides adding different flags get both);
 *   - two different messages with one key: the one with the smaller blob
 *     id keeps the key, the other gets "<key>.dup<h><c1><c2>" (.dup is
 *     MERGE_DUP_MARK, <h> the first 16 hex digits of its blob id, c1 c2
 *     two characters of [0-9A-Za-z_-] that put the new key in the shard
 *     of the old one): the same new name on every replica.  Later merges
 *     recognise such a name as that message under its old key.
 *   - markers (maildirfolder) merge like files, and every folder of the
 *     merged tree that holds messages has one: a folder deleted on one
 *     side and given a message on the other is kept with that message;
 *   - subscriptions: the line sets are merged three-way, sorted;
 *   - mtimes (see mtimes.h): each message keeps the mtime of the side that
 *     changed it, the smaller when both did; a record exists exactly for
 *     the messages of the result whose mtime differs from their key time.
 *   - any other path: the side that changed it, present over absent, the
 *     smaller blob id when both changed it.
 *
 * A message present several times on one side (the same key and bytes in
 * two folders: Dovecot's maildir_copy_preserve_filename) is merged per
 * folder; nothing of it is lost.
 *
 * Invariants: the merged tree is a pure function of (base, ours, theirs)
 * and does not change when ours and theirs swap, byte for byte.  Nothing
 * that is present on a side and was not removed by the other is lost.
 * Valid trees (format_check_tree) merge into a valid tree.  The cost is
 * O(changed shards): subtrees whose ids are equal on the sides compared
 * are never read, and a shard number (<xx>, in every folder and in
 * mtimes/) that only one side changed is taken from that side whole,
 * unread.  Nothing returned needs freeing: results go to caller-owned
 * struct oid and struct merge_stats.
 */
#ifndef MERGE_H
#define MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "repo.h"

/* The identity and message of every merge commit (DESIGN section 3). */
#define MERGE_NAME "maildag"
#define MERGE_EMAIL "merge@maildag"
#define MERGE_MESSAGE "merge\n"
/* What separates a key from the blob id in a renamed key. */
#define MERGE_DUP_MARK ".dup"

/* What one merge changes in one of its sides, per message. */
struct merge_counts {
	size_t added;		/* messages that side did not have */
	size_t expunged;	/* messages it loses */
	size_t moved;		/* another folder, or new/ <-> cur/ */
	size_t flagged;		/* flags (or other parts of the name) */
	size_t renamed;		/* given a new key (two messages, one key) */
};

enum merge_kind {
	MERGE_SAME,		/* a and b are the same commit */
	MERGE_FAST_FORWARD,	/* one contains the other: the result is it */
	MERGE_MERGED,		/* a new merge commit */
};

struct merge_stats {
	enum merge_kind kind;		/* merge_commits() only */
	size_t bases;			/* merge bases found (merge_commits) */
	size_t virtual_merges;	/* merges of bases written (merge_commits) */
	struct merge_counts ours;	/* changes the merge makes to ours */
	struct merge_counts theirs;	/* ... and to theirs */
	size_t messages;	/* messages looked at (changed on a side) */
	size_t collisions;	/* keys given to a second message */
	size_t trees_read;	/* tree objects read by the walk */
	size_t shards_skipped;	/* shard trees taken whole from one side */
};

enum merge_note_kind {
	MERGE_NOTE_ADD,
	MERGE_NOTE_EXPUNGE,
	MERGE_NOTE_MOVE,
	MERGE_NOTE_FLAGS,
	MERGE_NOTE_RENAME,
	MERGE_NOTE_OTHER,	/* a path that is not a message */
};

/*
 * One decision of the merge, as the change it makes to ours: from is the
 * path in ours (NULL for an addition), to the path in the result (NULL
 * for a removal).  The strings live until the callback returns.
 */
struct merge_note {
	enum merge_note_kind kind;
	const char *from;
	const char *to;
};

enum merge_opt_flags {
	/*
	 * Count (stats.ours, stats.theirs) every change, also in the shards
	 * only one side changed, which the merge otherwise takes whole
	 * without reading them.  Implied by notify.  The tree is the same.
	 */
	MERGE_COUNT = 1 << 0,
};

struct merge_opts {
	void (*notify)(void *data, const struct merge_note *note);
	void *data;
	unsigned flags;		/* enum merge_opt_flags */
};

/*
 * Merge theirs into ours against base (NULL: no common history, the
 * empty tree) and write the result's new trees and blobs; *out is the
 * merged tree.  opts and stats may be NULL; stats is filled in (zeroed
 * first); its counts cover only the shards both sides changed unless
 * opts asks for notes or MERGE_COUNT.  When one side equals the base the
 * other is the answer and nothing is counted.  E_INVALID when a tree is
 * not in maildag's format where the merge needs it (an mtimes blob it
 * cannot read, a gitlink).  The trees should have passed
 * format_check_tree(): for them the result does not depend on opts.
 */
int merge_trees(struct oid *out, struct repo *r, const struct oid *base,
		const struct oid *ours, const struct oid *theirs,
		const struct merge_opts *opts, struct merge_stats *stats);

/*
 * Merge commits a and b: *out is a when a == b or a contains b, b when b
 * contains a (a fast-forward: nothing is written), else the canonical
 * merge commit: its tree is merge_trees() of their trees against their
 * merge base, its parents a and b sorted by id, author and committer
 * MERGE_NAME <MERGE_EMAIL> at the greater of the parents' commit times
 * (+0000), its message MERGE_MESSAGE.  merge_commits(a, b) and
 * merge_commits(b, a) write the same commit.  With several merge bases
 * (criss-cross histories) the bases, sorted by id, are merged into a
 * virtual base first (recursively, writing those commits as well; each
 * pair of bases is merged once per call, so the work grows with the
 * history, not with 2^levels).  stats->virtual_merges counts them.
 * Format 2 trees are merged against a virtual base with no shortcut
 * (every changed shard read, even when it equals one side): the IMAP
 * records' ancestor rule holds only against a real common ancestor.
 * Notes and stats.ours describe a ("ours"); flags is 0 (reserved).
 */
int merge_commits(struct oid *out, struct repo *r, const struct oid *a,
		  const struct oid *b, unsigned flags,
		  const struct merge_opts *opts, struct merge_stats *stats);

/*
 * Merge commit other into ref (REF_MAIL, say) and move ref to the result
 * by compare-and-swap; the caller holds the writer lock (repo_lock).
 * What the merge writes is synced with one syncfs(2) before the ref
 * moves; the ref itself is synced as libgit2 writes it.
 * *out (may be NULL) is the ref's new value.  E_RACE if the ref moved
 * meanwhile, E_NOTFOUND if it does not exist.
 */
int merge_into_ref(struct oid *out, struct repo *r, const char *ref,
		   const struct oid *other, const struct merge_opts *opts,
		   struct merge_stats *stats);

/* Is ancestor an ancestor of commit, or commit itself?  1, 0 or < 0. */
int merge_is_ancestor(struct repo *r, const struct oid *ancestor,
		      const struct oid *commit);

/*
 * The commit a revision names ("refs/heads/mail", "HEAD~2", an id);
 * E_NOTFOUND (logged) when it names none.
 */
int merge_resolve_commit(struct oid *out, struct repo *r, const char *spec);

struct purged;

/*
 * The purge rule of the merge on one tree (doc/purge.md 3.3, a forget or
 * a retention purge): *out is tree with purged/ listing its own set and
 * every id of add, and without every message whose blob that set lists,
 * their mtimes and IMAP records included.  *dropped (may be NULL):
 * messages taken out.  0, or < 0 (logged).
 */
int merge_purge_tree(struct oid *out, struct repo *r, const struct oid *tree,
		     const struct purged *add, size_t *dropped);

/*
 * From now on, every object r writes stays in memory and is dropped with
 * r (repo_free): for a dry run.  Refs must not be moved to such objects.
 */
int merge_objects_in_memory(struct repo *r);

#endif
