/*
 * repo: the bare repository (see repo.h).
 */
#include "autoconf.h"
#include "clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <git2/sys/repository.h>

#include "fsutil.h"
#include "log.h"
#include "repo.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define LOCK_NAME "lock"

const char *repo_git_error(void)
{
	const git_error *e = git_error_last();
	return e && e->message ? e->message : "unknown libgit2 error";
}

/* batches and REPO_NO_FSYNC repositories open: libgit2 fsyncs at 0 */
/* pack files mapped at once in a process (repo_global_init) */
#define REPO_PACKS_MAPPED 128

static unsigned fsync_held;

static void fsync_hold(void)
{
	if (fsync_held++ == 0)
		git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0);
}

static void fsync_release(void)
{
	if (fsync_held > 0 && --fsync_held == 0)
		git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
}

bool repo_fsync_on(void)
{
	return fsync_held == 0;
}

void repo_batch_begin(struct repo_batch *b, struct repo *r)
{
	if (b->r)
		return;
	b->r = r;
	fsync_hold();
}

int repo_batch_end(struct repo_batch *b, bool sync)
{
	int ret = 0;

	if (!b->r)
		return 0;
	if (sync)
		ret = repo_syncfs(b->r);
	b->r = NULL;
	fsync_release();
	return ret;
}

void repo_verify_reads(bool on)
{
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, on ? 1 : 0);
}

static int global_done;

int repo_global_init(void)
{
	static const int levels[] = {
		GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG,
		GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA,
	};

	if (global_done)
		return 0;
	/*
	 * Everything written into a repository is the user's alone, whatever
	 * umask we were started with: libgit2 makes objects 0444 and their
	 * directories 0777 less the umask, and holds no setting of its own
	 * for it.  Every maildag program comes through here before it writes.
	 */
	umask(umask(077) | 077);
	if (git_libgit2_init() < 0)
		return log_error("libgit2: %s", repo_git_error());
	/* ~/.gitconfig and /etc/gitconfig must not change how mail is stored */
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
		git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "");
	/* maildag checks ownership itself, also when root inspects a repo */
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	/*
	 * Objects are not hashed again on every read (git does not either):
	 * a third of a merge's time went there.  Every object that enters
	 * the repository is hashed on the way in (written here, or indexed
	 * by a fetch; receive.fsckObjects for pushes); zlib's checksum still
	 * catches damage on each read, and maildag fsck turns the check back
	 * on (repo_verify_reads).
	 */
	repo_verify_reads(false);
	/*
	 * Pack files mapped at once, over every repository of the process:
	 * the least recently used beyond it are unmapped and closed (opened
	 * again when read).  Unlimited, a daemon of a thousand mailboxes kept
	 * a mapping and a descriptor per pack (2,351 mappings, 1,009
	 * descriptors), and every fork of it (a push, a fetch, a check) paid
	 * for each: fork and exit took 8.5 ms with 2,100 mappings, 4.0 ms
	 * with 1,000, 1.1 ms with none (doc/virtual.md).  Above the packs
	 * one repository keeps (maintenance combines them past 8 new ones).
	 */
	git_libgit2_opts(GIT_OPT_SET_MWINDOW_FILE_LIMIT, (size_t)REPO_PACKS_MAPPED);
	/* on, unless a batch is open (a child of a process that held one) */
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, fsync_held ? 0 : 1);
	global_done = 1;
	return 0;
}

int repo_global_reinit(bool packs_closed)
{
	/* init first, so the count is above zero whether or not it was */
	if (git_libgit2_init() < 0)
		return log_error("libgit2: %s", repo_git_error());
	while (git_libgit2_shutdown() > 0)
		;
	global_done = 0;
	if (repo_global_init() < 0)
		return E_FAIL;
	/* its list still names descriptors closed, maybe reused (repo.h) */
	if (packs_closed)
		git_libgit2_opts(GIT_OPT_SET_MWINDOW_FILE_LIMIT, (size_t)0);
	return 0;
}

