/*
 * fsutil: file-system helpers (see fsutil.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "xalloc.h"

int write_full(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t read_full(int fd, void *p, size_t n)
{
	char *c = p;
	size_t done = 0;

	while (done < n) {
		ssize_t r = read(fd, c + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

int syncfs_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return log_error_errno("open '%s'", path);
#ifdef HAVE_SYNCFS
	if (syncfs(fd) < 0)
		ret = log_error_errno("syncfs '%s'", path);
#else
	sync();
#endif
	close(fd);
	return ret;
}

int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return log_error_errno("open '%s'", path);
	if (fsync(fd) < 0) {
		int e = errno;
		close(fd);
		return log_error("fsync '%s': %s", path, strerror(e));
	}
	close(fd);
	return 0;
}

int fsync_parent(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int r;

	if (!slash)
		r = fsync_dir(".");
	else if (slash == dir)
		r = fsync_dir("/");
	else {
		*slash = '\0';
		r = fsync_dir(dir);
	}
	free(dir);
	return r;
}

int mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int r = 0;

	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) == 0) {
			if (fsync_parent(p) < 0) {
				r = E_FAIL;
				break;
			}
		} else if (errno != EEXIST) {
			r = log_error_errno("mkdir '%s'", p);
			break;
		} else if (!is_dir(p)) {
			r = log_error("'%s' exists and is not a directory", p);
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return r;
}

int write_file_atomic(const char *path, const void *data, size_t len,
		      mode_t mode)
{
	/*
	 * A tmp name of this process's own: two processes writing one file
	 * (the daemon's maintenance pass and maildag forget, push children
	 * and the purge anchor) each rename a whole file of theirs, never
	 * the other's, nor one the other is still writing.
	 */
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	const char *d = data;
	int fd, r = E_FAIL;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		log_error_errno("open '%s'", tmp);
		goto done;
	}
	if (write_full(fd, d, len) < 0) {
		log_error_errno("write '%s'", tmp);
		close(fd);
		goto fail;
	}
	if (fsync(fd) < 0) {
		log_error_errno("fsync '%s'", tmp);
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		log_error_errno("close '%s'", tmp);
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		log_error_errno("rename '%s'", tmp);
		goto fail;
	}
	r = fsync_parent(path);
	goto done;
fail:
	unlink(tmp);
done:
	free(tmp);
	return r;
}

int check_safe_owner(const char *path, uid_t uid)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return E_NOTFOUND;
		log_error_errno("stat '%s'", path);
		return E_TEMP;
	}
	if (S_ISLNK(st.st_mode) && stat(path, &st) < 0) {
		log_error_errno("stat '%s'", path);
		return E_TEMP;
	}
	if (st.st_uid != uid) {
		log_error("'%s' is owned by uid %u, not %u", path,
			  (unsigned)st.st_uid, (unsigned)uid);
		return E_PERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		log_error("'%s' is writable by %s", path,
			  st.st_mode & S_IWOTH ? "others" : "its group");
		return E_PERM;
	}
	return 0;
}

bool path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		return log_error_errno("remove '%s'", path);
	return 0;
}

int rm_rf(const char *path)
{
	if (!path_exists(path))
		return 0;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) ? E_FAIL : 0;
}

int fs_space_check(const char *path, unsigned long long need,
		   const char *what, unsigned long long *avail)
{
	unsigned long long have, want;
	struct statvfs sv;

	if (statvfs(path, &sv) < 0)
		return log_error_errno("statvfs '%s'", path);
	have = (unsigned long long)sv.f_bavail * sv.f_frsize;
	if (avail)
		*avail = have;
	want = need + need / 16 + FS_SPACE_RESERVE;
	if (want < need)	/* wrapped */
		want = ULLONG_MAX;
	if (have >= want)
		return 0;
	log_error("not enough space for %s in '%s': needs %llu bytes and "
		  "%llu in reserve, %llu free", what, path, need,
		  want - need, have);
	return E_TEMP;
}

int rename_noreplace(const char *from, const char *to)
{
	struct stat st;

	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (lstat(to, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

int create_empty(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}
