/*
 * packs: the maintenance pass that keeps a repository compact (see
 * objects.h and doc/purge.md 4.2).
 *
 * Steps: take the maintenance lock; list the packs (their ids read from
 * the .idx) and the loose objects; list what is reachable (git rev-list
 * --objects --all --reflog --missing=allow-any, purged blobs being
 * absent by design) and what the tips name (git ls-tree), which gives
 * each object its class; decide per class which packs roll up; write
 * the new packs with git pack-objects (reuse on, fsynced); remove the
 * multi-pack-index, the old packs and the loose copies; write a new
 * multi-pack-index; record what was done.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/odb_backend.h>

#include "clock.h"
#include "fsutil.h"
#include "journal.h"
#include "log.h"
#include "objects.h"
#include "objects_p.h"
#include "repo.h"
#include "strbuf.h"
#include "vec.h"
#include "xalloc.h"

enum cls { C_NONE, C_LIVE, C_EXPUNGED, C_HISTORY, C_OTHER, C_N };

static const char *const cls_name[C_N] = {
	"unreachable", "live", "expunged", "history", "unmarked"
};

/* --- objects: an open-addressing table keyed by id ----------------------- */

enum { F_LOOSE = 1, F_DROP = 2, F_STAY = 4, F_WRITE = 8, F_REACH = 16,
       F_GONE = 32 };

struct obj {
	struct oid id;
	unsigned char cls, flags;
	int pack;		/* a pack holding it, -1 if none */
	char *path;		/* history objects: for pack-objects' deltas */
	time_t mtime;		/* loose: its file's */
	bool used;
};

struct objtab {
	struct obj *v;
	size_t n, cap;
};

static size_t obj_hash(const struct oid *id, size_t cap)
{
	uint64_t h;

	memcpy(&h, id->id, sizeof h);
	return (size_t)h & (cap - 1);
}

static struct obj *tab_find(struct objtab *t, const struct oid *id)
{
	if (!t->cap)
		return NULL;
	for (size_t i = obj_hash(id, t->cap);; i = (i + 1) & (t->cap - 1)) {
		if (!t->v[i].used)
			return NULL;
		if (oid_equal(&t->v[i].id, id))
			return &t->v[i];
	}
}

static struct obj *tab_get(struct objtab *t, const struct oid *id)
{
	struct obj *o;
	size_t i;

	if ((o = tab_find(t, id)))
		return o;
	if (2 * (t->n + 1) > t->cap) {
		struct objtab bigger = { NULL, 0, t->cap ? 2 * t->cap : 1 << 16 };
		bigger.v = xcalloc(bigger.cap, sizeof *bigger.v);
		for (size_t k = 0; k < t->cap; k++) {
			if (!t->v[k].used)
				continue;
			i = obj_hash(&t->v[k].id, bigger.cap);
			while (bigger.v[i].used)
				i = (i + 1) & (bigger.cap - 1);
			bigger.v[i] = t->v[k];
		}
		bigger.n = t->n;
		free(t->v);
		*t = bigger;
	}
	for (i = obj_hash(id, t->cap); t->v[i].used; i = (i + 1) & (t->cap - 1))
		;
	o = &t->v[i];
	oid_cpy(&o->id, id);
	o->used = true;
	o->pack = -1;
	t->n++;
	return o;
}

static void tab_free(struct objtab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->v[i].path);
	free(t->v);
}

/* --- packs ---------------------------------------------------------------- */

struct pack {
	char *name;		/* "pack-<hex>" */
	int cls;
	bool keep;		/* a .keep: a receive under way; left alone */
	bool roll;		/* rewritten by this pass */
	time_t mtime;
	unsigned long long bytes;
	struct oid *ids;
	size_t n;
};

struct packv {
	struct pack *v;
	size_t n, alloc;
};

struct pass {
	const char *repo;
	char *packdir;
	const struct objects_maint_opts *o;
	time_t now;		/* clock_files(): what mtimes are compared with */
	struct objtab objs;
	struct packv packs;
	struct objects_maint_result *res;
	char *written[C_N];	/* names of the new packs */
};

