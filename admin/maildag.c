/*
 * maildag: the admin tool.  Verbs that need only the repository live
 * here; the daemon's verbs (status) will talk to maildag-syncd.
 *
 *	maildag [-c config] init	create the repository, import the Maildir
 *					(as maildag-syncd commits it: worktree.h)
 *	maildag [-c config] log [-n N]	the mailbox history in mail terms
 *
 * and dispatches the others to the files of admin/ (admin.h).
 */
#include "autoconf.h"
#include "clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "delivery.h"
#include "folder.h"
#include "format.h"
#include "fsutil.h"
#include "header.h"
#include "log.h"
#include "mailbox.h"
#include "maildir_name.h"
#include "repo.h"
#include "strbuf.h"
#include "worktree.h"
#include "xalloc.h"

static const char *config_file;

static void usage(FILE *f)
{
	fputs("usage: maildag [-c config] [-v] <command> [<args>]\n"
	      "\n"
	      "commands:\n"
	      "  confirm CHANGE settle a mass-deletion alarm: the deletion was meant\n"
	      "  fetch [-t seconds] [peer...]\n"
	      "                 fetch peers' histories into refs/peers/ (no merge)\n"
	      "  fsck [--all-refs] [--hash]\n"
	      "                 check the repository against the format, the\n"
	      "                 Maildir against the repository\n"
	      "  init           create the repository and import the Maildir\n"
	      "  log [-n N]     show the mailbox history: deliveries and changes\n"
	      "  log --expunged [--folder F] [--from TEXT] [--subject TEXT]\n"
	      "      [--message-id ID] [--since TIME] [--until TIME] [-n N]\n"
	      "                 the messages removed from the mailbox\n"
	      "  merge [-n] [-u] [-q] [-v] A B\n"
	      "                 merge two commits with the Maildir merge\n"
	      "  push [-t seconds] [peer...]\n"
	      "                 push refs/heads/mail to peers\n"
	      "  restore [-n] [--before CHANGE | --at TIME] [filters as log --expunged]\n"
	      "                 bring removed messages and folders back\n"
	      "  serve --peer NAME\n"
	      "                 serve one ssh peer's git (authorized_keys command=)\n"
	      "  status [--json]  replication state per peer, from maildag-syncd\n"
	      "  sync           have maildag-syncd push and fetch now\n"
	      "  undo [-n] CHANGE\n"
	      "                 reverse one change (what it expunged, moved, removed)\n"
	      "  version        print the version\n", f);
}

/* --- init ------------------------------------------------------------- */

