/*
 * worktree_apply: mail's changes written to the disk (see worktree.h,
 * and worktree.c for the invariants).
 *
 * diff(worktree, mail) becomes a list of operations, one a message:
 * write, rename, rewrite or remove, each checked against the name the
 * worktree gives (a file the client changed meanwhile is left to the
 * next commit).  New messages are staged in tmp/, made durable by one
 * syncfs(2) and renamed into place; the worktree tree then moves to what
 * the disk holds.  A bounded apply stops at its limit and keeps its plan
 * to go on with.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dovecot.h"
#include "folder.h"
#include "fsutil.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "strvec.h"
#include "vec.h"
#include "worktree.h"
#include "worktree_p.h"
#include "xalloc.h"

/* --- applying ----------------------------------------------------------- */

struct apply {
	struct worktree *wt;
	struct repo *r;
	struct mtcache mmt;		/* mail's mtime records */
	struct update_list wu;		/* on the worktree tree */
	struct mlist wm;		/* mtimes on the worktree tree */
	struct strvec touched;		/* directories to fsync */
	struct strmap touched_set;
	struct strvec staged;		/* new messages: tmp path, then dest */
	struct worktree_result *res;
	double flush;			/* seconds their syncfs took */
	bool imap;			/* format 2 */
	struct dvapply *dv;		/* format 2: Dovecot's side */
};

static void touch_dir(struct apply *ap, const char *dir)
{
	if (strmap_put(&ap->touched_set, dir, 0))
		strvec_push(&ap->touched, dir);
}

/* Make folder's cur/ new/ tmp/ (and marker) when missing. */
static int ensure_folder(struct worktree *wt, const char *folder)
{
	int ret = 0;

	for (size_t i = 0; i < 3 && ret == 0; i++) {
		char *d = wt_disk_dir(wt, folder, i < 2 ? subs[i] : "tmp");
		if (!is_dir(d))
			ret = mkdir_p(d, 0700);
		free(d);
	}
	if (ret == 0 && *folder) {
		char *mk = xasprintf("%s/%s/" MARKER, wt->maildir, folder);
		if (!path_exists(mk) && create_empty(mk, 0600) < 0)
			ret = log_error_errno("create '%s'", mk);
		free(mk);
	}
	return ret < 0 ? E_TEMP : 0;
}

static void set_mtime(const char *path, long long mtime)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { (time_t)mtime, 0 } };

	if (mtime != MTIME_NONE && utimensat(AT_FDCWD, path, ts, 0) < 0 &&
	    errno != ENOENT)
		log_warn_errno("set mtime of '%s'", path);
}

/*
 * Copy blob oid into fd.  Streamed when the object database can (loose
 * objects), so a big message does not sit in memory whole; else read at
 * once.  0, or < 0 logged.
 */
static int blob_to_fd(struct repo *r, const struct oid *oid, int fd,
		      const char *path)
{
	git_odb *odb = NULL;
	git_odb_stream *st = NULL;
	git_object_t type;
	git_blob *blob = NULL;
	size_t len;
	int ret = 0;

	if (git_repository_odb(&odb, r->git) == 0 &&
	    git_odb_open_rstream(&st, &len, &type, odb, GIT_OID(oid)) == 0 &&
	    type == GIT_OBJECT_BLOB) {
		char *buf = xmalloc(65536);
		ssize_t n;
		while ((n = git_odb_stream_read(st, buf, 65536)) > 0)
			if (write_full(fd, buf, (size_t)n) < 0) {
				ret = log_error_errno("write '%s'", path);
				break;
			}
		if (n < 0 && ret == 0)
			ret = log_error("read blob %s: %s", oid_hex(oid),
					repo_git_error());
		free(buf);
	} else if (git_blob_lookup(&blob, r->git, GIT_OID(oid)) < 0) {
		ret = log_error("read blob %s: %s", oid_hex(oid),
				repo_git_error());
	} else if (write_full(fd, git_blob_rawcontent(blob),
			     (size_t)git_blob_rawsize(blob)) < 0) {
		ret = log_error_errno("write '%s'", path);
	}
	git_blob_free(blob);
	git_odb_stream_free(st);
	git_odb_free(odb);
	return ret;
}

/*
 * Write blob oid, with mtime (MTIME_NONE: now), into a new file of
 * folder's tmp/ named after name's key: 0 with *tmp (the caller frees it)
 * and *fd open for more, or E_TEMP (logged, nothing left behind).
 */
