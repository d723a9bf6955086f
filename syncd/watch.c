/*
 * watch: inotify through libinotifytools (see watch.h).
 *
 * libinotifytools sets inotify up and reads its events: its descriptor
 * is the lowest free one when inotifytools_initialize() runs (checked
 * against /proc/self/fd), and reading it only through
 * inotifytools_next_events(0, ...) keeps the library's buffer and the
 * kernel queue in step: a zero timeout never blocks.  The watches
 * themselves are added with inotify_add_watch(2) on that descriptor and
 * kept here, not through inotifytools_watch_file(), which keeps its own
 * copy of every path in two trees: with thousands of folders that was
 * a third of the daemon's memory, for lookups this module does itself
 * (the library's reading needs none of it without its statistics).
 *
 * What is watched, and its memory:
 *  - a row per folder (struct wfolder): its name and the watch
 *    descriptors of its directory (not INBOX's: that is the root), its
 *    cur/ and its new/; folders are found by name in by_name;
 *  - a row for each of a handful of other directories (struct wother):
 *    the root, refs/heads/, the repository, refs/peers/ and
 *    refs/peers/<node>/ of each configured peer;
 *  - wds: a watch descriptor's row and slot, so that an event's row, not
 *    the library's file name, says what it is about, and a renamed
 *    directory's late events cannot be taken for the old name's.
 * No path is kept per folder; one is built when a watch is added.
 *
 * Folders are watched when the worktree is about to look at them
 * (watch_folder(), from worktree_set_folder_fn()), so a start or a full
 * rescan sets the watches up a slice at a time, each before its folder is
 * read; folders folder_limit leaves out are never watched.
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
#include "strbuf.h"
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

/* A folder's slots: its directory, cur/, new/; a wds value's low bits. */
enum { S_DIR, S_CUR, S_NEW, S_OTHER };

struct wfolder {
	char *name;		/* "" for INBOX, ".Name" */
	int wd[3];		/* by slot; -1: none */
	bool failed;		/* the watch limit refused one */
};

struct wother {
	int wd;
	enum wkind kind;
	char *path;
};

/* Watch descriptor -> (row << 2 | slot): open addressing, linear probing. */
struct wdmap {
	struct wdslot {
		int wd;		/* 0: empty (the kernel's are >= 1) */
		size_t v;
	} *v;
	size_t n, cap;
};

struct watch {
	int fd;
	char *maildir;
	char *repo;
	struct worktree *wt;
	struct wfolder *f;
	size_t nf, af;
	struct strmap by_name;	/* folder name -> row in f */
	struct wother *o;
	size_t no, ao;
	struct wdmap wds;
	bool warned_limit;
	bool warned_stranger;	/* an unconfigured refs/peers/<x>/ was logged */
	size_t nfailed;		/* folders with a watch the limit refused */
	bool started;		/* watch_new() is done */
	char **peers;		/* configured peers' node names */
	size_t npeers;
	size_t id;		/* in hub.tab */
	unsigned pending;	/* enum watch_what read by another's call */
	bool touched;		/* in hub.touched */
	watch_events_fn *events_fn;
	void *events_data;
};

/*
 * Every watch of the process shares libinotifytools' one descriptor (the
 * library is global): one inotify instance for any number of mailboxes
 * (fs.inotify.max_user_instances is 128).  owners tells whose watch
 * descriptor an event is for; tab holds the watches by id (NULL: freed).
 */
static struct {
	int fd;
	size_t users;
	struct wdmap owners;	/* wd -> id */
	struct watch **tab;
	size_t ntab, atab;
	size_t *touched;	/* ids with pending events */
	size_t ntouched, atouched;
} hub = { .fd = -1 };

static const char *const subs[2] = { "cur", "new" };

/* --- the descriptor map ---------------------------------------------------- */

static size_t wd_home(const struct wdmap *m, int wd)
{
	return ((size_t)wd * 2654435761u) & (m->cap - 1);
}

