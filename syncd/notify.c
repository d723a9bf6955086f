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
 */
#include "autoconf.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "fsutil.h"
#include "alarm.h"
#include "log.h"
#include "notify.h"
#include "repo.h"
#include "strbuf.h"
#include "xalloc.h"

#define NOTIFY_CONNECT_TIMEOUT 5	/* seconds, within NOTIFY_HTTP_TIMEOUT */
#define FORK_RETRY 5.0			/* seconds after a failed fork */
#define POLL_MAX 1.0			/* while a child runs */
#define KILL_POLL 0.1			/* after SIGKILL, until it is reaped */
#define RESULT_FD 3			/* the child's result lines */
#define RESULT_MAX 512			/* bytes in one result line */
#define RESULTS_MAX (1 << 20)		/* bytes of result lines in all */
#define HEX 40

/* A range of changes: from old ("" when unknown) to new. */
struct range {
	bool pending;
	char old[HEX + 1], new[HEX + 1];
};

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

static char *url_for_log(const char *url);

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
			wh[i].shown = url_for_log(wh[i].url);
		wh[i].sent[0] = '\0';	/* a running child's answer is dropped */
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

/* --- the child -------------------------------------------------------- */

static void close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
#endif
	{
		long max = sysconf(_SC_OPEN_MAX);
		if (max < 0 || max > 65536)
			max = 65536;
		for (int fd = lowfd; fd < max; fd++)
			close(fd);
	}
}

/* What a URL is called in the log: scheme://host[:port]/path, no secrets. */
static char *url_for_log(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *res;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_PORT, &port, 0);
		curl_url_get(u, CURLUPART_PATH, &path, 0);
		res = xasprintf("%s://%s%s%s%s", scheme, host, port ? ":" : "",
				port ? port : "", path ? path : "");
	} else {
		res = xstrdup("(a URL libcurl cannot parse)");
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return res;
}

static size_t discard(char *p, size_t size, size_t n, void *data)
{
	(void)p;
	(void)data;
	return size * n;
}

/* One webhook's POST in the child. */
struct job {
	size_t index;		/* the webhook's, in the configuration */
	const char *url;
	const char *old, *new;	/* the range it is told of */
	char *body;
};

struct post {
	size_t index;		/* the webhook's, in the configuration */
	CURL *easy;
	char *shown;		/* the URL for the log */
	char err[CURL_ERROR_SIZE];
};

static CURL *post_new(struct post *p, const char *url, const char *body,
		      struct curl_slist *headers)
{
	CURL *c = curl_easy_init();

	p->easy = c;
	p->shown = url_for_log(url);
	p->err[0] = '\0';
	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)NOTIFY_HTTP_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)NOTIFY_CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->err);
	curl_easy_setopt(c, CURLOPT_PRIVATE, p);
	return c;
}

/*
 * One result line on fd for webhook i: "<i> ok" or "<i> fail <secs>
 * <reason>", secs the server's Retry-After (-1: none).  The daemon logs
 * the failure and decides when to try again (notify.h).
 */
static void result(int fd, size_t i, long retry_after, const char *why)
{
	char line[RESULT_MAX];
	int n;

	if (!why)
		n = snprintf(line, sizeof line, "%zu ok\n", i);
	else
		n = snprintf(line, sizeof line, "%zu fail %ld %.200s\n", i,
			     retry_after, why);
	if (n > 0 && write(fd, line, (size_t)n) < 0)
		_exit(126);
}

/*
 * POST each job's body to its URL, all at once; one result line per job
 * on fd.  A job that never got an answer has no line: the daemon counts
 * it as failed.
 */
static void post_all(const struct job *jobs, size_t n, int fd)
{
	struct curl_slist *headers = NULL;
	struct post *posts;
	CURLM *multi = curl_multi_init();
	CURLMcode mc = CURLM_OK;
	CURLMsg *msg;
	int running = 0, left, started = 0;

	posts = xcalloc(n ? n : 1, sizeof *posts);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	/* no "Expect: 100-continue" round trip */
	headers = curl_slist_append(headers, "Expect:");
	for (size_t i = 0; i < n; i++) {
		posts[i].index = jobs[i].index;
		if (!jobs[i].body ||
		    !post_new(&posts[i], jobs[i].url, jobs[i].body, headers) ||
		    !multi ||
		    curl_multi_add_handle(multi, posts[i].easy) != CURLM_OK) {
			result(fd, jobs[i].index, -1,
			       "cannot set up the request");
			curl_easy_cleanup(posts[i].easy);
			posts[i].easy = NULL;
		} else {
			started++;
		}
	}
	while (started) {
		if ((mc = curl_multi_perform(multi, &running)) != CURLM_OK ||
		    !running)
			break;
		if ((mc = curl_multi_poll(multi, NULL, 0, 1000, NULL)) != CURLM_OK)
			break;
	}
	while (started && (msg = curl_multi_info_read(multi, &left))) {
		struct post *p;
		long status = 0;
		curl_off_t after = -1;
		char why[64];

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
		if (msg->data.result != CURLE_OK) {
			result(fd, p->index, -1, p->err[0] ? p->err :
			       curl_easy_strerror(msg->data.result));
			continue;
		}
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
				  &status);
		if (status < 200 || status >= 300) {
#if LIBCURL_VERSION_NUM >= 0x074200
			if (curl_easy_getinfo(msg->easy_handle,
					      CURLINFO_RETRY_AFTER,
					      &after) != CURLE_OK || after <= 0)
				after = -1;
#endif
			snprintf(why, sizeof why, "HTTP status %ld", status);
			result(fd, p->index, (long)after, why);
		} else {
			result(fd, p->index, -1, NULL);
		}
	}
	if (mc != CURLM_OK)
		log_warn("webhooks: %s", curl_multi_strerror(mc));
	for (size_t i = 0; i < n; i++) {
		if (posts[i].easy) {
			curl_multi_remove_handle(multi, posts[i].easy);
			curl_easy_cleanup(posts[i].easy);
		}
		free(posts[i].shown);
	}
	curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	free(posts);
}

