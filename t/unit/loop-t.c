/*
 * Unit tests for syncd/loop.c: what a callback adds or removes is seen by
 * the very next poll(2), so a child a timer starts is never left unpolled
 * until something else wakes the loop (issue 10, item 3).
 *
 * The "late" timers below fire only when the loop misses a descriptor: a
 * correct loop stops long before them, so their length never makes a
 * test pass or fail on a slow machine, only how long a failure takes.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tap.h"
#include "loop.h"

#define LATE 10.0	/* seconds: only a broken loop waits this long */

struct run {
	struct loop *loop;
	struct loop_timer *start, *late;
	int fd;			/* the child's pipe, read end */
	pid_t pid;
	char order[16];		/* which callback ran first: 'c'hild or 'l'ate */
	size_t norder;
	int stale_calls;	/* callbacks of a removed descriptor */
	int other_fd;
};

static void note(struct run *r, char c)
{
	if (r->norder < sizeof r->order - 1)
		r->order[r->norder++] = c;
}

static void on_child(void *data, int fd, short revents)
{
	struct run *r = data;
	char buf[16];

	(void)revents;
	while (read(fd, buf, sizeof buf) > 0)
		;
	note(r, 'c');
	loop_del_fd(r->loop, fd);
	loop_stop(r->loop);
}

static void on_late(void *data)
{
	struct run *r = data;

	note(r, 'l');
	loop_stop(r->loop);
}

/* A timer that forks a child, as a periodic fetch or a push retry does. */
static void start_child(void *data)
{
	struct run *r = data;
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		abort();
	r->pid = fork();
	if (r->pid == 0) {
		close(p[0]);
		if (write(p[1], "done\n", 5) != 5)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	r->fd = p[0];
	loop_add_fd(r->loop, r->fd, POLLIN, on_child, r);
}

static void on_other(void *data, int fd, short revents)
{
	struct run *r = data;

	(void)fd;
	(void)revents;
	r->stale_calls++;
}

/* A timer that removes a descriptor and starts a child in the same turn. */
static void swap_fds(void *data)
{
	struct run *r = data;

	loop_del_fd(r->loop, r->other_fd);
	start_child(r);
}

static void reap(struct run *r)
{
	if (r->pid > 0)
		waitpid(r->pid, NULL, 0);
	r->pid = 0;
}

int main(void)
{
	struct run r;
	int q[2];

	signal(SIGPIPE, SIG_IGN);

	/* 1: a child started by a timer, nothing else in the loop */
	memset(&r, 0, sizeof r);
	r.loop = loop_new();
	r.start = loop_timer_new(r.loop, start_child, &r);
	r.late = loop_timer_new(r.loop, on_late, &r);
	loop_timer_in(r.start, 0);
	loop_timer_in(r.late, LATE);
	is_int(loop_run(r.loop), 0, "loop runs");
	is_str(r.order, "c", "a child a timer started is polled in that turn");
	reap(&r);
	close(r.fd);
	loop_free(r.loop);

	/* 2: the same with a quiet descriptor already in the loop */
	memset(&r, 0, sizeof r);
	r.loop = loop_new();
	if (pipe2(q, O_CLOEXEC | O_NONBLOCK) < 0)
		abort();
	loop_add_fd(r.loop, q[0], POLLIN, on_other, &r);
	r.start = loop_timer_new(r.loop, start_child, &r);
	r.late = loop_timer_new(r.loop, on_late, &r);
	loop_timer_in(r.start, 0);
	loop_timer_in(r.late, LATE);
	loop_run(r.loop);
	is_str(r.order, "c", "polled beside an older descriptor");
	reap(&r);
	close(r.fd);
	loop_free(r.loop);
	close(q[0]);
	close(q[1]);

	/*
	 * 3: a timer removes a ready descriptor and adds a child: the
	 * removed one is not polled any more (it would be readable: its
	 * callback must not run), the new one is.
	 */
	memset(&r, 0, sizeof r);
	r.loop = loop_new();
	if (pipe2(q, O_CLOEXEC | O_NONBLOCK) < 0)
		abort();
	if (write(q[1], "x", 1) != 1)
		abort();
	r.other_fd = q[0];
	r.start = loop_timer_new(r.loop, swap_fds, &r);
	r.late = loop_timer_new(r.loop, on_late, &r);
	loop_timer_in(r.start, 0);
	loop_timer_in(r.late, LATE);
	loop_add_fd(r.loop, q[0], POLLIN, on_other, &r);
	loop_run(r.loop);
	is_str(r.order, "c", "the child of a timer that also removed a descriptor");
	is_int(r.stale_calls, 0, "a removed descriptor's callback never runs");
	reap(&r);
	close(r.fd);
	loop_free(r.loop);
	close(q[0]);
	close(q[1]);

	/* 4: many timers, each starting a child, all in one turn */
	{
		struct run rs[8];
		struct loop *l = loop_new();
		struct loop_timer *late;
		int done = 0;

		memset(rs, 0, sizeof rs);
		for (int i = 0; i < 8; i++) {
			rs[i].loop = l;
			rs[i].start = loop_timer_new(l, start_child, &rs[i]);
			loop_timer_in(rs[i].start, 0);
		}
		memset(&r, 0, sizeof r);
		r.loop = l;
		late = loop_timer_new(l, on_late, &r);
		loop_timer_in(late, LATE);
		/* each child stops the loop: run until all eight or late */
		while (!r.norder && done < 8) {
			loop_run(l);
			done = 0;
			for (int i = 0; i < 8; i++)
				done += rs[i].norder;
		}
		is_int(done, 8, "eight children of eight timers, all polled");
		is_int((long long)r.norder, 0, "before the late timer");
		for (int i = 0; i < 8; i++) {
			reap(&rs[i]);
			close(rs[i].fd);
		}
		loop_free(l);
	}
	return tap_done();
}
