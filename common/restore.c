/*
 * restore: writing removed mail back as a client would, committed by
 * worktree_commit() under the writer lock (see restore.h).
 *
 * Per batch: take the lock, read the keys refs/heads/mail holds, create
 * the folders, undo the moves, write the messages, add the subscription
 * lines, and commit the names written with a worktree of our own (its
 * dirty marks are exactly those names); then let the lock go.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "clock.h"
#include "fsutil.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "mtimes.h"
#include "repo_p.h"
#include "restore.h"
#include "strbuf.h"
#include "strmap.h"
#include "strvec.h"
#include "worktree.h"
#include "xalloc.h"

#define LOCK_WAIT_MS 30000
#define COMMIT_ROUNDS 4		/* a folder first seen is committed a round later */

struct item {
	struct mail_msg m;	/* where it goes (move: where it goes back) */
	struct mail_msg now;	/* a move: where it is; folder NULL otherwise */
	long long mtime;
};

struct restore {
	const struct mailbox *mb;
	struct repo *r;
	struct item *v;
	size_t n, alloc;
	struct strvec folders;	/* each once */
	struct strvec subs;	/* subscription lines, each once */
	unsigned long seq;	/* tmp/ names */
};

static void msg_copy(struct mail_msg *to, const struct mail_msg *from)
{
	to->folder = xstrdup(from->folder);
	to->sub = !strcmp(from->sub, "new") ? "new" : "cur";
	to->name = xstrdup(from->name);
	memcpy(to->blob, from->blob, CHANGE_HEX);
}

struct restore *restore_new(const struct mailbox *mb, struct repo *r)
{
	struct restore *rs = xcalloc(1, sizeof *rs);

	rs->mb = mb;
	rs->r = r;
	return rs;
}

void restore_free(struct restore *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++) {
		mail_msg_release(&rs->v[i].m);
		mail_msg_release(&rs->v[i].now);
	}
	strvec_clear(&rs->folders);
	strvec_clear(&rs->subs);
	free(rs->v);
	free(rs);
}

static struct item *item_new(struct restore *rs)
{
	xgrow((void **)&rs->v, &rs->alloc, rs->n + 1, sizeof *rs->v);
	memset(&rs->v[rs->n], 0, sizeof rs->v[rs->n]);
	return &rs->v[rs->n++];
}

/* The name without the T (trashed) flag: see restore.h. */
static char *untrashed(const char *name)
{
	struct maildir_name n;
	struct strbuf sb = STRBUF_INIT;
	char *flags;

	if (maildir_name_parse(&n, name) < 0)
		return xstrdup(name);
	flags = xstrdup(maildir_name_flags(&n));
	if (strchr(flags, 'T')) {
		char *w = flags;
		for (const char *p = flags; *p; p++)
			if (*p != 'T')
				*w++ = *p;
		*w = '\0';
		maildir_name_set_flags(&n, flags);
	}
	maildir_name_format(&sb, &n);
	maildir_name_release(&n);
	free(flags);
	return strbuf_detach(&sb, NULL);
}

void restore_add(struct restore *rs, const struct mail_msg *m,
		 long long mtime)
{
	struct item *it = item_new(rs);

	msg_copy(&it->m, m);
	free(it->m.name);
	it->m.name = untrashed(m->name);
	it->mtime = mtime;
	restore_add_folder(rs, m->folder);
}

void restore_add_move(struct restore *rs, const struct mail_msg *now,
		      const struct mail_msg *was)
{
	struct item *it = item_new(rs);

	msg_copy(&it->m, was);
	msg_copy(&it->now, now);
	it->mtime = MTIME_NONE;
	restore_add_folder(rs, was->folder);
}

void restore_add_folder(struct restore *rs, const char *folder)
{
	if (!strvec_has(&rs->folders, folder))
		strvec_push(&rs->folders, folder);
}

void restore_add_subscription(struct restore *rs, const char *line)
{
	if (!strvec_has(&rs->subs, line))
		strvec_push(&rs->subs, line);
}

/* --- on disk ------------------------------------------------------------ */

static char *disk_path(const struct restore *rs, const struct mail_msg *m)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "%s/", rs->mb->maildir);
	layout_disk_place(&sb, m->folder, m->sub, m->name);
	return strbuf_detach(&sb, NULL);
}

