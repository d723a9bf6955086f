/*
 * child: maildag-syncd's worker processes (see child.h).
 *
 * The code that was net.c's own (its fetch and push children) before the
 * history check became a child too: one way to start, read, kill and
 * reap them.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "child.h"
#include "log.h"

static void close_from(int lowfd)
{
	struct rlimit rl;
	long max = 65536;

	if (close_range((unsigned)lowfd, UINT_MAX, 0) == 0)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)rl.rlim_cur < max)
		max = (long)rl.rlim_cur;
	for (long fd = lowfd; fd < max; fd++)
		close((int)fd);
}

/* A pack file of a repository, as libgit2 holds them open (.../objects/pack/pack-*.pack) */
static bool is_pack(int fd)
{
	char link[32], path[PATH_MAX];
	ssize_t n;
	const char *base;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof path - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	base = strrchr(path, '/');
	/* one removed since (maintenance) is still libgit2's: it says " (deleted)" */
	if (n > 10 && !strcmp(path + n - 10, " (deleted)"))
		path[n -= 10] = '\0';
	return base && base - path >= 13 &&
	       !strncmp(base - 13, "/objects/pack/pack-", 19) && n > 5 &&
	       !strcmp(path + n - 5, ".pack");
}

/* in a child: whether its pack descriptors were kept (child_kept_packs) */
static bool kept_packs;

bool child_kept_packs(void)
{
	return kept_packs;
}

/* Close every descriptor from lowfd on but pack files; false: all closed. */
static bool close_but_packs(int lowfd)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int dfd, *v = NULL;
	size_t n = 0, a = 0;

	if (!d) {
		close_from(lowfd);
		return false;
	}
	dfd = dirfd(d);
	/* closed after the listing: the listing's own descriptor is in it */
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd < lowfd || fd == dfd || is_pack(fd))
			continue;
		if (n == a) {
			int *w = realloc(v, (a = a ? 2 * a : 64) * sizeof *v);
			if (!w)
				_exit(70);
			v = w;
		}
		v[n++] = fd;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		close(v[i]);
	free(v);
	return true;
}

bool child_close_fds(int lowfd, bool keep_packs)
{
	if (keep_packs)
		return close_but_packs(lowfd);
	close_from(lowfd);
	return false;
}

/* A path libgit2 maps a repository's objects from (packs, indexes, graphs) */
static bool is_object_map(const char *path)
{
	return strstr(path, "/objects/pack/") ||
	       strstr(path, "/objects/info/commit-graph");
}

size_t child_unmap_packs(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[PATH_MAX + 128];
	struct { unsigned long lo, hi; } *v = NULL;
	size_t n = 0, a = 0;

	if (!f)
		return 0;
	/* listed whole first: unmapping while reading would change it */
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		const char *path = strchr(line, '/');
		if (!path || sscanf(line, "%lx-%lx", &lo, &hi) != 2 ||
		    !is_object_map(path))
			continue;
		if (n == a) {
			void *w = realloc(v, (a = a ? 2 * a : 16) * sizeof *v);
			if (!w)
				break;
			v = w;
		}
		v[n].lo = lo;
		v[n++].hi = hi;
	}
	fclose(f);
	for (size_t i = 0; i < n; i++)
		munmap((void *)v[i].lo, v[i].hi - v[i].lo);
	free(v);
	return n;
}

/* The result goes to fd 3; 0 and 1 are /dev/null; 2 stays. */
static void child_fds(int wfd, unsigned flags)
{
	int w = fcntl(wfd, F_DUPFD, CHILD_RESULT_FD),
	    null = open("/dev/null", O_RDWR);

	if (w < 0)
		_exit(70);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (wfd == 2 || fcntl(2, F_GETFD) < 0)
			dup2(null, 2);
	}
	if (w != CHILD_RESULT_FD && dup2(w, CHILD_RESULT_FD) < 0)
		_exit(70);
	kept_packs = child_close_fds(CHILD_RESULT_FD + 1,
				     flags & CHILD_KEEP_PACKS);
}

