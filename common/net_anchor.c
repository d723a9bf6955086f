/*
 * net_anchor: the purge anchor of a push (doc/purge.md 1.3).
 *
 * libgit2's sender walks every tree of the commits it sends and asks
 * for the header of every blob they name that the peer's advertised
 * commits do not: a purged blob, absent on purpose, fails the push
 * ("cannot read header").  The anchor is a commit whose tree names every
 * blob refs/heads/mail lists in purged/, as blob entries of shard trees
 * <xx>/<id> written as raw tree objects (libgit2's tree builder refuses
 * entries that do not exist), with a fixed identity and time: the same
 * set gives the same commit.  A transport that wraps libgit2's own adds
 * it to what the peer advertises, so the push hides it, and hiding marks
 * its tree's blobs uninteresting by id alone, never reading them.  It is
 * never a ref: the peer never sees it, and nothing else walks it.
 *
 * Invariants: the anchor's objects are written only when the set is not
 * empty; the wrapper changes nothing but the list of advertised heads.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2/sys/transport.h>

#include "fsutil.h"
#include "log.h"
#include "net_p.h"
#include "purged.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

#define ANCHOR_REF "refs/maildag/purge-anchor"	/* a name, never a ref */

/* A raw tree object of entries (mode, name, id), in the order given. */
static int write_tree(git_oid *out, git_odb *odb, struct strbuf *buf)
{
	return git_odb_write(out, odb, buf->len ? buf->buf : "", buf->len,
			     GIT_OBJECT_TREE);
}

/*
 * <repo>/maildag/anchor: "<purged/ tree id> <anchor commit id>", the
 * anchor last made, so that a push whose set did not change reads one
 * line instead of the set (about 60 bytes a purged blob, hashed again).
 */
#define ANCHOR_FILE "anchor"

/* The anchor's commit and trees are all there (maintenance drops what
 * no ref reaches once it is a day old). */
static bool anchor_whole(struct repo *r, const struct oid *anchor)
{
	git_commit *c = NULL;
	git_tree *t = NULL;
	bool ok = false;

	if (git_commit_lookup(&c, r->git, GIT_OID(anchor)) == 0 &&
	    git_tree_lookup(&t, r->git, git_commit_tree_id(c)) == 0) {
		git_odb *odb = NULL;
		ok = git_repository_odb(&odb, r->git) == 0;
		for (size_t i = 0; ok && i < git_tree_entrycount(t); i++)
			ok = git_odb_exists(odb, git_tree_entry_id(
					git_tree_entry_byindex(t, i)));
		git_odb_free(odb);
	}
	git_tree_free(t);
	git_commit_free(c);
	return ok;
}

static bool anchor_cached(struct oid *out, struct repo *r,
			  const struct oid *dir)
{
	char *path = repo_state_path(r, ANCHOR_FILE), line[2 * OID_HEXSZ + 8];
	char a[OID_HEXSZ + 1], b[OID_HEXSZ + 1];
	FILE *f = fopen(path, "r");
	struct oid d;
	bool ok = false;

	free(path);
	if (!f)
		return false;
	if (fgets(line, sizeof line, f) &&
	    sscanf(line, "%40s %40s", a, b) == 2 &&
	    oid_fromstr(&d, a) == 0 && oid_equal(&d, dir) &&
	    oid_fromstr(out, b) == 0 && anchor_whole(r, out))
		ok = true;
	fclose(f);
	return ok;
}

static void anchor_remember(struct repo *r, const struct oid *dir,
			    const struct oid *anchor)
{
	char *path = repo_state_path(r, ANCHOR_FILE);
	char line[2 * OID_HEXSZ + 3];

	snprintf(line, sizeof line, "%s ", oid_hex(dir));
	snprintf(line + OID_HEXSZ + 1, sizeof line - OID_HEXSZ - 1, "%s\n",
		 oid_hex(anchor));
	/* a cache: losing it costs one more anchor, no sync needed */
	write_file_atomic(path, line, strlen(line), 0600);
	free(path);
}

