/*
 * delivery: the delivery record (see delivery.h).  A commit that
 * delivers messages says so in its message, which this file alone
 * writes and reads:
 *
 *	deliver to <folder>		one message ("INBOX", "Sent", ...)
 *	deliver <n> messages		more than one
 *
 *	Path: <tree path>		one pair per message, in the order
 *	Blob: <blob id>			they were added
 *
 * A commit that holds other changes too (maildag-syncd committing what
 * the mail client did together with a delivery it found in the journal)
 * has its own subject and the same pairs after it.  A delivery made
 * through dovecot-lda (Sieve, doc/sieve.md) adds, after its pairs,
 *
 *	Input: <blob id>		the bytes maildag-lda handed to it
 *
 * which may differ from what Sieve stored (or name none of its files).  The Blob line is
 * what lets maildag-lda recognise a retry of bytes it delivered already
 * (DESIGN section 4): only the commits of the last days are looked at.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "delivery.h"
#include "folder.h"
#include "log.h"
#include "repo.h"
#include "xalloc.h"

#define PATH_LINE "\nPath: "
#define BLOB_LINE "\nBlob: "
#define INPUT_LINE "\nInput: "
#define LINE_LEN 7		/* of either, newline included */

void delivery_record_add(struct delivery_record *d, const char *folder,
			 const char *path, const struct oid *blob)
{
	char hex[OID_HEXSZ + 1];

	oid_tostr(hex, sizeof hex, blob);
	if (!d->n++)
		d->folder = xstrdup(folder);
	/* each line after the newline that ends the one before */
	strbuf_addf(&d->lines, "%s%s%s%s\n", PATH_LINE + 1, path,
		    BLOB_LINE, hex);
}

void delivery_record_input(struct delivery_record *d, const struct oid *blob)
{
	char hex[OID_HEXSZ + 1];

	oid_tostr(hex, sizeof hex, blob);
	strbuf_addf(&d->lines, "%s%s\n", INPUT_LINE + 1, hex);
}

void delivery_record_message(struct strbuf *out,
			     const struct delivery_record *d,
			     const char *subject)
{
	if (subject)
		strbuf_addf(out, "%s\n", subject);
	else if (d->n == 1)
		strbuf_addf(out, "deliver to %s\n", folder_display(d->folder));
	else
		strbuf_addf(out, "deliver %zu messages\n", d->n);
	if (d->n)
		strbuf_addf(out, "\n%s", d->lines.buf);
}

void delivery_record_release(struct delivery_record *d)
{
	strbuf_release(&d->lines);
	free(d->folder);
	d->folder = NULL;
	d->n = 0;
}

bool delivery_message_is_delivery(const char *message)
{
	return !strncmp(message, "deliver ", 8) && strstr(message, PATH_LINE);
}

bool delivery_record_next(struct delivery_item *out, const char **pos)
{
	const char *p = strstr(*pos, PATH_LINE), *b;

	if (!p)
		return false;
	out->path = p + LINE_LEN;
	out->path_len = strcspn(out->path, "\n");
	p = out->path + out->path_len;
	b = p + LINE_LEN;
	out->has_blob = !strncmp(p, BLOB_LINE, LINE_LEN) &&
			strlen(b) >= OID_HEXSZ &&
			(b[OID_HEXSZ] == '\n' || !b[OID_HEXSZ]) &&
			oid_fromstr(&out->blob, b) == 0;
	*pos = p;
	return true;
}

struct find {
	const struct oid *blob;
	time_t cutoff;
	struct oid *out;
};

enum { FOUND = 1, TOO_OLD = 2 };

static int find_one(const struct oid *id, time_t time, const char *message,
		    void *data)
{
	struct find *f = data;
	struct delivery_item it;
	const char *pos = message;
	char line[sizeof INPUT_LINE + OID_HEXSZ];

	if (time < f->cutoff)
		return TOO_OLD;
	snprintf(line, sizeof line, "%s%s", INPUT_LINE, oid_hex(f->blob));
	for (const char *p = message; (p = strstr(p, line)); p++)
		if (p[strlen(line)] == '\n' || !p[strlen(line)]) {
			oid_cpy(f->out, id);
			return FOUND;
		}
	while (delivery_record_next(&it, &pos))
		if (it.has_blob && oid_equal(&it.blob, f->blob)) {
			oid_cpy(f->out, id);
			return FOUND;
		}
	return 0;
}

/* Only asked when the blob exists at all, which is rare. */
int delivery_find_recent(struct oid *out, struct repo *r,
			 const struct oid *blob,
			 long window)
{
	struct find f = { blob, (time_t)(clock_wall() - window), out };
	int ret = repo_log(r, REF_MAIL, find_one, &f);

	if (ret < 0)
		return ret;
	return ret == FOUND ? 0 : E_NOTFOUND;
}
