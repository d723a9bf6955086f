/*
 * Unit tests for common/util/log.c: the journald priority prefixes, given
 * when JOURNAL_STREAM names the device and inode of stderr and only then;
 * the _errno variants log the very line the format spelled with ": %s"
 * and strerror(errno) does, a line cut at the buffer's end included.
 * Each case runs in a child whose stderr is a pipe the parent reads.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tap.h"
#include "log.h"

enum stream { UNSET, MATCHING, OTHER_INODE, GARBAGE, SPELLED, ERRNO };

static char longarg[1100];

/* The lines of the errno cases: spelled out, or by the _errno calls. */
static void errno_lines(enum stream how)
{
	log_init("prog", LOG_TO_STDERR, LOG_LVL_DEBUG);
	if (how == SPELLED) {
		log_error("open '%s': %s", "f", strerror(ENOENT));
		log_warn("w %d: %s", 2, strerror(EACCES));
		log_debug("d: %s", strerror(EEXIST));
		log_error("long '%s': %s", longarg, strerror(ENOSPC));
		log_warn("cut '%.1010s': %s", longarg, strerror(ENOSPC));
		return;
	}
	errno = ENOENT;
	log_error_errno("open '%s'", "f");
	errno = EACCES;
	log_warn_errno("w %d", 2);
	errno = EEXIST;
	log_debug_errno("d");
	errno = ENOSPC;
	log_error_errno("long '%s'", longarg);
	log_warn_errno("cut '%.1010s'", longarg);
}

/* What the child writes to stderr when JOURNAL_STREAM is as asked. */
static void run(char *out, size_t size, enum stream how)
{
	int fds[2];
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds) < 0 || (pid = fork()) < 0) {
		perror("pipe/fork");
		exit(99);
	}
	if (pid == 0) {
		struct stat st;
		char v[64];

		close(fds[0]);
		dup2(fds[1], 2);
		close(fds[1]);
		fstat(2, &st);
		snprintf(v, sizeof v, "%llu:%llu",
			 (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino + (how == OTHER_INODE));
		if (how == SPELLED || how == ERRNO) {
			unsetenv("JOURNAL_STREAM");
			errno_lines(how);
			_exit(0);
		}
		if (how == GARBAGE)
			setenv("JOURNAL_STREAM", "8:x", 1);
		else if (how != UNSET)
			setenv("JOURNAL_STREAM", v, 1);
		else
			unsetenv("JOURNAL_STREAM");
		log_init("prog", LOG_TO_STDERR, LOG_LVL_DEBUG);
		log_error("e %d", 1);
		log_warn("w");
		log_info("i");
		log_debug("d");
		_exit(0);
	}
	close(fds[1]);
	while (len + 1 < size &&
	       (n = read(fds[0], out + len, size - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fds[0]);
	waitpid(pid, NULL, 0);
}

int main(void)
{
	static const char plain[] =
		"prog: error: e 1\n"
		"prog: warning: w\n"
		"prog: info: i\n"
		"prog: debug: d\n";
	char out[4096], spelled[4096];

	run(out, sizeof out, MATCHING);
	is_str(out, "<3>prog: error: e 1\n"
		    "<4>prog: warning: w\n"
		    "<6>prog: info: i\n"
		    "<7>prog: debug: d\n",
	       "JOURNAL_STREAM names stderr: sd-daemon priorities");
	run(out, sizeof out, UNSET);
	is_str(out, plain, "no JOURNAL_STREAM: plain lines");
	run(out, sizeof out, OTHER_INODE);
	is_str(out, plain, "JOURNAL_STREAM names another file: plain lines");
	run(out, sizeof out, GARBAGE);
	is_str(out, plain, "JOURNAL_STREAM not dev:ino: plain lines");

	memset(longarg, 'x', sizeof longarg - 1);
	run(spelled, sizeof spelled, SPELLED);
	run(out, sizeof out, ERRNO);
	ok(strstr(spelled, "prog: error: open 'f': ") &&
	   strstr(spelled, "...\n"), "the spelled lines, long ones cut");
	is_str(out, spelled, "the _errno variants log the same lines");
	log_init("prog", 0, LOG_LVL_ERROR);
	log_error("x '%s': %s", "y", strerror(EIO));
	strcpy(spelled, log_last_error());
	errno = EIO;
	is_int(log_error_errno("x '%s'", "y"), E_FAIL, "returns E_FAIL");
	is_str(log_last_error(), spelled, "and keeps the same last error");
	return tap_done();
}