/* The ids of a pack index (version 2, or 1) into p. */
static int read_idx(struct pack *p, const char *path)
{
	unsigned char *buf;
	size_t len, n, off;
	uint32_t *fan;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return log_error_errno("open '%s'", path);
	}
	len = (size_t)st.st_size;
	buf = xmalloc(len ? len : 1);
	if (read_full(fd, buf, len) != (ssize_t)len) {
		close(fd);
		free(buf);
		return log_error("read '%s': short", path);
	}
	close(fd);
	off = len >= 8 && !memcmp(buf, "\377tOc", 4) ? 8 : 0;
	if (len < off + 1024)
		goto bad;
	fan = (uint32_t *)(void *)(buf + off);
	n = __builtin_bswap32(fan[255]);
	if (off) {		/* v2: the ids follow the fan-out */
		if (len < off + 1024 + n * OID_RAWSZ)
			goto bad;
		p->ids = xmalloc((n ? n : 1) * sizeof *p->ids);
		memcpy(p->ids, buf + off + 1024, n * OID_RAWSZ);
	} else {		/* v1: offset and id */
		if (len < 1024 + n * 24)
			goto bad;
		p->ids = xmalloc((n ? n : 1) * sizeof *p->ids);
		for (size_t i = 0; i < n; i++)
			memcpy(p->ids[i].id, buf + 1024 + i * 24 + 4, OID_RAWSZ);
	}
	p->n = n;
	free(buf);
	return 0;
bad:
	free(buf);
	return log_error("'%s' is not a pack index maildag reads", path);
}

/* The class a pack's .maildag file names; C_OTHER when none. */
static int read_mark(const char *packdir, const char *name)
{
	char buf[32], *path = xasprintf("%s/%s.maildag", packdir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read_full(fd, buf, sizeof buf - 1) : -1;

	if (fd >= 0)
		close(fd);
	free(path);
	if (n <= 0)
		return C_OTHER;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	for (int c = C_LIVE; c <= C_HISTORY; c++)
		if (!strcmp(buf, cls_name[c]))
			return c;
	return C_OTHER;
}

static int list_packs(struct pass *ps)
{
	DIR *d = opendir(ps->packdir);
	struct dirent *de;
	int ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : log_error_errno("open '%s'",
							     ps->packdir);
	while ((de = readdir(d)) && ret == 0) {
		size_t len = strlen(de->d_name);
		struct stat st;
		struct pack *p;
		char *base, *path;

		if (strncmp(de->d_name, "pack-", 5) || len < 9 ||
		    strcmp(de->d_name + len - 4, ".idx"))
			continue;
		base = xstrndup(de->d_name, len - 4);
		path = xasprintf("%s/%s.pack", ps->packdir, base);
		if (stat(path, &st) < 0) {	/* half removed, or coming */
			free(path);
			free(base);
			continue;
		}
		free(path);
		p = VEC_PUSH(&ps->packs);
		p->name = base;
		p->mtime = st.st_mtime;
		p->bytes = (unsigned long long)st.st_size;
		path = xasprintf("%s/%s.keep", ps->packdir, base);
		p->keep = path_exists(path);
		free(path);
		p->cls = read_mark(ps->packdir, base);
		path = xasprintf("%s/%s.idx", ps->packdir, base);
		ret = read_idx(p, path);
		free(path);
	}
	closedir(d);
	return ret;
}

/* --- loose objects -------------------------------------------------------- */

static int note_loose(const struct oid *id, const char *path, void *data)
{
	struct pass *ps = data;
	struct stat st;
	struct obj *o;

	if (lstat(path, &st) < 0)
		return 0;	/* packed and removed by a writer meanwhile */
	o = tab_get(&ps->objs, id);
	o->flags |= F_LOOSE;
	o->mtime = st.st_mtime;
	ps->res->loose_before++;
	return 0;
}

/* --- git ------------------------------------------------------------------ */

static char *const git_env[] = {
	"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent",
	"XDG_CONFIG_HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_CONFIG_SYSTEM=/dev/null", "GIT_CONFIG_GLOBAL=/dev/null",
	"LC_ALL=C", NULL
};

/*
 * Run git with argv (after "git --git-dir=<repo>"), stdin from in_fd
 * (-1: /dev/null), its stdout into out (NULL: /dev/null).  0, or E_FAIL
 * (logged, with its exit status).
 */
static int run_git(const char *repo, const char *const *argv, int in_fd,
		   struct strbuf *out)
{
	const char *args[32];
	char *gitdir = xasprintf("--git-dir=%s", repo);
	int pfd[2] = { -1, -1 }, st, n = 0;
	pid_t pid;

	args[n++] = "git";
	args[n++] = gitdir;
	for (size_t i = 0; argv[i] && n < 31; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		free(gitdir);
		return log_error_errno("pipe");
	}
	pid = fork();
	if (pid < 0) {
		free(gitdir);
		close(pfd[0]);
		close(pfd[1]);
		return log_error_errno("fork");
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(in_fd >= 0 ? in_fd : null, 0);
		dup2(out ? pfd[1] : null, 1);
		execve("/usr/bin/git", (char *const *)args, git_env);
		execvpe("git", (char *const *)args, git_env);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char buf[65536];
		ssize_t r = read(pfd[0], buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out)
			strbuf_add(out, buf, (size_t)r);
	}
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	free(gitdir);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		if (!strcmp(argv[0], "rev-parse"))	/* a question */
			return E_FAIL;
		return log_error("git %s %s failed (status %d)", argv[0],
				 argv[1] ? argv[1] : "", st);
	}
	return 0;
}

