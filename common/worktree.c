/*
 * worktree: the Maildir on disk and refs/maildag/worktree (see worktree.h).
 *
 * Two invariants carry everything here:
 *  - the worktree tree says what the disk holds, no more: it moves only
 *    after the disk (fsynced) holds what it will say;
 *  - local changes are diff(worktree, disk) and go on top of mail; changes
 *    from mail reach the disk as diff(worktree, mail), one file operation
 *    per message, each checked against the name the worktree gives.
 *
 * A scan collects three lists: messages the worktree has and the disk
 * has not (rm), messages on disk the worktree lacks (add), and messages
 * whose mtime changed (mt).  A key both removed and added is a rename
 * (flags, new/ -> cur/, another folder) and keeps its blob.  A file that
 * cannot be read is in none of them: it is logged once, kept in
 * wt->unreadable and looked at again by every commit.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "delivery.h"
#include "fnv.h"
#include "folder.h"
#include "format.h"
#include "fsutil.h"
#include "journal.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "merge.h"
#include "mtimes.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "strvec.h"
#include "treediff.h"
#include "vec.h"
#include "worktree.h"
#include "xalloc.h"

#define MARKER "maildirfolder"
#define SUBSCRIPTIONS "subscriptions"
#define DIRTY_MAX 500000	/* more dirty names than this: rescan all */
#define COPY_SETTLE 2		/* seconds a duplicate key may be half a move */
#define SCAN_SLICE_ADDS 5000	/* new files one slice of a rescan reads */
#define SCAN_SLICE_MIN 32	/* folders a slice looks at, at least */
#define KIDX_FOLDERS 64		/* more folders than this: index keys */

static const char *const subs[2] = { "cur", "new" };

/* --- the worktree ------------------------------------------------------- */

struct worktree {
	struct repo *r;
	char *maildir;
	char *email;		/* commit identity */
	bool full;		/* everything must be looked at */
	bool root;		/* the root: subscriptions, folder list */
	struct strvec folders;	/* folders to look at whole */
	struct strmap folder_set;	/* the same, to find one at once */
	struct strvec names;	/* "<folder>/<sub>/<name>" to look at */
	struct strvec later;	/* names held back (maybe half a move) */
	double later_due;
	bool ensured;		/* every folder's cur/ new/ tmp/ checked */
	unsigned long gen;	/* counts dirty marks: did anything happen? */
	worktree_poll_fn *poll;	/* read pending events (they mark us) */
	void *poll_data;
	char *origin;		/* commit messages: "<origin>: ..." */
	struct strvec unreadable;	/* files skipped: cannot be read */
	double slice;		/* seconds one step may take; 0: no bound */
	double add_cost;	/* seconds one new file took to commit, lately */
	double apply_tail;	/* seconds a slice of an apply took after its
				   files (recording them), lately */
	double rescan_t0;	/* a sliced full rescan began; 0: none */
	size_t rescan_seen, rescan_slices;
	struct strvec queue;	/* folders a look at the root has yet to */
	size_t qpos;		/* see, from queue.v[qpos] on */
	bool pass;		/* such a look is under way (the queue is its) */
	size_t pass_left_out;	/* folders it left out so far */
	size_t left_out;	/* what the last whole look left out */
	worktree_folder_fn *folder_fn;	/* told of each folder looked at */
	void *folder_data;
	struct kidx *kidx;	/* the worktree tree's keys (find_key) */
	struct plan *plan;	/* an apply cut short, to go on with */
};

static void kidx_free(struct kidx *k);
static void plan_free(struct plan *pl);

void worktree_set_slice(struct worktree *wt, double seconds)
{
	wt->slice = seconds;
}

void worktree_set_poll(struct worktree *wt, worktree_poll_fn *fn, void *data)
{
	wt->poll = fn;
	wt->poll_data = data;
}

void worktree_set_folder_fn(struct worktree *wt, worktree_folder_fn *fn,
			    void *data)
{
	wt->folder_fn = fn;
	wt->folder_data = data;
}

size_t worktree_left_out(const struct worktree *wt)
{
	return wt->left_out;
}

struct worktree *worktree_new(struct repo *r, const char *maildir,
			      const char *node)
{
	struct worktree *wt = xcalloc(1, sizeof *wt);

	wt->r = r;
	wt->maildir = xstrdup(maildir);
	wt->email = xasprintf("syncd@%s", node && *node ? node : "localhost");
	wt->add_cost = 0.004;	/* a first guess (a new folder costs that much on a
				   busy machine); measured from then on */
	return wt;
}

void worktree_free(struct worktree *wt)
{
	if (!wt)
		return;
	strvec_clear(&wt->folders);
	strmap_clear(&wt->folder_set);
	strvec_clear(&wt->names);
	strvec_clear(&wt->later);
	strvec_clear(&wt->unreadable);
	free(wt->origin);
	strvec_clear(&wt->queue);
	kidx_free(wt->kidx);
	plan_free(wt->plan);
	free(wt->email);
	free(wt->maildir);
	free(wt);
}

void worktree_set_origin(struct worktree *wt, const char *origin)
{
	free(wt->origin);
	wt->origin = xstrdup(origin);
}

const char *const *worktree_unreadable(const struct worktree *wt, size_t *n)
{
	*n = wt->unreadable.n;
	return (const char *const *)wt->unreadable.v;
}

void worktree_dirty_all(struct worktree *wt)
{
	wt->gen++;
	wt->full = true;
	wt->root = true;
	strvec_clear(&wt->names);
	strvec_clear(&wt->folders);
	strmap_clear(&wt->folder_set);
	strvec_clear(&wt->queue);
	wt->qpos = 0;
	wt->pass = false;
}

void worktree_dirty_root(struct worktree *wt)
{
	wt->gen++;
	wt->root = true;
}

void worktree_dirty_folder(struct worktree *wt, const char *folder)
{
	wt->gen++;
	if (wt->full || !folder_dir_valid(folder) ||
	    !strmap_put(&wt->folder_set, folder, 0))
		return;
	strvec_push(&wt->folders, folder);
}

void worktree_dirty_name(struct worktree *wt, const char *folder,
			 const char *sub, const char *name)
{
	char *s;

	wt->gen++;
	if (wt->full || !folder_dir_valid(folder) || !maildir_name_valid(name))
		return;
	if (wt->names.n >= DIRTY_MAX) {
		log_info("more than %d changed names: rescanning everything",
			 DIRTY_MAX);
		worktree_dirty_all(wt);
		return;
	}
	s = xasprintf("%s/%s/%s", folder, sub, name);
	strvec_push_nodup(&wt->names, s);
}

bool worktree_is_dirty(const struct worktree *wt)
{
	return wt->full || wt->root || wt->folders.n || wt->names.n ||
	       wt->qpos < wt->queue.n || (wt->later.n && clock_now() >= wt->later_due);
}

double worktree_deferred_due(const struct worktree *wt)
{
	return wt->later.n ? wt->later_due : 0;
}

/* --- names and paths ---------------------------------------------------- */

bool worktree_ignored_name(const char *name)
{
	static const char *const exact[] = {
		"tmp", "maildirsize", "mailboxes.lock", "subscriptions.lock",
		"dovecot-keywords",
	};
	static const char *const prefixes[] = { "dovecot", "courier", "." };

	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (!strcmp(name, exact[i]))
			return true;
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

/* The directory of folder's sub on disk, or of the folder when sub is NULL. */
static char *disk_dir(const struct worktree *wt, const char *folder,
		      const char *sub)
{
	return layout_folder_dir(wt->maildir, folder, sub);
}

/*
 * Split a tree path (layout_parse_tree_path) into new strings, sub being
 * one of subs[]; E_INVALID when it is not a message's path.
 */
static int parse_msg_path(const char *path, char **folder, const char **sub,
			  char **name)
{
	struct layout_path lp;

	if (layout_parse_tree_path(&lp, path) < 0)
		return E_INVALID;
	*folder = xstrndup(lp.folder, lp.folder_len);
	*sub = subs[lp.sub];
	*name = xstrdup(lp.name);
	return 0;
}

static bool folder_on_disk(const struct worktree *wt, const char *folder)
{
	return layout_folder_exists(wt->maildir, folder);
}

/* --- reading trees ------------------------------------------------------ */

/*
 * The tree at path under root (path "" or NULL: root itself); *out NULL
 * when there is none.  The caller frees *out.
 */
static int subtree(git_tree **out, struct repo *r, const struct oid *root,
		   const char *path)
{
	git_tree *t = NULL;
	git_tree_entry *e = NULL;
	int err;

	*out = NULL;
	if (git_tree_lookup(&t, r->git, GIT_OID(root)) < 0)
		return log_error("read tree: %s", repo_git_error());
	if (!path || !*path) {
		*out = t;
		return 0;
	}
	err = git_tree_entry_bypath(&e, t, path);
	if (err == 0 && git_tree_entry_type(e) == GIT_OBJECT_TREE &&
	    git_tree_lookup(out, r->git, git_tree_entry_id(e)) < 0)
		err = -1;
	git_tree_entry_free(e);
	git_tree_free(t);
	if (err < 0 && err != GIT_ENOTFOUND)
		return log_error("read tree '%s': %s", path, repo_git_error());
	return 0;
}

/*
 * The tree at path under the open tree root; *out NULL when there is
 * none.  The caller frees *out.
 */
static int subtree_of(git_tree **out, struct repo *r, git_tree *root,
		      const char *path)
{
	git_tree_entry *e = NULL;
	int err;

	*out = NULL;
	err = git_tree_entry_bypath(&e, root, path);
	if (err == 0 && git_tree_entry_type(e) == GIT_OBJECT_TREE &&
	    git_tree_lookup(out, r->git, git_tree_entry_id(e)) < 0)
		err = -1;
	git_tree_entry_free(e);
	if (err < 0 && err != GIT_ENOTFOUND)
		return log_error("read tree '%s': %s", path, repo_git_error());
	return 0;
}

/* A message found in a tree. */
struct hit {
	char *folder;
	const char *sub;
	char *name;
	struct oid oid;
};

struct hitv {
	struct hit *v;
	size_t n, alloc;
};

static void hitv_clear(struct hitv *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].folder);
		free(h->v[i].name);
	}
	VEC_FREE(h);
}

/* Append the entries of shard tree t whose key is key. */
static void shard_find(struct hitv *out, git_tree *t, const char *folder,
		       const char *sub, const char *key, size_t klen)
{
	size_t lo = 0, hi = git_tree_entrycount(t);
	struct hit *h;

	/* entries are sorted: binary search for the first name >= key */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *n = git_tree_entry_name(git_tree_entry_byindex(t, mid));
		if (strncmp(n, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		const char *n = git_tree_entry_name(e);
		if (strncmp(n, key, klen))
			break;
		if (n[klen] != '\0' && n[klen] != ',' && n[klen] != ':')
			continue;
		if (git_tree_entry_type(e) != GIT_OBJECT_BLOB)
			continue;
		h = VEC_PUSH(out);
		h->folder = xstrdup(folder);
		h->sub = sub;
		h->name = xstrdup(n);
		oid_cpy(&h->oid, OID(git_tree_entry_id(e)));
	}
}

/* Every message with key in the tree root, in any folder. */
static int tree_find_key(struct hitv *out, struct repo *r, const struct oid *root,
			 const char *key, size_t klen)
{
	git_tree *rt;
	char shard[3];
	int ret = 0;

	if (subtree(&rt, r, root, NULL) < 0)
		return E_TEMP;
	maildir_shard_hex(shard, key, klen);
	for (size_t i = 0; i <= git_tree_entrycount(rt) && ret == 0; i++) {
		const char *folder = "";

		if (i > 0) {
			const git_tree_entry *e = git_tree_entry_byindex(rt, i - 1);
			folder = git_tree_entry_name(e);
			if (folder[0] != '.' ||
			    git_tree_entry_type(e) != GIT_OBJECT_TREE)
				continue;
		}
		for (size_t s = 0; s < 2; s++) {
			struct strbuf p = STRBUF_INIT;
			git_tree *t;
			if (*folder)
				strbuf_addf(&p, "%s/", folder);
			strbuf_addf(&p, "%s/%s", subs[s], shard);
			if (subtree_of(&t, r, rt, p.buf) < 0)
				ret = E_TEMP;
			else if (t) {
				shard_find(out, t, folder, subs[s], key, klen);
				git_tree_free(t);
			}
			strbuf_release(&p);
		}
	}
	git_tree_free(rt);
	return ret;
}

static int find_key(struct worktree *wt, struct hitv *out, const struct oid *tree,
		    git_tree *root, const char *key, size_t klen);

/*
 * mtime records of a tree, read a shard at a time as needed, from its
 * mtimes/ tree read once (not from the root each time: the root of
 * thousands of folders is the largest tree there is).
 */
struct mtcache {
	const struct oid *tree;
	git_tree *dir;		/* mtimes/, once read; NULL: none */
	bool dir_read;
	struct mtimes m[256];
	bool loaded[256];
};

static void mtcache_init(struct mtcache *c, const struct oid *tree)
{
	memset(c, 0, sizeof *c);
	c->tree = tree;
}

static void mtcache_release(struct mtcache *c)
{
	for (size_t i = 0; i < 256; i++)
		mtimes_release(&c->m[i]);
	git_tree_free(c->dir);
}

/* Read shard s of c; < 0 (logged) when it cannot be. */
static int mtcache_load(struct mtcache *c, struct repo *r, unsigned s)
{
	const git_tree_entry *e;
	git_blob *b = NULL;
	char hex[3];
	int ret = 0;

	if (!c->dir_read) {
		if (subtree(&c->dir, r, c->tree, MTIMES_DIR) < 0)
			return E_TEMP;
		c->dir_read = true;
	}
	snprintf(hex, sizeof hex, "%02x", s);
	e = c->dir ? git_tree_entry_byname(c->dir, hex) : NULL;
	if (!e || git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		return 0;
	if (git_blob_lookup(&b, r->git, git_tree_entry_id(e)) < 0)
		return log_error("read '%s/%s': %s", MTIMES_DIR, hex,
				 repo_git_error());
	if (mtimes_parse(&c->m[s], git_blob_rawcontent(b),
			 (size_t)git_blob_rawsize(b), NULL) < 0)
		ret = log_error("'%s/%s' is not a list of mtimes", MTIMES_DIR,
				hex);
	git_blob_free(b);
	return ret;
}

/* The mtime the tree gives key (MTIME_NONE when it gives none). */
static long long mtcache_get(struct mtcache *c, struct repo *r,
			     const char *key, size_t klen)
{
	unsigned s = maildir_shard(key, klen);
	char k[MAILDIR_NAME_MAX + 1];

	if (!c->loaded[s]) {
		if (mtcache_load(c, r, s) < 0)
			log_warn("ignoring the mtime records of shard %02x", s);
		c->loaded[s] = true;
	}
	if (klen > MAILDIR_NAME_MAX)
		return MTIME_NONE;
	memcpy(k, key, klen);
	k[klen] = '\0';
	return mtimes_get(&c->m[s], k);
}

/* --- scanning ----------------------------------------------------------- */

/* One message at one place. */
struct ent {
	char *folder;
	const char *sub;
	char *name;
	size_t klen;
	struct oid oid;
	bool have_oid;
	bool claimed;		/* rm: its key was added elsewhere (a rename) */
	bool rehash;		/* add: new bytes under a known name */
	long long mtime;	/* on disk (add); MTIME_NONE when unknown */
	time_t ctime;
};

struct entv {
	struct ent *v;
	size_t n, alloc;
};

static struct ent *entv_push(struct entv *ev, const char *folder,
			     const char *sub, const char *name)
{
	struct ent *e;

	e = VEC_PUSH(ev);
	e->folder = xstrdup(folder);
	e->sub = sub;
	e->name = xstrdup(name);
	e->klen = maildir_key_len(name);
	e->mtime = MTIME_NONE;
	return e;
}

static void ent_release(struct ent *e)
{
	free(e->folder);
	free(e->name);
	e->folder = e->name = NULL;
}

static void entv_clear(struct entv *ev)
{
	for (size_t i = 0; i < ev->n; i++)
		ent_release(&ev->v[i]);
	VEC_FREE(ev);
}

/* Order by key, then folder, sub and name: deterministic everywhere. */
static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	size_t k = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->name, y->name, k);

	if (c)
		return c;
	if (x->klen != y->klen)
		return x->klen < y->klen ? -1 : 1;
	if ((c = strcmp(x->folder, y->folder)))
		return c;
	if ((c = strcmp(x->sub, y->sub)))
		return c;
	return strcmp(x->name, y->name);
}

