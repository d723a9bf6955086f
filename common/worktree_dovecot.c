/*
 * worktree_dovecot: format 2's Dovecot side of the worktree
 * (doc/imap-identity.md 4.1, 4.6; see worktree.h and worktree.c).
 *
 * In a format 2 repository a message's tree name has no keyword letters
 * 'a'-'z'; its keyword names and UID are in imap/<xx>, its folder's
 * UIDVALIDITY and UIDNEXT in <folder>/imapfolder.  On disk the letters
 * are this replica's own, through the folder's dovecot-keywords, and the
 * UIDs are in its dovecot-uidlist.  Here:
 *
 *  - the scan's view: a disk name's tree name, its keyword names, and
 *    the disk name of a message the worktree names;
 *  - the commit side: the records of what changed, read from Dovecot's
 *    files under Dovecot's lock, files without a UID numbered from this
 *    replica's slot and appended to the uidlist before the lock goes;
 *  - maildag-lda's side: a delivery's uidlist record appended under the
 *    lock before its rename into new/, its records at the group commit;
 *  - what the apply side (worktree_dvapply.c) reads through: folder
 *    records and the UID slot (a tree's message records:
 *    worktree_records.c).
 *
 * Invariants: the uidlist is only written under its lock, never below
 * Dovecot's next UID (dovecot.c refuses it); nothing here runs for a
 * format 1 tree.
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
#include "vec.h"
#include "worktree_p.h"
#include "xalloc.h"



/* --- folder records and UID slots --------------------------------------- */

static void folder_rec_path(struct strbuf *out, const char *folder)
{
	if (*folder)
		strbuf_addf(out, "%s/", folder);
	strbuf_addstr(out, IMAPREC_FOLDER);
}

/* A folder's record in tree: 0, or E_NOTFOUND. */
int wt_folder_rec(struct imap_folder *out, struct repo *r,
		      const struct oid *tree, const char *folder)
{
	struct strbuf path = STRBUF_INIT, b = STRBUF_INIT;
	struct oid id;
	int ret = E_NOTFOUND;

	folder_rec_path(&path, folder);
	if (tree && repo_tree_lookup(&id, r, tree, path.buf) == 0 &&
	    repo_blob_read(&b, r, &id) == 0 &&
	    imap_folder_parse(out, b.buf, b.len, NULL) == 0)
		ret = 0;
	strbuf_release(&path);
	strbuf_release(&b);
	return ret;
}

int wt_folder_rec_update(struct update_list *ups, struct repo *r,
			     const char *folder, const struct imap_folder *f)
{
	struct strbuf path = STRBUF_INIT, b = STRBUF_INIT;
	struct oid id;
	int ret;

	folder_rec_path(&path, folder);
	imap_folder_format(&b, f);
	ret = repo_blob_from_buffer(&id, r, b.buf, b.len);
	if (ret == 0)
		update_list_add(ups, path.buf, &id);
	strbuf_release(&path);
	strbuf_release(&b);
	return ret < 0 ? E_TEMP : 0;
}

/*
 * This replica's UID slot: uid_slot when set, else its line in tree's
 * uidslots, else the lowest free one (*add: the line must be added).
 */
static int slot_of(struct repo *r, const char *node, int uid_slot,
		   const struct oid *tree, bool *add, struct imap_slots *slots)
{
	struct strbuf b = STRBUF_INIT;
	struct oid id;
	int s;

	*add = false;
	if (repo_tree_lookup(&id, r, tree, IMAPREC_SLOTS) == 0 &&
	    (repo_blob_read(&b, r, &id) < 0 ||
	     imap_slots_parse(slots, b.buf, b.len, NULL) < 0))
		log_warn("ignoring the tree's " IMAPREC_SLOTS);
	strbuf_release(&b);
	s = uid_slot >= 0 ? uid_slot : imap_slots_claim(slots, node);
	if (s < 0)
		return log_error("no UID slot left for node '%s'", node);
	for (size_t i = 0; i < slots->n; i++)
		if ((int)slots->v[i].slot == s && !strcmp(slots->v[i].node, node))
			return s;
	*add = true;
	return s;
}

int wt_our_slot(struct worktree *wt, const struct oid *tree, bool *add,
		    struct imap_slots *slots)
{
	return slot_of(wt->r, wt->node, wt->uid_slot, tree, add, slots);
}

/* The update of uidslots with (slot, node) added. */
int wt_slots_update(struct update_list *ups, struct repo *r,
			struct imap_slots *slots, int slot, const char *node)
{
	struct strbuf b = STRBUF_INIT;
	struct oid id;
	int ret;

	imap_slots_add(slots, (unsigned)slot, node);
	imap_slots_format(&b, slots);
	ret = repo_blob_from_buffer(&id, r, b.buf, b.len) < 0 ? E_TEMP : 0;
	if (ret == 0)
		update_list_add(ups, IMAPREC_SLOTS, &id);
	strbuf_release(&b);
	return ret;
}

/* --- names ------------------------------------------------------------------ */

