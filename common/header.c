/*
 * header: header fields of a message (see header.h).
 */
#include "autoconf.h"

#include <string.h>
#include <strings.h>

#include "header.h"

void header_value(struct strbuf *out, const char *msg, size_t len,
		  const char *name, size_t max)
{
	size_t nlen = strlen(name), start = out->len;
	const char *p = msg;
	const char *end = msg + (len < HEADER_SCAN_MAX ? len : HEADER_SCAN_MAX);

	max += start;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if (eol == p || (eol == p + 1 && *p == '\r'))
			break;	/* end of the header */
		if ((size_t)(eol - p) > nlen && !strncasecmp(p, name, nlen) &&
		    p[nlen] == ':') {
			const char *v = p + nlen + 1;
			for (;;) {
				for (; v < eol && out->len < max; v++) {
					unsigned char c = (unsigned char)*v;
					if (c == '\r')
						continue;
					strbuf_addch(out, c < 0x20 || c == 0x7f ? ' ' : c);
				}
				/* continuation lines start with white space */
				if (eol + 1 < end && (eol[1] == ' ' || eol[1] == '\t')) {
					v = eol + 1;
					eol = memchr(v, '\n', (size_t)(end - v));
					if (!eol)
						eol = end;
					continue;
				}
				break;
			}
			while (out->len > start && out->buf[start] == ' ') {
				memmove(out->buf + start, out->buf + start + 1,
					out->len - start);
				out->len--;
			}
			return;
		}
		p = eol + 1;
	}
}
