/*
 * peers: replication with every configured peer (see peers.h).
 *
 * Each peer has two struct op, push and fetch.  An op is idle, waiting
 * (its timer armed for the next try) or running (a child of net_spawn,
 * its pipe in the loop and its timer armed at the deadline).  Only the
 * loop's callbacks touch them, one at a time.
 *
 * Peers removed by a config reload are kept, disabled, until the daemon
 * ends: the loop owns their timers, which cannot be freed.
 *
 * What a peer holds is known from our own operations alone: the id our
 * push child says the peer accepted, and the id our fetch child read
 * from the peer (op->id, in memory).  refs/peers/<name>/mail in our
 * repository is never taken as the peer's word: anyone who can write
 * our repository (a file:// peer, another process of the user) can
 * write it.  It is only what we merge, after the whole-history check.
 * Only configured peers' refs are looked at.
 *
 * The whole-history check runs in a child process (history_spawn), one
 * per peer at a time, started by peers_check when the peer's ref holds a
 * commit that is neither merged, refused nor approved; the loop goes on
 * answering meanwhile.  Only a child's "ok" for exactly the commit it was
 * given makes an approval (peer.checked, against peer.checked_base);
 * peers_merge merges nothing else.  A child that fails, dies or is
 * killed approves nothing: the check is tried again after the backoff.
 * When the ref moves while a child runs, the child is left to finish, and
 * the next check trusts what it approved as it trusts our own history:
 * it covers only what came since, so a peer that moves on faster than a
 * whole history can be checked is still merged (killing the child for
 * each new tip would start over each time).  What is merged is always
 * the approved tip itself, never an older commit of theirs: a merge of
 * a stale tip is one more commit that no replica shares, and the
 * criss-cross merges that follow cost every replica.
 *
 * Every check goes to a child, also a fast-forward of one commit: one
 * path to get right, and the loop never walks a peer's history (even
 * telling a small history from a large one means walking it: 80 ms for
 * 5,000 commits with a warm cache, 800 ms cold, measured with libgit2
 * 1.5.1).  The sync that starts children waits a little for them
 * (CHECK_WAIT), so a small check is merged in that same sync.
 *
 * The check and the merge are peers_check.c; this file the ops, the
 * configuration, status and quorum waits; peers_p.h what they share.
 */
#include "autoconf.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "merge.h"
#include "peers.h"
#include "peers_p.h"
#include "strbuf.h"
#include "xalloc.h"

static const char *op_name(const struct op *op)
{
	return op->kind == NET_PUSH ? "push" : "fetch";
}

static void op_run(struct op *op);

/*
 * Does pe hold commit, as far as our own operations know: it accepted
 * our push of it (or of a descendant), or its refs/heads/mail, as our
 * fetch read it from the peer, contains it.
 */
static bool holds(struct peers *p, struct peer *pe, const struct oid *commit)
{
	/*
	 * The usual answer first: our fetch just read it.  The push's id
	 * can be far behind (nothing pushed while the peer held our mail),
	 * and proving that commit is not below it walked all between.
	 */
	if ((pe->push.have_id && oid_equal(commit, &pe->push.id)) ||
	    (pe->fetch.have_id && oid_equal(commit, &pe->fetch.id)))
		return true;
	return (pe->push.have_id &&
		merge_is_ancestor(p->repo, commit, &pe->push.id) == 1) ||
	       (pe->fetch.have_id &&
		merge_is_ancestor(p->repo, commit, &pe->fetch.id) == 1);
}
static void sweep_waits(void *data);

double pr_backoff(const struct peers *p, unsigned failures)
{
	double d = p->cfg->backoff_min;

	for (unsigned i = 1; i < failures && d < p->cfg->backoff_max; i++)
		d *= 2;
	if (d > p->cfg->backoff_max)
		d = p->cfg->backoff_max;
	return d * (0.5 + 0.5 * ((double)random() / ((double)RAND_MAX + 1)));
}

/*
 * Children running, over every mailbox of the process: a daemon of a
 * thousand virtual mailboxes would otherwise start a thousand fetches at
 * once.  One op over the limit waits a moment and tries again.
 */
