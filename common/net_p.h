/*
 * net_p: what the parts of net share, and nothing outside common/net*.c
 * may use.
 *
 *	net.c		push and fetch with one peer, in a child
 *	net_anchor.c	the purge anchor a push hides (doc/purge.md 1.3),
 *			and the file:// fetch that hides it too
 */
#ifndef NET_P_H
#define NET_P_H

#include <stdbool.h>

#include "oid.h"
#include "repo.h"
#include "repo_p.h"

/*
 * The purge anchor of refs/heads/mail's purged/ set, written, in *out;
 * *made false (and nothing written) when the set is empty.  0, or < 0
 * (logged).
 */
int net_anchor_make(struct oid *out, bool *made, struct repo *r);

struct purged;

/* The anchor of set (not empty), written into r; *made true.  0 or E_FAIL. */
int net_anchor_write(struct oid *out, bool *made, struct repo *r,
		     const struct purged *set);

/*
 * A file:// fetch without libgit2's local transport, whose walk looks
 * for every blob the peer's new commits name, purged ones too: the
 * peer's history from theirs, less what our refs hold and the anchor of
 * both sides' purged sets, packed from the peer's repository at
 * peer_path (read only; our objects added to its view) into ours.
 * 0, or < 0: with *git_err libgit2's error code (its error still set),
 * else the reason in err.
 */
int net_local_copy(struct repo *r, const char *peer_path,
		   const struct oid *theirs, struct strbuf *err, int *git_err);

/*
 * libgit2's transport for url, wrapped so that the peer seems to
 * advertise anchor too (a git_transport_cb's work).  libgit2's error.
 */
int net_anchor_transport(git_transport **out, git_remote *owner,
			 const char *url, const struct oid *anchor);

#endif
