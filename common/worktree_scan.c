/*
 * worktree_scan: what changed on disk since the worktree tree, for
 * worktree_commit() (see worktree.h, and worktree.c for the invariants).
 *
 * A scan lists the messages the worktree has and the disk has not (rm),
 * the messages on disk the worktree lacks (add) and those whose mtime
 * changed (mt), looking at single names, whole folders, or the root (the
 * subscriptions file and which folders exist), a slice at a time when
 * the look is bounded.  Resolving then pairs a key removed with the same
 * key added (a rename keeps its blob), and tells a copy, a half-done
 * move and new bytes under a known name apart.  Nothing here writes the
 * repository; a key rewritten on disk (rekey) is the one change to the
 * Maildir.
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

#include "folder.h"
#include "format.h"
#include "fsutil.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "strvec.h"
#include "vec.h"
#include "worktree_p.h"
#include "xalloc.h"

/* --- scanning ----------------------------------------------------------- */

struct ent *wt_entv_push(struct entv *ev, const char *folder,
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

void wt_ent_release(struct ent *e)
{
	free(e->folder);
	free(e->name);
	free(e->dname);
	free(e->seen);
	e->folder = e->name = e->dname = e->seen = NULL;
}

void wt_entv_clear(struct entv *ev)
{
	for (size_t i = 0; i < ev->n; i++)
		wt_ent_release(&ev->v[i]);
	VEC_FREE(ev);
}

int wt_ent_cmp(const void *a, const void *b)
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

void wt_scan_init(struct scan *sc, struct repo *r, const struct oid *wtree)
{
	memset(sc, 0, sizeof *sc);
	sc->r = r;
	sc->wtree = wtree;
	wt_mtcache_init(&sc->wmt, wtree);
}

void wt_scan_release(struct scan *sc)
{
	wt_entv_clear(&sc->rm);
	wt_entv_clear(&sc->add);
	for (size_t i = 0; i < sc->nmt; i++)
		free(sc->mt[i].key);
	free(sc->mt);
	strvec_clear(&sc->mk_add);
	strvec_clear(&sc->mk_rm);
	strmap_clear(&sc->scanned);
	strvec_clear(&sc->later);
	strvec_clear(&sc->held_rm);
	strvec_clear(&sc->unreadable);
	wt_mtcache_release(&sc->wmt);
	wt_dv_scan_release(sc);
	git_tree_free(sc->root);
	git_tree_free(sc->mroot);
}

git_tree *wt_scan_root_tree(struct scan *sc)
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
	long long known = wt_mtcache_get(&sc->wmt, sc->r, name, klen);

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
/* A change in place: the worktree's file out, the disk's in. */
static void push_in_place(struct scan *sc, const char *folder,
			  const char *sub, const char *name, const char *dname,
			  const struct oid *woid, const struct stat *st,
			  bool rehash)
{
	struct ent *e = wt_entv_push(&sc->rm, folder, sub, name);

	oid_cpy(&e->oid, woid);
	e->have_oid = true;
	e = wt_entv_push(&sc->add, folder, sub, name);
	if (strcmp(dname, name))
		e->dname = xstrdup(dname);
	e->mtime = st->st_mtime;
	e->ctime = st->st_ctime;
	e->rehash = rehash;
}

static int scan_both(struct worktree *wt, struct scan *sc, const char *folder,
		     const char *sub, const char *name, const char *dname,
		     const struct oid *woid, const struct stat *st)
{
	size_t klen = maildir_key_len(name);
	char *dir, *p;
	struct oid now;
	int ret = 0, err;
	/* format 2: keywords alone changed, paired as a flag change */
	bool kw = sc->imap && wt_dv_keywords_differ(wt, sc, folder, dname);

	if (wt_mtcache_get(&sc->wmt, sc->r, name, klen) == st->st_mtime) {
		if (kw)
			push_in_place(sc, folder, sub, name, dname, woid, st,
				      false);
		return 0;
	}
	dir = wt_disk_dir(wt, folder, sub);
	p = xasprintf("%s/%s", dir, dname);
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
		push_in_place(sc, folder, sub, name, dname, woid, st, true);
	} else {
		if (kw)
			push_in_place(sc, folder, sub, name, dname, woid, st,
				      false);
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

int wt_scan_name(struct worktree *wt, struct scan *sc, const char *folder,
		 const char *sub, const char *dname, git_tree *shard)
{
	const git_tree_entry *te;
	char *dir = wt_disk_dir(wt, folder, sub), *other = NULL;
	struct strbuf tn = STRBUF_INIT;
	const char *name = dname;
	struct stat st;
	struct oid oid;
	int dfd, on_disk = 0, known, ret = 0;

	if (sc->imap) {
		wt_dv_tree_name(&tn, sub, dname);
		name = tn.buf;
	}
	te = shard ? git_tree_entry_byname(shard, name) : NULL;
	known = te && git_tree_entry_type(te) == GIT_OBJECT_BLOB ? 0 : E_NOTFOUND;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		on_disk = disk_file(dfd, dname, &st);
		/* format 2: the same message may be there with other letters */
		if (on_disk == 0 && sc->imap && known == 0 &&
		    (other = wt_dv_disk_name(wt, sc, folder, sub, name))) {
			dname = other;
			on_disk = disk_file(dfd, dname, &st);
		}
		close(dfd);
	} else if (errno != ENOENT && errno != ENOTDIR) {
		on_disk = log_error_errno("open '%s'", dir);
	}
	free(dir);
	if (on_disk < 0) {
		sc->temp_error = true;
		ret = E_TEMP;
		goto done;
	}
	if (known == 0)
		oid_cpy(&oid, OID(git_tree_entry_id(te)));
	if (known == 0 && !on_disk) {
		struct ent *e = wt_entv_push(&sc->rm, folder, sub, name);
		oid_cpy(&e->oid, &oid);
		e->have_oid = true;
	} else if (known != 0 && on_disk) {
		struct ent *e = wt_entv_push(&sc->add, folder, sub, name);
		if (strcmp(dname, name))
			e->dname = xstrdup(dname);
		e->mtime = st.st_mtime;
		e->ctime = wt_seen_since(wt, folder, &st, &e->seen);
		e->linked = st.st_nlink > 1;
	} else if (on_disk) {
		ret = scan_both(wt, sc, folder, sub, name, dname, &oid, &st);
	}
done:
	free(other);
	strbuf_release(&tn);
	return ret;
}

struct dent {
	char *name;		/* as the tree names it */
	char *dname;		/* format 2: on disk, when not name */
	unsigned shard;
};

static int dent_cmp(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return strcmp(x->name, y->name);
}

static const char *dent_disk(const struct dent *d)
{
	return d->dname ? d->dname : d->name;
}

/*
 * The message files of an open directory, by shard and tree name
 * (format 2: the name without keyword letters, the disk's in dname).
 */
static struct dent *list_dents(struct scan *sc, const char *sub, DIR *dh,
			       size_t *n)
{
	struct dent *d = NULL;
	struct dirent *de;
	size_t nd = 0, ad = 0;

	while (dh && (de = readdir(dh))) {
		if (!maildir_name_valid(de->d_name))
			continue;	/* ".", "..", dot files, odd names */
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		xgrow((void **)&d, &ad, nd + 1, sizeof *d);
		d[nd].name = xstrdup(de->d_name);
		d[nd].dname = NULL;
		if (sc->imap) {
			struct strbuf tn = STRBUF_INIT;
			wt_dv_tree_name(&tn, sub, de->d_name);
			if (strcmp(tn.buf, de->d_name)) {
				d[nd].dname = d[nd].name;
				d[nd].name = strbuf_detach(&tn, NULL);
			}
			strbuf_release(&tn);
		}
		d[nd].shard = maildir_shard(de->d_name,
					    maildir_key_len(de->d_name));
		nd++;
	}
	qsort(d, nd, sizeof *d, dent_cmp);
	*n = nd;
	return d;
}

/* Compare all of folder/sub on disk with the worktree. */
static int scan_sub(struct worktree *wt, struct scan *sc, const char *folder,
		    const char *sub)
{
	char *dir = wt_disk_dir(wt, folder, sub);
	struct dent *d = NULL;
	size_t nd = 0, di = 0;
	struct strbuf tp = STRBUF_INIT;
	git_tree *st = NULL;
	DIR *dh = opendir(dir);
	int ret = 0;

	if (!dh && errno != ENOENT && errno != ENOTDIR) {
		ret = log_error_errno("opendir '%s'", dir);
		goto done;
	}
	d = list_dents(sc, sub, dh, &nd);
	sc->seen += nd;

	if (*folder)
		strbuf_addf(&tp, "%s/", folder);
	strbuf_addstr(&tp, sub);
	if (!wt_scan_root_tree(sc) ||
	    wt_subtree_of(&st, sc->r, sc->root, tp.buf) < 0) {
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
				struct ent *e = wt_entv_push(&sc->rm, folder, sub, wname);
				oid_cpy(&e->oid, OID(git_tree_entry_id(we)));
				e->have_oid = true;
				wi++;
				continue;
			}
			f = disk_file(dirfd(dh), dent_disk(&d[di]), &sb);
			if (f < 0) {
				ret = E_TEMP;
				git_tree_free(sh);
				goto done;
			}
			if (c < 0 && f) {
				struct ent *e = wt_entv_push(&sc->add, folder, sub,
							     d[di].name);
				if (d[di].dname)
					e->dname = xstrdup(d[di].dname);
				e->mtime = sb.st_mtime;
				e->ctime = wt_seen_since(wt, folder, &sb, &e->seen);
				e->linked = sb.st_nlink > 1;
			} else if (c == 0 && f) {
				scan_both(wt, sc, folder, sub, d[di].name,
					  dent_disk(&d[di]),
					  OID(git_tree_entry_id(we)), &sb);
			} else if (c == 0) {
				/* gone since readdir, or not a file */
				struct ent *e = wt_entv_push(&sc->rm, folder, sub, wname);
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
	for (size_t i = 0; i < nd; i++) {
		free(d[i].name);
		free(d[i].dname);
	}
	free(d);
	free(dir);
	return ret;
}

static int tree_has(struct scan *sc, const char *path, struct oid *oid)
{
	git_tree_entry *e = NULL;
	int r;

	if (!wt_scan_root_tree(sc)) {
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

int wt_in_worktree(struct scan *sc, const char *folder)
{
	git_tree *t = wt_scan_root_tree(sc);
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
		return wt_scan_root_tree(sc);
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

int wt_scan_folder(struct worktree *wt, struct scan *sc, const char *folder,
		   bool in_pass)
{
	size_t out = 0;
	bool disk;
	int ret = 0;

	if (!strmap_put(&sc->scanned, folder, 0))
		return strmap_get(&sc->scanned, folder, &out) && out ? 1 : 0;
	disk = wt_folder_on_disk(wt, folder);
	if (*folder) {
		char *mp = xasprintf("%s/" MARKER, folder);
		int known = tree_has(sc, mp, NULL), a;
		int held = wt_in_worktree(sc, folder);
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

int wt_tree_folders(struct strvec *out, struct repo *r, const struct oid *tree)
{
	git_tree *t;

	if (wt_subtree(&t, r, tree, NULL) < 0)
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

int wt_scan_root(struct worktree *wt, struct scan *sc, bool all)
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
	    wt_tree_folders(&known, sc->r, sc->wtree) < 0) {
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

int wt_key_cmp(const struct ent *e, const char *key, size_t klen)
{
	size_t k = e->klen < klen ? e->klen : klen;
	int c = memcmp(e->name, key, k);

	if (!c && e->klen != klen)
		c = e->klen < klen ? -1 : 1;
	return c;
}

bool wt_same_place(const struct ent *a, const struct ent *b)
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
		if (wt_key_cmp(&sc->rm.v[mid], key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < sc->rm.n && !wt_key_cmp(&sc->rm.v[lo], key, klen); lo++)
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
static int rekey(struct worktree *wt, struct ent *e, bool imap)
{
	char *dir = wt_disk_dir(wt, e->folder, e->sub);
	struct strbuf nn = STRBUF_INIT;
	uint32_t rnd;
	char *from, *to;
	int ret = 0;

	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = (uint32_t)getpid() ^ (uint32_t)time(NULL);
	strbuf_add(&nn, e->name, e->klen);
	strbuf_addf(&nn, ".c%08x", rnd);
	strbuf_addstr(&nn, wt_ent_disk(e) + e->klen);
	from = xasprintf("%s/%s", dir, wt_ent_disk(e));
	to = xasprintf("%s/%s", dir, nn.buf);
	if (nn.len > MAILDIR_NAME_MAX)
		ret = log_error("cannot give '%s' a key of its own: name too "
				"long", e->name);
	else if (imap && (ret = wt_dv_rekey(wt, e->folder, e->sub,
					    wt_ent_disk(e), nn.buf)) < 0)
		;	/* format 2: the uidlist record follows, same UID */
	else if (!imap && rename_noreplace(from, to) < 0)
		ret = errno == ENOENT ? E_NOTFOUND :
		      log_error_errno("rename '%s'", from);
	else {
		log_info("'%s' in %s repeats a key; renamed to '%s'", wt_ent_disk(e),
			 folder_display(e->folder), nn.buf);
		free(e->name);
		free(e->dname);
		e->dname = NULL;
		if (imap) {
			struct strbuf tn = STRBUF_INIT;
			wt_dv_tree_name(&tn, e->sub, nn.buf);
			if (strcmp(tn.buf, nn.buf))
				e->dname = xstrdup(nn.buf);
			e->name = strbuf_detach(&tn, NULL);
		} else {
			e->name = strbuf_detach(&nn, NULL);
		}
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
	char *dir = wt_disk_dir(wt, e->folder, e->sub);
	char *p = xasprintf("%s/%s", dir, wt_ent_disk(e));
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

/*
 * Give one addition its blob: 0 keep it, 1 drop it, < 0 failed.  The blob
 * of the same key removed in this batch (a rename), else of the same key
 * elsewhere in the worktree when that file is gone (a move whose other
 * half was missed), else the file's bytes.  A key still on disk
 * elsewhere is a copy: held back a moment (it may be the first half of a
 * move), then given a key of its own.
 */
static int resolve_one(struct worktree *wt, struct scan *sc, struct ent *a,
		       const char *prev_key, size_t prev_klen, time_t now,
		       struct entv *extra)
{
	struct ent *rm = find_rm(sc, a->name, a->klen);
	struct hitv hits = { 0 };
	/* a hard link is what Dovecot's MOVE makes: its unlink may lag */
	bool dup, settled = now - a->ctime >= (a->linked ? LINK_SETTLE :
					       COPY_SETTLE);
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
	/* the key of an addition kept before it (maybe rekeyed since) */
	dup = prev_key && !wt_key_cmp(a, prev_key, prev_klen);
	if (!dup && wt_find_key(wt, &hits, sc->wtree, wt_scan_root_tree(sc), a->name,
				a->klen) < 0)
		return E_TEMP;
	for (size_t h = 0; h < hits.n && !dup; h++) {
		char *dir, *p;
		if (in_rm(sc, &hits.v[h])) {
			dup = true;	/* its removal went to another file */
			continue;
		}
		dir = wt_disk_dir(wt, hits.v[h].folder, hits.v[h].sub);
		p = xasprintf("%s/%s", dir, hits.v[h].name);
		if (!path_exists(p) && sc->imap) {
			/* format 2: the file carries letters the tree lacks */
			char *dn = wt_dv_disk_name(wt, sc, hits.v[h].folder,
						   hits.v[h].sub,
						   hits.v[h].name);
			free(p);
			p = xasprintf("%s/%s", dir, dn ? dn : hits.v[h].name);
			free(dn);
		}
		if (path_exists(p)) {
			dup = true;
		} else {
			struct ent *x = wt_entv_push(extra, hits.v[h].folder,
						     hits.v[h].sub, hits.v[h].name);
			oid_cpy(&x->oid, &hits.v[h].oid);
			x->have_oid = x->claimed = true;
			oid_cpy(&a->oid, &hits.v[h].oid);
			a->have_oid = true;
		}
		free(p);
		free(dir);
	}
	wt_hitv_clear(&hits);
	if (!dup && !a->have_oid && sc->mtree) {
		/* new here; mail may hold another message with this key */
		if (wt_tree_find_key(&hits, sc->r, sc->mtree, a->name, a->klen) < 0)
			return E_TEMP;
		if (hits.n) {
			r = hash_add(wt, sc, a);
			if (r < 0) {
				wt_hitv_clear(&hits);
				return r == E_NOTFOUND || r == E_PERM ? 1 : E_TEMP;
			}
			for (size_t h = 0; h < hits.n; h++)
				if (!oid_equal(&hits.v[h].oid, &a->oid))
					dup = settled = true;
		}
		wt_hitv_clear(&hits);
	}
	if (dup && !settled) {
		wt_hold_back(sc, a);
		return 1;
	}
	if (!dup && !a->have_oid && wt_hold_link(sc, a, now))
		return 1;
	if (dup) {
		r = rekey(wt, a, sc->imap);
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
		a->fresh = !dup && !a->rehash;
	}
	return 0;
}

int wt_resolve(struct worktree *wt, struct scan *sc)
{
	struct entv extra = { 0 };
	time_t now = time(NULL);
	size_t w = 0, i, prev_klen = 0;
	char *prev_key = NULL;
	int ret = 0;

	qsort(sc->rm.v, sc->rm.n, sizeof *sc->rm.v, wt_ent_cmp);
	qsort(sc->add.v, sc->add.n, sizeof *sc->add.v, wt_ent_cmp);
	for (i = 0; i < sc->add.n; i++) {
		struct ent a = sc->add.v[i];
		/*
		 * the key as found: an addition rekeyed keeps it here, so
		 * that a third file of one key is a copy too (compared with
		 * the second's new key, it kept the first's)
		 */
		char *key = xstrndup(a.name, a.klen);
		size_t klen = a.klen;
		int r = resolve_one(wt, sc, &a, prev_key, prev_klen, now,
				    &extra);
		if (r < 0) {
			ret = r;
			sc->add.v[w++] = a;
			i++;
			free(key);
			break;
		}
		if (r == 1) {
			wt_ent_release(&a);
			free(key);
		} else {
			sc->add.v[w++] = a;
			free(prev_key);
			prev_key = key;
			prev_klen = klen;
		}
	}
	free(prev_key);
	for (; i < sc->add.n; i++)
		sc->add.v[w++] = sc->add.v[i];
	sc->add.n = w;
	for (i = 0; i < extra.n; i++) {
		struct ent *x = wt_entv_push(&sc->rm, extra.v[i].folder,
					     extra.v[i].sub, extra.v[i].name);
		oid_cpy(&x->oid, &extra.v[i].oid);
		x->have_oid = x->claimed = true;
	}
	wt_entv_clear(&extra);
	qsort(sc->rm.v, sc->rm.n, sizeof *sc->rm.v, wt_ent_cmp);
	if (ret == 0)
		ret = wt_pair_moves(wt, sc);
	/* a rekeyed addition moved in the order */
	qsort(sc->add.v, sc->add.n, sizeof *sc->add.v, wt_ent_cmp);
	if (ret < 0)
		sc->temp_error = true;
	return ret;
}