struct mtch {
	char *key;
	long long mtime;
};

struct scan {
	struct repo *r;
	const struct oid *wtree;	/* the worktree's tree */
	const struct oid *mtree;	/* mail's tree when it differs, else NULL */
	struct entv rm, add;
	struct mtch *mt;
	size_t nmt, amt;
	struct strvec mk_add, mk_rm;	/* folders whose marker comes, goes */
	int subs;			/* 1 set to subs_oid, -1 removed */
	struct oid subs_oid;
	struct strmap scanned;		/* folders looked at whole */
	struct strvec later;		/* names held back */
	struct mtcache wmt;
	git_tree *root;			/* the worktree's tree, once read */
	git_tree *mroot;		/* mail's, when it differs */
	size_t nfolders;		/* mail's folders and those admitted */
	bool counted;			/* nfolders is known */
	size_t seen;			/* files listed */
	bool temp_error;
	struct strvec unreadable;	/* files that could not be read */
	const struct strvec *was_unreadable;	/* the last commit's */
	bool partial;			/* a slice: some folders are left */
};

static void scan_init(struct scan *sc, struct repo *r, const struct oid *wtree)
{
	memset(sc, 0, sizeof *sc);
	sc->r = r;
	sc->wtree = wtree;
	mtcache_init(&sc->wmt, wtree);
}

static void scan_release(struct scan *sc)
{
	entv_clear(&sc->rm);
	entv_clear(&sc->add);
	for (size_t i = 0; i < sc->nmt; i++)
		free(sc->mt[i].key);
	free(sc->mt);
	strvec_clear(&sc->mk_add);
	strvec_clear(&sc->mk_rm);
	strmap_clear(&sc->scanned);
	strvec_clear(&sc->later);
	strvec_clear(&sc->unreadable);
	mtcache_release(&sc->wmt);
	git_tree_free(sc->root);
	git_tree_free(sc->mroot);
}

/* The worktree's tree, read once per scan; NULL when it cannot be. */
static git_tree *scan_root_tree(struct scan *sc)
{
	if (!sc->root && git_tree_lookup(&sc->root, sc->r->git, GIT_OID(sc->wtree)) < 0) {
		log_error("read tree: %s", repo_git_error());
		sc->root = NULL;
	}
	return sc->root;
}

/*
 * Can path be opened for reading?  0 yes; E_NOTFOUND gone; E_PERM it
 * cannot be read (permissions, a symlink put there, ...), the reason in
 * *err; E_TEMP when this process is short of something.  Logs nothing.
 */
static int readable(const char *path, int *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	*err = errno;
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (*err == ENOENT || *err == ENOTDIR)
		return E_NOTFOUND;
	if (*err == EMFILE || *err == ENFILE || *err == ENOMEM || *err == EINTR)
		return E_TEMP;
	return E_PERM;
}

/*
 * A file that cannot be read is skipped, never a reason to stop: the
 * rest is committed without it.  It is logged once (not again while it
 * stays unreadable), and looked at again by every commit until it can
 * be read.  what: "<folder>/<sub>/<name>" or "subscriptions".
 */
static void unreadable(struct scan *sc, const char *what, const char *path,
		       int err)
{
	if (strvec_has(&sc->unreadable, what))
		return;
	if (!sc->was_unreadable || !strvec_has(sc->was_unreadable, what))
		log_warn("cannot read '%s': %s; skipped until it can be read",
			 path, strerror(err));
	strvec_push(&sc->unreadable, what);
}

static void scan_mtime(struct scan *sc, const char *name, size_t klen,
		       long long disk)
{
	long long known = mtcache_get(&sc->wmt, sc->r, name, klen);

	if (known == disk)
		return;
	xgrow((void **)&sc->mt, &sc->amt, sc->nmt + 1, sizeof *sc->mt);
	sc->mt[sc->nmt].key = xstrndup(name, klen);
	sc->mt[sc->nmt].mtime = disk;
	sc->nmt++;
}

/*
 * A file the worktree has under the same name: only its mtime can have
 * changed, or (a client that rewrites in place) its bytes, which always
 * moves the mtime too; so only then are the bytes read again.
 */
static int scan_both(struct worktree *wt, struct scan *sc, const char *folder,
		     const char *sub, const char *name, const struct oid *woid,
		     const struct stat *st)
{
	size_t klen = maildir_key_len(name);
	char *dir, *p;
	struct oid now;
	int ret = 0, err;

	if (mtcache_get(&sc->wmt, sc->r, name, klen) == st->st_mtime)
		return 0;
	dir = disk_dir(wt, folder, sub);
	p = xasprintf("%s/%s", dir, name);
	ret = readable(p, &err);
	if (ret == E_PERM) {
		/* unknown bytes: left as the worktree says, for now */
		char *what = xasprintf("%s/%s/%s", folder, sub, name);
		unreadable(sc, what, p, err);
		free(what);
		ret = 0;
	} else if (ret == E_NOTFOUND) {
		ret = 0;	/* gone meanwhile: its own event follows */
	} else if (ret < 0) {
		sc->temp_error = true;
	} else if (repo_blob_hash_file(&now, p) < 0) {
		if (path_exists(p)) {
			sc->temp_error = true;
			ret = E_TEMP;
		}
		/* gone meanwhile: its own event follows */
	} else if (!oid_equal(&now, woid)) {
		struct ent *e = entv_push(&sc->rm, folder, sub, name);
		oid_cpy(&e->oid, woid);
		e->have_oid = true;
		e = entv_push(&sc->add, folder, sub, name);
		e->mtime = st->st_mtime;
		e->ctime = st->st_ctime;
		e->rehash = true;
	} else {
		scan_mtime(sc, name, klen, st->st_mtime);
	}
	free(p);
	free(dir);
	return ret;
}

/* Is there a regular file at dirfd/name?  Its stat in *st. */
static int disk_file(int dirfd, const char *name, struct stat *st)
{
	if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return log_error_errno("stat '%s'", name);
	}
	return S_ISREG(st->st_mode) ? 1 : 0;
}

/*
 * Look at one name in folder/sub; shard is the worktree's shard tree that
 * would hold it (NULL: there is none).
 */
static int scan_name(struct worktree *wt, struct scan *sc, const char *folder,
		     const char *sub, const char *name, git_tree *shard)
{
	const git_tree_entry *te;
	char *dir = disk_dir(wt, folder, sub);
	struct stat st;
	struct oid oid;
	int dfd, on_disk = 0, known;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		on_disk = disk_file(dfd, name, &st);
		close(dfd);
	} else if (errno != ENOENT && errno != ENOTDIR) {
		on_disk = log_error_errno("open '%s'", dir);
	}
	free(dir);
	if (on_disk < 0) {
		sc->temp_error = true;
		return E_TEMP;
	}
	te = shard ? git_tree_entry_byname(shard, name) : NULL;
	known = te && git_tree_entry_type(te) == GIT_OBJECT_BLOB ? 0 : E_NOTFOUND;
	if (known == 0)
		oid_cpy(&oid, OID(git_tree_entry_id(te)));
	if (known == 0 && !on_disk) {
		struct ent *e = entv_push(&sc->rm, folder, sub, name);
		oid_cpy(&e->oid, &oid);
		e->have_oid = true;
	} else if (known != 0 && on_disk) {
		struct ent *e = entv_push(&sc->add, folder, sub, name);
		e->mtime = st.st_mtime;
		e->ctime = st.st_ctime;
	} else if (on_disk) {
		return scan_both(wt, sc, folder, sub, name, &oid, &st);
	}
	return 0;
}

struct dent {
	char *name;
	unsigned shard;
};

