/*
 * upgrade_adopt: the upgrade adopting a format 2 peer's UIDs
 * (doc/imap-identity.md 4.9): for a folder the peer has, its UIDVALIDITY,
 * its UID for every message it has in that folder, and UIDs at or above
 * its uidnext (in this replica's slot) for the others; keyword names stay
 * this replica's.  Dovecot is told the clean way (4.5, E6b): under its
 * lock the folder's dovecot-uidlist is rewritten with the new
 * UIDVALIDITY and UIDs, and the folder's dovecot.index files are
 * removed, so Dovecot starts that folder afresh (open sessions get BYE)
 * instead of seeing a UIDVALIDITY change under an index (E6).
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dovecot.h"
#include "format.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "repo.h"
#include "strvec.h"
#include "upgrade_p.h"
#include "xalloc.h"

/* Dovecot's index files of a folder, removed when its UIDs change. */
static const char *const index_files[] = {
	"dovecot.index", "dovecot.index.log", "dovecot.index.log.2",
	"dovecot.index.cache",
};

struct peer_walk {
	struct upgrade *u;
	struct strmap uids;	/* key -> UID, every record of the peer */
	struct peer_folder *pf;	/* by our folder index */
};

static int peer_message(const char *path, const char *folder, const char *sub,
			const char *name, const struct oid *blob, void *data)
{
	struct peer_walk *w = data;
	char *key = xstrndup(name, maildir_key_len(name));
	size_t at, uid;

	(void)path;
	(void)sub;
	(void)blob;
	if (strmap_get(&w->u->index, folder, &at) && w->pf[at].have &&
	    strmap_get(&w->uids, key, &uid) && uid)
		strmap_put(&w->pf[at].uid, key, uid);
	free(key);
	return 0;
}

/* The peer's records of every shard into w->uids. */
static void peer_records(struct peer_walk *w, struct repo *r,
			 const struct oid *tree)
{
	struct strbuf path = STRBUF_INIT, b = STRBUF_INIT;

	for (unsigned xx = 0; xx < 256; xx++) {
		struct imap_recs recs = IMAP_RECS_INIT;
		struct oid id;

		strbuf_reset(&path);
		imap_recs_shard_path(&path, xx);
		strbuf_reset(&b);
		if (repo_tree_lookup(&id, r, tree, path.buf) < 0 ||
		    repo_blob_read(&b, r, &id) < 0 ||
		    imap_recs_parse(&recs, b.buf, b.len, NULL, NULL) < 0)
			continue;
		for (size_t i = 0; i < recs.n; i++)
			strmap_put(&w->uids, recs.v[i].key, recs.v[i].uid);
		imap_recs_release(&recs);
	}
	strbuf_release(&path);
	strbuf_release(&b);
}

int upgrade_peer_folders(struct peer_folder **out, struct upgrade *u,
			 struct repo *r, const struct oid *peer_tree)
{
	struct peer_walk w = { u, STRMAP_INIT, NULL };
	struct strbuf path = STRBUF_INIT, b = STRBUF_INIT;
	int ret;

	w.pf = xcalloc(u->nf, sizeof *w.pf);
	for (size_t i = 0; i < u->nf; i++) {
		struct oid id;

		strbuf_reset(&path);
		strbuf_addf(&path, "%s%s" IMAPREC_FOLDER, u->f[i].name,
			    *u->f[i].name ? "/" : "");
		strbuf_reset(&b);
		w.pf[i].have = repo_tree_lookup(&id, r, peer_tree, path.buf) == 0 &&
			       repo_blob_read(&b, r, &id) == 0 &&
			       imap_folder_parse(&w.pf[i].f, b.buf, b.len,
						 NULL) == 0;
	}
	peer_records(&w, r, peer_tree);
	ret = format_foreach_message(r, peer_tree, peer_message, &w);
	strmap_clear(&w.uids);
	strbuf_release(&path);
	strbuf_release(&b);
	*out = w.pf;
	return ret < 0 ? ret : 0;
}

void upgrade_peer_folders_free(struct peer_folder *pf, size_t n)
{
	for (size_t i = 0; pf && i < n; i++)
		strmap_clear(&pf[i].uid);
	free(pf);
}

/* The base name of a file name: everything before ':' (1.1). */
static char *base_of(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon ? xstrndup(name, (size_t)(colon - name)) : xstrdup(name);
}

