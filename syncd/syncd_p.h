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
};

/* A connection on the control socket. */
struct client {
	struct syncd *s;
	int fd;
	struct strbuf in;
	struct strbuf out;	/* answers the socket did not take yet */
	bool waiting;		/* a "wait" is pending: answer it first */
};

/*
 * Does an open alarm hold pushes back (alarm.h)?  Read from the alarms
 * file each time: maildag confirm and maildag undo settle alarms there,
 * then ask for a sync.
 */
void refresh_hold(struct syncd *s);

/* The listening socket is readable (loop_fd_fn): take a client. */
void server_on_accept(void *data, int fd, short revents);

#endif
