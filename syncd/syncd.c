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
 *    (worktree_commit), merges what peers pushed or we fetched
 *    (peers_merge) and writes what mail has that the disk has not
 *    (worktree_apply), a bounded slice at a time so deliveries never wait
 *    long for the lock: a full rescan and an apply each stop after SLICE
 *    seconds of work (or APPLY_SLICE messages), let the lock go, and the
 *    next slice runs from the loop SLICE_GAP later, after the control
 *    socket has been answered and a waiting maildag-lda has had its turn;
 *  - every time refs/heads/mail moves (mail_moved), by our commit or by
 *    anyone's, it is pushed to every peer (peers.h) and the hook and
 *    webhooks are told (notify.h); pushes and fetches run in child
 *    processes whose pipes the loop polls;
 *  - the control socket (control.h) answers maildag status, maildag sync
 *    and maildag-lda's quorum waits;
 *  - timers: the retry after a failure (with backoff), a periodic check
 *    of refs/heads/mail and refs/peers/ in case an event was missed, the
 *    hourly tmp/ cleaning, each peer's fetch and retry.
 *
 * It runs in the foreground (systemd --user, Type=simple) and logs to
 * stderr.  SIGTERM and SIGINT stop it between syncs; SIGHUP reloads the
 * configuration (a bad one is refused and the old one kept) and rescans
 * everything.  A crash at any point is repaired by the next start: it
 * rescans the whole Maildir and finishes any pending apply.
 *
 * The control socket's server side is server.c; syncd_p.h is what the
 * two share.
 */
#include "autoconf.h"

#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "control.h"
#include "dovecheck.h"
#include "format.h"
#include "fsutil.h"
#include "log.h"
#include "maint.h"
#include "purged.h"
#include "objects.h"
#include "service.h"
#include "strbuf.h"
#include "syncd_p.h"
#include "xalloc.h"

#define DEBOUNCE_CAP 10		/* a sync waits at most 10 x debounce */
#define APPLY_SLICE 2000	/* message changes per lock hold */
#define SLICE 0.25		/* seconds of work per lock hold */
#define SLICE_GAP 0.02		/* between slices: the lock is free */
#define LOCK_WAIT_MS 5000
#define RETRY_MIN 0.5
#define RETRY_MAX 60.0
#define CHECK_EVERY 60.0	/* look at refs/heads/mail even without events */
#define TMP_EVERY 3600.0
#define MAINT_EVERY 300.0	/* look at the loose objects */
#define TMP_OBJ_MAX_AGE 3600	/* a killed transfer's temporary files */
#define CACHE_MAX ((size_t)4 << 20)	/* libgit2's parsed objects */
#define START_EXTEND 30		/* s more for a start that still moves on */
#define STATUS_EVERY 10.0	/* STATUS= is looked at again */

static struct {
	const char *config;
	bool once;
	int verbose;
} opt;

static void usage(FILE *f)
{
	fputs("usage: maildag-syncd [-c config] [-v|-q] [-1]\n", f);
}

void refresh_hold(struct syncd *s)
{
	bool hold = alarm_holding(repo_path(s->repo));

	if (hold == s->holding)
		return;
	s->holding = hold;
	if (hold)
		log_warn("holding every push back until the mass deletion is "
			 "confirmed or undone (maildag status)");
	else
		log_info("no alarm holds pushes back any more: pushing");
	if (s->peers)
		peers_set_hold(s->peers, hold);
}

/*
 * Weigh the changes that took refs/heads/mail to mail against the alarm
 * thresholds (alarm.h): each alarm is logged as an error with the line
 * that undoes it, recorded for maildag status, and told to the hook and
 * webhooks; one held is held before anything is pushed.
 */
