/*
 * serve_session: maildag serve in session mode (issue 15,
 * doc/persistent-peers.md 5.3): the peer asked for "maildag-session 1"
 * and keeps the channel open; serve writes its hello, then takes framed
 * pushes (session.h), stores each itself (session_store.h) and answers
 * OK once refs/peers/NAME/mail is durable, announces its own
 * refs/heads/mail when it moves, sends packs the peer asks for, and
 * pings the peer every keepalive seconds.
 *
 * Invariants, the same as the git path's (serve.c):
 * - the ref is built from --peer alone: the protocol cannot name
 *   another, nor delete one; it moves only from the value the peer
 *   named (compare-and-swap), under the lock a fetch of ours takes;
 * - every commit taken in passed the whole-history check against
 *   refs/heads/mail before the ref names it; a refused pack leaves
 *   nothing (its quarantine is removed);
 * - a pack is capped at max_input bytes as they arrive;
 * - a FETCH gets refs/heads/mail as it is now and nothing else, and
 *   nothing while a mass deletion is held (alarm.h);
 * - a peer that misses a PONG for a whole interval is gone: serve ends.
 */
#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sysexits.h>
#include <unistd.h>

#include "admin.h"
#include "alarm.h"
#include "clock.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "repo.h"
#include "session.h"
#include "session_store.h"
#include "xalloc.h"

struct serve {
	struct repo *repo;
	const struct mailbox *mb;
	const struct config *cfg;
	const char *peer;
	char *ref, *lock;
	unsigned long long max_input;
	struct strbuf in, out, fields;
	/* the push under way */
	struct session_in *pack;
	unsigned long long xfer, size, got;
	struct oid old, new;
	bool have_old;
	/* heartbeat */
	unsigned long long ping;
	bool pong_due;
	/* what we announced */
	struct oid head;
	bool have_head;
};

static int flush(struct serve *s)
{
	if (!s->out.len)
		return 0;
	if (write_full(1, s->out.buf, s->out.len) < 0)
		return log_error_errno("write to the peer");
	/* a fetch's pack is not kept for the idle session */
	if (s->out.alloc > SESSION_FRAME_MAX * 2)
		strbuf_release(&s->out);
	else
		strbuf_reset(&s->out);
	return 0;
}

static void answer_err(struct serve *s, unsigned long long xfer,
		       const char *class, const char *why)
{
	struct oid now;
	bool have = repo_ref_read(&now, s->repo, s->ref) == 0;

	log_warn("peer %s: push refused (%s): %s", s->peer, class, why);
	session_frame_addf(&s->out, SESSION_ERR, "%llu %s %s %s", xfer, class,
			   session_id_str(&now, have), why);
}

static void push_end(struct serve *s)
{
	session_in_free(s->pack);
	s->pack = NULL;
}

static void store(struct serve *s)
{
	struct strbuf err = STRBUF_INIT;
	struct session_store_args a = {
		s->ref, s->lock, s->have_old ? &s->old : NULL, &s->new, true,
		s->peer,
	};
	struct oid now;
	int r = session_in_store(s->pack, &a, &err, &now);

	push_end(s);
	if (r == 0) {
		log_debug("peer %s: %s is %.12s", s->peer, s->ref,
			  oid_hex(&s->new));
		session_frame_addf(&s->out, SESSION_OK, "%llu %s", s->xfer,
				   oid_hex(&s->new));
	} else if (r == E_RACE) {
		answer_err(s, s->xfer, "race", "the ref moved");
	} else {
		answer_err(s, s->xfer, r == E_INVALID ? "invalid" : "temp",
			   err.len ? err.buf : "failed");
	}
	strbuf_release(&err);
}

/* PUSH xfer old new size */
static int on_push(struct serve *s, const struct session_frame *f)
{
	const char *v[5];
	size_t n;

	if (session_fields(v, 5, &n, &s->fields, f) < 0 || n != 4 ||
	    session_number(&s->xfer, v[0], ULLONG_MAX) < 0 ||
	    session_id(&s->old, &s->have_old, v[1]) < 0 ||
	    session_id(&s->new, &(bool){ false }, v[2]) < 0 ||
	    oid_is_zero(&s->new) ||
	    session_number(&s->size, v[3], ULLONG_MAX) < 0)
		return log_error("peer %s: a PUSH that does not parse", s->peer);
	if (s->pack)
		return log_error("peer %s: a PUSH while one is under way", s->peer);
	s->got = 0;
	if (s->size > s->max_input) {
		answer_err(s, s->xfer, "limit", "pack over the size limit");
		return E_FAIL;	/* its DATA would follow: end the session */
	}
	if (session_in_new(&s->pack, s->repo, s->max_input) < 0) {
		answer_err(s, s->xfer, "temp", "cannot receive a pack");
		return E_FAIL;
	}
	if (s->size == 0)
		store(s);
	return 0;
}

