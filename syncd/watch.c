/*
 * watch: inotify through libinotifytools (see watch.h).
 *
 * libinotifytools keeps its descriptor to itself; it is the lowest free
 * descriptor when inotifytools_initialize() runs (checked against
 * /proc/self/fd), and reading it only through
 * inotifytools_next_events(0, ...) keeps the library's buffer and the
 * kernel queue in step: a zero timeout never blocks.
 *
 * Each watched directory has a row here: its watch descriptor and what it
 * is (root, folder, cur/ or new/ of a folder, the repository's refs).
 * The row, not the library's file name, says what an event is about, so
 * a renamed directory's late events cannot be taken for the old name's.
 *
 * refs/peers/<node>/ is watched for configured peers only (w->peers):
 * whoever can push can make any number of other names there, and a watch
 * each would cost kernel memory, our memory and a sync per push.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <inotifytools/inotify.h>
#include <inotifytools/inotifytools.h>

#include "folder.h"
#include "fsutil.h"
#include "log.h"
#include "maildir_name.h"
#include "strmap.h"
#include "watch.h"
#include "xalloc.h"

enum wkind { W_ROOT, W_FOLDER, W_SUB, W_REFS, W_REPO, W_PEERS, W_PEER };

#define MASK_ROOT (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
		   IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define MASK_FOLDER (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
		     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define MASK_SUB (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
		  IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | \
		  IN_ONLYDIR)
#define MASK_REFS (IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR)
#define MASK_PEERS (IN_CREATE | IN_MOVED_TO | IN_ONLYDIR)

struct wdir {
	int wd;
	enum wkind kind;
	char *path;
	char *folder;		/* W_FOLDER, W_SUB */
	const char *sub;	/* W_SUB: "cur" or "new" */
};

struct watch {
	int fd;
	char *maildir;
	char *repo;
	struct worktree *wt;
	struct wdir *v;
	size_t n, alloc;
	struct strmap by_path, by_wd;	/* row index of a path, of a wd */
	bool warned_limit;
	bool warned_stranger;	/* an unconfigured refs/peers/<x>/ was logged */
	size_t unwatched;	/* folders the watch limit left out */
	bool started;		/* the first sync_folders is done */
	char **peers;		/* configured peers' node names */
	size_t npeers;
};

static const char *const subs[2] = { "cur", "new" };

/* rows are found through the two maps: 30,000 folders make 90,000 rows */
static void wd_key(char out[16], int wd)
{
	snprintf(out, 16, "%d", wd);
}

static struct wdir *find_wd(struct watch *w, int wd)
{
	char k[16];
	size_t i;

	wd_key(k, wd);
	return strmap_get(&w->by_wd, k, &i) ? &w->v[i] : NULL;
}

static struct wdir *find_path(struct watch *w, const char *path)
{
	size_t i;

	return strmap_get(&w->by_path, path, &i) ? &w->v[i] : NULL;
}

static void index_row(struct watch *w, size_t i)
{
	char k[16];

	wd_key(k, w->v[i].wd);
	strmap_put(&w->by_wd, k, i);
	strmap_put(&w->by_path, w->v[i].path, i);
}

static void drop_row(struct watch *w, struct wdir *d)
{
	char k[16];
	size_t i = (size_t)(d - w->v);

	wd_key(k, d->wd);
	strmap_del(&w->by_wd, k);
	strmap_del(&w->by_path, d->path);
	free(d->path);
	free(d->folder);
	*d = w->v[--w->n];
	if (i < w->n)
		index_row(w, i);
}

/*
 * Watch path as kind; a directory that is not there is no error.  1 when
 * a new watch was set up, 0 when there was one or nothing to watch.
 */
static int add(struct watch *w, const char *path, enum wkind kind,
	       const char *folder, const char *sub, int mask)
{
	struct wdir *d;
	int wd;

	if (find_path(w, path))
		return 0;
	if (!inotifytools_watch_file(path, mask)) {
		int e = inotifytools_error();
		if (e == ENOENT || e == ENOTDIR)
			return 0;
		if (e == ENOSPC && !w->warned_limit) {
			w->warned_limit = true;
			log_error("cannot watch '%s': the inotify watch limit "
				  "(fs.inotify.max_user_watches) is reached; "
				  "folders without a watch are looked at every "
				  "minute", path);
		} else if (e != ENOSPC) {
			log_error("watch '%s': %s", path, strerror(e));
		}
		return E_FAIL;
	}
	/* the same inode and mask again: the kernel hands back its wd */
	wd = inotify_add_watch(w->fd, path, (uint32_t)mask);
	if (wd < 0)
		return errno == ENOENT ? 0 :
		       log_error("watch '%s': %s", path, strerror(errno));
	if ((d = find_wd(w, wd)))
		drop_row(w, d);	/* an old row for a reused wd */
	xgrow((void **)&w->v, &w->alloc, w->n + 1, sizeof *w->v);
	d = &w->v[w->n++];
	d->wd = wd;
	d->kind = kind;
	d->path = xstrdup(path);
	d->folder = folder ? xstrdup(folder) : NULL;
	d->sub = sub;
	index_row(w, w->n - 1);
	log_debug("watching '%s'", path);
	return 1;
}