static int dent_cmp(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Compare all of folder/sub on disk with the worktree. */
static int scan_sub(struct worktree *wt, struct scan *sc, const char *folder,
		    const char *sub)
{
	char *dir = disk_dir(wt, folder, sub);
	struct dent *d = NULL;
	size_t nd = 0, ad = 0, di = 0;
	struct strbuf tp = STRBUF_INIT;
	git_tree *st = NULL;
	struct dirent *de;
	DIR *dh = opendir(dir);
	int ret = 0;

	if (!dh && errno != ENOENT && errno != ENOTDIR) {
		ret = log_error_errno("opendir '%s'", dir);
		goto done;
	}
	while (dh && (de = readdir(dh))) {
		if (!maildir_name_valid(de->d_name))
			continue;	/* ".", "..", dot files, odd names */
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		xgrow((void **)&d, &ad, nd + 1, sizeof *d);
		d[nd].name = xstrdup(de->d_name);
		d[nd].shard = maildir_shard(de->d_name,
					    maildir_key_len(de->d_name));
		nd++;
	}
	qsort(d, nd, sizeof *d, dent_cmp);
	sc->seen += nd;

	if (*folder)
		strbuf_addf(&tp, "%s/", folder);
	strbuf_addstr(&tp, sub);
	if (!scan_root_tree(sc) ||
	    subtree_of(&st, sc->r, sc->root, tp.buf) < 0) {
		ret = E_TEMP;
		goto done;
	}
	for (unsigned s = 0; s < 256; s++) {
		char hex[3];
		git_tree *sh = NULL;
		size_t dn = di, wi = 0, wn = 0;

		snprintf(hex, sizeof hex, "%02x", s);
		if (st) {
			const git_tree_entry *e = git_tree_entry_byname(st, hex);
			if (e && git_tree_entry_type(e) == GIT_OBJECT_TREE &&
			    git_tree_lookup(&sh, sc->r->git,
					    git_tree_entry_id(e)) < 0) {
				ret = log_error("read tree: %s", repo_git_error());
				goto done;
			}
		}
		wn = sh ? git_tree_entrycount(sh) : 0;
		while (dn < nd && d[dn].shard == s)
			dn++;
		while (di < dn || wi < wn) {
			const git_tree_entry *we =
				wi < wn ? git_tree_entry_byindex(sh, wi) : NULL;
			const char *wname = we ? git_tree_entry_name(we) : NULL;
			int c = !wname ? -1 : di >= dn ? 1 :
				strcmp(d[di].name, wname);
			struct stat sb;
			int f;

			if (c > 0) {
				struct ent *e = entv_push(&sc->rm, folder, sub, wname);
				oid_cpy(&e->oid, OID(git_tree_entry_id(we)));
				e->have_oid = true;
				wi++;
				continue;
			}
			f = disk_file(dirfd(dh), d[di].name, &sb);
			if (f < 0) {
				ret = E_TEMP;
				git_tree_free(sh);
				goto done;
			}
			if (c < 0 && f) {
				struct ent *e = entv_push(&sc->add, folder, sub,
							  d[di].name);
				e->mtime = sb.st_mtime;
				e->ctime = sb.st_ctime;
			} else if (c == 0 && f) {
				scan_both(wt, sc, folder, sub, d[di].name,
					  OID(git_tree_entry_id(we)), &sb);
			} else if (c == 0) {
				/* gone since readdir, or not a file */
				struct ent *e = entv_push(&sc->rm, folder, sub, wname);
				oid_cpy(&e->oid, OID(git_tree_entry_id(we)));
				e->have_oid = true;
			}
			if (c == 0)
				wi++;
			di++;
		}
		git_tree_free(sh);
	}
done:
	if (ret < 0)
		sc->temp_error = true;
	git_tree_free(st);
	strbuf_release(&tp);
	if (dh)
		closedir(dh);
	for (size_t i = 0; i < nd; i++)
		free(d[i].name);
	free(d);
	free(dir);
	return ret;
}

static int tree_has(struct scan *sc, const char *path, struct oid *oid)
{
	git_tree_entry *e = NULL;
	int r;

	if (!scan_root_tree(sc)) {
		sc->temp_error = true;
		return E_TEMP;
	}
	r = git_tree_entry_bypath(&e, sc->root, path);
	if (r == 0 && oid)
		oid_cpy(oid, OID(git_tree_entry_id(e)));
	git_tree_entry_free(e);
	if (r < 0 && r != GIT_ENOTFOUND) {
		log_error("read tree: %s", repo_git_error());
		sc->temp_error = true;
		return E_TEMP;
	}
	return r == 0;
}

/* Does the worktree's tree hold folder (marker or not)?  < 0 on error. */
static int in_worktree(struct scan *sc, const char *folder)
{
	git_tree *t = scan_root_tree(sc);
	const git_tree_entry *e;

	if (!t) {
		sc->temp_error = true;
		return E_TEMP;
	}
	if (!*folder)
		return 1;
	e = git_tree_entry_byname(t, folder);
	return e && git_tree_entry_type(e) == GIT_OBJECT_TREE;
}

/* mail's tree, read once per scan; NULL when it cannot be. */
static git_tree *scan_mail_tree(struct scan *sc)
{
	if (!sc->mtree)
		return scan_root_tree(sc);
	if (!sc->mroot &&
	    git_tree_lookup(&sc->mroot, sc->r->git, GIT_OID(sc->mtree)) < 0) {
		log_error("read tree: %s", repo_git_error());
		sc->mroot = NULL;
	}
	return sc->mroot;
}

/* How many folders a root tree holds, INBOX counted whether or not it does. */
static size_t count_folders(git_tree *root)
{
	size_t n = 1;

	for (size_t i = 0; i < git_tree_entrycount(root); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(root, i);
		if (git_tree_entry_name(e)[0] == '.' &&
		    git_tree_entry_type(e) == GIT_OBJECT_TREE)
			n++;
	}
	return n;
}

/*
 * May folder, on disk and not in the worktree, be committed?
 * folder_limit (format.h) holds for what this replica commits as for
 * what it takes in, counted on mail's tree with INBOX always in: a folder
 * mail holds already is in; another only while mail's folders and those
 * admitted so far stay within the limit.  Inside a look at the root
 * (in_pass), whose folders come in name order, that decides.  A folder
 * met on its own (an event) is admitted at once only when it and every
 * folder the look under way has yet to reach fit together and none is
 * left out; otherwise the root is marked and its look decides, so which
 * folders stay out follows from the names, not from the order of events.
 * 1 admitted, 0 not (now), < 0 error.
 */
static int admit(struct worktree *wt, struct scan *sc, const char *folder,
		 bool in_pass)
{
	git_tree *m = scan_mail_tree(sc);
	const git_tree_entry *e;
	size_t limit = format_get_limits()->folders, pending = 0;

	if (!m)
		return E_TEMP;
	e = git_tree_entry_byname(m, folder);
	if (e && git_tree_entry_type(e) == GIT_OBJECT_TREE)
		return 1;
	if (!sc->counted) {
		sc->nfolders = count_folders(m);
		sc->counted = true;
	}
	if (!in_pass && wt->pass)
		pending = wt->queue.n - wt->qpos;
	if ((in_pass || !wt->left_out) && sc->nfolders + pending < limit) {
		sc->nfolders++;
		return 1;
	}
	if (!in_pass)
		worktree_dirty_root(wt);
	return 0;
}

bool worktree_folder_fits(const char *repository, const char *folder)
{
	struct repo *r = NULL;
	git_tree *t = NULL;
	const git_tree_entry *e;
	struct oid m, tree;
	bool ok = true;

	if (!*folder || repo_open(&r, repository, 0) < 0)
		return true;
	if (repo_ref_read(&m, r, REF_MAIL) == 0 &&
	    repo_commit_tree(&tree, r, &m) == 0 &&
	    git_tree_lookup(&t, r->git, GIT_OID(&tree)) == 0) {
		e = git_tree_entry_byname(t, folder);
		ok = (e && git_tree_entry_type(e) == GIT_OBJECT_TREE) ||
		     count_folders(t) < format_get_limits()->folders;
	}
	git_tree_free(t);
	repo_free(r);
	return ok;
}

/*
 * Compare a whole folder with the worktree: 0, 1 when folder_limit
 * leaves it out (nothing of it is read), < 0 on error.  in_pass: it comes
 * from a look at the root (the queue).  A folder that is part of the
 * mailbox is told to wt->folder_fn (the daemon watches it) before it is
 * read, so nothing changes unseen.
 */
static int scan_folder(struct worktree *wt, struct scan *sc, const char *folder,
		       bool in_pass)
{
	size_t out = 0;
	bool disk;
	int ret = 0;

	if (!strmap_put(&sc->scanned, folder, 0))
		return strmap_get(&sc->scanned, folder, &out) && out ? 1 : 0;
	disk = folder_on_disk(wt, folder);
	if (*folder) {
		char *mp = xasprintf("%s/" MARKER, folder);
		int known = tree_has(sc, mp, NULL), a;
		int held = in_worktree(sc, folder);
		free(mp);
		if (known < 0 || held < 0)
			return E_TEMP;
		if (!held && !disk) {
			/*
			 * A folder directory without cur/ or new/ (yet): its
			 * directory is watched, so that the cur/ or new/
			 * that makes it a folder is seen when it comes.
			 */
			if (wt->folder_fn && layout_dir_exists(wt->maildir,
							       folder))
				wt->folder_fn(wt->folder_data, folder, true);
			/* nothing here; maybe a folder left out went away */
			if (wt->left_out && !in_pass)
				worktree_dirty_root(wt);
			return 0;
		}
		if (!held && (a = admit(wt, sc, folder, in_pass)) <= 0) {
			if (a < 0) {
				sc->temp_error = true;
				return E_TEMP;
			}
			/* the look at the root counts it, or decides anew */
			if (in_pass)
				strmap_put(&sc->scanned, folder, 1);
			else
				strmap_del(&sc->scanned, folder);
			return 1;
		}
		if (disk && !known)
			strvec_push(&sc->mk_add, folder);
		else if (!disk && known)
			strvec_push(&sc->mk_rm, folder);
	}
	if (wt->folder_fn)
		wt->folder_fn(wt->folder_data, folder, disk);
	for (size_t i = 0; i < 2 && ret == 0; i++)
		ret = scan_sub(wt, sc, folder, subs[i]);
	return ret;
}

/* The folders the worktree tree knows. */
static int tree_folders(struct strvec *out, struct repo *r, const struct oid *tree)
{
	git_tree *t;

	if (subtree(&t, r, tree, NULL) < 0)
		return E_TEMP;
	strvec_push(out, "");
	for (size_t i = 0; i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		const char *n = git_tree_entry_name(e);
		if (n[0] == '.' && git_tree_entry_type(e) == GIT_OBJECT_TREE)
			strvec_push(out, n);
	}
	git_tree_free(t);
	return 0;
}

/*
 * The subscriptions file, and a look at the root: the folders to look at
 * whole (those that came or went, or all of them with all) go to
 * wt->queue in name order, and the look is under way (wt->pass) until
 * the queue is done.  Listing the root reads no folder: the folders are
 * looked into a slice at a time, from the queue.
 */
static int scan_root(struct worktree *wt, struct scan *sc, bool all)
{
	char *sp = xasprintf("%s/" SUBSCRIPTIONS, wt->maildir);
	struct strvec known = { 0 };
	char **disk = NULL;
	size_t ndisk = 0, i, j;
	struct stat st;
	struct oid cur, w;
	int has, ret = 0;

	has = tree_has(sc, SUBSCRIPTIONS, &w);
	if (has < 0) {
		ret = E_TEMP;
		goto done;
	}
	if (lstat(sp, &st) == 0 && S_ISREG(st.st_mode)) {
		int err, rd = readable(sp, &err);
		if (rd == E_TEMP) {
			ret = E_TEMP;
			goto done;
		}
		if (rd < 0) {
			/* left as the worktree says; gone: its event follows */
			if (rd == E_PERM)
				unreadable(sc, SUBSCRIPTIONS, sp, err);
		} else if (repo_blob_hash_file(&cur, sp) < 0) {
			ret = E_TEMP;
			goto done;
		} else if (!has || !oid_equal(&cur, &w)) {
			if (repo_blob_from_file(&sc->subs_oid, sc->r, sp) < 0) {
				ret = E_TEMP;
				goto done;
			}
			sc->subs = 1;
		}
	} else if (has) {
		sc->subs = -1;
	}

	if (layout_list_dirs(&disk, &ndisk, wt->maildir) < 0 ||
	    tree_folders(&known, sc->r, sc->wtree) < 0) {
		ret = E_TEMP;
		goto done;
	}
	strvec_sort(&known);
	/* both sorted: what is on one side only, or everything on disk */
	for (i = j = 0; i < ndisk || j < known.n;) {
		int c = i == ndisk ? 1 : j == known.n ? -1 :
			strcmp(disk[i], known.v[j]);
		if (c <= 0 && (all || c < 0))
			strvec_push(&wt->queue, disk[i]);
		else if (c > 0)
			strvec_push(&wt->queue, known.v[j]);
		i += c <= 0;
		j += c >= 0;
	}
	wt->pass = true;
	wt->pass_left_out = 0;
done:
	if (ret < 0)
		sc->temp_error = true;
	layout_list_free(disk, ndisk);
	strvec_clear(&known);
	free(sp);
	return ret;
}

/* --- resolving what the scan found -------------------------------------- */

static int key_cmp(const struct ent *e, const char *key, size_t klen)
{
	size_t k = e->klen < klen ? e->klen : klen;
	int c = memcmp(e->name, key, k);

	if (!c && e->klen != klen)
		c = e->klen < klen ? -1 : 1;
	return c;
}

/* Do two entries name the same file (a rewrite in place)? */
static bool same_place(const struct ent *a, const struct ent *b)
{
	return a && b && a->sub == b->sub && !strcmp(a->folder, b->folder) &&
	       !strcmp(a->name, b->name);
}

/* The first unclaimed removal of key (sc->rm sorted by key), or NULL. */
static struct ent *find_rm(struct scan *sc, const char *key, size_t klen)
{
	size_t lo = 0, hi = sc->rm.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (key_cmp(&sc->rm.v[mid], key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < sc->rm.n && !key_cmp(&sc->rm.v[lo], key, klen); lo++)
		if (!sc->rm.v[lo].claimed)
			return &sc->rm.v[lo];
	return NULL;
}

static bool in_rm(struct scan *sc, const struct hit *h)
{
	for (size_t i = 0; i < sc->rm.n; i++) {
		struct ent *e = &sc->rm.v[i];
		if (e->sub == h->sub && !strcmp(e->name, h->name) &&
		    !strcmp(e->folder, h->folder))
			return true;
	}
	return false;
}

/*
 * A second file with a key the mailbox already has (a COPY that kept the
 * name, as Dovecot's does, or two replicas' messages with one key).  The
 * format holds a key once, so this file gets a key of its own,
 * "<key>.c<8 hex>", by a rename done here under the writer lock.
 */
static int rekey(struct worktree *wt, struct ent *e)
{
	char *dir = disk_dir(wt, e->folder, e->sub);
	struct strbuf nn = STRBUF_INIT;
	uint32_t rnd;
	char *from, *to;
	int ret = 0;

	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = (uint32_t)getpid() ^ (uint32_t)time(NULL);
	strbuf_add(&nn, e->name, e->klen);
	strbuf_addf(&nn, ".c%08x", rnd);
	strbuf_addstr(&nn, e->name + e->klen);
	from = xasprintf("%s/%s", dir, e->name);
	to = xasprintf("%s/%s", dir, nn.buf);
	if (nn.len > MAILDIR_NAME_MAX)
		ret = log_error("cannot give '%s' a key of its own: name too "
				"long", e->name);
	else if (rename_noreplace(from, to) < 0)
		ret = errno == ENOENT ? E_NOTFOUND :
		      log_error_errno("rename '%s'", from);
	else {
		log_info("'%s' in %s repeats a key; renamed to '%s'", e->name,
			 folder_display(e->folder), nn.buf);
		free(e->name);
		e->name = strbuf_detach(&nn, NULL);
		e->klen = maildir_key_len(e->name);
		e->have_oid = false;
	}
	strbuf_release(&nn);
	free(from);
	free(to);
	free(dir);
	return ret;
}

/*
 * Read the file of an addition into the object database.  E_NOTFOUND
 * when it is gone, E_PERM when it cannot be read (noted in sc).
 */
static int hash_add(struct worktree *wt, struct scan *sc, struct ent *e)
{
	char *dir = disk_dir(wt, e->folder, e->sub);
	char *p = xasprintf("%s/%s", dir, e->name);
	int err, ret = readable(p, &err);

	/* E_NOTFOUND: gone again, its event will follow */
	if (ret == E_PERM) {
		char *what = xasprintf("%s/%s/%s", e->folder, e->sub, e->name);
		unreadable(sc, what, p, err);
		free(what);
	} else if (ret == 0 && repo_blob_from_file(&e->oid, wt->r, p) < 0) {
		ret = path_exists(p) ? E_TEMP : E_NOTFOUND;
	} else if (ret == 0) {
		e->have_oid = true;
	}
	free(p);
	free(dir);
	return ret;
}

static void hold_back(struct scan *sc, const struct ent *e)
{
	char *s = xasprintf("%s/%s/%s", e->folder, e->sub, e->name);

	strvec_push(&sc->later, s);
	free(s);
}

/*
 * Give one addition its blob: 0 keep it, 1 drop it, < 0 failed.  The blob
 * of the same key removed in this batch (a rename), else of the same key
 * elsewhere in the worktree when that file is gone (a move whose other
 * half was missed), else the file's bytes.  A key still on disk
 * elsewhere is a copy: held back a moment (it may be the first half of a
 * move), then given a key of its own.
 */
static int resolve_one(struct worktree *wt, struct scan *sc, struct ent *a,
		       const struct ent *prev, time_t now, struct entv *extra)
{
	struct ent *rm = find_rm(sc, a->name, a->klen);
	struct hitv hits = { 0 };
	bool dup, settled = now - a->ctime >= COPY_SETTLE;
	int r;

	if (rm) {
		rm->claimed = true;
		if (a->rehash) {
			/* unreadable now: the next look skips it (scan_both) */
			r = hash_add(wt, sc, a);
			return r == E_NOTFOUND ? 1 : r < 0 ? E_TEMP : 0;
		}
		oid_cpy(&a->oid, &rm->oid);
		a->have_oid = true;
		return 0;
	}
	dup = prev && !key_cmp(prev, a->name, a->klen);
	if (!dup && find_key(wt, &hits, sc->wtree, scan_root_tree(sc), a->name,
			     a->klen) < 0)
		return E_TEMP;
	for (size_t h = 0; h < hits.n && !dup; h++) {
		char *dir, *p;
		if (in_rm(sc, &hits.v[h])) {
			dup = true;	/* its removal went to another file */
			continue;
		}
		dir = disk_dir(wt, hits.v[h].folder, hits.v[h].sub);
		p = xasprintf("%s/%s", dir, hits.v[h].name);
		if (path_exists(p)) {
			dup = true;
		} else {
			struct ent *x = entv_push(extra, hits.v[h].folder,
						  hits.v[h].sub, hits.v[h].name);
			oid_cpy(&x->oid, &hits.v[h].oid);
			x->have_oid = x->claimed = true;
			oid_cpy(&a->oid, &hits.v[h].oid);
			a->have_oid = true;
		}
		free(p);
		free(dir);
	}
	hitv_clear(&hits);
	if (!dup && !a->have_oid && sc->mtree) {
		/* new here; mail may hold another message with this key */
		if (tree_find_key(&hits, sc->r, sc->mtree, a->name, a->klen) < 0)
			return E_TEMP;
		if (hits.n) {
			r = hash_add(wt, sc, a);
			if (r < 0) {
				hitv_clear(&hits);
				return r == E_NOTFOUND || r == E_PERM ? 1 : E_TEMP;
			}
			for (size_t h = 0; h < hits.n; h++)
				if (!oid_equal(&hits.v[h].oid, &a->oid))
					dup = settled = true;
		}
		hitv_clear(&hits);
	}
	if (dup && !settled) {
		hold_back(sc, a);
		return 1;
	}
	if (dup) {
		r = rekey(wt, a);
		if (r == E_NOTFOUND)
			return 1;
		if (r < 0)
			return E_TEMP;
	}
	if (!a->have_oid) {
		r = hash_add(wt, sc, a);
		if (r == E_NOTFOUND || r == E_PERM)
			return 1;
		if (r < 0)
			return E_TEMP;
	}
	return 0;
}

static int resolve(struct worktree *wt, struct scan *sc)
{
	struct entv extra = { 0 };
	time_t now = time(NULL);
	size_t w = 0, i;
	int ret = 0;

	qsort(sc->rm.v, sc->rm.n, sizeof *sc->rm.v, ent_cmp);
	qsort(sc->add.v, sc->add.n, sizeof *sc->add.v, ent_cmp);
	for (i = 0; i < sc->add.n; i++) {
		struct ent a = sc->add.v[i];
		int r = resolve_one(wt, sc, &a, w ? &sc->add.v[w - 1] : NULL,
				    now, &extra);
		if (r < 0) {
			ret = r;
			sc->add.v[w++] = a;
			i++;
			break;
		}
		if (r == 1)
			ent_release(&a);
		else
			sc->add.v[w++] = a;
	}
	for (; i < sc->add.n; i++)
		sc->add.v[w++] = sc->add.v[i];
	sc->add.n = w;
	for (i = 0; i < extra.n; i++) {
		struct ent *x = entv_push(&sc->rm, extra.v[i].folder,
					  extra.v[i].sub, extra.v[i].name);
		oid_cpy(&x->oid, &extra.v[i].oid);
		x->have_oid = x->claimed = true;
	}
	entv_clear(&extra);
	qsort(sc->rm.v, sc->rm.n, sizeof *sc->rm.v, ent_cmp);
	/* a rekeyed addition moved in the order */
	qsort(sc->add.v, sc->add.n, sizeof *sc->add.v, ent_cmp);
	if (ret < 0)
		sc->temp_error = true;
	return ret;
}

/* --- committing --------------------------------------------------------- */

/* mtime changes with owned keys, for mtimes_update(). */
struct mlist {
	struct mtime_change *v;
	size_t n, alloc;
	struct strvec keys;
};

static void mlist_add(struct mlist *l, const char *key, size_t klen,
		      long long mtime)
{
	char *k = xstrndup(key, klen);
	struct mtime_change *c;

	strvec_push_nodup(&l->keys, k);
	c = VEC_PUSH(l);
	c->key = k;
	c->mtime = mtime;
}

static void mlist_release(struct mlist *l)
{
	VEC_FREE(l);
	strvec_clear(&l->keys);
}

static void counts_add(struct worktree_counts *c, const struct ent *from,
		       const struct ent *to)
{
	if (!from)
		c->added++;
	else if (!to)
		c->expunged++;
	else if (strcmp(from->folder, to->folder) || from->sub != to->sub)
		c->moved++;
	else
		c->flagged++;
}

static void counts_text(struct strbuf *out, const struct worktree_counts *c)
{
	size_t before = out->len;
	const struct { size_t n; const char *what; } parts[] = {
		{ c->added, "added" }, { c->expunged, "expunged" },
		{ c->moved, "moved" }, { c->flagged, "flags changed" },
		{ c->mtimes, "mtimes changed" },
		{ c->folders_added, "folders created" },
		{ c->folders_removed, "folders deleted" },
		{ c->other, "subscriptions changed" },
	};

	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		if (!parts[i].n)
			continue;
		if (out->len > before)
			strbuf_addstr(out, ", ");
		strbuf_addf(out, "%zu %s", parts[i].n, parts[i].what);
	}
	if (out->len == before)
		strbuf_addstr(out, "no change");
}

/* One key's change: where the worktree had it, where the disk has it. */
struct pair {
	struct ent *from, *to;
};

/* Pair removals and additions by key (both sorted by key). */
static struct pair *pairs_of(struct scan *sc, size_t *n)
{
	struct pair *p = NULL;
	size_t np = 0, ap = 0, i = 0, j = 0;

	while (i < sc->rm.n || j < sc->add.n) {
		struct ent *a = i < sc->rm.n ? &sc->rm.v[i] : NULL;
		struct ent *b = j < sc->add.n ? &sc->add.v[j] : NULL;
		int c = !a ? 1 : !b ? -1 : key_cmp(a, b->name, b->klen);

		xgrow((void **)&p, &ap, np + 1, sizeof *p);
		p[np].from = c <= 0 ? a : NULL;
		p[np].to = c >= 0 ? b : NULL;
		np++;
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	*n = np;
	return p;
}

static bool mt_paired(const struct pair *p, size_t np, const char *key)
{
	size_t klen = strlen(key);

	for (size_t j = 0; j < np; j++) {
		const struct ent *any = p[j].to ? p[j].to : p[j].from;
		if (!key_cmp(any, key, klen))
			return true;
	}
	return false;
}

static void add_path(struct update_list *ups, const char *folder,
		     const char *sub, const char *name, const struct oid *oid)
{
	struct strbuf path = STRBUF_INIT;

	tree_message_path(&path, folder, sub, name);
	update_list_add(ups, path.buf, oid);
	strbuf_release(&path);
}

/* Folder markers and the subscriptions file, as the scan found them. */
static int other_updates(struct scan *sc, struct update_list *ups,
			 struct worktree_counts *counts)
{
	struct strbuf path = STRBUF_INIT;
	struct oid empty;

	if ((sc->mk_add.n || sc->mk_rm.n) &&
	    repo_blob_from_buffer(&empty, sc->r, "", 0) < 0)
		return E_TEMP;
	for (size_t i = 0; i < sc->mk_add.n; i++) {
		strbuf_reset(&path);
		strbuf_addf(&path, "%s/" MARKER, sc->mk_add.v[i]);
		update_list_add(ups, path.buf, &empty);
	}
	for (size_t i = 0; i < sc->mk_rm.n; i++) {
		strbuf_reset(&path);
		strbuf_addf(&path, "%s/" MARKER, sc->mk_rm.v[i]);
		update_list_add(ups, path.buf, NULL);
	}
	if (sc->subs)
		update_list_add(ups, SUBSCRIPTIONS,
				sc->subs > 0 ? &sc->subs_oid : NULL);
	if (counts) {
		counts->folders_added += sc->mk_add.n;
		counts->folders_removed += sc->mk_rm.n;
		counts->other += sc->subs != 0;
	}
	strbuf_release(&path);
	return 0;
}

/* The local changes as they are: the disk's tree from the worktree's. */
static void local_updates(struct scan *sc, struct pair *p, size_t np,
			  struct update_list *ups, struct mlist *ml,
			  struct worktree_counts *counts)
{
	for (size_t i = 0; i < np; i++) {
		const struct ent *any = p[i].to ? p[i].to : p[i].from;
		if (p[i].from && !same_place(p[i].from, p[i].to))
			add_path(ups, p[i].from->folder, p[i].from->sub,
				 p[i].from->name, NULL);
		if (p[i].to)
			add_path(ups, p[i].to->folder, p[i].to->sub,
				 p[i].to->name, &p[i].to->oid);
		mlist_add(ml, any->name, any->klen,
			  p[i].to ? p[i].to->mtime : MTIME_NONE);
		counts_add(counts, p[i].from, p[i].to);
	}
	for (size_t i = 0; i < sc->nmt; i++) {
		if (mt_paired(p, np, sc->mt[i].key))
			continue;
		mlist_add(ml, sc->mt[i].key, strlen(sc->mt[i].key),
			  sc->mt[i].mtime);
		counts->mtimes++;
	}
}

static int read_refs(struct worktree *wt, struct oid *w, struct oid *wtree,
		     struct oid *m, struct oid *mtree)
{
	int r = repo_ref_read(m, wt->r, REF_MAIL);

	if (r < 0)
		return r == E_NOTFOUND ?
		       log_error("'%s' does not exist", REF_MAIL) : E_TEMP;
	if (repo_commit_tree(mtree, wt->r, m) < 0)
		return E_TEMP;
	r = repo_ref_read(w, wt->r, REF_WORKTREE);
	if (r == E_NOTFOUND) {
		/*
		 * No record of the disk (a repository made by other means):
		 * say the disk is empty, so everything on it is committed and
		 * nothing is committed as deleted.
		 */
		struct oid empty;
		log_warn("'%s' is missing; reading the Maildir as new",
			 REF_WORKTREE);
		if (repo_tree_update(&empty, wt->r, NULL, NULL, 0) < 0 ||
		    repo_commit(w, wt->r, &empty, NULL, 0, "worktree: start\n",
				-1, "maildag-syncd", wt->email) < 0 ||
		    repo_ref_cas(wt->r, REF_WORKTREE, w, NULL,
				 "maildag-syncd: start") < 0)
			return E_TEMP;
	} else if (r < 0) {
		return E_TEMP;
	}
	if (repo_commit_tree(wtree, wt->r, w) < 0)
		return E_TEMP;
	return 0;
}

int worktree_pending(struct worktree *wt, bool *out)
{
	struct oid w, wtree, m, mtree;
	int r = read_refs(wt, &w, &wtree, &m, &mtree);

	*out = r == 0 && !oid_equal(&wtree, &mtree);
	return r;
}

/* Give back the marks a failed commit took, for the retry. */
static void restore_marks(struct worktree *wt, bool full, bool root,
			  struct strvec *folders, struct strvec *names)
{
	if (full)
		worktree_dirty_all(wt);
	if (root)
		wt->root = true;
	for (size_t i = 0; i < folders->n; i++)
		worktree_dirty_folder(wt, folders->v[i]);
	for (size_t i = 0; i < names->n && !wt->full; i++) {
		strvec_push_nodup(&wt->names, names->v[i]);
		names->v[i] = NULL;
	}
}

/* Has this slice had its time (n folders looked at so far)? */
static bool slice_used(const struct worktree *wt, const struct scan *sc,
		       size_t n, double t0)
{
	/* what is found is read and committed after: count it in */
	return wt->slice && n >= SCAN_SLICE_MIN &&
	       (clock_now() - t0 + sc->add.n * wt->add_cost >= wt->slice ||
		sc->add.n >= SCAN_SLICE_ADDS);
}

/* A look at the root is done: how many folders it left out. */
static void left_out_done(struct worktree *wt, size_t n)
{
	size_t limit = format_get_limits()->folders;

	if (n && n != wt->left_out)
		log_warn("folder_limit (%zu) reached: %zu folder%s on disk "
			 "left out, not committed, watched or replicated "
			 "(raise folder_limit to take %s in)", limit, n,
			 n == 1 ? "" : "s", n == 1 ? "it" : "them");
	else if (!n && wt->left_out)
		log_info("every folder on disk is committed again "
			 "(folder_limit %zu)", limit);
	wt->left_out = n;
}

/* A marked name, split: "<f>/<sub>/<n>" in one allocation. */
struct nref {
	char *f;
	const char *sub, *n;
	unsigned shard;
};

/* By folder, sub, shard, then name: a shard tree is read once. */
static int nref_cmp(const void *a, const void *b)
{
	const struct nref *x = a, *y = b;
	int c;

	if ((c = strcmp(x->f, y->f)) || (c = strcmp(x->sub, y->sub)))
		return c;
	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return strcmp(x->n, y->n);
}

/*
 * Look at the names whose folder was not looked at whole, a shard tree at
 * a time.  A name in a folder the worktree does not hold (not admitted
 * yet, or left out by folder_limit) is not looked at: its folder is
 * marked instead.
 */
static void scan_names(struct worktree *wt, struct scan *sc,
		       struct strvec *names)
{
	struct nref *v = xcalloc(names->n ? names->n : 1, sizeof *v);
	struct strbuf tp = STRBUF_INIT;
	git_tree *shard = NULL;
	size_t n = 0;
	int known = 1;

	for (size_t i = 0; i < names->n; i++) {
		char *f = xstrdup(names->v[i]);
		char *sub = strchr(f, '/'), *nm = sub ? strchr(sub + 1, '/') : NULL;
		if (!nm) {
			free(f);
			continue;
		}
		*sub++ = '\0';
		*nm++ = '\0';
		v[n].f = f;
		v[n].sub = !strcmp(sub, "cur") ? subs[0] : subs[1];
		v[n].n = nm;
		v[n].shard = maildir_shard(nm, maildir_key_len(nm));
		n++;
	}
	qsort(v, n, sizeof *v, nref_cmp);
	for (size_t i = 0; i < n && !sc->temp_error; i++) {
		const struct nref *p = i ? &v[i - 1] : NULL;
		bool same_f = p && !strcmp(p->f, v[i].f);
		if (p && !nref_cmp(p, &v[i]))
			continue;
		if (strmap_has(&sc->scanned, v[i].f))
			continue;
		if (!same_f)
			known = in_worktree(sc, v[i].f);
		if (known < 0)
			break;
		if (!known) {
			if (!same_f)
				worktree_dirty_folder(wt, v[i].f);
			continue;
		}
		if (!p || !same_f || p->sub != v[i].sub || p->shard != v[i].shard) {
			git_tree_free(shard);
			strbuf_reset(&tp);
			tree_shard_path(&tp, v[i].f, v[i].sub, v[i].shard);
			if (subtree_of(&shard, sc->r, scan_root_tree(sc), tp.buf) < 0) {
				sc->temp_error = true;
				break;
			}
		}
		scan_name(wt, sc, v[i].f, v[i].sub, v[i].n, shard);
	}
	git_tree_free(shard);
	strbuf_release(&tp);
	for (size_t i = 0; i < n; i++)
		free(v[i].f);
	free(v);
}

/*
 * Look at everything the marks name.  A look at the root (full or root
 * marked) puts the folders it finds in wt->queue; the marked folders are
 * looked at, then those of the queue, and with a slice set only until it
 * is used up (or SCAN_SLICE_ADDS new files are found): then sc->partial
 * is set, the rest stays marked or queued and the names are marked again.
 * Names wait for the last folder: a name's removal may be explained by a
 * folder not reached yet.  The root marked while a look at it is under
 * way waits for that look to end.
 */
static void scan_marked(struct worktree *wt, struct scan *sc, bool full,
			bool root, struct strvec *folders, struct strvec *names,
			double t0)
{
	size_t i, n = 0;

	if (full || (root && wt->qpos >= wt->queue.n))
		scan_root(wt, sc, full);
	else if (root)
		wt->root = true;
	/* in name order: folders made together are admitted by name */
	strvec_sort(folders);
	for (i = 0; i < folders->n && !sc->temp_error; i++) {
		if (slice_used(wt, sc, n++, t0))
			break;
		scan_folder(wt, sc, folders->v[i], false);
	}
	if (i < folders->n && !sc->temp_error) {
		for (; i < folders->n; i++)
			worktree_dirty_folder(wt, folders->v[i]);
		goto partial;
	}
	while (wt->qpos < wt->queue.n && !sc->temp_error) {
		if (slice_used(wt, sc, n++, t0))
			break;
		if (scan_folder(wt, sc, wt->queue.v[wt->qpos++], true) == 1)
			wt->pass_left_out++;
	}
	if (wt->qpos < wt->queue.n && !sc->temp_error)
		goto partial;
	if (wt->pass && !sc->temp_error)
		left_out_done(wt, wt->pass_left_out);
	strvec_clear(&wt->queue);
	wt->qpos = 0;
	wt->pass = false;
	scan_names(wt, sc, names);
	return;
partial:
	sc->partial = true;
	for (i = 0; i < names->n; i++)
		strvec_push(&wt->names, names->v[i]);
}

/*
 * A message added on disk may be a delivery of maildag-lda still in its
 * journal (journal.h): one claimed here is committed as the delivery it
 * is, in a delivery record (delivery.h, which lets the MTA's retry of the
 * same bytes find it); one being withdrawn is left out, its removal
 * follows.
 */
static void claim_deliveries(struct worktree *wt, struct scan *sc,
			     struct strvec *claims,
			     struct delivery_record *rec)
{
	char *dir = journal_dir(wt->r);
	struct journal_snapshot js;
	size_t w = 0;

	journal_snapshot_read(&js, dir);
	for (size_t i = 0; i < sc->add.n; i++) {
		struct ent *a = &sc->add.v[i];
		char *claim = NULL;
		enum journal_found f = journal_snapshot_claim(&claim, &js,
							     &a->oid, a->name,
							     a->klen);

		if (f == JOURNAL_FOUND_CLAIMED) {
			struct strbuf p = STRBUF_INIT;
			tree_message_path(&p, a->folder, a->sub, a->name);
			delivery_record_add(rec, a->folder, p.buf, &a->oid);
			strbuf_release(&p);
			strvec_push(claims, "");
			free(claims->v[claims->n - 1]);
			claims->v[claims->n - 1] = claim;
		}
		if (f != JOURNAL_FOUND_WITHDRAWN) {
			sc->add.v[w++] = *a;
		} else {
			log_info("'%s' is being taken back by maildag-lda",
				 a->name);
			worktree_dirty_name(wt, a->folder, a->sub, a->name);
			ent_release(a);
		}
	}
	sc->add.n = w;
	journal_snapshot_release(&js);
	free(dir);
}

/* See worktree.h: the worktree invariant, kept for maildag-lda. */
int worktree_record_added(struct repo *r, const struct oid *before,
			  const struct oid *commit, const struct repo_update *ups,
			  size_t n, const char *who, const char *email)
{
	struct oid wt, wt_tree, wt_new, t;
	char *why;
	int ret = 0;

	if (repo_ref_read(&wt, r, REF_WORKTREE) < 0 ||
	    repo_commit_tree(&wt_tree, r, &wt) < 0)
		return E_FAIL;
	oid_cpy(&wt_new, commit);
	if (!oid_equal(&wt_tree, before) &&
	    (repo_tree_update(&t, r, &wt_tree, ups, n) < 0 ||
	     repo_commit(&wt_new, r, &t, &wt, 1, "worktree: delivery\n", -1,
			 who, email) < 0)) {
		log_warn("could not record the delivery in '%s'", REF_WORKTREE);
		return E_FAIL;
	}
	why = xasprintf("%s: deliver", who);
	if (repo_ref_cas(r, REF_WORKTREE, &wt_new, &wt, why) < 0) {
		log_warn("could not move '%s'", REF_WORKTREE);
		ret = E_FAIL;
	}
	free(why);
	return ret;
}

/*
 * The disk changed while it was being looked at: a listing may have
 * missed a file in the middle of a rename, and a name may have moved on
 * before its event was read.  What looks deleted (a removal no addition
 * of the same key explains, a folder gone) is not committed now but
 * looked at again once things are quiet; renames and additions stand.
 * Returns how many were held back.
 */
static size_t hold_unpaired(struct worktree *wt, struct scan *sc)
{
	size_t w = 0, held = 0;

	for (size_t i = 0; i < sc->rm.n; i++) {
		struct ent *e = &sc->rm.v[i];
		if (e->claimed) {
			sc->rm.v[w++] = *e;
			continue;
		}
		worktree_dirty_name(wt, e->folder, e->sub, e->name);
		ent_release(e);
		held++;
	}
	sc->rm.n = w;
	for (size_t i = 0; i < sc->mk_rm.n; i++) {
		worktree_dirty_folder(wt, sc->mk_rm.v[i]);
		held++;
	}
	strvec_clear(&sc->mk_rm);
	if (held)
		log_debug("the Maildir changed while it was read: %zu removals "
			  "wait for a second look", held);
	return held;
}

/* The file name part of "<folder>/<sub>/<name>". */
static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/*
 * A name held back as a possible copy whose key is among the names to
 * look at now (the original going away: the other half of a move) is
 * looked at now too, so that the two pair up as a move instead of an
 * expunge now and an addition later.
 */
static void take_later_halves(struct worktree *wt, struct strvec *names)
{
	size_t w = 0;

	for (size_t i = 0; i < wt->later.n; i++) {
		const char *held = base_name(wt->later.v[i]);
		size_t klen = maildir_key_len(held);
		bool take = false;
		for (size_t j = 0; j < names->n && !take; j++) {
			const char *n = base_name(names->v[j]);
			take = maildir_key_len(n) == klen &&
			       !memcmp(n, held, klen);
		}
		if (take) {
			strvec_push(names, wt->later.v[i]);
			free(wt->later.v[i]);
		} else {
			wt->later.v[w++] = wt->later.v[i];
		}
	}
	wt->later.n = w;
}

int worktree_commit(struct worktree *wt, struct worktree_result *res)
{
	struct repo_batch batch = REPO_BATCH_INIT;
	struct worktree_result dummy;
	struct strvec names = wt->names, folders = wt->folders, claims = { 0 };
	struct strvec was_unreadable = wt->unreadable;
	struct delivery_record deliveries = DELIVERY_RECORD_INIT;
	bool full = wt->full, root = wt->root;
	struct update_list wu = UPDATE_LIST_INIT;
	struct mlist wm = { 0 };
	struct strbuf msg = STRBUF_INIT;
	struct pair *p = NULL;
	size_t np = 0;
	struct scan sc;
	struct oid w, wtree, m, mtree, wtree2, mtree2, m2, w2;
	unsigned long gen;
	double t0, t1, t2, t3;
	bool queued = wt->queue.n > 0;
	int ret;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof *res);
	/* every change that happened so far is in the marks we take */
	if (wt->poll) {
		wt->poll(wt->poll_data);
		names = wt->names;
		folders = wt->folders;
		full = wt->full;
		root = wt->root;
	}
	/* take the marks: events read meanwhile make new ones */
	memset(&wt->names, 0, sizeof wt->names);
	memset(&wt->folders, 0, sizeof wt->folders);
	strmap_clear(&wt->folder_set);
	wt->full = wt->root = false;
	if (wt->later.n && clock_now() >= wt->later_due) {
		for (size_t i = 0; i < wt->later.n; i++)
			strvec_push(&names, wt->later.v[i]);
		strvec_clear(&wt->later);
	} else if (wt->later.n) {
		take_later_halves(wt, &names);
	}
	/* what could not be read last time is looked at again */
	memset(&wt->unreadable, 0, sizeof wt->unreadable);
	for (size_t i = 0; i < was_unreadable.n; i++)
		if (strchr(was_unreadable.v[i], '/'))
			strvec_push(&names, was_unreadable.v[i]);
		else
			root = true;
	scan_init(&sc, wt->r, &wtree);
	sc.was_unreadable = &was_unreadable;

	if ((ret = read_refs(wt, &w, &wtree, &m, &mtree)) < 0)
		goto fail;
	oid_cpy(&res->mail, &m);
	sc.mtree = oid_equal(&wtree, &mtree) ? NULL : &mtree;
	gen = wt->gen;
	/*
	 * A Maildir without cur/ and new/ is one that is not there (moved,
	 * not mounted): nothing in it is committed as deleted
	 */
	if (!folder_on_disk(wt, "")) {
		log_error("'%s' holds no cur/ or new/: is the Maildir there?",
			  wt->maildir);
		ret = E_TEMP;
		goto fail;
	}
	/* the objects of this commit are synced once, before a ref moves */
	repo_batch_begin(&batch, wt->r);
	t0 = clock_now();
	if (full) {
		wt->rescan_t0 = t0;
		wt->rescan_seen = wt->rescan_slices = 0;
	}
	scan_marked(wt, &sc, full, root, &folders, &names, t0);
	if (wt->rescan_t0 && !sc.temp_error) {
		wt->rescan_seen += sc.seen;
		wt->rescan_slices++;
		if (!sc.partial) {
			log_info("full rescan: %zu files in %.0f ms (%zu slices)",
				 wt->rescan_seen,
				 (clock_now() - wt->rescan_t0) * 1000,
				 wt->rescan_slices);
			wt->rescan_t0 = 0;
		}
	}
	res->more = sc.partial;
	t1 = clock_now();
	if (sc.temp_error || resolve(wt, &sc) < 0) {
		ret = E_TEMP;
		goto fail;
	}
	t2 = clock_now();
	if (wt->poll)
		wt->poll(wt->poll_data);
	/* a slice holds back removals a later folder may explain */
	if (wt->gen != gen || sc.partial)
		res->deferred += hold_unpaired(wt, &sc);
	claim_deliveries(wt, &sc, &claims, &deliveries);

	p = pairs_of(&sc, &np);
	local_updates(&sc, p, np, &wu, &wm, &res->counts);
	if (other_updates(&sc, &wu, &res->counts) < 0 ||
	    mtimes_update(&wu, wt->r, &wtree, wm.v, wm.n) < 0 ||
	    repo_tree_update(&wtree2, wt->r, &wtree, wu.v, wu.n) < 0) {
		ret = E_TEMP;
		goto fail;
	}
	res->deferred += sc.later.n;
	if (oid_equal(&wtree2, &wtree))
		goto held;

	if (!sc.mtree) {
		oid_cpy(&mtree2, &wtree2);
	} else if (merge_trees(&mtree2, wt->r, &wtree, &mtree, &wtree2, NULL,
			       NULL) < 0) {
		/*
		 * mail moved on since the disk was written (an apply is
		 * pending or was cut short): the local changes are merged
		 * into it three ways, against the worktree, by the rules
		 * every replica uses
		 */
		ret = E_TEMP;
		goto fail;
	}

	counts_text(&msg, &res->counts);
	oid_cpy(&m2, &m);
	if (!oid_equal(&mtree2, &mtree)) {
		struct strbuf cm = STRBUF_INIT, subject = STRBUF_INIT;
		const struct worktree_counts *k = &res->counts;
		/* deliveries alone are told as maildag-lda tells them */
		if (!(claims.n && claims.n == np && claims.n == k->added &&
		      !k->mtimes && !k->folders_added && !k->folders_removed &&
		      !k->other))
			strbuf_addf(&subject, "%s: %s", wt->origin ? wt->origin :
				    "mail client", msg.buf);
		delivery_record_message(&cm, &deliveries,
					subject.len ? subject.buf : NULL);
		ret = repo_commit(&m2, wt->r, &mtree2, &m, 1, cm.buf, -1,
				  "maildag-syncd", wt->email);
		strbuf_release(&subject);
		strbuf_release(&cm);
		if (ret < 0)
			goto fail;
	}
	if (oid_equal(&wtree2, &mtree2)) {
		oid_cpy(&w2, &m2);
	} else if (repo_commit(&w2, wt->r, &wtree2, &w, 1,
			       "worktree: local changes\n", -1,
			       "maildag-syncd", wt->email) < 0) {
		ret = E_TEMP;
		goto fail;
	}
	t3 = clock_now();
	if (repo_batch_end(&batch, true) < 0) {
		ret = E_TEMP;
		goto fail;
	}
	if (sc.add.n >= 16) {
		/* reading new files and writing their trees */
		double c = (t3 - t1) / (double)sc.add.n;
		wt->add_cost = wt->add_cost ? (wt->add_cost + c) / 2 : c;
	}
	log_debug("commit: scan %.0f ms, resolve %.0f ms, write %.0f ms, "
		  "sync %.0f ms", (t1 - t0) * 1000, (t2 - t1) * 1000,
		  (t3 - t2) * 1000, (clock_now() - t3) * 1000);
	if (!oid_equal(&m2, &m)) {
		if ((ret = repo_ref_cas(wt->r, REF_MAIL, &m2, &m,
					"maildag-syncd: local changes")) < 0) {
			ret = ret == E_RACE ? E_RACE : E_TEMP;
			goto fail;
		}
		res->committed = true;
		oid_cpy(&res->mail, &m2);
		log_info("committed %.12s: %s", oid_hex(&m2), msg.buf);
	}
	if ((ret = repo_ref_cas(wt->r, REF_WORKTREE, &w2, &w,
				"maildag-syncd: local changes")) < 0) {
		ret = ret == E_RACE ? E_RACE : E_TEMP;
		goto fail;
	}
	/* the claimed deliveries are in: their journal entries go */
	for (size_t i = 0; i < claims.n; i++)
		journal_done(claims.v[i]);
	/* folders gone make room for those folder_limit left out */
	if (wt->left_out && sc.mk_rm.n)
		worktree_dirty_root(wt);
held:
	if (sc.later.n) {
		if (!wt->later.n)
			wt->later_due = clock_now() + COPY_SETTLE + 0.1;
		for (size_t i = 0; i < sc.later.n; i++)
			strvec_push(&wt->later, sc.later.v[i]);
	}
	for (size_t i = 0; i < was_unreadable.n; i++)
		if (!strvec_has(&sc.unreadable, was_unreadable.v[i]))
			log_info("'%s' is no longer unreadable",
				 was_unreadable.v[i]);
	wt->unreadable = sc.unreadable;
	memset(&sc.unreadable, 0, sizeof sc.unreadable);
	res->unreadable = wt->unreadable.n;
	ret = 0;
	goto done;
fail:
	restore_marks(wt, full, root, &folders, &names);
	/* the names are marked again: looked at, and logged, as before */
	wt->unreadable = was_unreadable;
	memset(&was_unreadable, 0, sizeof was_unreadable);
	res->unreadable = wt->unreadable.n;
	if (queued || wt->queue.n)
		worktree_dirty_all(wt);	/* a sliced rescan starts again */
	if (ret != E_RACE)
		ret = E_TEMP;
done:
	strvec_clear(&was_unreadable);
	repo_batch_end(&batch, false);
	scan_release(&sc);
	free(p);
	mlist_release(&wm);
	update_list_release(&wu);
	strbuf_release(&msg);
	strvec_clear(&names);
	strvec_clear(&folders);
	strvec_clear(&claims);
	delivery_record_release(&deliveries);
	return ret;
}

/* --- applying ----------------------------------------------------------- */

/* One path that differs between two trees. */
struct dchange {
	char *path;
	struct oid old, new;
	bool has_old, has_new;
};

struct dchv {
	struct dchange *v;
	size_t n, alloc;
};

static void dchv_push(struct dchv *d, const char *path, const struct oid *old,
		      const struct oid *new)
{
	struct dchange *c;

	c = VEC_PUSH(d);
	c->path = xstrdup(path);
	if (old) {
		oid_cpy(&c->old, old);
		c->has_old = true;
	}
	if (new) {
		oid_cpy(&c->new, new);
		c->has_new = true;
	}
}

static void dchv_clear(struct dchv *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].path);
	VEC_FREE(d);
}

