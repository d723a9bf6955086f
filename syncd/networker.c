/*
 * networker: the network worker (see networker.h).
 *
 * Per peer, one state (doc/persistent-peers.md 5.4):
 *
 *	down		backing off until retry_at, then connecting
 *	connecting	sshconn_step() until the channel runs, then hello;
 *			deadline net_timeout
 *	hello		the first line of serve; a refusal of an older
 *			serve (exit 77, or 127 where no forced command
 *			runs maildag) is fallback, anything else down
 *	up		frames; down when no frame came for 2 keepalives
 *			+ 5 s, when a PUSH or FETCH is unanswered after
 *			net_timeout, at EOF or on an error
 *	fallback	today's push and fetch children serve the peer (the
 *			daemon's side); tried again after FALLBACK_RETRY
 *
 * A push in flight is one at a time per peer; what the daemon asks for
 * meanwhile (want) goes in the next, which covers everything since the
 * last OK.  old is always what the peer said it holds (hello's have, an
 * OK, an ERR race's have), never a guess.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "fsutil.h"
#include "log.h"
#include "merge.h"
#include "net.h"
#include "networker.h"
#include "repo.h"
#include "session.h"
#include "session_store.h"
#include "sshconn.h"
#include "xalloc.h"

/* a peer whose serve does not speak the session is asked again after */
#define FALLBACK_RETRY 3600.0
/* an announced commit we lack is fetched after this (its push may come) */
#define FETCH_GRACE 0.3
/* races in a row before a push is reported failed */
#define RACES_MAX 3
/*
 * refs/peers/<peer>/mail follows an announced commit we hold this long
 * after the first announce, to the last one: one synced ref write and
 * one sync of the daemon per peer and interval, not per delivery
 */
#define TRACK_DELAY 1.0
/* ... and looked at this many times more while we have not merged it */
#define TRACK_TRIES 5
/* how long a pack made for one peer is sent as it is to the others */
#define PACK_KEEP 1.0
/* the largest pack a fetch takes (serve_max_input()'s default) */
#define FETCH_MAX (512ULL << 20)

enum wstate { W_DOWN, W_CONNECTING, W_HELLO, W_UP, W_FALLBACK };

static const char *const wstate_names[] = {
	[W_DOWN] = "down", [W_CONNECTING] = "connecting", [W_HELLO] = "connecting",
	[W_UP] = "up", [W_FALLBACK] = "fallback",
};

struct wpeer {
	const struct config_peer *cfg;
	enum wstate st;
	struct sshconn *c;
	double deadline, retry_at, last_frame;
	unsigned failures;
	struct strbuf in, out, fields;
	time_t since;
	unsigned long long bytes_in, bytes_out, pushes;
	long ack_ms;
	char error[512];
	/* pushes */
	struct oid acked, want, sent;
	bool have_acked, have_want, pushing;
	unsigned long long next_xfer, xfer, fetch_xfer;
	double push_at, fetch_started;
	unsigned races;
	/* fetches */
	struct oid head;
	bool have_head, fetching;
	double fetch_at;
	/* the announced commit refs/peers/<peer>/mail is to follow */
	struct oid track_id;
	double track_at;
	unsigned track_tries;
	struct session_in *fetch_in;
	struct oid fetch_want;
};

struct worker {
	const struct config *cfg;
	struct repo *repo;
	struct wpeer *v;
	size_t n;
	int fd;		/* the daemon */
	struct strbuf in, out;
	/*
	 * the last pack made, of want ^ old: the peers that hold the same
	 * commit are sent the same bytes, made once (a delivery's push to
	 * five peers packs once, not five times); for PACK_KEEP seconds
	 * only, so that a purge since never leaves a purged blob in it
	 */
	struct strbuf pack;
	struct oid pack_want, pack_old;
	bool pack_made, pack_has_old;
	double pack_at;
	/*
	 * the object database was read (a pack made, a fetch stored) at
	 * used_at: libgit2's caches and pack mappings are let go of once
	 * the worker is idle, so that it holds no pack maintenance removed
	 */
	bool used;
	double used_at;
};

static double now(void)
{
	return clock_now();
}

/* --- to the daemon ---------------------------------------------------------- */

