/*
 * format_purged: the purged/ records in the format check (purged.h,
 * maildag-format(5) "Purged blobs", doc/purge.md 3.5).
 *
 *	- purged/ is a tree of shard blobs purged/<xx>, each of the form
 *	  purged_parse() accepts; against an ancestor's tree the set never
 *	  shrinks (no id of the ancestor's record goes);
 *	- no message names a blob its own tree lists: checked for every
 *	  message of a changed shard, and for the whole tree when the set
 *	  gained ids against the trusted tree (the only O(mailbox) case, a
 *	  purge or a forget);
 *	- a message blob that is absent is valid exactly when the trusted
 *	  tree, or a tree the caller named (format_purged_hint()), lists it:
 *	  a purged blob stays named by the history before its purge.
 *
 * Shards of a set are read when first asked for (one blob per shard
 * number), so a check that meets no absent blob reads none of them.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format_p.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "purged.h"
#include "repo_p.h"
#include "xalloc.h"

static struct purged hints = PURGED_INIT;

int format_purged_hint(struct repo *r, const struct oid *tree)
{
	struct checker ck;
	struct rtree root, dir;
	const struct rentry *e;
	int ret = 0;

	memset(&ck, 0, sizeof ck);
	if (git_repository_odb(&ck.odb, r->git) < 0)
		return log_error("open object database: %s",
				 git_error_last() ? git_error_last()->message : "");
	fmt_read_trusted(&ck, &root, tree);
	memset(&dir, 0, sizeof dir);
	if ((e = fmt_rtree_lookup(&root, PURGED_DIR)) && fmt_is_tree(e))
		fmt_read_trusted(&ck, &dir, &e->id);
	for (size_t i = 0; i < dir.n && !ret; i++) {
		struct strbuf why = STRBUF_INIT;
		git_odb_object *o;
		unsigned x;

		if (!layout_shard_name(&x, dir.e[i].name, dir.e[i].nlen))
			continue;
		if (git_odb_read(&o, ck.odb, GIT_OID(&dir.e[i].id)) < 0) {
			ret = log_error("read '" PURGED_DIR "/%s'", dir.e[i].name);
			break;
		}
		if (purged_parse(&hints, git_odb_object_data(o),
				 git_odb_object_size(o), x, &why) < 0)
			ret = log_error("'" PURGED_DIR "/%s': %s", dir.e[i].name,
					why.buf);
		git_odb_object_free(o);
		strbuf_release(&why);
	}
	fmt_rtree_release(&dir);
	fmt_rtree_release(&root);
	git_odb_free(ck.odb);
	return ret < 0 ? E_INVALID : 0;
}

void format_purged_hints_clear(void)
{
	purged_release(&hints);
}

void fmt_purged_release(struct checker *ck)
{
	for (int k = 0; k < 2; k++) {
		fmt_rtree_release(&ck->ptree[k]);
		purged_release(&ck->pset[k]);
	}
	purged_release(&ck->pnew);
	memset(ck->ploaded, 0, sizeof ck->ploaded);
}

/* Read shard x of set k (0 the checked tree's, 1 the trusted one's). */
static void load_shard(struct checker *ck, int k, unsigned x)
{
	struct strbuf why = STRBUF_INIT;
	const struct rentry *e;
	git_odb_object *o;
	char xx[3];

	ck->ploaded[k][x] = true;
	snprintf(xx, sizeof xx, "%02x", x);
	if (!ck->ptree[k].obj || !(e = fmt_rtree_lookup(&ck->ptree[k], xx)))
		return;
	if (git_odb_read(&o, ck->odb, GIT_OID(&e->id)) < 0)
		return;		/* a checked record was read already */
	purged_parse(&ck->pset[k], git_odb_object_data(o),
		     git_odb_object_size(o), x, &why);
	git_odb_object_free(o);
	strbuf_release(&why);
}

static bool lists(struct checker *ck, int k, const struct oid *id)
{
	if (!ck->ptree[k].obj)
		return false;
	if (!ck->ploaded[k][id->id[0]])
		load_shard(ck, k, id->id[0]);
	return purged_has(&ck->pset[k], id);
}

/* One record blob purged/<xx> of the checked tree, changed against te. */
static int check_record(struct checker *ck, const struct rentry *e,
			const struct rentry *te)
{
	struct strbuf why = STRBUF_INIT;
	struct purged now = PURGED_INIT;
	git_odb_object *o = NULL;
	unsigned x = fmt_shard_value(e->name);
	int err;

	if ((err = git_odb_read(&o, ck->odb, GIT_OID(&e->id))) < 0)
		return fmt_read_failed(ck, e->name, e->nlen, &e->id, err,
				       "blob");
	if (git_odb_object_type(o) != GIT_OBJECT_BLOB) {
		fmt_report(ck, e->name, e->nlen, "not a blob");
	} else if (purged_parse(&now, git_odb_object_data(o),
				git_odb_object_size(o), x, &why) < 0) {
		fmt_report(ck, e->name, e->nlen, "%s", why.buf);
	} else {
		(void)te;
		if (!ck->ploaded[1][x])
			load_shard(ck, 1, x);
		for (size_t i = 0; i < now.n; i++)
			if (!lists(ck, 1, &now.v[i]))
				purged_add(&ck->pnew, &now.v[i]);
		/* the set never shrinks along a history */
		if (ck->incremental && ck->ancestor) {
			struct purged both = PURGED_INIT;
			purged_union(&both, &now);
			for (size_t i = 0; i < ck->pset[1].n; i++)
				if (ck->pset[1].v[i].id[0] == x)
					purged_add(&both, &ck->pset[1].v[i]);
			if (both.n != now.n)
				fmt_report(ck, e->name, e->nlen,
					   "purged ids dropped");
			purged_release(&both);
		}
		purged_union(&ck->pset[0], &now);
		ck->ploaded[0][x] = true;
	}
	git_odb_object_free(o);
	purged_release(&now);
	strbuf_release(&why);
	return ck->fatal;
}

