/*
 * objects: loose objects counted, checked, packed (see objects.h).
 */
#include "autoconf.h"
#include "clock.h"
#include "hex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "fsutil.h"
#include "log.h"
#include "objects.h"
#include "objects_p.h"
#include "repo.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

/*
 * Call fn for every loose object (its id and path); stops at the first
 * non-zero return.
 */
int objects_each_loose(const char *repo_path,
		       int (*fn)(const struct oid *, const char *, void *),
		       void *data)
{
	struct strbuf dir = STRBUF_INIT, path = STRBUF_INIT;
	int r = 0;

	for (int i = 0; i < 256 && r == 0; i++) {
		DIR *d;
		struct dirent *de;

		strbuf_reset(&dir);
		strbuf_addf(&dir, "%s/objects/%02x", repo_path, i);
		if (!(d = opendir(dir.buf))) {
			if (errno == ENOENT)
				continue;
			r = log_error_errno("open '%s'", dir.buf);
			break;
		}
		while (r == 0 && (de = readdir(d))) {
			char hex[OID_HEXSZ + 1];
			struct oid id;
			if (strlen(de->d_name) != OID_HEXSZ - 2 ||
			    !hex_is_lower(de->d_name, OID_HEXSZ - 2))
				continue;	/* tmp_obj_* and the like */
			snprintf(hex, sizeof hex, "%02x%s", i, de->d_name);
			if (oid_fromstr(&id, hex) < 0)
				continue;
			strbuf_reset(&path);
			strbuf_addf(&path, "%s/%s", dir.buf, de->d_name);
			r = fn(&id, path.buf, data);
		}
		closedir(d);
	}
	strbuf_release(&dir);
	strbuf_release(&path);
	return r;
}

static int count_one(const struct oid *id, const char *path, void *data)
{
	(void)id;
	(void)path;
	(*(size_t *)data)++;
	return 0;
}

int objects_count_loose(const char *repo_path, size_t *n)
{
	*n = 0;
	return objects_each_loose(repo_path, count_one, n) < 0 ? E_FAIL : 0;
}

struct checking {
	struct repo *r;
	size_t checked, damaged;
};

static int check_one(const struct oid *id, const char *path, void *data)
{
	struct checking *c = data;
	int r = repo_object_check(c->r, id, NULL);

	(void)path;
	c->checked++;
	if (r == E_INVALID)
		c->damaged++;
	/* one that cannot be read now is looked at again next start */
	return r == E_FAIL ? E_FAIL : 0;
}

#define BOOT_ID "/proc/sys/kernel/random/boot_id"

