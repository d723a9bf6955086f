/*
 * sessiond: the receive side of pushproto's framed protocol, for
 * doc/persistent-peers.md.  An experiment, not maildag code: it stands
 * where `maildag serve --peer NAME` would stand as the forced command,
 * and stores each push as the receive side must before it says "OK":
 *
 *	<- "PUSH <old> <new> <len>\n" and <len> bytes of pack
 *	   the pack is indexed into a quarantine directory
 *	   (objects/incoming-*), the new commit and its tree are read back
 *	   from it, pack and index move into objects/pack (fsynced), and
 *	   refs/peers/NAME/mail moves from old to new by compare-and-swap
 *	   (fsynced); the ref name comes from the command line, never from
 *	   the peer
 *	-> "OK <new>\n", or "ERR <why>\n"
 *
 *   sessiond REPO NAME libgit2	index with libgit2's git_indexer in process
 *   sessiond REPO NAME direct	libgit2, indexed straight into objects/pack
 *				(no quarantine to move out of: one rename
 *				and one directory fsync fewer)
 *   sessiond REPO NAME loose	libgit2 into quarantine, then every object
 *				written loose (fsynced), as git's
 *				unpack-objects does for small pushes
 *   sessiond REPO NAME batch	loose, but written unsynced and made durable
 *				by one syncfs(2) before the ref moves (as
 *				maildag's merge does, common/merge.c)
 *   sessiond REPO NAME git	run `git index-pack --stdin --strict
 *				--fix-thin` for each push (git's object
 *				checks, receive.fsckObjects's), one exec
 *
 * With SESSIOND_TIMES set it writes per push, on stderr, the time spent
 * reading, indexing, checking, moving and in the ref update, and at the
 * end its CPU time per push; SESSIOND_CPU_LOG=FILE appends the latter to
 * FILE (for a sessiond run by sshd, whose stderr nobody reads).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/odb_backend.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_INPUT (512LL << 20)

static const char *repo_path, *peer;
static int use_git, direct, loose, batch;
static git_repository *repo;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void answer(const char *fmt, const char *arg)
{
	printf(fmt, arg);
	fflush(stdout);
}

static int read_full(int fd, char *buf, size_t len)
{
	while (len) {
		ssize_t r = read(fd, buf, len);
		if (r <= 0)
			return -1;
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY), r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/* Index the pack of len bytes on stdin into dir; *name is its hash. */
static int index_libgit2(const char *dir, long long len, char *name)
{
	git_indexer *idx;
	git_indexer_options opts;
	git_indexer_progress st;
	git_odb *odb;
	char buf[65536];
	int err = -1;

	git_indexer_options_init(&opts, GIT_INDEXER_OPTIONS_VERSION);
	opts.verify = 1;	/* connectivity: every object it names exists */
	if (git_repository_odb(&odb, repo) < 0)
		return -1;
	if (git_indexer_new(&idx, dir, 0400, odb, &opts) < 0)
		goto out;
	while (len > 0) {
		size_t n = len > (long long)sizeof buf ? sizeof buf : (size_t)len;
		if (read_full(0, buf, n) < 0 || git_indexer_append(idx, buf, n, &st) < 0)
			goto done;
		len -= (long long)n;
	}
	if (git_indexer_commit(idx, &st) < 0)
		goto done;
	snprintf(name, 128, "%s", git_indexer_name(idx));
	err = 0;
done:
	git_indexer_free(idx);
out:
	git_odb_free(odb);
	return err;
}