#define CHILDREN_MAX 32
#define CHILDREN_WAIT 0.5
static size_t running;

void pr_op_finish(struct op *op, const struct net_result *res)
{
	struct peer *pe = op->peer;
	struct peers *p = pe->owner;
	double delay;

	if (op->pid)
		running--;
	op->pid = 0;
	op->fd = -1;
	loop_timer_stop(op->timer);
	op->runs++;
	if (res->status == NET_TIMEOUT)
		op->timeouts++;
	if (res->status == NET_OK) {
		if (op->failures)
			log_info("peer %s: %s works again", pe->cfg.name,
				 op_name(op));
		op->failures = 0;
		op->last_ok = clock_wall();
		if (!oid_is_zero(&res->id)) {
			oid_cpy(&op->id, &res->id);
			op->have_id = true;
		}
		if (op->kind == NET_PUSH) {
			log_debug("peer %s: pushed %.12s", pe->cfg.name,
				  oid_hex(&res->id));
			pr_check_waits(p);
			/* mail moved on meanwhile: push again (containment,
			 * not equality: the child pushes the ref as it was) */
			if (pe->alive && p->have_mail &&
			    (op->again || !op->have_id ||
			     merge_is_ancestor(p->repo, &p->mail, &op->id) != 1))
				pr_op_start(op);
		} else {
			if (res->changed) {
				log_debug("peer %s: fetched %.12s", pe->cfg.name,
					  oid_hex(&res->id));
				p->refs_dirty = true;
				p->want_sync(p->data);
			}
			pr_check_waits(p);
			/* behind us (restored from a backup, say): catch up */
			if (pe->alive && p->have_mail && pe->push.enabled &&
			    !pe->push.pid && !pe->push.in_session &&
			    !pe->push.failures &&
			    !holds(p, pe, &p->mail))
				pr_op_start(&pe->push);
			if (pe->alive && op->again)
				pr_op_start(op);
			else if (pe->alive)
				loop_timer_in(op->timer, p->cfg->fetch_interval);
		}
		return;
	}
	op->failures++;
	delay = pr_backoff(p, op->failures);
	/*
	 * Asked for while this run was under way (a quorum wait, new
	 * mail): this run began before the request and does not answer it,
	 * so it is tried once more at once (a peer that has just come
	 * back); a failure of that one backs off as usual.
	 */
	if (op->again)
		delay = 0;
	if (op->failures == 1 || !op->last_raw ||
	    strcmp(op->last_raw, res->error))
		log_warn("peer %s: %s failed: %s: %s; trying again in %.0f s",
			 pe->cfg.name, op_name(op), net_status_name(res->status),
			 res->error, delay);
	else
		log_debug("peer %s: %s failed again (%u in a row): %s",
			  pe->cfg.name, op_name(op), op->failures, res->error);
	free(op->last_error);
	free(op->last_raw);
	op->last_error = xasprintf("%s: %s", net_status_name(res->status),
				   res->error);
	op->last_raw = xstrdup(res->error);
	op->error_at = clock_wall();
	op->again = false;
	if (pe->alive)
		loop_timer_in(op->timer, delay);
}

static void on_child(void *data, int fd, short revents)
{
	struct op *op = data;
	struct net_result res;

	(void)revents;
	if (net_collect(op->pid, fd, &op->buf, &res) == 0)
		return;
	loop_del_fd(op->peer->owner->loop, fd);
	pr_op_finish(op, &res);
}

static void on_timer(void *data)
{
	struct op *op = data;
	struct net_result res;

	net_reap();	/* children killed earlier that took their time */

	if (op->in_session) {
		/* the deadline of a push the session carries */
		op->in_session = false;
		memset(&res, 0, sizeof res);
		res.status = NET_TIMEOUT;
		snprintf(res.error, sizeof res.error,
			 "no acknowledgement within %d s",
			 op->peer->owner->cfg->net_timeout);
		pr_op_finish(op, &res);
		return;
	}
	if (op->pid) {
		/* the deadline */
		loop_del_fd(op->peer->owner->loop, op->fd);
		net_kill(op->pid, op->fd, op->peer->owner->cfg->net_timeout,
			 &res);
		pr_op_finish(op, &res);
		return;
	}
	pr_op_start(op);
}