static __attribute__((format(printf, 2, 3)))
void tell(struct worker *w, const char *fmt, ...)
{
	va_list ap;
	size_t start = w->out.len;

	va_start(ap, fmt);
	strbuf_vaddf(&w->out, fmt, ap);
	va_end(ap);
	/* one line: no newline or control character inside */
	for (size_t i = start; i < w->out.len; i++)
		if ((unsigned char)w->out.buf[i] < 0x20)
			w->out.buf[i] = ' ';
	if (w->out.len - start > NETWORKER_LINE_MAX - 1)
		strbuf_setlen(&w->out, start + NETWORKER_LINE_MAX - 1);
	strbuf_addch(&w->out, '\n');
}

static void tell_state(struct worker *w, struct wpeer *pe)
{
	tell(w, "state %s %s %lld %llu %llu %llu %ld %s", pe->cfg->name,
	     wstate_names[pe->st], (long long)pe->since, pe->bytes_in,
	     pe->bytes_out, pe->pushes, pe->ack_ms,
	     pe->error[0] ? pe->error : "-");
}

static void set_state(struct worker *w, struct wpeer *pe, enum wstate st)
{
	if (pe->st == st)
		return;
	if ((pe->st == W_UP) != (st == W_UP) || st == W_DOWN ||
	    st == W_FALLBACK)
		pe->since = clock_wall();
	pe->st = st;
	tell_state(w, pe);
}

/* --- the session's end ------------------------------------------------------- */

static void drop(struct worker *w, struct wpeer *pe, enum wstate st,
		 const char *why)
{
	double delay;

	snprintf(pe->error, sizeof pe->error, "%s", why);
	log_info("peer %s: session %s: %s", pe->cfg->name,
		 st == W_FALLBACK ? "not spoken there" : "down", why);
	sshconn_free(pe->c);
	pe->c = NULL;
	session_in_free(pe->fetch_in);
	pe->fetch_in = NULL;
	pe->fetching = false;
	pe->pushing = false;
	pe->races = 0;
	strbuf_reset(&pe->in);
	strbuf_reset(&pe->out);
	/* the first loss at once (a restarted peer), then backoff */
	delay = pe->failures++ ? w->cfg->backoff_min : 0;
	for (unsigned i = 2; i < pe->failures && delay < w->cfg->backoff_max; i++)
		delay *= 2;
	if (delay > w->cfg->backoff_max)
		delay = w->cfg->backoff_max;
	delay *= 0.5 + 0.5 * ((double)random() / ((double)RAND_MAX + 1));
	pe->retry_at = now() + (st == W_FALLBACK ? FALLBACK_RETRY : delay);
	set_state(w, pe, st);
	if (st == W_DOWN)
		tell_state(w, pe);	/* its error changed */
}

static void connect_peer(struct worker *w, struct wpeer *pe)
{
	pe->error[0] = '\0';
	if (sshconn_start(&pe->c, pe->cfg, SESSION_COMMAND) < 0) {
		char why[512];
		snprintf(why, sizeof why, "%s", sshconn_error(pe->c));
		drop(w, pe, W_DOWN, why);
		return;
	}
	pe->deadline = now() + w->cfg->net_timeout;
	set_state(w, pe, W_CONNECTING);
}

/* --- pushes ---------------------------------------------------------------- */

/* The object database is read: let go of it once idle (trim_all). */
static void db_used(struct worker *w)
{
	w->used = true;
	w->used_at = now();
}

/* The pack of want ^ old (NULL: all of want), made or the last one. */
static const struct strbuf *pack_for(struct worker *w, const struct oid *want,
				     const struct oid *old)
{
	if (w->pack_made && now() - w->pack_at < PACK_KEEP &&
	    oid_equal(&w->pack_want, want) &&
	    w->pack_has_old == (old != NULL) &&
	    (!old || oid_equal(&w->pack_old, old)))
		return &w->pack;
	w->pack_made = false;
	strbuf_reset(&w->pack);
	db_used(w);
	if (session_pack(&w->pack, w->repo, want, old) < 0)
		return NULL;
	/* one over 256 KiB (a catch-up) is not kept */
	if (w->pack.len > SESSION_FRAME_MAX * 4)
		return &w->pack;
	oid_cpy(&w->pack_want, want);
	w->pack_at = now();
	w->pack_has_old = old != NULL;
	if (old)
		oid_cpy(&w->pack_old, old);
	w->pack_made = true;
	return &w->pack;
}

