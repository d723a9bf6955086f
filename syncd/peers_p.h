/*
 * peers_p: what the two halves of the peers module share, and nothing
 * outside syncd/peers*.c may use.
 *
 *	peers.c			each peer's push and fetch (struct op), the
 *				configuration, status, quorum waits
 *	peers_check.c		the whole-history check of what a peer sent,
 *				in a child, and the merge of what it approved
 */
#ifndef PEERS_P_H
#define PEERS_P_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "config.h"
#include "loop.h"
#include "net.h"
#include "oid.h"
#include "peers.h"
#include "strbuf.h"

struct peer;

struct op {
	struct peer *peer;
	enum net_op kind;
	bool enabled;
	pid_t pid;		/* the child while running, else 0 */
	int fd;
	struct strbuf buf;
	struct loop_timer *timer;
	bool again;		/* run once more when this run ends */
	unsigned failures;	/* in a row */
	unsigned long runs;	/* ended since the daemon started */
	unsigned long timeouts;	/* of those, killed at the deadline */
	time_t last_ok, error_at;
	char *last_error;	/* "<status>: <error>" */
	char *last_raw;		/* the error alone, to log changes only */
	struct oid id;		/* accepted (push) or fetched (fetch) */
	bool have_id;
	bool in_session;	/* a push the network worker carries */
};

/* The peer's kept session, as the network worker last told it. */
struct conn {
	bool known;		/* the worker serves this peer */
	bool up;
	char state[16];		/* networker.h's STATE */
	time_t since;
	unsigned long long bytes_in, bytes_out, pushes;
	long ack_ms;
	char *error;
};

/* The whole-history check of what a peer sent, in a child (history.h). */
struct check {
	pid_t pid;		/* the child while running, else 0 */
	int fd;
	struct strbuf buf;
	struct oid theirs, ours;	/* what it checks: theirs ^ ours */
	double started;		/* loop_now() at its start */
	time_t started_at;
	struct loop_timer *timer;	/* the retry after a failed run */
	unsigned failures;	/* in a row */
	unsigned long runs;	/* ended since the daemon started */
	char *last_error;
	time_t error_at;
};

struct peer {
	struct peers *owner;
	struct config_peer cfg;	/* our own copy */
	bool alive;		/* in the current config */
	struct op push, fetch;
	struct conn conn;
	struct check check;
	char *merge_error;	/* a refused commit of theirs */
	time_t merge_error_at;
	/*
	 * The last commit of theirs whose whole history a check child
	 * approved, against our mail of then: while mail has only moved on
	 * from that, it (and any ancestor) may be merged.
	 */
	struct oid checked, checked_base;
	bool have_checked;
};

/* What refs/peers/<name>/mail held when we last merged or refused it. */
struct seen {
	char *name;
	struct oid id;
	bool bad;
};

struct wait {
	struct wait *next;
	struct peers *owner;
	struct oid commit;
	int acks;
	double timeout;
	struct loop_timer *timer;
	peers_wait_fn *done;
	void *data;
	bool over;
};

struct peers {
	struct loop *loop;
	struct repo *repo;
	const struct config *cfg;
	void (*want_sync)(void *data);
	void *data;
	struct peer **v;
	size_t n, alloc;
	struct seen *seen;
	size_t nseen, seen_alloc;
	bool refs_dirty;
	struct oid mail;
	bool have_mail;
	struct wait *waits;
	struct loop_timer *sweep;	/* ends the waits that timed out */
	bool waiting;		/* peers_check waits for its children */
	bool hold;		/* pushes held back (peers_set_hold) */
	/* the network worker (networker.h), while one runs */
	pid_t nw_pid;
	int nw_fd;
	struct strbuf nw_in;
	struct loop_timer *nw_timer;	/* its restart */
	struct loop_timer *nw_ping;	/* is it alive? */
	unsigned long nw_pings;
	bool nw_pong_due;
};

/* --- peers.c ------------------------------------------------------------ */

/* backoff_min * 2^(failures-1), at most backoff_max, times [0.5, 1). */
double pr_backoff(const struct peers *p, unsigned failures);

/* op_run, but no push to a peer that we know holds our mail already. */
void pr_op_start(struct op *op);

/* The record of what peer name's ref last held, made when there is
 * none (it outlives a reload that drops the peer). */
struct seen *pr_find_seen(struct peers *p, const char *name);

/* Refuse id from pe: logged, and kept as pe's merge error for status. */
void pr_refuse(struct peer *pe, const struct oid *id, const char *why);

/*
 * refs/peers/<name>/mail of a configured peer: 1 with its value, 0 when
 * there is none (or it is not a plain ref), < 0 on an error.
 */
int pr_read_peer_ref(struct peers *p, struct peer *pe, struct oid *out);

/* End every quorum wait whose commit enough peers now hold. */
void pr_check_waits(struct peers *p);

/* End op as a child's result res would (the push and fetch children's). */
void pr_op_finish(struct op *op, const struct net_result *res);

/* The peer named name in the current config, or NULL. */
struct peer *pr_find_peer(struct peers *p, const char *name);

/* --- peers_session.c ------------------------------------------------------ */

/* (Re)start the network worker for the current config, when it has work. */
void pr_nw_start(struct peers *p);
/* Stop it: every session is down, pushes it carried fail over. */
void pr_nw_stop(struct peers *p);
/* Hand op (a push) to pe's session; false when it is not up. */
bool pr_nw_push(struct peers *p, struct peer *pe, struct op *op);
/* The "connection" object of pe's status, or JSON null. */
json_t *pr_conn_status(const struct peer *pe);

/* --- peers_check.c ------------------------------------------------------- */

/* Stop pe's check: its child killed, its timer stopped. */
void pr_check_stop(struct peers *p, struct peer *pe);

/* After a failed run: look again when the backoff says. */
void pr_on_check_timer(void *data);

#endif