static void weigh_changes(struct syncd *s, const struct oid *mail)
{
	char to[CHANGE_HEX];
	struct alarm *v = NULL;
	size_t n = 0;
	double t0 = loop_now();

	oid_tostr(to, sizeof to, mail);
	if (*s->weighed &&
	    alarm_check(&v, &n, s->repo, s->mb->cfg, s->weighed, to,
			(long long)clock_wall()) < 0)
		log_warn("could not weigh the changes up to %.12s against the "
			 "mass-deletion alarm", to);
	log_debug("weighed the changes up to %.12s in %.1f ms", to,
		  (loop_now() - t0) * 1000);
	memcpy(s->weighed, to, sizeof to);
	/* recorded first: once the log says so, maildag status does too */
	if (n && alarm_record(repo_path(s->repo), v, n) < 0)
		log_warn("could not record the alarm for maildag status");
	for (size_t i = 0; i < n; i++) {
		char *undo = alarm_undo_line(&v[i]);
		char *confirm = alarm_confirm_line(&v[i]);

		log_error("mass deletion in change %.*s (made on %s): %s; undo "
			  "it with '%s'%s%s%s", CHANGE_SHORT, v[i].change,
			  v[i].node, v[i].summary, undo,
			  v[i].held ? "; held back from peers until '" : "",
			  v[i].held ? confirm : "", v[i].held ? "' or undone" : "");
		if (s->notify)
			notify_alarm(s->notify, &v[i]);
		free(undo);
		free(confirm);
	}
	alarms_free(v, n);
	if (n && s->notify)
		loop_timer_at_latest(s->notify_timer, loop_now() + 0.1);
	refresh_hold(s);
}

/*
 * A merge, a forget or a retention purge that grew mail's purged/ set
 * starts a maintenance pass at once: the bytes leave every replica as
 * soon as it hears of the purge (doc/purge.md 3.2).
 */
static void purged_moved(struct syncd *s, const struct oid *mail)
{
	struct oid tree, dir;

	if (repo_commit_tree(&tree, s->repo, mail) < 0 ||
	    purged_dir_id(&dir, s->repo, &tree) < 0 ||
	    oid_equal(&dir, &s->purged_dir))
		return;
	oid_cpy(&s->purged_dir, &dir);
	s->maint_now = true;
	if (s->maint_timer)
		loop_timer_at_latest(s->maint_timer, loop_now());
}

/*
 * refs/heads/mail moved.  Replication (issue 5) hooks in here: weigh the
 * changes (a mass deletion may hold pushes back), push to the peers, run
 * the hook and webhooks.
 */
static void mail_moved(struct syncd *s, const struct oid *old,
		       const struct oid *mail)
{
	log_debug("refs/heads/mail is now %.12s", oid_hex(mail));
	weigh_changes(s, mail);
	purged_moved(s, mail);
	if (s->peers)
		peers_mail_moved(s->peers, mail);
	if (s->notify) {
		notify_change(s->notify, old, mail);
		loop_timer_at_latest(s->notify_timer, loop_now() + 0.1);
	}
}

/* mail is what refs/heads/mail holds now: tell the rest when it moved. */
static void note_mail(struct syncd *s, const struct oid *mail)
{
	struct oid old;

	if (oid_equal(mail, &s->last_mail))
		return;
	oid_cpy(&old, &s->last_mail);
	oid_cpy(&s->last_mail, mail);
	mail_moved(s, &old, mail);
}

static void schedule_sync(struct syncd *s, double when)
{
	/* between slices the socket is answered first (our own commit's
	 * event would run the next slice at once) */
	if (s->slicing && when < loop_now() + SLICE_GAP)
		when = loop_now() + SLICE_GAP;
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
	/* the daemon runs and retries: ready, with what failed in STATUS= */
	if (s->loop && !s->ready && s->vd) {
		s->ready = true;
		virtual_ready(s->vd, s);
	} else if (s->loop && !s->ready) {
		char line[160];
		snprintf(line, sizeof line, "%s failed at start; trying again",
			 what);
		service_status(line);
		service_ready();
		s->ready = true;
	}
}

/*
 * STATUS= for the service manager (service.h): the local state, then
 * each peer's lag in seconds, as maildag status --metrics counts it (0
 * when it holds all our mail, else the time since our last push to it
 * that worked).
 */
