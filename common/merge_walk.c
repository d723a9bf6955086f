/*
 * merge_walk: steps 1 and 2 of the Maildir merge (merge.c's head comment
 * tells the four): walking base against each side down to the shard
 * directories, reading the shards both sides changed, the mtimes shards,
 * and grouping the message leaves into identities.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "folder.h"
#include "layout.h"
#include "log.h"
#include "merge_p.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strvec.h"
#include "treediff.h"
#include "xalloc.h"

/* --- step 1: the walk -------------------------------------------------- */

/* Format 2's records: imap/<xx> and [<folder>/]imapfolder. */
static bool classify_imap(struct leaf *l)
{
	const char *p = l->path, *slash = strchr(p, '/');
	const size_t dl = strlen(IMAPREC_DIR);

	if (!strcmp(p, IMAPREC_FOLDER)) {
		l->kind = LEAF_IMAPFOLDER;
		l->flen = 0;
	} else if (p[0] == '.' && slash && !strcmp(slash + 1, IMAPREC_FOLDER)) {
		char *f = xstrndup(p, (size_t)(slash - p));
		if (folder_dir_valid(f)) {
			l->kind = LEAF_IMAPFOLDER;
			l->flen = (size_t)(slash - p);
		}
		free(f);
	} else if (!strncmp(p, IMAPREC_DIR "/", dl + 1) &&
		   layout_shard_name(&l->shard, p + dl + 1, strlen(p + dl + 1))) {
		l->kind = LEAF_IMAPREC;
	}
	return l->kind != LEAF_OTHER;
}

static void classify(struct leaf *l, bool imap)
{
	const char *p = l->path, *slash;
	struct layout_path lp;

	l->kind = LEAF_OTHER;
	if (imap && classify_imap(l))
		return;
	/* a message in the wrong shard is just a file to the merge */
	if (layout_parse_tree_path(&lp, p) == 0) {
		l->kind = LEAF_MESSAGE;
		l->flen = lp.folder_len;
		l->sub = lp.sub ? SUB_NEW : SUB_CUR;
		l->name = lp.name;
		l->keylen = maildir_key_len(lp.name);
		l->shard = lp.shard;
		l->bkey = mg_identity_key(lp.name, l->keylen, &l->id);
	} else if (p[0] == '.') {
		slash = strchr(p, '/');
		if (slash && !strcmp(slash + 1, "maildirfolder")) {
			char *f = xstrndup(p, (size_t)(slash - p));
			if (folder_dir_valid(f)) {
				l->kind = LEAF_MARKER;
				l->flen = (size_t)(slash - p);
			}
			free(f);
		}
	} else if (!strncmp(p, MTIMES_DIR "/", strlen(MTIMES_DIR) + 1)) {
		const char *x = p + strlen(MTIMES_DIR) + 1;
		if (layout_shard_name(&l->shard, x, strlen(x)))
			l->kind = LEAF_MTIMES;
	}
}

static int add_leaf(struct mctx *m, const char *path, const git_tree_entry *e,
		    int diff, int added)
{
	struct leaf *l;

	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB ||
	    git_tree_entry_filemode(e) == GIT_FILEMODE_LINK) {
		log_error("'%s' is not a file: refusing to merge", path);
		return E_INVALID;
	}
	xgrow((void **)&m->lv, &m->la, m->ln + 1, sizeof *m->lv);
	l = &m->lv[m->ln++];
	memset(l, 0, sizeof *l);
	l->path = xstrdup(path);
	oid_cpy(&l->id, OID(git_tree_entry_id(e)));
	l->diff = (unsigned)diff;
	l->added = (unsigned)added;
	classify(l, m->imap);
	return 0;
}

int mg_shard_dir(const char *path)
{
	struct layout_path lp;

	return layout_parse_shard_dir(&lp, path) < 0 ? -1 : (int)lp.shard;
}

/* One side's walk against the base (treediff's callbacks). */
struct mwalk {
	struct mctx *m;
	int diff;
};

