/*
 * worktree_dvapply: format 2's apply side of the worktree
 * (doc/imap-identity.md 4.1, 4.6; doc/imap-progress.md item 4): per
 * folder under Dovecot's uidlist lock, the staleness rule, keyword names
 * to this replica's letters, dovecot-keywords and dovecot-uidlist written
 * before the files appear, unnumbered records numbered from our slot
 * above both uidnexts and committed as a local commit right after.
 * The records, trees and slots it reads through are worktree_dovecot.c's.
 *
 * Invariants: the uidlist is only written under its lock, never below
 * Dovecot's next UID; a folder found stale gets nothing written, its
 * changes are left for the commit and merge that follow.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dovecot.h"
#include "fsutil.h"
#include "imaprec.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "strvec.h"
#include "worktree_p.h"
#include "xalloc.h"

int wt_dv_plan_records(struct worktree *wt, const struct dchv *d,
		       const struct oid *wtree, const struct oid *mtree,
		       struct entv *olds, struct entv *news)
{
	struct reccache wr, mr;
	struct strmap moving = STRMAP_INIT;
	int ret = 0;

	wt_rc_init(&wr, wtree);
	wt_rc_init(&mr, mtree);
	for (size_t i = 0; i < olds->n + news->n; i++) {
		const struct ent *e = i < olds->n ? &olds->v[i]
						  : &news->v[i - olds->n];
		char *k = xstrndup(e->name, e->klen);
		strmap_put(&moving, k, 0);
		free(k);
	}
	for (size_t i = 0; i < d->n && ret == 0; i++) {
		const char *path = d->v[i].path;
		unsigned s;
		struct imap_recs *a, *b;

		if (strncmp(path, IMAPREC_DIR "/", sizeof IMAPREC_DIR) ||
		    !layout_shard_name(&s, path + sizeof IMAPREC_DIR, 2))
			continue;
		a = wt_rc_shard(&wr, wt->r, s);
		b = wt_rc_shard(&mr, wt->r, s);
		for (size_t j = 0; j < b->n && ret == 0; j++) {
			const struct imap_rec *x = &b->v[j];
			const struct imap_rec *y = imap_recs_find(a, x->key);
			struct hitv h = { 0 };
			bool same = y && y->uid == x->uid && y->nkw == x->nkw;

			for (size_t k = 0; same && k < x->nkw; k++)
				same = !strcmp(x->kw[k], y->kw[k]);
			if (same)
				continue;
			/* the message itself stays: its record alone changed */
			if (strmap_has(&moving, x->key))
				continue;
			if (wt_tree_find_key(&h, wt->r, mtree, x->key,
					     strlen(x->key)) < 0) {
				ret = E_TEMP;
				break;
			}
			if (h.n == 1) {
				struct ent *e = wt_entv_push(olds, h.v[0].folder,
							     h.v[0].sub, h.v[0].name);
				oid_cpy(&e->oid, &h.v[0].oid);
				e = wt_entv_push(news, h.v[0].folder, h.v[0].sub,
						 h.v[0].name);
				oid_cpy(&e->oid, &h.v[0].oid);
			}
			wt_hitv_clear(&h);
		}
	}
	strmap_clear(&moving);
	wt_rc_release(&wr);
	wt_rc_release(&mr);
	return ret;
}

void wt_dv_order_ops(struct worktree *wt, const struct oid *mtree,
		     struct op *ops, size_t nops)
{
	struct reccache mr;
	struct op *late = xcalloc(nops ? nops : 1, sizeof *late);
	size_t w = 0, nl = 0;

	wt_rc_init(&mr, mtree);
	for (size_t i = 0; i < nops; i++) {
		const struct ent *t = ops[i].to;
		const struct imap_rec *x = t ? wt_rc_get(&mr, wt->r, t->name,
							 t->klen) : NULL;
		if (x && !x->uid)
			late[nl++] = ops[i];
		else
			ops[w++] = ops[i];
	}
	memcpy(ops + w, late, nl * sizeof *late);
	free(late);
	wt_rc_release(&mr);
}

/* One folder the apply touches, locked for the whole apply. */
struct afolder {
	char *folder, *dir;
	struct dovecot_lock lock;
	struct uidlist u;
	struct dovecot_keywords k;
	bool fresh, stale, rewrite, kw_changed;
	bool switched;		/* took the tree's UIDVALIDITY */
	size_t old_n;
	struct imap_folder mf, wf;	/* mail's and the worktree's records */
	bool have_mf, have_wf;
	/* records written for files not there yet: base -> its key's index
	 * in pend_key, until wt_dv_applied() sees the file in place */
	struct strmap pend;
	struct strvec pend_key;
	uint32_t next0, raised;	/* Dovecot's next UID before the plan, and
				   what write_folder() raised it to */
	bool part;		/* u holds only the records read_part() read */
};

