/*
 * oid: the id of an object in the repository (its SHA-1: git's object
 * names in format version 1), the one id type of the programs and of the
 * library's headers.  The programs never see libgit2's git_oid; within
 * common/, repo_p.h hands a struct oid to libgit2 as it is (same layout).
 */
#ifndef OID_H
#define OID_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define OID_RAWSZ 20		/* bytes */
#define OID_HEXSZ 40		/* hexadecimal digits */

struct oid {
	unsigned char id[OID_RAWSZ];
};

static inline bool oid_equal(const struct oid *a, const struct oid *b)
{
	return !memcmp(a->id, b->id, OID_RAWSZ);
}

/* Byte order, as git sorts ids: < 0, 0, > 0. */
static inline int oid_cmp(const struct oid *a, const struct oid *b)
{
	return memcmp(a->id, b->id, OID_RAWSZ);
}

static inline void oid_cpy(struct oid *out, const struct oid *src)
{
	memcpy(out->id, src->id, OID_RAWSZ);
}

/* All zeros: "none" where an id is optional (a ref not there yet). */
bool oid_is_zero(const struct oid *id);

/*
 * The first n - 1 lower-case hex digits of id (at most OID_HEXSZ) into
 * out, NUL-terminated; out is returned.  n = OID_HEXSZ + 1 for all.
 */
char *oid_tostr(char *out, size_t n, const struct oid *id);

/* The OID_HEXSZ hex digits of id into out, not NUL-terminated. */
void oid_fmt(char *out, const struct oid *id);

/*
 * The hex digits of id in a static buffer, one of four used in turn: up
 * to four ids can be formatted for one printf.  Not for keeping.
 */
const char *oid_hex(const struct oid *id);

/*
 * Parse the first OID_HEXSZ characters of hex (either case) into *out.
 * 0, or E_INVALID when one of them is not a hex digit (out is then
 * unchanged).  What follows them is not looked at.
 */
int oid_fromstr(struct oid *out, const char *hex);

#endif
