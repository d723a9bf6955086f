/*
 * control: both ends of maildag-syncd's control socket (see control.h).
 *
 * Invariants: every descriptor made here is close-on-exec; a client never
 * blocks past the caller's timeout (it polls, and sends and receives with
 * MSG_DONTWAIT whatever the descriptor's own flags); a client reads
 * nothing beyond the newline that ends an answer, by peeking first, so
 * no bytes of a later answer are lost; and the place of the socket is
 * chosen only from directories that are the user's own.
 */
#include "autoconf.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "fsutil.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

#define SOCKET_NAME "maildag/control"
#define USER_SOCKET_DIR ".local/share"	/* under the home: virtual mailboxes */
#define LISTEN_BACKLOG 64
#define CONNECT_TRIES 40	/* x 50 ms while the backlog is full */
#define PEEK_BUF 65536

#define SUN_PATH_MAX (sizeof ((struct sockaddr_un *)0)->sun_path)

/* --- where ------------------------------------------------------------ */

/*
 * dir as a runtime directory: an absolute path without "." or ".."
 * components to a directory, not a symbolic link, owned by uid and not
 * writable by group or others.  Trailing slashes are dropped (a
 * trailing slash would make lstat follow a link).  A new string or NULL.
 */
static char *runtime_dir(const char *dir, uid_t uid)
{
	struct stat st;
	char *d;
	size_t len;

	if (!dir || dir[0] != '/')
		return NULL;
	d = xstrdup(dir);
	len = strlen(d);
	while (len > 1 && d[len - 1] == '/')
		d[--len] = '\0';
	for (const char *p = d; (p = strchr(p, '/')); ) {
		size_t n = strcspn(++p, "/");
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			goto bad;
	}
	if (lstat(d, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)))
		goto bad;
	return d;
bad:
	log_debug("not using '%s' as the runtime directory", dir);
	free(d);
	return NULL;
}

/* "<dir>/maildag/control" when dir is usable and the path fits; or NULL */
static char *runtime_candidate(const char *dir, uid_t uid)
{
	char *d = runtime_dir(dir, uid), *path;

	if (!d)
		return NULL;
	path = xasprintf("%s/" SOCKET_NAME, d);
	free(d);
	if (strlen(path) >= SUN_PATH_MAX) {
		log_debug("'%s' is too long for a socket", path);
		free(path);
		return NULL;
	}
	return path;
}

/* The candidate places, best first (at most 3); the caller frees each. */
static size_t candidates(char *out[3], const struct mailbox *mb,
			 const char *xdg, const char *run_user)
{
	size_t n = 0;
	char *p;

	if ((p = runtime_candidate(xdg, mb->uid)))
		out[n++] = p;
	if (run_user) {
		char *dir = xasprintf("%s/%lu", run_user, (unsigned long)mb->uid);
		p = runtime_candidate(dir, mb->uid);
		if (p && (n == 0 || strcmp(p, out[0])))
			out[n++] = p;
		else
			free(p);
		free(dir);
	}
	/* one daemon serves every virtual mailbox: one place for them all */
	if (mb->user_socket)
		out[n++] = xasprintf("%s/" USER_SOCKET_DIR "/" SOCKET_NAME,
				     mb->home);
	else
		out[n++] = xasprintf("%s/" SOCKET_NAME, mb->repository);
	return n;
}

char *control_socket_path_with(const struct mailbox *mb, const char *xdg,
			       const char *run_user)
{
	char *c[3];
	size_t n = candidates(c, mb, xdg, run_user);

	for (size_t i = 1; i < n; i++)
		free(c[i]);
	return c[0];
}

char *control_socket_path(const struct mailbox *mb)
{
	return control_socket_path_with(mb, getenv("XDG_RUNTIME_DIR"),
					"/run/user");
}

/* --- both ends -------------------------------------------------------- */

