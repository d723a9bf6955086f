/*
 * expunged: changes in mail terms, and the messages they removed (see
 * expunged.h).
 *
 * A change is read as two lists over the shards that differ between the
 * parent's tree and the commit's: message paths only the parent holds
 * (gone) and paths only the commit holds (come).  A key in both lists is
 * a move; a key only gone is an expunge.  The format keeps keys unique
 * in a tree (format.h), so a key names one path on each side.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <git2.h>

#include "expunged.h"
#include "folder.h"
#include "format.h"
#include "header.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "merge.h"
#include "mtimes.h"
#include "purged.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "treediff.h"
#include "xalloc.h"

#define FIELD_MAX 200		/* bytes of a header field kept */
#define RESOLVE_MIN 4		/* hex digits a change name needs */

static const char *const subs[2] = { "cur", "new" };

void mail_msg_release(struct mail_msg *m)
{
	free(m->folder);
	free(m->name);
	memset(m, 0, sizeof *m);
}

/* --- vectors ----------------------------------------------------------- */

struct msgv {
	struct mail_msg *v;
	size_t n, alloc;
};

static void msgv_push(struct msgv *mv, const char *folder, const char *sub,
		      const char *name, const struct oid *blob)
{
	struct mail_msg *m;

	xgrow((void **)&mv->v, &mv->alloc, mv->n + 1, sizeof *mv->v);
	m = &mv->v[mv->n++];
	m->folder = xstrdup(folder);
	m->sub = sub;
	m->name = xstrdup(name);
	oid_tostr(m->blob, sizeof m->blob, blob);
}

static void msgv_clear(struct msgv *mv)
{
	for (size_t i = 0; i < mv->n; i++)
		mail_msg_release(&mv->v[i]);
	free(mv->v);
	memset(mv, 0, sizeof *mv);
}

static char *key_of(const char *name)
{
	return xstrndup(name, maildir_key_len(name));
}

/* --- reading trees ----------------------------------------------------- */

/* The subtree called name in t, or NULL (absent, not a tree, unreadable). */
static git_tree *sub_tree(struct repo *r, const git_tree *t, const char *name)
{
	const git_tree_entry *e;
	git_tree *out = NULL;

	if (!t || !(e = git_tree_entry_byname(t, name)) ||
	    git_tree_entry_type(e) != GIT_OBJECT_TREE)
		return NULL;
	if (git_tree_lookup(&out, r->git, git_tree_entry_id(e)) < 0)
		return NULL;
	return out;
}

/* The walk of a change's two trees (treediff.h). */
struct dwalk {
	struct msgv *gone, *come;
	struct change *c;
	bool defer;		/* leave folders only the commit holds */
	char **later;		/* ... these, and their trees' ids */
	struct oid *later_id;
	size_t nlater, later_alloc, later_id_alloc;
};

static int dw_tree(const char *path, const struct oid *a, const struct oid *b,
		   void *data)
{
	struct dwalk *d = data;
	struct change *c = d->c;

	if (strchr(path, '/') || !strcmp(path, "cur") || !strcmp(path, "new"))
		return 0;
	/* mtimes/, and whatever else is no folder */
	if (path[0] != '.' || !folder_dir_valid(path))
		return 1;
	if (!b) {
		c->folders_gone = xrealloc(c->folders_gone,
			(c->nfolders_gone + 1) * sizeof *c->folders_gone);
		c->folders_gone[c->nfolders_gone++] = xstrdup(path);
	}
	if (!a && d->defer) {
		xgrow((void **)&d->later, &d->later_alloc, d->nlater + 1,
		      sizeof *d->later);
		xgrow((void **)&d->later_id, &d->later_id_alloc, d->nlater + 1,
		      sizeof *d->later_id);
		d->later[d->nlater] = xstrdup(path);
		oid_cpy(&d->later_id[d->nlater++], b);
		return 1;
	}
	return 0;
}

