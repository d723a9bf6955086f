/*
 * upgrade: a format 1 tree made format 2 (see upgrade.h).
 *
 * One pass over the messages of the tree (format_foreach_message())
 * groups them by folder; each folder's Dovecot files give its records
 * (dovecot_records(), under the uidlist lock); the tree is then the old
 * one with the renames (letters out), the records and FORMAT written in
 * one repo_tree_update().
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dovecot.h"
#include "folder.h"
#include "format.h"
#include "imaprec.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "strvec.h"
#include "upgrade_p.h"
#include "xalloc.h"

static size_t add_folder(struct upgrade *u, const char *name)
{
	size_t at;

	if (strmap_get(&u->index, name, &at))
		return at;
	xgrow((void **)&u->f, &u->alf, u->nf + 1, sizeof *u->f);
	memset(&u->f[u->nf], 0, sizeof *u->f);
	u->f[u->nf].name = xstrdup(name);
	strmap_put(&u->index, name, u->nf);
	return u->nf++;
}

/* Every folder of the root tree, the empty ones too. */
static int root_folders(struct upgrade *u, struct repo *r,
			const struct oid *tree)
{
	git_tree *t;

	if (git_tree_lookup(&t, r->git, GIT_OID(tree)) < 0)
		return E_FAIL;
	for (size_t i = 0; i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		const char *name = git_tree_entry_name(e);
		if (git_tree_entry_type(e) == GIT_OBJECT_TREE &&
		    name[0] == '.' && folder_dir_valid(name))
			add_folder(u, name);
	}
	git_tree_free(t);
	return 0;
}

static int one_message(const char *path, const char *folder, const char *sub,
		       const char *name, const struct oid *blob, void *data)
{
	struct upgrade *u = data;
	struct umsg *m;

	xgrow((void **)&u->m, &u->alm, u->nm + 1, sizeof *u->m);
	m = &u->m[u->nm++];
	m->folder = add_folder(u, folder);
	m->path = xstrdup(path);
	m->name = xstrdup(name);
	snprintf(m->sub, sizeof m->sub, "%s", sub);
	oid_cpy(&m->blob, blob);
	strvec_push(&u->f[m->folder].files, name);
	return 0;
}

static void upgrade_release(struct upgrade *u)
{
	for (size_t i = 0; i < u->nf; i++) {
		free(u->f[i].name);
		strvec_clear(&u->f[i].files);
	}
	for (size_t i = 0; i < u->nm; i++) {
		free(u->m[i].path);
		free(u->m[i].name);
	}
	for (unsigned i = 0; i < 256; i++)
		imap_recs_release(&u->shard[i]);
	strmap_clear(&u->index);
	free(u->f);
	free(u->m);
}

/*
 * The records of one folder from its Dovecot files, into u->shard[];
 * *fr its folder record.  0, E_TEMP (lock held), E_INVALID, E_FAIL.
 */
