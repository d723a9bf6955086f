/*
 * maildag push [-t seconds] [peer...]
 * maildag fetch [-t seconds] [peer...]
 *
 * By hand what maildag-syncd does on its own: push refs/heads/mail to
 * refs/peers/<node>/mail on each peer, or fetch each peer's
 * refs/heads/mail into refs/peers/<peer>/mail (no merge: maildag-syncd,
 * or maildag merge, does that).  Without names, every peer whose "push"
 * (or "fetch") is true; a peer named on the command line is done even
 * when that is false.
 *
 * Every peer runs at once, each in a child of net_spawn(), under one
 * deadline (-t, default net_timeout): a hung peer costs its own line,
 * never the others'.  One line per peer on stdout, as each finishes:
 *
 *	mx2: pushed 1a2b3c4d5e6f	mx2: fetched 1a2b3c4d5e6f
 *	mx2: up to date			mx2: nothing to fetch (...)
 *	mx2: unreachable: ...		mx2: timeout: no answer within 60 s
 *
 * Exit status: 0 when every peer succeeded; 75 when one failed in a way
 * that may pass (unreachable, timeout, anything else); 69 when one
 * refused us or sent garbage (host key, authentication, rejected update,
 * invalid data), which trying again will not mend; 64 for bad usage or an
 * unknown peer; 66 when there is no repository.
 */
#include "autoconf.h"
#include "clock.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "alarm.h"
#include "log.h"
#include "mailbox.h"
#include "net.h"
#include "repo.h"
#include "strbuf.h"
#include "xalloc.h"

struct job {
	const struct config_peer *peer;
	pid_t pid;
	int fd;			/* -1 once finished */
	struct strbuf buf;
	struct net_result res;
};

static void net_usage(FILE *f, enum net_op op)
{
	fprintf(f, "usage: maildag %s [-t seconds] [peer...]\n",
		op == NET_PUSH ? "push" : "fetch");
}

static void report(const struct job *j, enum net_op op)
{
	const struct net_result *res = &j->res;
	char hex[OID_HEXSZ + 1];

	oid_tostr(hex, sizeof hex, &res->id);
	if (res->status != NET_OK)
		printf("%s: %s: %s\n", j->peer->name,
		       net_status_name(res->status), res->error);
	else if (res->changed)
		printf("%s: %s %.12s\n", j->peer->name,
		       op == NET_PUSH ? "pushed" : "fetched", hex);
	else if (op == NET_FETCH && oid_is_zero(&res->id))
		printf("%s: nothing to fetch (no %s there yet)\n",
		       j->peer->name, REF_MAIL);
	else
		printf("%s: up to date\n", j->peer->name);
	fflush(stdout);
}

/* Which peers: the named ones (each once), else those op is on for. */
static int pick_peers(const struct config_peer ***out, size_t *n,
		      const struct config *cfg, enum net_op op, int argc,
		      char **argv)
{
	const struct config_peer **v = xcalloc(cfg->npeers + 1, sizeof *v);
	size_t k = 0;

	if (argc == 0) {
		for (size_t i = 0; i < cfg->npeers; i++)
			if (op == NET_PUSH ? cfg->peers[i].push
					   : cfg->peers[i].fetch)
				v[k++] = &cfg->peers[i];
	}
	for (int i = 0; i < argc; i++) {
		const struct config_peer *p = config_peer(cfg, argv[i]);
		bool dup = false;

		if (!p) {
			log_error("unknown peer '%s'%s", argv[i],
				  !strcmp(argv[i], cfg->node) ?
				  " (it is this replica's own name)" :
				  " (see maildag.conf(5))");
			free(v);
			return EX_USAGE;
		}
		for (size_t j = 0; j < k; j++)
			dup = dup || v[j] == p;
		if (!dup)
			v[k++] = p;
	}
	*out = v;
	*n = k;
	return 0;
}

/* A child per peer; how many run (a child that could not start has its
 * failure in its result). */
static size_t start_jobs(struct job *jobs, const struct config_peer **peers,
			 size_t n, enum net_op op, const struct mailbox *mb)
{
	size_t running = 0;

	for (size_t i = 0; i < n; i++) {
		struct job *j = &jobs[i];

		j->peer = peers[i];
		strbuf_init(&j->buf, 0);
		if (net_spawn(&j->pid, &j->fd, op, mb->repository, j->peer,
			      mb->cfg->node) < 0) {
			j->fd = -1;
			j->res.status = NET_FAILED;
			snprintf(j->res.error, sizeof j->res.error,
				 "cannot start a child process: %s",
				 log_last_error());
			continue;
		}
		running++;
	}
	return running;
}

