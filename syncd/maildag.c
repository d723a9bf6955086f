/*
 * maildag: the admin tool.  Verbs that need only the repository live
 * here; the daemon's verbs (status) will talk to maildag-syncd.
 *
 *	maildag [-c config] init	create the repository, import the Maildir
 *	maildag [-c config] log [-n N]	the mailbox history in mail terms
 *
 * and dispatches the others to syncd/admin-*.c (admin.h).
 */
#include "autoconf.h"

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
#include "folder.h"
#include "fsutil.h"
#include "log.h"
#include "mailbox.h"
#include "maildir_name.h"
#include "repo.h"
#include "strbuf.h"
#include "xalloc.h"

static const char *config_file;

static void usage(FILE *f)
{
	fputs("usage: maildag [-c config] [-v] <command> [<args>]\n"
	      "\n"
	      "commands:\n"
	      "  fetch [-t seconds] [peer...]\n"
	      "                 fetch peers' histories into refs/peers/ (no merge)\n"
	      "  fsck [--all-refs]  check the repository against the format\n"
	      "  init           create the repository and import the Maildir\n"
	      "  log [-n N]     show the mailbox history: deliveries and changes\n"
	      "  merge [-n] [-u] [-q] [-v] A B\n"
	      "                 merge two commits with the Maildir merge\n"
	      "  push [-t seconds] [peer...]\n"
	      "                 push refs/heads/mail to peers\n"
	      "  serve --peer NAME\n"
	      "                 serve one ssh peer's git (authorized_keys command=)\n"
	      "  status [--json]  replication state per peer, from maildag-syncd\n"
	      "  sync           have maildag-syncd push and fetch now\n"
	      "  version        print the version\n", f);
}

/* --- init ------------------------------------------------------------- */

struct import {
	struct repo *repo;
	struct repo_update *ups;
	size_t n, alloc;
	size_t messages, folders, skipped;
};

static void import_add(struct import *im, char *path, const git_oid *blob)
{
	git_oid *id = xmalloc(sizeof *id);

	git_oid_cpy(id, blob);
	xgrow((void **)&im->ups, &im->alloc, im->n + 1, sizeof *im->ups);
	im->ups[im->n] = (struct repo_update){ path, id, false };
	im->n++;
}

static int import_sub(struct import *im, const char *folder,
		      const char *dir, const char *sub)
{
	char *path = xasprintf("%s/%s", dir, sub);
	struct dirent *de;
	DIR *d = opendir(path);
	int ret = 0;

	if (!d) {
		ret = errno == ENOENT ? 0 :
		      log_error("opendir '%s': %s", path, strerror(errno));
		free(path);
		return ret;
	}
	while ((de = readdir(d))) {
		struct strbuf tp = STRBUF_INIT;
		struct stat st;
		git_oid blob;
		char *file;

		if (de->d_name[0] == '.')
			continue;
		file = xasprintf("%s/%s", path, de->d_name);
		if (lstat(file, &st) < 0 || !S_ISREG(st.st_mode) ||
		    !maildir_name_valid(de->d_name)) {
			log_warn("skipping '%s': not a message file", file);
			im->skipped++;
			free(file);
			continue;
		}
		if (repo_blob_from_file(&blob, im->repo, file) < 0) {
			free(file);
			ret = E_FAIL;
			break;
		}
		tree_message_path(&tp, folder, sub, de->d_name);
		import_add(im, strbuf_detach(&tp, NULL), &blob);
		im->messages++;
		free(file);
	}
	closedir(d);
	free(path);
	return ret;
}

static int import_folder(struct import *im, const struct mailbox *mb,
			 const char *folder)
{
	char *dir = mailbox_folder_path(mb, folder);
	int r;

	r = import_sub(im, folder, dir, "cur");
	if (r == 0)
		r = import_sub(im, folder, dir, "new");
	if (r == 0 && *folder) {
		static const git_oid *empty;
		static git_oid empty_id;
		if (!empty) {
			if (repo_blob_from_buffer(&empty_id, im->repo, "", 0) < 0)
				return E_FAIL;
			empty = &empty_id;
		}
		import_add(im, xasprintf("%s/maildirfolder", folder), empty);
	}
	im->folders++;
	free(dir);
	return r;
}

