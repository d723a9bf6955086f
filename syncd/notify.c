/*
 * notify: the hook command and the webhooks (see notify.h).
 *
 * Invariants: at most one child runs; the daemon only forks and reaps
 * (waitpid(pid, WNOHANG)), so nothing here blocks it; a child that
 * outlives NOTIFY_DEADLINE is killed with its whole process group, hook
 * included.
 *
 * The hook is told each change once: changes that arrive while a child
 * runs are kept as one range (old of the first, new of the last) for the
 * next child.  Each webhook has a range of its own, the changes it has
 * not acknowledged with a 2xx: a failure keeps the range, later changes
 * extend it, and the webhook is tried again after a backoff (or the
 * server's Retry-After); a success moves its acknowledged commit to what
 * it was sent, in memory and in the state file, so a restart posts what
 * the webhook missed meanwhile.
 *
 * The child itself is notify_child.c; notify_p.h is what the two share.
 */
#include "autoconf.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "fsutil.h"
#include "log.h"
#include "notify.h"
#include "notify_p.h"
#include "strbuf.h"
#include "xalloc.h"

#define FORK_RETRY 5.0			/* seconds after a failed fork */
#define POLL_MAX 1.0			/* while a child runs */
#define KILL_POLL 0.1			/* after SIGKILL, until it is reaped */

struct webhook {
	char *url;
	char *shown;		/* the URL for the log, without secrets */
	struct range r;		/* changes it has not acknowledged */
	char sent[HEX + 1];	/* r.new given to the running child, or "" */
	char acked[HEX + 1];	/* the last commit it acknowledged, or "" */
	unsigned failures;	/* in a row */
	double next_try;	/* clock_now() time; 0: as soon as pending */
	char *last_error;
	time_t last_ok, error_at;
};

struct notify {
	const struct config *cfg;
	char *user;
	char *state_path;	/* the webhooks' acknowledged commits */
	pid_t pid;		/* the child, 0 when none */
	double deadline;	/* when the child is killed */
	bool killed;
	struct range hook;	/* changes the hook has not been told of */
	struct webhook *wh;	/* one per configured webhook, in order */
	size_t nwh;
	int result_fd;		/* the running child's result lines, or -1 */
	char **child_urls;	/* the URL of each webhook index it was given */
	size_t nchild_urls;
	struct strbuf results;
	double retry_at;	/* after a failed fork, 0 otherwise */
	struct alarm *alarms;	/* alarms not yet given to a child */
	size_t nalarms, alarms_alloc;
};

static bool configured(const struct config *cfg)
{
	return cfg->hook_command || (cfg->webhooks && cfg->webhooks[0]);
}

static void range_add(struct range *r, const char *old, const char *new)
{
	if (!r->pending)
		snprintf(r->old, sizeof r->old, "%s", old);
	snprintf(r->new, sizeof r->new, "%s", new);
	r->pending = true;
}

/* --- the state file: each webhook's acknowledged commit ------------------- */

static void state_load(struct notify *n)
{
	json_t *j, *v;

	if (!n->state_path || !(j = json_load_file(n->state_path, 0, NULL)))
		return;
	for (size_t i = 0; i < n->nwh; i++) {
		const char *hex;
		v = json_object_get(json_object_get(j, "acked"), n->wh[i].url);
		hex = json_string_value(v);
		if (hex && strlen(hex) == HEX)
			snprintf(n->wh[i].acked, sizeof n->wh[i].acked, "%s",
				 hex);
	}
	json_decref(j);
}

static void state_save(struct notify *n)
{
	json_t *j, *acked;
	char *text;

	if (!n->state_path)
		return;
	j = json_object();
	acked = json_object();
	for (size_t i = 0; i < n->nwh; i++)
		if (n->wh[i].acked[0])
			json_object_set_new(acked, n->wh[i].url,
					    json_string(n->wh[i].acked));
	json_object_set_new(j, "acked", acked);
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (!text || write_file_atomic(n->state_path, text, strlen(text),
				       0600) < 0)
		log_warn("webhooks: cannot write '%s': what they acknowledged "
			 "is known until the daemon stops", n->state_path);
	free(text);
}

