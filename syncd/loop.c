/*
 * loop: the poll loop (see loop.h).
 */
#include "autoconf.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "xalloc.h"

#define NSIG_MAX 65

struct loop_fd {
	int fd;
	short events;
	loop_fd_fn *fn;
	void *data;
	const char *ctx;	/* log_get_context() when it was added */
};

#define NOT_QUEUED ((size_t)-1)

struct loop_timer {
	double when;		/* 0: disarmed */
	unsigned long long seq;	/* of equal whens, the older fires first */
	size_t qi;		/* its place in the queue, or NOT_QUEUED */
	struct loop *l;
	loop_timer_fn *fn;
	void *data;
	const char *ctx;	/* log_get_context() when it was made */
};

/*
 * Timers: every one in timers (owned, freed with the loop); the armed
 * ones, but those of the turn under way, in queue, a binary heap by
 * (when, seq), so that a daemon of a thousand mailboxes (ten thousand
 * timers) finds the next one without looking at them all each turn.
 * A turn takes the due ones out of the queue into due first, then runs
 * them: one re-armed meanwhile is in the queue again and waits for the
 * next turn, so none fires twice in one turn.
 */
struct loop {
	struct loop_fd *fds;
	size_t nfds, afds;
	struct loop_timer **timers;
	size_t ntimers, atimers;
	struct loop_timer **queue;
	size_t nqueue, aqueue;
	struct loop_timer **due;
	size_t ndue, adue;
	unsigned long long seq;
	loop_signal_fn *sig_fn[NSIG_MAX];
	void *sig_data[NSIG_MAX];
	bool stop;
};

/* the self-pipe: one per process, as signals are */
static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	ssize_t r = write(sig_pipe[1], &c, 1);

	(void)r;	/* a full pipe already says "signals pending" */
	errno = saved;
}

double loop_now(void)
{
	return clock_now();
}

struct loop *loop_new(void)
{
	return xcalloc(1, sizeof(struct loop));
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->ntimers; i++)
		free(l->timers[i]);
	free(l->timers);
	free(l->queue);
	free(l->due);
	free(l->fds);
	free(l);
}

void loop_add_fd(struct loop *l, int fd, short events, loop_fd_fn *fn,
		 void *data)
{
	for (size_t i = 0; i < l->nfds; i++)
		if (l->fds[i].fd == fd) {
			l->fds[i].events = events;
			l->fds[i].fn = fn;
			l->fds[i].data = data;
			l->fds[i].ctx = log_get_context();
			return;
		}
	xgrow((void **)&l->fds, &l->afds, l->nfds + 1, sizeof *l->fds);
	l->fds[l->nfds].fd = fd;
	l->fds[l->nfds].events = events;
	l->fds[l->nfds].fn = fn;
	l->fds[l->nfds].data = data;
	l->fds[l->nfds].ctx = log_get_context();
	l->nfds++;
}

void loop_del_fd(struct loop *l, int fd)
{
	for (size_t i = 0; i < l->nfds; i++)
		if (l->fds[i].fd == fd) {
			l->fds[i] = l->fds[--l->nfds];
			return;
		}
}

