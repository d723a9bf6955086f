/*
 * merge_purge: purged/ in the tree merge (doc/purge.md 3.4, merge.h).
 *
 *	- the result's purged/ set is the union of ours and theirs (the
 *	  base does not matter: a set never shrinks along a history);
 *	- purge wins: a message whose blob the result's set lists is not in
 *	  the result, whatever either side did (an add, a move, a restore,
 *	  flags), and its mtimes record and IMAP record go with it; a format
 *	  2 folder left with nothing but its record goes too.
 *
 * It runs last, on the written result, and is a function of that tree
 * and the two sides' sets, so the merge stays a pure, symmetric function
 * of (base, ours, theirs).  While the two sets agree (the same purged/
 * tree id, or none on both) it reads nothing more: each side is valid,
 * so neither names a blob of its own set.  When they differ (a day's
 * purge, a forget) every message of the result is looked up once:
 * O(mailbox), as rarely as purges happen.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "merge_p.h"
#include "mtimes.h"
#include "purged.h"
#include "repo_p.h"
#include "xalloc.h"

struct drop {
	const struct purged *set;
	struct update_list *ups;
	char **keys;
	size_t n, alloc;
	bool shard[256];	/* imap/<xx> to rewrite */
};

static int drop_message(const char *path, const char *folder, const char *sub,
			const char *name, const struct oid *blob, void *data)
{
	struct drop *d = data;
	size_t klen = maildir_key_len(name);

	(void)folder;
	(void)sub;
	if (!purged_has(d->set, blob))
		return 0;
	update_list_add(d->ups, path, NULL);
	xgrow((void **)&d->keys, &d->alloc, d->n + 1, sizeof *d->keys);
	d->keys[d->n++] = xstrndup(name, klen);
	d->shard[maildir_shard(name, klen)] = true;
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The IMAP records of the dropped keys, shard by shard. */
static int drop_records(struct drop *d, struct repo *r, const struct oid *tree)
{
	struct strbuf path = STRBUF_INIT, buf = STRBUF_INIT;
	int ret = 0;

	for (unsigned x = 0; x < 256 && !ret; x++) {
		struct imap_recs recs = IMAP_RECS_INIT;
		struct oid id;
		char xx[3];

		if (!d->shard[x])
			continue;
		strbuf_reset(&path);
		strbuf_reset(&buf);
		imap_recs_shard_path(&path, x);
		if (repo_tree_lookup(&id, r, tree, path.buf) < 0)
			continue;	/* no records there */
		snprintf(xx, sizeof xx, "%02x", x);
		if (repo_blob_read(&buf, r, &id) < 0 ||
		    imap_recs_parse(&recs, buf.buf, buf.len, xx, NULL) < 0) {
			ret = log_error("'%s': cannot read the records", path.buf);
			break;
		}
		for (size_t i = 0; i < d->n; i++)
			if (maildir_shard(d->keys[i], strlen(d->keys[i])) == x)
				imap_recs_remove(&recs, d->keys[i]);
		strbuf_reset(&buf);
		imap_recs_format(&buf, &recs);
		imap_recs_release(&recs);
		if (!buf.len) {
			update_list_add(d->ups, path.buf, NULL);
		} else if ((ret = repo_blob_from_buffer(&id, r, buf.buf,
							buf.len)) == 0) {
			update_list_add(d->ups, path.buf, &id);
		}
	}
	strbuf_release(&path);
	strbuf_release(&buf);
	return ret;
}

/*
 * tree gets purged/ = its own set plus add, and loses every message
 * whose blob that set lists (and its records); *dropped counts them.
 */
static int purge_tree(struct oid *tree, struct repo *r,
		      const struct purged *add, bool imap, size_t *dropped)
{
	struct purged all = PURGED_INIT, now = PURGED_INIT;
	struct update_list ups = UPDATE_LIST_INIT;
	struct drop d;
	int ret;

	memset(&d, 0, sizeof d);
	*dropped = 0;
	if ((ret = purged_read(&now, r, tree)) < 0)
		goto done;
	purged_union(&all, &now);
	purged_union(&all, add);
	if ((ret = purged_updates(&ups, r, &now, &all)) < 0)
		goto done;
	d.set = &all;
	d.ups = &ups;
	if ((ret = format_foreach_message(r, tree, drop_message, &d)) < 0)
		goto done;
	if (d.n) {
		struct mtime_change *ch = xcalloc(d.n, sizeof *ch);
		size_t nch = 0;

		qsort(d.keys, d.n, sizeof *d.keys, key_cmp);
		for (size_t i = 0; i < d.n; i++)
			if (!i || strcmp(d.keys[i], d.keys[i - 1])) {
				ch[nch].key = d.keys[i];
				ch[nch++].mtime = MTIME_NONE;
			}
		ret = mtimes_update(&ups, r, tree, ch, nch);
		free(ch);
		if (ret == 0 && imap)
			ret = drop_records(&d, r, tree);
	}
	if (ret == 0 && ups.n)
		ret = repo_tree_update(tree, r, tree, ups.v, ups.n);
	*dropped = d.n;
done:
	for (size_t i = 0; i < d.n; i++)
		free(d.keys[i]);
	free(d.keys);
	update_list_release(&ups);
	purged_release(&all);
	purged_release(&now);
	return ret;
}

int merge_purge_tree(struct oid *out, struct repo *r, const struct oid *tree,
		     const struct purged *add, size_t *dropped)
{
	struct strbuf fmt = STRBUF_INIT;
	struct oid id;
	size_t n;
	bool imap;

	imap = repo_tree_lookup(&id, r, tree, FORMAT_PATH) == 0 &&
	       repo_blob_read(&fmt, r, &id) == 0 &&
	       fmt.len == strlen("maildag 2\n") &&
	       !memcmp(fmt.buf, "maildag 2\n", fmt.len);
	strbuf_release(&fmt);
	oid_cpy(out, tree);
	return purge_tree(out, r, add, imap, dropped ? dropped : &n);
}

int mg_purge(struct oid *tree, struct mctx *m)
{
	struct purged side[2] = { PURGED_INIT, PURGED_INIT };
	struct oid dir[2];
	bool has[2];
	size_t dropped = 0;
	int ret = 0;

	for (int k = 0; k < 2; k++) {
		int e = purged_dir_id(&dir[k], m->r, m->tree[k ? T : O]);
		if (e < 0 && e != E_NOTFOUND)
			return e;
		has[k] = e == 0;
	}
	if (has[0] == has[1] && (!has[0] || oid_equal(&dir[0], &dir[1])))
		return 0;
	if ((ret = purged_read(&side[0], m->r, m->tree[O])) < 0 ||
	    (ret = purged_read(&side[1], m->r, m->tree[T])) < 0)
		goto done;
	purged_union(&side[0], &side[1]);
	ret = purge_tree(tree, m->r, &side[0], m->imap, &dropped);
	/* a format 2 folder left with its record alone is gone */
	if (ret == 0 && dropped && m->imap)
		ret = mg_imap_restore_folders(tree, m);
done:
	purged_release(&side[0]);
	purged_release(&side[1]);
	return ret;
}
