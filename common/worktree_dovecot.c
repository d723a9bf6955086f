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
 *  - the apply side: per folder under the lock, the staleness rule
 *    (doc/imap-progress.md, item 4: stale when the uidlist's next UID is
 *    above the worktree's uidnext or above a UID the apply adds), names
 *    to letters, dovecot-keywords and dovecot-uidlist written before the
 *    files appear, unnumbered records (UID 0) numbered from our slot
 *    above both uidnexts and committed as a local commit.
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

#define DV_LOCK_MS 10000	/* waiting for Dovecot's uidlist lock */

/* --- trees ----------------------------------------------------------------- */

bool wt_dv_tree_is_imap(struct repo *r, const struct oid *tree)
{
	struct strbuf b = STRBUF_INIT;
	struct oid id;
	bool yes;

	yes = repo_tree_lookup(&id, r, tree, FORMAT_PATH) == 0 &&
	      repo_blob_read(&b, r, &id) == 0 &&
	      !strcmp(b.buf, "maildag 2\n");
	strbuf_release(&b);
	return yes;
}

/* A tree's message records, read a shard at a time. */
struct reccache {
	const struct oid *tree;
	struct imap_recs s[256];
	bool loaded[256];
	bool changed[256];
};

static void rc_init(struct reccache *c, const struct oid *tree)
{
	memset(c, 0, sizeof *c);
	c->tree = tree;
}

static void rc_release(struct reccache *c)
{
	for (int i = 0; i < 256; i++)
		imap_recs_release(&c->s[i]);
}

static struct imap_recs *rc_shard(struct reccache *c, struct repo *r,
				  unsigned s)
{
	struct strbuf path = STRBUF_INIT, b = STRBUF_INIT;
	struct oid id;
	char xx[3];

	if (c->loaded[s])
		return &c->s[s];
	c->loaded[s] = true;
	imap_recs_shard_path(&path, s);
	snprintf(xx, sizeof xx, "%02x", s);
	if (c->tree && repo_tree_lookup(&id, r, c->tree, path.buf) == 0 &&
	    (repo_blob_read(&b, r, &id) < 0 ||
	     imap_recs_parse(&c->s[s], b.buf, b.len, xx, NULL) < 0))
		log_warn("ignoring the records of %s", path.buf);
	strbuf_release(&path);
	strbuf_release(&b);
	return &c->s[s];
}

static const struct imap_rec *rc_get(struct reccache *c, struct repo *r,
				     const char *key, size_t klen)
{
	char k[MAILDIR_NAME_MAX + 1];

	if (klen > MAILDIR_NAME_MAX)
		return NULL;
	memcpy(k, key, klen);
	k[klen] = '\0';
	return imap_recs_find(rc_shard(c, r, maildir_shard(key, klen)), k);
}

/* The changed shards as updates of ups. */
static int rc_write(struct reccache *c, struct repo *r,
		    struct update_list *ups)
{
	for (unsigned s = 0; s < 256; s++) {
		struct strbuf path = STRBUF_INIT, b = STRBUF_INIT;
		struct oid id;
		int ret = 0;

		if (!c->changed[s])
			continue;
		imap_recs_shard_path(&path, s);
		imap_recs_format(&b, &c->s[s]);
		if (!b.len)
			update_list_add(ups, path.buf, NULL);
		else if ((ret = repo_blob_from_buffer(&id, r, b.buf, b.len)) == 0)
			update_list_add(ups, path.buf, &id);
		strbuf_release(&path);
		strbuf_release(&b);
		if (ret < 0)
			return E_TEMP;
	}
	return 0;
}

static void folder_rec_path(struct strbuf *out, const char *folder)
{
	if (*folder)
		strbuf_addf(out, "%s/", folder);
	strbuf_addstr(out, IMAPREC_FOLDER);
}

/* A folder's record in tree: 0, or E_NOTFOUND. */
static int folder_rec(struct imap_folder *out, struct repo *r,
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

static int folder_rec_update(struct update_list *ups, struct repo *r,
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

static int our_slot(struct worktree *wt, const struct oid *tree, bool *add,
		    struct imap_slots *slots)
{
	return slot_of(wt->r, wt->node, wt->uid_slot, tree, add, slots);
}

/* The update of uidslots with (slot, node) added. */
static int slots_update(struct update_list *ups, struct repo *r,
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

void wt_dv_tree_name(struct strbuf *out, const char *disk)
{
	const char *colon = strchr(disk, ':');

	if (!colon || strncmp(colon, ":2,", 3)) {
		strbuf_addstr(out, disk);
		return;
	}
	strbuf_add(out, disk, (size_t)(colon + 3 - disk));
	for (const char *p = colon + 3; *p; p++)
		if (*p < 'a' || *p > 'z')
			strbuf_addch(out, *p);
}

void worktree_dovecot_tree_name(struct strbuf *out, const char *disk)
{
	wt_dv_tree_name(out, disk);
}

/* The letters 'a'-'z' of a disk name, as a bit set. */
static uint32_t letter_bits(const char *disk)
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
		rc_init(&sc->dv->wrec, sc->wtree);
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
	rc_release(&d->wrec);
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
	const struct imap_rec *rec = rc_get(&dvscan_of(sc)->wrec, sc->r, dname,
					    maildir_key_len(dname));
	const char *colon = strchr(dname, ':');
	struct strvec names = STRVEC_INIT;
	bool differ;
	size_t m = 0;

	if (colon && !strncmp(colon, ":2,", 3))
		dovecot_keywords_names(&names, k, colon + 3);
	differ = names.n != (rec ? rec->nkw : 0);
	for (size_t i = 0; i < names.n && !differ; i++) {
		bool found = false;
		for (size_t j = 0; j < rec->nkw && !found; j++)
			found = !imap_keyword_cmp(names.v[i], rec->kw[j]);
		m += found;
		differ = !found;
	}
	strvec_clear(&names);
	return differ || (rec && m != rec->nkw);
}

/* The file in dir whose key is tname's, or NULL. */
static char *find_by_key(const char *dir, const char *tname)
{
	size_t klen = maildir_key_len(tname);
	struct strbuf want = STRBUF_INIT, have = STRBUF_INIT;
	struct dirent *de;
	char *found = NULL;
	DIR *dh = opendir(dir);

	wt_dv_tree_name(&want, tname);
	while (dh && !found && (de = readdir(dh))) {
		if (strncmp(de->d_name, tname, klen) ||
		    (de->d_name[klen] && de->d_name[klen] != ':' &&
		     de->d_name[klen] != ','))
			continue;
		strbuf_reset(&have);
		wt_dv_tree_name(&have, de->d_name);
		if (!strcmp(have.buf, want.buf))
			found = xstrdup(de->d_name);
	}
	if (dh)
		closedir(dh);
	strbuf_release(&want);
	strbuf_release(&have);
	return found;
}

char *wt_dv_disk_name(struct worktree *wt, struct scan *sc,
		      const char *folder, const char *sub, const char *tname)
{
	struct dovecot_keywords *k = scan_keywords(wt, sc, folder);
	const struct imap_rec *rec = rc_get(&dvscan_of(sc)->wrec, sc->r, tname,
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
		found = find_by_key(dir, tname);
	strbuf_release(&letters);
	free(dir);
	return found;
}

/* --- the commit side --------------------------------------------------------- */

/* One folder's changes at a commit: the disk names of what it now holds. */
struct cfolder {
	char *folder;
	struct strvec names;	/* disk names of the changed files */
};

static int cfolder_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cfolder *)a)->folder,
		      ((const struct cfolder *)b)->folder);
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
	bool fresh = false, have_tf;
	size_t old;
	int r, ret = E_TEMP;

	have_tf = folder_rec(&tf, r_, wtree, cf->folder) == 0;
	if ((r = dovecot_lock(&lock, dir, DV_LOCK_MS)) < 0) {
		if (r == E_TEMP)
			log_info("'%s' is locked by Dovecot; committing later",
				 dir);
		return E_TEMP;
	}
	r = uidlist_read(&u, dir);
	if (r == E_NOTFOUND) {
		u.uidvalidity = have_tf ? tf.uidvalidity : (uint32_t)time(NULL);
		u.nextuid = 1;
		u.hdr = xstrdup("");
		fresh = true;
	} else if (r < 0) {
		goto done;
	}
	if (have_tf && tf.uidvalidity == u.uidvalidity &&
	    tf.uidnext > u.nextuid)
		u.nextuid = tf.uidnext;
	old = u.n;
	if (dovecot_keywords_read(&k, dir) < 0)
		goto done;
	strvec_sort(&cf->names);
	r = dovecot_records(&recs, f, &u, &k,
			    (const char *const *)cf->names.v, cf->names.n, slot);
	dovecot_keywords_release(&k);
	if (r < 0)
		goto done;
	if (u.n > old && (fresh || !old ? uidlist_rewrite(dir, &u) :
			  uidlist_append(dir, &u, old)) < 0)
		goto done;
	for (size_t i = 0; i < recs.n; i++) {
		const struct imap_rec *x = &recs.v[i];
		unsigned s = maildir_shard(x->key, strlen(x->key));
		rc_shard(rc, r_, s);
		imap_recs_set(&rc->s[s], x->key, x->uid,
			      (const char *const *)x->kw, x->nkw);
		rc->changed[s] = true;
	}
	if (have_tf && tf.uidvalidity == f->uidvalidity &&
	    tf.uidnext > f->uidnext)
		f->uidnext = tf.uidnext;
	ret = 0;
done:
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
		bool had = folder_rec(&old, rk->r, rk->tree,
				      rk->cf[i].folder) == 0;
		ret = commit_folder(rk->r, dir, &rk->rc, rk->tree, &rk->cf[i],
				    (unsigned)slot, &f);
		free(dir);
		if (ret == 0 && (!had || old.uidvalidity != f.uidvalidity ||
				 old.uidnext != f.uidnext))
			ret = folder_rec_update(ups, rk->r, rk->cf[i].folder, &f);
	}
	for (size_t i = 0; gone && i < gone->n && ret == 0; i++) {
		struct strbuf path = STRBUF_INIT;
		folder_rec_path(&path, gone->v[i]);
		update_list_add(ups, path.buf, NULL);
		strbuf_release(&path);
	}
	if (ret == 0)
		ret = rc_write(&rk->rc, rk->r, ups);
	if (ret == 0 && add_slot)
		ret = slots_update(ups, rk->r, &slots, slot, rk->node);
	for (size_t i = 0; i < rk->ncf; i++) {
		free(rk->cf[i].folder);
		strvec_clear(&rk->cf[i].names);
	}
	free(rk->cf);
	rk->cf = NULL;
	rk->ncf = rk->acf = 0;
	imap_slots_release(&slots);
	rc_release(&rk->rc);
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

	rc_init(&rk.rc, tree);
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
	if (folder_rec(&tf, r, tree, folder) < 0)
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

