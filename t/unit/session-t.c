/*
 * session-t: the frames of the peer session protocol (session.h).
 * Round trips of every type; a frame fed one byte at a time is whole
 * only at its last byte; DATA split at the frame limit and joined again;
 * hostile input: lengths over the limit (refused before the payload is
 * waited for), unknown types, DATA without its transfer number, control
 * bytes in text, fields out of range; the hello line and what is not one.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"
#include "../tap.h"

static void round_trips(void)
{
	static const int types[] = {
		SESSION_PUSH, SESSION_OK, SESSION_ERR, SESSION_ANNOUNCE,
		SESSION_FETCH, SESSION_END, SESSION_PING, SESSION_PONG,
		SESSION_BYE,
	};
	struct strbuf sb = STRBUF_INIT, fields = STRBUF_INIT;
	struct session_frame f;
	size_t used, n, off = 0;
	const char *v[4];

	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		session_frame_addf(&sb, types[i], "%zu two three", i);
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		char want[32];
		int r = session_frame_parse(&f, &used, sb.buf + off, sb.len - off);

		snprintf(want, sizeof want, "%zu", i);
		ok(r == 1 && f.type == types[i], "frame %zu: its type", i);
		ok(session_fields(v, 4, &n, &fields, &f) == 0 && n == 3 &&
		   !strcmp(v[0], want) && !strcmp(v[2], "three"),
		   "frame %zu: its fields", i);
		off += used;
	}
	is_int((int)off, (int)sb.len, "every byte used");
	/* at most max fields: the last keeps the rest */
	strbuf_reset(&sb);
	session_frame_addf(&sb, SESSION_ERR, "1 invalid - a reason with spaces");
	session_frame_parse(&f, &used, sb.buf, sb.len);
	ok(session_fields(v, 4, &n, &fields, &f) == 0 && n == 4 &&
	   !strcmp(v[3], "a reason with spaces"), "the last field keeps the rest");
	strbuf_release(&sb);
	strbuf_release(&fields);
}

static void byte_by_byte(void)
{
	struct strbuf sb = STRBUF_INIT;
	struct session_frame f;
	size_t used;
	bool early = false;

	session_frame_addf(&sb, SESSION_PUSH, "7 - %040d 12", 0);
	for (size_t len = 0; len < sb.len; len++)
		early |= session_frame_parse(&f, &used, sb.buf, len) != 0;
	ok(!early, "no frame before its last byte");
	ok(session_frame_parse(&f, &used, sb.buf, sb.len) == 1 && used == sb.len,
	   "the frame at its last byte");
	strbuf_release(&sb);
}

static void data(void)
{
	struct strbuf sb = STRBUF_INIT, back = STRBUF_INIT;
	size_t len = 3 * SESSION_FRAME_MAX + 17, off = 0, used, frames = 0;
	char *buf = malloc(len);
	struct session_frame f;
	bool all_ours = true;

	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(i * 7);
	session_data_add(&sb, 42, buf, len);
	while (session_frame_parse(&f, &used, sb.buf + off, sb.len - off) == 1) {
		uint32_t xfer;
		const char *d;
		size_t n;

		session_data(&xfer, &d, &n, &f);
		all_ours &= f.type == SESSION_DATA && xfer == 42 &&
			    f.len <= SESSION_FRAME_MAX;
		strbuf_add(&back, d, n);
		off += used;
		frames++;
	}
	ok(all_ours, "DATA frames: the transfer's, within the limit");
	is_int((int)frames, 4, "a pack of 3 frames and a bit is 4 frames");
	ok(back.len == len && !memcmp(back.buf, buf, len), "joined again");
	strbuf_reset(&sb);
	session_data_add(&sb, 1, "", 0);
	ok(session_frame_parse(&f, &used, sb.buf, sb.len) == 1 && f.len == 4,
	   "an empty DATA frame still carries its transfer");
	free(buf);
	strbuf_release(&sb);
	strbuf_release(&back);
}

