/*
 * lda: what the files of maildag-lda share (the program, not the library).
 *
 *	lda.c		main and its steps: the options, the message copied
 *			into tmp/, published in the journal, renamed into
 *			new/, committed, the quorum wait, the exit status
 *	commit.c	the group commit of every journalled delivery
 */
#ifndef LDA_H
#define LDA_H

#include "journal.h"
#include "mailbox.h"
#include "repo.h"

/*
 * Commit every pending delivery whose message is in the Maildir, in one
 * commit on refs/heads/mail, record them in refs/maildag/worktree, and
 * remove their journal entries.  The caller holds the writer lock; own
 * is its own entry (its flock says nothing), or NULL.
 */
int commit_pending(struct repo *r, const struct mailbox *mb,
		   const char *journal, const struct journal_entry *own);

#endif