static void sleep_until(double due)
{
	struct timespec ts;
	double now = clock_now();

	if (due <= now)
		return;
	ts.tv_sec = (time_t)(due - now);
	ts.tv_nsec = (long)((due - now - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Create the repository, then commit the Maildir the way maildag-syncd
 * commits it (worktree_commit, under the writer lock): one way of
 * turning a disk into a tree, so the first commit holds what any later
 * one would (copies under keys of their own, mtimes recorded).  A copy
 * made a moment ago may be half of a move: it is looked at again once
 * settled, as syncd does.
 */
static int cmd_init(struct mailbox *mb, int argc, char **argv)
{
	struct worktree_result res;
	struct worktree_counts total = { 0 };
	struct worktree *wt = NULL;
	struct repo *repo = NULL;
	size_t unreadable = 0;
	double due;
	int r = EX_TEMPFAIL;

	(void)argv;
	if (argc > 1) {
		usage(stderr);
		return EX_USAGE;
	}
	if (path_exists(mb->repository)) {
		log_error("'%s' already exists", mb->repository);
		return EX_CANTCREAT;
	}
	if (mailbox_create_folder(mb, "") < 0)
		return EX_TEMPFAIL;
	if (check_safe_owner(mb->maildir, mb->uid) < 0)
		return EX_NOPERM;
	if (repo_open(&repo, mb->repository, REPO_CREATE) < 0)
		return EX_TEMPFAIL;
	if (repo_lock(repo, 10000) < 0)
		goto done;
	wt = worktree_new(repo, mb->maildir, mb->cfg->node);
	worktree_set_origin(wt, "import existing Maildir");
	worktree_dirty_all(wt);
	do {
		if (worktree_commit(wt, &res) < 0)
			goto done;
		total.added += res.counts.added;
		total.folders_added += res.counts.folders_added;
		unreadable = res.unreadable;
		due = worktree_deferred_due(wt);
		if (due)
			sleep_until(due);
	} while (due);
	printf("initialised '%s': %zu messages in %zu folders imported from '%s'",
	       mb->repository, total.added, total.folders_added + 1,
	       mb->maildir);
	if (unreadable)
		printf(", %zu unreadable files skipped", unreadable);
	if (worktree_left_out(wt))
		printf(", %zu folders left out by folder_limit (%zu)",
		       worktree_left_out(wt), format_get_limits()->folders);
	printf("\n");
	serve_print_authorized_keys(stdout, mb);
	r = EX_OK;
done:
	worktree_free(wt);
	repo_free(repo);
	return r;
}

int admin_refuse_root(const char *verb)
{
	if (getuid() != 0 && geteuid() != 0)
		return 0;
	log_error("refusing to run 'maildag %s' as root: what it writes into "
		  "the user's repository would belong to root; run it as the "
		  "mailbox's user ('sudo -u <user> maildag %s')", verb, verb);
	return EX_NOPERM;
}

int admin_open_repo(struct repo **out, const struct mailbox *mb)
{
	int r = repo_open(out, mb->repository, 0);

	if (r == E_NOTFOUND) {
		log_error("no repository at '%s' (run 'maildag init')",
			  mb->repository);
		return EX_NOINPUT;
	}
	return r < 0 ? EX_TEMPFAIL : 0;
}

/* --- log -------------------------------------------------------------- */

/* "delivered to FOLDER: from ..., "subject", N bytes" for one message */
static void describe_message(struct strbuf *out, struct repo *r,
			     const char *path, size_t plen, const char *hex)
{
	char *p = xstrndup(path, plen), *folder = NULL;
	struct layout_path lp;
	struct oid id;
	struct strbuf content = STRBUF_INIT;

	if (layout_parse_tree_path(&lp, p) == 0)
		folder = xstrndup(lp.folder, lp.folder_len);
	strbuf_addf(out, "delivered to %s",
		    folder_display(folder ? folder : ""));
	free(folder);
	free(p);
	if (oid_fromstr(&id, hex) < 0 ||
	    repo_blob_read(&content, r, &id) < 0)
		return;
	{
		struct strbuf from = STRBUF_INIT, subject = STRBUF_INIT;
		size_t len = content.len;

		header_value(&from, content.buf, len, "From", 60);
		header_value(&subject, content.buf, len, "Subject", 70);
		strbuf_addf(out, ": from %s, \"%s\", %zu bytes",
			    from.len ? from.buf : "(unknown)", subject.buf, len);
		strbuf_release(&from);
		strbuf_release(&subject);
	}
	strbuf_release(&content);
}

/* Print a delivery commit (delivery.h) a line per message. */
static void print_delivery(const char *prefix, struct repo *r,
			   const char *message)
{
	struct delivery_item it;
	const char *pos = message;

	while (delivery_record_next(&it, &pos)) {
		struct strbuf line = STRBUF_INIT;
		char hex[OID_HEXSZ + 1] = "";

		if (it.has_blob)
			oid_tostr(hex, sizeof hex, &it.blob);
		describe_message(&line, r, it.path, it.path_len, hex);
		printf("%s  %s\n", prefix, line.buf);
		strbuf_release(&line);
	}
}

struct log_walk {
	struct repo *r;
	long max, shown;
};

/* One commit of the history (repo_log_fn): its lines. */
static int log_one(const struct oid *id, time_t time, const char *msg,
		   void *data)
{
	struct log_walk *w = data;
	char when[32], prefix[64];
	time_t t = (time_t)time;

	if (w->max >= 0 && w->shown >= w->max)
		return 1;
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
	snprintf(prefix, sizeof prefix, "%s  %.10s", when, oid_hex(id));
	if (delivery_message_is_delivery(msg))
		print_delivery(prefix, w->r, msg);
	else
		printf("%s  %.*s\n", prefix, (int)strcspn(msg, "\n"), msg);
	w->shown++;
	return 0;
}

static int cmd_log(struct mailbox *mb, int argc, char **argv)
{
	struct log_walk w = { .max = -1 };
	int c, ret = EX_TEMPFAIL;

	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--expunged"))
			return cmd_log_expunged(mb, argc, argv);
	optind = 1;
	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c == 'n') {
			char *end;
			w.max = strtol(optarg, &end, 10);
			if (*end || w.max < 0) {
				log_error("bad count '%s'", optarg);
				return EX_USAGE;
			}
		} else {
			usage(stderr);
			return EX_USAGE;
		}
	}
	if ((c = admin_open_repo(&w.r, mb)))
		return c;
	if (repo_log(w.r, REF_MAIL, log_one, &w) >= 0)
		ret = EX_OK;
	repo_free(w.r);
	return ret;
}

int main(int argc, char **argv)
{
	/*
	 * writes: the verb writes a repository (ours, or a file:// peer's),
	 * so root may not run it: the files it made would be root's in the
	 * user's repository.  merge decides for itself (-n writes nothing).
	 */
	static const struct {
		const char *name;
		int (*fn)(struct mailbox *, int, char **);
		bool writes;
	} cmds[] = {
		{ "init", cmd_init, true },
		{ "log", cmd_log, false },
		{ "restore", cmd_restore, true },
		{ "undo", cmd_undo, true },
		{ "confirm", cmd_confirm, true },
		{ "fsck", cmd_fsck, false },
		{ "merge", cmd_merge, false },
		{ "push", cmd_push, true },
		{ "fetch", cmd_fetch, true },
		{ "status", cmd_status, false },
		{ "sync", cmd_sync, false },
		/* refuses root itself, in words the peer and syslog see */
		{ "serve", cmd_serve, false },
	};
	struct mailbox *mb;
	int c, r;
	enum log_level level = LOG_LVL_WARN;

	/* what a verb writes is the user's alone (repo_global_init too) */
	umask(077);
	log_init("maildag", LOG_TO_STDERR, level);
	while ((c = getopt(argc, argv, "+c:vh")) != -1) {
		switch (c) {
		case 'c': config_file = optarg; break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': usage(stdout); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (!strcmp(argv[optind], "version")) {
		puts(PACKAGE_STRING);
		return EX_OK;
	}
	if (!strcmp(argv[optind], "help")) {
		usage(stdout);
		return EX_OK;
	}
	/* git's hook of 'maildag serve': runs with no configuration */
	if (!strcmp(argv[optind], "serve") && optind + 1 < argc &&
	    !strcmp(argv[optind + 1], "--pre-receive"))
		return cmd_serve_pre_receive(argc - optind, argv + optind);
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(argv[optind], cmds[i].name))
			continue;
		if (cmds[i].writes && (r = admin_refuse_root(cmds[i].name)))
			return r;
		r = mailbox_open(&mb, config_file, 0);
		if (r < 0)
			return r == E_NOTFOUND ? EX_NOUSER : EX_CONFIG;
		r = cmds[i].fn(mb, argc - optind, argv + optind);
		mailbox_free(mb);
		repo_global_shutdown();
		return r;
	}
	log_error("unknown command '%s'", argv[optind]);
	usage(stderr);
	return EX_USAGE;
}