static int walk_load(git_tree **out, const struct oid *id, void *data)
{
	return mg_tree_load(out, ((struct mwalk *)data)->m, id);
}

/*
 * A directory where the side differs: on the first pass a shard
 * directory is noted to be read later (or never), else the directory is
 * recorded and gone into.
 */
static int walk_tree(const char *path, const struct oid *a, const struct oid *b,
		     void *data)
{
	struct mwalk *w = data;
	struct mctx *m = w->m;
	struct dirrec *d;
	int x;

	if (m->defer && (x = mg_shard_dir(path)) >= 0) {
		struct pending *p;
		xgrow((void **)&m->pend, &m->apend, m->npend + 1,
		      sizeof *m->pend);
		p = &m->pend[m->npend++];
		p->path = xstrdup(path);
		p->diff = (unsigned)w->diff;
		p->shard = (unsigned)x;
		p->has_a = a != NULL;
		p->has_b = b != NULL;
		if (a)
			oid_cpy(&p->ida, a);
		if (b)
			oid_cpy(&p->idb, b);
		return 1;
	}
	xgrow((void **)&m->dirs, &m->adirs, m->ndirs + 1, sizeof *m->dirs);
	d = &m->dirs[m->ndirs++];
	d->path = xstrdup(path);
	d->diff = (unsigned)w->diff;
	d->present = b != NULL;
	if (b)
		oid_cpy(&d->id, b);
	return 0;
}

static int walk_leaf(const char *path, const git_tree_entry *a,
		     const git_tree_entry *b, void *data)
{
	struct mwalk *w = data;
	int ret = 0;

	if (a)
		ret = add_leaf(w->m, path, a, w->diff, 0);
	if (b && ret == 0)
		ret = add_leaf(w->m, path, b, w->diff, 1);
	return ret;
}

int mg_walk(struct mctx *m, int diff, const struct oid *a, const struct oid *b,
	    struct strbuf *path)
{
	static const struct treediff_ops ops = { walk_load, walk_tree,
						 walk_leaf };
	struct mwalk w = { m, diff };

	return treediff(m->r, a, b, path, &ops, &w);
}

/* A per-shard blob: mtimes/<xx>, and format 2's imap/<xx>. */
static bool shard_blob(const struct leaf *l)
{
	return l->kind == LEAF_MTIMES || l->kind == LEAF_IMAPREC;
}

int mg_read_pending(struct mctx *m)
{
	bool changed[2][256], read[256];
	struct strbuf path = STRBUF_INIT;
	size_t w = 0;
	int ret = 0;

	memset(changed, 0, sizeof changed);
	for (size_t i = 0; i < m->npend; i++)
		changed[m->pend[i].diff][m->pend[i].shard] = true;
	for (size_t i = 0; i < m->ln; i++)
		if (shard_blob(&m->lv[i]))
			changed[m->lv[i].diff][m->lv[i].shard] = true;
	m->defer = false;
	for (unsigned x = 0; x < 256 && ret == 0; x++) {
		read[x] = m->full || (changed[0][x] && changed[1][x]);
		/* a contested folder record: a side's shard may not stand */
		if (!read[x] && m->contested && (changed[0][x] || changed[1][x]))
			read[x] = mg_imap_must_read(m, x, changed[0][x] ? 0 : 1,
						    &ret);
	}
	for (size_t i = 0; i < m->npend && ret == 0; i++) {
		const struct pending *p = &m->pend[i];
		struct tree_up *t;
		if (read[p->shard]) {
			strbuf_reset(&path);
			strbuf_addstr(&path, p->path);
			ret = mg_walk(m, (int)p->diff, p->has_a ? &p->ida : NULL,
				      p->has_b ? &p->idb : NULL, &path);
			continue;
		}
		if (m->st)
			m->st->shards_skipped++;
		if (p->diff != DIFF_THEIRS)
			continue;	/* ours' is already in place */
		xgrow((void **)&m->tups, &m->atups, m->ntups + 1, sizeof *m->tups);
		t = &m->tups[m->ntups++];
		t->path = xstrdup(p->path);
		t->present = p->has_b;
		if (p->has_b)
			oid_cpy(&t->id, &p->idb);
	}
	strbuf_release(&path);
	/* mtimes (and imap) blobs of those shards: theirs', as they are */
	for (size_t i = 0; i < m->ln; i++) {
		struct leaf *l = &m->lv[i];
		if (shard_blob(l) && !read[l->shard]) {
			if (l->diff == DIFF_THEIRS) {
				bool added = false;
				/* the blob theirs has, if any leaf says so */
				for (size_t k = 0; k < m->ln; k++)
					if (m->lv[k].kind == l->kind &&
					    m->lv[k].shard == l->shard &&
					    m->lv[k].diff == DIFF_THEIRS && m->lv[k].added)
						added = true;
				if (l->added || !added)
					update_list_add(&m->ups, l->path,
							l->added ? &l->id : NULL);
			}
			free(l->path);
			free(l->bkey);
			continue;
		}
		m->lv[w++] = *l;
	}
	m->ln = w;
	return ret;
}

