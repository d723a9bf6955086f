/*
 * notify-t: the hook command and the webhooks, against a real shell
 * script and a small HTTP server in a forked child: the hook's
 * environment and stdin, that it holds no lock of the daemon's, the
 * JSON body, no redirect followed, each failure logged once without the
 * URL's secrets, coalescing, and the deadline killing the whole group.
 * Built with NOTIFY_DEADLINE at 2 seconds.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "log.h"
#include "notify.h"
#include "strbuf.h"
#include "../tap.h"
#include "xalloc.h"

static char dir[] = "/tmp/notify-t.XXXXXX";
static int port;
static pid_t server;

static char *at(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

/* The whole of a file ("" when absent); the caller frees it. */
static char *slurp(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0)
		strbuf_add(&sb, buf, (size_t)n);
	if (fd >= 0)
		close(fd);
	return strbuf_detach(&sb, NULL);
}

/* Write text (freed here) to path with mode. */
static void put(const char *path, char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) || chmod(path, mode) < 0) {
		perror(path);
		exit(99);
	}
	free(text);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* --- an HTTP server: logs "<path> <content-type> <body>" per request --- */

static void serve(int lfd, const char *log)
{
	int flaky = 0, busy = 0;	/* /flaky fails twice, /busy once */

	for (;;) {
		char req[65536], path[512] = "", ctype[128] = "", *body, *h;
		size_t have = 0, clen = 0;
		int c = accept(lfd, NULL, NULL);
		FILE *f;

		if (c < 0)
			continue;
		while (have < sizeof req - 1) {
			ssize_t n = read(c, req + have, sizeof req - 1 - have);
			if (n <= 0)
				break;
			have += (size_t)n;
			req[have] = '\0';
			if ((body = strstr(req, "\r\n\r\n"))) {
				h = strcasestr(req, "\r\ncontent-length:");
				clen = h ? strtoul(h + 17, NULL, 10) : 0;
				if (have >= (size_t)(body + 4 - req) + clen)
					break;
			}
		}
		req[have] = '\0';
		sscanf(req, "%*s %511s", path);
		if ((h = strcasestr(req, "\r\ncontent-type:")))
			sscanf(h + 15, " %127[^\r]", ctype);
		body = strstr(req, "\r\n\r\n");
		if ((f = fopen(log, "a"))) {
			fprintf(f, "%s %s %s\n", path, ctype, body ? body + 4 : "");
			fclose(f);
		}
		if (!strncmp(path, "/flaky", 6) && flaky++ < 2) {
			dprintf(c, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n"
				"Connection: close\r\n\r\n");
		} else if (!strncmp(path, "/busy", 5) && busy++ < 1) {
			dprintf(c, "HTTP/1.1 503 Busy\r\nRetry-After: 2\r\n"
				"Content-Length: 0\r\nConnection: close\r\n\r\n");
		} else if (!strncmp(path, "/fail", 5)) {
			dprintf(c, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n"
				"Connection: close\r\n\r\n");
		} else if (!strncmp(path, "/redirect", 9)) {
			dprintf(c, "HTTP/1.1 302 Found\r\nLocation: "
				"http://127.0.0.1:%d/ok\r\nContent-Length: 0\r\n"
				"Connection: close\r\n\r\n", port);
		} else {
			dprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				"Connection: close\r\n\r\nok");
		}
		close(c);
	}
}

static void start_server(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof sa;
	char *log = at("http.log");
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(lfd, 16) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
		perror("server socket");
		exit(99);
	}
	port = ntohs(sa.sin_port);
	server = fork();
	if (server == 0)
		serve(lfd, log);
	close(lfd);
	free(log);
}

/* --- running notify ----------------------------------------------------- */

/* Poll until no child runs and nothing is pending, or secs pass. */
static bool settle(struct notify *n, double secs)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		double next = notify_poll(n);
		/* no child, and none due now (a webhook's retry is later) */
		if (!notify_pid(n) && (next == 0 || next >= 1))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > secs)
			return false;
		usleep(20 * 1000);
	}
}

/* stderr (where the child logs) into a file, and back */
static int saved_stderr = -1;
static char *err_path;

