/*
 * format_imap: what format 2 adds to the check of a tree
 * (doc/imap-identity.md 4.2): the entries uidslots, imap/<xx> and
 * [<folder>/]imapfolder, message names without keyword letters, and the
 * records matched against the messages: every message has exactly one
 * record and every record names a message, UIDs are unique in their
 * folder and below its uidnext, every folder has its folder record.
 *
 * Cost: the whole match here reads every record and every shard tree of
 * the tree (O(mailbox)); it runs without a trusted tree, or with one that
 * is not known to be an ancestor's.  Against an ancestor,
 * format_imap_since.c matches only what changed.  Which format a process
 * takes follows its own repository (format_use_repo()).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "folder.h"
#include "format_p.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "xalloc.h"

int fmt_version_max = FORMAT_VERSION;
static int repo_version = FORMAT_VERSION;

void format_allow_version(int v)
{
	fmt_version_max = v < FORMAT_VERSION ? FORMAT_VERSION :
			  v > FORMAT_VERSION_IMAP ? FORMAT_VERSION_IMAP : v;
}

/* --- which format this process takes --------------------------------------- */

/* Is err a libgit2 answer that may pass (the OS failed us)? */
static int git_failure(int err)
{
	const git_error *ge = git_error_last();

	return err == GIT_ENOTFOUND || !ge || ge->klass != GIT_ERROR_OS ?
	       E_INVALID : E_TEMP;
}

int format_commit_version(struct repo *r, const struct oid *commit)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	git_tree_entry *e = NULL;
	git_blob *b = NULL;
	const char *p;
	int err, v = E_INVALID;

	if ((err = git_commit_lookup(&c, r->git, GIT_OID(commit))) < 0 ||
	    (err = git_commit_tree(&t, c)) < 0 ||
	    (err = git_tree_entry_bypath(&e, t, FORMAT_PATH)) < 0 ||
	    (err = git_blob_lookup(&b, r->git, git_tree_entry_id(e))) < 0) {
		v = git_failure(err);
		goto done;
	}
	p = git_blob_rawcontent(b);
	if (git_blob_rawsize(b) == 10 && !memcmp(p, "maildag 1\n", 10))
		v = FORMAT_VERSION;
	else if (git_blob_rawsize(b) == 10 && !memcmp(p, "maildag 2\n", 10))
		v = FORMAT_VERSION_IMAP;
done:
	git_blob_free(b);
	git_tree_entry_free(e);
	git_tree_free(t);
	git_commit_free(c);
	return v;
}

int format_use_repo(struct repo *r)
{
	git_oid mail;
	int e, v = FORMAT_VERSION;

	e = git_reference_name_to_id(&mail, r->git, REF_MAIL);
	if (e < 0 && git_failure(e) == E_TEMP) {
		log_error("cannot read '%s' for its format", REF_MAIL);
		return E_TEMP;
	}
	if (e == 0 && (v = format_commit_version(r, OID(&mail))) == E_TEMP) {
		log_error("cannot read the format of '%s'", REF_MAIL);
		return E_TEMP;
	}
	if (v < 0)
		v = FORMAT_VERSION;	/* none yet, or fsck says what is wrong */
	format_set_repo_version(v);
	return v;
}

int format_repo_version(void)
{
	return repo_version;
}

void format_set_repo_version(int v)
{
	repo_version = v == FORMAT_VERSION_IMAP ? v : FORMAT_VERSION;
	format_allow_version(repo_version);
}

int format_peer_allowed(struct repo *r, const struct oid *ours,
			const struct oid *theirs, struct strbuf *err)
{
	int v, held;

	if (repo_version != FORMAT_VERSION_IMAP)
		return 0;	/* format_check_tree() refuses format 2 */
	if ((v = format_commit_version(r, theirs)) != FORMAT_VERSION)
		return v == E_TEMP ? E_TEMP : 0;	/* the check says why */
	if (ours && oid_equal(ours, theirs))
		return 0;
	held = ours ? git_graph_descendant_of(r->git, GIT_OID(ours),
					      GIT_OID(theirs)) : 0;
	if (held < 0) {
		fmt_errf(err, "cannot tell whether %.12s is ours: %s",
			 oid_hex(theirs), git_error_last() ?
			 git_error_last()->message : "unknown error");
		return E_TEMP;
	}
	if (held)
		return 0;
	fmt_errf(err, "format 1 (maildag 1) from a peer, and this repository "
		 "is format 2 (maildag 2): its mail is taken once that peer "
		 "runs 'maildag upgrade'");
	return E_INVALID;
}

