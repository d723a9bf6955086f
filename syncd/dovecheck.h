/*
 * dovecheck: at start, a format 2 replica with peers asks doveconf(1)
 * for Dovecot's mail_location and imap_capability, and warns once when
 * they let a CONDSTORE or QRESYNC client moved between replicas miss
 * changes (maildag-syncd(8), "Failing over"; doc/failover.md).
 *
 * doveconf runs as a child the loop reads from, so the daemon never
 * waits for it; one that has not answered after DOVECHECK_TIMEOUT
 * seconds is killed.  No doveconf, or one that fails, says nothing but
 * a debug line: Dovecot need not be on this machine.  The settings are
 * Dovecot's global ones: a userdb that sets mail for some users is not
 * seen.
 */
#ifndef DOVECHECK_H
#define DOVECHECK_H

struct config;
struct loop;

#define DOVECHECK_TIMEOUT 10

struct dovecheck;

/*
 * Start the check for cfg (its dovecot_config is doveconf's -c).  NULL
 * when there is nothing to check (no peers) or the child could not be
 * started (logged).  Free with dovecheck_free(), which kills a child
 * still running.
 */
struct dovecheck *dovecheck_start(struct loop *l, const struct config *cfg);
void dovecheck_free(struct dovecheck *d);

#endif