void wt_dv_tree_name(struct strbuf *out, const char *sub, const char *disk)
{
	const char *colon = strchr(disk, ':');
	size_t at;

	if (!colon || strncmp(colon, ":2,", 3)) {
		strbuf_addstr(out, disk);
		return;
	}
	at = out->len;
	strbuf_add(out, disk, (size_t)(colon + 3 - disk));
	for (const char *p = colon + 3; *p; p++)
		if (*p < 'a' || *p > 'z')
			strbuf_addch(out, *p);
	/*
	 * a name in new/ has no info in the tree: the letters of a message
	 * with keywords there are the apply's (with_letters()), which needs
	 * an info to put them on, and an info left empty when they went is
	 * no flag either; Dovecot gives a file in new/ none
	 */
	if (!strcmp(sub, "new") && out->len - at == (size_t)(colon + 3 - disk))
		strbuf_setlen(out, at + (size_t)(colon - disk));
}

void worktree_dovecot_tree_name(struct strbuf *out, const char *sub,
				const char *disk)
{
	wt_dv_tree_name(out, sub, disk);
}

/* The letters 'a'-'z' of a disk name, as a bit set. */
uint32_t wt_letter_bits(const char *disk)
{
	const char *colon = strchr(disk, ':');
	uint32_t bits = 0;

	if (!colon || strncmp(colon, ":2,", 3))
		return 0;
	for (const char *p = colon + 3; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			bits |= 1u << (*p - 'a');
	return bits;
}

/* --- the scan's view ------------------------------------------------------- */

struct dvscan {
	struct strmap folders;		/* folder -> index in kw */
	struct dovecot_keywords *kw;
	size_t nkw, akw;
	struct reccache wrec;		/* the worktree's records */
};

static struct dvscan *dvscan_of(struct scan *sc)
{
	if (!sc->dv) {
		sc->dv = xcalloc(1, sizeof *sc->dv);
		wt_rc_init(&sc->dv->wrec, sc->wtree);
	}
	return sc->dv;
}

void wt_dv_scan_release(struct scan *sc)
{
	struct dvscan *d = sc->dv;

	if (!d)
		return;
	for (size_t i = 0; i < d->nkw; i++)
		dovecot_keywords_release(&d->kw[i]);
	free(d->kw);
	strmap_clear(&d->folders);
	wt_rc_release(&d->wrec);
	free(d);
	sc->dv = NULL;
}

/* folder's dovecot-keywords, read once per scan (renamed over whole). */
static struct dovecot_keywords *scan_keywords(struct worktree *wt,
					      struct scan *sc,
					      const char *folder)
{
	struct dvscan *d = dvscan_of(sc);
	size_t i;

	if (!strmap_get(&d->folders, folder, &i)) {
		char *dir = wt_disk_dir(wt, folder, NULL);
		xgrow((void **)&d->kw, &d->akw, d->nkw + 1, sizeof *d->kw);
		i = d->nkw++;
		if (dovecot_keywords_read(&d->kw[i], dir) < 0)
			memset(&d->kw[i], 0, sizeof d->kw[i]);
		strmap_put(&d->folders, folder, i);
		free(dir);
	}
	return &d->kw[i];
}

bool wt_dv_keywords_differ(struct worktree *wt, struct scan *sc,
			   const char *folder, const char *dname)
{
	struct dovecot_keywords *k = scan_keywords(wt, sc, folder);
	const struct imap_rec *rec = wt_rc_get(&dvscan_of(sc)->wrec, sc->r, dname,
					    maildir_key_len(dname));
	const char *colon = strchr(dname, ':');
	struct strvec names = STRVEC_INIT;
	size_t m = 0, want = 0;
	bool differ = false;

	if (colon && !strncmp(colon, ":2,", 3))
		dovecot_keywords_names(&names, k, colon + 3);
	/*
	 * a name of the record without a letter here cannot be on disk
	 * (more than 26 in use, 4.6): it is not a difference
	 */
	for (size_t j = 0; rec && j < rec->nkw; j++)
		want += dovecot_keywords_index(k, rec->kw[j], false) >= 0;
	for (size_t i = 0; i < names.n && !differ; i++) {
		bool found = false;
		for (size_t j = 0; rec && j < rec->nkw && !found; j++)
			found = !imap_keyword_cmp(names.v[i], rec->kw[j]);
		m += found;
		differ = !found;
	}
	strvec_clear(&names);
	return differ || m != want;
}

/* The file in dir whose tree name is tname, or NULL. */
static char *find_by_key(const char *dir, const char *sub, const char *tname)
{
	size_t klen = maildir_key_len(tname);
	struct strbuf want = STRBUF_INIT, have = STRBUF_INIT;
	struct dirent *de;
	char *found = NULL;
	DIR *dh = opendir(dir);

	wt_dv_tree_name(&want, sub, tname);
	while (dh && !found && (de = readdir(dh))) {
		if (strncmp(de->d_name, tname, klen) ||
		    (de->d_name[klen] && de->d_name[klen] != ':' &&
		     de->d_name[klen] != ','))
			continue;
		strbuf_reset(&have);
		wt_dv_tree_name(&have, sub, de->d_name);
		if (!strcmp(have.buf, want.buf))
			found = xstrdup(de->d_name);
	}
	if (dh)
		closedir(dh);
	strbuf_release(&want);
	strbuf_release(&have);
	return found;
}

int wt_dv_rekey(struct worktree *wt, const char *folder, const char *sub,
		const char *from, const char *to)
{
	char *dir = wt_disk_dir(wt, folder, NULL);
	char *sd = wt_disk_dir(wt, folder, sub);
	char *fp = xasprintf("%s/%s", sd, from), *tp = xasprintf("%s/%s", sd, to);
	char *ob = xstrndup(from, strcspn(from, ":"));
	char *nb = xstrndup(to, strcspn(to, ":"));
	struct dovecot_lock lock = DOVECOT_LOCK_INIT;
	struct uidlist u = UIDLIST_INIT;
	bool have_u;
	int ret, r;

	if ((r = dovecot_lock(&lock, dir, DV_LOCK_MS)) < 0) {
		ret = E_TEMP;
		goto out;
	}
	r = uidlist_read(&u, dir);
	have_u = r == 0;
	if (r < 0 && r != E_NOTFOUND) {
		ret = E_TEMP;
	} else if (rename_noreplace(fp, tp) < 0) {
		ret = errno == ENOENT ? E_NOTFOUND :
		      (log_error_errno("rename '%s'", fp), E_TEMP);
	} else {
		ret = 0;
		/* E5: the same UID under the new base, Dovecot's GUID kept */
		if (have_u && uidlist_rename(&u, ob, nb) &&
		    uidlist_rewrite(dir, &u) < 0)
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

char *wt_dv_find_disk(struct worktree *wt, const char *folder,
		      const char *sub, const char *tname)
{
	char *dir = wt_disk_dir(wt, folder, sub);
	char *found = find_by_key(dir, sub, tname);

	free(dir);
	return found;
}

char *wt_dv_disk_name(struct worktree *wt, struct scan *sc,
		      const char *folder, const char *sub, const char *tname)
{
	struct dovecot_keywords *k = scan_keywords(wt, sc, folder);
	const struct imap_rec *rec = wt_rc_get(&dvscan_of(sc)->wrec, sc->r, tname,
					    maildir_key_len(tname));
	char *dir = wt_disk_dir(wt, folder, sub), *p, *found = NULL;
	struct strbuf letters = STRBUF_INIT;
	size_t missing = 0;

	/* the name the record's keywords give, then any with that key */
	if (rec)
		missing = dovecot_keywords_letters(&letters, k,
			(const char *const *)rec->kw, rec->nkw, false);
	if (!missing) {
		struct maildir_name mn;
		if (maildir_name_parse(&mn, tname) == 0) {
			struct strbuf fl = STRBUF_INIT, nm = STRBUF_INIT;
			strbuf_addstr(&fl, maildir_name_flags(&mn));
			strbuf_add(&fl, letters.buf, letters.len);
			maildir_name_set_flags(&mn, fl.buf);
			maildir_name_format(&nm, &mn);
			p = xasprintf("%s/%s", dir, nm.buf);
			if (path_exists(p))
				found = strbuf_detach(&nm, NULL);
			free(p);
			strbuf_release(&fl);
			strbuf_release(&nm);
			maildir_name_release(&mn);
		}
	}
	if (!found)
		found = find_by_key(dir, sub, tname);
	strbuf_release(&letters);
	free(dir);
	return found;
}

/* --- the commit side --------------------------------------------------------- */

/* One folder's changes at a commit: the disk names of what it now holds. */
struct cfolder {
	char *folder;
	struct strvec names;	/* disk names of the changed files */
	struct strvec held;	/* disk names of files held back */
	struct strmap moved_in;	/* keys of messages moved from another folder */
	bool held_rm;		/* removals there held back */
};

static int cfolder_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cfolder *)a)->folder,
		      ((const struct cfolder *)b)->folder);
}

