/*
 * Unit tests for common/util/fsutil.c's write_file_atomic: processes
 * that write one file at once (the daemon's maintenance pass and maildag
 * forget both write maildag/expired; every push child the purge anchor)
 * each succeed, and the file is always one of them whole.  With one tmp
 * name for all, one writer's rename took the other's file away ("rename
 * 'expired.tmp': No such file or directory", t6120 under load) or
 * renamed it half-written.
 */
#include "autoconf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tap.h"
#include "fsutil.h"
#include "xalloc.h"

#define WRITERS 4
#define ROUNDS 300
#define SIZE 65536

/* One writer: ROUNDS whole files of its letter; the failures, as status. */
static int writer(const char *path, char letter)
{
	char *buf = xmalloc(SIZE);
	int bad = 0;

	memset(buf, letter, SIZE);
	for (int i = 0; i < ROUNDS; i++)
		if (write_file_atomic(path, buf, SIZE, 0600) < 0)
			bad++;
	free(buf);
	return bad > 255 ? 255 : bad;
}

/* Is the file SIZE bytes of one letter? */
static int whole(const char *path)
{
	char *buf = xmalloc(SIZE + 1);
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(buf, 1, SIZE + 1, f) : 0;
	int ok = n == SIZE;

	for (size_t i = 1; ok && i < n; i++)
		ok = buf[i] == buf[0];
	if (f)
		fclose(f);
	free(buf);
	return ok;
}

/* Files in dir besides the one named. */
static int others(const char *dir, const char *name)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, name))
			n++;
	if (d)
		closedir(d);
	return n;
}

int main(void)
{
	char dir[] = "/tmp/fsutil-t.XXXXXX";
	char *path;
	pid_t pid[WRITERS];
	int failed = 0, torn = 0, status;

	if (!mkdtemp(dir))
		return perror("mkdtemp"), 1;
	path = xasprintf("%s/expired", dir);

	if (writer(path, 'z'))
		return perror("write"), 1;
	ok(whole(path), "one writer writes the file whole");
	for (int w = 0; w < WRITERS; w++) {
		pid[w] = fork();
		if (pid[w] == 0)
			_exit(writer(path, (char)('a' + w)));
	}
	/* meanwhile the file is always some writer's whole */
	for (int i = 0; i < 2000; i++)
		if (!whole(path))
			torn++;
	for (int w = 0; w < WRITERS; w++) {
		waitpid(pid[w], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	}
	is_int(failed, 0, "%d writers of one file at once, %d rounds each: "
	       "every write succeeds", WRITERS, ROUNDS);
	is_int(torn, 0, "a reader never sees a torn or mixed file");
	ok(whole(path), "the file is one writer's whole");
	is_int(others(dir, "expired"), 0, "no tmp file is left");

	unlink(path);
	rmdir(dir);
	free(path);
	return tap_done();
}
