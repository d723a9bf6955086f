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
 *
 * The module is four files (worktree_p.h has what they share): this one
 * holds the handle and its dirty marks, names and paths, reading trees
 * and the key index of the worktree tree; worktree_scan.c the scan,
 * worktree_commit.c the commit, worktree_apply.c the apply.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fnv.h"
#include "folder.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "strvec.h"
#include "treediff.h"
#include "vec.h"
#include "worktree.h"
#include "worktree_p.h"
#include "xalloc.h"

/* --- the worktree ------------------------------------------------------- */

static void kidx_free(struct kidx *k);

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
	wt->node = xstrdup(node && *node ? node : "localhost");
	wt->uid_slot = -1;
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
	strmap_clear(&wt->seen);
	strvec_clear(&wt->unreadable);
	free(wt->origin);
	strvec_clear(&wt->queue);
	kidx_free(wt->kidx);
	wt_plan_free(wt->plan);
	free(wt->email);
	free(wt->node);
	strvec_clear(&wt->dv_stale);
	wt_dv_made_release(wt);
	free(wt->made_lock);
	free(wt->maildir);
	free(wt);
}

void worktree_set_uid_slot(struct worktree *wt, int slot)
{
	wt->uid_slot = slot;
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

char *wt_disk_dir(const struct worktree *wt, const char *folder,
		  const char *sub)
{
	return layout_folder_dir(wt->maildir, folder, sub);
}

int wt_parse_msg_path(const char *path, char **folder, const char **sub,
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

bool wt_folder_on_disk(const struct worktree *wt, const char *folder)
{
	return layout_folder_exists(wt->maildir, folder);
}

/* --- reading trees ------------------------------------------------------ */

int wt_subtree(git_tree **out, struct repo *r, const struct oid *root,
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

int wt_subtree_of(git_tree **out, struct repo *r, git_tree *root,
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

void wt_hitv_clear(struct hitv *h)
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

int wt_tree_find_key(struct hitv *out, struct repo *r, const struct oid *root,
		     const char *key, size_t klen)
{
	git_tree *rt;
	char shard[3];
	int ret = 0;

	if (wt_subtree(&rt, r, root, NULL) < 0)
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
			if (wt_subtree_of(&t, r, rt, p.buf) < 0)
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

void wt_mtcache_init(struct mtcache *c, const struct oid *tree)
{
	memset(c, 0, sizeof *c);
	c->tree = tree;
}

void wt_mtcache_release(struct mtcache *c)
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
		if (wt_subtree(&c->dir, r, c->tree, MTIMES_DIR) < 0)
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

long long wt_mtcache_get(struct mtcache *c, struct repo *r,
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

/* --- tree diffs and the key index ---------------------------------------- */

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

void wt_dchv_clear(struct dchv *d)
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

int wt_diff_walk(struct repo *r, const struct oid *a, const struct oid *b,
		 struct strbuf *prefix, struct dchv *out)
{
	static const struct treediff_ops ops = { NULL, NULL, diff_leaf };

	return treediff(r, a, b, prefix, &ops, out);
}

/*
 * The messages of the worktree tree by key, for a mailbox with many
 * folders, where wt_tree_find_key() would read two trees per folder for
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
	ret = wt_diff_walk(wt->r, k ? &k->tree : NULL, tree, &prefix, &d);
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
		if (wt_parse_msg_path(d.v[i].path, &folder, &sub, &name) < 0)
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
	wt_dchv_clear(&d);
	strbuf_release(&prefix);
	return ret < 0 ? E_TEMP : 0;
}

int wt_find_key(struct worktree *wt, struct hitv *out, const struct oid *tree,
		git_tree *root, const char *key, size_t klen)
{
	if (root && git_tree_entrycount(root) <= KIDX_FOLDERS && !wt->kidx)
		return wt_tree_find_key(out, wt->r, tree, key, klen);
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
