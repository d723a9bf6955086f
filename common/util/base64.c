/*
 * base64: the standard alphabet of RFC 4648; see base64.h.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "strbuf.h"
#include "xalloc.h"

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(int ch)
{
	const char *p = ch ? strchr(b64_chars, ch) : NULL;

	return p ? (int)(p - b64_chars) : -1;
}

unsigned char *base64_decode(const char *s, size_t *outlen)
{
	size_t n = strlen(s), pad = 0, o = 0;
	unsigned char *out;
	uint32_t acc = 0;

	while (n && s[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if (n % 4 == 1 || (pad && (n + pad) % 4))
		return NULL;
	out = xmalloc(n / 4 * 3 + 3);
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(s[i]);

		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			out[o++] = (unsigned char)(acc >> 16);
			out[o++] = (unsigned char)(acc >> 8);
			out[o++] = (unsigned char)acc;
		}
	}
	if (n % 4 == 2) {
		out[o++] = (unsigned char)(acc >> 4);
	} else if (n % 4 == 3) {
		out[o++] = (unsigned char)(acc >> 10);
		out[o++] = (unsigned char)(acc >> 2);
	}
	*outlen = o;
	return out;
}

void base64_encode(struct strbuf *sb, const unsigned char *d, size_t n,
		   bool pad)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)d[i + 1] << 8;
		if (left > 2)
			v |= d[i + 2];
		strbuf_addch(sb, b64_chars[v >> 18 & 63]);
		strbuf_addch(sb, b64_chars[v >> 12 & 63]);
		if (left > 1)
			strbuf_addch(sb, b64_chars[v >> 6 & 63]);
		if (left > 2)
			strbuf_addch(sb, b64_chars[v & 63]);
		else if (pad)
			strbuf_addstr(sb, left > 1 ? "=" : "==");
	}
}
