/*
 * worktree_commit: the local changes on top of mail (see worktree.h,
 * and worktree.c for the invariants).
 *
 * What a scan found (worktree_scan.c) becomes tree updates to the
 * worktree tree and, where mail has not moved on, the same updates to
 * mail's tree: two commits, refs/maildag/worktree then refs/heads/mail,
 * each an update of the ref it moves under the writer lock.  Deliveries
 * the LDA put on disk are claimed from the journal here, so their
 * commit says "deliver" (delivery.h) and not "add".
 */
#include "autoconf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "delivery.h"
#include "fsutil.h"
#include "format.h"
#include "journal.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "merge.h"
#include "purge.h"
#include "purged.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "strvec.h"
#include "vec.h"
#include "worktree.h"
#include "worktree_p.h"
#include "xalloc.h"

/* --- committing --------------------------------------------------------- */

void wt_mlist_add(struct mlist *l, const char *key, size_t klen,
		  long long mtime)
{
	char *k = xstrndup(key, klen);
	struct mtime_change *c;

	strvec_push_nodup(&l->keys, k);
	c = VEC_PUSH(l);
	c->key = k;
	c->mtime = mtime;
}

void wt_mlist_release(struct mlist *l)
{
	VEC_FREE(l);
	strvec_clear(&l->keys);
}

void wt_counts_add(struct worktree_counts *c, const struct ent *from,
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

void wt_counts_text(struct strbuf *out, const struct worktree_counts *c)
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

/* Pair removals and additions by key (both sorted by key). */
static struct pair *pairs_of(struct scan *sc, size_t *n)
{
	struct pair *p = NULL;
	size_t np = 0, ap = 0, i = 0, j = 0;

	while (i < sc->rm.n || j < sc->add.n) {
		struct ent *a = i < sc->rm.n ? &sc->rm.v[i] : NULL;
		struct ent *b = j < sc->add.n ? &sc->add.v[j] : NULL;
		int c = !a ? 1 : !b ? -1 : wt_key_cmp(a, b->name, b->klen);

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
		if (!wt_key_cmp(any, key, klen))
			return true;
	}
	return false;
}

void wt_add_path(struct update_list *ups, const char *folder,
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
		if (p[i].from && !wt_same_place(p[i].from, p[i].to))
			wt_add_path(ups, p[i].from->folder, p[i].from->sub,
				    p[i].from->name, NULL);
		if (p[i].to)
			wt_add_path(ups, p[i].to->folder, p[i].to->sub,
				    p[i].to->name, &p[i].to->oid);
		wt_mlist_add(ml, any->name, any->klen,
			     p[i].to ? p[i].to->mtime : MTIME_NONE);
		wt_counts_add(counts, p[i].from, p[i].to);
	}
	for (size_t i = 0; i < sc->nmt; i++) {
		if (mt_paired(p, np, sc->mt[i].key))
			continue;
		wt_mlist_add(ml, sc->mt[i].key, strlen(sc->mt[i].key),
			     sc->mt[i].mtime);
		counts->mtimes++;
	}
}

int wt_read_refs(struct worktree *wt, struct oid *w, struct oid *wtree,
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
	int r = wt_read_refs(wt, &w, &wtree, &m, &mtree);

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
	char *t;		/* format 2: n without its letters */
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
	/* format 2: names that differ in keyword letters alone are one */
	return strcmp(x->t ? x->t : x->n, y->t ? y->t : y->n);
}

/*
 * Format 2: of the names v[i..] that are one tree name (a keyword change
 * is a rename from one disk name to another), the one on disk, so the
 * scan need not look for it through the whole directory; else v[i]'s.
 * The others are older names of the same file (held back, or renamed by
 * Dovecot since): a new message looked at by a name it no longer has
 * would be taken for gone, for good.
 */