struct dvapply {
	struct worktree *wt;
	const struct oid *wtree, *mtree;
	struct reccache wr, mr;
	struct afolder *f;
	size_t nf, af;
	struct imap_recs numbered;	/* unnumbered records, now numbered */
	struct strvec nfolders;		/* the folder of each number given */
	uint32_t *nuid;			/* and the number, in that order */
	size_t nnuid, anuid;
	struct imap_slots slots;
	bool add_slot;
	int slot;
	bool last;		/* the ops reach the end of the plan: N may
				   go up to mail's uidnext (not before: a
				   later slice's UIDs must stay insertable) */
	struct op *ops;		/* the slice's */
	size_t nops;
};

static struct afolder *afolder_get(struct dvapply *dv, const char *folder)
{
	for (size_t i = 0; i < dv->nf; i++)
		if (!strcmp(dv->f[i].folder, folder))
			return &dv->f[i];
	return NULL;
}

static void afolder_add(struct dvapply *dv, const char *folder)
{
	struct afolder *f;

	if (afolder_get(dv, folder))
		return;
	xgrow((void **)&dv->f, &dv->af, dv->nf + 1, sizeof *dv->f);
	f = &dv->f[dv->nf++];
	memset(f, 0, sizeof *f);
	f->folder = xstrdup(folder);
	f->dir = wt_disk_dir(dv->wt, folder, NULL);
}

static int afolder_cmp(const void *a, const void *b)
{
	return strcmp(((const struct afolder *)a)->folder,
		      ((const struct afolder *)b)->folder);
}

/* A UID and base name the uidlist must get. */
struct uidadd {
	uint32_t uid;
	char *base;
	char *key;		/* unnumbered: the record's key */
	bool fresh;		/* the uidlist had no record of base */
};

static int uidadd_cmp(const void *a, const void *b)
{
	const struct uidadd *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return strcmp(x->base, y->base);
}

/*
 * The folder takes mail's UIDVALIDITY: its uidlist is made anew with
 * the UIDs mail gives its messages (those it leaves unnumbered are
 * numbered by the plan), and Dovecot's index files are removed under the
 * lock, so Dovecot reads the new UIDs without a warning (E6b: an open
 * session is told to log in again).
 */
static int switch_uidvalidity(struct dvapply *dv, struct afolder *f)
{
	struct uidadd *v = NULL;
	size_t n = 0, a = 0;
	int ret = 0;

	for (int si = 0; si < 2 && ret == 0; si++) {
		struct strbuf p = STRBUF_INIT;
		git_tree *t = NULL;
		if (*f->folder)
			strbuf_addf(&p, "%s/", f->folder);
		strbuf_addstr(&p, subs[si]);
		ret = wt_subtree(&t, dv->wt->r, dv->mtree, p.buf);
		for (size_t i = 0; ret == 0 && t && i < git_tree_entrycount(t);
		     i++) {
			const git_tree_entry *e = git_tree_entry_byindex(t, i);
			git_tree *sh = NULL;
			if (git_tree_entry_type(e) != GIT_OBJECT_TREE)
				continue;
			if (git_tree_lookup(&sh, dv->wt->r->git,
					    git_tree_entry_id(e)) < 0) {
				ret = log_error("read tree: %s", repo_git_error());
				break;
			}
			for (size_t j = 0; j < git_tree_entrycount(sh); j++) {
				const char *nm = git_tree_entry_name(
					git_tree_entry_byindex(sh, j));
				const struct imap_rec *x = wt_rc_get(&dv->mr,
					dv->wt->r, nm, maildir_key_len(nm));
				if (!x || !x->uid)
					continue;
				xgrow((void **)&v, &a, n + 1, sizeof *v);
				v[n].uid = x->uid;
				v[n].base = xstrndup(nm, strcspn(nm, ":"));
				v[n].key = NULL;
				n++;
			}
			git_tree_free(sh);
		}
		git_tree_free(t);
		strbuf_release(&p);
	}
	if (ret == 0) {
		log_info("'%s': UIDVALIDITY %u becomes the tree's %u", f->dir,
			 f->u.uidvalidity, f->mf.uidvalidity);
		qsort(v, n, sizeof *v, uidadd_cmp);
		for (size_t i = 0; i < f->u.n; i++) {
			free(f->u.v[i].ext);
			free(f->u.v[i].base);
		}
		f->u.n = 0;
		f->u.uidvalidity = f->mf.uidvalidity;
		f->u.nextuid = 1;
		for (size_t i = 0; i < n && ret == 0; i++)
			ret = uidlist_add(&f->u, v[i].uid, v[i].base, "");
		f->rewrite = f->switched = true;
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].base);
	free(v);
	return ret;
}

/*
 * A big folder's uidlist read in part (doc/imap-progress.md, "Flag and
 * keyword change"): when every op in f keeps its message in f under the
 * UID both trees give it (a peer's flag or keyword change), the apply
 * writes no record, so it needs only those records, the header and the
 * last one (uidlist_read_some()).  1 when f->u holds them and they are
 * as the trees say; 0 when the whole file is needed (an add, a move, a
 * renumbering, a UIDVALIDITY or next UID to change, a record elsewhere);
 * < 0 on an error.
 */