/* The blob's bytes into a new file in tmp/, with its mtime. */
static int write_tmp(struct restore *rs, const struct item *it, char **tmp)
{
	char *dir = layout_folder_dir(rs->mb->maildir, it->m.folder, "tmp");
	git_blob *blob = NULL;
	struct oid id;
	int fd = -1, ret = E_TEMP;
	struct timespec ts[2];

	*tmp = xasprintf("%s/%lld.R%luP%ld.restore", dir, (long long)clock_wall(),
			 ++rs->seq, (long)getpid());
	if (oid_fromstr(&id, it->m.blob) < 0 ||
	    git_blob_lookup(&blob, rs->r->git, GIT_OID(&id)) < 0) {
		log_error("read message %s: %s", it->m.blob, repo_git_error());
		goto done;
	}
	fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error_errno("open '%s'", *tmp);
		goto done;
	}
	/* synced with the batch's other files, by one syncfs (stage_flush) */
	if (write_full(fd, git_blob_rawcontent(blob),
		       (size_t)git_blob_rawsize(blob)) < 0) {
		log_error_errno("write '%s'", *tmp);
		goto done;
	}
	if (it->mtime != MTIME_NONE) {
		ts[0].tv_sec = ts[1].tv_sec = (time_t)it->mtime;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		if (futimens(fd, ts) < 0) {
			log_error_errno("set the mtime of '%s'", *tmp);
			goto done;
		}
	}
	ret = 0;
done:
	if (fd >= 0 && close(fd) < 0 && ret == 0) {
		log_error_errno("close '%s'", *tmp);
		ret = E_TEMP;
	}
	if (ret < 0 && fd >= 0)
		unlink(*tmp);
	git_blob_free(blob);
	free(dir);
	return ret;
}

/*
 * A batch's messages are written into tmp/ unsynced, made durable by one
 * syncfs(2), renamed into place, and their directories synced once each:
 * as worktree_apply() writes a peer's messages.  No reader sees a file
 * before it is whole, and none is committed before it is durable.
 */
struct stage {
	struct strbuf tmp, dest;	/* NUL-separated paths */
	size_t *item;			/* the item of each */
	size_t n, alloc;
	struct strvec dirs;		/* to fsync */
};

static void stage_release(struct stage *st)
{
	strbuf_release(&st->tmp);
	strbuf_release(&st->dest);
	free(st->item);
	strvec_clear(&st->dirs);
	memset(st, 0, sizeof *st);
}

static void stage_dir(struct stage *st, const char *path)
{
	char *dir = xstrndup(path, (size_t)(strrchr(path, '/') - path));

	if (strvec_has(&st->dirs, dir))
		free(dir);
	else
		strvec_push_nodup(&st->dirs, dir);
}

static int stage_message(struct restore *rs, struct stage *st, size_t i)
{
	char *tmp = NULL, *path = disk_path(rs, &rs->v[i].m);
	int ret = write_tmp(rs, &rs->v[i], &tmp);

	if (ret == 0) {
		strbuf_add(&st->tmp, tmp, strlen(tmp) + 1);
		strbuf_add(&st->dest, path, strlen(path) + 1);
		xgrow((void **)&st->item, &st->alloc, st->n + 1,
		      sizeof *st->item);
		st->item[st->n++] = i;
	}
	free(tmp);
	free(path);
	return ret;
}

/* Sync, rename into place, sync the directories; what was written. */
static int stage_flush(struct restore *rs, struct worktree *wt,
		       struct stage *st, struct restore_result *res)
{
	const char *tmp = st->tmp.buf, *dest = st->dest.buf;
	int ret = 0;

	if (st->n && syncfs_path(rs->mb->maildir) < 0)
		ret = log_error_errno("syncfs '%s'", rs->mb->maildir);
	for (size_t k = 0; k < st->n; k++) {
		const struct item *it = &rs->v[st->item[k]];

		if (ret == 0 && rename_noreplace(tmp, dest) == 0) {
			stage_dir(st, dest);
			worktree_dirty_name(wt, it->m.folder, it->m.sub,
					    it->m.name);
			res->written++;
		} else {
			/* EEXIST: the file is there already */
			if (ret == 0 && errno != EEXIST)
				ret = log_error_errno("rename '%s'", tmp);
			else if (ret == 0)
				res->present++;
			unlink(tmp);
		}
		tmp += strlen(tmp) + 1;
		dest += strlen(dest) + 1;
	}
	for (size_t k = 0; k < st->dirs.n; k++)
		if (fsync_dir(st->dirs.v[k]) < 0 && ret == 0)
			ret = E_TEMP;
	return ret < 0 ? E_TEMP : 0;
}

/* Undo one move; 1 moved back, 0 not (the message is elsewhere). */
static int put_back(struct restore *rs, struct worktree *wt,
		    struct stage *st, const struct item *it)
{
	char *from = disk_path(rs, &it->now), *to = disk_path(rs, &it->m);
	int ret = 0;

	if (rename_noreplace(from, to) == 0) {
		stage_dir(st, to);
		stage_dir(st, from);
		ret = 1;
		worktree_dirty_name(wt, it->now.folder, it->now.sub,
				    it->now.name);
		worktree_dirty_name(wt, it->m.folder, it->m.sub, it->m.name);
	} else if (errno != ENOENT && errno != EEXIST) {
		log_error_errno("rename '%s'", from);
		ret = E_TEMP;
	}
	free(from);
	free(to);
	return ret;
}