static const char *group_on_disk(struct worktree *wt, const struct nref *v,
				 size_t i, size_t n)
{
	const char *found = v[i].n;
	struct stat st;
	char *dir;
	int dfd;

	if (!v[i].t || i + 1 >= n || nref_cmp(&v[i], &v[i + 1]))
		return found;
	dir = wt_disk_dir(wt, v[i].f, v[i].sub);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t j = i; dfd >= 0 && j < n && !nref_cmp(&v[i], &v[j]); j++)
		if (fstatat(dfd, v[j].n, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode)) {
			found = v[j].n;
			break;
		}
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return found;
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
		v[n].t = NULL;
		if (sc->imap) {
			struct strbuf t = STRBUF_INIT;
			wt_dv_tree_name(&t, v[n].sub, nm);
			v[n].t = strbuf_detach(&t, NULL);
		}
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
			known = wt_in_worktree(sc, v[i].f);
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
			if (wt_subtree_of(&shard, sc->r, wt_scan_root_tree(sc), tp.buf) < 0) {
				sc->temp_error = true;
				break;
			}
		}
		wt_scan_name(wt, sc, v[i].f, v[i].sub, group_on_disk(wt, v, i, n),
			     shard);
	}
	git_tree_free(shard);
	strbuf_release(&tp);
	for (size_t i = 0; i < n; i++) {
		free(v[i].f);
		free(v[i].t);
	}
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
		wt_scan_root(wt, sc, full);
	else if (root)
		wt->root = true;
	/* in name order: folders made together are admitted by name */
	strvec_sort(folders);
	for (i = 0; i < folders->n && !sc->temp_error; i++) {
		if (slice_used(wt, sc, n++, t0))
			break;
		wt_scan_folder(wt, sc, folders->v[i], false);
	}
	if (i < folders->n && !sc->temp_error) {
		for (; i < folders->n; i++)
			worktree_dirty_folder(wt, folders->v[i]);
		goto partial;
	}
	while (wt->qpos < wt->queue.n && !sc->temp_error) {
		if (slice_used(wt, sc, n++, t0))
			break;
		if (wt_scan_folder(wt, sc, wt->queue.v[wt->qpos++], true) == 1)
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
		if (f == JOURNAL_FOUND_NONE) {
			char token[JOURNAL_TOKEN_LEN + 1];
			if (journal_snapshot_sieve_dead(&js, a->name, a->klen,
							token)) {
				char *fd = layout_folder_dir(wt->maildir,
							     a->folder, NULL);
				journal_sieve_clear_lock(fd, token);
				free(fd);
			}
		}
		if (f == JOURNAL_FOUND_SIEVE) {
			log_debug("'%s' is a Sieve delivery maildag-lda "
				  "commits", a->name);
			worktree_dirty_name(wt, a->folder, a->sub, wt_ent_disk(a));
			wt_ent_release(a);
		} else if (f != JOURNAL_FOUND_WITHDRAWN) {
			sc->add.v[w++] = *a;
		} else {
			log_info("'%s' is being taken back by maildag-lda",
				 a->name);
			worktree_dirty_name(wt, a->folder, a->sub, wt_ent_disk(a));
			wt_ent_release(a);
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
 * In format 2, a folder Dovecot made anew (another UIDVALIDITY) holds
 * nothing back: its new record would leave the held messages at UIDs
 * not below its uidnext.  Returns how many were held back.
 */
static size_t hold_unpaired(struct worktree *wt, struct scan *sc)
{
	size_t w = 0, w2 = 0, held = 0;
	struct strvec unpaired = { 0 }, reborn = { 0 }, kept = { 0 };

	for (size_t i = 0; i < sc->rm.n; i++) {
		struct ent *e = &sc->rm.v[i];
		if (e->claimed || strvec_has(&reborn, e->folder)) {
			sc->rm.v[w++] = *e;
			continue;
		}
		if (sc->imap && !strvec_has(&kept, e->folder)) {
			if (wt_dv_reborn(wt, sc, e->folder)) {
				strvec_push(&reborn, e->folder);
				sc->rm.v[w++] = *e;
				continue;
			}
			strvec_push(&kept, e->folder);
		}
		if (!strvec_has(&unpaired, e->folder))
			strvec_push(&unpaired, e->folder);
		worktree_dirty_name(wt, e->folder, e->sub, e->name);
		wt_ent_release(e);
		held++;
	}
	sc->rm.n = w;
	for (size_t i = 0; i < unpaired.n; i++)
		strvec_push(&sc->held_rm, unpaired.v[i]);
	strvec_clear(&reborn);
	strvec_clear(&kept);
	/*
	 * a folder stays gone when every message of it went elsewhere and
	 * it is still not on disk: a RENAME's old name goes with its moves
	 */
	for (size_t i = 0; i < sc->mk_rm.n; i++) {
		const char *f = sc->mk_rm.v[i];
		if (!strvec_has(&unpaired, f) && !wt_folder_on_disk(wt, f)) {
			sc->mk_rm.v[w2++] = sc->mk_rm.v[i];
			continue;
		}
		worktree_dirty_folder(wt, f);
		free(sc->mk_rm.v[i]);
		held++;
	}
	sc->mk_rm.n = w2;
	strvec_clear(&unpaired);
	if (held)
		log_debug("the Maildir changed while it was read: %zu removals "
			  "wait for a second look", held);
	return held;
}

/* One commit, from the marks it takes to the refs it moves. */
struct commit {
	struct worktree_result *res;
	struct repo_batch batch;
	struct strvec names, folders, claims;
	struct strvec was_unreadable;
	struct delivery_record deliveries;
	bool full, root;
	bool queued;		/* a look at the root was under way */
	struct update_list wu;
	struct mlist wm;
	struct strbuf msg;
	struct pair *p;
	size_t np;
	struct scan sc;
	struct oid w, wtree, m, mtree, wtree2, mtree2, m2, w2;
	unsigned long gen;
	double t0, t1, t2, t3;
};

/*
 * Take the dirty marks (events read meanwhile make new ones), the names
 * held back once they are due, and what could not be read last time.
 */
static void take_marks(struct worktree *wt, struct commit *c)
{
	c->names = wt->names;
	c->folders = wt->folders;
	c->was_unreadable = wt->unreadable;
	c->full = wt->full;
	c->root = wt->root;
	c->queued = wt->queue.n > 0;
	/* every change that happened so far is in the marks we take */
	if (wt->poll) {
		wt->poll(wt->poll_data);
		c->names = wt->names;
		c->folders = wt->folders;
		c->full = wt->full;
		c->root = wt->root;
	}
	/* take the marks: events read meanwhile make new ones */
	memset(&wt->names, 0, sizeof wt->names);
	memset(&wt->folders, 0, sizeof wt->folders);
	strmap_clear(&wt->folder_set);
	wt->full = wt->root = false;
	/*
	 * names held back (a copy, or half of a move) are looked at again
	 * when due, and whenever the disk changed: the change may be their
	 * other half (the source of a MOVE going, whatever its key), so the
	 * two meet in one commit; those still waiting are held again
	 */
	if (wt->later.n && (clock_now() >= wt->later_due || c->names.n ||
			    c->folders.n || c->full || c->root)) {
		for (size_t i = 0; i < wt->later.n; i++)
			strvec_push(&c->names, wt->later.v[i]);
		strvec_clear(&wt->later);
	}
	/* what could not be read last time is looked at again */
	memset(&wt->unreadable, 0, sizeof wt->unreadable);
	for (size_t i = 0; i < c->was_unreadable.n; i++)
		if (strchr(c->was_unreadable.v[i], '/'))
			strvec_push(&c->names, c->was_unreadable.v[i]);
		else
			c->root = true;
}

/* Look at what the marks name on disk, and resolve what was found. */
static int scan_disk(struct worktree *wt, struct commit *c)
{
	struct scan *sc = &c->sc;

	/*
	 * A Maildir without cur/ and new/ is one that is not there (moved,
	 * not mounted): nothing in it is committed as deleted
	 */
	if (!wt_folder_on_disk(wt, "")) {
		log_error("'%s' holds no cur/ or new/: is the Maildir there?",
			  wt->maildir);
		return E_TEMP;
	}
	/* what settled long ago: its inode may be another file's now */
	wt_seen_prune(wt, time(NULL), 6 * LINK_SETTLE);
	/* the objects of this commit are synced once, before a ref moves */
	repo_batch_begin(&c->batch, wt->r);
	c->t0 = clock_now();
	if (c->full) {
		wt->rescan_t0 = c->t0;
		wt->rescan_seen = wt->rescan_slices = 0;
	}
	scan_marked(wt, sc, c->full, c->root, &c->folders, &c->names, c->t0);
	if (wt->rescan_t0 && !sc->temp_error) {
		wt->rescan_seen += sc->seen;
		wt->rescan_slices++;
		if (!sc->partial) {
			log_info("full rescan: %zu files in %.0f ms (%zu slices)",
				 wt->rescan_seen,
				 (clock_now() - wt->rescan_t0) * 1000,
				 wt->rescan_slices);
			wt->rescan_t0 = 0;
		}
	}
	c->res->more = sc->partial;
	c->t1 = clock_now();
	if (sc->temp_error || wt_resolve(wt, sc) < 0)
		return E_TEMP;
	c->t2 = clock_now();
	return 0;
}

/*
 * A file on disk with bytes the mailbox purged (copied back from a
 * backup, say) is not taken into mail: purge wins, as in the merge, so
 * mail's tree never names a blob it lists.  The worktree keeps it, so
 * the next apply takes it off the disk.  One shard read per new blob;
 * the whole tree is gone through only when one is listed.
 */
static int purged_adds(struct worktree *wt, struct commit *c)
{
	struct purged none = PURGED_INIT;
	struct oid dir;
	bool any = false;

	if (purged_dir_id(&dir, wt->r, &c->mtree2) < 0)
		return 0;	/* nothing purged (an import, say) */
	for (size_t i = 0; i < c->wu.n && !any; i++) {
		const struct repo_update *u = &c->wu.v[i];
		struct layout_path lp;

		if (!u->blob || u->tree ||
		    layout_parse_tree_path(&lp, u->path) < 0)
			continue;
		any = purge_listed(wt->r, &c->mtree2, u->blob) == 1;
	}
	if (!any)
		return 0;
	log_warn("a file on disk holds the bytes of a purged message: not "
		 "committed, and taken off the disk");
	return merge_purge_tree(&c->mtree2, wt->r, &c->mtree2, &none, NULL) < 0 ?
	       E_TEMP : 0;
}

/*
 * The new worktree tree (wtree2) from what the scan found, and mail's
 * tree with the same changes (mtree2).  1 when the disk holds nothing
 * new to commit.
 */
static int new_trees(struct worktree *wt, struct commit *c)
{
	struct scan *sc = &c->sc;

	if (wt->poll)
		wt->poll(wt->poll_data);
	/* a slice holds back removals a later folder may explain */
	if (wt->gen != c->gen || sc->partial)
		c->res->deferred += hold_unpaired(wt, sc);
	claim_deliveries(wt, sc, &c->claims, &c->deliveries);
	/* taken in: the same file back in its folder later is new there */
	for (size_t i = 0; i < sc->add.n; i++)
		if (sc->add.v[i].seen)
			strmap_del(&wt->seen, sc->add.v[i].seen);

	c->p = pairs_of(sc, &c->np);
	local_updates(sc, c->p, c->np, &c->wu, &c->wm, &c->res->counts);
	if (other_updates(sc, &c->wu, &c->res->counts) < 0 ||
	    (sc->imap &&
	     wt_dv_commit(wt, sc, c->p, c->np, &c->names, &c->wu) < 0) ||
	    mtimes_update(&c->wu, wt->r, &c->wtree, c->wm.v, c->wm.n) < 0 ||
	    repo_tree_update(&c->wtree2, wt->r, &c->wtree, c->wu.v,
			     c->wu.n) < 0)
		return E_TEMP;
	c->res->deferred += sc->later.n;
	if (oid_equal(&c->wtree2, &c->wtree))
		return 1;

	if (!sc->mtree) {
		oid_cpy(&c->mtree2, &c->wtree2);
	} else if (merge_trees(&c->mtree2, wt->r, &c->wtree, &c->mtree,
			       &c->wtree2, NULL, NULL) < 0) {
		/*
		 * mail moved on since the disk was written (an apply is
		 * pending or was cut short): the local changes are merged
		 * into it three ways, against the worktree, by the rules
		 * every replica uses
		 */
		return E_TEMP;
	}
	return purged_adds(wt, c);
}

/* The commits of the new trees: m2 on mail, w2 on the worktree. */
static int write_commits(struct worktree *wt, struct commit *c)
{
	int ret;

	wt_counts_text(&c->msg, &c->res->counts);
	oid_cpy(&c->m2, &c->m);
	if (!oid_equal(&c->mtree2, &c->mtree)) {
		struct strbuf cm = STRBUF_INIT, subject = STRBUF_INIT;
		const struct worktree_counts *k = &c->res->counts;
		/* deliveries alone are told as maildag-lda tells them */
		if (!(c->claims.n && c->claims.n == c->np &&
		      c->claims.n == k->added && !k->mtimes &&
		      !k->folders_added && !k->folders_removed && !k->other))
			strbuf_addf(&subject, "%s: %s", wt->origin ? wt->origin :
				    "mail client", c->msg.buf);
		delivery_record_message(&cm, &c->deliveries,
					subject.len ? subject.buf : NULL);
		ret = repo_commit(&c->m2, wt->r, &c->mtree2, &c->m, 1, cm.buf,
				  -1, "maildag-syncd", wt->email);
		strbuf_release(&subject);
		strbuf_release(&cm);
		if (ret < 0)
			return ret;
	}
	if (oid_equal(&c->wtree2, &c->mtree2))
		oid_cpy(&c->w2, &c->m2);
	else if (repo_commit(&c->w2, wt->r, &c->wtree2, &c->w, 1,
			     "worktree: local changes\n", -1,
			     "maildag-syncd", wt->email) < 0)
		return E_TEMP;
	c->t3 = clock_now();
	if (repo_batch_end(&c->batch, true) < 0)
		return E_TEMP;
	if (c->sc.add.n >= 16) {
		/* reading new files and writing their trees */
		double cost = (c->t3 - c->t1) / (double)c->sc.add.n;
		wt->add_cost = wt->add_cost ? (wt->add_cost + cost) / 2 : cost;
	}
	log_debug("commit: scan %.0f ms, resolve %.0f ms, write %.0f ms, "
		  "sync %.0f ms", (c->t1 - c->t0) * 1000,
		  (c->t2 - c->t1) * 1000, (c->t3 - c->t2) * 1000,
		  (clock_now() - c->t3) * 1000);
	return 0;
}

/* Move mail, then the worktree ref; the claimed deliveries are done. */
static int move_refs(struct worktree *wt, struct commit *c)
{
	int ret;

	if (!oid_equal(&c->m2, &c->m)) {
		if ((ret = repo_ref_cas(wt->r, REF_MAIL, &c->m2, &c->m,
					"maildag-syncd: local changes")) < 0)
			return ret == E_RACE ? E_RACE : E_TEMP;
		c->res->committed = true;
		oid_cpy(&c->res->mail, &c->m2);
		log_info("committed %.12s: %s", oid_hex(&c->m2), c->msg.buf);
	}
	if ((ret = repo_ref_cas(wt->r, REF_WORKTREE, &c->w2, &c->w,
				"maildag-syncd: local changes")) < 0)
		return ret == E_RACE ? E_RACE : E_TEMP;
	/* the claimed deliveries are in: their journal entries go */
	for (size_t i = 0; i < c->claims.n; i++)
		journal_done(c->claims.v[i]);
	/* folders gone make room for those folder_limit left out */
	if (wt->left_out && c->sc.mk_rm.n)
		worktree_dirty_root(wt);
	return 0;
}

/* After a commit (or none needed): keep what was held back, say what
 * became readable, and keep what is unreadable now. */
static void keep_held(struct worktree *wt, struct commit *c)
{
	struct scan *sc = &c->sc;

	if (sc->later.n) {
		if (!wt->later.n)
			wt->later_due = clock_now() + COPY_SETTLE + 0.1;
		for (size_t i = 0; i < sc->later.n; i++)
			strvec_push(&wt->later, sc->later.v[i]);
	}
	for (size_t i = 0; i < c->was_unreadable.n; i++)
		if (!strvec_has(&sc->unreadable, c->was_unreadable.v[i]))
			log_info("'%s' is no longer unreadable",
				 c->was_unreadable.v[i]);
	wt->unreadable = sc->unreadable;
	memset(&sc->unreadable, 0, sizeof sc->unreadable);
	c->res->unreadable = wt->unreadable.n;
}

/* A commit failed: the marks it took are marked again. */
static void give_back_marks(struct worktree *wt, struct commit *c)
{
	restore_marks(wt, c->full, c->root, &c->folders, &c->names);
	/* the names are marked again: looked at, and logged, as before */
	wt->unreadable = c->was_unreadable;
	memset(&c->was_unreadable, 0, sizeof c->was_unreadable);
	c->res->unreadable = wt->unreadable.n;
	if (c->queued || wt->queue.n)
		worktree_dirty_all(wt);	/* a sliced rescan starts again */
}

int worktree_commit(struct worktree *wt, struct worktree_result *res)
{
	struct worktree_result dummy;
	struct commit c = {
		.batch = REPO_BATCH_INIT,
		.deliveries = DELIVERY_RECORD_INIT,
		.wu = UPDATE_LIST_INIT,
		.msg = STRBUF_INIT,
	};
	int ret;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof *res);
	c.res = res;
	take_marks(wt, &c);
	wt_scan_init(&c.sc, wt->r, &c.wtree);
	c.sc.was_unreadable = &c.was_unreadable;

	if ((ret = wt_read_refs(wt, &c.w, &c.wtree, &c.m, &c.mtree)) < 0)
		goto fail;
	oid_cpy(&res->mail, &c.m);
	c.sc.mtree = oid_equal(&c.wtree, &c.mtree) ? NULL : &c.mtree;
	c.sc.imap = wt_dv_tree_is_imap(wt->r, &c.mtree);
	c.gen = wt->gen;
	if ((ret = scan_disk(wt, &c)) < 0 || (ret = new_trees(wt, &c)) < 0)
		goto fail;
	if (ret == 0 && ((ret = write_commits(wt, &c)) < 0 ||
			 (ret = move_refs(wt, &c)) < 0))
		goto fail;
	keep_held(wt, &c);
	ret = 0;
	goto done;
fail:
	give_back_marks(wt, &c);
	if (ret != E_RACE)
		ret = E_TEMP;
done:
	strvec_clear(&c.was_unreadable);
	repo_batch_end(&c.batch, false);
	wt_scan_release(&c.sc);
	free(c.p);
	wt_mlist_release(&c.wm);
	update_list_release(&c.wu);
	strbuf_release(&c.msg);
	strvec_clear(&c.names);
	strvec_clear(&c.folders);
	strvec_clear(&c.claims);
	delivery_record_release(&c.deliveries);
	return ret;
}