static int read_part(struct dvapply *dv, struct afolder *f)
{
	uint32_t *uids = xcalloc(dv->nops + 1, sizeof *uids);
	char **bases = xcalloc(dv->nops + 1, sizeof *bases);
	size_t n = 0;
	int ret = 1;

	if (!f->have_mf || !f->have_wf ||
	    f->mf.uidvalidity != f->wf.uidvalidity)
		ret = 0;
	for (size_t i = 0; i < dv->nops && ret == 1; i++) {
		const struct ent *o = dv->ops[i].from, *t = dv->ops[i].to;
		const struct imap_rec *x, *y;
		bool fo = o && !strcmp(o->folder, f->folder);
		bool ft = t && !strcmp(t->folder, f->folder);
		if (!fo && !ft)
			continue;
		if (!fo || !ft || o->klen != t->klen ||
		    memcmp(o->name, t->name, o->klen) ||
		    !(x = wt_rc_get(&dv->mr, dv->wt->r, t->name, t->klen)) ||
		    !(y = wt_rc_get(&dv->wr, dv->wt->r, o->name, o->klen)) ||
		    !x->uid || x->uid != y->uid) {
			ret = 0;
			break;
		}
		uids[n] = x->uid;
		bases[n++] = xstrndup(t->name, strcspn(t->name, ":"));
	}
	if (ret == 1 && uidlist_read_some(&f->u, f->dir, uids, n,
					  UINT32_MAX) != 0)
		ret = 0;	/* the whole read says what is wrong */
	else if (ret == 1 &&
		 (f->u.uidvalidity != f->mf.uidvalidity ||
		  (dv->last && f->mf.uidnext > uidlist_next(&f->u))))
		ret = 0;
	for (size_t i = 0; i < n; i++) {
		const struct uidlist_rec *r = ret == 1 ?
			uidlist_find(&f->u, bases[i]) : NULL;
		if (ret == 1 && (!r || r->uid != uids[i]))
			ret = 0;
		free(bases[i]);
	}
	if (ret == 0)
		uidlist_release(&f->u);
	free(uids);
	free(bases);
	return ret;
}

/*
 * A new folder appears with our uidlist lock already in it: made in the
 * Maildir's tmp/ and renamed into place, the lock kept in wt->made for
 * the apply's afolder_open().  Made where Dovecot can see it, a session
 * that opened it before the apply took the lock wrote a uidlist with a
 * UIDVALIDITY of its own, which the tree's then replaced under that
 * session ("IMAP session state is inconsistent", doc/stress-progress.md
 * item 18).  With the lock held, a session waits, and finds the uidlist
 * the apply writes.  0 also when it cannot be made so (another layout,
 * a race): the caller makes the folder the plain way then.
 */
int wt_dv_make_folder(struct worktree *wt, const char *folder)
{
	struct dovecot_lock lk = DOVECOT_LOCK_INIT;
	char *dest = wt_disk_dir(wt, folder, NULL), *parent = xstrdup(dest);
	char *tmp = xasprintf("%s/tmp/maildag-folder.XXXXXX", wt->maildir);
	char *slash = strrchr(parent, '/');
	int ret = 0;

	if (slash)
		*slash = '\0';
	if (!*folder || is_dir(dest) || !slash || !is_dir(parent) ||
	    !mkdtemp(tmp))
		goto out;
	for (int i = 0; i < 3 && ret == 0; i++) {
		char *d = xasprintf("%s/%s", tmp, i == 0 ? "cur" :
				    i == 1 ? "new" : "tmp");
		if (mkdir(d, 0700) < 0)
			ret = log_error_errno("mkdir '%s'", d);
		free(d);
	}
	if (ret == 0) {
		char *mk = xasprintf("%s/maildirfolder", tmp);
		if (create_empty(mk, 0600) < 0)
			ret = log_error_errno("create '%s'", mk);
		free(mk);
	}
	if (ret == 0 && (ret = dovecot_lock(&lk, tmp, 0)) == 0 &&
	    rename_noreplace(tmp, dest) == 0) {
		free(lk.path);
		lk.path = xasprintf("%s/" DOVECOT_UIDLIST ".lock", dest);
		xgrow((void **)&wt->made_lock, &wt->amade, wt->made.n + 1,
		      sizeof *wt->made_lock);
		wt->made_lock[wt->made.n] = lk;
		strvec_push(&wt->made, folder);
		ret = fsync_parent(dest);
	} else {
		dovecot_unlock(&lk);
		rm_rf(tmp);	/* what a failure or a race left */
	}
out:
	free(dest);
	free(parent);
	free(tmp);
	return ret < 0 ? E_TEMP : 0;
}

/* The lock wt_dv_make_folder() left in folder, now out's. */
static bool take_made(struct worktree *wt, const char *folder,
		      struct dovecot_lock *out)
{
	for (size_t i = 0; i < wt->made.n; i++) {
		if (strcmp(wt->made.v[i], folder))
			continue;
		*out = wt->made_lock[i];
		free(wt->made.v[i]);
		wt->made.v[i] = wt->made.v[--wt->made.n];
		wt->made_lock[i] = wt->made_lock[wt->made.n];
		return true;
	}
	return false;
}