/* Start op now (or once more when it ends, if it runs). */
static void op_run(struct op *op)
{
	struct peer *pe = op->peer;
	struct peers *p = pe->owner;
	struct net_result res;

	if (!op->enabled || !pe->alive)
		return;
	if (op->pid || op->in_session) {
		op->again = true;
		return;
	}
	if (pe->conn.up && op->kind == NET_PUSH && pr_nw_push(p, pe, op)) {
		op->again = false;
		loop_timer_in(op->timer, p->cfg->net_timeout);
		return;
	}
	if (pe->conn.up && op->kind == NET_FETCH) {
		/* the session's announces keep us current; nothing to run */
		memset(&res, 0, sizeof res);
		res.status = NET_OK;
		op->again = false;
		pr_op_finish(op, &res);
		return;
	}
	if (running >= CHILDREN_MAX) {
		loop_timer_in(op->timer, CHILDREN_WAIT * (1 + (double)random() /
						       ((double)RAND_MAX + 1)));
		return;
	}
	op->again = false;
	strbuf_reset(&op->buf);
	if (net_spawn(&op->pid, &op->fd, op->kind, repo_path(p->repo), &pe->cfg,
		      p->cfg->node) < 0) {
		memset(&res, 0, sizeof res);
		res.status = NET_FAILED;
		snprintf(res.error, sizeof res.error,
			 "cannot start a child process");
		op->pid = 0;
		pr_op_finish(op, &res);
		return;
	}
	running++;
	loop_add_fd(p->loop, op->fd, POLLIN, on_child, op);
	loop_timer_in(op->timer, p->cfg->net_timeout);
}

void pr_op_start(struct op *op)
{
	struct peer *pe = op->peer;
	struct peers *p = pe->owner;

	/*
	 * A peer whose refs/heads/mail, as we fetched it, already contains
	 * ours (the usual case right after we fast-forwarded to it), or
	 * that accepted it from us, has nothing to learn.  What it pushed
	 * into our refs/peers/ does not count: a third party could have
	 * written that (peers.h).
	 */
	if (op->kind == NET_PUSH && p->hold) {
		log_debug("peer %s: push held back (mass-deletion alarm)",
			  pe->cfg.name);
		return;
	}
	if (op->kind == NET_PUSH && op->enabled && pe->alive && !op->pid &&
	    !op->in_session && p->have_mail && !op->failures && holds(p, pe, &p->mail)) {
		log_debug("peer %s: holds %.12s already; no push", pe->cfg.name,
			  oid_hex(&p->mail));
		return;
	}
	op_run(op);
}

static void op_stop(struct op *op)
{
	struct net_result res;

	if (op->pid) {
		loop_del_fd(op->peer->owner->loop, op->fd);
		net_kill(op->pid, op->fd, 0, &res);
		running--;
		op->pid = 0;
		op->fd = -1;
	}
	op->in_session = false;
	loop_timer_stop(op->timer);
}

static void copy_peer(struct config_peer *to, const struct config_peer *from)
{
	to->name = xstrdup(from->name);
	to->url = xstrdup(from->url);
	to->push = from->push;
	to->fetch = from->fetch;
	to->host_key = from->host_key ? xstrdup(from->host_key) : NULL;
	to->host_key_pub = from->host_key_pub ? xstrdup(from->host_key_pub)
					      : NULL;
	to->identity = from->identity ? xstrdup(from->identity) : NULL;
	to->session = from->session;
}

static void free_peer_cfg(struct config_peer *c)
{
	free(c->name);
	free(c->url);
	free(c->host_key);
	free(c->host_key_pub);
	free(c->identity);
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool same_peer(const struct config_peer *a, const struct config_peer *b)
{
	return !strcmp(a->url, b->url) && same_str(a->host_key, b->host_key) &&
	       same_str(a->identity, b->identity) && a->session == b->session;
}

static void op_init(struct op *op, struct peer *pe, enum net_op kind)
{
	op->peer = pe;
	op->kind = kind;
	op->fd = -1;
	strbuf_init(&op->buf, 0);
	op->timer = loop_timer_new(pe->owner->loop, on_timer, op);
}

struct peer *pr_find_peer(struct peers *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i]->alive && !strcmp(p->v[i]->cfg.name, name))
			return p->v[i];
	return NULL;
}

