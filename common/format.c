/*
 * format: validation of repository format version 1 (see format.h and
 * maildag-format(5)).
 *
 * Trees are read as raw objects and parsed here, so what is checked is
 * exactly what a later reader will see: the mode as written, the name as
 * bytes, the order of the entries.  The walk knows the only shape a valid
 * tree has (root, folder, cur|new, shard, message; root, mtimes, record),
 * so it never recurses deeper than four trees whatever a peer sends.
 *
 * With a trusted tree the walk goes down only where ids differ at the
 * same path.  Keys of the shard trees it checks go into one set; a second
 * pass then reads, for every shard number <xx> that changed anywhere, the
 * other <xx> trees of every folder and looks their keys up in that set.
 * That finds every duplicate: two entries with one key share a shard
 * number, and if both sat in unchanged trees the trusted tree would have
 * held both already.  The same shard numbers, plus those of mtimes/<xx>
 * blobs that changed and of shard trees that disappeared, are the ones
 * whose records are matched against the messages: a record can only lose
 * its message where something of its shard changed.
 *
 * Limits (struct format_limits) are checked from object headers before
 * any object is read whole: a blob's size, and a tree's size against what
 * its allowed number of entries could take (an entry of a valid tree is
 * at most ENTRY_MAX bytes), then its entries as they are parsed.  The
 * message blobs a check reads the header of are the ones new against the
 * trusted tree by path; those whose key and id the trusted tree holds
 * elsewhere (a flag change, a move) are not added bytes, which a last
 * pass over the trusted trees of the changed shard numbers settles.
 *
 * This file holds the limits, the checker and the entry points;
 * format_raw.c reads raw trees and records, format_levels.c checks each
 * level of a tree; format_p.h is what they share.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "folder.h"
#include "format.h"
#include "format_p.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

struct format_limits fmt_limits = {
	FORMAT_DEFAULT_MESSAGE_BYTES, FORMAT_DEFAULT_SUBSCRIPTIONS_BYTES,
	FORMAT_DEFAULT_TREE_ENTRIES, FORMAT_DEFAULT_FOLDERS,
	FORMAT_DEFAULT_MERGE_BYTES,
};

void format_set_limits(const struct format_limits *l)
{
	fmt_limits = *l;
}

const struct format_limits *format_get_limits(void)
{
	return &fmt_limits;
}

void format_use_config(const struct config *cfg)
{
	fmt_limits.message_bytes = (unsigned long long)cfg->size_limit;
	fmt_limits.subscriptions_bytes = (unsigned long long)cfg->subscriptions_limit;
	fmt_limits.tree_entries = (size_t)cfg->tree_entries_limit;
	fmt_limits.folders = (size_t)cfg->folder_limit;
	fmt_limits.merge_bytes = (unsigned long long)cfg->merge_limit;
}

__attribute__((format(printf, 2, 3)))
void fmt_errf(struct strbuf *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(err, fmt, ap);
	va_end(ap);
}

/* --- the checker ------------------------------------------------------------ */

void format_escape(struct strbuf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '\\') {
			strbuf_addstr(out, "\\x");
			strbuf_addch(out, hex[c >> 4]);
			strbuf_addch(out, hex[c & 15]);
		} else {
			strbuf_addch(out, c);
		}
	}
}

void fmt_show_path(struct strbuf *out, const char *p, size_t len)
{
	if (len > SHOW_MAX) {
		format_escape(out, p, SHOW_MAX);
		strbuf_addstr(out, "...");
	} else {
		format_escape(out, p, len);
	}
}

static void vreport(struct checker *ck, const char *path, size_t plen,
		    const char *fmt, va_list ap)
{
	struct strbuf shown = STRBUF_INIT, reason = STRBUF_INIT;

	fmt_show_path(&shown, path, plen);
	strbuf_vaddf(&reason, fmt, ap);
	ck->problems++;
	ck->fn(shown.len ? shown.buf : "", reason.buf, ck->data);
	if (!ck->all)
		ck->stop = true;
	strbuf_release(&shown);
	strbuf_release(&reason);
}

