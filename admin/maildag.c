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

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "admin.h"
#include "format.h"
#include "log.h"

static const char *config_file;
static const char *address;	/* -a: a virtual mailbox */

void admin_usage(FILE *f)
{
	fputs("usage: maildag [-c config] [-a user@domain] [-v] <command> [<args>]\n"
	      "\n"
	      "  -a user@domain  the virtual mailbox to work on (maildag.conf(5));\n"
	      "                  status and sync without it: every one\n"
	      "\n"
	      "commands:\n"
	      "  confirm CHANGE settle a mass-deletion alarm: the deletion was meant\n"
	      "  fetch [-t seconds] [peer...]\n"
	      "                 fetch peers' histories into refs/peers/ (no merge)\n"
	      "  fsck [--all-refs] [--hash]\n"
	      "                 check the repository against the format, the\n"
	      "                 Maildir against the repository\n"
	      "  forget [-n] MESSAGE-ID|KEY...\n"
	      "                 purge messages now, here and on every peer\n"
	      "  init [--format 1|2]\n"
	      "                 create the repository and import the Maildir\n"
	      "                 (format 2: experimental)\n"
	      "  log [-n N]     show the mailbox history: deliveries and changes\n"
	      "  log --expunged [--folder F] [--from TEXT] [--subject TEXT]\n"
	      "      [--message-id ID] [--since TIME] [--until TIME] [-n N]\n"
	      "                 the messages removed from the mailbox\n"
	      "  maintain       a maintenance pass now: retention, purge, pack,\n"
	      "                 roll up, prune\n"
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
	      "  upgrade        make the repository format 2 (experimental)\n"
	      "  undo [-n] CHANGE\n"
	      "                 reverse one change (what it expunged, moved, removed)\n"
	      "  version        print the version\n", f);
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
	if (r < 0)
		return EX_TEMPFAIL;
	/* format 2 is taken exactly when this repository is format 2 */
	if (format_use_repo(*out) < 0) {
		repo_free(*out);
		*out = NULL;
		return EX_TEMPFAIL;
	}
	return 0;
}

/*
 * Virtual mailboxes: -a picks one for any verb; without it, status and
 * sync ask the daemon about every one, other verbs need it.  0 or an
 * exit status.
 */
static int pick_virtual(struct mailbox *mb, const char *verb)
{
	int r;

	if (!config_is_virtual(mb->cfg)) {
		if (!address)
			return 0;
		log_error("-a: no virtual mailboxes are configured "
			  "(\"virtual\" in maildag.conf(5))");
		return EX_USAGE;
	}
	mb->user_socket = true;
	if (!address) {
		/* serve: the path the peer asks for picks the mailbox */
		if (!strcmp(verb, "status") || !strcmp(verb, "sync") ||
		    !strcmp(verb, "serve"))
			return 0;
		log_error("'maildag %s' works on one virtual mailbox: name it "
			  "with -a user@domain", verb);
		return EX_USAGE;
	}
	r = config_select_mailbox(mb->cfg, address);
	if (r == E_NOTFOUND)
		return EX_NOUSER;
	if (r < 0)
		return EX_USAGE;
	mb->maildir = mb->cfg->maildir;
	mb->repository = mb->cfg->repository;
	return 0;
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
		{ "maintain", cmd_maintain, true },
		{ "forget", cmd_forget, true },
		{ "push", cmd_push, true },
		{ "fetch", cmd_fetch, true },
		{ "status", cmd_status, false },
		{ "sync", cmd_sync, false },
		{ "upgrade", cmd_upgrade, true },
		/* refuses root itself, in words the peer and syslog see */
		{ "serve", cmd_serve, false },
	};
	struct mailbox *mb;
	int c, r;
	enum log_level level = LOG_LVL_WARN;

	/* what a verb writes is the user's alone (repo_global_init too) */
	umask(077);
	log_init("maildag", LOG_TO_STDERR, level);
	while ((c = getopt(argc, argv, "+c:a:vh")) != -1) {
		switch (c) {
		case 'c': config_file = optarg; break;
		case 'a': address = optarg; break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': admin_usage(stdout); return EX_OK;
		default: admin_usage(stderr); return EX_USAGE;
		}
	}
	if (optind >= argc) {
		admin_usage(stderr);
		return EX_USAGE;
	}
	if (!strcmp(argv[optind], "version")) {
		puts(PACKAGE_STRING);
		return EX_OK;
	}
	if (!strcmp(argv[optind], "help")) {
		admin_usage(stdout);
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
		if ((r = pick_virtual(mb, cmds[i].name))) {
			mailbox_free(mb);
			return r;
		}
		r = cmds[i].fn(mb, argc - optind, argv + optind);
		mailbox_free(mb);
		repo_global_shutdown();
		return r;
	}
	log_error("unknown command '%s'", argv[optind]);
	admin_usage(stderr);
	return EX_USAGE;
}