static int cmd_init(struct mailbox *mb, int argc, char **argv)
{
	struct import im = { 0 };
	git_oid head, tree, new_tree, commit;
	struct dirent *de;
	char *subs, msg[256];
	DIR *d;
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
	if (repo_open(&im.repo, mb->repository, REPO_CREATE) < 0)
		return EX_TEMPFAIL;
	if (repo_lock(im.repo, 10000) < 0)
		goto done;
	/* one sync at the end is enough for a bulk import */
	repo_set_fsync(false);
	if (import_folder(&im, mb, "") < 0)
		goto done;
	d = opendir(mb->maildir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] != '.' || !strcmp(de->d_name, ".") ||
		    !strcmp(de->d_name, ".."))
			continue;
		if (!folder_dir_valid(de->d_name)) {
			log_warn("skipping '%s': not a valid folder name",
				 de->d_name);
			continue;
		}
		if (!mailbox_folder_exists(mb, de->d_name))
			continue;
		if (import_folder(&im, mb, de->d_name) < 0) {
			closedir(d);
			goto done;
		}
	}
	if (d)
		closedir(d);
	subs = xasprintf("%s/subscriptions", mb->maildir);
	if (path_exists(subs)) {
		git_oid blob;
		if (repo_blob_from_file(&blob, im.repo, subs) < 0) {
			free(subs);
			goto done;
		}
		import_add(&im, xstrdup("subscriptions"), &blob);
	}
	free(subs);
	if (repo_ref_read(&head, im.repo, REF_MAIL) < 0 ||
	    repo_commit_tree(&tree, im.repo, &head) < 0 ||
	    repo_tree_update(&new_tree, im.repo, &tree, im.ups, im.n) < 0)
		goto done;
	snprintf(msg, sizeof msg, "import existing Maildir\n\n"
		 "%zu messages in %zu folders\n", im.messages, im.folders);
	if (repo_commit(&commit, im.repo, &new_tree, &head, 1, msg, -1,
			NULL, NULL) < 0)
		goto done;
	/* every object reaches the disk before a ref names it */
	if (repo_syncfs(im.repo) < 0)
		goto done;
	repo_set_fsync(true);
	if (repo_ref_cas(im.repo, REF_MAIL, &commit, &head, "maildag init") < 0 ||
	    repo_ref_cas(im.repo, REF_WORKTREE, &commit, &head,
			 "maildag init") < 0)
		goto done;
	printf("initialised '%s': %zu messages in %zu folders imported from '%s'",
	       mb->repository, im.messages, im.folders, mb->maildir);
	if (im.skipped)
		printf(", %zu files skipped", im.skipped);
	printf("\n");
	serve_print_authorized_keys(stdout, mb);
	r = EX_OK;
done:
	for (size_t i = 0; i < im.n; i++) {
		free((char *)im.ups[i].path);
		free((git_oid *)im.ups[i].blob);
	}
	free(im.ups);
	repo_free(im.repo);
	return r;
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

/*
 * The value of header name in the first 64 KiB of a message, unfolded,
 * control characters replaced, cut to max bytes; "" if absent.
 */
static void header_value(struct strbuf *out, const char *msg, size_t len,
			 const char *name, size_t max)
{
	size_t nlen = strlen(name);
	const char *p = msg, *end = msg + (len < 65536 ? len : 65536);

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if (eol == p || (eol == p + 1 && *p == '\r'))
			break;	/* end of the header */
		if ((size_t)(eol - p) > nlen && !strncasecmp(p, name, nlen) &&
		    p[nlen] == ':') {
			const char *v = p + nlen + 1;
			for (;;) {
				for (; v < eol && out->len < max; v++) {
					unsigned char c = (unsigned char)*v;
					if (c == '\r')
						continue;
					strbuf_addch(out, c < 0x20 || c == 0x7f ? ' ' : c);
				}
				/* continuation lines start with white space */
				if (eol + 1 < end && (eol[1] == ' ' || eol[1] == '\t')) {
					v = eol + 1;
					eol = memchr(v, '\n', (size_t)(end - v));
					if (!eol)
						eol = end;
					continue;
				}
				break;
			}
			while (out->len && out->buf[0] == ' ') {
				memmove(out->buf, out->buf + 1, out->len);
				out->len--;
			}
			return;
		}
		p = eol + 1;
	}
}

