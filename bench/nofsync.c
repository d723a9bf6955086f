/*
 * bench/nofsync.c: an LD_PRELOAD library that makes fsync and its kin
 * return at once, for bench/lifecycle's simulated days (the days it
 * only builds a history on, never the ones it times).  Durability is
 * not what those days measure: repository size, packs and loose
 * objects do not depend on it.  Never for a real mailbox.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

int fsync(int fd) { (void)fd; return 0; }
int fdatasync(int fd) { (void)fd; return 0; }
int syncfs(int fd) { (void)fd; return 0; }
void sync(void) { }
int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	(void)fd; (void)off; (void)n; (void)flags;
	return 0;
}