/* Is path "[<folder>/]{cur,new}/<xx>/<name>", a message (layout.h)? */
static bool message_path(const char *path, size_t len)
{
	const char *end = path + len, *p = end, *slash[3];
	int k = 0;

	while (p > path && k < 3) {
		p--;
		if (*p == '/')
			slash[k++] = p;
	}
	if (k < 2)
		return false;
	/* slash[0] ends the shard, slash[1] the sub; the sub starts after
	 * slash[2] or at the start */
	{
		const char *sub = k == 3 ? slash[2] + 1 : path;
		size_t sl = (size_t)(slash[1] - sub);
		if (slash[0] - slash[1] != 3)
			return false;
		return sl == 3 && (!memcmp(sub, "cur", 3) ||
				   !memcmp(sub, "new", 3));
	}
}

/* Mark the blobs of messages a tip names: live. */
static int mark_live(struct pass *ps, const char *ref)
{
	const char *argv[] = { "ls-tree", "-r", "-z", ref, NULL };
	struct strbuf out = STRBUF_INIT;
	char *p, *end, *verify = xasprintf("%s^{tree}", ref);
	const char *vargv[] = { "rev-parse", "-q", "--verify", verify, NULL };
	int ret = 0;

	if (run_git(ps->repo, vargv, -1, NULL) < 0) {
		free(verify);
		return 0;	/* no such ref (yet) */
	}
	free(verify);
	if (run_git(ps->repo, argv, -1, &out) < 0) {
		strbuf_release(&out);
		return E_FAIL;
	}
	/* "<mode> blob <id>\t<path>\0" */
	for (p = out.buf, end = out.buf + out.len; p < end;) {
		char *z = memchr(p, '\0', (size_t)(end - p)), *tab;
		struct oid id;
		if (!z)
			break;
		tab = strchr(p, '\t');
		if (tab && tab - p > OID_HEXSZ && !strncmp(tab - OID_HEXSZ - 5,
							   "blob ", 5) &&
		    oid_fromstr(&id, tab - OID_HEXSZ) == 0 &&
		    message_path(tab + 1, strlen(tab + 1)))
			tab_get(&ps->objs, &id)->cls = C_LIVE;
		p = z + 1;
	}
	strbuf_release(&out);
	return ret;
}

/* Everything reachable gets its class (live ones keep theirs). */
static int mark_reachable(struct pass *ps)
{
	const char *argv[] = { "rev-list", "--objects", "--all", "--reflog",
			       "--missing=allow-any", NULL };
	struct strbuf out = STRBUF_INIT;
	char *p, *end;

	if (run_git(ps->repo, argv, -1, &out) < 0) {
		strbuf_release(&out);
		return E_FAIL;
	}
	for (p = out.buf, end = out.buf + out.len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		struct oid id;
		struct obj *o;
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (len >= OID_HEXSZ && oid_fromstr(&id, p) == 0) {
			const char *path = len > OID_HEXSZ ? p + OID_HEXSZ + 1
							   : NULL;
			size_t plen = path ? len - OID_HEXSZ - 1 : 0;
			o = tab_get(&ps->objs, &id);
			o->flags |= F_REACH;
			if (o->cls == C_LIVE)
				;
			else if (path && message_path(path, plen))
				o->cls = C_EXPUNGED;
			else {
				o->cls = C_HISTORY;
				if (path && plen && !o->path)
					o->path = xstrndup(path, plen);
			}
		}
		p = nl ? nl + 1 : end;
	}
	strbuf_release(&out);
	return 0;
}

/*
 * The blobs the delivery journal names count as reachable and live: a
 * delivery under way has written its blob and not yet its commit.
 */
static void mark_journal_blob(const struct oid *id, void *data)
{
	struct pass *ps = data;
	struct obj *o = tab_get(&ps->objs, id);

	o->flags |= F_REACH;
	if (o->cls == C_NONE)
		o->cls = C_LIVE;
}

