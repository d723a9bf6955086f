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
 *
 * Quorum delivery (DESIGN section 7): with a quorum N > 1, once the
 * message is committed (or found committed by an earlier attempt) the
 * LDA asks maildag-syncd over its control socket to wait until N-1 peers
 * have accepted a push of that commit, and exits 0 only if they have.
 * Otherwise it exits 75; the message stays committed, and the MTA's
 * retry finds it through the recent-delivery check and waits again.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "folder.h"
#include "format.h"
#include "fsutil.h"
#include "log.h"
#include "mailbox.h"
#include "maildir_name.h"
#include "repo.h"
#include "strbuf.h"
#include "worktree.h"
#include "xalloc.h"

#define DEDUP_WINDOW (7 * 24 * 3600)	/* how far back a retry is recognised */
#define TMP_MAX_AGE (36 * 3600)		/* the Maildir rule for tmp/ */
#define COPY_BUF 65536
#define QUORUM_MAX 1000
/* seconds kept back from the deadline while waiting for quorum */
#define QUORUM_MARGIN (CONTROL_WAIT_GRACE + 2)

static struct {
	const char *sender;
	const char *recipient;
	const char *mailbox;
	const char *config;
	bool no_create;
	int deadline;
	int quorum;		/* -q; 0: the configuration's */
	bool verbose;
} opt = { .deadline = -1 };

/*
 * What the deadline handler may take back: the tmp/ file before the
 * rename; after it, the message in new/ and its journal entry, unless a
 * committer has claimed the entry (see the journal comment below).
 */
static char tmp_path_for_signal[PATH_MAX];
static char dest_for_signal[PATH_MAX];
static char entry_for_signal[PATH_MAX];
static char withdrawn_for_signal[PATH_MAX + 2];

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

/*
 * Take back what this delivery wrote, unless a committer has claimed it
 * already (then it will be committed, and the MTA's retry finds it).
 * Async-signal-safe: the deadline handler calls it.
 */
static void withdraw(void)
{
	if (tmp_path_for_signal[0])
		unlink(tmp_path_for_signal);
	if (entry_for_signal[0] &&
	    rename(entry_for_signal, withdrawn_for_signal) == 0) {
		if (dest_for_signal[0])
			unlink(dest_for_signal);
		unlink(withdrawn_for_signal);
	}
}

static void on_deadline(int sig)
{
	static const char msg[] = "4.4.7 delivery deadline passed\n";
	ssize_t r;

	(void)sig;
	/* nothing durable has been promised: the MTA will retry */
	withdraw();
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
	static const struct option longopts[] = {
		{ "quorum", required_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:a:m:c:d:q:NvV", longopts,
				NULL)) != -1) {
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
		case 'q': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > QUORUM_MAX)
				fail(EX_USAGE, "5.3.5", "bad quorum '%s'", optarg);
			opt.quorum = (int)v;
			break;
		}
		default:
			if (optopt)
				fail(EX_USAGE, "5.3.5",
				     "bad command line option '-%c'", optopt);
			fail(EX_USAGE, "5.3.5", "bad command line option '%s'",
			     argv[optind - 1]);
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
 * A folder folder_limit leaves out (on disk, not in refs/heads/mail, no
 * room for it) is never delivered into: the commit would make a tree
 * every peer refuses.
 */
static bool replicated(const struct mailbox *mb, const char *dir)
{
	if (worktree_folder_fits(mb->repository, dir))
		return true;
	log_info("folder '%s' is left out by folder_limit (%zu), not "
		 "replicated; using INBOX", folder_display(dir),
		 format_get_limits()->folders);
	return false;
}

