/*
 * log: one-line diagnostics to stderr and/or syslog, and maildag's error
 * codes.
 *
 * Log where a failure happens, once, and return the code:
 *	return log_error_errno("rename '%s'", path);
 * The last error text is kept so a program can repeat it in its final
 * diagnostic (the LDA's RFC 3463 line).
 *
 * A line to stderr reads "prog: level: message".  When the environment's
 * JOURNAL_STREAM names stderr's device and inode (stderr is the systemd
 * journal), the line starts with the sd-daemon(3) priority: "<3>" error,
 * "<4>" warning, "<6>" info, "<7>" debug.  log_init() looks again.
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>

/* Return codes: 0 is success, these are the named failures. */
enum {
	E_FAIL = -1,		/* anything not named below */
	E_NOTFOUND = -2,	/* the thing asked for does not exist */
	E_RACE = -3,		/* someone else moved it first: try again */
	E_TEMP = -4,		/* transient (I/O, locks, deadline): try later */
	E_PERM = -5,		/* refused on purpose: do not try again */
	E_EXISTS = -6,		/* already there */
	E_INVALID = -7,		/* malformed input */
};

enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

enum log_sinks {
	LOG_TO_STDERR = 1 << 0,
	LOG_TO_SYSLOG = 1 << 1,
};

/* prog is kept by pointer; it must outlive the process's logging. */
void log_init(const char *prog, unsigned sinks, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Each returns E_FAIL so it can end a failing function. */
int log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/*
 * The same with ": " and strerror(errno) appended, errno as it was at
 * the call: log_error_errno("open '%s'", path) logs what
 * log_error("open '%s': %s", path, strerror(errno)) would.
 */
int log_error_errno(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
void log_warn_errno(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
void log_debug_errno(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/*
 * What the lines are about, put before each message ("prog: level: ctx:
 * message"), or NULL for nothing (the default): maildag-syncd names the
 * virtual mailbox this way.  ctx is kept by pointer.  log_last_error()
 * has the message without it.
 */
void log_set_context(const char *ctx);
const char *log_get_context(void);

/* The text of the last log_error(), or "" if none; static storage. */
const char *log_last_error(void);

#endif
