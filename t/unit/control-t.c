/*
 * control-t: the control socket's client and the daemon's helpers.
 * Where the socket goes for every kind of runtime directory a hostile
 * environment can name; control_listen() (modes, a second daemon
 * refused, a stale socket replaced); and request/answer round trips with
 * a small server in a forked child: several requests on one connection,
 * long answers, too long ones, no answer, a closed connection, bytes
 * after the answer's newline kept for the next request.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "../tap.h"
#include "xalloc.h"

static char dir[] = "/tmp/control-t.XXXXXX";
static struct mailbox mb;

static char *at(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void mkdir_mode(const char *path, mode_t mode)
{
	if ((mkdir(path, mode) < 0 && errno != EEXIST) || chmod(path, mode) < 0) {
		perror(path);
		exit(99);
	}
}

/* control_socket_path_with(xdg, run_user) is want ("$D" = the directory) */
static void path_is(const char *name, const char *xdg, const char *run_user,
		    const char *want)
{
	char *got = control_socket_path_with(&mb, xdg, run_user);
	char *w = NULL;

	if (!strncmp(want, "$D", 2))
		w = xasprintf("%s%s", dir, want + 2);
	is_str(got, w ? w : want, "path: %s", name);
	free(got);
	free(w);
}

static void test_paths(void)
{
	char *good = at("xdg"), *slash = at("xdg///"), *gw = at("gw");
	char *ow = at("ow"), *gr = at("gr"), *file = at("file");
	char *link = at("link"), *dots = at("xdg/../xdg"), *run = at("run");
	char *rundir = xasprintf("%s/run/%lu", dir, (unsigned long)mb.uid);
	char *lng = xasprintf("%s/%0100d", dir, 0);
	char *absent = at("absent"), *other = at("other");
	FILE *f;

	mkdir_mode(good, 0700);
	mkdir_mode(gw, 0770);
	mkdir_mode(ow, 0702);
	mkdir_mode(gr, 0750);
	mkdir_mode(run, 0755);
	mkdir_mode(lng, 0700);
	if (!(f = fopen(file, "w")) || fclose(f)) {
		perror(file);
		exit(99);
	}
	if (symlink(good, link) < 0) {
		perror(link);
		exit(99);
	}

	path_is("no XDG_RUNTIME_DIR, no /run/user/<uid>: the repository",
		NULL, run, "$D/repo/maildag/control");
	path_is("no /run/user at all", NULL, NULL, "$D/repo/maildag/control");
	path_is("a good XDG_RUNTIME_DIR", good, run, "$D/xdg/maildag/control");
	path_is("trailing slashes dropped", slash, run,
		"$D/xdg/maildag/control");
	path_is("empty", "", run, "$D/repo/maildag/control");
	path_is("relative", "xdg", run, "$D/repo/maildag/control");
	path_is("a '..' component", dots, run, "$D/repo/maildag/control");
	path_is("group-writable", gw, run, "$D/repo/maildag/control");
	path_is("writable by others", ow, run, "$D/repo/maildag/control");
	path_is("group-readable is fine", gr, run, "$D/gr/maildag/control");
	path_is("a file", file, run, "$D/repo/maildag/control");
	path_is("a symbolic link", link, run, "$D/repo/maildag/control");
	path_is("absent", absent, run, "$D/repo/maildag/control");
	path_is("too long for sun_path", lng, run, "$D/repo/maildag/control");
	if (getuid() == 0) {
		mkdir_mode(other, 0700);
		if (chown(other, 1, 1) < 0) {
			perror(other);
			exit(99);
		}
		path_is("owned by another user", other, run,
			"$D/repo/maildag/control");
	} else {
		ok(1, "path: owned by another user # SKIP needs root");
	}

	/* /run/user/<uid> */
	mkdir_mode(rundir, 0700);
	{
		char *want = xasprintf("%s/maildag/control", rundir);
		char *got = control_socket_path_with(&mb, NULL, run);
		is_str(got, want, "path: /run/user/<uid> without XDG_RUNTIME_DIR");
		free(got);
		got = control_socket_path_with(&mb, gw, run);
		is_str(got, want, "path: /run/user/<uid> after a bad XDG_RUNTIME_DIR");
		free(got);
		got = control_socket_path_with(&mb, rundir, run);
		is_str(got, want, "path: XDG_RUNTIME_DIR is /run/user/<uid>");
		free(got);
		free(want);
	}
	path_is("XDG_RUNTIME_DIR before /run/user/<uid>", good, run,
		"$D/xdg/maildag/control");
	chmod(rundir, 0777);
	path_is("a world-writable /run/user/<uid>", NULL, run,
		"$D/repo/maildag/control");
	chmod(rundir, 0700);

	free(good); free(slash); free(gw); free(ow); free(gr); free(file);
	free(link); free(dots); free(run); free(rundir); free(lng);
	free(absent); free(other);
}