/* The same with git index-pack, in a child, into quarantine qdir. */
static int index_git(const char *qdir, long long len, char *name)
{
	int in[2], out[2], st;
	char buf[65536], line[128];
	pid_t pid;
	FILE *f;

	if (pipe(in) < 0 || pipe(out) < 0)
		return -1;
	if (!(pid = fork())) {
		char *alt;
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		if (asprintf(&alt, "%s/objects", repo_path) < 0)
			_exit(127);
		setenv("GIT_OBJECT_DIRECTORY", qdir, 1);
		setenv("GIT_ALTERNATE_OBJECT_DIRECTORIES", alt, 1);
		setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
		setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
		execlp("git", "git", "--git-dir", repo_path, "index-pack",
		       "--stdin", "--strict", "--fix-thin", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	while (len > 0) {
		size_t n = len > (long long)sizeof buf ? sizeof buf : (size_t)len;
		if (read_full(0, buf, n) < 0 || write(in[1], buf, n) != (ssize_t)n)
			break;
		len -= (long long)n;
	}
	close(in[1]);
	f = fdopen(out[0], "r");
	if (!f || !fgets(line, sizeof line, f))
		line[0] = '\0';
	if (f)
		fclose(f);
	waitpid(pid, &st, 0);
	if (len || !WIFEXITED(st) || WEXITSTATUS(st) ||
	    strncmp(line, "pack\t", 5))
		return -1;
	line[strcspn(line, "\n")] = '\0';
	snprintf(name, 128, "%s", line + 5);
	return 0;
}

/* Read the new commit and its tree back, through quarantine + main. */
static int check(const char *idxfile, const git_oid *id)
{
	git_odb *odb = NULL;
	git_odb_backend *be;
	git_repository *q = NULL;
	git_commit *c = NULL;
	git_tree *t = NULL;
	char *objects;
	int err = -1;

	if (asprintf(&objects, "%s/objects", repo_path) < 0)
		return -1;
	if (git_odb_new(&odb) < 0 || git_odb_backend_one_pack(&be, idxfile) < 0 ||
	    git_odb_add_backend(odb, be, 2) < 0 ||
	    git_odb_add_disk_alternate(odb, objects) < 0 ||
	    git_repository_wrap_odb(&q, odb) < 0 ||
	    git_commit_lookup(&c, q, id) < 0 || git_commit_tree(&t, c) < 0)
		goto done;
	err = 0;
done:
	git_tree_free(t);
	git_commit_free(c);
	git_repository_free(q);
	git_odb_free(odb);
	free(objects);
	return err;
}

struct copy {
	git_odb *from, *to;
	int err;
};

static int copy_one(const git_oid *id, void *payload)
{
	struct copy *c = payload;
	git_odb_object *o;
	git_oid out;

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

/* Every object of the pack whose index is idxfile, loose in the repository. */
static int unpack_loose(const char *idxfile)
{
	struct copy c = { NULL, NULL, 0 };
	git_odb_backend *be;

	if (git_odb_new(&c.from) < 0 || git_odb_backend_one_pack(&be, idxfile) < 0 ||
	    git_odb_add_backend(c.from, be, 1) < 0 ||
	    git_repository_odb(&c.to, repo) < 0 ||
	    git_odb_foreach(c.from, copy_one, &c) < 0)
		c.err = -1;
	git_odb_free(c.to);
	git_odb_free(c.from);
	return c.err;
}

static int one_push(const char *hold, const char *hnew, long long len)
{
	static unsigned n;
	char qdir[4096], pdir[4200], name[128], from[4400], to[4400], *ref;
	git_oid old, new;
	git_reference *r = NULL;
	git_odb *odb;
	double t0 = now_ms(), t1, t2, t3, t4;
	const char *ext[] = { "pack", "idx" };
	int err;

	if (git_oid_fromstr(&old, hold) < 0 || git_oid_fromstr(&new, hnew) < 0 ||
	    len <= 0 || len > MAX_INPUT)
		return -1;
	snprintf(qdir, sizeof qdir, "%s/objects/incoming-%d-%u", repo_path,
		 (int)getpid(), n++);
	snprintf(pdir, sizeof pdir, "%s/pack", qdir);
	if (direct)	/* no quarantine: a refused pack is deleted */
		snprintf(pdir, sizeof pdir, "%s/objects/pack", repo_path);
	else if (mkdir(qdir, 0700) < 0 || mkdir(pdir, 0700) < 0)
		return -1;
	err = use_git ? index_git(qdir, len, name) : index_libgit2(pdir, len, name);
	t1 = now_ms();
	snprintf(from, sizeof from, "%s/pack-%s.idx", pdir, name);
	if (!err)
		err = check(from, &new);
	t2 = now_ms();
	if (!err && loose) {
		/* as git's unpack-objects: each object loose (fsynced), the
		 * quarantine pack dropped */
		snprintf(from, sizeof from, "%s/pack-%s.idx", pdir, name);
		if (batch)	/* unsynced, then one syncfs: merge.c's way */
			git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0);
		err = unpack_loose(from);
		if (batch) {
			int fd = open(repo_path, O_RDONLY | O_DIRECTORY);
			git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
			if (fd < 0 || syncfs(fd) < 0)
				err = -1;
			if (fd >= 0)
				close(fd);
		}
		for (int i = 0; i < 2; i++) {
			snprintf(from, sizeof from, "%s/pack-%s.%s", pdir, name, ext[i]);
			unlink(from);
		}
	}
	/* the pack first, then its index: a reader never sees an index alone */
	for (int i = 0; !err && !direct && !loose && i < 2; i++) {
		snprintf(from, sizeof from, "%s/pack-%s.%s", pdir, name, ext[i]);
		snprintf(to, sizeof to, "%s/objects/pack/pack-%s.%s", repo_path,
			 name, ext[i]);
		err = rename(from, to);
	}
	snprintf(to, sizeof to, "%s/objects/pack", repo_path);
	if (!err)	/* (direct: libgit2's indexer fsyncs it already) */
		err = direct || loose ? 0 : fsync_dir(to);
	if (!direct) {
		rmdir(pdir);
		rmdir(qdir);
	}
	t3 = now_ms();
	if (err)
		return -1;
	if (git_repository_odb(&odb, repo) == 0) {
		git_odb_refresh(odb);
		git_odb_free(odb);
	}
	if (asprintf(&ref, "refs/peers/%s/mail", peer) < 0)
		return -1;
	err = git_reference_create_matching(&r, repo, ref, &new, 1,
					    git_oid_is_zero(&old) ? NULL : &old,
					    "maildag session");
	git_reference_free(r);
	free(ref);
	t4 = now_ms();
	if (getenv("SESSIOND_TIMES"))
		fprintf(stderr, "sessiond: read+index %.2f check %.2f move %.2f "
			"ref %.2f ms\n", t1 - t0, t2 - t1, t3 - t2, t4 - t3);
	return err < 0 ? -1 : 0;
}

static double cpu_ms(const struct rusage *ru)
{
	return ru->ru_utime.tv_sec * 1e3 + ru->ru_utime.tv_usec / 1e3 +
	       ru->ru_stime.tv_sec * 1e3 + ru->ru_stime.tv_usec / 1e3;
}

int main(int argc, char **argv)
{
	unsigned pushes = 0;
	char line[256], hold[64], hnew[64];
	long long len;

	if (argc != 4) {
		fprintf(stderr, "usage: sessiond REPO NAME libgit2|direct|loose|batch|git\n");
		return 64;
	}
	repo_path = argv[1];
	peer = argv[2];
	use_git = !strcmp(argv[3], "git");
	direct = !strcmp(argv[3], "direct");
	batch = !strcmp(argv[3], "batch");
	loose = batch || !strcmp(argv[3], "loose");
	umask(077);
	git_libgit2_init();
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	if (git_repository_open_bare(&repo, repo_path) < 0) {
		fprintf(stderr, "sessiond: cannot open '%s'\n", repo_path);
		return 1;
	}
	answer("maildag-session 1 %s\n", peer);
	/* header lines are read byte by byte: the pack follows on fd 0 */
	for (;;) {
		size_t i = 0;
		while (i + 1 < sizeof line && read(0, line + i, 1) == 1 &&
		       line[i++] != '\n')
			;
		line[i] = '\0';
		if (!i) {
			struct rusage self, kids;
			getrusage(RUSAGE_SELF, &self);
			getrusage(RUSAGE_CHILDREN, &kids);
			if (getenv("SESSIOND_TIMES") && pushes)
				fprintf(stderr, "sessiond: cpu %.2f ms per push "
					"(with children) over %u pushes\n",
					(cpu_ms(&self) + cpu_ms(&kids)) / pushes,
					pushes);
			if (getenv("SESSIOND_CPU_LOG") && pushes) {
				FILE *f = fopen(getenv("SESSIOND_CPU_LOG"), "a");
				if (f) {
					fprintf(f, "sessiond %s: cpu %.2f ms per push over %u pushes\n",
						argv[3], (cpu_ms(&self) + cpu_ms(&kids)) / pushes, pushes);
					fclose(f);
				}
			}
			return 0;
		}
		if (sscanf(line, "PUSH %63s %63s %lld", hold, hnew, &len) != 3) {
			answer("ERR %s\n", "bad frame");
			return 1;
		}
		if (one_push(hold, hnew, len) < 0) {
			const git_error *e = git_error_last();
			answer("ERR %s\n", e ? e->message : "refused");
			return 1;
		}
		pushes++;
		answer("OK %s\n", hnew);
	}
}
