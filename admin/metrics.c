/*
 * metrics: `maildag status --metrics`, the status answer (control.h)
 * as OpenMetrics text exposition, which Prometheus and node_exporter's
 * textfile collector read.
 *
 * Every family is written once, with HELP and TYPE (and UNIT for seconds
 * and bytes), its samples next to each other, and the text ends with
 * "# EOF".  Names say their unit (_seconds, _bytes); counters are
 * "<family>_total".  The file for node_exporter's textfile collector
 * (--metrics-file) is the Prometheus text format instead, which is what
 * that collector parses: a counter's HELP and TYPE name its sample,
 * "<family>_total", and there is no UNIT and no "# EOF" (node_exporter
 * took an OpenMetrics counter for an untyped metric without its help).  Labels: mailbox (the repository's path), peer, and
 * direction (push, fetch).  A sample the status does not tell (a
 * daemon that does not answer, an operation that never succeeded) is
 * left out rather than given a made-up value; maildag_up says whether
 * the daemon answered.
 */
#include "autoconf.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"
#include "admin.h"
#include "control.h"
#include "strbuf.h"
#include "xalloc.h"

enum scope { MAILBOX, PEER, DIRECTION };

/* What a sample is computed from. */
struct sample_in {
	json_t *st;		/* the status answer */
	json_t *peer;		/* one of its peers, or NULL */
	json_t *op;		/* that peer's push or fetch, or NULL */
	const char *dir;	/* "push" or "fetch" */
	time_t now;
	long long repo_bytes;	/* < 0: unknown */
	int up;
};

/* Sets *v and returns true when the value is known. */
typedef bool sample_fn(const struct sample_in *in, long long *v);

struct family {
	const char *name;	/* without _total */
	const char *type;	/* gauge, counter */
	const char *unit;	/* seconds, bytes, or NULL */
	enum scope scope;
	sample_fn *get;
	const char *help;
};

static bool int_of(json_t *obj, const char *key, long long *v)
{
	json_t *j = json_object_get(obj, key);

	if (!json_is_integer(j))
		return false;
	*v = (long long)json_integer_value(j);
	return true;
}

static bool get_up(const struct sample_in *in, long long *v)
{
	*v = in->up;
	return true;
}

static bool get_quorum(const struct sample_in *in, long long *v)
{
	return int_of(in->st, "quorum", v);
}

static bool get_repo_bytes(const struct sample_in *in, long long *v)
{
	*v = in->repo_bytes;
	return in->repo_bytes >= 0;
}

static bool get_unwatched(const struct sample_in *in, long long *v)
{
	if (!in->up)
		return false;
	if (!int_of(in->st, "unwatched_folders", v))
		*v = 0;		/* the daemon names it only when not 0 */
	return true;
}

static bool get_unreadable(const struct sample_in *in, long long *v)
{
	json_t *a = json_object_get(in->st, "unreadable");

	if (!in->up || !json_is_array(a))
		return false;
	*v = (long long)json_array_size(a);
	return true;
}

static bool get_ahead(const struct sample_in *in, long long *v)
{
	return int_of(in->peer, "ahead", v);
}

static bool get_behind(const struct sample_in *in, long long *v)
{
	return int_of(in->peer, "behind", v);
}

static bool get_purged_missing(const struct sample_in *in, long long *v)
{
	return int_of(in->peer, "purged_missing", v);
}

static bool get_pending(const struct sample_in *in, long long *v)
{
	return int_of(in->peer, "unpushed", v);
}

static bool get_waits(const struct sample_in *in, long long *v)
{
	return int_of(in->peer, "waits", v);
}

/* The peer's kept session (issue 15); absent for a peer without one. */
static bool get_session_up(const struct sample_in *in, long long *v)
{
	json_t *c = json_object_get(in->peer, "connection");
	const char *st = json_string_value(json_object_get(c, "state"));

	if (!in->up || !st)
		return false;
	*v = !strcmp(st, "up");
	return true;
}

static bool get_session_pushes(const struct sample_in *in, long long *v)
{
	return int_of(json_object_get(in->peer, "connection"), "pushes", v);
}

static bool get_session_ack(const struct sample_in *in, long long *v)
{
	return int_of(json_object_get(in->peer, "connection"), "ack_ms", v);
}

static bool get_refused(const struct sample_in *in, long long *v)
{
	if (!in->up)
		return false;
	*v = json_is_string(json_object_get(in->peer, "merge_error"));
	return true;
}

static bool get_check_running(const struct sample_in *in, long long *v)
{
	json_t *c = json_object_get(in->peer, "check");

	if (!json_is_object(c))
		return false;
	*v = json_is_true(json_object_get(c, "running"));
	return true;
}