void wt_dv_touch_cur(const char *dir)
{
	char *cur = xasprintf("%s/cur", dir);

	if (utimensat(AT_FDCWD, cur, NULL, 0) < 0 && errno != ENOENT)
		log_warn_errno("touch '%s'", cur);
	free(cur);
}

/*
 * A UID Dovecot here gave (to a save, or maildag-lda to a delivery)
 * that the tree's uidnext has passed since (a peer's UIDs merged in
 * before this commit) cannot be committed: the history would give a
 * UID below its parent's uidnext, which every replica refuses.  Its
 * record goes from u, so the file is numbered anew above the tree's
 * uidnext; this replica's clients see it expunged and added again.
 * A file the tree holds with that UID already keeps it.  True when
 * one went.
 */
static bool drop_passed(struct uidlist *u, struct reccache *rc,
			struct repo *r, const struct imap_folder *tf,
			const struct cfolder *cf, const char *dir)
{
	bool dropped = false;

	for (size_t i = 0; i < cf->names.n; i++) {
		const char *name = cf->names.v[i];
		char *base = xstrndup(name, strcspn(name, ":"));
		const struct uidlist_rec *rec = uidlist_find(u, base);
		const struct imap_rec *old;
		uint32_t uid;

		if (!rec || rec->uid >= tf->uidnext) {
			free(base);
			continue;
		}
		uid = rec->uid;
		old = wt_rc_get(rc, r, name, maildir_key_len(name));
		if (!old || old->uid != uid) {
			log_info("'%s': UID %u of '%s' is below the tree's "
				 "uidnext %u; numbering it anew", dir, uid,
				 base, tf->uidnext);
			dropped |= uidlist_remove(u, base);
		}
		free(base);
	}
	return dropped;
}

