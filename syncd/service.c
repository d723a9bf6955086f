/*
 * service: readiness, status and watchdog for systemd (service.h).
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "loop.h"
#include "service.h"

#ifdef HAVE_LIBSYSTEMD

static struct {
	struct loop *loop;
	struct loop_timer *watchdog;
	double every;		/* seconds between pings */
	char *status;		/* the last STATUS= sent */
} sv;

static void notify_state(const char *state)
{
	int r = sd_notify(0, state);

	if (r < 0)
		log_debug("sd_notify %s: %s", state, strerror(-r));
}

static void ping(void *data)
{
	(void)data;
	notify_state("WATCHDOG=1");
	loop_timer_in(sv.watchdog, sv.every);
}

int service_managed(void)
{
	const char *s = getenv("NOTIFY_SOCKET");

	return s && *s;
}

void service_init(struct loop *l)
{
	uint64_t usec = 0;
	int r;

	sv.loop = l;
	if (!service_managed())
		return;
	r = sd_watchdog_enabled(0, &usec);
	if (r < 0)
		log_warn("watchdog: %s (no pings)", strerror(-r));
	if (r <= 0 || !usec)
		return;
	sv.every = (double)usec / 2e6;
	sv.watchdog = loop_timer_new(l, ping, NULL);
	log_info("watchdog: a ping every %.1f s", sv.every);
	ping(NULL);
}

void service_ready(void)
{
	if (service_managed())
		notify_state("READY=1");
}

void service_reloading(void)
{
	if (service_managed())
		notify_state("RELOADING=1");
}

void service_stopping(void)
{
	if (service_managed())
		notify_state("STOPPING=1");
}

void service_extend(unsigned secs)
{
	char buf[64];

	if (!service_managed())
		return;
	snprintf(buf, sizeof buf, "EXTEND_TIMEOUT_USEC=%llu",
		 (unsigned long long)secs * 1000000ULL);
	notify_state(buf);
}

void service_status(const char *line)
{
	char *msg;
	size_t n;

	if (!service_managed() || (sv.status && !strcmp(sv.status, line)))
		return;
	free(sv.status);
	sv.status = strdup(line);
	n = strlen(line) + sizeof "STATUS=";
	if (!(msg = malloc(n)))
		return;
	snprintf(msg, n, "STATUS=%s", line);
	notify_state(msg);
	free(msg);
}

void service_free(void)
{
	if (sv.watchdog)
		loop_timer_free(sv.loop, sv.watchdog);
	free(sv.status);
	memset(&sv, 0, sizeof sv);
}

#else /* !HAVE_LIBSYSTEMD */

int service_managed(void) { return 0; }
void service_init(struct loop *l) { (void)l; }
void service_ready(void) {}
void service_reloading(void) {}
void service_stopping(void) {}
void service_extend(unsigned secs) { (void)secs; }
void service_status(const char *line) { (void)line; }
void service_free(void) {}

#endif
