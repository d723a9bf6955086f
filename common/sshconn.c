/*
 * sshconn: a non-blocking libssh2 connection (see sshconn.h).
 *
 * Every libssh2 call here may answer LIBSSH2_ERROR_EAGAIN; the state
 * stays, and the same call is made again once the socket is ready in
 * the direction libssh2_session_block_directions() names.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sshconn.h"
#include "strbuf.h"
#include "xalloc.h"

enum state {
	ST_TCP,
	ST_HANDSHAKE,
	ST_AUTH,
	ST_CHANNEL,
	ST_EXEC,
	ST_OPEN,
	ST_FAILED,
};

struct sshconn {
	enum state state;
	int fd;
	LIBSSH2_SESSION *s;
	LIBSSH2_CHANNEL *ch;
	const struct config_peer *peer;
	char *user, *host, *command;
	char *keys[4];
	size_t nkeys, key;
	enum net_status status;
	char error[512];
	struct strbuf err;	/* the command's stderr */
};

static __attribute__((format(printf, 3, 4)))
int fail(struct sshconn *c, enum net_status st, const char *fmt, ...)
{
	va_list ap;

	if (c->state != ST_FAILED) {
		c->state = ST_FAILED;
		c->status = st;
		va_start(ap, fmt);
		vsnprintf(c->error, sizeof c->error, fmt, ap);
		va_end(ap);
	}
	return E_FAIL;
}

static const char *ssh_error(struct sshconn *c)
{
	char *msg = NULL;

	if (!c->s)
		return "no session";
	libssh2_session_last_error(c->s, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown libssh2 error";
}

/* ssh://[user@]host[:port]/path: user (else ours), host, port */
static int parse_url(struct sshconn *c, const char *url, char **port)
{
	const char *p, *slash, *at, *colon;
	struct passwd *pw;

	if (strncmp(url, "ssh://", 6))
		return fail(c, NET_FAILED, "'%s' is not an ssh:// URL", url);
	p = url + 6;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	at = memchr(p, '@', (size_t)(slash - p));
	if (at) {
		c->user = xstrndup(p, (size_t)(at - p));
		p = at + 1;
	} else {
		pw = getpwuid(getuid());
		c->user = xstrdup(pw ? pw->pw_name : "nobody");
	}
	if (*p == '[') {
		const char *e = memchr(p, ']', (size_t)(slash - p));
		if (!e)
			return fail(c, NET_FAILED, "'%s': bad host", url);
		c->host = xstrndup(p + 1, (size_t)(e - p - 1));
		colon = e[1] == ':' ? e + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(slash - p));
		c->host = xstrndup(p, (size_t)((colon ? colon : slash) - p));
	}
	*port = colon ? xstrndup(colon + 1, (size_t)(slash - colon - 1))
		      : xstrdup("22");
	return 0;
}

/* net.h's list; the agent is not offered on a session (yet) */
static void list_keys(struct sshconn *c)
{
	struct passwd *pw = getpwuid(getuid());
	const char *home = pw && pw->pw_dir ? pw->pw_dir : getenv("HOME");
	char **paths;
	size_t n;
	bool agent;

	net_ssh_keys(&paths, &n, &agent, c->peer, home);
	for (size_t i = 0; i < n; i++) {
		if (c->nkeys < sizeof c->keys / sizeof c->keys[0])
			c->keys[c->nkeys++] = paths[i];
		else
			free(paths[i]);
	}
	free(paths);
}