static void push_next(struct worker *w, struct wpeer *pe)
{
	const struct strbuf *pack;
	const struct oid *old = pe->have_acked ? &pe->acked : NULL;

	if (pe->st != W_UP || pe->pushing || !pe->have_want ||
	    (pe->have_acked && oid_equal(&pe->acked, &pe->want)))
		return;
	if (!(pack = pack_for(w, &pe->want, old))) {
		tell(w, "err %s failed cannot pack %s", pe->cfg->name,
		     oid_hex(&pe->want));
		pe->have_want = false;
		return;
	}
	oid_cpy(&pe->sent, &pe->want);
	log_debug("peer %s: PUSH %.12s (%zu bytes)", pe->cfg->name,
		  oid_hex(&pe->sent), pack->len);
	pe->xfer = ++pe->next_xfer;
	pe->pushing = true;
	pe->push_at = now();
	session_frame_addf(&pe->out, SESSION_PUSH, "%llu %s %s %zu", pe->xfer,
			   session_id_str(&pe->acked, pe->have_acked),
			   oid_hex(&pe->sent), pack->len);
	if (pack->len)
		session_data_add(&pe->out, (uint32_t)pe->xfer, pack->buf,
				 pack->len);
	if (!w->pack_made)
		strbuf_release(&w->pack);
}

static void acked(struct worker *w, struct wpeer *pe, const struct oid *id)
{
	oid_cpy(&pe->acked, id);
	pe->have_acked = true;
	pe->pushing = false;
	pe->races = 0;
	pe->pushes++;
	pe->ack_ms = (long)((now() - pe->push_at) * 1000 + 0.5);
	tell(w, "ok %s %s", pe->cfg->name, oid_hex(id));
	tell_state(w, pe);
	push_next(w, pe);
}

/* OK xfer new */
static int on_ok(struct worker *w, struct wpeer *pe, const struct session_frame *f)
{
	const char *v[3];
	size_t n;
	unsigned long long xfer;
	struct oid id;
	bool have;

	if (session_fields(v, 3, &n, &pe->fields, f) < 0 || n != 2 ||
	    session_number(&xfer, v[0], ULLONG_MAX) < 0 ||
	    session_id(&id, &have, v[1]) < 0 || !have)
		return E_INVALID;
	if (!pe->pushing || xfer != pe->xfer || !oid_equal(&id, &pe->sent))
		return E_INVALID;	/* an OK for nothing we sent */
	acked(w, pe, &id);
	return 0;
}

/* ERR xfer class have text */
static int on_err(struct worker *w, struct wpeer *pe, const struct session_frame *f)
{
	const char *v[4];
	size_t n;
	unsigned long long xfer;
	struct oid have;
	bool has;

	if (session_fields(v, 4, &n, &pe->fields, f) < 0 || n < 3 ||
	    session_number(&xfer, v[0], ULLONG_MAX) < 0 ||
	    session_id(&have, &has, v[2]) < 0)
		return E_INVALID;
	if (pe->fetching && xfer == pe->fetch_xfer) {
		log_debug("peer %s: fetch refused: %s", pe->cfg->name,
			  n > 3 ? v[3] : "");
		session_in_free(pe->fetch_in);
		pe->fetch_in = NULL;
		pe->fetching = false;
		return 0;
	}
	if (!pe->pushing || xfer != pe->xfer)
		return E_INVALID;
	pe->pushing = false;
	/* a pack refused is made again for whoever comes next */
	w->pack_made = false;
	/* the peer's ref is not what we thought: push against its value */
	if (!strcmp(v[1], "race") && ++pe->races <= RACES_MAX) {
		pe->have_acked = has;
		if (has)
			oid_cpy(&pe->acked, &have);
		push_next(w, pe);
		return 0;
	}
	pe->races = 0;
	tell(w, "err %s %s %s", pe->cfg->name,
	     !strcmp(v[1], "invalid") || !strcmp(v[1], "limit") ? "rejected" : "failed",
	     n > 3 ? v[3] : v[1]);
	return 0;
}