static size_t wd_slot(const struct wdmap *m, int wd)
{
	size_t i = wd_home(m, wd);

	while (m->v[i].wd && m->v[i].wd != wd)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static bool wd_get(const struct wdmap *m, int wd, size_t *out)
{
	size_t i;

	if (!m->n)
		return false;
	i = wd_slot(m, wd);
	if (!m->v[i].wd)
		return false;
	*out = m->v[i].v;
	return true;
}

static void wd_put(struct wdmap *m, int wd, size_t v)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap) {
		struct wdslot *old = m->v;
		size_t ocap = m->cap;
		m->cap = ocap ? ocap * 2 : 64;
		m->v = xcalloc(m->cap, sizeof *m->v);
		for (size_t j = 0; j < ocap; j++)
			if (old[j].wd)
				m->v[wd_slot(m, old[j].wd)] = old[j];
		free(old);
	}
	i = wd_slot(m, wd);
	if (!m->v[i].wd)
		m->n++;
	m->v[i].wd = wd;
	m->v[i].v = v;
}

static void wd_del(struct wdmap *m, int wd)
{
	size_t i, j;

	if (!m->n || !m->v[i = wd_slot(m, wd)].wd)
		return;
	m->v[i].wd = 0;
	m->n--;
	/* shift back the entries of the run that probed past slot i */
	for (j = (i + 1) & (m->cap - 1); m->v[j].wd; j = (j + 1) & (m->cap - 1)) {
		size_t home = wd_home(m, m->v[j].wd);
		bool between = i <= j ? (i < home && home <= j)
				      : (i < home || home <= j);
		if (between)
			continue;
		m->v[i] = m->v[j];
		m->v[j].wd = 0;
		i = j;
	}
}

/* --- rows ------------------------------------------------------------------ */

static char *folder_path(const struct watch *w, const char *folder, int slot)
{
	if (slot == S_DIR)
		return xasprintf("%s/%s", w->maildir, folder);
	return *folder ? xasprintf("%s/%s/%s", w->maildir, folder,
				   subs[slot - S_CUR])
		       : xasprintf("%s/%s", w->maildir, subs[slot - S_CUR]);
}

static struct wfolder *find_folder(struct watch *w, const char *name)
{
	size_t i;

	return strmap_get(&w->by_name, name, &i) ? &w->f[i] : NULL;
}

/* Forget wd (the kernel's watch is gone, or is removed here with rm). */
static void forget_wd(struct watch *w, int wd, bool rm)
{
	size_t v;

	if (!wd_get(&w->wds, wd, &v))
		return;
	if (rm)
		inotify_rm_watch(w->fd, wd);
	wd_del(&w->wds, wd);
	{
		size_t id;
		if (wd_get(&hub.owners, wd, &id) && id == w->id)
			wd_del(&hub.owners, wd);
	}
	if ((v & 3) == S_OTHER) {
		struct wother *o = &w->o[v >> 2];
		size_t last = --w->no;
		free(o->path);
		if ((size_t)(o - w->o) != last) {
			*o = w->o[last];
			wd_put(&w->wds, o->wd, (size_t)(o - w->o) << 2 | S_OTHER);
		}
	} else {
		w->f[v >> 2].wd[v & 3] = -1;
	}
}

/* Drop folder row i and its watches (rm: remove the kernel's too). */
static void drop_row(struct watch *w, size_t i, bool rm)
{
	struct wfolder *f = &w->f[i];
	size_t last = w->nf - 1;

	for (int s = S_DIR; s <= S_NEW; s++)
		if (f->wd[s] >= 0)
			forget_wd(w, f->wd[s], rm);
	if (f->failed)
		w->nfailed--;
	strmap_del(&w->by_name, f->name);
	free(f->name);
	if (i != last) {
		*f = w->f[last];
		strmap_put(&w->by_name, f->name, i);
		for (int s = S_DIR; s <= S_NEW; s++)
			if (f->wd[s] >= 0)
				wd_put(&w->wds, f->wd[s], i << 2 | (size_t)s);
	}
	w->nf--;
}

/* A watch the kernel gave: wd now means v, whatever it meant before. */
static void claim_wd(struct watch *w, int wd, size_t v)
{
	size_t old;

	/* the same inode again (a directory renamed): the kernel's wd */
	if (wd_get(&w->wds, wd, &old) && old != v)
		forget_wd(w, wd, false);
	wd_put(&w->wds, wd, v);
	wd_put(&hub.owners, wd, w->id);
}