int sshconn_start(struct sshconn **out, const struct config_peer *p,
		  const char *command)
{
	struct sshconn *c = xcalloc(1, sizeof *c);
	struct addrinfo hints = { 0 }, *ai = NULL;
	char *port = NULL;
	int one = 1, e;

	static bool started;

	if (!started && libssh2_init(0) == 0)
		started = true;
	*out = c;
	c->fd = -1;
	c->peer = p;
	c->command = xstrdup(command);
	strbuf_init(&c->err, 0);
	if (parse_url(c, p->url, &port) < 0)
		goto done;
	list_keys(c);
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(c->host, port, &hints, &ai)) != 0) {
		fail(c, NET_UNREACHABLE, "peer %s: %s: %s", p->name, c->host,
		     gai_strerror(e));
		goto done;
	}
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       0);
	if (c->fd < 0) {
		fail(c, NET_FAILED, "socket: %s", strerror(errno));
		goto done;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
	    errno != EINPROGRESS) {
		fail(c, NET_UNREACHABLE, "peer %s: connect to %s port %s: %s",
		     p->name, c->host, port, strerror(errno));
		goto done;
	}
	c->state = ST_TCP;
done:
	if (ai)
		freeaddrinfo(ai);
	free(port);
	return c->state == ST_FAILED ? E_FAIL : 0;
}

int sshconn_fd(const struct sshconn *c)
{
	return c->fd;
}

short sshconn_events(const struct sshconn *c)
{
	int dir;
	short ev = 0;

	if (c->state == ST_TCP)
		return POLLOUT;
	if (!c->s)
		return POLLIN;
	dir = libssh2_session_block_directions(c->s);
	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		ev |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		ev |= POLLOUT;
	return ev ? ev : POLLIN;
}

static int check_host_key(struct sshconn *c)
{
	const unsigned char *h = (const unsigned char *)
		libssh2_hostkey_hash(c->s, LIBSSH2_HOSTKEY_HASH_SHA256);
	struct strbuf fp = STRBUF_INIT;
	int ret = 0;

	if (!h)
		return fail(c, NET_HOSTKEY, "peer %s (%s): no SHA256 "
			    "fingerprint of its host key", c->peer->name, c->host);
	config_fingerprint(&fp, h);
	if (!c->peer->host_key)
		ret = fail(c, NET_HOSTKEY, "peer %s (%s) presented host key %s, "
			   "but no host_key is pinned for it", c->peer->name,
			   c->host, fp.buf);
	else if (strcmp(fp.buf, c->peer->host_key))
		ret = fail(c, NET_HOSTKEY, "peer %s (%s) presented host key %s, "
			   "expected %s", c->peer->name, c->host, fp.buf,
			   c->peer->host_key);
	strbuf_release(&fp);
	return ret;
}

