/*
 * treediff: what differs between two trees, the one tree walk of the
 * merge and the worktree.
 *
 * A subtree whose id is the same on both sides is never read, so the
 * cost is that of what changed, not of the mailbox (DESIGN section 3;
 * libgit2 1.5.1's git_diff_tree_to_tree reads equal subtrees too).  The
 * entries of two trees are walked together in git's order, where a tree
 * sorts as "name/": a name that is a blob on one side and a tree on the
 * other is two entries, the blob gone (or come) and every blob of the
 * tree come (or gone).  Two entries that are not trees differ when their
 * ids or their modes do.
 */
#ifndef TREEDIFF_H
#define TREEDIFF_H

#include "repo.h"
#include "strbuf.h"

/*
 * Read tree id into *out (freed by the walk with git_tree_free); 0, or
 * < 0 (logged) to stop the walk with that value.
 */
typedef int treediff_load_fn(git_tree **out, const struct oid *id, void *data);
/*
 * The walk is about to go into the subtree at path, a (NULL: absent) on
 * the one side and b on the other, not both NULL and not equal: 0 to go
 * in, 1 to leave it (the callee took it as a whole), < 0 to stop.
 */
typedef int treediff_tree_fn(const char *path, const struct oid *a,
			     const struct oid *b, void *data);
/*
 * Entries at path that are not trees and differ: a only on the one
 * side, b only on the other (the other NULL), or both.  0, or < 0 to
 * stop.
 */
typedef int treediff_leaf_fn(const char *path, const git_tree_entry *a,
			     const git_tree_entry *b, void *data);

struct treediff_ops {
	treediff_load_fn *load;	/* NULL: git_tree_lookup in r */
	treediff_tree_fn *tree;	/* NULL: go into every subtree */
	treediff_leaf_fn *leaf;
};

/*
 * Walk what differs between trees a and b (either may be NULL, the empty
 * tree) of r.  path holds where a and b are ("" for root trees; it is
 * the same again when the walk returns); ops->tree is told of a and b
 * themselves when path is not empty.  0, or the first value < 0 that a
 * callback or a tree read returned.
 */
int treediff(struct repo *r, const struct oid *a, const struct oid *b,
	     struct strbuf *path, const struct treediff_ops *ops, void *data);

#endif
