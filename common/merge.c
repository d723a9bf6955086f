/*
 * merge: the three-way Maildir merge (see merge.h for the rules).
 *
 * How it runs, in four steps, each O(what changed):
 *
 * 1. Walk: base against ours and base against theirs, descending only
 *    into subtrees whose ids differ, first down to the shard directories
 *    ([<folder>/](cur|new)/<xx>).  A message never leaves its shard
 *    number <xx> (a move keeps its key, and a key the merge gives keeps
 *    the shard), so a shard number only one side changed needs no
 *    reading: that side's shard trees are the result.  Only the shard
 *    numbers both sides changed are read, and every blob path that
 *    differs there becomes a "leaf": its path and blob, which diff it
 *    came from and whether it is the base's entry or the side's.
 * 2. Group: leaves that are messages are grouped by identity (key without
 *    a .dup suffix naming its own blob, and blob id), so a message moved
 *    between folders (two shard trees) is one group.  A side that has no
 *    leaf of a group has the base's entries.  Other paths are grouped by
 *    path.  Keys whose mtime record alone changed are looked up so they
 *    join in too.
 * 3. Resolve every group with the rules, purely from the three states:
 *    that is what makes the merge commutative.  Then give a new key to
 *    the second message of every key two messages claim.
 * 4. Write: the result as changes to ours, through
 *    repo_tree_update() (only the trees on changed paths are
 *    written; a shard directory whose changes are exactly theirs is
 *    theirs' tree, reused), the mtimes shards touched re-written in
 *    canonical form, then a marker for every folder of the result that
 *    holds messages and has none.
 *
 * Everything a side did not touch is identical in base, ours and theirs,
 * so applying the resolved groups to ours or to theirs gives the same
 * tree; and every decision to read or skip depends on both sides alike.
 */
#include "autoconf.h"
#include "hex.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

#include "fnv.h"
#include "folder.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "merge.h"
#include "mtimes.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "treediff.h"
#include "xalloc.h"

enum { B = 0, O = 1, T = 2 };		/* base, ours, theirs */
enum { SUB_CUR = 0, SUB_NEW = 1 };
enum { DIFF_OURS = 0, DIFF_THEIRS = 1, DIFF_COMMON = 2 };

/* Deeper criss-cross recursion than this uses the first base alone. */
#define MAX_BASE_DEPTH 64

enum leaf_kind {
	LEAF_MESSAGE,
	LEAF_MARKER,
	LEAF_MTIMES,
	LEAF_OTHER,		/* FORMAT, subscriptions, anything else */
};

/*
 * A blob path that differs between the base and a side: the base's entry
 * (added == 0) or the side's (added == 1).  DIFF_COMMON leaves are
 * entries found by lookup that all three trees share.
 */
struct leaf {
	char *path;		/* owned */
	struct oid id;
	unsigned diff : 2;
	unsigned added : 1;
	enum leaf_kind kind;
	/* messages: [<folder>/]<cur|new>/<xx>/<name> */
	size_t flen;		/* the folder is path[0, flen) */
	unsigned sub;
	const char *name;	/* in path */
	size_t keylen;		/* of name */
	char *bkey;		/* identity key; owned */
	unsigned shard;		/* messages and mtimes blobs */
};

/* One message entry of a side, parsed. */
struct view {
	const char *path;
	char *folder;		/* owned */
	unsigned sub;
	struct maildir_name mn;
};

/* One message entry of the result. */
struct res {
	char *folder;
	unsigned sub;
	char *key, *fields, *info;	/* info may be NULL */
	char *path;		/* built once the key is final */
};

/* One message (identity) that a side changed, and its resolution. */
struct ident {
	const char *bkey;
	const struct oid *id;
	struct view *v[3];	/* each side's entries, sorted by path */
	size_t n[3];
	struct res *res;
	size_t nres;
	long long mtime;	/* resolved, when nres */
};

/* The mtimes blob of one shard in the three trees. */
struct mshard {
	bool touched;		/* some diff changed this blob */
	bool seen[2], added[2];
	bool known[3], present[3];
	struct oid id[3];
	bool parsed[3];
	struct mtimes rec[3];
};

/* A directory the walk went into: where a side differs from the base. */
struct dirrec {
	char *path;		/* owned */
	unsigned diff;		/* DIFF_OURS or DIFF_THEIRS */
	bool present;		/* the side has it (as a tree) */
	struct oid id;		/* the side's tree */
};

/*
 * A shard directory ([<folder>/](cur|new)/<xx>) where a side differs
 * from the base, before it is read.
 */
struct pending {
	char *path;		/* owned */
	unsigned diff;
	unsigned shard;
	bool has_a, has_b;	/* the base's and the side's trees */
	struct oid ida, idb;
};

/* A subtree of the result taken whole from theirs (absent: removed). */
struct tree_up {
	char *path;		/* owned */
	bool present;
	struct oid id;
};

struct mctx {
	struct repo *r;
	const struct oid *tree[3];	/* tree[B] may be NULL: the empty tree */
	const struct merge_opts *opts;
	struct merge_stats *st;
	struct leaf *lv;
	size_t ln, la;
	struct ident *ids;
	size_t nids;
	struct mshard *ms;	/* 256 of them */
	struct update_list ups;
	struct dirrec *dirs;
	size_t ndirs, adirs;
	bool defer;		/* the first pass: stop at shard directories */
	bool full;		/* read every changed shard (for notes, counts) */
	struct pending *pend;
	size_t npend, apend;
	struct tree_up *tups;
	size_t ntups, atups;
};

/* --- small helpers ----------------------------------------------------- */

static int tree_load(git_tree **out, struct mctx *m, const struct oid *id)
{
	if (git_tree_lookup(out, m->r->git, GIT_OID(id)) < 0)
		return log_error("read tree %s: %s", oid_hex(id),
				 repo_git_error());
	if (m->st)
		m->st->trees_read++;
	return 0;
}

static bool nstreq(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

/* NULL sorts first */
static int nstrcmp(const char *a, const char *b)
{
	if (!a || !b)
		return a ? 1 : b ? -1 : 0;
	return strcmp(a, b);
}

/* The longer key first: a .dup spelling, once given, sticks. */
static int key_tie(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la != lb)
		return la > lb ? -1 : 1;
	return strcmp(a, b);
}

