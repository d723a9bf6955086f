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
 * A folder is watched when the worktree is about to look at it whole
 * (watch_folder(), the worktree's folder function): a start or a full
 * rescan sets the watches up a slice at a time, each before its folder
 * is read, and folders folder_limit leaves out are never watched.
 *
 * libinotifytools sets inotify up and reads the events; its descriptor
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

/*
 * Every watch of a process shares one inotify descriptor (libinotifytools
 * is global; one instance serves any number of mailboxes): watch_read()
 * on any of them reads every event and hands each to the watch it is
 * for.  Another watch's events mark its worktree at once; their enum
 * watch_what bits go to its fn, called once per read after the events
 * are all handled (never while its own watch_read() runs), or, without
 * a fn, to its own next watch_read().
 */
typedef void watch_events_fn(void *data, unsigned what);
void watch_set_events_fn(struct watch *w, watch_events_fn *fn, void *data);

/* The descriptor to poll for POLLIN (the same for every watch). */
int watch_fd(const struct watch *w);

/*
 * Read every event available now without blocking and mark wt; *what gets
 * enum watch_what bits.  0, or E_FAIL when reading fails (then
 * everything is marked: the caller may rebuild the watch).
 */
int watch_read(struct watch *w, unsigned *what);

/*
 * folder is about to be looked at whole (on_disk) or was found gone:
 * watch its directory, cur/ and new/ when they are not, or forget them.
 * A worktree_folder_fn (worktree.h), with w as its data.
 */
void watch_folder(struct watch *w, const char *folder, bool on_disk);

/*
 * Make sure the Maildir root and the repository's directories are
 * watched (at start, after an overflow, every minute), and mark the
 * folders the watch limit left without a watch to be looked at whole.
 * Costs the same for any number of folders but those.
 */
int watch_check(struct watch *w);

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
 * each call of watch_check() marks them to be looked at whole.
 */
size_t watch_unwatched(const struct watch *w);

#endif