void repo_global_shutdown(void)
{
	if (!global_done)
		return;
	git_libgit2_shutdown();
	global_done = 0;
}

const char *repo_path(const struct repo *r)
{
	return r->path;
}

char *repo_state_path(const struct repo *r, const char *name)
{
	return xasprintf("%s/maildag/%s", r->path, name);
}

static int write_initial(git_repository *git)
{
	git_treebuilder *tb = NULL;
	git_signature *sig = NULL;
	git_tree *tree = NULL;
	git_reference *ref = NULL;
	git_oid blob, tree_id, commit;
	int err;

	if ((err = git_blob_create_from_buffer(&blob, git, FORMAT_CONTENT,
					       strlen(FORMAT_CONTENT))) < 0 ||
	    (err = git_treebuilder_new(&tb, git, NULL)) < 0 ||
	    (err = git_treebuilder_insert(NULL, tb, FORMAT_PATH, &blob,
					  GIT_FILEMODE_BLOB)) < 0 ||
	    (err = git_treebuilder_write(&tree_id, tb)) < 0 ||
	    (err = git_tree_lookup(&tree, git, &tree_id)) < 0 ||
	    (err = git_signature_new(&sig, "maildag", "maildag@localhost",
				     clock_wall(), 0)) < 0 ||
	    (err = git_commit_create(&commit, git, NULL, sig, sig, NULL,
				     "new mailbox\n", tree, 0, NULL)) < 0)
		goto done;
	if ((err = git_reference_create(&ref, git, REF_MAIL, &commit, 0,
					"maildag: new mailbox")) < 0)
		goto done;
	git_reference_free(ref);
	ref = NULL;
	if ((err = git_reference_create(&ref, git, REF_WORKTREE, &commit, 0,
					"maildag: new mailbox")) < 0)
		goto done;
	git_reference_free(ref);
	ref = NULL;
	err = git_reference_symbolic_create(&ref, git, "HEAD", REF_MAIL, 1,
					    "maildag: new mailbox");
done:
	git_reference_free(ref);
	git_signature_free(sig);
	git_tree_free(tree);
	git_treebuilder_free(tb);
	return err;
}

/*
 * The git settings of a new repository, for the git CLI that serves it
 * to peers (git-receive-pack and git-upload-pack over ssh); libgit2 does
 * not read them.  Written to the repository's own config file only.
 */
static int write_git_config(const char *dir)
{
	static const struct {
		const char *key, *value;
	} settings[] = {
		/* a pushed object or ref is on disk before the peer says ok */
		{ "core.fsync", "committed" },
		{ "core.fsyncMethod", "fsync" },
		/* maintenance is maildag-syncd's job, not a push's side effect */
		{ "receive.autogc", "false" },
		{ "gc.auto", "0" },
		/*
		 * git's object checks on what peers push: malformed objects
		 * stay out of the repository.  maildag's own format checks
		 * (stricter, on trees) run when a peer's history is merged.
		 */
		{ "receive.fsckObjects", "true" },
		/*
		 * what git itself writes (a push over ssh, whose session may
		 * have umask 022) is the user's alone: files 0600 (objects
		 * 0400), directories 0700
		 */
		{ "core.sharedRepository", "0600" },
	};
	char *path = xasprintf("%s/config", dir);
	git_config *cfg = NULL;
	int err;

	if ((err = git_config_open_ondisk(&cfg, path)) < 0)
		goto done;
	for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
		if ((err = git_config_set_string(cfg, settings[i].key,
						 settings[i].value)) < 0)
			goto done;
done:
	if (err < 0)
		log_error("write '%s': %s", path, repo_git_error());
	git_config_free(cfg);
	free(path);
	return err < 0 ? E_TEMP : 0;
}