static int dw_leaf(const char *path, const git_tree_entry *a,
		   const git_tree_entry *b, void *data)
{
	struct dwalk *d = data;
	struct layout_path lp;
	char *folder;

	/* FORMAT, subscriptions, markers */
	if (layout_parse_tree_path(&lp, path) < 0)
		return 0;
	folder = xstrndup(lp.folder, lp.folder_len);
	if (a && git_tree_entry_type(a) == GIT_OBJECT_BLOB)
		msgv_push(d->gone, folder, layout_sub_name(lp.sub), lp.name,
			  OID(git_tree_entry_id(a)));
	if (b && git_tree_entry_type(b) == GIT_OBJECT_BLOB)
		msgv_push(d->come, folder, layout_sub_name(lp.sub), lp.name,
			  OID(git_tree_entry_id(b)));
	free(folder);
	return 0;
}

/*
 * The message paths only the parent's root tree a holds (gone), only the
 * commit's b holds (come), and the folders b lacks.  Folders only the
 * commit holds matter for what went (a move into one): when nothing
 * went, they are not read (an import of thousands of folders costs one
 * walk of the root).
 */
static int diff_roots(struct repo *r, const struct oid *a, const struct oid *b,
		      struct msgv *gone, struct msgv *come, struct change *c)
{
	static const struct treediff_ops ops = { NULL, dw_tree, dw_leaf };
	struct dwalk d = { gone, come, c, true, NULL, NULL, 0, 0, 0 };
	struct strbuf path = STRBUF_INIT;
	int ret = treediff(r, a, b, &path, &ops, &d);

	d.defer = false;
	for (size_t i = 0; i < d.nlater; i++) {
		if (ret == 0 && gone->n) {
			strbuf_reset(&path);
			strbuf_addstr(&path, d.later[i]);
			ret = treediff(r, NULL, &d.later_id[i], &path, &ops, &d);
		}
		free(d.later[i]);
	}
	free(d.later);
	free(d.later_id);
	strbuf_release(&path);
	return ret;
}

/* --- changes ----------------------------------------------------------- */

void change_release(struct change *c)
{
	for (size_t i = 0; i < c->nexpunged; i++)
		mail_msg_release(&c->expunged[i]);
	for (size_t i = 0; i < c->nmoved; i++) {
		mail_msg_release(&c->from[i]);
		mail_msg_release(&c->to[i]);
	}
	for (size_t i = 0; i < c->nfolders_gone; i++)
		free(c->folders_gone[i]);
	free(c->expunged);
	free(c->from);
	free(c->to);
	free(c->folders_gone);
	free(c->subject);
	free(c->committer);
	memset(c, 0, sizeof *c);
}

/*
 * Sort gone into expunged and moved: moved when come holds its key, or
 * else its bytes under another key (a client that copies a message into
 * another folder under a new name and expunges the original: Dovecot's
 * MOVE without maildir_copy_preserve_filename).
 */
static void pair_up(struct change *c, struct msgv *gone, struct msgv *come)
{
	struct strmap came = STRMAP_INIT, blobs = STRMAP_INIT;
	size_t alloc_x = 0, alloc_m = 0, alloc_t = 0;
	size_t *match = xcalloc(gone->n ? gone->n : 1, sizeof *match);

	for (size_t i = 0; i < come->n; i++) {
		char *k = key_of(come->v[i].name);
		strmap_put(&came, k, i);
		strmap_put(&blobs, come->v[i].blob, i);
		free(k);
	}
	/* keys first, then bytes: each message that came pairs once */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < gone->n; i++) {
			char *k = key_of(gone->v[i].name);
			size_t j;

			if (!match[i] && (pass ? strmap_get(&blobs, gone->v[i].blob, &j)
					       : strmap_get(&came, k, &j))) {
				char *ck = key_of(come->v[j].name);
				strmap_del(&came, ck);
				strmap_del(&blobs, come->v[j].blob);
				free(ck);
				match[i] = j + 1;
			}
			free(k);
		}
	}
	for (size_t i = 0; i < gone->n; i++) {
		if (match[i]) {
			size_t j = match[i] - 1;
			xgrow((void **)&c->from, &alloc_m, c->nmoved + 1,
			      sizeof *c->from);
			xgrow((void **)&c->to, &alloc_t, c->nmoved + 1,
			      sizeof *c->to);
			c->from[c->nmoved] = gone->v[i];
			c->to[c->nmoved] = come->v[j];
			come->v[j].folder = xstrdup(come->v[j].folder);
			come->v[j].name = xstrdup(come->v[j].name);
			c->nmoved++;
		} else {
			xgrow((void **)&c->expunged, &alloc_x, c->nexpunged + 1,
			      sizeof *c->expunged);
			c->expunged[c->nexpunged++] = gone->v[i];
		}
		memset(&gone->v[i], 0, sizeof gone->v[i]);
	}
	free(match);
	strmap_clear(&came);
	strmap_clear(&blobs);
}

