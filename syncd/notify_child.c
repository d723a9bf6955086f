/*
 * notify_child: the child that notify.c forks for the hook and the
 * webhooks.  It runs the hook command in a process group of its own,
 * POSTs each webhook's range of changes (several at once, through
 * curl's multi interface, within NOTIFY_HTTP_TIMEOUT), then each alarm;
 * each webhook's outcome is one line on RESULT_FD, which the daemon
 * reads.  It never returns: it exits 1 when the hook failed.
 */
#include "autoconf.h"

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

#include "clock.h"
#include "log.h"
#include "notify.h"
#include "notify_p.h"
#include "xalloc.h"

#define NOTIFY_CONNECT_TIMEOUT 5	/* seconds, within NOTIFY_HTTP_TIMEOUT */

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

char *notify_url_for_log(const char *url)
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
	p->shown = notify_url_for_log(url);
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
	/* one line: a control character in libcurl's text becomes a space */
	for (int k = 0; k + 1 < n && k + 1 < (int)sizeof line; k++)
		if ((unsigned char)line[k] < 0x20)
			line[k] = ' ';
	if (n >= (int)sizeof line)
		n = (int)sizeof line - 1, line[n - 1] = '\n';
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
		      "new", new, "time", (json_int_t)clock_wall());
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
	json_object_set_new(b, "time", json_integer((json_int_t)clock_wall()));
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
			shown = notify_url_for_log(cfg->webhooks[i]);
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

void __attribute__((noreturn))
notify_child_main(const struct config *cfg, const char *user,
		  const struct range *hook_range, struct job *jobs,
		  size_t njobs, const struct alarm *alarms, size_t nalarms)
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