int net_anchor_make(struct oid *out, bool *made, struct repo *r)
{
	struct purged set = PURGED_INIT;
	struct oid mail, t, dir;
	int ret;

	*made = false;
	if ((ret = repo_ref_read(&mail, r, REF_MAIL)) < 0)
		return ret == E_NOTFOUND ? 0 : ret;
	if ((ret = repo_commit_tree(&t, r, &mail)) < 0)
		return ret;
	if ((ret = purged_dir_id(&dir, r, &t)) == E_NOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	if (anchor_cached(out, r, &dir)) {
		*made = true;
		return 0;
	}
	if ((ret = purged_read(&set, r, &t)) == 0 && set.n &&
	    (ret = net_anchor_write(out, made, r, &set)) == 0)
		anchor_remember(r, &dir, out);
	purged_release(&set);
	return ret;
}

int net_anchor_write(struct oid *out, bool *made, struct repo *r,
		     const struct purged *set_)
{
	const struct purged set = *set_;
	struct strbuf root = STRBUF_INIT, shard = STRBUF_INIT;
	git_odb *odb = NULL;
	git_signature *sig = NULL;
	git_tree *tree = NULL;
	git_oid rid;
	int ret = E_FAIL;

	*made = false;
	if (git_repository_odb(&odb, r->git) < 0)
		goto fail;
	/* blob ids sort as their hex does: the shards come in order */
	for (size_t i = 0; i < set.n;) {
		unsigned x = set.v[i].id[0];
		char hex[OID_HEXSZ + 1], xx[3];
		git_oid sid;

		strbuf_reset(&shard);
		for (; i < set.n && set.v[i].id[0] == x; i++) {
			oid_tostr(hex, sizeof hex, &set.v[i]);
			strbuf_addf(&shard, "100644 %s", hex);
			strbuf_addch(&shard, '\0');
			strbuf_add(&shard, set.v[i].id, OID_RAWSZ);
		}
		if (write_tree(&sid, odb, &shard) < 0)
			goto fail;
		snprintf(xx, sizeof xx, "%02x", x);
		strbuf_addf(&root, "40000 %s", xx);
		strbuf_addch(&root, '\0');
		strbuf_add(&root, sid.id, OID_RAWSZ);
	}
	if (write_tree(&rid, odb, &root) < 0 ||
	    git_tree_lookup(&tree, r->git, &rid) < 0 ||
	    git_signature_new(&sig, "maildag", "anchor@maildag", 0, 0) < 0 ||
	    git_commit_create(GIT_OID(out), r->git, NULL, sig, sig, NULL,
			      "purge anchor\n", tree, 0, NULL) < 0)
		goto fail;
	*made = true;
	ret = 0;
	goto done;
fail:
	log_error("write the purge anchor: %s", repo_git_error());
done:
	git_signature_free(sig);
	git_tree_free(tree);
	git_odb_free(odb);
	strbuf_release(&root);
	strbuf_release(&shard);
	return ret;
}

/* --- the transport ---------------------------------------------------- */

struct anchor_transport {
	git_transport parent;		/* first: libgit2 casts */
	git_transport *inner;
	git_remote_head head;		/* the anchor, as advertised */
	const git_remote_head **heads;	/* the inner list and ours */
	size_t alloc;
};

#define INNER(t) (((struct anchor_transport *)(t))->inner)

static int a_connect(git_transport *t, const char *url, int direction,
		     const git_remote_connect_options *opts)
{
	return INNER(t)->connect(INNER(t), url, direction, opts);
}

static int a_set_connect_opts(git_transport *t,
			      const git_remote_connect_options *opts)
{
	return INNER(t)->set_connect_opts(INNER(t), opts);
}

static int a_capabilities(unsigned int *caps, git_transport *t)
{
	return INNER(t)->capabilities(caps, INNER(t));
}

static int a_ls(const git_remote_head ***out, size_t *size, git_transport *t)
{
	struct anchor_transport *a = (struct anchor_transport *)t;
	const git_remote_head **in;
	size_t n;
	int err;

	if ((err = a->inner->ls(&in, &n, a->inner)) < 0)
		return err;
	xgrow((void **)&a->heads, &a->alloc, n + 1, sizeof *a->heads);
	memcpy(a->heads, in, n * sizeof *in);
	a->heads[n] = &a->head;
	*out = a->heads;
	*size = n + 1;
	return 0;
}

static int a_push(git_transport *t, git_push *push)
{
	return INNER(t)->push(INNER(t), push);
}

static int a_negotiate_fetch(git_transport *t, git_repository *repo,
			     const git_remote_head *const *refs, size_t count)
{
	return INNER(t)->negotiate_fetch(INNER(t), repo, refs, count);
}

static int a_download_pack(git_transport *t, git_repository *repo,
			   git_indexer_progress *stats)
{
	return INNER(t)->download_pack(INNER(t), repo, stats);
}

static int a_is_connected(git_transport *t)
{
	return INNER(t)->is_connected(INNER(t));
}

static void a_cancel(git_transport *t)
{
	INNER(t)->cancel(INNER(t));
}

static int a_close(git_transport *t)
{
	return INNER(t)->close(INNER(t));
}

static void a_free(git_transport *t)
{
	struct anchor_transport *a = (struct anchor_transport *)t;

	a->inner->free(a->inner);
	free(a->head.name);
	free(a->heads);
	free(a);
}

int net_anchor_transport(git_transport **out, git_remote *owner,
			 const char *url, const struct oid *anchor)
{
	struct anchor_transport *a = xcalloc(1, sizeof *a);
	int err;

	if ((err = git_transport_new(&a->inner, owner, url)) < 0) {
		free(a);
		return err;
	}
	a->parent.version = GIT_TRANSPORT_VERSION;
	a->parent.connect = a_connect;
	a->parent.set_connect_opts = a_set_connect_opts;
	a->parent.capabilities = a_capabilities;
	a->parent.ls = a_ls;
	a->parent.push = a_push;
	a->parent.negotiate_fetch = a_negotiate_fetch;
	a->parent.download_pack = a_download_pack;
	a->parent.is_connected = a_is_connected;
	a->parent.cancel = a_cancel;
	a->parent.close = a_close;
	a->parent.free = a_free;
	a->head.name = xstrdup(ANCHOR_REF);
	oid_cpy(OID(&a->head.oid), anchor);
	*out = &a->parent;
	return 0;
}

/* --- the file:// fetch ------------------------------------------------ */

static int hide_ref(const char *ref, void *data)
{
	struct { struct repo *r; git_revwalk *w; } *h = data;
	struct oid id;

	if (repo_ref_read(&id, h->r, ref) == 0)
		git_revwalk_hide(h->w, GIT_OID(&id));
	return 0;
}

int net_local_copy(struct repo *r, const char *peer_path,
		   const struct oid *theirs, struct strbuf *err, int *git_err)
{
	struct purged set = PURGED_INIT;
	struct repo *peer = NULL;
	git_packbuilder *pb = NULL;
	git_revwalk *w = NULL;
	git_odb *podb = NULL;
	char *ours = xasprintf("%s/objects", r->path);
	char *packs = xasprintf("%s/objects/pack", r->path);
	struct { struct repo *r; git_revwalk *w; } h;
	struct oid anchor, t;
	bool made = false;
	int ret = E_FAIL;

	*git_err = 0;
	if (repo_object_exists(r, theirs)) {
		ret = 0;	/* we hold it already */
		goto done;
	}
	if (repo_open(&peer, peer_path, 0) < 0) {
		strbuf_addf(err, "cannot open '%s'", peer_path);
		goto done;
	}
	/* what the peer reads it may read of ours: the hidden tips, the
	   anchor; it is never written */
	if ((*git_err = git_repository_odb(&podb, peer->git)) < 0 ||
	    (*git_err = git_odb_add_disk_alternate(podb, ours)) < 0)
		goto git_fail;
	if (repo_commit_tree(&t, peer, theirs) < 0 ||
	    purged_read(&set, peer, &t) < 0) {
		strbuf_addf(err, "cannot read the peer's purged/ records");
		goto done;
	}
	if (repo_ref_read(&anchor, r, REF_MAIL) == 0 &&
	    repo_commit_tree(&t, r, &anchor) == 0 &&
	    purged_read(&set, r, &t) < 0) {
		strbuf_addf(err, "cannot read our purged/ records");
		goto done;
	}
	if (set.n && net_anchor_write(&anchor, &made, r, &set) < 0) {
		strbuf_addf(err, "cannot write the purge anchor");
		goto done;
	}
	if ((*git_err = git_revwalk_new(&w, peer->git)) < 0 ||
	    (*git_err = git_revwalk_push(w, GIT_OID(theirs))) < 0)
		goto git_fail;
	h.r = r;
	h.w = w;
	hide_ref(REF_MAIL, &h);
	repo_foreach_peer_ref(r, hide_ref, &h);
	if (made && (*git_err = git_revwalk_hide(w, GIT_OID(&anchor))) < 0)
		goto git_fail;
	/* what it reads of the peer's objects is the peer's: its errors
	   are the peer's (git_err) */
	if ((*git_err = git_packbuilder_new(&pb, peer->git)) < 0 ||
	    (*git_err = git_packbuilder_insert_walk(pb, w)) < 0 ||
	    (*git_err = git_packbuilder_write(pb, packs, 0, NULL, NULL)) < 0)
		goto git_fail;
	ret = 0;
	goto done;
git_fail:
	strbuf_addf(err, "%s", repo_git_error());
done:
	git_packbuilder_free(pb);
	git_revwalk_free(w);
	git_odb_free(podb);
	repo_free(peer);
	purged_release(&set);
	free(ours);
	free(packs);
	return ret;
}
