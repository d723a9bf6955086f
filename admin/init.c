/*
 * maildag init: create the repository and import the Maildir, committed
 * as maildag-syncd commits it (worktree.h): one way of turning a disk
 * into a tree, so the first commit holds what any later one would.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "admin.h"
#include "clock.h"
#include "format.h"
#include "fsutil.h"
#include "log.h"
#include "objects.h"
#include "upgrade.h"
#include "worktree.h"

/* --- init ------------------------------------------------------------- */

static void sleep_until(double due)
{
	struct timespec ts;
	double now = clock_now();

	if (due <= now)
		return;
	ts.tv_sec = (time_t)(due - now);
	ts.tv_nsec = (long)((due - now - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Create the repository, then commit the Maildir the way maildag-syncd
 * commits it (worktree_commit, under the writer lock): one way of
 * turning a disk into a tree, so the first commit holds what any later
 * one would (copies under keys of their own, mtimes recorded).  A copy
 * made a moment ago may be half of a move: it is looked at again once
 * settled, as syncd does.
 */
int cmd_init(struct mailbox *mb, int argc, char **argv)
{
	struct worktree_result res;
	struct worktree_counts total = { 0 };
	struct worktree *wt = NULL;
	struct repo *repo = NULL;
	struct upgrade_stats up;
	struct oid head;
	size_t unreadable = 0;
	double due;
	int r = EX_TEMPFAIL, version = FORMAT_VERSION;

	if (argc == 3 && !strcmp(argv[1], "--format") &&
	    (!strcmp(argv[2], "1") || !strcmp(argv[2], "2"))) {
		version = argv[2][0] - '0';
	} else if (argc > 1) {
		admin_usage(stderr);
		return EX_USAGE;
	}
	if (path_exists(mb->repository)) {
		log_error("'%s' already exists", mb->repository);
		return EX_CANTCREAT;
	}
	if (mailbox_create_folder(mb, "") < 0)
		return EX_TEMPFAIL;
	if (check_safe_owner(mb->maildir, mb->uid) < 0)
		return EX_NOPERM;
	if (repo_open(&repo, mb->repository, REPO_CREATE) < 0)
		return EX_TEMPFAIL;
	if (repo_lock(repo, 10000) < 0)
		goto done;
	wt = worktree_new(repo, mb->maildir, mb->cfg->node);
	worktree_set_origin(wt, "import existing Maildir");
	worktree_dirty_all(wt);
	do {
		if (worktree_commit(wt, &res) < 0)
			goto done;
		total.added += res.counts.added;
		total.folders_added += res.counts.folders_added;
		unreadable = res.unreadable;
		due = worktree_deferred_due(wt);
		if (due)
			sleep_until(due);
	} while (due);
	/* format 2 (experimental): the import, then the upgrade commit */
	if (version == FORMAT_VERSION_IMAP &&
	    upgrade_repo(&head, repo, mb->maildir, mb->cfg->node,
			 "new mailbox in format 2\n", false, &up) < 0)
		goto done;
	printf("initialised '%s': %zu messages in %zu folders imported from '%s'",
	       mb->repository, total.added, total.folders_added + 1,
	       mb->maildir);
	if (unreadable)
		printf(", %zu unreadable files skipped", unreadable);
	if (worktree_left_out(wt))
		printf(", %zu folders left out by folder_limit (%zu)",
		       worktree_left_out(wt), format_get_limits()->folders);
	printf("\n");
	if (version == FORMAT_VERSION_IMAP)
		printf("format 2 (experimental): %zu folders, %zu messages "
		       "recorded, %zu UIDs given in slot %u\n", up.folders,
		       up.messages, up.numbered, up.slot);
	/* a packed repository, as maintenance keeps it (objects.h) */
	repo_unlock(repo);
	{
		struct objects_maint_opts o = {
			.grace = (long)mb->cfg->maint_grace };
		struct objects_maint_result mr;
		if (objects_maintain(mb->repository, &o, true, &mr) < 0)
			log_warn("could not pack the repository; maildag-syncd's "
				 "maintenance will");
		else
			printf("packed: %zu packs, %zu loose objects, %llu bytes\n",
			       mr.packs_after, mr.loose_after, mr.bytes_after);
	}
	serve_print_authorized_keys(stdout, mb);
	r = EX_OK;
done:
	worktree_free(wt);
	repo_free(repo);
	return r;
}