/* Build a new repository at tmp, ready to be renamed into place. */
static int create_at(const char *tmp)
{
	git_repository_init_options opts;
	git_repository *git = NULL;
	char *state;
	int r = E_FAIL;

	git_repository_init_options_init(&opts,
					 GIT_REPOSITORY_INIT_OPTIONS_VERSION);

	opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
		     GIT_REPOSITORY_INIT_NO_REINIT;
	opts.mode = GIT_REPOSITORY_INIT_SHARED_UMASK;
	opts.initial_head = "mail";
	if (git_repository_init_ext(&git, tmp, &opts) < 0) {
		log_error("create repository '%s': %s", tmp, repo_git_error());
		return E_TEMP;
	}
	if (write_initial(git) < 0) {
		log_error("initialise repository '%s': %s", tmp, repo_git_error());
		r = E_TEMP;
		goto done;
	}
	if (write_git_config(tmp) < 0) {
		r = E_TEMP;
		goto done;
	}
	state = xasprintf("%s/maildag", tmp);
	if (mkdir(state, 0700) < 0) {
		log_error_errno("mkdir '%s'", state);
	} else if (syncfs_path(tmp) == 0) {
		/* whatever libgit2 synced or not: all of it, once */
		r = 0;
	}
	free(state);
done:
	git_repository_free(git);
	return r;
}

static int create_repo(const char *path)
{
	char *tmp, *parent = xstrdup(path), *slash;
	int r;

	/* the parent of a repository is private: it holds mail */
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		if (mkdir_p(parent, 0700) < 0) {
			free(parent);
			return E_TEMP;
		}
	}
	free(parent);
	tmp = xasprintf("%s.new-%ld-%ld", path, (long)getpid(), (long)random());
	r = create_at(tmp);
	if (r == 0 && rename(tmp, path) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY) {
			r = 0;	/* a concurrent creator won; use theirs */
		} else {
			log_error_errno("rename '%s'", tmp);
			r = E_TEMP;
		}
	} else if (r == 0) {
		r = fsync_parent(path);
		free(tmp);
		return r;
	}
	rm_rf(tmp);
	free(tmp);
	return r;
}

int repo_open(struct repo **out, const char *path, unsigned flags)
{
	struct repo *r;
	git_repository *git;
	int ret;

	*out = NULL;
	if (repo_global_init() < 0)
		return E_TEMP;
	/* held from here: creating the repository syncs once, at its end */
	if (flags & REPO_NO_FSYNC)
		fsync_hold();
	if (!path_exists(path)) {
		ret = E_NOTFOUND;
		if (!(flags & REPO_CREATE))
			goto fail;
		ret = E_TEMP;
		if (create_repo(path) < 0)
			goto fail;
	}
	if (git_repository_open_bare(&git, path) < 0) {
		log_error("open repository '%s': %s", path, repo_git_error());
		ret = E_TEMP;
		goto fail;
	}
	r = xcalloc(1, sizeof *r);
	r->git = git;
	r->path = xstrdup(path);
	r->lock_fd = -1;
	r->no_fsync = flags & REPO_NO_FSYNC;
	*out = r;
	return 0;
fail:
	if (flags & REPO_NO_FSYNC)
		fsync_release();
	return ret;
}

void repo_free(struct repo *r)
{
	if (!r)
		return;
	repo_unlock(r);
	git_repository_free(r->git);
	if (r->no_fsync)
		fsync_release();
	free(r->path);
	free(r);
}

static void remove_stale_ref_locks(struct repo *r)
{
	static const char *const refs[] = { REF_MAIL, REF_WORKTREE };

	for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
		char *lock = xasprintf("%s/%s.lock", r->path, refs[i]);
		if (unlink(lock) == 0)
			log_warn("removed stale lock '%s'", lock);
		free(lock);
	}
}