static void child_urls_free(struct notify *n)
{
	for (size_t i = 0; i < n->nchild_urls; i++)
		free(n->child_urls[i]);
	free(n->child_urls);
	n->child_urls = NULL;
	n->nchild_urls = 0;
}

/* The webhooks of cfg; state kept for URLs that stay. */
static void set_webhooks(struct notify *n, const struct config *cfg)
{
	size_t m = 0;
	struct webhook *wh;

	while (cfg->webhooks && cfg->webhooks[m])
		m++;
	wh = xcalloc(m ? m : 1, sizeof *wh);
	for (size_t i = 0; i < m; i++) {
		wh[i].url = xstrdup(cfg->webhooks[i]);
		for (size_t k = 0; k < n->nwh; k++) {
			if (!n->wh[k].url || strcmp(n->wh[k].url, wh[i].url))
				continue;
			free(wh[i].url);
			wh[i] = n->wh[k];
			memset(&n->wh[k], 0, sizeof n->wh[k]);
			break;
		}
		if (!wh[i].shown)
			wh[i].shown = notify_url_for_log(wh[i].url);
		/* a running child's answer still counts, found by URL */
	}
	for (size_t k = 0; k < n->nwh; k++) {
		free(n->wh[k].url);
		free(n->wh[k].shown);
		free(n->wh[k].last_error);
	}
	free(n->wh);
	n->wh = wh;
	n->nwh = m;
}

struct notify *notify_new(const struct config *cfg, const char *user,
			  const char *state_path)
{
	static bool curl_ready;
	struct notify *n = xcalloc(1, sizeof *n);

	/* before any fork and any thread: libcurl's rule */
	if (!curl_ready) {
		CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
		if (rc != CURLE_OK)
			log_warn("notify: curl_global_init: %s",
				 curl_easy_strerror(rc));
		curl_ready = true;
	}
	n->cfg = cfg;
	n->user = xstrdup(user);
	n->state_path = state_path ? xstrdup(state_path) : NULL;
	n->result_fd = -1;
	strbuf_init(&n->results, 0);
	set_webhooks(n, cfg);
	state_load(n);
	return n;
}

void notify_start(struct notify *n, const struct oid *mail)
{
	char hex[HEX + 1];

	if (!mail || oid_is_zero(mail))
		return;
	oid_tostr(hex, sizeof hex, mail);
	/* a webhook with none yet is told by the first sync, as the hook */
	for (size_t i = 0; i < n->nwh; i++) {
		struct webhook *w = &n->wh[i];
		if (w->acked[0] && strcmp(w->acked, hex)) {
			range_add(&w->r, w->acked, hex);
			log_info("webhook '%s': telling it of the changes since "
				 "%.12s, which it has not acknowledged",
				 w->shown, w->acked);
		}
	}
}

static void kill_child(struct notify *n)
{
	if (n->pid <= 0)
		return;
	/* the group takes the hook and whatever it started along */
	kill(-n->pid, SIGKILL);
	kill(n->pid, SIGKILL);
	n->killed = true;
}