/* Note which packs hold each object; mark the drop set. */
static void note_packs(struct pass *ps)
{
	for (size_t i = 0; i < ps->packs.n; i++) {
		struct pack *p = &ps->packs.v[i];
		for (size_t k = 0; k < p->n; k++) {
			struct obj *o = tab_get(&ps->objs, &p->ids[k]);
			if (o->pack < 0 || p->keep)
				o->pack = (int)i;
		}
	}
	for (size_t i = 0; i < ps->o->ndrop; i++) {
		struct obj *o = tab_find(&ps->objs, &ps->o->drop[i]);
		if (o)
			o->flags |= F_DROP;
	}
}

/* --- deciding ------------------------------------------------------------- */

/* Is o gone for good: dropped, or unreachable and older than grace? */
static bool expired(const struct pass *ps, const struct obj *o, time_t mtime)
{
	if (o->flags & F_DROP)
		return true;
	return !(o->flags & F_REACH) && mtime + ps->o->grace <= ps->now;
}

/*
 * A pack is rewritten whatever the progression when it has no class,
 * holds a blob of the drop set, or holds expired unreachable objects.
 */
static bool must_roll(const struct pass *ps, const struct pack *p)
{
	if (p->cls == C_OTHER)
		return true;
	for (size_t k = 0; k < p->n; k++) {
		struct obj *o = tab_find((struct objtab *)&ps->objs, &p->ids[k]);
		if (o && ((o->flags & F_DROP) ||
			  (!(o->flags & F_REACH) && expired(ps, o, p->mtime))))
			return true;
	}
	return false;
}

static int cmp_weight(const void *a, const void *b)
{
	const struct pack *x = *(struct pack *const *)a;
	const struct pack *y = *(struct pack *const *)b;

	return x->n < y->n ? -1 : x->n > y->n;
}

/*
 * The geometric roll-up of one class (git repack.c:split_pack_geometry,
 * factor 2): packs by object count, ascending; the largest that form a
 * progression stay; the rest, with the new objects and every pack under
 * OBJECTS_LOOSE_MAX objects, become one, and any larger pack that one
 * would break the progression with joins it.
 */
static void geometry(struct pass *ps, int cls, size_t fresh)
{
	struct pack **v = xcalloc(ps->packs.n + 1, sizeof *v);
	size_t n = 0, i, split;
	unsigned long long total = fresh;

	for (i = 0; i < ps->packs.n; i++)
		if (ps->packs.v[i].cls == cls && !ps->packs.v[i].keep &&
		    !ps->packs.v[i].roll)
			v[n++] = &ps->packs.v[i];
	qsort(v, n, sizeof *v, cmp_weight);
	for (i = n ? n - 1 : 0; i > 0; i--)
		if (v[i]->n < 2 * v[i - 1]->n)
			break;
	split = i ? i + 1 : 0;
	/*
	 * Packs under OBJECTS_LOOSE_MAX objects never count as part of the
	 * progression (doc/purge.md 4.2: with packs of at least that many,
	 * a class of n objects keeps log2(n / 2000) + 1 packs): a pass
	 * adding a day's few hundred objects rewrites them, cheaply (reuse),
	 * rather than keeping one more pack.
	 */
	while (split < n && v[split]->n < OBJECTS_LOOSE_MAX)
		split++;
	for (i = 0; i < split; i++)
		total += v[i]->n;
	for (i = split; i < n && v[i]->n < 2 * total; i++) {
		total += v[i]->n;
		split++;
	}
	/* one pack alone rolled into nothing new is rewritten for nothing */
	if (!(split == 1 && !fresh))
		for (i = 0; i < split; i++)
			v[i]->roll = true;
	free(v);
}

/* Decide which packs roll, and which objects go into new packs. */
static void decide(struct pass *ps)
{
	size_t fresh[C_N] = { 0 };

	for (size_t i = 0; i < ps->packs.n; i++)
		if (!ps->packs.v[i].keep && must_roll(ps, &ps->packs.v[i]))
			ps->packs.v[i].roll = true;
	/* new material per class: loose ones and those of forced packs */
	for (size_t i = 0; i < ps->objs.cap; i++) {
		struct obj *o = &ps->objs.v[i];
		if (!o->used || !(o->flags & F_REACH) || (o->flags & F_DROP))
			continue;
		if ((o->flags & F_LOOSE) && o->pack < 0)
			fresh[o->cls]++;
		else if (o->pack >= 0 && ps->packs.v[o->pack].roll)
			fresh[o->cls]++;
	}
	for (int c = C_LIVE; c <= C_HISTORY; c++)
		geometry(ps, c, fresh[c]);
	/* what stays stays; the rest of what is reachable is written */
	for (size_t i = 0; i < ps->packs.n; i++) {
		struct pack *p = &ps->packs.v[i];
		if (p->roll)
			continue;
		for (size_t k = 0; k < p->n; k++)
			tab_find(&ps->objs, &p->ids[k])->flags |= F_STAY;
	}
	for (size_t i = 0; i < ps->objs.cap; i++) {
		struct obj *o = &ps->objs.v[i];
		if (!o->used || !(o->flags & F_REACH) || (o->flags & F_DROP) ||
		    (o->flags & F_STAY))
			continue;
		if ((o->flags & F_LOOSE) || o->pack >= 0)
			o->flags |= F_WRITE;
	}
}

