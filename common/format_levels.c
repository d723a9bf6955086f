/*
 * format_levels: the shape of a valid tree, one level at a time (see
 * format.c and maildag-format(5)): the root (FORMAT, subscriptions,
 * folders, mtimes/), a folder, its cur/ and new/, a shard, a message;
 * and the mtimes records matched against the messages of their shards.
 * No level goes deeper than the next, so the walk never recurses more
 * than four trees whatever a peer sends.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "folder.h"
#include "format_p.h"
#include "imaprec.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

/* --- the levels ------------------------------------------------------------ */

/*
 * Trusted tree tt had entry te where the checked tree has none (depth:
 * 0 a shard tree, 1 cur/ or new/, 2 a folder) in folder ("" INBOX; at
 * depth 2, NULL) and sub (below depth 1; else NULL): the shards under it
 * lost messages, so their mtimes records must be looked at again (and
 * format 2's records, fmt_imap_keep_removed()).
 */
static void mark_removed(struct checker *ck, const struct rentry *te,
			 int depth, const char *folder, const char *sub)
{
	struct rtree t;

	if (!fmt_mode_is(te, "40000"))
		return;
	if (depth == 0) {
		if (fmt_is_shard_name(te)) {
			ck->affected[fmt_shard_value(te->name)] = true;
			fmt_imap_keep_removed(ck, folder, sub,
					      fmt_shard_value(te->name), &te->id);
		}
		return;
	}
	if (depth == 2)
		folder = te->name;
	else
		sub = te->name;
	fmt_read_trusted(ck, &t, &te->id);
	for (size_t i = 0; i < t.n; i++)
		if (depth == 1 || fmt_name_is(&t.e[i], "cur") || fmt_name_is(&t.e[i], "new"))
			mark_removed(ck, &t.e[i], depth - 1, folder, sub);
	fmt_rtree_release(&t);
}

/* Mark what trusted tt holds and t (sorted, checked) does not. */
static void mark_all_removed(struct checker *ck, const struct rtree *t,
			     const struct rtree *tt, int depth, bool root,
			     const char *folder, const char *sub)
{
	for (size_t i = 0; i < tt->n && !ck->stop; i++) {
		const struct rentry *te = &tt->e[i];
		if (fmt_rtree_find(t, te))
			continue;
		if (!root)
			mark_removed(ck, te, depth, folder, sub);
		else if (fmt_name_is(te, "cur") || fmt_name_is(te, "new"))
			mark_removed(ck, te, 1, "", NULL);
		else if (te->nlen && te->name[0] == '.')
			mark_removed(ck, te, 2, NULL, NULL);
	}
}

/* A shard tree <folder>/<sub>/<xx>: message blobs. */
static int check_shard(struct checker *ck, const char *loc,
		       const char *folder, const char *sub,
		       const struct rentry *se, const struct oid *trusted)
{
	struct rtree t, tt;
	const struct rentry *prev = NULL;
	unsigned xx = fmt_shard_value(se->name);
	size_t old;
	int r;

	if ((r = fmt_read_tree(ck, &t, se, NULL)))
		return r < 0 ? r : 0;
	fmt_read_trusted(ck, &tt, trusted);
	old = fmt_path_push(ck, se);
	fmt_strset_add(&ck->changed, loc, strlen(loc), "");
	ck->affected[xx] = true;
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i];
		const char *other;
		char shard[3];
		size_t klen, size;

		if (!fmt_check_entry(ck, e, prev))
			continue;
		prev = e;
		if (!fmt_want_blob(ck, e))
			continue;
		if (!maildir_name_valid(e->name)) {
			fmt_report(ck, e->name, e->nlen, "invalid message name");
			continue;
		}
		if (ck->version == FORMAT_VERSION_IMAP && !fmt_imap_name_ok(ck, e))
			continue;
		klen = maildir_key_len(e->name);
		maildir_shard_hex(shard, e->name, klen);
		if (memcmp(shard, se->name, 2)) {
			fmt_report(ck, e->name, e->nlen,
				   "wrong shard (the key belongs in '%s')", shard);
			continue;
		}
		{
			size_t here = fmt_path_push(ck, e);
			other = fmt_strset_add(&ck->keys, e->name, klen, ck->path.buf);
			fmt_path_pop(ck, here);
		}
		if (other) {
			struct strbuf o = STRBUF_INIT;
			fmt_show_path(&o, other, strlen(other));
			fmt_report(ck, e->name, e->nlen, "duplicate key (also at '%s')",
				   o.buf);
			strbuf_release(&o);
			continue;
		}
		ck->st.messages++;
		/* an unchanged entry was valid in trusted; a set that grew
		   is matched against the whole tree (fmt_purged_scan) */
		if (fmt_unchanged(&tt, e) || fmt_purged_message(ck, e))
			continue;
		if ((r = fmt_purged_blob(ck, e, &size)) < 0)
			break;
		if (r)
			continue;
		if (size > fmt_limits.message_bytes) {
			fmt_report(ck, e->name, e->nlen,
				   "message of %zu bytes, more than size_limit (%llu)",
				   size, fmt_limits.message_bytes);
			continue;
		}
		xgrow((void **)&ck->add, &ck->aladd, ck->nadd + 1,
		      sizeof *ck->add);
		oid_cpy(&ck->add[ck->nadd].id, &e->id);
		ck->add[ck->nadd++].size = size;
		ck->added += size;
	}
	fmt_path_pop(ck, old);
	/* format 2 matches its records against both, later */
	fmt_imap_keep_shard(ck, folder, sub, xx, &t, &tt, &se->id, trusted);
	fmt_rtree_release(&tt);
	fmt_rtree_release(&t);
	return ck->fatal;
}