/*
 * Three-way choice of one part: the side that changed it, else (both
 * changed, or no base) the one tie() puts first.
 */
static const char *pick3(bool hasb, const char *b, const char *o,
			 const char *t, int (*tie)(const char *, const char *))
{
	if (hasb && nstreq(o, b))
		return t;
	if (hasb && nstreq(t, b))
		return o;
	if (nstreq(o, t))
		return o;
	return tie(o, t) <= 0 ? o : t;
}

/*
 * A key the merge gives is <key>.dup<hex><c1><c2>: hex the first 16 (or
 * all 40) hex digits of the message's blob id, c1 c2 two characters of
 * BALANCE chosen so the new key falls in the shard of <key>.  FNV-1a's
 * low byte depends only on low bytes (the prime is odd), so the two
 * characters can steer it; keeping every spelling of a message in one
 * shard is what lets the merge skip shards only one side changed.
 */
static const char BALANCE[] =
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";

static bool balance_char(char c)
{
	return c && strchr(BALANCE, c) != NULL;
}

/* Append bkey[0, blen) ".dup" hex[0, hexlen) and the two characters. */
static void dup_key(struct strbuf *out, const char *bkey, size_t blen,
		    const char *hex, size_t hexlen, unsigned shard)
{
	uint32_t h;

	strbuf_add(out, bkey, blen);
	strbuf_addstr(out, MERGE_DUP_MARK);
	strbuf_add(out, hex, hexlen);
	h = fnv1a32(out->buf, out->len);
	for (const char *c1 = BALANCE; *c1; c1++) {
		uint32_t h1 = (h ^ (unsigned char)*c1) * 16777619u;
		for (const char *c2 = BALANCE; *c2; c2++) {
			uint32_t h2 = (h1 ^ (unsigned char)*c2) * 16777619u;
			if ((h2 & 0xff) == shard) {
				strbuf_addch(out, *c1);
				strbuf_addch(out, *c2);
				return;
			}
		}
	}
	/* 4096 pairs for 256 values: not reached */
	log_fatal("no balance for key '%s'", out->buf);
}

/*
 * The identity key of a message: its key, less a ".dup<hex><c1><c2>"
 * suffix when the hex digits begin the message's own blob id and the key
 * is in the shard of what remains (a key the merge gave).
 */
static char *identity_key(const char *key, size_t len, const struct oid *id)
{
	static const size_t hexlens[] = { 16, OID_HEXSZ };
	const size_t mark = strlen(MERGE_DUP_MARK);
	char hex[OID_HEXSZ + 1];

	oid_tostr(hex, sizeof hex, id);
	for (size_t i = 0; i < 2; i++) {
		size_t h = hexlens[i], base;
		if (len <= mark + h + 2)
			continue;
		base = len - 2 - h - mark;
		if (!memcmp(key + base, MERGE_DUP_MARK, mark) &&
		    !memcmp(key + base + mark, hex, h) &&
		    balance_char(key[len - 2]) && balance_char(key[len - 1]) &&
		    maildir_shard(key, len) == maildir_shard(key, base))
			return xstrndup(key, base);
	}
	return xstrndup(key, len);
}

/* --- step 1: the walk -------------------------------------------------- */