/* The bytes of blob e (at most max) into out; 0, 1 (problem), E_TEMP. */
static int read_blob(struct checker *ck, const struct rentry *e,
		     size_t max, git_odb_object **out)
{
	size_t size;
	int r, err;

	if ((r = fmt_check_blob_object(ck, e, &size)))
		return r;
	if (size > max) {
		fmt_report(ck, e->name, e->nlen, "larger than %zu bytes", max);
		return 1;
	}
	if ((err = git_odb_read(out, ck->odb, GIT_OID(&e->id))) < 0)
		return fmt_read_failed(ck, e->name, e->nlen, &e->id, err,
				       "blob") < 0 ? E_TEMP : 1;
	return 0;
}

int fmt_imap_folder_record(struct checker *ck, const struct rentry *e)
{
	struct strbuf why = STRBUF_INIT;
	struct imap_folder f;
	git_odb_object *obj;
	int r;

	if (!fmt_want_blob(ck, e))
		return 0;
	if ((r = read_blob(ck, e, 64, &obj)))
		return r < 0 ? r : 0;
	if (imap_folder_parse(&f, git_odb_object_data(obj),
			      git_odb_object_size(obj), &why) < 0)
		fmt_report(ck, e->name, e->nlen, "not a folder record: %s",
			   why.buf);
	git_odb_object_free(obj);
	strbuf_release(&why);
	return 0;
}

static int check_slots(struct checker *ck, const struct rentry *e)
{
	struct strbuf why = STRBUF_INIT;
	struct imap_slots s = IMAP_SLOTS_INIT;
	git_odb_object *obj;
	int r;

	if (!fmt_want_blob(ck, e))
		return 0;
	if ((r = read_blob(ck, e, 1 << 16, &obj)))
		return r < 0 ? r : 0;
	if (imap_slots_parse(&s, git_odb_object_data(obj),
			     git_odb_object_size(obj), &why) < 0)
		fmt_report(ck, e->name, e->nlen, "%s", why.buf);
	imap_slots_release(&s);
	git_odb_object_free(obj);
	strbuf_release(&why);
	return 0;
}

/*
 * imap/: one record blob per shard number, each canonical.  Against a
 * trusted imap/ tree te (may be NULL), a blob it holds is not read
 * again, and the shard numbers whose records changed are imap_affected[].
 */
static int check_imap_dir(struct checker *ck, const struct rentry *de,
			  const struct rentry *te)
{
	const struct rentry *prev = NULL;
	struct rtree t, tt;
	size_t old;
	int r;

	if (!fmt_want_tree(ck, de))
		return 0;
	if ((r = fmt_read_tree(ck, &t, de, NULL)))
		return r < 0 ? r : 0;
	fmt_read_trusted(ck, &tt, te && fmt_is_tree(te) ? &te->id : NULL);
	/* records a shard lost: those keys must be looked at again */
	for (size_t i = 0; i < tt.n; i++)
		if (fmt_is_shard_name(&tt.e[i]) && !fmt_rtree_find(&t, &tt.e[i]))
			ck->imap_affected[fmt_shard_value(tt.e[i].name)] = true;
	old = fmt_path_push(ck, de);
	for (size_t i = 0; i < t.n && !ck->stop && !ck->fatal; i++) {
		const struct rentry *e = &t.e[i];
		struct imap_recs recs = IMAP_RECS_INIT;
		struct strbuf why = STRBUF_INIT;
		git_odb_object *obj;

		if (!fmt_check_entry(ck, e, prev))
			continue;
		prev = e;
		if (!fmt_is_shard_name(e)) {
			fmt_report(ck, e->name, e->nlen,
				   "unexpected entry (not a shard: two lowercase hex digits)");
			continue;
		}
		if (!fmt_want_blob(ck, e) || fmt_unchanged(&tt, e))
			continue;
		ck->imap_affected[fmt_shard_value(e->name)] = true;
		if (read_blob(ck, e, FORMAT_MTIMES_MAX, &obj))
			continue;
		if (imap_recs_parse(&recs, git_odb_object_data(obj),
				    git_odb_object_size(obj), e->name, &why) < 0)
			fmt_report(ck, e->name, e->nlen, "%s", why.buf);
		else if (!recs.n)
			fmt_report(ck, e->name, e->nlen, "empty record");
		imap_recs_release(&recs);
		strbuf_release(&why);
		/* the ancestor match reads it again: kept */
		if (ck->incremental && ck->ancestor &&
		    !ck->imap_blob[fmt_shard_value(e->name)])
			ck->imap_blob[fmt_shard_value(e->name)] = obj;
		else
			git_odb_object_free(obj);
	}
	fmt_path_pop(ck, old);
	if (ck->incremental && ck->ancestor && !ck->imap_n.obj) {
		ck->imap_n = t;		/* likewise */
		ck->imap_t = tt;
		return ck->fatal;
	}
	fmt_rtree_release(&tt);
	fmt_rtree_release(&t);
	return ck->fatal;
}