static void hostile(void)
{
	struct session_frame f;
	struct strbuf fields = STRBUF_INIT;
	const char *v[2];
	size_t used, n;
	unsigned long long num;
	struct oid id;
	bool have;
	/* a length over the limit, no payload at all: refused at once */
	static const char big[] = { 0x00, 0x01, 0x00, 0x01, 'P' };
	static const char huge[] = { (char)0xff, (char)0xff, (char)0xff, (char)0xff, 'D' };
	static const char unknown[] = { 0, 0, 0, 0, 'Z' };
	static const char short_data[] = { 0, 0, 0, 3, 'D', 1, 2, 3 };
	static const char ctl[] = { 0, 0, 0, 3, 'P', 'a', '\n', 'b' };
	static const char nul[] = { 0, 0, 0, 3, 'P', 'a', '\0', 'b' };

	is_int(session_frame_parse(&f, &used, big, sizeof big), E_INVALID,
	       "64 KiB + 1 bytes: refused before the payload");
	is_int(session_frame_parse(&f, &used, huge, sizeof huge), E_INVALID,
	       "4 GiB: refused");
	is_int(session_frame_parse(&f, &used, unknown, sizeof unknown), E_INVALID,
	       "an unknown type");
	is_int(session_frame_parse(&f, &used, short_data, sizeof short_data),
	       E_INVALID, "DATA without a whole transfer number");
	ok(session_frame_parse(&f, &used, ctl, sizeof ctl) == 1 &&
	   session_fields(v, 2, &n, &fields, &f) == E_INVALID,
	   "a newline in a text frame");
	ok(session_frame_parse(&f, &used, nul, sizeof nul) == 1 &&
	   session_fields(v, 2, &n, &fields, &f) == E_INVALID,
	   "a NUL in a text frame");
	is_int(session_number(&num, "18446744073709551616", ~0ULL), E_INVALID,
	       "a number over 2^64-1");
	is_int(session_number(&num, "12a", ~0ULL), E_INVALID, "not a number");
	is_int(session_number(&num, "", ~0ULL), E_INVALID, "an empty number");
	ok(session_number(&num, "513", 512) == E_INVALID &&
	   session_number(&num, "512", 512) == 0 && num == 512, "the maximum");
	is_int(session_id(&id, &have, "ABCDEF0123456789abcdef0123456789abcdef01"),
	       E_INVALID, "an id in capitals");
	is_int(session_id(&id, &have, "abc"), E_INVALID, "a short id");
	ok(session_id(&id, &have, "-") == 0 && !have, "no id");
	strbuf_release(&fields);
}

/* parse a whole C string */
static int hp(struct session_hello *h, const char *line)
{
	return session_hello_parse(h, line, strlen(line));
}

static void hello(void)
{
	struct strbuf sb = STRBUF_INIT;
	struct session_hello h = { 0 }, back;

	snprintf(h.node, sizeof h.node, "mx2");
	snprintf(h.peer, sizeof h.peer, "mx1");
	oid_fromstr(&h.head, "0123456789abcdef0123456789abcdef01234567");
	h.have_head = true;
	session_hello_format(&sb, &h);
	is_str(sb.buf, "maildag-session 1 node=mx2 peer=mx1 "
	       "head=0123456789abcdef0123456789abcdef01234567 have=-\n",
	       "the hello line");
	ok(session_hello_parse(&back, sb.buf, sb.len) == 0 &&
	   !strcmp(back.node, "mx2") && !strcmp(back.peer, "mx1") &&
	   back.have_head && oid_equal(&back.head, &h.head) && !back.have_have,
	   "parsed back");
	ok(hp(&back, "maildag: refused: 'maildag-session 1': "
			       "this key serves git only\n") == E_INVALID,
	   "an older serve's refusal is no hello");
	ok(hp(&back, "maildag-session 2 node=a peer=b head=- "
			       "have=-\n") == E_INVALID, "another version");
	ok(hp(&back, "maildag-session 1 node=a peer=b head=- "
			       "have=- more=1\n") == E_INVALID, "a field too many");
	ok(hp(&back, "maildag-session 1 node= peer=b head=- "
			       "have=-\n") == E_INVALID, "an empty name");
	strbuf_release(&sb);
}

int main(void)
{
	round_trips();
	byte_by_byte();
	data();
	hostile();
	hello();
	return tap_done();
}
