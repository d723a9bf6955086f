/*
 * notify: the hook command and the webhooks (see notify.h).
 *
 * Invariants: at most one child runs; the daemon only forks and reaps
 * (waitpid(pid, WNOHANG)), so nothing here blocks it; changes that arrive
 * while a child runs are kept as one range (old of the first, new of the
 * last) and reported by the next child; a child that outlives
 * NOTIFY_DEADLINE is killed with its whole process group, hook included.
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

#include "log.h"
#include "notify.h"
#include "repo.h"
#include "xalloc.h"

#define NOTIFY_CONNECT_TIMEOUT 5	/* seconds, within NOTIFY_HTTP_TIMEOUT */
#define FORK_RETRY 5.0			/* seconds after a failed fork */
#define POLL_MAX 1.0			/* while a child runs */
#define KILL_POLL 0.1			/* after SIGKILL, until it is reaped */

struct notify {
	const struct config *cfg;
	char *user;
	pid_t pid;		/* the child, 0 when none */
	double deadline;	/* when the child is killed */
	bool killed;
	bool pending;		/* a change not yet given to a child */
	struct oid old, new;	/* the range of the pending changes */
	double retry_at;	/* after a failed fork, 0 otherwise */
};

static bool configured(const struct config *cfg)
{
	return cfg->hook_command || (cfg->webhooks && cfg->webhooks[0]);
}

struct notify *notify_new(const struct config *cfg, const char *user)
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
	return n;
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
	free(n->user);
	free(n);
}