static char *folder_path(const struct watch *w, const char *folder,
			 const char *sub)
{
	if (!sub)
		return *folder ? xasprintf("%s/%s", w->maildir, folder)
			       : xstrdup(w->maildir);
	return *folder ? xasprintf("%s/%s/%s", w->maildir, folder, sub)
		       : xasprintf("%s/%s", w->maildir, sub);
}

static int add_sub(struct watch *w, const char *folder, const char *sub)
{
	char *p = folder_path(w, folder, sub);
	int r = add(w, p, W_SUB, folder, sub, MASK_SUB);

	free(p);
	return r;
}

/* Watch a folder; 1 when some watch is new, < 0 when one failed. */
static int add_folder(struct watch *w, const char *folder)
{
	int r = 0, x;

	if (*folder) {
		char *p = folder_path(w, folder, NULL);
		r = add(w, p, W_FOLDER, folder, NULL, MASK_FOLDER);
		free(p);
	}
	for (size_t i = 0; i < 2; i++) {
		x = add_sub(w, folder, subs[i]);
		if (x < 0 || (x > 0 && r >= 0))
			r = x;
	}
	return r;
}

/*
 * Forget a folder's rows.  When it was renamed away its kernel watches
 * live on under the new name: remove them (rm), or their events would
 * carry the old name.  A deleted directory's watches are gone already.
 */
static void drop_folder(struct watch *w, const char *folder, const char *sub,
			bool rm)
{
	for (size_t i = 0; i < w->n;) {
		struct wdir *d = &w->v[i];
		if ((d->kind == W_FOLDER || d->kind == W_SUB) &&
		    !strcmp(d->folder, folder) && (!sub || d->sub == sub ||
		    (d->sub && !strcmp(d->sub, sub)))) {
			if (rm)
				inotifytools_remove_watch_by_wd(d->wd);
			drop_row(w, d);
			continue;
		}
		i++;
	}
}

static bool is_peer(const struct watch *w, const char *name)
{
	for (size_t i = 0; i < w->npeers; i++)
		if (!strcmp(w->peers[i], name))
			return true;
	return false;
}

/* Watch refs/peers/<node>/ of every configured peer that has one. */
static int add_peer_dirs(struct watch *w, const char *peers)
{
	int r = 0;

	for (size_t i = 0; i < w->npeers; i++) {
		char *p = xasprintf("%s/%s", peers, w->peers[i]);
		if (is_dir(p) && add(w, p, W_PEER, NULL, NULL, MASK_REFS) < 0)
			r = E_FAIL;
		free(p);
	}
	return r;
}

void watch_set_peers(struct watch *w, char *const *names, size_t n)
{
	char *rp;

	for (size_t i = 0; i < w->npeers; i++)
		free(w->peers[i]);
	free(w->peers);
	w->peers = xcalloc(n ? n : 1, sizeof *w->peers);
	for (size_t i = 0; i < n; i++)
		w->peers[i] = xstrdup(names[i]);
	w->npeers = n;
	/* a peer no longer configured: its directory is not watched */
	for (size_t i = 0; i < w->n;) {
		struct wdir *d = &w->v[i];
		const char *name = strrchr(d->path, '/');
		if (d->kind == W_PEER && !is_peer(w, name + 1)) {
			inotifytools_remove_watch_by_wd(d->wd);
			drop_row(w, d);
			continue;
		}
		i++;
	}
	rp = xasprintf("%s/refs/peers", w->repo);
	add_peer_dirs(w, rp);
	free(rp);
}

