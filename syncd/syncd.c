/*
 * maildag-syncd: the per-user daemon (DESIGN sections 2 and 5).
 *
 * One poll loop (loop.h) runs everything:
 *  - inotify events (watch.h) mark what changed on disk; after a quiet
 *    spell of debounce_ms (at most DEBOUNCE_CAP times that after the
 *    first event) a sync runs;
 *  - refs/heads/mail moving (maildag-lda, `maildag merge`, a peer) runs a
 *    sync at once;
 *  - a sync takes the writer lock, commits what the mail client did
 *    (worktree_commit) and writes what mail has that the disk has not
 *    (worktree_apply), a bounded slice at a time so deliveries never wait
 *    long for the lock;
 *  - timers: the retry after a failure (with backoff), a periodic check
 *    of refs/heads/mail in case an event was missed, the hourly tmp/
 *    cleaning.
 * Replication (issue 5) plugs in at mail_moved(): every time
 * refs/heads/mail moves, by our commit or by anyone's.
 *
 * It runs in the foreground (systemd --user, Type=simple) and logs to
 * stderr.  SIGTERM and SIGINT stop it between syncs; SIGHUP rescans
 * everything.  A crash at any point is repaired by the next start: it
 * rescans the whole Maildir and finishes any pending apply.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "loop.h"
#include "mailbox.h"
#include "repo.h"
#include "watch.h"
#include "worktree.h"
#include "xalloc.h"

#define DEBOUNCE_CAP 10		/* a sync waits at most 10 x debounce */
#define APPLY_SLICE 2000	/* message changes per lock hold */
#define LOCK_WAIT_MS 5000
#define RETRY_MIN 0.5
#define RETRY_MAX 60.0
#define CHECK_EVERY 60.0	/* look at refs/heads/mail even without events */
#define TMP_EVERY 3600.0
#define TMP_MAX_AGE (36 * 3600)

static struct {
	const char *config;
	bool once;
	int verbose;
} opt;

struct syncd {
	struct mailbox *mb;
	struct repo *repo;
	struct worktree *wt;
	struct watch *watch;
	struct loop *loop;
	struct loop_timer *sync_timer, *check_timer, *tmp_timer;
	double debounce;	/* seconds */
	double first_event;	/* of the batch waiting, 0 when none */
	double retry;		/* current backoff, 0 when healthy */
	bool urgent;		/* a sync is due now: do not debounce it */
	double started;		/* loop_now() at start, until the first sync */
	git_oid last_mail;
};

static void usage(FILE *f)
{
	fputs("usage: maildag-syncd [-c config] [-v|-q] [-1]\n", f);
}

/*
 * refs/heads/mail moved.  Replication (issue 5) hooks in here: push to
 * the peers, run the hook and webhooks.
 */
static void mail_moved(struct syncd *s, const git_oid *mail)
{
	log_debug("refs/heads/mail is now %.12s", git_oid_tostr_s(mail));
}

static void schedule_sync(struct syncd *s, double when)
{
	if (when <= loop_now())
		s->urgent = true;
	loop_timer_at_latest(s->sync_timer, when);
}

/* After disk events: wait for a quiet spell, but not forever. */
static void schedule_debounced(struct syncd *s)
{
	double now = loop_now(), when;

	if (!s->first_event)
		s->first_event = now;
	when = now + s->debounce;
	if (when > s->first_event + DEBOUNCE_CAP * s->debounce)
		when = s->first_event + DEBOUNCE_CAP * s->debounce;
	/* a later event moves the sync later, within the cap */
	if (!s->retry && !s->urgent)
		loop_timer_at(s->sync_timer, when);
}

static void failed(struct syncd *s, const char *what)
{
	s->retry = s->retry ? s->retry * 2 : RETRY_MIN;
	if (s->retry > RETRY_MAX)
		s->retry = RETRY_MAX;
	log_warn("%s failed; trying again in %.1f s", what, s->retry);
	loop_timer_in(s->sync_timer, s->retry);
}

