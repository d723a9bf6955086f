/*
 * x2-libgit2-holes: what libgit2 1.5.1 does when it sends or receives
 * history whose trees name blobs deleted on purpose (design (b) of
 * doc/purge.md), and whether a "purge anchor" makes its sender skip them.
 *
 *   x2-libgit2-holes WORKDIR
 *
 * WORKDIR is the one x1-git-holes.sh left: P2 holds a merge of R's line
 * (whose trees name M) and lacks M; Q lacks M and holds P's line only;
 * R holds M.  Each test works on fresh copies and prints one line.
 *
 *   T1  libgit2 push P2 -> Q over file:// (the packbuilder walk that
 *       git_remote_upload uses for ssh:// too)
 *   T2  the same through a transport that wraps libgit2's and adds one
 *       advertised head: an "anchor" commit of P2's whose tree names
 *       every purged blob, so the walk marks them uninteresting
 *   T3  libgit2 fetch from P2 into an empty repository over file://
 *   T4  the pack T2's walk builds, fed to `git index-pack --stdin`
 *       (with and without --strict) and to the connectivity check
 *       git-receive-pack runs (rev-list --objects ... --not --all)
 *   T5  R2 (R's line plus Y, delivered, expunged and purged on R alone)
 *       sends its line to P the same way: P never had Y and no tree P
 *       holds names it
 *
 * Build: cc -O2 -o x2 x2-libgit2-holes.c $(pkg-config --cflags --libs libgit2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/transport.h>

static char W[4096];
static git_oid anchor_id;

static const char *err(void)
{
	const git_error *e = git_error_last();
	return e ? e->message : "(no message)";
}

/* run a bash command line made from fmt */
static int sh(const char *fmt, const char *a, const char *b)
{
	char cmd[16384];
	pid_t pid;
	int st;

	snprintf(cmd, sizeof cmd, fmt, a, b);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		execl("/bin/bash", "bash", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	return st;
}

/* --- the wrapping transport ------------------------------------------- */

struct wrap {
	git_transport parent;
	git_transport *inner;
	const git_remote_head **heads;
	git_remote_head anchor;
};

static int w_connect(git_transport *t, const char *url, int dir,
		     const git_remote_connect_options *o)
{
	struct wrap *w = (struct wrap *)t;
	return w->inner->connect(w->inner, url, dir, o);
}
static int w_set_opts(git_transport *t, const git_remote_connect_options *o)
{
	struct wrap *w = (struct wrap *)t;
	return w->inner->set_connect_opts(w->inner, o);
}
static int w_caps(unsigned int *c, git_transport *t)
{
	struct wrap *w = (struct wrap *)t;
	return w->inner->capabilities(c, w->inner);
}
/* the peer's heads, and our anchor after them */
static int w_ls(const git_remote_head ***out, size_t *n, git_transport *t)
{
	struct wrap *w = (struct wrap *)t;
	const git_remote_head **h;
	size_t k;
	int e = w->inner->ls(&h, &k, w->inner);

	if (e < 0)
		return e;
	free(w->heads);
	w->heads = calloc(k + 1, sizeof *w->heads);
	memcpy(w->heads, h, k * sizeof *h);
	w->anchor.name = "refs/maildag/purge-anchor";
	git_oid_cpy(&w->anchor.oid, &anchor_id);
	w->heads[k] = &w->anchor;
	*out = w->heads;
	*n = k + 1;
	return 0;
}
static int w_push(git_transport *t, git_push *p)
{
	struct wrap *w = (struct wrap *)t;
	return w->inner->push(w->inner, p);
}
static int w_neg(git_transport *t, git_repository *r,
		 const git_remote_head *const *refs, size_t n)
{
	struct wrap *w = (struct wrap *)t;
	return w->inner->negotiate_fetch(w->inner, r, refs, n);
}
static int w_dl(git_transport *t, git_repository *r, git_indexer_progress *s)
{
	struct wrap *w = (struct wrap *)t;
	return w->inner->download_pack(w->inner, r, s);
}
static int w_isc(git_transport *t)
{
	struct wrap *w = (struct wrap *)t;
	return w->inner->is_connected(w->inner);
}
static void w_cancel(git_transport *t)
{
	struct wrap *w = (struct wrap *)t;
	w->inner->cancel(w->inner);
}
static int w_close(git_transport *t)
{
	struct wrap *w = (struct wrap *)t;
	return w->inner->close(w->inner);
}
static void w_free(git_transport *t)
{
	struct wrap *w = (struct wrap *)t;
	w->inner->free(w->inner);
	free(w->heads);
	free(w);
}

static int wrap_cb(git_transport **out, git_remote *owner, void *param)
{
	struct wrap *w = calloc(1, sizeof *w);
	int e;

	(void)param;
	if ((e = git_transport_local(&w->inner, owner, NULL)) < 0) {
		free(w);
		return e;
	}
	w->parent.version = GIT_TRANSPORT_VERSION;
	w->parent.connect = w_connect;
	w->parent.set_connect_opts = w_set_opts;
	w->parent.capabilities = w_caps;
	w->parent.ls = w_ls;
	w->parent.push = w_push;
	w->parent.negotiate_fetch = w_neg;
	w->parent.download_pack = w_dl;
	w->parent.is_connected = w_isc;
	w->parent.cancel = w_cancel;
	w->parent.close = w_close;
	w->parent.free = w_free;
	*out = &w->parent;
	return 0;
}

/* --- the anchor ------------------------------------------------------- */

/*
 * A commit whose tree names each purged blob (one entry per blob, named
 * by its hex id).  Written raw: libgit2's tree builder checks that every
 * entry exists, which a purged blob does not.
 */
static int make_anchor(git_repository *repo, const git_oid *purged, size_t n)
{
	git_odb *odb;
	git_oid tree;
	char buf[8192], hex[GIT_OID_HEXSZ + 1], commit[512];
	size_t len = 0;
	int e;

	for (size_t i = 0; i < n; i++) {	/* sorted by name: one entry here */
		git_oid_tostr(hex, sizeof hex, &purged[i]);
		len += (size_t)sprintf(buf + len, "100644 %s", hex) + 1;
		memcpy(buf + len, purged[i].id, GIT_OID_RAWSZ);
		len += GIT_OID_RAWSZ;
	}
	if ((e = git_repository_odb(&odb, repo)) < 0)
		return e;
	if ((e = git_odb_write(&tree, odb, buf, len, GIT_OBJECT_TREE)) < 0)
		goto done;
	git_oid_tostr(hex, sizeof hex, &tree);
	len = (size_t)snprintf(commit, sizeof commit,
			       "tree %s\nauthor maildag <purge@maildag> 0 +0000\n"
			       "committer maildag <purge@maildag> 0 +0000\n\n"
			       "purge anchor\n", hex);
	e = git_odb_write(&anchor_id, odb, commit, len, GIT_OBJECT_COMMIT);
done:
	git_odb_free(odb);
	return e;
}

/* --- the tests -------------------------------------------------------- */

static int push(const char *from, const char *to, const char *spec, int wrap)
{
	git_repository *repo;
	git_remote *remote;
	git_push_options po = GIT_PUSH_OPTIONS_INIT;
	char url[4200], *specs[] = { (char *)spec };
	git_strarray sa = { specs, 1 };
	int e;

	snprintf(url, sizeof url, "file://%s/%s", W, to);
	if ((e = git_repository_open(&repo, from)) < 0)
		return e;
	if ((e = git_remote_create_anonymous(&remote, repo, url)) < 0)
		goto done;
	if (wrap)
		po.callbacks.transport = wrap_cb;
	e = git_remote_push(remote, &sa, &po);
	git_remote_free(remote);
done:
	git_repository_free(repo);
	return e;
}

static int fetch(const char *into, const char *from, const char *spec)
{
	git_repository *repo;
	git_remote *remote;
	git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
	char url[4200], *specs[] = { (char *)spec };
	git_strarray sa = { specs, 1 };
	int e;

	snprintf(url, sizeof url, "file://%s/%s", W, from);
	if ((e = git_repository_open(&repo, into)) < 0)
		return e;
	if ((e = git_remote_create_anonymous(&remote, repo, url)) < 0)
		goto done;
	e = git_remote_fetch(remote, &sa, &fo, NULL);
	git_remote_free(remote);
done:
	git_repository_free(repo);
	return e;
}

static void report(const char *what, int e)
{
	printf("%-58s %s\n", what, e < 0 ? err() : "ok");
}

/*
 * The pack a push from `from` to `to` builds when `to` advertises its
 * refs/heads/mail (and, for P, refs/peers/R/mail) and the anchor of
 * `purged` is hidden too; then given to git in a copy of `to` as
 * git-receive-pack would: index-pack --strict (receive.fsckObjects),
 * plain index-pack, and the connectivity check.
 */
static void walk_to_git(const char *title, const char *from, const char *to,
			const git_oid *purged)
{
	git_repository *src, *dst;
	git_packbuilder *pb;
	git_revwalk *rw;
	git_buf pack = GIT_BUF_INIT;
	git_oid tip, hide;
	char path[8192], line[128];
	FILE *f;
	int e;

	snprintf(path, sizeof path, "%s/%s", W, from);
	git_repository_open(&src, path);
	make_anchor(src, purged, 1);
	git_revwalk_new(&rw, src);
	git_reference_name_to_id(&tip, src, "refs/heads/mail");
	git_revwalk_push(rw, &tip);
	snprintf(path, sizeof path, "%s/%s", W, to);
	git_repository_open(&dst, path);
	if (git_reference_name_to_id(&hide, dst, "refs/heads/mail") == 0)
		git_revwalk_hide(rw, &hide);
	if (git_reference_name_to_id(&hide, dst, "refs/peers/R/mail") == 0)
		git_revwalk_hide(rw, &hide);
	git_repository_free(dst);
	git_revwalk_hide(rw, &anchor_id);
	git_packbuilder_new(&pb, src);
	e = git_packbuilder_insert_walk(pb, rw);
	if (e == 0)
		e = git_packbuilder_write_buf(&pack, pb);
	snprintf(line, sizeof line, "%s: walk, anchor hidden", title);
	report(line, e);
	if (e == 0) {
		snprintf(path, sizeof path, "%s/pack", W);
		f = fopen(path, "w");
		fwrite(pack.ptr, 1, pack.size, f);
		fclose(f);
		printf("  pack: %zu objects\n", git_packbuilder_object_count(pb));
		snprintf(path, sizeof path,
			 "cd '%s' && for s in --strict ''; do rm -rf T && cp -a %s T && "
			 "printf '  index-pack %%-8s: ' \"$s\" && "
			 "if out=$(git --git-dir=T index-pack --stdin $s <pack 2>&1); then "
			 "  echo ok; else echo \"$out\" | tail -1; fi; done; "
			 "printf '  connectivity (rev-list --objects <new> --not --all): '; "
			 "out=$(git --git-dir=T rev-list --objects --quiet %s --not --all 2>&1); "
			 "echo \"exit $? $out\"", W, to, git_oid_tostr_s(&tip));
		sh("%s", path, "");
	}
	git_buf_dispose(&pack);
	git_packbuilder_free(pb);
	git_revwalk_free(rw);
	git_repository_free(src);
}


int main(int argc, char **argv)
{
	git_repository *p2;
	git_oid m, y;
	char path[8192];
	FILE *f;
	int e;

	if (argc != 2 || strlen(argv[1]) > 4000)
		return 2;
	snprintf(W, sizeof W, "%s", argv[1]);
	git_libgit2_init();
	snprintf(path, sizeof path, "%s/M", W);
	if (!(f = fopen(path, "r")) || !fgets(path, sizeof path, f) ||
	    git_oid_fromstrn(&m, path, GIT_OID_HEXSZ) < 0) {
		fprintf(stderr, "no %s/M (run x1-git-holes.sh first)\n", W);
		return 2;
	}
	fclose(f);
	snprintf(path, sizeof path, "%s/Y", W);
	if (!(f = fopen(path, "r")) || !fgets(path, sizeof path, f) ||
	    git_oid_fromstrn(&y, path, GIT_OID_HEXSZ) < 0)
		return 2;
	fclose(f);

	sh("cd '%s' && rm -rf Qa Qb Na && cp -a Q Qa && cp -a Q Qb && git init -q --bare Na", W, "");

	snprintf(path, sizeof path, "%s/P2", W);
	e = push(path, "Qa", "refs/heads/mail:refs/peers/P/mail", 0);
	report("T1 push P2 -> Q, file://, libgit2 as it is", e);

	if ((e = git_repository_open(&p2, path)) < 0 ||
	    (e = make_anchor(p2, &m, 1)) < 0) {
		report("anchor", e);
		return 1;
	}
	git_repository_free(p2);
	e = push(path, "Qb", "refs/heads/mail:refs/peers/P/mail", 1);
	report("T2 push P2 -> Q, file://, anchor advertised", e);
	if (e == 0) {
		snprintf(path, sizeof path,
			 "cd '%s' && printf '  Q after T2: M %%s; ' \"$(git --git-dir=Qb cat-file -e %s 2>/dev/null && echo present || echo absent)\" && "
			 "git --git-dir=Qb rev-list --objects refs/peers/P/mail --not refs/heads/mail >/dev/null 2>&1 && echo 'rev-list --objects: ok' || echo 'rev-list --objects: fails'",
			 W, git_oid_tostr_s(&m));
		sh("%s", path, "");
	}

	snprintf(path, sizeof path, "%s/Na", W);
	e = fetch(path, "P2", "refs/heads/mail:refs/peers/P/mail");
	report("T3 fetch P2 -> empty repository, file://", e);

	walk_to_git("T4 P2 -> Q", "P2", "Q", &m);
	walk_to_git("T5 R2 -> P", "R2", "P", &y);
	git_libgit2_shutdown();
	return 0;
}