int watch_sync_folders(struct watch *w)
{
	char **folders, *refs, *rp;
	size_t n;
	int r = 0, x;

	/* a watch set up now may have missed changes: look again */
	x = add(w, w->maildir, W_ROOT, NULL, NULL, MASK_ROOT);
	if (x < 0)
		r = E_FAIL;
	else if (x > 0 && w->started)
		worktree_dirty_all(w->wt);
	refs = xasprintf("%s/refs/heads", w->repo);
	rp = xasprintf("%s/refs/peers", w->repo);
	if (add(w, refs, W_REFS, NULL, NULL, MASK_REFS) < 0 ||
	    add(w, w->repo, W_REPO, NULL, NULL, IN_MOVED_TO | IN_ONLYDIR) < 0)
		r = E_FAIL;
	/* refs/peers/<node>/mail: what peers push (DESIGN section 6) */
	if (mkdir(rp, 0700) < 0 && errno != EEXIST)
		log_warn("mkdir '%s': %s", rp, strerror(errno));
	x = add(w, rp, W_PEERS, NULL, NULL, MASK_PEERS);
	if (x < 0)
		r = E_FAIL;
	else
		r = add_peer_dirs(w, rp) < 0 ? E_FAIL : r;
	free(refs);
	free(rp);
	if (worktree_disk_folders(&folders, &n, w->maildir) < 0)
		return E_FAIL;
	w->unwatched = 0;
	for (size_t i = 0; i < n; i++) {
		x = add_folder(w, folders[i]);
		if (x < 0) {
			r = E_FAIL;
			w->unwatched++;
		}
		/* not watched (the watch limit): looked at on every call */
		if (x < 0 && w->started)
			worktree_dirty_folder(w->wt, folders[i]);
		else if (x > 0 && w->started)
			worktree_dirty_folder(w->wt, folders[i]);
	}
	worktree_folders_free(folders, n);
	w->started = true;
	return r;
}

