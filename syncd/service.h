/*
 * service: what maildag-syncd tells the service manager that started it
 * (systemd's sd_notify(3) protocol, through libsystemd).
 *
 * Under a unit with Type=notify (NOTIFY_SOCKET in the environment):
 *   READY=1      once the first sync with the Maildir has ended, ok or
 *                not (a failure is in STATUS= and in maildag status; the
 *                daemon is running and retries), and again after a
 *                reload;
 *   EXTEND_TIMEOUT_USEC  while a start's rescan or apply still goes in
 *                slices: a large Maildir is not killed by the start
 *                timeout as long as each slice moves it on;
 *   RELOADING=1  on SIGHUP, READY=1 when the new configuration is in;
 *   STOPPING=1   on SIGTERM or SIGINT;
 *   STATUS=      one line: in sync or not, and each peer's lag;
 *   WATCHDOG=1   from a timer of the daemon's one loop, at half of
 *                WatchdogSec: a loop that hangs stops the pings, and
 *                systemd restarts the daemon.
 * Without NOTIFY_SOCKET, or built without libsystemd, every call does
 * nothing.
 */
#ifndef SERVICE_H
#define SERVICE_H

struct loop;

/* Start the watchdog pings when the manager asked for them. */
void service_init(struct loop *l);
void service_ready(void);
void service_reloading(void);
void service_stopping(void);
/* Still starting: allow secs more from now. */
void service_extend(unsigned secs);
/* STATUS=line, sent only when it changed. */
void service_status(const char *line);
/* Whether a service manager listens (NOTIFY_SOCKET is set). */
int service_managed(void);
void service_free(void);

#endif