static int tmp_message(char **tmp, int *fd, struct apply *ap,
		       const char *folder, const char *name, const struct oid *oid,
		       long long mtime)
{
	char *tmpdir;
	uint32_t rnd = 0;

	*tmp = NULL;
	*fd = -1;
	if (ensure_folder(ap->wt, folder) < 0)
		return E_TEMP;
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = (uint32_t)time(NULL);
	tmpdir = wt_disk_dir(ap->wt, folder, "tmp");
	*tmp = xasprintf("%s/%.*s.%ld.%08x.maildag", tmpdir,
			 (int)maildir_key_len(name), name, (long)getpid(), rnd);
	free(tmpdir);
	*fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd < 0) {
		log_error_errno("open '%s'", *tmp);
		goto fail;
	}
	if (blob_to_fd(ap->r, oid, *fd, *tmp) < 0) {
		close(*fd);
		unlink(*tmp);
		goto fail;
	}
	if (mtime != MTIME_NONE) {
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { (time_t)mtime, 0 } };
		futimens(*fd, ts);
	}
	return 0;
fail:
	*fd = -1;
	free(*tmp);
	*tmp = NULL;
	return E_TEMP;
}

/*
 * Write blob oid as the message folder/sub/name: into tmp/, fsync, then
 * renamed into place, so a reader never sees part of it.  over: the name
 * may exist and is replaced.  E_EXISTS when the name is taken.
 */
static int write_message(struct apply *ap, const char *folder,
			 const char *sub, const char *name, const struct oid *oid,
			 long long mtime, bool over)
{
	char *dir = wt_disk_dir(ap->wt, folder, sub);
	char *tmp = NULL, *dest = xasprintf("%s/%s", dir, name);
	int fd = -1, ret = E_TEMP;

	if (tmp_message(&tmp, &fd, ap, folder, name, oid, mtime) < 0)
		goto done;
	if (fsync(fd) < 0) {
		log_error_errno("fsync '%s'", tmp);
		goto fail;
	}
	close(fd);
	fd = -1;
	if ((over ? rename(tmp, dest) : rename_noreplace(tmp, dest)) < 0) {
		ret = errno == EEXIST ? E_EXISTS :
		      log_error_errno("rename '%s'", tmp);
		if (ret != E_EXISTS)
			ret = E_TEMP;
		goto fail;
	}
	touch_dir(ap, dir);
	ret = 0;
	goto done;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
done:
	free(tmp);
	free(dest);
	free(dir);
	return ret;
}

/*
 * A new message for a slice: written into tmp/ without its own fsync and
 * staged; stage_flush() makes every staged file durable with one
 * syncfs(2) and only then renames them into place, so a reader still
 * never sees part of one, at one flush per slice instead of one per
 * message.
 */
static int stage_message(struct apply *ap, const char *folder, const char *sub,
			 const char *name, const struct oid *oid, long long mtime)
{
	char *dir, *tmp;
	int fd;

	if (tmp_message(&tmp, &fd, ap, folder, name, oid, mtime) < 0)
		return E_TEMP;
	close(fd);
	strvec_push(&ap->staged, tmp);
	free(tmp);
	dir = wt_disk_dir(ap->wt, folder, sub);
	tmp = xasprintf("%s/%s", dir, name);
	strvec_push(&ap->staged, tmp);
	free(tmp);
	free(dir);
	return 0;
}

/* Make the staged messages durable, then rename them into place. */
static int stage_flush(struct apply *ap)
{
	double t0 = clock_now();
	int ret = 0;

	if (ap->staged.n && syncfs_path(ap->wt->maildir) < 0)
		ret = E_TEMP;
	ap->flush += clock_now() - t0;
	for (size_t i = 0; i + 1 < ap->staged.n; i += 2) {
		const char *tmp = ap->staged.v[i], *dest = ap->staged.v[i + 1];
		char *dir;
		if (ret < 0 || rename_noreplace(tmp, dest) < 0) {
			/* EEXIST: a crashed apply or the client put it there */
			if (ret == 0 && errno != EEXIST)
				ret = log_error_errno("rename '%s'", tmp);
			unlink(tmp);
			continue;
		}
		dir = xstrndup(dest, (size_t)(strrchr(dest, '/') - dest));
		touch_dir(ap, dir);
		free(dir);
	}
	strvec_clear(&ap->staged);
	return ret < 0 ? E_TEMP : 0;
}

/*
 * A key with other bytes under another name: the new bytes are written
 * under the new name (tmp/, fsync, rename), then the old file goes.  A
 * rename would leave the old bytes under the new name, which no rescan
 * notices (same mtime).  1 done (or found done by an apply cut short),
 * 0 the disk no longer holds what the worktree names, < 0 failed.
 */