/* One sync: commit the disk's changes, then apply mail's. */
static void sync_now(void *data)
{
	struct syncd *s = data;
	struct worktree_result cr, ar;
	int r;

	s->first_event = 0;
	s->urgent = false;
	if (repo_lock(s->repo, LOCK_WAIT_MS) < 0) {
		failed(s, "taking the writer lock");
		return;
	}
	r = worktree_commit(s->wt, &cr);
	if (r == 0)
		r = worktree_apply(s->wt, APPLY_SLICE, &ar);
	repo_unlock(s->repo);
	if (r < 0) {
		watch_sync_folders(s->watch);
		failed(s, "sync");
		return;
	}
	if (s->retry)
		log_info("sync works again");
	s->retry = 0;
	if (s->started) {
		log_info("in sync with the Maildir, %.0f ms after start",
			 (loop_now() - s->started) * 1000);
		s->started = 0;
	}
	if (!git_oid_equal(&ar.mail, &s->last_mail)) {
		git_oid_cpy(&s->last_mail, &ar.mail);
		mail_moved(s, &ar.mail);
	}
	if (ar.more)
		schedule_sync(s, loop_now());
	else if (ar.skipped)
		/* the client was busy with those messages: let it finish */
		schedule_sync(s, loop_now() + s->debounce);
	else if (worktree_is_dirty(s->wt))
		schedule_debounced(s);
	if (worktree_deferred_due(s->wt))
		schedule_sync(s, worktree_deferred_due(s->wt));
}

/* The worktree reads what happened while it looks at the disk. */
static void poll_events(void *data)
{
	struct syncd *s = data;
	unsigned what = 0;

	watch_read(s->watch, &what);
	if (what & WATCH_MAIL)
		schedule_sync(s, loop_now());
}

static void on_inotify(void *data, int fd, short revents)
{
	struct syncd *s = data;
	unsigned what = 0;

	(void)fd;
	(void)revents;
	watch_read(s->watch, &what);
	if (what & WATCH_MAIL)
		schedule_sync(s, loop_now());
	if (what & WATCH_CHANGED)
		schedule_debounced(s);
}

/* Any doubt: a missed event must not leave mail unapplied for long. */
static void check_mail(void *data)
{
	struct syncd *s = data;
	git_oid m;

	/* a directory that came back (or was missed) gets its watch */
	watch_sync_folders(s->watch);
	if (worktree_is_dirty(s->wt))
		schedule_debounced(s);

	if (repo_ref_read(&m, s->repo, REF_MAIL) == 0 &&
	    !git_oid_equal(&m, &s->last_mail))
		schedule_sync(s, loop_now());
	loop_timer_in(s->check_timer, CHECK_EVERY);
}

static void clean_tmp(void *data)
{
	struct syncd *s = data;

	worktree_clean_tmp(s->mb->maildir, TMP_MAX_AGE);
	loop_timer_in(s->tmp_timer, TMP_EVERY);
}

static void on_stop(void *data, int sig)
{
	struct syncd *s = data;

	log_info("signal %d: stopping", sig);
	loop_stop(s->loop);
}

static void on_hup(void *data, int sig)
{
	struct syncd *s = data;

	(void)sig;
	log_info("rescanning everything");
	worktree_dirty_all(s->wt);
	watch_sync_folders(s->watch);
	schedule_sync(s, loop_now());
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "once", no_argument, NULL, '1' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:vq1Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt.config = optarg; break;
		case 'v': opt.verbose++; break;
		case 'q': opt.verbose = -1; break;
		case '1': opt.once = true; break;
		case 'V':
			puts(PACKAGE_STRING);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(EX_USAGE);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(EX_USAGE);
	}
}

