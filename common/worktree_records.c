/*
 * worktree_records: the IMAP records of a tree as the worktree reads and
 * writes them (doc/imap-identity.md 4.1): whether a tree is format 2,
 * and the cache of its imap/<xx> shards that a commit changes and the
 * apply reads (struct reccache, worktree_p.h).
 *
 * Invariants: a shard is read from the tree once per cache; only the
 * shards marked changed are written back; an unreadable shard is taken
 * as empty with a warning, never as a reason to lose the others.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "worktree_p.h"

bool wt_dv_tree_is_imap(struct repo *r, const struct oid *tree)
{
	struct strbuf b = STRBUF_INIT;
	struct oid id;
	bool yes;

	yes = repo_tree_lookup(&id, r, tree, FORMAT_PATH) == 0 &&
	      repo_blob_read(&b, r, &id) == 0 &&
	      !strcmp(b.buf, "maildag 2\n");
	strbuf_release(&b);
	return yes;
}

void wt_rc_init(struct reccache *c, const struct oid *tree)
{
	memset(c, 0, sizeof *c);
	c->tree = tree;
}

void wt_rc_release(struct reccache *c)
{
	for (int i = 0; i < 256; i++)
		imap_recs_release(&c->s[i]);
}

struct imap_recs *wt_rc_shard(struct reccache *c, struct repo *r,
				  unsigned s)
{
	struct strbuf path = STRBUF_INIT, b = STRBUF_INIT;
	struct oid id;
	char xx[3];

	if (c->loaded[s])
		return &c->s[s];
	c->loaded[s] = true;
	imap_recs_shard_path(&path, s);
	snprintf(xx, sizeof xx, "%02x", s);
	if (c->tree && repo_tree_lookup(&id, r, c->tree, path.buf) == 0 &&
	    (repo_blob_read(&b, r, &id) < 0 ||
	     imap_recs_parse(&c->s[s], b.buf, b.len, xx, NULL) < 0))
		log_warn("ignoring the records of %s", path.buf);
	strbuf_release(&path);
	strbuf_release(&b);
	return &c->s[s];
}

const struct imap_rec *wt_rc_get(struct reccache *c, struct repo *r,
				     const char *key, size_t klen)
{
	char k[MAILDIR_NAME_MAX + 1];

	if (klen > MAILDIR_NAME_MAX)
		return NULL;
	memcpy(k, key, klen);
	k[klen] = '\0';
	return imap_recs_find(wt_rc_shard(c, r, maildir_shard(key, klen)), k);
}

/* The changed shards as updates of ups. */
int wt_rc_write(struct reccache *c, struct repo *r,
		    struct update_list *ups)
{
	for (unsigned s = 0; s < 256; s++) {
		struct strbuf path = STRBUF_INIT, b = STRBUF_INIT;
		struct oid id;
		int ret = 0;

		if (!c->changed[s])
			continue;
		imap_recs_shard_path(&path, s);
		imap_recs_format(&b, &c->s[s]);
		if (!b.len)
			update_list_add(ups, path.buf, NULL);
		else if ((ret = repo_blob_from_buffer(&id, r, b.buf, b.len)) == 0)
			update_list_add(ups, path.buf, &id);
		strbuf_release(&path);
		strbuf_release(&b);
		if (ret < 0)
			return E_TEMP;
	}
	return 0;
}