/* --- fetches --------------------------------------------------------------- */

/*
 * What a fetch would do when we hold the announced commit already: move
 * refs/peers/<peer>/mail to it, so that the ref tracks the peer's mail
 * as a fetch kept it (maildag status's ahead and behind) without a
 * transfer.  Forward only: an announce that comes after a newer push
 * of the same peer never moves the ref back.
 */
static void track(struct worker *w, struct wpeer *pe, const struct oid *id)
{
	char ref[128];
	struct oid cur, mail;
	bool have;

	/*
	 * Only a commit of our own mail's history: that every object it
	 * reaches is here is then sure.  That its commit object exists is
	 * not enough: serve or a fetch may be letting a pack in, object by
	 * object, and the daemon would check, and refuse, a half-written
	 * history.  A commit not merged yet is looked at again a few times.
	 */
	db_used(w);
	if (repo_ref_read(&mail, w->repo, REF_MAIL) < 0 ||
	    (!oid_equal(&mail, id) && merge_is_ancestor(w->repo, id, &mail) != 1)) {
		if (pe->track_tries++ < TRACK_TRIES)
			pe->track_at = now() + TRACK_DELAY;
		return;
	}
	snprintf(ref, sizeof ref, "refs/peers/%s/mail", pe->cfg->name);
	have = repo_ref_read(&cur, w->repo, ref) == 0;
	if (have && (oid_equal(&cur, id) ||
		     merge_is_ancestor(w->repo, id, &cur) == 1))
		return;
	if (repo_ref_cas(w->repo, ref, id, have ? &cur : NULL,
			 "maildag: announced") == 0)
		tell(w, "fetched %s %s", pe->cfg->name, oid_hex(id));
}

static void holds(struct worker *w, struct wpeer *pe, const struct oid *id)
{
	oid_cpy(&pe->head, id);
	pe->have_head = true;
	tell(w, "holds %s %s", pe->cfg->name, oid_hex(id));
	if (!pe->cfg->fetch)
		return;
	db_used(w);
	if (!repo_object_exists(w->repo, id)) {
		pe->fetch_at = now() + FETCH_GRACE;
		return;
	}
	oid_cpy(&pe->track_id, id);
	pe->track_tries = 0;
	if (!pe->track_at)
		pe->track_at = now() + TRACK_DELAY;
}

static void fetch_start(struct worker *w, struct wpeer *pe)
{
	struct oid have;
	bool has;
	char ref[128];

	pe->fetch_at = 0;
	db_used(w);
	if (pe->fetching || !pe->have_head ||
	    repo_object_exists(w->repo, &pe->head))
		return;
	snprintf(ref, sizeof ref, "refs/peers/%s/mail", pe->cfg->name);
	has = repo_ref_read(&have, w->repo, ref) == 0 &&
	      repo_object_exists(w->repo, &have);
	if (session_in_new(&pe->fetch_in, w->repo, FETCH_MAX) < 0)
		return;
	oid_cpy(&pe->fetch_want, &pe->head);
	pe->fetching = true;
	pe->fetch_xfer = ++pe->next_xfer;
	pe->fetch_started = now();
	session_frame_addf(&pe->out, SESSION_FETCH, "%llu %s %s", pe->fetch_xfer,
			   oid_hex(&pe->fetch_want), session_id_str(&have, has));
}

static int on_end(struct worker *w, struct wpeer *pe)
{
	char ref[128], lock[128];
	struct strbuf err = STRBUF_INIT;
	struct oid cur, now_id;
	bool has;
	int r;

	if (!pe->fetching)
		return E_INVALID;
	snprintf(ref, sizeof ref, "refs/peers/%s/mail", pe->cfg->name);
	snprintf(lock, sizeof lock, "peerref-%s.lock", pe->cfg->name);
	has = repo_ref_read(&cur, w->repo, ref) == 0;
	{
		struct session_store_args a = {
			ref, lock, has ? &cur : NULL, &pe->fetch_want, false, NULL,
		};
		r = session_in_store(pe->fetch_in, &a, &err, &now_id);
	}
	session_in_free(pe->fetch_in);
	pe->fetch_in = NULL;
	pe->fetching = false;
	db_used(w);
	if (r == 0)
		tell(w, "fetched %s %s", pe->cfg->name, oid_hex(&pe->fetch_want));
	else
		log_warn("peer %s: fetch of %.12s not stored: %s", pe->cfg->name,
			 oid_hex(&pe->fetch_want), err.len ? err.buf :
			 r == E_RACE ? "the ref moved" : "failed");
	strbuf_release(&err);
	return 0;
}