static int read_commit(git_commit **out, struct repo *r, const char *id)
{
	struct oid oid;

	if (oid_fromstr(&oid, id) < 0 ||
	    git_commit_lookup(out, r->git, GIT_OID(&oid)) < 0) {
		log_error("no commit %.40s: %s", id, repo_git_error());
		return E_NOTFOUND;
	}
	return 0;
}

int change_read(struct change *out, struct repo *r, const char *id)
{
	struct msgv gone = { 0 }, come = { 0 };
	git_commit *c = NULL, *p = NULL;
	git_tree *tc = NULL, *tp = NULL;
	const char *msg;
	int ret;

	memset(out, 0, sizeof *out);
	if ((ret = read_commit(&c, r, id)) < 0)
		return ret;
	oid_tostr(out->id, sizeof out->id, OID(git_commit_id(c)));
	out->nparents = git_commit_parentcount(c);
	out->time = (long long)git_commit_time(c);
	msg = git_commit_message(c);
	out->subject = xstrndup(msg, strcspn(msg, "\n"));
	out->committer = xstrdup(git_commit_committer(c)->email);
	ret = E_FAIL;
	if (git_commit_tree(&tc, c) < 0 ||
	    (out->nparents && (git_commit_parent(&p, c, 0) < 0 ||
			       git_commit_tree(&tp, p) < 0))) {
		log_error("read commit %s: %s", out->id, repo_git_error());
		goto done;
	}
	if (p)
		oid_tostr(out->parent, sizeof out->parent, OID(git_commit_id(p)));
	if (diff_roots(r, tp ? OID(git_tree_id(tp)) : NULL, OID(git_tree_id(tc)), &gone,
		       &come, out) < 0)
		goto done;
	pair_up(out, &gone, &come);
	ret = 0;
done:
	msgv_clear(&gone);
	msgv_clear(&come);
	git_tree_free(tp);
	git_tree_free(tc);
	git_commit_free(p);
	git_commit_free(c);
	if (ret < 0)
		change_release(out);
	return ret;
}

int change_resolve(char out[CHANGE_HEX], struct repo *r, const char *name)
{
	size_t len = strlen(name);
	git_object *obj = NULL;
	struct oid id, mail;
	int x;

	if (len < RESOLVE_MIN || len > OID_HEXSZ ||
	    strspn(name, "0123456789abcdefABCDEF") != len) {
		log_error("'%s' is not a change: give the commit id `maildag "
			  "log` prints (at least %d hexadecimal digits)", name,
			  RESOLVE_MIN);
		return E_INVALID;
	}
	if (git_oid_fromstrn(GIT_OID(&id), name, len) < 0)
		return log_error("'%s': %s", name, repo_git_error()), E_INVALID;
	x = git_object_lookup_prefix(&obj, r->git, GIT_OID(&id), len, GIT_OBJECT_COMMIT);
	if (x == GIT_EAMBIGUOUS) {
		log_error("'%s' names more than one commit: give more digits",
			  name);
		return E_INVALID;
	}
	if (x < 0) {
		log_error("no change '%s' in the repository", name);
		return E_NOTFOUND;
	}
	oid_cpy(&id, OID(git_object_id(obj)));
	git_object_free(obj);
	if (repo_ref_read(&mail, r, REF_MAIL) < 0)
		return log_error("cannot read '%s'", REF_MAIL);
	if (merge_is_ancestor(r, &id, &mail) != 1) {
		log_error("'%s' is not a change of this mailbox (not in the "
			  "history of %s)", name, REF_MAIL);
		return E_INVALID;
	}
	oid_tostr(out, CHANGE_HEX, &id);
	return 0;
}