int fmt_purged_root(struct checker *ck, const struct rtree *t,
		    const struct rtree *tt)
{
	const struct rentry *e = fmt_rtree_lookup(t, PURGED_DIR);
	const struct rentry *te = fmt_rtree_lookup(tt, PURGED_DIR);
	const struct rentry *prev = NULL;
	size_t old;
	int r;

	if (te && fmt_is_tree(te))
		fmt_read_trusted(ck, &ck->ptree[1], &te->id);
	if (!e) {
		if (te && ck->incremental && ck->ancestor)
			fmt_report(ck, PURGED_DIR, strlen(PURGED_DIR),
				   "purged ids dropped");
		return 0;
	}
	if (!fmt_want_tree(ck, e))
		return 0;
	if ((r = fmt_read_tree(ck, &ck->ptree[0], e, NULL)))
		return r < 0 ? r : 0;
	if (te && oid_equal(&te->id, &e->id))
		return 0;	/* the trusted set: nothing new */
	old = fmt_path_push(ck, e);
	for (size_t i = 0; i < ck->ptree[0].n && !ck->stop; i++) {
		const struct rentry *s = &ck->ptree[0].e[i], *ts;

		if (!fmt_check_entry(ck, s, prev))
			continue;
		prev = s;
		if (!fmt_is_shard_name(s)) {
			fmt_report(ck, s->name, s->nlen, "not a shard name");
			continue;
		}
		if (!fmt_want_blob(ck, s))
			continue;
		ts = fmt_rtree_find(&ck->ptree[1], s);
		if (ts && oid_equal(&ts->id, &s->id))
			continue;
		if (check_record(ck, s, ts) < 0)
			break;
	}
	/* a shard of the ancestor's records that is gone dropped ids */
	for (size_t i = 0; ck->incremental && ck->ancestor && !ck->stop &&
			   i < ck->ptree[1].n; i++)
		if (!fmt_rtree_find(&ck->ptree[0], &ck->ptree[1].e[i]))
			fmt_report(ck, ck->ptree[1].e[i].name,
				   ck->ptree[1].e[i].nlen, "purged ids dropped");
	fmt_path_pop(ck, old);
	return ck->fatal;
}

bool fmt_purged_message(struct checker *ck, const struct rentry *e)
{
	if (!lists(ck, 0, &e->id))
		return false;
	fmt_report(ck, e->name, e->nlen, "message of purged blob %s",
		   oid_hex(&e->id));
	return true;
}

int fmt_purged_blob(struct checker *ck, const struct rentry *e, size_t *size)
{
	git_object_t type;
	size_t len;
	int err;

	err = git_odb_read_header(&len, &type, ck->odb, GIT_OID(&e->id));
	if (err == GIT_ENOTFOUND &&
	    (lists(ck, 1, &e->id) || purged_has(&hints, &e->id)))
		return 2;	/* purged on purpose: no bytes to count */
	if (err == 0 && type == GIT_OBJECT_BLOB) {
		*size = len;
		return 0;
	}
	return fmt_check_blob_object(ck, e, size);
}

/* Every message of a folder's cur/ or new/ (tree id) against pnew. */
static void scan_sub(struct checker *ck, const struct oid *id)
{
	struct rtree t;

	fmt_read_trusted(ck, &t, id);
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		struct rtree s;
		size_t old;

		if (!fmt_is_tree(&t.e[i]))
			continue;
		fmt_read_trusted(ck, &s, &t.e[i].id);
		old = fmt_path_push(ck, &t.e[i]);
		for (size_t j = 0; j < s.n && !ck->stop; j++)
			if (purged_has(&ck->pnew, &s.e[j].id))
				fmt_report(ck, s.e[j].name, s.e[j].nlen,
					   "message of purged blob %s",
					   oid_hex(&s.e[j].id));
		fmt_path_pop(ck, old);
		fmt_rtree_release(&s);
	}
	fmt_rtree_release(&t);
}

void fmt_purged_scan(struct checker *ck, const struct rtree *root)
{
	if (!ck->incremental || !ck->pnew.n)
		return;
	for (size_t i = 0; i < root->n && !ck->stop; i++) {
		const struct rentry *e = &root->e[i];
		struct rtree f;
		size_t old;

		if (!fmt_is_tree(e))
			continue;
		old = fmt_path_push(ck, e);
		if (fmt_name_is(e, "cur") || fmt_name_is(e, "new")) {
			scan_sub(ck, &e->id);
		} else if (e->name[0] == '.') {
			fmt_read_trusted(ck, &f, &e->id);
			for (size_t j = 0; j < f.n && !ck->stop; j++)
				if (fmt_is_tree(&f.e[j]) &&
				    (fmt_name_is(&f.e[j], "cur") ||
				     fmt_name_is(&f.e[j], "new"))) {
					size_t o2 = fmt_path_push(ck, &f.e[j]);
					scan_sub(ck, &f.e[j].id);
					fmt_path_pop(ck, o2);
				}
			fmt_rtree_release(&f);
		}
		fmt_path_pop(ck, old);
	}
}