int wt_dv_commit(struct worktree *wt, struct scan *sc, const struct pair *p,
		 size_t np, struct update_list *ups)
{
	struct rcommit rk = { .r = wt->r, .maildir = wt->maildir,
			      .node = wt->node, .uid_slot = wt->uid_slot,
			      .tree = sc->wtree };
	int ret;

	rc_init(&rk.rc, sc->wtree);
	for (size_t i = 0; i < np; i++) {
		const struct ent *any = p[i].to ? p[i].to : p[i].from;
		if (p[i].to) {
			struct cfolder *c = cfolder_get(&rk.cf, &rk.ncf, &rk.acf,
							p[i].to->folder);
			strvec_push(&c->names, wt_ent_disk(p[i].to));
		} else {
			char k[MAILDIR_NAME_MAX + 1];
			unsigned s = maildir_shard(any->name, any->klen);
			memcpy(k, any->name, any->klen);
			k[any->klen] = '\0';
			imap_recs_remove(rc_shard(&rk.rc, wt->r, s), k);
			rk.rc.changed[s] = true;
		}
	}
	for (size_t i = 0; i < sc->mk_add.n; i++)
		cfolder_get(&rk.cf, &rk.ncf, &rk.acf, sc->mk_add.v[i]);
	/* folders an apply left: Dovecot's next UID goes into the tree */
	for (size_t i = 0; i < wt->dv_stale.n; i++)
		if (!strvec_has(&sc->mk_rm, wt->dv_stale.v[i]) &&
		    wt_folder_on_disk(wt, wt->dv_stale.v[i]))
			cfolder_get(&rk.cf, &rk.ncf, &rk.acf, wt->dv_stale.v[i]);
	ret = rcommit_write(&rk, &sc->mk_rm, ups);
	if (ret == 0)
		strvec_clear(&wt->dv_stale);
	return ret;
}

