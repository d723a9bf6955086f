/*
 * worktree_moves: a client's MOVE seen in two halves stays one move
 * (see worktree.h, and worktree.c for the invariants).
 *
 * Dovecot's MOVE on Maildir links each message into the destination's
 * tmp/, renames the links into new/ or cur/ (the destination half: the
 * file is there twice, st_nlink 2), and only then unlinks the sources
 * (the other half).  The destination's name is the source's base name
 * the first time a message moves; afterwards (its GUID is no longer its
 * base name, or the destination's dovecot-uidlist still lists that
 * name) it is a new one, so the message's key changes.  A commit that
 * runs between the halves, or reads a MOVE that changed the key, must
 * still make one move of it: a removal and an addition would lose the
 * message's history (a concurrent change on a peer is merged into an
 * expunge), and a big MOVE cut in two raises the mass-deletion alarm.
 *
 * So an addition that is a hard link is held back (as a copy is) for up
 * to LINK_SETTLE seconds while its source may still go, and an addition
 * nothing else explains whose bytes are those of a removal from another
 * folder in the same scan is renamed back to the removed key, with its
 * dovecot-uidlist record, and becomes that removal's move.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dovecot.h"
#include "folder.h"
#include "fsutil.h"
#include "log.h"
#include "maildir_name.h"
#include "strbuf.h"
#include "strvec.h"
#include "worktree_p.h"
#include "xalloc.h"

void wt_hold_back(struct scan *sc, const struct ent *a)
{
	/* looked at again by its name on disk (format 2: with letters) */
	char *s = xasprintf("%s/%s/%s", a->folder, a->sub, wt_ent_disk(a));

	strvec_push(&sc->later, s);
	free(s);
}

time_t wt_seen_since(struct worktree *wt, const char *folder,
		     const struct stat *st, char **key)
{
	/*
	 * Per folder: the same inode linked into another folder (moved
	 * on, or back) is a new addition there.  With mtime and size: a
	 * new file that reuses a freed inode (a Maildir's churn) is not
	 * taken for the one seen before.
	 */
	char *k = xasprintf("%s/%llu:%llu:%lld:%lld", folder,
			    (unsigned long long)st->st_dev,
			    (unsigned long long)st->st_ino,
			    (long long)st->st_mtime, (long long)st->st_size);
	size_t t;

	if (!strmap_get(&wt->seen, k, &t)) {
		t = (size_t)time(NULL);
		strmap_put(&wt->seen, k, t);
	}
	free(*key);
	*key = k;
	return (time_t)t < st->st_ctime ? (time_t)t : st->st_ctime;
}

void wt_seen_prune(struct worktree *wt, time_t now, time_t age)
{
	struct strvec old = STRVEC_INIT;

	for (size_t i = 0; i < wt->seen.cap; i++)
		if (wt->seen.v[i].key && (time_t)wt->seen.v[i].value < now - age)
			strvec_push(&old, wt->seen.v[i].key);
	for (size_t i = 0; i < old.n; i++)
		strmap_del(&wt->seen, old.v[i]);
	strvec_clear(&old);
}

bool wt_hold_link(struct scan *sc, const struct ent *a, time_t now)
{
	if (!a->linked || now - a->ctime >= LINK_SETTLE)
		return false;
	wt_hold_back(sc, a);
	return true;
}

/* Does folder's cur/ or new/ hold a file whose key is key (klen bytes)? */
static bool key_on_disk(struct worktree *wt, const char *folder,
			const char *key, size_t klen)
{
	bool found = false;

	for (size_t i = 0; i < 2 && !found; i++) {
		char *dir = wt_disk_dir(wt, folder, subs[i]);
		DIR *dh = opendir(dir);
		struct dirent *de;

		while (dh && !found && (de = readdir(dh)))
			found = maildir_key_len(de->d_name) == klen &&
				!memcmp(de->d_name, key, klen);
		if (dh)
			closedir(dh);
		free(dir);
	}
	return found;
}

/*
 * Drop the records of u for key other than keep's: left by an earlier
 * expunge of that key here (Dovecot keeps them until it rewrites the
 * file, and drops them then, as their files are gone).  Whether any was.
 */
