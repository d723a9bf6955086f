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
 *
 * This file runs the steps (merge_trees) and merges commits; the steps
 * are merge_walk.c (1, 2), merge_resolve.c (3) and merge_write.c (4),
 * sharing merge_p.h.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

#include "fnv.h"
#include "log.h"
#include "merge.h"
#include "merge_p.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "xalloc.h"

/* --- small helpers ----------------------------------------------------- */

int mg_tree_load(git_tree **out, struct mctx *m, const struct oid *id)
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

int mg_nstrcmp(const char *a, const char *b)
{
	if (!a || !b)
		return a ? 1 : b ? -1 : 0;
	return strcmp(a, b);
}

int mg_key_tie(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la != lb)
		return la > lb ? -1 : 1;
	return strcmp(a, b);
}

const char *mg_pick3(bool hasb, const char *b, const char *o,
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

void mg_dup_key(struct strbuf *out, const char *bkey, size_t blen,
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

char *mg_identity_key(const char *key, size_t len, const struct oid *id)
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

/* --- merge_trees -------------------------------------------------------- */

static void mctx_release(struct mctx *m)
{
	for (size_t i = 0; i < m->nids; i++) {
		struct ident *id = &m->ids[i];
		for (int k = 0; k < 3; k++) {
			for (size_t j = 0; j < id->n[k]; j++)
				mg_view_release(&id->v[k][j]);
			free(id->v[k]);
		}
		for (size_t j = 0; j < id->nres; j++)
			mg_res_release(&id->res[j]);
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
	mg_imap_release(m);
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

/*
 * merge_trees(), told whether base is virtual (the merge of several merge
 * bases, merge_commits_rec()).  Format 2's shortcuts rest on the ancestor
 * rule (merge_records.c's head comment), which holds against a real
 * common ancestor but not against a virtual base: that takes one base's
 * uidnext with another base's placement of a message, so a side can hold
 * a UID below the virtual base's uidnext that the base gives no message.
 * Then neither "one side is the base: the other is the answer" nor "a
 * shard only one side changed stands" holds, and every changed shard
 * goes through the rules (mg_imap_contested()).
 */
static int merge_trees_at(struct oid *out, struct repo *r,
			  const struct oid *base, const struct oid *ours,
			  const struct oid *theirs, bool vbase,
			  const struct merge_opts *opts,
			  struct merge_stats *stats)
{
	struct mctx m;
	struct strbuf path = STRBUF_INIT;
	char **ckeys = NULL, **ikeys = NULL;
	size_t nckeys = 0, nikeys = 0, s, e;
	const struct oid *one = NULL;
	int ret;

	bool counting = opts && (opts->notify || (opts->flags & MERGE_COUNT));

	if (stats)
		memset(stats, 0, sizeof *stats);
	/* one side did nothing: the other side is the answer */
	if (oid_equal(ours, theirs)) {
		oid_cpy(out, ours);
		return 0;
	}
	if (!counting && base)
		one = oid_equal(base, theirs) ? ours :
		      oid_equal(base, ours) ? theirs : NULL;
	if (one && !vbase) {
		oid_cpy(out, one);
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

	if ((ret = mg_imap_detect(&m)) < 0)
		goto done;
	if (one && !m.imap) {
		/* format 1 has no UIDs: the shortcut stands */
		oid_cpy(out, one);
		goto done;
	}
	m.vbase = vbase;
	if ((ret = mg_walk(&m, DIFF_OURS, base, ours, &path)) < 0 ||
	    (ret = mg_walk(&m, DIFF_THEIRS, base, theirs, &path)) < 0 ||
	    (m.imap && (ret = mg_imap_contested(&m)) < 0) ||
	    (ret = mg_read_pending(&m)) < 0)
		goto done;
	mg_mtimes_states_from_leaves(&m);
	if ((ret = mg_changed_record_keys(&m, &ckeys, &nckeys)) < 0 ||
	    (m.imap && (ret = mg_imap_changed_keys(&m, &ikeys, &nikeys)) < 0))
		goto done;
	for (size_t i = 0; i < nckeys && ret == 0; i++)
		if ((!i || strcmp(ckeys[i], ckeys[i - 1])) && !presented(&m, ckeys[i]))
			ret = mg_lookup_key(&m, ckeys[i]);
	/* keys whose IMAP record alone changed join in the same way */
	for (size_t i = 0; i < nikeys && ret == 0; i++)
		if ((!i || strcmp(ikeys[i], ikeys[i - 1])) &&
		    !presented(&m, ikeys[i]) &&
		    !(nckeys && bsearch(&ikeys[i], ckeys, nckeys, sizeof *ckeys,
					 strvec_cmp)))
			ret = mg_lookup_key(&m, ikeys[i]);
	if (ret < 0)
		goto done;

	/* messages first (grouped by identity), then the other paths */
	if (m.ln)
		qsort(m.lv, m.ln, sizeof *m.lv, mg_leaf_ident_cmp);
	for (e = 0; e < m.ln && m.lv[e].kind == LEAF_MESSAGE; e++)
		;
	mg_build_idents(&m, 0, e);
	for (size_t i = 0; i < m.nids; i++)
		mg_resolve(&m.ids[i]);
	mg_resolve_collisions(&m);
	for (size_t i = 0; i < m.nids && ret == 0; i++) {
		struct ident *id = &m.ids[i];
		for (size_t k = 0; k < id->nres; k++)
			mg_res_build_path(&id->res[k]);
		ret = mg_resolve_mtime(&m, id);
	}
	if (ret < 0)
		goto done;
	if (stats)
		stats->messages = m.nids;
	for (size_t i = 0; i < m.nids; i++) {
		mg_ident_changes(&m, &m.ids[i], O);
		mg_ident_changes(&m, &m.ids[i], T);
	}
	for (s = e; s < m.ln && m.lv[s].kind != LEAF_MTIMES &&
		    m.lv[s].kind < LEAF_IMAPREC; s++)
		;
	/* markers and other paths, skipping the mtimes and imap blobs */
	if ((ret = mg_resolve_paths(&m, e, s)) < 0)
		goto done;
	for (e = s; e < m.ln && m.lv[e].kind == LEAF_MTIMES; e++)
		;
	for (s = e; s < m.ln && m.lv[s].kind < LEAF_IMAPREC; s++)
		;
	if ((ret = mg_resolve_paths(&m, e, s)) < 0 ||
	    (ret = mg_write_mtimes(&m, ckeys, nckeys)) < 0 ||
	    (m.imap && (ret = mg_imap_resolve(&m, ikeys, nikeys)) < 0))
		goto done;
	mg_updates_normalize(&m.ups);
	if ((ret = mg_write_result(out, &m)) < 0 ||
	    (ret = mg_restore_markers(out, &m)) < 0)
		goto done;
	if (m.imap && (ret = mg_imap_restore_folders(out, &m)) < 0)
		goto done;
	ret = mg_purge(out, &m);
done:
	for (size_t i = 0; i < nckeys; i++)
		free(ckeys[i]);
	free(ckeys);
	for (size_t i = 0; i < nikeys; i++)
		free(ikeys[i]);
	free(ikeys);
	strbuf_release(&path);
	mctx_release(&m);
	return ret;
}

int merge_trees(struct oid *out, struct repo *r, const struct oid *base,
		const struct oid *ours, const struct oid *theirs,
		const struct merge_opts *opts, struct merge_stats *stats)
{
	return merge_trees_at(out, r, base, ours, theirs, false, opts, stats);
}

/* --- commits ------------------------------------------------------------ */

/* Commits looked at along a first-parent line before the full walk. */
#define FIRST_PARENTS 16

/*
 * Is target on from's first-parent line, within FIRST_PARENTS commits?
 * Parsed commits (libgit2 keeps them cached); any failure says no.
 */
static bool on_first_parents(struct repo *r, const struct oid *from,
			     const struct oid *target)
{
	git_oid at = *GIT_OID(from);

	for (int i = 0; i < FIRST_PARENTS; i++) {
		git_commit *c;
		const git_oid *p;
		bool more;

		if (git_commit_lookup(&c, r->git, &at) < 0) {
			git_error_clear();
			return false;
		}
		p = git_commit_parentcount(c) ? git_commit_parent_id(c, 0) : NULL;
		more = p != NULL;
		if (p)
			at = *p;
		git_commit_free(c);
		if (!more)
			return false;
		if (git_oid_equal(&at, GIT_OID(target)))
			return true;
	}
	return false;
}

/*
 * libgit2's walk answers "no" only once its paint of both histories has
 * gone stale: proving that a new commit is not below an old one walks
 * every commit between them (hundreds for each delivery a receiving
 * peer's daemon took in, doc/session-progress.md).  The usual answers
 * are on a first-parent line: ancestor below commit (yes), or commit
 * below ancestor (no: a history has no cycle).  The walk decides the
 * rest.
 */
int merge_is_ancestor(struct repo *r, const struct oid *ancestor,
		      const struct oid *commit)
{
	int d;

	if (oid_equal(ancestor, commit))
		return 1;
	if (on_first_parents(r, commit, ancestor))
		return 1;
	if (on_first_parents(r, ancestor, commit))
		return 0;
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
	bool have_base = false, vbase = false;
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
		/* virtual unless the bases merged to one of them */
		vbase = true;
		for (size_t i = 0; i < bases.count; i++)
			vbase &= !oid_equal(&v, OID(&bases.ids[i]));
	}
	if (repo_commit_tree(&ta, r, a) < 0 || repo_commit_tree(&tb, r, b) < 0 ||
	    repo_commit_time(&wa, r, a) < 0 || repo_commit_time(&wb, r, b) < 0)
		goto done;
	if ((ret = merge_trees_at(&tree, r, have_base ? &base_tree : NULL, &ta,
				  &tb, vbase, opts, st)) < 0)
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