static bool get_check_failures(const struct sample_in *in, long long *v)
{
	return int_of(json_object_get(in->peer, "check"), "failures", v);
}

static bool get_check_runs(const struct sample_in *in, long long *v)
{
	return int_of(json_object_get(in->peer, "check"), "runs", v);
}

static bool get_check_approved(const struct sample_in *in, long long *v)
{
	json_t *c = json_object_get(in->peer, "check");

	if (!json_is_object(c))
		return false;
	*v = json_is_string(json_object_get(c, "approved"));
	return true;
}

/*
 * Push: 0 when the peer holds all our mail ("unpushed" 0), else the time
 * since the last push that succeeded (every commit not pushed came
 * after it, or its push failed since).  Fetch: the age of the last
 * successful fetch, what we know of the peer's mail.
 */
static bool get_lag(const struct sample_in *in, long long *v)
{
	*v = control_peer_lag(in->peer, in->dir, in->now);
	return *v >= 0;
}

static bool get_last_ok(const struct sample_in *in, long long *v)
{
	return int_of(in->op, "last_ok", v);
}

static bool get_error_at(const struct sample_in *in, long long *v)
{
	return int_of(in->op, "error_at", v);
}

static bool get_failures(const struct sample_in *in, long long *v)
{
	return int_of(in->op, "failures", v);
}

static bool get_running(const struct sample_in *in, long long *v)
{
	*v = json_is_true(json_object_get(in->op, "running"));
	return true;
}

static bool get_runs(const struct sample_in *in, long long *v)
{
	return int_of(in->op, "runs", v);
}

static bool get_timeouts(const struct sample_in *in, long long *v)
{
	return int_of(in->op, "timeouts", v);
}

/* maildag status adds "maintenance" (admin_maintenance_json) */
static bool maint_of(const struct sample_in *in, const char *key,
		     long long *v)
{
	return int_of(json_object_get(in->st, "maintenance"), key, v);
}

static bool last_of(const struct sample_in *in, const char *key,
		    long long *v)
{
	return int_of(json_object_get(json_object_get(in->st, "maintenance"),
				      "last"), key, v);
}

static bool get_packs(const struct sample_in *in, long long *v)
{
	return maint_of(in, "packs", v);
}

static bool get_loose(const struct sample_in *in, long long *v)
{
	return maint_of(in, "loose", v);
}

static bool get_maint_start(const struct sample_in *in, long long *v)
{
	return last_of(in, "start", v);
}

static bool get_maint_ok(const struct sample_in *in, long long *v)
{
	json_t *l = json_object_get(json_object_get(in->st, "maintenance"),
				    "last");

	if (!json_is_object(l))
		return false;
	*v = json_is_true(json_object_get(l, "ok"));
	return true;
}

static bool get_maint_ms(const struct sample_in *in, long long *v)
{
	return last_of(in, "duration_ms", v);
}

static bool get_maint_pruned(const struct sample_in *in, long long *v)
{
	return last_of(in, "pruned", v);
}

static bool get_maint_dropped(const struct sample_in *in, long long *v)
{
	return last_of(in, "dropped", v);
}

static bool get_purged(const struct sample_in *in, long long *v)
{
	return maint_of(in, "purged", v);
}