/* --- step 2: mtimes shards and keys whose record alone changed --------- */

void mg_mtimes_states_from_leaves(struct mctx *m)
{
	for (size_t i = 0; i < m->ln; i++) {
		struct leaf *l = &m->lv[i];
		struct mshard *s;

		if (l->kind != LEAF_MTIMES)
			continue;
		s = &m->ms[l->shard];
		s->touched = true;
		if (!l->added) {
			s->known[B] = s->present[B] = true;
			oid_cpy(&s->id[B], &l->id);
		} else {
			s->known[1 + l->diff] = s->present[1 + l->diff] = true;
			oid_cpy(&s->id[1 + l->diff], &l->id);
		}
		s->seen[l->diff] = true;
		s->added[l->diff] |= l->added;
	}
	for (unsigned x = 0; x < 256; x++) {
		struct mshard *s = &m->ms[x];
		if (!s->touched)
			continue;
		s->known[B] = true;	/* absent unless a leaf said otherwise */
		for (int d = 0; d < 2; d++) {
			if (!s->seen[d]) {
				s->present[1 + d] = s->present[B];
				oid_cpy(&s->id[1 + d], &s->id[B]);
			}
			s->known[1 + d] = true;
		}
	}
}

/* The id of "mtimes/<xx>" in tree, when it exists. */
static int mtimes_blob_of(bool *present, struct oid *out, struct mctx *m,
			  const struct oid *tree, unsigned shard)
{
	struct strbuf path = STRBUF_INIT;
	int ret;

	mtimes_shard_path(&path, shard);
	ret = repo_tree_lookup(out, m->r, tree, path.buf);
	strbuf_release(&path);
	*present = ret == 0;
	return ret == E_NOTFOUND ? 0 : ret;
}

int mg_mshard_get(const struct mtimes **out, struct mctx *m, unsigned x,
		  int s)
{
	struct mshard *ms = &m->ms[x];
	git_blob *blob;
	int ret;

	if (!ms->known[s]) {
		/* untouched by either side: all three have ours' blob */
		bool present;
		struct oid id;
		if ((ret = mtimes_blob_of(&present, &id, m, m->tree[O], x)) < 0)
			return ret;
		for (int k = 0; k < 3; k++) {
			ms->known[k] = true;
			ms->present[k] = present;
			oid_cpy(&ms->id[k], &id);
		}
	}
	if (!ms->parsed[s]) {
		/* share what another side parsed from the same blob */
		for (int k = 0; k < 3; k++) {
			if (k == s || !ms->parsed[k] ||
			    ms->present[k] != ms->present[s] ||
			    (ms->present[s] && !oid_equal(&ms->id[k], &ms->id[s])))
				continue;
			for (size_t i = 0; i < ms->rec[k].n; i++) {
				xgrow((void **)&ms->rec[s].v, &ms->rec[s].alloc,
				      ms->rec[s].n + 1, sizeof *ms->rec[s].v);
				ms->rec[s].v[ms->rec[s].n].key =
					xstrdup(ms->rec[k].v[i].key);
				ms->rec[s].v[ms->rec[s].n++].mtime =
					ms->rec[k].v[i].mtime;
			}
			ms->parsed[s] = true;
			break;
		}
	}
	if (!ms->parsed[s]) {
		if (ms->present[s]) {
			if (git_blob_lookup(&blob, m->r->git, GIT_OID(&ms->id[s])) < 0)
				return log_error("read mtimes blob: %s",
						 repo_git_error());
			ret = mtimes_parse(&ms->rec[s], git_blob_rawcontent(blob),
					   (size_t)git_blob_rawsize(blob), NULL);
			git_blob_free(blob);
			if (ret < 0) {
				log_error("'" MTIMES_DIR "/%02x' is not a list of "
					  "mtimes: refusing to merge", x);
				return E_INVALID;
			}
		}
		ms->parsed[s] = true;
	}
	*out = &ms->rec[s];
	return 0;
}