__attribute__((format(printf, 4, 5)))
void fmt_report(struct checker *ck, const char *name, size_t nlen,
		const char *fmt, ...)
{
	size_t old = ck->path.len;
	va_list ap;

	if (name) {
		if (ck->path.len)
			strbuf_addch(&ck->path, '/');
		strbuf_add(&ck->path, name, nlen);
	}
	va_start(ap, fmt);
	vreport(ck, ck->path.len ? ck->path.buf : "", ck->path.len, fmt, ap);
	va_end(ap);
	strbuf_setlen(&ck->path, old);
}

__attribute__((format(printf, 3, 4)))
void fmt_report_path(struct checker *ck, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ck, path, strlen(path), fmt, ap);
	va_end(ap);
}

size_t fmt_path_push(struct checker *ck, const struct rentry *e)
{
	size_t old = ck->path.len;

	if (ck->path.len)
		strbuf_addch(&ck->path, '/');
	strbuf_add(&ck->path, e->name, e->nlen);
	return old;
}

void fmt_path_pop(struct checker *ck, size_t old)
{
	strbuf_setlen(&ck->path, old);
}

static const char *git_error_text(void)
{
	const git_error *ge = git_error_last();

	return ge && ge->message ? ge->message : "unknown libgit2 error";
}

int fmt_read_failed(struct checker *ck, const char *name, size_t nlen,
		    const struct oid *id, int err, const char *what)
{
	const git_error *ge = git_error_last();

	if (err == GIT_ENOTFOUND) {
		fmt_report(ck, name, nlen, "missing %s %s", what,
			   oid_hex(id));
		return 1;
	}
	if (ge && ge->klass == GIT_ERROR_OS) {
		/* EIO, EMFILE...: says nothing about the tree */
		log_error("read object %s: %s", oid_hex(id),
			  git_error_text());
		fmt_report(ck, name, nlen, "cannot read %s %s: %s", what,
			   oid_hex(id), git_error_text());
		ck->fatal = E_TEMP;
		ck->stop = true;
		return E_TEMP;
	}
	fmt_report(ck, name, nlen, "unreadable %s %s: %s", what,
		   oid_hex(id), git_error_text());
	return 1;
}

int fmt_read_tree(struct checker *ck, struct rtree *out,
		  const struct rentry *e, const struct oid *id)
{
	const char *name = e ? e->name : NULL, *why;
	size_t nlen = e ? e->nlen : 0, size;
	git_object_t type;
	int err;

	memset(out, 0, sizeof *out);
	if (e)
		id = &e->id;
	/* the header first: a huge tree is refused without being inflated */
	if ((err = git_odb_read_header(&size, &type, ck->odb, GIT_OID(id))) < 0)
		return fmt_read_failed(ck, name, nlen, id, err, "tree");
	if (type != GIT_OBJECT_TREE) {
		fmt_report(ck, name, nlen, "object %s is a %s, not a tree",
			   oid_hex(id), git_object_type2string(type));
		return 1;
	}
	if (fmt_limits.tree_entries < SIZE_MAX / ENTRY_MAX &&
	    size > fmt_limits.tree_entries * ENTRY_MAX) {
		fmt_report(ck, name, nlen,
			   "tree of %zu bytes: more entries than tree_entries_limit "
			   "(%zu) allows", size, fmt_limits.tree_entries);
		return 1;
	}
	if ((err = git_odb_read(&out->obj, ck->odb, GIT_OID(id))) < 0)
		return fmt_read_failed(ck, name, nlen, id, err, "tree");
	if (git_odb_object_type(out->obj) != GIT_OBJECT_TREE) {
		fmt_report(ck, name, nlen, "object %s is a %s, not a tree",
			   oid_hex(id),
			   git_object_type2string(git_odb_object_type(out->obj)));
		fmt_rtree_release(out);
		return 1;
	}
	why = fmt_rtree_parse(out, git_odb_object_data(out->obj),
			      git_odb_object_size(out->obj), fmt_limits.tree_entries);
	if (why == fmt_too_many)
		fmt_report(ck, name, nlen,
			   "more than tree_entries_limit (%zu) entries",
			   fmt_limits.tree_entries);
	else if (why)
		fmt_report(ck, name, nlen, "%s", why);
	if (why) {
		fmt_rtree_release(out);
		return 1;
	}
	return 0;
}