/*
 * inotify_add_watch(2), saying once when the watch limit is reached.
 * The watch descriptor, 0 when there is nothing to watch (the directory
 * is not there), E_TEMP at the limit, E_FAIL otherwise.
 */
static int add_wd(struct watch *w, const char *path, uint32_t mask)
{
	int wd = inotify_add_watch(w->fd, path, mask);

	if (wd >= 0)
		return wd;
	if (errno == ENOENT || errno == ENOTDIR)
		return 0;
	if (errno == ENOSPC) {
		if (!w->warned_limit) {
			w->warned_limit = true;
			log_error("cannot watch '%s': the inotify watch limit "
				  "(fs.inotify.max_user_watches) is reached; "
				  "folders without a watch are looked at every "
				  "minute", path);
		}
		return E_TEMP;
	}
	log_error_errno("watch '%s'", path);
	return E_FAIL;
}

/* Watch a directory that is not a folder's, as kind. */
static int add_other(struct watch *w, const char *path, enum wkind kind,
		     uint32_t mask)
{
	struct wother *o;
	int wd;

	for (size_t i = 0; i < w->no; i++)
		if (!strcmp(w->o[i].path, path))
			return 0;
	if ((wd = add_wd(w, path, mask)) <= 0)
		return wd < 0 ? E_FAIL : 0;
	/* what wd meant before goes first: that may move the rows */
	claim_wd(w, wd, (size_t)-1);
	xgrow((void **)&w->o, &w->ao, w->no + 1, sizeof *w->o);
	o = &w->o[w->no];
	o->wd = wd;
	o->kind = kind;
	o->path = xstrdup(path);
	wd_put(&w->wds, wd, w->no++ << 2 | S_OTHER);
	log_debug("watching '%s'", path);
	return 1;
}

void watch_folder(struct watch *w, const char *folder, bool on_disk)
{
	struct wfolder *f = find_folder(w, folder);
	size_t i;
	bool failed = false;

	if (!on_disk) {
		/* renamed away, its kernel watches live on: remove them */
		if (f)
			drop_row(w, (size_t)(f - w->f), true);
		return;
	}
	if (!f) {
		xgrow((void **)&w->f, &w->af, w->nf + 1, sizeof *w->f);
		f = &w->f[w->nf];
		f->name = xstrdup(folder);
		f->wd[S_DIR] = f->wd[S_CUR] = f->wd[S_NEW] = -1;
		f->failed = false;
		strmap_put(&w->by_name, folder, w->nf++);
	}
	i = (size_t)(f - w->f);
	for (int s = *folder ? S_DIR : S_CUR; s <= S_NEW; s++) {
		char *p;
		int wd;
		if (f->wd[s] >= 0)
			continue;
		p = folder_path(w, folder, s);
		wd = add_wd(w, p, s == S_DIR ? MASK_FOLDER : MASK_SUB);
		free(p);
		/* claim_wd may move rows: f is found again after */
		if (wd > 0)
			claim_wd(w, wd, i << 2 | (size_t)s);
		f = &w->f[i];
		if (wd > 0)
			f->wd[s] = wd;
		else if (wd == E_TEMP)
			failed = true;
	}
	if (failed != f->failed) {
		f->failed = failed;
		if (failed)
			w->nfailed++;
		else
			w->nfailed--;
	}
}

/* A folder's slot is gone (deleted, or renamed away: rm). */
static void drop_slot(struct watch *w, const char *folder, int slot, bool rm)
{
	struct wfolder *f = find_folder(w, folder);

	if (f && f->wd[slot] >= 0)
		forget_wd(w, f->wd[slot], rm);
}

/* --- peers ----------------------------------------------------------------- */

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
		if (is_dir(p) && add_other(w, p, W_PEER, MASK_REFS) < 0)
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
	for (size_t i = 0; i < w->no;) {
		const char *name = strrchr(w->o[i].path, '/');
		if (w->o[i].kind == W_PEER && !is_peer(w, name + 1)) {
			forget_wd(w, w->o[i].wd, true);
			continue;
		}
		i++;
	}
	rp = xasprintf("%s/refs/peers", w->repo);
	add_peer_dirs(w, rp);
	free(rp);
}