/* <folder>/cur or <folder>/new: shard trees. */
static int check_sub(struct checker *ck, const char *folder,
		     const struct rentry *sub, const struct oid *trusted)
{
	struct rtree t, tt;
	const struct rentry *prev = NULL;
	struct strbuf loc = STRBUF_INIT;
	size_t old;
	int r;

	if ((r = fmt_read_tree(ck, &t, sub, NULL)))
		return r < 0 ? r : 0;
	fmt_read_trusted(ck, &tt, trusted);
	old = fmt_path_push(ck, sub);
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i], *te;

		if (!fmt_check_entry(ck, e, prev))
			continue;
		prev = e;
		if (!fmt_is_shard_name(e)) {
			fmt_report(ck, e->name, e->nlen,
				   "unexpected entry (not a shard: two lowercase hex digits)");
			continue;
		}
		if (!fmt_want_tree(ck, e))
			continue;
		te = fmt_rtree_find(&tt, e);
		if (te && oid_equal(&te->id, &e->id))
			continue;
		strbuf_reset(&loc);
		tree_shard_path(&loc, folder, sub->name, fmt_shard_value(e->name));
		r = check_shard(ck, loc.buf, folder, sub->name, e,
				te ? &te->id : NULL);
		if (r < 0)
			break;
	}
	if (ck->incremental)
		mark_all_removed(ck, &t, &tt, 0, false, folder, sub->name);
	fmt_path_pop(ck, old);
	strbuf_release(&loc);
	fmt_rtree_release(&tt);
	fmt_rtree_release(&t);
	return ck->fatal;
}

/* A folder tree .Name: its marker and cur/ new/. */
static int check_folder(struct checker *ck, const struct rentry *fe,
			const struct oid *trusted)
{
	struct rtree t, tt;
	const struct rentry *prev = NULL;
	size_t old;
	int r;

	if ((r = fmt_read_tree(ck, &t, fe, NULL)))
		return r < 0 ? r : 0;
	fmt_read_trusted(ck, &tt, trusted);
	old = fmt_path_push(ck, fe);
	ck->st.folders++;
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i], *te;

		if (!fmt_check_entry(ck, e, prev))
			continue;
		prev = e;
		if (fmt_name_is(e, "maildirfolder")) {
			struct oid empty;
			oid_fromstr(&empty, EMPTY_BLOB_HEX);
			if (!fmt_want_blob(ck, e))
				continue;
			if (!oid_equal(&e->id, &empty))
				fmt_report(ck, e->name, e->nlen,
					   "folder marker is not empty");
		} else if (fmt_name_is(e, "cur") || fmt_name_is(e, "new")) {
			if (!fmt_want_tree(ck, e))
				continue;
			te = fmt_rtree_find(&tt, e);
			if (te && oid_equal(&te->id, &e->id))
				continue;
			if (check_sub(ck, fe->name, e, te ? &te->id : NULL) < 0)
				break;
		} else if (ck->version == FORMAT_VERSION_IMAP &&
			   fmt_name_is(e, IMAPREC_FOLDER)) {
			if (fmt_imap_folder_record(ck, e) < 0)
				break;
		} else {
			fmt_report(ck, e->name, e->nlen, "unexpected entry");
		}
	}
	if (ck->incremental)
		mark_all_removed(ck, &t, &tt, 1, false, fe->name, NULL);
	fmt_path_pop(ck, old);
	fmt_rtree_release(&tt);
	fmt_rtree_release(&t);
	return ck->fatal;
}