/*
 * The folder to deliver into: -m, else the address extension when such a
 * folder exists, else INBOX; a folder left out by folder_limit counts as
 * none.  Environment values are never trusted to be paths: an extension
 * that is not a plain folder name is ignored.
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
		if (!replicated(mb, dir)) {
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
	if (!folder_dir_valid(dir) || !mailbox_folder_exists(mb, dir) ||
	    !replicated(mb, dir)) {
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
		int w = write_full(fd, rp, len);
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
			if (write_full(fd, buf, have) < 0)
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
 * The delivery journal and group commit.
 *
 * Every delivery, before it renames its message into new/, publishes an
 * entry <repo>/maildag/pending/<blob id>-<key> holding "<path in the
 * Maildir>\n", and keeps an flock on it for as long as it lives.  The
 * entry is written as a dot-file and renamed into place with the lock
 * already held, so an unlocked entry always means its writer is dead.
 *
 * Whoever holds the writer lock commits every entry whose message is in
 * the Maildir, in one commit, and removes those entries: deliveries that
 * queue behind the lock are committed together (group commit).  It first
 * claims each entry by renaming it to "<entry>.c"; a delivery whose
 * deadline passes while it waits withdraws its entry by renaming it to
 * "<entry>.w" and then removes its message.  Exactly one of the two
 * renames succeeds, so a message is either committed or taken back,
 * never half of each.  A delivery that gets the lock and finds neither
 * its entry nor its claim was committed by someone else; a claim left
 * behind (its committer died) is committed by the next one.  An entry whose message is not in the Maildir is left
 * alone while its writer lives (it is about to rename); a dead writer's
 * entry is finished (the mail client may have moved the message to cur/)
 * or, if the message never reached new/, dropped with its tmp/ file.
 */
struct pending {
	char *entry;		/* path of the journal entry */
	char *folder;		/* "" for INBOX */
	char *sub;		/* "new" or "cur" */
	char *name;		/* file name in the Maildir */
	char *file;		/* full path of the message */
	git_oid blob;
	bool alive;		/* its writer still runs (or is the committer) */
	bool dropped;		/* cut short by a crash: not committed */
};

static void pending_release(struct pending *p)
{
	free(p->entry);
	free(p->folder);
	free(p->sub);
	free(p->name);
	free(p->file);
}