void peers_set_config(struct peers *p, const struct config *cfg)
{
	p->cfg = cfg;
	/* peers gone or changed: stopped */
	for (size_t i = 0; i < p->n; i++) {
		struct peer *pe = p->v[i];
		const struct config_peer *c;
		if (!pe->alive)
			continue;
		c = config_peer(cfg, pe->cfg.name);
		if (!c || !strcmp(c->name, cfg->node) || !same_peer(c, &pe->cfg)) {
			pe->alive = false;
			op_stop(&pe->push);
			op_stop(&pe->fetch);
			pr_check_stop(p, pe);
			continue;
		}
		if (c->push && !pe->push.enabled && p->have_mail) {
			pe->push.enabled = true;
			pr_op_start(&pe->push);
		}
		pe->cfg.push = pe->push.enabled = c->push;
		pe->cfg.fetch = pe->fetch.enabled = c->fetch;
		if (!c->push)
			op_stop(&pe->push);
		if (!c->fetch)
			op_stop(&pe->fetch);
		else if (!pe->fetch.pid && !loop_timer_armed(pe->fetch.timer))
			pr_op_start(&pe->fetch);
	}
	/* new peers: start */
	for (size_t i = 0; i < cfg->npeers; i++) {
		const struct config_peer *c = &cfg->peers[i];
		struct peer *pe;
		if (!strcmp(c->name, cfg->node) || pr_find_peer(p, c->name))
			continue;
		pe = xcalloc(1, sizeof *pe);
		pe->owner = p;
		pe->alive = true;
		copy_peer(&pe->cfg, c);
		op_init(&pe->push, pe, NET_PUSH);
		op_init(&pe->fetch, pe, NET_FETCH);
		pe->check.fd = -1;
		strbuf_init(&pe->check.buf, 0);
		pe->check.timer = loop_timer_new(p->loop, pr_on_check_timer, pe);
		pe->push.enabled = c->push;
		pe->fetch.enabled = c->fetch;
		xgrow((void **)&p->v, &p->alloc, p->n + 1, sizeof *p->v);
		p->v[p->n++] = pe;
		pr_op_start(&pe->fetch);
		if (p->have_mail)
			pr_op_start(&pe->push);
	}
	/* sessions follow the configuration: started afresh */
	pr_nw_start(p);
}

struct peers *peers_new(struct loop *l, struct repo *r,
			const struct config *cfg,
			void (*want_sync)(void *data), void *data)
{
	struct peers *p = xcalloc(1, sizeof *p);

	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	p->loop = l;
	p->repo = r;
	p->want_sync = want_sync;
	p->data = data;
	p->refs_dirty = true;	/* look at what came while we were away */
	p->sweep = loop_timer_new(l, sweep_waits, p);
	peers_set_config(p, cfg);
	return p;
}

static void wait_free(struct wait *w)
{
	loop_timer_free(w->owner->loop, w->timer);
	free(w);
}

void peers_free(struct peers *p)
{
	if (!p)
		return;
	pr_nw_stop(p);
	strbuf_release(&p->nw_in);
	for (size_t i = 0; i < p->n; i++) {
		struct peer *pe = p->v[i];
		op_stop(&pe->push);
		op_stop(&pe->fetch);
		pr_check_stop(p, pe);
		strbuf_release(&pe->check.buf);
		free(pe->check.last_error);
		strbuf_release(&pe->push.buf);
		strbuf_release(&pe->fetch.buf);
		free(pe->push.last_error);
		free(pe->fetch.last_error);
		free(pe->push.last_raw);
		free(pe->fetch.last_raw);
		free(pe->merge_error);
		free(pe->conn.error);
		free_peer_cfg(&pe->cfg);
		free(pe);
	}
	free(p->v);
	for (size_t i = 0; i < p->nseen; i++)
		free(p->seen[i].name);
	free(p->seen);
	while (p->waits) {
		struct wait *w = p->waits;
		p->waits = w->next;
		wait_free(w);
	}
	free(p);
}