static void count_record(const char *key, size_t klen, unsigned line,
			 void *data)
{
	((struct checker *)data)->st.mtimes++;
}

/* mtimes/: one record blob per shard number. */
static int check_mtimes(struct checker *ck, const struct rentry *me,
			const struct oid *trusted)
{
	struct rtree t, tt;
	const struct rentry *prev = NULL;
	size_t old;
	int r;

	if ((r = fmt_read_tree(ck, &t, me, NULL)))
		return r < 0 ? r : 0;
	fmt_read_trusted(ck, &tt, trusted);
	old = fmt_path_push(ck, me);
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i];
		struct strbuf why = STRBUF_INIT;
		git_odb_object *obj;
		size_t size;
		int err;

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
		if ((r = fmt_check_blob_object(ck, e, &size)))
			continue;
		if (size > FORMAT_MTIMES_MAX) {
			fmt_report(ck, e->name, e->nlen, "record larger than %d bytes",
				   FORMAT_MTIMES_MAX);
			continue;
		}
		if ((err = git_odb_read(&obj, ck->odb, GIT_OID(&e->id))) < 0) {
			if (fmt_read_failed(ck, e->name, e->nlen, &e->id, err, "blob") < 0)
				break;
			continue;
		}
		if (fmt_scan_records(git_odb_object_data(obj), git_odb_object_size(obj),
				     e->name, &why, count_record, ck) < 0) {
			fmt_report(ck, e->name, e->nlen, "%s", why.buf);
			ck->bad_records[fmt_shard_value(e->name)] = true;
		} else {
			/* its keys are looked for once every shard is seen */
			ck->affected[fmt_shard_value(e->name)] = true;
		}
		strbuf_release(&why);
		git_odb_object_free(obj);
	}
	fmt_path_pop(ck, old);
	fmt_rtree_release(&tt);
	fmt_rtree_release(&t);
	return ck->fatal;
}

/* FORMAT: exactly "maildag 1\n".  Sets ck->stop when it is newer. */
static int check_format_file(struct checker *ck, const struct rentry *e)
{
	git_odb_object *obj;
	const char *p;
	size_t size, n, digits;
	int r, err;

	if ((r = fmt_check_blob_object(ck, e, &size)))
		return r < 0 ? r : 0;
	if (size > FORMAT_MAX) {
		fmt_report(ck, e->name, e->nlen, "not a maildag format file");
		return 0;
	}
	if ((err = git_odb_read(&obj, ck->odb, GIT_OID(&e->id))) < 0)
		return fmt_read_failed(ck, e->name, e->nlen, &e->id, err, "blob") < 0 ?
		       E_TEMP : 0;
	p = git_odb_object_data(obj);
	n = git_odb_object_size(obj);
	if (n == strlen(FORMAT_CONTENT) && !memcmp(p, FORMAT_CONTENT, n)) {
		ck->version = FORMAT_VERSION;
		git_odb_object_free(obj);
		return 0;
	}
	if (fmt_version_max >= FORMAT_VERSION_IMAP && n == 10 &&
	    !memcmp(p, "maildag 2\n", n)) {
		ck->version = FORMAT_VERSION_IMAP;
		git_odb_object_free(obj);
		return 0;
	}
	if (n == 10 && !memcmp(p, "maildag 2\n", n)) {
		/* a format this maildag knows, in a repository still at 1 */
		fmt_report(ck, e->name, e->nlen,
			   "format 2 (maildag 2), and this repository is "
			   "format 1 (maildag 1): 'maildag upgrade' makes it "
			   "format 2");
		ck->stop = true;
		git_odb_object_free(obj);
		return 0;
	}
	for (digits = 0; 8 + digits < n && p[8 + digits] >= '0' &&
			 p[8 + digits] <= '9'; digits++)
		;
	if (n > 8 && !memcmp(p, "maildag ", 8) && digits > 0 &&
	    8 + digits + 1 == n && p[n - 1] == '\n' && p[8] != '0' &&
	    (digits > 1 || p[8] > '0' + fmt_version_max)) {
		fmt_report(ck, e->name, e->nlen,
			   "format 'maildag %.*s' is newer than this maildag understands",
			   (int)digits, p + 8);
		ck->stop = true;	/* its layout may be anything */
	} else {
		fmt_report(ck, e->name, e->nlen,
			   "not a maildag format %d file (want \"maildag %d\")",
			   FORMAT_VERSION, FORMAT_VERSION);
	}
	git_odb_object_free(obj);
	return 0;
}