static void update_status(struct syncd *s)
{
	struct strbuf b = STRBUF_INIT;
	time_t now = clock_wall();
	json_t *peers, *pe;
	size_t i;

	if (!service_managed() || s->vd)
		return;
	strbuf_addstr(&b, s->retry ? "sync failing, retrying" :
			  s->started ? "starting" : "in sync with the Maildir");
	peers = s->peers ? peers_status(s->peers) : NULL;
	json_array_foreach(peers, i, pe) {
		json_t *unpushed = json_object_get(pe, "unpushed");
		long long lag = control_peer_lag(pe, "push", now);

		strbuf_addf(&b, "%s %s: ", i ? "," : ";",
			    json_string_value(json_object_get(pe, "name")));
		if (lag >= 0)
			strbuf_addf(&b, "lag %lld s", lag);
		else
			strbuf_addstr(&b, "never pushed");
		if (json_is_integer(unpushed) && json_integer_value(unpushed))
			strbuf_addf(&b, " (%lld unpushed)",
				    (long long)json_integer_value(unpushed));
	}
	json_decref(peers);
	service_status(b.buf);
	strbuf_release(&b);
}

static void on_status_timer(void *data)
{
	struct syncd *s = data;

	update_status(s);
	loop_timer_in(s->status_timer, STATUS_EVERY);
}

/*
 * Before applying: is there room on the Maildir's file system for the
 * bytes diff(worktree, mail) writes?  Counted once per mail commit (the
 * slices that follow go towards the same one), before the writer lock is
 * taken when it can be; a shortage is counted again by the next sync
 * (again).  0, or E_TEMP (logged once per sync) to postpone the apply.
 */
static int space_for_apply(struct syncd *s, bool again)
{
	struct oid mail, wt;
	unsigned long long need;
	bool have_wt;
	int r;

	if (again)
		memset(&s->space_short, 0, sizeof s->space_short);
	if (repo_ref_read(&mail, s->repo, REF_MAIL) < 0 ||
	    oid_equal(&mail, &s->space_for))
		return 0;
	if (oid_equal(&mail, &s->space_short))
		return E_TEMP;	/* said already in this sync */
	have_wt = repo_ref_read(&wt, s->repo, REF_WORKTREE) == 0;
	if (have_wt && oid_equal(&mail, &wt))
		return 0;
	if ((r = format_added_bytes(&need, s->repo, &mail,
				    have_wt ? &wt : NULL)) < 0)
		return r;
	if (need && (r = fs_space_check(s->mb->maildir, need,
					 "the messages to apply", NULL)) < 0) {
		oid_cpy(&s->space_short, &mail);
		return r;
	}
	oid_cpy(&s->space_for, &mail);
	return 0;
}

/* The next slice of a rescan or an apply, once others had the lock. */
static void next_slice(struct syncd *s)
{
	/* what a slice freed goes back: the next one need not grow */
	malloc_trim(0);
	s->urgent = true;
	s->slicing = true;
	loop_timer_at(s->sync_timer, loop_now() + SLICE_GAP);
}