/* Everything up to the loop; an exit status on failure, else 0. */
static int start(struct syncd *s)
{
	int r;

	if (getuid() == 0 || geteuid() == 0) {
		log_error("refusing to run as root: run maildag-syncd as the "
			  "mailbox's user");
		return EX_USAGE;
	}
	r = mailbox_open(&s->mb, opt.config, 0);
	if (r == E_NOTFOUND)
		return EX_NOUSER;
	if (r < 0)
		return EX_CONFIG;
	s->debounce = s->mb->cfg->debounce_ms / 1000.0;
	if (!path_exists(s->mb->maildir) && !s->mb->cfg->create) {
		log_error("Maildir '%s' does not exist", s->mb->maildir);
		return EX_NOUSER;
	}
	if (mailbox_create_folder(s->mb, "") < 0)
		return EX_TEMPFAIL;
	if (check_safe_owner(s->mb->maildir, s->mb->uid) < 0 ||
	    (path_exists(s->mb->repository) &&
	     check_safe_owner(s->mb->repository, s->mb->uid) < 0))
		return EX_NOPERM;
	r = repo_open(&s->repo, s->mb->repository,
		      s->mb->cfg->create ? REPO_CREATE : 0);
	if (r == E_NOTFOUND) {
		log_error("repository '%s' does not exist", s->mb->repository);
		return EX_NOUSER;
	}
	if (r < 0)
		return EX_TEMPFAIL;
	s->wt = worktree_new(s->repo, s->mb->maildir, s->mb->cfg->node);
	/* a start is a doubt: whatever happened while we were away */
	worktree_dirty_all(s->wt);
	log_info("maildag-syncd %s: Maildir '%s', repository '%s'",
		 PACKAGE_VERSION, s->mb->maildir, s->mb->repository);
	return 0;
}

/* -1: one full sync (and any apply), then exit. */
static int run_once(struct syncd *s)
{
	struct worktree_result cr, ar;
	int r;

	if (repo_lock(s->repo, 60000) < 0)
		return EX_TEMPFAIL;
	r = worktree_commit(s->wt, &cr);
	do {
		if (r == 0)
			r = worktree_apply(s->wt, APPLY_SLICE, &ar);
	} while (r == 0 && ar.more);
	repo_unlock(s->repo);
	worktree_clean_tmp(s->mb->maildir, TMP_MAX_AGE);
	return r < 0 ? EX_TEMPFAIL : 0;
}

int main(int argc, char **argv)
{
	struct syncd s;
	int status;

	memset(&s, 0, sizeof s);
	s.started = loop_now();
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	parse_args(argc, argv);
	log_init("maildag-syncd", LOG_TO_STDERR,
		 opt.verbose < 0 ? LOG_LVL_WARN :
		 opt.verbose > 0 ? LOG_LVL_DEBUG : LOG_LVL_INFO);

	if ((status = start(&s)) != 0)
		goto done;
	if (opt.once) {
		status = run_once(&s);
		goto done;
	}
	s.loop = loop_new();
	/* watch before the first scan, so nothing slips between them */
	if (watch_new(&s.watch, s.mb->maildir, s.repo->path, s.wt) < 0) {
		status = EX_OSERR;
		goto done;
	}
	worktree_set_poll(s.wt, poll_events, &s);
	log_info("watching %d directories", watch_count(s.watch));
	loop_add_fd(s.loop, watch_fd(s.watch), POLLIN, on_inotify, &s);
	if (loop_signal(s.loop, SIGTERM, on_stop, &s) < 0 ||
	    loop_signal(s.loop, SIGINT, on_stop, &s) < 0 ||
	    loop_signal(s.loop, SIGHUP, on_hup, &s) < 0) {
		status = EX_OSERR;
		goto done;
	}
	s.sync_timer = loop_timer_new(s.loop, sync_now, &s);
	s.check_timer = loop_timer_new(s.loop, check_mail, &s);
	s.tmp_timer = loop_timer_new(s.loop, clean_tmp, &s);
	loop_timer_in(s.sync_timer, 0);
	loop_timer_in(s.check_timer, CHECK_EVERY);
	loop_timer_in(s.tmp_timer, 0);
	status = loop_run(s.loop) < 0 ? EX_OSERR : 0;
done:
	watch_free(s.watch);
	loop_free(s.loop);
	worktree_free(s.wt);
	repo_free(s.repo);
	mailbox_free(s.mb);
	git_libgit2_shutdown();
	return status;
}