/* --- setting up ------------------------------------------------------------ */

int watch_check(struct watch *w)
{
	char *refs, *rp;
	int r = 0, x;

	/* a watch set up now may have missed changes: look again */
	x = add_other(w, w->maildir, W_ROOT, MASK_ROOT);
	if (x < 0)
		r = E_FAIL;
	else if (x > 0 && w->started)
		worktree_dirty_all(w->wt);
	refs = xasprintf("%s/refs/heads", w->repo);
	rp = xasprintf("%s/refs/peers", w->repo);
	if (add_other(w, refs, W_REFS, MASK_REFS) < 0 ||
	    add_other(w, w->repo, W_REPO, IN_MOVED_TO | IN_ONLYDIR) < 0)
		r = E_FAIL;
	/* refs/peers/<node>/mail: what peers push (DESIGN section 6) */
	if (mkdir(rp, 0700) < 0 && errno != EEXIST)
		log_warn_errno("mkdir '%s'", rp);
	x = add_other(w, rp, W_PEERS, MASK_PEERS);
	if (x < 0 || add_peer_dirs(w, rp) < 0)
		r = E_FAIL;
	free(refs);
	free(rp);
	/* a folder the watch limit left unwatched is looked at whole */
	for (size_t i = 0; i < w->nf && w->nfailed; i++)
		if (w->f[i].failed)
			worktree_dirty_folder(w->wt, w->f[i].name);
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
	if (hub.users) {
		guess = hub.fd;
		goto have_fd;
	}
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
	hub.fd = guess;
have_fd:
	hub.users++;
	w = xcalloc(1, sizeof *w);
	w->fd = guess;
	xgrow((void **)&hub.tab, &hub.atab, hub.ntab + 1, sizeof *hub.tab);
	w->id = hub.ntab;
	hub.tab[hub.ntab++] = w;
	w->maildir = xstrdup(maildir);
	w->repo = xstrdup(repo_path);
	w->wt = wt;
	watch_check(w);
	w->started = true;
	*out = w;
	return 0;
}

/* w goes: its descriptors and its row in the hub (before its wds go). */
static void hub_forget(struct watch *w)
{
	/* the last one: closing the descriptor removes them all */
	bool rm = hub.users > 1;

	for (size_t i = 0; i < w->wds.cap; i++) {
		size_t id;
		int wd = w->wds.v[i].wd;
		if (wd && wd_get(&hub.owners, wd, &id) && id == w->id) {
			if (rm)
				inotify_rm_watch(w->fd, wd);
			wd_del(&hub.owners, wd);
		}
	}
	hub.tab[w->id] = NULL;
	for (size_t i = 0; i < hub.ntouched; i++)
		if (hub.touched[i] == w->id)
			hub.touched[i] = (size_t)-1;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	/* first: it reads w->wds, which goes below */
	hub_forget(w);
	for (size_t i = 0; i < w->nf; i++)
		free(w->f[i].name);
	free(w->f);
	for (size_t i = 0; i < w->no; i++)
		free(w->o[i].path);
	free(w->o);
	free(w->wds.v);
	strmap_clear(&w->by_name);
	free(w->maildir);
	free(w->repo);
	for (size_t i = 0; i < w->npeers; i++)
		free(w->peers[i]);
	free(w->peers);
	free(w);
	if (--hub.users == 0) {
		inotifytools_cleanup();
		free(hub.tab);
		free(hub.owners.v);
		free(hub.touched);
		memset(&hub, 0, sizeof hub);
		hub.fd = -1;
	}
}

void watch_set_events_fn(struct watch *w, watch_events_fn *fn, void *data)
{
	w->events_fn = fn;
	w->events_data = data;
}

int watch_fd(const struct watch *w)
{
	return w->fd;
}

int watch_count(const struct watch *w)
{
	return (int)w->wds.n;
}

size_t watch_unwatched(const struct watch *w)
{
	return w->nfailed;
}