static int apply_rewrite(struct apply *ap, const struct ent *t,
			 const char *fdir, const char *fp, const char *tp,
			 long long mtime)
{
	struct oid now;
	int r;

	if (!path_exists(fp))
		/* gone: done before a crash, or the client took it */
		return path_exists(tp) && repo_blob_hash_file(&now, tp) == 0 &&
		       oid_equal(&now, &t->oid) ? 1 : 0;
	r = write_message(ap, t->folder, t->sub, wt_ent_disk(t), &t->oid,
			  mtime, false);
	if (r == E_EXISTS) {
		/* written before a crash, or a name the client made */
		if (repo_blob_hash_file(&now, tp) < 0 ||
		    !oid_equal(&now, &t->oid))
			return 0;
	} else if (r < 0) {
		return E_TEMP;
	}
	if (unlink(fp) < 0 && errno != ENOENT)
		return log_error_errno("unlink '%s'", fp);
	touch_dir(ap, fdir);
	return 1;
}

/*
 * Apply one message's change.  1 applied (or found already done), 0
 * skipped because the disk no longer holds what the worktree says, < 0
 * failed.
 */
static int apply_op(struct apply *ap, const struct op *op)
{
	struct worktree *wt = ap->wt;
	const struct ent *f = op->from, *t = op->to;
	char *fd_ = f ? wt_disk_dir(wt, f->folder, f->sub) : NULL;
	char *td = t ? wt_disk_dir(wt, t->folder, t->sub) : NULL;
	char *fp = f ? xasprintf("%s/%s", fd_, wt_ent_disk(f)) : NULL;
	char *tp = t ? xasprintf("%s/%s", td, wt_ent_disk(t)) : NULL;
	long long mtime = t ? wt_mtcache_get(&ap->mmt, ap->r, t->name, t->klen)
			    : MTIME_NONE;
	int ret;

	if ((f && f->hold) || (t && t->hold)) {
		/* format 2: Dovecot changed the folder since; commit first */
		ret = 0;
	} else if (!f) {
		/* new: written unless a crashed apply already did */
		ret = path_exists(tp) ? 1 :
		      stage_message(ap, t->folder, t->sub, wt_ent_disk(t),
				    &t->oid, mtime);
		if (ret == E_EXISTS)
			ret = 1;
		else if (ret == 0)
			ret = 1;
	} else if (!t) {
		if (unlink(fp) == 0) {
			touch_dir(ap, fd_);
			ret = 1;
		} else {
			ret = errno == ENOENT ? 0 :
			      log_error_errno("unlink '%s'", fp);
		}
	} else if (!strcmp(fp, tp) && oid_equal(&f->oid, &t->oid)) {
		/* format 2: the record alone changed (a UID), done already */
		ret = path_exists(fp) ? 1 : 0;
	} else if (!strcmp(fp, tp)) {
		/* same name, other bytes: replace it, if it is still there */
		ret = !path_exists(fp) ? 0 :
		      write_message(ap, t->folder, t->sub, wt_ent_disk(t),
				    &t->oid, mtime, true) == 0 ? 1 : E_TEMP;
	} else if (ensure_folder(wt, t->folder) < 0) {
		ret = E_TEMP;
	} else if (!oid_equal(&f->oid, &t->oid)) {
		ret = apply_rewrite(ap, t, fd_, fp, tp, mtime);
	} else if (rename_noreplace(fp, tp) == 0) {
		touch_dir(ap, fd_);
		touch_dir(ap, td);
		if (mtime != MTIME_NONE)
			set_mtime(tp, mtime);
		ret = 1;
	} else if (errno == ENOENT) {
		ret = path_exists(tp) && !path_exists(fp) ? 1 : 0;
	} else if (errno == EEXIST) {
		ret = 0;
	} else {
		ret = log_error_errno("rename '%s'", fp);
	}
	if (ret < 0)
		ret = E_TEMP;
	free(fp);
	free(tp);
	free(fd_);
	free(td);
	return ret;
}

/* Record an applied change in the worktree's new tree. */
static void applied(struct apply *ap, const struct op *op)
{
	const struct ent *any = op->to ? op->to : op->from;

	if (op->from && !wt_same_place(op->from, op->to))
		wt_add_path(&ap->wu, op->from->folder, op->from->sub,
			    op->from->name, NULL);
	if (op->to)
		wt_add_path(&ap->wu, op->to->folder, op->to->sub, op->to->name,
			    &op->to->oid);
	wt_mlist_add(&ap->wm, any->name, any->klen,
		     op->to ? wt_mtcache_get(&ap->mmt, ap->r, op->to->name,
				       op->to->klen) : MTIME_NONE);
	wt_counts_add(&ap->res->counts, op->from, op->to);
	if (ap->dv)
		wt_dv_applied(ap->dv, op);
}

static void skipped(struct apply *ap, const struct op *op)
{
	/* the client's version may have any name: look at whole folders */
	if (op->from)
		worktree_dirty_folder(ap->wt, op->from->folder);
	if (op->to)
		worktree_dirty_folder(ap->wt, op->to->folder);
	ap->res->skipped++;
	if ((op->from && op->from->hold) || (op->to && op->to->hold))
		log_info("left '%s' until Dovecot's own changes to its "
			 "folder are committed",
			 op->from ? wt_ent_disk(op->from) : wt_ent_disk(op->to));
	else
		log_info("left '%s' as the mail client changed it",
			 op->from ? wt_ent_disk(op->from) :
				    wt_ent_disk(op->to));
}

