/*
 * watch: what maildag-syncd sees change, through inotify (libinotifytools).
 *
 * Watched: the Maildir root (folders that come and go, the subscriptions
 * file), every folder directory (its cur/ and new/ appearing), every
 * folder's cur/ and new/ (each message name that changes), and the
 * repository's refs/heads/ and packed-refs (refs/heads/mail moving), and
 * refs/peers/ and refs/peers/<node>/ of each configured peer (a peer's
 * push arriving).  refs/peers/ of any other name is not watched and its
 * events are ignored: anyone who can push may make thousands of them.
 * Every event is turned into a dirty mark on the worktree (worktree.h):
 * a name, a whole folder, or everything.  IN_Q_OVERFLOW, a watched
 * directory vanishing or any other doubt marks everything.
 *
 * libinotifytools adds the watches and reads the events; its descriptor
 * is polled by the daemon's loop, and events are read only when poll says
 * so (watch_read never blocks).  A folder that is renamed keeps its
 * kernel watches under the old name, so a folder leaving a name loses its
 * watches at once and the new name gets fresh ones and a full scan.
 */
#ifndef WATCH_H
#define WATCH_H

#include <stdbool.h>

#include "worktree.h"

struct watch;

enum watch_what {
	WATCH_CHANGED = 1 << 0,		/* the Maildir changed (dirty marks made) */
	WATCH_MAIL = 1 << 1,		/* refs/heads/mail may have moved */
	WATCH_OVERFLOW = 1 << 2,	/* events were lost: everything marked */
	WATCH_PEERS = 1 << 3,		/* a refs/peers/<node>/mail may have moved */
};

/*
 * Start watching maildir and the repository at repo_path, marking wt.
 * *out is freed with watch_free().  E_FAIL when inotify cannot be set up.
 */
int watch_new(struct watch **out, const char *maildir, const char *repo_path,
	      struct worktree *wt);
void watch_free(struct watch *w);

/* The descriptor to poll for POLLIN. */
int watch_fd(const struct watch *w);

/*
 * Read every event available now without blocking and mark wt; *what gets
 * enum watch_what bits.  0, or E_FAIL when reading fails (then
 * everything is marked: the caller may rebuild the watch).
 */
int watch_read(struct watch *w, unsigned *what);

/*
 * Make sure every folder on disk is watched (after an overflow, at start):
 * adds what is missing.
 */
int watch_sync_folders(struct watch *w);

/*
 * The configured peers' node names (n of them; copied): only their
 * refs/peers/<name>/ are watched from now on, watches of names no longer
 * in the list are removed.  Until the first call, no peer is watched.
 */
void watch_set_peers(struct watch *w, char *const *names, size_t n);

/* How many directories are watched. */
int watch_count(const struct watch *w);

/*
 * How many folders have no watch (the inotify watch limit is reached):
 * each call of watch_sync_folders() marks them to be looked at whole.
 */
size_t watch_unwatched(const struct watch *w);

#endif
