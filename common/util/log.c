/*
 * log: diagnostics (see log.h).  Never allocates, so it is safe on the
 * out-of-memory path.
 *
 * Under systemd, stderr may be a stream to the journal: then each line
 * starts with the sd-daemon(3) priority prefix ("<3>" error .. "<7>"
 * debug) so journald stores it at that priority.  That is so when
 * JOURNAL_STREAM holds "<device>:<inode>" of our fd 2 (systemd.exec(5));
 * a child that inherited the variable but not the stream (stderr
 * redirected to a file or a pipe) does not match and writes plain text.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#include "log.h"

static const char *progname = "maildag";
static unsigned log_sinks = LOG_TO_STDERR;
static enum log_level log_level = LOG_LVL_INFO;
static char last_error[1024];
static int to_journal = -1;	/* unknown until the first line */
static const char *context;	/* "alice@example.org", or NULL */

/* Does JOURNAL_STREAM name the file our stderr is? */
static int stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (!v || !*v || fstat(2, &st) < 0)
		return 0;
	dev = strtoull(v, &end, 10);
	if (end == v || *end != ':')
		return 0;
	v = end + 1;
	ino = strtoull(v, &end, 10);
	if (end == v || *end)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_init(const char *prog, unsigned sinks, enum log_level level)
{
	progname = prog;
	log_sinks = sinks;
	log_level = level;
	to_journal = -1;
	if (sinks & LOG_TO_SYSLOG)
		openlog(prog, LOG_PID, LOG_MAIL);
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

/*
 * Log one line at level: fmt, then when err >= 0 ": " and strerror(err),
 * the same line as the format spelled with ": %s" and strerror(errno).
 */
static void vlog(enum log_level level, int err, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	/* sd-daemon(3)'s SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG */
	static const char *const journal_prefix[] = { "<3>", "<4>", "<6>", "<7>" };
	char msg[1024];
	int n;

	n = vsnprintf(msg, sizeof msg, fmt, ap);
	if (n < 0)
		return;
	if (err >= 0 && (size_t)n < sizeof msg) {
		int m = snprintf(msg + n, sizeof msg - (size_t)n, ": %s",
				 strerror(err));

		if (m < 0)
			return;
		n += m;
	}
	/* a truncated line is still worth printing; mark it */
	if ((size_t)n >= sizeof msg)
		memcpy(msg + sizeof msg - 4, "...", 4);
	/* never let a control character from a file name reach a log line */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (level == LOG_LVL_ERROR)
		snprintf(last_error, sizeof last_error, "%s", msg);
	if (level > log_level)
		return;
	if (log_sinks & LOG_TO_STDERR) {
		if (to_journal < 0)
			to_journal = stderr_is_journal();
		fprintf(stderr, "%s%s: %s: %s%s%s\n",
			to_journal ? journal_prefix[level] : "", progname,
			names[level], context ? context : "",
			context ? ": " : "", msg);
	}
	if (log_sinks & LOG_TO_SYSLOG)
		syslog(prio[level], "%s: %s%s%s", names[level],
		       context ? context : "", context ? ": " : "", msg);
}

void log_set_context(const char *ctx)
{
	context = ctx;
}

const char *log_get_context(void)
{
	return context;
}

int log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, -1, fmt, ap);
	va_end(ap);
	return E_FAIL;
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, -1, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_INFO, -1, fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LVL_DEBUG)
		return;
	va_start(ap, fmt);
	vlog(LOG_LVL_DEBUG, -1, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, -1, fmt, ap);
	va_end(ap);
	exit(1);
}

int log_error_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, err, fmt, ap);
	va_end(ap);
	return E_FAIL;
}

void log_warn_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, err, fmt, ap);
	va_end(ap);
}

void log_debug_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	if (log_level < LOG_LVL_DEBUG)
		return;
	va_start(ap, fmt);
	vlog(LOG_LVL_DEBUG, err, fmt, ap);
	va_end(ap);
}

const char *log_last_error(void)
{
	return last_error;
}
