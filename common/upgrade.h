/*
 * upgrade: a format 1 repository made format 2 (doc/imap-identity.md
 * 4.9, maildag-format(5) "Format 2"), in one commit on top of
 * refs/heads/mail, history kept: what `maildag upgrade` and `maildag init
 * --format 2` write.
 *
 * The format 2 tree is the format 1 tree with FORMAT "maildag 2", the
 * keyword letters taken out of the message names, and the records:
 * [<folder>/]imapfolder for every folder (INBOX too), imap/<xx> for
 * every message, uidslots with this node's line.  UIDs, UIDVALIDITY and
 * keyword names come from each folder's Dovecot files where there are
 * some (dovecot_records(), under Dovecot's uidlist lock): a file
 * Dovecot numbered keeps its UID, one it has not seen gets the next UID
 * of this node's slot, appended to the uidlist before the lock is let go
 * so Dovecot never numbers it otherwise.  A folder without a uidlist is
 * numbered from the slot's first block with a new UIDVALIDITY (the time),
 * and gets a uidlist saying so, which Dovecot takes as its own when it
 * first opens the folder (E1).  With a format 2 peer to adopt from, its
 * folders' UIDVALIDITY and UIDs are taken instead (upgrade_adopt.c).
 *
 * Invariants: the caller holds the writer lock; the disk's message files
 * are not touched (only dovecot-uidlist); the commit is made only when
 * the new tree passes the format 2 check, and refs/heads/mail and
 * refs/maildag/worktree move together, from the same commit, by
 * compare-and-swap.
 */
#ifndef UPGRADE_H
#define UPGRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "oid.h"
#include "repo.h"

struct upgrade_stats {
	size_t messages;	/* records written */
	size_t folders;		/* folder records written, INBOX counted */
	size_t numbered;	/* messages given a UID from our slot */
	size_t uidlists;	/* folders that had a dovecot-uidlist */
	size_t adopted;		/* messages given the peer's UID */
	size_t renumbered;	/* folders whose Dovecot UIDs changed */
	unsigned slot;		/* this node's UID slot */
	char peer[256];		/* the peer ref adopted from, or "" */
};

/*
 * Build the format 2 tree of the format 1 tree `tree` of the Maildir at
 * maildir (which holds what tree holds), for node: *out is its id.
 * Writes the folders' dovecot-uidlist as said above.  With peer_tree (a
 * format 2 peer's tree, or NULL), a folder the peer has adopts its
 * UIDVALIDITY and its UIDs (upgrade_adopt.c): the peer's UID for each
 * message it has there, UIDs at or above its uidnext from our slot for
 * the others; Dovecot's uidlist of that folder is rewritten and its
 * index removed when that changes its UIDs.  0; E_TEMP when Dovecot's
 * lock stays held; E_INVALID (logged) when a uidlist is broken or tree
 * is no format 1 tree; E_FAIL (logged) otherwise.
 */
int upgrade_tree(struct oid *out, struct repo *r, const struct oid *tree,
		 const char *maildir, const char *node,
		 const struct oid *peer_tree, struct upgrade_stats *st);

/*
 * Upgrade the repository: refs/heads/mail must be format 1 and equal
 * to refs/maildag/worktree (nothing waits to be applied to the disk).
 * With adopt, the first peer ref (refs/peers/<node>/mail, byte order)
 * that is format 2 and shares history with mail is adopted from
 * (st->peer names it).
 * The commit (message `why`) is checked as format 2, then both refs
 * move to it and this process takes format 2 (format_set_repo_version()).
 * *out is the commit.  0; E_EXISTS when mail is format 2 already;
 * E_RACE when the worktree is behind or a ref moved; what upgrade_tree()
 * returns; E_INVALID when the result fails the check (a bug, logged).
 */
int upgrade_repo(struct oid *out, struct repo *r, const char *maildir,
		 const char *node, const char *why, bool adopt,
		 struct upgrade_stats *st);

#endif
