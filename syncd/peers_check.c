/*
 * peers_check: the whole-history check of what a peer sent, and the merge
 * of what it approved (see peers.c's head comment for why a child runs
 * it and what counts as an approval).
 *
 * One child per peer at a time checks the commits of refs/peers/<name>/
 * mail that are neither ours, approved nor refused; only its "ok" for
 * exactly the commit it was given approves that commit, and peers_merge
 * merges nothing else.
 */
#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "child.h"
#include "history.h"
#include "log.h"
#include "merge.h"
#include "peers_p.h"
#include "repo.h"
#include "session_store.h"
#include "strbuf.h"
#include "xalloc.h"

/* --- the whole-history check, in a child ------------------------------- */

/*
 * How long (s) the sync that starts check children waits for them.  A
 * child checking a few commits answers 10 to 30 ms after its fork on the
 * 2-core test machine under a load of 5 (the fork and a fresh libgit2
 * are most of it; the check of one commit in the loop took under 1 ms).
 * In the wait, the sync that started it merges it too, as when the check
 * ran in the loop, instead of pushing our mail without it first and
 * merging in a second sync: in t6010's three replicas, 73 to 85 merge
 * commits each without the wait, 39 to 46 with it, 52 to 54 with the
 * check in the loop (one run each).  A longer check runs on; its end
 * brings another sync.
 */
#define CHECK_WAIT 0.05

void pr_check_stop(struct peers *p, struct peer *pe)
{
	struct check *c = &pe->check;

	if (c->pid) {
		loop_del_fd(p->loop, c->fd);
		child_kill(c->pid, c->fd);
		c->pid = 0;
		c->fd = -1;
	}
	loop_timer_stop(c->timer);
}

void pr_on_check_timer(void *data)
{
	struct peer *pe = data;

	pe->owner->refs_dirty = true;
	pe->owner->want_sync(pe->owner->data);
}

/* A run that approved and refused nothing: tried again after a backoff. */
static void check_failed(struct peers *p, struct peer *pe, const char *why)
{
	struct check *c = &pe->check;
	double delay;

	c->failures++;
	delay = pr_backoff(p, c->failures);
	if (c->failures == 1 || !c->last_error || strcmp(c->last_error, why))
		log_warn("peer %s: the history check of %.12s failed: %s; "
			 "trying again in %.0f s", pe->cfg.name,
			 oid_hex(&c->theirs), why, delay);
	else
		log_debug("peer %s: the history check failed again (%u in a "
			  "row): %s", pe->cfg.name, c->failures, why);
	free(c->last_error);
	c->last_error = xstrdup(why);
	c->error_at = clock_wall();
	if (pe->alive)
		loop_timer_in(c->timer, delay);
}

static void check_done(struct peers *p, struct peer *pe,
		       struct history_result *res)
{
	struct check *c = &pe->check;
	struct seen *s;

	if (res->status != E_TEMP && !oid_equal(&res->theirs, &c->theirs)) {
		res->status = E_TEMP;
		snprintf(res->why, sizeof res->why,
			 "the child checked %.12s, not the commit it was given",
			 oid_hex(&res->theirs));
	}
	if (res->status == E_TEMP) {
		check_failed(p, pe, res->why);
		return;
	}
	if (c->failures)
		log_info("peer %s: the history check works again", pe->cfg.name);
	c->failures = 0;
	log_debug("peer %s: %zu commits of %.12s checked in %.0f ms, in a "
		  "child of %ld kB at most", pe->cfg.name, res->checked,
		  oid_hex(&c->theirs), (loop_now() - c->started) * 1000,
		  res->max_rss_kb);
	if (!pe->alive)
		return;
	if (res->status == 0) {
		oid_cpy(&pe->checked, &c->theirs);
		oid_cpy(&pe->checked_base, &c->ours);
		pe->have_checked = true;
	} else {
		/* refused whole: not looked at again until the ref moves */
		s = pr_find_seen(p, pe->cfg.name);
		pr_refuse(pe, &c->theirs, res->why);
		oid_cpy(&s->id, &c->theirs);
		s->bad = true;
	}
	/*
	 * Merge what was approved, check what came meanwhile: in a sync of
	 * its own, unless the sync that started the child waits for it.
	 */
	p->refs_dirty = true;
	if (!p->waiting)
		p->want_sync(p->data);
}

static void on_check_child(void *data, int fd, short revents)
{
	struct peer *pe = data;
	struct peers *p = pe->owner;
	struct history_result res;

	(void)revents;
	if (!history_collect(pe->check.pid, fd, &pe->check.buf, &res))
		return;
	loop_del_fd(p->loop, fd);
	pe->check.pid = 0;
	pe->check.fd = -1;
	pe->check.runs++;
	check_done(p, pe, &res);
}