static bool drop_stale(struct uidlist *u, const char *key, size_t klen,
		       const char *keep)
{
	size_t w = 0;

	for (size_t i = 0; i < u->n; i++) {
		struct uidlist_rec *x = &u->v[i];
		if (strcmp(x->base, keep) && maildir_key_len(x->base) == klen &&
		    !memcmp(x->base, key, klen)) {
			free(x->base);
			free(x->ext);
			continue;
		}
		u->v[w++] = *x;
	}
	if (w == u->n)
		return false;
	u->n = w;
	return true;
}

/*
 * Rename a's file to the name to (in its folder and sub) under Dovecot's
 * lock, its uidlist record following: the same UID under the new base,
 * Dovecot's GUID kept (E5).  0; E_NOTFOUND when it cannot be done (a's
 * file gone, or to's key on disk there already); E_TEMP (logged).
 */
static int rename_back(struct worktree *wt, const struct ent *a,
		       const char *to, size_t klen)
{
	char *dir = wt_disk_dir(wt, a->folder, NULL);
	char *sd = wt_disk_dir(wt, a->folder, a->sub);
	const char *from = wt_ent_disk(a);
	char *fp = xasprintf("%s/%s", sd, from), *tp = xasprintf("%s/%s", sd, to);
	char *ob = xstrndup(from, strcspn(from, ":"));
	char *nb = xstrndup(to, strcspn(to, ":"));
	struct dovecot_lock lock = DOVECOT_LOCK_INIT;
	struct uidlist u = UIDLIST_INIT;
	bool have_u, dirty = false;
	int ret, r;

	if (dovecot_lock(&lock, dir, DV_LOCK_MS) < 0) {
		ret = E_TEMP;
		goto out;
	}
	r = uidlist_read(&u, dir);
	have_u = r == 0;
	if (r < 0 && r != E_NOTFOUND) {
		ret = E_TEMP;
	} else if (key_on_disk(wt, a->folder, to, klen)) {
		ret = E_NOTFOUND;
	} else if (rename_noreplace(fp, tp) < 0) {
		ret = errno == ENOENT || errno == EEXIST ? E_NOTFOUND :
		      (log_error_errno("rename '%s'", fp), E_TEMP);
	} else {
		ret = 0;
		if (have_u)
			dirty = drop_stale(&u, to, klen, ob);
		if (have_u && uidlist_rename(&u, ob, nb))
			dirty = true;
		if (dirty && uidlist_rewrite(dir, &u) < 0)
			log_warn("'%s': the record of '%s' keeps its old name",
				 dir, ob);
	}
	uidlist_release(&u);
	dovecot_unlock(&lock);
out:
	free(dir);
	free(sd);
	free(fp);
	free(tp);
	free(ob);
	free(nb);
	return ret;
}

/* Make a the move of rm: its file renamed back to rm's key.  0, 1 when
 * it cannot be (a stays an addition), < 0 (logged). */
static int move_back(struct worktree *wt, struct scan *sc, struct ent *a,
		     const struct ent *rm)
{
	struct strbuf nn = STRBUF_INIT;
	int r;

	/*
	 * the old base name whole (its ",S=" fields too: Dovecot's uidlist
	 * knows a message by it), the new flags and keyword letters
	 */
	strbuf_add(&nn, rm->name, strcspn(rm->name, ":"));
	strbuf_addstr(&nn, wt_ent_disk(a) + strcspn(wt_ent_disk(a), ":"));
	if (nn.len > MAILDIR_NAME_MAX) {
		strbuf_release(&nn);
		return 1;
	}
	r = rename_back(wt, a, nn.buf, rm->klen);
	if (r == 0) {
		log_debug("'%s' in %s is '%.*s' moved under a new name; "
			 "renamed back to '%s'", wt_ent_disk(a),
			 folder_display(a->folder), (int)rm->klen,
			 rm->name, nn.buf);
		free(a->name);
		free(a->dname);
		a->dname = NULL;
		if (sc->imap) {
			struct strbuf tn = STRBUF_INIT;
			wt_dv_tree_name(&tn, a->sub, nn.buf);
			if (strcmp(tn.buf, nn.buf))
				a->dname = xstrdup(nn.buf);
			a->name = strbuf_detach(&tn, NULL);
		} else {
			a->name = strbuf_detach(&nn, NULL);
		}
		a->klen = rm->klen;
		a->fresh = false;
	}
	strbuf_release(&nn);
	return r == 0 ? 0 : r == E_NOTFOUND ? 1 : r;
}