void wt_dv_made_release(struct worktree *wt)
{
	for (size_t i = 0; i < wt->made.n; i++)
		dovecot_unlock(&wt->made_lock[i]);
	strvec_clear(&wt->made);
}

/* Lock and read one folder's files; stale ones are left at once. */
static int afolder_open(struct dvapply *dv, struct afolder *f)
{
	struct worktree *wt = dv->wt;
	int r;

	f->have_mf = wt_folder_rec(&f->mf, wt->r, dv->mtree, f->folder) == 0;
	f->have_wf = wt_folder_rec(&f->wf, wt->r, dv->wtree, f->folder) == 0;
	if (f->have_wf && *f->folder && !wt_folder_on_disk(wt, f->folder)) {
		/*
		 * the worktree's folder is gone from disk (a client deleted
		 * or renamed it, not committed yet): made again here it
		 * would come back with its old UIDVALIDITY and a uidnext
		 * below UIDs Dovecot gave in it, which Dovecot would give
		 * again.  Its removal is committed first; the merge decides
		 */
		log_info("'%s' is gone from disk; committing first", f->dir);
		f->stale = true;
		worktree_dirty_folder(wt, f->folder);
		return 0;
	}
	if (!is_dir(f->dir) && mkdir_p(f->dir, 0700) < 0)
		return E_TEMP;
	if (!take_made(wt, f->folder, &f->lock) &&
	    (r = dovecot_lock(&f->lock, f->dir, DV_LOCK_MS)) < 0) {
		if (r == E_TEMP)
			log_info("'%s' is locked by Dovecot; applying later",
				 f->dir);
		return E_TEMP;
	}
	f->part = read_part(dv, f) == 1;
	r = f->part ? 0 : uidlist_read(&f->u, f->dir);
	if (r == E_NOTFOUND) {
		f->u.uidvalidity = f->have_mf ? f->mf.uidvalidity :
				   (uint32_t)time(NULL);
		f->u.nextuid = 1;
		f->u.hdr = xstrdup("");
		f->fresh = true;
	} else if (r < 0) {
		return E_TEMP;
	}
	f->old_n = f->u.n;
	if (dovecot_keywords_read(&f->k, f->dir) < 0)
		return E_TEMP;
	if (f->have_mf && f->u.uidvalidity != f->mf.uidvalidity &&
	    f->have_wf && f->wf.uidvalidity != f->u.uidvalidity) {
		/* Dovecot changed it and we have not committed that yet */
		log_info("'%s': Dovecot's UIDVALIDITY %u is not the worktree's "
			 "%u; committing first", f->dir, f->u.uidvalidity,
			 f->wf.uidvalidity);
		f->stale = true;
	} else if (f->have_mf && f->u.uidvalidity != f->mf.uidvalidity) {
		/* the tree gave the folder a new UIDVALIDITY (4.4, 4.5) */
		if (switch_uidvalidity(dv, f) < 0)
			return E_TEMP;
	} else if (f->have_wf && f->wf.uidvalidity == f->u.uidvalidity &&
		   uidlist_next(&f->u) > f->wf.uidnext) {
		/* Dovecot numbered something we have not committed */
		log_info("'%s': Dovecot's next UID %u is above the worktree's "
			 "%u; committing first", f->dir, uidlist_next(&f->u),
			 f->wf.uidnext);
		f->stale = true;
	}
	if (f->stale && !strvec_has(&wt->dv_stale, f->folder)) {
		strvec_push(&wt->dv_stale, f->folder);
		worktree_dirty_folder(wt, f->folder);
	}
	return 0;
}

static void afolder_close(struct afolder *f)
{
	dovecot_unlock(&f->lock);
	uidlist_release(&f->u);
	dovecot_keywords_release(&f->k);
	strmap_clear(&f->pend);
	strvec_clear(&f->pend_key);
	free(f->folder);
	free(f->dir);
}

/* The disk name of tree name tname with the letters of kw added. */
static char *with_letters(struct afolder *f, const char *tname,
			  char *const *kw, size_t nkw, bool add)
{
	struct maildir_name mn;
	struct strbuf fl = STRBUF_INIT, nm = STRBUF_INIT;
	size_t missing;

	if (maildir_name_parse(&mn, tname) < 0)
		return xstrdup(tname);
	strbuf_addstr(&fl, maildir_name_flags(&mn));
	missing = dovecot_keywords_letters(&fl, &f->k,
					   (const char *const *)kw, nkw, add);
	if (missing && add)
		log_error("%s: %zu keyword%s of '%s' left out: more than %d "
			  "in use in this folder", f->dir, missing,
			  missing == 1 ? "" : "s", tname, DOVECOT_MAX_KEYWORDS);
	if (add && strlen(fl.buf) != strlen(maildir_name_flags(&mn)))
		f->kw_changed = true;
	if (fl.len || mn.info)
		maildir_name_set_flags(&mn, fl.buf);
	maildir_name_format(&nm, &mn);
	maildir_name_release(&mn);
	strbuf_release(&fl);
	return strbuf_detach(&nm, NULL);
}

