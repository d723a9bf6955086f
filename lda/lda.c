/*
 * maildag-lda: deliver one message from standard input into the user's
 * Maildir and commit it into the user's repository (DESIGN section 4).
 *
 * The exit status is the contract with the MTA: 0 delivered and
 * committed, 75 try again later, 67 no such mailbox, 77 refused for good,
 * 64 bad command line.  On failure one line goes to stderr, starting with
 * an RFC 3463 code; message content is never echoed.
 *
 * Crash safety rests on two things.  Before the message is renamed into
 * new/, a journal entry <repo>/maildag/pending/<blob id> (a symlink whose
 * target is the message's path in the Maildir) is written under the
 * writer lock; it is removed once the commit is durable.  Every delivery
 * first finishes the entries it finds (their writers are dead: they would
 * hold the lock).  And a delivery whose bytes are already recorded by a
 * recent delivery commit ("Blob: <id>" in its message) stores nothing and
 * exits 0.  So a delivery killed at any point, or timed out with 75, and
 * retried by the MTA, ends with exactly one copy.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "folder.h"
#include "fsutil.h"
#include "log.h"
#include "mailbox.h"
#include "maildir_name.h"
#include "repo.h"
#include "strbuf.h"
#include "xalloc.h"

#define DEDUP_WINDOW (7 * 24 * 3600)	/* how far back a retry is recognised */
#define TMP_MAX_AGE (36 * 3600)		/* the Maildir rule for tmp/ */
#define COPY_BUF 65536

static struct {
	const char *sender;
	const char *recipient;
	const char *mailbox;
	const char *config;
	bool no_create;
	int deadline;
	bool verbose;
} opt = { .deadline = -1 };

/* what the deadline handler may clean up: set before the rename only */
static char tmp_path_for_signal[PATH_MAX];

/* Print the diagnostic line and exit; never returns. */
static void __attribute__((noreturn, format(printf, 3, 4)))
fail(int status, const char *code, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	fprintf(stderr, "%s %s\n", code, line);
	log_info("not delivered (%d): %s %s", status, code, line);
	exit(status);
}

/* The reason of the last logged error, or what. */
static const char *why(const char *what)
{
	const char *e = log_last_error();
	return *e ? e : what;
}

/* Temporary failure from a logged error: 4.2.2 when the disk is full. */
static void __attribute__((noreturn)) fail_temp(const char *what)
{
	const char *e = why(what);

	if (strstr(e, strerror(ENOSPC)) || strstr(e, strerror(EDQUOT)))
		fail(EX_TEMPFAIL, "4.2.2", "mailbox full: %s", e);
	fail(EX_TEMPFAIL, "4.3.0", "%s", e);
}

static void on_deadline(int sig)
{
	static const char msg[] = "4.4.7 delivery deadline passed\n";
	ssize_t r;

	(void)sig;
	/* nothing durable has been promised: the MTA will retry */
	if (tmp_path_for_signal[0])
		unlink(tmp_path_for_signal);
	r = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)r;
	_exit(EX_TEMPFAIL);
}

static void oom_exit(void)
{
	_exit(EX_TEMPFAIL);
}

static void parse_args(int argc, char **argv)
{
	int c;

	opterr = 0;
	while ((c = getopt(argc, argv, "f:a:m:c:d:NvV")) != -1) {
		switch (c) {
		case 'f': opt.sender = optarg; break;
		case 'a': opt.recipient = optarg; break;
		case 'm': opt.mailbox = optarg; break;
		case 'c': opt.config = optarg; break;
		case 'N': opt.no_create = true; break;
		case 'v': opt.verbose = true; break;
		case 'V':
			puts(PACKAGE_STRING);
			exit(0);
		case 'd': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 86400) {
				fail(EX_USAGE, "5.3.5", "bad deadline '%s'", optarg);
			}
			opt.deadline = (int)v;
			break;
		}
		default:
			fail(EX_USAGE, "5.3.5", "bad command line option '-%c'",
			     optopt);
		}
	}
	if (optind != argc) {
		fail(EX_USAGE, "5.3.5", "unexpected argument '%s'", argv[optind]);
	}
}

