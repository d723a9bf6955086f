/*
 * peers_session: the daemon's side of the network worker (networker.h).
 *
 * A peer whose session is up has its pushes carried by the worker
 * instead of a push child; every other peer (no session yet, down,
 * fallback, file://) has today's children.  What the worker reports
 * moves the same state a child's result moves: an "ok" is a push
 * accepted (pr_op_finish), so quorum waits count it as they count a
 * push child's; a session that goes down with a push in flight fails
 * that push over to a child at once.  A "holds" (the peer's hello or
 * ANNOUNCE over its own authenticated session) is what the peer says
 * its refs/heads/mail is, as a fetch child's result is: the push back
 * of a commit the peer made itself ends there (doc/persistent-peers.md
 * 5.6).
 *
 * Invariant: only the worker's lines move this state, and only for
 * peers of the current configuration; a worker that dies or is stopped
 * leaves every session down.
 */
#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "fsutil.h"
#include "log.h"
#include "merge.h"
#include "networker.h"
#include "peers_p.h"
#include "xalloc.h"

/* a worker that died is started again after this */
#define NW_RESTART 1.0

static void conn_down(struct peers *p, struct peer *pe, const char *why)
{
	struct op *op = &pe->push;

	pe->conn.up = false;
	if (op->in_session) {
		struct net_result res = { 0 };
		op->in_session = false;
		res.status = NET_FAILED;
		snprintf(res.error, sizeof res.error, "session down: %s", why);
		/* at once, over a child: this run did not answer */
		op->again = true;
		pr_op_finish(op, &res);
	}
	(void)p;
}

/* "state NAME STATE SINCE IN OUT PUSHES ACK_MS ERROR..." */
static void on_state(struct peers *p, struct peer *pe, char *rest)
{
	char state[16], *err;
	long long since;
	int n = 0;

	if (sscanf(rest, "%15s %lld %llu %llu %llu %ld %n", state, &since,
		   &pe->conn.bytes_in, &pe->conn.bytes_out, &pe->conn.pushes,
		   &pe->conn.ack_ms, &n) < 6 || !n)
		return;
	err = rest + n;
	snprintf(pe->conn.state, sizeof pe->conn.state, "%s", state);
	pe->conn.since = (time_t)since;
	free(pe->conn.error);
	pe->conn.error = strcmp(err, "-") ? xstrdup(err) : NULL;
	if (!strcmp(state, "up")) {
		if (!pe->conn.up)
			log_info("peer %s: session up", pe->cfg.name);
		pe->conn.up = true;
		/* what waited for the session goes now */
		if (p->have_mail && pe->push.enabled && !pe->push.pid)
			pr_op_start(&pe->push);
	} else if (pe->conn.up) {
		conn_down(p, pe, err);
	}
}

static void on_ok(struct peers *p, struct peer *pe, const struct oid *id)
{
	struct op *op = &pe->push;
	struct net_result res = { 0 };

	if (op->in_session) {
		op->in_session = false;
		res.status = NET_OK;
		oid_cpy(&res.id, id);
		res.changed = true;
		pr_op_finish(op, &res);
		return;
	}
	/* the peer's hello, or an answer after a deadline: it holds id */
	if (!op->have_id || merge_is_ancestor(p->repo, &op->id, id) == 1) {
		oid_cpy(&op->id, id);
		op->have_id = true;
	}
	pr_check_waits(p);
}

static void on_line(struct peers *p, char *line)
{
	char *verb = line, *name, *rest;
	struct peer *pe;
	struct oid id;
	bool have_id;

	if (!strncmp(line, "pong ", 5)) {
		p->nw_pong_due = false;
		return;
	}
	if (!(name = strchr(verb, ' ')))
		return;
	*name++ = '\0';
	if (!(rest = strchr(name, ' ')))
		return;
	*rest++ = '\0';
	if (!(pe = pr_find_peer(p, name)))
		return;
	pe->conn.known = true;
	have_id = strlen(rest) >= OID_HEXSZ && oid_fromstr(&id, rest) == 0;
	if (!strcmp(verb, "state")) {
		on_state(p, pe, rest);
	} else if (!strcmp(verb, "ok") && have_id) {
		on_ok(p, pe, &id);
	} else if (!strcmp(verb, "err") && pe->push.in_session) {
		struct net_result res = { 0 };
		char *text = strchr(rest, ' ');
		res.status = !strncmp(rest, "rejected", 8) ? NET_REJECTED
							    : NET_FAILED;
		snprintf(res.error, sizeof res.error, "peer %s: %s", pe->cfg.name,
			 text ? text + 1 : rest);
		pe->push.in_session = false;
		pr_op_finish(&pe->push, &res);
	} else if (!strcmp(verb, "holds") && have_id) {
		oid_cpy(&pe->fetch.id, &id);
		pe->fetch.have_id = true;
		pr_check_waits(p);
	} else if (!strcmp(verb, "fetched") && have_id) {
		log_debug("peer %s: fetched %.12s over the session",
			  pe->cfg.name, oid_hex(&id));
		pe->fetch.last_ok = clock_wall();
		p->refs_dirty = true;
		p->want_sync(p->data);
	}
}

static void nw_ended(struct peers *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i]->alive && p->v[i]->conn.up)
			conn_down(p, p->v[i], "the network worker ended");
	for (size_t i = 0; i < p->n; i++) {
		snprintf(p->v[i]->conn.state, sizeof p->v[i]->conn.state,
			 "down");
		p->v[i]->conn.up = false;
	}
}