/* The bits of the letters the files of f use now. */
static uint32_t used_letters(struct dvapply *dv, struct afolder *f)
{
	uint32_t used = 0;

	for (int s = 0; s < 2; s++) {
		char *d = wt_disk_dir(dv->wt, f->folder, subs[s]);
		DIR *dh = opendir(d);
		struct dirent *de;
		while (dh && (de = readdir(dh)))
			used |= wt_letter_bits(de->d_name);
		if (dh)
			closedir(dh);
		free(d);
	}
	return used;
}

/* Does f need more letters than it has free for the ops' keywords? */
static void maybe_gc(struct dvapply *dv, struct afolder *f, struct op *ops,
		     size_t nops)
{
	struct dovecot_keywords probe;
	size_t missing = 0;

	memset(&probe, 0, sizeof probe);
	for (int i = 0; i < DOVECOT_MAX_KEYWORDS; i++)
		probe.name[i] = f->k.name[i] ? xstrdup(f->k.name[i]) : NULL;
	for (size_t i = 0; i < nops; i++) {
		struct strbuf l = STRBUF_INIT;
		const struct imap_rec *x;
		if (!ops[i].to || strcmp(ops[i].to->folder, f->folder))
			continue;
		x = wt_rc_get(&dv->mr, dv->wt->r, ops[i].to->name,
			   ops[i].to->klen);
		if (x)
			missing += dovecot_keywords_letters(&l, &probe,
				(const char *const *)x->kw, x->nkw, true);
		strbuf_release(&l);
	}
	dovecot_keywords_release(&probe);
	if (missing && dovecot_keywords_gc(&f->k, used_letters(dv, f)))
		f->kw_changed = true;
}

/*
 * Give the ops of f their disk names, and return in *out the UIDs f's
 * uidlist must get (UID 0: to number; also a UID to add below Dovecot's
 * next, which this replica can no longer give).
 */
static void collect_adds(struct dvapply *dv, struct afolder *f,
			 struct op *ops, size_t nops, struct uidadd **out,
			 size_t *n)
{
	uint32_t next = uidlist_next(&f->u);
	size_t alloc = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < nops; i++) {
		struct ent *t = ops[i].to, *o = ops[i].from;
		const struct imap_rec *x;
		const struct uidlist_rec *ur;
		struct uidadd *a;
		char *base;

		if (o && !strcmp(o->folder, f->folder)) {
			x = wt_rc_get(&dv->wr, dv->wt->r, o->name, o->klen);
			free(o->dname);
			o->dname = with_letters(f, o->name, x ? x->kw : NULL,
						x ? x->nkw : 0, false);
		}
		if (!t || strcmp(t->folder, f->folder) || t->hold)
			continue;	/* a held op's file stays away: no record */
		x = wt_rc_get(&dv->mr, dv->wt->r, t->name, t->klen);
		free(t->dname);
		t->dname = with_letters(f, t->name, x ? x->kw : NULL,
					x ? x->nkw : 0, true);
		base = xstrndup(t->name, strcspn(t->name, ":"));
		ur = uidlist_find(&f->u, base);
		if (x && x->uid && ur && ur->uid == x->uid) {
			free(base);
			continue;
		}
		if (x && x->uid && ur)
			f->rewrite = true;	/* renumbered */
		xgrow((void **)out, &alloc, *n + 1, sizeof **out);
		a = &(*out)[(*n)++];
		a->uid = x ? x->uid : 0;
		a->fresh = !ur;
		a->base = base;
		a->key = xstrndup(t->name, t->klen);
		if (a->uid && a->uid < next) {
			/*
			 * Dovecot here went past it (it numbered a save or a
			 * delivery while a peer's UID was merged in): the
			 * uidlist cannot take it, and no merge would give
			 * it another, as mail holds the merge already.  It
			 * is numbered anew from our slot, as an unnumbered
			 * record; the peer's clients see it expunged and
			 * added, ours never saw it.
			 */
			log_info("'%s': UID %u of '%s' is below Dovecot's "
				 "next UID %u; numbering it anew", f->dir,
				 a->uid, a->key, next);
			a->uid = 0;
		}
	}
}

/*
 * Number the unnumbered adds from our slot, above both uidnexts and
 * Dovecot's next UID, and note each for the local commit.
 */
