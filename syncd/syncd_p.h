/*
 * syncd_p: what the files of maildag-syncd's main part share (the
 * program, not the library).
 *
 *	syncd.c		main, the sync and its triggers: events, timers,
 *			signals, the configuration
 *	server.c	the control socket's server side: clients, their
 *			requests (control.h) and answers
 */
#ifndef SYNCD_P_H
#define SYNCD_P_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "alarm.h"
#include "loop.h"
#include "mailbox.h"
#include "notify.h"
#include "oid.h"
#include "peers.h"
#include "repo.h"
#include "strbuf.h"
#include "watch.h"
#include "worktree.h"

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
	bool slicing;		/* the next slice waits SLICE_GAP */
	double started;		/* loop_now() at start, until the first sync */
	bool ready;		/* the first sync has ended: READY=1 sent */
	struct loop_timer *status_timer;	/* STATUS= (service.h) */
	struct oid last_mail;
	struct peers *peers;
	struct notify *notify;
	struct loop_timer *notify_timer, *maint_timer;
	pid_t maint_pid;	/* packing loose objects (maint.h) */
	struct dovecheck *dovecheck;	/* Dovecot's settings (dovecheck.h) */
	bool maint_now;		/* the purged/ set grew: a pass at once */
	struct oid purged_dir;	/* mail's purged/ tree, as last seen */
	int control_fd;		/* the listening socket, -1 if none */
	char *control_path;
	size_t nclients;
	struct oid space_for;	/* the mail commit an apply has room for */
	struct oid space_short;	/* one it had none for, in this sync */
	char **tmp_folders;	/* the tmp/ cleaning going on, a slice a turn */
	size_t tmp_n, tmp_pos;
	char weighed[CHANGE_HEX];	/* mail as far as alarm_check has
					   weighed it ("": not yet read) */
	bool holding;		/* pushes held back: a held alarm is open */
	char *address;		/* a virtual mailbox's (stable: log lines
				   keep it by pointer), else NULL */
	bool vd_initial;	/* one of those at the start: counts for READY=1 */
	struct vdaemon *vd;	/* the virtual daemon s is one mailbox of
				   (virtual.c), or NULL: s is the daemon */
};

/* A connection on the control socket. */
struct client {
	struct syncd *s;
	int fd;
	struct strbuf in;
	struct strbuf out;	/* answers the socket did not take yet */
	bool waiting;		/* a "wait" is pending: answer it first */
	struct syncd *waited;	/* the mailbox of that wait */
};

/*
 * Does an open alarm hold pushes back (alarm.h)?  Read from the alarms
 * file each time: maildag confirm and maildag undo settle alarms there,
 * then ask for a sync.
 */
void refresh_hold(struct syncd *s);

/* The listening socket is readable (loop_fd_fn): take a client. */
void server_on_accept(void *data, int fd, short revents);

/* The status answer's fields for one mailbox (control.h "status"). */
json_t *server_status_json(struct syncd *s);

/*
 * One mailbox's daemon part (syncd.c), used by main for the user's one
 * mailbox and by virtual.c for each virtual one; s->mb and s->loop are
 * set by the caller, s->vd too for a virtual one.
 *   syncd_open     the repository and the worktree (an exit status or 0)
 *   syncd_watch    its inotify watches (an exit status or 0)
 *   syncd_attach   peers, hooks and timers; spread in [0, 1) puts its
 *                  periodic work that far into each period (0: the
 *                  usual times), so that many mailboxes take turns
 *   syncd_release  everything but the loop; s is zeroed
 *   syncd_reload   the configuration again (SIGHUP), then a rescan
 *   syncd_took_events  what watch_read() found for s (watch.h)
 */
int syncd_open(struct syncd *s, bool once);
/* --once: one full sync and apply; an exit status. */
int syncd_once(struct syncd *s);
int syncd_watch(struct syncd *s);
void syncd_attach(struct syncd *s, double spread);
void syncd_release(struct syncd *s);
void syncd_reload(struct syncd *s);
void syncd_took_events(void *data, unsigned what);

/*
 * virtual.c: the daemon of every virtual mailbox of the user (base),
 * until SIGTERM; an exit status.  Takes base.
 */
int virtual_main(struct mailbox *base, const char *config, bool once);
/* s had its first sync, or failed it. */
void virtual_ready(struct vdaemon *vd, struct syncd *s);
/*
 * The mailbox address names, or NULL when none (a bad address, one the
 * configuration does not have, one not on disk that may not be made).
 * One not served yet is opened now.
 */
struct syncd *virtual_find(struct vdaemon *vd, const char *address);
/* Each mailbox's server_status_json() in "mailboxes", by address. */
json_t *virtual_status_json(struct vdaemon *vd);
/* maildag sync for every mailbox. */
void virtual_sync_all(struct vdaemon *vd);

#endif