/*
 * Check theirs ^ ours in a child; its end calls check_done.  The last
 * approval, when it holds (its base is an ancestor of ours), is trusted
 * as ours is: the check covers what came since, and its approval is one
 * against ours.
 */
static void check_start(struct peers *p, struct peer *pe,
			const struct oid *ours,
			const struct oid *theirs)
{
	struct check *c = &pe->check;
	bool trust = pe->have_checked &&
		     merge_is_ancestor(p->repo, &pe->checked_base, ours) == 1;

	oid_cpy(&c->theirs, theirs);
	oid_cpy(&c->ours, ours);
	strbuf_reset(&c->buf);
	/* the fetch child's cap: what the limits let through fits in it */
	if (history_spawn(&c->pid, &c->fd, repo_path(p->repo), ours,
			  trust ? &pe->checked : NULL, theirs,
			  net_fetch_memory()) < 0) {
		c->pid = 0;
		c->fd = -1;
		check_failed(p, pe, "cannot start a child process");
		return;
	}
	c->started = loop_now();
	c->started_at = clock_wall();
	loop_add_fd(p->loop, c->fd, POLLIN, on_check_child, pe);
	log_debug("peer %s: checking the history of %.12s (pid %ld)",
		  pe->cfg.name, oid_hex(theirs), (long)c->pid);
}

/* Did a check child approve theirs itself, against an ancestor of mail? */
static bool approved(struct peers *p, const struct peer *pe,
		     const struct oid *mail, const struct oid *theirs)
{
	return pe->have_checked && oid_equal(&pe->checked, theirs) &&
	       merge_is_ancestor(p->repo, &pe->checked_base, mail) == 1;
}

/*
 * Would merging theirs only join histories, and is that the peer's job?
 * Their tree is ours, and mail is not part of theirs (no fast-forward):
 * the merge would change nothing but history.  Three replicas that
 * each make such merges as heads cross make new heads for each other
 * without end (t6020 saw 19 under load, with no mail moving: each
 * merges a different pair, so the canonical merge commit does not help).
 * So of two replicas, the one whose node name is smaller makes it; the
 * other takes it as a fast-forward once it arrives.  Anything with
 * content of its own is merged by whoever gets it, as always.
 */
static bool theirs_to_join(struct peers *p, const struct peer *pe,
			   const struct oid *mail, const struct oid *theirs)
{
	struct oid a, b;

	if (!p->cfg->node || strcmp(p->cfg->node, pe->cfg.name) < 0)
		return false;
	if (repo_commit_tree(&a, p->repo, mail) < 0 ||
	    repo_commit_tree(&b, p->repo, theirs) < 0 || !oid_equal(&a, &b))
		return false;
	return merge_is_ancestor(p->repo, mail, theirs) == 0;
}

/* Merge one peer's ref if it moved: 1 when mail moved, 0, < 0 on error. */
static int merge_peer(struct peers *p, struct peer *pe)
{
	const char *node = pe->cfg.name;
	struct oid theirs, mail, out;
	struct merge_stats st;
	struct seen *s;
	int x, moved = 0;

	/* none yet, or unreadable (logged): the next check looks again */
	if (pr_read_peer_ref(p, pe, &theirs) <= 0)
		return 0;
	s = pr_find_seen(p, node);
	if (oid_equal(&s->id, &theirs))
		return 0;
	if ((x = repo_ref_read(&mail, p->repo, REF_MAIL)) < 0)
		return x;
	x = merge_is_ancestor(p->repo, &theirs, &mail);
	if (x == 0) {
		/*
		 * Only what a check child approved (peers_check); anything
		 * else waits for the child, whose end brings another sync.
		 */
		if (!approved(p, pe, &mail, &theirs)) {
			p->refs_dirty = true;
			return 0;
		}
		if (theirs_to_join(p, pe, &mail, &theirs)) {
			log_debug("peer %s: %.12s holds what %.12s holds; peer "
				  "%s joins the histories", node,
				  oid_hex(&theirs), oid_hex(&mail), node);
			goto seen;
		}
		x = merge_into_ref(&out, p->repo, REF_MAIL, &theirs, NULL, &st);
		if (x < 0) {
			/*
			 * A broken object of theirs, or trouble of ours (a
			 * full disk): either way the others and the local
			 * commits go on, and this one is tried again at the
			 * next periodic check.
			 */
			pr_refuse(pe, &theirs, "the merge failed");
			return 0;
		}
		if (st.kind != MERGE_SAME) {
			moved = 1;
			log_info("peer %s: %s %.12s: now %.12s (%zu added, "
				 "%zu expunged, %zu moved, %zu flagged)",
				 node, st.kind == MERGE_MERGED ? "merged"
							       : "fast-forward to",
				 oid_hex(&theirs), oid_hex(&out),
				 st.ours.added, st.ours.expunged, st.ours.moved,
				 st.ours.flagged);
		}
	} else if (x < 0) {
		log_warn("peer %s: %.12s: %s", node, oid_hex(&theirs),
			 log_last_error());
		return 0;
	}
seen:
	oid_cpy(&s->id, &theirs);
	s->bad = false;
	/* they are alive: retry a push that is backing off */
	if (pe->push.failures && !pe->push.pid && !pe->push.in_session) {
		loop_timer_stop(pe->push.timer);
		pr_op_start(&pe->push);
	}
	free(pe->merge_error);
	pe->merge_error = NULL;
	return moved;
}