/*
 * Start the hook command with the environment variables env (pairs of
 * name and value, NULL-terminated) besides the daemon's; its pid, or -1
 * (logged).
 */
static pid_t start_hook(const char *cmd, const char *const *env)
{
	pid_t pid;

	if (cmd[0] != '/') {
		log_warn("hook '%s': not an absolute path; not run", cmd);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_warn_errno("hook '%s': fork", cmd);
		return -1;
	}
	if (pid == 0) {
		char *argv[] = { (char *)cmd, NULL };

		signal(SIGPIPE, SIG_DFL);
		/* the hook's output goes where the daemon's log goes */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		for (const char *const *e = env; *e; e += 2)
			if (setenv(e[0], e[1], 1) < 0)
				_exit(127);
		execv(cmd, argv);
		log_warn_errno("hook '%s'", cmd);
		_exit(127);
	}
	return pid;
}

/* Wait for the hook; 0 when it exited 0, else 1 (logged). */
static int wait_hook(pid_t pid, const char *cmd)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			log_warn_errno("hook '%s': waitpid", cmd);
			return 1;
		}
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) != 127)
		log_warn("hook '%s' exited with status %d", cmd,
			 WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		log_warn("hook '%s' was killed by signal %d", cmd,
			 WTERMSIG(st));
	/* 127: the exec failed, said above */
	return 1;
}

static char *body_json(const char *user, const char *node, const char *old,
		       const char *new)
{
	json_t *b;
	char *text;

	b = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:I}",
		      "event", "change", "user", user, "node", node,
		      "ref", REF_MAIL,
		      "old", old[0] ? json_string(old) : json_null(),
		      "new", new, "time", (json_int_t)time(NULL));
	text = b ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	return text;
}

/* An alarm's body for the webhooks (notify.h); a new string or NULL. */
static char *alarm_body(const char *user, const char *node,
			const struct alarm *a)
{
	json_t *b = alarm_json(a);
	char *text;

	json_object_set_new(b, "event", json_string("alarm"));
	json_object_set_new(b, "user", json_string(user));
	json_object_set_new(b, "origin", json_string(a->node ? a->node : ""));
	json_object_set_new(b, "node", json_string(node));
	json_object_set_new(b, "ref", json_string(REF_MAIL));
	json_object_set_new(b, "old", json_string(a->parent));
	json_object_set_new(b, "new", json_string(a->change));
	json_object_set_new(b, "time", json_integer((json_int_t)time(NULL)));
	text = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	return text;
}

/*
 * One alarm, in the child: the hook, and one POST to every webhook whose
 * results are read here and only logged (an alarm moves no webhook's
 * acknowledged commit).  The failures.
 */