static int diff_leaf(const char *path, const git_tree_entry *a,
		     const git_tree_entry *b, void *data)
{
	/* a mode alone changed: nothing to apply to a file */
	if (a && b && oid_equal(OID(git_tree_entry_id(a)), OID(git_tree_entry_id(b))))
		return 0;
	dchv_push(data, path, a ? OID(git_tree_entry_id(a)) : NULL,
		  b ? OID(git_tree_entry_id(b)) : NULL);
	return 0;
}

/*
 * The blobs that differ between trees a and b (either may be NULL: the
 * empty tree), through treediff: the cost is that of the changed shards.
 */
static int diff_walk(struct repo *r, const struct oid *a, const struct oid *b,
		     struct strbuf *prefix, struct dchv *out)
{
	static const struct treediff_ops ops = { NULL, NULL, diff_leaf };

	return treediff(r, a, b, prefix, &ops, out);
}

/*
 * The messages of the worktree tree by key, for a mailbox with many
 * folders, where tree_find_key() would read two trees per folder for
 * every key.  Kept across calls and brought up to date by a diff from
 * the tree it describes, which reads only the subtrees that changed.
 */
struct kent {
	struct kent *next;
	struct oid oid;
	const char *sub;
	size_t klen;
	char *name;		/* into buf, after the folder */
	char buf[];		/* "<folder>\0<name>\0" */
};

