/*
 * admin: the verbs of the admin tool `maildag` that live in files of
 * their own in admin/.  Each takes the user's mailbox and the
 * verb's own argv (argv[0] is the verb) and returns a sysexits(3) status,
 * or what its manual page says.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "mailbox.h"
#include "repo.h"
#include "strbuf.h"

/*
 * Open the user's repository for a verb.  Returns 0, or the sysexits(3)
 * status the verb exits with (EX_NOINPUT when there is none, after saying
 * to run 'maildag init'; EX_TEMPFAIL otherwise).  The caller frees *out
 * with repo_free().
 */
int admin_open_repo(struct repo **out, const struct mailbox *mb);

/*
 * A verb that writes a repository (its own, or a file:// peer's) refuses
 * root: what it wrote would belong to root, in the user's repository.
 * Returns 0 when not root, else EX_NOPERM after one line saying so.
 */
int admin_refuse_root(const char *verb);

/* maildag fsck [--all-refs] [--hash]: check the repository (fsck.c). */
int cmd_fsck(struct mailbox *mb, int argc, char **argv);

/*
 * maildag merge [-n] [-u] [-q] [-v] <commit-a> <commit-b>: merge two
 * commits with the Maildir merge, print the result (merge.c).
 */
int cmd_merge(struct mailbox *mb, int argc, char **argv);

/*
 * maildag push [-t seconds] [peer...] and maildag fetch [-t seconds]
 * [peer...]: replicate with peers by hand, all at once, one line per
 * peer (push-fetch.c).
 */
int cmd_push(struct mailbox *mb, int argc, char **argv);
int cmd_fetch(struct mailbox *mb, int argc, char **argv);

/*
 * maildag log --expunged [filters] [-n N], maildag restore, maildag undo
 * and maildag confirm: find removed mail, bring it back, settle a
 * mass-deletion alarm (restore.c).
 */
int cmd_log_expunged(struct mailbox *mb, int argc, char **argv);
int cmd_restore(struct mailbox *mb, int argc, char **argv);
int cmd_undo(struct mailbox *mb, int argc, char **argv);
int cmd_confirm(struct mailbox *mb, int argc, char **argv);

/*
 * Ask maildag-syncd, if one runs, to sync now: it reads the alarms again
 * (a hold settled) and pushes.  Says nothing; 0 when it took the request.
 */
int admin_poke_daemon(const struct mailbox *mb);

/* maildag status exits with this when no maildag-syncd answers. */
#define STATUS_NOT_RUNNING 3

/*
 * The status answer st (control.h; without a daemon, what the repository
 * alone tells, with up false) as OpenMetrics text exposition, appended
 * to out, ending in "# EOF" (metrics.c).
 */
void metrics_format(struct strbuf *out, json_t *st, const struct mailbox *mb,
		    bool up);

/*
 * maildag status [--json | --metrics] [--metrics-file PATH]: ask maildag-syncd how replication goes, per
 * peer; without a daemon, what the repository alone says, and exit
 * STATUS_NOT_RUNNING (status.c).
 */
int cmd_status(struct mailbox *mb, int argc, char **argv);

/*
 * maildag sync: have maildag-syncd push and fetch now; 0 when it took
 * the request, 69 (EX_UNAVAILABLE) when no daemon runs (status.c).
 */
int cmd_sync(struct mailbox *mb, int argc, char **argv);

/*
 * maildag serve --peer NAME: the forced command of peer NAME's key in
 * ~/.ssh/authorized_keys; runs git-upload-pack, or git-receive-pack that
 * may change refs/peers/NAME/mail only, on the user's repository, and
 * nothing else (serve.c).  Returns a sysexits(3) status when it
 * refuses; when it serves, git's status is the process's.
 */
int cmd_serve(struct mailbox *mb, int argc, char **argv);

/*
 * maildag serve --pre-receive: git's pre-receive hook that cmd_serve()
 * installs; needs no configuration.  0 when every ref of the push is the
 * peer's own, else 1.
 */
int cmd_serve_pre_receive(int argc, char **argv);

/*
 * Print the authorized_keys line(s) the other servers need to let this
 * replica push there: one per ssh identity configured, with its public
 * key when it can be read, else a placeholder naming the key.
 */
void serve_print_authorized_keys(FILE *out, const struct mailbox *mb);

#endif
