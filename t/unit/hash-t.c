/*
 * Unit tests for common/util/sha256.c and common/util/base64.c: the published test
 * vectors (FIPS 180-4's examples, RFC 4648 section 10), lengths around
 * SHA-256's block and padding edges against a second way of counting,
 * and what base64_decode refuses.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "base64.h"
#include "sha256.h"
#include "strbuf.h"

static void hex(char out[65], const unsigned char d[32])
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void sha_is(const char *in, size_t n, const char *want, const char *name)
{
	unsigned char d[32];
	char h[65];

	sha256_digest((const unsigned char *)in, n, d);
	hex(h, d);
	is_str(h, want, "sha256 %s", name);
}

static void b64_is(const char *in, const char *padded, const char *bare)
{
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
	unsigned char *d;
	size_t n = 99;

	base64_encode(&a, (const unsigned char *)in, strlen(in), true);
	base64_encode(&b, (const unsigned char *)in, strlen(in), false);
	is_str(a.buf, padded, "base64 '%s' padded", in);
	is_str(b.buf, bare, "base64 '%s' bare", in);
	d = base64_decode(padded, &n);
	ok(d && n == strlen(in) && !memcmp(d, in, n), "decode '%s'", padded);
	free(d);
	d = base64_decode(bare, &n);
	ok(d && n == strlen(in) && !memcmp(d, in, n), "decode '%s'", bare);
	free(d);
	strbuf_release(&a);
	strbuf_release(&b);
}

int main(void)
{
	static char million[1000000];
	size_t n;

	sha_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty");
	sha_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc");
	sha_is("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
	       "56 bytes (padding in a second block)");
	memset(million, 'a', sizeof million);
	sha_is(million, sizeof million,
	       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
	       "a million a's");
	sha_is(million, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
	       "64 a's (one whole block)");
	sha_is(million, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
	       "55 a's (the longest one-block message)");

	b64_is("", "", "");
	b64_is("f", "Zg==", "Zg");
	b64_is("fo", "Zm8=", "Zm8");
	b64_is("foo", "Zm9v", "Zm9v");
	b64_is("foob", "Zm9vYg==", "Zm9vYg");
	b64_is("fooba", "Zm9vYmE=", "Zm9vYmE");
	b64_is("foobar", "Zm9vYmFy", "Zm9vYmFy");
	ok(!base64_decode("Zm9v!", &n), "decode refuses a character outside the alphabet");
	ok(!base64_decode("Z", &n), "decode refuses one character too many");
	ok(!base64_decode("Zg=", &n), "decode refuses half padding");
	ok(!base64_decode("Zm-v", &n), "decode refuses the URL-safe alphabet");
	return tap_done();
}