/* The name in dir's new/ or cur/ of the file of base name base, whatever
 * its flags, or NULL. */
static char *disk_of(const char *dir, const char *base)
{
	size_t blen = strlen(base);
	char *found = NULL;

	for (int i = 0; i < 2 && !found; i++) {
		char *path = xasprintf("%s/%s", dir, i ? "cur" : "new");
		DIR *dh = opendir(path);
		struct dirent *de;

		while (dh && !found && (de = readdir(dh)))
			if (!strncmp(de->d_name, base, blen) &&
			    (de->d_name[blen] == '\0' || de->d_name[blen] == ':'))
				found = xstrdup(de->d_name);
		if (dh)
			closedir(dh);
		free(path);
	}
	return found;
}

/* the greatest UID of recs, 0 when it holds none */
static uint32_t recs_top(const struct imap_recs *recs)
{
	uint32_t top = 0;

	for (size_t j = 0; j < recs->n; j++)
		if (recs->v[j].uid > top)
			top = recs->v[j].uid;
	return top;
}

/* Does tree hold the message of key (klen bytes) in folder? */
static bool tree_holds_here(struct repo *r, const struct oid *tree,
			    const char *folder, const char *key, size_t klen)
{
	struct hitv hits = { 0 };
	bool yes = false;

	if (wt_tree_find_key(&hits, r, tree, key, klen) == 0)
		for (size_t i = 0; i < hits.n && !yes; i++)
			yes = !strcmp(hits.v[i].folder, folder);
	wt_hitv_clear(&hits);
	return yes;
}

/*
 * The uidnext a commit may record: Dovecot may have numbered a file
 * after the scan listed the folder (a MOVE, an APPEND under load) and
 * before the lock was taken, so the uidlist holds a record (old ones:
 * u->v[0..old)) at or above the tree's uidnext (from) for a file on disk
 * that this commit does not record.  Recording Dovecot's next UID now
 * would put uidnext past that UID before the tree holds its message,
 * and the commit that takes it in would give a UID below uidnext, which
 * the format refuses (a UID given twice, as a client sees it).  So stop
 * at the lowest such UID; the next commit, which takes the file in,
 * raises it.  A record whose file is gone (expunged before the daemon
 * saw it) does not count; one of a message the tree holds in this
 * folder under another UID is recorded (take_renumbered()).  When this
 * commit records a message above that UID, no uidnext makes the tree
 * right: it stays Dovecot's (left as it was; doc/failover-progress.md).
 */
static uint32_t unseen_cap(const char *dir, const struct uidlist *u,
			   size_t old, const struct imap_recs *recs,
			   uint32_t from, uint32_t uidnext)
{
	uint32_t top = recs_top(recs);

	for (size_t i = 0; i < old && i < u->n; i++) {
		const struct uidlist_rec *x = &u->v[i];
		size_t klen;
		bool recorded = false;
		char *disk;

		if (x->uid < from || x->uid >= uidnext)
			continue;
		klen = maildir_key_len(x->base);
		for (size_t j = 0; j < recs->n && !recorded; j++)
			recorded = strlen(recs->v[j].key) == klen &&
				!strncmp(recs->v[j].key, x->base, klen);
		if (recorded || !(disk = disk_of(dir, x->base)))
			continue;
		log_debug("'%s': uidnext stays at %u: '%s' is not taken in "
			  "yet", dir, x->uid > top ? x->uid : uidnext, disk);
		free(disk);
		/* v is sorted by UID: the lowest */
		return x->uid > top ? x->uid : uidnext;
	}
	return uidnext;
}

/*
 * Dovecot's numbering of a message the tree already holds in this
 * folder: a uidlist record at or above the tree's uidnext (from) for a
 * file the tree gives another UID.  Dovecot numbered the file again
 * ("Expunged message reappeared"), or an apply that failed after writing
 * its numbering left the line (doc/stress-progress.md, items 12 and 14);
 * this replica's clients see that UID.  Its disk name joins cf->names, so
 * the commit records Dovecot's UID (valid: at or above the parent's
 * uidnext); mail takes it through the three-way merge against the
 * worktree, whose rules keep it or, when a peer's UIDs passed it, leave
 * the message unnumbered for the apply to number anew, as between
 * replicas.  Left alone, uidnext would pass the UID without recording
 * it, and this replica's clients would see another UID than the others'.
 */
