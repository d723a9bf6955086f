/*
 * sha256: SHA-256 (FIPS 180-4) of a buffer in memory, for what must match
 * another program's digest byte for byte (an OpenSSH host key's
 * fingerprint).  Not for secrets: no attempt at constant time.
 */
#ifndef SHA256_H
#define SHA256_H

#include <stddef.h>

/* The digest of the n bytes at d. */
void sha256_digest(const unsigned char *d, size_t n, unsigned char out[32]);

#endif
