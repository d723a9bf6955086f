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
 * new/, an entry naming it is published in the delivery journal (see
 * common/journal.c for the protocol); whoever commits it under the
 * writer lock removes the entry once the commit is durable, and every
 * delivery commits all the entries it finds (group commit), finishing
 * those of writers that died.  And a delivery whose bytes are already
 * recorded by a recent delivery commit (common/delivery.c) stores
 * nothing and exits 0.  So a delivery killed at any point, or timed out
 * with 75, and retried by the MTA, ends with exactly one copy.
 *
 * Quorum delivery (DESIGN section 7): with a quorum N > 1, once the
 * message is committed (or found committed by an earlier attempt) the
 * LDA asks maildag-syncd over its control socket to wait until N-1 peers
 * have accepted a push of that commit, and exits 0 only if they have.
 * Otherwise it exits 75; the message stays committed, and the MTA's
 * retry finds it through the recent-delivery check and waits again.
 *
 * The group commit is commit.c; lda.h is what the two share.
 */
#include "autoconf.h"
#include "clock.h"

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
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "delivery.h"
#include "folder.h"
#include "format.h"
#include "fsutil.h"
#include "lda.h"
#include "log.h"
#include "purge.h"
#include "strbuf.h"
#include "worktree.h"
#include "xalloc.h"

#define DEDUP_WINDOW (7 * 24 * 3600)	/* how far back a retry is recognised */
#define COPY_BUF 65536
#define QUORUM_MAX 1000
#define DOVECOT_LDA_DEFAULT "/usr/lib/dovecot/dovecot-lda"
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
	const char *dovecot_lda;	/* --dovecot-lda[=PATH]: "" default */
	bool no_dovecot_lda;
	char *extension;	/* of a virtual recipient: "lists" of a+lists@x */
} opt = { .deadline = -1 };

/*
 * What the deadline handler may take back: the tmp/ file before the
 * rename; after it, the message in new/ and its journal entry, unless a
 * committer has claimed the entry (see common/journal.c).
 */
static char tmp_path_for_signal[PATH_MAX];
static char dest_for_signal[PATH_MAX];
static struct journal_entry entry;		/* this delivery's */
static volatile sig_atomic_t withdrawable;	/* entry, by the deadline */

volatile pid_t lda_child;

/* Print the diagnostic line and exit; never returns. */
void fail(int status, const char *code, const char *fmt, ...)
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

void fail_temp(const char *what)
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
	if (withdrawable)
		journal_withdraw(&entry, dest_for_signal[0] ? dest_for_signal
							    : NULL);
}