int fmt_imap_root_entry(struct checker *ck, const struct rentry *e,
			const struct rentry *te)
{
	/* fmt_check_entry() has looked at e's mode; te is of e's kind */
	bool known = te && oid_equal(&te->id, &e->id);

	/* what the trusted tree holds is checked already */
	if (known && (fmt_name_is(e, IMAPREC_SLOTS) || fmt_name_is(e, IMAPREC_DIR) ||
		      fmt_name_is(e, IMAPREC_FOLDER)))
		return 1;
	if (fmt_name_is(e, IMAPREC_SLOTS))
		return check_slots(ck, e) < 0 ? E_TEMP : 1;
	if (fmt_name_is(e, IMAPREC_DIR))
		return check_imap_dir(ck, e, te) < 0 ? E_TEMP : 1;
	if (fmt_name_is(e, IMAPREC_FOLDER))
		return fmt_imap_folder_record(ck, e) < 0 ? E_TEMP : 1;
	return 0;
}

bool fmt_imap_name_ok(struct checker *ck, const struct rentry *e)
{
	const char *colon = strstr(e->name, ":2,");

	if (colon && strpbrk(colon + 3, "abcdefghijklmnopqrstuvwxyz")) {
		fmt_report(ck, e->name, e->nlen,
			   "keyword letters in a format 2 name");
		return false;
	}
	return true;
}

/* --- the records against the messages ------------------------------------ */

struct match {
	struct checker *ck;
	struct strset recs;	/* key -> "<uid>" */
	struct strset used;	/* keys met as messages */
	struct strset uids;	/* "<uid>" -> path, of the folder walked */
	struct imap_folder f;
	bool have_f;
};

static void load_records(struct match *m, const struct rtree *root)
{
	const struct rentry *de = fmt_rtree_lookup(root, IMAPREC_DIR);
	struct rtree t;

	if (!de || !fmt_is_tree(de))
		return;
	fmt_read_trusted(m->ck, &t, &de->id);
	for (size_t i = 0; i < t.n; i++) {
		struct imap_recs recs = IMAP_RECS_INIT;
		git_odb_object *obj;

		if (!fmt_is_shard_name(&t.e[i]) || !fmt_is_blob(&t.e[i]) ||
		    git_odb_read(&obj, m->ck->odb, GIT_OID(&t.e[i].id)) < 0)
			continue;
		if (imap_recs_parse(&recs, git_odb_object_data(obj),
				    git_odb_object_size(obj), t.e[i].name,
				    NULL) == 0)
			for (size_t j = 0; j < recs.n; j++) {
				char u[16];
				snprintf(u, sizeof u, "%u", recs.v[j].uid);
				fmt_strset_add(&m->recs, recs.v[j].key,
					       strlen(recs.v[j].key), u);
			}
		imap_recs_release(&recs);
		git_odb_object_free(obj);
	}
	fmt_rtree_release(&t);
}

