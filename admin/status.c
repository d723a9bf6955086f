/*
 * status: the admin tool's verb that asks maildag-syncd over its
 * control socket (control.h, through sync.c) how replication goes.
 *
 *	maildag status [--json]	per peer: last push and fetch, errors,
 *				retries, commits ahead on either side
 *	maildag status --metrics [--metrics-file PATH]
 *				the same as OpenMetrics text (metrics.c)
 *
 * When no daemon answers, status still shows what the repository alone
 * tells (refs/peers/<peer>/mail against refs/heads/mail), in the same
 * shape as the daemon's answer, and exits STATUS_NOT_RUNNING.  Every
 * string from the answer is printed with control characters replaced.
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "admin.h"
#include "alarm.h"
#include "format.h"
#include "fsutil.h"
#include "log.h"
#include "purge.h"
#include "repo.h"
#include "strbuf.h"
#include "xalloc.h"

/* --- what the repository alone says ----------------------------------- */

static json_t *oid_json(const struct oid *id)
{
	char hex[OID_HEXSZ + 1];

	oid_tostr(hex, sizeof hex, id);
	return json_string(hex);
}

/*
 * The status the daemon would give, from the configuration and the
 * repository only: no push or fetch state ("push"/"fetch" null), and
 * "running": false.
 */
static json_t *local_status(const struct mailbox *mb)
{
	json_t *st = json_pack("{s:b, s:b, s:s}", "ok", 0, "running", 0,
			       "node", mb->cfg->node);
	json_t *peers = json_array();
	struct repo *r = NULL;
	struct oid mail;
	bool have_mail = false;

	if (repo_open(&r, mb->repository, 0) == 0) {
		have_mail = repo_ref_read(&mail, r, REF_MAIL) == 0;
		format_use_repo(r);
	}
	else
		r = NULL;
	json_object_set_new(st, "mail", have_mail ? oid_json(&mail)
						  : json_null());
	if (!r)
		json_object_set_new(st, "error", json_string("no repository"));
	for (size_t i = 0; i < mb->cfg->npeers; i++) {
		const struct config_peer *p = &mb->cfg->peers[i];
		json_t *pj = json_pack("{s:s, s:s, s:n, s:n}", "name", p->name,
				       "url", p->url, "push", "fetch");
		char *ref = xasprintf("refs/peers/%s/mail", p->name);
		struct oid theirs;
		size_t ahead, behind;

		if (r && repo_ref_read(&theirs, r, ref) == 0) {
			json_object_set_new(pj, "peer_ref", oid_json(&theirs));
			if (have_mail && repo_ahead_behind(&ahead, &behind, r,
							   &mail, &theirs) == 0) {
				json_object_set_new(pj, "ahead",
						    json_integer((json_int_t)ahead));
				json_object_set_new(pj, "behind",
						    json_integer((json_int_t)behind));
			}
		} else {
			json_object_set_new(pj, "peer_ref", json_null());
		}
		json_array_append_new(peers, pj);
		free(ref);
	}
	json_object_set_new(st, "peers", peers);
	json_object_set_new(st, "alarms", alarm_open_json(mb->repository));
	json_object_set_new(st, "held", json_boolean(alarm_holding(mb->repository)));
	repo_free(r);
	return st;
}

/* --- printing --------------------------------------------------------- */

