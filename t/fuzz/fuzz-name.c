/*
 * fuzz-name: libFuzzer target for Maildir file names and folder names
 * (common/maildir_name.c, common/folder.c).  Properties, each an abort()
 * when broken:
 *
 *  - maildir_name_parse() succeeds exactly for maildir_name_valid() names,
 *    and format(parse(x)) == x; the key is the name up to the first ',' or
 *    ':', never empty, the fields start with ',' and hold no ':';
 *  - the shard is below 256 and its hex spelling two lowercase digits;
 *  - after set_flags() the flags are sorted, unique, the same set of
 *    letters, and the name still parses to the same key and fields;
 *  - folder_dir_valid() and folder_from_mailbox() agree, and no valid
 *    folder name is a forbidden path component.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "folder.h"
#include "log.h"
#include "maildir_name.h"
#include "strbuf.h"
#include "xalloc.h"

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "broken: %s (%s:%d)\n", \
	#x, __FILE__, __LINE__); abort(); } } while (0)

static void check_name(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	struct maildir_name n, m;
	unsigned char had[256] = { 0 }, has[256] = { 0 };
	const char *flags;
	char hex[3], *copy;
	size_t klen = maildir_key_len(s);
	unsigned long long v;
	int r = maildir_name_parse(&n, s);

	if (!maildir_name_valid(s)) {
		CHECK(r == E_INVALID);
		return;
	}
	CHECK(r == 0);
	maildir_name_format(&sb, &n);
	CHECK(!strcmp(sb.buf, s));
	CHECK(klen > 0 && strlen(n.key) == klen && !memcmp(n.key, s, klen));
	CHECK(!strpbrk(n.key, ",:"));
	CHECK(n.fields[0] == '\0' || n.fields[0] == ',');
	CHECK(!strchr(n.fields, ':'));
	CHECK(maildir_shard(n.key, klen) < 256);
	maildir_shard_hex(hex, n.key, klen);
	CHECK(strlen(hex) == 2 && strspn(hex, "0123456789abcdef") == 2);
	CHECK(strtoul(hex, NULL, 16) == maildir_shard(n.key, klen));
	(void)maildir_name_field(&n, 'S', &v);
	(void)maildir_key_time(n.key);

	flags = maildir_name_flags(&n);
	for (const char *p = flags; *p; p++)
		had[(unsigned char)*p] = 1;
	copy = xstrdup(flags);
	maildir_name_set_flags(&n, copy);
	free(copy);
	flags = maildir_name_flags(&n);
	for (const char *p = flags; *p; p++) {
		CHECK(p == flags || (unsigned char)p[-1] < (unsigned char)*p);
		has[(unsigned char)*p] = 1;
	}
	CHECK(!memcmp(had, has, sizeof had));
	strbuf_reset(&sb);
	maildir_name_format(&sb, &n);
	/* normalising never adds a bad byte; only "2," can make it longer */
	CHECK(maildir_name_valid(sb.buf) == (sb.len <= MAILDIR_NAME_MAX));
	if (maildir_name_parse(&m, sb.buf) == 0) {
		CHECK(!strcmp(m.key, n.key) && !strcmp(m.fields, n.fields));
		CHECK(!strcmp(maildir_name_flags(&m), flags));
		maildir_name_release(&m);
	}
	strbuf_release(&sb);
	maildir_name_release(&n);
}

static void check_folder(const char *s)
{
	char *dir;

	if (folder_dir_valid(s)) {
		CHECK(*s == '\0' || (s[0] == '.' && !path_component_forbidden(s)));
		CHECK(strlen(s) <= FOLDER_NAME_MAX && !strchr(s, '/'));
	}
	dir = folder_from_mailbox(s);
	if (dir) {
		CHECK(folder_dir_valid(dir));
		(void)folder_display(dir);
	}
	free(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz-name", LOG_TO_STDERR, LOG_LVL_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 4096)
		return 0;
	s = xstrndup((const char *)data, size);	/* stops at a NUL */
	check_name(s);
	check_folder(s);
	free(s);
	return 0;
}
