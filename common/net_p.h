/*
 * net_p: what the parts of net share, and nothing outside common/net*.c
 * may use.
 *
 *	net.c		push and fetch with one peer, in a child
 *	net_anchor.c	the purge anchor a push hides (doc/purge.md 1.3)
 */
#ifndef NET_P_H
#define NET_P_H

#include <stdbool.h>

#include <git2.h>

#include "oid.h"
#include "repo.h"

/*
 * The purge anchor of refs/heads/mail's purged/ set, written, in *out;
 * *made false (and nothing written) when the set is empty.  0, or < 0
 * (logged).
 */
int net_anchor_make(struct oid *out, bool *made, struct repo *r);

/*
 * libgit2's transport for url, wrapped so that the peer seems to
 * advertise anchor too (a git_transport_cb's work).  libgit2's error.
 */
int net_anchor_transport(git_transport **out, git_remote *owner,
			 const char *url, const struct oid *anchor);

#endif