int change_folder_size(size_t *out, struct repo *r, const char *commit,
		       const char *folder)
{
	git_commit *c = NULL;
	git_tree *root = NULL, *f = NULL;
	int ret;

	*out = 0;
	if ((ret = read_commit(&c, r, commit)) < 0)
		return ret;
	if (git_commit_tree(&root, c) < 0) {
		git_commit_free(c);
		return log_error("read commit %s: %s", commit, repo_git_error());
	}
	f = *folder ? sub_tree(r, root, folder) : root;
	for (int s = 0; f && s < 2; s++) {
		git_tree *st = sub_tree(r, f, subs[s]);
		size_t n = st ? git_tree_entrycount(st) : 0;

		for (size_t i = 0; i < n; i++) {
			git_tree *shard = sub_tree(r, st,
				git_tree_entry_name(git_tree_entry_byindex(st, i)));
			*out += shard ? git_tree_entrycount(shard) : 0;
			git_tree_free(shard);
		}
		git_tree_free(st);
	}
	if (f != root)
		git_tree_free(f);
	git_tree_free(root);
	git_commit_free(c);
	return 0;
}

int change_walk(struct repo *r, const char *tip, const char *hide, size_t max,
		long long since, change_fn *fn, void *data)
{
	git_revwalk *walk = NULL;
	struct oid id, hid;
	size_t seen = 0;
	int ret = 0;

	if (oid_fromstr(&id, tip) < 0 ||
	    (hide && oid_fromstr(&hid, hide) < 0))
		return log_error("not a commit id: '%s'", tip);
	if (git_revwalk_new(&walk, r->git) < 0 ||
	    git_revwalk_sorting(walk, GIT_SORT_TIME) < 0 ||
	    git_revwalk_push(walk, GIT_OID(&id)) < 0 ||
	    (hide && git_revwalk_hide(walk, GIT_OID(&hid)) < 0)) {
		ret = log_error("walk the history of %.12s: %s", tip,
				repo_git_error());
		goto done;
	}
	while (!ret && (!max || seen < max) && git_revwalk_next(GIT_OID(&id), walk) == 0) {
		struct change c;
		char hex[CHANGE_HEX];
		git_commit *gc;
		bool merge, old;

		if (git_commit_lookup(&gc, r->git, GIT_OID(&id)) < 0) {
			ret = log_error("read commit %s: %s",
					oid_hex(&id), repo_git_error());
			break;
		}
		merge = git_commit_parentcount(gc) > 1;
		old = (long long)git_commit_time(gc) < since;
		git_commit_free(gc);
		if (old)
			break;
		if (merge)
			continue;
		seen++;
		oid_tostr(hex, sizeof hex, &id);
		if ((ret = change_read(&c, r, hex)) < 0)
			break;
		ret = fn(&c, data);
		change_release(&c);
	}
done:
	git_revwalk_free(walk);
	return ret;
}

/* --- the keys a tree holds --------------------------------------------- */

static int add_key(const char *path, const char *folder, const char *sub,
		   const char *name, const struct oid *blob, void *data)
{
	char hex[CHANGE_HEX];

	(void)path;
	(void)folder;
	(void)sub;
	oid_tostr(hex, sizeof hex, blob);
	expunged_held(data, name, hex, true);
	return 0;
}

bool expunged_held(struct strmap *keys, const char *name, const char *blob,
		   bool claim)
{
	char *k = key_of(name), b[CHANGE_HEX + 1];
	bool have;

	snprintf(b, sizeof b, ".%s", blob);
	have = strmap_has(keys, k) || strmap_has(keys, b);
	if (!have && claim) {
		strmap_put(keys, k, 0);
		strmap_put(keys, b, 0);
	}
	free(k);
	return have;
}

int expunged_mail_keys(struct strmap *keys, struct repo *r)
{
	struct oid mail, tree;

	if (repo_ref_read(&mail, r, REF_MAIL) < 0 ||
	    repo_commit_tree(&tree, r, &mail) < 0)
		return log_error("cannot read '%s'", REF_MAIL);
	return format_foreach_message(r, &tree, add_key, keys) < 0 ? E_FAIL : 0;
}

