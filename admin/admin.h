/*
 * admin: the admin tool `maildag`, a file per verb as git's builtin/.
 *
 * maildag.c reads the global options, refuses root for the verbs that
 * write, opens the user's mailbox and dispatches from one table to a
 * cmd_<verb>() of its own file:
 *
 *	init.c		init: create the repository, commit the Maildir
 *	log.c		log, and log --expunged (select.c's filters)
 *	restore.c	restore and undo: bring removed mail back
 *	confirm.c	confirm: settle a mass-deletion alarm
 *	fsck.c		fsck: the repository against the format, the
 *			Maildir against the repository
 *	merge.c		merge: the Maildir merge of two commits
 *	push-fetch.c	push and fetch: one operation, two directions
 *	status.c	status (metrics.c: its OpenMetrics form)
 *	sync.c		sync, and the daemon's control socket for others
 *	serve.c		serve: the forced command of a peer's ssh key
 *	upgrade.c	upgrade: format 1 to format 2
 *
 * Each verb takes the user's mailbox and its own argv (argv[0] is the
 * verb) and returns a sysexits(3) status, or what its manual page says.
 * The tool speaks in Maildir terms through common/; it never calls
 * libgit2 (t/t0010-one-home.sh holds it to that).
 */
#ifndef ADMIN_H
#define ADMIN_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "expunged.h"
#include "mailbox.h"
#include "repo.h"
#include "strbuf.h"

/* Exit status when nothing matched (restore, undo, confirm). */
#define ADMIN_NOTHING 1

/* --- the tool (maildag.c) ------------------------------------------------ */

/* The usage text, to f. */
void admin_usage(FILE *f);

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

/* --- the verbs ------------------------------------------------------------ */

/*
 * maildag init: create the repository, then commit the Maildir the way
 * maildag-syncd commits it (init.c).
 */
int cmd_init(struct mailbox *mb, int argc, char **argv);

/*
 * maildag log [-n N]: the mailbox history in mail terms; with --expunged
 * [filters] [-n N], the messages removed from the mailbox (log.c).
 */
int cmd_log(struct mailbox *mb, int argc, char **argv);
int cmd_log_expunged(struct mailbox *mb, int argc, char **argv);

/*
 * maildag restore and maildag undo: bring removed mail back, by filters
 * or one change's worth (restore.c); maildag confirm: settle a
 * mass-deletion alarm (confirm.c).
 */
int cmd_restore(struct mailbox *mb, int argc, char **argv);
int cmd_undo(struct mailbox *mb, int argc, char **argv);
int cmd_confirm(struct mailbox *mb, int argc, char **argv);

/*
 * maildag upgrade: make a format 1 repository format 2, one commit
 * (upgrade.c, common/upgrade.h).
 */
int cmd_upgrade(struct mailbox *mb, int argc, char **argv);

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

/* maildag status exits with this when no maildag-syncd answers. */
#define STATUS_NOT_RUNNING 3

/*
 * maildag status [--json | --metrics] [--metrics-file PATH]: ask
 * maildag-syncd how replication goes, per peer; without a daemon, what
 * the repository alone says, and exit STATUS_NOT_RUNNING (status.c).
 */
int cmd_status(struct mailbox *mb, int argc, char **argv);

/*
 * The status answer st (control.h; without a daemon, what the repository
 * alone tells, with up false) appended to out: as OpenMetrics text
 * exposition, ending in "# EOF", or without openmetrics as the Prometheus
 * text format that node_exporter's textfile collector reads (metrics.c).
 */
void metrics_format(struct strbuf *out, json_t *st, const struct mailbox *mb,
		    bool up, bool openmetrics);
/*
 * The same for every virtual mailbox of a daemon's status answer
 * ("mailboxes", control.h): each family once, a sample set per mailbox,
 * labelled with its repository's path.  Selects each mailbox in mb->cfg
 * in turn (config_select_mailbox()).
 */
void metrics_format_all(struct strbuf *out, json_t *boxes, struct mailbox *mb,
			bool openmetrics);

/* A string of a daemon's answer, or NULL; control characters become '?'.
 * The caller frees it (status.c). */
char *admin_json_string(json_t *obj, const char *key);

/*
 * maildag maintain: one maintenance pass now (maintain.c);
 * admin_print_maintenance() is its one-line summary, which status and
 * init print too.
 */
struct objects_maint_result;
int cmd_maintain(struct mailbox *mb, int argc, char **argv);
int cmd_forget(struct mailbox *mb, int argc, char **argv);
void admin_print_maintenance(FILE *f, const struct objects_maint_result *r);
/*
 * For maildag status: {"packs", "loose", "bytes" (now), "last": what the
 * last pass recorded (absent when none ran)}, and its text.
 */
json_t *admin_maintenance_json(const struct mailbox *mb);
void admin_print_maintenance_status(json_t *m, time_t now);

/*
 * maildag sync: have maildag-syncd push and fetch now; 0 when it took
 * the request, 69 (EX_UNAVAILABLE) when no daemon runs (sync.c).
 */
int cmd_sync(struct mailbox *mb, int argc, char **argv);

/*
 * Ask the daemon {"cmd": cmd}.  0 with *ans (the caller's to
 * json_decref); or the failure, with *connected telling a connection
 * that failed (E_NOTFOUND: no daemon) from a request that did (sync.c).
 */
int admin_ask(const struct mailbox *mb, const char *cmd, json_t **ans,
	      bool *connected);

/*
 * Ask maildag-syncd, if one runs, to sync now: it reads the alarms again
 * (a hold settled) and pushes.  Says nothing; 0 when it took the request.
 */
int admin_poke_daemon(const struct mailbox *mb);

/*
 * maildag serve --peer NAME: the forced command of peer NAME's key in
 * ~/.ssh/authorized_keys; runs git-upload-pack, or git-receive-pack that
 * may change refs/peers/NAME/mail only, on the user's repository, and
 * nothing else (serve.c).  Returns a sysexits(3) status when it
 * refuses; when it serves, git's status is the process's.
 */
int cmd_serve(struct mailbox *mb, int argc, char **argv);

/*
 * maildag serve in session mode (serve_session.c): the peer sent
 * "maildag-session 1"; serve the session on stdin and stdout until the
 * peer ends it.  A sysexits(3) status.
 */
int serve_session(struct mailbox *mb, const char *peer,
		  unsigned long long max_input);

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

/* --- what log --expunged and restore select by (select.c) ---------------- */

struct selection {
	struct expunged_filter f;
	char *folder;
	const char *before, *at;
	bool dry_run;
	bool any;		/* some filter was given */
};

/* The long options' codes, past any short option's. */
enum {
	OPT_FOLDER = 256, OPT_FROM, OPT_SUBJECT, OPT_MID, OPT_SINCE, OPT_UNTIL,
	OPT_BEFORE, OPT_AT, OPT_EXPUNGED,
};

/* The long options of a selection, for getopt_long(3). */
extern const struct option admin_select_opts[];

/* One option of a selection; 0, or EX_USAGE after saying why. */
int admin_select_opt(struct selection *s, int c, const char *arg);

/*
 * A time: "@<seconds>", "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]" or
 * "YYYY-MM-DDTHH:MM[:SS]", local time.  0 or -1.
 */
int admin_parse_time(long long *out, const char *s);

#endif