/*
 * Wait at most budget seconds for the check children that run, handling
 * each that ends as the loop would.
 */
static void wait_checks(struct peers *p, double budget)
{
	double end = loop_now() + budget;
	struct pollfd *pfd = xcalloc(p->n ? p->n : 1, sizeof *pfd);
	struct peer **who = xcalloc(p->n ? p->n : 1, sizeof *who);

	p->waiting = true;
	for (;;) {
		double left = end - loop_now();
		nfds_t n = 0;
		int r;

		for (size_t i = 0; i < p->n; i++)
			if (p->v[i]->check.pid) {
				pfd[n] = (struct pollfd){ p->v[i]->check.fd, POLLIN, 0 };
				who[n++] = p->v[i];
			}
		if (!n || left <= 0)
			break;
		r = poll(pfd, n, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			break;
		for (nfds_t i = 0; r > 0 && i < n; i++)
			if (pfd[i].revents)
				on_check_child(who[i], pfd[i].fd, pfd[i].revents);
	}
	p->waiting = false;
	free(pfd);
	free(who);
}

/*
 * Did our serve approve theirs, as it stored a session push
 * (session_store.h)?  Then it counts as a child's approval: no child.
 */
static bool serve_approved(struct peers *p, struct peer *pe,
			   const struct oid *mail, const struct oid *theirs)
{
	struct oid new, base;

	if (session_approval_read(repo_path(p->repo), pe->cfg.name, &new,
				  &base) < 0 || !oid_equal(&new, theirs) ||
	    oid_is_zero(&base) || merge_is_ancestor(p->repo, &base, mail) != 1)
		return false;
	oid_cpy(&pe->checked, theirs);
	oid_cpy(&pe->checked_base, &base);
	pe->have_checked = true;
	pe->check.failures = 0;
	log_debug("peer %s: %.12s approved by serve against %.12s",
		  pe->cfg.name, oid_hex(theirs), oid_hex(&base));
	return true;
}

void peers_check(struct peers *p)
{
	bool started = false;

	for (size_t i = 0; i < p->n; i++) {
		struct peer *pe = p->v[i];
		struct oid theirs, mail;
		struct seen *s;

		if (!pe->alive || pr_read_peer_ref(p, pe, &theirs) <= 0)
			continue;
		s = pr_find_seen(p, pe->cfg.name);
		/*
		 * Merged or refused already; a child at work (one at a time:
		 * when the ref moved meanwhile, its end looks again); a
		 * retry waiting for its backoff.
		 */
		if (oid_equal(&s->id, &theirs) || pe->check.pid ||
		    loop_timer_armed(pe->check.timer) ||
		    repo_ref_read(&mail, p->repo, REF_MAIL) < 0 ||
		    merge_is_ancestor(p->repo, &theirs, &mail) != 0 ||
		    approved(p, pe, &mail, &theirs) ||
		    serve_approved(p, pe, &mail, &theirs))
			continue;
		check_start(p, pe, &mail, &theirs);
		started = true;
	}
	if (started)
		wait_checks(p, CHECK_WAIT);
}

int peers_merge(struct peers *p)
{
	int moved = 0, r = 0;

	if (!p->refs_dirty)
		return 0;
	p->refs_dirty = false;
	/* configured peers only: refs/peers/ may hold any name (peers.h) */
	for (size_t i = 0; i < p->n && r >= 0; i++) {
		int x;
		if (!p->v[i]->alive)
			continue;
		x = merge_peer(p, p->v[i]);
		if (x < 0)
			r = x;
		else if (x > 0)
			moved = 1;
	}
	pr_check_waits(p);
	return r < 0 ? r : moved;
}