void peers_mail_moved(struct peers *p, const struct oid *mail)
{
	oid_cpy(&p->mail, mail);
	p->have_mail = true;
	for (size_t i = 0; i < p->n; i++) {
		struct op *op = &p->v[i]->push;
		/* a peer backing off is tried when its timer says */
		if (op->failures && !op->pid && !op->in_session)
			continue;
		pr_op_start(op);
	}
	pr_check_waits(p);
}

void peers_set_hold(struct peers *p, bool hold)
{
	if (p->hold == hold)
		return;
	p->hold = hold;
	if (hold || !p->have_mail)
		return;
	for (size_t i = 0; i < p->n; i++) {
		struct op *op = &p->v[i]->push;
		loop_timer_stop(op->timer);
		pr_op_start(op);
	}
}

void peers_sync_now(struct peers *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct peer *pe = p->v[i];
		if (!pe->alive)
			continue;
		loop_timer_stop(pe->fetch.timer);
		pr_op_start(&pe->fetch);
		if (p->have_mail) {
			loop_timer_stop(pe->push.timer);
			pr_op_start(&pe->push);
		}
	}
	p->refs_dirty = true;
	p->want_sync(p->data);
}

void peers_refs_changed(struct peers *p)
{
	p->refs_dirty = true;
}

struct seen *pr_find_seen(struct peers *p, const char *name)
{
	for (size_t i = 0; i < p->nseen; i++)
		if (!strcmp(p->seen[i].name, name))
			return &p->seen[i];
	xgrow((void **)&p->seen, &p->seen_alloc, p->nseen + 1, sizeof *p->seen);
	memset(&p->seen[p->nseen], 0, sizeof *p->seen);
	p->seen[p->nseen].name = xstrdup(name);
	return &p->seen[p->nseen++];
}

void pr_refuse(struct peer *pe, const struct oid *id, const char *why)
{
	log_error("peer %s: refusing %.12s: %s", pe->cfg.name,
		  oid_hex(id), why);
	free(pe->merge_error);
	pe->merge_error = xasprintf("refused %.12s: %s", oid_hex(id),
				    why);
	pe->merge_error_at = clock_wall();
}

int pr_read_peer_ref(struct peers *p, struct peer *pe, struct oid *out)
{
	return repo_peer_ref_read(out, p->repo, pe->cfg.name);
}

/* --- status -------------------------------------------------------------- */

static json_t *json_time(time_t t)
{
	return t ? json_integer((json_int_t)t) : json_null();
}

static json_t *op_status(const struct op *op)
{
	double when = loop_timer_when(op->timer);
	json_t *o;

	if (!op->enabled)
		return json_null();
	o = json_object();
	json_object_set_new(o, "last_ok", json_time(op->last_ok));
	json_object_set_new(o, "last_error", op->last_error ?
			    json_string(op->last_error) : json_null());
	json_object_set_new(o, "error_at", json_time(op->error_at));
	json_object_set_new(o, "failures", json_integer(op->failures));
	json_object_set_new(o, "running", json_boolean(op->pid != 0 ||
						       op->in_session));
	json_object_set_new(o, "runs", json_integer((json_int_t)op->runs));
	json_object_set_new(o, "timeouts", json_integer((json_int_t)op->timeouts));
	json_object_set_new(o, "next_try", !op->pid && when ?
			    json_time(clock_wall() + (time_t)(when - loop_now() + 0.5)) :
			    json_null());
	json_object_set_new(o, "id", op->have_id ?
			    json_string(oid_hex(&op->id)) : json_null());
	return o;
}