static void take_renumbered(struct cfolder *cf, const struct uidlist *u,
			    size_t old, const char *dir, struct reccache *rc,
			    struct repo *r, const struct oid *tree,
			    uint32_t from)
{
	for (size_t i = 0; i < old && i < u->n; i++) {
		const struct uidlist_rec *x = &u->v[i];
		size_t klen = maildir_key_len(x->base);
		const struct imap_rec *rec;
		bool listed = false;
		char *disk;

		if (x->uid < from)
			continue;
		for (int l = 0; l < 2 && !listed; l++) {
			const struct strvec *v = l ? &cf->held : &cf->names;
			for (size_t j = 0; j < v->n && !listed; j++)
				listed = maildir_key_len(v->v[j]) == klen &&
					!strncmp(v->v[j], x->base, klen);
		}
		rec = listed ? NULL : wt_rc_get(rc, r, x->base, klen);
		if (!rec || rec->uid == x->uid ||
		    !tree_holds_here(r, tree, cf->folder, x->base, klen) ||
		    !(disk = disk_of(dir, x->base)))
			continue;
		log_info("'%s': Dovecot numbered '%s' %u, the tree %u; "
			 "recording Dovecot's", dir, disk, x->uid, rec->uid);
		strvec_push(&cf->names, disk);
		free(disk);
	}
}

/*
 * The part of dir's uidlist a commit of cf needs when the tree has the
 * folder's record tf with Dovecot's UIDVALIDITY: the records of the UIDs
 * the tree gives cf's files (a flag or keyword change keeps its UID),
 * those at or above tf's uidnext (what Dovecot numbered since, which
 * unseen_cap() looks at) and the last.  UIDLIST_WHOLE when a file is
 * not among them (it may hold another UID further up the file, which
 * drop_passed() must see), when drop_passed() will renumber one (the
 * uidlist is then rewritten, every record of it), or when the
 * UIDVALIDITY differs: read it whole.
 */
static int read_part(struct uidlist *u, struct reccache *rc, struct repo *r,
		     const char *dir, const struct cfolder *cf,
		     const struct imap_folder *tf)
{
	const struct strvec *lists[2] = { &cf->names, &cf->held };
	uint32_t *uids = xcalloc(cf->names.n + cf->held.n + 1, sizeof *uids);
	size_t n = 0;
	int ret;

	for (int l = 0; l < 2; l++)
		for (size_t i = 0; i < lists[l]->n; i++) {
			const char *name = lists[l]->v[i];
			const struct imap_rec *old =
				wt_rc_get(rc, r, name, maildir_key_len(name));
			if (old && old->uid)
				uids[n++] = old->uid;
		}
	ret = uidlist_read_some(u, dir, uids, n, tf->uidnext);
	free(uids);
	if (ret == 0 && u->uidvalidity != tf->uidvalidity)
		ret = UIDLIST_WHOLE;
	for (int l = 0; l < 2 && ret == 0; l++)
		for (size_t i = 0; i < lists[l]->n && ret == 0; i++) {
			const char *name = lists[l]->v[i];
			char *base = xstrndup(name, strcspn(name, ":"));
			const struct uidlist_rec *x = uidlist_find(u, base);
			const struct imap_rec *old =
				wt_rc_get(rc, r, name, maildir_key_len(name));
			/* one drop_passed() renumbers: that rewrites it whole */
			if (!x || (x->uid < tf->uidnext &&
				   (!old || old->uid != x->uid)))
				ret = UIDLIST_WHOLE;
			free(base);
		}
	if (ret == UIDLIST_WHOLE)
		uidlist_release(u);
	return ret;
}

/*
 * Read one folder's Dovecot files under the lock and set the records of
 * its changed files in rc; *f: the folder record the tree must have.
 */
