/*
 * merge_write: step 4 of the Maildir merge (see merge.c): the resolved
 * groups as changes to ours, counted and told to the caller, one update
 * per path, written with the subtrees of theirs reused where they are
 * the result, and a marker for every folder that holds messages.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "merge_p.h"
#include "repo_p.h"
#include "xalloc.h"

/* --- step 4: changes to ours, notes and counts ------------------------- */

static void count(struct merge_counts *c, enum merge_note_kind k)
{
	switch (k) {
	case MERGE_NOTE_ADD: c->added++; break;
	case MERGE_NOTE_EXPUNGE: c->expunged++; break;
	case MERGE_NOTE_MOVE: c->moved++; break;
	case MERGE_NOTE_FLAGS: c->flagged++; break;
	case MERGE_NOTE_RENAME: c->renamed++; break;
	case MERGE_NOTE_OTHER: break;
	}
}

static enum merge_note_kind change_kind(const struct view *v,
					const struct res *r)
{
	if (strcmp(v->folder, r->folder) || v->sub != r->sub)
		return MERGE_NOTE_MOVE;
	if (strcmp(v->mn.key, r->key))
		return MERGE_NOTE_RENAME;
	return MERGE_NOTE_FLAGS;
}

void mg_ident_changes(struct mctx *m, struct ident *id, int s)
{
	struct merge_counts *c = m->st ? (s == O ? &m->st->ours : &m->st->theirs) :
				 NULL;
	bool *used = xcalloc(id->nres ? id->nres : 1, sizeof *used);

	for (size_t i = 0; i < id->n[s]; i++) {
		const struct view *v = &id->v[s][i];
		size_t k;
		/* the same path in the result: nothing to do */
		for (k = 0; k < id->nres; k++)
			if (!used[k] && !strcmp(id->res[k].path, v->path))
				break;
		if (k < id->nres) {
			used[k] = true;
			continue;
		}
		if (s == O)
			update_list_add(&m->ups, v->path, NULL);
		/* a single entry on each side is a change of place or name */
		if (id->n[s] == 1 && id->nres == 1) {
			enum merge_note_kind kind = change_kind(v, &id->res[0]);
			used[0] = true;
			if (s == O) {
				update_list_add(&m->ups, id->res[0].path, id->id);
				mg_note(m, kind, v->path, id->res[0].path);
			}
			if (c)
				count(c, kind);
			continue;
		}
		if (s == O)
			mg_note(m, MERGE_NOTE_EXPUNGE, v->path, NULL);
		if (c)
			count(c, MERGE_NOTE_EXPUNGE);
	}
	for (size_t k = 0; k < id->nres; k++) {
		if (used[k])
			continue;
		if (s == O) {
			update_list_add(&m->ups, id->res[k].path, id->id);
			mg_note(m, MERGE_NOTE_ADD, NULL, id->res[k].path);
		}
		if (c)
			count(c, MERGE_NOTE_ADD);
	}
	free(used);
}

static int update_cmp(const void *a, const void *b)
{
	const struct repo_update *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	/* an upsert after a removal of the same path, then by blob */
	if (!x->blob || !y->blob)
		return x->blob ? 1 : y->blob ? -1 : 0;
	return oid_cmp(x->blob, y->blob);
}

void mg_updates_normalize(struct update_list *l)
{
	size_t w = 0;

	if (!l->n)
		return;
	qsort(l->v, l->n, sizeof *l->v, update_cmp);
	for (size_t i = 0; i < l->n; i++) {
		if (w && !strcmp(l->v[w - 1].path, l->v[i].path)) {
			struct repo_update *prev = &l->v[w - 1];
			if (!prev->blob && l->v[i].blob) {
				free((char *)prev->path);
				*prev = l->v[i];
				continue;
			}
			if (prev->blob && l->v[i].blob &&
			    !oid_equal(prev->blob, l->v[i].blob))
				log_warn("two blobs for '%s': keeping %s",
					 prev->path, oid_hex(prev->blob));
			free((char *)l->v[i].path);
			free((struct oid *)l->v[i].blob);
			continue;
		}
		l->v[w++] = l->v[i];
	}
	l->n = w;
}

int mg_restore_markers(struct oid *tree, struct mctx *m)
{
	struct update_list ups = UPDATE_LIST_INIT;
	git_tree *root = NULL;
	struct oid empty;
	int ret;

	if ((ret = mg_tree_load(&root, m, tree)) < 0)
		return ret;
	for (size_t i = 0; i < git_tree_entrycount(root) && ret == 0; i++) {
		const git_tree_entry *fe = git_tree_entry_byindex(root, i);
		git_tree *ft = NULL;
		bool has_mail = false;

		if (git_tree_entry_type(fe) != GIT_OBJECT_TREE ||
		    git_tree_entry_name(fe)[0] != '.')
			continue;
		if ((ret = mg_tree_load(&ft, m, OID(git_tree_entry_id(fe)))) < 0)
			break;
		for (int k = 0; k < 2; k++) {
			const git_tree_entry *se = git_tree_entry_byname(ft,
							k ? "new" : "cur");
			has_mail |= se && git_tree_entry_type(se) == GIT_OBJECT_TREE;
		}
		if (has_mail && !git_tree_entry_byname(ft, "maildirfolder")) {
			char *p = xasprintf("%s/maildirfolder", git_tree_entry_name(fe));
			if (!ups.n)
				ret = repo_blob_from_buffer(&empty, m->r, "", 0);
			if (ret == 0)
				update_list_add(&ups, p, &empty);
			free(p);
		}
		git_tree_free(ft);
	}
	git_tree_free(root);
	if (ret == 0 && ups.n)
		ret = repo_tree_update(tree, m->r, tree, ups.v, ups.n);
	update_list_release(&ups);
	return ret;
}