void notify_set_config(struct notify *n, const struct config *cfg)
{
	n->cfg = cfg;
	if (!configured(cfg))
		n->pending = false;
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

struct post {
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

/* POST body to every URL at once; the number that failed. */
static int post_all(char *const *urls, const char *body)
{
	struct curl_slist *headers = NULL;
	struct post *posts;
	CURLM *multi = curl_multi_init();
	CURLMcode mc = CURLM_OK;
	CURLMsg *msg;
	size_t n = 0;
	int running = 0, left, failed = 0, started = 0, done = 0;

	while (urls[n])
		n++;
	posts = xcalloc(n, sizeof *posts);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	/* no "Expect: 100-continue" round trip */
	headers = curl_slist_append(headers, "Expect:");
	for (size_t i = 0; i < n; i++) {
		if (!post_new(&posts[i], urls[i], body, headers) || !multi ||
		    curl_multi_add_handle(multi, posts[i].easy) != CURLM_OK) {
			log_warn("webhook '%s': cannot set up the request",
				 posts[i].shown);
			failed++;
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
	if (mc != CURLM_OK)
		log_warn("webhooks: %s", curl_multi_strerror(mc));
	while (started && (msg = curl_multi_info_read(multi, &left))) {
		struct post *p;
		long status = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		done++;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
		if (msg->data.result != CURLE_OK) {
			log_warn("webhook '%s': %s", p->shown,
				 p->err[0] ? p->err :
				 curl_easy_strerror(msg->data.result));
			failed++;
			continue;
		}
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
				  &status);
		if (status >= 300) {
			log_warn("webhook '%s': HTTP status %ld", p->shown,
				 status);
			failed++;
		} else {
			log_debug("webhook '%s': HTTP status %ld", p->shown,
				  status);
		}
	}
	/* transfers the multi handle gave up on (said above) */
	failed += started - done;
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
	return failed;
}

/* Start the hook command; its pid, or -1 (logged). */
static pid_t start_hook(const char *cmd, const char *user, const char *node,
			const char *old, const char *new)
{
	pid_t pid;

	if (cmd[0] != '/') {
		log_warn("hook '%s': not an absolute path; not run", cmd);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_warn("hook '%s': fork: %s", cmd, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		char *argv[] = { (char *)cmd, NULL };

		signal(SIGPIPE, SIG_DFL);
		/* the hook's output goes where the daemon's log goes */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		if (setenv("MAILDAG_USER", user, 1) < 0 ||
		    setenv("MAILDAG_NODE", node, 1) < 0 ||
		    setenv("MAILDAG_REF", REF_MAIL, 1) < 0 ||
		    setenv("MAILDAG_OLD", old, 1) < 0 ||
		    setenv("MAILDAG_NEW", new, 1) < 0)
			_exit(127);
		execv(cmd, argv);
		log_warn("hook '%s': %s", cmd, strerror(errno));
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
			log_warn("hook '%s': waitpid: %s", cmd, strerror(errno));
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

static char *body_json(const char *user, const char *node,
		       const struct oid *old,
		       const char *new_hex)
{
	char old_hex[OID_HEXSZ + 1];
	json_t *b;
	char *text;

	oid_tostr(old_hex, sizeof old_hex, old);
	b = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:I}",
		      "event", "change", "user", user, "node", node,
		      "ref", REF_MAIL,
		      "old", oid_is_zero(old) ? json_null()
						  : json_string(old_hex),
		      "new", new_hex, "time", (json_int_t)time(NULL));
	text = b ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	return text;
}

static void __attribute__((noreturn))
child_main(const struct config *cfg, const char *user, const struct oid *old,
	   const struct oid *new)
{
	char old_hex[OID_HEXSZ + 1], new_hex[OID_HEXSZ + 1];
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
	close_from(3);
	devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0 && devnull != STDIN_FILENO) {
		dup2(devnull, STDIN_FILENO);
		close(devnull);
	}

	if (oid_is_zero(old))
		memset(old_hex, '0', OID_HEXSZ);
	else
		oid_tostr(old_hex, sizeof old_hex, old);
	old_hex[OID_HEXSZ] = '\0';
	oid_tostr(new_hex, sizeof new_hex, new);

	if (cfg->hook_command)
		hook = start_hook(cfg->hook_command, user, node, old_hex,
				  new_hex);
	if (cfg->hook_command && hook < 0)
		failed++;
	if (cfg->webhooks && cfg->webhooks[0]) {
		char *body = body_json(user, node, old, new_hex);
		if (body) {
			failed += post_all(cfg->webhooks, body);
		} else {
			log_warn("webhooks: cannot build the body");
			failed++;
		}
		free(body);
	}
	if (hook > 0)
		failed += wait_hook(hook, cfg->hook_command);
	_exit(failed ? 1 : 0);
}

/* --- the daemon's side ------------------------------------------------ */

static void start(struct notify *n)
{
	sigset_t all, old;
	pid_t pid;

	if (n->pid || !n->pending || !configured(n->cfg))
		return;
	/* no signal may reach the daemon's handlers inside the child */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child_main(n->cfg, n->user, &n->old, &n->new);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_warn("notify: fork: %s", strerror(errno));
		n->retry_at = clock_now() + FORK_RETRY;
		return;
	}
	setpgid(pid, pid);	/* as the child does: whoever is first */
	if (log_get_level() >= LOG_LVL_DEBUG) {
		char o[OID_HEXSZ + 1], w[OID_HEXSZ + 1];
		oid_tostr(o, sizeof o, &n->old);
		oid_tostr(w, sizeof w, &n->new);
		log_debug("notify: child %ld reports %.12s..%.12s", (long)pid,
			  o, w);
	}
	n->pid = pid;
	n->deadline = clock_now() + NOTIFY_DEADLINE;
	n->killed = false;
	n->pending = false;
	n->retry_at = 0;
}

void notify_change(struct notify *n, const struct oid *old,
		   const struct oid *new)
{
	if (!configured(n->cfg))
		return;
	if (!n->pending) {
		if (old)
			oid_cpy(&n->old, old);
		else
			memset(&n->old, 0, sizeof n->old);
	}
	oid_cpy(&n->new, new);
	n->pending = true;
	if (!n->retry_at)
		start(n);
}

/* The child ended with status st: say what the child did not. */
static void reaped(struct notify *n, int st)
{
	if (n->killed)
		log_warn("notify: hook and webhooks killed after %d s",
			 NOTIFY_DEADLINE);
	else if (WIFSIGNALED(st))
		log_warn("notify: child killed by signal %d", WTERMSIG(st));
	else if (WIFEXITED(st) && WEXITSTATUS(st))
		log_debug("notify: child exited with status %d",
			  WEXITSTATUS(st));
	n->pid = 0;
	n->killed = false;
}

double notify_poll(struct notify *n)
{
	double now = clock_now();

	if (n->pid > 0) {
		int st = 0;
		pid_t r = waitpid(n->pid, &st, WNOHANG);

		if (r == n->pid) {
			reaped(n, st);
		} else if (r < 0 && errno != EINTR) {
			/* someone else reaped it: the daemon's bug, not fatal */
			log_warn("notify: waitpid %ld: %s", (long)n->pid,
				 strerror(errno));
			n->pid = 0;
			n->killed = false;
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
	if (!n->pending)
		return 0;
	if (n->retry_at && now < n->retry_at)
		return n->retry_at - now;
	n->retry_at = 0;
	start(n);
	if (n->pid)
		return POLL_MAX;
	return n->pending && n->retry_at ? n->retry_at - clock_now() : 0;
}
