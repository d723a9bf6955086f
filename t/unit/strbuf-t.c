/* Unit tests for common/util/strbuf.c */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "strbuf.h"

int main(void)
{
	struct strbuf sb = STRBUF_INIT;
	char *p;
	size_t len;

	strbuf_init(&sb, 0);
	is_int((long long)sb.len, 0, "new buffer is empty");
	is_str(sb.buf, "", "new buffer is a valid string");
	strbuf_addstr(&sb, "abc");
	strbuf_addch(&sb, 'd');
	strbuf_addf(&sb, "-%d-%s", 42, "x");
	is_str(sb.buf, "abcd-42-x", "add, addch, addf");
	strbuf_add(&sb, "\0z", 2);
	is_int((long long)sb.len, 11, "embedded NUL counted");
	ok(sb.buf[sb.len] == '\0', "always terminated");
	strbuf_reset(&sb);
	for (int i = 0; i < 10000; i++)
		strbuf_addf(&sb, "%04d", i % 10000);
	is_int((long long)sb.len, 40000, "grows across many appends");
	ok(!memcmp(sb.buf + 39996, "9999", 4), "content kept while growing");
	p = strbuf_detach(&sb, &len);
	is_int((long long)len, 40000, "detach gives the length");
	is_int((long long)sb.len, 0, "detach leaves the buffer empty");
	free(p);
	strbuf_release(&sb);
	strbuf_release(&sb);
	ok(1, "release twice is harmless");
	{
		/* one format longer than any fixed buffer it replaced */
		static char big[10001];
		struct strbuf v = STRBUF_INIT;
		memset(big, 'x', sizeof big - 1);
		strbuf_addf(&v, "<%s>%d", big, 7);
		is_int((long long)v.len, 10003, "addf: a long format, whole");
		ok(v.buf[0] == '<' && !strcmp(v.buf + 10001, ">7"),
		   "addf: its end kept");
		strbuf_release(&v);
	}
	return tap_done();
}
