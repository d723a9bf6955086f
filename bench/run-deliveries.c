/*
 * run-deliveries: run a delivery agent once per message, as an MTA does,
 * and time each run with the monotonic clock.
 *
 *   run-deliveries -m LIST [-n COUNT] [-P PAR] [-w WARMUP] [-f SENDER]
 *                  [-i RUNID] [-o RAW] [-e ERRLOG] [-T SECONDS] [-u USER]
 *                  -- CMD [ARG...]
 *
 * LIST names message files, one per line; delivery i gets file i mod
 * their number. Each message reaches CMD's standard input through a pipe
 * (as Postfix's local(8) and Exim's pipe transport feed it) with what an
 * MTA prepends: a `From SENDER date` line and a Received: header carrying
 * a queue id unique to the delivery, so no two deliveries are the same
 * bytes and no tool can take one for a retry. A leading `From ` line in
 * the file itself is dropped first.
 *
 * WARMUP deliveries run one at a time first and are not counted. Then
 * COUNT deliveries run with at most PAR of them at once. A delivery's
 * latency runs from just before fork() to its reaping by wait4(), which
 * also gives its peak RSS (the largest of the process and the children it
 * waited for, as /usr/bin/time reports it). A delivery fails when CMD
 * exits non-zero, dies of a signal, or outlives SECONDS (then SIGKILL).
 *
 * RAW gets one line per counted delivery: `seq latency_us status rss_kb`
 * (status is the exit code, or 128+signal). CMD's stderr goes to ERRLOG
 * (default /dev/null). With -u (when run as root), CMD runs as USER, with
 * USER's groups; the environment and working directory are passed on as
 * they are. On stdout, one summary line of key=value pairs;
 * latency percentiles are over the successful deliveries, throughput is
 * successful deliveries per second of wall time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct msg {
	char *data;
	size_t len;
};

struct slot {
	pid_t pid;		/* 0: free */
	long seq;
	int fd;			/* write end of the stdin pipe, -1 when done */
	char *buf;		/* prefix + message, owned */
	size_t len, off;
	double start;
};

struct result {
	double lat;
	int status;
	long rss;
};

