/*
 * Unit tests for common/session_store.c: a pack made by session_pack()
 * in one repository and stored by session_in_store() in another, as a
 * session push (or fetch) carries it.
 *
 * The case that matters: the sender purged a message the receiver never
 * had.  Its history still names the blob, which is absent on purpose on
 * both sides; the whole-history check takes that (the purged/ set of the
 * sender's tree lists it), and so must the store.  libgit2's indexer
 * with verify refused such a pack ("bad pack: packfile is missing 1
 * objects") at every push and fetch of the session, for ever: t6121's
 * replicas did not converge when the session, not a git child, was the
 * first to carry the history after the purge.  And what is missing
 * without being purged is still refused.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "fsutil.h"
#include "layout.h"
#include "log.h"
#include "merge.h"
#include "purged.h"
#include "repo_p.h"
#include "session_store.h"
#include "strbuf.h"
#include "xalloc.h"

/* A child of parent with one message more, of body; its blob in *blob. */
static void deliver(struct oid *out, struct oid *blob, struct repo *r,
		    const struct oid *parent, const char *name,
		    const char *body)
{
	struct strbuf path = STRBUF_INIT;
	struct oid base, tree;
	struct repo_update up;

	tree_message_path(&path, "", "cur", name);
	if (repo_blob_from_buffer(blob, r, body, strlen(body)) < 0 ||
	    repo_commit_tree(&base, r, parent) < 0)
		log_fatal("write: %s", repo_git_error());
	up = (struct repo_update){ path.buf, blob, false };
	if (repo_tree_update(&tree, r, &base, &up, 1) < 0 ||
	    repo_commit(out, r, &tree, parent, 1, "deliver", -1, NULL,
			NULL) < 0)
		log_fatal("commit: %s", repo_git_error());
	strbuf_release(&path);
}

/* Remove a loose object of r, as a maintenance pass drops a purged blob. */
static void drop(struct repo *r, const struct oid *id)
{
	const char *hex = oid_hex(id);
	char *p = xasprintf("%s/objects/%.2s/%s", r->path, hex, hex + 2);

	if (unlink(p) < 0)
		log_fatal("unlink '%s'", p);
	free(p);
}

/* Store pack into r's refs/peers/a/mail (from nothing), checked. */
static int store(struct repo *r, const struct strbuf *pack,
		 const struct oid *new, struct strbuf *err)
{
	struct session_store_args a = {
		"refs/peers/a/mail", "peerref-a.lock", NULL, new, true, "a",
	};
	struct session_in *in;
	struct oid now;
	int ret;

	strbuf_reset(err);
	if (session_in_new(&in, r, 1 << 20) < 0)
		return E_TEMP;
	ret = session_in_add(in, pack->buf, pack->len, err);
	if (ret == 0)
		ret = session_in_store(in, &a, err, &now);
	session_in_free(in);
	return ret;
}

/*
 * The pack of commit c (whose parent the receiver holds) and the trees on
 * the way to its new message, without the message's blob.
 */
static void pack_without_blob(struct strbuf *out, struct repo *r,
			      const struct oid *c, const char *name)
{
	git_packbuilder *pb;
	git_commit *commit;
	git_tree *t;
	git_buf buf = { 0 };
	struct strbuf path = STRBUF_INIT;
	char *p, *slash;

	tree_message_path(&path, "", "cur", name);
	if (git_packbuilder_new(&pb, r->git) < 0 ||
	    git_commit_lookup(&commit, r->git, GIT_OID(c)) < 0 ||
	    git_packbuilder_insert(pb, git_commit_id(commit), NULL) < 0 ||
	    git_commit_tree(&t, commit) < 0 ||
	    git_packbuilder_insert(pb, git_tree_id(t), NULL) < 0)
		log_fatal("pack: %s", repo_git_error());
	/* every tree on the path: cur/, then its shard */
	for (p = path.buf; (slash = strchr(p, '/')); p = slash + 1) {
		git_tree_entry *e;
		*slash = '\0';
		if (git_tree_entry_bypath(&e, t, path.buf) < 0 ||
		    git_packbuilder_insert(pb, git_tree_entry_id(e), NULL) < 0)
			log_fatal("pack: %s", repo_git_error());
		git_tree_entry_free(e);
		*slash = '/';
	}
	if (git_packbuilder_write_buf(&buf, pb) < 0)
		log_fatal("pack: %s", repo_git_error());
	strbuf_add(out, buf.ptr, buf.size);
	git_buf_dispose(&buf);
	git_tree_free(t);
	git_commit_free(commit);
	git_packbuilder_free(pb);
	strbuf_release(&path);
}