/* "delivered to FOLDER: from ..., "subject", N bytes" for one message */
static void describe_message(struct strbuf *out, struct repo *r,
			     const char *path, size_t plen, const char *hex)
{
	const char *sub = memmem(path, plen, "/new/", 5);
	git_oid id;
	git_blob *blob;

	if (!sub)
		sub = memmem(path, plen, "/cur/", 5);
	if (!strncmp(path, "new/", 4) || !strncmp(path, "cur/", 4) || !sub)
		strbuf_addstr(out, "delivered to INBOX");
	else
		strbuf_addf(out, "delivered to %.*s", (int)(sub - path - 1),
			    path + 1);
	if (git_oid_fromstrn(&id, hex, GIT_OID_HEXSZ) < 0 ||
	    git_blob_lookup(&blob, r->git, &id) < 0)
		return;
	{
		struct strbuf from = STRBUF_INIT, subject = STRBUF_INIT;
		const char *content = git_blob_rawcontent(blob);
		size_t len = (size_t)git_blob_rawsize(blob);

		header_value(&from, content, len, "From", 60);
		header_value(&subject, content, len, "Subject", 70);
		strbuf_addf(out, ": from %s, \"%s\", %zu bytes",
			    from.len ? from.buf : "(unknown)", subject.buf, len);
		strbuf_release(&from);
		strbuf_release(&subject);
	}
	git_blob_free(blob);
}

/*
 * Print a delivery commit (maildag-lda's "deliver ..." message with one
 * "Path:"/"Blob:" pair per message), a line per message.
 */
static void print_delivery(const char *prefix, struct repo *r,
			   const char *message)
{
	const char *p = message;

	while ((p = strstr(p, "\nPath: "))) {
		const char *path = p + 8, *b;
		size_t plen = strcspn(path, "\n");
		struct strbuf line = STRBUF_INIT;

		p = path + plen;
		b = strncmp(p, "\nBlob: ", 7) ? NULL : p + 7;
		describe_message(&line, r, path, plen, b ? b : "");
		printf("%s  %s\n", prefix, line.buf);
		strbuf_release(&line);
	}
}

static int cmd_log(struct mailbox *mb, int argc, char **argv)
{
	struct repo *r;
	git_revwalk *walk = NULL;
	git_oid id;
	long max = -1, shown = 0;
	int c, ret = EX_TEMPFAIL;

	optind = 1;
	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c == 'n') {
			char *end;
			max = strtol(optarg, &end, 10);
			if (*end || max < 0) {
				log_error("bad count '%s'", optarg);
				return EX_USAGE;
			}
		} else {
			usage(stderr);
			return EX_USAGE;
		}
	}
	if ((c = admin_open_repo(&r, mb)))
		return c;
	if (git_revwalk_new(&walk, r->git) < 0 ||
	    git_revwalk_push_ref(walk, REF_MAIL) < 0) {
		log_error("read '%s': %s", REF_MAIL, repo_git_error());
		goto done;
	}
	git_revwalk_sorting(walk, GIT_SORT_TIME);
	while ((max < 0 || shown < max) && git_revwalk_next(&id, walk) == 0) {
		struct strbuf line = STRBUF_INIT;
		git_commit *commit;
		const char *msg;
		char when[32], prefix[64];
		time_t t;

		if (git_commit_lookup(&commit, r->git, &id) < 0)
			break;
		t = (time_t)git_commit_time(commit);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S",
			 localtime(&t));
		msg = git_commit_message(commit);
		snprintf(prefix, sizeof prefix, "%s  %.10s", when,
			 git_oid_tostr_s(&id));
		if (!strncmp(msg, "deliver ", 8) && strstr(msg, "\nPath: ")) {
			print_delivery(prefix, r, msg);
		} else {
			strbuf_add(&line, msg, strcspn(msg, "\n"));
			printf("%s  %s\n", prefix, line.buf);
		}
		strbuf_release(&line);
		git_commit_free(commit);
		shown++;
	}
	ret = EX_OK;
done:
	git_revwalk_free(walk);
	repo_free(r);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct mailbox *, int, char **);
	} cmds[] = {
		{ "init", cmd_init },
		{ "log", cmd_log },
		{ "fsck", cmd_fsck },
		{ "merge", cmd_merge },
		{ "push", cmd_push },
		{ "fetch", cmd_fetch },
		{ "status", cmd_status },
		{ "sync", cmd_sync },
		{ "serve", cmd_serve },
	};
	struct mailbox *mb;
	int c, r;
	enum log_level level = LOG_LVL_WARN;

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
		r = mailbox_open(&mb, config_file, 0);
		if (r < 0)
			return r == E_NOTFOUND ? EX_NOUSER : EX_CONFIG;
		r = cmds[i].fn(mb, argc - optind, argv + optind);
		mailbox_free(mb);
		git_libgit2_shutdown();
		return r;
	}
	log_error("unknown command '%s'", argv[optind]);
	usage(stderr);
	return EX_USAGE;
}
