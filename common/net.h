/*
 * net: push to and fetch from one peer (DESIGN section 6), with libgit2.
 *
 * A push sends refs/heads/mail to refs/peers/<our node>/mail on the peer;
 * a fetch brings the peer's refs/heads/mail into our
 * refs/peers/<peer>/mail.  Nothing else is ever written on either side:
 * no FETCH_HEAD, no tags, no remote in the repository's config.  A fetch
 * does not merge and does not look inside what it fetched: checking the
 * trees is the merge's job.
 *
 * libgit2 1.5.1 has no network timeouts, so an operation never runs in
 * the caller's process: net_spawn() forks a child that does it and writes
 * one result line to a pipe; the caller polls the pipe, and kills the
 * child (net_kill) when its deadline passes.  A hung peer costs a child
 * process, never the caller's time.  The child starts libgit2 afresh
 * (nothing of the caller's open repositories, pack files or descriptors
 * is used in it), opens the repository itself and ends with _exit(), so
 * no atexit handler or stdio buffer of the caller runs twice.
 *
 * A child killed at its deadline can leave a ref lock behind.  Every
 * maildag writer of refs/peers/<x>/mail (our fetch from x, x's push to a
 * file:// repository) holds <repo>/maildag/peerref-<x>.lock (flock)
 * while it runs; a ref lock found under it that is more than a minute
 * old is stale and removed (a git-receive-pack serving x's ssh push
 * takes no flock, but holds its ref lock for milliseconds).
 *
 * ssh peers: the host key must match the peer's pinned "SHA256:"
 * fingerprint (config.h), else NET_HOSTKEY and nothing is sent or
 * fetched; the user logs in as the URL's user (else the local user name)
 * with the configured identity alone when one is set, else with the agent
 * ($SSH_AUTH_SOCK) and then those of ~/.ssh/id_ed25519, id_ecdsa, id_rsa
 * that exist; when the peer has refused them all, NET_AUTH.  file://
 * peers: a path that does not exist is NET_UNREACHABLE (a drive not
 * mounted), never created.
 */
#ifndef NET_H
#define NET_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "repo.h"
#include "strbuf.h"

enum net_op {
	NET_PUSH,
	NET_FETCH,
};

enum net_status {
	NET_OK = 0,
	NET_UNREACHABLE,	/* cannot connect, file:// path absent */
	NET_HOSTKEY,		/* host key does not match the pin */
	NET_AUTH,		/* the peer refused every credential */
	NET_REJECTED,		/* the peer refused the ref update */
	NET_INVALID,		/* the peer sent something unusable */
	NET_TIMEOUT,		/* the deadline passed (set by the caller) */
	NET_FAILED,		/* anything else */
};

struct net_result {
	enum net_status status;
	/*
	 * NET_PUSH: the commit the peer accepted as refs/peers/<node>/mail
	 * (or already held there, when the push was up to date).
	 * NET_FETCH: the peer's refs/heads/mail as the peer advertised it
	 * (our refs/peers/<peer>/mail now holds it, or a descendant that
	 * was pushed meanwhile): what the peer itself says it holds, which
	 * quorum counts (peers.h).
	 * Zero when there is none (the peer has no refs/heads/mail yet) and
	 * on every failure.
	 */
	struct oid id;
	bool changed;		/* the ref (ours or theirs) moved */
	char error[512];	/* one line, no newline; "" on NET_OK */
};

/*
 * The ssh keys to offer peer p, in the order above: the configured
 * identity alone; else the agent (*agent: $SSH_AUTH_SOCK is a socket),
 * then those of home/.ssh/id_ed25519, id_ecdsa, id_rsa that can be
 * read.  *paths is a new array of *n new strings (the caller frees
 * each and the array).  One list for the push and fetch children and
 * the kept sessions (sshconn.h).
 */
void net_ssh_keys(char ***paths, size_t *n, bool *agent,
		  const struct config_peer *p, const char *home);

/*
 * A short lowercase word for a status: "ok", "unreachable", "hostkey",
 * "auth", "rejected", "invalid", "timeout", "failed".
 */
const char *net_status_name(enum net_status s);

/*
 * Do op with peer p in this process, without a deadline (the child of
 * net_spawn calls it).  node is this replica's name (for the push
 * refspec).  Opens the repository at repo_path itself.  Returns 0 with
 * res->status NET_OK, else E_FAIL with res filled.  Logs only at debug
 * level: the result says what happened.
 */
int net_run(enum net_op op, const char *repo_path, const struct config_peer *p,
	    const char *node, struct net_result *res);

/*
 * The data-segment limit (RLIMIT_DATA) of a fetch child: three times the
 * largest object the limits (format_get_limits()) let through, plus
 * NET_FETCH_BASE_MEMORY for libgit2 and the process it was forked from.
 */
#define NET_FETCH_BASE_MEMORY (256ull << 20)
unsigned long long net_fetch_memory(void);

/*
 * Fork a child (child.h) that runs net_run() and writes the result to a
 * pipe.  *pid is the child, *fd the read end (non-blocking,
 * close-on-exec) to poll for POLLIN.  A fetch child's memory is capped
 * (net_fetch_memory(); going over it is NET_INVALID, saying so).  In the
 * child, stdin and stdout are /dev/null, stderr is kept, every other
 * descriptor is closed but the pipe, and signal handlers are back to
 * their defaults (SIGPIPE ignored).  E_FAIL when the fork or pipe fails.
 */
int net_spawn(pid_t *pid, int *fd, enum net_op op, const char *repo_path,
	      const struct config_peer *p, const char *node);

/*
 * Read what is available on fd into buf (empty at the first call).
 * Returns 1 when the child has finished (EOF): res is filled, the child
 * reaped, fd closed and buf emptied; 0 when more is to come (poll
 * again).  A child that died without a result gives NET_FAILED naming
 * its exit status or signal.
 */
int net_collect(pid_t pid, int fd, struct strbuf *buf, struct net_result *res);

/*
 * The deadline passed: kill (SIGKILL) the child, close fd, and fill res
 * with NET_TIMEOUT ("no answer within <timeout_s> s").  A child that does
 * not die at once (stuck in uninterruptible I/O on a failing drive) is
 * not waited for: net_reap(), which the caller runs now and then, reaps
 * it later.
 */
void net_kill(pid_t pid, int fd, int timeout_s, struct net_result *res);
void net_reap(void);

/*
 * net_spawn(), then wait for it at most timeout_s seconds: for the admin
 * tool.  Returns 0 on NET_OK, else E_FAIL; res always filled.
 */
int net_run_deadline(enum net_op op, const char *repo_path,
		     const struct config_peer *p, const char *node,
		     int timeout_s, struct net_result *res);

#endif
