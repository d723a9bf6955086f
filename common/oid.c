/*
 * oid: object ids (see oid.h).
 */
#include "autoconf.h"

#include "hex.h"
#include "log.h"
#include "oid.h"

static const char digits[] = "0123456789abcdef";

bool oid_is_zero(const struct oid *id)
{
	for (size_t i = 0; i < OID_RAWSZ; i++)
		if (id->id[i])
			return false;
	return true;
}

void oid_fmt(char *out, const struct oid *id)
{
	for (size_t i = 0; i < OID_RAWSZ; i++) {
		out[2 * i] = digits[id->id[i] >> 4];
		out[2 * i + 1] = digits[id->id[i] & 0xf];
	}
}

char *oid_tostr(char *out, size_t n, const struct oid *id)
{
	char hex[OID_HEXSZ];

	if (!n)
		return out;
	if (n > OID_HEXSZ + 1)
		n = OID_HEXSZ + 1;
	oid_fmt(hex, id);
	memcpy(out, hex, n - 1);
	out[n - 1] = '\0';
	return out;
}

const char *oid_hex(const struct oid *id)
{
	static char bufs[4][OID_HEXSZ + 1];
	static unsigned next;
	char *b = bufs[next++ % 4];

	return oid_tostr(b, OID_HEXSZ + 1, id);
}

int oid_fromstr(struct oid *out, const char *hex)
{
	struct oid id;

	for (size_t i = 0; i < OID_RAWSZ; i++) {
		int hi = hex_value(hex[2 * i]), lo;
		/* a NUL ends the string: its next byte is not read */
		if (hi < 0 || (lo = hex_value(hex[2 * i + 1])) < 0)
			return E_INVALID;
		id.id[i] = (unsigned char)(hi << 4 | lo);
	}
	*out = id;
	return 0;
}