bool control_peer_ok(int fd, uid_t uid)
{
	struct ucred cr;
	socklen_t len = sizeof cr;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		log_debug_errno("SO_PEERCRED");
		return false;
	}
	if (cr.uid != uid) {
		log_debug("peer pid %ld runs as uid %lu, not %lu", (long)cr.pid,
			  (unsigned long)cr.uid, (unsigned long)uid);
		return false;
	}
	return true;
}

/*
 * Fill sa for path.  A path too long for sun_path (a deep repository
 * holds the socket when no runtime directory does) is reached through
 * its directory, opened as *dirfd: "/proc/self/fd/<n>/control"; the
 * caller closes *dirfd (-1 when none) once it has bound or connected.
 * E_FAIL, logged, when even that does not fit or the directory is not
 * there.
 */
static int socket_address(struct sockaddr_un *sa, const char *path,
			  int *dirfd)
{
	size_t len = strlen(path);
	const char *slash = strrchr(path, '/');

	*dirfd = -1;
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (len < sizeof sa->sun_path) {
		memcpy(sa->sun_path, path, len + 1);
		return 0;
	}
	if (slash && slash != path) {
		char *dir = xstrndup(path, (size_t)(slash - path));
		int n;

		*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		free(dir);
		if (*dirfd < 0)
			return errno == ENOENT ? -ENOENT :
			       log_error_errno("socket path '%s'", path);
		n = snprintf(sa->sun_path, sizeof sa->sun_path,
			     "/proc/self/fd/%d/%s", *dirfd, slash + 1);
		if (n > 0 && (size_t)n < sizeof sa->sun_path)
			return 0;
		close(*dirfd);
		*dirfd = -1;
	}
	return log_error("socket path '%s' is too long", path);
}

/*
 * Connect a new non-blocking socket to path.  The descriptor, or
 * -errno of the failure (ENOENT, ECONNREFUSED, EAGAIN...).
 */
static int connect_path(const char *path, int tries)
{
	struct sockaddr_un sa;
	int fd, e, dirfd, r;

	if ((r = socket_address(&sa, path, &dirfd)) < 0)
		return r == -ENOENT ? -ENOENT : -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		e = errno;
		if (dirfd >= 0)
			close(dirfd);
		return -e;
	}
	for (int i = 0;; i++) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
			e = 0;
			break;
		}
		e = errno;
		if (e == EINTR)
			continue;
		/* a unix socket's backlog is full: the daemon may be busy */
		if (e == EAGAIN && i + 1 < tries) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		break;
	}
	if (dirfd >= 0)
		close(dirfd);
	if (!e)
		return fd;
	close(fd);
	return -e;
}

/* --- the client ------------------------------------------------------- */

static int connect_one(const char *path, uid_t uid)
{
	int fd = connect_path(path, CONNECT_TRIES);

	if (fd == -ENOENT || fd == -ECONNREFUSED || fd == -ENOTDIR)
		return E_NOTFOUND;
	if (fd == -EAGAIN) {
		log_debug("'%s': nobody accepts the connection", path);
		return E_TEMP;
	}
	if (fd == -ENAMETOOLONG)
		return E_FAIL;
	if (fd < 0)
		return log_error("connect '%s': %s", path, strerror(-fd));
	if (!control_peer_ok(fd, uid)) {
		close(fd);
		log_error("'%s' is served by another user: not talking to it",
			  path);
		return E_PERM;
	}
	log_debug("connected to '%s'", path);
	return fd;
}

int control_connect(const struct mailbox *mb)
{
	char *c[3];
	size_t n = candidates(c, mb, getenv("XDG_RUNTIME_DIR"), "/run/user");
	int r = E_NOTFOUND, fd = E_NOTFOUND;

	for (size_t i = 0; i < n; i++) {
		if (fd < 0) {
			fd = connect_one(c[i], mb->uid);
			if (fd < 0 && fd != E_NOTFOUND && r == E_NOTFOUND)
				r = fd;
		}
		free(c[i]);
	}
	return fd >= 0 ? fd : r;
}