int repo_lock(struct repo *r, int timeout_ms)
{
	char *path;
	long long start;
	long waited_ms = 0, nap_us = 500;
	int fd;

	if (r->lock_fd >= 0)
		return 0;
	path = repo_state_path(r, LOCK_NAME);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT) {
		/* a repository made by plain git: add our state directory */
		char *dir = repo_state_path(r, "");
		mkdir(dir, 0700);
		free(dir);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	}
	if (fd < 0) {
		log_error_errno("open '%s'", path);
		free(path);
		return E_TEMP;
	}
	start = clock_now_ms();
	/* no timeout: block; the caller has its own deadline */
	while (timeout_ms < 0 && flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			log_error_errno("lock '%s'", path);
			goto fail;
		}
	}
	while (timeout_ms >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			log_error_errno("lock '%s'", path);
			goto fail;
		}
		waited_ms = (long)(clock_now_ms() - start);
		if (waited_ms >= timeout_ms) {
			log_error("'%s' is still locked after %ld ms", path,
				  waited_ms);
			goto fail;
		}
		/* back off, but stay responsive: holders keep it briefly */
		usleep((useconds_t)nap_us);
		if (nap_us < 8000)
			nap_us *= 2;
	}
	free(path);
	r->lock_fd = fd;
	remove_stale_ref_locks(r);
	return 0;
fail:
	close(fd);
	free(path);
	return E_TEMP;
}

int repo_reload_objects(struct repo *r)
{
	char *dir = xasprintf("%s/objects", r->path);
	git_odb *odb = NULL;
	int err = git_odb_open(&odb, dir);

	free(dir);
	if (err < 0)
		return log_error("reopen the objects of '%s': %s", r->path,
				 repo_git_error());
	git_repository_set_odb(r->git, odb);
	git_odb_free(odb);	/* the repository holds it */
	return 0;
}

void repo_release(struct repo *r)
{
	/* libgit2 loads each part again when it is next asked for */
	git_repository__cleanup(r->git);
}

int repo_add_objects(struct repo *r, const char *objdir)
{
	git_odb *odb = NULL;
	int err;

	if ((err = git_repository_odb(&odb, r->git)) == 0)
		err = git_odb_add_disk_alternate(odb, objdir);
	git_odb_free(odb);
	if (err < 0)
		return log_error("read the objects of '%s': %s", objdir,
				 repo_git_error());
	return 0;
}

void repo_unlock(struct repo *r)
{
	if (r->lock_fd < 0)
		return;
	/*
	 * Unlock first: a forked child that still holds a copy of the
	 * descriptor would otherwise keep the lock until it exits.
	 */
	flock(r->lock_fd, LOCK_UN);
	close(r->lock_fd);
	r->lock_fd = -1;
}

int repo_ref_read(struct oid *out, struct repo *r, const char *ref)
{
	int err = git_reference_name_to_id(GIT_OID(out), r->git, ref);

	if (err == GIT_ENOTFOUND)
		return E_NOTFOUND;
	if (err < 0)
		return log_error("read ref '%s': %s", ref, repo_git_error());
	return 0;
}

int repo_ref_cas(struct repo *r, const char *ref, const struct oid *id,
		 const struct oid *old, const char *why)
{
	git_reference *out = NULL;
	int err;

	if (old)
		err = git_reference_create_matching(&out, r->git, ref,
						    GIT_OID(id), 1,
						    GIT_OID(old), why);
	else
		err = git_reference_create(&out, r->git, ref, GIT_OID(id), 0,
					   why);
	git_reference_free(out);
	if (err == GIT_EMODIFIED || err == GIT_EEXISTS || err == GIT_ELOCKED) {
		log_warn("ref '%s' moved under us: %s", ref, repo_git_error());
		return E_RACE;
	}
	if (err < 0)
		return log_error("update ref '%s': %s", ref, repo_git_error());
	return 0;
}

int repo_peer_ref_read(struct oid *out, struct repo *r, const char *node)
{
	char *name = xasprintf("refs/peers/%s/mail", node);
	git_reference *ref = NULL;
	int err = git_reference_lookup(&ref, r->git, name), ret = 0;

	if (err == GIT_ENOTFOUND) {
		ret = 0;
	} else if (err < 0) {
		ret = log_error("read '%s': %s", name, repo_git_error());
	} else if (git_reference_type(ref) != GIT_REFERENCE_DIRECT) {
		log_debug("'%s' is not a plain ref: ignored", name);
	} else {
		oid_cpy(out, OID(git_reference_target(ref)));
		ret = 1;
	}
	git_reference_free(ref);
	free(name);
	return ret;
}