/* The process's private writable memory now (VmData), in bytes; 0 if unknown. */
static unsigned long long data_size(void)
{
	unsigned long long kb = 0;
	char line[128];
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmData: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

static void child_signals(void)
{
	sigset_t all;

	/* a caller's handler could write to a descriptor now reused */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

static __attribute__((noreturn))
void child_main(int wfd, pid_t parent, unsigned long long data_limit,
		unsigned flags, const char *name, child_fn *fn, void *arg)
{
#ifdef __linux__
	if (flags & CHILD_DIE_WITH_PARENT) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* the parent died before the line above: nobody wants us */
		if (getppid() != parent)
			_exit(0);
	}
	if (name)
		prctl(PR_SET_NAME, name);
#else
	(void)parent;
	(void)flags;
	(void)name;
#endif
	child_signals();
	child_fds(wfd, flags);
	if (data_limit) {
		struct rlimit rl;
		/*
		 * RLIMIT_DATA counts what the child inherited too: a daemon
		 * of a thousand mailboxes holds hundreds of MiB.  The limit
		 * is on what the child adds.
		 */
		rl.rlim_cur = rl.rlim_max = (rlim_t)(data_limit + data_size());
		if (setrlimit(RLIMIT_DATA, &rl) < 0)
			log_warn_errno("setrlimit");
	}
	fn(arg);
	_exit(0);
}

int child_spawn(pid_t *pid, int *fd, unsigned long long data_limit,
		unsigned flags, const char *name, child_fn *fn, void *arg)
{
	pid_t child, parent = getpid();
	int pfd[2];

	*pid = 0;
	*fd = -1;
	if (flags & CHILD_SOCKET) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pfd) < 0)
			return log_error_errno("socketpair");
	} else if (pipe2(pfd, O_CLOEXEC) < 0) {
		return log_error_errno("pipe");
	}
	/* what the caller buffered must not be written twice */
	fflush(stdout);
	fflush(stderr);
	child = fork();
	if (child < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return log_error("fork: %s", strerror(e));
	}
	if (child == 0) {
		close(pfd[0]);
		child_main(pfd[1], parent, data_limit, flags, name, fn, arg);
	}
	close(pfd[1]);
	if (fcntl(pfd[0], F_SETFL, O_NONBLOCK) < 0)
		log_warn_errno("pipe");
	*pid = child;
	*fd = pfd[0];
	return 0;
}

/* Reap the child; its wait status, or -1 if someone else reaped it. */
static int reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

int child_read(pid_t pid, int fd, struct strbuf *buf, size_t max,
	       int *wstatus)
{
	char chunk[1024];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);

		if (n > 0) {
			/* keep reading to EOF, but no more than a result */
			if (buf->len < max)
				strbuf_add(buf, chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		break;		/* EOF, or an error that ends it */
	}
	close(fd);
	*wstatus = reap(pid);
	return 1;
}

void child_describe(struct strbuf *out, int st, bool wrote)
{
	if (st >= 0 && WIFSIGNALED(st))
		strbuf_addf(out, "the child process died of signal %d (%s)",
			    WTERMSIG(st), strsignal(WTERMSIG(st)));
	else if (st >= 0 && WIFEXITED(st) && !wrote)
		strbuf_addf(out, "the child process exited with status %d "
			    "without a result", WEXITSTATUS(st));
	else
		strbuf_addstr(out, "the child process gave no usable result");
}

/*
 * Children killed but not dead yet (stuck in uninterruptible I/O on a
 * failing drive): reaped later, so the caller never waits for them.
 */
static pid_t dying[64];
static size_t ndying;

void child_reap(void)
{
	size_t w = 0;

	for (size_t i = 0; i < ndying; i++) {
		int st;
		pid_t r = waitpid(dying[i], &st, WNOHANG);
		if (r == 0 || (r < 0 && errno == EINTR))
			dying[w++] = dying[i];
	}
	ndying = w;
}

void child_kill(pid_t pid, int fd)
{
	if (pid > 0) {
		int st;
		pid_t r = 0;
		kill(pid, SIGKILL);
		/* a SIGKILLed child is usually gone at once */
		for (int i = 0; i < 50; i++) {
			r = waitpid(pid, &st, WNOHANG);
			if (r != 0 && !(r < 0 && errno == EINTR))
				break;
			usleep(1000);
		}
		if (r == 0) {
			child_reap();
			if (ndying < sizeof dying / sizeof dying[0])
				dying[ndying++] = pid;
			else
				reap(pid);	/* too many: wait after all */
		}
	}
	if (fd >= 0)
		close(fd);
}