static int number_new(struct dvapply *dv, struct afolder *f,
		      const struct uidadd *adds, size_t nadd)
{
	uint32_t from = uidlist_next(&f->u);
	int ret = 0;

	if (f->have_mf && f->mf.uidnext > from)
		from = f->mf.uidnext;
	if (f->have_wf && f->wf.uidnext > from)
		from = f->wf.uidnext;
	for (size_t i = 0; i < nadd && ret == 0; i++) {
		const struct imap_rec *x;
		uint32_t uid;

		if (adds[i].uid)
			continue;
		if (dv->slot < 0 && (dv->slot = wt_our_slot(dv->wt, dv->mtree,
					&dv->add_slot, &dv->slots)) < 0)
			return E_TEMP;
		uid = imap_uid_alloc(from, (unsigned)dv->slot, 1);
		if (!uid)
			return log_error("%s: no UID left in slot %d", f->dir,
					 dv->slot);
		if (uidlist_remove(&f->u, adds[i].base))
			f->rewrite = true;
		ret = uidlist_add(&f->u, uid, adds[i].base, "");
		from = uid + 1;
		x = wt_rc_get(&dv->mr, dv->wt->r, adds[i].key,
			      strlen(adds[i].key));
		imap_recs_set(&dv->numbered, adds[i].key, uid,
			      x ? (const char *const *)x->kw : NULL,
			      x ? x->nkw : 0);
		strvec_push(&dv->nfolders, f->folder);
		xgrow((void **)&dv->nuid, &dv->anuid, dv->nnuid + 1,
		      sizeof *dv->nuid);
		dv->nuid[dv->nnuid++] = uid;
	}
	return ret;
}

/* Write f's dovecot-keywords and uidlist as planned, under the lock. */
static int write_folder(struct dvapply *dv, struct afolder *f)
{
	static const char *const idx[] = {
		"dovecot.index", "dovecot.index.log", "dovecot.index.log.2",
		"dovecot.index.cache",
	};

	if (dv->last && f->have_mf)
		f->raised = f->mf.uidnext;
	if (f->raised > uidlist_next(&f->u)) {
		/* N is the tree's uidnext: a UID burnt elsewhere stays so */
		f->u.nextuid = f->raised;
		f->rewrite = true;
	}
	if (f->part && (f->rewrite || f->u.n != f->old_n))
		/* read_part() rules it out: never write a part as the whole */
		return log_error("'%s': a uidlist read in part to write",
				 f->dir);
	if (f->kw_changed && dovecot_keywords_write(f->dir, &f->k) < 0)
		return E_TEMP;
	if ((f->fresh || f->rewrite || !f->old_n ?
	     uidlist_rewrite(f->dir, &f->u) :
	     f->u.n > f->old_n ? uidlist_append(f->dir, &f->u, f->old_n) :
	     0) < 0)
		return E_TEMP;
	/* E6b: Dovecot builds its index anew from the new uidlist */
	for (size_t i = 0; f->switched && i < sizeof idx / sizeof idx[0]; i++) {
		char *p = xasprintf("%s/%s", f->dir, idx[i]);
		if (unlink(p) < 0 && errno != ENOENT)
			log_warn_errno("unlink '%s'", p);
		free(p);
	}
	return 0;
}

/*
 * Give the ops of f their disk names and f's uidlist its records: UIDs
 * the tree gives, then the unnumbered ones from our slot (and those
 * below Dovecot's next).
 */
static int afolder_plan(struct dvapply *dv, struct afolder *f, struct op *ops,
			size_t nops)
{
	struct uidadd *adds;
	size_t nadd;
	int ret = 0;

	f->next0 = uidlist_next(&f->u);
	maybe_gc(dv, f, ops, nops);
	collect_adds(dv, f, ops, nops, &adds, &nadd);
	if (!f->stale) {
		qsort(adds, nadd, sizeof *adds, uidadd_cmp);
		for (size_t i = 0; i < nadd; i++)
			if (adds[i].uid && uidlist_remove(&f->u, adds[i].base))
				f->rewrite = true;
		for (size_t i = 0; i < nadd && ret == 0; i++)
			if (adds[i].uid)
				ret = uidlist_add(&f->u, adds[i].uid,
						  adds[i].base, "");
		if (ret == 0)
			ret = number_new(dv, f, adds, nadd);
		if (ret == 0)
			ret = write_folder(dv, f);
		for (size_t i = 0; i < nadd && ret == 0; i++)
			if (adds[i].fresh) {
				strmap_put(&f->pend, adds[i].base,
					   f->pend_key.n);
				strvec_push(&f->pend_key, adds[i].key);
			}
	}
	for (size_t i = 0; i < nadd; i++) {
		free(adds[i].base);
		free(adds[i].key);
	}
	free(adds);
	return ret;
}

