/*
 * dovecheck: are Dovecot's settings safe for failing over (see
 * dovecheck.h)?
 */
#include "autoconf.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "config.h"
#include "dovecheck.h"
#include "dovecot.h"
#include "log.h"
#include "loop.h"
#include "strbuf.h"
#include "xalloc.h"

/* doveconf -h prints a few hundred bytes for the two settings */
#define ANSWER_MAX 65536

struct dovecheck {
	struct loop *loop;
	struct loop_timer *deadline;
	pid_t pid;
	int fd;
	struct strbuf answer;
	char *config;		/* doveconf's -c, or NULL */
};

/* In the child: doveconf's answer goes to the result pipe. */
static void run_doveconf(void *arg)
{
	const struct dovecheck *d = arg;
	int null = open("/dev/null", O_WRONLY);

	if (dup2(CHILD_RESULT_FD, 1) < 0)
		_exit(70);
	if (null >= 0)
		dup2(null, 2);	/* its warnings are no business of our log */
	if (d->config)
		execlp("doveconf", "doveconf", "-c", d->config, "-h",
		       "mail_location", "imap_capability", (char *)NULL);
	else
		execlp("doveconf", "doveconf", "-h", "mail_location",
		       "imap_capability", (char *)NULL);
	_exit(127);
}

static void stop(struct dovecheck *d)
{
	if (d->fd >= 0)
		loop_del_fd(d->loop, d->fd);
	child_kill(d->pid, d->fd);
	d->pid = 0;
	d->fd = -1;
	loop_timer_stop(d->deadline);
}

/* The two lines doveconf printed: what they mean for a client that moves. */
static void judge(const char *answer)
{
	char *loc = xstrdup(answer), *cap = strchr(loc, '\n');
	unsigned bad;

	if (!cap) {
		log_debug("doveconf said nothing usable about Dovecot's settings");
		free(loc);
		return;
	}
	*cap++ = '\0';
	cap[strcspn(cap, "\n")] = '\0';
	bad = dovecot_failover_unsafe(loc, cap);
	if (bad == (DOVECOT_FAILOVER_INDEX_ON_DISK | DOVECOT_FAILOVER_CONDSTORE))
		log_warn("dovecot keeps its indexes on disk and advertises "
			 "CONDSTORE: a CONDSTORE or QRESYNC client moved "
			 "between replicas can miss changes (see \"Failing "
			 "over\" in maildag-syncd(8))");
	else if (bad == DOVECOT_FAILOVER_INDEX_ON_DISK)
		log_warn("dovecot keeps its indexes on disk: a client that "
			 "enables CONDSTORE although it is not advertised can "
			 "miss changes after a move between replicas (see "
			 "\"Failing over\" in maildag-syncd(8))");
	else if (bad == DOVECOT_FAILOVER_CONDSTORE)
		log_warn("dovecot advertises CONDSTORE: a client that asks "
			 "STATUS HIGHESTMODSEQ can miss changes after a move "
			 "between replicas (see \"Failing over\" in "
			 "maildag-syncd(8))");
	else
		log_debug("dovecot's settings make CONDSTORE clients "
			  "resynchronise after a move between replicas");
	free(loc);
}

static void on_answer(void *data, int fd, short revents)
{
	struct dovecheck *d = data;
	int st;

	(void)fd;
	(void)revents;
	if (child_read(d->pid, d->fd, &d->answer, ANSWER_MAX, &st) == 0)
		return;
	/* child_read() closed it and reaped the child */
	loop_del_fd(d->loop, d->fd);
	d->fd = -1;
	d->pid = 0;
	loop_timer_stop(d->deadline);
	if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
	    d->answer.len < ANSWER_MAX)
		judge(d->answer.buf);
	else
		log_debug("doveconf gave no answer: Dovecot's settings for "
			  "failing over not checked");
}

static void on_deadline(void *data)
{
	struct dovecheck *d = data;

	log_debug("doveconf did not answer in %d s: Dovecot's settings for "
		  "failing over not checked", DOVECHECK_TIMEOUT);
	stop(d);
}

struct dovecheck *dovecheck_start(struct loop *l, const struct config *cfg)
{
	struct dovecheck *d;

	if (cfg->npeers == 0)
		return NULL;	/* no other replica to move to */
	d = xcalloc(1, sizeof *d);
	d->loop = l;
	d->fd = -1;
	d->config = cfg->dovecot_config ? xstrdup(cfg->dovecot_config) : NULL;
	strbuf_init(&d->answer, 0);
	if (child_spawn(&d->pid, &d->fd, 0, CHILD_DIE_WITH_PARENT,
			"maildag-dvconf", run_doveconf, d) < 0) {
		dovecheck_free(d);
		return NULL;
	}
	loop_add_fd(l, d->fd, POLLIN, on_answer, d);
	d->deadline = loop_timer_new(l, on_deadline, d);
	loop_timer_in(d->deadline, DOVECHECK_TIMEOUT);
	return d;
}

void dovecheck_free(struct dovecheck *d)
{
	if (!d)
		return;
	if (d->pid > 0 || d->fd >= 0) {
		if (d->fd >= 0)
			loop_del_fd(d->loop, d->fd);
		child_kill(d->pid, d->fd);
	}
	if (d->deadline)
		loop_timer_free(d->loop, d->deadline);
	strbuf_release(&d->answer);
	free(d->config);
	free(d);
}