static void on_deadline(int sig)
{
	static const char msg[] = "4.4.7 delivery deadline passed\n";
	ssize_t r;

	(void)sig;
	/*
	 * nothing durable has been promised: the MTA will retry.  What
	 * dovecot-lda wrote stays, and the retry commits it (sieve.c).
	 */
	if (lda_child > 0)
		kill(lda_child, SIGKILL);
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
		{ "dovecot-lda", optional_argument, NULL, 'D' },
		{ "no-dovecot-lda", no_argument, NULL, 'n' },
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
		case 'D':
			opt.dovecot_lda = optarg ? optarg : "";
			opt.no_dovecot_lda = false;
			break;
		case 'n':
			opt.no_dovecot_lda = true;
			opt.dovecot_lda = NULL;
			break;
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
	const char *ext = opt.extension ? opt.extension : getenv("EXTENSION");
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

	clock_wall_tv(tv);
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
 * Quorum delivery: ask maildag-syncd to wait until acks peers accepted
 * commit (or a commit that contains it), for at most what is left until
 * deadline_at (clock_now() time) less QUORUM_MARGIN.  Returns when they
 * have; otherwise exits 75 with the reason.  The message is committed
 * already either way.
 */
static void wait_quorum(const struct mailbox *mb, const struct oid *commit,
			int quorum, double deadline_at)
{
	char hex[OID_HEXSZ + 1];
	int acks = quorum - 1, timeout, fd, r;
	json_t *req, *ans = NULL, *acked, *err;
	size_t nacked;

	timeout = (int)(deadline_at - clock_now()) - QUORUM_MARGIN;
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
	oid_tostr(hex, sizeof hex, commit);
	log_debug("waiting up to %d s for %d peers to acknowledge %s",
		  timeout, acks, hex);
	req = json_pack("{s:s, s:s, s:i, s:i}", "cmd", "wait", "commit", hex,
			"acks", acks, "timeout", timeout);
	/* one daemon serves every virtual mailbox of the user */
	if (mb->cfg->address)
		json_object_set_new(req, "mailbox",
				    json_string(mb->cfg->address));
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


/*
 * Is the virtual mailbox of cfg (selected) there, or may it be made?
 * Listed ones may be made (with "create"); found ones are those on disk.
 */
static bool virtual_exists(const struct config *cfg)
{
	return config_virtual_listed(cfg) || path_exists(cfg->maildir) ||
	       path_exists(cfg->repository);
}

/*
 * A virtual set-up: -a picks the mailbox.  "alice+lists@example.org" is
 * alice@example.org's folder "lists" (as $EXTENSION) when it is not a
 * mailbox of its own.  A recipient that is no address here bounces with
 * 5.1.3, one that is no mailbox with 5.1.1; neither is echoed raw.
 */
static void open_virtual(struct lda *d)
{
	char *addr, *plus, *base = NULL;
	const char *bad;
	int r;

	if (!opt.recipient)
		fail(EX_USAGE, "5.3.5", "virtual mailboxes: -a user@domain "
		     "is needed to pick one");
	if (config_address_parse(&addr, opt.recipient, &bad) < 0)
		fail(EX_NOUSER, "5.1.3", "bad recipient address: %s", bad);
	/* the daemon's control socket is the user's, not the mailbox's */
	d->mb->user_socket = true;
	r = config_select_mailbox(d->mb->cfg, addr);
	if (r == E_NOTFOUND || (r == 0 && !virtual_exists(d->mb->cfg))) {
		plus = strchr(addr, '+');
		if (plus && plus != addr && plus[1] != '@') {
			base = xasprintf("%.*s%s", (int)(plus - addr), addr,
					 strchr(plus, '@'));
			opt.extension = xstrndup(plus + 1,
						 (size_t)(strchr(plus, '@') -
							  plus - 1));
			r = config_select_mailbox(d->mb->cfg, base);
			if (r == 0 && !virtual_exists(d->mb->cfg))
				r = E_NOTFOUND;
		} else {
			r = E_NOTFOUND;
		}
	}
	if (r == E_NOTFOUND)
		fail(EX_NOUSER, "5.1.1", "no such mailbox '%s'", addr);
	if (r < 0)
		fail(EX_TEMPFAIL, "4.3.5", "%s", why("configuration error"));
	d->mb->maildir = d->mb->cfg->maildir;
	d->mb->repository = d->mb->cfg->repository;
	free(base);
	free(addr);
}

/* Before the message: options, the mailbox, the deadline, the folder. */
static void start(struct lda *d, int argc, char **argv)
{
	struct sigaction sa;
	int r, deadline;

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

	r = mailbox_open(&d->mb, opt.config, 0);
	if (r == E_NOTFOUND)
		fail(EX_NOUSER, "5.1.1", "%s", why("no such mailbox"));
	if (r < 0)
		fail(EX_TEMPFAIL, "4.3.5", "%s", why("configuration error"));
	if (config_is_virtual(d->mb->cfg))
		open_virtual(d);

	/* our own deadline, below the MTA's: nothing is promised before it */
	deadline = opt.deadline > 0 ? opt.deadline : d->mb->cfg->lda_deadline;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_deadline;
	sigaction(SIGALRM, &sa, NULL);
	d->deadline_at = clock_now() + deadline;
	alarm((unsigned)deadline);
	d->quorum = opt.quorum > 0 ? opt.quorum : d->mb->cfg->quorum;

	if (opt.recipient)
		log_debug("recipient %s", opt.recipient);
	d->sender = envelope_sender();

	if (!path_exists(d->mb->maildir)) {
		/* a mailbox the patterns find is one on disk (config.h) */
		if (opt.no_create || !d->mb->cfg->create ||
		    (d->mb->cfg->address && !config_virtual_listed(d->mb->cfg) &&
		     !path_exists(d->mb->repository)))
			fail(EX_NOUSER, "5.1.1", "mailbox '%s' does not exist",
			     d->mb->maildir);
		if (mailbox_create_folder(d->mb, "") < 0)
			fail_temp("cannot create the Maildir");
	}
	if (check_safe_owner(d->mb->maildir, d->mb->uid) < 0)
		fail(EX_TEMPFAIL, "4.3.5", "%s", why("unsafe Maildir"));
	if (path_exists(d->mb->repository) &&
	    check_safe_owner(d->mb->repository, d->mb->uid) < 0)
		fail(EX_TEMPFAIL, "4.3.5", "%s", why("unsafe repository"));

	d->recipient = opt.recipient;
	d->mailbox_arg = opt.mailbox;
	if (opt.dovecot_lda && *opt.dovecot_lda)
		d->dovecot_lda = opt.dovecot_lda;
	else if (opt.dovecot_lda)
		d->dovecot_lda = d->mb->cfg->dovecot_lda ?
				 d->mb->cfg->dovecot_lda : DOVECOT_LDA_DEFAULT;
	else if (!opt.no_dovecot_lda)
		d->dovecot_lda = d->mb->cfg->dovecot_lda;
	/* through dovecot-lda, Sieve and Dovecot choose the folder */
	d->folder = d->dovecot_lda ? xstrdup("") : choose_folder(d->mb);
	if (mailbox_create_folder(d->mb, d->folder) < 0)
		fail_temp("cannot create the folder");
	d->fdir = mailbox_folder_path(d->mb, d->folder);
}

/*
 * 1. The message into tmp/, synced: a name in new/ only ever shows a
 * whole message, also after a crash, to the mail client too.
 */
static void write_tmp(struct lda *d)
{
	int fd, r;

	d->key = new_key(&d->tv);
	d->tmp = xasprintf("%s/tmp/%s", d->fdir, d->key);
	if (strlen(d->tmp) >= sizeof tmp_path_for_signal)
		fail(EX_TEMPFAIL, "4.3.5", "Maildir path too long");
	fd = open(d->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error_errno("open '%s'", d->tmp);
		fail_temp("cannot write the message");
	}
	strcpy(tmp_path_for_signal, d->tmp);
	r = copy_message(fd, d->sender, d->mb->cfg->size_limit, &d->size);
	if (r == E_PERM) {
		close(fd);
		unlink(d->tmp);
		fail(EX_NOPERM, "5.2.3", "message larger than the limit of %lld "
		     "bytes", d->mb->cfg->size_limit);
	}
	if (r < 0) {
		log_error_errno("write '%s'", d->tmp);
		close(fd);
		unlink(d->tmp);
		fail_temp("cannot write the message");
	}
	{
		/* the name's time is the message's time (IMAP INTERNALDATE) */
		struct timespec ts[2] = { { d->tv.tv_sec, 0 },
					  { d->tv.tv_sec, 0 } };
		futimens(fd, ts);
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		log_error_errno("fsync '%s'", d->tmp);
		unlink(d->tmp);
		fail_temp("cannot write the message");
	}
}

/* The repository, and the id of the message's bytes. */
static void open_repo(struct lda *d)
{
	const struct config *cfg = d->mb->cfg;
	int r;

	/*
	 * libgit2 syncs nothing here: the LDA syncs what it wrote in
	 * batches (see commit_pending), far fewer journal commits.
	 */
	r = repo_open(&d->repo, d->mb->repository, REPO_NO_FSYNC |
		      (opt.no_create || !cfg->create ? 0 : REPO_CREATE));
	if (r == E_NOTFOUND) {
		unlink(d->tmp);
		fail(EX_NOUSER, "5.1.1", "repository '%s' does not exist",
		     d->mb->repository);
	}
	/* format 2 is taken exactly when this repository is format 2 */
	if (r < 0 || format_use_repo(d->repo) < 0) {
		unlink(d->tmp);
		fail_temp("cannot open the repository");
	}
	if (repo_blob_hash_file(&d->blob, d->tmp) < 0) {
		unlink(d->tmp);
		fail_temp("cannot read the message back");
	}
	d->journal = journal_dir(d->repo);
}

/*
 * Before 2: the same bytes again?  A delivery interrupted after it
 * reached the journal (finish it), or one committed within the last days
 * (then nothing is stored, and true is returned).  Under the lock, so
 * that a commit seen is a synced one.
 */
bool already_delivered(struct lda *d)
{
	bool done;

	/*
	 * Bytes that were forgotten or purged (purge.h): delivered once,
	 * and not to be kept again, nor to be named by a tree that lists
	 * them (no peer would take it).
	 */
	if (purge_listed(d->repo, NULL, &d->blob) == 1) {
		if (d->quorum > 1 &&
		    repo_ref_read(&d->wait_for, d->repo, REF_MAIL) < 0)
			d->quorum = 1;
		unlink(d->tmp);
		tmp_path_for_signal[0] = '\0';
		log_info("purged blob %.12s: these bytes were delivered once "
			 "and forgotten; not stored again", oid_hex(&d->blob));
		return true;
	}
	if (!repo_object_exists(d->repo, &d->blob))
		return false;
	if (repo_lock(d->repo, -1) < 0) {
		unlink(d->tmp);
		fail(EX_TEMPFAIL, "4.3.0", "repository is busy");
	}
	if (journal_has_blob(d->journal, &d->blob) &&
	    commit_pending(d->repo, d->mb, d->journal, NULL) < 0) {
		unlink(d->tmp);
		fail_temp("cannot finish an interrupted delivery");
	}
	/* and the commit that holds it, to wait for quorum on */
	done = delivery_find_recent(&d->wait_for, d->repo, &d->blob,
				    DEDUP_WINDOW) == 0;
	repo_unlock(d->repo);
	if (done) {
		unlink(d->tmp);
		tmp_path_for_signal[0] = '\0';
		log_info("already delivered (blob %.12s); not stored again",
			 oid_hex(&d->blob));
		return true;
	}
	/*
	 * Not committed: a blob left by a delivery that never finished,
	 * which a crash may have cut short before the sync.  Checked, and
	 * removed if damaged, so it is written again.
	 */
	if (repo_object_check(d->repo, &d->blob, d->tmp) == E_FAIL) {
		unlink(d->tmp);
		fail_temp("cannot read the repository");
	}
	return false;
}

/*
 * 2. The journal entry, the blob, then the rename into new/.  From then
 * a retry finds the journal entry, not the tmp file.  The message, its
 * blob and the rename are synced by whoever commits it, with the
 * commit's objects: nothing is promised before that.
 */
static void publish(struct lda *d)
{
	char *name = xasprintf("%s,S=%lld", d->key, d->size);
	char *dest = xasprintf("%s/new/%s", d->fdir, name);
	struct oid written;
	int r;

	r = strlen(dest) >= sizeof dest_for_signal ? E_INVALID :
	    journal_publish(&entry, d->journal, &d->blob, d->key, d->folder,
			    name);
	if (r < 0)
		unlink(d->tmp);
	if (r == E_INVALID)
		fail(EX_TEMPFAIL, "4.3.5", "Maildir path too long");
	if (r < 0)
		fail_temp("cannot write the journal");
	/*
	 * Before the lock, so a big message does not hold up the others:
	 * deliveries compress their blobs in parallel.  Synced with the
	 * commit.
	 */
	if (repo_blob_from_file(&written, d->repo, d->tmp) < 0 ||
	    !oid_equal(&written, &d->blob)) {
		unlink(d->tmp);
		journal_entry_remove(&entry);
		fail_temp("cannot store the message");
	}
	strcpy(dest_for_signal, dest);
	withdrawable = 1;
	if (format_repo_version() == FORMAT_VERSION_IMAP) {
		/* format 2: its UID in dovecot-uidlist first, under the lock */
		struct oid head, tree;
		r = repo_ref_read(&head, d->repo, REF_MAIL) < 0 ||
		    repo_commit_tree(&tree, d->repo, &head) < 0 ? E_FAIL :
		    worktree_dovecot_deliver(d->repo, &tree, d->mb->maildir,
					     d->folder, d->mb->cfg->node,
					     d->mb->cfg->uid_slot, d->tmp, dest);
	} else {
		r = rename(d->tmp, dest) < 0 ?
		    log_error_errno("rename '%s'", d->tmp) : 0;
	}
	if (r < 0) {
		withdrawable = 0;
		unlink(d->tmp);
		journal_entry_remove(&entry);
		fail_temp(r == E_TEMP ? "dovecot-uidlist is locked" :
			  "cannot move the message into new/");
	}
	tmp_path_for_signal[0] = '\0';
	free(dest);
	free(name);
}

/*
 * 3. Under the writer lock: commit ours and whatever else waits, unless
 * another delivery did already.  The lock is left held.
 */
static void commit(struct lda *d)
{
	if (repo_lock(d->repo, -1) < 0)
		fail(EX_TEMPFAIL, "4.3.0", "repository is busy");
	/* the deadline can no longer take it back: we are the committer */
	withdrawable = 0;
	if (!journal_entry_present(&entry)) {
		log_debug("committed by another delivery");
	} else if (commit_pending(d->repo, d->mb, d->journal, &entry) < 0 ||
		   journal_entry_present(&entry)) {
		struct oid head, tree;
		/*
		 * Not committed: take the message back out of new/ so the
		 * retry is the only copy.  Only if the ref really did not
		 * move (a failed fsync after the update still moved it).
		 */
		if (repo_ref_read(&head, d->repo, REF_MAIL) == 0 &&
		    repo_commit_tree(&tree, d->repo, &head) == 0 &&
		    !mailbox_tree_has_key(d->repo, &tree, d->folder, d->key)) {
			unlink(dest_for_signal);
			journal_entry_remove(&entry);
			fail_temp("cannot commit the message");
		}
		journal_entry_remove(&entry);
		log_warn("commit reported an error but the message is "
			 "committed");
	}
	/* still under the lock: mail holds our message, however it came */
	if (d->quorum > 1 && repo_ref_read(&d->wait_for, d->repo, REF_MAIL) < 0)
		fail(EX_TEMPFAIL, "4.4.0", "quorum %d not reached: %s",
		     d->quorum, why("cannot read the commit to wait for"));
	journal_entry_close(&entry);
}

/* 4. After the commit: tmp/ cleaned, then quorum waited for. */
static void finish(struct lda *d)
{
	repo_unlock(d->repo);
	layout_clean_tmp(d->mb->maildir, d->folder, LAYOUT_TMP_MAX_AGE);
	/* no lock held while we wait */
	if (d->quorum > 1)
		wait_quorum(d->mb, &d->wait_for, d->quorum, d->deadline_at);
}

static void lda_release(struct lda *d)
{
	free(d->journal);
	free(d->tmp);
	free(d->key);
	free(d->fdir);
	free(d->folder);
	free(d->sender);
	repo_free(d->repo);
	mailbox_free(d->mb);
}

int main(int argc, char **argv)
{
	struct lda d = { 0 };

	start(&d, argc, argv);		/* options, mailbox, deadline, folder */
	write_tmp(&d);			/* 1. the message into tmp/ */
	open_repo(&d);
	if (d.dovecot_lda) {
		sieve_deliver(&d);	/* 2, 3 by dovecot-lda, then commit */
	} else if (!already_delivered(&d)) {	/* a retry of committed bytes */
		publish(&d);		/* 2. journal, blob, rename into new/ */
		commit(&d);		/* 3. under the lock, with the others */
	}
	finish(&d);			/* 4. tmp/ cleaned, quorum */
	lda_release(&d);
	repo_global_shutdown();
	return EX_OK;
}
