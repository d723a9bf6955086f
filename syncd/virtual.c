/*
 * virtual: one maildag-syncd for every virtual mailbox of its user
 * ("virtual" in maildag.conf(5); config.h).
 *
 * Each mailbox is a struct syncd of its own, as the one mailbox of a
 * user is (syncd.c: repository, worktree, watches, peers, hooks, timers),
 * all run by one loop.  What they share is the daemon's:
 *  - one inotify descriptor (watch.h: libinotifytools is global), polled
 *    here; watch_read() on any mailbox hands each event to its owner;
 *  - one control socket, the user's (control.h): a request names its
 *    mailbox with "mailbox", else status and sync are for them all;
 *  - the signals: SIGTERM and SIGINT stop, SIGHUP reloads the
 *    configuration for every mailbox and looks for new ones;
 *  - what systemd is told (service.h): READY=1 once every mailbox had its
 *    first sync, STATUS= a count of mailboxes and of failing ones.
 * Mailboxes are the listed ones, or those the patterns find on disk, and
 * are looked for again every SCAN_EVERY seconds and on SIGHUP; one that
 * a request names (a first delivery made it) is opened at once.  One
 * that fails to open is logged and tried again at the next look.  A
 * mailbox is never dropped while the daemon runs (a restart does that).
 *
 * Periodic work (the minute's check, maintenance, tmp/ cleaning) is
 * spread over each period by the mailbox's place in the list, so a
 * thousand mailboxes take turns instead of waking together.
 */
#include "autoconf.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <unistd.h>

#include "control.h"
#include "fsutil.h"
#include "log.h"
#include "service.h"
#include "strbuf.h"
#include "syncd_p.h"
#include "xalloc.h"

#define SCAN_EVERY 60.0		/* s: look for new mailboxes */
#define OPEN_SLICE 0.1		/* s of opening mailboxes per loop turn */
#define STATUS_EVERY 10.0
/*
 * s: how often every mailbox's repository lets go of libgit2's state
 * (repo_release).  A thousand open object databases kept a thousand pack
 * indexes mapped, and every fork of a push, fetch or check child copied
 * those mappings (fork and exit: 0.1 ms for a small process, 0.5 ms with
 * a 15 MB heap, 1.5-2.2 ms with 1,000 mappings more here).  Every second:
 * a mailbox that did nothing since costs a few pointer tests; one at
 * work reads its repository's files again, a fraction of a millisecond
 * (doc/virtual.md, "Forks that cost the same for 1 and 1,000").
 */
#define RELEASE_EVERY 1.0

struct vdaemon {
	struct mailbox *base;	/* the user's, with the "virtual" key */
	const char *config;	/* -c, or NULL */
	struct loop *loop;
	struct syncd front;	/* the control socket's end: mb is base */
	struct syncd **box;	/* sorted by address */
	size_t n, alloc;
	size_t starting;	/* of those at start, not ready yet */
	bool ready;
	int inotify_fd;		/* -1 until the first watch */
	struct loop_timer *scan_timer, *status_timer, *release_timer;
	/* mailboxes found and not opened yet: opened a slice a turn */
	char **pending;
	size_t npending, pend_pos;
	bool first_open;	/* pending is the start's: counts for READY */
	struct loop_timer *open_timer;
};

static int cmp_box(const void *key, const void *elem)
{
	return strcmp(key, (*(struct syncd *const *)elem)->address);
}