static void capture_stderr(void)
{
	int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

static char *release_stderr(void)
{
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	return slurp(err_path);
}

/* "<a>..<b>\n" as the hook writes it */
static char *range(const struct oid *a, const struct oid *b)
{
	char ha[OID_HEXSZ + 1], hb[OID_HEXSZ + 1];

	oid_tostr(ha, sizeof ha, a);
	oid_tostr(hb, sizeof hb, b);
	return xasprintf("%s..%s\n", ha, hb);
}

static void oid(struct oid *out, char c)
{
	char hex[OID_HEXSZ + 1];

	memset(hex, c, OID_HEXSZ);
	hex[OID_HEXSZ] = '\0';
	oid_fromstr(out, hex);
}

/* The dead or zombie state of pid (the deadline killed it). */
static bool gone(pid_t pid)
{
	char *p = xasprintf("/proc/%ld/stat", (long)pid), *st = slurp(p);
	char *rp = strrchr(st, ')');
	bool dead = !*st || (rp && rp[1] == ' ' && rp[2] == 'Z');

	free(p);
	free(st);
	return dead;
}

static void test_nothing_configured(struct config *cfg)
{
	struct notify *n = notify_new(cfg, "alice", NULL);
	struct oid a;

	oid(&a, 'a');
	notify_change(n, NULL, &a);
	is_int(notify_pid(n), 0, "no hook, no webhook: no child");
	ok(notify_poll(n) == 0, "no hook, no webhook: nothing to poll for");
	notify_free(n);
	notify_free(NULL);
}

static void test_hook_and_webhooks(struct config *cfg)
{
	char *hook = at("hook"), *lock = at("lock"), *env_out = at("env.out");
	char *http = at("http.log"), *errs, *got, *body;
	char *urls[6];
	struct notify *n;
	json_t *j;
	struct oid a;
	int lfd;

	put(hook, xasprintf("#!/bin/sh\n"
		  "env | grep '^MAILDAG_' | sort >'%s'\n"
		  "echo \"stdin=$(cat | wc -c)\" >>'%s'\n"
		  "flock -n '%s' true && echo lock=free >>'%s'\n"
		  "exit 3\n", env_out, env_out, lock, env_out), 0755);
	urls[0] = xasprintf("http://127.0.0.1:%d/ok", port);
	urls[1] = xasprintf("http://user:secret@127.0.0.1:%d/fail?token=abc#f",
			    port);
	urls[2] = xasprintf("http://127.0.0.1:%d/redirect", port);
	urls[3] = xstrdup("http://127.0.0.1:1/refused");
	urls[4] = NULL;
	cfg->hook_command = hook;
	cfg->webhooks = urls;

	/* the daemon holds the writer lock when the child forks */
	lfd = open(lock, O_RDWR | O_CREAT, 0600);
	flock(lfd, LOCK_EX);
	capture_stderr();
	n = notify_new(cfg, "alice", NULL);
	oid(&a, 'a');
	notify_change(n, NULL, &a);
	ok(notify_pid(n) > 0, "change: a child runs at once");
	close(lfd);	/* releases the lock, unless the child kept a copy */
	ok(settle(n, 15), "change: the child ends");
	errs = release_stderr();
	notify_free(n);

	got = slurp(env_out);
	ok(strstr(got, "MAILDAG_USER=alice\n") != NULL, "hook: MAILDAG_USER");
	ok(strstr(got, "MAILDAG_NODE=mx1\n") != NULL, "hook: MAILDAG_NODE");
	ok(strstr(got, "MAILDAG_REF=refs/heads/mail\n") != NULL,
	   "hook: MAILDAG_REF");
	ok(strstr(got, "MAILDAG_OLD=0000000000000000000000000000000000000000\n")
	   != NULL, "hook: MAILDAG_OLD is zeros when unknown");
	ok(strstr(got, "MAILDAG_NEW=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n")
	   != NULL, "hook: MAILDAG_NEW");
	ok(strstr(got, "stdin=0\n") != NULL, "hook: stdin is /dev/null");
	ok(strstr(got, "lock=free\n") != NULL,
	   "hook: the child holds no copy of the daemon's descriptors");
	free(got);

	got = slurp(http);
	is_int((long long)count(got, "/ok "), 1,
	       "webhook: one POST to /ok, the redirect not followed");
	is_int((long long)count(got, "/redirect "), 1, "webhook: /redirect asked");
	is_int((long long)count(got, "/fail?token=abc "), 1, "webhook: /fail asked");
	body = strstr(got, "/ok application/json ");
	ok(body != NULL, "webhook: Content-Type application/json");
	j = body ? json_loads(body + strlen("/ok application/json "),
			      JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	is_str(json_string_value(json_object_get(j, "event")), "change",
	       "body: event");
	is_str(json_string_value(json_object_get(j, "user")), "alice",
	       "body: user");
	is_str(json_string_value(json_object_get(j, "node")), "mx1", "body: node");
	is_str(json_string_value(json_object_get(j, "ref")), "refs/heads/mail",
	       "body: ref");
	ok(json_is_null(json_object_get(j, "old")), "body: old is null");
	is_str(json_string_value(json_object_get(j, "new")),
	       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "body: new");
	ok(json_is_integer(json_object_get(j, "time")) &&
	   llabs((long long)json_integer_value(json_object_get(j, "time")) -
		 (long long)time(NULL)) < 60, "body: time");
	json_decref(j);
	free(got);

	{
		char *w;
		w = xasprintf("hook '%s' exited with status 3\n", hook);
		is_int((long long)count(errs, w), 1, "log: the hook's exit status");
		free(w);
		w = xasprintf("webhook 'http://127.0.0.1:%d/fail': HTTP status 500; "
			      "trying again in 1 s\n",
			      port);
		is_int((long long)count(errs, w), 1, "log: HTTP 500, no secrets");
		free(w);
		w = xasprintf("webhook 'http://127.0.0.1:%d/redirect': HTTP status 302; "
			      "trying again in 1 s\n",
			      port);
		is_int((long long)count(errs, w), 1, "log: a redirect is a failure");
		free(w);
		is_int((long long)count(errs, "webhook 'http://127.0.0.1:1/refused': "),
		       1, "log: a transfer error");
		ok(!strstr(errs, "secret") && !strstr(errs, "token"),
		   "log: no password, no query");
		is_int((long long)count(errs, "\n"), 4, "log: one line per failure");
		if (count(errs, "\n") != 4)
			diag("%s", errs);
	}
	free(errs);
	for (int i = 0; urls[i]; i++)
		free(urls[i]);
	cfg->webhooks = NULL;
	cfg->hook_command = NULL;
	free(hook);
	free(lock);
	free(env_out);
	free(http);
}

static void test_coalescing(struct config *cfg)
{
	char *hook = at("slow-hook"), *out = at("ranges");
	char *empty[] = { NULL };
	struct notify *n;
	struct oid a, b, c, d;
	char *got, *want;

	put(hook, xasprintf("#!/bin/sh\nsleep 0.5\n"
			    "echo \"$MAILDAG_OLD..$MAILDAG_NEW\" >>'%s'\n", out),
	    0755);
	cfg->hook_command = hook;
	cfg->webhooks = empty;
	oid(&a, 'a');
	oid(&b, 'b');
	oid(&c, 'c');
	oid(&d, 'd');
	n = notify_new(cfg, "alice", NULL);
	notify_change(n, &a, &b);
	notify_change(n, &b, &c);
	notify_change(n, &c, &d);
	ok(settle(n, 10), "coalescing: settles");
	got = slurp(out);
	{
		char *w1 = range(&a, &b), *w2 = range(&b, &d);
		want = xasprintf("%s%s", w1, w2);
		is_str(got, want, "coalescing: a..b, then b..d in one run");
		free(w1);
		free(w2);
	}
	free(want);
	free(got);

	/* a config without hooks drops what is pending */
	unlink(out);
	notify_change(n, &d, &a);
	notify_change(n, &a, &b);
	{
		struct config none = *cfg;
		none.hook_command = NULL;
		notify_set_config(n, &none);
		ok(settle(n, 10), "set_config: settles");
		notify_set_config(n, cfg);
	}
	got = slurp(out);
	want = range(&d, &a);
	is_str(got, want, "set_config: the running child ends, the rest dropped");
	free(want);
	free(got);
	notify_free(n);
	cfg->hook_command = NULL;
	cfg->webhooks = NULL;
	free(hook);
	free(out);
}

static void test_deadline(struct config *cfg)
{
	char *hook = at("hung-hook"), *pidf = at("hung.pid"), *errs, *p;
	char *empty[] = { NULL };
	struct notify *n;
	struct timespec t0, t1;
	struct oid a;
	pid_t hung = 0;

	put(hook, xasprintf("#!/bin/sh\necho $$ >'%s'\nsleep 60\n", pidf), 0755);
	cfg->hook_command = hook;
	cfg->webhooks = empty;
	oid(&a, 'a');
	capture_stderr();
	n = notify_new(cfg, "alice", NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	notify_change(n, NULL, &a);
	ok(settle(n, 10), "deadline: the child is killed and reaped");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	errs = release_stderr();
	ok(t1.tv_sec - t0.tv_sec >= NOTIFY_DEADLINE - 1 &&
	   t1.tv_sec - t0.tv_sec <= NOTIFY_DEADLINE + 2,
	   "deadline: after %d s", NOTIFY_DEADLINE);
	p = slurp(pidf);
	hung = (pid_t)atol(p);
	free(p);
	usleep(200 * 1000);
	ok(hung > 0 && gone(hung), "deadline: the hook is killed with it");
	ok(strstr(errs, "killed after") != NULL, "deadline: logged");
	free(errs);

	/* notify_free kills a running child */
	unlink(pidf);
	notify_change(n, &a, &a);
	ok(notify_pid(n) > 0, "free: a child runs");
	for (int i = 0; i < 100 && !*(p = slurp(pidf)); i++) {
		free(p);
		usleep(20 * 1000);
	}
	hung = (pid_t)atol(p);
	free(p);
	notify_free(n);
	usleep(200 * 1000);
	ok(hung > 0 && gone(hung), "free: kills the child and its hook");

	cfg->hook_command = NULL;
	cfg->webhooks = NULL;
	free(hook);
	free(pidf);
}

/* The last body POSTed to path, parsed; NULL when none. */
static json_t *last_body(const char *log, const char *path)
{
	char *got = slurp(log), *p, *last = NULL;
	char *key = xasprintf("%s application/json ", path);
	json_t *j = NULL;

	for (p = got; (p = strstr(p, key)); p++)
		last = p;
	if (last)
		j = json_loads(last + strlen(key), JSON_DISABLE_EOF_CHECK, NULL);
	free(key);
	free(got);
	return j;
}

static bool all_told(struct notify *n)
{
	json_t *st = notify_status(n), *w;
	size_t i;
	bool all = true;

	json_array_foreach(st, i, w)
		all = all && !json_is_true(json_object_get(w, "untold"));
	json_decref(st);
	return all;
}

/* Poll until every webhook is told, or secs pass. */
static bool told(struct notify *n, double secs)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		notify_poll(n);
		if (!notify_pid(n) && all_told(n))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > secs)
			return false;
		usleep(20 * 1000);
	}
}

