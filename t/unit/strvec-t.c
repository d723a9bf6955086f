/*
 * Unit tests for common/util/strvec.c and common/util/vec.h: pushing owned and
 * copied strings, lookup, sort, clear; a vector of structs grown past
 * many reallocations with its elements zeroed and kept.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "strvec.h"
#include "vec.h"
#include "xalloc.h"

struct item {
	int a;
	char *s;
};

struct itemv {
	struct item *v;
	size_t n, alloc;
};

int main(void)
{
	struct strvec sv = STRVEC_INIT;
	struct itemv iv = { 0 };
	char buf[] = "copied";
	size_t bad = 0;

	ok(!strvec_has(&sv, ""), "an empty vector has nothing");
	strvec_push(&sv, buf);
	buf[0] = 'X';
	is_str(sv.v[0], "copied", "push copies the string");
	strvec_push_nodup(&sv, xstrdup("b"));
	strvec_push(&sv, "a");
	is_int((long long)sv.n, 3, "three strings");
	ok(strvec_has(&sv, "a") && !strvec_has(&sv, "c"), "has");
	strvec_sort(&sv);
	is_str(sv.v[0], "a", "sorted: first");
	is_str(sv.v[2], "copied", "sorted: last");
	strvec_clear(&sv);
	ok(!sv.v && !sv.n && !sv.alloc, "clear leaves it empty");
	strvec_push(&sv, "again");
	is_str(sv.v[0], "again", "usable after clear");
	strvec_clear(&sv);

	for (int i = 0; i < 10000; i++) {
		struct item *it = VEC_PUSH(&iv);

		if (it->a || it->s)
			bad++;
		it->a = i;
	}
	for (size_t i = 0; i < iv.n; i++)
		if (iv.v[i].a != (int)i)
			bad++;
	is_int((long long)iv.n, 10000, "VEC_PUSH appends");
	is_int((long long)bad, 0, "each new element zeroed, the old kept");
	VEC_FREE(&iv);
	ok(!iv.v && !iv.n && !iv.alloc, "VEC_FREE leaves it empty");
	return tap_done();
}
