/*
 * session_store: packs of the peer session, made and stored (see
 * session_store.h).
 *
 * The store follows sessiond's "batch" way of doc/persistent-peers.md
 * E7: a small pack's objects are written loose and unsynced, one
 * syncfs makes them durable; a pack per push would make every later
 * object lookup visit one more pack.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2/sys/odb_backend.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "history.h"
#include "log.h"
#include "net_p.h"
#include "repo_p.h"
#include "session_store.h"
#include "xalloc.h"

/* A quarantine older than this is a killed process's: removed. */
#define STALE_QUARANTINE (24 * 3600)

int session_pack(struct strbuf *out, struct repo *r, const struct oid *want,
		 const struct oid *have)
{
	git_packbuilder *pb = NULL;
	git_revwalk *w = NULL;
	git_buf buf = { 0 };
	struct oid anchor;
	bool anchored = false;
	int ret = E_TEMP;

	/* purged blobs are absent: the walk must not try to read them */
	if (net_anchor_make(&anchor, &anchored, r) < 0)
		return E_TEMP;
	if (git_packbuilder_new(&pb, r->git) < 0 ||
	    git_revwalk_new(&w, r->git) < 0 ||
	    git_revwalk_push(w, GIT_OID(want)) < 0 ||
	    (anchored && git_revwalk_hide(w, GIT_OID(&anchor)) < 0) ||
	    (have && !oid_is_zero(have) &&
	     repo_object_exists(r, have) &&
	     git_revwalk_hide(w, GIT_OID(have)) < 0) ||
	    git_packbuilder_insert_walk(pb, w) < 0 ||
	    git_packbuilder_write_buf(&buf, pb) < 0) {
		log_error("pack %.12s: %s", oid_hex(want), repo_git_error());
		goto done;
	}
	strbuf_add(out, buf.ptr, buf.size);
	ret = 0;
done:
	git_buf_dispose(&buf);
	git_revwalk_free(w);
	git_packbuilder_free(pb);
	return ret;
}

struct session_in {
	struct repo *r;
	char *dir;		/* the quarantine */
	char *packdir;		/* dir/pack, where the indexer writes */
	git_indexer *idx;
	git_indexer_progress st;	/* the indexer's count, append to commit */
	git_odb *odb;
	unsigned long long got, max;
	bool dead;
};

/* Remove quarantines a killed process left behind. */
static void sweep_quarantines(const char *objects)
{
	DIR *d = opendir(objects);
	struct dirent *e;
	time_t now = time(NULL);

	while (d && (e = readdir(d))) {
		struct stat st;
		char *p;

		if (strncmp(e->d_name, "incoming-", 9))
			continue;
		p = xasprintf("%s/%s", objects, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
		    now - st.st_mtime > STALE_QUARANTINE)
			rm_rf(p);
		free(p);
	}
	if (d)
		closedir(d);
}

int session_in_new(struct session_in **out, struct repo *r,
		   unsigned long long max)
{
	static unsigned n;
	struct session_in *in = xcalloc(1, sizeof *in);
	struct repo_batch batch = REPO_BATCH_INIT;
	git_indexer_options opts;
	char *objects = xasprintf("%s/objects", r->path);

	*out = NULL;
	if (n == 0)
		sweep_quarantines(objects);
	in->r = r;
	in->max = max;
	in->dir = xasprintf("%s/incoming-%ld-%u", objects, (long)getpid(), n++);
	in->packdir = xasprintf("%s/pack", in->dir);
	free(objects);
	if (mkdir(in->dir, 0700) < 0 || mkdir(in->packdir, 0700) < 0) {
		log_error_errno("mkdir '%s'", in->packdir);
		goto fail;
	}
	git_indexer_options_init(&opts, GIT_INDEXER_OPTIONS_VERSION);
	/*
	 * No verify: libgit2's "everything it names is there" knows
	 * nothing of purged blobs, absent on purpose, which the history
	 * before their purge still names: it refused for ever a pack whose
	 * history names a blob the sender purged and we never had (t6121).
	 * What must be there is history_check()'s to say (a blob absent
	 * only when a tip's purged/ lists it), before the ref moves; a
	 * fetch's ref, unchecked here, is checked before any merge.
	 */
	opts.verify = 0;
	/*
	 * The indexer takes libgit2's fsync setting when it is made: off,
	 * as the quarantined pack is thrown away or let in, and what is
	 * let in is made durable by session_in_store()'s one syncfs
	 */
	repo_batch_begin(&batch, r);
	if (git_repository_odb(&in->odb, r->git) < 0 ||
	    git_indexer_new(&in->idx, in->packdir, 0400, in->odb, &opts) < 0) {
		repo_batch_end(&batch, false);
		log_error("index a pack: %s", repo_git_error());
		goto fail;
	}
	repo_batch_end(&batch, false);
	*out = in;
	return 0;
fail:
	session_in_free(in);
	return E_TEMP;
}

