/*
 * Unit tests for common/log.c: the journald priority prefixes, given
 * when JOURNAL_STREAM names the device and inode of stderr and only then.
 * Each case runs in a child whose stderr is a pipe the parent reads.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tap.h"
#include "log.h"

enum stream { UNSET, MATCHING, OTHER_INODE, GARBAGE };

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
	char out[1024];

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
	return tap_done();
}