/* --- writing -------------------------------------------------------------- */

/* A file of "<id>[ <path>]" lines for pack-objects: its descriptor. */
static int write_list(struct pass *ps, int cls, size_t *count)
{
	char *dir = xasprintf("%s/maildag", ps->repo);
	struct strbuf b = STRBUF_INIT;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	*count = 0;
	if (fd < 0) {
		log_error_errno("a temporary file in '%s'", dir);
		free(dir);
		return E_FAIL;
	}
	free(dir);
	for (size_t i = 0; i < ps->objs.cap; i++) {
		struct obj *o = &ps->objs.v[i];
		char hex[OID_HEXSZ + 1];
		if (!o->used || !(o->flags & F_WRITE) || o->cls != cls)
			continue;
		oid_tostr(hex, sizeof hex, &o->id);
		strbuf_addstr(&b, hex);
		if (o->path) {
			strbuf_addch(&b, ' ');
			strbuf_addstr(&b, o->path);
		}
		strbuf_addch(&b, '\n');
		(*count)++;
		if (b.len > (1 << 20)) {
			if (write_full(fd, b.buf, b.len) < 0)
				goto fail;
			strbuf_reset(&b);
		}
	}
	if (write_full(fd, b.buf, b.len) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		goto fail;
	strbuf_release(&b);
	return fd;
fail:
	log_error_errno("write the list of objects to pack");
	strbuf_release(&b);
	close(fd);
	return E_FAIL;
}

/* Pack the class's objects to write into a new pack, and mark it. */
static int write_class(struct pass *ps, int cls)
{
	char *base = xasprintf("%s/pack", ps->packdir);
	const char *argv[] = {
		"-c", "core.fsync=committed,derived-metadata",
		"-c", "pack.threads=1", "pack-objects", "-q",
		"--delta-base-offset",
		cls == C_HISTORY ? "--window=10" : "--window=0",
		cls == C_HISTORY ? "--depth=50" : "--depth=0", base, NULL
	};
	struct strbuf out = STRBUF_INIT;
	size_t count;
	int fd = write_list(ps, cls, &count), ret = E_FAIL;
	char *mark = NULL, *nl;

	if (fd < 0 || !count) {
		ret = fd < 0 ? E_FAIL : 0;
		goto done;
	}
	if (mkdir_p(ps->packdir, 0700) < 0 ||
	    run_git(ps->repo, argv, fd, &out) < 0)
		goto done;
	if ((nl = strchr(out.buf, '\n')))
		*nl = '\0';
	if (strlen(out.buf) != OID_HEXSZ) {
		log_error("git pack-objects said '%s', not a pack name", out.buf);
		goto done;
	}
	ps->written[cls] = xasprintf("pack-%s", out.buf);
	mark = xasprintf("%s/%s.maildag", ps->packdir, ps->written[cls]);
	if (write_file_atomic(mark, cls_name[cls], strlen(cls_name[cls]),
			      0600) < 0)
		goto done;
	ps->res->packs_written++;
	ps->res->objects_packed += count;
	log_debug("packed %zu %s objects into %s", count, cls_name[cls],
		  ps->written[cls]);
	ret = 0;
done:
	if (fd >= 0)
		close(fd);
	free(mark);
	free(base);
	strbuf_release(&out);
	return ret;
}

/*
 * Young unreachable objects of packs about to go: written out loose with
 * the pack's mtime, so their grace runs on.
 */
static int loosen(struct pass *ps)
{
	git_odb_backend *loose = NULL;
	git_repository *git = NULL;
	git_odb *odb = NULL;
	char *objdir = xasprintf("%s/objects", ps->repo);
	int ret = 0;

	for (size_t i = 0; i < ps->packs.n && ret == 0; i++) {
		struct pack *p = &ps->packs.v[i];
		if (!p->roll)
			continue;
		for (size_t k = 0; k < p->n && ret == 0; k++) {
			struct obj *o = tab_find(&ps->objs, &p->ids[k]);
			git_odb_object *obj = NULL;
			struct timeval tv[2] = { { p->mtime, 0 }, { p->mtime, 0 } };
			char hex[OID_HEXSZ + 1], *path;
			if ((o->flags & (F_REACH | F_LOOSE | F_STAY)) ||
			    expired(ps, o, p->mtime))
				continue;
			if (!git && (git_repository_open_bare(&git, ps->repo) < 0 ||
				     git_repository_odb(&odb, git) < 0 ||
				     git_odb_backend_loose(&loose, objdir, -1, 1,
							   0, 0) < 0)) {
				ret = log_error("open '%s': %s", ps->repo,
						git_error_last() ?
						git_error_last()->message : "?");
				break;
			}
			if (git_odb_read(&obj, odb, (const git_oid *)&o->id) < 0 ||
			    loose->write(loose, (const git_oid *)&o->id,
					 git_odb_object_data(obj),
					 git_odb_object_size(obj),
					 git_odb_object_type(obj)) < 0) {
				ret = log_error("write %s loose: %s", oid_hex(&o->id),
						git_error_last() ?
						git_error_last()->message : "?");
			}
			git_odb_object_free(obj);
			oid_tostr(hex, sizeof hex, &o->id);
			path = xasprintf("%s/%.2s/%s", objdir, hex, hex + 2);
			utimes(path, tv);
			free(path);
			o->flags |= F_LOOSE;
			o->mtime = p->mtime;	/* its grace runs on */
			ps->res->loosened++;
		}
	}
	if (loose)
		loose->free(loose);
	git_odb_free(odb);
	git_repository_free(git);
	free(objdir);
	return ret;
}

/* --- removing ------------------------------------------------------------- */

static bool is_written(const struct pass *ps, const char *name)
{
	for (int c = 0; c < C_N; c++)
		if (ps->written[c] && !strcmp(ps->written[c], name))
			return true;
	return false;
}

/* Remove the packs rolled up (unless touched since: a writer freshened). */
static void remove_packs(struct pass *ps)
{
	static const char *const ext[] = { ".idx", ".pack", ".rev", ".bitmap",
					   ".mtimes", ".maildag", NULL };

	for (size_t i = 0; i < ps->packs.n; i++) {
		struct pack *p = &ps->packs.v[i];
		struct stat st;
		char *path;
		if (!p->roll || is_written(ps, p->name))
			continue;
		path = xasprintf("%s/%s.pack", ps->packdir, p->name);
		if (stat(path, &st) == 0 && st.st_mtime != p->mtime) {
			log_info("%s was touched during the pass: kept", p->name);
			free(path);
			p->roll = false;
			continue;
		}
		free(path);
		for (size_t e = 0; ext[e]; e++) {
			path = xasprintf("%s/%s%s", ps->packdir, p->name, ext[e]);
			if (unlink(path) < 0 && errno != ENOENT)
				log_warn("remove '%s': %s", path, strerror(errno));
			free(path);
		}
		ps->res->packs_removed++;
	}
}

/*
 * Loose copies of what is now packed, expired unreachable ones and the
 * drop set's.  An expired one touched during the pass stays.
 */
static void remove_loose(struct pass *ps)
{
	for (size_t i = 0; i < ps->objs.cap; i++) {
		struct obj *o = &ps->objs.v[i];
		char hex[OID_HEXSZ + 1], *path;
		struct stat st;
		bool go;
		if (!o->used || !(o->flags & F_LOOSE))
			continue;
		oid_tostr(hex, sizeof hex, &o->id);
		path = xasprintf("%s/objects/%.2s/%s", ps->repo, hex, hex + 2);
		if (o->flags & F_DROP)
			go = true;
		else if (o->flags & F_REACH)	/* now in a pack */
			go = (o->flags & (F_WRITE | F_STAY)) != 0;
		else		/* unreachable: expired, and not freshened since */
			go = expired(ps, o, o->mtime) && lstat(path, &st) == 0 &&
			     st.st_mtime == o->mtime;
		if (go && unlink(path) == 0) {
			if (!(o->flags & F_REACH) || (o->flags & F_DROP)) {
				o->flags |= F_GONE;
				ps->res->pruned += !(o->flags & F_DROP);
			}
		}
		free(path);
	}
}

/*
 * What went with the removed packs: unreachable objects held nowhere
 * else (pruned), and the drop set's ids no longer stored (dropped).
 */
static void count_gone(struct pass *ps)
{
	for (size_t i = 0; i < ps->packs.n; i++) {
		struct pack *p = &ps->packs.v[i];
		if (!p->roll || is_written(ps, p->name))
			continue;
		for (size_t k = 0; k < p->n; k++) {
			struct obj *o = tab_find(&ps->objs, &p->ids[k]);
			if ((o->flags & F_GONE) || (o->flags & F_STAY) ||
			    ((o->flags & F_REACH) && !(o->flags & F_DROP)) ||
			    ((o->flags & F_LOOSE) && !(o->flags & F_DROP)))
				continue;
			o->flags |= F_GONE;
			ps->res->pruned += !(o->flags & F_DROP);
		}
	}
	for (size_t i = 0; i < ps->o->ndrop; i++) {
		struct obj *o = tab_find(&ps->objs, &ps->o->drop[i]);
		if (!o || !((o->flags & F_LOOSE) || o->pack >= 0))
			continue;
		if (o->flags & F_GONE)
			ps->res->dropped++;
		else
			ps->res->drop_left++;
	}
}

static int write_midx(struct pass *ps)
{
	const char *argv[] = { "-c", "core.fsync=committed,derived-metadata",
			       "multi-pack-index", "write", NULL };
	size_t packs = 0, loose = 0;
	unsigned long long bytes = 0;

	if (objects_count_now(ps->repo, &packs, &loose, &bytes) < 0)
		return E_FAIL;
	if (packs < 2)
		return 0;
	return run_git(ps->repo, argv, -1, NULL);
}

/* --- the pass ------------------------------------------------------------ */

static void be_idle(void)
{
	/* nice 10, and ionice -c3: IOPRIO_WHO_PROCESS, IOPRIO_CLASS_IDLE */
	if (setpriority(PRIO_PROCESS, 0, 10) < 0)
		log_debug("nice: %s", strerror(errno));
#ifdef SYS_ioprio_set
	if (syscall(SYS_ioprio_set, 1, 0, 3 << 13) < 0)
		log_debug("ioprio: %s", strerror(errno));
#endif
}

int objects_maint_lock(const char *repo_path, bool wait)
{
	char *path = xasprintf("%s/maildag/maintenance.lock", repo_path);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		log_error_errno("open '%s'", path);
		free(path);
		return E_FAIL;
	}
	free(path);
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		close(fd);
		return errno == EWOULDBLOCK ? E_TEMP : E_FAIL;
	}
	return fd;
}