int session_in_add(struct session_in *in, const void *data, size_t len,
		   struct strbuf *err)
{
	if (in->dead)
		return E_INVALID;
	in->got += len;
	if (in->got > in->max) {
		in->dead = true;
		strbuf_addf(err, "pack over %llu bytes", in->max);
		return E_INVALID;
	}
	if (git_indexer_append(in->idx, data, len, &in->st) < 0) {
		in->dead = true;
		strbuf_addf(err, "bad pack: %s", repo_git_error());
		return E_INVALID;
	}
	return 0;
}

void session_in_free(struct session_in *in)
{
	if (!in)
		return;
	git_indexer_free(in->idx);
	git_odb_free(in->odb);
	if (in->dir)
		rm_rf(in->dir);
	free(in->packdir);
	free(in->dir);
	free(in);
}

/* --- letting the objects in -------------------------------------------- */

/*
 * from: the quarantined pack; repo: the repository's objects, asked
 * without a rescan of its packs for each new object (what a pack made
 * meanwhile holds is then written loose once more: harmless); to: its
 * loose objects alone, written unsynced (the batch's syncfs)
 */
struct copy {
	git_odb *from, *repo, *to;
	size_t n;
	int err;
};

static int copy_one(const git_oid *id, void *payload)
{
	struct copy *c = payload;
	git_odb_object *o;
	git_oid out;

	c->n++;
	if (git_odb_exists_ext(c->repo, id, GIT_ODB_LOOKUP_NO_REFRESH))
		return 0;
	if (git_odb_read(&o, c->from, id) < 0) {
		c->err = -1;
		return -1;
	}
	if (git_odb_write(&out, c->to, git_odb_object_data(o),
			  git_odb_object_size(o), git_odb_object_type(o)) < 0)
		c->err = -1;
	git_odb_object_free(o);
	return c->err;
}

/* An odb of the loose objects of r alone, unsynced, in *to. */
static int loose_odb(git_odb **to, struct repo *r)
{
	char *dir = xasprintf("%s/objects", r->path);
	git_odb_backend *be;
	int ret = -1;

	if (git_odb_new(to) < 0)
		goto done;
	if (git_odb_backend_loose(&be, dir, -1, 0, 0, 0) < 0 ||
	    git_odb_add_backend(*to, be, 1) < 0) {
		git_odb_free(*to);
		*to = NULL;
		goto done;
	}
	ret = 0;
done:
	free(dir);
	return ret;
}

/* How many objects the pack of idx holds; its odb in *from. */
static int pack_odb(git_odb **from, const char *idx)
{
	git_odb_backend *be;

	if (git_odb_new(from) < 0)
		return -1;
	if (git_odb_backend_one_pack(&be, idx) < 0 ||
	    git_odb_add_backend(*from, be, 1) < 0) {
		git_odb_free(*from);
		*from = NULL;
		return -1;
	}
	return 0;
}

/* The pack and its index moved into objects/pack, pack first. */
static int move_pack(struct session_in *in, const char *name,
		     struct strbuf *err)
{
	static const char *const ext[] = { "pack", "idx" };
	char *to_dir = xasprintf("%s/objects/pack", in->r->path);
	int ret = 0;