/* --- the apply side ---------------------------------------------------------- */

int wt_dv_plan_records(struct worktree *wt, const struct dchv *d,
		       const struct oid *wtree, const struct oid *mtree,
		       struct entv *olds, struct entv *news)
{
	struct reccache wr, mr;
	struct strmap moving = STRMAP_INIT;
	int ret = 0;

	rc_init(&wr, wtree);
	rc_init(&mr, mtree);
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
		a = rc_shard(&wr, wt->r, s);
		b = rc_shard(&mr, wt->r, s);
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
	rc_release(&wr);
	rc_release(&mr);
	return ret;
}

/* One folder the apply touches, locked for the whole apply. */
struct afolder {
	char *folder, *dir;
	struct dovecot_lock lock;
	struct uidlist u;
	struct dovecot_keywords k;
	bool fresh, stale, rewrite, kw_changed;
	size_t old_n;
	struct imap_folder mf, wf;	/* mail's and the worktree's records */
	bool have_mf, have_wf;
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

/* Lock and read one folder's files; stale ones are left at once. */
static int afolder_open(struct dvapply *dv, struct afolder *f)
{
	struct worktree *wt = dv->wt;
	int r;

	f->have_mf = folder_rec(&f->mf, wt->r, dv->mtree, f->folder) == 0;
	f->have_wf = folder_rec(&f->wf, wt->r, dv->wtree, f->folder) == 0;
	if (!is_dir(f->dir) && mkdir_p(f->dir, 0700) < 0)
		return E_TEMP;
	if ((r = dovecot_lock(&f->lock, f->dir, DV_LOCK_MS)) < 0) {
		if (r == E_TEMP)
			log_info("'%s' is locked by Dovecot; applying later",
				 f->dir);
		return E_TEMP;
	}
	r = uidlist_read(&f->u, f->dir);
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
	if (f->have_mf && f->u.uidvalidity != f->mf.uidvalidity) {
		/* not carried yet (doc/imap-progress.md): leave the folder */
		log_warn("'%s': dovecot-uidlist has UIDVALIDITY %u, the tree "
			 "%u; not applied there", f->dir, f->u.uidvalidity,
			 f->mf.uidvalidity);
		f->stale = true;
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
			used |= letter_bits(de->d_name);
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
		x = rc_get(&dv->mr, dv->wt->r, ops[i].to->name,
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

/* A UID and base name the uidlist must get. */
struct uidadd {
	uint32_t uid;
	char *base;
	char *key;		/* unnumbered: the record's key */
};

static int uidadd_cmp(const void *a, const void *b)
{
	const struct uidadd *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return strcmp(x->base, y->base);
}

/* Remove the record of base from u (its UID changes): was there one? */
static bool uidlist_drop(struct uidlist *u, const char *base)
{
	for (size_t i = 0; i < u->n; i++)
		if (!strcmp(u->v[i].base, base)) {
			free(u->v[i].ext);
			free(u->v[i].base);
			memmove(&u->v[i], &u->v[i + 1],
				(u->n - i - 1) * sizeof *u->v);
			u->n--;
			return true;
		}
	return false;
}

/*
 * Give the ops of f their disk names and f's uidlist its records: UIDs
 * the tree gives, then the unnumbered ones from our slot.  Stale (and
 * nothing written) when a UID the apply adds is below Dovecot's next.
 */
static int afolder_plan(struct dvapply *dv, struct afolder *f, struct op *ops,
			size_t nops)
{
	struct uidadd *adds = NULL;
	size_t nadd = 0, aadd = 0, nnew = 0;
	uint32_t next = uidlist_next(&f->u), from;
	int ret = 0;

	(void)nnew;

	maybe_gc(dv, f, ops, nops);
	for (size_t i = 0; i < nops; i++) {
		struct ent *t = ops[i].to, *o = ops[i].from;
		const struct imap_rec *x;
		if (o && !strcmp(o->folder, f->folder)) {
			x = rc_get(&dv->wr, dv->wt->r, o->name, o->klen);
			free(o->dname);
			o->dname = with_letters(f, o->name, x ? x->kw : NULL,
						x ? x->nkw : 0, false);
		}
		if (!t || strcmp(t->folder, f->folder))
			continue;
		x = rc_get(&dv->mr, dv->wt->r, t->name, t->klen);
		free(t->dname);
		t->dname = with_letters(f, t->name, x ? x->kw : NULL,
					x ? x->nkw : 0, true);
		{
			char *base = xstrndup(t->name, strcspn(t->name, ":"));
			const struct uidlist_rec *ur = uidlist_find(&f->u, base);
			struct uidadd *a;
			if (x && x->uid && ur && ur->uid == x->uid) {
				free(base);
				continue;
			}
			if (x && x->uid && ur)
				f->rewrite = true;	/* renumbered */
			xgrow((void **)&adds, &aadd, nadd + 1, sizeof *adds);
			a = &adds[nadd++];
			a->uid = x ? x->uid : 0;
			a->base = base;
			a->key = xstrndup(t->name, t->klen);
			if (a->uid && a->uid < next) {
				/* Dovecot went past it: commit, merge again */
				f->stale = true;
				if (!strvec_has(&dv->wt->dv_stale, f->folder))
					strvec_push(&dv->wt->dv_stale, f->folder);
			}
		}
	}
	if (f->stale)
		goto done;
	qsort(adds, nadd, sizeof *adds, uidadd_cmp);
	for (size_t i = 0; i < nadd; i++)
		if (adds[i].uid && uidlist_drop(&f->u, adds[i].base))
			f->rewrite = true;
	for (size_t i = 0; i < nadd && ret == 0; i++) {
		if (!adds[i].uid) {
			nnew++;
			continue;
		}
		ret = uidlist_add(&f->u, adds[i].uid, adds[i].base, "");
	}
	/* unnumbered: from our slot, above both uidnexts and Dovecot's */
	from = uidlist_next(&f->u);
	if (f->have_mf && f->mf.uidnext > from)
		from = f->mf.uidnext;
	if (f->have_wf && f->wf.uidnext > from)
		from = f->wf.uidnext;
	for (size_t i = 0; i < nadd && ret == 0; i++) {
		uint32_t uid;
		const struct imap_rec *x;
		if (adds[i].uid)
			continue;
		if (dv->slot < 0 && (dv->slot = our_slot(dv->wt, dv->mtree,
					&dv->add_slot, &dv->slots)) < 0) {
			ret = E_TEMP;
			break;
		}
		uid = imap_uid_alloc(from, (unsigned)dv->slot, 1);
		if (!uid) {
			ret = log_error("%s: no UID left in slot %d", f->dir,
					dv->slot);
			break;
		}
		if (uidlist_drop(&f->u, adds[i].base))
			f->rewrite = true;
		ret = uidlist_add(&f->u, uid, adds[i].base, "");
		from = uid + 1;
		x = rc_get(&dv->mr, dv->wt->r, adds[i].key, strlen(adds[i].key));
		imap_recs_set(&dv->numbered, adds[i].key, uid,
			      x ? (const char *const *)x->kw : NULL,
			      x ? x->nkw : 0);
		strvec_push(&dv->nfolders, f->folder);
		xgrow((void **)&dv->nuid, &dv->anuid, dv->nnuid + 1,
		      sizeof *dv->nuid);
		dv->nuid[dv->nnuid++] = uid;
	}
	if (f->have_mf && f->mf.uidnext > f->u.nextuid)
		f->u.nextuid = f->mf.uidnext;	/* N is the tree's uidnext */
	if (ret == 0 && f->kw_changed)
		ret = dovecot_keywords_write(f->dir, &f->k);
	if (ret == 0 && (f->fresh || f->rewrite || !f->old_n ?
			 uidlist_rewrite(f->dir, &f->u) :
			 f->u.n > f->old_n ?
			 uidlist_append(f->dir, &f->u, f->old_n) : 0) < 0)
		ret = E_TEMP;
done:
	for (size_t i = 0; i < nadd; i++) {
		free(adds[i].base);
		free(adds[i].key);
	}
	free(adds);
	return ret;
}

int wt_dv_apply_begin(struct dvapply **out, struct worktree *wt,
		      const struct oid *wtree, const struct oid *mtree,
		      struct op *ops, size_t nops)
{
	struct dvapply *dv = xcalloc(1, sizeof *dv);
	int ret = 0;

	*out = dv;
	dv->wt = wt;
	dv->wtree = wtree;
	dv->mtree = mtree;
	dv->slot = -1;
	rc_init(&dv->wr, wtree);
	rc_init(&dv->mr, mtree);
	for (size_t i = 0; i < nops; i++) {
		if (ops[i].from)
			afolder_add(dv, ops[i].from->folder);
		if (ops[i].to)
			afolder_add(dv, ops[i].to->folder);
	}
	/* one order for every taker of several locks */
	qsort(dv->f, dv->nf, sizeof *dv->f, afolder_cmp);
	for (size_t i = 0; i < dv->nf && ret == 0; i++)
		ret = afolder_open(dv, &dv->f[i]);
	for (size_t i = 0; i < dv->nf && ret == 0; i++)
		if (!dv->f[i].stale)
			ret = afolder_plan(dv, &dv->f[i], ops, nops);
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
	return ret;
}

/* Touch cur/ of folders whose uidlist alone changed (Dovecot looks only
 * at cur/ and new/, 1.3), release every lock. */
static void dv_release(struct dvapply *dv)
{
	for (size_t i = 0; i < dv->nf; i++) {
		struct afolder *f = &dv->f[i];
		if (f->rewrite && !f->stale) {
			char *cur = wt_disk_dir(dv->wt, f->folder, "cur");
			if (utimensat(AT_FDCWD, cur, NULL, 0) < 0 &&
			    errno != ENOENT)
				log_warn_errno("touch '%s'", cur);
			free(cur);
		}
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

	rc_init(&rc, tree);
	for (size_t i = 0; i < dv->numbered.n; i++) {
		const struct imap_rec *x = &dv->numbered.v[i];
		unsigned s = maildir_shard(x->key, strlen(x->key));
		rc_shard(&rc, dv->wt->r, s);
		imap_recs_set(&rc.s[s], x->key, x->uid,
			      (const char *const *)x->kw, x->nkw);
		rc.changed[s] = true;
	}
	ret = rc_write(&rc, dv->wt->r, ups);
	for (size_t i = 0; i < dv->nfolders.n && ret == 0; i++) {
		const char *folder = dv->nfolders.v[i];
		struct imap_folder f;
		uint32_t top = 0;
		if (strvec_has(&done, folder))
			continue;
		strvec_push(&done, folder);
		if (folder_rec(&f, dv->wt->r, tree, folder) < 0)
			continue;
		for (size_t j = 0; j < dv->nnuid; j++)
			if (!strcmp(dv->nfolders.v[j], folder) &&
			    dv->nuid[j] > top)
				top = dv->nuid[j];
		if (top >= f.uidnext) {
			f.uidnext = top + 1;
			ret = folder_rec_update(ups, dv->wt->r, folder, &f);
		}
	}
	if (ret == 0 && dv->add_slot)
		ret = slots_update(ups, dv->wt->r, &dv->slots, dv->slot,
				   dv->wt->node);
	strvec_clear(&done);
	rc_release(&rc);
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
	rc_release(&dv->wr);
	rc_release(&dv->mr);
	imap_recs_release(&dv->numbered);
	strvec_clear(&dv->nfolders);
	free(dv->nuid);
	imap_slots_release(&dv->slots);
	free(dv);
	return ret;
}