void fmt_read_trusted(struct checker *ck, struct rtree *out,
		      const struct oid *id)
{
	memset(out, 0, sizeof *out);
	if (!id || git_odb_read(&out->obj, ck->odb, GIT_OID(id)) < 0)
		return;
	if (git_odb_object_type(out->obj) != GIT_OBJECT_TREE ||
	    fmt_rtree_parse(out, git_odb_object_data(out->obj),
			    git_odb_object_size(out->obj), SIZE_MAX))
		fmt_rtree_release(out);
}

int fmt_check_blob_object(struct checker *ck, const struct rentry *e,
			  size_t *size)
{
	git_object_t type;
	size_t len;
	int err;

	if ((err = git_odb_read_header(&len, &type, ck->odb,
				       GIT_OID(&e->id))) < 0)
		return fmt_read_failed(ck, e->name, e->nlen, &e->id, err, "blob");
	if (type != GIT_OBJECT_BLOB) {
		fmt_report(ck, e->name, e->nlen, "object %s is a %s, not a blob",
			   oid_hex(&e->id), git_object_type2string(type));
		return 1;
	}
	if (size)
		*size = len;
	return 0;
}

bool fmt_check_entry(struct checker *ck, const struct rentry *e,
		     const struct rentry *prev)
{
	if (e->nlen == 0) {
		fmt_report(ck, e->name, 0, "empty name");
		return false;
	}
	if (e->nlen > NAME_MAX_BYTES) {
		fmt_report(ck, e->name, e->nlen, "name longer than %d bytes",
			   NAME_MAX_BYTES);
		return false;
	}
	if (memchr(e->name, '/', e->nlen)) {
		fmt_report(ck, e->name, e->nlen, "name contains '/'");
		return false;
	}
	for (size_t i = 0; i < e->nlen; i++) {
		unsigned char c = (unsigned char)e->name[i];
		if (c < 0x20 || c == 0x7f) {
			fmt_report(ck, e->name, e->nlen, "control character in name");
			return false;
		}
	}
	if (path_component_forbidden(e->name)) {
		fmt_report(ck, e->name, e->nlen, "forbidden name");
		return false;
	}
	if (!fmt_is_blob(e) && !fmt_is_tree(e)) {
		struct strbuf m = STRBUF_INIT;
		format_escape(&m, e->mode, e->mlen < 16 ? e->mlen : 16);
		if (fmt_mode_is(e, "120000"))
			fmt_report(ck, e->name, e->nlen, "symbolic link");
		else if (fmt_mode_is(e, "160000"))
			fmt_report(ck, e->name, e->nlen, "gitlink (submodule)");
		else if (fmt_mode_is(e, "100755"))
			fmt_report(ck, e->name, e->nlen, "executable blob");
		else
			fmt_report(ck, e->name, e->nlen, "bad mode '%s'",
				   m.len ? m.buf : "");
		strbuf_release(&m);
		return false;
	}
	if (prev) {
		int c = fmt_entry_cmp(prev, e);
		if (prev->nlen == e->nlen && !memcmp(prev->name, e->name, e->nlen)) {
			fmt_report(ck, e->name, e->nlen, "duplicate entry");
			return false;
		}
		if (c > 0) {
			fmt_report(ck, e->name, e->nlen, "entry out of order");
			return false;
		}
	}
	return true;
}

