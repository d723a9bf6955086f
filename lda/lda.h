/*
 * lda: what the files of maildag-lda share (the program, not the library).
 *
 *	lda.c		main and its steps: the options, the message copied
 *			into tmp/, published in the journal, renamed into
 *			new/, committed, the quorum wait, the exit status
 *	commit.c	the group commit of every journalled delivery
 *	sieve.c		delivering through dovecot-lda (Pigeonhole Sieve):
 *			the child, what it wrote, its commit, the retry
 */
#ifndef LDA_H
#define LDA_H

#include <sys/time.h>
#include <sys/types.h>

#include "journal.h"
#include "mailbox.h"
#include "repo.h"

/* One delivery, as main's steps carry it on. */
struct lda {
	struct mailbox *mb;
	struct repo *repo;
	char *sender;		/* for Return-Path, or NULL */
	char *folder;		/* where to deliver: "" INBOX, ".Name" */
	char *fdir;		/* its directory */
	char *key;		/* the message's unique part */
	struct timeval tv;	/* the time in the key */
	char *tmp;		/* its file in tmp/ */
	long long size;
	struct oid blob;	/* its bytes */
	char *journal;
	int quorum;
	double deadline_at;	/* clock_now() time */
	struct oid wait_for;	/* the commit quorum waits on */
	const char *dovecot_lda;	/* deliver through it (sieve.c), or NULL */
	const char *recipient;	/* -a, or NULL */
	const char *mailbox_arg;	/* -m as given, or NULL */
};

/* Print the diagnostic line and exit 'status'; never returns. */
void __attribute__((noreturn, format(printf, 3, 4)))
fail(int status, const char *code, const char *fmt, ...);

/* Temporary failure from a logged error: 4.2.2 when the disk is full. */
void __attribute__((noreturn)) fail_temp(const char *what);

/*
 * A retry of bytes delivered already (regular journal entry finished,
 * or a delivery record within the last days): true, with tmp removed and
 * wait_for set.  Takes and releases the writer lock.
 */
bool already_delivered(struct lda *d);

/* The dovecot-lda child, killed by the deadline handler; 0: none. */
extern volatile pid_t lda_child;

/*
 * Deliver through d->dovecot_lda (sieve.c): returns with the writer
 * lock held and wait_for set when something is stored for the message,
 * exits otherwise (0 when Sieve stored nothing on purpose).
 */
void sieve_deliver(struct lda *d);

/*
 * Make the repository's and the Maildir's writes durable (one syncfs
 * each file system): 0 or E_FAIL, logged.
 */
int make_durable(struct repo *r, const struct mailbox *mb);

/*
 * Commit every pending delivery whose message is in the Maildir, in one
 * commit on refs/heads/mail, record them in refs/maildag/worktree, and
 * remove their journal entries.  The caller holds the writer lock; own
 * is its own entry (its flock says nothing), or NULL.
 */
int commit_pending(struct repo *r, const struct mailbox *mb,
		   const char *journal, const struct journal_entry *own);

#endif