/* The inotify descriptor libinotifytools opened: is it fd? */
static bool is_inotify(int fd)
{
	char p[64], link[64];
	ssize_t n;

	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	n = readlink(p, link, sizeof link - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return !strcmp(link, "anon_inode:inotify");
}

int watch_new(struct watch **out, const char *maildir, const char *repo_path,
	      struct worktree *wt)
{
	struct watch *w;
	int guess;

	*out = NULL;
	/* inotify_init() takes the lowest free descriptor: this one */
	guess = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (guess >= 0)
		close(guess);
	if (!inotifytools_initialize())
		return log_error("inotify: %s", strerror(inotifytools_error()));
	if (guess < 0 || !is_inotify(guess)) {
		/* fall back to the newest inotify descriptor */
		DIR *d = opendir("/proc/self/fd");
		struct dirent *de;
		guess = -1;
		while (d && (de = readdir(d))) {
			int fd = atoi(de->d_name);
			if (de->d_name[0] != '.' && fd > guess && is_inotify(fd))
				guess = fd;
		}
		if (d)
			closedir(d);
		if (guess < 0) {
			inotifytools_cleanup();
			return log_error("cannot find libinotifytools' descriptor");
		}
	}
	fcntl(guess, F_SETFD, FD_CLOEXEC);
	w = xcalloc(1, sizeof *w);
	w->fd = guess;
	w->maildir = xstrdup(maildir);
	w->repo = xstrdup(repo_path);
	w->wt = wt;
	watch_sync_folders(w);
	*out = w;
	return 0;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	while (w->n)
		drop_row(w, &w->v[w->n - 1]);
	strmap_clear(&w->by_path);
	strmap_clear(&w->by_wd);
	free(w->v);
	free(w->maildir);
	free(w->repo);
	for (size_t i = 0; i < w->npeers; i++)
		free(w->peers[i]);
	free(w->peers);
	free(w);
	inotifytools_cleanup();
}

int watch_fd(const struct watch *w)
{
	return w->fd;
}

int watch_count(const struct watch *w)
{
	return (int)w->n;
}

size_t watch_unwatched(const struct watch *w)
{
	return w->unwatched;
}

static const char *sub_of(const char *name)
{
	return !strcmp(name, "cur") ? subs[0] : !strcmp(name, "new") ? subs[1]
								     : NULL;
}

static void handle(struct watch *w, const struct inotify_event *ev,
		   unsigned *what)
{
	const char *name = ev->len ? ev->name : "";
	bool gone = ev->mask & (IN_DELETE | IN_MOVED_FROM);
	bool came = ev->mask & (IN_CREATE | IN_MOVED_TO);
	struct wdir *d;
	const char *sub;
	char *folder;

	if (ev->mask & IN_Q_OVERFLOW) {
		log_warn("inotify queue overflow: rescanning everything");
		worktree_dirty_all(w->wt);
		*what |= WATCH_OVERFLOW | WATCH_CHANGED | WATCH_MAIL |
			 WATCH_PEERS;
		return;
	}
	if (!(d = find_wd(w, ev->wd)))
		return;	/* a watch already dropped */
	if (ev->mask & IN_IGNORED) {
		/* the kernel dropped it: its directory is gone */
		if (d->kind == W_SUB || d->kind == W_FOLDER) {
			worktree_dirty_folder(w->wt, d->folder);
			*what |= WATCH_CHANGED;
		} else if (d->kind == W_ROOT) {
			worktree_dirty_all(w->wt);
			*what |= WATCH_CHANGED;
		}
		drop_row(w, d);
		return;
	}
	switch (d->kind) {
	case W_ROOT:
		if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
			log_warn("the Maildir '%s' was moved or deleted",
				 w->maildir);
			worktree_dirty_all(w->wt);
			*what |= WATCH_CHANGED;
			return;
		}
		if ((ev->mask & IN_ISDIR) && name[0] == '.' &&
		    folder_dir_valid(name)) {
			if (gone)
				drop_folder(w, name, NULL,
					    ev->mask & IN_MOVED_FROM);
			if (came)
				add_folder(w, name);
			worktree_dirty_folder(w->wt, name);
			*what |= WATCH_CHANGED;
		} else if ((ev->mask & IN_ISDIR) && (sub = sub_of(name))) {
			if (gone)
				drop_folder(w, "", sub, ev->mask & IN_MOVED_FROM);
			if (came)
				add_sub(w, "", sub);
			worktree_dirty_folder(w->wt, "");
			*what |= WATCH_CHANGED;
		} else if (!strcmp(name, "subscriptions")) {
			worktree_dirty_root(w->wt);
			*what |= WATCH_CHANGED;
		}
		break;
	case W_FOLDER:
		folder = d->folder;
		if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
			worktree_dirty_folder(w->wt, folder);
			*what |= WATCH_CHANGED;
		} else if ((ev->mask & IN_ISDIR) && (sub = sub_of(name))) {
			if (gone)
				drop_folder(w, folder, sub,
					    ev->mask & IN_MOVED_FROM);
			if (came)
				add_sub(w, folder, sub);
			worktree_dirty_folder(w->wt, folder);
			*what |= WATCH_CHANGED;
		} else if (!strcmp(name, "maildirfolder")) {
			worktree_dirty_folder(w->wt, folder);
			*what |= WATCH_CHANGED;
		}
		break;
	case W_SUB:
		if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
			worktree_dirty_folder(w->wt, d->folder);
			*what |= WATCH_CHANGED;
		} else if (*name && maildir_name_valid(name)) {
			worktree_dirty_name(w->wt, d->folder, d->sub, name);
			*what |= WATCH_CHANGED;
		}
		break;
	case W_REFS:
		if (!strcmp(name, "mail"))
			*what |= WATCH_MAIL;
		break;
	case W_REPO:
		if (!strcmp(name, "packed-refs"))
			*what |= WATCH_MAIL | WATCH_PEERS;
		break;
	case W_PEERS:
		/* refs/peers/<node>/: a peer that pushed for the first time */
		if ((ev->mask & IN_ISDIR) && *name && is_peer(w, name)) {
			char *p = xasprintf("%s/%s", d->path, name);
			add(w, p, W_PEER, NULL, NULL, MASK_REFS);
			free(p);
			*what |= WATCH_PEERS;
		} else if ((ev->mask & IN_ISDIR) && *name &&
			   !w->warned_stranger) {
			w->warned_stranger = true;
			log_debug("refs/peers/%s/: not a configured peer; "
				  "ignored (such names are logged once)", name);
		}
		break;
	case W_PEER:
		if (!strcmp(name, "mail"))
			*what |= WATCH_PEERS;
		break;
	}
}

int watch_read(struct watch *w, unsigned *what)
{
	struct inotify_event *ev;

	*what = 0;
	/* a zero timeout never blocks; the library empties its buffer first */
	while ((ev = inotifytools_next_events(0, 1)))
		handle(w, ev, what);
	if (inotifytools_error() && inotifytools_error() != EINTR) {
		log_error("read inotify events: %s",
			  strerror(inotifytools_error()));
		worktree_dirty_all(w->wt);
		*what |= WATCH_CHANGED | WATCH_OVERFLOW;
		return E_FAIL;
	}
	if (*what & WATCH_OVERFLOW)
		watch_sync_folders(w);
	return 0;
}
