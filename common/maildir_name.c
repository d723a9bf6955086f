/*
 * maildir_name: parse and format Maildir file names (see maildir_name.h).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fnv.h"
#include "log.h"
#include "maildir_name.h"
#include "xalloc.h"

size_t maildir_key_len(const char *name)
{
	return strcspn(name, ",:");
}

bool maildir_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > MAILDIR_NAME_MAX || name[0] == '.')
		return false;
	if (maildir_key_len(name) == 0)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int maildir_name_parse(struct maildir_name *out, const char *name)
{
	size_t klen, flen;
	const char *colon;

	memset(out, 0, sizeof *out);
	if (!maildir_name_valid(name))
		return E_INVALID;
	klen = maildir_key_len(name);
	colon = strchr(name + klen, ':');
	flen = colon ? (size_t)(colon - (name + klen)) : strlen(name + klen);
	out->key = xstrndup(name, klen);
	out->fields = xstrndup(name + klen, flen);
	out->info = colon ? xstrdup(colon + 1) : NULL;
	return 0;
}

void maildir_name_release(struct maildir_name *n)
{
	free(n->key);
	free(n->fields);
	free(n->info);
	memset(n, 0, sizeof *n);
}

void maildir_name_format(struct strbuf *out, const struct maildir_name *n)
{
	strbuf_addstr(out, n->key);
	strbuf_addstr(out, n->fields);
	if (n->info) {
		strbuf_addch(out, ':');
		strbuf_addstr(out, n->info);
	}
}

const char *maildir_name_flags(const struct maildir_name *n)
{
	if (n->info && n->info[0] == '2' && n->info[1] == ',')
		return n->info + 2;
	return "";
}

void maildir_flags_normalize(char *flags)
{
	unsigned char seen[256] = { 0 };
	char *w = flags;

	for (const char *r = flags; *r; r++)
		seen[(unsigned char)*r] = 1;
	for (int c = 1; c < 256; c++)
		if (seen[c])
			*w++ = (char)c;
	*w = '\0';
}

void maildir_name_set_flags(struct maildir_name *n, const char *flags)
{
	char *info = xasprintf("2,%s", flags);

	maildir_flags_normalize(info + 2);
	free(n->info);
	n->info = info;
}

int maildir_name_field(const struct maildir_name *n, char c,
		       unsigned long long *out)
{
	for (const char *p = n->fields; (p = strchr(p, ',')); p++) {
		if (p[1] == c && p[2] == '=') {
			char *end;
			unsigned long long v = strtoull(p + 3, &end, 10);
			if (end == p + 3 || (*end && *end != ','))
				return E_NOTFOUND;
			*out = v;
			return 0;
		}
	}
	return E_NOTFOUND;
}

unsigned maildir_shard(const char *key, size_t len)
{
	return fnv1a32(key, len) & 0xff;
}

void maildir_shard_hex(char out[3], const char *key, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned s = maildir_shard(key, len);

	out[0] = hex[s >> 4];
	out[1] = hex[s & 15];
	out[2] = '\0';
}

long long maildir_key_time(const char *key)
{
	long long v = 0;
	const char *p = key;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (1LL << 40))
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}