/*
 * The second pass of an incremental check: every shard tree of a shard
 * number that changed, in every folder, not already checked, against the
 * keys of the checked ones.
 */
static void cross_check_sub(struct checker *ck, const char *folder,
			    const struct rentry *sub)
{
	struct strbuf here = STRBUF_INIT;
	struct rtree t;

	fmt_read_trusted(ck, &t, &sub->id);
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i];
		struct rtree s;
		size_t plen;

		if (!fmt_is_shard_name(e) || !fmt_is_tree(e) ||
		    !ck->affected[fmt_shard_value(e->name)])
			continue;
		strbuf_reset(&here);
		tree_shard_path(&here, folder, sub->name, fmt_shard_value(e->name));
		if (fmt_strset_get(&ck->changed, here.buf, here.len))
			continue;
		plen = here.len;
		fmt_read_trusted(ck, &s, &e->id);
		for (size_t j = 0; j < s.n && !ck->stop; j++) {
			const struct rentry *m = &s.e[j];
			const char *mine = fmt_strset_get(&ck->keys, m->name,
							  maildir_key_len(m->name));
			if (mine) {
				struct strbuf o = STRBUF_INIT;
				strbuf_setlen(&here, plen);
				strbuf_addf(&here, "/%s", m->name);
				fmt_show_path(&o, here.buf, here.len);
				fmt_report_path(ck, mine, "duplicate key (also at '%s')",
						o.buf);
				strbuf_release(&o);
			}
			fmt_strset_add(&ck->seen, m->name, maildir_key_len(m->name), "");
		}
		fmt_rtree_release(&s);
	}
	strbuf_release(&here);
	fmt_rtree_release(&t);
}

struct orphans {
	struct checker *ck;
	const char *path;
};

static void orphan_record(const char *key, size_t klen, unsigned line,
			  void *data)
{
	struct orphans *o = data;
	struct strbuf k = STRBUF_INIT;

	if (o->ck->stop || fmt_strset_get(&o->ck->keys, key, klen) ||
	    fmt_strset_get(&o->ck->seen, key, klen))
		return;
	format_escape(&k, key, klen);
	fmt_report_path(o->ck, o->path, "line %u: no message with key '%s'", line,
			k.buf);
	strbuf_release(&k);
}

/*
 * Every record of a shard number that was checked names a message of the
 * tree.  All keys of such a shard are in ck->keys (checked trees) or
 * ck->seen (the other trees of the shard, read by cross_check()).
 */
static void check_records(struct checker *ck, const struct rtree *root)
{
	const struct rentry *me = fmt_rtree_lookup(root, FORMAT_MTIMES_DIR);
	struct rtree t;

	if (!me || !fmt_is_tree(me))
		return;
	fmt_read_trusted(ck, &t, &me->id);
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i];
		struct strbuf scratch = STRBUF_INIT;
		struct orphans o = { ck, NULL };
		git_odb_object *obj;
		unsigned xx;

		if (!fmt_is_shard_name(e) || !fmt_is_blob(e))
			continue;
		xx = fmt_shard_value(e->name);
		if (ck->bad_records[xx] || !ck->affected[xx] ||
		    git_odb_read(&obj, ck->odb, GIT_OID(&e->id)) < 0)
			continue;
		o.path = xasprintf(FORMAT_MTIMES_DIR "/%s", e->name);
		fmt_scan_records(git_odb_object_data(obj), git_odb_object_size(obj),
				 e->name, &scratch, orphan_record, &o);
		free((char *)o.path);
		strbuf_release(&scratch);
		git_odb_object_free(obj);
	}
	fmt_rtree_release(&t);
}

