/*
 * upgrade_p: what upgrade.c and upgrade_adopt.c share, and nothing else
 * may use.
 *
 *	upgrade.c		the format 2 tree of a format 1 one, from the
 *				Dovecot files; the commit
 *	upgrade_adopt.c		the same, adopting a format 2 peer's UIDs
 */
#ifndef UPGRADE_P_H
#define UPGRADE_P_H

#include <stdbool.h>
#include <stddef.h>

#include "imaprec.h"
#include "oid.h"
#include "repo.h"
#include "strmap.h"
#include "strvec.h"
#include "upgrade.h"

/* How long (ms) to wait for Dovecot to let go of a folder's uidlist. */
#define UPGRADE_LOCK_WAIT 30000

struct umsg {
	size_t folder;
	char *path;		/* its format 1 tree path */
	char *name;		/* its file name, letters and all */
	char sub[4];
	struct oid blob;
};

struct ufolder {
	char *name;		/* "" for INBOX, else ".Name" */
	struct strvec files;	/* its messages' file names */
};

struct upgrade {
	struct strmap index;	/* folder name -> position in f */
	struct ufolder *f;
	size_t nf, alf;
	struct umsg *m;
	size_t nm, alm;
	struct imap_recs shard[256];
};

/* What a format 2 peer says of one of our folders. */
struct peer_folder {
	bool have;		/* the peer has the folder (and its record) */
	struct imap_folder f;
	struct strmap uid;	/* key -> UID, of its messages in the folder */
};

/*
 * For each of u's folders, what the peer's tree says (*out, u->nf of
 * them; free with upgrade_peer_folders_free()).  0 or E_FAIL.
 */
int upgrade_peer_folders(struct peer_folder **out, struct upgrade *u,
			 struct repo *r, const struct oid *peer_tree);
void upgrade_peer_folders_free(struct peer_folder *pf, size_t n);

/*
 * The records of folder f (disk directory dir) adopting the peer's
 * folder pf (pf->have), into u->shard[]; *fr its folder record.  Under
 * Dovecot's lock; when the UIDs or UIDVALIDITY change, the uidlist is
 * rewritten and the folder's Dovecot index removed.  0, E_TEMP (lock
 * held), E_INVALID, E_FAIL.
 */
int upgrade_adopt_folder(struct upgrade *u, struct ufolder *f,
			 struct imap_folder *fr, const struct peer_folder *pf,
			 const char *dir, unsigned slot,
			 struct upgrade_stats *st);

#endif
