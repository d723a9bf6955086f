/*
 * base64: the standard alphabet of RFC 4648 (not the URL-safe one), as
 * OpenSSH writes keys and fingerprints.
 */
#ifndef BASE64_H
#define BASE64_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf;

/*
 * The bytes s encodes, in a new buffer the caller frees (*outlen bytes);
 * "=" padding optional.  NULL when s is not base64.
 */
unsigned char *base64_decode(const char *s, size_t *outlen);

/* Append the n bytes at d, encoded; with "=" padding when pad is true
 * (OpenSSH prints fingerprints without). */
void base64_encode(struct strbuf *sb, const unsigned char *d, size_t n,
		   bool pad);

#endif
