/*
 * restore: the admin tool's verbs that bring removed mail back.
 *
 *	maildag restore [-n] [--before CHANGE | --at TIME] [filters]
 *				bring messages or folders back
 *	maildag undo [-n] CHANGE
 *				reverse one change
 *
 * A CHANGE is the commit id `maildag log` prints (a prefix of at least
 * four hex digits).  History is read through common/expunged.h, written
 * back through common/restore.h (under the writer lock, committed by the
 * worktree module as maildag-syncd commits), and an undo settles its
 * change's alarm through common/alarm.h; nothing here speaks git.
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "admin.h"
#include "alarm.h"
#include "folder.h"
#include "log.h"
#include "restore.h"
#include "xalloc.h"

/* --- restore and undo ----------------------------------------------------- */

struct plan {
	struct restore *rs;
	bool dry_run;
	size_t n;
	size_t purged;		/* matched, but purged: no way back */
	char **folders;		/* of the messages planned */
	size_t nfolders, folders_alloc;
};

static void plan_release(struct plan *p)
{
	restore_free(p->rs);
	for (size_t i = 0; i < p->nfolders; i++)
		free(p->folders[i]);
	free(p->folders);
}

static int plan_one(const struct expunged *e, void *data)
{
	struct plan *p = data;
	bool known = false;

	if (e->purged) {
		p->purged++;
		return 0;
	}
	for (size_t i = 0; i < p->nfolders && !known; i++)
		known = !strcmp(p->folders[i], e->msg.folder);
	if (!known) {
		xgrow((void **)&p->folders, &p->folders_alloc, p->nfolders + 1,
		      sizeof *p->folders);
		p->folders[p->nfolders++] = xstrdup(e->msg.folder);
	}

	if (p->dry_run) {
		printf("would restore %s/%s/%s: from %s, \"%s\"\n",
		       folder_display(e->msg.folder), e->msg.sub, e->msg.name,
		       *e->from ? e->from : "(unknown)", e->subject);
	}
	restore_add(p->rs, &e->msg, e->mtime);
	p->n++;
	return 0;
}

/*
 * The subscription lines of source that name one of the folders being
 * restored (as Dovecot writes them, "Name", or Courier, "INBOX.Name"),
 * and that the mailbox lacks now: a folder comes back subscribed if it
 * was.
 */
static void plan_subscriptions(struct restore *rs, struct repo *r,
			       const char *source, char **folders, size_t n)
{
	char **lines;

	if (expunged_subscriptions(&lines, r, source) < 0)
		return;
	for (char **l = lines; *l; l++)
		for (size_t i = 0; i < n; i++) {
			const char *d;
			if (!*folders[i])
				continue;
			d = folder_display(folders[i]);
			if (!strcmp(*l, d) ||
			    (!strncmp(*l, "INBOX.", 6) && !strcmp(*l + 6, d)))
				restore_add_subscription(rs, *l);
		}
	expunged_lines_free(lines);
}

static void print_result(const char *what, const struct restore_result *res)
{
	printf("%s: %zu message%s written back", what, res->written,
	       res->written == 1 ? "" : "s");
	if (res->moved || res->not_moved)
		printf(", %zu moved back", res->moved);
	if (res->not_moved)
		printf(" (%zu elsewhere now: left there)", res->not_moved);
	if (res->folders)
		printf(", %zu folder%s created", res->folders,
		       res->folders == 1 ? "" : "s");
	if (res->subscriptions)
		printf(", %zu subscription%s", res->subscriptions,
		       res->subscriptions == 1 ? "" : "s");
	if (res->present)
		printf(", %zu in the mailbox already", res->present);
	if (res->commits)
		printf("; refs/heads/mail now %.*s", CHANGE_SHORT, res->commit);
	printf("\n");
}