/* --- events ---------------------------------------------------------------- */

static int sub_slot(const char *name)
{
	return !strcmp(name, "cur") ? S_CUR : !strcmp(name, "new") ? S_NEW : -1;
}

/* An event on the Maildir root. */
static void on_root(struct watch *w, const struct inotify_event *ev,
		    const char *name, unsigned *what)
{
	bool gone = ev->mask & (IN_DELETE | IN_MOVED_FROM);
	bool moved = ev->mask & IN_MOVED_FROM;
	int slot;

	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		log_warn("the Maildir '%s' was moved or deleted", w->maildir);
		worktree_dirty_all(w->wt);
		*what |= WATCH_CHANGED;
	} else if ((ev->mask & IN_ISDIR) && name[0] == '.' &&
		   folder_dir_valid(name)) {
		/* a folder that came is watched when it is looked at */
		if (gone) {
			struct wfolder *f = find_folder(w, name);
			if (f)
				drop_row(w, (size_t)(f - w->f), moved);
		}
		worktree_dirty_folder(w->wt, name);
		*what |= WATCH_CHANGED;
	} else if ((ev->mask & IN_ISDIR) && (slot = sub_slot(name)) >= 0) {
		if (gone)
			drop_slot(w, "", slot, moved);
		worktree_dirty_folder(w->wt, "");
		*what |= WATCH_CHANGED;
	} else if (!strcmp(name, "subscriptions")) {
		worktree_dirty_root(w->wt);
		*what |= WATCH_CHANGED;
	}
}

/* An event on a folder's directory (slot S_DIR) or its cur/ or new/. */
static void on_folder(struct watch *w, const struct inotify_event *ev,
		      const char *name, size_t row, int slot, unsigned *what)
{
	char *folder = w->f[row].name;
	int sub;

	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		worktree_dirty_folder(w->wt, folder);
		*what |= WATCH_CHANGED;
	} else if (slot != S_DIR) {
		if (*name && maildir_name_valid(name)) {
			worktree_dirty_name(w->wt, folder, subs[slot - S_CUR],
					    name);
			*what |= WATCH_CHANGED;
		}
	} else if ((ev->mask & IN_ISDIR) && (sub = sub_slot(name)) >= 0) {
		worktree_dirty_folder(w->wt, folder);
		*what |= WATCH_CHANGED;
		/* a cur/ or new/ that came is watched when it is looked at */
		if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
			drop_slot(w, folder, sub, ev->mask & IN_MOVED_FROM);
	} else if (!strcmp(name, "maildirfolder")) {
		worktree_dirty_folder(w->wt, folder);
		*what |= WATCH_CHANGED;
	}
}

/* An event on refs/peers/ or a directory of it. */
static void on_peers(struct watch *w, const struct wother *o,
		     const struct inotify_event *ev, const char *name,
		     unsigned *what)
{
	if (o->kind == W_PEER) {
		if (!strcmp(name, "mail"))
			*what |= WATCH_PEERS;
	} else if ((ev->mask & IN_ISDIR) && *name && is_peer(w, name)) {
		/* refs/peers/<node>/: a peer that pushed for the first time */
		char *p = xasprintf("%s/%s", o->path, name);
		add_other(w, p, W_PEER, MASK_REFS);
		free(p);
		*what |= WATCH_PEERS;
	} else if ((ev->mask & IN_ISDIR) && *name && !w->warned_stranger) {
		w->warned_stranger = true;
		log_debug("refs/peers/%s/: not a configured peer; "
			  "ignored (such names are logged once)", name);
	}
}

