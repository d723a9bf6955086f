/*
 * delivery: the delivery record, what a commit says about the messages
 * it delivered (maildag-format(5), "Commits").  Its form is known to
 * delivery.c alone: maildag-lda writes it for its group commit,
 * maildag-syncd for the journalled deliveries it claims, maildag-lda's
 * retry check looks for it, and maildag log prints it.
 */
#ifndef DELIVERY_H
#define DELIVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "oid.h"
#include "strbuf.h"

struct repo;

/* The record of the messages one commit delivers, as it is built. */
struct delivery_record {
	struct strbuf lines;	/* one pair of lines per message */
	size_t n;		/* messages */
	char *folder;		/* the first message's folder, "" INBOX */
};

#define DELIVERY_RECORD_INIT { STRBUF_INIT, 0, NULL }

/* Add a message delivered to folder, at path in the tree, with blob. */
void delivery_record_add(struct delivery_record *d, const char *folder,
			 const char *path, const struct oid *blob);

/*
 * Add to d the input of a delivery through dovecot-lda (Sieve): the
 * bytes handed to it, after the pairs of what it stored.  A retry of
 * those bytes finds the record by this line too.
 */
void delivery_record_input(struct delivery_record *d, const struct oid *blob);

/*
 * The commit message of d: its subject, which says where the messages
 * went, then the record.  With subject (not NULL, one line without its
 * newline), that subject instead: a commit that holds other changes too.
 */
void delivery_record_message(struct strbuf *out,
			     const struct delivery_record *d,
			     const char *subject);

void delivery_record_release(struct delivery_record *d);

/* One message of a record, as parsed from a commit message. */
struct delivery_item {
	const char *path;	/* in the tree, path_len bytes, in the message */
	size_t path_len;
	struct oid blob;
	bool has_blob;
};

/*
 * Is message a commit that delivers messages and nothing else (so that
 * it reads as a list of them)?
 */
bool delivery_message_is_delivery(const char *message);

/*
 * The next message a commit message records: *pos starts at the
 * message, and is moved on.  Returns false when there are no more.
 */
bool delivery_record_next(struct delivery_item *out, const char **pos);

/*
 * The newest commit on refs/heads/mail from the last window seconds that
 * records a delivery of blob: 0 with *out set, E_NOTFOUND, or E_FAIL
 * (logged).  maildag-lda's retry check, and the commit it waits for
 * quorum on.
 */
int delivery_find_recent(struct oid *out, struct repo *r,
			 const struct oid *blob,
			 long window);

#endif