/*
 * Wait until fd has events or the deadline (clock_now_ms() time; < 0: none)
 * passes.  0, E_TEMP at the deadline, E_FAIL (logged) when poll fails.
 */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int ms = -1, n;

		if (deadline >= 0) {
			long long left = deadline - clock_now_ms();
			if (left <= 0)
				return E_TEMP;
			ms = left > 1000000000 ? 1000000000 : (int)left;
		}
		n = poll(&p, 1, ms);
		if (n > 0)
			return 0;	/* ready, or an error the next call reports */
		if (n < 0 && errno != EINTR)
			return log_error_errno("poll");
	}
}

static int send_line(int fd, const char *buf, size_t len, long long deadline)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int r = wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		return log_error_errno("send to maildag-syncd");
	}
	return 0;
}

/* Read one line, newline included, and not a byte more, into line. */
static int recv_line(int fd, struct strbuf *line, long long deadline)
{
	char *buf = xmalloc(PEEK_BUF);
	int r = 0;

	while (!line->len || line->buf[line->len - 1] != '\n') {
		ssize_t n = recv(fd, buf, PEEK_BUF, MSG_PEEK | MSG_DONTWAIT);
		char *nl;
		size_t take;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((r = wait_fd(fd, POLLIN, deadline)) < 0)
				break;
			continue;
		}
		if (n < 0) {
			r = log_error_errno("receive from maildag-syncd");
			break;
		}
		if (n == 0) {
			r = log_error("maildag-syncd closed the connection %s",
				      line->len ? "in the middle of an answer"
						: "without an answer");
			break;
		}
		nl = memchr(buf, '\n', (size_t)n);
		take = nl ? (size_t)(nl - buf) + 1 : (size_t)n;
		if (line->len + take > CONTROL_LINE_MAX) {
			r = log_error("answer from maildag-syncd longer than "
				      "%d bytes", CONTROL_LINE_MAX);
			break;
		}
		/* the bytes are there: this takes exactly those peeked */
		n = recv(fd, buf, take, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = log_error_errno("receive from maildag-syncd");
			break;
		}
		strbuf_add(line, buf, (size_t)n);
	}
	free(buf);
	return r;
}

int control_request(int fd, json_t *req, json_t **resp, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : clock_now_ms() + timeout_ms;
	struct strbuf line = STRBUF_INIT;
	json_error_t jerr;
	json_t *ans = NULL;
	char *text;
	int r;

	*resp = NULL;
	/* compact output never holds a raw newline: one line */
	text = json_dumps(req, JSON_COMPACT);
	if (!text)
		return log_error("cannot encode the request to maildag-syncd");
	strbuf_addstr(&line, text);
	free(text);
	strbuf_addch(&line, '\n');
	if (line.len > CONTROL_LINE_MAX) {
		r = log_error("request to maildag-syncd longer than %d bytes",
			      CONTROL_LINE_MAX);
		goto done;
	}
	r = send_line(fd, line.buf, line.len, deadline);
	strbuf_reset(&line);
	if (r == 0)
		r = recv_line(fd, &line, deadline);
	if (r == E_TEMP) {
		log_error("no answer from maildag-syncd within %d ms",
			  timeout_ms);
		goto done;
	}
	if (r < 0)
		goto done;
	ans = json_loadb(line.buf, line.len - 1, JSON_REJECT_DUPLICATES, &jerr);
	if (!ans) {
		r = log_error("bad answer from maildag-syncd: %s", jerr.text);
		goto done;
	}
	if (!json_is_object(ans)) {
		json_decref(ans);
		r = log_error("bad answer from maildag-syncd: not an object");
		goto done;
	}
	*resp = ans;
done:
	strbuf_release(&line);
	return r;
}

/* --- the server ------------------------------------------------------- */

/* dir exists (made 0700 if not), is a directory owned by uid, mode 0700 */
static int own_dir(const char *dir, uid_t uid)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno("mkdir '%s'", dir);
	if (lstat(dir, &st) < 0)
		return log_error_errno("stat '%s'", dir);
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid) {
		log_error("'%s' is not a directory of uid %lu", dir,
			  (unsigned long)uid);
		return E_PERM;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0)
		return log_error_errno("chmod '%s'", dir);
	return 0;
}