int expunged_key_present(struct repo *r, const char *name)
{
	struct strmap keys = STRMAP_INIT;
	char *k = key_of(name);
	int ret = expunged_mail_keys(&keys, r);

	if (ret == 0)
		ret = strmap_has(&keys, k);
	strmap_clear(&keys);
	free(k);
	return ret;
}

/* --- describing and matching ------------------------------------------- */

void expunged_filter_init(struct expunged_filter *f)
{
	memset(f, 0, sizeof *f);
	f->since = LLONG_MIN;
	f->until = LLONG_MAX;
}

static bool contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return !*needle;
}

/* Message-IDs match with or without their angle brackets. */
static bool same_id(const char *have, const char *want)
{
	size_t hl = strlen(have), wl = strlen(want);

	if (hl >= 2 && have[0] == '<' && have[hl - 1] == '>') {
		have++;
		hl -= 2;
	}
	if (wl >= 2 && want[0] == '<' && want[wl - 1] == '>') {
		want++;
		wl -= 2;
	}
	return hl == wl && !strncmp(have, want, hl);
}

/* Does refs/heads/mail's purged/ list blob id (a purge on purpose)? */
static bool listed_purged(struct repo *r, const struct oid *id)
{
	struct purged p = PURGED_INIT;
	struct oid mail, tree;
	bool yes;

	yes = repo_ref_read(&mail, r, REF_MAIL) == 0 &&
	      repo_commit_tree(&tree, r, &mail) == 0 &&
	      purged_read_shard(&p, r, &tree, id->id[0]) == 0 &&
	      purged_has(&p, id);
	purged_release(&p);
	return yes;
}

/*
 * Fill e's header fields and size from its blob; false if unreadable.
 * A blob purged on purpose is described as such (e->purged).
 */
static bool describe(struct expunged *e, struct repo *r)
{
	struct strbuf from = STRBUF_INIT, subject = STRBUF_INIT,
		      mid = STRBUF_INIT;
	git_blob *blob;
	struct oid id;
	const char *content;
	size_t len;

	if (oid_fromstr(&id, e->msg.blob) < 0)
		return false;
	if (git_blob_lookup(&blob, r->git, GIT_OID(&id)) < 0) {
		if (listed_purged(r, &id)) {
			e->purged = true;
			e->from = xstrdup("");
			e->subject = xstrdup("");
			e->message_id = xstrdup("");
			return true;
		}
		log_warn("message %s ('%s'): %s", e->msg.blob, e->msg.name,
			 repo_git_error());
		return false;
	}
	content = git_blob_rawcontent(blob);
	len = (size_t)git_blob_rawsize(blob);
	e->size = len;
	header_value(&from, content, len, "From", FIELD_MAX);
	header_value(&subject, content, len, "Subject", FIELD_MAX);
	header_value(&mid, content, len, "Message-ID", FIELD_MAX);
	while (mid.len && mid.buf[mid.len - 1] == ' ')
		strbuf_setlen(&mid, mid.len - 1);
	e->from = strbuf_detach(&from, NULL);
	e->subject = strbuf_detach(&subject, NULL);
	e->message_id = strbuf_detach(&mid, NULL);
	git_blob_free(blob);
	return true;
}

static bool header_match(const struct expunged *e,
			 const struct expunged_filter *f)
{
	return (!f->from || contains(e->from, f->from)) &&
	       (!f->subject || contains(e->subject, f->subject)) &&
	       (!f->message_id || same_id(e->message_id, f->message_id));
}

static void expunged_release(struct expunged *e)
{
	free(e->from);
	free(e->subject);
	free(e->message_id);
}

/* The mtimes of one commit's tree, a shard at a time as asked for. */
struct mtcache {
	struct oid tree;
	bool have_tree;
	struct mtimes shard[256];
	bool loaded[256];
};

static void mtcache_init(struct mtcache *mc, struct repo *r, const char *commit)
{
	struct oid id;

	memset(mc, 0, sizeof *mc);
	mc->have_tree = oid_fromstr(&id, commit) == 0 &&
			repo_commit_tree(&mc->tree, r, &id) == 0;
}

static void mtcache_release(struct mtcache *mc)
{
	for (int i = 0; i < 256; i++)
		mtimes_release(&mc->shard[i]);
}

