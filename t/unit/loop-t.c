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

/* The timer queue: many timers, each records when it ran. */
#define NT 2000

struct tq {
	struct loop *loop;
	struct loop_timer *t[NT];
	double at[NT];		/* when it was armed for */
	int runs[NT];
	int order[NT];		/* the indices in the order they ran */
	int nran;
	int victim;		/* freed or stopped by timer 0's callback */
	bool free_victim, rearm_self;
};

static struct tq *tq_cur;

static void tq_fire(void *data)
{
	struct tq *q = tq_cur;
	int i = (int)(long)data;

	q->runs[i]++;
	q->order[q->nran++ % NT] = i;
	if (i == 0 && q->victim >= 0) {
		if (q->free_victim) {
			loop_timer_free(q->loop, q->t[q->victim]);
			q->t[q->victim] = NULL;
		} else {
			loop_timer_stop(q->t[q->victim]);
		}
	}
	if (q->rearm_self)
		loop_timer_in(q->t[i], 0);
	if (q->nran >= NT || (q->rearm_self && q->nran >= 3))
		loop_stop(q->loop);
}

/* a ready descriptor of test 7: noted as -1, left ready */
static void tq_ready(void *data, int fd, short revents)
{
	struct tq *q = data;

	(void)fd;
	(void)revents;
	q->order[q->nran++ % NT] = -1;
	if (q->nran >= 3)
		loop_stop(q->loop);
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
	/* 5: two thousand timers armed in random order run in time order */
	{
		static struct tq q;
		double base = loop_now();
		int sorted = 1, once = 1, n = 0;

		memset(&q, 0, sizeof q);
		tq_cur = &q;
		q.loop = loop_new();
		q.victim = -1;
		srandom(7);
		for (int i = 0; i < NT; i++) {
			q.t[i] = loop_timer_new(q.loop, tq_fire, (void *)(long)i);
			q.at[i] = base - 1.0 + (double)(random() % 1000) / 1000.0;
			loop_timer_at(q.t[i], q.at[i] + 5.0);
		}
		/* re-armed, so the queue must move them, some twice */
		for (int i = 0; i < NT; i += 3)
			loop_timer_at(q.t[i], q.at[i]);
		for (int i = 1; i < NT; i += 3) {
			loop_timer_stop(q.t[i]);
			loop_timer_at(q.t[i], q.at[i]);
		}
		for (int i = 2; i < NT; i += 3)
			loop_timer_at_latest(q.t[i], q.at[i]);
		loop_run(q.loop);
		for (int i = 0; i < NT; i++) {
			once &= q.runs[i] == 1;
			n += q.runs[i];
		}
		for (int i = 1; i < q.nran; i++)
			if (q.at[q.order[i]] < q.at[q.order[i - 1]] ||
			    (q.at[q.order[i]] == q.at[q.order[i - 1]] &&
			     q.order[i] < q.order[i - 1]))
				sorted = 0;
		is_int(n, NT, "every due timer ran");
		ok(once, "each once");
		ok(sorted, "in the order of their times, ties in the order made");
		loop_free(q.loop);
	}

	/* 6: a timer freed or stopped by an earlier one of its turn never runs */
	for (int mode = 0; mode < 2; mode++) {
		static struct tq q;
		double base = loop_now() - 1.0;

		memset(&q, 0, sizeof q);
		tq_cur = &q;
		q.loop = loop_new();
		q.victim = 2;
		q.free_victim = mode == 0;
		for (int i = 0; i < 4; i++) {
			q.t[i] = loop_timer_new(q.loop, tq_fire, (void *)(long)i);
			loop_timer_at(q.t[i], base + i * 0.1);
		}
		/* the last one stops the loop when the others ran */
		q.rearm_self = false;
		{
			struct run r;
			memset(&r, 0, sizeof r);
			r.loop = q.loop;
			loop_timer_in(loop_timer_new(q.loop, on_late, &r), 0.2);
			loop_run(q.loop);
			is_int((long long)r.norder, 1, mode ? "stopped: the turn ends" :
			       "freed: the turn ends");
		}
		is_int(q.runs[2], 0, mode ? "a timer stopped by an earlier one of its turn does not run" :
		       "a timer freed by an earlier one of its turn does not run");
		is_int(q.runs[0] + q.runs[1] + q.runs[3], 3, "the others ran once");
		loop_free(q.loop);
	}

	/* 7: a timer re-armed at once by its own callback runs once a turn */
	{
		static struct tq q;
		int fd[2];

		memset(&q, 0, sizeof q);
		tq_cur = &q;
		q.loop = loop_new();
		q.victim = -1;
		q.rearm_self = true;
		q.t[0] = loop_timer_new(q.loop, tq_fire, (void *)0L);
		loop_timer_in(q.t[0], 0);
		/* a ready descriptor: the turn between the two runs polls it */
		if (pipe(fd) == 0 && write(fd[1], "x", 1) == 1) {
			loop_add_fd(q.loop, fd[0], POLLIN, tq_ready, &q);
			loop_run(q.loop);
			is_int(q.runs[0], 2, "a timer re-armed at once by itself ran twice");
			ok(q.nran == 3 && q.order[0] == 0 && q.order[1] == -1 &&
			   q.order[2] == 0, "with a poll between its two runs");
			close(fd[0]);
			close(fd[1]);
		}
		loop_free(q.loop);
	}
	return tap_done();
}
