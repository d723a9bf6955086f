/*
 * loop: maildag-syncd's one poll loop (STYLE.md, "The daemon").
 *
 * File descriptors, timers and signals, all dispatched from one poll(2)
 * call: a signal handler only writes the signal number into a self-pipe,
 * so every callback runs in the loop, never in a handler.  Timers are
 * one-shot and re-armed by their owner; times are CLOCK_MONOTONIC seconds.
 *
 * Invariants: callbacks run one at a time; a callback may add or remove
 * descriptors and arm timers, including its own.  Every poll(2) call
 * polls exactly the descriptors that exist when it is made: one a timer
 * added (a child a periodic fetch or a retry started) is polled in that
 * same turn, one a timer removed is not.
 */
#ifndef LOOP_H
#define LOOP_H

#include <stdbool.h>

struct loop;
struct loop_timer;

typedef void loop_fd_fn(void *data, int fd, short revents);
typedef void loop_timer_fn(void *data);
typedef void loop_signal_fn(void *data, int sig);

/* A new loop; the caller frees it with loop_free(). */
struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Now, in CLOCK_MONOTONIC seconds. */
double loop_now(void);

/* Call fn when fd has one of events (POLLIN...); one entry per fd. */
void loop_add_fd(struct loop *l, int fd, short events, loop_fd_fn *fn,
		 void *data);
void loop_del_fd(struct loop *l, int fd);

/* A timer, disarmed; owned by the loop (freed with it). */
struct loop_timer *loop_timer_new(struct loop *l, loop_timer_fn *fn,
				  void *data);
/*
 * Remove and free a timer (not one whose callback is running: that one
 * may stop itself, or be freed by another callback).
 */
void loop_timer_free(struct loop *l, struct loop_timer *t);
/* Fire at when (loop_now() seconds); replaces an earlier arming. */
void loop_timer_at(struct loop_timer *t, double when);
/* Fire in secs seconds. */
void loop_timer_in(struct loop_timer *t, double secs);
/* Fire at when, or earlier if it is already armed earlier. */
void loop_timer_at_latest(struct loop_timer *t, double when);
void loop_timer_stop(struct loop_timer *t);
bool loop_timer_armed(const struct loop_timer *t);
/* When it fires (0 when disarmed). */
double loop_timer_when(const struct loop_timer *t);

/*
 * Deliver signal sig through the loop to fn.  0, or E_FAIL when the
 * self-pipe or handler cannot be set up.
 */
int loop_signal(struct loop *l, int sig, loop_signal_fn *fn, void *data);

/* Run until loop_stop(); 0, or E_FAIL when poll fails for good. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
