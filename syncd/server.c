/*
 * server: maildag-syncd's side of its control socket (control.h has the
 * protocol).  Each client is a line-buffered JSON connection from the
 * same user: status, sync, and maildag-lda's quorum waits, answered from
 * the loop; a client whose answers pile up unread, or whose request line
 * is too long, is dropped.
 */
#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "format.h"
#include "log.h"
#include "strbuf.h"
#include "syncd_p.h"
#include "xalloc.h"

#define CLIENT_LINE_MAX 65536	/* a control request longer is refused */
#define CLIENTS_MAX 64
#define UNREADABLE_SHOWN 100	/* file names in a status answer */

/* --- the control socket (control.h) ------------------------------------ */

static void client_close(struct client *c)
{
	if (c->waiting)
		peers_wait_cancel(c->waited->peers, c);
	loop_del_fd(c->s->loop, c->fd);
	close(c->fd);
	strbuf_release(&c->in);
	strbuf_release(&c->out);
	c->s->nclients--;
	free(c);
}

static void on_client(void *data, int fd, short revents);

/*
 * Write what is queued, never waiting: what the socket does not take now
 * waits for POLLOUT (answers may be sent while the writer lock is held).
 * false when the client is gone.
 */
static bool client_flush(struct client *c)
{
	size_t off = 0;

	while (off < c->out.len) {
		ssize_t n = write(c->fd, c->out.buf + off, c->out.len - off);
		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && errno == EAGAIN)
			break;
		else
			return false;
	}
	memmove(c->out.buf, c->out.buf + off, c->out.len - off);
	strbuf_setlen(&c->out, c->out.len - off);
	loop_add_fd(c->s->loop, c->fd, c->out.len ? POLLIN | POLLOUT : POLLIN,
		    on_client, c);
	return true;
}

/* Queue one answer line and send what can be; false when the client is gone. */
static bool client_send(struct client *c, json_t *answer)
{
	char *text = json_dumps(answer, JSON_COMPACT);

	json_decref(answer);
	if (!text)
		return false;
	strbuf_addstr(&c->out, text);
	strbuf_addch(&c->out, '\n');
	free(text);
	/* a client that reads nothing while asking more is dropped */
	if (c->out.len > CLIENT_LINE_MAX * 16)
		return false;
	return client_flush(c);
}

static json_t *error_answer(const char *msg)
{
	json_t *a = json_object();

	json_object_set_new(a, "ok", json_false());
	json_object_set_new(a, "error", json_string(msg));
	return a;
}

static void wait_done(void *data, bool ok, json_t *acked, const char *error)
{
	struct client *c = data;
	json_t *a = json_object();

	c->waiting = false;
	json_object_set_new(a, "ok", json_boolean(ok));
	json_object_set_new(a, "acked", acked);
	if (error)
		json_object_set_new(a, "error", json_string(error));
	if (!client_send(c, a))
		log_debug("control: a waiting client went away");
}

/*
 * The Maildir's files the last commit could not read, skipped until they
 * can be (worktree_unreadable()): "<folder>/<sub>/<name>", the first
 * UNREADABLE_SHOWN of them.
 */