static int folder_records(struct upgrade *u, struct ufolder *f,
			  struct imap_folder *fr, const char *maildir,
			  unsigned slot, struct upgrade_stats *st)
{
	struct dovecot_lock lock = DOVECOT_LOCK_INIT;
	struct dovecot_keywords kw;
	struct uidlist ul = UIDLIST_INIT;
	struct imap_recs recs = IMAP_RECS_INIT;
	char *dir = *f->name ? xasprintf("%s/%s", maildir, f->name)
			     : xstrdup(maildir);
	size_t had = 0;
	bool existed = false;
	int r;

	memset(&kw, 0, sizeof kw);
	if ((r = dovecot_lock(&lock, dir, UPGRADE_LOCK_WAIT)) < 0) {
		if (r == E_TEMP)
			log_error("'%s': Dovecot's uidlist lock is still held "
				  "after %d s; try again", dir, UPGRADE_LOCK_WAIT / 1000);
		goto done;
	}
	r = uidlist_read(&ul, dir);
	if (r == E_NOTFOUND) {
		/* a folder Dovecot never opened: numbered from our slot */
		ul.uidvalidity = (uint32_t)time(NULL);
		ul.nextuid = 1;
		ul.hdr = xstrdup("");
		r = 0;
	} else if (r == 0) {
		st->uidlists++;
		existed = true;
		had = ul.n;
	}
	if (r < 0 || (r = dovecot_keywords_read(&kw, dir)) < 0)
		goto done;
	strvec_sort(&f->files);
	r = dovecot_records(&recs, fr, &ul, &kw,
			    (const char *const *)f->files.v, f->files.n, slot);
	if (r < 0)
		goto done;
	st->numbered += ul.n - had;
	/* before the lock goes: Dovecot must find these UIDs as ours */
	if (!existed)
		r = uidlist_rewrite(dir, &ul);
	else if (ul.n > had)
		r = uidlist_append(dir, &ul, had);
	for (size_t i = 0; i < recs.n && r == 0; i++) {
		const struct imap_rec *x = &recs.v[i];
		unsigned xx = maildir_shard(x->key, strlen(x->key));
		imap_recs_set(&u->shard[xx], x->key, x->uid,
			      (const char *const *)x->kw, x->nkw);
	}
done:
	dovecot_unlock(&lock);
	dovecot_keywords_release(&kw);
	uidlist_release(&ul);
	imap_recs_release(&recs);
	free(dir);
	return r;
}

/* name without the keyword letters of its ":2," flags, into out */
static void strip_letters(struct strbuf *out, const char *name)
{
	const char *info = strstr(name, ":2,");

	if (!info) {
		strbuf_addstr(out, name);
		return;
	}
	strbuf_add(out, name, (size_t)(info - name) + 3);
	for (const char *p = info + 3; *p; p++)
		if (*p < 'a' || *p > 'z')
			strbuf_addch(out, *p);
}

/* A blob of bytes, kept in blobs so the update can point at its id. */
static const struct oid *put_blob(struct repo *r, struct oid *slot,
				  const struct strbuf *b, int *err)
{
	if (*err == 0 && repo_blob_from_buffer(slot, r, b->buf, b->len) < 0)
		*err = E_FAIL;
	return slot;
}

static int write_tree(struct oid *out, struct repo *r, const struct oid *tree,
		      struct upgrade *u, const struct imap_folder *fr,
		      const char *node, unsigned slot,
		      const struct imap_slots *peer_slots)
{
	struct repo_update *ups;
	struct oid *blobs;
	struct strbuf b = STRBUF_INIT;
	struct strvec paths = STRVEC_INIT;
	struct imap_slots slots = IMAP_SLOTS_INIT;
	size_t n = 0, nb = 0, cap = 2 * u->nm + u->nf + 256 + 2;
	int err = 0;

	ups = xcalloc(cap, sizeof *ups);
	blobs = xcalloc(u->nf + 256 + 2, sizeof *blobs);
	/* a name with keyword letters: removed, and added without them */
	for (size_t i = 0; i < u->nm; i++) {
		const struct umsg *m = &u->m[i];
		struct strbuf nm = STRBUF_INIT;

		strip_letters(&nm, m->name);
		if (strcmp(nm.buf, m->name)) {
			strbuf_reset(&b);
			tree_message_path(&b, u->f[m->folder].name, m->sub,
					  nm.buf);
			strvec_push(&paths, b.buf);
			ups[n++] = (struct repo_update){ m->path, NULL, false };
			ups[n++] = (struct repo_update){ paths.v[paths.n - 1],
							 &m->blob, false };
		}
		strbuf_release(&nm);
	}
	for (size_t i = 0; i < u->nf; i++) {
		strbuf_reset(&b);
		imap_folder_format(&b, &fr[i]);
		ups[n].blob = put_blob(r, &blobs[nb++], &b, &err);
		strvec_push_nodup(&paths, *u->f[i].name ?
				  xasprintf("%s/" IMAPREC_FOLDER, u->f[i].name) :
				  xstrdup(IMAPREC_FOLDER));
		ups[n++].path = paths.v[paths.n - 1];
	}
	for (unsigned xx = 0; xx < 256; xx++) {
		if (!u->shard[xx].n)
			continue;
		strbuf_reset(&b);
		imap_recs_format(&b, &u->shard[xx]);
		ups[n].blob = put_blob(r, &blobs[nb++], &b, &err);
		strbuf_reset(&b);
		imap_recs_shard_path(&b, xx);
		strvec_push(&paths, b.buf);
		ups[n++].path = paths.v[paths.n - 1];
	}
	for (size_t i = 0; peer_slots && i < peer_slots->n; i++)
		imap_slots_add(&slots, peer_slots->v[i].slot,
			       peer_slots->v[i].node);
	imap_slots_add(&slots, slot, node);
	strbuf_reset(&b);
	imap_slots_format(&b, &slots);
	ups[n].blob = put_blob(r, &blobs[nb++], &b, &err);
	ups[n++].path = IMAPREC_SLOTS;
	strbuf_reset(&b);
	strbuf_addstr(&b, "maildag 2\n");
	ups[n].blob = put_blob(r, &blobs[nb++], &b, &err);
	ups[n++].path = FORMAT_PATH;
	if (err == 0 && repo_tree_update(out, r, tree, ups, n) < 0)
		err = E_FAIL;
	imap_slots_release(&slots);
	strvec_clear(&paths);
	strbuf_release(&b);
	free(blobs);
	free(ups);
	return err;
}

