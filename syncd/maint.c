/*
 * maint: the daemon's maintenance child (see maint.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "config.h"
#include "log.h"
#include "maint.h"
#include "objects.h"
#include "purge.h"
#include "repo.h"

pid_t maint_start(const char *repo_path, const struct config *cfg,
		  bool now)
{
	struct objects_maint_opts o = { .grace = (long)cfg->maint_grace,
					.idle = true };
	const char *why = NULL;
	pid_t pid;

	if (now)
		why = "purged/ grew";
	else if (!objects_maint_due(repo_path, (long)cfg->maint_interval, &why))
		return 0;
	pid = fork();
	if (pid < 0)
		return log_error_errno("fork");
	if (pid == 0) {
		sigset_t none;
		int r;
		/*
		 * The daemon's handlers would write into a descriptor number
		 * this child reuses (the pack being written): defaults.
		 */
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				signal(sig, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/*
		 * hold nothing of the daemon's (its sockets, its lock) but
		 * the packs libgit2 holds open: closed, their numbers reused,
		 * libgit2 could close ours (repo_global_reinit)
		 */
		bool kept = child_close_fds(3, true);
		if (repo_global_reinit(!kept) < 0)
			_exit(1);
		r = purge_pass(repo_path, cfg->retention, &o, false, NULL,
			       NULL);
		_exit(r == E_TEMP ? 0 : r < 0 ? 1 : 0);
	}
	log_debug("maintenance pass (%s): pid %d", why, (int)pid);
	return pid;
}