/* One sync: commit the disk's changes, then apply mail's. */
static void sync_now(void *data)
{
	struct syncd *s = data;
	struct worktree_result cr, ar;
	double locked, t1, t2;
	int r;

	s->first_event = 0;
	s->urgent = false;
	refresh_hold(s);
	/* the long part of a peer's merge, without the lock */
	if (s->peers)
		peers_check(s->peers);
	/*
	 * and the room for an apply of mail as it is (a merge under the
	 * lock that moves it has its own counted there); a failure is
	 * found again under the lock
	 */
	space_for_apply(s, true);
	s->slicing = false;
	if (repo_lock(s->repo, LOCK_WAIT_MS) < 0) {
		failed(s, "taking the writer lock");
		return;
	}
	locked = loop_now();
	memset(&ar, 0, sizeof ar);
	r = worktree_commit(s->wt, &cr);
	if (r == 0 && cr.more) {
		/* a slice of a rescan: the lock goes, the rest comes next */
		repo_unlock(s->repo);
		log_debug("writer lock held %.0f ms", (loop_now() - locked) * 1000);
		s->retry = 0;
		if (s->started && !s->vd)
			service_extend(START_EXTEND);
		note_mail(s, &cr.mail);
		next_slice(s);
		return;
	}
	/* what peers sent, once the client's changes are in */
	t1 = loop_now();
	if (r == 0 && s->peers && peers_merge(s->peers) < 0)
		r = E_FAIL;
	if (r == 0)
		r = space_for_apply(s, false);
	t2 = loop_now();
	if (r == 0)
		r = worktree_apply(s->wt, APPLY_SLICE, &ar);
	repo_unlock(s->repo);
	log_debug("writer lock held %.0f ms (commit %.0f, merge %.0f, "
		  "apply %.0f)", (loop_now() - locked) * 1000,
		  (t1 - locked) * 1000, (t2 - t1) * 1000, (loop_now() - t2) * 1000);
	if (r < 0) {
		struct oid m;
		watch_check(s->watch);
		failed(s, "sync");
		/* what others committed (a delivery) is pushed all the same */
		if (repo_ref_read(&m, s->repo, REF_MAIL) == 0)
			note_mail(s, &m);
		return;
	}
	if (s->retry)
		log_info("sync works again");
	s->retry = 0;
	if (s->started && !ar.more) {
		if (s->vd)
			log_debug("in sync with the Maildir, %.0f ms after start",
				  (loop_now() - s->started) * 1000);
		else
			log_info("in sync with the Maildir, %.0f ms after start; "
				 "watching %d directories",
				 (loop_now() - s->started) * 1000,
				 watch_count(s->watch));
		s->started = 0;
		if (!s->ready && s->vd) {
			s->ready = true;
			virtual_ready(s->vd, s);
		} else if (!s->ready) {
			update_status(s);
			service_ready();
			s->ready = true;
		}
	} else if (s->started && !s->vd) {
		service_extend(START_EXTEND);
	}
	note_mail(s, &ar.mail);
	if (ar.more)
		next_slice(s);
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
	if (what & WATCH_PEERS)
		peers_refs_changed(s->peers);
	if (what & (WATCH_MAIL | WATCH_PEERS))
		schedule_sync(s, loop_now());
}

static void on_inotify(void *data, int fd, short revents)
{
	struct syncd *s = data;
	unsigned what = 0;

	(void)fd;
	(void)revents;
	watch_read(s->watch, &what);
	syncd_took_events(s, what);
}

void syncd_took_events(void *data, unsigned what)
{
	struct syncd *s = data;
	const char *ctx = log_get_context();

	/* another mailbox's read may bring s's events: s's lines are s's */
	if (s->vd)
		log_set_context(s->mb->cfg->address);
	if (what & WATCH_PEERS) {
		peers_refs_changed(s->peers);
		schedule_sync(s, loop_now());
	}
	if (what & WATCH_MAIL) {
		struct oid m;
		/*
		 * another's commit (maildag-lda's delivery): to the peers
		 * now, not after our sync (commit, merge, apply) has run;
		 * a quorum delivery waits for that push
		 */
		if (!s->started && repo_ref_read(&m, s->repo, REF_MAIL) == 0)
			note_mail(s, &m);
		schedule_sync(s, loop_now());
	}
	if (what & WATCH_CHANGED)
		schedule_debounced(s);
	log_set_context(ctx);
}

static void watch_folder_fn(void *data, const char *folder, bool on_disk)
{
	watch_folder(data, folder, on_disk);
}

/* Any doubt: a missed event must not leave mail unapplied for long. */
static void check_mail(void *data)
{
	struct syncd *s = data;
	struct oid m;

	/*
	 * the root and the repository's directories get their watches back,
	 * folders the watch limit left unwatched are marked (and looked at
	 * a slice at a time, as any marked folders)
	 */
	watch_check(s->watch);
	if (worktree_is_dirty(s->wt))
		schedule_debounced(s);

	if (repo_ref_read(&m, s->repo, REF_MAIL) == 0 &&
	    !oid_equal(&m, &s->last_mail))
		schedule_sync(s, loop_now());
	/* a peer's push whose event was missed */
	peers_refs_changed(s->peers);
	schedule_sync(s, loop_now() + s->debounce);
	loop_timer_in(s->check_timer, CHECK_EVERY);
}