/* Which commit a --before or --at names; 0 or an exit status. */
static int pick_source(char out[CHANGE_HEX], struct repo *r,
		       const struct selection *s)
{
	struct change c;
	long long t;

	if (s->at) {
		if (admin_parse_time(&t, s->at) < 0) {
			log_error("'%s' is not a time (YYYY-MM-DD [HH:MM[:SS]] "
				  "or @seconds)", s->at);
			return EX_USAGE;
		}
		return expunged_snapshot_at(out, r, t) < 0 ? EX_DATAERR : 0;
	}
	if (change_resolve(out, r, s->before) < 0 ||
	    change_read(&c, r, out) < 0)
		return EX_DATAERR;
	if (!c.parent[0]) {
		log_error("%.*s is the first commit: there is no before",
			  CHANGE_SHORT, c.id);
		change_release(&c);
		return EX_DATAERR;
	}
	memcpy(out, c.parent, CHANGE_HEX);
	change_release(&c);
	return 0;
}

static void usage_restore(void)
{
	fputs("usage: maildag restore [-n] [--before CHANGE | --at TIME] "
	      "[--folder F]\n"
	      "                       [--from TEXT] [--subject TEXT] "
	      "[--message-id ID]\n"
	      "                       [--since TIME] [--until TIME]\n", stderr);
}

/* The options of restore into s; 0 or EX_USAGE. */
static int restore_args(struct selection *s, int argc, char **argv)
{
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "n", admin_select_opts,
				NULL)) != -1) {
		if (c == 'n')
			s->dry_run = true;
		else if (c == OPT_EXPUNGED || admin_select_opt(s, c, optarg))
			return EX_USAGE;
	}
	if (optind != argc || (s->before && s->at))
		return EX_USAGE;
	if (!s->before && !s->at && !s->any) {
		log_error("say what to restore: --before, --at or a filter "
			  "(--folder, --from, --subject, --message-id, --since, "
			  "--until)");
		return EX_USAGE;
	}
	return 0;
}

/* Restore what the plan holds; the exit status. */
static int run_plan(struct plan *p, const char *origin, const char *what)
{
	struct restore_result res;
	int x;

	if (p->dry_run)
		return EX_OK;
	x = restore_run(p->rs, origin, &res);
	print_result(what, &res);
	if (x < 0)
		return EX_TEMPFAIL;
	/* all of it there already: as if nothing had matched */
	return res.written || res.moved || res.folders || res.subscriptions ?
	       EX_OK : ADMIN_NOTHING;
}

int cmd_restore(struct mailbox *mb, int argc, char **argv)
{
	struct selection s;
	struct plan p = { 0 };
	char source[CHANGE_HEX] = "", *origin = NULL;
	struct repo *r = NULL;
	int x;

	memset(&s, 0, sizeof s);
	expunged_filter_init(&s.f);
	if ((x = restore_args(&s, argc, argv))) {
		usage_restore();
		free(s.folder);
		return x;
	}
	if ((x = admin_open_repo(&r, mb)))
		goto done;
	p.rs = restore_new(mb, r);
	p.dry_run = s.dry_run;
	if ((s.before || s.at) && (x = pick_source(source, r, &s)))
		goto done;
	if (*source)
		x = expunged_in_snapshot(r, source, &s.f, plan_one, &p);
	else
		x = expunged_find(r, &s.f, plan_one, &p);
	if (x < 0) {
		x = EX_TEMPFAIL;
		goto done;
	}
	if (*source && s.folder) {
		restore_add_folder(p.rs, s.folder);
		plan_subscriptions(p.rs, r, source, &s.folder, 1);
	} else if (*source) {
		plan_subscriptions(p.rs, r, source, p.folders, p.nfolders);
	}
	if (p.purged)
		printf("%zu purged message%s cannot come back\n", p.purged,
		       p.purged == 1 ? "" : "s");
	if (!p.n && !(*source && s.folder)) {
		fprintf(stderr, "nothing to restore: %s\n", *source ?
			"the mailbox holds every message that matches" :
			"no removed message matches");
		x = ADMIN_NOTHING;
		goto done;
	}
	origin = *source ? xasprintf("restore from %.*s", CHANGE_SHORT, source)
			 : xstrdup("restore");
	x = run_plan(&p, origin, "restored");
done:
	free(origin);
	plan_release(&p);
	repo_free(r);
	free(s.folder);
	return x;
}