bool fmt_want_tree(struct checker *ck, const struct rentry *e)
{
	if (fmt_is_tree(e))
		return true;
	fmt_report(ck, e->name, e->nlen, "expected a tree, found a blob");
	return false;
}

bool fmt_want_blob(struct checker *ck, const struct rentry *e)
{
	if (fmt_is_blob(e))
		return true;
	fmt_report(ck, e->name, e->nlen, "expected a blob, found a tree");
	return false;
}

bool fmt_is_shard_name(const struct rentry *e)
{
	return layout_shard_name(NULL, e->name, e->nlen);
}

unsigned fmt_shard_value(const char *xx)
{
	unsigned v = 0;

	layout_shard_name(&v, xx, 2);
	return v;
}

bool fmt_unchanged(const struct rtree *t, const struct rentry *e)
{
	const struct rentry *te = fmt_rtree_find(t, e);

	return te && te->mlen == e->mlen && !memcmp(te->mode, e->mode, e->mlen) &&
	       oid_equal(&te->id, &e->id);
}

/* --- the entry points ------------------------------------------------------ */

static int run(struct checker *ck, struct repo *r, const struct oid *tree,
	       const struct oid *trusted)
{
	int err;

	strbuf_init(&ck->path, 64);
	if (git_repository_odb(&ck->odb, r->git) < 0) {
		log_error("open object database: %s", git_error_text());
		strbuf_release(&ck->path);
		return E_TEMP;
	}
	ck->incremental = trusted != NULL;
	ck->trusted = trusted;
	err = fmt_check_root(ck, tree, trusted);
	git_odb_free(ck->odb);
	strbuf_release(&ck->path);
	fmt_strset_release(&ck->keys);
	fmt_strset_release(&ck->changed);
	fmt_strset_release(&ck->seen);
	fmt_imap_kept_release(ck);
	fmt_purged_release(ck);
	free(ck->add);
	ck->add = NULL;
	return err < 0 ? err : ck->fatal;
}

struct first {
	struct strbuf *err;
	bool done;
};

static void first_problem(const char *path, const char *reason, void *data)
{
	struct first *f = data;

	if (f->done || !f->err)
		return;
	f->done = true;
	if (*path)
		fmt_errf(f->err, "'%s': %s", path, reason);
	else
		fmt_errf(f->err, "root tree: %s", reason);
}

static int check_tree(struct repo *r, const struct oid *tree,
		      const struct oid *trusted, bool ancestor,
		      struct strbuf *err)
{
	struct first f = { err, false };
	struct checker ck;
	int ret;

	memset(&ck, 0, sizeof ck);
	ck.fn = first_problem;
	ck.data = &f;
	ck.merge = true;
	ck.ancestor = ancestor;
	ret = run(&ck, r, tree, trusted);
	if (ret < 0)
		return ret;
	return ck.problems ? E_INVALID : 0;
}

int format_check_tree(struct repo *r, const struct oid *tree,
		      const struct oid *trusted, struct strbuf *err)
{
	return check_tree(r, tree, trusted, false, err);
}

int format_check_tree_since(struct repo *r, const struct oid *tree,
			    const struct oid *ancestor, struct strbuf *err)
{
	return check_tree(r, tree, ancestor, true, err);
}

/* The tree of commit; *parent (may be NULL) whether one of its parents
 * is the commit parent_of. */
static int commit_tree(struct oid *out, struct repo *r,
		       const struct oid *commit,
		       struct strbuf *err, const struct oid *parent_of,
		       bool *parent)
{
	git_commit *c;
	int e;

	if ((e = git_commit_lookup(&c, r->git, GIT_OID(commit))) < 0) {
		const git_error *ge = git_error_last();
		if (err)
			fmt_errf(err, "commit %s: %s", oid_hex(commit),
				    e == GIT_ENOTFOUND ? "missing" :
				    ge && ge->message ? ge->message : "unreadable");
		return e == GIT_ENOTFOUND || !ge || ge->klass != GIT_ERROR_OS ?
		       E_INVALID : E_TEMP;
	}
	oid_cpy(out, OID(git_commit_tree_id(c)));
	if (parent) {
		*parent = false;
		for (unsigned i = 0; parent_of && i < git_commit_parentcount(c); i++)
			if (oid_equal(OID(git_commit_parent_id(c, i)), parent_of))
				*parent = true;
	}
	git_commit_free(c);
	return 0;
}