/*
 * The envelope sender for Return-Path, from -f or $SENDER; NULL when
 * unknown or unusable.  "" is the null sender of bounces.
 */
static char *envelope_sender(void)
{
	const char *s = opt.sender ? opt.sender : getenv("SENDER");
	size_t len;

	if (!s)
		return NULL;
	len = strlen(s);
	if (len > 998) {
		log_warn("sender address too long; no Return-Path added");
		return NULL;
	}
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			log_warn("sender address has a control character; "
				 "no Return-Path added");
			return NULL;
		}
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>')
		return xstrndup(s + 1, len - 2);
	return xstrdup(s);
}

/*
 * The folder to deliver into: -m, else the address extension when such a
 * folder exists, else INBOX.  Environment values are never trusted to be
 * paths: an extension that is not a plain folder name is ignored.
 */
static char *choose_folder(const struct mailbox *mb)
{
	const char *ext = getenv("EXTENSION");
	char *dir;

	if (opt.mailbox) {
		dir = folder_from_mailbox(opt.mailbox);
		if (!dir) {
			log_warn("'-m %s' is not a valid folder; using INBOX",
				 opt.mailbox);
			return xstrdup("");
		}
		if (!mailbox_folder_exists(mb, dir)) {
			log_info("folder '%s' does not exist; using INBOX",
				 folder_display(dir));
			free(dir);
			return xstrdup("");
		}
		return dir;
	}
	if (!ext || !*ext) {
		ext = getenv("LOCAL_PART_SUFFIX");
		/* Exim's suffix keeps its delimiter: "+lists" */
		if (ext && (*ext == '+' || *ext == '-'))
			ext++;
	}
	if (!ext || !*ext || strchr(ext, '/') || strlen(ext) >= FOLDER_NAME_MAX)
		return xstrdup("");
	dir = xasprintf(".%s", ext);
	if (!folder_dir_valid(dir) || !mailbox_folder_exists(mb, dir)) {
		free(dir);
		return xstrdup("");
	}
	return dir;
}

/* The host part of a Maildir name, with '/', ':' and ',' escaped. */
static void host_part(struct strbuf *out)
{
	char host[256];

	if (gethostname(host, sizeof host) < 0 || !host[0])
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	for (const char *p = host; *p && out->len < 64; p++) {
		if (*p == '/')
			strbuf_addstr(out, "\\057");
		else if (*p == ':')
			strbuf_addstr(out, "\\072");
		else if (*p == ',')
			strbuf_addstr(out, "\\054");
		else if ((unsigned char)*p > 0x20 && *p != 0x7f)
			strbuf_addch(out, *p);
	}
}

/* A new message key: <sec>.M<usec>P<pid>R<random>Q1.<host> */
static char *new_key(struct timeval *tv)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned long long rnd = 0;

	gettimeofday(tv, NULL);
	/* two replicas may share a host name and a microsecond */
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = (unsigned long long)tv->tv_usec * 2654435761u ^
		      (unsigned long long)getpid();
	strbuf_addf(&sb, "%lld.M%06ldP%ldR%016llxQ1.", (long long)tv->tv_sec,
		    (long)tv->tv_usec, (long)getpid(), rnd);
	host_part(&sb);
	return strbuf_detach(&sb, NULL);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read at least want bytes into buf (less only at end of input). */
