/*
 * treeedit: repo_tree_update(), a tree with some paths changed.
 *
 * The trees a delivery, a flag change or a merge writes are the sharded
 * trees of DESIGN section 2: at 100,000 messages a shard tree holds ~400
 * entries (~30 KB), and one change rewrites it.  libgit2's
 * git_tree_create_updated() loads each such tree into a treebuilder (a
 * hash map, one allocation per entry, an existence check of every
 * object inserted) and sorts it again to write it; a third of a merge's
 * time went there.  Here each directory on a changed path is read once
 * (from libgit2's object cache when it is there), its entries merged in
 * order with the few changed ones straight into the tree's bytes, and
 * the result written with git_odb_write().  The trees are byte for byte
 * those git_tree_create_updated() writes (t/unit/treeedit-t checks it):
 * entries in git's order, modes as git writes them, and a directory left
 * empty removed from its parent.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "repo.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

/* An update, as seen from the directory being edited. */
struct op {
	const char *rest;	/* the path below that directory */
	size_t len;		/* of its first component */
	size_t seq;		/* position in the caller's list */
	const struct oid *id;	/* NULL: remove */
	bool tree;
};

/* An entry of the directory being written. */
struct ent {
	const char *name;
	size_t len;
	unsigned mode;
	const struct oid *id;
	struct oid own;		/* id, when written here */
	bool remove;
	bool in_base;		/* the directory has an entry of this name */
};

struct editor {
	git_repository *git;
	git_odb *odb;
	struct strbuf buf;
};

static size_t comp_len(const char *p)
{
	const char *s = strchr(p, '/');

	return s ? (size_t)(s - p) : strlen(p);
}

/* Plain byte order of first components, then the caller's order. */
static int op_cmp(const void *a, const void *b)
{
	const struct op *x = a, *y = b;
	int c = memcmp(x->rest, y->rest, x->len < y->len ? x->len : y->len);

	if (c)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* git's order: a tree sorts as if its name ended in '/'. */
static int git_order(const char *a, size_t alen, bool atree,
		     const char *b, size_t blen, bool btree)
{
	size_t n = alen < blen ? alen : blen;
	int c = memcmp(a, b, n), ca, cb;

	if (c)
		return c;
	ca = n < alen ? (unsigned char)a[n] : atree ? '/' : 0;
	cb = n < blen ? (unsigned char)b[n] : btree ? '/' : 0;
	return ca - cb;
}

static int ent_git_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	return git_order(x->name, x->len, x->mode == GIT_FILEMODE_TREE,
			 y->name, y->len, y->mode == GIT_FILEMODE_TREE);
}

static bool bad_name(const char *name, size_t len)
{
	return len == 0 || (len == 1 && name[0] == '.') ||
	       (len == 2 && !memcmp(name, "..", 2)) ||
	       (len == 4 && !strncasecmp(name, ".git", 4));
}

static void add_entry(struct strbuf *b, unsigned mode, const char *name,
		      size_t len, const struct oid *id)
{
	strbuf_addf(b, "%o ", mode);
	strbuf_add(b, name, len);
	strbuf_addch(b, '\0');
	strbuf_add(b, id->id, OID_RAWSZ);
}