/* --- a small server ----------------------------------------------------- */

/* Read one line from fd into buf (NUL-terminated, newline dropped). */
static ssize_t read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -1 : (n ? (ssize_t)n : -1);
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

/* a client that went away ends only its own connection */
static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* A long answer: {"ok":true,"pad":"xxx..."} of about size bytes. */
static void answer_long(int fd, size_t size)
{
	char *s = xmalloc(size + 64);
	size_t n = (size_t)sprintf(s, "{\"ok\":true,\"pad\":\"");

	memset(s + n, 'x', size);
	n += size;
	n += (size_t)sprintf(s + n, "\"}\n");
	write_all(fd, s, n);
	free(s);
}

/*
 * Serve one connection: the request's "cmd" says what to do.  An answer
 * echoes the request and says whether the client's uid checked out.
 */
static void serve_conn(int fd)
{
	char line[4096];

	while (read_line(fd, line, sizeof line) >= 0) {
		json_t *req = json_loads(line, 0, NULL), *ans;
		const char *cmd = json_string_value(json_object_get(req, "cmd"));
		char *text;

		if (!cmd)
			cmd = "";
		if (!strcmp(cmd, "close")) {
			json_decref(req);
			return;
		} else if (!strcmp(cmd, "never")) {
			json_decref(req);
			continue;
		} else if (!strcmp(cmd, "long")) {
			answer_long(fd, 700 * 1024);
		} else if (!strcmp(cmd, "toolong")) {
			answer_long(fd, 2 * 1024 * 1024);
		} else if (!strcmp(cmd, "array")) {
			write_all(fd, "[1,2]\n", 6);
		} else if (!strcmp(cmd, "garbage")) {
			write_all(fd, "{\"ok\":tru\n", 10);
		} else if (!strcmp(cmd, "two")) {
			/* two answers in one write: the second must wait */
			write_all(fd, "{\"n\":1}\n{\"n\":2}\n", 16);
		} else if (!strcmp(cmd, "slow")) {
			/* an answer in pieces */
			write_all(fd, "{\"ok\":", 6);
			usleep(100 * 1000);
			write_all(fd, "true,\"slow\":1}\n", 15);
		} else {
			ans = json_pack("{s:b, s:O, s:b}", "ok", 1, "echo", req,
					"uid_ok", control_peer_ok(fd, getuid()));
			text = json_dumps(ans, JSON_COMPACT);
			write_all(fd, text, strlen(text));
			write_all(fd, "\n", 1);
			free(text);
			json_decref(ans);
		}
		json_decref(req);
	}
}

/* Fork a server accepting on lfd until killed; returns its pid. */
static pid_t start_server(int lfd)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(99);
	}
	if (pid == 0) {
		fcntl(lfd, F_SETFL, 0);
		for (;;) {
			int c = accept(lfd, NULL, NULL);
			if (c < 0)
				_exit(errno == EINTR ? 0 : 2);
			serve_conn(c);
			close(c);
		}
	}
	return pid;
}

