/*
 * session: frames of the peer session protocol (see session.h).
 *
 * Everything here works on buffers the caller owns; a parser's answer
 * depends only on the bytes it is given, so a caller that reads in
 * pieces calls it again with more.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"

static void put32(struct strbuf *out, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };

	strbuf_add(out, b, 4);
}

static uint32_t get32(const char *p)
{
	const unsigned char *b = (const unsigned char *)p;

	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

void session_frame_add(struct strbuf *out, int type, const void *payload,
		       size_t len)
{
	if (len > SESSION_FRAME_MAX)
		log_fatal("session frame of %zu bytes", len);
	put32(out, (uint32_t)len);
	strbuf_addch(out, (char)type);
	strbuf_add(out, payload, len);
}

void session_frame_addf(struct strbuf *out, int type, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	session_frame_add(out, type, buf, (size_t)n);
}

void session_data_add(struct strbuf *out, uint32_t xfer, const void *data,
		      size_t len)
{
	const char *p = data;

	do {
		size_t n = len > SESSION_FRAME_MAX - 4 ? SESSION_FRAME_MAX - 4
						       : len;
		put32(out, (uint32_t)(n + 4));
		strbuf_addch(out, SESSION_DATA);
		put32(out, xfer);
		strbuf_add(out, p, n);
		p += n;
		len -= n;
	} while (len);
}

static bool known_type(int t)
{
	return t && strchr("PDKEAFNIOB", t);
}

int session_frame_parse(struct session_frame *f, size_t *used,
			const char *buf, size_t len)
{
	uint32_t n;

	if (len < 5)
		return 0;
	n = get32(buf);
	if (n > SESSION_FRAME_MAX || !known_type(buf[4]) ||
	    (buf[4] == SESSION_DATA && n < 4))
		return E_INVALID;
	if (len - 5 < n)
		return 0;
	f->type = buf[4];
	f->payload = buf + 5;
	f->len = n;
	*used = 5 + (size_t)n;
	return 1;
}

int session_fields(const char **v, size_t max, size_t *n, struct strbuf *out,
		   const struct session_frame *f)
{
	char *p;

	strbuf_reset(out);
	*n = 0;
	for (size_t i = 0; i < f->len; i++)
		if ((unsigned char)f->payload[i] < 0x20 ||
		    (unsigned char)f->payload[i] > 0x7e)
			return E_INVALID;
	strbuf_add(out, f->payload, f->len);
	p = out->buf;
	for (;;) {
		char *sp;

		v[(*n)++] = p;
		if (*n == max || !(sp = strchr(p, ' ')))
			break;
		*sp = '\0';
		p = sp + 1;
	}
	return 0;
}

void session_data(uint32_t *xfer, const char **data, size_t *len,
		  const struct session_frame *f)
{
	*xfer = get32(f->payload);
	*data = f->payload + 4;
	*len = f->len - 4;
}

int session_id(struct oid *out, bool *have, const char *field)
{
	memset(out, 0, sizeof *out);
	*have = false;
	if (!strcmp(field, "-"))
		return 0;
	if (strlen(field) != OID_HEXSZ ||
	    strspn(field, "0123456789abcdef") != OID_HEXSZ ||
	    oid_fromstr(out, field) < 0)
		return E_INVALID;
	*have = true;
	return 0;
}

const char *session_id_str(const struct oid *id, bool have)
{
	static char hex[OID_HEXSZ + 1];

	if (!have)
		return "-";
	return oid_tostr(hex, sizeof hex, id);
}

int session_number(unsigned long long *out, const char *field,
		   unsigned long long max)
{
	unsigned long long v = 0;

	if (!*field || strlen(field) > 20 ||
	    strspn(field, "0123456789") != strlen(field))
		return E_INVALID;
	for (const char *p = field; *p; p++) {
		if (v > (max - (unsigned)(*p - '0')) / 10)
			return E_INVALID;
		v = v * 10 + (unsigned)(*p - '0');
	}
	*out = v;
	return 0;
}

void session_hello_format(struct strbuf *out, const struct session_hello *h)
{
	strbuf_addf(out, "%s node=%s peer=%s head=", SESSION_COMMAND, h->node,
		    h->peer);
	strbuf_addstr(out, session_id_str(&h->head, h->have_head));
	strbuf_addstr(out, " have=");
	strbuf_addstr(out, session_id_str(&h->have, h->have_have));
	strbuf_addch(out, '\n');
}

/* "key=value" of a field into out (at most max bytes with its NUL). */
static int take(char *out, size_t max, const char *field, const char *key)
{
	size_t k = strlen(key), n;

	if (strncmp(field, key, k) || field[k] != '=')
		return E_INVALID;
	n = strlen(field + k + 1);
	if (!n || n >= max)
		return E_INVALID;
	memcpy(out, field + k + 1, n + 1);
	return 0;
}

int session_hello_parse(struct session_hello *h, const char *line,
			size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	char *f[6], *p, head[OID_HEXSZ + 2], have[OID_HEXSZ + 2];
	size_t n = 0, cl = strlen(SESSION_COMMAND);
	int ret = E_INVALID;

	memset(h, 0, sizeof *h);
	if (len && line[len - 1] == '\n')
		len--;
	if (len >= SESSION_HELLO_MAX || len <= cl ||
	    memcmp(line, SESSION_COMMAND, cl) || line[cl] != ' ')
		return E_INVALID;
	strbuf_add(&sb, line + cl + 1, len - cl - 1);
	for (p = sb.buf; n < 6 && p; n++) {
		f[n] = p;
		if ((p = strchr(p, ' ')))
			*p++ = '\0';
	}
	if (n != 4 || p ||
	    take(h->node, sizeof h->node, f[0], "node") < 0 ||
	    take(h->peer, sizeof h->peer, f[1], "peer") < 0 ||
	    take(head, sizeof head, f[2], "head") < 0 ||
	    take(have, sizeof have, f[3], "have") < 0 ||
	    session_id(&h->head, &h->have_head, head) < 0 ||
	    session_id(&h->have, &h->have_have, have) < 0)
		goto done;
	ret = 0;
done:
	strbuf_release(&sb);
	return ret;
}