/* The lines the subscriptions file lacks, added; how many, or E_TEMP. */
static int put_subscriptions(struct restore *rs, struct worktree *wt)
{
	char *path = xasprintf("%s/subscriptions", rs->mb->maildir);
	struct strbuf sb = STRBUF_INIT;
	size_t added = 0;
	int fd, ret = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		(void)strbuf_read_fd(&sb, fd);
		close(fd);
	}
	for (size_t i = 0; i < rs->subs.n; i++) {
		const char *l = rs->subs.v[i], *p = sb.buf;
		size_t len = strlen(l);
		bool have = false;

		for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
			if (!strncmp(p, l, len) && (p[len] == '\n' || !p[len]))
				have = true;
		if (have)
			continue;
		if (sb.len && sb.buf[sb.len - 1] != '\n')
			strbuf_addch(&sb, '\n');
		strbuf_addf(&sb, "%s\n", l);
		added++;
	}
	if (added) {
		if (write_file_atomic(path, sb.buf, sb.len, 0600) < 0)
			ret = E_TEMP;
		else
			ret = (int)added;
		worktree_dirty_root(wt);
	}
	strbuf_release(&sb);
	free(path);
	return ret;
}

/* --- a batch ------------------------------------------------------------ */

/* Folders first: a message's folder must be there to write it. */
static int put_folders(struct restore *rs, struct worktree *wt,
		       struct restore_result *res)
{
	for (size_t i = 0; i < rs->folders.n; i++) {
		const char *f = rs->folders.v[i];
		char *dir = layout_folder_dir(rs->mb->maildir, f, NULL);
		char *marker = *f ? xasprintf("%s/maildirfolder", dir) : NULL;
		bool whole = layout_folder_exists(rs->mb->maildir, f) &&
			     (!marker || path_exists(marker));

		free(dir);
		free(marker);
		if (whole)
			continue;
		if (mailbox_create_folder(rs->mb, f) < 0)
			return E_TEMP;
		worktree_dirty_folder(wt, f);
		worktree_dirty_root(wt);
		res->folders++;
	}
	return 0;
}

/* Items [*pos, ...) up to a batch's worth, under the lock. */
static int run_batch(struct restore *rs, struct worktree *wt, size_t *pos,
		     struct restore_result *res)
{
	struct strmap keys = STRMAP_INIT;
	struct worktree_result wr;
	struct stage st;
	size_t done = 0;
	int ret;

	memset(&st, 0, sizeof st);
	if ((ret = expunged_mail_keys(&keys, rs->r)) < 0)
		goto out;
	if (*pos == 0) {
		if ((ret = put_folders(rs, wt, res)) < 0 ||
		    (ret = put_subscriptions(rs, wt)) < 0)
			goto out;
		res->subscriptions = (size_t)ret;
	}
	for (; *pos < rs->n && done < RESTORE_BATCH; (*pos)++) {
		const struct item *it = &rs->v[*pos];

		if (it->now.folder) {
			if ((ret = put_back(rs, wt, &st, it)) < 0)
				goto out;
			if (ret)
				res->moved++;
			else
				res->not_moved++;
			done += (size_t)ret;
			continue;
		}
		if (expunged_held(&keys, it->m.name, it->m.blob, true)) {
			res->present++;
			continue;
		}
		if ((ret = stage_message(rs, &st, *pos)) < 0)
			goto out;
		done++;
	}
	if ((ret = stage_flush(rs, wt, &st, res)) < 0)
		goto out;
	for (int round = 0; round < COMMIT_ROUNDS && worktree_is_dirty(wt);
	     round++) {
		if ((ret = worktree_commit(wt, &wr)) < 0)
			break;
		if (wr.committed) {
			res->commits++;
			oid_tostr(res->commit, sizeof res->commit, &wr.mail);
		}
	}
out:
	/* what was staged and not renamed goes */
	if (ret < 0) {
		for (const char *t = st.tmp.buf; st.n && t < st.tmp.buf + st.tmp.len;
		     t += strlen(t) + 1)
			unlink(t);
	}
	stage_release(&st);
	strmap_clear(&keys);
	return ret;
}

int restore_run(struct restore *rs, const char *origin,
		struct restore_result *res)
{
	struct worktree *wt;
	size_t pos = 0;
	int ret = 0;

	memset(res, 0, sizeof *res);
	wt = worktree_new(rs->r, rs->mb->maildir, rs->mb->cfg->node);
	worktree_set_origin(wt, origin);
	do {
		if (repo_lock(rs->r, LOCK_WAIT_MS) < 0) {
			ret = E_TEMP;
			break;
		}
		ret = run_batch(rs, wt, &pos, res);
		repo_unlock(rs->r);
	} while (ret == 0 && pos < rs->n);
	worktree_free(wt);
	return ret < 0 ? E_TEMP : 0;
}