static void handle(struct watch *w, const struct inotify_event *ev,
		   unsigned *what)
{
	const char *name = ev->len ? ev->name : "";
	size_t v;

	if (ev->mask & IN_Q_OVERFLOW) {
		log_warn("inotify queue overflow: rescanning everything");
		worktree_dirty_all(w->wt);
		*what |= WATCH_OVERFLOW | WATCH_CHANGED | WATCH_MAIL |
			 WATCH_PEERS;
		return;
	}
	if (!wd_get(&w->wds, ev->wd, &v))
		return;	/* a watch already dropped */
	if (ev->mask & IN_IGNORED) {
		/* the kernel dropped it: its directory is gone */
		if ((v & 3) != S_OTHER) {
			struct wfolder *f = &w->f[v >> 2];
			worktree_dirty_folder(w->wt, f->name);
			*what |= WATCH_CHANGED;
			forget_wd(w, ev->wd, false);
			/* the folder is gone whole: its row too */
			if (f->wd[S_DIR] < 0 && f->wd[S_CUR] < 0 &&
			    f->wd[S_NEW] < 0 && !f->failed)
				drop_row(w, v >> 2, false);
			return;
		}
		if (w->o[v >> 2].kind == W_ROOT) {
			worktree_dirty_all(w->wt);
			*what |= WATCH_CHANGED;
		}
		forget_wd(w, ev->wd, false);
		return;
	}
	if ((v & 3) != S_OTHER) {
		on_folder(w, ev, name, v >> 2, (int)(v & 3), what);
		return;
	}
	switch (w->o[v >> 2].kind) {
	case W_ROOT:
		on_root(w, ev, name, what);
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
	case W_PEER:
		on_peers(w, &w->o[v >> 2], ev, name, what);
		break;
	default:
		break;
	}
}

/* Another watch's event: handled now, told after the read (touch_end). */
static void handle_other(struct watch *o, const struct inotify_event *ev)
{
	handle(o, ev, &o->pending);
	if (!o->touched && o->pending) {
		o->touched = true;
		xgrow((void **)&hub.touched, &hub.atouched, hub.ntouched + 1,
		      sizeof *hub.touched);
		hub.touched[hub.ntouched++] = o->id;
	}
}

/* An event: for whoever owns its watch descriptor; an overflow, for all. */
static void dispatch(struct watch *w, const struct inotify_event *ev,
		     unsigned *what)
{
	size_t id;

	if (ev->mask & IN_Q_OVERFLOW) {
		for (size_t i = 0; i < hub.ntab; i++)
			if (hub.tab[i] && hub.tab[i] != w)
				handle_other(hub.tab[i], ev);
		handle(w, ev, what);
	} else if (hub.ntab == 1 || !wd_get(&hub.owners, ev->wd, &id) ||
		   hub.tab[id] == w) {
		handle(w, ev, what);
	} else if (hub.tab[id]) {
		handle_other(hub.tab[id], ev);
	}
}

/* Tell the other watches what they got, once the reading is done. */
static void touch_end(void)
{
	while (hub.ntouched) {
		size_t id = hub.touched[--hub.ntouched];
		struct watch *o = id == (size_t)-1 ? NULL : hub.tab[id];
		unsigned bits;

		if (!o)
			continue;
		o->touched = false;
		if (!o->events_fn)
			continue;	/* kept for its own watch_read() */
		bits = o->pending;
		o->pending = 0;
		if (bits & WATCH_OVERFLOW)
			watch_check(o);
		o->events_fn(o->events_data, bits);
	}
}

int watch_read(struct watch *w, unsigned *what)
{
	struct inotify_event *ev;
	int r = 0;

	*what = w->pending;
	w->pending = 0;
	/* a zero timeout never blocks; the library empties its buffer first */
	while ((ev = inotifytools_next_events(0, 1)))
		dispatch(w, ev, what);
	if (inotifytools_error() && inotifytools_error() != EINTR) {
		log_error("read inotify events: %s",
			  strerror(inotifytools_error()));
		for (size_t i = 0; i < hub.ntab; i++) {
			struct watch *o = hub.tab[i];
			if (!o)
				continue;
			worktree_dirty_all(o->wt);
			o->pending |= WATCH_CHANGED | WATCH_OVERFLOW;
			if (o != w && !o->touched) {
				o->touched = true;
				xgrow((void **)&hub.touched, &hub.atouched,
				      hub.ntouched + 1, sizeof *hub.touched);
				hub.touched[hub.ntouched++] = o->id;
			}
		}
		*what |= w->pending;
		w->pending = 0;
		r = E_FAIL;
	}
	if (*what & WATCH_OVERFLOW)
		watch_check(w);
	touch_end();
	return r;
}
