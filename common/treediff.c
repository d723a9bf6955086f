/*
 * treediff: what differs between two trees (see treediff.h).
 */
#include "autoconf.h"

#include <stdbool.h>

#include "log.h"
#include "repo_p.h"
#include "treediff.h"

struct walk {
	struct repo *r;
	const struct treediff_ops *ops;
	void *data;
};

static int walk(struct walk *w, const struct oid *a, const struct oid *b,
		struct strbuf *path);

static int load(struct walk *w, git_tree **out, const struct oid *id)
{
	if (w->ops->load)
		return w->ops->load(out, id, w->data);
	if (git_tree_lookup(out, w->r->git, GIT_OID(id)) < 0)
		return log_error("read tree %s: %s", oid_hex(id),
				 repo_git_error());
	return 0;
}

/* An entry only one side has: a leaf, or a tree against nothing. */
static int one_side(struct walk *w, const git_tree_entry *e, bool added,
		    struct strbuf *path)
{
	const struct oid *id = OID(git_tree_entry_id(e));

	if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
		return walk(w, added ? NULL : id, added ? id : NULL, path);
	return w->ops->leaf(path->buf, added ? NULL : e, added ? e : NULL,
			    w->data);
}

static int walk(struct walk *w, const struct oid *a, const struct oid *b,
		struct strbuf *path)
{
	git_tree *ta = NULL, *tb = NULL;
	size_t i = 0, j = 0, na, nb, plen = path->len;
	int ret = 0;

	if (a && b && oid_equal(a, b))
		return 0;
	if (plen && w->ops->tree &&
	    (ret = w->ops->tree(path->buf, a, b, w->data)) != 0)
		return ret < 0 ? ret : 0;
	if ((a && (ret = load(w, &ta, a)) < 0) ||
	    (b && (ret = load(w, &tb, b)) < 0))
		goto done;
	na = ta ? git_tree_entrycount(ta) : 0;
	nb = tb ? git_tree_entrycount(tb) : 0;
	while (ret == 0 && (i < na || j < nb)) {
		const git_tree_entry *ea = i < na ? git_tree_entry_byindex(ta, i)
						  : NULL;
		const git_tree_entry *eb = j < nb ? git_tree_entry_byindex(tb, j)
						  : NULL;
		/* trees sort as "name/": the order git keeps entries in */
		int c = !ea ? 1 : !eb ? -1 : git_tree_entry_cmp(ea, eb);
		const struct oid *ida, *idb;
		bool at, bt;

		strbuf_setlen(path, plen);
		if (plen)
			strbuf_addch(path, '/');
		strbuf_addstr(path, git_tree_entry_name(c <= 0 ? ea : eb));
		if (c < 0) {
			i++;
			ret = one_side(w, ea, false, path);
			continue;
		}
		if (c > 0) {
			j++;
			ret = one_side(w, eb, true, path);
			continue;
		}
		i++;
		j++;
		ida = OID(git_tree_entry_id(ea));
		idb = OID(git_tree_entry_id(eb));
		if (oid_equal(ida, idb) &&
		    git_tree_entry_filemode(ea) == git_tree_entry_filemode(eb))
			continue;
		at = git_tree_entry_type(ea) == GIT_OBJECT_TREE;
		bt = git_tree_entry_type(eb) == GIT_OBJECT_TREE;
		if (at && bt) {
			ret = walk(w, ida, idb, path);
		} else if (!at && !bt) {
			ret = w->ops->leaf(path->buf, ea, eb, w->data);
		} else {
			ret = one_side(w, ea, false, path);
			if (ret == 0)
				ret = one_side(w, eb, true, path);
		}
	}
	strbuf_setlen(path, plen);
done:
	git_tree_free(ta);
	git_tree_free(tb);
	return ret;
}

int treediff(struct repo *r, const struct oid *a, const struct oid *b,
	     struct strbuf *path, const struct treediff_ops *ops, void *data)
{
	struct walk w = { r, ops, data };

	return walk(&w, a, b, path);
}
