/*
 * clock: the monotonic clock, the one the programs time things with
 * (deadlines, backoffs, lock waits, figures in the log), which an admin
 * or NTP cannot step; and the wall clock, the one time is written in or
 * compared with (commit times, delivery names, the delivery window,
 * retention, the times of alarms and of maintenance).
 *
 * The wall clock is the system's, except in a build configured with
 * --enable-test-clock: there clock_wall() reads the time from the file
 * $MAILDAG_TEST_NOW_FILE names (decimal seconds since the epoch), at
 * every call, so that running daemons follow a test that moves it; an
 * absent or unreadable file means the system's time.  A normal build
 * never looks at the variable.
 */
#ifndef CLOCK_H
#define CLOCK_H

#include <stdbool.h>
#include <sys/time.h>
#include <time.h>

/* Now, in CLOCK_MONOTONIC seconds. */
double clock_now(void);

/* Now, in CLOCK_MONOTONIC milliseconds. */
long long clock_now_ms(void);

/* The wall clock, in seconds since the epoch. */
time_t clock_wall(void);

/*
 * The clock file times are written in: the system's, in a test-clock
 * build too (a test moves the wall clock, not the file system's), for
 * what judges a file's age by its mtime, as the grace of unreachable
 * objects.  Compared with clock_wall(), a file written a second ago
 * would be days old once a test has moved the wall clock on by days.
 */
time_t clock_files(void);

/* The same with microseconds (delivery names: <sec>.M<usec>...). */
void clock_wall_tv(struct timeval *tv);

/* Is this a --enable-test-clock build? */
bool clock_is_test(void);

#endif
