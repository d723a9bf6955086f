/*
 * imaprec: the IMAP identity records of format 2 (doc/imap-identity.md
 * 4.2 and 4.3, maildag-format(5)): what the tree says of a message's UID
 * and keyword names, of a folder's UIDVALIDITY and UIDNEXT, and which
 * replica allocates UIDs where.
 *
 *	[<folder>/]imapfolder	"uidvalidity <n>\nuidnext <n>\n", in every
 *				folder that exists (INBOX always)
 *	imap/<xx>		message records of shard <xx>, sorted by key:
 *				"<key> TAB <uid> [TAB <kw> (SP <kw>)*] LF",
 *				<uid> "-" for an unnumbered message (a merge
 *				kept no side's UID; each replica that applies
 *				the tree numbers it from its own slot)
 *	uidslots		"<slot> <node>\n" lines, sorted, unique
 *
 * Numbers are decimal without leading zeros, 1 .. 4294967295.  A keyword
 * is an IMAP atom (RFC 3501 flag-keyword: no '\', no space, control
 * character, '(' ')' '{' '%' '*' '"' ']', nor byte >= 0x80), at most 255
 * bytes; the keywords of a record are sorted by their ASCII-lowercase
 * form, no two equal ignoring case.  A key is what maildir_name.h calls a
 * key (no control character, so TAB splits a line even when the key
 * holds a space).
 *
 * UID blocks (4.3): the UIDs 512c+1 .. 512c+512 form block c, which
 * belongs to slot c mod 8.  Slots 0-6 are replicas; slot 7 is reserved
 * (it was the merge's; the merge numbers nothing now).
 * A replica allocates only in its blocks, so two replicas never hand out
 * one UID, whatever they know of each other.
 *
 * Invariants: the parsers accept exactly what the formatters write (a
 * blob is valid when it is canonical); nothing here reads the
 * repository or the disk.
 */
#ifndef IMAPREC_H
#define IMAPREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define IMAPREC_FOLDER "imapfolder"	/* the folder record's entry name */
#define IMAPREC_DIR "imap"		/* the message records' tree */
#define IMAPREC_SLOTS "uidslots"	/* the slot table's entry name */
#define IMAP_UID_MAX 4294967295u
#define IMAP_KEYWORD_MAX 255
#define IMAP_BLOCK 512			/* UIDs in one block */
#define IMAP_SLOTS 8			/* slots the blocks go round */
#define IMAP_SLOT_MERGE 7		/* reserved (no replica allocates there) */

/* --- the folder record ------------------------------------------------ */

struct imap_folder {
	uint32_t uidvalidity;
	uint32_t uidnext;	/* above every UID the folder ever gave */
};

/*
 * Parse a folder record; 0, or E_INVALID (not logged) with the reason
 * appended to err (may be NULL) when buf is not exactly what
 * imap_folder_format() writes.
 */
int imap_folder_parse(struct imap_folder *out, const char *buf, size_t len,
		      struct strbuf *err);
void imap_folder_format(struct strbuf *out, const struct imap_folder *f);

/* --- keywords ---------------------------------------------------------- */

/* Is s (len bytes) a keyword a record may hold? */
bool imap_keyword_valid(const char *s, size_t len);

/* Compare two keywords by their ASCII-lowercase form (0: the same name). */
int imap_keyword_cmp(const char *a, const char *b);

/* --- message records --------------------------------------------------- */

struct imap_rec {
	char *key;		/* owned */
	uint32_t uid;		/* 0: unnumbered ("-") */
	char **kw;		/* owned, sorted by imap_keyword_cmp, unique */
	size_t nkw;
};

/* One shard's records, sorted by key (bytewise), unique. */
struct imap_recs {
	struct imap_rec *v;
	size_t n, alloc;
};

#define IMAP_RECS_INIT { NULL, 0, 0 }

/*
 * Parse the records of shard xx (two hex digits; NULL: any shard) into
 * out, which must be empty.  0, or E_INVALID (not logged) with the
 * reason appended to err (may be NULL: "line 3: keys not sorted"); out is
 * then empty.  Only the canonical form is accepted.
 */
int imap_recs_parse(struct imap_recs *out, const char *buf, size_t len,
		    const char *xx, struct strbuf *err);
void imap_recs_release(struct imap_recs *r);
/* Append the canonical blob of r (nothing when r is empty). */
void imap_recs_format(struct strbuf *out, const struct imap_recs *r);

/* The record of key, or NULL. */
const struct imap_rec *imap_recs_find(const struct imap_recs *r,
				      const char *key);
/*
 * Give key the UID and the keywords kw[0..nkw-1] (any order, any case
 * duplicates: the byte-wise smallest spelling of a name is kept; the
 * strings are copied).  Invalid keywords must have been refused before.
 */
void imap_recs_set(struct imap_recs *r, const char *key, uint32_t uid,
		   const char *const *kw, size_t nkw);
void imap_recs_remove(struct imap_recs *r, const char *key);

/* Append "imap/<xx>" for a key, or for a shard number. */
void imap_recs_path(struct strbuf *out, const char *key, size_t keylen);
void imap_recs_shard_path(struct strbuf *out, unsigned shard);

/* --- uidslots ---------------------------------------------------------- */

struct imap_slot {
	unsigned slot;		/* 0 .. IMAP_SLOT_MERGE - 1 */
	char *node;		/* owned; config_name_valid() */
};

/* The slot table, sorted by (slot, node), unique lines. */
struct imap_slots {
	struct imap_slot *v;
	size_t n, alloc;
};

#define IMAP_SLOTS_INIT { NULL, 0, 0 }

/* Parse uidslots; 0, or E_INVALID (not logged) with the reason in err. */
int imap_slots_parse(struct imap_slots *out, const char *buf, size_t len,
		     struct strbuf *err);
void imap_slots_release(struct imap_slots *s);
void imap_slots_format(struct strbuf *out, const struct imap_slots *s);
/* Add the line (slot, node) if it is not there. */
void imap_slots_add(struct imap_slots *s, unsigned slot, const char *node);
/*
 * The slot of node: the lowest of its lines, or, when it has none, the
 * lowest slot below IMAP_SLOT_MERGE no line names; -1 when all are taken.
 */
int imap_slots_claim(const struct imap_slots *s, const char *node);

/* --- UID blocks -------------------------------------------------------- */

/* The slot whose block holds uid (>= 1). */
unsigned imap_uid_slot(uint32_t uid);

/*
 * The first UID u >= from (from >= 1) such that u .. u+n-1 (n >= 1,
 * n <= IMAP_BLOCK) all lie in one block of slot; 0 when there is none
 * at or below IMAP_UID_MAX.
 */
uint32_t imap_uid_alloc(uint32_t from, unsigned slot, uint32_t n);

#endif
