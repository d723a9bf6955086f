/*
 * header: the few header fields maildag shows of a message (From,
 * Subject, Message-ID), read from its first bytes.  Knows RFC 5322's
 * header layout (fields, continuation lines, the blank line that ends the
 * header), nothing of git or of Maildirs.
 */
#ifndef HEADER_H
#define HEADER_H

#include <stddef.h>

#include "strbuf.h"

/* The header is looked for in this many bytes of a message at most. */
#define HEADER_SCAN_MAX 65536

/*
 * Append to out the value of the header field name (without its colon,
 * matched without regard to case) in the header of msg (len bytes): the
 * first such field, unfolded, control characters made spaces, leading
 * white space dropped, cut to max bytes.  Nothing is appended when the
 * field is absent.
 */
void header_value(struct strbuf *out, const char *msg, size_t len,
		  const char *name, size_t max);

#endif