static const struct family families[] = {
	{ "maildag_up", "gauge", NULL, MAILBOX, get_up,
	  "1 when maildag-syncd answered the status request, else 0" },
	{ "maildag_quorum", "gauge", NULL, MAILBOX, get_quorum,
	  "Stores that must hold a delivery before maildag-lda reports it done" },
	{ "maildag_repository_size_bytes", "gauge", "bytes", MAILBOX,
	  get_repo_bytes, "Disk space the repository's objects directory uses" },
	{ "maildag_packs", "gauge", NULL, MAILBOX, get_packs,
	  "Packs in the repository" },
	{ "maildag_loose_objects", "gauge", NULL, MAILBOX, get_loose,
	  "Loose objects in the repository" },
	{ "maildag_maintenance_last_timestamp_seconds", "gauge", "seconds",
	  MAILBOX, get_maint_start, "When the last maintenance pass began" },
	{ "maildag_maintenance_last_success", "gauge", NULL, MAILBOX,
	  get_maint_ok, "1 when the last maintenance pass ended well, else 0" },
	{ "maildag_maintenance_last_duration_milliseconds", "gauge", NULL,
	  MAILBOX, get_maint_ms, "How long the last maintenance pass took" },
	{ "maildag_maintenance_last_pruned_objects", "gauge", NULL, MAILBOX,
	  get_maint_pruned,
	  "Unreachable objects the last maintenance pass dropped" },
	{ "maildag_maintenance_last_purged_blobs", "gauge", NULL, MAILBOX,
	  get_maint_dropped,
	  "Purged blobs the last maintenance pass removed from storage" },
	{ "maildag_purged_blobs", "gauge", NULL, MAILBOX, get_purged,
	  "Blobs the mailbox lists as purged (purged/): gone from every replica" },
	{ "maildag_unwatched_folders", "gauge", NULL, MAILBOX, get_unwatched,
	  "Folders maildag-syncd cannot watch (inotify limit), scanned instead" },
	{ "maildag_unreadable_files", "gauge", NULL, MAILBOX, get_unreadable,
	  "Files of the Maildir that cannot be read and are not replicated "
	  "(at most the number the daemon lists)" },
	{ "maildag_peer_ahead_commits", "gauge", NULL, PEER, get_ahead,
	  "Commits of our mail that the peer's last fetched mail lacks" },
	{ "maildag_peer_behind_commits", "gauge", NULL, PEER, get_behind,
	  "Commits of the peer's last fetched mail that our mail lacks" },
	{ "maildag_peer_purges_missing_blobs", "gauge", NULL, PEER,
	  get_purged_missing,
	  "Blobs our purged/ lists that the peer's last fetched mail does not: "
	  "forgets and purges it has not merged" },
	{ "maildag_peer_pending_push_commits", "gauge", NULL, PEER, get_pending,
	  "Commits of our mail the peer is not known to hold: pushes due" },
	{ "maildag_peer_quorum_waits", "gauge", NULL, PEER, get_waits,
	  "Deliveries waiting for a quorum that the peer has not acknowledged" },
	{ "maildag_peer_session_up", "gauge", NULL, PEER, get_session_up,
	  "1 while the kept session to the peer is up, else 0" },
	{ "maildag_peer_session_pushes", "counter", NULL, PEER,
	  get_session_pushes,
	  "Pushes the peer acknowledged over its kept session since the "
	  "network worker started" },
	{ "maildag_peer_session_ack_milliseconds", "gauge", NULL, PEER,
	  get_session_ack,
	  "The last push over the session, from its sending to the peer's "
	  "durable acknowledgement" },
	{ "maildag_peer_merge_refused", "gauge", NULL, PEER, get_refused,
	  "1 while the peer's last commit is refused (not merged), else 0" },
	{ "maildag_peer_history_check_running", "gauge", NULL, PEER,
	  get_check_running,
	  "1 while a child checks the history the peer sent, else 0" },
	{ "maildag_peer_history_check_approved", "gauge", NULL, PEER,
	  get_check_approved,
	  "1 once a history the peer sent has passed the check, else 0" },
	{ "maildag_peer_history_check_failures", "gauge", NULL, PEER,
	  get_check_failures,
	  "History checks in a row that ended without an answer" },
	{ "maildag_peer_history_checks", "counter", NULL, PEER, get_check_runs,
	  "History checks that ended since maildag-syncd started" },
	{ "maildag_peer_lag_seconds", "gauge", "seconds", DIRECTION, get_lag,
	  "Push: 0 when the peer holds all our mail, else the time since the "
	  "last push that succeeded; fetch: the age of the last fetch that "
	  "succeeded" },
	{ "maildag_peer_last_success_timestamp_seconds", "gauge", "seconds",
	  DIRECTION, get_last_ok,
	  "When the last push or fetch that succeeded ended (absent: none "
	  "since the daemon started)" },
	{ "maildag_peer_last_error_timestamp_seconds", "gauge", "seconds",
	  DIRECTION, get_error_at, "When the last push or fetch failed" },
	{ "maildag_peer_consecutive_failures", "gauge", NULL, DIRECTION,
	  get_failures, "Pushes or fetches in a row that failed" },
	{ "maildag_peer_running", "gauge", NULL, DIRECTION, get_running,
	  "1 while a push or fetch is under way, else 0" },
	{ "maildag_peer_runs", "counter", NULL, DIRECTION, get_runs,
	  "Pushes or fetches that ended since maildag-syncd started" },
	{ "maildag_peer_timeouts", "counter", NULL, DIRECTION, get_timeouts,
	  "Pushes or fetches killed at their deadline since maildag-syncd "
	  "started" },
};

/* A label value: backslash, double quote and newline escaped. */
static void add_label(struct strbuf *sb, const char *name, const char *value,
		      bool first)
{
	strbuf_addf(sb, "%s%s=\"", first ? "" : ",", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			strbuf_addch(sb, '\\');
		if (*p == '\n')
			strbuf_addstr(sb, "\\n");
		else
			strbuf_addch(sb, *p);
	}
	strbuf_addch(sb, '"');
}