/* Plan the reversal of change c; how many things it would do. */
static size_t plan_undo(struct plan *p, struct repo *r, const struct change *c)
{
	char **before = NULL, **after = NULL;
	size_t n;

	expunged_of_change(r, c, NULL, plan_one, p);
	n = p->n;
	for (size_t i = 0; i < c->nmoved; i++) {
		if (p->dry_run)
			printf("would move %s/%s/%s back to %s/%s/%s\n",
			       folder_display(c->to[i].folder), c->to[i].sub,
			       c->to[i].name, folder_display(c->from[i].folder),
			       c->from[i].sub, c->from[i].name);
		restore_add_move(p->rs, &c->to[i], &c->from[i]);
		n++;
	}
	for (size_t i = 0; i < c->nfolders_gone; i++) {
		if (p->dry_run)
			printf("would create folder %s\n",
			       folder_display(c->folders_gone[i]));
		restore_add_folder(p->rs, c->folders_gone[i]);
		n++;
	}
	/* the subscriptions the change took away */
	if (expunged_subscriptions(&before, r, c->parent) == 0 &&
	    expunged_subscriptions(&after, r, c->id) == 0)
		for (char **b = before; *b; b++) {
			bool kept = false;
			for (char **a = after; *a && !kept; a++)
				kept = !strcmp(*a, *b);
			if (!kept) {
				restore_add_subscription(p->rs, *b);
				n++;
			}
		}
	expunged_lines_free(before);
	expunged_lines_free(after);
	return n;
}

/* Settle change's alarm as st, and have the daemon look (held pushes). */
static void settle(struct mailbox *mb, const char *change,
		   enum alarm_state st)
{
	if (alarm_settle(mb->repository, change, st) == 0)
		admin_poke_daemon(mb);
}

int cmd_undo(struct mailbox *mb, int argc, char **argv)
{
	static const struct option undo_opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct plan p = { 0 };
	char id[CHANGE_HEX], *origin = NULL;
	struct repo *r = NULL;
	struct change c;
	bool have_c = false;
	size_t planned;
	int opt, x;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "n", undo_opts, NULL)) != -1) {
		if (opt != 'n') {
			fputs("usage: maildag undo [-n] CHANGE\n", stderr);
			return EX_USAGE;
		}
		p.dry_run = true;
	}
	if (optind + 1 != argc) {
		fputs("usage: maildag undo [-n] CHANGE\n", stderr);
		return EX_USAGE;
	}
	if ((x = admin_open_repo(&r, mb)))
		return x;
	if (change_resolve(id, r, argv[optind]) < 0 ||
	    change_read(&c, r, id) < 0) {
		x = EX_DATAERR;
		goto done;
	}
	have_c = true;
	if (c.nparents != 1) {
		log_error("%.*s is %s: undo the change itself (`maildag log` "
			  "shows it)", CHANGE_SHORT, id, c.nparents ?
			  "a merge, which only brings changes made elsewhere" :
			  "the first commit");
		x = EX_DATAERR;
		goto done;
	}
	p.rs = restore_new(mb, r);
	planned = plan_undo(&p, r, &c);
	if (p.purged)
		printf("%zu purged message%s cannot come back\n", p.purged,
		       p.purged == 1 ? "" : "s");
	if (!planned) {
		fprintf(stderr, "nothing to undo: %.*s expunged, moved and "
			"removed nothing (\"%s\")\n", CHANGE_SHORT, id, c.subject);
		x = ADMIN_NOTHING;
		goto done;
	}
	origin = alarm_undo_origin(id);
	x = run_plan(&p, origin, origin);
	if (x == EX_OK && !p.dry_run)
		settle(mb, id, ALARM_UNDONE);
done:
	if (have_c)
		change_release(&c);
	free(origin);
	plan_release(&p);
	repo_free(r);
	return x;
}