static void stop_server(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static long long ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One request {"cmd":cmd}; the result code, *ans the answer or NULL. */
static int ask(int fd, const char *cmd, json_t **ans, int timeout_ms)
{
	json_t *req = json_pack("{s:s}", "cmd", cmd);
	int r = control_request(fd, req, ans, timeout_ms);

	json_decref(req);
	return r;
}

static void test_round_trips(void)
{
	char *xdg = at("rt"), *path = NULL, *path2 = NULL;
	char *want = xasprintf("%s/rt/maildag/control", dir);
	struct stat st;
	json_t *ans;
	long long t0;
	pid_t srv;
	int lfd, fd, r;

	mkdir_mode(xdg, 0700);
	setenv("XDG_RUNTIME_DIR", xdg, 1);
	is_int(control_connect(&mb), E_NOTFOUND, "connect: nobody there");

	lfd = control_listen(&mb, &path);
	ok(lfd >= 0, "listen");
	is_str(path, want, "listen: at the socket path");
	ok(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	   (st.st_mode & 0777) == 0600, "listen: a socket, mode 0600");
	{
		char *d = xasprintf("%s/maildag", xdg);
		ok(stat(d, &st) == 0 && (st.st_mode & 0777) == 0700,
		   "listen: its directory is mode 0700");
		free(d);
	}
	ok((fcntl(lfd, F_GETFD) & FD_CLOEXEC) &&
	   (fcntl(lfd, F_GETFL) & O_NONBLOCK), "listen: close-on-exec, non-blocking");

	srv = start_server(lfd);
	close(lfd);
	is_int(control_listen(&mb, &path2), E_EXISTS,
	       "listen: refused while another one listens");
	ok(path2 == NULL, "listen: no path when refused");

	fd = control_connect(&mb);
	ok(fd >= 0, "connect");
	ok(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "connect: close-on-exec");
	r = ask(fd, "hello", &ans, 2000);
	is_int(r, 0, "request: answered");
	is_str(json_string_value(json_object_get(json_object_get(ans, "echo"),
						 "cmd")), "hello",
	       "request: the server got the request");
	ok(json_is_true(json_object_get(ans, "uid_ok")),
	   "control_peer_ok: the server sees our uid");
	json_decref(ans);

	r = ask(fd, "long", &ans, 5000);
	is_int(r, 0, "request: a 700 KiB answer is read whole");
	is_int((long long)strlen(json_string_value(json_object_get(ans, "pad"))),
	       700 * 1024, "request: every byte of the long answer");
	json_decref(ans);

	r = ask(fd, "two", &ans, 2000);
	is_int(json_integer_value(json_object_get(ans, "n")), 1,
	       "request: the first of two lines");
	json_decref(ans);
	r = ask(fd, "never", &ans, 2000);
	is_int(json_integer_value(json_object_get(ans, "n")), 2,
	       "request: the second line was kept for the next request");
	json_decref(ans);

	r = ask(fd, "slow", &ans, 2000);
	ok(r == 0 && json_integer_value(json_object_get(ans, "slow")) == 1,
	   "request: an answer that comes in pieces");
	json_decref(ans);

	t0 = ms_now();
	r = ask(fd, "never", &ans, 300);
	t0 = ms_now() - t0;
	is_int(r, E_TEMP, "request: no answer is E_TEMP");
	ok(t0 >= 290 && t0 < 2000, "request: after the timeout (%lld ms)", t0);
	ok(ans == NULL, "request: no answer object on failure");
	close(fd);

	fd = control_connect(&mb);
	ok(fd >= 0, "connect: toolong");
	is_int(ask(fd, "toolong", &ans, 5000), E_FAIL,
	       "request: a 2 MiB answer is refused");
	ok(strstr(log_last_error(), "longer than") != NULL,
	   "request: saying it is too long");
	close(fd);

	fd = control_connect(&mb);
	ok(fd >= 0, "connect: array");
	is_int(ask(fd, "array", &ans, 2000), E_FAIL,
	       "request: an answer that is not an object");
	close(fd);
	fd = control_connect(&mb);
	ok(fd >= 0, "connect: garbage");
	is_int(ask(fd, "garbage", &ans, 2000), E_FAIL,
	       "request: an answer that is not JSON");
	close(fd);
	fd = control_connect(&mb);
	ok(fd >= 0, "connect: close");
	is_int(ask(fd, "close", &ans, 2000), E_FAIL,
	       "request: the server closes without answering");
	close(fd);

	/* a dead daemon's socket */
	stop_server(srv);
	ok(stat(path, &st) == 0, "stale: the socket file is left behind");
	is_int(control_connect(&mb), E_NOTFOUND,
	       "stale: connect says nobody is there");
	lfd = control_listen(&mb, &path2);
	ok(lfd >= 0, "stale: listen replaces it");
	srv = start_server(lfd);
	close(lfd);
	fd = control_connect(&mb);
	ok(fd >= 0 && ask(fd, "again", &ans, 2000) == 0,
	   "stale: the new server answers");
	json_decref(ans);
	close(fd);

	stop_server(srv);
	control_unlisten(-1, path2);
	ok(stat(path2, &st) < 0 && errno == ENOENT, "unlisten: socket removed");

	/*
	 * A client whose XDG_RUNTIME_DIR is not the daemon's still finds it:
	 * a daemon without one listens in the repository (unless this
	 * machine has a /run/user/<uid>: then leave that alone).
	 */
	unsetenv("XDG_RUNTIME_DIR");
	{
		char *p = control_socket_path(&mb), *xdg2 = at("rt2");
		char *repo_sock = xasprintf("%s/maildag/control", mb.repository);

		if (strcmp(p, repo_sock)) {
			ok(1, "connect: tries the other places # SKIP %s exists",
			   p);
		} else {
			free(path2);
			lfd = control_listen(&mb, &path2);
			srv = start_server(lfd);
			close(lfd);
			mkdir_mode(xdg2, 0700);
			setenv("XDG_RUNTIME_DIR", xdg2, 1);
			fd = control_connect(&mb);
			ok(fd >= 0 && ask(fd, "found", &ans, 2000) == 0,
			   "connect: tries the other places");
			json_decref(ans);
			if (fd >= 0)
				close(fd);
			stop_server(srv);
			control_unlisten(-1, path2);
			unsetenv("XDG_RUNTIME_DIR");
		}
		free(p);
		free(xdg2);
		free(repo_sock);
	}

	free(path);
	free(path2);
	free(want);
	free(xdg);
}

/* A request over a blocking socketpair, and the peer check. */
static void test_socketpair(void)
{
	int sv[2];
	json_t *req, *ans;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("socketpair");
		exit(99);
	}
	ok(control_peer_ok(sv[0], getuid()), "peer_ok: our own uid");
	ok(!control_peer_ok(sv[0], getuid() + 1), "peer_ok: another uid");
	ok(!control_peer_ok(-1, getuid()), "peer_ok: not a socket");
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		serve_conn(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	req = json_pack("{s:s, s:s}", "cmd", "status", "text", "a\nb");
	is_int(control_request(sv[0], req, &ans, -1), 0,
	       "socketpair: a blocking descriptor, no timeout");
	is_str(json_string_value(json_object_get(json_object_get(ans, "echo"),
						 "text")), "a\nb",
	       "socketpair: a newline in a string survives");
	json_decref(ans);
	json_decref(req);
	close(sv[0]);
	waitpid(pid, NULL, 0);
}

int main(void)
{
	char *cmd;

	log_init("control-t", LOG_TO_STDERR, LOG_LVL_ERROR);
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 99;
	}
	mb.user = "alice";
	mb.uid = getuid();
	mb.repository = at("repo");
	mkdir_mode(mb.repository, 0700);

	test_paths();
	test_round_trips();
	test_socketpair();

	cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove '%s'", dir);
	free(cmd);
	free((char *)mb.repository);
	return tap_done();
}