static int sig_pipe[2];
static const char *sender = "bench@example.org";
static const char *runid = "run";
static int err_fd = -1;
static struct passwd *run_as;	/* NULL: as we are */
static gid_t groups[256];
static int ngroups;
static struct msg *msgs;
static size_t nmsgs;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("run-deliveries: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_sigchld(int sig)
{
	int saved = errno;
	char c = 0;

	(void)sig;
	if (write(sig_pipe[1], &c, 1) < 0) {
		/* pipe full: a wakeup is already pending */
	}
	errno = saved;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

static void load_file(struct msg *m, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t off = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		die("open '%s': %s", path, strerror(errno));
	m->data = xmalloc((size_t)st.st_size);
	while (off < (size_t)st.st_size) {
		ssize_t r = read(fd, m->data + off, (size_t)st.st_size - off);

		if (r <= 0)
			die("read '%s': %s", path, r ? strerror(errno) : "short read");
		off += (size_t)r;
	}
	close(fd);
	m->len = off;
	/* drop an mbox From_ line: the MTA's own one goes first */
	if (m->len > 5 && !memcmp(m->data, "From ", 5)) {
		char *nl = memchr(m->data, '\n', m->len);

		if (nl) {
			size_t skip = (size_t)(nl + 1 - m->data);

			memmove(m->data, nl + 1, m->len - skip);
			m->len -= skip;
		}
	}
}

static void load_list(const char *list)
{
	FILE *f = fopen(list, "r");
	char line[4096];
	size_t cap = 0;

	if (!f)
		die("open '%s': %s", list, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!*line)
			continue;
		if (nmsgs == cap) {
			cap = cap ? cap * 2 : 256;
			msgs = realloc(msgs, cap * sizeof *msgs);
			if (!msgs)
				die("out of memory");
		}
		load_file(&msgs[nmsgs++], line);
	}
	fclose(f);
	if (!nmsgs)
		die("no messages in '%s'", list);
}

static char *build(long seq, size_t *len)
{
	const struct msg *m = &msgs[(size_t)seq % nmsgs];
	char from[256], recv[512], d1[64], d2[64];
	time_t t = time(NULL);
	struct tm tm;
	int n1, n2;
	char *buf;

	gmtime_r(&t, &tm);
	strftime(d1, sizeof d1, "%a %b %e %H:%M:%S %Y", &tm);
	strftime(d2, sizeof d2, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	n1 = snprintf(from, sizeof from, "From %s  %s\n", sender, d1);
	n2 = snprintf(recv, sizeof recv,
		      "Received: by bench.example.net (maildag-bench, from userid 1000)\n"
		      "\tid %s.%ld; %s\n", runid, seq, d2);
	if (n1 < 0 || (size_t)n1 >= sizeof from || n2 < 0 || (size_t)n2 >= sizeof recv)
		die("sender or run id too long");
	*len = (size_t)n1 + (size_t)n2 + m->len;
	buf = xmalloc(*len);
	memcpy(buf, from, (size_t)n1);
	memcpy(buf + n1, recv, (size_t)n2);
	memcpy(buf + n1 + n2, m->data, m->len);
	return buf;
}

static void start(struct slot *s, long seq, char **argv)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	s->buf = build(seq, &s->len);
	s->off = 0;
	s->seq = seq;
	s->start = now();
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;
		int null = open("/dev/null", O_WRONLY);

		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (run_as && (setgroups((size_t)ngroups, groups) < 0 ||
			       setgid(run_as->pw_gid) < 0 || setuid(run_as->pw_uid) < 0))
			_exit(126);
		if (dup2(p[0], 0) < 0 || dup2(null, 1) < 0 ||
		    dup2(err_fd >= 0 ? err_fd : null, 2) < 0)
			_exit(126);
		execvp(argv[0], argv);
		dprintf(2, "run-deliveries: exec '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[0]);
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	s->fd = p[1];
	s->pid = pid;
}

static void feed(struct slot *s)
{
	while (s->off < s->len) {
		ssize_t w = write(s->fd, s->buf + s->off, s->len - s->off);

		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			break;	/* EPIPE: it stopped reading; its status will tell */
		}
		s->off += (size_t)w;
	}
	close(s->fd);
	s->fd = -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
	size_t rank;

	if (!n)
		return 0;
	/* nearest rank */
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/* Run deliveries [first, first+count) with at most par at once. */
static void run(long first, long count, int par, double timeout, char **argv,
		struct result *res, double *wall)
{
	struct slot *slots = calloc((size_t)par, sizeof *slots);
	struct pollfd *pfd = xmalloc(((size_t)par + 1) * sizeof *pfd);
	long next = first, done = 0;
	double t0 = now();
	int i;

	if (!slots)
		die("out of memory");
	while (done < count) {
		int n = 0;
		pid_t pid;
		int st;
		struct rusage ru;
		struct result *r;

		for (i = 0; i < par; i++) {
			if (!slots[i].pid && next < first + count)
				start(&slots[i], next++, argv);
			if (slots[i].fd >= 0 && slots[i].pid)
				feed(&slots[i]);
		}
		pfd[n].fd = sig_pipe[0];
		pfd[n++].events = POLLIN;
		for (i = 0; i < par; i++) {
			if (slots[i].pid && slots[i].fd >= 0) {
				pfd[n].fd = slots[i].fd;
				pfd[n++].events = POLLOUT;
			}
		}
		if (poll(pfd, (nfds_t)n, 1000) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (pfd[0].revents) {
			char drain[64];

			while (read(sig_pipe[0], drain, sizeof drain) > 0)
				;
		}
		while ((pid = wait4(-1, &st, WNOHANG, &ru)) > 0) {
			double t = now();

			for (i = 0; i < par; i++)
				if (slots[i].pid == pid)
					break;
			if (i == par)
				continue;
			r = &res[slots[i].seq - first];
			r->lat = t - slots[i].start;
			r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			r->rss = ru.ru_maxrss;
			if (slots[i].fd >= 0)
				close(slots[i].fd);
			free(slots[i].buf);
			memset(&slots[i], 0, sizeof slots[i]);
			slots[i].fd = -1;
			done++;
		}
		for (i = 0; i < par; i++) {
			if (slots[i].pid && now() - slots[i].start > timeout) {
				kill(slots[i].pid, SIGKILL);
				slots[i].start = now() + 1e9;	/* kill once */
			}
		}
	}
	*wall = now() - t0;
	free(slots);
	free(pfd);
}

static void usage(void)
{
	fprintf(stderr, "usage: run-deliveries -m LIST [-n COUNT] [-P PAR] [-w WARMUP]"
		" [-f SENDER] [-i RUNID] [-o RAW] [-e ERRLOG] [-T SECONDS] [-u USER]"
		" -- CMD [ARG...]\n");
	exit(64);
}

int main(int argc, char **argv)
{
	const char *list = NULL, *raw = NULL, *errlog = NULL;
	long count = 100, warmup = 0, i, nok = 0;
	int par = 1, opt;
	double timeout = 300, wall, wwall, sum = 0, *lat;
	long maxrss = 0;
	struct result *res;
	struct sigaction sa;
	FILE *rf = NULL;

	while ((opt = getopt(argc, argv, "m:n:P:w:f:i:o:e:T:u:")) != -1) {
		switch (opt) {
		case 'm': list = optarg; break;
		case 'n': count = atol(optarg); break;
		case 'P': par = atoi(optarg); break;
		case 'w': warmup = atol(optarg); break;
		case 'f': sender = optarg; break;
		case 'i': runid = optarg; break;
		case 'o': raw = optarg; break;
		case 'e': errlog = optarg; break;
		case 'T': timeout = atof(optarg); break;
		case 'u':
			if (!(run_as = getpwnam(optarg)))
				die("no user '%s'", optarg);
			ngroups = (int)(sizeof groups / sizeof groups[0]);
			if (getgrouplist(optarg, run_as->pw_gid, groups, &ngroups) < 0)
				die("user '%s' has too many groups", optarg);
			break;
		default: usage();
		}
	}
	if (!list || optind >= argc || count < 1 || par < 1 || warmup < 0)
		usage();
	argv += optind;
	load_list(list);
	if (errlog && (err_fd = open(errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		die("open '%s': %s", errlog, strerror(errno));
	if (raw && !(rf = fopen(raw, "w")))
		die("open '%s': %s", raw, strerror(errno));

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		die("pipe: %s", strerror(errno));
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	res = calloc((size_t)(count > warmup ? count : warmup), sizeof *res);
	lat = xmalloc((size_t)count * sizeof *lat);
	if (!res)
		die("out of memory");
	if (warmup) {
		run(0, warmup, 1, timeout, argv, res, &wwall);
		for (i = 0; i < warmup; i++)
			if (res[i].status)
				fprintf(stderr, "run-deliveries: warm-up delivery %ld exited %d\n",
					i, res[i].status);
	}
	memset(res, 0, (size_t)count * sizeof *res);
	run(warmup, count, par, timeout, argv, res, &wall);

	for (i = 0; i < count; i++) {
		if (rf)
			fprintf(rf, "%ld %.0f %d %ld\n", warmup + i, res[i].lat * 1e6,
				res[i].status, res[i].rss);
		if (res[i].rss > maxrss)
			maxrss = res[i].rss;
		if (res[i].status == 0) {
			lat[nok++] = res[i].lat;
			sum += res[i].lat;
		}
	}
	if (rf)
		fclose(rf);
	qsort(lat, (size_t)nok, sizeof *lat, cmp_double);
	printf("n=%ld ok=%ld fail=%ld p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f"
	       " mean_ms=%.2f wall_s=%.3f tput=%.1f maxrss_kb=%ld\n",
	       count, nok, count - nok, pct(lat, (size_t)nok, 50) * 1e3,
	       pct(lat, (size_t)nok, 90) * 1e3, pct(lat, (size_t)nok, 99) * 1e3,
	       nok ? lat[nok - 1] * 1e3 : 0.0, nok ? sum / (double)nok * 1e3 : 0.0,
	       wall, (double)nok / wall, maxrss);
	return 0;
}