static int on_fetch_data(struct wpeer *pe, const struct session_frame *f)
{
	struct strbuf err = STRBUF_INIT;
	const char *data;
	size_t len;
	uint32_t xfer;
	int r = 0;

	session_data(&xfer, &data, &len, f);
	if (!pe->fetching || xfer != (uint32_t)pe->fetch_xfer)
		return E_INVALID;
	if (session_in_add(pe->fetch_in, data, len, &err) < 0) {
		log_warn("peer %s: fetch: %s", pe->cfg->name, err.buf);
		r = E_INVALID;
	}
	strbuf_release(&err);
	return r;
}

/* --- frames ---------------------------------------------------------------- */

static int on_frame(struct worker *w, struct wpeer *pe,
		    const struct session_frame *f)
{
	const char *v[2];
	size_t n;
	struct oid id;
	bool have;

	switch (f->type) {
	case SESSION_OK:
		return on_ok(w, pe, f);
	case SESSION_ERR:
		return on_err(w, pe, f);
	case SESSION_ANNOUNCE:
		if (session_fields(v, 2, &n, &pe->fields, f) < 0 || n != 1 ||
		    session_id(&id, &have, v[0]) < 0 || !have)
			return E_INVALID;
		holds(w, pe, &id);
		return 0;
	case SESSION_DATA:
		return on_fetch_data(pe, f);
	case SESSION_END:
		return on_end(w, pe);
	case SESSION_PING:
		session_frame_add(&pe->out, SESSION_PONG, f->payload, f->len);
		return 0;
	case SESSION_PONG:
		return 0;
	case SESSION_BYE:
		return E_FAIL;
	default:
		return E_INVALID;
	}
}

static void on_hello(struct worker *w, struct wpeer *pe, const char *line,
		     size_t len)
{
	struct session_hello h;

	if (session_hello_parse(&h, line, len) < 0 ||
	    strcmp(h.node, pe->cfg->name) || strcmp(h.peer, w->cfg->node)) {
		drop(w, pe, W_DOWN, "the peer's first line is not a session hello");
		return;
	}
	pe->failures = 0;
	/* from here on its stderr is serve's log, not why it ended */
	sshconn_stderr_clear(pe->c);
	pe->have_acked = h.have_have;
	oid_cpy(&pe->acked, &h.have);
	pe->last_frame = now();
	pe->error[0] = '\0';
	set_state(w, pe, W_UP);
	/* what it holds, in its words: our pushes and quorum count it */
	if (h.have_have)
		tell(w, "ok %s %s", pe->cfg->name, oid_hex(&h.have));
	if (h.have_head)
		holds(w, pe, &h.head);
	push_next(w, pe);
}

/* The session's channel ended before its hello: why, and what next. */
static void ended_early(struct worker *w, struct wpeer *pe)
{
	int st = sshconn_exit_status(pe->c);
	char why[700];

	snprintf(why, sizeof why, "%s%s%s", sshconn_error(pe->c),
		 *sshconn_stderr(pe->c) ? ": " : "", sshconn_stderr(pe->c));
	/* an older serve (77, EX_NOPERM) or no serve at all (127) */
	if (st == 77 || st == 127 ||
	    strstr(sshconn_stderr(pe->c), "serves git-upload-pack"))
		drop(w, pe, W_FALLBACK, why);
	else
		drop(w, pe, W_DOWN, why);
}