/* --- step 4: writing the result ------------------------------------------ */

static int dirrec_cmp(const void *a, const void *b)
{
	const struct dirrec *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	return c ? c : (int)x->diff - (int)y->diff;
}

static const struct dirrec *dir_find(const struct mctx *m, const char *path,
				     size_t len, unsigned diff)
{
	size_t lo = 0, hi = m->ndirs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct dirrec *d = &m->dirs[mid];
		int c = strncmp(d->path, path, len);
		if (!c)
			c = d->path[len] ? 1 : (int)d->diff - (int)diff;
		if (!c)
			return d;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool is_shard_dir(const char *path, size_t len)
{
	char *d = xstrndup(path, len);
	bool yes = mg_shard_dir(d) >= 0;

	free(d);
	return yes;
}

/* Length of the directory part of path ("" -> 0). */
static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? (size_t)(slash - path) : 0;
}

/* Does theirs' diff, as updates, equal ups[s, e) (all in directory d)? */
static bool same_as_theirs(const struct mctx *m, const struct repo_update *ups,
			   size_t s, size_t e, const char *d, size_t dlen)
{
	size_t k = s, lo = 0, hi = m->ln;

	/* leaves are sorted by path: start at the first one under d */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(m->lv[mid].path, d, dlen);
		if (c < 0 || (c == 0 && m->lv[mid].path[dlen] < '/'))
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < m->ln;) {
		const struct leaf *l = &m->lv[i];
		const struct oid *want = NULL;
		size_t j = i;
		bool theirs = false;

		if (strncmp(l->path, d, dlen) || l->path[dlen] != '/')
			break;
		if (strchr(l->path + dlen + 1, '/'))
			return false;	/* deeper (not in a valid tree) */
		/* the leaves of this path: theirs' new blob, or a removal */
		for (; j < m->ln && !strcmp(m->lv[j].path, l->path); j++) {
			if (m->lv[j].diff == DIFF_OURS || m->lv[j].diff == DIFF_COMMON)
				return false;
			theirs = true;
			if (m->lv[j].added)
				want = &m->lv[j].id;
		}
		i = j;
		if (!theirs)
			continue;
		if (k >= e || strcmp(ups[k].path, l->path))
			return false;
		if (want ? !ups[k].blob || !oid_equal(want, ups[k].blob) :
			   ups[k].blob != NULL)
			return false;
		k++;
	}
	return k == e;
}

static int leaf_path_cmp(const void *a, const void *b)
{
	const struct leaf *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	return c ? c : (int)x->diff - (int)y->diff;
}

int mg_write_result(struct oid *out, struct mctx *m)
{
	const struct update_list *l = &m->ups;
	struct repo_update *gu = xcalloc(l->n + m->ntups + 1, sizeof *gu);
	size_t n = 0;
	int ret = 0;

	if (m->ndirs)
		qsort(m->dirs, m->ndirs, sizeof *m->dirs, dirrec_cmp);
	/*
	 * same_as_theirs() scans leaves in path order (the identities'
	 * pointers to blob ids go stale: nothing reads them from here on)
	 */
	if (m->ln)
		qsort(m->lv, m->ln, sizeof *m->lv, leaf_path_cmp);
	for (size_t i = 0; i < l->n;) {
		size_t dl = dir_len(l->v[i].path), j = i + 1;
		const struct dirrec *t;

		while (j < l->n && dir_len(l->v[j].path) == dl &&
		       !strncmp(l->v[j].path, l->v[i].path, dl))
			j++;
		/* only shard directories: nothing deeper can hide below them */
		if (dl && is_shard_dir(l->v[i].path, dl) &&
		    !dir_find(m, l->v[i].path, dl, DIFF_OURS) &&
		    (t = dir_find(m, l->v[i].path, dl, DIFF_THEIRS)) &&
		    same_as_theirs(m, l->v, i, j, t->path, dl)) {
			gu[n].path = t->path;
			gu[n].blob = t->present ? &t->id : NULL;
			gu[n].tree = true;
			n++;
			i = j;
			continue;
		}
		for (; i < j; i++)
			gu[n++] = l->v[i];
	}
	for (size_t i = 0; i < m->ntups; i++, n++) {
		gu[n].path = m->tups[i].path;
		gu[n].blob = m->tups[i].present ? &m->tups[i].id : NULL;
		gu[n].tree = true;
	}
	ret = repo_tree_update(out, m->r, m->tree[O], gu, n);
	free(gu);
	return ret;
}