struct kidx {
	struct oid tree;
	struct kent **b;
	size_t nb, n;
};

static void kidx_free(struct kidx *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->nb; i++)
		while (k->b[i]) {
			struct kent *e = k->b[i];
			k->b[i] = e->next;
			free(e);
		}
	free(k->b);
	free(k);
}

static struct kent **kidx_bucket(struct kidx *k, const char *key, size_t klen)
{
	return &k->b[fnv1a32(key, klen) & (k->nb - 1)];
}

static void kidx_add(struct kidx *k, const char *folder, const char *sub,
		     const char *name, const struct oid *oid)
{
	size_t fl = strlen(folder), nl = strlen(name);
	struct kent *e = xmalloc(sizeof *e + fl + nl + 2), **b;

	if (k->n + 1 > k->nb) {
		struct kent **old = k->b;
		size_t onb = k->nb;
		k->nb = onb ? onb * 2 : 1024;
		k->b = xcalloc(k->nb, sizeof *k->b);
		for (size_t i = 0; i < onb; i++)
			while (old[i]) {
				struct kent *x = old[i];
				old[i] = x->next;
				b = kidx_bucket(k, x->name, x->klen);
				x->next = *b;
				*b = x;
			}
		free(old);
	}
	memcpy(e->buf, folder, fl + 1);
	e->name = e->buf + fl + 1;
	memcpy(e->name, name, nl + 1);
	e->sub = sub;
	e->klen = maildir_key_len(name);
	oid_cpy(&e->oid, oid);
	b = kidx_bucket(k, name, e->klen);
	e->next = *b;
	*b = e;
	k->n++;
}