static int on_data(struct serve *s, const struct session_frame *f)
{
	struct strbuf err = STRBUF_INIT;
	const char *data;
	size_t len;
	uint32_t xfer;

	session_data(&xfer, &data, &len, f);
	if (!s->pack || xfer != (uint32_t)s->xfer || s->got + len > s->size)
		return log_error("peer %s: DATA that no PUSH announced", s->peer);
	s->got += len;
	if (session_in_add(s->pack, data, len, &err) < 0) {
		answer_err(s, s->xfer, "invalid", err.buf);
		strbuf_release(&err);
		push_end(s);
		return E_FAIL;	/* the rest of it would follow */
	}
	strbuf_release(&err);
	if (s->got == s->size)
		store(s);
	return 0;
}

/* FETCH xfer want have: refs/heads/mail as it is, nothing else */
static int on_fetch(struct serve *s, const struct session_frame *f)
{
	const char *v[4];
	size_t n;
	unsigned long long xfer;
	struct oid want, have, head;
	bool have_want, have_have;
	struct strbuf pack = STRBUF_INIT;

	if (session_fields(v, 4, &n, &s->fields, f) < 0 || n != 3 ||
	    session_number(&xfer, v[0], ULLONG_MAX) < 0 ||
	    session_id(&want, &have_want, v[1]) < 0 || !have_want ||
	    session_id(&have, &have_have, v[2]) < 0)
		return log_error("peer %s: a FETCH that does not parse", s->peer);
	if (alarm_holding(repo_path(s->repo))) {
		session_frame_addf(&s->out, SESSION_ERR, "%llu temp - a mass "
				   "deletion waits to be confirmed", xfer);
		return 0;
	}
	if (repo_ref_read(&head, s->repo, REF_MAIL) < 0 ||
	    !oid_equal(&head, &want)) {
		session_frame_addf(&s->out, SESSION_ERR, "%llu race - not %s",
				   xfer, REF_MAIL);
		return 0;
	}
	if (session_pack(&pack, s->repo, &want, have_have ? &have : NULL) < 0) {
		session_frame_addf(&s->out, SESSION_ERR, "%llu temp - cannot "
				   "pack", xfer);
		return 0;
	}
	session_data_add(&s->out, (uint32_t)xfer, pack.buf, pack.len);
	session_frame_addf(&s->out, SESSION_END, "%llu", xfer);
	strbuf_release(&pack);
	return 0;
}

static int on_frame(struct serve *s, const struct session_frame *f)
{
	switch (f->type) {
	case SESSION_PUSH:
		return on_push(s, f);
	case SESSION_DATA:
		return on_data(s, f);
	case SESSION_FETCH:
		return on_fetch(s, f);
	case SESSION_PONG:
		s->pong_due = false;
		return 0;
	case SESSION_BYE:
		log_debug("peer %s: BYE", s->peer);
		return 1;
	default:
		return log_error("peer %s: a frame of type '%c' out of place",
				 s->peer, f->type);
	}
}

/* Everything in s->in that is a whole frame; 1 at BYE, < 0 to end. */
static int read_frames(struct serve *s)
{
	size_t off = 0, used;
	struct session_frame f;
	int r = 0;

	while ((r = session_frame_parse(&f, &used, s->in.buf + off,
					s->in.len - off)) == 1) {
		off += used;
		if ((r = on_frame(s, &f)) != 0)
			break;
	}
	if (r == E_INVALID)
		log_error("peer %s: not a session frame", s->peer);
	strbuf_remove(&s->in, 0, off);
	return r;
}

static void announce(struct serve *s)
{
	struct oid head;

	if (repo_ref_read(&head, s->repo, REF_MAIL) < 0 ||
	    (s->have_head && oid_equal(&head, &s->head)))
		return;
	oid_cpy(&s->head, &head);
	s->have_head = true;
	session_frame_addf(&s->out, SESSION_ANNOUNCE, "%s", oid_hex(&head));
}

