/*
 * history: the whole-history check of what a peer sends (DESIGN section
 * 6): every commit taken in, not only its tip, passes the format check
 * before any of it is merged or fast-forwarded.
 *
 * Invariants: it only reads; a history is refused whole (one bad commit
 * and none of it may be used), so a refused commit never reaches
 * refs/heads/mail and can never become a merge base.
 *
 * maildag-syncd runs it in a child process (history_spawn): thousands of
 * commits take seconds of CPU, which its poll loop must spend answering
 * the control socket and starting pushes, and the memory it takes is the
 * child's.  The child's word is a result line on its pipe, nothing else:
 * a child that dies, is killed or writes anything else has approved
 * nothing.
 */
#ifndef HISTORY_H
#define HISTORY_H

#include <stddef.h>
#include <sys/types.h>

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
 * approved (may be NULL) is trusted as ours is: a commit whose whole
 * history passed this check before, against an ancestor of ours; what
 * it holds is not checked again (a peer that moved on while its history
 * was being checked costs only what it added since).
 *
 * First, format_peer_allowed(ours, theirs): a format 2 repository
 * refuses a format 1 theirs that ours does not hold, whole.
 *
 * 0 when every commit passes; E_INVALID when one does not, with one line
 * appended to err naming it ("commit <id> of its history: <why>", or
 * just <why> when it is theirs itself) and *bad (may be NULL) set to its
 * id; E_TEMP when an object could not be read.  *checked (may be NULL)
 * is how many commits were checked.
 */
int history_check(struct repo *r, const struct oid *ours,
		  const struct oid *approved,
		  const struct oid *theirs, struct strbuf *err, size_t *checked,
		  struct oid *bad);

/* What a check child found (history_collect). */
struct history_result {
	int status;		/* 0, E_INVALID or E_TEMP */
	struct oid theirs;	/* the commit whose history was checked */
	struct oid bad;		/* E_INVALID: the commit refused */
	size_t checked;		/* commits checked */
	long max_rss_kb;	/* the child's peak resident set */
	char why[1024];		/* not 0: one line, "" when 0 */
};

/*
 * history_check(ours, approved, theirs) in a child process (child.h) on
 * the repository at repo_path, opened afresh there; ours and approved
 * may be NULL as above.  Its
 * data segment is capped at data_limit bytes (0: none), and it dies with
 * its parent.  *pid is the child, *fd the pipe to poll for POLLIN and
 * hand to history_collect().  0, or E_FAIL (logged) when it cannot start.
 */
int history_spawn(pid_t *pid, int *fd, const char *repo_path,
		  const struct oid *ours, const struct oid *approved,
		  const struct oid *theirs, unsigned long long data_limit);

/*
 * Read what is available on fd into buf (empty at the first call).
 * Returns 1 when the child has finished: res filled, the child reaped, fd
 * closed and buf emptied; 0 when more is to come (poll again).  A child
 * that died, was killed or gave no result line that parses is E_TEMP
 * saying so, never 0.
 */
int history_collect(pid_t pid, int fd, struct strbuf *buf,
		    struct history_result *res);

#endif