static long long mtcache_get(struct mtcache *mc, struct repo *r,
			     const char *name)
{
	size_t klen = maildir_key_len(name);
	unsigned s = maildir_shard(name, klen);
	char *k = xstrndup(name, klen);
	long long t;

	if (!mc->loaded[s] && mc->have_tree) {
		if (mtimes_read_shard(&mc->shard[s], r, &mc->tree, s) < 0)
			mtimes_release(&mc->shard[s]);
		mc->loaded[s] = true;
	}
	t = mtimes_get(&mc->shard[s], k);
	free(k);
	return t;
}

/* --- the walk ---------------------------------------------------------- */

struct find {
	struct repo *r;
	const struct expunged_filter *f;
	expunged_fn *fn;
	void *data;
	struct strmap present;	/* what refs/heads/mail holds */
	struct strmap seen;	/* keys reported, or refused by the filter */
	size_t shown;
};

static bool gone_with_folder(const struct change *c, const char *folder)
{
	for (size_t i = 0; i < c->nfolders_gone; i++)
		if (!strcmp(c->folders_gone[i], folder))
			return true;
	return false;
}

static int find_in_change(const struct change *c, void *data)
{
	struct find *fd = data;
	struct mtcache mc;
	int ret = 0;

	if (c->time > fd->f->until || !c->nexpunged)
		return 0;
	mtcache_init(&mc, fd->r, c->parent);
	for (size_t i = 0; i < c->nexpunged && !ret; i++) {
		const struct mail_msg *m = &c->expunged[i];
		char *k = key_of(m->name);
		struct expunged e;

		/* newest first: an older removal of the key is not shown */
		if (expunged_held(&fd->present, m->name, m->blob, false) ||
		    !strmap_put(&fd->seen, k, 0) ||
		    (fd->f->folder && strcmp(fd->f->folder, m->folder))) {
			free(k);
			continue;
		}
		free(k);
		memset(&e, 0, sizeof e);
		e.msg = *m;
		memcpy(e.change, c->id, CHANGE_HEX);
		memcpy(e.source, c->parent, CHANGE_HEX);
		e.time = c->time;
		e.folder_gone = gone_with_folder(c, m->folder);
		if (!describe(&e, fd->r))
			continue;
		e.mtime = mtcache_get(&mc, fd->r, m->name);
		if (header_match(&e, fd->f)) {
			ret = fd->fn(&e, fd->data);
			if (!ret && fd->f->max && ++fd->shown >= fd->f->max)
				ret = 1;
		}
		expunged_release(&e);
	}
	mtcache_release(&mc);
	return ret;
}

int expunged_of_change(struct repo *r, const struct change *c,
		       const struct expunged_filter *f, expunged_fn *fn,
		       void *data)
{
	struct expunged_filter all;
	struct find fd = { r, f, fn, data, STRMAP_INIT, STRMAP_INIT, 0 };
	struct change copy = *c;
	int ret;

	if (!f) {
		expunged_filter_init(&all);
		fd.f = &all;
	}
	/* the same pass as the walk's, with nothing present nor seen */
	copy.time = LLONG_MIN;
	ret = find_in_change(&copy, &fd);
	strmap_clear(&fd.seen);
	return ret == 1 && fd.f->max ? 0 : ret;
}

int expunged_find(struct repo *r, const struct expunged_filter *f,
		  expunged_fn *fn, void *data)
{
	struct find fd = { r, f, fn, data, STRMAP_INIT, STRMAP_INIT, 0 };
	struct oid mail;
	int ret;

	if (repo_ref_read(&mail, r, REF_MAIL) < 0)
		return log_error("cannot read '%s'", REF_MAIL);
	if ((ret = expunged_mail_keys(&fd.present, r)) == 0)
		ret = change_walk(r, oid_hex(&mail), NULL, 0, f->since,
				  find_in_change, &fd);
	strmap_clear(&fd.present);
	strmap_clear(&fd.seen);
	return ret == 1 && f->max ? 0 : ret;
}

struct snap {
	struct find fd;
	const char *commit;
	struct mtcache mc;
};