/*
 * Remove an empty folder from disk: E_EXISTS when it holds messages.
 * Dovecot's files go under its uidlist lock (E_TEMP while a session
 * holds it: one writing the folder's dovecot-uidlist would find its
 * lock and its directory gone, and log errors), the lock last.
 */
static int remove_folder(struct worktree *wt, const char *folder)
{
	char *dir = wt_disk_dir(wt, folder, NULL);
	struct dovecot_lock lock = DOVECOT_LOCK_INIT;
	struct dirent *de;
	DIR *d;
	int ret = 0;

	if (*folder && is_dir(dir) &&
	    (ret = dovecot_lock(&lock, dir, DV_LOCK_MS)) < 0) {
		if (ret == E_TEMP)
			log_info("'%s' is locked by Dovecot; removing it later",
				 dir);
		free(dir);
		return E_TEMP;
	}

	for (size_t i = 0; i < 2; i++) {
		char *s = wt_disk_dir(wt, folder, subs[i]);
		if (rmdir(s) < 0 && errno != ENOENT)
			ret = errno == ENOTEMPTY || errno == EEXIST ? E_EXISTS :
			      log_error_errno("rmdir '%s'", s);
		free(s);
	}
	if (ret < 0) {
		dovecot_unlock(&lock);
		goto done;
	}
	/* then what only a server kept there: tmp/, indexes, the marker */
	{
		char *t = wt_disk_dir(wt, folder, "tmp");
		rm_rf(t);
		free(t);
	}
	if ((d = opendir(dir))) {
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
			    strcmp(de->d_name, DOVECOT_UIDLIST ".lock") &&
			    (worktree_ignored_name(de->d_name) ||
			     !strcmp(de->d_name, MARKER)))
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	dovecot_unlock(&lock);
	if (rmdir(dir) < 0 && errno != ENOENT)
		ret = errno == ENOTEMPTY || errno == EEXIST ? E_EXISTS :
		      log_error_errno("rmdir '%s'", dir);
	else
		fsync_parent(dir);
done:
	if (ret == E_EXISTS)
		log_info("folder %s is not empty on disk; kept",
			 folder_display(folder));
	free(dir);
	return ret == E_EXISTS ? E_EXISTS : ret < 0 ? E_TEMP : 0;
}

/* mtime records changed in mail for messages that did not move. */
static int apply_mtimes(struct apply *ap, const struct dchv *d,
			const struct oid *wtree, const struct oid *mtree,
			const struct op *ops, size_t nops)
{
	struct mtcache wmt;
	int ret = 0;

	wt_mtcache_init(&wmt, wtree);
	for (size_t i = 0; i < d->n && ret == 0; i++) {
		const char *p = d->v[i].path;
		unsigned s;
		struct strvec keys = { 0 };

		if (strncmp(p, MTIMES_DIR "/", sizeof MTIMES_DIR) ||
		    sscanf(p + sizeof MTIMES_DIR, "%2x", &s) != 1 || s > 255)
			continue;
		/* both sides of the shard (mail's may be read already) */
		if (mtimes_read_shard(&wmt.m[s], ap->r, wtree, s) < 0 ||
		    (!ap->mmt.loaded[s] &&
		     mtimes_read_shard(&ap->mmt.m[s], ap->r, mtree, s) < 0)) {
			ret = E_TEMP;
			break;
		}
		wmt.loaded[s] = ap->mmt.loaded[s] = true;
		for (size_t j = 0; j < wmt.m[s].n; j++)
			strvec_push(&keys, wmt.m[s].v[j].key);
		for (size_t j = 0; j < ap->mmt.m[s].n; j++)
			strvec_push(&keys, ap->mmt.m[s].v[j].key);
		for (size_t j = 0; j < keys.n && ret == 0; j++) {
			const char *k = keys.v[j];
			long long want = mtimes_get(&ap->mmt.m[s], k);
			struct hitv h = { 0 };
			bool moved = false;

			if (mtimes_get(&wmt.m[s], k) == want)
				continue;
			for (size_t o = 0; o < nops && !moved; o++) {
				const struct ent *e = ops[o].to ? ops[o].to
								: ops[o].from;
				moved = !wt_key_cmp(e, k, strlen(k));
			}
			if (moved)
				continue;
			if (wt_tree_find_key(&h, ap->r, mtree, k, strlen(k)) < 0) {
				ret = E_TEMP;
				break;
			}
			if (h.n) {
				char *dir = wt_disk_dir(ap->wt, h.v[0].folder,
							h.v[0].sub);
				char *fp = xasprintf("%s/%s", dir, h.v[0].name);
				struct stat st;
				int sr = stat(fp, &st);
				if (sr < 0 && ap->imap) {
					/* format 2: the name carries letters */
					char *dn = wt_dv_find_disk(ap->wt,
						h.v[0].folder, h.v[0].sub,
						h.v[0].name);
					if (dn) {
						free(fp);
						fp = xasprintf("%s/%s", dir, dn);
						sr = stat(fp, &st);
						free(dn);
					}
				}
				if (sr == 0) {
					set_mtime(fp, want);
					wt_mlist_add(&ap->wm, k, strlen(k), want);
					ap->res->counts.mtimes++;
				}
				free(fp);
				free(dir);
			}
			wt_hitv_clear(&h);
		}
		strvec_clear(&keys);
	}
	wt_mtcache_release(&wmt);
	return ret;
}