static bool earlier(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void q_set(struct loop *l, size_t i, struct loop_timer *t)
{
	l->queue[i] = t;
	t->qi = i;
}

static void q_up(struct loop *l, size_t i)
{
	struct loop_timer *t = l->queue[i];

	while (i > 0 && earlier(t, l->queue[(i - 1) / 2])) {
		q_set(l, i, l->queue[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	q_set(l, i, t);
}

static void q_down(struct loop *l, size_t i)
{
	struct loop_timer *t = l->queue[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->nqueue)
			break;
		if (c + 1 < l->nqueue && earlier(l->queue[c + 1], l->queue[c]))
			c++;
		if (!earlier(l->queue[c], t))
			break;
		q_set(l, i, l->queue[c]);
		i = c;
	}
	q_set(l, i, t);
}

static void q_remove(struct loop *l, struct loop_timer *t)
{
	size_t i = t->qi;
	struct loop_timer *last;

	if (i == NOT_QUEUED)
		return;
	t->qi = NOT_QUEUED;
	last = l->queue[--l->nqueue];
	if (last == t)
		return;
	q_set(l, i, last);
	q_up(l, i);
	q_down(l, last->qi);
}

/* t->when is set: put t in its place */
static void q_place(struct loop *l, struct loop_timer *t)
{
	if (t->qi != NOT_QUEUED) {
		q_up(l, t->qi);
		q_down(l, t->qi);
		return;
	}
	xgrow((void **)&l->queue, &l->aqueue, l->nqueue + 1, sizeof *l->queue);
	q_set(l, l->nqueue++, t);
	q_up(l, t->qi);
}

struct loop_timer *loop_timer_new(struct loop *l, loop_timer_fn *fn,
				  void *data)
{
	struct loop_timer *t = xcalloc(1, sizeof *t);

	t->fn = fn;
	t->data = data;
	t->ctx = log_get_context();
	t->l = l;
	t->qi = NOT_QUEUED;
	t->seq = l->seq++;
	xgrow((void **)&l->timers, &l->atimers, l->ntimers + 1,
	      sizeof *l->timers);
	l->timers[l->ntimers++] = t;
	return t;
}

void loop_timer_free(struct loop *l, struct loop_timer *t)
{
	if (!t)
		return;
	q_remove(l, t);
	for (size_t i = 0; i < l->ndue; i++)
		if (l->due[i] == t)
			l->due[i] = NULL;
	for (size_t i = 0; i < l->ntimers; i++)
		if (l->timers[i] == t) {
			memmove(&l->timers[i], &l->timers[i + 1],
				(l->ntimers - i - 1) * sizeof *l->timers);
			l->ntimers--;
			break;
		}
	free(t);
}

void loop_timer_at(struct loop_timer *t, double when)
{
	t->when = when > 0 ? when : 1e-9;
	q_place(t->l, t);
}

void loop_timer_in(struct loop_timer *t, double secs)
{
	loop_timer_at(t, loop_now() + (secs > 0 ? secs : 0));
}

void loop_timer_at_latest(struct loop_timer *t, double when)
{
	if (!t->when || when < t->when)
		loop_timer_at(t, when);
}

void loop_timer_stop(struct loop_timer *t)
{
	t->when = 0;
	q_remove(t->l, t);
}

bool loop_timer_armed(const struct loop_timer *t)
{
	return t->when != 0;
}

double loop_timer_when(const struct loop_timer *t)
{
	return t->when;
}

static void drain_signals(void *data, int fd, short revents)
{
	struct loop *l = data;
	unsigned char buf[64];
	ssize_t n;

	(void)revents;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] < NSIG_MAX && l->sig_fn[buf[i]])
				l->sig_fn[buf[i]](l->sig_data[buf[i]], buf[i]);
}

int loop_signal(struct loop *l, int sig, loop_signal_fn *fn, void *data)
{
	struct sigaction sa;

	if (sig <= 0 || sig >= NSIG_MAX)
		return log_error("signal %d out of range", sig);
	if (sig_pipe[0] < 0) {
		if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
			return log_error_errno("pipe");
		loop_add_fd(l, sig_pipe[0], POLLIN, drain_signals, l);
	}
	l->sig_fn[sig] = fn;
	l->sig_data[sig] = data;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(sig, &sa, NULL) < 0)
		return log_error_errno("sigaction %d", sig);
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

int loop_run(struct loop *l)
{
	struct pollfd *pfd = NULL;
	size_t apfd = 0;

	l->stop = false;
	while (!l->stop) {
		double now = loop_now(), next = 0;
		size_t n;
		int timeout = -1, r;

		/* due timers first, each once per turn */
		l->ndue = 0;
		while (l->nqueue && l->queue[0]->when <= now) {
			struct loop_timer *t = l->queue[0];
			q_remove(l, t);
			xgrow((void **)&l->due, &l->adue, l->ndue + 1,
			      sizeof *l->due);
			l->due[l->ndue++] = t;
		}
		for (size_t i = 0; i < l->ndue; i++) {
			struct loop_timer *t = l->due[i];
			/* freed, stopped or armed again by an earlier one */
			if (!t || !t->when || t->qi != NOT_QUEUED)
				continue;
			if (l->stop) {
				q_place(l, t);
				continue;
			}
			t->when = 0;
			log_set_context(t->ctx);
			t->fn(t->data);
			log_set_context(NULL);
		}
		l->ndue = 0;
		if (l->stop)
			break;
		if (l->nqueue)
			next = l->queue[0]->when;
		if (next) {
			double ms = (next - loop_now()) * 1000.0 + 0.999;
			timeout = ms <= 0 ? 0 : ms > INT_MAX ? INT_MAX : (int)ms;
		}
		/*
		 * The table as it is now, after the timers: a child a timer
		 * just started is polled in this turn, and an entry a timer
		 * removed is not.
		 */
		n = l->nfds;
		xgrow((void **)&pfd, &apfd, n ? n : 1, sizeof *pfd);
		for (size_t i = 0; i < n; i++) {
			pfd[i].fd = l->fds[i].fd;
			pfd[i].events = l->fds[i].events;
			pfd[i].revents = 0;
		}
		r = poll(pfd, n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			free(pfd);
			return log_error_errno("poll");
		}
		for (size_t i = 0; i < n && r > 0 && !l->stop; i++) {
			if (!pfd[i].revents)
				continue;
			/* the table may have changed under an earlier callback */
			for (size_t j = 0; j < l->nfds; j++)
				if (l->fds[j].fd == pfd[i].fd) {
					log_set_context(l->fds[j].ctx);
					l->fds[j].fn(l->fds[j].data, pfd[i].fd,
						     pfd[i].revents);
					log_set_context(NULL);
					break;
				}
		}
	}
	free(pfd);
	return 0;
}
