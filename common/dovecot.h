/*
 * dovecot: Dovecot's own files in a Maildir folder, as maildag reads and
 * writes them (doc/imap-identity.md 1.1-1.4 and 4.1):
 *
 *	dovecot-uidlist		"3 V<uidvalidity> N<nextuid> [<key><value>]..."
 *				then "<uid> [<key><value>]... :<base name>"
 *	dovecot-uidlist.lock	the dotlock guarding it: "<pid>:<hostname>"
 *	dovecot-keywords	"<index> <name>" lines, index 0-25 = 'a'-'z'
 *
 * Invariants: the uidlist is only written under its lock; header fields
 * other than V and N, and every record's extension fields, are written
 * back as read; N is never lowered and records stay sorted by UID (a
 * broken uidlist makes Dovecot unlink it and renumber, E4); a rewrite is
 * a temp file fsynced and renamed over, an append touches nothing before
 * the end; dovecot-keywords gets an mtime above its last one (Dovecot
 * re-reads it only when its mtime changes, E9); maildag never removes a
 * lock it did not create.
 *
 * Also here: what two of Dovecot's settings mean for a client moved
 * between replicas (dovecot_failover_unsafe(), doc/failover.md).
 */
#ifndef DOVECOT_H
#define DOVECOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define DOVECOT_UIDLIST "dovecot-uidlist"
#define DOVECOT_KEYWORDS "dovecot-keywords"
#define DOVECOT_MAX_KEYWORDS 26

/* --- the lock ------------------------------------------------------------ */

struct dovecot_lock {
	char *path;		/* NULL: not held */
	unsigned long long dev, ino;	/* the lock file's */
};

#define DOVECOT_LOCK_INIT { NULL, 0, 0 }

/*
 * Take dir's uidlist dotlock (O_EXCL, "<pid>:<hostname>" in it, so
 * Dovecot can take over from a dead maildag), waiting up to timeout_ms
 * for a holder to let go.  0, E_TEMP when it is still held then (not
 * logged: try later), E_FAIL (logged) for any other failure.
 */
int dovecot_lock(struct dovecot_lock *out, const char *dir, int timeout_ms);
/* Remove the lock if we hold it (also when a client's RENAME of the
 * folder took it along: found by its inode in a sibling folder). */
void dovecot_unlock(struct dovecot_lock *l);

/* --- dovecot-uidlist ---------------------------------------------------- */

struct uidlist_rec {
	uint32_t uid;
	char *ext;		/* " <key><value>..." as read, or ""; owned */
	char *base;		/* the base name (up to ':'); owned */
};

struct uidlist {
	uint32_t uidvalidity;
	uint32_t nextuid;	/* the header's N; see uidlist_next() */
	char *hdr;		/* header fields besides V and N, " G..."
				   as read, or ""; owned */
	struct uidlist_rec *v;	/* sorted by UID */
	size_t n, alloc;
};

#define UIDLIST_INIT { 0, 0, NULL, NULL, 0, 0 }

/*
 * Read dir's dovecot-uidlist into out (empty).  0; E_NOTFOUND when there
 * is none; E_INVALID (logged) when it is not a version 3 uidlist Dovecot
 * would accept (UIDs out of order, V or N zero, a bad line).
 */
int uidlist_read(struct uidlist *out, const char *dir);
void uidlist_release(struct uidlist *u);

/*
 * Read part of dir's dovecot-uidlist into out (empty): the header, the
 * records of the UIDs uids[0..n) that are there, every record whose UID
 * is at or above tail, and the last one (so uidlist_next() is right),
 * without reading the rest of the file: what a small commit needs of a
 * big folder.  uidlist_find() then sees only those records, so a base
 * name it does not find may still be in the file.  0; E_NOTFOUND when
 * there is none; UIDLIST_WHOLE when a line it looked at is not one the
 * full read accepts (or the file cannot be mapped): call uidlist_read().
 * Only under the uidlist lock (the file must not change while mapped).
 */
#define UIDLIST_WHOLE 1
int uidlist_read_some(struct uidlist *out, const char *dir,
		      const uint32_t *uids, size_t n, uint32_t tail);

/* The UID Dovecot gives next: max(N, last record's UID + 1). */
uint32_t uidlist_next(const struct uidlist *u);

/* The record of base name base, or NULL. */
const struct uidlist_rec *uidlist_find(const struct uidlist *u,
				       const char *base);

/*
 * Append a record; uid must be at or above uidlist_next(u) (E_INVALID,
 * logged, otherwise: Dovecot would skip or refuse it).  ext is "" or
 * " <key><value>...".
 */
int uidlist_add(struct uidlist *u, uint32_t uid, const char *base,
		const char *ext);

/*
 * Remove the record of base name base (its UID is to change): was there
 * one?  uidlist_next(u) stays where it was.
 */
bool uidlist_remove(struct uidlist *u, const char *base);