static void add_sample(struct strbuf *sb, const struct family *f,
		       const struct sample_in *in, const char *mailbox)
{
	const char *peer = json_string_value(json_object_get(in->peer, "name"));
	long long v;

	if (!f->get(in, &v))
		return;
	strbuf_addf(sb, "%s%s{", f->name,
		    !strcmp(f->type, "counter") ? "_total" : "");
	add_label(sb, "mailbox", mailbox, true);
	if (f->scope != MAILBOX)
		add_label(sb, "peer", peer ? peer : "", false);
	if (f->scope == DIRECTION)
		add_label(sb, "direction", in->dir, false);
	strbuf_addf(sb, "} %lld\n", v);
}

static void add_header(struct strbuf *sb, const struct family *f,
		       bool openmetrics)
{
	const char *suffix = !openmetrics && !strcmp(f->type, "counter") ?
			     "_total" : "";

	strbuf_addf(sb, "# HELP %s%s %s.\n# TYPE %s%s %s\n", f->name, suffix,
		    f->help, f->name, suffix, f->type);
	if (f->unit && openmetrics)
		strbuf_addf(sb, "# UNIT %s %s\n", f->name, f->unit);
}

/* One mailbox's samples of a family. */
static void add_samples(struct strbuf *sb, const struct family *f,
			struct sample_in *in, const char *mailbox)
{
	static const char *const dirs[] = { "push", "fetch" };
	json_t *peers = json_object_get(in->st, "peers"), *p;
	size_t i;

	if (f->scope == MAILBOX) {
		add_sample(sb, f, in, mailbox);
		return;
	}
	json_array_foreach(peers, i, p) {
		in->peer = p;
		if (f->scope == PEER) {
			add_sample(sb, f, in, mailbox);
			continue;
		}
		for (size_t d = 0; d < 2; d++) {
			in->dir = dirs[d];
			in->op = json_object_get(p, dirs[d]);
			if (json_is_object(in->op))
				add_sample(sb, f, in, mailbox);
		}
		in->op = NULL;
	}
	in->peer = NULL;
}

static void add_family(struct strbuf *sb, const struct family *f,
		       struct sample_in *in, const char *mailbox,
		       bool openmetrics)
{
	add_header(sb, f, openmetrics);
	add_samples(sb, f, in, mailbox);
}

static long long tree_bytes;

static int add_file(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F || type == FTW_D)
		tree_bytes += (long long)st->st_blocks * 512;
	return 0;
}

/* The blocks under <repository>/objects, in bytes; -1 if unreadable. */
static long long objects_bytes(const char *repository)
{
	char *dir = xasprintf("%s/objects", repository);
	int r;

	tree_bytes = 0;
	r = nftw(dir, add_file, 16, FTW_PHYS);
	free(dir);
	return r == 0 ? tree_bytes : -1;
}

void metrics_format(struct strbuf *out, json_t *st, const struct mailbox *mb,
		    bool up, bool openmetrics)
{
	struct sample_in in = { .st = st, .now = clock_wall(), .up = up };
	json_t *own = NULL;

	if (!json_is_integer(json_object_get(st, "quorum"))) {
		/* an older daemon, or none: the configuration says */
		own = json_deep_copy(st);
		json_object_set_new(own, "quorum", json_integer(mb->cfg->quorum));
		in.st = own;
	}
	in.repo_bytes = objects_bytes(mb->repository);
	for (size_t i = 0; i < sizeof families / sizeof *families; i++)
		add_family(out, &families[i], &in, mb->repository,
			   openmetrics);
	if (openmetrics)
		strbuf_addstr(out, "# EOF\n");
	json_decref(own);
}

void metrics_format_all(struct strbuf *out, json_t *boxes, struct mailbox *mb,
			bool openmetrics)
{
	size_t n = json_array_size(boxes);
	struct sample_in *in = xcalloc(n ? n : 1, sizeof *in);
	char **repos = xcalloc(n ? n : 1, sizeof *repos);
	time_t now = clock_wall();

	for (size_t i = 0; i < n; i++) {
		json_t *st = json_array_get(boxes, i);
		const char *addr = json_string_value(json_object_get(st,
								     "mailbox"));

		in[i].st = st;
		in[i].now = now;
		in[i].up = 1;
		in[i].repo_bytes = -1;
		if (addr && config_select_mailbox(mb->cfg, addr) == 0) {
			repos[i] = xstrdup(mb->cfg->repository);
			in[i].repo_bytes = objects_bytes(repos[i]);
		}
	}
	for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
		add_header(out, &families[f], openmetrics);
		for (size_t i = 0; i < n; i++)
			if (repos[i])
				add_samples(out, &families[f], &in[i],
					    repos[i]);
	}
	if (openmetrics)
		strbuf_addstr(out, "# EOF\n");
	for (size_t i = 0; i < n; i++)
		free(repos[i]);
	free(repos);
	free(in);
}