int wt_dv_apply_begin(struct dvapply **out, struct worktree *wt,
		      const struct oid *wtree, const struct oid *mtree,
		      struct op *ops, size_t nops, const struct dchv *d,
		      bool last)
{
	struct dvapply *dv = xcalloc(1, sizeof *dv);
	int ret = 0;

	*out = dv;
	dv->last = last;
	dv->ops = ops;
	dv->nops = nops;
	dv->wt = wt;
	dv->wtree = wtree;
	dv->mtree = mtree;
	dv->slot = -1;
	wt_rc_init(&dv->wr, wtree);
	wt_rc_init(&dv->mr, mtree);
	for (size_t i = 0; i < nops; i++) {
		if (ops[i].from)
			afolder_add(dv, ops[i].from->folder);
		if (ops[i].to)
			afolder_add(dv, ops[i].to->folder);
	}
	/*
	 * a folder record that came or changed: the uidlist takes its
	 * UIDVALIDITY (a folder Dovecot has not opened yet) and uidnext
	 */
	for (size_t i = 0; d && i < d->n; i++) {
		const char *p = d->v[i].path, *slash = strrchr(p, '/');
		char *folder;
		if (!d->v[i].has_new || strcmp(slash ? slash + 1 : p,
					       IMAPREC_FOLDER))
			continue;
		folder = slash ? xstrndup(p, (size_t)(slash - p)) : xstrdup("");
		if (wt_folder_on_disk(wt, folder))
			afolder_add(dv, folder);
		free(folder);
	}
	/* one order for every taker of several locks */
	qsort(dv->f, dv->nf, sizeof *dv->f, afolder_cmp);
	for (size_t i = 0; i < dv->nf && ret == 0; i++)
		ret = afolder_open(dv, &dv->f[i]);
	/* the held first: their files stay away, so no record goes in */
	for (size_t i = 0; i < nops; i++) {
		struct afolder *a = ops[i].from ?
				    afolder_get(dv, ops[i].from->folder) : NULL;
		struct afolder *b = ops[i].to ?
				    afolder_get(dv, ops[i].to->folder) : NULL;
		if ((a && a->stale) || (b && b->stale)) {
			if (ops[i].from)
				ops[i].from->hold = true;
			if (ops[i].to)
				ops[i].to->hold = true;
		}
	}
	for (size_t i = 0; i < dv->nf && ret == 0; i++)
		if (!dv->f[i].stale)
			ret = afolder_plan(dv, &dv->f[i], ops, nops);
	return ret;
}

void wt_dv_applied(struct dvapply *dv, const struct op *op)
{
	const struct ent *any = op->to ? op->to : op->from;
	char k[MAILDIR_NAME_MAX + 1];
	unsigned s;
	const struct imap_rec *x;

	if (op->to) {
		struct afolder *f = afolder_get(dv, op->to->folder);
		char *base = xstrndup(op->to->name,
				      strcspn(op->to->name, ":"));
		if (f)
			strmap_del(&f->pend, base);
		free(base);
	}
	if (any->klen > MAILDIR_NAME_MAX)
		return;
	memcpy(k, any->name, any->klen);
	k[any->klen] = '\0';
	s = maildir_shard(k, any->klen);
	x = op->to ? wt_rc_get(&dv->mr, dv->wt->r, k, any->klen) : NULL;
	wt_rc_shard(&dv->wr, dv->wt->r, s);
	if (x)
		imap_recs_set(&dv->wr.s[s], k, x->uid,
			      (const char *const *)x->kw, x->nkw);
	else
		imap_recs_remove(&dv->wr.s[s], k);
	dv->wr.changed[s] = true;
}

/*
 * The records f's uidlist got for files the apply then left out (a
 * client changed the source, a failure) go before the lock does: a
 * Dovecot session would drop a record without its file and pass its
 * UID, and, the file come later under the same record, log "Expunged
 * message reappeared, giving a new UID" (doc/stress-progress.md item
 * 17).  No session saw them (they were written under the lock), so
 * Dovecot's next UID goes back, but never below a UID the tree gives (a
 * later save there would take it); one this apply numbered loses its
 * numbering, and the next apply numbers it again, from the same UID.
 * Before the worktree's records of the apply are made (they take
 * Dovecot's next UID), and again when the lock goes: once.
 */
static void drop_pending(struct dvapply *dv, struct afolder *f)
{
	uint32_t keep = 0;
	size_t n = 0;

	for (size_t i = 0; i < f->pend.cap; i++) {
		const char *base = f->pend.v[i].key;
		const char *key;
		const struct uidlist_rec *x;

		if (!base || !(x = uidlist_find(&f->u, base)))
			continue;
		key = f->pend_key.v[f->pend.v[i].value];
		if (!imap_recs_find(&dv->numbered, key) && x->uid >= keep)
			keep = x->uid + 1;
		imap_recs_remove(&dv->numbered, key);
		uidlist_remove(&f->u, base);
		n++;
	}
	strmap_clear(&f->pend);
	if (!n)
		return;
	/* what it would be without them; the records left count too */
	f->u.nextuid = f->next0 > f->raised ? f->next0 : f->raised;
	if (f->u.nextuid < keep)
		f->u.nextuid = keep;
	if (uidlist_rewrite(f->dir, &f->u) < 0)
		log_warn("'%s': %zu records of files not written stay in its "
			 "uidlist", f->dir, n);
	else
		log_info("'%s': %zu records of files not written taken out "
			 "of its uidlist", f->dir, n);
	f->rewrite = true;
}