static ssize_t read_at_least(char *buf, size_t have, size_t want, size_t cap)
{
	while (have < want) {
		ssize_t n = read(STDIN_FILENO, buf + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		have += (size_t)n;
	}
	return (ssize_t)have;
}

/*
 * Copy standard input into fd: drop a leading "From " envelope line, add
 * Return-Path when the sender is known and the message has none on top,
 * then the bytes exactly as given.  *size gets the bytes written.
 * Returns 0, -1 on an I/O error (errno set), or E_PERM when over limit.
 */
static int copy_message(int fd, const char *sender, long long limit,
			long long *size)
{
	char *buf = xmalloc(COPY_BUF);
	size_t have = 0, off = 0;
	ssize_t n;
	int r = -1;

	*size = 0;
	if ((n = read_at_least(buf, 0, 5, COPY_BUF)) < 0)
		goto done;
	have = (size_t)n;
	if (have >= 5 && !memcmp(buf, "From ", 5)) {
		/* discard through the end of the envelope line */
		for (;;) {
			char *nl = memchr(buf, '\n', have);
			if (nl) {
				off = (size_t)(nl + 1 - buf);
				break;
			}
			if ((n = read(STDIN_FILENO, buf, COPY_BUF)) < 0) {
				if (errno == EINTR) {
					have = 0;
					continue;
				}
				goto done;
			}
			have = (size_t)n;
			if (n == 0)
				break;
		}
	}
	/* enough to see whether the message starts with Return-Path: */
	memmove(buf, buf + off, have - off);
	have -= off;
	if ((n = read_at_least(buf, have, 12, COPY_BUF)) < 0)
		goto done;
	have = (size_t)n;
	if (sender && !(have >= 12 && !strncasecmp(buf, "Return-Path:", 12))) {
		char *rp = xasprintf("Return-Path: <%s>\n", sender);
		size_t len = strlen(rp);
		int w = write_all(fd, rp, len);
		free(rp);
		if (w < 0)
			goto done;
		*size += (long long)len;
	}
	for (;;) {
		if (have) {
			if (limit > 0 && *size + (long long)have > limit) {
				r = E_PERM;
				goto done;
			}
			if (write_all(fd, buf, have) < 0)
				goto done;
			*size += (long long)have;
		}
		n = read(STDIN_FILENO, buf, COPY_BUF);
		if (n < 0 && errno == EINTR) {
			have = 0;
			continue;
		}
		if (n < 0)
			goto done;
		if (n == 0)
			break;
		have = (size_t)n;
	}
	r = 0;
done:
	free(buf);
	return r;
}

/*
 * Does a delivery commit within the window already record this blob?
 * Only asked when the blob exists at all, which is rare.
 */
static bool delivered_recently(struct repo *r, const git_oid *blob)
{
	char hex[GIT_OID_HEXSZ + 1], needle[GIT_OID_HEXSZ + 16];
	git_revwalk *walk = NULL;
	git_oid id;
	bool found = false;
	time_t cutoff = time(NULL) - DEDUP_WINDOW;

	git_oid_tostr(hex, sizeof hex, blob);
	snprintf(needle, sizeof needle, "\nBlob: %s\n", hex);
	if (git_revwalk_new(&walk, r->git) < 0)
		return false;
	git_revwalk_sorting(walk, GIT_SORT_TIME);
	if (git_revwalk_push_ref(walk, REF_MAIL) < 0)
		goto done;
	while (!found && git_revwalk_next(&id, walk) == 0) {
		git_commit *c;
		if (git_commit_lookup(&c, r->git, &id) < 0)
			break;
		if (git_commit_time(c) < cutoff) {
			git_commit_free(c);
			break;
		}
		found = strstr(git_commit_message(c), needle) != NULL;
		git_commit_free(c);
	}
done:
	git_revwalk_free(walk);
	return found;
}

/* Does tree hold a message with this key in folder's new/ or cur/? */
static bool tree_has_key(struct repo *r, const git_oid *tree,
			 const char *folder, const char *key)
{
	static const char *const subs[] = { "new", "cur" };
	size_t klen = strlen(key);
	char shard[3];
	bool found = false;

	maildir_shard_hex(shard, key, klen);
	for (size_t i = 0; i < 2 && !found; i++) {
		char *path = *folder ? xasprintf("%s/%s/%s", folder, subs[i], shard)
				     : xasprintf("%s/%s", subs[i], shard);
		git_oid sub;
		git_tree *t;
		if (repo_tree_lookup(&sub, r, tree, path) == 0 &&
		    git_tree_lookup(&t, r->git, &sub) == 0) {
			for (size_t j = 0; j < git_tree_entrycount(t); j++) {
				const char *n = git_tree_entry_name(
					git_tree_entry_byindex(t, j));
				if (!strncmp(n, key, klen) &&
				    (n[klen] == '\0' || n[klen] == ',' ||
				     n[klen] == ':')) {
					found = true;
					break;
				}
			}
			git_tree_free(t);
		}
		free(path);
	}
	return found;
}

/*
 * Commit the message file at file (which is folder/sub/name in the
 * Maildir) onto refs/heads/mail, and record it in refs/maildag/worktree.
 * The caller holds the writer lock.
 */
static int commit_delivery(struct repo *r, const struct mailbox *mb,
			   const char *folder, const char *sub,
			   const char *name, const char *file,
			   const git_oid *written)
{
	struct strbuf path = STRBUF_INIT, msg = STRBUF_INIT;
	char hex[GIT_OID_HEXSZ + 1];
	git_oid blob, head, tree, new_tree, commit, wt, wt_tree;
	struct repo_update up;
	char *email = xasprintf("lda@%s", mb->cfg->node);
	int ret = E_FAIL, attempt;

	tree_message_path(&path, folder, sub, name);
	if (written)
		git_oid_cpy(&blob, written);
	else if (repo_blob_from_file(&blob, r, file) < 0)
		goto done;
	up.path = path.buf;
	up.blob = &blob;
	git_oid_tostr(hex, sizeof hex, &blob);
	strbuf_addf(&msg, "deliver to %s\n\nPath: %s\nBlob: %s\n",
		    folder_display(folder), path.buf, hex);
	for (attempt = 0; attempt < 5; attempt++) {
		if (repo_ref_read(&head, r, REF_MAIL) < 0 ||
		    repo_commit_tree(&tree, r, &head) < 0 ||
		    repo_tree_update(&new_tree, r, &tree, &up, 1) < 0 ||
		    repo_commit(&commit, r, &new_tree, &head, 1, msg.buf, -1,
				"maildag-lda", email) < 0)
			goto done;
		ret = repo_ref_cas(r, REF_MAIL, &commit, &head,
				   "maildag-lda: deliver");
		if (ret != E_RACE)
			break;
	}
	if (ret < 0)
		goto done;
	/* the disk now also holds this one file: say so, and no more */
	if (repo_ref_read(&wt, r, REF_WORKTREE) == 0 &&
	    repo_commit_tree(&wt_tree, r, &wt) == 0) {
		git_oid wt_new = commit, t;
		if (!git_oid_equal(&wt_tree, &tree) &&
		    (repo_tree_update(&t, r, &wt_tree, &up, 1) < 0 ||
		     repo_commit(&wt_new, r, &t, &wt, 1, "worktree: delivery\n",
				 -1, "maildag-lda", email) < 0))
			log_warn("could not record the delivery in '%s'",
				 REF_WORKTREE);
		else if (repo_ref_cas(r, REF_WORKTREE, &wt_new, &wt,
				      "maildag-lda: deliver") < 0)
			log_warn("could not move '%s'", REF_WORKTREE);
	}
	ret = 0;
	log_info("delivered %s to %s as %.12s", name, folder_display(folder),
		 git_oid_tostr_s(&commit));
done:
	free(email);
	strbuf_release(&msg);
	strbuf_release(&path);
	return ret;
}

/*
 * Find a message with key in folder's cur/ (the mail client may have
 * moved a recovered delivery there).  Returns its name or NULL.
 */
static char *find_in_cur(const struct mailbox *mb, const char *folder,
			 const char *key)
{
	char *dir = mailbox_folder_path(mb, folder);
	char *cur = xasprintf("%s/cur", dir);
	size_t klen = strlen(key);
	char *found = NULL;
	struct dirent *de;
	DIR *d = opendir(cur);

	while (d && (de = readdir(d))) {
		if (!strncmp(de->d_name, key, klen) &&
		    (de->d_name[klen] == ',' || de->d_name[klen] == ':' ||
		     de->d_name[klen] == '\0')) {
			found = xstrdup(de->d_name);
			break;
		}
	}
	if (d)
		closedir(d);
	free(cur);
	free(dir);
	return found;
}

/*
 * Parse a journal target "[<folder>/]new/<name>" into its folder and
 * name (new strings); E_INVALID if it is not of that form.
 */
static int parse_target(char **folder, char **name, const char *target)
{
	const char *slash = strrchr(target, '/');
	size_t flen;

	if (!slash || slash - target < 3 || strncmp(slash - 3, "new", 3))
		return E_INVALID;
	if (slash - 3 == target)
		flen = 0;
	else if (slash - target >= 5 && slash[-4] == '/')
		flen = (size_t)(slash - 4 - target);
	else
		return E_INVALID;
	*folder = xstrndup(target, flen);
	*name = xstrdup(slash + 1);
	if (!folder_dir_valid(*folder) || !maildir_name_valid(*name)) {
		free(*folder);
		free(*name);
		return E_INVALID;
	}
	return 0;
}

/* Finish one journal entry left by a dead delivery; see the top. */
static int recover_entry(struct repo *r, const struct mailbox *mb,
			 const char *entry_path)
{
	char target[PATH_MAX];
	ssize_t n = readlink(entry_path, target, sizeof target - 1);
	char *folder, *name, *key, *dir, *file, *cur_name;
	git_oid head, tree;
	int ret = 0;

	if (n < 0)
		return log_error("readlink '%s': %s", entry_path, strerror(errno));
	target[n] = '\0';
	if (parse_target(&folder, &name, target) < 0) {
		log_warn("dropping malformed journal entry '%s'", entry_path);
		unlink(entry_path);
		return 0;
	}
	key = xstrndup(name, maildir_key_len(name));
	dir = mailbox_folder_path(mb, folder);
	file = xasprintf("%s/new/%s", dir, name);
	if (repo_ref_read(&head, r, REF_MAIL) < 0 ||
	    repo_commit_tree(&tree, r, &head) < 0) {
		ret = E_TEMP;
	} else if (tree_has_key(r, &tree, folder, key)) {
		/* committed before the crash, or by syncd since */
	} else if (path_exists(file)) {
		log_info("recovering interrupted delivery of %s", name);
		ret = commit_delivery(r, mb, folder, "new", name, file, NULL);
	} else if ((cur_name = find_in_cur(mb, folder, key))) {
		free(file);
		file = xasprintf("%s/cur/%s", dir, cur_name);
		log_info("recovering interrupted delivery of %s", cur_name);
		ret = commit_delivery(r, mb, folder, "cur", cur_name, file,
				      NULL);
		free(cur_name);
	} else {
		/* killed before the rename: drop its tmp/ file */
		free(file);
		file = xasprintf("%s/tmp/%s", dir, key);
		unlink(file);
	}
	if (ret == 0 && unlink(entry_path) < 0 && errno != ENOENT)
		ret = log_error("unlink '%s': %s", entry_path, strerror(errno));
	free(file);
	free(dir);
	free(key);
	free(name);
	free(folder);
	return ret;
}

static int recover_journal(struct repo *r, const struct mailbox *mb,
			   const char *journal)
{
	struct dirent *de;
	DIR *d = opendir(journal);
	int ret = 0;

	if (!d)
		return errno == ENOENT ? 0 :
		       log_error("opendir '%s': %s", journal, strerror(errno));
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *p = xasprintf("%s/%s", journal, de->d_name);
		if (recover_entry(r, mb, p) < 0)
			ret = E_TEMP;
		free(p);
	}
	closedir(d);
	return ret;
}