/* The change index for name, among changes sorted by op_cmp's order. */
static struct ent *find_change(struct ent *ch, size_t n, const char *name,
			       size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		size_t l = ch[mid].len < len ? ch[mid].len : len;
		int c = memcmp(ch[mid].name, name, l);
		if (!c && ch[mid].len != len)
			c = ch[mid].len < len ? -1 : 1;
		if (!c)
			return &ch[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int edit_dir(struct oid *out, bool *empty, struct editor *ed,
		    const struct oid *base, struct op *ops, size_t n,
		    const char *where);

/*
 * The result for one name of the directory: ops[0, n) all start with it.
 * Leaves its entry's mode and id in *e, or e->remove.
 */
static int edit_name(struct ent *e, struct editor *ed, const git_tree *t,
		     struct op *ops, size_t n, const char *where)
{
	struct op leaf_op, *leaf = NULL;
	const git_tree_entry *be;
	const struct oid *sub_base = NULL;
	char *name = xstrndup(ops[0].rest, ops[0].len);
	size_t first_sub = n, nsub = 0;
	bool sub_empty;
	int ret = 0;

	e->name = ops[0].rest;
	e->len = ops[0].len;
	/* ops are in the caller's order: the last direct one wins ... */
	for (size_t i = 0; i < n; i++)
		if (!ops[i].rest[ops[i].len]) {
			leaf_op = ops[i];
			leaf = &leaf_op;
		}
	/* ... and applies before the deeper ones that come after it */
	for (size_t i = 0; i < n; i++)
		if (ops[i].rest[ops[i].len] == '/' && (!leaf || ops[i].seq > leaf->seq)) {
			if (first_sub == n)
				first_sub = i;
			ops[first_sub + nsub++] = ops[i];
		}
	be = t ? git_tree_entry_byname(t, name) : NULL;
	if (!nsub) {
		e->remove = !leaf->id;
		e->mode = leaf->tree ? GIT_FILEMODE_TREE : GIT_FILEMODE_BLOB;
		e->id = leaf->id;
		goto done;
	}
	if (leaf) {
		if (leaf->id && !leaf->tree) {
			ret = log_error("write tree: '%s%s' is not a tree", where, name);
			goto done;
		}
		sub_base = leaf->id;
	} else if (be) {
		if (git_tree_entry_type(be) != GIT_OBJECT_TREE) {
			ret = log_error("write tree: '%s%s' is not a tree", where, name);
			goto done;
		}
		sub_base = OID(git_tree_entry_id(be));
	}
	for (size_t i = first_sub; i < first_sub + nsub; i++) {
		ops[i].rest += ops[i].len + 1;
		ops[i].len = comp_len(ops[i].rest);
	}
	{
		struct strbuf w = STRBUF_INIT;
		strbuf_addf(&w, "%s%s/", where, name);
		ret = edit_dir(&e->own, &sub_empty, ed, sub_base,
			       ops + first_sub, nsub, w.buf);
		strbuf_release(&w);
	}
	if (ret < 0)
		goto done;
	e->remove = sub_empty;
	e->mode = GIT_FILEMODE_TREE;
	e->id = &e->own;
done:
	free(name);
	return ret;
}

/*
 * The tree base (NULL: empty) with ops applied; *empty when nothing is
 * left (the caller removes the entry; out is then not set).
 */
static int edit_dir(struct oid *out, bool *empty, struct editor *ed,
		    const struct oid *base, struct op *ops, size_t n,
		    const char *where)
{
	git_tree *t = NULL;
	struct ent *ch, *add;
	size_t nch = 0, nadd = 0, nbase, kept = 0;
	bool changed = false;
	int ret = 0;

	*empty = false;
	if (base && git_tree_lookup(&t, ed->git, GIT_OID(base)) < 0)
		return log_error("read tree %s: %s", oid_hex(base),
				 repo_git_error());
	nbase = t ? git_tree_entrycount(t) : 0;
	qsort(ops, n, sizeof *ops, op_cmp);
	ch = xcalloc(n, sizeof *ch);
	add = xcalloc(n, sizeof *add);
	for (size_t i = 0, j; i < n && ret == 0; i = j) {
		for (j = i + 1; j < n && ops[j].len == ops[i].len &&
		     !memcmp(ops[j].rest, ops[i].rest, ops[i].len); j++)
			;
		if (bad_name(ops[i].rest, ops[i].len)) {
			ret = log_error("write tree: bad path '%s%.*s'", where,
					(int)ops[i].len, ops[i].rest);
			break;
		}
		ret = edit_name(&ch[nch++], ed, t, ops + i, j - i, where);
	}
	if (ret < 0)
		goto done;

	/* the entries kept, replaced and added, in git's order */
	for (size_t i = 0; i < nbase; i++) {
		const git_tree_entry *be = git_tree_entry_byindex(t, i);
		const char *nm = git_tree_entry_name(be);
		struct ent *c = find_change(ch, nch, nm, strlen(nm));

		if (!c) {
			kept++;
			continue;
		}
		if (c->remove || c->mode != (unsigned)git_tree_entry_filemode_raw(be) ||
		    !oid_equal(c->id, OID(git_tree_entry_id(be))))
			changed = true;
		c->in_base = true;
	}
	for (size_t i = 0; i < nch; i++) {
		if (ch[i].remove)
			continue;	/* gone, or never there */
		if (!ch[i].in_base)
			changed = true;
		add[nadd++] = ch[i];
	}
	if (base && !changed) {
		oid_cpy(out, base);
		goto done;
	}
	if (!kept && !nadd) {
		*empty = true;
		goto done;
	}
	qsort(add, nadd, sizeof *add, ent_git_cmp);
	strbuf_reset(&ed->buf);
	for (size_t i = 0, k = 0; i < nbase || k < nadd;) {
		const git_tree_entry *be = NULL;
		const char *nm = NULL;
		size_t len = 0;
		unsigned mode = 0;

		/* skip the base entries a change stands for */
		while (i < nbase) {
			be = git_tree_entry_byindex(t, i);
			nm = git_tree_entry_name(be);
			len = strlen(nm);
			if (!find_change(ch, nch, nm, len))
				break;
			be = NULL;
			i++;
		}
		if (be)
			mode = (unsigned)git_tree_entry_filemode_raw(be);
		if (be && (k >= nadd ||
			   git_order(nm, len, mode == GIT_FILEMODE_TREE,
				     add[k].name, add[k].len,
				     add[k].mode == GIT_FILEMODE_TREE) < 0)) {
			add_entry(&ed->buf, mode, nm, len,
				  OID(git_tree_entry_id(be)));
			i++;
		} else if (k < nadd) {
			add_entry(&ed->buf, add[k].mode, add[k].name, add[k].len,
				  add[k].id);
			k++;
		}
	}
	if (git_odb_write(GIT_OID(out), ed->odb, ed->buf.buf, ed->buf.len,
			  GIT_OBJECT_TREE) < 0)
		ret = log_error("write tree: %s", repo_git_error());
done:
	free(ch);
	free(add);
	git_tree_free(t);
	return ret;
}

int repo_tree_update(struct oid *out, struct repo *r, const struct oid *base,
		     const struct repo_update *ups, size_t n)
{
	struct editor ed = { .git = r->git, .buf = STRBUF_INIT };
	struct op *ops = xcalloc(n ? n : 1, sizeof *ops);
	bool empty;
	int ret;

	for (size_t i = 0; i < n; i++) {
		const char *p = ups[i].path;
		if (*p == '/')
			p++;
		ops[i].rest = p;
		ops[i].len = comp_len(p);
		ops[i].seq = i;
		ops[i].id = ups[i].blob;
		ops[i].tree = ups[i].tree;
	}
	if (git_repository_odb(&ed.odb, r->git) < 0) {
		free(ops);
		return log_error("open object database: %s", repo_git_error());
	}
	ret = edit_dir(out, &empty, &ed, base, ops, n, "");
	/* the root is written even when empty */
	if (ret == 0 && empty &&
	    git_odb_write(GIT_OID(out), ed.odb, "", 0, GIT_OBJECT_TREE) < 0)
		ret = log_error("write tree: %s", repo_git_error());
	git_odb_free(ed.odb);
	strbuf_release(&ed.buf);
	free(ops);
	return ret < 0 ? E_FAIL : 0;
}