static int by_oid(const void *x, const void *y)
{
	const struct ent *a = *(const struct ent *const *)x;
	const struct ent *b = *(const struct ent *const *)y;
	int c = oid_cmp(&a->oid, &b->oid);

	return c ? c : wt_ent_cmp(a, b);
}

static int pair_by_bytes(struct worktree *wt, struct scan *sc)
{
	struct ent **v = NULL;
	size_t n = 0;
	bool any = false;
	int ret = 0;

	for (size_t i = 0; i < sc->add.n && !any; i++)
		any = sc->add.v[i].fresh;
	if (!any)
		return 0;
	v = xcalloc(sc->rm.n ? sc->rm.n : 1, sizeof *v);
	for (size_t i = 0; i < sc->rm.n; i++)
		if (!sc->rm.v[i].claimed && sc->rm.v[i].have_oid)
			v[n++] = &sc->rm.v[i];
	qsort(v, n, sizeof *v, by_oid);
	/* in key order, each takes the first removal with its bytes */
	for (size_t i = 0; i < sc->add.n; i++) {
		struct ent *a = &sc->add.v[i];
		size_t lo = 0, hi = n;
		int r = 1;

		while (a->fresh && lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (oid_cmp(&v[mid]->oid, &a->oid) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; a->fresh && lo < n && oid_equal(&v[lo]->oid, &a->oid);
		     lo++) {
			if (v[lo]->claimed)
				continue;
			if ((r = move_back(wt, sc, a, v[lo])) == 0)
				v[lo]->claimed = true;
			break;
		}
		if (r < 0) {
			ret = E_TEMP;
			sc->temp_error = true;
		}
	}
	free(v);
	return ret;
}

/* Dovecot's uidlists of the folders a look needs, read once each. */
struct uidlists {
	struct strvec folders;
	struct uidlist *v;	/* by folders' index; n 0 when there is none */
	size_t alloc;
};

/* folder's uidlist in *out (empty when there is none); 0 or E_TEMP */
static int uidlist_of(const struct uidlist **out, struct worktree *wt,
		      struct uidlists *c, const char *folder)
{
	struct dovecot_lock lock = DOVECOT_LOCK_INIT;
	size_t i;
	char *dir, *up;
	int r;

	for (i = 0; i < c->folders.n; i++)
		if (!strcmp(c->folders.v[i], folder)) {
			*out = &c->v[i];
			return 0;
		}
	xgrow((void **)&c->v, &c->alloc, i + 1, sizeof *c->v);
	memset(&c->v[i], 0, sizeof c->v[i]);
	strvec_push(&c->folders, folder);
	/*
	 * under Dovecot's lock: its MOVE renames the files in before it
	 * appends their records, and lets the lock go after
	 */
	dir = wt_disk_dir(wt, folder, NULL);
	up = xasprintf("%s/dovecot-uidlist", dir);
	if (!path_exists(up)) {
		r = 0;
	} else if ((r = dovecot_lock(&lock, dir, DV_LOCK_MS)) == 0) {
		r = uidlist_read(&c->v[i], dir);
		dovecot_unlock(&lock);
	}
	if (r < 0)
		uidlist_release(&c->v[i]);
	free(up);
	free(dir);
	*out = &c->v[i];
	return r == E_NOTFOUND || r == E_INVALID ? 0 : r;
}

static void uidlists_release(struct uidlists *c)
{
	for (size_t i = 0; i < c->folders.n; i++)
		uidlist_release(&c->v[i]);
	free(c->v);
	strvec_clear(&c->folders);
}

/*
 * The key Dovecot's record of a's file gives as the message's GUID when
 * it is not a's own: the base name it had before a MOVE or COPY gave it
 * a new one.  *out a new string, or NULL; 0 or E_TEMP.
 */
static int guid_key(char **out, struct worktree *wt, struct uidlists *c,
		    const struct ent *a)
{
	const char *disk = wt_ent_disk(a), *g;
	char *base = xstrndup(disk, strcspn(disk, ":"));
	const struct uidlist_rec *rec = NULL;
	const struct uidlist *u;
	size_t glen;

	*out = NULL;
	if (uidlist_of(&u, wt, c, a->folder) < 0) {
		free(base);
		return E_TEMP;
	}
	rec = uidlist_find(u, base);
	free(base);
	if (!rec || !(g = strstr(rec->ext, " G")))
		return 0;
	g += 2;
	glen = maildir_key_len(g);
	if (glen > strcspn(g, " "))
		glen = strcspn(g, " ");
	if (glen && (glen != a->klen || memcmp(g, a->name, glen)))
		*out = xstrndup(g, glen);
	return 0;
}

static bool rm_has(const struct scan *sc, const struct hit *h)
{
	for (size_t i = 0; i < sc->rm.n; i++)
		if (sc->rm.v[i].sub == h->sub &&
		    !strcmp(sc->rm.v[i].name, h->name) &&
		    !strcmp(sc->rm.v[i].folder, h->folder))
			return true;
	return false;
}

/* Is the worktree's message h still on disk? */
static bool hit_on_disk(struct worktree *wt, struct scan *sc,
			const struct hit *h)
{
	char *dir = wt_disk_dir(wt, h->folder, h->sub);
	char *p = xasprintf("%s/%s", dir, h->name);
	bool there = path_exists(p);

	if (!there && sc->imap) {
		char *dn = wt_dv_disk_name(wt, sc, h->folder, h->sub, h->name);
		there = dn != NULL;
		free(dn);
	}
	free(p);
	free(dir);
	return there;
}

/*
 * An addition nothing explained, whose Dovecot record names another key
 * as its GUID (a MOVE that gave it a new name): that key's message in
 * the worktree, gone from disk, is what moved; still on disk, the MOVE
 * is under way (its unlinks come after), and the addition waits for it
 * up to LINK_SETTLE.  0 kept as it is or made a move (*extra gets the
 * removal), 1 held back, < 0.
 */
static int by_guid(struct worktree *wt, struct scan *sc, struct uidlists *c,
		   struct ent *a, time_t now, struct entv *extra)
{
	struct hitv hits = { 0 };
	char *key;
	int r = guid_key(&key, wt, c, a);

	if (r < 0 || !key)
		return r;
	if (wt_find_key(wt, &hits, sc->wtree, wt_scan_root_tree(sc), key,
			strlen(key)) < 0) {
		free(key);
		return E_TEMP;
	}
	for (size_t h = 0; h < hits.n && r == 0 && a->fresh; h++) {
		const struct hit *x = &hits.v[h];
		struct ent rm = { .folder = x->folder, .sub = x->sub,
				  .name = x->name, .klen = strlen(key) };
		struct ent *e;

		if (rm_has(sc, x))
			continue;	/* its removal is another's, or not ours */
		if (hit_on_disk(wt, sc, x)) {
			if (now - a->ctime < LINK_SETTLE) {
				wt_hold_back(sc, a);
				r = 1;
			}
			break;
		}
		if ((r = move_back(wt, sc, a, &rm)) != 0) {
			r = r < 0 ? r : 0;
			break;
		}
		e = wt_entv_push(extra, x->folder, x->sub, x->name);
		oid_cpy(&e->oid, &x->oid);
		e->have_oid = e->claimed = true;
	}
	wt_hitv_clear(&hits);
	free(key);
	return r;
}

static bool ent_on_disk(struct worktree *wt, const struct ent *a)
{
	char *dir = wt_disk_dir(wt, a->folder, a->sub);
	char *p = xasprintf("%s/%s", dir, wt_ent_disk(a));
	bool there = path_exists(p);

	free(p);
	free(dir);
	return there;
}

/* The removal of a's key in the scan (sc->rm sorted by key), or NULL. */
static struct ent *rm_of(struct scan *sc, const struct ent *a)
{
	size_t lo = 0, hi = sc->rm.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (wt_key_cmp(&sc->rm.v[mid], a->name, a->klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sc->rm.n && !wt_key_cmp(&sc->rm.v[lo], a->name, a->klen) ?
	       &sc->rm.v[lo] : NULL;
}

/*
 * Format 2: a folder with a message held back takes no other new one
 * in this commit (a move in, a copy, a new message): Dovecot numbered
 * them in one go, and the folder's uidnext may not pass the UID of the
 * one held back (it could never be given then).  They wait together;
 * the removal a move in pairs with waits too.  Flag changes stand.
 */
static void hold_folders(struct worktree *wt, struct scan *sc)
{
	struct strvec held = { 0 }, waits = { 0 };
	size_t w = 0, wr = 0, wf = 0;

	for (size_t i = 0; i < sc->later.n; i++) {
		const char *slash = strchr(sc->later.v[i], '/');
		char *f = xstrndup(sc->later.v[i], slash - sc->later.v[i]);
		if (!strvec_has(&held, f))
			strvec_push(&held, f);
		free(f);
	}
	for (size_t i = 0; i < sc->add.n; i++) {
		struct ent *a = &sc->add.v[i];
		struct ent *rm = rm_of(sc, a);

		if (!strvec_has(&held, a->folder) ||
		    (rm && !strcmp(rm->folder, a->folder))) {
			sc->add.v[w++] = *a;
			continue;
		}
		if (rm) {
			worktree_dirty_name(wt, rm->folder, rm->sub, rm->name);
			if (!strvec_has(&waits, rm->folder))
				strvec_push(&waits, rm->folder);
			rm->claimed = false;
			rm->have_oid = false;	/* dropped below */
		}
		wt_hold_back(sc, a);
		wt_ent_release(a);
	}
	sc->add.n = w;
	for (size_t i = 0; i < sc->rm.n; i++) {
		if (sc->rm.v[i].have_oid)
			sc->rm.v[wr++] = sc->rm.v[i];
		else
			wt_ent_release(&sc->rm.v[i]);
	}
	sc->rm.n = wr;
	/*
	 * a folder gone from disk (a RENAME's old name) whose message waits
	 * goes with it later: gone now, its record would go and leave the
	 * message in a folder without one
	 */
	for (size_t i = 0; i < sc->mk_rm.n; i++) {
		if (!strvec_has(&waits, sc->mk_rm.v[i])) {
			sc->mk_rm.v[wf++] = sc->mk_rm.v[i];
			continue;
		}
		worktree_dirty_folder(wt, sc->mk_rm.v[i]);
		free(sc->mk_rm.v[i]);
	}
	sc->mk_rm.n = wf;
	strvec_clear(&waits);
	strvec_clear(&held);
}

int wt_pair_moves(struct worktree *wt, struct scan *sc)
{
	struct uidlists c = { 0 };
	struct entv extra = { 0 };
	time_t now = time(NULL);
	size_t w = 0;
	int ret = pair_by_bytes(wt, sc);

	for (size_t i = 0; i < sc->add.n; i++) {
		struct ent *a = &sc->add.v[i];
		int r = ret == 0 && a->fresh ?
			by_guid(wt, sc, &c, a, now, &extra) : 0;

		/*
		 * a new message gone again since it was read: the first half
		 * of a MOVE whose second moved it on (its event follows);
		 * committed, it would be an addition and then an expunge
		 */
		if (r == 0 && a->fresh && !ent_on_disk(wt, a)) {
			wt_ent_release(a);
			continue;
		}

		if (r < 0)
			ret = r;
		if (r == 1)
			wt_ent_release(a);
		else
			sc->add.v[w++] = *a;
	}
	sc->add.n = w;
	for (size_t i = 0; i < extra.n; i++) {
		struct ent *x = wt_entv_push(&sc->rm, extra.v[i].folder,
					     extra.v[i].sub, extra.v[i].name);
		oid_cpy(&x->oid, &extra.v[i].oid);
		x->have_oid = x->claimed = true;
	}
	if (extra.n)
		qsort(sc->rm.v, sc->rm.n, sizeof *sc->rm.v, wt_ent_cmp);
	wt_entv_clear(&extra);
	uidlists_release(&c);
	if (ret == 0 && sc->imap && sc->later.n)
		hold_folders(wt, sc);
	if (ret < 0)
		sc->temp_error = true;
	return ret;
}