/* Read what the session has; false when it went down. */
static bool session_read(struct worker *w, struct wpeer *pe)
{
	char buf[65536];
	ssize_t n;

	while ((n = sshconn_read(pe->c, buf, sizeof buf)) > 0) {
		pe->bytes_in += (unsigned long long)n;
		pe->last_frame = now();
		strbuf_add(&pe->in, buf, (size_t)n);
		if (pe->in.len > 2 * SESSION_FRAME_MAX + 64 && pe->st == W_HELLO)
			break;
	}
	if (n < 0 && pe->st == W_HELLO) {
		ended_early(w, pe);
		return false;
	}
	if (n < 0) {
		char why[700];
		snprintf(why, sizeof why, "%s%s%s", sshconn_error(pe->c),
			 *sshconn_stderr(pe->c) ? ": " : "", sshconn_stderr(pe->c));
		drop(w, pe, W_DOWN, why);
		return false;
	}
	return true;
}

static void parse_in(struct worker *w, struct wpeer *pe)
{
	struct session_frame f;
	size_t off = 0, used;
	int r = 0;

	if (pe->st == W_HELLO) {
		char *nl = memchr(pe->in.buf, '\n', pe->in.len);
		if (!nl) {
			if (pe->in.len >= SESSION_HELLO_MAX)
				drop(w, pe, W_DOWN, "no session hello");
			return;
		}
		off = (size_t)(nl - pe->in.buf) + 1;
		on_hello(w, pe, pe->in.buf, off);
		if (pe->st != W_UP)
			return;
	}
	while ((r = session_frame_parse(&f, &used, pe->in.buf + off,
					pe->in.len - off)) == 1) {
		off += used;
		if ((r = on_frame(w, pe, &f)) < 0)
			break;
	}
	if (r < 0) {
		drop(w, pe, W_DOWN, r == E_FAIL ? "the peer ended the session"
			 : "the peer sent a frame that does not fit");
		return;
	}
	strbuf_remove(&pe->in, 0, off);
}

static void session_write(struct worker *w, struct wpeer *pe)
{
	while (pe->out.len) {
		ssize_t n = sshconn_write(pe->c, pe->out.buf, pe->out.len);
		if (n == 0)
			return;
		if (n < 0) {
			char why[512];
			snprintf(why, sizeof why, "%s", sshconn_error(pe->c));
			drop(w, pe, W_DOWN, why);
			return;
		}
		pe->bytes_out += (unsigned long long)n;
		strbuf_remove(&pe->out, 0, (size_t)n);
	}
}

/* The socket is ready, or a timer passed: go on. */
static void peer_run(struct worker *w, struct wpeer *pe)
{
	int r;

	if (pe->st == W_CONNECTING) {
		if ((r = sshconn_step(pe->c)) < 0) {
			char why[512];
			snprintf(why, sizeof why, "%s", sshconn_error(pe->c));
			if (sshconn_status(pe->c) == NET_HOSTKEY)
				log_error("%s", why);
			drop(w, pe, W_DOWN, why);
			return;
		}
		if (r == 0)
			return;
		pe->st = W_HELLO;
	}
	if (pe->st != W_HELLO && pe->st != W_UP)
		return;
	session_write(w, pe);
	if (!pe->c || !session_read(w, pe))
		return;
	parse_in(w, pe);
	if (pe->c && pe->st == W_UP && pe->fetch_at && now() >= pe->fetch_at)
		fetch_start(w, pe);
	if (pe->c)
		session_write(w, pe);
}

/* Deadlines: connect, unanswered push, silence. */
static void peer_timers(struct worker *w, struct wpeer *pe)
{
	double t = now(), silence = 2.0 * w->cfg->keepalive + 5;

	if (pe->track_at && t >= pe->track_at) {
		pe->track_at = 0;
		track(w, pe, &pe->track_id);
	}
	if ((pe->st == W_DOWN || pe->st == W_FALLBACK) && t >= pe->retry_at)
		connect_peer(w, pe);
	else if ((pe->st == W_CONNECTING || pe->st == W_HELLO) &&
		 t >= pe->deadline)
		drop(w, pe, W_DOWN, "no session within the net_timeout");
	else if (pe->st == W_UP &&
		 ((pe->pushing && t - pe->push_at >= w->cfg->net_timeout) ||
		  (pe->fetching && t - pe->fetch_started >= w->cfg->net_timeout)))
		drop(w, pe, W_DOWN, "no answer within the net_timeout");
	else if (pe->st == W_UP && t - pe->last_frame >= silence)
		drop(w, pe, W_DOWN, "nothing heard for two keepalive intervals");
}

