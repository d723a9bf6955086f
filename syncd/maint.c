/*
 * maint: the daemon's packing child (see maint.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "maint.h"
#include "objects.h"
#include "repo.h"

pid_t maint_start(const char *repo_path)
{
	size_t n;
	pid_t pid;

	if (objects_count_loose(repo_path, &n) < 0 || n <= OBJECTS_LOOSE_MAX)
		return 0;
	pid = fork();
	if (pid < 0)
		return log_error_errno("fork");
	if (pid == 0) {
		sigset_t none;
		/*
		 * The daemon's handlers would write into a descriptor number
		 * this child reuses (the pack being written): defaults.
		 */
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				signal(sig, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* hold nothing of the daemon's: its sockets, its lock */
		if (close_range(3, ~0U, 0) < 0)
			for (int fd = 3; fd < 65536; fd++)
				close(fd);
		if (repo_global_reinit() < 0)	/* its packs' fds are closed */
			_exit(1);
		_exit(objects_pack_loose(repo_path, NULL) < 0 ? 1 : 0);
	}
	log_debug("packing %zu loose objects (pid %d)", n, (int)pid);
	return pid;
}
