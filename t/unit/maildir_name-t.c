/* Unit tests for common/maildir_name.c: table-driven. */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "log.h"
#include "maildir_name.h"

static const struct {
	const char *name;
	const char *key, *fields, *info, *flags;
} good[] = {
	{ "1700000000.M1P2.host", "1700000000.M1P2.host", "", NULL, "" },
	{ "1700000000.M1P2.host:2,S", "1700000000.M1P2.host", "", "2,S", "S" },
	{ "1700000000.M1P2.host,S=1234:2,FS", "1700000000.M1P2.host", ",S=1234", "2,FS", "FS" },
	{ "1700000000.M1P2.host,S=1234,W=1300:2,", "1700000000.M1P2.host", ",S=1234,W=1300", "2,", "" },
	{ "a\\054b\\072c:2,RS", "a\\054b\\072c", "", "2,RS", "RS" },
	{ "k:1,xyz", "k", "", "1,xyz", "" },
	{ "k,", "k", ",", NULL, "" },
	{ "05:2,", "05", "", "2,", "" },
};

static const char *const bad[] = {
	"", ".hidden", ":2,S", ",S=12", "a/b", "a\nb", "a\tb", "a\x7f",
};

int main(void)
{
	struct strbuf sb = STRBUF_INIT;
	struct maildir_name n;
	char longname[300], flags[16], shard[3];
	unsigned long long v;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		int r = maildir_name_parse(&n, good[i].name);
		if (!is_int(r, 0, "parse '%s'", good[i].name))
			continue;
		is_str(n.key, good[i].key, "key of '%s'", good[i].name);
		is_str(n.fields, good[i].fields, "fields of '%s'", good[i].name);
		is_str(n.info, good[i].info, "info of '%s'", good[i].name);
		is_str(maildir_name_flags(&n), good[i].flags, "flags of '%s'",
		       good[i].name);
		is_int((long long)maildir_key_len(good[i].name),
		       (long long)strlen(good[i].key), "key length of '%s'",
		       good[i].name);
		strbuf_reset(&sb);
		maildir_name_format(&sb, &n);
		is_str(sb.buf, good[i].name, "format(parse('%s')) round trip",
		       good[i].name);
		maildir_name_release(&n);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		is_int(maildir_name_parse(&n, bad[i]), E_INVALID,
		       "refuse bad name %zu", i);
	memset(longname, 'a', 256);
	longname[256] = '\0';
	is_int(maildir_name_parse(&n, longname), E_INVALID, "refuse 256 bytes");
	longname[255] = '\0';
	is_int(maildir_name_parse(&n, longname), 0, "accept 255 bytes");
	maildir_name_release(&n);

	maildir_name_parse(&n, "k,S=77,W=80:2,TS");
	maildir_name_set_flags(&n, "SFaSF");
	strbuf_reset(&sb);
	maildir_name_format(&sb, &n);
	is_str(sb.buf, "k,S=77,W=80:2,FSa", "set_flags sorts, de-duplicates");
	is_int(maildir_name_field(&n, 'S', &v), 0, "field S found");
	is_int((long long)v, 77, "field S value");
	is_int(maildir_name_field(&n, 'W', &v), 0, "field W found");
	is_int((long long)v, 80, "field W value");
	is_int(maildir_name_field(&n, 'X', &v), E_NOTFOUND, "field X absent");
	maildir_name_release(&n);

	strcpy(flags, "TSRFDP");
	maildir_flags_normalize(flags);
	is_str(flags, "DFPRST", "normalize standard flags");

	/* the shard is fnv1a32(key) & 0xff; these values are fixed forever */
	maildir_shard_hex(shard, "", 0);
	is_str(shard, "c5", "shard of the empty key (fnv offset basis)");
	maildir_shard_hex(shard, "a", 1);
	is_str(shard, "2c", "shard of 'a'");
	ok(maildir_shard("1700000000.M1P2.host", 20) < 256, "shard in range");

	is_int(maildir_key_time("1700000000.M1P2.host"), 1700000000, "key time");
	is_int(maildir_key_time("x123"), -1, "no key time");
	strbuf_release(&sb);
	return tap_done();
}