static void count_after(struct pass *ps)
{
	struct objects_maint_result *r = ps->res;
	struct pass tmp = { .repo = ps->repo, .packdir = ps->packdir };

	objects_count_now(ps->repo, &r->packs_after, &r->loose_after,
			  &r->bytes_after);
	if (list_packs(&tmp) == 0)
		for (size_t i = 0; i < tmp.packs.n; i++) {
			int c = tmp.packs.v[i].cls;
			r->packs_live += c == C_LIVE;
			r->packs_expunged += c == C_EXPUNGED;
			r->packs_history += c == C_HISTORY;
			r->packs_other += c == C_OTHER;
		}
	for (size_t i = 0; i < tmp.packs.n; i++) {
		free(tmp.packs.v[i].name);
		free(tmp.packs.v[i].ids);
	}
	VEC_FREE(&tmp.packs);
}

static int run_pass(struct pass *ps)
{
	size_t packs = 0, loose = 0;
	bool changed;
	char *midx;

	objects_count_now(ps->repo, &packs, &loose, &ps->res->bytes_before);
	if (list_packs(ps) < 0 ||
	    objects_each_loose(ps->repo, note_loose, ps) < 0)
		return E_FAIL;
	ps->res->packs_before = ps->packs.n;
	note_packs(ps);
	if (mark_live(ps, "refs/heads/mail") < 0 ||
	    mark_live(ps, "refs/maildag/worktree") < 0 ||
	    mark_reachable(ps) < 0)
		return E_FAIL;
	journal_blobs(ps->repo, mark_journal_blob, ps);
	decide(ps);
	for (int c = C_LIVE; c <= C_HISTORY; c++)
		if (write_class(ps, c) < 0)
			return E_FAIL;
	if (loosen(ps) < 0)
		return E_FAIL;
	changed = false;
	for (size_t i = 0; i < ps->packs.n; i++)
		changed |= ps->packs.v[i].roll;
	midx = xasprintf("%s/multi-pack-index", ps->packdir);
	/* no reader may find a multi-pack-index naming a pack not there */
	if (changed && unlink(midx) < 0 && errno != ENOENT)
		log_warn("remove '%s': %s", midx, strerror(errno));
	remove_packs(ps);
	remove_loose(ps);
	count_gone(ps);
	if ((changed || ps->res->packs_written || !path_exists(midx)) &&
	    write_midx(ps) < 0)
		log_warn("could not write the multi-pack-index; "
			 "the next pass tries again");
	free(midx);
	return 0;
}