/* The peer's uidslots into s (left empty when it has none that parse). */
static void read_slots(struct imap_slots *s, struct repo *r,
		       const struct oid *tree)
{
	struct strbuf b = STRBUF_INIT;
	struct oid id;

	if (repo_tree_lookup(&id, r, tree, IMAPREC_SLOTS) == 0 &&
	    repo_blob_read(&b, r, &id) == 0 &&
	    imap_slots_parse(s, b.buf, b.len, NULL) < 0)
		imap_slots_release(s);
	strbuf_release(&b);
}

int upgrade_tree(struct oid *out, struct repo *r, const struct oid *tree,
		 const char *maildir, const char *node,
		 const struct oid *peer_tree, struct upgrade_stats *st)
{
	struct upgrade u;
	struct imap_folder *fr = NULL;
	struct peer_folder *pf = NULL;
	struct imap_slots slots = IMAP_SLOTS_INIT;
	int ret;

	memset(&u, 0, sizeof u);
	memset(st, 0, sizeof *st);
	/*
	 * The lowest slot the table (the peer's, or an empty one) leaves
	 * us; maildag.conf's uid_slot later.
	 */
	if (peer_tree)
		read_slots(&slots, r, peer_tree);
	if ((ret = imap_slots_claim(&slots, node)) < 0) {
		ret = log_error("no UID slot left for '%s' in the peer's "
				"uidslots", node);
		goto done;
	}
	st->slot = (unsigned)ret;
	add_folder(&u, "");
	if ((ret = root_folders(&u, r, tree)) < 0 ||
	    (ret = format_foreach_message(r, tree, one_message, &u)) != 0) {
		ret = log_error("cannot read tree %s", oid_hex(tree));
		goto done;
	}
	if (peer_tree && (ret = upgrade_peer_folders(&pf, &u, r, peer_tree)) < 0)
		goto done;
	fr = xcalloc(u.nf, sizeof *fr);
	for (size_t i = 0; i < u.nf; i++) {
		char *dir = *u.f[i].name ? xasprintf("%s/%s", maildir,
						      u.f[i].name)
					 : xstrdup(maildir);
		if (pf && pf[i].have)
			ret = upgrade_adopt_folder(&u, &u.f[i], &fr[i], &pf[i],
						   dir, st->slot, st);
		else
			ret = folder_records(&u, &u.f[i], &fr[i], maildir,
					     st->slot, st);
		free(dir);
		if (ret < 0)
			goto done;
	}
	st->folders = u.nf;
	st->messages = u.nm;
	ret = write_tree(out, r, tree, &u, fr, node, st->slot, &slots);
done:
	free(fr);
	upgrade_peer_folders_free(pf, u.nf);
	imap_slots_release(&slots);
	upgrade_release(&u);
	return ret;
}