int mg_changed_record_keys(struct mctx *m, char ***out, size_t *nout)
{
	size_t n = 0, alloc = 0;
	char **keys = NULL;
	int ret = 0;

	for (unsigned x = 0; x < 256 && ret == 0; x++) {
		const struct mtimes *rb, *rs;
		if (!m->ms[x].touched)
			continue;
		for (int s = O; s <= T && ret == 0; s++) {
			size_t i = 0, j = 0;
			if ((ret = mg_mshard_get(&rb, m, x, B)) < 0 ||
			    (ret = mg_mshard_get(&rs, m, x, s)) < 0)
				break;
			while (i < rb->n || j < rs->n) {
				int c = i >= rb->n ? 1 : j >= rs->n ? -1 :
					strcmp(rb->v[i].key, rs->v[j].key);
				const char *k = c <= 0 ? rb->v[i].key : rs->v[j].key;
				bool differ = c != 0 ||
					rb->v[i].mtime != rs->v[j].mtime;
				if (c <= 0)
					i++;
				if (c >= 0)
					j++;
				if (!differ)
					continue;
				xgrow((void **)&keys, &alloc, n + 1, sizeof *keys);
				keys[n++] = xstrdup(k);
			}
		}
	}
	if (n)
		qsort(keys, n, sizeof *keys, strvec_cmp);
	*out = keys;
	*nout = n;
	return ret;
}

int mg_lookup_key(struct mctx *m, const char *key)
{
	static const char *const subs[] = { "cur", "new" };
	git_tree *root = NULL;
	unsigned shard = maildir_shard(key, strlen(key));
	int ret;

	if ((ret = mg_tree_load(&root, m, m->tree[O])) < 0)
		return ret;
	for (size_t i = 0; i < git_tree_entrycount(root) && ret == 0; i++) {
		const git_tree_entry *fe = git_tree_entry_byindex(root, i);
		const char *fname = git_tree_entry_name(fe);
		bool inbox = !strcmp(fname, "cur") || !strcmp(fname, "new");

		if (git_tree_entry_type(fe) != GIT_OBJECT_TREE ||
		    (!inbox && fname[0] != '.'))
			continue;
		/* INBOX is visited through its cur and new entries */
		for (int k = 0; k < 2 && ret == 0; k++) {
			struct strbuf p = STRBUF_INIT;
			git_tree_entry *se = NULL;
			git_tree *st = NULL;

			if (inbox && strcmp(fname, subs[k]))
				continue;
			tree_shard_path(&p, inbox ? "" : fname, subs[k], shard);
			if (git_tree_entry_bypath(&se, root, p.buf) == 0 &&
			    git_tree_entry_type(se) == GIT_OBJECT_TREE &&
			    (ret = mg_tree_load(&st, m, OID(git_tree_entry_id(se)))) == 0) {
				size_t plen = p.len;
				for (size_t e = 0; e < git_tree_entrycount(st) && ret == 0; e++) {
					const git_tree_entry *me = git_tree_entry_byindex(st, e);
					const char *nm = git_tree_entry_name(me);
					if (maildir_key_len(nm) != strlen(key) ||
					    strncmp(nm, key, strlen(key)))
						continue;
					strbuf_setlen(&p, plen);
					strbuf_addf(&p, "/%s", nm);
					ret = add_leaf(m, p.buf, me, DIFF_COMMON, 0);
				}
			}
			git_tree_free(st);
			git_tree_entry_free(se);
			strbuf_release(&p);
		}
	}
	git_tree_free(root);
	return ret;
}

