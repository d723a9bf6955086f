/*
 * clock: the monotonic and the wall clock (see clock.h).
 */
#include "autoconf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

double clock_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#ifdef MAILDAG_TEST_CLOCK
/* The test's time, from $MAILDAG_TEST_NOW_FILE; false when none. */
static bool test_now(time_t *t)
{
	const char *path = getenv("MAILDAG_TEST_NOW_FILE");
	char buf[32], *end;
	long long v;
	ssize_t n;
	int fd;

	if (!path || !*path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	v = strtoll(buf, &end, 10);
	if (end == buf || v <= 0)
		return false;
	*t = (time_t)v;
	return true;
}
#endif

time_t clock_wall(void)
{
#ifdef MAILDAG_TEST_CLOCK
	time_t t;

	if (test_now(&t))
		return t;
#endif
	return time(NULL);
}

time_t clock_files(void)
{
	return time(NULL);
}

void clock_wall_tv(struct timeval *tv)
{
	gettimeofday(tv, NULL);
#ifdef MAILDAG_TEST_CLOCK
	{
		time_t t;
		if (test_now(&t))
			tv->tv_sec = t;
	}
#endif
}

bool clock_is_test(void)
{
#ifdef MAILDAG_TEST_CLOCK
	return true;
#else
	return false;
#endif
}