/*
 * The record of base name from now names base name to: the same UID,
 * Dovecot's GUID kept (a " G<from>" field added when it has none:
 * without one, Dovecot takes the GUID from the base name; E5).  Was there one?
 */
bool uidlist_rename(struct uidlist *u, const char *from, const char *to);

/*
 * Write u to dir, the caller holding the lock; N is written as
 * max(u->nextuid, last UID + 1).  uidlist_append() adds records
 * from .. n-1 at the end of the file, which must hold exactly u's
 * records before them under u's header (as read, then only added to);
 * uidlist_rewrite() writes the whole file to a temp file renamed over.
 * 0 or E_FAIL (logged).
 */
int uidlist_append(const char *dir, const struct uidlist *u, size_t from);
int uidlist_rewrite(const char *dir, const struct uidlist *u);

/* --- dovecot-keywords --------------------------------------------------- */

struct dovecot_keywords {
	char *name[DOVECOT_MAX_KEYWORDS];	/* NULL: free; owned */
};

/* Read dir's keywords (none when the file is absent).  0 or E_FAIL. */
int dovecot_keywords_read(struct dovecot_keywords *out, const char *dir);
void dovecot_keywords_release(struct dovecot_keywords *k);

/*
 * The index of name (compared ignoring ASCII case), or -1; with add,
 * a free index is given to it when it has none (-1 when all 26 are
 * taken).
 */
int dovecot_keywords_index(struct dovecot_keywords *k, const char *name,
			   bool add);

/*
 * The keyword names the letters 'a'-'z' of flags stand for, pushed to out
 * in the order of the letters; a letter without a name is
 * "unknown-<index>", as Dovecot itself shows it (E9).  Other characters
 * of flags are skipped.
 */
struct strvec;
void dovecot_keywords_names(struct strvec *out,
			    const struct dovecot_keywords *k,
			    const char *flags);

/*
 * Append to out the letters of names[0..n-1], giving a name without one
 * the lowest free index when add (the file must then be written); the
 * letters are sorted and unique.  The number of names left without a
 * letter (all 26 taken, or add false and the name unknown).
 */
size_t dovecot_keywords_letters(struct strbuf *out,
				struct dovecot_keywords *k,
				const char *const *names, size_t n, bool add);

/*
 * Forget the names whose index is not set in used (bit i: letter
 * 'a' + i is on some file of the folder), so their indexes can be given
 * again (4.6).  The caller holds the uidlist lock and has looked at every
 * file of the folder under it.  The number of names dropped.
 */
unsigned dovecot_keywords_gc(struct dovecot_keywords *k, uint32_t used);

/*
 * Write the keywords to dir through a temp file, with an mtime above the
 * old file's (max(now, old + 1) seconds).  The caller holds the uidlist
 * lock.  0 or E_FAIL (logged).
 */
int dovecot_keywords_write(const char *dir, const struct dovecot_keywords *k);

/* --- the records of a folder ---------------------------------------------- */

struct imap_recs;
struct imap_folder;

/*
 * Add to out the format 2 records of one folder's messages as its Dovecot
 * files say (the commit side and the upgrade, doc/imap-identity.md 4.1,
 * 4.9): names[0..n-1] are the folder's Maildir file names (with their
 * letters); each gets the UID of its base name's record in u, or, when u
 * has none, a new UID from slot's blocks at or above uidlist_next(u),
 * appended to u (in the order of names: sort them first for an answer
 * that does not depend on readdir), and the keyword names of its letters
 * through k.  *f is u's UIDVALIDITY and next UID afterwards.  Call with
 * the uidlist lock held, and write u back (uidlist_append()) before
 * releasing it, so Dovecot never numbers those files itself.  0,
 * E_INVALID (logged) for a name that is not a Maildir name, E_FAIL
 * (logged) when the slot's UIDs ran out.
 */
int dovecot_records(struct imap_recs *out, struct imap_folder *f,
		    struct uidlist *u, const struct dovecot_keywords *k,
		    const char *const *names, size_t n, unsigned slot);

/* --- failing over (doc/failover.md) ---------------------------------------- */

enum dovecot_failover {
	/* mail_location keeps indexes on disk (no ":INDEX=MEMORY"): a
	   SELECT gives a modseq of this server, not NOMODSEQ */
	DOVECOT_FAILOVER_INDEX_ON_DISK = 1 << 0,
	/* imap_capability advertises CONDSTORE or QRESYNC (an empty one,
	   or one that starts with '+', is Dovecot's list, which does) */
	DOVECOT_FAILOVER_CONDSTORE = 1 << 1,
};

/*
 * What in Dovecot's mail_location and imap_capability (as doveconf -h
 * prints them) lets a CONDSTORE or QRESYNC client moved between
 * replicas miss changes: a mask of enum dovecot_failover, 0 when
 * neither.
 */
unsigned dovecot_failover_unsafe(const char *mail_location,
				 const char *imap_capability);

#endif