int main(void)
{
	char dir[] = "/tmp/session-store-t.XXXXXX";
	struct strbuf pack = STRBUF_INIT, err = STRBUF_INIT;
	struct purged set = PURGED_INIT;
	struct repo *a, *b;
	struct oid c0, c1, c2, c3, x, y, t1, t2, got;
	size_t dropped = 0;
	const char *xname = "1700000001.M1P1Q1.a,S=6:2,";
	const char *yname = "1700000002.M2P1Q1.a,S=6:2,";
	char *pa, *pb;

	log_init("session-store-t", LOG_TO_STDERR, LOG_LVL_WARN);
	if (!mkdtemp(dir) || repo_global_init() < 0)
		return 99;
	pa = xasprintf("%s/a.git", dir);
	pb = xasprintf("%s/b.git", dir);
	if (repo_open(&a, pa, REPO_CREATE | REPO_NO_FSYNC) < 0 ||
	    repo_open(&b, pb, REPO_CREATE | REPO_NO_FSYNC) < 0 ||
	    repo_ref_read(&c0, a, REF_MAIL) < 0)
		return 99;

	/* a: x delivered (c1), expunged and purged (c2), its blob dropped */
	deliver(&c1, &x, a, &c0, xname, "xyzzy\n");
	purged_add(&set, &x);
	if (repo_commit_tree(&t1, a, &c1) < 0 ||
	    merge_purge_tree(&t2, a, &t1, &set, &dropped) < 0 ||
	    repo_commit(&c2, a, &t2, &c1, 1, "purge", -1, NULL, NULL) < 0 ||
	    repo_ref_cas(a, REF_MAIL, &c2, &c0, "test") < 0)
		return 99;
	is_int((int)dropped, 1, "the purge takes x out of the tree");
	drop(a, &x);
	ok(!repo_object_exists(a, &x), "x's bytes are gone from a");

	/* the session's pack of a's mail, for b, which never had x */
	is_int(session_pack(&pack, a, &c2, NULL), 0,
	       "a packs its history, x's blob left out");
	is_int(store(b, &pack, &c2, &err), 0,
	       "b stores it: x is absent as a's purged/ says");
	if (err.len)
		diag("%s", err.buf);
	ok(repo_ref_read(&got, b, "refs/peers/a/mail") == 0 &&
	   oid_equal(&got, &c2), "refs/peers/a/mail is a's mail");
	ok(!repo_object_exists(b, &x), "and b holds no bytes of x");

	/* c3: a message y whose blob the pack lacks, purged nowhere */
	deliver(&c3, &y, a, &c2, yname, "plugh\n");
	strbuf_reset(&pack);
	pack_without_blob(&pack, a, &c3, yname);
	{
		struct session_store_args args = {
			"refs/peers/a/mail", "peerref-a.lock", &c2, &c3, true,
			"a",
		};
		struct session_in *in;
		struct oid now;
		int r;

		strbuf_reset(&err);
		if (session_in_new(&in, b, 1 << 20) < 0)
			return 99;
		r = session_in_add(in, pack.buf, pack.len, &err);
		if (r == 0)
			r = session_in_store(in, &args, &err, &now);
		session_in_free(in);
		ok(r == E_INVALID, "a missing blob that no purged/ lists is "
		   "refused (%d: %s)", r, err.buf);
	}
	ok(repo_ref_read(&got, b, "refs/peers/a/mail") == 0 &&
	   oid_equal(&got, &c2), "and the ref stays where it was");

	purged_release(&set);
	strbuf_release(&pack);
	strbuf_release(&err);
	repo_free(a);
	repo_free(b);
	free(pa);
	free(pb);
	rm_rf(dir);
	return tap_done();
}
