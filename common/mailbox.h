/*
 * mailbox: who the mailbox belongs to and where its parts live.
 *
 * A struct mailbox ties the running user to their configuration, their
 * Maildir and their repository.  Where the parts of the Maildir are, on
 * disk and in the git tree, is layout.h's to say; the folder calls here
 * apply its rules to the user's Maildir.
 *
 * Every environment value is treated as hostile: $HOME is used only when
 * it is an absolute directory owned by the user and not writable by
 * others; otherwise the password database decides.
 */
#ifndef MAILBOX_H
#define MAILBOX_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "layout.h"
#include "oid.h"
#include "strbuf.h"

struct repo;

struct mailbox {
	char *user;
	uid_t uid;
	gid_t gid;
	char *home;
	struct config *cfg;
	const char *maildir;	/* cfg->maildir */
	const char *repository;	/* cfg->repository */
	/*
	 * A virtual mailbox, or the user of virtual ones: the control
	 * socket is the user's, one for all its mailboxes (control.h).
	 */
	bool user_socket;
};

enum mailbox_flags {
	MAILBOX_NO_SYSTEM_CONFIG = 1 << 0,
};

/*
 * Resolve the running user and load their configuration (config_file may
 * be NULL for the default).  Returns 0, E_NOTFOUND when the user or home
 * does not exist, or what config_load() returned.  Free with
 * mailbox_free().
 */
int mailbox_open(struct mailbox **out, const char *config_file,
		 unsigned flags);
void mailbox_free(struct mailbox *mb);

/*
 * As mailbox_open(), then select the virtual mailbox address
 * (config_select_mailbox(), config.h): mb->cfg->address is set and the
 * Maildir and the repository are that mailbox's.  Returns E_INVALID for
 * an address that cannot be a mailbox (logged as "bad address: ..."),
 * E_NOTFOUND for one the configuration does not list, else as
 * mailbox_open().
 */
int mailbox_open_virtual(struct mailbox **out, const char *config_file,
			 unsigned flags, const char *address);

/*
 * Another virtual mailbox of the same user and configuration files as
 * mb (which may be one itself): what mailbox_open_virtual() would give,
 * without looking up the user again.
 */
int mailbox_open_sibling(struct mailbox **out, const struct mailbox *mb,
			 const char *config_file, unsigned flags,
			 const char *address);

/* The directory of a folder ("" is INBOX); the caller frees it. */
char *mailbox_folder_path(const struct mailbox *mb, const char *folder);

/*
 * Create the folder's cur/ new/ tmp/ (mode 0700) and, for a folder other
 * than INBOX, its maildirfolder marker.  Existing parts are kept.
 */
int mailbox_create_folder(const struct mailbox *mb, const char *folder);

/* Does the folder exist in mb's Maildir (layout_folder_exists())? */
bool mailbox_folder_exists(const struct mailbox *mb, const char *folder);

/*
 * Does tree hold a message with this key in folder's ("" for INBOX) new/
 * or cur/ (format version 1, maildag-format(5))?
 */
bool mailbox_tree_has_key(struct repo *r, const struct oid *tree,
			  const char *folder, const char *key);

#endif