/* The hourly tmp/ cleaning, in slices: 30,000 folders take a while. */
static void clean_tmp(void *data)
{
	struct syncd *s = data;

	if (!s->tmp_folders &&
	    layout_list_dirs(&s->tmp_folders, &s->tmp_n,
			     s->mb->maildir) < 0) {
		loop_timer_in(s->tmp_timer, TMP_EVERY);
		return;
	}
	s->tmp_pos = s->tmp_pos < s->tmp_n ? s->tmp_pos : 0;
	layout_clean_tmp_some(s->mb->maildir, s->tmp_folders, s->tmp_n,
			      &s->tmp_pos, LAYOUT_TMP_MAX_AGE, SLICE / 2);
	if (s->tmp_pos < s->tmp_n) {
		loop_timer_in(s->tmp_timer, SLICE_GAP);
		return;
	}
	layout_list_free(s->tmp_folders, s->tmp_n);
	s->tmp_folders = NULL;
	s->tmp_n = s->tmp_pos = 0;
	loop_timer_in(s->tmp_timer, TMP_EVERY);
}

static void on_stop(void *data, int sig)
{
	struct syncd *s = data;

	log_info("signal %d: stopping", sig);
	service_stopping();
	loop_stop(s->loop);
}

/* Only the configured peers' refs/peers/<node>/ are watched. */
static void watch_peers(struct syncd *s, const struct config *cfg)
{
	char **names = xcalloc(cfg->npeers ? cfg->npeers : 1, sizeof *names);
	size_t n = 0;

	for (size_t i = 0; i < cfg->npeers; i++)
		if (strcmp(cfg->peers[i].name, cfg->node))
			names[n++] = cfg->peers[i].name;
	watch_set_peers(s->watch, names, n);
	free(names);
}

/*
 * SIGHUP: read the configuration again.  A file that does not load, or
 * that moves the Maildir or the repository (that needs a restart), is
 * refused and the old configuration stays.
 */
static void reload_config(struct syncd *s)
{
	struct config *cfg, *old = s->mb->cfg;
	int r;

	r = config_load(&cfg, s->mb->user, s->mb->uid, s->mb->home,
			opt.config, NULL, 0);
	if (r == 0 && old->address &&
	    (!config_is_virtual(cfg) ||
	     (r = config_select_mailbox(cfg, old->address)) < 0)) {
		config_free(cfg);
		r = E_INVALID;
	}
	if (r == 0 && old->address)
		config_virtual_forget(cfg);
	if (r < 0) {
		log_error("reloading the configuration failed: keeping the "
			  "old one");
		return;
	}
	if (strcmp(cfg->maildir, old->maildir) ||
	    strcmp(cfg->repository, old->repository) ||
	    strcmp(cfg->node, old->node)) {
		log_error("the new configuration changes the Maildir, the "
			  "repository or the node name: that needs a restart; "
			  "keeping the old one");
		config_free(cfg);
		return;
	}
	s->mb->cfg = cfg;
	s->mb->maildir = cfg->maildir;
	s->mb->repository = cfg->repository;
	s->debounce = cfg->debounce_ms / 1000.0;
	format_use_config(cfg);
	peers_set_config(s->peers, cfg);
	watch_peers(s, cfg);
	notify_set_config(s->notify, cfg);
	config_free(old);
	log_info("configuration reloaded: %zu peers", cfg->npeers);
}

void syncd_reload(struct syncd *s)
{
	reload_config(s);
	worktree_dirty_all(s->wt);
	watch_check(s->watch);
	peers_refs_changed(s->peers);
	schedule_sync(s, loop_now());
}

static void on_hup(void *data, int sig)
{
	struct syncd *s = data;

	(void)sig;
	service_reloading();
	reload_config(s);
	log_info("rescanning everything");
	worktree_dirty_all(s->wt);
	watch_check(s->watch);
	/* a peer watched again may have pushed while it was not */
	peers_refs_changed(s->peers);
	schedule_sync(s, loop_now());
	service_ready();
}

static void on_notify_timer(void *data)
{
	struct syncd *s = data;
	double again = notify_poll(s->notify);

	if (again > 0)
		loop_timer_in(s->notify_timer, again);
}