static int add_ref_name(const char *name, void *data)
{
	struct strbuf *names = data;

	strbuf_addstr(names, name);
	strbuf_addch(names, '\n');
	return 0;
}

/* Add the loose refs/peers/<node>/mail files to names (see repo.h). */
static void add_loose_peer_refs(struct repo *r, struct strbuf *names)
{
	char *dir = xasprintf("%s/refs/peers", r->path);
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		char *file;
		if (de->d_name[0] == '.')
			continue;
		file = xasprintf("%s/%s/mail", dir, de->d_name);
		if (path_exists(file))
			strbuf_addf(names, "refs/peers/%s/mail\n", de->d_name);
		free(file);
	}
	if (d)
		closedir(d);
	free(dir);
}

int repo_foreach_peer_ref(struct repo *r, repo_ref_fn *fn, void *data)
{
	struct strbuf names = STRBUF_INIT;
	char **v = NULL;
	size_t n = 0, alloc = 0;
	int ret = 0;

	strbuf_init(&names, 256);
	if (git_reference_foreach_name(r->git, add_ref_name, &names) < 0) {
		ret = log_error("list refs: %s", repo_git_error());
		goto done;
	}
	add_loose_peer_refs(r, &names);
	for (char *p = names.buf, *nl; p && *p; p = nl + 1) {
		const char *slash;
		nl = strchr(p, '\n');
		*nl = '\0';
		slash = strncmp(p, "refs/peers/", 11) ? NULL : strchr(p + 11, '/');
		if (slash && slash > p + 11 && !strcmp(slash, "/mail")) {
			xgrow((void **)&v, &alloc, n + 1, sizeof *v);
			v[n++] = p;
		}
	}
	if (n)
		qsort(v, n, sizeof *v, strvec_cmp);
	for (size_t i = 0; i < n && ret == 0; i++)
		if (!i || strcmp(v[i - 1], v[i]))
			ret = fn(v[i], data);
done:
	free(v);
	strbuf_release(&names);
	return ret;
}

int repo_blob_hash_file(struct oid *out, const char *path)
{
	if (git_odb_hashfile(GIT_OID(out), path, GIT_OBJECT_BLOB) < 0)
		return log_error("hash '%s': %s", path, repo_git_error());
	return 0;
}

int repo_blob_from_file(struct oid *out, struct repo *r, const char *path)
{
	git_odb *odb = NULL;
	git_odb_stream *stream = NULL;
	struct stat st;
	char *buf = NULL;
	int fd, ret = E_FAIL;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno("open '%s'", path);
	if (fstat(fd, &st) < 0) {
		log_error_errno("stat '%s'", path);
		goto done;
	}
	if (git_repository_odb(&odb, r->git) < 0 ||
	    git_odb_open_wstream(&stream, odb, (git_object_size_t)st.st_size,
				 GIT_OBJECT_BLOB) < 0) {
		log_error("write blob: %s", repo_git_error());
		goto done;
	}
	buf = xmalloc(65536);
	for (off_t left = st.st_size; left > 0;) {
		ssize_t n = read(fd, buf, left < 65536 ? (size_t)left : 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("read '%s': %s", path,
				  n < 0 ? strerror(errno) : "file shrank");
			goto done;
		}
		if (git_odb_stream_write(stream, buf, (size_t)n) < 0) {
			log_error("write blob: %s", repo_git_error());
			goto done;
		}
		left -= n;
	}
	if (git_odb_stream_finalize_write(GIT_OID(out), stream) < 0) {
		log_error("write blob: %s", repo_git_error());
		goto done;
	}
	ret = 0;
done:
	free(buf);
	git_odb_stream_free(stream);
	git_odb_free(odb);
	close(fd);
	return ret;
}

int repo_blob_from_buffer(struct oid *out, struct repo *r, const void *data,
			  size_t len)
{
	if (git_blob_create_from_buffer(GIT_OID(out), r->git, data, len) < 0)
		return log_error("write blob: %s", repo_git_error());
	return 0;
}