static int rec_cmp(const void *a, const void *b)
{
	const struct uidlist_rec *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/*
 * The new uidlist of folder f (its files, sorted) under the peer's
 * UIDVALIDITY, and its records into u->shard[].  0 or E_FAIL.
 */
static int adopt_records(struct upgrade *u, struct ufolder *f,
			 const struct peer_folder *pf, const struct uidlist *old,
			 const struct dovecot_keywords *kw, struct uidlist *nu,
			 unsigned slot, struct upgrade_stats *st)
{
	uint32_t next = pf->f.uidnext, top = 0;

	nu->uidvalidity = pf->f.uidvalidity;
	nu->hdr = xstrdup(old->hdr ? old->hdr : "");
	for (size_t i = 0; i < f->files.n; i++) {
		const char *name = f->files.v[i];
		struct maildir_name mn;
		struct strvec names = STRVEC_INIT, ok = STRVEC_INIT;
		char *base = base_of(name), *key;
		const struct uidlist_rec *orec = uidlist_find(old, base);
		size_t uid;

		if (maildir_name_parse(&mn, name) < 0) {
			free(base);
			return log_error("'%s' is not a Maildir name", name);
		}
		key = mn.key;
		if (strmap_get(&pf->uid, key, &uid)) {
			st->adopted++;
		} else {
			uid = imap_uid_alloc(next, slot, 1);
			if (!uid) {
				maildir_name_release(&mn);
				free(base);
				return log_error("no UID left in slot %u", slot);
			}
			next = (uint32_t)uid + 1;
			st->numbered++;
		}
		if (uid >= top)
			top = (uint32_t)uid + 1;
		xgrow((void **)&nu->v, &nu->alloc, nu->n + 1, sizeof *nu->v);
		nu->v[nu->n].uid = (uint32_t)uid;
		nu->v[nu->n].ext = xstrdup(orec ? orec->ext : "");
		nu->v[nu->n].base = base;
		nu->n++;
		dovecot_keywords_names(&names, kw, maildir_name_flags(&mn));
		for (size_t j = 0; j < names.n; j++)
			if (imap_keyword_valid(names.v[j], strlen(names.v[j])))
				strvec_push(&ok, names.v[j]);
		imap_recs_set(&u->shard[maildir_shard(key, strlen(key))], key,
			      (uint32_t)uid, (const char *const *)ok.v, ok.n);
		strvec_clear(&names);
		strvec_clear(&ok);
		maildir_name_release(&mn);
	}
	qsort(nu->v, nu->n, sizeof *nu->v, rec_cmp);
	for (size_t i = 1; i < nu->n; i++)
		if (nu->v[i].uid == nu->v[i - 1].uid)
			return log_error("the peer gives UID %u twice",
					 nu->v[i].uid);
	nu->nextuid = top > pf->f.uidnext ? top : pf->f.uidnext;
	return 0;
}

/* Did the folder's UIDs or UIDVALIDITY change from what Dovecot has? */
static bool changed(const struct uidlist *old, const struct uidlist *nu)
{
	if (old->uidvalidity != nu->uidvalidity)
		return true;
	for (size_t i = 0; i < nu->n; i++) {
		const struct uidlist_rec *o = uidlist_find(old, nu->v[i].base);
		if (!o || o->uid != nu->v[i].uid)
			return true;
	}
	return false;
}

int upgrade_adopt_folder(struct upgrade *u, struct ufolder *f,
			 struct imap_folder *fr, const struct peer_folder *pf,
			 const char *dir, unsigned slot,
			 struct upgrade_stats *st)
{
	struct dovecot_lock lock = DOVECOT_LOCK_INIT;
	struct dovecot_keywords kw;
	struct uidlist old = UIDLIST_INIT, nu = UIDLIST_INIT;
	int r;

	memset(&kw, 0, sizeof kw);
	if ((r = dovecot_lock(&lock, dir, UPGRADE_LOCK_WAIT)) < 0) {
		if (r == E_TEMP)
			log_error("'%s': Dovecot's uidlist lock is still held; "
				  "try again", dir);
		goto done;
	}
	r = uidlist_read(&old, dir);
	if (r == 0)
		st->uidlists++;
	if ((r < 0 && r != E_NOTFOUND) ||
	    (r = dovecot_keywords_read(&kw, dir)) < 0)
		goto done;
	strvec_sort(&f->files);
	if ((r = adopt_records(u, f, pf, &old, &kw, &nu, slot, st)) < 0)
		goto done;
	fr->uidvalidity = nu.uidvalidity;
	fr->uidnext = nu.nextuid;
	if (!changed(&old, &nu))
		goto done;
	/* Dovecot must find the new UIDs, and no index of the old ones */
	if ((r = uidlist_rewrite(dir, &nu)) < 0)
		goto done;
	for (size_t i = 0; i < sizeof index_files / sizeof index_files[0]; i++) {
		char *p = xasprintf("%s/%s", dir, index_files[i]);
		if (unlink(p) < 0 && errno != ENOENT)
			log_warn_errno("unlink '%s'", p);
		free(p);
	}
	st->renumbered++;
done:
	dovecot_unlock(&lock);
	dovecot_keywords_release(&kw);
	uidlist_release(&old);
	uidlist_release(&nu);
	return r;
}