int objects_maintain(const char *repo_path,
		     const struct objects_maint_opts *opts, bool wait,
		     struct objects_maint_result *res)
{
	struct objects_maint_result local;
	struct pass ps = { .repo = repo_path, .o = opts };
	double t0 = clock_now();
	int lock, ret;

	if (!res)
		res = &local;
	memset(res, 0, sizeof *res);
#ifdef MAILDAG_TEST_CLOCK
	/*
	 * bench/lifecycle's baseline: the maintenance before this pass
	 * (loose objects packed above OBJECTS_LOOSE_MAX, packs never
	 * combined).  Only in --enable-test-clock builds.
	 */
	if (getenv("MAILDAG_TEST_MAINT_LOOSE_ONLY")) {
		size_t n = 0;
		res->start = (long long)clock_wall();
		res->ok = objects_count_loose(repo_path, &n) == 0 &&
			  (n <= OBJECTS_LOOSE_MAX ||
			   objects_pack_loose(repo_path, &res->objects_packed) == 0);
		objects_count_now(repo_path, &res->packs_after,
				  &res->loose_after, &res->bytes_after);
		return res->ok ? 0 : E_FAIL;
	}
#endif
	lock = opts->locked ? -1 : objects_maint_lock(repo_path, wait);
	if (lock < 0 && !opts->locked)
		return lock;
	if (opts->idle)
		be_idle();
	ps.res = res;
	ps.now = clock_files();
	res->start = (long long)clock_wall();
	ps.packdir = xasprintf("%s/objects/pack", repo_path);
	ret = run_pass(&ps);
	res->ok = ret == 0;
	count_after(&ps);
	res->duration_ms = (long long)((clock_now() - t0) * 1e3);
	if (objects_write_record(repo_path, res) < 0)
		ret = E_FAIL;
	if (res->ok)
		log_info("maintenance: %zu packs before, %zu after (%zu "
			 "written, %zu removed), %zu loose objects before, "
			 "%zu after, %zu objects packed, %zu unreachable "
			 "pruned, %zu of the drop set removed; %llu bytes "
			 "before, %llu after; %lld ms",
			 res->packs_before, res->packs_after,
			 res->packs_written, res->packs_removed,
			 res->loose_before, res->loose_after,
			 res->objects_packed, res->pruned, res->dropped,
			 res->bytes_before, res->bytes_after,
			 res->duration_ms);
	if (res->drop_left)
		log_warn("maintenance: %zu ids of the drop set are still "
			 "stored", res->drop_left);
	for (size_t i = 0; i < ps.packs.n; i++) {
		free(ps.packs.v[i].name);
		free(ps.packs.v[i].ids);
	}
	VEC_FREE(&ps.packs);
	for (int c = 0; c < C_N; c++)
		free(ps.written[c]);
	tab_free(&ps.objs);
	free(ps.packdir);
	if (lock >= 0)
		close(lock);
	return ret;
}