/*
 * Apply ops in order, at most limit of them (0: all) and, with a slice
 * set, until deadline (CLOCK_MONOTONIC seconds); res->more when some are
 * left.
 */
static int apply_ops(struct apply *ap, struct op *ops, size_t nops,
		     size_t limit, double deadline, size_t *next)
{
	size_t done = 0;

	*next = 0;
	for (size_t i = 0; i < nops; i++) {
		int r;
		if ((limit && done >= limit) ||
		    (deadline && done && clock_now() >= deadline)) {
			ap->res->more = true;
			break;
		}
		*next = i + 1;
		r = apply_op(ap, &ops[i]);
		if (r < 0) {
			stage_flush(ap);
			return r;
		}
		if (r)
			applied(ap, &ops[i]);
		else
			skipped(ap, &ops[i]);
		done++;
	}
	return stage_flush(ap);
}

/* Pair mail's additions and removals by key into operations. */
static struct op *ops_of(struct entv *olds, struct entv *news, size_t *n)
{
	struct op *ops = NULL;
	size_t no = 0, ao = 0, i = 0, j = 0;

	qsort(olds->v, olds->n, sizeof *olds->v, wt_ent_cmp);
	qsort(news->v, news->n, sizeof *news->v, wt_ent_cmp);
	while (i < olds->n || j < news->n) {
		struct ent *a = i < olds->n ? &olds->v[i] : NULL;
		struct ent *b = j < news->n ? &news->v[j] : NULL;
		int c = !a ? 1 : !b ? -1 : wt_key_cmp(a, b->name, b->klen);

		xgrow((void **)&ops, &ao, no + 1, sizeof *ops);
		ops[no].from = c <= 0 ? a : NULL;
		ops[no].to = c >= 0 ? b : NULL;
		no++;
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	*n = no;
	return ops;
}

/*
 * Every folder of mail's tree gets its cur/ new/ tmp/, but for one the
 * worktree has and the disk has not: a client deleted or renamed it and
 * that is not committed yet (a removal held back for a second look, say).
 * Made again here, it would undo the client's change and, in format 2,
 * come back empty under a new UIDVALIDITY of Dovecot's while the tree
 * still holds a message there.  Its removal is committed first.
 */
static int ensure_all_folders(struct worktree *wt, const struct oid *wtree,
			      const struct oid *mtree)
{
	struct strvec folders = { 0 }, known = { 0 };
	int ret = wt_tree_folders(&folders, wt->r, mtree);

	if (ret == 0)
		ret = wt_tree_folders(&known, wt->r, wtree);
	for (size_t i = 0; i < folders.n && ret == 0; i++) {
		const char *f = folders.v[i];
		if (!folder_dir_valid(f))
			continue;
		if (*f && strvec_has(&known, f) && !wt_folder_on_disk(wt, f)) {
			log_info("folder %s is gone from disk; committing first",
				 folder_display(f));
			worktree_dirty_folder(wt, f);
			continue;
		}
		ret = ensure_folder(wt, f);
	}
	strvec_clear(&folders);
	strvec_clear(&known);
	return ret;
}

/*
 * What a slice of an apply leaves for the next: the diff, its operations
 * and how far they went, valid while the worktree is the commit that
 * slice wrote and mail has not moved.  Then the next slice needs no
 * second diff, so a slice costs what it applies, not what is pending.
 */
struct plan {
	struct oid w, m;
	struct dchv d;
	struct entv olds, news;
	struct strvec mk_rm;
	struct op *ops;
	size_t nops, next;
	const struct dchange *subsc;
	bool imap;		/* format 2: Dovecot's files too */
};

void wt_plan_free(struct plan *pl)
{
	if (!pl)
		return;
	wt_dchv_clear(&pl->d);
	wt_entv_clear(&pl->olds);
	wt_entv_clear(&pl->news);
	strvec_clear(&pl->mk_rm);
	free(pl->ops);
	free(pl);
}

/*
 * Plan an apply from diff(wtree, mtree): the messages to take away
 * (olds) and to put (news), as operations in order; the folders whose
 * marker comes (mk_add) or goes; the subscriptions file; and in pl->d
 * only what is not a message (markers, subscriptions, mtimes records).
 */
static int plan_make(struct worktree *wt, struct plan *pl,
		     struct strvec *mk_add, const struct oid *wtree,
		     const struct oid *mtree)
{
	struct strbuf prefix = STRBUF_INIT;
	struct dchv *d = &pl->d;
	size_t k = 0;
	int ret;

	ret = wt_diff_walk(wt->r, wtree, mtree, &prefix, d);
	strbuf_release(&prefix);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < d->n; i++) {
		const struct dchange *c = &d->v[i];
		char *folder, *name;
		const char *sub;
		size_t plen = strlen(c->path);

		if (wt_parse_msg_path(c->path, &folder, &sub, &name) == 0) {
			if (c->has_old) {
				struct ent *e = wt_entv_push(&pl->olds, folder,
							     sub, name);
				oid_cpy(&e->oid, &c->old);
			}
			if (c->has_new) {
				struct ent *e = wt_entv_push(&pl->news, folder,
							     sub, name);
				oid_cpy(&e->oid, &c->new);
			}
			free(folder);
			free(name);
		} else if (plen > strlen("/" MARKER) &&
			   !strcmp(c->path + plen - strlen("/" MARKER), "/" MARKER)) {
			char *f = xstrndup(c->path, plen - strlen("/" MARKER));
			if (folder_dir_valid(f) && *f && !strchr(f, '/'))
				strvec_push(c->has_new ? mk_add : &pl->mk_rm, f);
			free(f);
		}
	}
	pl->imap = wt_dv_tree_is_imap(wt->r, mtree);
	if (pl->imap && (ret = wt_dv_plan_records(wt, d, wtree, mtree,
						  &pl->olds, &pl->news)) < 0)
		return ret;
	pl->ops = ops_of(&pl->olds, &pl->news, &pl->nops);
	if (pl->imap)
		wt_dv_order_ops(wt, mtree, pl->ops, pl->nops);
	/* the message paths are in olds and news now: keep the rest only */
	for (size_t i = 0; i < d->n; i++) {
		char *folder, *name;
		const char *sub;
		if (wt_parse_msg_path(d->v[i].path, &folder, &sub, &name) == 0) {
			free(folder);
			free(name);
			free(d->v[i].path);
			continue;
		}
		d->v[k++] = d->v[i];
	}
	d->n = k;
	pl->subsc = NULL;
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->v[i].path, SUBSCRIPTIONS))
			pl->subsc = &d->v[i];
	return 0;
}