static void kidx_del(struct kidx *k, const char *folder, const char *sub,
		     const char *name)
{
	struct kent **p = kidx_bucket(k, name, maildir_key_len(name));

	for (; *p; p = &(*p)->next)
		if ((*p)->sub == sub && !strcmp((*p)->name, name) &&
		    !strcmp((*p)->buf, folder)) {
			struct kent *e = *p;
			*p = e->next;
			free(e);
			k->n--;
			return;
		}
}

/* Bring wt's key index to tree (read whole the first time). */
static int kidx_sync(struct worktree *wt, const struct oid *tree)
{
	struct kidx *k = wt->kidx;
	struct strbuf prefix = STRBUF_INIT;
	struct dchv d = { 0 };
	int ret;

	if (k && oid_equal(&k->tree, tree))
		return 0;
	ret = diff_walk(wt->r, k ? &k->tree : NULL, tree, &prefix, &d);
	if (ret < 0) {
		kidx_free(wt->kidx);
		wt->kidx = NULL;
		goto done;
	}
	if (!k)
		k = wt->kidx = xcalloc(1, sizeof *k);
	for (size_t i = 0; i < d.n; i++) {
		char *folder, *name;
		const char *sub;
		if (parse_msg_path(d.v[i].path, &folder, &sub, &name) < 0)
			continue;
		if (d.v[i].has_old)
			kidx_del(k, folder, sub, name);
		if (d.v[i].has_new)
			kidx_add(k, folder, sub, name, &d.v[i].new);
		free(folder);
		free(name);
	}
	oid_cpy(&k->tree, tree);
done:
	dchv_clear(&d);
	strbuf_release(&prefix);
	return ret < 0 ? E_TEMP : 0;
}

/*
 * tree_find_key() on the worktree's tree: through the index when the tree
 * has many folders, else directly.
 */
static int find_key(struct worktree *wt, struct hitv *out, const struct oid *tree,
		    git_tree *root, const char *key, size_t klen)
{
	if (root && git_tree_entrycount(root) <= KIDX_FOLDERS && !wt->kidx)
		return tree_find_key(out, wt->r, tree, key, klen);
	if (kidx_sync(wt, tree) < 0)
		return E_TEMP;
	/* a tree of many folders and no message yet: no bucket at all */
	if (!wt->kidx->nb)
		return 0;
	for (struct kent *e = *kidx_bucket(wt->kidx, key, klen); e; e = e->next) {
		if (e->klen != klen || memcmp(e->name, key, klen))
			continue;
		struct hit *h = VEC_PUSH(out);

		h->folder = xstrdup(e->buf);
		h->sub = e->sub;
		h->name = xstrdup(e->name);
		oid_cpy(&h->oid, &e->oid);
	}
	return 0;
}

/* What applying found and did, and the worktree's changes from it. */
struct apply {
	struct worktree *wt;
	struct repo *r;
	struct mtcache mmt;		/* mail's mtime records */
	struct update_list wu;		/* on the worktree tree */
	struct mlist wm;		/* mtimes on the worktree tree */
	struct strvec touched;		/* directories to fsync */
	struct strmap touched_set;
	struct strvec staged;		/* new messages: tmp path, then dest */
	struct worktree_result *res;
	double flush;			/* seconds their syncfs took */
};

static void touch_dir(struct apply *ap, const char *dir)
{
	if (strmap_put(&ap->touched_set, dir, 0))
		strvec_push(&ap->touched, dir);
}

/* Make folder's cur/ new/ tmp/ (and marker) when missing. */
static int ensure_folder(struct worktree *wt, const char *folder)
{
	int ret = 0;

	for (size_t i = 0; i < 3 && ret == 0; i++) {
		char *d = disk_dir(wt, folder, i < 2 ? subs[i] : "tmp");
		if (!is_dir(d))
			ret = mkdir_p(d, 0700);
		free(d);
	}
	if (ret == 0 && *folder) {
		char *mk = xasprintf("%s/%s/" MARKER, wt->maildir, folder);
		if (!path_exists(mk)) {
			int fd = open(mk, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			if (fd < 0)
				ret = log_error_errno("create '%s'", mk);
			else
				close(fd);
		}
		free(mk);
	}
	return ret < 0 ? E_TEMP : 0;
}

static void set_mtime(const char *path, long long mtime)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { (time_t)mtime, 0 } };

	if (mtime != MTIME_NONE && utimensat(AT_FDCWD, path, ts, 0) < 0 &&
	    errno != ENOENT)
		log_warn_errno("set mtime of '%s'", path);
}

/*
 * Copy blob oid into fd.  Streamed when the object database can (loose
 * objects), so a big message does not sit in memory whole; else read at
 * once.  0, or < 0 logged.
 */
static int blob_to_fd(struct repo *r, const struct oid *oid, int fd,
		      const char *path)
{
	git_odb *odb = NULL;
	git_odb_stream *st = NULL;
	git_object_t type;
	git_blob *blob = NULL;
	size_t len;
	int ret = 0;

	if (git_repository_odb(&odb, r->git) == 0 &&
	    git_odb_open_rstream(&st, &len, &type, odb, GIT_OID(oid)) == 0 &&
	    type == GIT_OBJECT_BLOB) {
		char *buf = xmalloc(65536);
		ssize_t n;
		while ((n = git_odb_stream_read(st, buf, 65536)) > 0)
			if (write_full(fd, buf, (size_t)n) < 0) {
				ret = log_error_errno("write '%s'", path);
				break;
			}
		if (n < 0 && ret == 0)
			ret = log_error("read blob %s: %s", oid_hex(oid),
					repo_git_error());
		free(buf);
	} else if (git_blob_lookup(&blob, r->git, GIT_OID(oid)) < 0) {
		ret = log_error("read blob %s: %s", oid_hex(oid),
				repo_git_error());
	} else if (write_full(fd, git_blob_rawcontent(blob),
			     (size_t)git_blob_rawsize(blob)) < 0) {
		ret = log_error_errno("write '%s'", path);
	}
	git_blob_free(blob);
	git_odb_stream_free(st);
	git_odb_free(odb);
	return ret;
}