static void maintain(void *data)
{
	struct syncd *s = data;
	int st;

	if (s->maint_pid > 0) {
		pid_t r = waitpid(s->maint_pid, &st, WNOHANG);
		if (r == 0) {
			loop_timer_in(s->maint_timer, 10);
			return;
		}
		if (r == s->maint_pid && !(WIFEXITED(st) && !WEXITSTATUS(st)))
			log_warn("the maintenance pass failed");
		else if (r == s->maint_pid)
			/* let go of the packs it removed, and their bytes */
			repo_reload_objects(s->repo);
		log_debug("maintenance pass (pid %d) ended", (int)s->maint_pid);
		s->maint_pid = 0;
	}
	objects_clean_tmp(repo_path(s->repo), TMP_OBJ_MAX_AGE);
	s->maint_pid = maint_start(repo_path(s->repo), s->mb->cfg,
				   s->maint_now);
	s->maint_now = false;
	if (s->maint_pid < 0)
		s->maint_pid = 0;
	loop_timer_in(s->maint_timer, s->maint_pid ? 10 : MAINT_EVERY);
}

static void want_sync(void *data)
{
	struct syncd *s = data;

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
	/* many mailboxes: virtual.c runs them, s->mb is the user's */
	if (config_is_virtual(s->mb->cfg))
		return 0;
	return syncd_open(s, opt.once);
}

int syncd_open(struct syncd *s, bool once)
{
	size_t damaged;
	int r;

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
	/* format 2 is taken exactly when this repository is format 2 */
	if (format_use_repo(s->repo) < 0)
		return EX_TEMPFAIL;
	/*
	 * a rescan of 10,000 folders reads many small trees once each; the
	 * root tree is read for every lookup, and is as large as
	 * folder_limit entries of at most 283 bytes: kept parsed, not
	 * inflated again each time
	 */
	repo_set_cache_max(CACHE_MAX);
	repo_cache_trees_up_to((size_t)(s->mb->cfg->folder_limit + 8) * 283);
	/* what a crash cut short, before a commit could reuse it */
	if (objects_check_after_boot(s->repo, &damaged) < 0)
		log_warn("could not check every loose object after a restart");
	{
		/* alarms weigh what comes from now on (alarm.h) */
		struct oid m;
		if (repo_ref_read(&m, s->repo, REF_MAIL) == 0)
			oid_tostr(s->weighed, sizeof s->weighed, &m);
	}
	s->wt = worktree_new(s->repo, s->mb->maildir, s->mb->cfg->node);
	worktree_set_uid_slot(s->wt, s->mb->cfg->uid_slot);
	if (!once)
		worktree_set_slice(s->wt, SLICE);
	/* a start is a doubt: whatever happened while we were away */
	worktree_dirty_all(s->wt);
	if (s->vd)
		log_debug("Maildir '%s', repository '%s'", s->mb->maildir,
			  s->mb->repository);
	else
		log_info("maildag-syncd %s: Maildir '%s', repository '%s'",
			 PACKAGE_VERSION, s->mb->maildir, s->mb->repository);
	return 0;
}

/* -1: one full sync (and any apply), then exit. */
int syncd_once(struct syncd *s)
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
	layout_clean_tmp_all(s->mb->maildir, LAYOUT_TMP_MAX_AGE);
	return r < 0 ? EX_TEMPFAIL : 0;
}

int syncd_watch(struct syncd *s)
{
	/* watch before the first scan, so nothing slips between them */
	if (watch_new(&s->watch, s->mb->maildir, repo_path(s->repo), s->wt) < 0)
		return EX_OSERR;
	watch_peers(s, s->mb->cfg);
	worktree_set_poll(s->wt, poll_events, s);
	/* each folder is watched as the start's rescan reaches it */
	worktree_set_folder_fn(s->wt, watch_folder_fn, s->watch);
	if (s->vd) {
		/* the one descriptor is the daemon's (virtual.c) */
		watch_set_events_fn(s->watch, syncd_took_events, s);
		return 0;
	}
	log_info("watching %d directories; the folders as the rescan "
		 "reaches them", watch_count(s->watch));
	loop_add_fd(s->loop, watch_fd(s->watch), POLLIN, on_inotify, s);
	return 0;
}