static void test_retries(struct config *cfg)
{
	char *state = at("webhooks.json"), *http = at("http.log"), *errs, *w;
	char *urls[3];
	struct notify *n;
	json_t *j;
	struct oid a, b, c;
	char ahex[41], bhex[41], chex[41];

	unlink(http);
	urls[0] = xasprintf("http://127.0.0.1:%d/flaky", port);
	urls[1] = xasprintf("http://127.0.0.1:%d/busy", port);
	urls[2] = NULL;
	cfg->webhooks = urls;
	oid(&a, 'a');
	oid(&b, 'b');
	oid(&c, 'c');
	oid_tostr(ahex, sizeof ahex, &a);
	oid_tostr(bhex, sizeof bhex, &b);
	oid_tostr(chex, sizeof chex, &c);

	capture_stderr();
	n = notify_new(cfg, "alice", state);
	notify_start(n, &a);
	notify_change(n, &a, &b);
	settle(n, 15);
	/* both failed once; a change while they wait joins their range */
	notify_change(n, &b, &c);
	ok(told(n, 30), "retries: every webhook is told in the end");
	errs = release_stderr();
	notify_free(n);

	w = xasprintf("/flaky application/json ");
	{
		char *got = slurp(http);
		is_int((long long)count(got, w), 3,
		       "retries: /flaky asked three times (500, 500, 200)");
		free(got);
	}
	free(w);
	j = last_body(http, "/flaky");
	is_str(json_string_value(json_object_get(j, "old")), ahex,
	       "retries: the post that worked covers from the first change "
	       "not acknowledged");
	is_str(json_string_value(json_object_get(j, "new")), chex,
	       "retries: to the last");
	json_decref(j);
	w = xasprintf("webhook 'http://127.0.0.1:%d/busy': HTTP status 503; "
		      "trying again in 2 s (Retry-After)\n", port);
	is_int((long long)count(errs, w), 1, "retries: Retry-After honoured");
	free(w);
	w = xasprintf("webhook 'http://127.0.0.1:%d/flaky': HTTP status 500; "
		      "trying again in 2 s\n", port);
	is_int((long long)count(errs, w), 1, "retries: the backoff doubles");
	if (count(errs, w) != 1)
		diag("%s", errs);
	free(w);
	free(errs);
	{
		char *got = slurp(state);
		ok(count(got, chex) == 2, "state: both acknowledged the last "
		   "change");
		free(got);
	}

	/* the daemon stops; refs/heads/mail moves; it starts again */
	unlink(http);
	capture_stderr();
	n = notify_new(cfg, "alice", state);
	notify_start(n, &a);	/* a commit they have not acknowledged */
	ok(told(n, 15), "restart: every webhook told what it missed");
	errs = release_stderr();
	notify_free(n);
	free(errs);
	j = last_body(http, "/busy");
	is_str(json_string_value(json_object_get(j, "old")), chex,
	       "restart: from what it acknowledged");
	is_str(json_string_value(json_object_get(j, "new")), ahex,
	       "restart: to refs/heads/mail now");
	json_decref(j);

	cfg->webhooks = NULL;
	free(urls[0]);
	free(urls[1]);
	free(state);
	free(http);
}

