/*
 * clock: the monotonic clock, the one the programs time things with
 * (deadlines, backoffs, lock waits, figures in the log).  Never the wall
 * clock, which an admin or NTP may step.
 */
#ifndef CLOCK_H
#define CLOCK_H

/* Now, in CLOCK_MONOTONIC seconds. */
double clock_now(void);

/* Now, in CLOCK_MONOTONIC milliseconds. */
long long clock_now_ms(void);

#endif