void syncd_attach(struct syncd *s, double spread)
{
	s->peers = peers_new(s->loop, s->repo, s->mb->cfg, want_sync, s);
	/* an alarm held before a restart holds still */
	s->holding = alarm_holding(repo_path(s->repo));
	if (s->holding)
		log_warn("holding every push back until the mass deletion is "
			 "confirmed or undone (maildag status)");
	peers_set_hold(s->peers, s->holding);
	{
		char *state = repo_state_path(s->repo, "webhooks.json");
		struct oid m;
		/* a virtual mailbox is known to hooks by its address */
		s->notify = notify_new(s->mb->cfg, s->address ? s->address :
				       s->mb->user, state);
		free(state);
		if (repo_ref_read(&m, s->repo, REF_MAIL) == 0)
			notify_start(s->notify, &m);
	}
	s->notify_timer = loop_timer_new(s->loop, on_notify_timer, s);
	/* what a webhook missed while the daemon was down (notify_start) */
	loop_timer_in(s->notify_timer, 0.1);
	s->maint_timer = loop_timer_new(s->loop, maintain, s);
	loop_timer_in(s->maint_timer, 5 + spread * MAINT_EVERY);
	s->sync_timer = loop_timer_new(s->loop, sync_now, s);
	s->check_timer = loop_timer_new(s->loop, check_mail, s);
	s->tmp_timer = loop_timer_new(s->loop, clean_tmp, s);
	loop_timer_in(s->sync_timer, 0);
	loop_timer_in(s->check_timer, spread ? spread * CHECK_EVERY : CHECK_EVERY);
	/* after the first sync has begun: a start has enough to do */
	loop_timer_in(s->tmp_timer, 1 + spread * TMP_EVERY);
}

void syncd_release(struct syncd *s)
{
	peers_free(s->peers);
	notify_free(s->notify);
	watch_free(s->watch);
	layout_list_free(s->tmp_folders, s->tmp_n);
	worktree_free(s->wt);
	repo_free(s->repo);
	mailbox_free(s->mb);
	free(s->address);
	memset(s, 0, sizeof *s);
	s->control_fd = -1;
}

int main(int argc, char **argv)
{
	struct syncd s;
	int status;

	memset(&s, 0, sizeof s);
	s.control_fd = -1;
	s.started = loop_now();
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	parse_args(argc, argv);
	log_init("maildag-syncd", LOG_TO_STDERR,
		 opt.verbose < 0 ? LOG_LVL_WARN :
		 opt.verbose > 0 ? LOG_LVL_DEBUG : LOG_LVL_INFO);

	if ((status = start(&s)) != 0)
		goto done;
	if (config_is_virtual(s.mb->cfg)) {
		status = virtual_main(s.mb, opt.config, opt.once);
		s.mb = NULL;
		goto done;
	}
	if (opt.once) {
		status = syncd_once(&s);
		goto done;
	}
	s.loop = loop_new();
	if ((status = syncd_watch(&s)) != 0)
		goto done;
	if (loop_signal(s.loop, SIGTERM, on_stop, &s) < 0 ||
	    loop_signal(s.loop, SIGINT, on_stop, &s) < 0 ||
	    loop_signal(s.loop, SIGHUP, on_hup, &s) < 0) {
		status = EX_OSERR;
		goto done;
	}
	s.control_fd = control_listen(s.mb, &s.control_path);
	if (s.control_fd == E_EXISTS) {
		log_error("another maildag-syncd runs for this mailbox");
		status = EX_TEMPFAIL;
		goto done;
	}
	if (s.control_fd < 0)
		log_warn("no control socket: maildag status and quorum "
			 "delivery will not reach this daemon");
	else
		loop_add_fd(s.loop, s.control_fd, POLLIN, server_on_accept, &s);
	syncd_attach(&s, 0);
	/* only format 2 replicas show one IMAP mailbox a client can move in */
	if (format_repo_version() == 2)
		s.dovecheck = dovecheck_start(s.loop, s.mb->cfg);
	service_init(s.loop);
	if (service_managed()) {
		s.status_timer = loop_timer_new(s.loop, on_status_timer, &s);
		loop_timer_in(s.status_timer, STATUS_EVERY);
	}
	status = loop_run(s.loop) < 0 ? EX_OSERR : 0;
done:
	dovecheck_free(s.dovecheck);
	service_free();
	if (s.control_fd >= 0)
		control_unlisten(s.control_fd, s.control_path);
	free(s.control_path);
	{
		struct loop *l = s.loop;
		syncd_release(&s);
		loop_free(l);
	}
	repo_global_shutdown();
	return status;
}