/*
 * Whoever is at path: 0 when nothing (a stale socket is removed),
 * E_EXISTS (logged) when a process accepts connections there.
 */
static int clear_stale(const char *path)
{
	struct stat st;
	struct ucred cr;
	socklen_t len = sizeof cr;
	int fd;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return log_error_errno("stat '%s'", path);
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("'%s' is in the way: not a socket", path);
		return E_EXISTS;
	}
	fd = connect_path(path, 1);
	if (fd == -ECONNREFUSED || fd == -ENOENT) {
		log_info("removing the stale socket '%s'", path);
		if (unlink(path) < 0 && errno != ENOENT)
			return log_error_errno("unlink '%s'", path);
		return 0;
	}
	if (fd == -EAGAIN) {
		log_error("another maildag-syncd listens on '%s'", path);
		return E_EXISTS;
	}
	if (fd < 0)
		return log_error("connect '%s': %s", path, strerror(-fd));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
		log_error("another maildag-syncd (pid %ld) listens on '%s'",
			  (long)cr.pid, path);
	else
		log_error("another maildag-syncd listens on '%s'", path);
	close(fd);
	return E_EXISTS;
}

int control_listen(const struct mailbox *mb, char **path_out)
{
	char *path = control_socket_path(mb), *dir, *lock = NULL;
	struct sockaddr_un sa;
	int lfd = -1, fd = -1, dirfd = -1, r;

	*path_out = NULL;
	dir = xstrndup(path, (size_t)(strrchr(path, '/') - path));
	/* the user of virtual mailboxes may have no ~/.local/share yet */
	if (mb->user_socket) {
		char *parent = xstrndup(dir, (size_t)(strrchr(dir, '/') - dir));
		if (!is_dir(parent) && mkdir_p(parent, 0700) < 0)
			log_warn_errno("mkdir '%s'", parent);
		free(parent);
	}
	r = own_dir(dir, mb->uid);
	free(dir);
	if (r < 0)
		goto done;
	if ((r = socket_address(&sa, path, &dirfd)) < 0)
		goto done;
	/* check and bind as one step against a second daemon starting */
	lock = xasprintf("%s.lock", path);
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0) {
		r = log_error_errno("open '%s'", lock);
		goto done;
	}
	while ((r = flock(lfd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		r = log_error_errno("flock '%s'", lock);
		goto done;
	}
	if ((r = clear_stale(path)) < 0)
		goto done;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = log_error_errno("socket");
		goto done;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		r = errno == EADDRINUSE ? E_EXISTS : E_FAIL;
		log_error_errno("bind '%s'", path);
		goto done;
	}
	if (chmod(path, 0600) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		r = log_error_errno("listen on '%s'", path);
		unlink(path);
		goto done;
	}
	log_debug("listening on '%s'", path);
	*path_out = path;
	path = NULL;
	r = fd;
	fd = -1;
done:
	if (dirfd >= 0)
		close(dirfd);
	if (fd >= 0)
		close(fd);
	/* the lock file stays: removing it would let a third one race */
	if (lfd >= 0)
		close(lfd);
	free(lock);
	free(path);
	return r;
}

void control_unlisten(int fd, const char *path)
{
	if (fd >= 0)
		close(fd);
	if (path && unlink(path) < 0 && errno != ENOENT)
		log_warn_errno("unlink '%s'", path);
}

long long control_peer_lag(json_t *peer, const char *dir, time_t now)
{
	json_t *unpushed = json_object_get(peer, "unpushed");
	json_t *last = json_object_get(json_object_get(peer, dir), "last_ok");
	long long t;

	if (!strcmp(dir, "push") && json_is_integer(unpushed) &&
	    json_integer_value(unpushed) == 0)
		return 0;
	if (!json_is_integer(last))
		return -1;
	t = (long long)json_integer_value(last);
	return (long long)now > t ? (long long)now - t : 0;
}