/* Is the entry's writer alive (does it still hold its flock)? */
static bool entry_owner_alive(const char *entry)
{
	int fd = open(entry, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	bool alive;

	if (fd < 0)
		return false;
	alive = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return alive;
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

/*
 * Find a message with key in folder's cur/ (the mail client may have
 * moved an interrupted delivery there).  Returns its name or NULL.
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
 * Remove what a dead delivery left half-way: a ".new-<pid>" entry it did
 * not publish, or a ".w" entry it withdrew without removing its message
 * (it was killed between the two steps).  A live writer's files stay.
 */
static void clean_dead_entry(const struct mailbox *mb, const char *dir,
			     const char *ename)
{
	size_t elen = strlen(ename);
	char *path = xasprintf("%s/%s", dir, ename);

	if (!strncmp(ename, ".new-", 5)) {
		/* its writer locks it just after creating it: give it time */
		struct stat st;
		if (lstat(path, &st) == 0 && st.st_mtime < time(NULL) - 600 &&
		    !entry_owner_alive(path))
			unlink(path);
	} else if (elen > 2 && !strcmp(ename + elen - 2, ".w") &&
		   !entry_owner_alive(path)) {
		char buf[PATH_MAX], *nl, *folder, *name;
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);

		if (fd >= 0)
			close(fd);
		if (n > 0 && (nl = memchr(buf, '\n', (size_t)n)) &&
		    (*nl = '\0', parse_target(&folder, &name, buf) == 0)) {
			char *fdir = mailbox_folder_path(mb, folder);
			char *file = xasprintf("%s/new/%s", fdir, name);
			unlink(file);
			free(file);
			free(fdir);
			free(folder);
			free(name);
		}
		unlink(path);
	}
	free(path);
}

/*
 * Read journal entry name (in dir) into *out.  Returns 1 when it is to
 * be committed, 0 when it is to be left (its writer is still at work) or
 * was dropped, < 0 on error.
 */
static int load_entry(struct pending *out, const struct mailbox *mb,
		      struct repo *r, const git_oid *tree, const char *dir,
		      const char *ename, const char *own)
{
	char buf[PATH_MAX], *nl, *key, *fdir;
	struct pending p = { 0 };
	ssize_t n;
	int fd, ret = 0;

	size_t elen = strlen(ename);
	bool claimed = elen > 2 && !strcmp(ename + elen - 2, ".c"), alive, mine;
	char *unclaimed;

	if (elen <= GIT_OID_HEXSZ + 1 || ename[GIT_OID_HEXSZ] != '-' ||
	    git_oid_fromstrn(&p.blob, ename, GIT_OID_HEXSZ) < 0 ||
	    (elen > 2 && ename[elen - 2] == '.' && !claimed))
		return 0;	/* not an entry, or withdrawn */
	unclaimed = xstrndup(ename, claimed ? elen - 2 : elen);
	p.entry = xasprintf("%s/%s.c", dir, unclaimed);
	if (!claimed) {
		char *e = xasprintf("%s/%s", dir, unclaimed);
		int rc = rename(e, p.entry);
		free(e);
		if (rc < 0) {
			free(unclaimed);
			pending_release(&p);
			return 0;	/* withdrawn meanwhile */
		}
	}
	fd = open(p.entry, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		free(unclaimed);
		pending_release(&p);
		return 0;
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0 || !(nl = memchr(buf, '\n', (size_t)n)) ||
	    (*nl = '\0', parse_target(&p.folder, &p.name, buf) < 0)) {
		log_warn("dropping malformed journal entry '%s'", p.entry);
		unlink(p.entry);
		pending_release(&p);
		return 0;
	}
	key = xstrndup(p.name, maildir_key_len(p.name));
	fdir = mailbox_folder_path(mb, p.folder);
	p.sub = xstrdup("new");
	p.file = xasprintf("%s/new/%s", fdir, p.name);
	/*
	 * Only a dead writer's entry can name a message that is committed
	 * already (it died after the ref moved): look in the tree for
	 * those alone, so the usual delivery reads no shard tree here.
	 */
	mine = own && !strcmp(unclaimed, own);
	alive = mine || entry_owner_alive(p.entry);
	if (!alive && repo_tree_has_key(r, tree, p.folder, key)) {
		/* committed before its writer died, or by syncd since */
		unlink(p.entry);
	} else if (path_exists(p.file)) {
		ret = 1;
	} else if (alive && !mine) {
		/* about to rename its message into new/: give it back */
		char *e = xasprintf("%s/%s", dir, unclaimed);
		rename(p.entry, e);
		free(e);
	} else if (mine && repo_tree_has_key(r, tree, p.folder, key)) {
		/* moved by the client and committed by syncd meanwhile */
		unlink(p.entry);
	} else {
		/* the mail client may have moved it to cur/ already */
		char *cur_name = find_in_cur(mb, p.folder, key);
		if (cur_name) {
			free(p.sub);
			free(p.name);
			free(p.file);
			p.sub = xstrdup("cur");
			p.name = cur_name;
			p.file = xasprintf("%s/cur/%s", fdir, cur_name);
			ret = 1;
		} else {
			/* died before the rename, or expunged already */
			char *tmp = xasprintf("%s/tmp/%s", fdir, key);
			unlink(tmp);
			free(tmp);
			unlink(p.entry);
		}
	}
	if (ret == 1) {
		p.alive = alive;
		log_debug("committing %s", p.name);
		*out = p;
	} else {
		pending_release(&p);
	}
	free(fdir);
	free(key);
	free(unclaimed);
	return ret;
}

/*
 * Check the objects a commit just written names on the paths of ups
 * (repo_object_check): 0, or E_INVALID when one was damaged and removed.
 */
static int check_written(struct repo *r, const git_oid *commit,
			 const git_oid *tree, const struct repo_update *ups,
			 size_t n)
{
	int ret = 0, c;

	if ((c = repo_object_check(r, commit, NULL)) < 0 ||
	    (c = repo_object_check(r, tree, NULL)) < 0)
		return c;
	for (size_t i = 0; i < n && ret == 0; i++) {
		char *path = xstrdup(ups[i].path);
		/* from the top down: a tree is read only once it is checked */
		for (char *slash = strchr(path, '/'); slash && ret == 0;
		     slash = strchr(slash + 1, '/')) {
			git_oid id;
			*slash = '\0';
			if (repo_tree_lookup(&id, r, tree, path) < 0)
				ret = E_FAIL;
			else if ((c = repo_object_check(r, &id, NULL)) < 0)
				ret = c;
			*slash = '/';
		}
		free(path);
	}
	return ret;
}

/*
 * Commit every pending delivery whose message is in the Maildir, in one
 * commit on refs/heads/mail, record them in refs/maildag/worktree, and
 * remove their journal entries.  The caller holds the writer lock; own
 * is the name of its own entry (its flock says nothing), or NULL.
 */
static int commit_pending(struct repo *r, const struct mailbox *mb,
			  const char *journal, const char *own)
{
	struct pending *ps = NULL;
	struct repo_update *ups = NULL;
	struct strbuf msg = STRBUF_INIT, *paths = NULL;
	size_t n = 0, alloc = 0;
	git_oid head, tree, new_tree, commit, wt, wt_tree;
	char *email = xasprintf("lda@%s", mb->cfg->node);
	struct dirent *de;
	DIR *d;
	bool recovering = false;	/* a writer died: a crash, maybe */
	int ret = E_FAIL;

	if (repo_ref_read(&head, r, REF_MAIL) < 0 ||
	    repo_commit_tree(&tree, r, &head) < 0)
		goto done;
	d = opendir(journal);
	if (!d) {
		ret = errno == ENOENT ? 0 :
		      log_error("opendir '%s': %s", journal, strerror(errno));
		goto done;
	}
	while ((de = readdir(d))) {
		struct pending p;
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' ||
		    (len > 2 && !strcmp(de->d_name + len - 2, ".w"))) {
			clean_dead_entry(mb, journal, de->d_name);
			continue;
		}
		if (load_entry(&p, mb, r, &tree, journal, de->d_name, own) != 1)
			continue;
		xgrow((void **)&ps, &alloc, n + 1, sizeof *ps);
		ps[n++] = p;
	}
	closedir(d);
	if (n == 0) {
		ret = 0;
		goto done;
	}

	/*
	 * A dead writer's message and blob were maybe never synced: after
	 * a crash either can be cut short.  Such a message was never
	 * acknowledged, so the MTA will bring it again: drop it.
	 */
	for (size_t i = 0; i < n; i++) {
		git_oid id;
		if (ps[i].alive)
			continue;
		recovering = true;
		if (repo_blob_hash_file(&id, ps[i].file) < 0)
			goto done;
		if (!git_oid_equal(&id, &ps[i].blob)) {
			log_warn("dropping '%s': its content is not what was "
				 "delivered (cut short by a crash?)", ps[i].file);
			unlink(ps[i].file);
			unlink(ps[i].entry);
			ps[i].dropped = true;
		} else if (repo_object_check(r, &ps[i].blob, ps[i].file) == E_FAIL) {
			goto done;
		}
	}
	{
		size_t w = 0;
		for (size_t i = 0; i < n; i++) {
			if (ps[i].dropped)
				pending_release(&ps[i]);
			else
				ps[w++] = ps[i];
		}
		n = w;
	}
	if (n == 0) {
		ret = 0;
		goto done;
	}

	ups = xcalloc(n, sizeof *ups);
	paths = xcalloc(n, sizeof *paths);
	if (n == 1)
		strbuf_addf(&msg, "deliver to %s\n\n", folder_display(ps[0].folder));
	else
		strbuf_addf(&msg, "deliver %zu messages\n\n", n);
	for (size_t i = 0; i < n; i++) {
		char hex[GIT_OID_HEXSZ + 1];

		/* a writer that died early may not have stored the blob */
		if (!repo_object_exists(r, &ps[i].blob) &&
		    repo_blob_from_file(&ps[i].blob, r, ps[i].file) < 0)
			goto done;
		strbuf_init(&paths[i], 0);
		tree_message_path(&paths[i], ps[i].folder, ps[i].sub, ps[i].name);
		ups[i].path = paths[i].buf;
		ups[i].blob = &ps[i].blob;
		git_oid_tostr(hex, sizeof hex, &ps[i].blob);
		strbuf_addf(&msg, "Path: %s\nBlob: %s\n", paths[i].buf, hex);
	}
	/*
	 * Write the trees and the commit, then make everything durable
	 * with one syncfs(2): the messages and their renames into new/, the
	 * blobs, the trees and the commit, of every delivery in this group.
	 * One flush for all, while the others wait for the lock, where
	 * syncing each file would cost one journal commit each.  After a
	 * crash, a tree or commit of the same content may have been left
	 * by the attempt that died, cut short: those are checked first.
	 */
	for (int pass = 0;; pass++) {
		int c = 0;
		if (repo_tree_update(&new_tree, r, &tree, ups, n) < 0)
			goto done;
		if (git_oid_equal(&new_tree, &tree)) {
			/* all committed already, by a committer that then died */
			for (size_t i = 0; i < n; i++)
				unlink(ps[i].entry);
			ret = 0;
			goto done;
		}
		if (repo_commit(&commit, r, &new_tree, &head, 1, msg.buf, -1,
				"maildag-lda", email) < 0)
			goto done;
		if (!recovering ||
		    (c = check_written(r, &commit, &new_tree, ups, n)) == 0)
			break;
		if (c != E_INVALID || pass == 3)
			goto done;
		/* a damaged object was removed: write it again */
	}
	if (repo_syncfs(r) < 0)
		goto done;
	{
		struct stat rs, ms;
		/* the messages are in the Maildir: its file system too */
		if (stat(r->path, &rs) < 0 || stat(mb->maildir, &ms) < 0) {
			log_error("stat '%s': %s", mb->maildir, strerror(errno));
			goto done;
		}
		if (rs.st_dev != ms.st_dev && syncfs_path(mb->maildir) < 0)
			goto done;
	}
	if (repo_ref_cas(r, REF_MAIL, &commit, &head, "maildag-lda: deliver") < 0 ||
	    repo_sync_ref(r, REF_MAIL) < 0)
		goto done;

	/*
	 * The disk now also holds these files: say so, and no more.  Not
	 * synced: if this is lost, maildag-syncd finds the files on disk
	 * and commits them again, which changes nothing.
	 */
	if (repo_ref_read(&wt, r, REF_WORKTREE) == 0 &&
	    repo_commit_tree(&wt_tree, r, &wt) == 0) {
		git_oid wt_new = commit, t;
		if (!git_oid_equal(&wt_tree, &tree) &&
		    (repo_tree_update(&t, r, &wt_tree, ups, n) < 0 ||
		     repo_commit(&wt_new, r, &t, &wt, 1, "worktree: delivery\n",
				 -1, "maildag-lda", email) < 0))
			log_warn("could not record the delivery in '%s'",
				 REF_WORKTREE);
		else if (repo_ref_cas(r, REF_WORKTREE, &wt_new, &wt,
				      "maildag-lda: deliver") < 0)
			log_warn("could not move '%s'", REF_WORKTREE);
	}
	for (size_t i = 0; i < n; i++) {
		log_info("delivered %s to %s as %.12s", ps[i].name,
			 folder_display(ps[i].folder), git_oid_tostr_s(&commit));
		if (unlink(ps[i].entry) < 0 && errno != ENOENT)
			log_warn("unlink '%s': %s", ps[i].entry, strerror(errno));
	}
	ret = 0;
done:
	for (size_t i = 0; i < n; i++) {
		pending_release(&ps[i]);
		if (paths)
			strbuf_release(&paths[i]);
	}
	free(paths);
	free(ps);
	free(ups);
	free(email);
	strbuf_release(&msg);
	return ret;
}