/* Remove tmp/ files older than 36 hours (the Maildir rule). */
static void clean_tmp(const char *tmpdir)
{
	struct dirent *de;
	DIR *d = opendir(tmpdir);
	time_t cutoff = time(NULL) - TMP_MAX_AGE;

	while (d && (de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_mtime < cutoff &&
		    st.st_atime < cutoff)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	if (d)
		closedir(d);
}

int main(int argc, char **argv)
{
	struct mailbox *mb = NULL;
	struct repo *repo = NULL;
	struct timeval tv;
	struct sigaction sa;
	char *sender, *folder, *fdir, *key, *name, *tmp, *dest, *journal,
	     *entry, *target;
	char hex[GIT_OID_HEXSZ + 1];
	long long size;
	git_oid blob;
	bool seen_before;
	int fd, r, deadline;

	umask(077);
	signal(SIGPIPE, SIG_IGN);
	xalloc_die = oom_exit;
	/* stderr is the bounce text: only the one diagnostic line goes there */
	log_init("maildag-lda", LOG_TO_SYSLOG, LOG_LVL_INFO);
	parse_args(argc, argv);
	if (opt.verbose)
		log_init("maildag-lda", LOG_TO_SYSLOG | LOG_TO_STDERR,
			 LOG_LVL_DEBUG);

	if (getuid() == 0 || geteuid() == 0)
		fail(EX_TEMPFAIL, "4.3.0", "refusing to deliver as root; "
		     "configure the MTA to run maildag-lda as the recipient");

	r = mailbox_open(&mb, opt.config, 0);
	if (r == E_NOTFOUND)
		fail(EX_NOUSER, "5.1.1", "%s", why("no such mailbox"));
	if (r < 0)
		fail(EX_TEMPFAIL, "4.3.5", "%s", why("configuration error"));

	/* our own deadline, below the MTA's: nothing is promised before it */
	deadline = opt.deadline > 0 ? opt.deadline : mb->cfg->lda_deadline;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_deadline;
	sigaction(SIGALRM, &sa, NULL);
	alarm((unsigned)deadline);

	if (opt.recipient)
		log_debug("recipient %s", opt.recipient);
	sender = envelope_sender();

	if (!path_exists(mb->maildir)) {
		if (opt.no_create || !mb->cfg->create)
			fail(EX_NOUSER, "5.1.1", "mailbox '%s' does not exist",
			     mb->maildir);
		if (mailbox_create_folder(mb, "") < 0)
			fail_temp("cannot create the Maildir");
	}
	r = check_safe_owner(mb->maildir, mb->uid);
	if (r < 0)
		fail(EX_TEMPFAIL, "4.3.5", "%s", why("unsafe Maildir"));
	if (path_exists(mb->repository) &&
	    check_safe_owner(mb->repository, mb->uid) < 0)
		fail(EX_TEMPFAIL, "4.3.5", "%s", why("unsafe repository"));

	folder = choose_folder(mb);
	if (mailbox_create_folder(mb, folder) < 0)
		fail_temp("cannot create the folder");
	fdir = mailbox_folder_path(mb, folder);

	/* 1. the message into tmp/, durably */
	key = new_key(&tv);
	tmp = xasprintf("%s/tmp/%s", fdir, key);
	if (strlen(tmp) >= sizeof tmp_path_for_signal)
		fail(EX_TEMPFAIL, "4.3.5", "Maildir path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("open '%s': %s", tmp, strerror(errno));
		fail_temp("cannot write the message");
	}
	strcpy(tmp_path_for_signal, tmp);
	r = copy_message(fd, sender, mb->cfg->size_limit, &size);
	if (r == E_PERM) {
		close(fd);
		unlink(tmp);
		fail(EX_NOPERM, "5.2.3", "message larger than the limit of %lld "
		     "bytes", mb->cfg->size_limit);
	}
	if (r < 0) {
		log_error("write '%s': %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		fail_temp("cannot write the message");
	}
	{
		/* the name's time is the message's time (IMAP INTERNALDATE) */
		struct timespec ts[2] = { { tv.tv_sec, 0 }, { tv.tv_sec, 0 } };
		futimens(fd, ts);
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		log_error("fsync '%s': %s", tmp, strerror(errno));
		unlink(tmp);
		fail_temp("cannot write the message");
	}

	/* 2. under the writer lock: recover, de-duplicate, rename, commit */
	r = repo_open(&repo, mb->repository,
		      opt.no_create || !mb->cfg->create ? 0 : REPO_CREATE);
	if (r == E_NOTFOUND) {
		unlink(tmp);
		fail(EX_NOUSER, "5.1.1", "repository '%s' does not exist",
		     mb->repository);
	}
	if (r < 0) {
		unlink(tmp);
		fail_temp("cannot open the repository");
	}
	if (repo_blob_hash_file(&blob, tmp) < 0) {
		unlink(tmp);
		fail_temp("cannot read the message back");
	}
	git_oid_tostr(hex, sizeof hex, &blob);
	/*
	 * Write the blob before taking the lock, so a big message does not
	 * hold up other deliveries; an existing blob may be a retry.
	 */
	seen_before = repo_object_exists(repo, &blob);
	if (!seen_before) {
		git_oid written;
		if (repo_blob_from_file(&written, repo, tmp) < 0) {
			unlink(tmp);
			fail_temp("cannot store the message");
		}
		if (!git_oid_equal(&written, &blob)) {
			unlink(tmp);
			fail(EX_TEMPFAIL, "4.3.0", "message changed while stored");
		}
	}
	/* the deadline alarm bounds the wait */
	if (repo_lock(repo, -1) < 0) {
		unlink(tmp);
		fail(EX_TEMPFAIL, "4.3.0", "repository is busy");
	}
	journal = repo_state_path(repo, "pending");
	if (recover_journal(repo, mb, journal) < 0) {
		unlink(tmp);
		fail_temp("cannot finish an interrupted delivery");
	}
	if (seen_before && delivered_recently(repo, &blob)) {
		unlink(tmp);
		log_info("already delivered (blob %.12s); not stored again", hex);
		goto delivered;
	}
	name = xasprintf("%s,S=%lld", key, size);
	dest = xasprintf("%s/new/%s", fdir, name);
	target = *folder ? xasprintf("%s/new/%s", folder, name)
			 : xasprintf("new/%s", name);
	entry = xasprintf("%s/%s", journal, hex);
	if (mkdir(journal, 0700) < 0 && errno != EEXIST) {
		log_error("mkdir '%s': %s", journal, strerror(errno));
		unlink(tmp);
		fail_temp("cannot write the journal");
	}
	unlink(entry);
	if (symlink(target, entry) < 0 || fsync_dir(journal) < 0) {
		log_error("journal '%s': %s", entry, strerror(errno));
		unlink(tmp);
		fail_temp("cannot write the journal");
	}
	if (rename(tmp, dest) < 0) {
		log_error("rename '%s': %s", tmp, strerror(errno));
		unlink(tmp);
		unlink(entry);
		fail_temp("cannot move the message into new/");
	}
	/* from here a retry finds the journal entry, not the tmp file */
	tmp_path_for_signal[0] = '\0';
	{
		char *newdir = xasprintf("%s/new", fdir);
		if (fsync_dir(newdir) < 0)
			fail_temp("cannot sync new/");
		free(newdir);
	}
	if (commit_delivery(repo, mb, folder, "new", name, dest, &blob) < 0) {
		git_oid head, tree;
		/*
		 * Not committed: take the message back out of new/ so the
		 * retry is the only copy.  Only if the ref really did not
		 * move (a failed fsync after the update still moved it).
		 */
		if (repo_ref_read(&head, repo, REF_MAIL) == 0 &&
		    repo_commit_tree(&tree, repo, &head) == 0 &&
		    !tree_has_key(repo, &tree, folder, key)) {
			unlink(dest);
			unlink(entry);
			fail_temp("cannot commit the message");
		}
		log_warn("commit reported an error but the message is "
			 "committed");
	}
	if (unlink(entry) < 0)
		log_warn("unlink '%s': %s", entry, strerror(errno));
	free(entry);
	free(target);
	free(dest);
	free(name);
delivered:
	repo_unlock(repo);
	{
		char *tmpdir = xasprintf("%s/tmp", fdir);
		clean_tmp(tmpdir);
		free(tmpdir);
	}
	if (mb->cfg->quorum > 1)
		fail(EX_TEMPFAIL, "4.4.3", "quorum of %d not reached: "
		     "this version of maildag cannot replicate yet",
		     mb->cfg->quorum);
	free(journal);
	free(tmp);
	free(key);
	free(fdir);
	free(folder);
	free(sender);
	repo_free(repo);
	mailbox_free(mb);
	git_libgit2_shutdown();
	return EX_OK;
}