/*
 * Write blob oid, with mtime (MTIME_NONE: now), into a new file of
 * folder's tmp/ named after name's key: 0 with *tmp (the caller frees it)
 * and *fd open for more, or E_TEMP (logged, nothing left behind).
 */
static int tmp_message(char **tmp, int *fd, struct apply *ap,
		       const char *folder, const char *name, const struct oid *oid,
		       long long mtime)
{
	char *tmpdir;
	uint32_t rnd = 0;

	*tmp = NULL;
	*fd = -1;
	if (ensure_folder(ap->wt, folder) < 0)
		return E_TEMP;
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = (uint32_t)time(NULL);
	tmpdir = disk_dir(ap->wt, folder, "tmp");
	*tmp = xasprintf("%s/%.*s.%ld.%08x.maildag", tmpdir,
			 (int)maildir_key_len(name), name, (long)getpid(), rnd);
	free(tmpdir);
	*fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd < 0) {
		log_error_errno("open '%s'", *tmp);
		goto fail;
	}
	if (blob_to_fd(ap->r, oid, *fd, *tmp) < 0) {
		close(*fd);
		unlink(*tmp);
		goto fail;
	}
	if (mtime != MTIME_NONE) {
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { (time_t)mtime, 0 } };
		futimens(*fd, ts);
	}
	return 0;
fail:
	*fd = -1;
	free(*tmp);
	*tmp = NULL;
	return E_TEMP;
}

/*
 * Write blob oid as the message folder/sub/name: into tmp/, fsync, then
 * renamed into place, so a reader never sees part of it.  over: the name
 * may exist and is replaced.  E_EXISTS when the name is taken.
 */
static int write_message(struct apply *ap, const char *folder,
			 const char *sub, const char *name, const struct oid *oid,
			 long long mtime, bool over)
{
	char *dir = disk_dir(ap->wt, folder, sub);
	char *tmp = NULL, *dest = xasprintf("%s/%s", dir, name);
	int fd = -1, ret = E_TEMP;

	if (tmp_message(&tmp, &fd, ap, folder, name, oid, mtime) < 0)
		goto done;
	if (fsync(fd) < 0) {
		log_error_errno("fsync '%s'", tmp);
		goto fail;
	}
	close(fd);
	fd = -1;
	if ((over ? rename(tmp, dest) : rename_noreplace(tmp, dest)) < 0) {
		ret = errno == EEXIST ? E_EXISTS :
		      log_error_errno("rename '%s'", tmp);
		if (ret != E_EXISTS)
			ret = E_TEMP;
		goto fail;
	}
	touch_dir(ap, dir);
	ret = 0;
	goto done;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
done:
	free(tmp);
	free(dest);
	free(dir);
	return ret;
}

/*
 * A new message for a slice: written into tmp/ without its own fsync and
 * staged; stage_flush() makes every staged file durable with one
 * syncfs(2) and only then renames them into place, so a reader still
 * never sees part of one, at one flush per slice instead of one per
 * message.
 */
static int stage_message(struct apply *ap, const char *folder, const char *sub,
			 const char *name, const struct oid *oid, long long mtime)
{
	char *dir, *tmp;
	int fd;

	if (tmp_message(&tmp, &fd, ap, folder, name, oid, mtime) < 0)
		return E_TEMP;
	close(fd);
	strvec_push(&ap->staged, tmp);
	free(tmp);
	dir = disk_dir(ap->wt, folder, sub);
	tmp = xasprintf("%s/%s", dir, name);
	strvec_push(&ap->staged, tmp);
	free(tmp);
	free(dir);
	return 0;
}

/* Make the staged messages durable, then rename them into place. */
static int stage_flush(struct apply *ap)
{
	double t0 = clock_now();
	int ret = 0;

	if (ap->staged.n && syncfs_path(ap->wt->maildir) < 0)
		ret = E_TEMP;
	ap->flush += clock_now() - t0;
	for (size_t i = 0; i + 1 < ap->staged.n; i += 2) {
		const char *tmp = ap->staged.v[i], *dest = ap->staged.v[i + 1];
		char *dir;
		if (ret < 0 || rename_noreplace(tmp, dest) < 0) {
			/* EEXIST: a crashed apply or the client put it there */
			if (ret == 0 && errno != EEXIST)
				ret = log_error_errno("rename '%s'", tmp);
			unlink(tmp);
			continue;
		}
		dir = xstrndup(dest, (size_t)(strrchr(dest, '/') - dest));
		touch_dir(ap, dir);
		free(dir);
	}
	strvec_clear(&ap->staged);
	return ret < 0 ? E_TEMP : 0;
}

/* One message's change from the worktree to mail. */
struct op {
	struct ent *from, *to;	/* from: in the worktree; to: in mail */
};

/*
 * A key with other bytes under another name: the new bytes are written
 * under the new name (tmp/, fsync, rename), then the old file goes.  A
 * rename would leave the old bytes under the new name, which no rescan
 * notices (same mtime).  1 done (or found done by an apply cut short),
 * 0 the disk no longer holds what the worktree names, < 0 failed.
 */
static int apply_rewrite(struct apply *ap, const struct ent *t,
			 const char *fdir, const char *fp, const char *tp,
			 long long mtime)
{
	struct oid now;
	int r;

	if (!path_exists(fp))
		/* gone: done before a crash, or the client took it */
		return path_exists(tp) && repo_blob_hash_file(&now, tp) == 0 &&
		       oid_equal(&now, &t->oid) ? 1 : 0;
	r = write_message(ap, t->folder, t->sub, t->name, &t->oid, mtime,
			  false);
	if (r == E_EXISTS) {
		/* written before a crash, or a name the client made */
		if (repo_blob_hash_file(&now, tp) < 0 ||
		    !oid_equal(&now, &t->oid))
			return 0;
	} else if (r < 0) {
		return E_TEMP;
	}
	if (unlink(fp) < 0 && errno != ENOENT)
		return log_error_errno("unlink '%s'", fp);
	touch_dir(ap, fdir);
	return 1;
}

/*
 * Apply one message's change.  1 applied (or found already done), 0
 * skipped because the disk no longer holds what the worktree says, < 0
 * failed.
 */
static int apply_op(struct apply *ap, const struct op *op)
{
	struct worktree *wt = ap->wt;
	const struct ent *f = op->from, *t = op->to;
	char *fd_ = f ? disk_dir(wt, f->folder, f->sub) : NULL;
	char *td = t ? disk_dir(wt, t->folder, t->sub) : NULL;
	char *fp = f ? xasprintf("%s/%s", fd_, f->name) : NULL;
	char *tp = t ? xasprintf("%s/%s", td, t->name) : NULL;
	long long mtime = t ? mtcache_get(&ap->mmt, ap->r, t->name, t->klen)
			    : MTIME_NONE;
	int ret;

	if (!f) {
		/* new: written unless a crashed apply already did */
		ret = path_exists(tp) ? 1 :
		      stage_message(ap, t->folder, t->sub, t->name, &t->oid,
				    mtime);
		if (ret == E_EXISTS)
			ret = 1;
		else if (ret == 0)
			ret = 1;
	} else if (!t) {
		if (unlink(fp) == 0) {
			touch_dir(ap, fd_);
			ret = 1;
		} else {
			ret = errno == ENOENT ? 0 :
			      log_error_errno("unlink '%s'", fp);
		}
	} else if (!strcmp(fp, tp)) {
		/* same name, other bytes: replace it, if it is still there */
		ret = !path_exists(fp) ? 0 :
		      write_message(ap, t->folder, t->sub, t->name, &t->oid,
				    mtime, true) == 0 ? 1 : E_TEMP;
	} else if (ensure_folder(wt, t->folder) < 0) {
		ret = E_TEMP;
	} else if (!oid_equal(&f->oid, &t->oid)) {
		ret = apply_rewrite(ap, t, fd_, fp, tp, mtime);
	} else if (rename_noreplace(fp, tp) == 0) {
		touch_dir(ap, fd_);
		touch_dir(ap, td);
		if (mtime != MTIME_NONE)
			set_mtime(tp, mtime);
		ret = 1;
	} else if (errno == ENOENT) {
		ret = path_exists(tp) && !path_exists(fp) ? 1 : 0;
	} else if (errno == EEXIST) {
		ret = 0;
	} else {
		ret = log_error_errno("rename '%s'", fp);
	}
	if (ret < 0)
		ret = E_TEMP;
	free(fp);
	free(tp);
	free(fd_);
	free(td);
	return ret;
}

/* Record an applied change in the worktree's new tree. */
static void applied(struct apply *ap, const struct op *op)
{
	const struct ent *any = op->to ? op->to : op->from;

	if (op->from && !same_place(op->from, op->to))
		add_path(&ap->wu, op->from->folder, op->from->sub,
			 op->from->name, NULL);
	if (op->to)
		add_path(&ap->wu, op->to->folder, op->to->sub, op->to->name,
			 &op->to->oid);
	mlist_add(&ap->wm, any->name, any->klen,
		  op->to ? mtcache_get(&ap->mmt, ap->r, op->to->name,
				       op->to->klen) : MTIME_NONE);
	counts_add(&ap->res->counts, op->from, op->to);
}

static void skipped(struct apply *ap, const struct op *op)
{
	/* the client's version may have any name: look at whole folders */
	if (op->from)
		worktree_dirty_folder(ap->wt, op->from->folder);
	if (op->to)
		worktree_dirty_folder(ap->wt, op->to->folder);
	ap->res->skipped++;
	log_info("left '%s' as the mail client changed it",
		 op->from ? op->from->name : op->to->name);
}

/* Remove an empty folder from disk: E_EXISTS when it holds messages. */
static int remove_folder(struct worktree *wt, const char *folder)
{
	char *dir = disk_dir(wt, folder, NULL);
	struct dirent *de;
	DIR *d;
	int ret = 0;

	for (size_t i = 0; i < 2; i++) {
		char *s = disk_dir(wt, folder, subs[i]);
		if (rmdir(s) < 0 && errno != ENOENT)
			ret = errno == ENOTEMPTY || errno == EEXIST ? E_EXISTS :
			      log_error_errno("rmdir '%s'", s);
		free(s);
	}
	if (ret < 0)
		goto done;
	/* then what only a server kept there: tmp/, indexes, the marker */
	{
		char *t = disk_dir(wt, folder, "tmp");
		rm_rf(t);
		free(t);
	}
	if ((d = opendir(dir))) {
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
			    (worktree_ignored_name(de->d_name) ||
			     !strcmp(de->d_name, MARKER)))
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		ret = errno == ENOTEMPTY || errno == EEXIST ? E_EXISTS :
		      log_error_errno("rmdir '%s'", dir);
	else
		fsync_parent(dir);
done:
	if (ret == E_EXISTS)
		log_info("folder %s is not empty on disk; kept",
			 folder_display(folder));
	free(dir);
	return ret == E_EXISTS ? E_EXISTS : ret < 0 ? E_TEMP : 0;
}

/* mtime records changed in mail for messages that did not move. */
static int apply_mtimes(struct apply *ap, const struct dchv *d,
			const struct oid *wtree, const struct oid *mtree,
			const struct op *ops, size_t nops)
{
	struct mtcache wmt;
	int ret = 0;

	mtcache_init(&wmt, wtree);
	for (size_t i = 0; i < d->n && ret == 0; i++) {
		const char *p = d->v[i].path;
		unsigned s;
		struct strvec keys = { 0 };

		if (strncmp(p, MTIMES_DIR "/", sizeof MTIMES_DIR) ||
		    sscanf(p + sizeof MTIMES_DIR, "%2x", &s) != 1 || s > 255)
			continue;
		/* both sides of the shard (mail's may be read already) */
		if (mtimes_read_shard(&wmt.m[s], ap->r, wtree, s) < 0 ||
		    (!ap->mmt.loaded[s] &&
		     mtimes_read_shard(&ap->mmt.m[s], ap->r, mtree, s) < 0)) {
			ret = E_TEMP;
			break;
		}
		wmt.loaded[s] = ap->mmt.loaded[s] = true;
		for (size_t j = 0; j < wmt.m[s].n; j++)
			strvec_push(&keys, wmt.m[s].v[j].key);
		for (size_t j = 0; j < ap->mmt.m[s].n; j++)
			strvec_push(&keys, ap->mmt.m[s].v[j].key);
		for (size_t j = 0; j < keys.n && ret == 0; j++) {
			const char *k = keys.v[j];
			long long want = mtimes_get(&ap->mmt.m[s], k);
			struct hitv h = { 0 };
			bool moved = false;

			if (mtimes_get(&wmt.m[s], k) == want)
				continue;
			for (size_t o = 0; o < nops && !moved; o++) {
				const struct ent *e = ops[o].to ? ops[o].to
								: ops[o].from;
				moved = !key_cmp(e, k, strlen(k));
			}
			if (moved)
				continue;
			if (tree_find_key(&h, ap->r, mtree, k, strlen(k)) < 0) {
				ret = E_TEMP;
				break;
			}
			if (h.n) {
				char *dir = disk_dir(ap->wt, h.v[0].folder,
						     h.v[0].sub);
				char *fp = xasprintf("%s/%s", dir, h.v[0].name);
				struct stat st;
				if (stat(fp, &st) == 0) {
					set_mtime(fp, want);
					mlist_add(&ap->wm, k, strlen(k), want);
					ap->res->counts.mtimes++;
				}
				free(fp);
				free(dir);
			}
			hitv_clear(&h);
		}
		strvec_clear(&keys);
	}
	mtcache_release(&wmt);
	return ret;
}