/*
 * Is a delivery of this blob still in the journal (a retry of a delivery
 * that was interrupted)?
 */
static bool blob_pending(const char *journal, const char *hex)
{
	struct dirent *de;
	DIR *d = opendir(journal);
	bool found = false;

	while (d && !found && (de = readdir(d)))
		found = !strncmp(de->d_name, hex, GIT_OID_HEXSZ) &&
			de->d_name[GIT_OID_HEXSZ] == '-';
	if (d)
		closedir(d);
	return found;
}

/*
 * Publish the journal entry for a delivery: written and locked under a
 * dot-name, then renamed into place.  Returns the open, locked fd.
 */
static int publish_entry(const char *journal, const char *entry,
			 const char *target)
{
	char *tmp = xasprintf("%s/.new-%ld", journal, (long)getpid());
	char *line = xasprintf("%s\n", target);
	int fd;

	if (mkdir(journal, 0700) < 0 && errno != EEXIST) {
		log_error("mkdir '%s': %s", journal, strerror(errno));
		fd = -1;
		goto done;
	}
	unlink(tmp);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0 ||
	    write_full(fd, line, strlen(line)) < 0 || rename(tmp, entry) < 0) {
		log_error("journal '%s': %s", entry, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		fd = -1;
	}
done:
	free(line);
	free(tmp);
	return fd;
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

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Quorum delivery: ask maildag-syncd to wait until acks peers accepted
 * commit (or a commit that contains it), for at most what is left until
 * deadline_at (mono_now() time) less QUORUM_MARGIN.  Returns when they
 * have; otherwise exits 75 with the reason.  The message is committed
 * already either way.
 */
static void wait_quorum(const struct mailbox *mb, const git_oid *commit,
			int quorum, double deadline_at)
{
	char hex[GIT_OID_HEXSZ + 1];
	int acks = quorum - 1, timeout, fd, r;
	json_t *req, *ans = NULL, *acked, *err;
	size_t nacked;

	timeout = (int)(deadline_at - mono_now()) - QUORUM_MARGIN;
	if (timeout < 1)
		fail(EX_TEMPFAIL, "4.4.0", "quorum %d not reached: no time left "
		     "before the deadline to wait for peers", quorum);
	fd = control_connect(mb);
	if (fd == E_NOTFOUND)
		fail(EX_TEMPFAIL, "4.4.0", "quorum %d not reached: "
		     "maildag-syncd is not running", quorum);
	if (fd == E_TEMP)
		fail(EX_TEMPFAIL, "4.4.0", "quorum %d not reached: "
		     "maildag-syncd does not accept connections", quorum);
	if (fd < 0)
		fail(EX_TEMPFAIL, "4.4.0", "quorum %d not reached: %s", quorum,
		     why("cannot reach maildag-syncd"));
	git_oid_tostr(hex, sizeof hex, commit);
	log_debug("waiting up to %d s for %d peers to acknowledge %s",
		  timeout, acks, hex);
	req = json_pack("{s:s, s:s, s:i, s:i}", "cmd", "wait", "commit", hex,
			"acks", acks, "timeout", timeout);
	r = control_request(fd, req, &ans, (timeout + CONTROL_WAIT_GRACE) * 1000);
	json_decref(req);
	close(fd);
	if (r == E_TEMP)
		fail(EX_TEMPFAIL, "4.4.0", "quorum %d not reached: no answer "
		     "from maildag-syncd within %d s", quorum,
		     timeout + CONTROL_WAIT_GRACE);
	if (r < 0)
		fail(EX_TEMPFAIL, "4.4.0", "quorum %d not reached: %s", quorum,
		     why("maildag-syncd did not answer"));
	acked = json_object_get(ans, "acked");
	nacked = json_is_array(acked) ? json_array_size(acked) : 0;
	if (json_is_true(json_object_get(ans, "ok"))) {
		struct strbuf names = STRBUF_INIT;
		for (size_t i = 0; i < nacked; i++) {
			const char *nm = json_string_value(json_array_get(acked, i));
			strbuf_addf(&names, "%s%s", i ? ", " : "", nm ? nm : "?");
		}
		log_info("quorum %d reached for %.12s%s%s", quorum, hex,
			 names.len ? ": " : "", names.buf);
		strbuf_release(&names);
		json_decref(ans);
		return;
	}
	err = json_object_get(ans, "error");
	if (json_is_string(err) && *json_string_value(err))
		fail(EX_TEMPFAIL, "4.4.0", "quorum %d not reached: %s", quorum,
		     json_string_value(err));
	fail(EX_TEMPFAIL, "4.4.0", "quorum %d not reached: %zu of %d peers "
	     "acknowledged within %d s", quorum, nacked, acks, timeout);
}

int main(int argc, char **argv)
{
	struct mailbox *mb = NULL;
	struct repo *repo = NULL;
	struct timeval tv;
	struct sigaction sa;
	char *sender, *folder, *fdir, *key, *name, *tmp, *dest, *journal,
	     *entry, *target, *claim;
	char hex[GIT_OID_HEXSZ + 1];
	long long size;
	git_oid blob, wait_for;
	int fd, entry_fd, r, deadline, quorum;
	double deadline_at;

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
	deadline_at = mono_now() + deadline;
	alarm((unsigned)deadline);
	quorum = opt.quorum > 0 ? opt.quorum : mb->cfg->quorum;

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

	/*
	 * 1. the message into tmp/, synced: a name in new/ only ever shows
	 * a whole message, also after a crash, to the mail client too.
	 */
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

	/* 2. the blob, then the journal entry, then the rename into new/ */
	/*
	 * libgit2 syncs nothing here: the LDA syncs what it wrote in
	 * batches (see commit_pending), far fewer journal commits.
	 */
	r = repo_open(&repo, mb->repository, REPO_NO_FSYNC |
		      (opt.no_create || !mb->cfg->create ? 0 : REPO_CREATE));
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
	journal = repo_state_path(repo, "pending");
	/*
	 * The same bytes again: a delivery interrupted after it reached the
	 * journal (finish it), or one committed within the last days.
	 * Under the lock, so that a commit seen is a synced one.
	 */
	if (repo_object_exists(repo, &blob)) {
		bool done;
		if (repo_lock(repo, -1) < 0) {
			unlink(tmp);
			fail(EX_TEMPFAIL, "4.3.0", "repository is busy");
		}
		if (blob_pending(journal, hex) &&
		    commit_pending(repo, mb, journal, NULL) < 0) {
			unlink(tmp);
			fail_temp("cannot finish an interrupted delivery");
		}
		/* and the commit that holds it, to wait for quorum on */
		done = repo_delivery_commit(&wait_for, repo, &blob,
					    DEDUP_WINDOW) == 0;
		repo_unlock(repo);
		if (done) {
			unlink(tmp);
			tmp_path_for_signal[0] = '\0';
			log_info("already delivered (blob %.12s); not stored "
				 "again", hex);
			goto delivered;
		}
		/*
		 * Not committed: a blob left by a delivery that never
		 * finished, which a crash may have cut short before the
		 * sync.  Checked, and removed if damaged, so it is written
		 * again below.
		 */
		if (repo_object_check(repo, &blob, tmp) == E_FAIL) {
			unlink(tmp);
			fail_temp("cannot read the repository");
		}
	}
	name = xasprintf("%s,S=%lld", key, size);
	dest = xasprintf("%s/new/%s", fdir, name);
	target = *folder ? xasprintf("%s/new/%s", folder, name)
			 : xasprintf("new/%s", name);
	entry = xasprintf("%s/%s-%s", journal, hex, key);
	entry_fd = publish_entry(journal, entry, target);
	if (entry_fd < 0) {
		unlink(tmp);
		fail_temp("cannot write the journal");
	}
	/*
	 * Before the lock, so a big message does not hold up the others:
	 * deliveries compress their blobs in parallel.  Synced with the
	 * commit.
	 */
	{
		git_oid written;
		if (repo_blob_from_file(&written, repo, tmp) < 0 ||
		    !git_oid_equal(&written, &blob)) {
			unlink(tmp);
			unlink(entry);
			fail_temp("cannot store the message");
		}
	}
	if (strlen(dest) >= sizeof dest_for_signal ||
	    strlen(entry) >= sizeof entry_for_signal) {
		unlink(tmp);
		unlink(entry);
		fail(EX_TEMPFAIL, "4.3.5", "Maildir path too long");
	}
	strcpy(dest_for_signal, dest);
	snprintf(withdrawn_for_signal, sizeof withdrawn_for_signal, "%s.w",
		 entry);
	strcpy(entry_for_signal, entry);
	if (rename(tmp, dest) < 0) {
		log_error("rename '%s': %s", tmp, strerror(errno));
		entry_for_signal[0] = '\0';
		unlink(tmp);
		unlink(entry);
		fail_temp("cannot move the message into new/");
	}
	/*
	 * From here a retry finds the journal entry, not the tmp file.  The
	 * message, its blob and the rename are synced by whoever commits
	 * it, with the commit's objects: nothing is promised before that.
	 */
	tmp_path_for_signal[0] = '\0';

	/* 3. under the writer lock: commit ours and whatever else waits */
	if (repo_lock(repo, -1) < 0)
		fail(EX_TEMPFAIL, "4.3.0", "repository is busy");
	/* the deadline can no longer take it back: we are the committer */
	entry_for_signal[0] = '\0';
	claim = xasprintf("%s.c", entry);
	if (!path_exists(entry) && !path_exists(claim)) {
		log_debug("committed by another delivery");
	} else if (commit_pending(repo, mb, journal,
				  entry + strlen(journal) + 1) < 0 ||
		   path_exists(entry) || path_exists(claim)) {
		git_oid head, tree;
		/*
		 * Not committed: take the message back out of new/ so the
		 * retry is the only copy.  Only if the ref really did not
		 * move (a failed fsync after the update still moved it).
		 */
		if (repo_ref_read(&head, repo, REF_MAIL) == 0 &&
		    repo_commit_tree(&tree, repo, &head) == 0 &&
		    !repo_tree_has_key(repo, &tree, folder, key)) {
			unlink(dest);
			unlink(entry);
			unlink(claim);
			fail_temp("cannot commit the message");
		}
		unlink(entry);
		unlink(claim);
		log_warn("commit reported an error but the message is "
			 "committed");
	}
	/* still under the lock: mail holds our message, however it came */
	if (quorum > 1 && repo_ref_read(&wait_for, repo, REF_MAIL) < 0)
		fail(EX_TEMPFAIL, "4.4.0", "quorum %d not reached: %s", quorum,
		     why("cannot read the commit to wait for"));
	close(entry_fd);
	free(claim);
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
	/* no lock held while we wait */
	if (quorum > 1)
		wait_quorum(mb, &wait_for, quorum, deadline_at);
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