static json_t *check_status(const struct peer *pe)
{
	const struct check *c = &pe->check;
	double when = loop_timer_when(c->timer);
	json_t *o = json_object();

	json_object_set_new(o, "running", json_boolean(c->pid != 0));
	json_object_set_new(o, "commit", c->pid ?
			    json_string(oid_hex(&c->theirs)) : json_null());
	json_object_set_new(o, "started", c->pid ? json_time(c->started_at) :
			    json_null());
	json_object_set_new(o, "approved", pe->have_checked ?
			    json_string(oid_hex(&pe->checked)) :
			    json_null());
	json_object_set_new(o, "runs", json_integer((json_int_t)c->runs));
	json_object_set_new(o, "failures", json_integer(c->failures));
	json_object_set_new(o, "last_error", c->last_error ?
			    json_string(c->last_error) : json_null());
	json_object_set_new(o, "error_at", json_time(c->error_at));
	json_object_set_new(o, "next_try", !c->pid && when ?
			    json_time(clock_wall() + (time_t)(when - loop_now() + 0.5)) :
			    json_null());
	return o;
}

/* refs/peers/<name>/mail, or false. */
static bool peer_ref(struct peers *p, const char *name, struct oid *out)
{
	char *ref = xasprintf("refs/peers/%s/mail", name);
	bool ok = repo_ref_read(out, p->repo, ref) == 0;

	free(ref);
	return ok;
}

/*
 * The commits of mail the peer is not known to hold: the fewest that any
 * commit we know it has (the last it accepted, the last fetched, its
 * refs/peers ref) lacks; null when we know none.
 */
static json_t *pending_json(struct peers *p, struct peer *pe,
			    const struct oid *mail, const struct oid *theirs)
{
	const struct oid *known[3];
	size_t n = 0, best = SIZE_MAX, ahead, behind;

	if (pe->push.have_id)
		known[n++] = &pe->push.id;
	if (pe->fetch.have_id)
		known[n++] = &pe->fetch.id;
	if (theirs)
		known[n++] = theirs;
	for (size_t i = 0; i < n; i++)
		if (repo_ahead_behind(&ahead, &behind, p->repo, mail,
				      known[i]) == 0 && ahead < best)
			best = ahead;
	return best == SIZE_MAX ? json_null() : json_integer((json_int_t)best);
}

/* The quorum waits under way for a commit the peer is not known to hold. */
static size_t waits_on(struct peers *p, struct peer *pe)
{
	size_t n = 0;

	for (struct wait *w = p->waits; w; w = w->next)
		if (!w->over && !holds(p, pe, &w->commit))
			n++;
	return n;
}

json_t *peers_status(struct peers *p)
{
	json_t *a = json_array();
	struct oid mail, theirs;
	bool have_mail = repo_ref_read(&mail, p->repo, REF_MAIL) == 0;

	for (size_t i = 0; i < p->n; i++) {
		struct peer *pe = p->v[i];
		json_t *o;
		size_t ahead = 0, behind = 0;
		bool have;

		if (!pe->alive)
			continue;
		o = json_object();
		json_object_set_new(o, "name", json_string(pe->cfg.name));
		json_object_set_new(o, "url", json_string(pe->cfg.url));
		have = peer_ref(p, pe->cfg.name, &theirs);
		json_object_set_new(o, "peer_ref", have ?
				    json_string(oid_hex(&theirs)) :
				    json_null());
		if (have && have_mail &&
		    repo_ahead_behind(&ahead, &behind, p->repo, &mail,
				      &theirs) == 0) {
			json_object_set_new(o, "ahead", json_integer((json_int_t)ahead));
			json_object_set_new(o, "behind", json_integer((json_int_t)behind));
		} else {
			json_object_set_new(o, "ahead", json_null());
			json_object_set_new(o, "behind", json_null());
		}
		json_object_set_new(o, "unpushed", have_mail ?
				    pending_json(p, pe, &mail, have ? &theirs : NULL) :
				    json_null());
		json_object_set_new(o, "waits",
				    json_integer((json_int_t)waits_on(p, pe)));
		json_object_set_new(o, "push", op_status(&pe->push));
		json_object_set_new(o, "fetch", op_status(&pe->fetch));
		json_object_set_new(o, "connection", pr_conn_status(pe));
		json_object_set_new(o, "check", check_status(pe));
		json_object_set_new(o, "merge_error", pe->merge_error ?
				    json_string(pe->merge_error) : json_null());
		json_array_append_new(a, o);
	}
	return a;
}

