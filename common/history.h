/*
 * history: the whole-history check of what a peer sends (DESIGN section
 * 6): every commit taken in, not only its tip, passes the format check
 * before any of it is merged or fast-forwarded.
 *
 * Invariants: it only reads; a history is refused whole (one bad commit
 * and none of it may be used), so a refused commit never reaches
 * refs/heads/mail and can never become a merge base.
 */
#ifndef HISTORY_H
#define HISTORY_H

#include <stddef.h>

#include <git2.h>

#include "repo.h"
#include "strbuf.h"

/*
 * Check every commit of theirs that ours does not hold (theirs ^ ours,
 * ours NULL for all of theirs), parents before children: each commit's
 * tree with format_check_commit() against its first parent's, which is
 * then either in ours (trusted: our own history) or already checked
 * here; a root commit is checked fully.  Every parent of a merge commit
 * is in ours or in the walk, so every one is checked too.
 *
 * 0 when every commit passes; E_INVALID when one does not, with one line
 * appended to err naming it ("commit <id> of its history: <why>", or
 * just <why> when it is theirs itself); E_TEMP when an object could not
 * be read.  *checked (may be NULL) is how many commits were checked.
 */
int history_check(struct repo *r, const git_oid *ours, const git_oid *theirs,
		  struct strbuf *err, size_t *checked);

#endif