/* The start of a small file as a string; "" when it cannot be read. */
static void read_small(char *buf, size_t size, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read_full(fd, buf, size - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

int objects_check_after_boot(struct repo *r, size_t *damaged)
{
	struct checking c = { r, 0, 0 };
	char boot[64], seen[64], *mark = repo_state_path(r, "boot-id");
	int ret = 0;

	*damaged = 0;
	read_small(boot, sizeof boot, BOOT_ID);
	read_small(seen, sizeof seen, mark);
	if (*boot && !strcmp(boot, seen))
		goto done;	/* checked since this machine started */
	if (objects_each_loose(r->path, check_one, &c) < 0) {
		ret = E_FAIL;
		goto done;
	}
	*damaged = c.damaged;
	log_info("checked %zu loose objects after a restart of the machine: "
		 "%zu damaged, removed", c.checked, c.damaged);
	if (*boot && write_file_atomic(mark, boot, strlen(boot), 0600) < 0)
		ret = E_FAIL;
done:
	free(mark);
	return ret;
}

struct packing {
	git_packbuilder *pb;
	struct oid *ids;
	size_t n, alloc;
};

static int insert_one(const struct oid *id, const char *path, void *data)
{
	struct packing *p = data;

	(void)path;
	if (git_packbuilder_insert(p->pb, GIT_OID(id), NULL) < 0)
		return log_error("pack %s: %s", oid_hex(id),
				 repo_git_error());
	xgrow((void **)&p->ids, &p->alloc, p->n + 1, sizeof *p->ids);
	oid_cpy(&p->ids[p->n++], id);
	return 0;
}

int objects_pack_loose(const char *repo_path, size_t *packed)
{
	struct repo *r = NULL;
	struct packing p = { NULL, NULL, 0, 0 };
	size_t removed = 0;
	int err;
	double t0 = clock_now();

	if (packed)
		*packed = 0;
	if ((err = repo_open(&r, repo_path, 0)) < 0)
		return err;
	if (git_packbuilder_new(&p.pb, r->git) < 0) {
		err = log_error("packbuilder: %s", repo_git_error());
		goto done;
	}
	git_packbuilder_set_threads(p.pb, 1);
	if ((err = objects_each_loose(repo_path, insert_one, &p)) < 0)
		goto done;
	if (!p.n)
		goto done;
	/* the indexer fsyncs the pack and its index (repo_global_init) */
	if (git_packbuilder_write(p.pb, NULL, 0, NULL, NULL) < 0) {
		err = log_error("write pack: %s", repo_git_error());
		goto done;
	}
	for (size_t i = 0; i < p.n; i++) {
		char hex[OID_HEXSZ + 1];
		char *path;
		oid_tostr(hex, sizeof hex, &p.ids[i]);
		path = xasprintf("%s/objects/%.2s/%s", repo_path, hex, hex + 2);
		if (unlink(path) == 0)
			removed++;
		free(path);
	}
	log_info("packed %zu loose objects into pack-%s in %.0f ms", p.n,
		 oid_hex(OID(git_packbuilder_hash(p.pb))),
		 (clock_now() - t0) * 1e3);
	if (packed)
		*packed = removed;
done:
	git_packbuilder_free(p.pb);
	free(p.ids);
	repo_free(r);
	return err;
}

/* Remove dir's files whose name starts with one of prefixes, if old. */
static size_t clean_dir(const char *dir, const char *const *prefixes,
			time_t max_age)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	time_t now = time(NULL);
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *path;
		struct stat st;
		bool match = false;
		for (size_t i = 0; prefixes[i] && !match; i++)
			match = !strncmp(de->d_name, prefixes[i],
					 strlen(prefixes[i]));
		if (!match)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    now - st.st_mtime > max_age && unlink(path) == 0)
			n++;
		free(path);
	}
	closedir(d);
	return n;
}

size_t objects_clean_tmp(const char *repo_path, long max_age)
{
	/* libgit2's (<prefix>_git2_XXXXXX) and the git CLI's (on ssh peers) */
	static const char *const pack_tmp[] = { "pack_git2_", "tmp_pack_",
						"tmp_idx_", "tmp_rev_", NULL };
	static const char *const obj_tmp[] = { "tmp_object_git2_", "tmp_obj_",
					       NULL };
	struct strbuf dir = STRBUF_INIT;
	size_t n;

	strbuf_addf(&dir, "%s/objects/pack", repo_path);
	n = clean_dir(dir.buf, pack_tmp, max_age);
	strbuf_reset(&dir);
	strbuf_addf(&dir, "%s/objects", repo_path);
	n += clean_dir(dir.buf, obj_tmp, max_age);
	for (int i = 0; i < 256; i++) {
		strbuf_reset(&dir);
		strbuf_addf(&dir, "%s/objects/%02x", repo_path, i);
		n += clean_dir(dir.buf, obj_tmp, max_age);
	}
	strbuf_release(&dir);
	if (n)
		log_info("removed %zu temporary object files left by killed "
			 "transfers or writers", n);
	return n;
}

/* --- counting, the record of the last pass, due or not ---------------------- */

static int count_file(const struct oid *id, const char *path, void *data)
{
	unsigned long long *v = data;
	struct stat st;

	(void)id;
	if (lstat(path, &st) == 0) {
		v[0]++;
		v[1] += (unsigned long long)st.st_size;
	}
	return 0;
}

/* The packs of repo_path and the bytes of objects/pack. */
static void count_packs(const char *repo_path, size_t *packs,
			unsigned long long *bytes)
{
	char *dir = xasprintf("%s/objects/pack", repo_path);
	DIR *d = opendir(dir);
	struct dirent *de;

	*packs = 0;
	*bytes = 0;
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct stat st;
		char *path = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			*bytes += (unsigned long long)st.st_size;
			if (!strncmp(de->d_name, "pack-", 5) && len > 10 &&
			    !strcmp(de->d_name + len - 5, ".pack"))
				(*packs)++;
		}
		free(path);
	}
	if (d)
		closedir(d);
	free(dir);
}