static int commit_folder(struct repo *r_, const char *dir, struct reccache *rc,
			 const struct oid *wtree, struct cfolder *cf,
			 unsigned slot, struct imap_folder *f)
{
	struct dovecot_lock lock = DOVECOT_LOCK_INIT;
	struct uidlist u = UIDLIST_INIT;
	struct dovecot_keywords k;
	struct imap_recs recs = IMAP_RECS_INIT;
	struct imap_folder tf;
	bool fresh = false, have_tf, have_k = false, renum = false, part;
	size_t old;
	int r, ret = E_TEMP;

	have_tf = wt_folder_rec(&tf, r_, wtree, cf->folder) == 0;
	if ((r = dovecot_lock(&lock, dir, DV_LOCK_MS)) < 0) {
		if (r == E_TEMP)
			log_info("'%s' is locked by Dovecot; committing later",
				 dir);
		return E_TEMP;
	}
	r = have_tf ? read_part(&u, rc, r_, dir, cf, &tf) : UIDLIST_WHOLE;
	part = r == 0;
	if (r == UIDLIST_WHOLE)
		r = uidlist_read(&u, dir);
	if (r == E_NOTFOUND) {
		u.uidvalidity = have_tf ? tf.uidvalidity : (uint32_t)time(NULL);
		u.nextuid = 1;
		u.hdr = xstrdup("");
		fresh = true;
	} else if (r < 0) {
		goto done;
	}
	if (cf->held_rm && have_tf && tf.uidvalidity != u.uidvalidity) {
		/* made anew since hold_unpaired() looked: look again */
		log_info("'%s': Dovecot's UIDVALIDITY %u is new while removals "
			 "there wait; committing later", dir, u.uidvalidity);
		goto done;
	}
	if (have_tf && tf.uidvalidity == u.uidvalidity) {
		renum = drop_passed(&u, rc, r_, &tf, cf, dir);
		if (tf.uidnext > uidlist_next(&u))
			u.nextuid = tf.uidnext;
	}
	old = u.n;
	if (have_tf && tf.uidvalidity == u.uidvalidity)
		take_renumbered(cf, &u, old, dir, rc, r_, wtree, tf.uidnext);
	if (dovecot_keywords_read(&k, dir) < 0)
		goto done;
	strvec_sort(&cf->names);
	have_k = true;
	r = dovecot_records(&recs, f, &u, &k,
			    (const char *const *)cf->names.v, cf->names.n, slot);
	if (r < 0)
		goto done;
	/* a folder Dovecot never opened gets our UIDVALIDITY, which it
	 * takes as its own when it does (E1) */
	if (part && renum) {	/* read_part() rules it out */
		log_error("'%s': a renumbering on a partial uidlist", dir);
		goto done;
	}
	if ((fresh || renum || u.n > old) &&
	    (fresh || renum || !old ? uidlist_rewrite(dir, &u) :
	     uidlist_append(dir, &u, old)) < 0)
		goto done;
	if (renum)
		wt_dv_touch_cur(dir);
	for (size_t i = 0; i < recs.n; i++) {
		const struct imap_rec *x = &recs.v[i];
		unsigned s = maildir_shard(x->key, strlen(x->key));
		const struct imap_rec *old_rec = wt_rc_get(rc, r_, x->key,
							   strlen(x->key));
		struct strvec kw = STRVEC_INIT;

		for (size_t j = 0; j < x->nkw; j++)
			strvec_push(&kw, x->kw[j]);
		/*
		 * names with no letter here (4.6) stay as the tree has them,
		 * for a message that was here: one from another folder has
		 * the keywords Dovecot gave it letters for here (its MOVE
		 * does; a COPY whose source went looks the same, and has the
		 * keywords the copy had)
		 */
		for (size_t j = 0; old_rec && j < old_rec->nkw &&
				   !strmap_has(&cf->moved_in, x->key); j++)
			if (dovecot_keywords_index(&k, old_rec->kw[j], false) < 0)
				strvec_push(&kw, old_rec->kw[j]);
		imap_recs_set(&rc->s[s], x->key, x->uid,
			      (const char *const *)kw.v, kw.n);
		rc->changed[s] = true;
		strvec_clear(&kw);
	}
	/*
	 * uidnext stays at or below a UID held back, to be given still,
	 * but above every UID this commit records (a MOVE within the
	 * folder, say, held back its source while recording the copy's
	 * new UID): a held UID below it is numbered anew when committed
	 * (drop_passed())
	 */
	for (size_t i = 0; i < cf->held.n; i++) {
		char *base = xstrndup(cf->held.v[i], strcspn(cf->held.v[i], ":"));
		const struct uidlist_rec *h = uidlist_find(&u, base);
		if (h && h->uid < f->uidnext && h->uid > recs_top(&recs))
			f->uidnext = h->uid;
		free(base);
	}
	f->uidnext = unseen_cap(dir, &u, old, &recs,
				have_tf && tf.uidvalidity == f->uidvalidity ?
				tf.uidnext : 1, f->uidnext);
	if (have_tf && tf.uidvalidity == f->uidvalidity &&
	    tf.uidnext > f->uidnext)
		f->uidnext = tf.uidnext;
	ret = 0;
done:
	if (have_k)
		dovecot_keywords_release(&k);
	imap_recs_release(&recs);
	uidlist_release(&u);
	dovecot_unlock(&lock);
	return ret;
}

static struct cfolder *cfolder_get(struct cfolder **v, size_t *n,
				   size_t *alloc, const char *folder)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i].folder, folder))
			return &(*v)[i];
	xgrow((void **)v, alloc, *n + 1, sizeof **v);
	memset(&(*v)[*n], 0, sizeof **v);
	(*v)[*n].folder = xstrdup(folder);
	return &(*v)[(*n)++];
}

/* What a commit of format 2 records writes, for the worktree or the LDA. */
struct rcommit {
	struct repo *r;
	const char *maildir, *node;
	int uid_slot;
	const struct oid *tree;
	struct reccache rc;
	struct cfolder *cf;
	size_t ncf, acf;
};

/*
 * The records of every folder of rk->cf (under its lock), the folder
 * records that change, the gone folders' records removed, the changed
 * shards and our uidslots line, as updates of ups.
 */
static int rcommit_write(struct rcommit *rk, const struct strvec *gone,
			 struct update_list *ups)
{
	struct imap_slots slots = IMAP_SLOTS_INIT;
	bool add_slot = false;
	int slot = -1, ret = 0;