	for (size_t i = 0; i < 2 && !ret; i++) {
		char *from = xasprintf("%s/pack-%s.%s", in->packdir, name, ext[i]);
		char *to = xasprintf("%s/pack-%s.%s", to_dir, name, ext[i]);
		if (rename(from, to) < 0) {
			strbuf_addf(err, "rename '%s': %s", from, strerror(errno));
			ret = E_TEMP;
		}
		free(from);
		free(to);
	}
	/* durable with the caller's syncfs */
	free(to_dir);
	return ret;
}

/*
 * The quarantined objects into the repository: loose, or the pack moved
 * in whole when it is large; the caller's batch makes them durable.
 */
static int let_in(struct session_in *in, const char *name, size_t objects,
		  struct strbuf *err)
{
	char *idx;
	struct copy c = { NULL, NULL, NULL, 0, 0 };
	int ret = E_TEMP;

	if (objects >= SESSION_STORE_PACK_MIN)
		ret = move_pack(in, name, err);
	if (objects >= SESSION_STORE_PACK_MIN)
		goto refresh;
	idx = xasprintf("%s/pack-%s.idx", in->packdir, name);
	if (pack_odb(&c.from, idx) < 0 ||
	    git_repository_odb(&c.repo, in->r->git) < 0 ||
	    loose_odb(&c.to, in->r) < 0) {
		strbuf_addf(err, "read the pack: %s", repo_git_error());
		free(idx);
		goto done;
	}
	free(idx);
	if (git_odb_foreach(c.from, copy_one, &c) < 0 || c.err) {
		strbuf_addf(err, "write objects: %s", repo_git_error());
		goto done;
	}
	ret = 0;
refresh:
	if (!ret) {
		git_odb *odb;
		if (git_repository_odb(&odb, in->r->git) == 0) {
			git_odb_refresh(odb);
			git_odb_free(odb);
		}
	}
done:
	git_odb_free(c.to);
	git_odb_free(c.repo);
	git_odb_free(c.from);
	return ret;
}

/* --- the store ------------------------------------------------------------ */

/*
 * The whole-history check of new, with the quarantined pack readable
 * beside the repository's objects: a second handle on the repository
 * whose object database also holds the pack.
 */
static int check_quarantined(struct session_in *in, const char *name,
			     const struct oid *new, struct strbuf *err,
			     struct oid *base)
{
	char *idx = xasprintf("%s/pack-%s.idx", in->packdir, name);
	git_repository *q = NULL;
	git_odb *odb = NULL;
	git_odb_backend *be;
	struct repo tmp = { 0 };
	struct oid ours;
	bool have_ours;
	int ret = E_TEMP;

	if (git_repository_open_bare(&q, in->r->path) < 0 ||
	    git_repository_odb(&odb, q) < 0 ||
	    git_odb_backend_one_pack(&be, idx) < 0 ||
	    git_odb_add_backend(odb, be, 100) < 0) {
		strbuf_addf(err, "open the quarantine: %s", repo_git_error());
		goto done;
	}
	tmp.git = q;
	tmp.path = in->r->path;
	tmp.lock_fd = -1;
	have_ours = repo_ref_read(&ours, &tmp, REF_MAIL) == 0;
	ret = history_check(&tmp, have_ours ? &ours : NULL, NULL, new, err,
			    NULL, NULL);
	if (have_ours)
		oid_cpy(base, &ours);
	else
		memset(base, 0, sizeof *base);
done:
	git_odb_free(odb);
	git_repository_free(q);
	free(idx);
	return ret;
}

static char *approval_path(const char *repo_path, const char *peer)
{
	return xasprintf("%s/maildag/approved-%s", repo_path, peer);
}

/* "<new> <base>\n" into maildag/approved-<peer>, unsynced; logged only */
static void approval_write(struct repo *r, const char *peer,
			   const struct oid *new, const struct oid *base)
{
	char *path = approval_path(r->path, peer);
	char *tmp = xasprintf("%s.%ld", path, (long)getpid());
	char line[2 * OID_HEXSZ + 3];
	int fd;

	snprintf(line, sizeof line, "%s ", oid_hex(new));
	snprintf(line + OID_HEXSZ + 1, sizeof line - OID_HEXSZ - 1, "%s\n",
		 oid_hex(base));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_full(fd, line, strlen(line)) < 0 ||
	    close(fd) < 0 || rename(tmp, path) < 0) {
		log_warn_errno("write '%s'", path);
		if (fd >= 0)
			unlink(tmp);
	}
	free(tmp);
	free(path);
}