/* One key after the other, until one is taken or none is left. */
static int step_auth(struct sshconn *c)
{
	for (;;) {
		int r;

		if (c->key >= c->nkeys) {
			if (!c->nkeys)
				return fail(c, NET_AUTH, "no ssh key to log in to "
					    "peer %s as '%s'", c->peer->name, c->user);
			return fail(c, NET_AUTH, "peer %s refused every key "
				    "offered for user '%s' (%zu tried)",
				    c->peer->name, c->user, c->nkeys);
		}
		r = libssh2_userauth_publickey_fromfile(c->s, c->user, NULL,
							c->keys[c->key], NULL);
		if (r == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (r == 0)
			return 1;
		log_debug("peer %s: key '%s' not taken: %s", c->peer->name,
			  c->keys[c->key], ssh_error(c));
		c->key++;
	}
}

static int step(struct sshconn *c)
{
	int r, e;
	socklen_t len = sizeof e;

	switch (c->state) {
	case ST_TCP:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			e = errno;
		if (e == EINPROGRESS || e == EALREADY)
			return 0;
		if (e)
			return fail(c, NET_UNREACHABLE, "peer %s: connect to %s: %s",
				    c->peer->name, c->host, strerror(e));
		if (!(c->s = libssh2_session_init()))
			return fail(c, NET_FAILED, "cannot start libssh2");
		libssh2_session_set_blocking(c->s, 0);
		c->state = ST_HANDSHAKE;
		/* fall through */
	case ST_HANDSHAKE:
		r = libssh2_session_handshake(c->s, c->fd);
		if (r == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (r)
			return fail(c, NET_UNREACHABLE, "peer %s: ssh handshake: %s",
				    c->peer->name, ssh_error(c));
		if (check_host_key(c) < 0)
			return E_FAIL;
		c->state = ST_AUTH;
		/* fall through */
	case ST_AUTH:
		if ((r = step_auth(c)) <= 0)
			return r;
		c->state = ST_CHANNEL;
		/* fall through */
	case ST_CHANNEL:
		c->ch = libssh2_channel_open_session(c->s);
		if (!c->ch) {
			if (libssh2_session_last_errno(c->s) == LIBSSH2_ERROR_EAGAIN)
				return 0;
			return fail(c, NET_FAILED, "peer %s: open a channel: %s",
				    c->peer->name, ssh_error(c));
		}
		c->state = ST_EXEC;
		/* fall through */
	case ST_EXEC:
		r = libssh2_channel_exec(c->ch, c->command);
		if (r == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (r)
			return fail(c, NET_FAILED, "peer %s: run '%s': %s",
				    c->peer->name, c->command, ssh_error(c));
		c->state = ST_OPEN;
		return 1;
	case ST_OPEN:
		return 1;
	case ST_FAILED:
		break;
	}
	return E_FAIL;
}

int sshconn_step(struct sshconn *c)
{
	return step(c);
}

static void drain_stderr(struct sshconn *c)
{
	char buf[512];
	ssize_t n;

	while ((n = libssh2_channel_read_stderr(c->ch, buf, sizeof buf)) > 0)
		if (c->err.len < 2048)
			strbuf_add(&c->err, buf, (size_t)n);
}

ssize_t sshconn_read(struct sshconn *c, char *buf, size_t len)
{
	ssize_t n;

	if (c->state != ST_OPEN)
		return E_FAIL;
	drain_stderr(c);
	n = libssh2_channel_read(c->ch, buf, len);
	if (n > 0)
		return n;
	if (n == LIBSSH2_ERROR_EAGAIN)
		return 0;
	if (n == 0 || libssh2_channel_eof(c->ch)) {
		drain_stderr(c);
		return fail(c, NET_FAILED, "peer %s: the session ended",
			    c->peer->name);
	}
	return fail(c, NET_FAILED, "peer %s: read: %s", c->peer->name,
		    ssh_error(c));
}

ssize_t sshconn_write(struct sshconn *c, const char *buf, size_t len)
{
	ssize_t n;

	if (c->state != ST_OPEN)
		return E_FAIL;
	n = libssh2_channel_write(c->ch, buf, len);
	if (n >= 0)
		return n;
	if (n == LIBSSH2_ERROR_EAGAIN)
		return 0;
	return fail(c, NET_FAILED, "peer %s: write: %s", c->peer->name,
		    ssh_error(c));
}

const char *sshconn_stderr(struct sshconn *c)
{
	char *p;

	if (c->ch)
		drain_stderr(c);
	for (p = c->err.buf; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return c->err.buf;
}

void sshconn_stderr_clear(struct sshconn *c)
{
	strbuf_reset(&c->err);
}

int sshconn_exit_status(struct sshconn *c)
{
	if (!c->ch || !libssh2_channel_eof(c->ch))
		return -1;
	return libssh2_channel_get_exit_status(c->ch);
}

const char *sshconn_error(const struct sshconn *c)
{
	return c->error;
}

enum net_status sshconn_status(const struct sshconn *c)
{
	return c->status;
}

void sshconn_free(struct sshconn *c)
{
	if (!c)
		return;
	/* no goodbye: a non-blocking one could not be waited for anyway */
	if (c->ch)
		libssh2_channel_free(c->ch);
	if (c->s)
		libssh2_session_free(c->s);
	if (c->fd >= 0)
		close(c->fd);
	for (size_t i = 0; i < c->nkeys; i++)
		free(c->keys[i]);
	strbuf_release(&c->err);
	free(c->user);
	free(c->host);
	free(c->command);
	free(c);
}