static void classify(struct leaf *l)
{
	const char *p = l->path, *slash;
	struct layout_path lp;

	l->kind = LEAF_OTHER;
	/* a message in the wrong shard is just a file to the merge */
	if (layout_parse_tree_path(&lp, p) == 0) {
		l->kind = LEAF_MESSAGE;
		l->flen = lp.folder_len;
		l->sub = lp.sub ? SUB_NEW : SUB_CUR;
		l->name = lp.name;
		l->keylen = maildir_key_len(lp.name);
		l->shard = lp.shard;
		l->bkey = identity_key(lp.name, l->keylen, &l->id);
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
	classify(l);
	return 0;
}

/* The shard number of a shard directory path, or -1. */
static int shard_dir(const char *path)
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
	return tree_load(out, ((struct mwalk *)data)->m, id);
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

	if (m->defer && (x = shard_dir(path)) >= 0) {
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

/*
 * Every blob that differs between trees a and b (either may be NULL, the
 * empty tree), never reading a subtree whose id is the same in both.
 */
static int walk(struct mctx *m, int diff, const struct oid *a, const struct oid *b,
		struct strbuf *path)
{
	static const struct treediff_ops ops = { walk_load, walk_tree,
						 walk_leaf };
	struct mwalk w = { m, diff };

	return treediff(m->r, a, b, path, &ops, &w);
}

/*
 * The second pass.  A message keeps its shard number for life (moves
 * keep its key; a key the merge gives keeps the shard, see dup_key()),
 * so a shard number that only one side changed -- in every folder and in
 * mtimes/ -- holds no message the other side touched: the result there
 * is that side's, tree for tree, and nothing of it needs reading.  The
 * shard numbers both sides changed are read, leaf by leaf.  With m->full
 * every one is read (to count and note every change); the tree written
 * is the same.
 */
static int read_pending(struct mctx *m)
{
	bool changed[2][256];
	struct strbuf path = STRBUF_INIT;
	size_t w = 0;
	int ret = 0;

	memset(changed, 0, sizeof changed);
	for (size_t i = 0; i < m->npend; i++)
		changed[m->pend[i].diff][m->pend[i].shard] = true;
	for (size_t i = 0; i < m->ln; i++)
		if (m->lv[i].kind == LEAF_MTIMES)
			changed[m->lv[i].diff][m->lv[i].shard] = true;
	m->defer = false;
	for (size_t i = 0; i < m->npend && ret == 0; i++) {
		const struct pending *p = &m->pend[i];
		struct tree_up *t;
		if (m->full || (changed[0][p->shard] && changed[1][p->shard])) {
			strbuf_reset(&path);
			strbuf_addstr(&path, p->path);
			ret = walk(m, (int)p->diff, p->has_a ? &p->ida : NULL,
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
	/* mtimes blobs of those shards: theirs', as they are */
	for (size_t i = 0; i < m->ln; i++) {
		struct leaf *l = &m->lv[i];
		if (l->kind == LEAF_MTIMES && !m->full &&
		    !(changed[0][l->shard] && changed[1][l->shard])) {
			if (l->diff == DIFF_THEIRS) {
				bool added = false;
				/* the blob theirs has, if any leaf says so */
				for (size_t k = 0; k < m->ln; k++)
					if (m->lv[k].kind == LEAF_MTIMES &&
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

static void mtimes_states_from_leaves(struct mctx *m)
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

/* Parsed records of shard x on side s. */
static int mshard_get(const struct mtimes **out, struct mctx *m, unsigned x,
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

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keys whose record differs between the base's and a side's blob. */
static int changed_record_keys(struct mctx *m, char ***out, size_t *nout)
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
			if ((ret = mshard_get(&rb, m, x, B)) < 0 ||
			    (ret = mshard_get(&rs, m, x, s)) < 0)
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
		qsort(keys, n, sizeof *keys, str_ptr_cmp);
	*out = keys;
	*nout = n;
	return ret;
}

/*
 * Add DIFF_COMMON leaves for every message of ours whose key is key: it
 * is the same in all three trees (no diff touched it).
 */
static int lookup_key(struct mctx *m, const char *key)
{
	static const char *const subs[] = { "cur", "new" };
	git_tree *root = NULL;
	unsigned shard = maildir_shard(key, strlen(key));
	int ret;

	if ((ret = tree_load(&root, m, m->tree[O])) < 0)
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
			    (ret = tree_load(&st, m, OID(git_tree_entry_id(se)))) == 0) {
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

static int leaf_ident_cmp(const void *a, const void *b)
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

static void view_release(struct view *v)
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

static void build_idents(struct mctx *m, size_t s, size_t e)
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

/* --- step 3: resolution ------------------------------------------------ */

static void res_from_view(struct res *r, const struct view *v)
{
	r->folder = xstrdup(v->folder);
	r->sub = v->sub;
	r->key = xstrdup(v->mn.key);
	r->fields = xstrdup(v->mn.fields);
	r->info = v->mn.info ? xstrdup(v->mn.info) : NULL;
	r->path = NULL;
}

static void res_release(struct res *r)
{
	free(r->folder);
	free(r->key);
	free(r->fields);
	free(r->info);
	free(r->path);
}

static bool info_is_flags(const char *info)
{
	return !info || (info[0] == '2' && info[1] == ',');
}

/* The merged info: per flag letter when all are "2,<flags>" or absent. */
static char *merge_info(const struct view *b, const struct view *o,
			const struct view *t)
{
	const char *bi = b ? b->mn.info : NULL, *oi = o->mn.info, *ti = t->mn.info;
	const char *r;

	if (info_is_flags(oi) && info_is_flags(ti) && info_is_flags(bi)) {
		unsigned char in[3][256];
		const char *f[3] = { bi ? bi + 2 : "", oi ? oi + 2 : "",
				     ti ? ti + 2 : "" };
		bool has, hb = bi != NULL, ho = oi != NULL, ht = ti != NULL;
		char flags[256];
		size_t n = 0;

		memset(in, 0, sizeof in);
		for (int k = 0; k < 3; k++)
			for (const unsigned char *p = (const unsigned char *)f[k]; *p; p++)
				in[k][*p] = 1;
		for (int c = 1; c < 256; c++) {
			/* the side that changed this letter wins */
			bool v = in[O][c] != in[B][c] ? in[O][c] : in[T][c];
			if (v)
				flags[n++] = (char)c;
		}
		flags[n] = '\0';
		/* ":2," present: three-way too, present on a tie */
		has = b ? (ho != hb ? ho : ht) : (ho || ht);
		if (has || n)
			return xasprintf("2,%s", flags);
		return NULL;
	}
	r = pick3(b != NULL, bi, oi, ti, nstrcmp);
	return r ? xstrdup(r) : NULL;
}

static void res_merge(struct res *r, const struct view *b,
		      const struct view *o, const struct view *t)
{
	bool hb = b != NULL;

	r->folder = xstrdup(pick3(hb, hb ? b->folder : NULL, o->folder,
				  t->folder, strcmp));
	if (hb && o->sub == b->sub)
		r->sub = t->sub;
	else if (hb && t->sub == b->sub)
		r->sub = o->sub;
	else
		r->sub = o->sub < t->sub ? o->sub : t->sub;	/* cur */
	r->key = xstrdup(pick3(hb, hb ? b->mn.key : NULL, o->mn.key,
			       t->mn.key, key_tie));
	r->fields = xstrdup(pick3(hb, hb ? b->mn.fields : NULL, o->mn.fields,
				  t->mn.fields, strcmp));
	r->info = merge_info(b, o, t);
	r->path = NULL;
}

static void res_add(struct ident *id, size_t *alloc, const struct view *b,
		    const struct view *o, const struct view *t)
{
	struct res *r;

	xgrow((void **)&id->res, alloc, id->nres + 1, sizeof *id->res);
	r = &id->res[id->nres++];
	if (!o) {
		res_from_view(r, t);
	} else if (!t) {
		res_from_view(r, o);
	} else if (b && !strcmp(o->path, b->path)) {
		res_from_view(r, t);
	} else if (b && !strcmp(t->path, b->path)) {
		res_from_view(r, o);
	} else if (!strcmp(o->path, t->path)) {
		res_from_view(r, o);
	} else {
		res_merge(r, b, o, t);
	}
}

/* One entry (or none) per side. */
static void resolve_single(struct ident *id, size_t *alloc,
			   const struct view *b, const struct view *o,
			   const struct view *t)
{
	if (b && (!o || !t))
		return;		/* expunged: wins over anything */
	if (!o && !t)
		return;
	res_add(id, alloc, b, o, t);
}

static int view_folder_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Several entries on a side (one message in several folders): each
 * folder on its own; several in one folder: per path.
 */
static void resolve_multi(struct ident *id, size_t *alloc)
{
	size_t nf = 0, total = id->n[B] + id->n[O] + id->n[T];
	const char **folders = xmalloc(total * sizeof *folders);

	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < id->n[k]; i++)
			folders[nf++] = id->v[k][i].folder;
	qsort(folders, nf, sizeof *folders, view_folder_cmp);
	for (size_t f = 0; f < nf; f++) {
		const struct view *one[3] = { NULL, NULL, NULL };
		size_t cnt[3] = { 0, 0, 0 };

		if (f && !strcmp(folders[f], folders[f - 1]))
			continue;
		for (int k = 0; k < 3; k++)
			for (size_t i = 0; i < id->n[k]; i++)
				if (!strcmp(id->v[k][i].folder, folders[f])) {
					one[k] = &id->v[k][i];
					cnt[k]++;
				}
		if (cnt[B] <= 1 && cnt[O] <= 1 && cnt[T] <= 1) {
			resolve_single(id, alloc, one[B], one[O], one[T]);
			continue;
		}
		/* per path: a path is kept unless a side removed it */
		for (int k = 0; k < 3; k++) {
			for (size_t i = 0; i < id->n[k]; i++) {
				const struct view *v = &id->v[k][i];
				bool in[3] = { false, false, false }, dup = false;
				if (strcmp(v->folder, folders[f]))
					continue;
				for (int q = 0; q < 3; q++)
					for (size_t z = 0; z < id->n[q]; z++)
						if (!strcmp(id->v[q][z].path, v->path)) {
							in[q] = true;
							if (q < k)
								dup = true;
						}
				if (dup)
					continue;
				if (in[O] != in[B] ? in[O] : in[T])
					res_add(id, alloc, NULL, v, NULL);
			}
		}
	}
	free(folders);
}

static void resolve(struct ident *id)
{
	size_t alloc = 0;

	if (id->n[B] <= 1 && id->n[O] <= 1 && id->n[T] <= 1)
		resolve_single(id, &alloc, id->n[B] ? id->v[B] : NULL,
			       id->n[O] ? id->v[O] : NULL,
			       id->n[T] ? id->v[T] : NULL);
	else
		resolve_multi(id, &alloc);
}

static char *res_name(const struct res *r)
{
	return r->info ? xasprintf("%s%s:%s", r->key, r->fields, r->info) :
			 xasprintf("%s%s", r->key, r->fields);
}

static void res_build_path(struct res *r)
{
	struct strbuf p = STRBUF_INIT;
	char *name = res_name(r);

	if (!maildir_name_valid(name))
		log_warn("merged name '%s' is not a valid Maildir name", name);
	tree_message_path(&p, r->folder, r->sub == SUB_CUR ? "cur" : "new",
			  name);
	free(name);
	free(r->path);
	r->path = strbuf_detach(&p, NULL);
}

/* For the key collision pass: one result entry. */
struct claim {
	const char *key;
	const struct oid *id;
	struct ident *ident;
	struct res *res;
};

static int claim_cmp(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : oid_cmp(x->id, y->id);
}

static bool key_taken(const struct claim *cl, size_t n, char **extra,
		      size_t nextra, const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(cl[mid].key, key);
		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < nextra; i++)
		if (!strcmp(extra[i], key))
			return true;
	return false;
}

/*
 * Two messages that claim one key: the smaller blob id keeps it, each
 * other one becomes <identity key>.dup<16 hex> (40 if even that is taken).
 */
static void resolve_collisions(struct mctx *m)
{
	struct claim *cl = NULL;
	size_t n = 0, alloc = 0, nextra = 0, aextra = 0;
	char **extra = NULL;

	for (size_t i = 0; i < m->nids; i++)
		for (size_t k = 0; k < m->ids[i].nres; k++) {
			xgrow((void **)&cl, &alloc, n + 1, sizeof *cl);
			/* a copy: the key of a renamed entry is replaced */
			cl[n].key = xstrdup(m->ids[i].res[k].key);
			cl[n].id = m->ids[i].id;
			cl[n].ident = &m->ids[i];
			cl[n].res = &m->ids[i].res[k];
			n++;
		}
	if (n)
		qsort(cl, n, sizeof *cl, claim_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && !strcmp(cl[j].key, cl[i].key))
			j++;
		for (size_t k = i + 1; k < j; k++) {
			char hex[OID_HEXSZ + 1];
			char *key = NULL;
			if (oid_equal(cl[k].id, cl[i].id))
				continue;	/* one message in two places */
			oid_tostr(hex, sizeof hex, cl[k].id);
			for (int len = 16; len <= OID_HEXSZ; len += OID_HEXSZ - 16) {
				const char *bkey = cl[k].ident->bkey;
				struct strbuf sb = STRBUF_INIT;
				long room = (long)MAILDIR_NAME_MAX -
					(long)strlen(MERGE_DUP_MARK) - len - 2 -
					(long)strlen(cl[k].res->fields) -
					(cl[k].res->info ? (long)strlen(cl[k].res->info) + 1 : 0);
				long blen = (long)strlen(bkey);
				/* an absurdly long name loses the end of its key */
				if (room < 1)
					room = 1;
				dup_key(&sb, bkey, (size_t)(blen < room ? blen : room),
					hex, (size_t)len,
					maildir_shard(bkey, (size_t)blen));
				free(key);
				key = strbuf_detach(&sb, NULL);
				if (!key_taken(cl, n, extra, nextra, key))
					break;
			}
			if (key_taken(cl, n, extra, nextra, key)) {
				log_warn("no free key for message %s (key '%s')",
					 hex, cl[k].key);
				free(key);
				continue;
			}
			free(cl[k].res->key);
			cl[k].res->key = key;
			xgrow((void **)&extra, &aextra, nextra + 1, sizeof *extra);
			extra[nextra++] = key;
			if (m->st)
				m->st->collisions++;
		}
		i = j;
	}
	for (size_t i = 0; i < n; i++)
		free((char *)cl[i].key);
	free(extra);
	free(cl);
}

/* --- step 3: mtimes ---------------------------------------------------- */

/* The mtime an entry has on side s. */
static int view_mtime(long long *out, struct mctx *m, const struct view *v,
		      int s)
{
	const struct mtimes *rec;
	int ret = mshard_get(&rec, m, maildir_shard(v->mn.key,
						    strlen(v->mn.key)), s);

	if (ret == 0)
		*out = mtimes_get(rec, v->mn.key);
	return ret;
}

static long long mtime_tie(long long a, long long b)
{
	if (a == MTIME_NONE)
		return b;
	if (b == MTIME_NONE)
		return a;
	return a < b ? a : b;
}

static int resolve_mtime(struct mctx *m, struct ident *id)
{
	long long v[3] = { MTIME_NONE, MTIME_NONE, MTIME_NONE };
	int ret;

	if (!id->nres)
		return 0;
	for (int k = 0; k < 3; k++)
		if (id->n[k] && (ret = view_mtime(&v[k], m, &id->v[k][0], k)) < 0)
			return ret;
	if (!id->n[O])
		id->mtime = v[T];
	else if (!id->n[T])
		id->mtime = v[O];
	else if (id->n[B] && v[O] == v[B])
		id->mtime = v[T];
	else if (id->n[B] && v[T] == v[B])
		id->mtime = v[O];
	else
		id->mtime = mtime_tie(v[O], v[T]);
	return 0;
}

/* A key of a shard, and (for the result's messages) its mtime. */
struct shard_key {
	unsigned shard;
	const char *key;
	long long mtime;
};

static int shard_key_cmp(const void *a, const void *b)
{
	const struct shard_key *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return strcmp(x->key, y->key);
}

static void sk_add(struct shard_key **v, size_t *n, size_t *alloc,
		   const char *key, long long mtime)
{
	xgrow((void **)v, alloc, *n + 1, sizeof **v);
	(*v)[*n].shard = maildir_shard(key, strlen(key));
	(*v)[*n].key = key;
	(*v)[*n].mtime = mtime;
	(*n)++;
}

/*
 * Re-write every mtimes shard a side touched or a changed message lives
 * in: ours' records, less those of every key involved (gone[]), plus the
 * resolved ones (set[]), in canonical form.
 */
static int write_mtimes(struct mctx *m, char **ckeys, size_t nckeys)
{
	struct shard_key *gone = NULL, *set = NULL;
	size_t ng = 0, ag = 0, ns = 0, as = 0, gi = 0, si = 0;
	int ret = 0;

	for (size_t i = 0; i < nckeys; i++)
		sk_add(&gone, &ng, &ag, ckeys[i], 0);
	for (size_t i = 0; i < m->nids; i++) {
		struct ident *id = &m->ids[i];
		for (int k = 0; k < 3; k++)
			for (size_t j = 0; j < id->n[k]; j++)
				sk_add(&gone, &ng, &ag, id->v[k][j].mn.key, 0);
		for (size_t j = 0; j < id->nres; j++)
			sk_add(&set, &ns, &as, id->res[j].key, id->mtime);
	}
	if (ng)
		qsort(gone, ng, sizeof *gone, shard_key_cmp);
	if (ns)
		qsort(set, ns, sizeof *set, shard_key_cmp);
	for (unsigned x = 0; x < 256 && ret == 0; x++) {
		const struct mtimes *ours;
		struct mtimes out = MTIMES_INIT;
		struct strbuf buf = STRBUF_INIT, path = STRBUF_INIT;
		size_t g0 = gi, s0 = si;
		struct oid id;

		while (gi < ng && gone[gi].shard == x)
			gi++;
		while (si < ns && set[si].shard == x)
			si++;
		if (g0 == gi && s0 == si && !m->ms[x].touched)
			continue;
		if ((ret = mshard_get(&ours, m, x, O)) < 0)
			break;
		for (size_t k = 0; k < ours->n; k++)
			mtimes_set(&out, ours->v[k].key, ours->v[k].mtime);
		for (size_t k = g0; k < gi; k++)
			mtimes_remove(&out, gone[k].key);
		for (size_t k = s0; k < si; k++)
			mtimes_set(&out, set[k].key, set[k].mtime);
		mtimes_format(&buf, &out);
		mtimes_shard_path(&path, x);
		if (!buf.len) {
			if (m->ms[x].present[O])
				update_list_add(&m->ups, path.buf, NULL);
		} else if (git_odb_hash(GIT_OID(&id), buf.buf, buf.len, GIT_OBJECT_BLOB) < 0) {
			ret = log_error("hash: %s", repo_git_error());
		} else if (!m->ms[x].present[O] ||
			   !oid_equal(&id, &m->ms[x].id[O])) {
			if ((ret = repo_blob_from_buffer(&id, m->r, buf.buf,
							 buf.len)) == 0)
				update_list_add(&m->ups, path.buf, &id);
		}
		strbuf_release(&buf);
		strbuf_release(&path);
		mtimes_release(&out);
	}
	free(gone);
	free(set);
	return ret;
}

/* --- step 3: paths that are not messages ------------------------------- */

/* The subscriptions of base, ours, theirs merged as sets of lines. */
static int merge_lines(struct oid *out, bool *present, struct mctx *m,
		       const struct oid *const v[3])
{
	char **lines[3] = { NULL, NULL, NULL };
	size_t n[3] = { 0, 0, 0 }, alloc[3] = { 0, 0, 0 }, i[3] = { 0, 0, 0 };
	struct strbuf buf = STRBUF_INIT;
	int ret = 0;

	for (int k = 0; k < 3 && ret == 0; k++) {
		git_blob *blob;
		const char *p, *end;
		if (!v[k])
			continue;
		if (git_blob_lookup(&blob, m->r->git, GIT_OID(v[k])) < 0) {
			ret = log_error("read subscriptions: %s", repo_git_error());
			break;
		}
		p = git_blob_rawcontent(blob);
		end = p + git_blob_rawsize(blob);
		while (p < end) {
			const char *eol = memchr(p, '\n', (size_t)(end - p));
			size_t len = (size_t)((eol ? eol : end) - p);
			if (len && p[len - 1] == '\r')
				len--;
			if (len) {
				xgrow((void **)&lines[k], &alloc[k], n[k] + 1,
				      sizeof *lines[k]);
				lines[k][n[k]++] = xstrndup(p, len);
			}
			p = eol ? eol + 1 : end;
		}
		git_blob_free(blob);
		if (n[k])
			qsort(lines[k], n[k], sizeof *lines[k], str_ptr_cmp);
	}
	/* merge-join the three sorted lists; a line is three-way merged */
	while (ret == 0) {
		const char *min = NULL;
		bool in[3];
		for (int k = 0; k < 3; k++)
			if (i[k] < n[k] && (!min || strcmp(lines[k][i[k]], min) < 0))
				min = lines[k][i[k]];
		if (!min)
			break;
		for (int k = 0; k < 3; k++) {
			in[k] = i[k] < n[k] && !strcmp(lines[k][i[k]], min);
			while (i[k] < n[k] && !strcmp(lines[k][i[k]], min))
				i[k]++;
		}
		if (in[O] != in[B] ? in[O] : in[T])
			strbuf_addf(&buf, "%s\n", min);
	}
	/* no line left: the file stays only if neither side removed it */
	*present = buf.len || (v[O] && v[T]);
	if (ret == 0 && *present)
		ret = repo_blob_from_buffer(out, m->r, buf.len ? buf.buf : "",
					    buf.len);
	for (int k = 0; k < 3; k++) {
		for (size_t j = 0; j < n[k]; j++)
			free(lines[k][j]);
		free(lines[k]);
	}
	strbuf_release(&buf);
	return ret;
}

static void note(struct mctx *m, enum merge_note_kind kind, const char *from,
		 const char *to)
{
	struct merge_note n = { kind, from, to };

	if (m->opts && m->opts->notify)
		m->opts->notify(m->opts->data, &n);
}

static bool oid_eq(const struct oid *x, const struct oid *y)
{
	return x && y ? oid_equal(x, y) : x == y;
}

/*
 * Markers, subscriptions and any other path, lv[s, e) sorted by path:
 * the side that changed it; kept over removed; subscriptions merged by
 * line; else the smaller blob id.
 */
static int resolve_paths(struct mctx *m, size_t s, size_t e)
{
	int ret = 0;

	for (size_t i = s; i < e && ret == 0;) {
		const struct oid *v[3] = { NULL, NULL, NULL }, *res;
		const struct leaf *l = &m->lv[i];
		bool seen[2] = { false, false };
		struct oid merged;
		size_t j;

		for (j = i; j < e && !strcmp(m->lv[j].path, l->path); j++) {
			const struct leaf *x = &m->lv[j];
			if (x->diff == DIFF_COMMON || !x->added)
				v[B] = &x->id;
			else
				v[1 + x->diff] = &x->id;
			if (x->diff != DIFF_COMMON)
				seen[x->diff] = true;
		}
		/* a side whose diff does not name the path has the base's */
		for (int d = 0; d < 2; d++)
			if (!seen[d])
				v[1 + d] = v[B];
		i = j;
		if (oid_eq(v[O], v[B]))
			res = v[T];
		else if (oid_eq(v[T], v[B]) || oid_eq(v[O], v[T]))
			res = v[O];
		else if (!v[O] || !v[T])
			res = v[O] ? v[O] : v[T];
		else if (!strcmp(l->path, "subscriptions")) {
			bool present;
			if ((ret = merge_lines(&merged, &present, m, v)) < 0)
				break;
			res = present ? &merged : NULL;
		} else {
			res = oid_cmp(v[O], v[T]) <= 0 ? v[O] : v[T];
		}
		if (!oid_eq(res, v[O])) {
			update_list_add(&m->ups, l->path, res);
			note(m, MERGE_NOTE_OTHER, v[O] ? l->path : NULL,
			     res ? l->path : NULL);
		}
	}
	return ret;
}

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

/*
 * What the result changes in side s for one message: counted, and for
 * ours turned into updates and notes.
 */
static void ident_changes(struct mctx *m, struct ident *id, int s)
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
				note(m, kind, v->path, id->res[0].path);
			}
			if (c)
				count(c, kind);
			continue;
		}
		if (s == O)
			note(m, MERGE_NOTE_EXPUNGE, v->path, NULL);
		if (c)
			count(c, MERGE_NOTE_EXPUNGE);
	}
	for (size_t k = 0; k < id->nres; k++) {
		if (used[k])
			continue;
		if (s == O) {
			update_list_add(&m->ups, id->res[k].path, id->id);
			note(m, MERGE_NOTE_ADD, NULL, id->res[k].path);
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

/* One update per path: an upsert beats a removal, the smaller blob wins. */
static void updates_normalize(struct update_list *l)
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

/*
 * Every folder of the result that holds messages has its marker, or gets
 * one back (a folder deleted on one side, given a message on the other).
 * A function of the result tree alone: the same whatever was read.
 */
static int restore_markers(struct oid *tree, struct mctx *m)
{
	struct update_list ups = UPDATE_LIST_INIT;
	git_tree *root = NULL;
	struct oid empty;
	int ret;

	if ((ret = tree_load(&root, m, tree)) < 0)
		return ret;
	for (size_t i = 0; i < git_tree_entrycount(root) && ret == 0; i++) {
		const git_tree_entry *fe = git_tree_entry_byindex(root, i);
		git_tree *ft = NULL;
		bool has_mail = false;

		if (git_tree_entry_type(fe) != GIT_OBJECT_TREE ||
		    git_tree_entry_name(fe)[0] != '.')
			continue;
		if ((ret = tree_load(&ft, m, OID(git_tree_entry_id(fe)))) < 0)
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
	bool yes = shard_dir(d) >= 0;

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

/*
 * Apply the updates (sorted, one per path) to ours.  A directory ours
 * left as the base had it, whose updates are exactly theirs' changes, is
 * theirs' directory: its tree is reused, not rebuilt (a shard only one
 * side touched costs nothing to write).
 */
static int write_result(struct oid *out, struct mctx *m)
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

/* --- merge_trees -------------------------------------------------------- */

static void mctx_release(struct mctx *m)
{
	for (size_t i = 0; i < m->nids; i++) {
		struct ident *id = &m->ids[i];
		for (int k = 0; k < 3; k++) {
			for (size_t j = 0; j < id->n[k]; j++)
				view_release(&id->v[k][j]);
			free(id->v[k]);
		}
		for (size_t j = 0; j < id->nres; j++)
			res_release(&id->res[j]);
		free(id->res);
	}
	free(m->ids);
	for (size_t i = 0; i < m->ln; i++) {
		free(m->lv[i].path);
		free(m->lv[i].bkey);
	}
	free(m->lv);
	if (m->ms)
		for (unsigned x = 0; x < 256; x++)
			for (int k = 0; k < 3; k++)
				mtimes_release(&m->ms[x].rec[k]);
	free(m->ms);
	update_list_release(&m->ups);
	for (size_t i = 0; i < m->ndirs; i++)
		free(m->dirs[i].path);
	free(m->dirs);
	for (size_t i = 0; i < m->npend; i++)
		free(m->pend[i].path);
	free(m->pend);
	for (size_t i = 0; i < m->ntups; i++)
		free(m->tups[i].path);
	free(m->tups);
}

static bool presented(const struct mctx *m, const char *key)
{
	for (size_t i = 0; i < m->ln; i++)
		if (m->lv[i].kind == LEAF_MESSAGE &&
		    m->lv[i].keylen == strlen(key) &&
		    !strncmp(m->lv[i].name, key, m->lv[i].keylen))
			return true;
	return false;
}

static void cache_trees(void)
{
	/* shard trees (~30 KB at 100k messages) are read by both walks */
	repo_cache_trees_up_to((size_t)256 * 1024);
}

int merge_trees(struct oid *out, struct repo *r, const struct oid *base,
		const struct oid *ours, const struct oid *theirs,
		const struct merge_opts *opts, struct merge_stats *stats)
{
	struct mctx m;
	struct strbuf path = STRBUF_INIT;
	char **ckeys = NULL;
	size_t nckeys = 0, s, e;
	int ret;

	bool counting = opts && (opts->notify || (opts->flags & MERGE_COUNT));

	if (stats)
		memset(stats, 0, sizeof *stats);
	/* one side did nothing: the other side is the answer */
	if (oid_equal(ours, theirs) ||
	    (!counting && base && oid_equal(base, theirs))) {
		oid_cpy(out, ours);
		return 0;
	}
	if (!counting && base && oid_equal(base, ours)) {
		oid_cpy(out, theirs);
		return 0;
	}
	cache_trees();
	memset(&m, 0, sizeof m);
	m.r = r;
	m.tree[B] = base;
	m.tree[O] = ours;
	m.tree[T] = theirs;
	m.opts = opts;
	m.st = stats;
	m.ms = xcalloc(256, sizeof *m.ms);
	m.full = opts && (opts->notify || (opts->flags & MERGE_COUNT));
	m.defer = true;

	if ((ret = walk(&m, DIFF_OURS, base, ours, &path)) < 0 ||
	    (ret = walk(&m, DIFF_THEIRS, base, theirs, &path)) < 0 ||
	    (ret = read_pending(&m)) < 0)
		goto done;
	mtimes_states_from_leaves(&m);
	if ((ret = changed_record_keys(&m, &ckeys, &nckeys)) < 0)
		goto done;
	for (size_t i = 0; i < nckeys && ret == 0; i++)
		if ((!i || strcmp(ckeys[i], ckeys[i - 1])) && !presented(&m, ckeys[i]))
			ret = lookup_key(&m, ckeys[i]);
	if (ret < 0)
		goto done;

	/* messages first (grouped by identity), then the other paths */
	if (m.ln)
		qsort(m.lv, m.ln, sizeof *m.lv, leaf_ident_cmp);
	for (e = 0; e < m.ln && m.lv[e].kind == LEAF_MESSAGE; e++)
		;
	build_idents(&m, 0, e);
	for (size_t i = 0; i < m.nids; i++)
		resolve(&m.ids[i]);
	resolve_collisions(&m);
	for (size_t i = 0; i < m.nids && ret == 0; i++) {
		struct ident *id = &m.ids[i];
		for (size_t k = 0; k < id->nres; k++)
			res_build_path(&id->res[k]);
		ret = resolve_mtime(&m, id);
	}
	if (ret < 0)
		goto done;
	if (stats)
		stats->messages = m.nids;
	for (size_t i = 0; i < m.nids; i++) {
		ident_changes(&m, &m.ids[i], O);
		ident_changes(&m, &m.ids[i], T);
	}
	for (s = e; s < m.ln && m.lv[s].kind != LEAF_MTIMES; s++)
		;
	/* markers and other paths, skipping the mtimes blobs */
	if ((ret = resolve_paths(&m, e, s)) < 0)
		goto done;
	for (e = s; e < m.ln && m.lv[e].kind == LEAF_MTIMES; e++)
		;
	if ((ret = resolve_paths(&m, e, m.ln)) < 0 ||
	    (ret = write_mtimes(&m, ckeys, nckeys)) < 0)
		goto done;
	updates_normalize(&m.ups);
	if ((ret = write_result(out, &m)) < 0)
		goto done;
	ret = restore_markers(out, &m);
done:
	for (size_t i = 0; i < nckeys; i++)
		free(ckeys[i]);
	free(ckeys);
	strbuf_release(&path);
	mctx_release(&m);
	return ret;
}

/* --- commits ------------------------------------------------------------ */

int merge_is_ancestor(struct repo *r, const struct oid *ancestor,
		      const struct oid *commit)
{
	int d;

	if (oid_equal(ancestor, commit))
		return 1;
	d = git_graph_descendant_of(r->git, GIT_OID(commit), GIT_OID(ancestor));
	if (d < 0)
		return log_error("walk history: %s", repo_git_error());
	return d;
}

/*
 * The virtual bases of one merge_commits() call.  Three replicas that
 * merge each other all day make criss-cross histories whose merge bases
 * have several merge bases of their own, level after level; merged anew
 * at each level the same pairs come back again and again, and the work
 * doubles with every level (a syncd at 100% CPU for minutes on a
 * three-replica test).  A virtual merge is a pure function of its pair,
 * so each pair is merged once per call and looked up after.
 */
struct vbases {
	struct strmap pairs;	/* "<lesser id><greater id>" -> index in ids */
	struct oid *ids;
	size_t n, cap;
	size_t made;		/* virtual merges written */
};

static void vbases_key(char key[2 * OID_HEXSZ + 1], const struct oid *a,
		       const struct oid *b)
{
	if (oid_cmp(a, b) > 0) {
		const struct oid *t = a;
		a = b;
		b = t;
	}
	oid_fmt(key, a);
	oid_fmt(key + OID_HEXSZ, b);
	key[2 * OID_HEXSZ] = '\0';
}

static void vbases_put(struct vbases *vb, const char *key, const struct oid *id)
{
	xgrow((void **)&vb->ids, &vb->cap, vb->n + 1, sizeof *vb->ids);
	oid_cpy(&vb->ids[vb->n], id);
	strmap_put(&vb->pairs, key, vb->n++);
}

static int merge_commits_rec(struct oid *out, struct repo *r, const struct oid *a,
			     const struct oid *b, int depth,
			     const struct merge_opts *opts,
			     struct merge_stats *st, struct vbases *vb)
{
	git_oidarray bases = { NULL, 0 };
	struct oid base_tree, ta, tb, tree, parents[2], v;
	time_t wa, wb;
	bool have_base = false;
	char key[2 * OID_HEXSZ + 1];
	size_t at;
	int err, ret = E_FAIL;

	if (oid_equal(a, b)) {
		oid_cpy(out, a);
		if (st)
			st->kind = MERGE_SAME;
		return 0;
	}
	/* a virtual base (depth > 0) merged before in this call */
	vbases_key(key, a, b);
	if (depth > 0 && strmap_get(&vb->pairs, key, &at)) {
		oid_cpy(out, &vb->ids[at]);
		return 0;
	}
	for (int k = 0; k < 2; k++) {
		const struct oid *x = k ? b : a, *y = k ? a : b;
		/* y contains x: the answer is y */
		if ((err = merge_is_ancestor(r, x, y)) < 0)
			return err;
		if (err) {
			oid_cpy(out, y);
			if (st)
				st->kind = MERGE_FAST_FORWARD;
			if (depth > 0)
				vbases_put(vb, key, out);
			return 0;
		}
	}
	err = git_merge_bases(&bases, r->git, GIT_OID(a), GIT_OID(b));
	if (err < 0 && err != GIT_ENOTFOUND)
		return log_error("merge base: %s", repo_git_error());
	if (st)
		st->bases = bases.count;
	if (bases.count) {
		qsort(bases.ids, bases.count, sizeof *bases.ids,
		      (int (*)(const void *, const void *))oid_cmp);
		oid_cpy(&v, OID(&bases.ids[0]));
		if (bases.count > 1 && depth >= MAX_BASE_DEPTH)
			log_warn("criss-cross merges nested %d deep: using one "
				 "merge base", depth);
		for (size_t i = 1; i < bases.count && depth < MAX_BASE_DEPTH; i++)
			/* a virtual base: the bases merged, recursively */
			if (merge_commits_rec(&v, r, &v, OID(&bases.ids[i]), depth + 1,
					      NULL, NULL, vb) < 0)
				goto done;
		if (repo_commit_tree(&base_tree, r, &v) < 0)
			goto done;
		have_base = true;
	}
	if (repo_commit_tree(&ta, r, a) < 0 || repo_commit_tree(&tb, r, b) < 0 ||
	    repo_commit_time(&wa, r, a) < 0 || repo_commit_time(&wb, r, b) < 0)
		goto done;
	if ((ret = merge_trees(&tree, r, have_base ? &base_tree : NULL, &ta, &tb,
			       opts, st)) < 0)
		goto done;
	if (st) {
		st->kind = MERGE_MERGED;
		st->bases = bases.count;
	}
	/* canonical: the same bytes whichever side merges */
	if (oid_cmp(a, b) < 0) {
		oid_cpy(&parents[0], a);
		oid_cpy(&parents[1], b);
	} else {
		oid_cpy(&parents[0], b);
		oid_cpy(&parents[1], a);
	}
	ret = repo_commit(out, r, &tree, parents, 2, MERGE_MESSAGE,
			  wa > wb ? wa : wb, MERGE_NAME, MERGE_EMAIL);
	if (ret == 0 && depth > 0) {
		vb->made++;
		vbases_put(vb, key, out);
	}
done:
	git_oidarray_dispose(&bases);
	return ret;
}

int merge_commits(struct oid *out, struct repo *r, const struct oid *a,
		  const struct oid *b, unsigned flags,
		  const struct merge_opts *opts, struct merge_stats *stats)
{
	struct vbases vb = { STRMAP_INIT, NULL, 0, 0, 0 };
	int ret;

	(void)flags;
	if (stats)
		memset(stats, 0, sizeof *stats);
	ret = merge_commits_rec(out, r, a, b, 0, opts, stats, &vb);
	if (stats)
		stats->virtual_merges = vb.made;
	strmap_clear(&vb.pairs);
	free(vb.ids);
	return ret;
}

int merge_into_ref(struct oid *out, struct repo *r, const char *ref,
		   const struct oid *other, const struct merge_opts *opts,
		   struct merge_stats *stats)
{
	struct repo_batch batch = REPO_BATCH_INIT;
	struct oid cur, res;
	int ret;

	if ((ret = repo_ref_read(&cur, r, ref)) < 0)
		return ret;
	/*
	 * The merge's objects (~50 for 100 changes a side) are written
	 * unsynced and made durable by one syncfs(2) before the ref moves,
	 * not by one fsync each: 20 ms less on ext4 (bench/merge).  What a
	 * crash cuts short meanwhile no ref names, and maildag-syncd checks
	 * loose objects after the machine restarts (objects.h).
	 */
	repo_batch_begin(&batch, r);
	ret = merge_commits(&res, r, &cur, other, 0, opts, stats);
	if (ret < 0) {
		repo_batch_end(&batch, false);
		return ret;
	}
	/* objects were written unless the result is one of the sides */
	if ((ret = repo_batch_end(&batch, !oid_equal(&res, &cur) &&
					  !oid_equal(&res, other))) < 0)
		return ret;
	if (!oid_equal(&res, &cur) &&
	    (ret = repo_ref_cas(r, ref, &res, &cur, "maildag: merge")) < 0)
		return ret;
	if (out)
		oid_cpy(out, &res);
	return 0;
}

int merge_resolve_commit(struct oid *out, struct repo *r, const char *spec)
{
	git_object *obj = NULL, *commit = NULL;

	if (git_revparse_single(&obj, r->git, spec) < 0 ||
	    git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) < 0) {
		git_object_free(obj);
		log_error("'%s' names no commit: %s", spec, repo_git_error());
		return E_NOTFOUND;
	}
	oid_cpy(out, OID(git_object_id(commit)));
	git_object_free(commit);
	git_object_free(obj);
	return 0;
}

int merge_objects_in_memory(struct repo *r)
{
	git_odb_backend *mem = NULL;
	git_odb *odb = NULL;
	int ret = 0;

	if (git_mempack_new(&mem) < 0 || git_repository_odb(&odb, r->git) < 0 ||
	    git_odb_add_backend(odb, mem, 999) < 0) {
		ret = log_error("in-memory objects: %s", repo_git_error());
		if (mem && !odb)
			mem->free(mem);
	}
	git_odb_free(odb);
	return ret;
}