int format_check_commit(struct repo *r, const struct oid *commit,
			const struct oid *trusted_commit, struct strbuf *err)
{
	struct oid tree, trusted;
	bool parent;
	int e;

	if ((e = commit_tree(&tree, r, commit, err, trusted_commit,
			     &parent)) < 0)
		return e;
	if (trusted_commit && commit_tree(&trusted, r, trusted_commit, NULL,
					  NULL, NULL) < 0)
		trusted_commit = NULL;	/* check everything */
	/*
	 * An ancestor further back (maildag merge checks a peer's commit
	 * against mail, often its ancestor): one walk of the history, far
	 * cheaper than matching every record of a large mailbox.
	 */
	if (trusted_commit && !parent)
		parent = git_graph_descendant_of(r->git, GIT_OID(commit),
						 GIT_OID(trusted_commit)) == 1;
	return check_tree(r, &tree, trusted_commit ? &trusted : NULL,
			  trusted_commit && parent, err);
}

static void ignore_problem(const char *path, const char *reason, void *data)
{
	(void)path;
	(void)reason;
	(void)data;
}

static int added_bytes(unsigned long long *out, struct repo *r,
		       const struct oid *tree, const struct oid *trusted)
{
	struct format_limits saved = fmt_limits;
	struct checker ck;
	int ret;

	*out = 0;
	if (trusted && oid_equal(tree, trusted))
		return 0;
	/* every blob counts here, whatever the limits say */
	fmt_limits.message_bytes = ULLONG_MAX;
	fmt_limits.subscriptions_bytes = ULLONG_MAX;
	fmt_limits.tree_entries = SIZE_MAX;
	fmt_limits.folders = SIZE_MAX;
	memset(&ck, 0, sizeof ck);
	ck.all = true;
	ck.fn = ignore_problem;
	strbuf_init(&ck.path, 64);
	if (git_repository_odb(&ck.odb, r->git) < 0) {
		fmt_limits = saved;
		strbuf_release(&ck.path);
		return log_error("open object database: %s", git_error_text());
	}
	ck.incremental = trusted != NULL;
	ck.trusted = trusted;
	ret = fmt_check_root(&ck, tree, trusted);
	if (ret >= 0)
		ret = fmt_new_bytes(&ck);
	if (ret >= 0 && ck.fatal)
		ret = ck.fatal;
	*out = ck.added;
	fmt_limits = saved;
	git_odb_free(ck.odb);
	strbuf_release(&ck.path);
	fmt_strset_release(&ck.keys);
	fmt_strset_release(&ck.changed);
	fmt_strset_release(&ck.seen);
	fmt_purged_release(&ck);
	free(ck.add);
	return ret < 0 ? ret : 0;
}

int format_added_bytes(unsigned long long *out, struct repo *r,
		       const struct oid *commit,
		       const struct oid *trusted_commit)
{
	struct oid tree, trusted;
	int e;

	*out = 0;
	if (trusted_commit && oid_equal(commit, trusted_commit))
		return 0;
	if ((e = commit_tree(&tree, r, commit, NULL, NULL, NULL)) < 0)
		return e;
	if (trusted_commit && commit_tree(&trusted, r, trusted_commit, NULL,
					  NULL, NULL) < 0)
		trusted_commit = NULL;	/* count everything */
	return added_bytes(out, r, &tree, trusted_commit ? &trusted : NULL);
}

