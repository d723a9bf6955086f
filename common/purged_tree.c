/*
 * purged_tree: the purged/ records of a tree, read and written (see
 * purged.h).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "log.h"
#include "mtimes.h"
#include "purged.h"
#include "repo_p.h"
#include "xalloc.h"

int purged_dir_id(struct oid *out, struct repo *r, const struct oid *tree)
{
	return repo_tree_lookup(out, r, tree, PURGED_DIR);
}

static int read_one(struct purged *out, struct repo *r, const struct oid *dir,
		    const char *name)
{
	struct strbuf buf = STRBUF_INIT, why = STRBUF_INIT;
	struct oid id;
	unsigned x;
	int ret;

	if (!layout_shard_name(&x, name, strlen(name)))
		return log_error("'" PURGED_DIR "/%s': not a shard", name);
	if ((ret = repo_tree_lookup(&id, r, dir, name)) < 0 ||
	    (ret = repo_blob_read(&buf, r, &id)) < 0) {
		strbuf_release(&buf);
		if (ret == E_NOTFOUND)
			return log_error("'" PURGED_DIR "/%s': cannot read it",
					 name);
		return ret;
	}
	if ((ret = purged_parse(out, buf.buf, buf.len, x, &why)) < 0)
		log_error("'" PURGED_DIR "/%s': %s", name, why.buf);
	strbuf_release(&buf);
	strbuf_release(&why);
	return ret;
}

struct names {
	char **v;
	size_t n, alloc;
};

static int add_name(const char *name, void *data)
{
	struct names *nm = data;

	xgrow((void **)&nm->v, &nm->alloc, nm->n + 1, sizeof *nm->v);
	nm->v[nm->n++] = xstrdup(name);
	return 0;
}

int purged_read(struct purged *out, struct repo *r, const struct oid *tree)
{
	struct names nm = { NULL, 0, 0 };
	struct oid dir;
	int ret;

	if ((ret = purged_dir_id(&dir, r, tree)) == E_NOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	if ((ret = repo_tree_foreach_name(r, tree, PURGED_DIR, add_name,
					  &nm)) == E_NOTFOUND)
		ret = log_error("'" PURGED_DIR "': not a tree");
	for (size_t i = 0; i < nm.n; i++) {
		if (!ret)
			ret = read_one(out, r, &dir, nm.v[i]);
		free(nm.v[i]);
	}
	free(nm.v);
	return ret;
}

int purged_read_shard(struct purged *out, struct repo *r,
		      const struct oid *tree, unsigned x)
{
	struct oid dir, id;
	char name[3];
	int ret;

	if ((ret = purged_dir_id(&dir, r, tree)) == E_NOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	snprintf(name, sizeof name, "%02x", x & 0xff);
	if ((ret = repo_tree_lookup(&id, r, &dir, name)) == E_NOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	return read_one(out, r, &dir, name);
}

int purged_updates(struct update_list *ups, struct repo *r,
		   const struct purged *old, const struct purged *p)
{
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
	int ret = 0;

	for (unsigned x = 0; x < 256 && !ret; x++) {
		char path[sizeof PURGED_DIR + 3];
		struct oid id;

		strbuf_reset(&a);
		strbuf_reset(&b);
		purged_format_shard(&a, old, x);
		purged_format_shard(&b, p, x);
		if (a.len == b.len && !memcmp(a.buf, b.buf, a.len))
			continue;
		snprintf(path, sizeof path, PURGED_DIR "/%02x", x);
		if (!b.len) {
			update_list_add(ups, path, NULL);
			continue;
		}
		if ((ret = repo_blob_from_buffer(&id, r, b.buf, b.len)) < 0)
			break;
		update_list_add(ups, path, &id);
	}
	strbuf_release(&a);
	strbuf_release(&b);
	return ret;
}