/* --- step 2: grouping messages into identities ------------------------ */

int mg_leaf_ident_cmp(const void *a, const void *b)
{
	const struct leaf *x = a, *y = b;
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->kind == LEAF_MESSAGE) {
		if ((c = strcmp(x->bkey, y->bkey)))
			return c;
		if ((c = oid_cmp(&x->id, &y->id)))
			return c;
	}
	if ((c = strcmp(x->path, y->path)))
		return c;
	if (x->diff != y->diff)
		return x->diff < y->diff ? -1 : 1;
	return (int)x->added - (int)y->added;
}

static void view_init(struct view *v, const struct leaf *l)
{
	v->path = l->path;
	v->folder = xstrndup(l->path, l->flen);
	v->sub = l->sub;
	if (maildir_name_parse(&v->mn, l->name) < 0)
		log_fatal("cannot parse '%s'", l->name);	/* checked in classify */
}

void mg_view_release(struct view *v)
{
	free(v->folder);
	maildir_name_release(&v->mn);
}

/*
 * Which of the paths of group lv[s, e) (sorted by path) each tree has:
 * base's from base leaves and lookups, a side's from the base's less what
 * its diff removed plus what it added.
 */
struct path_state {
	const struct leaf *leaf;
	bool in[3];
};

static size_t path_states(struct path_state **out, const struct leaf *lv,
			  size_t s, size_t e)
{
	struct path_state *ps = xcalloc(e - s, sizeof *ps);
	size_t n = 0;

	for (size_t i = s; i < e;) {
		bool rem[2] = { false, false }, add[2] = { false, false };
		bool inb = false;
		size_t j = i;

		for (; j < e && !strcmp(lv[j].path, lv[i].path); j++) {
			if (lv[j].diff == DIFF_COMMON) {
				inb = true;
			} else if (lv[j].added) {
				add[lv[j].diff] = true;
			} else {
				inb = true;
				rem[lv[j].diff] = true;
			}
		}
		ps[n].leaf = &lv[i];
		for (size_t k = i; k < j; k++)	/* prefer a leaf with the blob */
			if (lv[k].added || lv[k].diff == DIFF_COMMON || !ps[n].leaf)
				ps[n].leaf = &lv[k];
		ps[n].in[B] = inb;
		ps[n].in[O] = (inb && !rem[0]) || add[0];
		ps[n].in[T] = (inb && !rem[1]) || add[1];
		n++;
		i = j;
	}
	*out = ps;
	return n;
}

void mg_build_idents(struct mctx *m, size_t s, size_t e)
{
	size_t alloc = 0;

	for (size_t i = s; i < e;) {
		struct ident *id;
		struct path_state *ps;
		size_t j = i, np;

		while (j < e && !strcmp(m->lv[j].bkey, m->lv[i].bkey) &&
		       oid_equal(&m->lv[j].id, &m->lv[i].id))
			j++;
		xgrow((void **)&m->ids, &alloc, m->nids + 1, sizeof *m->ids);
		id = &m->ids[m->nids++];
		memset(id, 0, sizeof *id);
		id->bkey = m->lv[i].bkey;
		id->id = &m->lv[i].id;
		np = path_states(&ps, m->lv, i, j);
		for (int k = 0; k < 3; k++) {
			id->v[k] = xcalloc(np ? np : 1, sizeof *id->v[k]);
			for (size_t p = 0; p < np; p++)
				if (ps[p].in[k])
					view_init(&id->v[k][id->n[k]++], ps[p].leaf);
		}
		free(ps);
		i = j;
	}
}