int format_fsck_tree(struct repo *r, const struct oid *tree,
		     format_problem_fn *fn, void *data,
		     struct format_stats *stats)
{
	struct checker ck;
	int ret;

	memset(&ck, 0, sizeof ck);
	ck.all = true;
	ck.fn = fn;
	ck.data = data;
	ret = run(&ck, r, tree, NULL);
	if (stats)
		*stats = ck.st;
	return ret < 0 ? ret : ck.problems;
}

int format_fsck_commit(struct repo *r, const struct oid *commit,
		       format_problem_fn *fn, void *data,
		       struct format_stats *stats)
{
	git_commit *c;
	struct oid tree;

	if (git_commit_lookup(&c, r->git, GIT_OID(commit)) < 0) {
		char *why = xasprintf("commit %s: %s", oid_hex(commit),
				      git_error_text());
		fn(NULL, why, data);
		free(why);
		if (stats)
			memset(stats, 0, sizeof *stats);
		return 1;
	}
	oid_cpy(&tree, OID(git_commit_tree_id(c)));
	git_commit_free(c);
	return format_fsck_tree(r, &tree, fn, data, stats);
}

/* --- walking messages --------------------------------------------------------- */

static int foreach_sub(struct checker *ck, const char *folder,
		       const struct rentry *sub, format_message_fn *fn,
		       void *data)
{
	struct strbuf path = STRBUF_INIT;
	struct rtree t;
	int ret = 0;

	fmt_read_trusted(ck, &t, &sub->id);
	for (size_t i = 0; i < t.n && !ret; i++) {
		struct rtree s;

		if (!fmt_is_shard_name(&t.e[i]) || !fmt_is_tree(&t.e[i]))
			continue;
		fmt_read_trusted(ck, &s, &t.e[i].id);
		for (size_t j = 0; j < s.n && !ret; j++) {
			const struct rentry *m = &s.e[j];

			if (!fmt_is_blob(m) || !maildir_name_valid(m->name))
				continue;
			/* where it is, which a tree fsck checks may not
			   have made its shard */
			strbuf_reset(&path);
			tree_shard_path(&path, folder, sub->name,
					fmt_shard_value(t.e[i].name));
			strbuf_addf(&path, "/%s", m->name);
			ret = fn(path.buf, folder, sub->name, m->name, &m->id,
				 data);
		}
		fmt_rtree_release(&s);
	}
	strbuf_release(&path);
	fmt_rtree_release(&t);
	return ret;
}

int format_foreach_message(struct repo *r, const struct oid *tree,
			   format_message_fn *fn, void *data)
{
	struct checker ck;
	struct rtree root;
	int ret = 0;

	memset(&ck, 0, sizeof ck);
	if (git_repository_odb(&ck.odb, r->git) < 0)
		return log_error("open object database: %s", git_error_text());
	fmt_read_trusted(&ck, &root, tree);
	if (!root.obj) {
		git_odb_free(ck.odb);
		return log_error("cannot read tree %s", oid_hex(tree));
	}
	for (size_t i = 0; i < root.n && !ret; i++) {
		const struct rentry *e = &root.e[i];
		struct rtree f;

		if (!fmt_is_tree(e))
			continue;
		if (fmt_name_is(e, "cur") || fmt_name_is(e, "new")) {
			ret = foreach_sub(&ck, "", e, fn, data);
			continue;
		}
		if (e->name[0] != '.' || !folder_dir_valid(e->name))
			continue;
		fmt_read_trusted(&ck, &f, &e->id);
		for (size_t j = 0; j < f.n && !ret; j++)
			if (fmt_is_tree(&f.e[j]) && (fmt_name_is(&f.e[j], "cur") ||
						 fmt_name_is(&f.e[j], "new")))
				ret = foreach_sub(&ck, e->name, &f.e[j], fn, data);
		fmt_rtree_release(&f);
	}
	fmt_rtree_release(&root);
	git_odb_free(ck.odb);
	return ret;
}