struct find_peer {
	struct repo *r;
	const struct oid *mail;
	struct oid commit;
	char ref[256];
};

/* A peer ref that is format 2 and shares history with mail: taken. */
static int peer_candidate(const char *ref, void *data)
{
	struct find_peer *fp = data;
	struct oid id;
	git_oid base;

	if (repo_ref_read(&id, fp->r, ref) < 0 ||
	    format_commit_version(fp->r, &id) != FORMAT_VERSION_IMAP ||
	    git_merge_base(&base, fp->r->git, GIT_OID(fp->mail),
			   GIT_OID(&id)) < 0)
		return 0;
	oid_cpy(&fp->commit, &id);
	snprintf(fp->ref, sizeof fp->ref, "%s", ref);
	return 1;
}

int upgrade_repo(struct oid *out, struct repo *r, const char *maildir,
		 const char *node, const char *why, bool adopt,
		 struct upgrade_stats *st)
{
	struct strbuf err = STRBUF_INIT;
	struct oid mail, wt, tree, newtree, ptree;
	struct find_peer fp;
	bool have_peer = false;
	int v, ret;

	if (repo_ref_read(&mail, r, REF_MAIL) < 0 ||
	    repo_ref_read(&wt, r, REF_WORKTREE) < 0) {
		log_error("cannot read the refs of '%s'", repo_path(r));
		return E_FAIL;
	}
	if ((v = format_commit_version(r, &mail)) == FORMAT_VERSION_IMAP) {
		log_error("'%s' is format 2 already", repo_path(r));
		return E_EXISTS;
	}
	if (v != FORMAT_VERSION) {
		log_error("'%s' holds no format 1 tree", REF_MAIL);
		return v == E_TEMP ? E_TEMP : E_INVALID;
	}
	if (!oid_equal(&mail, &wt)) {
		log_error("the Maildir is behind '%s' (changes wait to be "
			  "applied): start maildag-syncd once, stop it, and "
			  "upgrade then", REF_MAIL);
		return E_RACE;
	}
	memset(&fp, 0, sizeof fp);
	fp.r = r;
	fp.mail = &mail;
	if (adopt && repo_foreach_peer_ref(r, peer_candidate, &fp) == 1 &&
	    repo_commit_tree(&ptree, r, &fp.commit) == 0)
		have_peer = true;
	if ((ret = repo_commit_tree(&tree, r, &mail)) < 0 ||
	    (ret = upgrade_tree(&newtree, r, &tree, maildir, node,
				have_peer ? &ptree : NULL, st)) < 0)
		return ret < 0 ? ret : E_FAIL;
	if (have_peer)
		snprintf(st->peer, sizeof st->peer, "%s", fp.ref);
	format_allow_version(FORMAT_VERSION_IMAP);
	if ((ret = format_check_tree(r, &newtree, NULL, &err)) < 0) {
		log_error("the format 2 tree fails its check: %s", err.buf);
		format_allow_version(format_repo_version());
		strbuf_release(&err);
		return ret;
	}
	strbuf_release(&err);
	if (repo_commit(out, r, &newtree, &mail, 1, why, -1, NULL, NULL) < 0)
		return E_FAIL;
	if ((ret = repo_ref_cas(r, REF_MAIL, out, &mail, "maildag: upgrade")) < 0)
		return ret;
	if ((ret = repo_ref_cas(r, REF_WORKTREE, out, &wt,
				"maildag: upgrade")) < 0)
		return ret;
	format_set_repo_version(FORMAT_VERSION_IMAP);
	return 0;
}