static void cross_check(struct checker *ck, const struct rtree *root)
{
	for (size_t i = 0; i < root->n && !ck->stop; i++) {
		const struct rentry *e = &root->e[i];
		struct rtree f;

		if (!fmt_is_tree(e))
			continue;
		if (fmt_name_is(e, "cur") || fmt_name_is(e, "new")) {
			cross_check_sub(ck, "", e);
			continue;
		}
		if (e->name[0] != '.' || !folder_dir_valid(e->name))
			continue;
		fmt_read_trusted(ck, &f, &e->id);
		for (size_t j = 0; j < f.n && !ck->stop; j++)
			if (fmt_is_tree(&f.e[j]) && (fmt_name_is(&f.e[j], "cur") ||
						 fmt_name_is(&f.e[j], "new")))
				cross_check_sub(ck, e->name, &f.e[j]);
		fmt_rtree_release(&f);
	}
}

/* Add the ids of the message blobs of tree (a cur/ or new/) in shards affected. */
static void have_sub(struct checker *ck, struct strset *have,
		     const struct oid *tree)
{
	struct rtree t;

	fmt_read_trusted(ck, &t, tree);
	for (size_t i = 0; i < t.n; i++) {
		struct rtree s;

		if (!fmt_is_shard_name(&t.e[i]) || !fmt_is_tree(&t.e[i]) ||
		    !ck->affected[fmt_shard_value(t.e[i].name)])
			continue;
		fmt_read_trusted(ck, &s, &t.e[i].id);
		for (size_t j = 0; j < s.n; j++)
			if (fmt_is_blob(&s.e[j]))
				fmt_strset_add(have, oid_hex(&s.e[j].id),
					       OID_HEXSZ, "");
		fmt_rtree_release(&s);
	}
	fmt_rtree_release(&t);
}

int fmt_new_bytes(struct checker *ck)
{
	struct strset have = { NULL, 0, 0 };
	struct rtree root;

	if (!ck->trusted || !ck->nadd)
		return 0;
	fmt_read_trusted(ck, &root, ck->trusted);
	for (size_t i = 0; i < root.n; i++) {
		const struct rentry *e = &root.e[i];
		struct rtree f;

		if (!fmt_is_tree(e))
			continue;
		if (fmt_name_is(e, "cur") || fmt_name_is(e, "new")) {
			have_sub(ck, &have, &e->id);
			continue;
		}
		if (e->name[0] != '.')
			continue;
		fmt_read_trusted(ck, &f, &e->id);
		for (size_t j = 0; j < f.n; j++)
			if (fmt_is_tree(&f.e[j]) && (fmt_name_is(&f.e[j], "cur") ||
						 fmt_name_is(&f.e[j], "new")))
				have_sub(ck, &have, &f.e[j].id);
		fmt_rtree_release(&f);
	}
	fmt_rtree_release(&root);
	ck->added = 0;
	for (size_t i = 0; i < ck->nadd; i++)
		if (!fmt_strset_get(&have, oid_hex(&ck->add[i].id),
				    OID_HEXSZ))
			ck->added += ck->add[i].size;
	fmt_strset_release(&have);
	return 0;
}

/* Are the FORMAT entries of two trees (either may be NULL) the same blob? */
static bool same_format(const struct rentry *a, const struct rentry *b)
{
	return a && b && oid_equal(&a->id, &b->id);
}

/* Is the n-th folder one too many?  Then say so and check no further. */
static bool too_many_folders(struct checker *ck, size_t n)
{
	if (n <= fmt_limits.folders)
		return false;
	fmt_report(ck, NULL, 0, "more than folder_limit (%zu) folders",
		   fmt_limits.folders);
	ck->stop = true;	/* what follows would only be noise */
	return true;
}

