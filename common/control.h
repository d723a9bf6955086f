/*
 * control: maildag-syncd's control socket (DESIGN sections 1 and 7).
 *
 * An AF_UNIX stream socket, mode 0600 in a 0700 directory, that syncd
 * listens on and `maildag status`, `maildag sync` and maildag-lda (for
 * quorum delivery) talk to.  The protocol is JSON lines: the client sends
 * one JSON object on one line, the server answers with one JSON object on
 * one line, then the client may send another request or close.  A line
 * is at most CONTROL_LINE_MAX bytes.  Both sides check that the other
 * runs as the same user (SO_PEERCRED).
 *
 * Where it lives (control_socket_path): $XDG_RUNTIME_DIR/maildag/control
 * when XDG_RUNTIME_DIR is an absolute directory (not a symbolic link)
 * owned by the user and not writable by group or others; else
 * /run/user/<uid>/maildag/control when /run/user/<uid> is such a
 * directory; else <repository>/maildag/control (for virtual mailboxes,
 * mailbox.h user_socket: ~/.local/share/maildag/control, one for every
 * mailbox of the user, as one daemon serves them).  A candidate whose socket
 * path would not fit in a sockaddr_un is skipped.  Postfix and Exim start
 * maildag-lda without XDG_RUNTIME_DIR, so the LDA and a daemon under
 * systemd --user agree through /run/user/<uid>; and a client tries every
 * valid candidate in that order (control_connect), so it also finds a
 * daemon started with another XDG_RUNTIME_DIR than its own.
 *
 * Requests ("cmd" picks one; unknown commands get {"ok":false,"error":..}):
 *
 * Virtual mailboxes (config.h): one daemon serves every mailbox of its
 * user.  A request may name one with "mailbox":"user@domain"; it is then
 * answered as below for that mailbox ({"ok":false,"error":"...: no such
 * mailbox"} when it has none such), and the status answer has
 * "mailbox" too.  Without "mailbox", that daemon answers "status" with
 * {"ok":true, "node":..., "pid":N, "mailboxes":[ <status>, ... ]}, runs
 * "sync" for every mailbox, and refuses "wait".  A daemon of one
 * mailbox refuses a request naming another.
 *
 *   {"cmd":"status"}
 *     -> {"ok":true, "node":"mx1", "mail":"<hex>", "pid":N, "quorum":N,
 *         "unreadable":["<folder>/<sub>/<name>", ...],  files skipped
 *         "unwatched_folders":N,     (only when N > 0) the watch limit's
 *         "folder_limit":N, "folders_left_out":N,  folders on disk the
 *                                    limit leaves out of what is committed
 *         "alarms":[ <alarm>, ... ], the open mass-deletion alarms, as
 *                                    alarm_json() (alarm.h) has them
 *         "held":bool,               pushes held back by one of them
 *         "peers":[ { "name":"mx2", "url":"ssh://...",
 *                     "peer_ref":"<hex>"|null,   our refs/peers/mx2/mail
 *                     "ahead":N, "behind":N,     mail vs peer_ref
 *                     "unpushed":N|null, "waits":N,
 *                     "push": <op>|null, "fetch": <op>|null,
 *                     "check": <check>,
 *                     "merge_error":"refused <id>: ..."|null }, ... ] }
 *     where <op> = { "last_ok":T|null, "last_error":"..."|null,
 *                    "error_at":T|null, "failures":N, "next_try":T|null,
 *                    "running":bool, "id":"<hex>"|null,
 *                    "runs":N, "timeouts":N }
 *     T is seconds since the epoch (a JSON integer); "id" is the last
 *     commit the peer accepted (push) or the last fetched (fetch); a null
 *     <op> means that direction is off for the peer; "runs" counts the
 *     attempts that ended since the daemon started, "timeouts" those of
 *     them killed at the deadline.  "ahead" counts the
 *     commits of mail that peer_ref lacks, "behind" those of peer_ref
 *     that mail lacks.  "unpushed" counts the commits of mail the peer is
 *     not known to hold (by what it last accepted, what was last fetched
 *     and peer_ref; null when nothing of it is known): the pushes due.
 *     "waits" counts the quorum waits under way (maildag-lda) for a
 *     commit the peer is not known to hold.
 *     <check> = { "running":bool, "commit":"<hex>"|null, "started":T|null,
 *                 "approved":"<hex>"|null, "runs":N, "failures":N,
 *                 "last_error":"..."|null, "error_at":T|null,
 *                 "next_try":T|null }
 *     is the whole-history check of what the peer sent, run by a child
 *     of the daemon: "commit" the tip it is checking while "running",
 *     "approved" the last tip whose history passed, "failures" the runs
 *     in a row that ended without an answer (a killed child, an object
 *     that could not be read), retried at "next_try".  "merge_error" is
 *     the last refusal of the peer's commits, null once one is merged.
 *
 *   {"cmd":"sync"}
 *     fetch from every fetch peer and push to every push peer now,
 *     whatever their backoff says -> {"ok":true}
 *
 *   {"cmd":"wait", "commit":"<hex>", "acks":N, "timeout":S}
 *     answer when N peers have accepted a push of the commit or of a
 *     commit that contains it, or when S seconds have passed:
 *     -> {"ok":true, "acked":["mx2",...]}
 *     -> {"ok":false, "acked":[...], "error":"2 of 3 peers acknowledged
 *         in 30 s"}
 *     maildag-lda sends it with S at most its own deadline less a margin
 *     and reads the answer for at most S + CONTROL_WAIT_GRACE seconds.
 */