	if (rk->ncf && (slot = slot_of(rk->r, rk->node, rk->uid_slot, rk->tree,
				       &add_slot, &slots)) < 0)
		ret = E_TEMP;
	qsort(rk->cf, rk->ncf, sizeof *rk->cf, cfolder_cmp);
	for (size_t i = 0; i < rk->ncf && ret == 0; i++) {
		struct imap_folder f, old;
		char *dir = layout_folder_dir(rk->maildir, rk->cf[i].folder,
					      NULL);
		bool had = wt_folder_rec(&old, rk->r, rk->tree,
				      rk->cf[i].folder) == 0;
		ret = commit_folder(rk->r, dir, &rk->rc, rk->tree, &rk->cf[i],
				    (unsigned)slot, &f);
		free(dir);
		if (ret == 0 && (!had || old.uidvalidity != f.uidvalidity ||
				 old.uidnext != f.uidnext))
			ret = wt_folder_rec_update(ups, rk->r, rk->cf[i].folder, &f);
	}
	for (size_t i = 0; gone && i < gone->n && ret == 0; i++) {
		struct strbuf path = STRBUF_INIT;
		folder_rec_path(&path, gone->v[i]);
		update_list_add(ups, path.buf, NULL);
		strbuf_release(&path);
	}
	if (ret == 0)
		ret = wt_rc_write(&rk->rc, rk->r, ups);
	if (ret == 0 && add_slot)
		ret = wt_slots_update(ups, rk->r, &slots, slot, rk->node);
	for (size_t i = 0; i < rk->ncf; i++) {
		free(rk->cf[i].folder);
		strvec_clear(&rk->cf[i].names);
		strvec_clear(&rk->cf[i].held);
		strmap_clear(&rk->cf[i].moved_in);
	}
	free(rk->cf);
	rk->cf = NULL;
	rk->ncf = rk->acf = 0;
	imap_slots_release(&slots);
	wt_rc_release(&rk->rc);
	return ret;
}

int worktree_dovecot_records(struct update_list *ups, struct repo *r,
			     const struct oid *tree, const char *maildir,
			     const char *node, int uid_slot,
			     const char *const *folders,
			     const char *const *names, size_t n)
{
	struct rcommit rk = { .r = r, .maildir = maildir, .node = node,
			      .uid_slot = uid_slot, .tree = tree };

	wt_rc_init(&rk.rc, tree);
	for (size_t i = 0; i < n; i++) {
		struct cfolder *c = cfolder_get(&rk.cf, &rk.ncf, &rk.acf,
						folders[i]);
		strvec_push(&c->names, names[i]);
	}
	return rcommit_write(&rk, NULL, ups);
}

int worktree_dovecot_deliver(struct repo *r, const struct oid *tree,
			     const char *maildir, const char *folder,
			     const char *node, int uid_slot, const char *tmp,
			     const char *dest)
{
	char *dir = layout_folder_dir(maildir, folder, NULL);
	const char *base = strrchr(dest, '/') ? strrchr(dest, '/') + 1 : dest;
	struct dovecot_lock lock = DOVECOT_LOCK_INIT;
	struct uidlist u = UIDLIST_INIT;
	struct imap_slots slots = IMAP_SLOTS_INIT;
	struct imap_folder tf;
	bool fresh = false, add;
	int slot, ret = E_TEMP, rr;
	size_t old;
	uint32_t uid;

	slot = slot_of(r, node, uid_slot, tree, &add, &slots);
	imap_slots_release(&slots);
	if (slot < 0) {
		free(dir);
		return E_FAIL;
	}
	if (wt_folder_rec(&tf, r, tree, folder) < 0)
		tf.uidvalidity = 0, tf.uidnext = 1;
	if ((rr = dovecot_lock(&lock, dir, DV_LOCK_MS)) < 0) {
		free(dir);
		return rr == E_TEMP ? E_TEMP : E_FAIL;
	}
	rr = uidlist_read(&u, dir);
	if (rr == E_NOTFOUND) {
		u.uidvalidity = tf.uidvalidity ? tf.uidvalidity :
				(uint32_t)time(NULL);
		u.nextuid = 1;
		u.hdr = xstrdup("");
		fresh = true;
	} else if (rr < 0) {
		goto done;
	}
	old = u.n;
	uid = uidlist_next(&u);
	if (tf.uidvalidity == u.uidvalidity && tf.uidnext > uid)
		uid = tf.uidnext;
	uid = imap_uid_alloc(uid, (unsigned)slot, 1);
	if (!uid) {
		ret = log_error("%s: no UID left in slot %d", dir, slot);
		goto done;
	}
	/* the record first: Dovecot, waiting for the lock, never numbers it */
	if (uidlist_add(&u, uid, base, "") < 0 ||
	    (fresh || !old ? uidlist_rewrite(dir, &u) :
	     uidlist_append(dir, &u, old)) < 0)
		goto done;
	if (rename(tmp, dest) < 0) {
		ret = log_error_errno("rename '%s'", tmp);
		goto done;
	}
	ret = 0;
done:
	uidlist_release(&u);
	dovecot_unlock(&lock);
	free(dir);
	return ret < 0 && ret != E_TEMP ? E_FAIL : ret;
}

/*
 * A folder the disk changed in with nothing of it to commit (a file
 * Dovecot saved and expunged between two looks): Dovecot may have given
 * a UID there that the tree's uidnext has not passed, and a peer's
 * Dovecot would give it again to another message.  Its record is read
 * too, so uidnext follows Dovecot's next UID (unseen_cap() still keeps
 * it below a file not taken in yet).  Only folders the tree holds.
 */