/* Folders first, so moves and new messages have somewhere to go. */
static int make_folders(struct apply *ap, const struct strvec *mk_add,
			const struct oid *wtree, const struct oid *mtree)
{
	struct worktree *wt = ap->wt;
	struct oid empty;
	int ret;

	if (!wt->ensured) {
		if ((ret = ensure_all_folders(wt, wtree, mtree)) < 0)
			return ret;
		wt->ensured = true;
	}
	if (mk_add->n && (ret = repo_blob_from_buffer(&empty, wt->r, "", 0)) < 0)
		return ret;
	for (size_t i = 0; i < mk_add->n; i++) {
		struct strbuf p = STRBUF_INIT;
		/* there already (left out by folder_limit): look at it */
		if (wt_folder_on_disk(wt, mk_add->v[i]))
			worktree_dirty_folder(wt, mk_add->v[i]);
		if ((ap->imap &&
		     (ret = wt_dv_make_folder(wt, mk_add->v[i])) < 0) ||
		    (ret = ensure_folder(wt, mk_add->v[i])) < 0)
			return ret;
		strbuf_addf(&p, "%s/" MARKER, mk_add->v[i]);
		update_list_add(&ap->wu, p.buf, &empty);
		strbuf_release(&p);
		ap->res->counts.folders_added++;
	}
	return 0;
}

/* The folders whose marker went, once mail holds no message there. */
static int remove_folders(struct apply *ap, const struct strvec *mk_rm,
			  const struct oid *mtree)
{
	struct worktree *wt = ap->wt;
	int ret;

	for (size_t i = 0; i < mk_rm->n; i++) {
		struct strbuf p = STRBUF_INIT;
		git_tree *t;
		/* a folder mail still has messages in stays */
		if ((ret = wt_subtree(&t, wt->r, mtree, mk_rm->v[i])) < 0)
			return ret;
		if (t) {
			git_tree_free(t);
			continue;
		}
		ret = remove_folder(wt, mk_rm->v[i]);
		/*
		 * Not now: it holds messages, or a Dovecot session its
		 * uidlist lock.  The folder stays in the worktree and is
		 * taken away by a later apply; this one records what it did,
		 * its numbering first (failing here lost that: the uidlist
		 * lines it had written went unrecorded; doc/stress-progress.md,
		 * items 12, 14)
		 */
		if (ret == E_EXISTS || ret == E_TEMP) {
			worktree_dirty_folder(wt, mk_rm->v[i]);
			ap->res->skipped++;
			continue;
		}
		if (ret < 0)
			return ret;
		strbuf_addf(&p, "%s/" MARKER, mk_rm->v[i]);
		update_list_add(&ap->wu, p.buf, NULL);
		strbuf_release(&p);
		ap->res->counts.folders_removed++;
	}
	return 0;
}