static int snap_one(const char *path, const char *folder, const char *sub,
		    const char *name, const struct oid *blob, void *data)
{
	struct snap *s = data;
	struct find *fd = &s->fd;
	struct expunged e;
	int ret = 0;

	(void)path;
	memset(&e, 0, sizeof e);
	oid_tostr(e.msg.blob, sizeof e.msg.blob, blob);
	if (expunged_held(&fd->present, name, e.msg.blob, false) ||
	    (fd->f->folder && strcmp(fd->f->folder, folder)))
		return 0;
	e.msg.folder = (char *)folder;
	e.msg.sub = !strcmp(sub, "cur") ? subs[0] : subs[1];
	e.msg.name = (char *)name;
	memcpy(e.source, s->commit, CHANGE_HEX);
	if (!describe(&e, fd->r))
		return 0;
	e.mtime = mtcache_get(&s->mc, fd->r, name);
	if (header_match(&e, fd->f)) {
		ret = fd->fn(&e, fd->data);
		if (!ret && fd->f->max && ++fd->shown >= fd->f->max)
			ret = 1;
	}
	expunged_release(&e);
	return ret;
}

int expunged_in_snapshot(struct repo *r, const char *commit,
			 const struct expunged_filter *f, expunged_fn *fn,
			 void *data)
{
	struct snap s;
	struct oid id, tree;
	int ret;

	memset(&s, 0, sizeof s);
	s.fd.r = r;
	s.fd.f = f;
	s.fd.fn = fn;
	s.fd.data = data;
	s.commit = commit;

	if (oid_fromstr(&id, commit) < 0 ||
	    repo_commit_tree(&tree, r, &id) < 0)
		return log_error("cannot read commit '%s'", commit);
	mtcache_init(&s.mc, r, commit);
	if ((ret = expunged_mail_keys(&s.fd.present, r)) == 0)
		ret = format_foreach_message(r, &tree, snap_one, &s);
	mtcache_release(&s.mc);
	strmap_clear(&s.fd.present);
	return ret == 1 && f->max ? 0 : ret;
}

int expunged_subscriptions(char ***out, struct repo *r, const char *commit)
{
	struct oid id, tree, blob_id;
	git_blob *blob = NULL;
	size_t n = 0;
	const char *p, *end;
	int x;

	*out = xcalloc(1, sizeof **out);
	if (oid_fromstr(&id, commit) < 0 ||
	    repo_commit_tree(&tree, r, &id) < 0)
		return log_error("cannot read commit '%s'", commit);
	x = repo_tree_lookup(&blob_id, r, &tree, "subscriptions");
	if (x == E_NOTFOUND)
		return 0;
	if (x < 0 || git_blob_lookup(&blob, r->git, GIT_OID(&blob_id)) < 0)
		return log_error("read the subscriptions of %.12s: %s", commit,
				 repo_git_error());
	p = git_blob_rawcontent(blob);
	end = p + git_blob_rawsize(blob);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (len) {
			*out = xrealloc(*out, (n + 2) * sizeof **out);
			(*out)[n++] = xstrndup(p, len);
			(*out)[n] = NULL;
		}
		p += len + 1;
	}
	git_blob_free(blob);
	return 0;
}

void expunged_lines_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

int expunged_snapshot_at(char out[CHANGE_HEX], struct repo *r, long long when)
{
	git_commit *c = NULL;
	struct oid id;

	if (repo_ref_read(&id, r, REF_MAIL) < 0)
		return log_error("cannot read '%s'", REF_MAIL);
	for (;;) {
		git_commit *p;

		if (git_commit_lookup(&c, r->git, GIT_OID(&id)) < 0)
			return log_error("read commit %s: %s",
					 oid_hex(&id), repo_git_error());
		if ((long long)git_commit_time(c) <= when)
			break;
		if (git_commit_parentcount(c) == 0 ||
		    git_commit_parent(&p, c, 0) < 0) {
			git_commit_free(c);
			log_error("the mailbox's history starts after that time");
			return E_NOTFOUND;
		}
		oid_cpy(&id, OID(git_commit_id(p)));
		git_commit_free(p);
		git_commit_free(c);
	}
	oid_tostr(out, CHANGE_HEX, &id);
	git_commit_free(c);
	return 0;
}