/* One message at path (raw) with key k. */
static void match_message(struct match *m, const char *path, const char *k,
			  size_t klen)
{
	const char *uid = fmt_strset_get(&m->recs, k, klen), *other;
	unsigned long u;

	if (!uid) {
		fmt_report_path(m->ck, path, "no IMAP record for this message");
		return;
	}
	fmt_strset_add(&m->used, k, klen, "");
	u = strtoul(uid, NULL, 10);
	if (!u)
		return;	/* unnumbered ("-"): valid anywhere, no UID to check */
	if (m->have_f && u >= m->f.uidnext)
		fmt_report_path(m->ck, path, "UID %lu not below the folder's "
				"uidnext %u", u, (unsigned)m->f.uidnext);
	other = fmt_strset_add(&m->uids, uid, strlen(uid), path);
	if (other) {
		struct strbuf o = STRBUF_INIT;
		fmt_show_path(&o, other, strlen(other));
		fmt_report_path(m->ck, path, "UID %lu also given to '%s'", u,
				o.buf);
		strbuf_release(&o);
	}
}

/* The messages of a folder tree (INBOX: the root) against the records. */
static void match_folder(struct match *m, const struct rtree *ft,
			 const char *prefix)
{
	const struct rentry *fr = fmt_rtree_lookup(ft, IMAPREC_FOLDER);
	struct strbuf path = STRBUF_INIT;
	git_odb_object *obj;

	m->have_f = false;
	if (fr && fmt_is_blob(fr) &&
	    git_odb_read(&obj, m->ck->odb, GIT_OID(&fr->id)) == 0) {
		m->have_f = imap_folder_parse(&m->f, git_odb_object_data(obj),
					      git_odb_object_size(obj),
					      NULL) == 0;
		git_odb_object_free(obj);
	} else if (!fr) {
		strbuf_addf(&path, "%s%s", prefix, IMAPREC_FOLDER);
		fmt_report_path(m->ck, path.buf, "missing (every folder has one)");
	}
	fmt_strset_release(&m->uids);
	for (size_t i = 0; i < ft->n && !m->ck->stop; i++) {
		const struct rentry *sub = &ft->e[i];
		struct rtree st;

		if (!fmt_is_tree(sub) || !(fmt_name_is(sub, "cur") ||
					   fmt_name_is(sub, "new")))
			continue;
		fmt_read_trusted(m->ck, &st, &sub->id);
		for (size_t j = 0; j < st.n; j++) {
			struct rtree sh;
			if (!fmt_is_shard_name(&st.e[j]) || !fmt_is_tree(&st.e[j]))
				continue;
			fmt_read_trusted(m->ck, &sh, &st.e[j].id);
			for (size_t k = 0; k < sh.n; k++) {
				strbuf_reset(&path);
				strbuf_addf(&path, "%s%s/%s/%s", prefix, sub->name,
					    st.e[j].name, sh.e[k].name);
				match_message(m, path.buf, sh.e[k].name,
					      maildir_key_len(sh.e[k].name));
			}
			fmt_rtree_release(&sh);
		}
		fmt_rtree_release(&st);
	}
	strbuf_release(&path);
}

void fmt_imap_cross_check(struct checker *ck, const struct rtree *root)
{
	struct match m = { .ck = ck };
	struct strbuf p = STRBUF_INIT;

	load_records(&m, root);
	match_folder(&m, root, "");
	for (size_t i = 0; i < root->n && !ck->stop; i++) {
		const struct rentry *e = &root->e[i];
		struct rtree ft;

		if (!fmt_is_tree(e) || e->name[0] != '.' ||
		    !folder_dir_valid(e->name))
			continue;
		fmt_read_trusted(ck, &ft, &e->id);
		strbuf_reset(&p);
		strbuf_addf(&p, "%s/", e->name);
		match_folder(&m, &ft, p.buf);
		fmt_rtree_release(&ft);
	}
	for (size_t i = 0; i < m.recs.cap && !ck->stop; i++) {
		const struct slot *s = &m.recs.s[i];
		struct strbuf k = STRBUF_INIT;
		char hex[3];

		if (!s->key || fmt_strset_get(&m.used, s->key, s->len))
			continue;
		maildir_shard_hex(hex, s->key, s->len);
		strbuf_reset(&p);
		strbuf_addf(&p, IMAPREC_DIR "/%s", hex);
		format_escape(&k, s->key, s->len);
		fmt_report_path(ck, p.buf, "no message with key '%s'", k.buf);
		strbuf_release(&k);
	}
	strbuf_release(&p);
	fmt_strset_release(&m.recs);
	fmt_strset_release(&m.used);
	fmt_strset_release(&m.uids);
}