bool repo_object_exists(struct repo *r, const struct oid *id)
{
	git_odb *odb;
	bool found;

	if (git_repository_odb(&odb, r->git) < 0)
		return false;
	found = git_odb_exists(odb, GIT_OID(id));
	git_odb_free(odb);
	return found;
}

int repo_object_size(size_t *out, struct repo *r, const struct oid *id)
{
	git_odb *odb;
	git_object_t type;
	int err;

	if (git_repository_odb(&odb, r->git) < 0)
		return E_FAIL;
	err = git_odb_read_header(out, &type, odb, GIT_OID(id));
	git_odb_free(odb);
	if (err == GIT_ENOTFOUND)
		return E_NOTFOUND;
	return err < 0 ? E_FAIL : 0;
}

int repo_blob_read(struct strbuf *out, struct repo *r, const struct oid *id)
{
	git_blob *blob;
	int err = git_blob_lookup(&blob, r->git, GIT_OID(id));

	if (err == GIT_ENOTFOUND)
		return E_NOTFOUND;
	if (err < 0)
		return E_FAIL;
	strbuf_add(out, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
	git_blob_free(blob);
	return 0;
}

int repo_commit_tree(struct oid *out, struct repo *r, const struct oid *commit)
{
	git_commit *c;

	if (git_commit_lookup(&c, r->git, GIT_OID(commit)) < 0)
		return log_error("read commit: %s", repo_git_error());
	oid_cpy(out, OID(git_commit_tree_id(c)));
	git_commit_free(c);
	return 0;
}

int repo_commit_time(time_t *out, struct repo *r, const struct oid *commit)
{
	git_commit *c;

	if (git_commit_lookup(&c, r->git, GIT_OID(commit)) < 0)
		return log_error("read commit: %s", repo_git_error());
	*out = git_commit_time(c);
	git_commit_free(c);
	return 0;
}

int repo_commit(struct oid *out, struct repo *r, const struct oid *tree,
		const struct oid *parents, size_t nparents, const char *message,
		time_t when, const char *name, const char *email)
{
	git_signature *sig = NULL;
	git_tree *t = NULL;
	git_commit **pc = xcalloc(nparents ? nparents : 1, sizeof *pc);
	int ret = E_FAIL;

	if (git_signature_new(&sig, name ? name : "maildag",
			      email ? email : "maildag@localhost",
			      when < 0 ? clock_wall() : when, 0) < 0 ||
	    git_tree_lookup(&t, r->git, GIT_OID(tree)) < 0)
		goto fail;
	for (size_t i = 0; i < nparents; i++)
		if (git_commit_lookup(&pc[i], r->git, GIT_OID(&parents[i])) < 0)
			goto fail;
	if (git_commit_create(GIT_OID(out), r->git, NULL, sig, sig, NULL,
			      message, t,
			      nparents, (const git_commit **)pc) < 0)
		goto fail;
	ret = 0;
	goto done;
fail:
	log_error("write commit: %s", repo_git_error());
done:
	for (size_t i = 0; i < nparents; i++)
		git_commit_free(pc[i]);
	free(pc);
	git_tree_free(t);
	git_signature_free(sig);
	return ret;
}

int repo_tree_lookup(struct oid *out, struct repo *r, const struct oid *tree,
		     const char *path)
{
	git_tree *t = NULL;
	git_tree_entry *e = NULL;
	int err;

	if (git_tree_lookup(&t, r->git, GIT_OID(tree)) < 0)
		return log_error("read tree: %s", repo_git_error());
	err = git_tree_entry_bypath(&e, t, path);
	if (err == 0)
		oid_cpy(out, OID(git_tree_entry_id(e)));
	git_tree_entry_free(e);
	git_tree_free(t);
	if (err == GIT_ENOTFOUND)
		return E_NOTFOUND;
	if (err < 0)
		return log_error("read tree: %s", repo_git_error());
	return 0;
}

#define LOOSE_HASH_MAX ((size_t)256 << 20)	/* trees, commits: far less */

enum { LOOSE_OK = 0, LOOSE_DAMAGED = 1 };

/*
 * Inflate the loose object file fd and check it: its content must be
 * the bytes of file expect (a blob whose id was computed from that
 * file), or else hash to id.  LOOSE_OK, LOOSE_DAMAGED, or E_FAIL when it
 * could not be read.  Done here with zlib, not by libgit2: libgit2 1.5.1
 * loops forever inflating a file cut short (libgit2 issue #7342).
 */
static int loose_check(int fd, const struct oid *id, int expect)
{
	unsigned char in[65536], out[65536], cmp[65536];
	char hdr[64];
	size_t hlen = 0, size = 0, got = 0;
	struct strbuf content = STRBUF_INIT;
	git_object_t type = GIT_OBJECT_INVALID;
	bool in_header = true, end = false;
	z_stream zs;
	int ret = LOOSE_OK, z = Z_OK;

	memset(&zs, 0, sizeof zs);
	if (inflateInit(&zs) != Z_OK)
		return log_error("zlib: cannot start inflating");
	while (!end && ret == LOOSE_OK) {
		ssize_t n = read(fd, in, sizeof in);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = log_error_errno("read loose object");
			break;
		}
		if (n == 0) {
			ret = LOOSE_DAMAGED;	/* the stream never ended */
			break;
		}
		zs.next_in = in;
		zs.avail_in = (uInt)n;
		/* until this input is used up and no output is held back */
		do {
			unsigned char *p = out;
			size_t len;
			zs.next_out = out;
			zs.avail_out = sizeof out;
			z = inflate(&zs, Z_NO_FLUSH);
			if (z != Z_OK && z != Z_STREAM_END) {
				ret = LOOSE_DAMAGED;
				break;
			}
			end = z == Z_STREAM_END;
			len = sizeof out - zs.avail_out;
			/* "<type> <size>\0" */
			while (in_header && len > 0) {
				char *sp;
				if (hlen == sizeof hdr - 1) {
					ret = LOOSE_DAMAGED;
					break;
				}
				hdr[hlen++] = (char)*p++;
				len--;
				if (hdr[hlen - 1] != '\0')
					continue;
				in_header = false;
				sp = strchr(hdr, ' ');
				if (!sp || sp[1] < '0' || sp[1] > '9') {
					ret = LOOSE_DAMAGED;
					break;
				}
				*sp = '\0';
				type = git_object_string2type(hdr);
				size = strtoull(sp + 1, NULL, 10);
				if (type == GIT_OBJECT_INVALID ||
				    (expect < 0 && size > LOOSE_HASH_MAX) ||
				    (expect >= 0 && type != GIT_OBJECT_BLOB))
					ret = LOOSE_DAMAGED;
			}
			if (ret != LOOSE_OK || len == 0)
				continue;
			if (got + len > size) {
				ret = LOOSE_DAMAGED;
				break;
			}
			got += len;
			if (expect < 0) {
				strbuf_add(&content, p, len);
				continue;
			}
			if (read_full(expect, cmp, len) != (ssize_t)len) {
				ret = LOOSE_DAMAGED;	/* the file is shorter */
				break;
			}
			if (memcmp(cmp, p, len))
				ret = LOOSE_DAMAGED;
		} while (ret == LOOSE_OK && !end &&
			 (zs.avail_in > 0 || zs.avail_out == 0));
	}
	inflateEnd(&zs);
	if (ret == LOOSE_OK && (in_header || got != size))
		ret = LOOSE_DAMAGED;
	if (ret == LOOSE_OK && expect >= 0 && read_full(expect, cmp, 1) != 0)
		ret = LOOSE_DAMAGED;	/* the file is longer */
	if (ret == LOOSE_OK && expect < 0) {
		struct oid h;
		if (git_odb_hash(GIT_OID(&h), content.buf, content.len,
				 type) < 0 ||
		    !oid_equal(&h, id))
			ret = LOOSE_DAMAGED;
	}
	strbuf_release(&content);
	return ret;
}