int objects_missing(const char *repo_path, const struct oid *tips,
		    size_t ntips, struct oid **out, size_t *n)
{
	const char *argv[] = { "rev-list", "--objects", "--stdin",
			       "--missing=print", NULL };
	struct strbuf o = STRBUF_INIT, in = STRBUF_INIT;
	size_t alloc = 0;
	char *p, *end;
	int fd, ret;

	*out = NULL;
	*n = 0;
	if (!ntips)
		return 0;
	/* the tips on its stdin: a damaged ref elsewhere stops nothing */
	for (size_t i = 0; i < ntips; i++)
		strbuf_addf(&in, "%s\n", oid_hex(&tips[i]));
	if ((fd = memfd_create("maildag-tips", MFD_CLOEXEC)) < 0 ||
	    write_full(fd, in.buf, in.len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		if (fd >= 0)
			close(fd);
		strbuf_release(&in);
		return log_error_errno("memfd");
	}
	strbuf_release(&in);
	ret = run_git(repo_path, argv, fd, &o);
	close(fd);
	if (ret < 0) {
		strbuf_release(&o);
		return E_FAIL;
	}
	for (p = o.buf, end = o.buf + o.len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		struct oid id;

		if (*p == '?' && oid_fromstr(&id, p + 1) == 0) {
			xgrow((void **)out, &alloc, *n + 1, sizeof **out);
			oid_cpy(&(*out)[(*n)++], &id);
		}
		p = nl ? nl + 1 : end;
	}
	strbuf_release(&o);
	return 0;
}