static size_t box_pos(const struct vdaemon *vd, const char *addr, bool *found)
{
	size_t lo = 0, hi = vd->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = cmp_box(addr, &vd->box[mid]);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

static void on_inotify(void *data, int fd, short revents)
{
	struct vdaemon *vd = data;
	unsigned what = 0;

	(void)fd;
	(void)revents;
	if (!vd->n)
		return;
	/* any mailbox reads for all: the others' events go to them */
	log_set_context(vd->box[0]->address);
	watch_read(vd->box[0]->watch, &what);
	syncd_took_events(vd->box[0], what);
	log_set_context(NULL);
}

/*
 * Open the mailbox addr (folded) and start serving it; NULL (logged)
 * when it is not there and may not be made, or does not open.
 */
static struct syncd *open_box(struct vdaemon *vd, const char *addr,
			      bool once, double spread)
{
	struct syncd *s = xcalloc(1, sizeof *s);
	const char *ctx = log_get_context();
	int r;

	s->control_fd = -1;
	s->vd = vd;
	s->loop = vd->loop;
	s->started = loop_now();
	s->address = xstrdup(addr);
	log_set_context(s->address);
	r = mailbox_open_sibling(&s->mb, vd->base, vd->config, 0, addr);
	if (r == 0 && !config_virtual_listed(s->mb->cfg) &&
	    !path_exists(s->mb->maildir) && !path_exists(s->mb->repository)) {
		log_debug("not on disk");
		r = E_NOTFOUND;
	}
	if (r == 0)
		r = syncd_open(s, once);
	if (r == 0 && !once)
		r = syncd_watch(s);
	if (r != 0) {
		if (r != E_NOTFOUND)
			log_warn("not served: it did not open (%d)", r);
		syncd_release(s);
		free(s);
		log_set_context(ctx);
		return NULL;
	}
	if (!once) {
		if (vd->inotify_fd < 0) {
			vd->inotify_fd = watch_fd(s->watch);
			loop_add_fd(vd->loop, vd->inotify_fd, POLLIN,
				    on_inotify, vd);
		}
		syncd_attach(s, spread);
	}
	log_set_context(ctx);
	return s;
}

static void insert_box(struct vdaemon *vd, struct syncd *s)
{
	bool found;
	size_t i = box_pos(vd, s->address, &found);

	xgrow((void **)&vd->box, &vd->alloc, vd->n + 1, sizeof *vd->box);
	memmove(&vd->box[i + 1], &vd->box[i], (vd->n - i) * sizeof *vd->box);
	vd->box[i] = s;
	vd->n++;
}

/*
 * Open the next pending mailboxes, for OPEN_SLICE seconds (all of them
 * with once): a start of a thousand mailboxes lets the loop answer the
 * control socket and serve the mailboxes open so far meanwhile.
 */
static void open_some(struct vdaemon *vd, bool once)
{
	double t0 = loop_now();
	size_t added = 0;

	while (vd->pend_pos < vd->npending &&
	       (once || loop_now() - t0 < OPEN_SLICE)) {
		size_t i = vd->pend_pos++;
		const char *addr = vd->pending[i];
		struct syncd *s;
		bool found;

		box_pos(vd, addr, &found);
		if (found)
			continue;	/* a request opened it meanwhile */
		s = open_box(vd, addr, once, (double)i / (double)vd->npending);
		if (s) {
			s->vd_initial = vd->first_open;
			insert_box(vd, s);
			added++;
		} else if (vd->first_open && vd->starting && !--vd->starting) {
			virtual_ready(vd, NULL);
		}
	}
	if (vd->pend_pos < vd->npending) {
		loop_timer_in(vd->open_timer, 0);
		return;
	}
	if (vd->ready && added)
		log_info("%zu more mailboxes served, %zu in all", added, vd->n);
	config_strv_free(vd->pending);
	vd->pending = NULL;
	vd->npending = vd->pend_pos = 0;
	vd->first_open = false;
}

static void on_open(void *data)
{
	open_some(data, false);
}

/*
 * Find every mailbox the configuration has that is not served yet; they
 * are opened by open_some().  How many were found.
 */
static size_t scan(struct vdaemon *vd)
{
	char **addrs;
	size_t n, keep = 0;

	if (vd->pending)
		return 0;	/* the last look is still being opened */
	if (config_virtual_mailboxes(&addrs, &n, vd->base->cfg) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		bool found;

		box_pos(vd, addrs[i], &found);
		if (found)
			free(addrs[i]);
		else
			addrs[keep++] = addrs[i];
	}
	addrs[keep] = NULL;
	if (!keep) {
		/* nothing to open: no pending list to block the next look */
		free(addrs);
		return 0;
	}
	vd->pending = addrs;
	vd->npending = keep;
	vd->pend_pos = 0;
	return keep;
}

struct syncd *virtual_find(struct vdaemon *vd, const char *address)
{
	struct syncd *s;
	const char *why;
	char *addr;
	bool found;
	size_t i;

	if (config_address_parse(&addr, address, &why) < 0)
		return NULL;
	i = box_pos(vd, addr, &found);
	if (found) {
		free(addr);
		return vd->box[i];
	}
	/* a first delivery made it a moment ago */
	if ((s = open_box(vd, addr, false, 0)))
		insert_box(vd, s);
	free(addr);
	return s;
}

void virtual_ready(struct vdaemon *vd, struct syncd *s)
{
	/* s NULL: the count is down already (a mailbox did not open) */
	if (s && !s->vd_initial)
		return;
	if (vd->ready || (s && (!vd->starting || --vd->starting)))
		return;
	vd->ready = true;
	{
		const char *ctx = log_get_context();
		log_set_context(NULL);
		log_info("serving %zu mailboxes: every one had its first sync",
			 vd->n);
		log_set_context(ctx);
	}
	service_ready();
}

json_t *virtual_status_json(struct vdaemon *vd)
{
	json_t *a = json_object(), *boxes = json_array();

	for (size_t i = 0; i < vd->n; i++)
		json_array_append_new(boxes, server_status_json(vd->box[i]));
	json_object_set_new(a, "mailboxes", boxes);
	return a;
}

void virtual_sync_all(struct vdaemon *vd)
{
	for (size_t i = 0; i < vd->n; i++) {
		refresh_hold(vd->box[i]);
		peers_sync_now(vd->box[i]->peers);
	}
}

static void on_scan(void *data)
{
	struct vdaemon *vd = data;

	if (scan(vd))
		loop_timer_in(vd->open_timer, 0);
	loop_timer_in(vd->scan_timer, SCAN_EVERY);
}

static void on_release(void *data)
{
	struct vdaemon *vd = data;

	/* a mailbox at work reads them again (RELEASE_EVERY) */
	for (size_t i = 0; i < vd->n; i++)
		if (vd->box[i]->repo)
			repo_release(vd->box[i]->repo);
	loop_timer_in(vd->release_timer, RELEASE_EVERY);
}

static void on_status(void *data)
{
	struct vdaemon *vd = data;
	size_t failing = 0;
	char line[128];

	for (size_t i = 0; i < vd->n; i++)
		if (vd->box[i]->retry)
			failing++;
	snprintf(line, sizeof line, "%zu mailboxes; %zu failing to sync%s",
		 vd->n, failing, vd->ready ? "" : "; starting");
	service_status(line);
	loop_timer_in(vd->status_timer, STATUS_EVERY);
}

static void on_stop(void *data, int sig)
{
	struct vdaemon *vd = data;

	log_info("signal %d: stopping", sig);
	service_stopping();
	loop_stop(vd->loop);
}

/* SIGHUP: the configuration again, for the daemon and every mailbox. */
static void on_hup(void *data, int sig)
{
	struct vdaemon *vd = data;
	struct mailbox *mb;

	(void)sig;
	service_reloading();
	if (mailbox_open(&mb, vd->config, 0) < 0 || !config_is_virtual(mb->cfg)) {
		log_error("reloading the configuration failed (or it has no "
			  "\"virtual\" any more: that needs a restart): "
			  "keeping the old one");
		mailbox_free(mb);
	} else {
		mailbox_free(vd->base);
		mb->user_socket = true;
		vd->base = vd->front.mb = mb;
	}
	for (size_t i = 0; i < vd->n; i++) {
		log_set_context(vd->box[i]->address);
		syncd_reload(vd->box[i]);
	}
	log_set_context(NULL);
	on_scan(vd);
	service_ready();
}

/* A descriptor per repository pack: as many as the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_debug_errno("setrlimit");
	}
}

static int run(struct vdaemon *vd)
{
	struct syncd *f = &vd->front;

	if (loop_signal(vd->loop, SIGTERM, on_stop, vd) < 0 ||
	    loop_signal(vd->loop, SIGINT, on_stop, vd) < 0 ||
	    loop_signal(vd->loop, SIGHUP, on_hup, vd) < 0)
		return EX_OSERR;
	f->control_fd = control_listen(f->mb, &f->control_path);
	if (f->control_fd == E_EXISTS) {
		log_error("another maildag-syncd runs for this user");
		return EX_TEMPFAIL;
	}
	if (f->control_fd < 0)
		log_warn("no control socket: maildag status and quorum "
			 "delivery will not reach this daemon");
	else
		loop_add_fd(vd->loop, f->control_fd, POLLIN, server_on_accept, f);
	vd->starting = scan(vd);
	vd->first_open = true;
	log_info("maildag-syncd %s: %zu virtual mailboxes to serve; one "
		 "inotify instance", PACKAGE_VERSION, vd->starting);
	vd->open_timer = loop_timer_new(vd->loop, on_open, vd);
	loop_timer_in(vd->open_timer, 0);
	vd->scan_timer = loop_timer_new(vd->loop, on_scan, vd);
	loop_timer_in(vd->scan_timer, SCAN_EVERY);
	vd->release_timer = loop_timer_new(vd->loop, on_release, vd);
	loop_timer_in(vd->release_timer, RELEASE_EVERY);
	service_init(vd->loop);
	if (service_managed()) {
		vd->status_timer = loop_timer_new(vd->loop, on_status, vd);
		loop_timer_in(vd->status_timer, STATUS_EVERY);
	}
	if (!vd->starting) {
		vd->ready = true;
		service_ready();
	}
	return loop_run(vd->loop) < 0 ? EX_OSERR : 0;
}

/* --once: each mailbox synced in turn. */
static int run_once(struct vdaemon *vd)
{
	int status = 0;

	scan(vd);
	open_some(vd, true);
	for (size_t i = 0; i < vd->n; i++) {
		int r;
		log_set_context(vd->box[i]->address);
		if ((r = syncd_once(vd->box[i])) != 0)
			status = r;
	}
	log_set_context(NULL);
	return status;
}

int virtual_main(struct mailbox *base, const char *config, bool once)
{
	struct vdaemon *vd = xcalloc(1, sizeof *vd);
	int status;

	raise_nofile();
	vd->base = base;
	base->user_socket = true;
	vd->config = config;
	vd->inotify_fd = -1;
	vd->front.control_fd = -1;
	vd->front.mb = base;
	vd->front.vd = vd;
	vd->loop = vd->front.loop = loop_new();
	status = once ? run_once(vd) : run(vd);
	service_free();
	if (vd->front.control_fd >= 0)
		control_unlisten(vd->front.control_fd, vd->front.control_path);
	free(vd->front.control_path);
	for (size_t i = 0; i < vd->n; i++) {
		syncd_release(vd->box[i]);
		free(vd->box[i]);
	}
	free(vd->box);
	config_strv_free(vd->pending);
	loop_free(vd->loop);
	mailbox_free(vd->base);
	free(vd);
	return status;
}