int session_approval_read(const char *repo_path, const char *peer,
			  struct oid *new, struct oid *base)
{
	char *path = approval_path(repo_path, peer);
	char line[2 * OID_HEXSZ + 3];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read_full(fd, line, sizeof line);

	if (fd >= 0)
		close(fd);
	free(path);
	if (n != (ssize_t)sizeof line - 1 || line[OID_HEXSZ] != ' ' ||
	    line[2 * OID_HEXSZ + 1] != '\n' || oid_fromstr(new, line) < 0 ||
	    oid_fromstr(base, line + OID_HEXSZ + 1) < 0)
		return E_NOTFOUND;
	return 0;
}

/* flock <repo>/maildag/<name>; the descriptor, or -1 */
static int take_lock(struct repo *r, const char *name)
{
	char *dir = xasprintf("%s/maildag", r->path);
	char *path = xasprintf("%s/%s", dir, name);
	/* the directory is there but for the first push: no mkdir each time */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 && errno == ENOENT && mkdir_p(dir, 0700) == 0)
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		log_error_errno("lock '%s'", path);
	free(path);
	free(dir);
	return fd;
}

int session_in_store(struct session_in *in, const struct session_store_args *a,
		     struct strbuf *err, struct oid *now)
{
	/*
	 * Nothing is synced one by one: the quarantine is thrown away on
	 * any failure, and what is let in is made durable by one syncfs
	 * before the ref moves (the ref itself is synced as it is written)
	 */
	struct repo_batch batch = REPO_BATCH_INIT;
	struct oid cur, base;
	bool have_cur;
	int lock = -1, ret, r;
	char name[GIT_OID_HEXSZ + 1];

	memset(now, 0, sizeof *now);
	if (in->dead)
		return E_INVALID;
	in->dead = true;
	repo_batch_begin(&batch, in->r);
	if (git_indexer_commit(in->idx, &in->st) < 0) {
		strbuf_addf(err, "bad pack: %s", repo_git_error());
		ret = E_INVALID;
		goto done;
	}
	snprintf(name, sizeof name, "%s", git_indexer_name(in->idx));
	if (a->check &&
	    (ret = check_quarantined(in, name, a->new, err, &base)) < 0)
		goto done;
	if ((lock = take_lock(in->r, a->lock)) < 0) {
		strbuf_addf(err, "cannot lock %s", a->ref);
		ret = E_TEMP;
		goto done;
	}
	r = repo_ref_read(&cur, in->r, a->ref);
	if (r < 0 && r != E_NOTFOUND) {
		strbuf_addf(err, "read %s: %s", a->ref, log_last_error());
		ret = E_TEMP;
		goto done;
	}
	have_cur = r == 0;
	if (have_cur && oid_equal(&cur, a->new)) {
		ret = 0;	/* sent again after a lost answer */
		goto done;
	}
	if (have_cur != (a->old != NULL) ||
	    (have_cur && !oid_equal(&cur, a->old))) {
		if (have_cur)
			oid_cpy(now, &cur);
		ret = E_RACE;
		goto done;
	}
	if ((ret = let_in(in, name, in->st.total_objects, err)) < 0)
		goto done;
	if (a->check && a->peer)
		approval_write(in->r, a->peer, a->new, &base);
	if (repo_batch_end(&batch, true) < 0) {
		strbuf_addf(err, "syncfs: %s", log_last_error());
		ret = E_TEMP;
		goto done;
	}
	/* fsync is on again: libgit2 syncs the ref and its directory */
	if (repo_ref_cas(in->r, a->ref, a->new, a->old,
			 "maildag: session") < 0) {
		strbuf_addf(err, "update %s: %s", a->ref, log_last_error());
		ret = E_TEMP;
	}
done:
	repo_batch_end(&batch, false);
	if (lock >= 0)
		close(lock);
	return ret;
}