int wt_dv_applied_updates(struct dvapply *dv, struct update_list *wu)
{
	int ret = wt_rc_write(&dv->wr, dv->wt->r, wu);

	for (size_t i = 0; i < dv->nf && ret == 0; i++) {
		struct afolder *f = &dv->f[i];
		struct imap_folder nf;
		if (f->stale)
			continue;
		drop_pending(dv, f);
		nf.uidvalidity = f->u.uidvalidity;
		nf.uidnext = uidlist_next(&f->u);
		if (f->have_wf && f->wf.uidvalidity == nf.uidvalidity &&
		    f->wf.uidnext >= nf.uidnext)
			continue;
		ret = wt_folder_rec_update(wu, dv->wt->r, f->folder, &nf);
	}
	return ret;
}

/* Touch cur/ of folders whose uidlist alone changed (Dovecot looks only
 * at cur/ and new/, 1.3), release every lock. */
static void dv_release(struct dvapply *dv)
{
	for (size_t i = 0; i < dv->nf; i++) {
		struct afolder *f = &dv->f[i];
		if (!f->stale)
			drop_pending(dv, f);
		if (f->rewrite && !f->stale)
			wt_dv_touch_cur(f->dir);
		afolder_close(f);
	}
	free(dv->f);
	dv->f = NULL;
	dv->nf = 0;
}

/*
 * The numbering as updates of tree: the records of dv->numbered, the
 * folder records raised above them, our uidslots line.
 */
static int numbering_updates(struct dvapply *dv, struct update_list *ups,
			     const struct oid *tree)
{
	struct reccache rc;
	struct strvec done = STRVEC_INIT;
	int ret = 0;

	wt_rc_init(&rc, tree);
	for (size_t i = 0; i < dv->numbered.n; i++) {
		const struct imap_rec *x = &dv->numbered.v[i];
		unsigned s = maildir_shard(x->key, strlen(x->key));
		wt_rc_shard(&rc, dv->wt->r, s);
		imap_recs_set(&rc.s[s], x->key, x->uid,
			      (const char *const *)x->kw, x->nkw);
		rc.changed[s] = true;
	}
	ret = wt_rc_write(&rc, dv->wt->r, ups);
	for (size_t i = 0; i < dv->nfolders.n && ret == 0; i++) {
		const char *folder = dv->nfolders.v[i];
		struct imap_folder f;
		uint32_t top = 0;
		if (strvec_has(&done, folder))
			continue;
		strvec_push(&done, folder);
		if (wt_folder_rec(&f, dv->wt->r, tree, folder) < 0)
			continue;
		for (size_t j = 0; j < dv->nnuid; j++)
			if (!strcmp(dv->nfolders.v[j], folder) &&
			    dv->nuid[j] > top)
				top = dv->nuid[j];
		if (top >= f.uidnext) {
			f.uidnext = top + 1;
			ret = wt_folder_rec_update(ups, dv->wt->r, folder, &f);
		}
	}
	if (ret == 0 && dv->add_slot)
		ret = wt_slots_update(ups, dv->wt->r, &dv->slots, dv->slot,
				   dv->wt->node);
	strvec_clear(&done);
	wt_rc_release(&rc);
	return ret;
}

int wt_dv_apply_end(struct dvapply *dv, struct update_list *wu,
		    const struct oid *w2, const struct oid *m, bool whole)
{
	struct worktree *wt;
	struct update_list ups = UPDATE_LIST_INIT;
	struct oid mtree, mtree2, m2;
	int ret = 0;

	if (!dv)
		return 0;
	wt = dv->wt;
	dv_release(dv);
	if (dv->numbered.n && m) {
		/*
		 * The numbering is a local commit right after the apply;
		 * the worktree, which holds mail (whole) or its own tree,
		 * takes the same records.
		 */
		if (repo_commit_tree(&mtree, wt->r, m) < 0 ||
		    numbering_updates(dv, &ups, &mtree) < 0 ||
		    repo_tree_update(&mtree2, wt->r, &mtree, ups.v, ups.n) < 0 ||
		    repo_commit(&m2, wt->r, &mtree2, m, 1,
				"number: UIDs of this replica for unnumbered "
				"messages\n", -1, "maildag-syncd",
				wt->email) < 0 ||
		    repo_ref_cas(wt->r, REF_MAIL, &m2, m,
				 "maildag-syncd: number") < 0) {
			ret = E_TEMP;
		} else if (whole && oid_equal(w2, m)) {
			ret = repo_ref_cas(wt->r, REF_WORKTREE, &m2, w2,
					   "maildag-syncd: number");
		} else {
			/* the next apply brings the worktree there */
			(void)wu;
		}
		if (ret == 0)
			log_info("numbered %zu message%s from slot %d",
				 dv->numbered.n, dv->numbered.n == 1 ? "" : "s",
				 dv->slot);
	}
	update_list_release(&ups);
	wt_rc_release(&dv->wr);
	wt_rc_release(&dv->mr);
	imap_recs_release(&dv->numbered);
	strvec_clear(&dv->nfolders);
	free(dv->nuid);
	imap_slots_release(&dv->slots);
	free(dv);
	return ret;
}