/*
 * Apply ops in order, at most limit of them (0: all) and, with a slice
 * set, until deadline (CLOCK_MONOTONIC seconds); res->more when some are
 * left.
 */
static int apply_ops(struct apply *ap, struct op *ops, size_t nops,
		     size_t limit, double deadline, size_t *next)
{
	size_t done = 0;

	*next = 0;
	for (size_t i = 0; i < nops; i++) {
		int r;
		if ((limit && done >= limit) ||
		    (deadline && done && clock_now() >= deadline)) {
			ap->res->more = true;
			break;
		}
		*next = i + 1;
		r = apply_op(ap, &ops[i]);
		if (r < 0) {
			stage_flush(ap);
			return r;
		}
		if (r)
			applied(ap, &ops[i]);
		else
			skipped(ap, &ops[i]);
		done++;
	}
	return stage_flush(ap);
}

/* Pair mail's additions and removals by key into operations. */
static struct op *ops_of(struct entv *olds, struct entv *news, size_t *n)
{
	struct op *ops = NULL;
	size_t no = 0, ao = 0, i = 0, j = 0;

	qsort(olds->v, olds->n, sizeof *olds->v, ent_cmp);
	qsort(news->v, news->n, sizeof *news->v, ent_cmp);
	while (i < olds->n || j < news->n) {
		struct ent *a = i < olds->n ? &olds->v[i] : NULL;
		struct ent *b = j < news->n ? &news->v[j] : NULL;
		int c = !a ? 1 : !b ? -1 : key_cmp(a, b->name, b->klen);

		xgrow((void **)&ops, &ao, no + 1, sizeof *ops);
		ops[no].from = c <= 0 ? a : NULL;
		ops[no].to = c >= 0 ? b : NULL;
		no++;
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	*n = no;
	return ops;
}

static int ensure_all_folders(struct worktree *wt, const struct oid *mtree)
{
	struct strvec folders = { 0 };
	int ret = tree_folders(&folders, wt->r, mtree);

	for (size_t i = 0; i < folders.n && ret == 0; i++)
		if (folder_dir_valid(folders.v[i]))
			ret = ensure_folder(wt, folders.v[i]);
	strvec_clear(&folders);
	return ret;
}

/*
 * What a slice of an apply leaves for the next: the diff, its operations
 * and how far they went, valid while the worktree is the commit that
 * slice wrote and mail has not moved.  Then the next slice needs no
 * second diff, so a slice costs what it applies, not what is pending.
 */
struct plan {
	struct oid w, m;
	struct dchv d;
	struct entv olds, news;
	struct strvec mk_rm;
	struct op *ops;
	size_t nops, next;
	const struct dchange *subsc;
};

static void plan_free(struct plan *pl)
{
	if (!pl)
		return;
	dchv_clear(&pl->d);
	entv_clear(&pl->olds);
	entv_clear(&pl->news);
	strvec_clear(&pl->mk_rm);
	free(pl->ops);
	free(pl);
}

int worktree_apply(struct worktree *wt, size_t limit,
		   struct worktree_result *res)
{
	struct repo_batch batch = REPO_BATCH_INIT;
	struct plan *pl = wt->plan;
	size_t first = 0, next = 0;
	struct worktree_result dummy;
	struct strbuf prefix = STRBUF_INIT;
	struct dchv d = { 0 };
	struct entv olds = { 0 }, news = { 0 };
	struct strvec mk_add = { 0 }, mk_rm = { 0 };
	struct op *ops = NULL;
	size_t nops = 0;
	struct apply ap;
	const struct dchange *subsc = NULL;
	struct oid w, wtree, m, mtree, wtree2, w2, empty;
	double t0 = clock_now(), t1 = t0, t2 = t0, t3 = t0, deadline = 0;
	int ret;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof *res);
	memset(&ap, 0, sizeof ap);
	ap.wt = wt;
	ap.r = wt->r;
	ap.res = res;
	mtcache_init(&ap.mmt, &mtree);
	if ((ret = read_refs(wt, &w, &wtree, &m, &mtree)) < 0)
		goto done;
	oid_cpy(&res->mail, &m);
	if (oid_equal(&wtree, &mtree)) {
		if (!oid_equal(&w, &m))
			ret = repo_ref_cas(wt->r, REF_WORKTREE, &m, &w,
					   "maildag-syncd: same tree");
		goto done;
	}
	wt->plan = NULL;
	if (pl && oid_equal(&pl->w, &w) && oid_equal(&pl->m, &m)) {
		/* the next slice: the first one made the folders */
		d = pl->d;
		olds = pl->olds;
		news = pl->news;
		mk_rm = pl->mk_rm;
		ops = pl->ops;
		nops = pl->nops;
		first = pl->next;
		subsc = pl->subsc;
		free(pl);
		goto slice;
	}
	plan_free(pl);
	if ((ret = diff_walk(wt->r, &wtree, &mtree, &prefix, &d)) < 0)
		goto done;
	for (size_t i = 0; i < d.n; i++) {
		const struct dchange *c = &d.v[i];
		char *folder, *name;
		const char *sub;
		size_t plen = strlen(c->path);

		if (parse_msg_path(c->path, &folder, &sub, &name) == 0) {
			if (c->has_old) {
				struct ent *e = entv_push(&olds, folder, sub, name);
				oid_cpy(&e->oid, &c->old);
			}
			if (c->has_new) {
				struct ent *e = entv_push(&news, folder, sub, name);
				oid_cpy(&e->oid, &c->new);
			}
			free(folder);
			free(name);
		} else if (!strcmp(c->path, SUBSCRIPTIONS)) {
			subsc = c;
		} else if (plen > strlen("/" MARKER) &&
			   !strcmp(c->path + plen - strlen("/" MARKER), "/" MARKER)) {
			char *f = xstrndup(c->path, plen - strlen("/" MARKER));
			if (folder_dir_valid(f) && *f && !strchr(f, '/'))
				strvec_push(c->has_new ? &mk_add : &mk_rm, f);
			free(f);
		}
	}
	ops = ops_of(&olds, &news, &nops);
	/* the message paths are in olds and news now: keep the rest only */
	{
		size_t k = 0;
		for (size_t i = 0; i < d.n; i++) {
			char *folder, *name;
			const char *sub;
			if (parse_msg_path(d.v[i].path, &folder, &sub, &name) == 0) {
				free(folder);
				free(name);
				free(d.v[i].path);
				continue;
			}
			d.v[k++] = d.v[i];
		}
		d.n = k;
		subsc = NULL;
		for (size_t i = 0; i < d.n; i++)
			if (!strcmp(d.v[i].path, SUBSCRIPTIONS))
				subsc = &d.v[i];
	}

	/* folders first, so moves and new messages have somewhere to go */
	if (!wt->ensured) {
		if ((ret = ensure_all_folders(wt, &mtree)) < 0)
			goto done;
		wt->ensured = true;
	}
	if (mk_add.n && (ret = repo_blob_from_buffer(&empty, wt->r, "", 0)) < 0)
		goto done;
	for (size_t i = 0; i < mk_add.n; i++) {
		struct strbuf p = STRBUF_INIT;
		/* there already (left out by folder_limit): look at it */
		if (folder_on_disk(wt, mk_add.v[i]))
			worktree_dirty_folder(wt, mk_add.v[i]);
		if ((ret = ensure_folder(wt, mk_add.v[i])) < 0)
			goto done;
		strbuf_addf(&p, "%s/" MARKER, mk_add.v[i]);
		update_list_add(&ap.wu, p.buf, &empty);
		strbuf_release(&p);
		res->counts.folders_added++;
	}
slice:
	t1 = clock_now();
	/* the files, then recording them: the two within the slice */
	if (wt->slice)
		deadline = t0 + (wt->apply_tail < wt->slice * 0.75 ?
				 wt->slice - wt->apply_tail : wt->slice / 4);
	if ((ret = apply_ops(&ap, ops + first, nops - first, limit, deadline,
			     &next)) < 0)
		goto done;
	t2 = clock_now();
	if (!res->more) {
		for (size_t i = 0; i < mk_rm.n; i++) {
			struct strbuf p = STRBUF_INIT;
			git_tree *t;
			/* a folder mail still has messages in stays */
			if ((ret = subtree(&t, wt->r, &mtree, mk_rm.v[i])) < 0)
				goto done;
			if (t) {
				git_tree_free(t);
				continue;
			}
			ret = remove_folder(wt, mk_rm.v[i]);
			if (ret == E_EXISTS) {
				worktree_dirty_folder(wt, mk_rm.v[i]);
				res->skipped++;
				ret = 0;
				continue;
			}
			if (ret < 0)
				goto done;
			strbuf_addf(&p, "%s/" MARKER, mk_rm.v[i]);
			update_list_add(&ap.wu, p.buf, NULL);
			strbuf_release(&p);
			res->counts.folders_removed++;
		}
		if (subsc) {
			char *sp = xasprintf("%s/" SUBSCRIPTIONS, wt->maildir);
			git_blob *b = NULL;
			if (!subsc->has_new)
				ret = unlink(sp) < 0 && errno != ENOENT ?
				      log_error_errno("unlink '%s'", sp) : 0;
			else if (git_blob_lookup(&b, wt->r->git, GIT_OID(&subsc->new)) < 0)
				ret = log_error("read blob: %s", repo_git_error());
			else
				ret = write_file_atomic(sp, git_blob_rawcontent(b),
					(size_t)git_blob_rawsize(b), 0600);
			git_blob_free(b);
			free(sp);
			if (ret < 0) {
				ret = E_TEMP;
				goto done;
			}
			update_list_add(&ap.wu, SUBSCRIPTIONS,
					subsc->has_new ? &subsc->new : NULL);
			res->counts.other++;
		}
		if ((ret = apply_mtimes(&ap, &d, &wtree, &mtree, ops, nops)) < 0)
			goto done;
	}

	t3 = clock_now();
	/* what the worktree may now say: only what the disk surely holds */
	for (size_t i = 0; i < ap.touched.n; i++)
		/* a folder removed since is synced in its parent */
		if (is_dir(ap.touched.v[i]) && fsync_dir(ap.touched.v[i]) < 0) {
			ret = E_TEMP;
			goto done;
		}
	/* the worktree's objects are synced once, before the ref moves */
	repo_batch_begin(&batch, wt->r);
	if (!res->skipped && !res->more) {
		oid_cpy(&w2, &m);
	} else if ((ret = mtimes_update(&ap.wu, wt->r, &wtree, ap.wm.v,
					ap.wm.n)) < 0 ||
		   (ret = repo_tree_update(&wtree2, wt->r, &wtree, ap.wu.v,
					   ap.wu.n)) < 0) {
		ret = E_TEMP;
		goto done;
	} else if (oid_equal(&wtree2, &wtree)) {
		oid_cpy(&w2, &w);
	} else if ((ret = repo_commit(&w2, wt->r, &wtree2, &w, 1,
				      "worktree: applied in part\n", -1,
				      "maildag-syncd", wt->email)) < 0) {
		ret = E_TEMP;
		goto done;
	}
	if (repo_batch_end(&batch, !oid_equal(&w2, &w) &&
				   !oid_equal(&w2, &m)) < 0) {
		ret = E_TEMP;
		goto done;
	}
	if (!oid_equal(&w2, &w) &&
	    (ret = repo_ref_cas(wt->r, REF_WORKTREE, &w2, &w,
				"maildag-syncd: applied")) < 0)
		goto done;
	log_debug("apply: plan %.0f ms, files %.0f ms (syncfs %.0f ms), "
		  "rest %.0f ms, record %.0f ms", (t1 - t0) * 1000,
		  (t2 - t1) * 1000, ap.flush * 1000, (t3 - t2) * 1000,
		  (clock_now() - t3) * 1000);
	wt->apply_tail = (wt->apply_tail + clock_now() - t2) / 2;
	if (res->more) {
		pl = xcalloc(1, sizeof *pl);
		oid_cpy(&pl->w, &w2);
		oid_cpy(&pl->m, &m);
		pl->d = d;
		pl->olds = olds;
		pl->news = news;
		pl->mk_rm = mk_rm;
		pl->ops = ops;
		pl->nops = nops;
		pl->next = first + next;
		pl->subsc = subsc;
		wt->plan = pl;
		memset(&d, 0, sizeof d);
		memset(&olds, 0, sizeof olds);
		memset(&news, 0, sizeof news);
		memset(&mk_rm, 0, sizeof mk_rm);
		ops = NULL;
	}
	{
		struct strbuf t = STRBUF_INIT;
		counts_text(&t, &res->counts);
		log_info("applied %.12s: %s%s", oid_hex(&m), t.buf,
			 res->skipped ? " (some left to the mail client)" :
			 res->more ? " (more to come)" : "");
		strbuf_release(&t);
	}
	/* folders that came or went: those left out are counted again */
	if (wt->left_out && (res->counts.folders_added ||
			     res->counts.folders_removed))
		worktree_dirty_root(wt);
	ret = 0;
done:
	repo_batch_end(&batch, false);
	if (ret < 0 && ret != E_RACE)
		ret = E_TEMP;
	free(ops);
	entv_clear(&olds);
	entv_clear(&news);
	strvec_clear(&mk_add);
	strvec_clear(&mk_rm);
	dchv_clear(&d);
	strbuf_release(&prefix);
	mtcache_release(&ap.mmt);
	update_list_release(&ap.wu);
	mlist_release(&ap.wm);
	strvec_clear(&ap.touched);
	strmap_clear(&ap.touched_set);
	strvec_clear(&ap.staged);
	return ret;
}