/* The subscriptions file as mail has it (subsc: its change). */
static int write_subscriptions(struct apply *ap, const struct dchange *subsc)
{
	struct worktree *wt = ap->wt;
	char *sp = xasprintf("%s/" SUBSCRIPTIONS, wt->maildir);
	git_blob *b = NULL;
	int ret;

	if (!subsc->has_new)
		ret = unlink(sp) < 0 && errno != ENOENT ?
		      log_error_errno("unlink '%s'", sp) : 0;
	else if (git_blob_lookup(&b, wt->r->git, GIT_OID(&subsc->new)) < 0)
		ret = log_error("read blob: %s", repo_git_error());
	else
		ret = write_file_atomic(sp, git_blob_rawcontent(b),
			(size_t)git_blob_rawsize(b), 0600);
	git_blob_free(b);
	free(sp);
	if (ret < 0)
		return E_TEMP;
	update_list_add(&ap->wu, SUBSCRIPTIONS,
			subsc->has_new ? &subsc->new : NULL);
	ap->res->counts.other++;
	return 0;
}

/*
 * What the worktree may now say: only what the disk surely holds.  *w2
 * is the worktree commit after the apply (m when all of mail is on
 * disk), and refs/maildag/worktree moves there from w.
 */
static int record_applied(struct apply *ap, struct oid *w2,
			  const struct oid *w, const struct oid *wtree,
			  const struct oid *m)
{
	struct repo_batch batch = REPO_BATCH_INIT;
	struct worktree *wt = ap->wt;
	struct oid wtree2;
	int ret = 0;

	for (size_t i = 0; i < ap->touched.n; i++)
		/* a folder removed since is synced in its parent */
		if (is_dir(ap->touched.v[i]) && fsync_dir(ap->touched.v[i]) < 0)
			return E_TEMP;
	/* the worktree's objects are synced once, before the ref moves */
	repo_batch_begin(&batch, wt->r);
	if (!ap->res->skipped && !ap->res->more) {
		oid_cpy(w2, m);
	} else if (mtimes_update(&ap->wu, wt->r, wtree, ap->wm.v,
				 ap->wm.n) < 0 ||
		   repo_tree_update(&wtree2, wt->r, wtree, ap->wu.v,
				    ap->wu.n) < 0) {
		ret = E_TEMP;
	} else if (oid_equal(&wtree2, wtree)) {
		oid_cpy(w2, w);
	} else if (repo_commit(w2, wt->r, &wtree2, w, 1,
			       "worktree: applied in part\n", -1,
			       "maildag-syncd", wt->email) < 0) {
		ret = E_TEMP;
	}
	if (ret == 0 &&
	    repo_batch_end(&batch, !oid_equal(w2, w) && !oid_equal(w2, m)) < 0)
		ret = E_TEMP;
	repo_batch_end(&batch, false);
	if (ret == 0 && !oid_equal(w2, w))
		ret = repo_ref_cas(wt->r, REF_WORKTREE, w2, w,
				   "maildag-syncd: applied");
	return ret;
}

/*
 * Format 2: Dovecot's lock on every folder the slice (the plan's ops
 * from first, at most limit) touches, and its files written, until the
 * files are in place (no deadline: what the uidlist got must be on disk
 * when the lock goes).
 */
static int dv_begin(struct dvapply **dv, struct worktree *wt,
		    struct plan *p, size_t first, size_t limit,
		    const struct oid *wtree, const struct oid *mtree)
{
	size_t left = p->nops - first;

	return wt_dv_apply_begin(dv, wt, wtree, mtree, p->ops + first,
				 limit && left > limit ? limit : left, &p->d,
				 !limit || left <= limit);
}

/* A slice that left some of the plan: keep the rest for the next. */
static void plan_keep(struct worktree *wt, struct plan *p,
		      const struct oid *w2, const struct oid *m, size_t next)
{
	struct plan *pl = xcalloc(1, sizeof *pl);

	*pl = *p;
	oid_cpy(&pl->w, w2);
	oid_cpy(&pl->m, m);
	pl->next = next;
	wt->plan = pl;
	memset(p, 0, sizeof *p);
}