static json_t *unreadable_json(struct syncd *s)
{
	size_t n;
	const char *const *v = worktree_unreadable(s->wt, &n);
	json_t *a = json_array();

	for (size_t i = 0; i < n && i < UNREADABLE_SHOWN; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *server_status_json(struct syncd *s)
{
	json_t *a = json_object();

	json_object_set_new(a, "ok", json_true());
	json_object_set_new(a, "node", json_string(s->mb->cfg->node));
	json_object_set_new(a, "mail", oid_is_zero(&s->last_mail) ?
			    json_null() : json_string(oid_hex(&s->last_mail)));
	json_object_set_new(a, "pid", json_integer(getpid()));
	json_object_set_new(a, "quorum", json_integer(s->mb->cfg->quorum));
	json_object_set_new(a, "peers", peers_status(s->peers));
	json_object_set_new(a, "unreadable", unreadable_json(s));
	json_object_set_new(a, "webhooks", notify_status(s->notify));
	if (watch_unwatched(s->watch))
		json_object_set_new(a, "unwatched_folders",
			json_integer((json_int_t)watch_unwatched(s->watch)));
	json_object_set_new(a, "folder_limit",
		json_integer((json_int_t)format_get_limits()->folders));
	json_object_set_new(a, "folders_left_out",
		json_integer((json_int_t)worktree_left_out(s->wt)));
	json_object_set_new(a, "alarms", alarm_open_json(repo_path(s->repo)));
	json_object_set_new(a, "held", json_boolean(s->holding));
	if (s->mb->cfg->address)
		json_object_set_new(a, "mailbox",
				    json_string(s->mb->cfg->address));
	return a;
}

/*
 * Which mailbox a request is for, into *out: the daemon's own, or, for
 * the daemon of virtual mailboxes, the one "mailbox" names (*out is the
 * daemon itself when none is named).  false when the connection should
 * close; *out NULL when an error was answered.
 */
static bool route(struct client *c, json_t *req, const char *cmd,
		  struct syncd **out)
{
	json_t *m = json_object_get(req, "mailbox");
	const char *addr = json_string_value(m);
	struct syncd *s = c->s;

	*out = s;
	if (!m)
		return true;
	if (!addr) {
		*out = NULL;
		return client_send(c, error_answer("\"mailbox\": expected a "
						   "string"));
	}
	if (!s->vd) {
		/* one mailbox: a client that names another is wrong here */
		if (s->mb->cfg->address && !strcmp(s->mb->cfg->address, addr))
			return true;
		*out = NULL;
		return client_send(c, error_answer("this maildag-syncd serves "
			"one mailbox, not virtual ones"));
	}
	if (!(*out = virtual_find(s->vd, addr))) {
		char *msg = xasprintf("%s: no such mailbox", cmd);
		bool ok = client_send(c, error_answer(msg));
		free(msg);
		return ok;
	}
	return true;
}

/* One request; false when the connection should close. */
static bool client_request(struct client *c, const char *line)
{
	struct syncd *s = c->s;
	json_error_t jerr;
	json_t *req = json_loads(line, 0, &jerr), *a;
	const char *cmd;
	bool ok = true;

	if (!json_is_object(req) ||
	    !(cmd = json_string_value(json_object_get(req, "cmd")))) {
		json_decref(req);
		return client_send(c, error_answer("expected a JSON object with "
						   "\"cmd\""));
	}
	if ((ok = route(c, req, cmd, &s)) == false || !s) {
		json_decref(req);
		return ok;
	}
	if (!strcmp(cmd, "status") && s == c->s && s->vd) {
		/* the daemon of virtual mailboxes, asked for them all */
		a = virtual_status_json(s->vd);
		json_object_set_new(a, "ok", json_true());
		json_object_set_new(a, "node", json_string(s->mb->cfg->node));
		json_object_set_new(a, "pid", json_integer(getpid()));
		ok = client_send(c, a);
	} else if (!strcmp(cmd, "sync") && s == c->s && s->vd) {
		virtual_sync_all(s->vd);
		a = json_object();
		json_object_set_new(a, "ok", json_true());
		ok = client_send(c, a);
	} else if (!strcmp(cmd, "wait") && s == c->s && s->vd) {
		ok = client_send(c, error_answer("wait: \"mailbox\" is needed "
						 "(virtual mailboxes)"));
	} else if (!strcmp(cmd, "status")) {
		ok = client_send(c, server_status_json(s));
	} else if (!strcmp(cmd, "sync")) {
		refresh_hold(s);
		peers_sync_now(s->peers);
		a = json_object();
		json_object_set_new(a, "ok", json_true());
		ok = client_send(c, a);
	} else if (!strcmp(cmd, "wait")) {
		const char *hex = json_string_value(json_object_get(req, "commit"));
		json_t *acks = json_object_get(req, "acks");
		json_t *t = json_object_get(req, "timeout");
		struct oid id;
		if (!hex || oid_fromstr(&id, hex) < 0 || strlen(hex) != 40 ||
		    !json_is_integer(acks) || json_integer_value(acks) < 0 ||
		    json_integer_value(acks) > 1000 || !json_is_number(t) ||
		    json_number_value(t) < 0) {
			ok = client_send(c, error_answer("wait: expected \"commit\" "
				"(40 hex digits), \"acks\" (a count) and "
				"\"timeout\" (seconds)"));
		} else if (c->waiting) {
			ok = client_send(c, error_answer("wait: one at a time"));
		} else {
			c->waiting = true;
			c->waited = s;
			peers_wait(s->peers, &id, (int)json_integer_value(acks),
				   json_number_value(t), wait_done, c);
		}
	} else {
		char *msg = xasprintf("unknown command \"%.64s\"", cmd);
		ok = client_send(c, error_answer(msg));
		free(msg);
	}
	json_decref(req);
	return ok;
}

static void on_client(void *data, int fd, short revents)
{
	struct client *c = data;
	char buf[4096];
	ssize_t n;
	char *nl;

	if ((revents & POLLOUT) && !client_flush(c)) {
		client_close(c);
		return;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	n = read(fd, buf, sizeof buf);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(c);
		return;
	}
	strbuf_add(&c->in, buf, (size_t)n);
	while ((nl = memchr(c->in.buf, '\n', c->in.len))) {
		size_t used = (size_t)(nl - c->in.buf) + 1;
		*nl = '\0';
		if (c->waiting || !client_request(c, c->in.buf)) {
			/* a request while a wait is pending: protocol error */
			client_close(c);
			return;
		}
		memmove(c->in.buf, c->in.buf + used, c->in.len - used);
		strbuf_setlen(&c->in, c->in.len - used);
	}
	if (c->in.len > CLIENT_LINE_MAX) {
		log_warn("control: request too long; closing");
		client_close(c);
	}
}

void server_on_accept(void *data, int fd, short revents)
{
	struct syncd *s = data;
	struct client *c;
	int cfd;

	(void)revents;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	if (!control_peer_ok(cfd, s->mb->uid) || s->nclients >= CLIENTS_MAX) {
		close(cfd);
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->s = s;
	c->fd = cfd;
	strbuf_init(&c->in, 0);
	strbuf_init(&c->out, 0);
	s->nclients++;
	loop_add_fd(s->loop, cfd, POLLIN, on_client, c);
}