int repo_object_check(struct repo *r, const struct oid *id, const char *expect)
{
	char hex[OID_HEXSZ + 1], *path;
	int fd, efd = -1, ret;

	oid_tostr(hex, sizeof hex, id);
	path = xasprintf("%s/objects/%.2s/%s", r->path, hex, hex + 2);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		/* not loose: packed (packs are synced whole) or absent */
		if (errno == ENOENT)
			ret = repo_object_exists(r, id) ? 0 : E_NOTFOUND;
		else
			ret = log_error_errno("open '%s'", path);
		free(path);
		return ret;
	}
	if (expect && (efd = open(expect, O_RDONLY | O_CLOEXEC)) < 0) {
		ret = log_error_errno("open '%s'", expect);
	} else {
		ret = loose_check(fd, id, efd);
		if (ret == LOOSE_DAMAGED) {
			log_warn("removing damaged loose object %s", hex);
			if (unlink(path) < 0)
				ret = log_error_errno("unlink '%s'", path);
			else
				ret = E_INVALID;
		}
	}
	if (efd >= 0)
		close(efd);
	close(fd);
	free(path);
	return ret;
}

int repo_syncfs(struct repo *r)
{
	return syncfs_path(r->path);
}

int repo_sync_ref(struct repo *r, const char *ref)
{
	char *path = xasprintf("%s/%s", r->path, ref);
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0) {
		ret = log_error_errno("open '%s'", path);
	} else {
		if (fsync(fd) < 0)
			ret = log_error_errno("fsync '%s'", path);
		close(fd);
		if (ret == 0)
			ret = fsync_parent(path);
	}
	free(path);
	return ret;
}