void notify_free(struct notify *n)
{
	if (!n)
		return;
	if (n->pid > 0) {
		kill_child(n);
		while (waitpid(n->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (n->result_fd >= 0)
		close(n->result_fd);
	for (size_t k = 0; k < n->nwh; k++) {
		free(n->wh[k].url);
		free(n->wh[k].shown);
		free(n->wh[k].last_error);
	}
	free(n->wh);
	child_urls_free(n);
	strbuf_release(&n->results);
	alarms_free(n->alarms, n->nalarms);
	free(n->state_path);
	free(n->user);
	free(n);
}

void notify_set_config(struct notify *n, const struct config *cfg)
{
	n->cfg = cfg;
	if (!cfg->hook_command)
		n->hook.pending = false;
	set_webhooks(n, cfg);
}

pid_t notify_pid(const struct notify *n)
{
	return n->pid;
}

/* --- the daemon's side ------------------------------------------------ */

static bool webhook_due(const struct webhook *w, double now)
{
	return w->r.pending && !w->sent[0] && w->next_try <= now;
}

/* The earliest time a webhook is due, 0 when none waits. */
static double next_due(const struct notify *n)
{
	double t = 0;

	for (size_t i = 0; i < n->nwh; i++)
		if (n->wh[i].r.pending && (!t || n->wh[i].next_try < t))
			t = n->wh[i].next_try;
	return t;
}

static void start(struct notify *n)
{
	sigset_t all, old;
	struct job *jobs;
	size_t njobs = 0;
	int fds[2];
	double now = clock_now();
	pid_t pid;

	if (n->pid || !configured(n->cfg))
		return;
	for (size_t i = 0; i < n->nwh; i++)
		njobs += webhook_due(&n->wh[i], now);
	if (!njobs && !(n->hook.pending && n->cfg->hook_command) &&
	    !n->nalarms)
		return;
	jobs = xcalloc(njobs ? njobs : 1, sizeof *jobs);
	njobs = 0;
	for (size_t i = 0; i < n->nwh; i++) {
		if (!webhook_due(&n->wh[i], now))
			continue;
		jobs[njobs].index = i;
		jobs[njobs].url = n->wh[i].url;
		jobs[njobs].old = n->wh[i].r.old;
		jobs[njobs].new = n->wh[i].r.new;
		njobs++;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_warn_errno("notify: pipe");
		n->retry_at = now + FORK_RETRY;
		free(jobs);
		return;
	}
	/* no signal may reach the daemon's handlers inside the child */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (fds[1] != RESULT_FD) {
			dup2(fds[1], RESULT_FD);
			close(fds[1]);
		}
		notify_child_main(n->cfg, n->user, &n->hook, jobs, njobs,
				  n->alarms, n->nalarms);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(fds[1]);
	if (pid < 0) {
		log_warn_errno("notify: fork");
		close(fds[0]);
		n->retry_at = now + FORK_RETRY;
		free(jobs);
		return;
	}
	setpgid(pid, pid);	/* as the child does: whoever is first */
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	n->result_fd = fds[0];
	strbuf_reset(&n->results);
	child_urls_free(n);
	n->child_urls = xcalloc(n->nwh ? n->nwh : 1, sizeof *n->child_urls);
	n->nchild_urls = n->nwh;
	for (size_t i = 0; i < njobs; i++) {
		struct webhook *w = &n->wh[jobs[i].index];
		snprintf(w->sent, sizeof w->sent, "%s", w->r.new);
		n->child_urls[jobs[i].index] = xstrdup(w->url);
	}
	if (log_get_level() >= LOG_LVL_DEBUG)
		log_debug("notify: child %ld: %s%zu webhook%s", (long)pid,
			  n->hook.pending && n->cfg->hook_command ?
			  "the hook, " : "", njobs, njobs == 1 ? "" : "s");
	n->pid = pid;
	n->deadline = now + NOTIFY_DEADLINE;
	n->killed = false;
	n->hook.pending = false;
	alarms_free(n->alarms, n->nalarms);
	n->alarms = NULL;
	n->nalarms = n->alarms_alloc = 0;
	n->retry_at = 0;
	free(jobs);
}

void notify_alarm(struct notify *n, const struct alarm *a)
{
	struct alarm *c;

	if (!configured(n->cfg))
		return;
	xgrow((void **)&n->alarms, &n->alarms_alloc, n->nalarms + 1,
	      sizeof *n->alarms);
	c = &n->alarms[n->nalarms++];
	*c = *a;
	c->node = xstrdup(a->node ? a->node : "");
	c->summary = xstrdup(a->summary ? a->summary : "");
	if (!n->retry_at)
		start(n);
}

void notify_change(struct notify *n, const struct oid *old, const struct oid *new)
{
	char o[HEX + 1] = "", w[HEX + 1];

	if (!configured(n->cfg))
		return;
	if (old && !oid_is_zero(old))
		oid_tostr(o, sizeof o, old);
	oid_tostr(w, sizeof w, new);
	if (n->cfg->hook_command)
		range_add(&n->hook, o, w);
	for (size_t i = 0; i < n->nwh; i++) {
		struct webhook *wh = &n->wh[i];
		/* the daemon's first sync tells of what it already knows */
		if (!wh->r.pending && !strcmp(wh->acked, w))
			continue;
		/* a new webhook's baseline: what came before its first change */
		if (!wh->acked[0] && o[0]) {
			snprintf(wh->acked, sizeof wh->acked, "%s", o);
			state_save(n);
		}
		range_add(&wh->r, wh->r.pending || !wh->acked[0] ?
			  o : wh->acked, w);
	}
	if (!n->retry_at)
		start(n);
}

/* Read what the child wrote so far (all of it once it has ended). */
static void read_results(struct notify *n)
{
	char buf[4096];
	ssize_t r;

	while (n->result_fd >= 0) {
		r = read(n->result_fd, buf, sizeof buf);
		if (r > 0 && n->results.len < RESULTS_MAX) {
			strbuf_add(&n->results, buf, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 || (r < 0 && errno != EAGAIN)) {
			close(n->result_fd);
			n->result_fd = -1;
		}
		break;
	}
}

/* Backoff after the k-th failure in a row: 5 s doubling, up to an hour. */
static double backoff(unsigned k)
{
	double d = NOTIFY_RETRY_MIN;

	while (--k && d < NOTIFY_RETRY_MAX)
		d *= 2;
	return d < NOTIFY_RETRY_MAX ? d : NOTIFY_RETRY_MAX;
}

static void webhook_failed(struct webhook *w, long after, const char *why)
{
	double wait;

	w->failures++;
	wait = backoff(w->failures);
	/* the server's word, within the bounds: never sooner, never a day */
	if (after >= 0)
		wait = after < NOTIFY_RETRY_MIN ? NOTIFY_RETRY_MIN :
		       after > NOTIFY_RETRY_AFTER_MAX ? NOTIFY_RETRY_AFTER_MAX :
		       (double)after;
	w->next_try = clock_now() + wait;
	free(w->last_error);
	w->last_error = xstrdup(why);
	w->error_at = clock_wall();
	log_warn("webhook '%s': %s; trying again in %.0f s%s", w->shown, why,
		 wait, after >= 0 ? " (Retry-After)" : "");
}

static void webhook_done(struct notify *n, struct webhook *w)
{
	if (w->failures)
		log_info("webhook '%s': told again, after %u failure%s",
			 w->shown, w->failures, w->failures == 1 ? "" : "s");
	w->failures = 0;
	w->next_try = 0;
	w->last_ok = clock_wall();
	snprintf(w->acked, sizeof w->acked, "%s", w->sent);
	if (!strcmp(w->r.new, w->sent))
		w->r.pending = false;
	else	/* what came while it was told: next */
		snprintf(w->r.old, sizeof w->r.old, "%s", w->sent);
	state_save(n);
}

/*
 * The webhook now configured that the child knew as index i: the
 * configuration may have been reloaded while it ran.  -1 when none.
 */
static long child_webhook(const struct notify *n, unsigned long i)
{
	if (i >= n->nchild_urls || !n->child_urls[i])
		return -1;
	for (size_t k = 0; k < n->nwh; k++)
		if (n->wh[k].url && !strcmp(n->wh[k].url, n->child_urls[i]))
			return (long)k;
	return -1;
}

/* The child ended: each webhook it was given is done or failed. */
static void take_results(struct notify *n)
{
	char *line = n->results.buf, *end;
	bool *seen = xcalloc(n->nwh ? n->nwh : 1, sizeof *seen);

	while (n->results.len && (end = strchr(line, '\n'))) {
		char *p;
		unsigned long i;

		*end = '\0';
		i = strtoul(line, &p, 10);
		if (p != line && *p == ' ' && child_webhook(n, i) >= 0)
			i = (unsigned long)child_webhook(n, i);
		else
			i = n->nwh;
		if (i < n->nwh && n->wh[i].sent[0] && !seen[i]) {
			seen[i] = true;
			if (!strcmp(p + 1, "ok")) {
				webhook_done(n, &n->wh[i]);
			} else if (!strncmp(p + 1, "fail ", 5)) {
				char *why;
				long after = strtol(p + 6, &why, 10);
				webhook_failed(&n->wh[i], after,
					       *why == ' ' ? why + 1 : why);
			} else {
				seen[i] = false;
			}
		}
		line = end + 1;
	}
	for (size_t i = 0; i < n->nwh; i++) {
		if (n->wh[i].sent[0] && !seen[i])
			webhook_failed(&n->wh[i], -1, n->killed ?
				       "no answer before the child was killed" :
				       "no answer");
		n->wh[i].sent[0] = '\0';
	}
	free(seen);
	child_urls_free(n);
	strbuf_reset(&n->results);
}

/* The child ended with status st: say what the child did not. */
static void reaped(struct notify *n, int st)
{
	read_results(n);
	if (n->result_fd >= 0) {	/* a grandchild holds it: no more */
		close(n->result_fd);
		n->result_fd = -1;
	}
	if (n->killed)
		log_warn("notify: hook and webhooks killed after %d s",
			 NOTIFY_DEADLINE);
	else if (WIFSIGNALED(st))
		log_warn("notify: child killed by signal %d", WTERMSIG(st));
	else if (WIFEXITED(st) && WEXITSTATUS(st))
		log_debug("notify: child exited with status %d",
			  WEXITSTATUS(st));
	take_results(n);
	n->pid = 0;
	n->killed = false;
}

double notify_poll(struct notify *n)
{
	double now = clock_now(), due;

	if (n->pid > 0) {
		int st = 0;
		pid_t r;

		read_results(n);
		r = waitpid(n->pid, &st, WNOHANG);
		if (r == n->pid) {
			reaped(n, st);
		} else if (r < 0 && errno != EINTR) {
			/* someone else reaped it: the daemon's bug, not fatal */
			log_warn_errno("notify: waitpid %ld", (long)n->pid);
			reaped(n, 0);
		} else if (n->killed) {
			return KILL_POLL;
		} else if (now >= n->deadline) {
			kill_child(n);
			return KILL_POLL;
		} else {
			double left = n->deadline - now;
			return left < POLL_MAX ? left : POLL_MAX;
		}
	}
	if (n->retry_at && now < n->retry_at)
		return n->retry_at - now;
	n->retry_at = 0;
	start(n);
	if (n->pid)
		return POLL_MAX;
	if (n->retry_at)
		return n->retry_at - clock_now();
	due = next_due(n);
	if (!due)
		return 0;
	return due > now ? due - now : KILL_POLL;
}

json_t *notify_status(const struct notify *n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n->nwh; i++) {
		const struct webhook *w = &n->wh[i];
		double left = w->next_try - clock_now();
		json_t *o = json_object();

		json_object_set_new(o, "url", json_string(w->shown));
		json_object_set_new(o, "untold", json_boolean(w->r.pending));
		json_object_set_new(o, "from", w->r.pending && w->r.old[0] ?
				    json_string(w->r.old) : json_null());
		json_object_set_new(o, "acked", w->acked[0] ?
				    json_string(w->acked) : json_null());
		json_object_set_new(o, "failures", json_integer(w->failures));
		json_object_set_new(o, "last_ok", w->last_ok ?
				    json_integer((json_int_t)w->last_ok) :
				    json_null());
		json_object_set_new(o, "last_error", w->last_error ?
				    json_string(w->last_error) : json_null());
		json_object_set_new(o, "error_at", w->error_at ?
				    json_integer((json_int_t)w->error_at) :
				    json_null());
		json_object_set_new(o, "next_try",
				    w->r.pending && w->failures ?
				    json_integer((json_int_t)clock_wall() +
						 (json_int_t)(left > 0 ? left + 0.5 : 0)) :
				    json_null());
		json_array_append_new(a, o);
	}
	return a;
}
