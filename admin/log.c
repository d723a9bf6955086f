/*
 * maildag log [-n N]: the mailbox history in mail terms, a line per
 * change and a line per delivered message (delivery.h reads the record);
 * maildag log --expunged [filters] [-n N]: the messages removed from the
 * mailbox, read through common/expunged.h.
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "delivery.h"
#include "folder.h"
#include "header.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

/* --- log -------------------------------------------------------------- */

/* "delivered to FOLDER: from ..., "subject", N bytes" for one message */
static void describe_message(struct strbuf *out, struct repo *r,
			     const char *path, size_t plen, const char *hex)
{
	char *p = xstrndup(path, plen), *folder = NULL;
	struct layout_path lp;
	struct oid id;
	struct strbuf content = STRBUF_INIT;

	if (layout_parse_tree_path(&lp, p) == 0)
		folder = xstrndup(lp.folder, lp.folder_len);
	strbuf_addf(out, "delivered to %s",
		    folder_display(folder ? folder : ""));
	free(folder);
	free(p);
	if (oid_fromstr(&id, hex) < 0 ||
	    repo_blob_read(&content, r, &id) < 0)
		return;
	{
		struct strbuf from = STRBUF_INIT, subject = STRBUF_INIT;
		size_t len = content.len;

		header_value(&from, content.buf, len, "From", 60);
		header_value(&subject, content.buf, len, "Subject", 70);
		strbuf_addf(out, ": from %s, \"%s\", %zu bytes",
			    from.len ? from.buf : "(unknown)", subject.buf, len);
		strbuf_release(&from);
		strbuf_release(&subject);
	}
	strbuf_release(&content);
}

/* Print a delivery commit (delivery.h) a line per message. */
static void print_delivery(const char *prefix, struct repo *r,
			   const char *message)
{
	struct delivery_item it;
	const char *pos = message;

	while (delivery_record_next(&it, &pos)) {
		struct strbuf line = STRBUF_INIT;
		char hex[OID_HEXSZ + 1] = "";

		if (it.has_blob)
			oid_tostr(hex, sizeof hex, &it.blob);
		describe_message(&line, r, it.path, it.path_len, hex);
		printf("%s  %s\n", prefix, line.buf);
		strbuf_release(&line);
	}
}

struct log_walk {
	struct repo *r;
	long max, shown;
};

/* One commit of the history (repo_log_fn): its lines. */
static int log_one(const struct oid *id, time_t time, const char *msg,
		   void *data)
{
	struct log_walk *w = data;
	char when[32], prefix[64];
	time_t t = (time_t)time;

	if (w->max >= 0 && w->shown >= w->max)
		return 1;
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
	snprintf(prefix, sizeof prefix, "%s  %.10s", when, oid_hex(id));
	if (delivery_message_is_delivery(msg))
		print_delivery(prefix, w->r, msg);
	else
		printf("%s  %.*s\n", prefix, (int)strcspn(msg, "\n"), msg);
	w->shown++;
	return 0;
}

int cmd_log(struct mailbox *mb, int argc, char **argv)
{
	struct log_walk w = { .max = -1 };
	int c, ret = EX_TEMPFAIL;

	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--expunged"))
			return cmd_log_expunged(mb, argc, argv);
	optind = 1;
	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c == 'n') {
			char *end;
			w.max = strtol(optarg, &end, 10);
			if (*end || w.max < 0) {
				log_error("bad count '%s'", optarg);
				return EX_USAGE;
			}
		} else {
			admin_usage(stderr);
			return EX_USAGE;
		}
	}
	if ((c = admin_open_repo(&w.r, mb)))
		return c;
	if (repo_log(w.r, REF_MAIL, log_one, &w) >= 0)
		ret = EX_OK;
	repo_free(w.r);
	return ret;
}

/* --- log --expunged ------------------------------------------------------- */

static void print_when(long long t)
{
	char when[32];
	time_t tt = (time_t)t;

	if (!strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&tt)))
		strcpy(when, "?");
	fputs(when, stdout);
}

static int print_expunged(const struct expunged *e, void *data)
{
	size_t *n = data;

	print_when(e->time);
	if (e->purged) {
		printf("  %.*s  expunged from %s%s: purged, its bytes are gone "
		       "(%s)\n", CHANGE_SHORT, e->change,
		       folder_display(e->msg.folder),
		       e->folder_gone ? " (folder removed)" : "", e->msg.name);
		(*n)++;
		return 0;
	}
	printf("  %.*s  expunged from %s%s: from %s, \"%s\", %llu bytes%s%s\n",
	       CHANGE_SHORT, e->change, folder_display(e->msg.folder),
	       e->folder_gone ? " (folder removed)" : "",
	       *e->from ? e->from : "(unknown)", e->subject, e->size,
	       *e->message_id ? ", " : "", e->message_id);
	(*n)++;
	return 0;
}

static void usage_log(void)
{
	fputs("usage: maildag log --expunged [--folder F] [--from TEXT] "
	      "[--subject TEXT]\n"
	      "                   [--message-id ID] [--since TIME] "
	      "[--until TIME] [-n N]\n", stderr);
}

int cmd_log_expunged(struct mailbox *mb, int argc, char **argv)
{
	struct selection s;
	struct repo *r;
	size_t shown = 0;
	int c, x;

	memset(&s, 0, sizeof s);
	expunged_filter_init(&s.f);
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:", admin_select_opts,
				NULL)) != -1) {
		if (c == 'n') {
			char *end;
			long long v = strtoll(optarg, &end, 10);
			if (*end || v <= 0) {
				log_error("bad count '%s'", optarg);
				return EX_USAGE;
			}
			s.f.max = (size_t)v;
		} else if (c == OPT_EXPUNGED) {
			continue;
		} else if (c == OPT_BEFORE || c == OPT_AT ||
			   admin_select_opt(&s, c, optarg)) {
			usage_log();
			free(s.folder);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage_log();
		free(s.folder);
		return EX_USAGE;
	}
	if ((x = admin_open_repo(&r, mb))) {
		free(s.folder);
		return x;
	}
	x = expunged_find(r, &s.f, print_expunged, &shown);
	repo_free(r);
	free(s.folder);
	return x < 0 ? EX_TEMPFAIL : EX_OK;
}