#ifndef CONTROL_H
#define CONTROL_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "mailbox.h"

#define CONTROL_LINE_MAX (1024 * 1024)	/* bytes in one line, newline included */
#define CONTROL_WAIT_GRACE 3		/* s a wait answer may come after S */

/* The socket's path (see above); the caller frees it. */
char *control_socket_path(const struct mailbox *mb);

/*
 * The rule of control_socket_path() with its inputs explicit, for tests:
 * xdg is the value of XDG_RUNTIME_DIR (NULL when unset), run_user the
 * directory that holds the per-uid runtime directories ("/run/user").
 * The caller frees the result.
 */
char *control_socket_path_with(const struct mailbox *mb, const char *xdg,
			       const char *run_user);

/*
 * Connect to syncd's socket, trying each valid candidate place in turn.
 * Returns the descriptor (close-on-exec, non-blocking; the caller closes
 * it), or E_NOTFOUND when no daemon listens (no socket, or connection
 * refused), E_TEMP when one is there but accepts no connection (its
 * backlog stays full), E_PERM when whoever listens is another user,
 * E_FAIL otherwise.  Only E_FAIL and E_PERM are logged.
 */
int control_connect(const struct mailbox *mb);

/*
 * Send req (one line) and read one answer line, all within timeout_ms
 * (< 0: no limit).  Works on blocking and non-blocking descriptors, and
 * reads nothing past the answer's newline, so a connection can carry
 * several requests.  *resp is a new reference.  Returns 0, E_TEMP on
 * timeout, E_FAIL on a broken connection, an answer over
 * CONTROL_LINE_MAX or one that is not a JSON object; each is logged.
 */
int control_request(int fd, json_t *req, json_t **resp, int timeout_ms);

/*
 * For the daemon: listen on control_socket_path(mb).  Creates the
 * socket's directory (0700) if needed, refuses (E_PERM) one that is not a
 * directory owned by the user, removes a stale socket (one nobody accepts
 * on) and returns E_EXISTS, logged with the pid, when another process
 * listens there.  Two daemons starting at once serialise on an flock of
 * "<path>.lock" while they check and bind, so exactly one wins.  The
 * socket is mode 0600, non-blocking, close-on-exec; the caller gets the
 * descriptor and *path_out (freed by the caller), and at exit calls
 * control_unlisten().
 */
int control_listen(const struct mailbox *mb, char **path_out);

/* Close the listening descriptor and remove the socket file. */
void control_unlisten(int fd, const char *path);

/*
 * Is the process at the other end of the unix socket fd running as uid
 * (SO_PEERCRED)?  False, logged at debug level, when it is not or when
 * it cannot be told.
 */
bool control_peer_ok(int fd, uid_t uid);

/*
 * A peer's lag in seconds, from its entry in a status answer's "peers":
 * for dir "push", 0 when it holds all our mail ("unpushed" 0), else the
 * time since the last push that succeeded; for "fetch", the age of the
 * last fetch that succeeded.  -1 when the answer does not tell.  One
 * rule for maildag status --metrics and maildag-syncd's STATUS= line.
 */
long long control_peer_lag(json_t *peer, const char *dir, time_t now);

#endif