/* --- quorum waits -------------------------------------------------------- */

static json_t *holders(struct peers *p, const struct oid *commit, int *count)
{
	json_t *a = json_array();

	*count = 0;
	for (size_t i = 0; i < p->n; i++) {
		struct peer *pe = p->v[i];
		bool counted = false;
		if (!pe->alive || !holds(p, pe, commit))
			continue;
		/* one repository under two names is one store */
		for (size_t j = 0; j < i && !counted; j++)
			counted = p->v[j]->alive &&
				  !strcmp(p->v[j]->cfg.url, pe->cfg.url) &&
				  holds(p, p->v[j], commit);
		if (counted)
			continue;
		json_array_append_new(a, json_string(pe->cfg.name));
		(*count)++;
	}
	return a;
}

static void wait_end(struct peers *p, struct wait *w, bool ok, json_t *acked,
		     const char *error)
{
	struct wait **pp;

	for (pp = &p->waits; *pp && *pp != w; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = w->next;
	w->done(w->data, ok, acked, error);
	wait_free(w);
}

void pr_check_waits(struct peers *p)
{
	struct wait *w, *next;

	for (w = p->waits; w; w = next) {
		int count;
		json_t *acked;
		next = w->next;
		acked = holders(p, &w->commit, &count);
		if (count >= w->acks)
			wait_end(p, w, true, acked, NULL);
		else
			json_decref(acked);
	}
}

static void on_wait_timeout(void *data)
{
	struct wait *w = data;

	/* its own timer cannot be freed while it runs: end it from sweep */
	w->over = true;
	loop_timer_in(w->owner->sweep, 0);
}

static void wait_timed_out(struct wait *w)
{
	struct peers *p = w->owner;
	int count;
	json_t *acked = holders(p, &w->commit, &count);
	char *err;

	if (count >= w->acks) {
		wait_end(p, w, true, acked, NULL);
		return;
	}
	err = xasprintf("%d of %d peers acknowledged within %.0f s", count,
			w->acks, w->timeout);
	wait_end(p, w, false, acked, err);
	free(err);
}

static void sweep_waits(void *data)
{
	struct peers *p = data;
	struct wait *w, *next;

	for (w = p->waits; w; w = next) {
		next = w->next;
		if (w->over)
			wait_timed_out(w);
	}
}

void peers_wait(struct peers *p, const struct oid *commit, int acks,
		double timeout, peers_wait_fn *done, void *data)
{
	struct wait *w = xcalloc(1, sizeof *w);
	int count;
	json_t *acked;

	w->owner = p;
	oid_cpy(&w->commit, commit);
	w->acks = acks;
	w->timeout = timeout;
	w->done = done;
	w->data = data;
	w->timer = loop_timer_new(p->loop, on_wait_timeout, w);
	acked = holders(p, commit, &count);
	if (count >= acks) {
		done(data, true, acked, NULL);
		wait_free(w);
		return;
	}
	json_decref(acked);
	w->next = p->waits;
	p->waits = w;
	loop_timer_in(w->timer, timeout);
	/*
	 * Make sure it travels: push to every peer not known to hold it,
	 * whatever its backoff says (a push under way pushes once more
	 * when it ends: it may have read refs/heads/mail before the commit).
	 */
	for (size_t i = 0; i < p->n; i++) {
		struct op *op = &p->v[i]->push;
		if (p->v[i]->alive && !holds(p, p->v[i], commit)) {
			if (!op->pid && !op->in_session)
				loop_timer_stop(op->timer);
			op_run(op);
		}
	}
}

void peers_wait_cancel(struct peers *p, void *data)
{
	struct wait **pp = &p->waits;

	while (*pp) {
		struct wait *w = *pp;
		if (w->data == data) {
			*pp = w->next;
			wait_free(w);
		} else {
			pp = &w->next;
		}
	}
}