static void on_nw(void *data, int fd, short revents)
{
	struct peers *p = data;
	char buf[8192], *nl;
	ssize_t n;

	int e;

	(void)revents;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		strbuf_add(&p->nw_in, buf, (size_t)n);
	e = errno;	/* what the lines do below changes it */
	while ((nl = memchr(p->nw_in.buf, '\n', p->nw_in.len))) {
		*nl = '\0';
		on_line(p, p->nw_in.buf);
		strbuf_remove(&p->nw_in, 0, (size_t)(nl - p->nw_in.buf) + 1);
	}
	if (p->nw_in.len > 4 * NETWORKER_LINE_MAX)
		strbuf_reset(&p->nw_in);
	if (n == 0 || (n < 0 && e != EAGAIN && e != EINTR)) {
		struct strbuf why = STRBUF_INIT;
		int st = -1;

		loop_del_fd(p->loop, p->nw_fd);
		close(p->nw_fd);
		if (waitpid(p->nw_pid, &st, 0) < 0)
			st = -1;
		child_describe(&why, st, false);
		log_warn("the network worker ended (%s); starting it again",
			 why.buf);
		strbuf_release(&why);
		p->nw_pid = 0;
		p->nw_fd = -1;
		pr_nw_stop(p);
		loop_timer_in(p->nw_timer, NW_RESTART);
	}
}

static void on_restart(void *data)
{
	pr_nw_start(data);
}

/*
 * Every net_timeout seconds: a worker that did not answer the last ping
 * is stuck (a libssh2 call that never returns, a bug): every session
 * goes down with it, and a new one reconnects them.
 */
static void on_ping(void *data)
{
	struct peers *p = data;
	char line[64];
	int n;

	if (!p->nw_pid)
		return;
	if (p->nw_pong_due) {
		log_warn("the network worker does not answer within %d s; "
			 "starting it again", p->cfg->net_timeout);
		pr_nw_stop(p);
		loop_timer_in(p->nw_timer, 0);
		return;
	}
	n = snprintf(line, sizeof line, "ping %lu\n", ++p->nw_pings);
	if (write_full(p->nw_fd, line, (size_t)n) < 0) {
		pr_nw_stop(p);
		loop_timer_in(p->nw_timer, NW_RESTART);
		return;
	}
	p->nw_pong_due = true;
	loop_timer_in(p->nw_ping, p->cfg->net_timeout);
}

void pr_nw_start(struct peers *p)
{
	if (!p->nw_timer) {
		p->nw_timer = loop_timer_new(p->loop, on_restart, p);
		p->nw_ping = loop_timer_new(p->loop, on_ping, p);
		strbuf_init(&p->nw_in, 0);
		p->nw_fd = -1;
	}
	pr_nw_stop(p);
	if (!networker_wanted(p->cfg))
		return;
	if (networker_spawn(&p->nw_pid, &p->nw_fd, repo_path(p->repo),
			    p->cfg) < 0) {
		loop_timer_in(p->nw_timer, NW_RESTART * 10);
		return;
	}
	loop_add_fd(p->loop, p->nw_fd, POLLIN, on_nw, p);
	p->nw_pong_due = false;
	loop_timer_in(p->nw_ping, p->cfg->net_timeout);
}

void pr_nw_stop(struct peers *p)
{
	if (!p->nw_timer)
		return;
	loop_timer_stop(p->nw_timer);
	loop_timer_stop(p->nw_ping);
	p->nw_pong_due = false;
	if (p->nw_pid) {
		loop_del_fd(p->loop, p->nw_fd);
		child_kill(p->nw_pid, p->nw_fd);
		p->nw_pid = 0;
		p->nw_fd = -1;
	}
	strbuf_reset(&p->nw_in);
	nw_ended(p);
}

bool pr_nw_push(struct peers *p, struct peer *pe, struct op *op)
{
	char line[NETWORKER_LINE_MAX];
	struct oid mail;
	int n;

	if (!pe->conn.up || !p->nw_pid || !p->have_mail)
		return false;
	/*
	 * refs/heads/mail as it is now, as a push child reads it: a quorum
	 * wait may come before this loop has seen the delivery's commit,
	 * and one round trip more for it is what quorum 2 would cost
	 */
	if (repo_ref_read(&mail, p->repo, REF_MAIL) < 0 ||
	    merge_is_ancestor(p->repo, &p->mail, &mail) != 1)
		oid_cpy(&mail, &p->mail);
	n = snprintf(line, sizeof line, "push %s %s\n", pe->cfg.name,
		     oid_hex(&mail));
	if (n < 0 || (size_t)n >= sizeof line ||
	    write_full(p->nw_fd, line, (size_t)n) < 0) {
		log_warn("the network worker does not listen; starting it again");
		pr_nw_stop(p);
		loop_timer_in(p->nw_timer, 0);
		return false;
	}
	op->in_session = true;
	log_debug("peer %s: push %.12s over the session", pe->cfg.name,
		  oid_hex(&mail));
	return true;
}

static json_t *json_time(time_t t)
{
	return t ? json_integer((json_int_t)t) : json_null();
}

json_t *pr_conn_status(const struct peer *pe)
{
	json_t *o;

	if (!pe->conn.known)
		return json_null();
	o = json_object();
	json_object_set_new(o, "state", json_string(pe->conn.state));
	json_object_set_new(o, "since", json_time(pe->conn.since));
	json_object_set_new(o, "ack_ms", pe->conn.ack_ms >= 0 ?
			    json_integer(pe->conn.ack_ms) : json_null());
	json_object_set_new(o, "bytes_in", json_integer((json_int_t)pe->conn.bytes_in));
	json_object_set_new(o, "bytes_out", json_integer((json_int_t)pe->conn.bytes_out));
	json_object_set_new(o, "pushes", json_integer((json_int_t)pe->conn.pushes));
	json_object_set_new(o, "last_error", pe->conn.error ?
			    json_string(pe->conn.error) : json_null());
	return o;
}