static double next_state_timer(struct worker *w, const struct wpeer *pe);

static double next_timer(struct worker *w, const struct wpeer *pe)
{
	double t = next_state_timer(w, pe);

	return pe->track_at && pe->track_at < t ? pe->track_at : t;
}

static double next_state_timer(struct worker *w, const struct wpeer *pe)
{
	double silence = 2.0 * w->cfg->keepalive + 5;

	switch (pe->st) {
	case W_DOWN:
	case W_FALLBACK:
		return pe->retry_at;
	case W_CONNECTING:
	case W_HELLO:
		return pe->deadline;
	case W_UP: {
		double t = pe->last_frame + silence;
		if (pe->pushing && pe->push_at + w->cfg->net_timeout < t)
			t = pe->push_at + w->cfg->net_timeout;
		if (pe->fetching && pe->fetch_started + w->cfg->net_timeout < t)
			t = pe->fetch_started + w->cfg->net_timeout;
		if (pe->fetch_at && pe->fetch_at < t)
			t = pe->fetch_at;
		return t;
	}
	}
	return now() + 60;
}

/* --- the daemon's words ------------------------------------------------------ */

static struct wpeer *find(struct worker *w, const char *name)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcmp(w->v[i].cfg->name, name))
			return &w->v[i];
	return NULL;
}

static void on_command(struct worker *w, char *line)
{
	char *verb = strtok(line, " "), *name = strtok(NULL, " "),
	     *arg = strtok(NULL, " ");
	struct wpeer *pe;
	struct oid id;

	/* the daemon's check that this loop still turns */
	if (verb && name && !strcmp(verb, "ping") &&
	    strspn(name, "0123456789") == strlen(name)) {
		tell(w, "pong %s", name);
		return;
	}
	pe = name ? find(w, name) : NULL;

	if (!verb || !pe || !arg || strcmp(verb, "push") ||
	    strlen(arg) != OID_HEXSZ || oid_fromstr(&id, arg) < 0)
		return;
	oid_cpy(&pe->want, &id);
	pe->have_want = true;
	if (pe->st == W_UP && pe->have_acked && oid_equal(&pe->acked, &id)) {
		tell(w, "ok %s %s", pe->cfg->name, oid_hex(&id));
		return;
	}
	push_next(w, pe);
	if (pe->st == W_UP)
		session_write(w, pe);
}

/* false when the daemon went away */
static bool daemon_read(struct worker *w)
{
	char buf[4096], *nl;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof buf)) > 0)
		strbuf_add(&w->in, buf, (size_t)n);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return false;
	while ((nl = memchr(w->in.buf, '\n', w->in.len))) {
		*nl = '\0';
		on_command(w, w->in.buf);
		strbuf_remove(&w->in, 0, (size_t)(nl - w->in.buf) + 1);
	}
	if (w->in.len > NETWORKER_LINE_MAX)
		strbuf_reset(&w->in);
	return true;
}

