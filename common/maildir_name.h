/*
 * maildir_name: Maildir file names (DESIGN section 3).
 *
 * A name is <key>[,<fields>][:<info>], info being "2,<flags>" in practice.
 * The key is everything before the first ',' or ':' and never changes for
 * the life of a message; fields (",S=1234,W=1260") and flags may.  Flags
 * are kept sorted and unique; unknown flag letters are preserved.
 *
 * A name is valid when it is 1..255 bytes, does not start with '.', and
 * holds no '/', NUL or control character, and its key is not empty.
 */
#ifndef MAILDIR_NAME_H
#define MAILDIR_NAME_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define MAILDIR_NAME_MAX 255

struct maildir_name {
	char *key;	/* the unique part; owned */
	char *fields;	/* "" or ",S=...,W=..." with its leading comma; owned */
	char *info;	/* what follows ':', or NULL when there is no ':'; owned */
};

/* Parse name into out; E_INVALID (not logged) for an invalid name. */
int maildir_name_parse(struct maildir_name *out, const char *name);
void maildir_name_release(struct maildir_name *n);
/* Append the file name n describes to out. */
void maildir_name_format(struct strbuf *out, const struct maildir_name *n);

/* The flags ("" when the info is absent or not "2,..."); points into n. */
const char *maildir_name_flags(const struct maildir_name *n);
/* Set the flags to the sorted, unique letters of flags (info "2,..."). */
void maildir_name_set_flags(struct maildir_name *n, const char *flags);
/*
 * The numeric value of field c (',S=' and ',W=' are the usual ones);
 * 0 and *out set, or E_NOTFOUND.
 */
int maildir_name_field(const struct maildir_name *n, char c,
		       unsigned long long *out);

/* Length of the key at the start of name. */
size_t maildir_key_len(const char *name);
bool maildir_name_valid(const char *name);
/* Sort and de-duplicate the flag letters in place. */
void maildir_flags_normalize(char *flags);

/* The shard of a key: fnv1a32(key) & 0xff, and as two lowercase hex digits. */
unsigned maildir_shard(const char *key, size_t len);
void maildir_shard_hex(char out[3], const char *key, size_t len);

/*
 * The leading integer of a key (the delivery time in seconds for names of
 * the usual form), or -1.
 */
long long maildir_key_time(const char *key);

#endif
