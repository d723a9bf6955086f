/*
 * session: the framing of maildag's peer session protocol (issue 15,
 * doc/persistent-peers.md 5.2), pure: no I/O, no libgit2.
 *
 * One ssh channel runs the forced command `maildag serve --peer NAME`
 * with SESSION_COMMAND as the peer's command.  serve first writes one
 * hello line (session_hello_format), then both sides speak frames:
 *
 *	4 bytes		big-endian length of what follows the type byte
 *	1 byte		type (enum session_type)
 *	length bytes	payload: text fields separated by one space, or,
 *			for SESSION_DATA, a 4-byte big-endian transfer
 *			number and raw bytes
 *
 * No payload is longer than SESSION_FRAME_MAX; a large pack is many DATA
 * frames.  The text payloads:
 *
 *	C: PUSH xfer old new size	a pack of new ^ old follows in DATA
 *	S: OK xfer new			refs/peers/<client>/mail is new, on disk
 *	S: ERR xfer class have text	refused; class: invalid, limit, race,
 *					temp; have: the ref now ("-": none)
 *	S: ANNOUNCE id			serve's refs/heads/mail is id
 *	C: FETCH xfer want have		send want ^ have ("-": everything)
 *	S: END xfer			the pack of FETCH xfer is complete
 *	S: PING n   C: PONG n		heartbeat
 *	either: BYE reason		orderly end
 *
 * Ids are 40 lowercase hex digits, or "-" for none; numbers decimal.
 * Invariants: a parser never reads past what it was given, never trusts
 * a length (a frame over SESSION_FRAME_MAX is invalid before a byte of
 * its payload is waited for), and text payloads hold printable ASCII.
 */
#ifndef SESSION_H
#define SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oid.h"
#include "strbuf.h"

/* What the client asks for as the peer's command (SSH_ORIGINAL_COMMAND). */
#define SESSION_COMMAND "maildag-session 1"
/* The longest payload of one frame. */
#define SESSION_FRAME_MAX (64 * 1024)
/* The longest hello line, its newline included. */
#define SESSION_HELLO_MAX 512

enum session_type {
	SESSION_PUSH = 'P',
	SESSION_DATA = 'D',
	SESSION_OK = 'K',
	SESSION_ERR = 'E',
	SESSION_ANNOUNCE = 'A',
	SESSION_FETCH = 'F',
	SESSION_END = 'N',
	SESSION_PING = 'I',
	SESSION_PONG = 'O',
	SESSION_BYE = 'B',
};

/* One frame inside a buffer: payload points into it (not terminated). */
struct session_frame {
	int type;
	const char *payload;
	size_t len;
};

/* Append one frame; len must be at most SESSION_FRAME_MAX. */
void session_frame_add(struct strbuf *out, int type, const void *payload,
		       size_t len);
/* Append one text frame (printf). */
void session_frame_addf(struct strbuf *out, int type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Append len bytes for transfer xfer as as many DATA frames as needed. */
void session_data_add(struct strbuf *out, uint32_t xfer, const void *data,
		      size_t len);

/*
 * The first frame of buf (len bytes): 1 with *f set and *used its whole
 * size; 0 when buf holds only part of it (read more); E_INVALID when it
 * cannot be one (an unknown type, a length over SESSION_FRAME_MAX, a
 * DATA frame without its transfer number).
 */
int session_frame_parse(struct session_frame *f, size_t *used,
			const char *buf, size_t len);

/*
 * A text payload split into at most max fields (the last keeps the rest
 * of the line, spaces and all): 0 with out holding a copy whose fields
 * v[0..*n) point into, or E_INVALID when it holds a byte outside
 * printable ASCII.  out is reset first.
 */
int session_fields(const char **v, size_t max, size_t *n, struct strbuf *out,
		   const struct session_frame *f);

/* A DATA frame's transfer number and bytes. */
void session_data(uint32_t *xfer, const char **data, size_t *len,
		  const struct session_frame *f);

/* An id field: 40 hex digits (*have true) or "-" (*have false); E_INVALID. */
int session_id(struct oid *out, bool *have, const char *field);
/* An id for a field: its hex, or "-" (static buffer, valid until next call). */
const char *session_id_str(const struct oid *id, bool have);
/* A decimal number field into *out, at most max; E_INVALID. */
int session_number(unsigned long long *out, const char *field,
		   unsigned long long max);

/* The hello serve writes: who it is, whom it serves, what it holds. */
struct session_hello {
	char node[65], peer[65];
	struct oid head, have;	/* its refs/heads/mail, refs/peers/<peer>/mail */
	bool have_head, have_have;
};

/* Append the hello line, newline included. */
void session_hello_format(struct strbuf *out, const struct session_hello *h);
/*
 * Parse a hello line (newline included or not): 0, or E_INVALID when it
 * is not one of version 1 (another program's output, an error text).
 */
int session_hello_parse(struct session_hello *h, const char *line,
			size_t len);

#endif
