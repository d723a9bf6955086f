/*
 * fsutil: small file-system helpers with the durability rules of
 * STYLE.md (write to x.tmp.<pid>, fsync, rename, fsync the directory).
 */
#ifndef FSUTIL_H
#define FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* write(2) all of p, through short writes and EINTR; -1 with errno set. */
int write_full(int fd, const void *p, size_t n);
/* Flush the whole file system that holds path (syncfs(2)). */
int syncfs_path(const char *path);
/* Read n bytes, fewer only at end of file; -1 on error. */
ssize_t read_full(int fd, void *p, size_t n);

/* fsync the directory at path. */
int fsync_dir(const char *path);
/* fsync the directory that holds path. */
int fsync_parent(const char *path);

/*
 * Create path and its missing parents with mode (each created directory's
 * parent is fsynced).  Existing directories are left as they are.
 */
int mkdir_p(const char *path, mode_t mode);

/*
 * Write data to path atomically and durably: to path.tmp.<pid>, fsync,
 * rename, fsync the directory.  Processes that write one path at once
 * each succeed, and a reader sees one of their files whole.
 */
int write_file_atomic(const char *path, const void *data, size_t len,
		      mode_t mode);

/*
 * Check that path is owned by uid and not writable by group or others.
 * Returns 0, E_NOTFOUND if it does not exist, or E_PERM with a logged
 * reason naming what is wrong.
 */
int check_safe_owner(const char *path, uid_t uid);

/* Remove path and everything below it (as rm -rf); missing is fine. */
int rm_rf(const char *path);

/*
 * Is there room for need more bytes on the file system holding path,
 * with FS_SPACE_RESERVE bytes (and 1/16 of need, for directory blocks and
 * rounding) left over for deliveries?  0 when there is; E_TEMP after
 * logging "not enough space for <what> in '<path>': needs N bytes, M
 * free"; E_FAIL when statvfs(2) fails.  *avail (may be NULL) gets the
 * bytes an unprivileged user may still write there.
 */
#define FS_SPACE_RESERVE (64ull << 20)
int fs_space_check(const char *path, unsigned long long need,
		   const char *what, unsigned long long *avail);

/*
 * rename(2) that never replaces an existing name: -1 with errno EEXIST
 * instead.  Where renameat2(2) flags are not supported, a check then a
 * rename, which is what other Maildir writers do there too.
 */
int rename_noreplace(const char *from, const char *to);

bool path_exists(const char *path);
bool is_dir(const char *path);

/* Create path empty if missing (a Maildir folder's marker): 0, or -1
 * with errno. */
int create_empty(const char *path, mode_t mode);

#endif