static void touched_folder(struct rcommit *rk, struct worktree *wt,
			   struct scan *sc, const char *folder, size_t len)
{
	struct imap_folder tf;
	char *f = xstrndup(folder, len);

	for (size_t i = 0; i < rk->ncf; i++)
		if (!strcmp(rk->cf[i].folder, f))
			goto done;
	if (!strvec_has(&sc->mk_rm, f) && wt_folder_on_disk(wt, f) &&
	    wt_folder_rec(&tf, wt->r, sc->wtree, f) == 0)
		cfolder_get(&rk->cf, &rk->ncf, &rk->acf, f);
done:
	free(f);
}

int wt_dv_commit(struct worktree *wt, struct scan *sc, const struct pair *p,
		 size_t np, const struct strvec *names, struct update_list *ups)
{
	struct rcommit rk = { .r = wt->r, .maildir = wt->maildir,
			      .node = wt->node, .uid_slot = wt->uid_slot,
			      .tree = sc->wtree };
	int ret;

	/* the shards the scan read are the worktree's too: take them over */
	if (sc->dv) {
		rk.rc = sc->dv->wrec;
		wt_rc_init(&sc->dv->wrec, sc->wtree);
	} else {
		wt_rc_init(&rk.rc, sc->wtree);
	}
	for (size_t i = 0; i < np; i++) {
		const struct ent *any = p[i].to ? p[i].to : p[i].from;
		if (p[i].to) {
			struct cfolder *c = cfolder_get(&rk.cf, &rk.ncf, &rk.acf,
							p[i].to->folder);
			strvec_push(&c->names, wt_ent_disk(p[i].to));
			if (p[i].from && strcmp(p[i].from->folder, p[i].to->folder)) {
				char *k = xstrndup(p[i].to->name, p[i].to->klen);
				strmap_put(&c->moved_in, k, 1);
				free(k);
			}
		} else {
			char k[MAILDIR_NAME_MAX + 1];
			unsigned s = maildir_shard(any->name, any->klen);
			memcpy(k, any->name, any->klen);
			k[any->klen] = '\0';
			imap_recs_remove(wt_rc_shard(&rk.rc, wt->r, s), k);
			rk.rc.changed[s] = true;
		}
	}
	for (size_t i = 0; i < sc->mk_add.n; i++)
		cfolder_get(&rk.cf, &rk.ncf, &rk.acf, sc->mk_add.v[i]);
	/* "<folder>/<sub>/<disk name>" held back (worktree_moves.c) */
	for (size_t i = 0; i < sc->later.n; i++) {
		const char *l = sc->later.v[i], *s1 = strchr(l, '/');
		const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
		for (size_t j = 0; s2 && j < rk.ncf; j++)
			if (strlen(rk.cf[j].folder) == (size_t)(s1 - l) &&
			    !strncmp(rk.cf[j].folder, l, s1 - l))
				strvec_push(&rk.cf[j].held, s2 + 1);
	}
	/* folders an apply left: Dovecot's next UID goes into the tree */
	for (size_t i = 0; i < wt->dv_stale.n; i++)
		if (!strvec_has(&sc->mk_rm, wt->dv_stale.v[i]) &&
		    wt_folder_on_disk(wt, wt->dv_stale.v[i]))
			cfolder_get(&rk.cf, &rk.ncf, &rk.acf, wt->dv_stale.v[i]);
	/* folders looked at whole, and those of the names the disk named */
	for (size_t i = 0; i < sc->scanned.cap; i++)
		if (sc->scanned.v[i].key && !sc->scanned.v[i].value)
			touched_folder(&rk, wt, sc, sc->scanned.v[i].key,
				       strlen(sc->scanned.v[i].key));
	for (size_t i = 0; names && i < names->n; i++)
		if (strchr(names->v[i], '/'))
			touched_folder(&rk, wt, sc, names->v[i],
				       strcspn(names->v[i], "/"));
	for (size_t i = 0; i < rk.ncf; i++)
		rk.cf[i].held_rm = strvec_has(&sc->held_rm, rk.cf[i].folder);
	ret = rcommit_write(&rk, &sc->mk_rm, ups);
	if (ret == 0)
		strvec_clear(&wt->dv_stale);
	return ret;
}

/* See worktree_p.h. */
bool wt_dv_reborn(struct worktree *wt, struct scan *sc, const char *folder)
{
	struct imap_folder tf;
	struct uidlist u = UIDLIST_INIT;
	char *dir;
	bool reborn = false;
	int r;

	if (wt_folder_rec(&tf, wt->r, sc->wtree, folder) < 0)
		return false;
	dir = layout_folder_dir(wt->maildir, folder, NULL);
	r = uidlist_read_some(&u, dir, NULL, 0, UINT32_MAX);
	if (r == UIDLIST_WHOLE)
		r = uidlist_read(&u, dir);
	if (r == 0) {
		reborn = u.uidvalidity != tf.uidvalidity;
		uidlist_release(&u);
	}
	free(dir);
	return reborn;
}