char *admin_json_string(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	char *c;

	if (!s)
		return NULL;
	c = xstrdup(s);
	for (char *p = c; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return c;
}

/* An epoch time of the answer, or -1. */
static long long time_of(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* "2026-11-22 10:00:01 (12 s ago)", "(in 47 s)" or "(now)" */
static void add_when(struct strbuf *sb, long long t, time_t now)
{
	time_t tt = (time_t)t;
	char buf[64];

	if (!strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", localtime(&tt)))
		strcpy(buf, "?");
	if (t < now)
		strbuf_addf(sb, "%s (%lld s ago)", buf, (long long)now - t);
	else if (t > now)
		strbuf_addf(sb, "%s (in %lld s)", buf, t - (long long)now);
	else
		strbuf_addf(sb, "%s (now)", buf);
}

/* One direction (push or fetch) as the daemon reports it. */
static void print_op(const char *what, json_t *op, bool configured_on,
		     bool running_daemon, time_t now)
{
	const char *indent = "            ";
	struct strbuf sb = STRBUF_INIT;
	long long t;
	char *s;

	printf("  %-8s  ", what);
	if (!running_daemon) {
		printf("%s\n", configured_on ? "on (state unknown)" : "off");
		return;
	}
	if (!json_is_object(op)) {
		printf("off\n");
		return;
	}
	strbuf_addstr(&sb, "last ok ");
	if ((t = time_of(op, "last_ok")) >= 0)
		add_when(&sb, t, now);
	else
		strbuf_addstr(&sb, "never");
	if ((s = admin_json_string(op, "id"))) {
		strbuf_addf(&sb, ", %s %.10s",
			    !strcmp(what, "push:") ? "accepted" : "fetched", s);
		free(s);
	}
	if (json_is_true(json_object_get(op, "running")))
		strbuf_addstr(&sb, "; running now");
	printf("%s\n", sb.buf);

	if ((s = admin_json_string(op, "last_error"))) {
		json_int_t n = json_integer_value(json_object_get(op, "failures"));
		strbuf_reset(&sb);
		strbuf_addstr(&sb, "last error ");
		if ((t = time_of(op, "error_at")) >= 0)
			add_when(&sb, t, now);
		else
			strbuf_addstr(&sb, "(time unknown)");
		if (n > 0)
			strbuf_addf(&sb, ", %lld failure%s in a row",
				    (long long)n, n == 1 ? "" : "s");
		printf("%s%s: %s\n", indent, sb.buf, s);
		free(s);
	}
	if ((t = time_of(op, "next_try")) >= 0) {
		strbuf_reset(&sb);
		strbuf_addstr(&sb, "next try ");
		add_when(&sb, t, now);
		printf("%s%s\n", indent, sb.buf);
	}
	strbuf_release(&sb);
}

/* The peer's kept session (issue 15), when the daemon has one for it. */
static void print_conn(json_t *c, time_t now)
{
	const char *indent = "            ";
	struct strbuf sb = STRBUF_INIT;
	char *state, *err;
	long long t;
	json_t *ack = json_object_get(c, "ack_ms");

	if (!json_is_object(c))
		return;
	state = admin_json_string(c, "state");
	strbuf_addf(&sb, "%s", state ? state : "?");
	if ((t = time_of(c, "since")) >= 0) {
		strbuf_addstr(&sb, " since ");
		add_when(&sb, t, now);
	}
	strbuf_addf(&sb, ", %lld pushes acknowledged",
		    (long long)json_integer_value(json_object_get(c, "pushes")));
	if (json_is_integer(ack))
		strbuf_addf(&sb, " (the last in %lld ms)",
			    (long long)json_integer_value(ack));
	strbuf_addf(&sb, ", %lld bytes out, %lld in",
		    (long long)json_integer_value(json_object_get(c, "bytes_out")),
		    (long long)json_integer_value(json_object_get(c, "bytes_in")));
	printf("  %-8s  %s\n", "session:", sb.buf);
	if ((err = admin_json_string(c, "last_error")))
		printf("%slast error: %s\n", indent, err);
	free(err);
	free(state);
	strbuf_release(&sb);
}

/*
 * The whole-history check of what the peer sent (a child of the daemon),
 * and the last refusal of it ("merge_error").
 */
static void print_check(json_t *chk, json_t *peer, time_t now)
{
	const char *indent = "            ";
	struct strbuf sb = STRBUF_INIT;
	char *s, *refused = admin_json_string(peer, "merge_error");
	long long t;

	if (json_is_object(chk)) {
		printf("  %-8s  ", "check:");
		if (json_is_true(json_object_get(chk, "running")) &&
		    (s = admin_json_string(chk, "commit"))) {
			strbuf_addf(&sb, "checking the history of %.10s", s);
			free(s);
			if ((t = time_of(chk, "started")) >= 0) {
				strbuf_addstr(&sb, " since ");
				add_when(&sb, t, now);
			}
		} else if ((s = admin_json_string(chk, "approved"))) {
			strbuf_addf(&sb, "last approved %.10s", s);
			free(s);
		} else {
			strbuf_addstr(&sb, "nothing approved yet");
		}
		printf("%s\n", sb.buf);
		if (json_integer_value(json_object_get(chk, "failures")) > 0 &&
		    (s = admin_json_string(chk, "last_error"))) {
			strbuf_reset(&sb);
			strbuf_addstr(&sb, "last error ");
			if ((t = time_of(chk, "error_at")) >= 0)
				add_when(&sb, t, now);
			printf("%s%s: %s\n", indent, sb.buf, s);
			free(s);
		}
	}
	if (refused)
		printf("  %-8s  %s\n", "merge:", refused);
	free(refused);
	strbuf_release(&sb);
}

/* The Maildir's files maildag-syncd cannot read, and so skips. */
static void print_unreadable(json_t *list)
{
	size_t i, n = json_array_size(list);
	json_t *v;

	if (!n)
		return;
	printf("%zu file%s cannot be read: skipped, not replicated until %s\n",
	       n, n == 1 ? "" : "s", n == 1 ? "it can be" : "they can be");
	json_array_foreach(list, i, v) {
		json_t *o = json_pack("{s:O}", "s", v);
		char *name = admin_json_string(o, "s");
		if (i == 10) {
			printf("  (%zu more)\n", n - i);
			json_decref(o);
			free(name);
			break;
		}
		printf("  %s\n", name ? name : "?");
		json_decref(o);
		free(name);
	}
}

/* The folders folder_limit leaves out (maildag-syncd(8)), when any. */
static void print_left_out(json_t *st)
{
	json_t *n = json_object_get(st, "folders_left_out");
	json_t *l = json_object_get(st, "folder_limit");

	if (!json_is_integer(n) || json_integer_value(n) <= 0)
		return;
	printf("%lld folder%s on disk left out by folder_limit (%lld): not "
	       "committed, watched or replicated\n",
	       (long long)json_integer_value(n),
	       json_integer_value(n) == 1 ? "" : "s",
	       json_is_integer(l) ? (long long)json_integer_value(l) : -1LL);
}

/* The open mass-deletion alarms (alarm.h), first and loud. */
static void print_alarms(json_t *list, time_t now)
{
	size_t i;
	json_t *a;

	json_array_foreach(list, i, a) {
		char *change = admin_json_string(a, "change");
		char *node = admin_json_string(a, "node");
		char *sum = admin_json_string(a, "summary");
		char *undo = admin_json_string(a, "undo");
		char *confirm = admin_json_string(a, "confirm");
		struct strbuf when = STRBUF_INIT;
		long long t = time_of(a, "time");

		if (t >= 0)
			add_when(&when, t, now);
		printf("ALARM: mass deletion in change %.10s, made on %s %s: %s\n",
		       change ? change : "?", node ? node : "?", when.buf,
		       sum ? sum : "");
		printf("  undo it:  %s\n", undo ? undo : "?");
		printf("  keep it:  %s\n", confirm ? confirm : "?");
		if (json_is_true(json_object_get(a, "held")))
			printf("  held back from every peer until then\n");
		strbuf_release(&when);
		free(change);
		free(node);
		free(sum);
		free(undo);
		free(confirm);
	}
}

/* The webhooks that failed or still have changes to be told of. */
static void print_webhooks(json_t *list, time_t now)
{
	size_t i;
	json_t *w;

	json_array_foreach(list, i, w) {
		char *url = admin_json_string(w, "url");
		char *err = admin_json_string(w, "last_error");
		char *from = admin_json_string(w, "from");
		long long fails = time_of(w, "failures"), next;
		struct strbuf sb = STRBUF_INIT;

		if (json_is_true(json_object_get(w, "untold")) && fails > 0) {
			next = time_of(w, "next_try");
			strbuf_addf(&sb, "webhook %s: %lld failure%s in a row, "
				    "last: %s; changes since %.10s not told; "
				    "next try ", url ? url : "?", fails,
				    fails == 1 ? "" : "s", err ? err : "?",
				    from ? from : "(unknown)");
			if (next >= 0)
				add_when(&sb, next, now);
			else
				strbuf_addstr(&sb, "soon");
			printf("%s\n", sb.buf);
		}
		strbuf_release(&sb);
		free(url);
		free(err);
		free(from);
	}
}

static void print_purges(json_t *p, const char *name)
{
	json_t *t = json_object_get(p, "purged"),
	       *m = json_object_get(p, "purged_missing");

	if (!json_is_integer(t) || !json_integer_value(t) ||
	    !json_is_integer(m))
		return;
	if (!json_integer_value(m))
		printf("  %-8s  every one of our %lld purged blobs is purged "
		       "there too: forgets and purges reached %s\n", "purges:",
		       (long long)json_integer_value(t), name);
	else
		printf("  %-8s  %lld of our %lld purged blobs not yet purged "
		       "by %s: a forget or purge it has not merged\n",
		       "purges:", (long long)json_integer_value(m),
		       (long long)json_integer_value(t), name);
}

static void print_status(json_t *st, const struct mailbox *mb, bool running)
{
	json_t *peers = json_object_get(st, "peers"), *p;
	char *node = admin_json_string(st, "node");
	char *mail = admin_json_string(st, "mail");
	time_t now = clock_wall();
	size_t i;

	printf("node %s: refs/heads/mail at %.10s", node ? node : "?",
	       mail ? mail : "(none)");
	if (running && json_is_integer(json_object_get(st, "pid")))
		printf(", maildag-syncd pid %lld",
		       (long long)json_integer_value(json_object_get(st, "pid")));
	printf("\n");
	print_alarms(json_object_get(st, "alarms"), now);
	print_unreadable(json_object_get(st, "unreadable"));
	print_left_out(st);
	print_webhooks(json_object_get(st, "webhooks"), now);
	admin_print_maintenance_status(json_object_get(st, "maintenance"), now);
	if (!json_array_size(peers))
		printf("no peers configured\n");
	json_array_foreach(peers, i, p) {
		char *name = admin_json_string(p, "name"), *url = admin_json_string(p, "url");
		char *ref = admin_json_string(p, "peer_ref");
		const struct config_peer *cp = name ? config_peer(mb->cfg, name)
						    : NULL;
		json_t *a = json_object_get(p, "ahead"),
		       *b = json_object_get(p, "behind");

		printf("\npeer %s  %s\n", name ? name : "?", url ? url : "");
		if (!ref)
			printf("  %-8s  nothing from %s yet (no refs/peers/%s/mail)\n",
			       "commits:", name ? name : "?", name ? name : "?");
		else if (json_is_integer(a) && json_is_integer(b))
			printf("  %-8s  ours %lld ahead, theirs %lld ahead "
			       "(refs/peers/%s/mail at %.10s)\n", "commits:",
			       (long long)json_integer_value(a),
			       (long long)json_integer_value(b), name, ref);
		else
			printf("  %-8s  refs/peers/%s/mail at %.10s\n",
			       "commits:", name ? name : "?", ref);
		if (ref)
			print_purges(p, name ? name : "?");
		if (running)
			print_conn(json_object_get(p, "connection"), now);
		print_op("push:", json_object_get(p, "push"), cp && cp->push,
			 running, now);
		print_op("fetch:", json_object_get(p, "fetch"), cp && cp->fetch,
			 running, now);
		if (running)
			print_check(json_object_get(p, "check"), p, now);
		free(name);
		free(url);
		free(ref);
	}
	free(node);
	free(mail);
}

static void print_json(json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (text)
		puts(text);
	free(text);
}

/* --- the verbs -------------------------------------------------------- */

/* How status prints what it learnt. */
enum status_form { FORM_TEXT, FORM_JSON, FORM_METRICS };

/*
 * Print st in the asked form, or for --metrics-file write the metrics to
 * that file (PATH.tmp.<pid>, then renamed).  0, or EX_CANTCREAT when the file
 * cannot be written.
 */
/*
 * Per peer, whether what refs/heads/mail purged (a forget, a retention
 * purge) has reached it, as the last mail we hold of it tells:
 * "purged" (the blobs our purged/ lists) and "purged_missing" (those
 * its tree does not list yet), from the repository, daemon or not.
 */
static void add_purge_reach(json_t *st, const struct mailbox *mb)
{
	json_t *peers = json_object_get(st, "peers"), *p;
	struct repo *r;
	size_t i;

	if (!json_is_array(peers) || repo_open(&r, mb->repository, 0) < 0)
		return;
	json_array_foreach(peers, i, p) {
		char *name = admin_json_string(p, "name");
		char *ref = name ? xasprintf("refs/peers/%s/mail", name) : NULL;
		struct oid theirs;
		size_t missing, total;

		if (ref && repo_ref_read(&theirs, r, ref) == 0 &&
		    purge_reach(&missing, &total, r, &theirs) == 0) {
			json_object_set_new(p, "purged",
					    json_integer((json_int_t)total));
			json_object_set_new(p, "purged_missing",
					    json_integer((json_int_t)missing));
		}
		free(ref);
		free(name);
	}
	repo_free(r);
}

static int status_out(json_t *st, const struct mailbox *mb, bool up,
		      enum status_form form, const char *metrics_file)
{
	struct strbuf sb = STRBUF_INIT;
	int r = EX_OK;

	/* the repository's, whether the daemon runs or not */
	json_object_set_new(st, "maintenance", admin_maintenance_json(mb));
	add_purge_reach(st, mb);
	if (form == FORM_METRICS) {
		/* node_exporter's textfile collector reads Prometheus text */
		metrics_format(&sb, st, mb, up, !metrics_file);
		if (!metrics_file)
			fputs(sb.buf, stdout);
		else if (write_file_atomic(metrics_file, sb.buf, sb.len,
					   0644) < 0)
			r = EX_CANTCREAT;
	} else if (form == FORM_JSON) {
		print_json(st);
	} else {
		print_status(st, mb, up);
	}
	strbuf_release(&sb);
	return r;
}

static int status_usage(void)
{
	fputs("usage: maildag status [--json | --metrics] "
	      "[--metrics-file path]\n", stderr);
	return EX_USAGE;
}

/*
 * The daemon of virtual mailboxes answered for every one ("mailboxes"):
 * each printed as one mailbox is, under its address.
 */
static int print_all(json_t *ans, struct mailbox *mb, enum status_form form,
		     const char *metrics_file)
{
	json_t *boxes = json_object_get(ans, "mailboxes"), *st;
	size_t i;

	if (form == FORM_JSON) {
		print_json(ans);
		return EX_OK;
	}
	if (form == FORM_METRICS) {
		struct strbuf sb = STRBUF_INIT;
		int r = EX_OK;

		metrics_format_all(&sb, boxes, mb, !metrics_file);
		if (!metrics_file)
			fputs(sb.buf, stdout);
		else if (write_file_atomic(metrics_file, sb.buf, sb.len,
					   0644) < 0)
			r = EX_CANTCREAT;
		strbuf_release(&sb);
		return r;
	}
	printf("%zu virtual mailboxes\n", json_array_size(boxes));
	json_array_foreach(boxes, i, st) {
		char *addr = admin_json_string(st, "mailbox");

		printf("\n== %s\n", addr ? addr : "?");
		if (addr && config_select_mailbox(mb->cfg, addr) == 0)
			print_status(st, mb, true);
		free(addr);
	}
	return EX_OK;
}

int cmd_status(struct mailbox *mb, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "metrics", no_argument, NULL, 'm' },
		{ "metrics-file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	enum status_form form = FORM_TEXT;
	const char *metrics_file = NULL;
	bool connected;
	json_t *ans;
	int c, r, w;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		enum status_form f = c == 'j' ? FORM_JSON : FORM_METRICS;
		if (c != 'j' && c != 'm' && c != 'f')
			return status_usage();
		if (form != FORM_TEXT && form != f)
			return status_usage();
		form = f;
		if (c == 'f')
			metrics_file = optarg;
	}
	if (optind != argc)
		return status_usage();
	r = admin_ask(mb, "status", &ans, &connected);
	if (r < 0 && config_is_virtual(mb->cfg) && !mb->cfg->address) {
		fputs("maildag-syncd is not running\n", stderr);
		return STATUS_NOT_RUNNING;
	}
	if (r == 0 && json_is_array(json_object_get(ans, "mailboxes"))) {
		w = print_all(ans, mb, form, metrics_file);
		json_decref(ans);
		return w;
	}
	if (r < 0) {
		json_t *st;

		if (r == E_NOTFOUND)
			fputs("maildag-syncd is not running\n", stderr);
		else if (r == E_TEMP && !connected)
			fputs("maildag-syncd does not accept connections\n",
			      stderr);
		else
			fputs("maildag-syncd does not answer\n", stderr);
		st = local_status(mb);
		w = status_out(st, mb, false, form, metrics_file);
		json_decref(st);
		return w != EX_OK ? w : STATUS_NOT_RUNNING;
	}
	r = json_is_true(json_object_get(ans, "ok")) ? EX_OK : EX_TEMPFAIL;
	if (r != EX_OK && form != FORM_JSON) {
		char *e = admin_json_string(ans, "error");
		log_error("maildag-syncd: %s", e ? e : "status refused");
		free(e);
	}
	if (r == EX_OK || form == FORM_JSON) {
		w = status_out(ans, mb, true, form, metrics_file);
	} else if (form == FORM_METRICS) {
		/* it answered but would not tell: what the repository says */
		json_t *st = local_status(mb);
		w = status_out(st, mb, false, form, metrics_file);
		json_decref(st);
	} else {
		w = EX_OK;
	}
	json_decref(ans);
	return w != EX_OK ? w : r;
}