static int watch_heads(const char *repo)
{
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	char *dir = xasprintf("%s/refs/heads", repo);

	if (fd >= 0 && inotify_add_watch(fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		log_warn_errno("inotify '%s'", dir);
		close(fd);
		fd = -1;
	}
	free(dir);
	return fd;
}

static void hello(struct serve *s)
{
	struct session_hello h = { 0 };

	snprintf(h.node, sizeof h.node, "%s", s->cfg->node);
	snprintf(h.peer, sizeof h.peer, "%s", s->peer);
	h.have_head = repo_ref_read(&h.head, s->repo, REF_MAIL) == 0;
	h.have_have = repo_ref_read(&h.have, s->repo, s->ref) == 0;
	if (h.have_head) {
		oid_cpy(&s->head, &h.head);
		s->have_head = true;
	}
	session_hello_format(&s->out, &h);
}

/*
 * Is the peer still one of the configuration's?  A session outlives the
 * removal of its key (sshd checks keys at login): the configuration,
 * read again at every heartbeat, ends it.  A configuration that cannot
 * be read now changes nothing.
 */
static bool still_peer(struct serve *s)
{
	struct config *cfg;
	bool ok = true;

	if (config_is_virtual(s->cfg))
		return true;	/* (not checked again yet) */
	if (config_load(&cfg, s->mb->user, s->mb->uid, s->mb->home,
			s->cfg->user_file, s->cfg->system_file, 0) < 0)
		return true;
	ok = config_peer(cfg, s->peer) && strcmp(cfg->node, s->peer);
	config_free(cfg);
	return ok;
}

/* what one read from the peer takes at most */
#define SERVE_READ 65536

/* The loop: stdin, refs/heads, the heartbeat; an exit status. */
static int serve_loop(struct serve *s)
{
	int ino = watch_heads(repo_path(s->repo)), ret = EX_OK;
	long long next_ping = clock_now_ms() + s->cfg->keepalive * 1000LL;

	hello(s);
	for (;;) {
		struct pollfd p[2] = { { 0, POLLIN, 0 }, { ino, POLLIN, 0 } };
		long long left = next_ping - clock_now_ms();
		char ev[4096];
		ssize_t n;

		if (flush(s) < 0) {
			ret = EX_IOERR;
			break;
		}
		if (left <= 0) {
			if (!still_peer(s)) {
				log_warn("peer %s: no longer a peer in the "
					 "configuration: ending the session", s->peer);
				session_frame_addf(&s->out, SESSION_BYE,
						   "no longer a peer");
				flush(s);
				ret = EX_CONFIG;
				break;
			}
			if (s->pong_due) {
				log_warn("peer %s: no PONG within %d s: ending the "
					 "session", s->peer, s->cfg->keepalive);
				ret = EX_TEMPFAIL;
				break;
			}
			session_frame_addf(&s->out, SESSION_PING, "%llu", ++s->ping);
			/*
			 * an idle session holds no heap its pushes freed nor
			 * libgit2's caches and pack mappings (read again at
			 * the next push): a serve runs per connection
			 * (must-show 5 of issue 15)
			 */
			if (!s->pack)
				repo_release(s->repo);
			if (!s->in.len)
				strbuf_release(&s->in);
#if defined(__GLIBC__)
			malloc_trim(0);
#endif
			s->pong_due = true;
			next_ping = clock_now_ms() + s->cfg->keepalive * 1000LL;
			continue;
		}
		if (poll(p, ino >= 0 ? 2 : 1, (int)left) < 0 && errno != EINTR) {
			ret = EX_OSERR;
			break;
		}
		if (ino >= 0 && p[1].revents) {
			while (read(ino, ev, sizeof ev) > 0)
				;
			announce(s);
		}
		if (!p[0].revents)
			continue;
		/* read into s->in itself: an idle session releases it */
		strbuf_grow(&s->in, SERVE_READ);
		n = read(0, s->in.buf + s->in.len, SERVE_READ);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* the peer closed the session */
		strbuf_setlen(&s->in, s->in.len + (size_t)n);
		if ((n = read_frames(s)) != 0) {
			flush(s);
			ret = n > 0 ? EX_OK : EX_PROTOCOL;
			break;
		}
	}
	if (ino >= 0)
		close(ino);
	return ret;
}

int serve_session(struct mailbox *mb, const char *peer,
		  unsigned long long max_input)
{
	struct serve s = { 0 };
	int r;

	if ((r = admin_open_repo(&s.repo, mb)) != 0)
		return r;
	s.mb = mb;
	s.cfg = mb->cfg;
	s.peer = peer;
	s.max_input = max_input;
	s.ref = xasprintf("refs/peers/%s/mail", peer);
	s.lock = xasprintf("peerref-%s.lock", peer);
	strbuf_init(&s.in, 0);
	strbuf_init(&s.out, 0);
	strbuf_init(&s.fields, 0);
	log_debug("peer %s: session", peer);
	r = serve_loop(&s);
	push_end(&s);
	strbuf_release(&s.in);
	strbuf_release(&s.out);
	strbuf_release(&s.fields);
	free(s.ref);
	free(s.lock);
	repo_free(s.repo);
	return r;
}