static void test_bad_hook(struct config *cfg)
{
	char *missing = at("no-such-hook"), *errs, *w;
	char *empty[] = { NULL };
	struct notify *n;
	struct oid a;

	cfg->webhooks = empty;
	oid(&a, 'a');
	capture_stderr();
	cfg->hook_command = "relative/hook";
	n = notify_new(cfg, "alice", NULL);
	notify_change(n, NULL, &a);
	settle(n, 10);
	cfg->hook_command = missing;
	notify_change(n, NULL, &a);
	settle(n, 10);
	errs = release_stderr();
	notify_free(n);
	ok(strstr(errs, "hook 'relative/hook': not an absolute path") != NULL,
	   "hook: a relative path is not run");
	w = xasprintf("hook '%s': No such file or directory\n", missing);
	is_int((long long)count(errs, w), 1, "hook: one line when it cannot run");
	is_int((long long)count(errs, "\n"), 2, "hook: and nothing else");
	free(w);
	free(errs);
	cfg->hook_command = NULL;
	cfg->webhooks = NULL;
	free(missing);
}

int main(void)
{
	struct config *cfg;
	char *cmd;

	log_init("notify-t", LOG_TO_STDERR, LOG_LVL_WARN);
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 99;
	}
	err_path = at("stderr");
	start_server();
	cfg = config_defaults("alice", dir);
	free(cfg->node);
	cfg->node = xstrdup("mx1");
	{
		char **saved = cfg->webhooks;
		test_nothing_configured(cfg);
		test_hook_and_webhooks(cfg);
		test_coalescing(cfg);
		test_deadline(cfg);
		test_bad_hook(cfg);
		test_retries(cfg);
		cfg->webhooks = saved;
	}
	config_free(cfg);

	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove '%s'", dir);
	free(cmd);
	free(err_path);
	return tap_done();
}
