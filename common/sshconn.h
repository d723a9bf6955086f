/*
 * sshconn: one ssh connection to a peer, with libssh2 used directly and
 * never blocking: a state machine that a poll loop drives (issue 15,
 * doc/persistent-peers.md 5.1).  It connects, checks the host key
 * against the peer's pinned "SHA256:" fingerprint (a mismatch is
 * NET_HOSTKEY and nothing is sent), logs in with the configured
 * identity, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa (as net.h), opens
 * one channel and runs one command on it; then it is a byte stream.
 *
 * Invariants: no call here waits for the network (the name lookup of a
 * host that is not an address literal aside); every refusal is one line
 * in sshconn_error() with a net_status; the caller owns the deadlines.
 */
#ifndef SSHCONN_H
#define SSHCONN_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "net.h"

struct sshconn;

/*
 * Start connecting to peer p (an ssh:// URL) to run command.  0 with
 * *out set, or E_FAIL with *out set anyway (its error says why; free it).
 */
int sshconn_start(struct sshconn **out, const struct config_peer *p,
		  const char *command);

/* The socket, and what to poll it for now. */
int sshconn_fd(const struct sshconn *c);
short sshconn_events(const struct sshconn *c);

/*
 * Go on after the socket was ready (or to try at once): 1 once the
 * command runs, 0 when waiting for the socket, E_FAIL on failure.
 */
int sshconn_step(struct sshconn *c);

/*
 * Once open: bytes of the command's stdout.  > 0, 0 when none are there
 * now (poll), E_FAIL at its end or on an error (sshconn_error()).
 */
ssize_t sshconn_read(struct sshconn *c, char *buf, size_t len);
/* Bytes to its stdin: how many were taken (0: poll), or E_FAIL. */
ssize_t sshconn_write(struct sshconn *c, const char *buf, size_t len);
/* What its stderr said so far, one line ("" when nothing). */
const char *sshconn_stderr(struct sshconn *c);
/* Forget what its stderr said so far (once it is known to be ours). */
void sshconn_stderr_clear(struct sshconn *c);
/* The command's exit status once it ended, else -1. */
int sshconn_exit_status(struct sshconn *c);

const char *sshconn_error(const struct sshconn *c);
enum net_status sshconn_status(const struct sshconn *c);

/* Close and free; NULL is a no-op. */
void sshconn_free(struct sshconn *c);

#endif
