/*
 * networker: maildag-syncd's network worker (issue 15,
 * doc/persistent-peers.md 5.1, 5.4): one child process that holds a
 * kept ssh session (sshconn.h) to every ssh peer that takes one, in a
 * poll loop of its own, and speaks the session protocol (session.h)
 * with each peer's `maildag serve`.  The daemon tells it what to push
 * and hears what the peers said, one line at a time over a socket pair:
 *
 *	daemon -> worker
 *	  push NAME ID		send refs/heads/mail (ID) to NAME
 *	  ping N		answered "pong N" at once: the worker's loop
 *			turns (one that does not is killed, started again)
 *	worker -> daemon
 *	  pong N
 *	  state NAME STATE SINCE IN OUT PUSHES ACK_MS ERROR...
 *			STATE: connecting, up, down, fallback; SINCE the
 *			wall time it began; IN/OUT bytes; ACK_MS the last
 *			push's time to its OK (-1: none); ERROR or "-"
 *	  ok NAME ID		NAME holds ID durably (its OK)
 *	  err NAME STATUS TEXT	NAME refused the push (STATUS net_status_name)
 *	  holds NAME ID		NAME's refs/heads/mail is ID (its hello, its
 *			ANNOUNCE): what it holds in its own words
 *	  fetched NAME ID	refs/peers/NAME/mail is now ID, fetched
 *
 * Invariants: nothing in the worker blocks on a peer (libssh2
 * non-blocking, a deadline per state), so a silent or frozen peer costs
 * only its own timers; "ok" is sent only for an OK frame naming exactly
 * what was pushed (or, after a race, what the peer says it holds); a
 * session that goes down with a push in flight reports "state ... down"
 * and never "ok" for it.  The worker holds the parsing of what peers
 * send away from the process that holds the writer lock.
 */
#ifndef NETWORKER_H
#define NETWORKER_H

#include <sys/types.h>

#include "config.h"

/* The longest line either side sends. */
#define NETWORKER_LINE_MAX 1024

/*
 * Fork the worker for the ssh peers of cfg that take a session (the
 * caller keeps cfg alive across the fork only: the child has its copy).
 * *pid the child, *fd the socket (non-blocking, close-on-exec).  0, or
 * E_FAIL (logged).  The worker ends when the socket closes or the
 * daemon dies.
 */
int networker_spawn(pid_t *pid, int *fd, const char *repo_path,
		    const struct config *cfg);

/* Does cfg have a peer the worker would serve? */
bool networker_wanted(const struct config *cfg);

#endif