static bool daemon_write(struct worker *w)
{
	while (w->out.len) {
		ssize_t n = write(w->fd, w->out.buf, w->out.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		strbuf_remove(&w->out, 0, (size_t)n);
	}
	return true;
}

/*
 * An idle session keeps no large buffer: one that a catch-up or a fetch
 * grew is given back once it is empty (must-show 5 of issue 15).
 */
#define BUF_KEEP (64 * 1024 + 64)

static void trim(struct strbuf *b)
{
	if (!b->len && b->alloc > BUF_KEEP)
		strbuf_release(b);
}

static void trim_all(struct worker *w)
{
	bool fetching = false;

	if (w->pack_made && now() - w->pack_at >= PACK_KEEP) {
		w->pack_made = false;
		strbuf_release(&w->pack);
	}
	trim(&w->in);
	trim(&w->out);
	for (size_t i = 0; i < w->n; i++) {
		trim(&w->v[i].in);
		trim(&w->v[i].out);
		trim(&w->v[i].fields);
		fetching = fetching || w->v[i].fetching;
	}
	/* a fetch's indexer reads the object database: not under it */
	if (w->used && !fetching && now() - w->used_at >= PACK_KEEP) {
		repo_release(w->repo);
		w->used = false;
	}
}

/* --- the loop ---------------------------------------------------------------- */

static void worker_loop(struct worker *w)
{
	struct pollfd *p = xcalloc(w->n + 1, sizeof *p);

	for (size_t i = 0; i < w->n; i++)
		connect_peer(w, &w->v[i]);
	for (;;) {
		double t = now() + 3600, left;
		int m = 1;

		if (!daemon_write(w)) {
			log_debug("network worker: the daemon went away (write)");
			break;
		}
		p[0] = (struct pollfd){ w->fd, POLLIN | (w->out.len ? POLLOUT : 0), 0 };
		for (size_t i = 0; i < w->n; i++) {
			struct wpeer *pe = &w->v[i];
			double nt = next_timer(w, pe);
			if (nt < t)
				t = nt;
			if (!pe->c || (pe->st != W_CONNECTING &&
				       pe->st != W_HELLO && pe->st != W_UP))
				continue;
			p[m++] = (struct pollfd){ sshconn_fd(pe->c),
				sshconn_events(pe->c) | POLLIN |
				(pe->out.len ? POLLOUT : 0), 0 };
		}
		left = t - now();
		if (poll(p, (nfds_t)m, left <= 0 ? 0 : (int)(left * 1000) + 1) < 0 &&
		    errno != EINTR) {
			log_error_errno("network worker: poll");
			break;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR) && !daemon_read(w)) {
			log_debug("network worker: the daemon went away (%s)",
				  strerror(errno));
			break;
		}
		/* every session: libssh2 may hold read bytes the socket
		 * no longer shows */
		for (size_t i = 0; i < w->n; i++) {
			peer_run(w, &w->v[i]);
			peer_timers(w, &w->v[i]);
		}
		trim_all(w);
	}
	free(p);
}

struct spawn_args {
	const char *repo_path;
	const struct config *cfg;
};

static bool session_peer(const struct config *cfg, const struct config_peer *p)
{
	return p->session && !strncmp(p->url, "ssh://", 6) &&
	       strcmp(p->name, cfg->node) && (p->push || p->fetch);
}

bool networker_wanted(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->npeers; i++)
		if (session_peer(cfg, &cfg->peers[i]))
			return true;
	return false;
}

static void worker_main(void *arg)
{
	const struct spawn_args *a = arg;
	struct worker w = { 0 };

	w.cfg = a->cfg;
	w.fd = CHILD_RESULT_FD;
	strbuf_init(&w.in, 0);
	strbuf_init(&w.out, 0);
	strbuf_init(&w.pack, 0);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	/*
	 * the daemon's packs were closed (child_spawn without
	 * CHILD_KEEP_PACKS) and are unmapped here: kept, this long-lived
	 * worker would hold their disk space after maintenance removed
	 * them; so libgit2 here closes no pack file by itself
	 * (repo_global_reinit): its list of the daemon's is stale
	 */
	child_unmap_packs();
	if (fcntl(w.fd, F_SETFL, O_NONBLOCK) < 0 ||
	    repo_global_reinit(true) < 0 ||
	    repo_open(&w.repo, a->repo_path, 0) < 0)
		return;
	w.v = xcalloc(a->cfg->npeers, sizeof *w.v);
	for (size_t i = 0; i < a->cfg->npeers; i++) {
		struct wpeer *pe;
		if (!session_peer(a->cfg, &a->cfg->peers[i]))
			continue;
		pe = &w.v[w.n++];
		pe->cfg = &a->cfg->peers[i];
		pe->ack_ms = -1;
		pe->since = clock_wall();
		strbuf_init(&pe->in, 0);
		strbuf_init(&pe->out, 0);
		strbuf_init(&pe->fields, 0);
	}
	worker_loop(&w);
}

int networker_spawn(pid_t *pid, int *fd, const char *repo_path,
		    const struct config *cfg)
{
	struct spawn_args a = { repo_path, cfg };

	return child_spawn(pid, fd, net_fetch_memory(),
			   CHILD_DIE_WITH_PARENT | CHILD_SOCKET, "maildag-net",
			   worker_main, &a);
}