int objects_count_now(const char *repo_path, size_t *packs, size_t *loose,
		      unsigned long long *bytes)
{
	unsigned long long v[2] = { 0, 0 };

	count_packs(repo_path, packs, bytes);
	if (objects_each_loose(repo_path, count_file, v) < 0)
		return E_FAIL;
	*loose = (size_t)v[0];
	*bytes += v[1];
	return 0;
}

#define FIELDS(X) \
	X(start, "%lld", long long) X(duration_ms, "%lld", long long) \
	X(packs_before, "%zu", size_t) X(packs_after, "%zu", size_t) \
	X(packs_live, "%zu", size_t) X(packs_expunged, "%zu", size_t) \
	X(packs_history, "%zu", size_t) X(packs_other, "%zu", size_t) \
	X(loose_before, "%zu", size_t) X(loose_after, "%zu", size_t) \
	X(packs_written, "%zu", size_t) X(packs_removed, "%zu", size_t) \
	X(objects_packed, "%zu", size_t) X(pruned, "%zu", size_t) \
	X(loosened, "%zu", size_t) X(dropped, "%zu", size_t) \
	X(drop_left, "%zu", size_t) X(bytes_before, "%llu", unsigned long long) \
	X(bytes_after, "%llu", unsigned long long)

int objects_write_record(const char *repo_path,
			 const struct objects_maint_result *r)
{
	struct strbuf b = STRBUF_INIT;
	char *path = xasprintf("%s/maildag/maintenance", repo_path);
	int ret;

	strbuf_addf(&b, "ok %d\n", r->ok ? 1 : 0);
#define PUT(f, fmt, t) strbuf_addf(&b, #f " " fmt "\n", (t)r->f);
	FIELDS(PUT)
#undef PUT
	ret = write_file_atomic(path, b.buf, b.len, 0600);
	strbuf_release(&b);
	free(path);
	return ret;
}

int objects_maint_last(const char *repo_path,
		       struct objects_maint_result *r)
{
	char *path = xasprintf("%s/maildag/maintenance", repo_path);
	FILE *f = fopen(path, "re");
	char key[64];
	unsigned long long v;

	free(path);
	memset(r, 0, sizeof *r);
	if (!f)
		return errno == ENOENT ? E_NOTFOUND : E_FAIL;
	while (fscanf(f, "%63s %llu", key, &v) == 2) {
		if (!strcmp(key, "ok"))
			r->ok = v != 0;
#define GET(fl, fmt, t) else if (!strcmp(key, #fl)) r->fl = (t)v;
		FIELDS(GET)
#undef GET
	}
	fclose(f);
	return 0;
}

struct due {
	time_t since;
	time_t cutoff;
	size_t n;
	bool old;
};

static int due_one(const struct oid *id, const char *path, void *data)
{
	struct due *d = data;
	struct stat st;

	(void)id;
	d->n++;
	if (!d->old && lstat(path, &st) == 0 && st.st_mtime >= d->since &&
	    st.st_mtime <= d->cutoff)
		d->old = true;
	return 0;
}

bool objects_maint_due(const char *repo_path, long interval,
		       const char **why)
{
	struct objects_maint_result last;
	time_t now = clock_wall();
	struct due d = { 0, now - OBJECTS_LOOSE_AGE, 0, false };
	bool ran = objects_maint_last(repo_path, &last) == 0;
	const char *w = NULL;
	unsigned long long bytes;
	size_t packs;

	d.since = ran ? (time_t)last.start : 0;
	objects_each_loose(repo_path, due_one, &d);
	count_packs(repo_path, &packs, &bytes);
	if (!ran || now - (time_t)last.start >= interval)
		w = "the interval is over";
	else if (d.n > OBJECTS_LOOSE_MAX + last.loose_after)
		w = "loose objects piled up";
	else if (packs >= OBJECTS_PACKS_NEW + last.packs_after)
		/* every fetch leaves a pack: a burst of mail, many */
		w = "packs piled up";
	else if (d.old)
		w = "a loose object is an hour old";
	if (why)
		*why = w;
	return w != NULL;
}