int fmt_check_root(struct checker *ck, const struct oid *id,
		   const struct oid *trusted)
{
	struct rtree t, tt;
	const struct rentry *prev = NULL, *fmt;
	int r, inbox = 0;
	size_t folders = 0;

	if (trusted && oid_equal(id, trusted))
		return 0;
	if ((r = fmt_read_tree(ck, &t, NULL, id)))
		return r < 0 ? r : 0;
	fmt_read_trusted(ck, &tt, trusted);
	/* first FORMAT: a newer format may lay its tree out any way it likes */
	fmt = fmt_rtree_lookup(&t, FORMAT_PATH);
	if (tt.n && !same_format(fmt, fmt_rtree_lookup(&tt, FORMAT_PATH))) {
		/*
		 * Trusted in another format (the upgrade commit): what it
		 * holds proves nothing of this one, so check everything;
		 * ck->trusted still counts the bytes that are new.
		 */
		fmt_rtree_release(&tt);
		ck->incremental = false;
	}
	if (!fmt)
		fmt_report(ck, FORMAT_PATH, strlen(FORMAT_PATH), "missing");
	else if (fmt_is_blob(fmt) && check_format_file(ck, fmt) < 0)
		goto done;	/* read even when unchanged: it sets ck->version */
	/* before the messages: they are checked against it */
	if (fmt_purged_root(ck, &t, &tt) < 0)
		goto done;
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i], *te;

		if (!fmt_check_entry(ck, e, prev))
			continue;
		prev = e;
		te = fmt_rtree_find(&tt, e);
		if (fmt_name_is(e, FORMAT_PATH)) {
			fmt_want_blob(ck, e);	/* its content is checked above */
		} else if (fmt_name_is(e, PURGED_DIR)) {
			/* fmt_purged_root() */
		} else if (fmt_name_is(e, "subscriptions")) {
			size_t size;
			if (!fmt_want_blob(ck, e) || fmt_unchanged(&tt, e))
				continue;
			if ((r = fmt_check_blob_object(ck, e, &size)) < 0)
				break;
			if (!r && size > fmt_limits.subscriptions_bytes)
				fmt_report(ck, e->name, e->nlen,
					   "%zu bytes, more than subscriptions_limit (%llu)",
					   size, fmt_limits.subscriptions_bytes);
		} else if (fmt_name_is(e, FORMAT_MTIMES_DIR)) {
			if (!fmt_want_tree(ck, e) || (te && oid_equal(&te->id,
								  &e->id)))
				continue;
			if (check_mtimes(ck, e, te ? &te->id : NULL) < 0)
				break;
		} else if (fmt_name_is(e, "cur") || fmt_name_is(e, "new")) {
			if (!fmt_want_tree(ck, e))
				continue;
			if (!inbox++ && too_many_folders(ck, ++folders))
				continue;
			if (inbox == 1)
				ck->st.folders++;
			if (te && oid_equal(&te->id, &e->id))
				continue;
			if (check_sub(ck, "", e, te ? &te->id : NULL) < 0)
				break;
		} else if (e->name[0] == '.') {
			if (!folder_dir_valid(e->name)) {
				fmt_report(ck, e->name, e->nlen, "not a valid folder name");
				continue;
			}
			if (!fmt_want_tree(ck, e))
				continue;
			if (too_many_folders(ck, ++folders))
				continue;
			if (te && oid_equal(&te->id, &e->id))
				continue;
			if (check_folder(ck, e, te ? &te->id : NULL) < 0)
				break;
		} else if (ck->version == FORMAT_VERSION_IMAP &&
			   (r = fmt_imap_root_entry(ck, e, te)) != 0) {
			if (r < 0)
				break;
		} else {
			fmt_report(ck, e->name, e->nlen, "unexpected entry");
		}
	}
	if (ck->version == FORMAT_VERSION_IMAP && !ck->stop && !ck->fatal &&
	    !(ck->incremental && ck->ancestor))
		fmt_imap_cross_check(ck, &t);
	if (ck->incremental && !ck->stop && !ck->fatal) {
		fmt_purged_scan(ck, &t);
		mark_all_removed(ck, &t, &tt, 0, true, NULL, NULL);
		cross_check(ck, &t);
	}
	/* after them: affected[] is complete */
	if (ck->version == FORMAT_VERSION_IMAP && !ck->stop && !ck->fatal &&
	    ck->incremental && ck->ancestor)
		fmt_imap_since(ck, &t, &tt);
	if (!ck->stop && !ck->fatal)
		check_records(ck, &t);
	if (ck->merge && fmt_limits.merge_bytes && !ck->stop && !ck->fatal &&
	    ck->added > fmt_limits.merge_bytes &&
	    (r = fmt_new_bytes(ck)) >= 0 && ck->added > fmt_limits.merge_bytes)
		fmt_report(ck, NULL, 0, "adds %llu bytes of messages, more than "
			   "merge_limit (%llu)", ck->added, fmt_limits.merge_bytes);
done:
	fmt_rtree_release(&tt);
	fmt_rtree_release(&t);
	return ck->fatal;
}