int worktree_apply(struct worktree *wt, size_t limit,
		   struct worktree_result *res)
{
	struct plan *kept = wt->plan, p = { 0 };
	size_t first = 0, next = 0;
	struct worktree_result dummy;
	struct strvec mk_add = { 0 };
	struct apply ap;
	struct dvapply *dv = NULL;
	struct oid w, wtree, m, mtree, w2;
	double t0 = clock_now(), t1 = t0, t2 = t0, t3 = t0, deadline = 0;
	int ret;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof *res);
	memset(&ap, 0, sizeof ap);
	ap.wt = wt;
	ap.r = wt->r;
	ap.res = res;
	wt_mtcache_init(&ap.mmt, &mtree);
	if ((ret = wt_read_refs(wt, &w, &wtree, &m, &mtree)) < 0)
		goto done;
	oid_cpy(&res->mail, &m);
	if (oid_equal(&wtree, &mtree)) {
		if (!oid_equal(&w, &m))
			ret = repo_ref_cas(wt->r, REF_WORKTREE, &m, &w,
					   "maildag-syncd: same tree");
		goto done;
	}
	wt->plan = NULL;
	if (kept && oid_equal(&kept->w, &w) && oid_equal(&kept->m, &m)) {
		/* the next slice: the first one made the folders */
		p = *kept;
		first = kept->next;
		free(kept);
	} else {
		wt_plan_free(kept);
		if ((ret = plan_make(wt, &p, &mk_add, &wtree, &mtree)) < 0)
			goto done;
		ap.imap = p.imap;
		if ((ret = make_folders(&ap, &mk_add, &wtree, &mtree)) < 0)
			goto done;
	}
	t1 = clock_now();
	ap.imap = p.imap;
	/* the files, then recording them: the two within the slice */
	if (wt->slice && !p.imap)
		deadline = t0 + (wt->apply_tail < wt->slice * 0.75 ?
				 wt->slice - wt->apply_tail : wt->slice / 4);
	if (p.imap && (ret = dv_begin(&dv, wt, &p, first, limit, &wtree,
				      &mtree)) < 0)
		goto done;
	ap.dv = dv;
	if ((ret = apply_ops(&ap, p.ops + first, p.nops - first, limit,
			     deadline, &next)) < 0)
		goto done;
	t2 = clock_now();
	if (!res->more &&
	    ((ret = remove_folders(&ap, &p.mk_rm, &mtree)) < 0 ||
	     (p.subsc && (ret = write_subscriptions(&ap, p.subsc)) < 0) ||
	     (ret = apply_mtimes(&ap, &p.d, &wtree, &mtree, p.ops,
				 p.nops)) < 0))
		goto done;

	t3 = clock_now();
	/* format 2, a part applied: the worktree's records of that part */
	if (dv && (res->skipped || res->more) &&
	    (ret = wt_dv_applied_updates(dv, &ap.wu)) < 0)
		goto done;
	if ((ret = record_applied(&ap, &w2, &w, &wtree, &m)) < 0)
		goto done;
	ret = wt_dv_apply_end(dv, &ap.wu, &w2, &m,
			      !res->skipped && !res->more);
	dv = NULL;
	if (ret < 0)
		goto done;
	log_debug("apply: plan %.0f ms, files %.0f ms (syncfs %.0f ms), "
		  "rest %.0f ms, record %.0f ms", (t1 - t0) * 1000,
		  (t2 - t1) * 1000, ap.flush * 1000, (t3 - t2) * 1000,
		  (clock_now() - t3) * 1000);
	wt->apply_tail = (wt->apply_tail + clock_now() - t2) / 2;
	if (res->more)
		plan_keep(wt, &p, &w2, &m, first + next);
	{
		struct strbuf t = STRBUF_INIT;
		wt_counts_text(&t, &res->counts);
		log_info("applied %.12s: %s%s", oid_hex(&m), t.buf,
			 res->skipped ? " (some left to the mail client)" :
			 res->more ? " (more to come)" : "");
		strbuf_release(&t);
	}
	/* folders that came or went: those left out are counted again */
	if (wt->left_out && (res->counts.folders_added ||
			     res->counts.folders_removed))
		worktree_dirty_root(wt);
	ret = 0;
done:
	if (dv)
		wt_dv_apply_end(dv, NULL, NULL, NULL, false);
	wt_dv_made_release(wt);	/* those no afolder took: a failure */
	if (ret < 0 && ret != E_RACE)
		ret = E_TEMP;
	free(p.ops);
	wt_entv_clear(&p.olds);
	wt_entv_clear(&p.news);
	strvec_clear(&mk_add);
	strvec_clear(&p.mk_rm);
	wt_dchv_clear(&p.d);
	wt_mtcache_release(&ap.mmt);
	update_list_release(&ap.wu);
	wt_mlist_release(&ap.wm);
	strvec_clear(&ap.touched);
	strmap_clear(&ap.touched_set);
	strvec_clear(&ap.staged);
	return ret;
}