int repo_tree_foreach_name(struct repo *r, const struct oid *tree,
			   const char *path, repo_name_fn *fn, void *data)
{
	struct oid sub;
	git_tree *t;
	int ret;

	if ((ret = repo_tree_lookup(&sub, r, tree, path)) < 0)
		return ret;
	if (git_tree_lookup(&t, r->git, GIT_OID(&sub)) < 0)
		return E_NOTFOUND;
	ret = 0;
	for (size_t i = 0; i < git_tree_entrycount(t) && !ret; i++)
		ret = fn(git_tree_entry_name(git_tree_entry_byindex(t, i)), data);
	git_tree_free(t);
	return ret;
}

int repo_log(struct repo *r, const char *ref, repo_log_fn *fn, void *data)
{
	git_revwalk *walk = NULL;
	struct oid id;
	int ret = 0;

	if (git_revwalk_new(&walk, r->git) < 0)
		return log_error("revwalk: %s", repo_git_error());
	git_revwalk_sorting(walk, GIT_SORT_TIME);
	if (git_revwalk_push_ref(walk, ref) < 0) {
		ret = log_error("read '%s': %s", ref, repo_git_error());
		goto done;
	}
	while (ret == 0 && git_revwalk_next(GIT_OID(&id), walk) == 0) {
		git_commit *c;
		if (git_commit_lookup(&c, r->git, GIT_OID(&id)) < 0) {
			ret = log_error("read commit %s: %s",
					oid_hex(&id), repo_git_error());
			break;
		}
		ret = fn(&id, git_commit_time(c), git_commit_message(c), data);
		git_commit_free(c);
	}
done:
	git_revwalk_free(walk);
	return ret;
}

int repo_ahead_behind(size_t *ahead, size_t *behind, struct repo *r,
		      const struct oid *local, const struct oid *upstream)
{
	if (git_graph_ahead_behind(ahead, behind, r->git, GIT_OID(local),
				   GIT_OID(upstream)) < 0)
		return log_error("ahead/behind of %s: %s",
				 oid_hex(local), repo_git_error());
	return 0;
}

void repo_set_cache_max(size_t bytes)
{
	git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)bytes);
}

void repo_cache_trees_up_to(size_t bytes)
{
	static size_t now = 4096;	/* libgit2's default */

	if (bytes <= now)
		return;
	git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, bytes);
	now = bytes;
}