/* Read the children's results as they come, until all have answered or
 * deadline (clock_now_ms() time); each is reported when it answers. */
static void collect(struct job *jobs, size_t n, size_t running,
		    long long deadline, enum net_op op)
{
	struct pollfd *pfds = xcalloc(n, sizeof *pfds);

	while (running) {
		long long left = deadline - clock_now_ms();
		size_t k = 0;
		int got;

		if (left <= 0)
			break;
		for (size_t i = 0; i < n; i++) {
			if (jobs[i].fd < 0)
				continue;
			pfds[k].fd = jobs[i].fd;
			pfds[k].events = POLLIN;
			pfds[k].revents = 0;
			k++;
		}
		got = poll(pfds, k, left > INT_MAX ? INT_MAX : (int)left);
		if (got < 0 && errno != EINTR) {
			log_error_errno("poll");
			break;
		}
		for (size_t i = 0, m = 0; got > 0 && i < n; i++) {
			struct job *j = &jobs[i];

			if (j->fd < 0)
				continue;
			if (pfds[m++].revents &&
			    net_collect(j->pid, j->fd, &j->buf, &j->res)) {
				j->fd = -1;
				running--;
				report(j, op);
			}
		}
	}
	free(pfds);
}

/* The deadline: whoever has not answered is killed; the rest reported.
 * The exit status: EX_UNAVAILABLE when a peer refused for good,
 * EX_TEMPFAIL when one failed for now. */
static int finish_jobs(struct job *jobs, size_t n, long timeout,
		       enum net_op op)
{
	int temp = 0, perm = 0;

	for (size_t i = 0; i < n; i++) {
		struct job *j = &jobs[i];

		if (j->fd >= 0) {
			net_kill(j->pid, j->fd, (int)timeout, &j->res);
			j->fd = -1;
			report(j, op);
		} else if (!j->pid) {
			report(j, op);	/* never started */
		}
		switch (j->res.status) {
		case NET_OK:
			break;
		case NET_HOSTKEY:
		case NET_AUTH:
		case NET_REJECTED:
		case NET_INVALID:
			perm++;
			break;
		default:
			temp++;
		}
		strbuf_release(&j->buf);
	}
	return perm ? EX_UNAVAILABLE : temp ? EX_TEMPFAIL : EX_OK;
}

static int run(struct mailbox *mb, int argc, char **argv, enum net_op op)
{
	const struct config_peer **peers = NULL;
	struct job *jobs = NULL;
	struct repo *r;
	long long deadline;
	size_t n = 0, running;
	long timeout = mb->cfg->net_timeout;
	int c, ret;

	optind = 1;
	while ((c = getopt(argc, argv, "+t:")) != -1) {
		char *end;

		if (c != 't') {
			net_usage(stderr, op);
			return EX_USAGE;
		}
		errno = 0;
		timeout = strtol(optarg, &end, 10);
		if (errno || *end || end == optarg || timeout < 1 ||
		    timeout > INT_MAX / 1000) {
			log_error("bad timeout '%s' (seconds, at least 1)", optarg);
			return EX_USAGE;
		}
	}
	if ((ret = pick_peers(&peers, &n, mb->cfg, op, argc - optind,
			      argv + optind))) {
		net_usage(stderr, op);
		return ret;
	}
	if (!n) {
		log_warn("no peer to %s (see maildag.conf(5))",
			 op == NET_PUSH ? "push to" : "fetch from");
		free(peers);
		return EX_OK;
	}
	/* say "no repository" once here, rather than once per peer */
	if ((ret = admin_open_repo(&r, mb))) {
		free(peers);
		return ret;
	}
	repo_free(r);

	jobs = xcalloc(n, sizeof *jobs);
	running = start_jobs(jobs, peers, n, op, mb);
	deadline = clock_now_ms() + timeout * 1000;
	collect(jobs, n, running, deadline, op);
	ret = finish_jobs(jobs, n, timeout, op);
	free(jobs);
	free(peers);
	return ret;
}

int cmd_push(struct mailbox *mb, int argc, char **argv)
{
	/* what maildag-syncd holds back, this does not send either */
	if (alarm_holding(mb->repository)) {
		log_error("a mass deletion made here is held back from peers "
			  "until it is settled: see 'maildag status', then "
			  "'maildag confirm' or 'maildag undo' the change");
		return EX_TEMPFAIL;
	}
	return run(mb, argc, argv, NET_PUSH);
}

int cmd_fetch(struct mailbox *mb, int argc, char **argv)
{
	return run(mb, argc, argv, NET_FETCH);
}