static int report_alarm(const struct config *cfg, const char *user,
			const struct alarm *a)
{
	const char *node = cfg->node ? cfg->node : "";
	char *undo = alarm_undo_line(a), *confirm = alarm_confirm_line(a);
	pid_t hook = -1;
	int failed = 0, fds[2];

	if (cfg->hook_command) {
		const char *env[] = {
			"MAILDAG_EVENT", "alarm", "MAILDAG_USER", user,
			"MAILDAG_NODE", node, "MAILDAG_REF", REF_MAIL,
			"MAILDAG_OLD", a->parent, "MAILDAG_NEW", a->change,
			"MAILDAG_CHANGE", a->change,
			"MAILDAG_ORIGIN", a->node ? a->node : "",
			"MAILDAG_ALARM", a->summary ? a->summary : "",
			"MAILDAG_UNDO", undo, "MAILDAG_CONFIRM", confirm,
			"MAILDAG_HELD", a->held ? "1" : "0", NULL,
		};
		if ((hook = start_hook(cfg->hook_command, env)) < 0)
			failed++;
	}
	if (cfg->webhooks && cfg->webhooks[0] && pipe(fds) == 0) {
		struct job *jobs;
		size_t n = 0;
		char line[RESULT_MAX + 1];
		FILE *f;

		while (cfg->webhooks[n])
			n++;
		jobs = xcalloc(n, sizeof *jobs);
		for (size_t i = 0; i < n; i++) {
			jobs[i].index = i;
			jobs[i].url = cfg->webhooks[i];
			jobs[i].body = alarm_body(user, node, a);
		}
		/* a result line each, far less than a pipe holds */
		post_all(jobs, n, fds[1]);
		close(fds[1]);
		f = fdopen(fds[0], "r");
		while (f && fgets(line, sizeof line, f)) {
			size_t i = strtoul(line, NULL, 10);
			const char *why = strstr(line, " fail ");
			char *shown;
			if (!why || i >= n)
				continue;
			why = strchr(why + 6, ' ');
			shown = url_for_log(cfg->webhooks[i]);
			log_warn("webhook '%s': the alarm of %.*s not told: %.*s",
				 shown, CHANGE_SHORT, a->change,
				 why ? (int)strcspn(why + 1, "\n") : 0,
				 why ? why + 1 : "");
			free(shown);
			failed++;
		}
		if (f)
			fclose(f);
		for (size_t i = 0; i < n; i++)
			free(jobs[i].body);
		free(jobs);
	}
	if (hook > 0)
		failed += wait_hook(hook, cfg->hook_command);
	free(undo);
	free(confirm);
	return failed;
}

/*
 * The child: the hook for hook (when hook->pending), and each job's
 * POST; result lines on RESULT_FD; then each alarm.  Exits 0, or 1 when
 * the hook failed.
 */
static void __attribute__((noreturn))
child_main(const struct config *cfg, const char *user,
	   const struct range *hook_range, struct job *jobs, size_t njobs,
	   const struct alarm *alarms, size_t nalarms)
{
	const char *node = cfg->node ? cfg->node : "";
	sigset_t all;
	pid_t hook = -1;
	int failed = 0, devnull;

	/* the daemon's handlers write to its self-pipe: not ours */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	setpgid(0, 0);
	/* syslog's socket would be closed under it, its number reused */
	closelog();
	close_from(RESULT_FD + 1);
	/* the hook must not hold the result pipe: it is ours to close */
	fcntl(RESULT_FD, F_SETFD, FD_CLOEXEC);
	devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0 && devnull != STDIN_FILENO) {
		dup2(devnull, STDIN_FILENO);
		close(devnull);
	}

	if (cfg->hook_command && hook_range->pending) {
		char old[HEX + 1];
		if (hook_range->old[0])
			snprintf(old, sizeof old, "%s", hook_range->old);
		else
			memset(old, '0', HEX), old[HEX] = '\0';
		{
			const char *env[] = {
				"MAILDAG_EVENT", "change", "MAILDAG_USER", user,
				"MAILDAG_NODE", node, "MAILDAG_REF", REF_MAIL,
				"MAILDAG_OLD", old,
				"MAILDAG_NEW", hook_range->new, NULL,
			};
			hook = start_hook(cfg->hook_command, env);
		}
		if (hook < 0)
			failed++;
	}
	for (size_t i = 0; i < njobs; i++)
		jobs[i].body = body_json(user, node, jobs[i].old, jobs[i].new);
	if (njobs)
		post_all(jobs, njobs, RESULT_FD);
	if (hook > 0)
		failed += wait_hook(hook, cfg->hook_command);
	for (size_t i = 0; i < nalarms; i++)
		failed += report_alarm(cfg, user, &alarms[i]);
	_exit(failed ? 1 : 0);
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
		child_main(n->cfg, n->user, &n->hook, jobs, njobs, n->alarms,
			   n->nalarms);
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
	for (size_t i = 0; i < njobs; i++) {
		struct webhook *w = &n->wh[jobs[i].index];
		snprintf(w->sent, sizeof w->sent, "%s", w->r.new);
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
	w->error_at = time(NULL);
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
	w->last_ok = time(NULL);
	snprintf(w->acked, sizeof w->acked, "%s", w->sent);
	if (!strcmp(w->r.new, w->sent))
		w->r.pending = false;
	else	/* what came while it was told: next */
		snprintf(w->r.old, sizeof w->r.old, "%s", w->sent);
	state_save(n);
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
		if (p != line && *p == ' ' && i < n->nwh && n->wh[i].sent[0] &&
		    !seen[i]) {
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
				    json_integer((json_int_t)time(NULL) +
						 (json_int_t)(left > 0 ? left + 0.5 : 0)) :
				    json_null());
		json_array_append_new(a, o);
	}
	return a;
}
