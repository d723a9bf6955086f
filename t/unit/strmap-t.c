/*
 * Unit tests for common/util/strmap.c: puts, gets and removals against a
 * plain array kept beside it, with enough keys to grow the table and to
 * make removals shift probe runs back.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "strmap.h"

#define N 20000

int main(void)
{
	struct strmap m = STRMAP_INIT;
	static char present[N];
	char k[32];
	size_t v, bad = 0;

	ok(!strmap_get(&m, "x", &v), "an empty map has nothing");
	ok(!strmap_del(&m, "x"), "nothing to remove from an empty map");
	for (size_t i = 0; i < N; i++) {
		snprintf(k, sizeof k, ".f%05zu", i);
		if (!strmap_put(&m, k, i))
			bad++;
		present[i] = 1;
	}
	is_int((int)bad, 0, "every new key is new");
	is_int((int)m.n, N, "the map counts its keys");
	ok(!strmap_put(&m, ".f00007", 70), "a key put again is not new");
	ok(strmap_get(&m, ".f00007", &v) && v == 70, "its value is replaced");
	/* remove every third key: runs are shifted back, nothing is lost */
	for (size_t i = 0; i < N; i += 3) {
		snprintf(k, sizeof k, ".f%05zu", i);
		if (!strmap_del(&m, k))
			bad++;
		present[i] = 0;
	}
	is_int((int)bad, 0, "every removal finds its key");
	for (size_t i = 0; i < N; i++) {
		snprintf(k, sizeof k, ".f%05zu", i);
		if (strmap_get(&m, k, &v) != (bool)present[i] ||
		    (present[i] && v != (i == 7 ? 70 : i)))
			bad++;
	}
	is_int((int)bad, 0, "what is left is there with its value, the rest not");
	ok(!strmap_has(&m, "f00001") && !strmap_has(&m, ""), "other keys are absent");
	strmap_put(&m, "", 1);
	ok(strmap_has(&m, ""), "the empty string is a key like any other");
	strmap_clear(&m);
	ok(m.n == 0 && !strmap_has(&m, ".f00001"), "cleared");
	ok(strmap_put(&m, "again", 2), "a cleared map is usable");
	strmap_clear(&m);
	return tap_done();
}
