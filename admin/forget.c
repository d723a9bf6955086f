/*
 * maildag forget: purge messages now (legal erasure; purge.h,
 * doc/purge.md 3.3).
 *
 *	maildag forget [-n] MESSAGE-ID|KEY...
 *
 * Every message of the mailbox or its history with the Message-ID or
 * key given is taken by its bytes (blob): under the writer lock, the
 * client's changes on disk are committed first (as maildag-syncd would),
 * then one commit removes every message with one of those blobs (any
 * key, any folder) and lists them in purged/, the Maildir follows, and
 * a maintenance pass removes the bytes from every pack and loose object
 * at once.  Peers do the same when they merge the commit.
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "admin.h"
#include "log.h"
#include "objects.h"
#include "purge.h"
#include "worktree.h"

static void forget_usage(FILE *f)
{
	fputs("usage: maildag forget [-n] MESSAGE-ID|KEY...\n", f);
}

/* Commit the forget and apply it to the Maildir, the lock held. */
static int forget_locked(struct mailbox *mb, struct repo *r,
			 const struct purged *ids, struct purge_result *pr)
{
	struct worktree *wt = worktree_new(r, mb->maildir, mb->cfg->node);
	struct worktree_result wr;
	int ret;

	if (mb->cfg->uid_slot >= 0)
		worktree_set_uid_slot(wt, mb->cfg->uid_slot);
	/* what the client did first, as syncd would commit it */
	worktree_dirty_all(wt);
	if ((ret = worktree_commit(wt, NULL)) < 0 ||
	    (ret = purge_forget(r, ids->v, ids->n, pr)) < 0)
		goto done;
	do {
		if ((ret = worktree_apply(wt, 0, &wr)) < 0)
			break;
	} while (wr.more);
done:
	worktree_free(wt);
	return ret;
}

int cmd_forget(struct mailbox *mb, int argc, char **argv)
{
	struct purged ids = PURGED_INIT;
	struct purge_result pr;
	struct repo *r = NULL;
	bool dry = false;
	int c, ret = EX_TEMPFAIL;

	optind = 1;
	while ((c = getopt(argc, argv, "+nh")) != -1) {
		switch (c) {
		case 'n': dry = true; break;
		case 'h': forget_usage(stdout); return EX_OK;
		default: forget_usage(stderr); return EX_USAGE;
		}
	}
	if (optind >= argc) {
		forget_usage(stderr);
		return EX_USAGE;
	}
	if ((c = admin_open_repo(&r, mb)))
		return c;
	for (int i = optind; i < argc; i++) {
		size_t live = 0, gone = 0;
		if (purge_select(&ids, r, argv[i], &live, &gone) < 0)
			goto done;
		printf("%s: %zu in the mailbox, %zu removed before\n", argv[i],
		       live, gone);
	}
	if (!ids.n) {
		log_error("no message matches: nothing to forget");
		ret = EX_DATAERR;
		goto done;
	}
	if (dry) {
		printf("dry run: %zu messages' bytes would be purged\n", ids.n);
		ret = EX_OK;
		goto done;
	}
	if (repo_lock(r, 30000) < 0)
		goto done;
	c = forget_locked(mb, r, &ids, &pr);
	repo_unlock(r);
	if (c < 0)
		goto done;
	if (pr.committed)
		printf("forgot %zu blobs: %zu messages removed, commit %.10s\n",
		       pr.purged, pr.messages, oid_hex(&pr.commit));
	else
		printf("forgot nothing new: all listed in purged/ already\n");
	repo_free(r);
	r = NULL;
	{
		struct objects_maint_opts o = {
			.grace = (long)mb->cfg->maint_grace };
		struct objects_maint_result mr;
		if (purge_pass(mb->repository, mb->cfg->retention, &o, true,
			       NULL, &mr) < 0) {
			log_warn("the bytes go at the next maintenance pass");
		} else {
			printf("maintenance: %zu purged blobs removed, %zu "
			       "still stored\n", mr.dropped, mr.drop_left);
		}
	}
	ret = EX_OK;
done:
	purged_release(&ids);
	repo_free(r);
	return ret;
}
