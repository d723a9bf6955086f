/*
 * serve: maildag serve --peer NAME, the forced command of a peer's
 * key in the user's ~/.ssh/authorized_keys, and the pre-receive hook it
 * has git run:
 *
 *	command="exec /usr/bin/maildag serve --peer mx2",restrict ssh-ed25519 ...
 *
 * sshd runs it for every login with that key, whatever the peer asked
 * for; what the peer asked for is in $SSH_ORIGINAL_COMMAND.  Only what
 * libgit2's and git's ssh transports send is taken: git-upload-pack or
 * git-receive-pack (or "git upload-pack", "git receive-pack"), one
 * space, and one path in git's single quotes, which must name this
 * user's maildag repository (real paths compared).  The peer's words
 * never reach a shell.
 *
 * Invariants:
 * - serve never runs as root, and the peer name is a configured peer;
 * - git runs with an environment of ours alone (no system or global git
 *   configuration, HOME and XDG_CONFIG_HOME pointing nowhere, the
 *   peer's name in SERVE_PEER_ENV), umask 077, and only our hooks
 *   (core.hooksPath is <repo>/maildag/hooks, holding pre-receive alone);
 * - receive-pack: only refs/peers/NAME/mail may change, to a commit,
 *   never deleted.  A push naming any other ref is refused whole by the
 *   pre-receive hook, which sees every ref before any moves while git
 *   keeps the pushed objects in quarantine, so a refused push leaves
 *   nothing behind.  Objects are checked by maildag's history check, as
 *   fetched ones are (receive.fsckObjects is off: purged blobs are
 *   absent on purpose), and the pack is capped (receive.maxInputSize,
 *   serve_max_input());
 * - upload-pack: read-only; refs/heads/mail alone is advertised; purged
 *   blobs are skipped (pack-objects --missing=allow-any) and the sparse
 *   path walk is off.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "admin.h"
#include "alarm.h"
#include "config.h"
#include "format.h"
#include "fsutil.h"
#include "history.h"
#include "log.h"
#include "mailbox.h"
#include "session.h"
#include "strbuf.h"
#include "xalloc.h"

/* how serve tells its hook who is pushing; only serve sets it */
#define SERVE_PEER_ENV "MAILDAG_SERVE_PEER"
/* where git is looked for: never the session's PATH */
#define SERVE_PATH "/usr/local/bin:/usr/bin:/bin"
/* runs "git pack-objects <args>" with --missing=allow-any added */
#define SERVE_PACK_HOOK "f() { exec \"$@\" --missing=allow-any; }; f"
/* the longest command a peer may send */
#define SERVE_MAX_COMMAND 4096

/*
 * receive.maxInputSize: the largest pack one push may send.  A pack
 * carries every message a peer has that we lack (after a partition, a
 * day's mail or more), so the cap is far above one message: 512 MiB, or
 * twice size_limit when that is larger.  Compressed bytes on the wire;
 * what they inflate to is checked when the commits are validated.
 */
#define SERVE_MAX_INPUT_DEFAULT (512LL << 20)

static long long serve_max_input(const struct config *cfg)
{
	if (cfg->size_limit > SERVE_MAX_INPUT_DEFAULT / 2)
		return 2 * cfg->size_limit;
	return SERVE_MAX_INPUT_DEFAULT;
}

static void usage(FILE *f)
{
	fputs("usage: maildag serve --peer NAME  (as the forced command of NAME's\n"
	      "       key in ~/.ssh/authorized_keys; see maildag(1))\n", f);
}

/* --- the command the peer sent ------------------------------------------ */

enum serve_op { SERVE_UPLOAD, SERVE_RECEIVE };

/*
 * One argument in git's quoting (quote.c's sq_quote): 'text', where a
 * single quote or "!" is written '\'' or '\!'.  Appends the text to out
 * and returns where the argument ends, or NULL if s does not start with
 * one.
 */
static const char *sq_dequote(struct strbuf *out, const char *s)
{
	if (*s != '\'')
		return NULL;
	s++;
	for (;;) {
		const char *q = strchr(s, '\'');
		if (!q)
			return NULL;
		strbuf_add(out, s, (size_t)(q - s));
		s = q + 1;
		if (s[0] == '\\' && (s[1] == '\'' || s[1] == '!') &&
		    s[2] == '\'') {
			strbuf_addch(out, s[1]);
			s += 3;
			continue;
		}
		return s;
	}
}

/*
 * Parse what the peer asked for.  On success *op and *path (the caller
 * frees it) are set and 0 returned; otherwise a one-line reason is
 * logged and E_PERM returned.
 */
static int parse_command(enum serve_op *op, char **path, const char *cmd)
{
	static const struct {
		const char *prefix;
		enum serve_op op;
	} verbs[] = {
		{ "git-upload-pack ", SERVE_UPLOAD },
		{ "git-receive-pack ", SERVE_RECEIVE },
		{ "git upload-pack ", SERVE_UPLOAD },
		{ "git receive-pack ", SERVE_RECEIVE },
	};
	struct strbuf sb = STRBUF_INIT;
	const char *arg = NULL, *end;

	*path = NULL;
	if (!cmd || !*cmd) {
		log_error("refused: this key serves git only, and no command "
			  "was given");
		return E_PERM;
	}
	if (strlen(cmd) > SERVE_MAX_COMMAND) {
		log_error("refused: command too long");
		return E_PERM;
	}
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
		size_t n = strlen(verbs[i].prefix);
		if (!strncmp(cmd, verbs[i].prefix, n)) {
			*op = verbs[i].op;
			arg = cmd + n;
			break;
		}
	}
	if (!arg) {
		log_error("refused: '%.64s': this key serves git-upload-pack "
			  "and git-receive-pack only", cmd);
		return E_PERM;
	}
	end = sq_dequote(&sb, arg);
	if (!end || *end) {
		strbuf_release(&sb);
		log_error("refused: '%.64s': one path in single quotes expected",
			  cmd);
		return E_PERM;
	}
	*path = strbuf_detach(&sb, NULL);
	return 0;
}

/*
 * The path the peer asked for, made absolute: an absolute path or
 * "~/..." (libgit2 sends that for ssh://host/~/...); no ".." component,
 * no control character.  The caller frees it; NULL after logging why.
 */
static char *asked_path(const struct mailbox *mb, const char *asked)
{
	const char *p;

	for (p = asked; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			break;
	if (*p) {
		log_error("refused: a control character in the path");
		return NULL;
	}
	for (p = asked; (p = strstr(p, "..")); p += 2)
		if ((p == asked || p[-1] == '/') && (!p[2] || p[2] == '/')) {
			log_error("refused: '%s': '..' in the path", asked);
			return NULL;
		}
	if (asked[0] == '/')
		return xstrdup(asked);
	if (!strcmp(asked, "~") || !strncmp(asked, "~/", 2))
		return xasprintf("%s%s", mb->home, asked + 1);
	log_error("refused: '%s': not an absolute path", asked);
	return NULL;
}

/*
 * Virtual mailboxes and no -a: one key serves every mailbox of the user,
 * so make mb the one whose repository the peer asked for (real paths
 * compared).  0, or E_PERM after logging why.
 */
static int select_by_path(struct mailbox *mb, const char *asked)
{
	char *path = asked_path(mb, asked), *got, **boxes = NULL;
	size_t n = 0;
	int r = E_PERM;

	if (!path)
		return E_PERM;
	got = realpath(path, NULL);
	if (got && config_virtual_mailboxes(&boxes, &n, mb->cfg) == 0) {
		for (size_t i = 0; r < 0 && i < n; i++) {
			char *want;

			if (config_select_mailbox(mb->cfg, boxes[i]) < 0)
				continue;
			want = realpath(mb->cfg->repository, NULL);
			if (want && !strcmp(want, got))
				r = 0;
			free(want);
		}
	}
	if (r == 0) {
		mb->maildir = mb->cfg->maildir;
		mb->repository = mb->cfg->repository;
	} else {
		log_error("refused: '%s' is no virtual mailbox's repository",
			  asked);
	}
	for (size_t i = 0; i < n; i++)
		free(boxes[i]);
	free(boxes);
	free(got);
	free(path);
	return r;
}

/*
 * The real path of the repository the peer asked for, if it is the
 * user's maildag repository; else NULL after logging why.
 */
static char *resolve_repository(const struct mailbox *mb, const char *asked)
{
	char *path = asked_path(mb, asked), *want = NULL, *got = NULL;

	if (!path)
		return NULL;
	got = realpath(path, NULL);
	want = realpath(mb->repository, NULL);
	if (!want) {
		log_error("refused: no maildag repository here ('%s': %s)",
			  mb->repository, strerror(errno));
	} else if (!got || strcmp(got, want)) {
		log_error("refused: '%s' is not the maildag repository", asked);
		free(want);
		want = NULL;
	}
	free(got);
	free(path);
	return want;
}

/* --- the hook ----------------------------------------------------------- */

/* s quoted for sh when it needs it; appended to out */
static void shell_quote(struct strbuf *out, const char *s)
{
	if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789/._+-") == strlen(s)) {
		strbuf_addstr(out, s);
		return;
	}
	strbuf_addch(out, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			strbuf_addstr(out, "'\\''");
		else
			strbuf_addch(out, *s);
	}
	strbuf_addch(out, '\'');
}

/* This program's absolute path (the caller frees it), or NULL. */
static char *self_path(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

	if (n <= 0 || buf[0] != '/')
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

/*
 * Make <repo>/maildag/hooks/pre-receive call this program back, unless
 * it already does.  Written under a name of this process's own and
 * renamed into place: a serve running beside us never sees half of it.
 * Returns the hooks directory (the caller frees it), or NULL.
 */
static char *install_hook(const char *repo)
{
	struct strbuf want = STRBUF_INIT, have = STRBUF_INIT;
	char *dir = xasprintf("%s/maildag/hooks", repo);
	char *hook = xasprintf("%s/pre-receive", dir);
	char *tmp = xasprintf("%s.%ld.tmp", hook, (long)getpid());
	char *self = self_path(), buf[4096];
	int fd, ok = 0;
	ssize_t n;

	if (!self) {
		log_error_errno("cannot find this program's path");
		goto done;
	}
	strbuf_addstr(&want, "#!/bin/sh\n"
		      "# written by 'maildag serve': the peer it serves may "
		      "change refs/peers/<peer>/mail only\n"
		      "exec ");
	shell_quote(&want, self);
	strbuf_addstr(&want, " serve --pre-receive\n");
	if ((fd = open(hook, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		while ((n = read_full(fd, buf, sizeof buf)) > 0)
			strbuf_add(&have, buf, (size_t)n);
		close(fd);
		if (have.len == want.len && !memcmp(have.buf, want.buf, want.len) &&
		    access(hook, X_OK) == 0) {
			ok = 1;
			goto done;
		}
	}
	if (mkdir_p(dir, 0700) < 0)
		goto done;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
	if (fd < 0) {
		log_error_errno("open '%s'", tmp);
		goto done;
	}
	if (write_full(fd, want.buf, want.len) < 0 || fsync(fd) < 0) {
		log_error_errno("write '%s'", tmp);
		close(fd);
		unlink(tmp);
		goto done;
	}
	close(fd);
	if (rename(tmp, hook) < 0) {
		log_error_errno("rename '%s'", tmp);
		unlink(tmp);
		goto done;
	}
	ok = 1;
done:
	/*
	 * git skips a hook it cannot execute (a noexec mount, say) and
	 * takes the push: refuse to serve instead
	 */
	if (ok && access(hook, X_OK) < 0) {
		log_error_errno("cannot run the hook '%s'", hook);
		ok = 0;
	}
	strbuf_release(&want);
	strbuf_release(&have);
	free(self);
	free(tmp);
	free(hook);
	if (!ok) {
		free(dir);
		return NULL;
	}
	return dir;
}

/*
 * The history a push brings, checked as a fetch's is (history.h) while
 * git holds its objects in quarantine: receive.fsckObjects is off, as
 * purged blobs are absent on purpose, so this is the object check.  0,
 * or 1 after saying why.
 */
static int check_pushed(const char *hex)
{
	const char *dir = getenv("GIT_DIR"), *q = getenv("GIT_QUARANTINE_PATH");
	struct strbuf err = STRBUF_INIT;
	struct oid theirs, ours;
	struct repo *r;
	bool have;
	int ret;

	if (oid_fromstr(&theirs, hex) < 0 ||
	    repo_open(&r, dir && *dir ? dir : ".", 0) < 0) {
		log_error("refused for now: cannot read the repository");
		return 1;
	}
	if ((q && *q && repo_add_objects(r, q) < 0) || format_use_repo(r) < 0) {
		repo_free(r);
		log_error("refused for now: cannot read the pushed objects");
		return 1;
	}
	have = repo_ref_read(&ours, r, REF_MAIL) == 0;
	ret = history_check(r, have ? &ours : NULL, NULL, &theirs, &err, NULL,
			    NULL);
	if (ret == E_INVALID)
		log_error("refused: %s", err.buf);
	else if (ret < 0)
		log_error("refused for now: %s", err.len ? err.buf :
			  "the history could not be read");
	strbuf_release(&err);
	repo_free(r);
	return ret < 0 ? 1 : 0;
}

int cmd_serve_pre_receive(int argc, char **argv)
{
	const char *peer = getenv(SERVE_PEER_ENV);
	char line[1024], *own, *first = NULL, *pushed = NULL;
	size_t others = 0, n;
	bool ok = true;

	(void)argv;
	/* the peer sees its refusals (git relays them); the admin too */
	log_init("maildag", LOG_TO_STDERR | LOG_TO_SYSLOG, log_get_level());
	if (argc != 2 || !peer || !config_name_valid(peer)) {
		log_error("maildag serve --pre-receive is git's hook of "
			  "'maildag serve'; it needs %s", SERVE_PEER_ENV);
		return EX_USAGE;
	}
	own = xasprintf("refs/peers/%s/mail", peer);
	/* "<old> <new> <ref>\n" per ref, every one before any moves */
	while (fgets(line, sizeof line, stdin)) {
		char *sp1, *sp2;
		bool good;

		n = strlen(line);
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		sp1 = strchr(line, ' ');
		sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		good = sp2 && !strcmp(sp2 + 1, own) &&
		       strspn(sp1 + 1, "0") != (size_t)(sp2 - sp1 - 1);
		if (good) {
			free(pushed);
			pushed = xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
			continue;
		}
		ok = false;
		if (!first)
			first = xstrdup(sp2 ? sp2 + 1 : line);
		else
			others++;
	}
	if (!ok) {
		if (others)
			log_error("refused: peer %s may change %s only, and this "
				  "push deletes or changes '%.200s' and %zu more",
				  peer, own, first, others);
		else
			log_error("refused: peer %s may change %s only, and this "
				  "push deletes or changes '%.200s'",
				  peer, own, first);
	}
	if (ok && pushed && check_pushed(pushed))
		ok = false;
	free(pushed);
	free(first);
	free(own);
	return ok ? 0 : 1;
}

/* --- serve ---------------------------------------------------------------- */

/*
 * Replace the environment with ours: git reads no configuration but the
 * repository's and our -c, finds no hook but ours, and the peer (who
 * may have set LANG or LC_* through sshd's AcceptEnv) sets nothing.
 */
static int clean_environment(const char *peer)
{
	if (clearenv() != 0 ||
	    setenv("PATH", SERVE_PATH, 1) < 0 ||
	    setenv("HOME", "/nonexistent", 1) < 0 ||
	    setenv("XDG_CONFIG_HOME", "/nonexistent", 1) < 0 ||
	    setenv("GIT_CONFIG_NOSYSTEM", "1", 1) < 0 ||
	    setenv("GIT_CONFIG_SYSTEM", "/dev/null", 1) < 0 ||
	    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1) < 0 ||
	    setenv("LC_ALL", "C", 1) < 0 ||
	    setenv(SERVE_PEER_ENV, peer, 1) < 0)
		return log_error_errno("cannot set the environment");
	return 0;
}

/* Add "-c" and "name=value" to argv. */
static void add_config(char **argv, size_t *n, const char *name,
		       const char *value)
{
	argv[(*n)++] = xstrdup("-c");
	argv[(*n)++] = xasprintf("%s=%s", name, value);
}

/*
 * git's arguments for op, up to the repository (gargv has room for 40):
 * our configuration over the repository's.  Returns how many.
 */
static size_t argv_for_git(char **gargv, enum serve_op op,
			   const char *peer, const char *hooks,
			   const struct config *cfg)
{
	char size[32], *own = NULL;
	size_t n = 0;

	snprintf(size, sizeof size, "%lld", serve_max_input(cfg));
	gargv[n++] = xstrdup("git");
	/* the repository's own config is the user's; these override it */
	add_config(gargv, &n, "core.hooksPath", hooks ? hooks : "/nonexistent");
	add_config(gargv, &n, "core.sharedRepository", "umask");
	if (op == SERVE_RECEIVE) {
		own = xasprintf("!refs/peers/%s/mail", peer);
		/*
		 * No receive.fsckObjects: its link check wants every blob
		 * a received tree names, and purged blobs are absent on
		 * purpose (doc/purge.md 3.6).  maildag's history check
		 * (history.h) checks every commit taken in, as for fetches.
		 */
		add_config(gargv, &n, "receive.fsckObjects", "false");
		add_config(gargv, &n, "receive.maxInputSize", size);
		add_config(gargv, &n, "receive.denyDeletes", "true");
		add_config(gargv, &n, "receive.advertisePushOptions", "false");
		add_config(gargv, &n, "receive.autogc", "false");
		/* a second guard; the hook refuses the push whole */
		add_config(gargv, &n, "receive.hideRefs", "refs/");
		add_config(gargv, &n, "receive.hideRefs", "!refs/heads/mail");
		add_config(gargv, &n, "receive.hideRefs", own);
		gargv[n++] = xstrdup("receive-pack");
	} else {
		add_config(gargv, &n, "uploadpack.hideRefs", "refs/");
		add_config(gargv, &n, "uploadpack.hideRefs", "!refs/heads/mail");
		add_config(gargv, &n, "uploadpack.allowTipSHA1InWant", "false");
		add_config(gargv, &n, "uploadpack.allowReachableSHA1InWant", "false");
		add_config(gargv, &n, "uploadpack.allowAnySHA1InWant", "false");
		add_config(gargv, &n, "uploadpack.allowFilter", "false");
		/*
		 * Purged blobs are absent on purpose: pack-objects skips
		 * them (--missing=allow-any, through the hook git runs
		 * with the shell, appending its own command line), and
		 * the path walk that sends a renamed (flagged) message
		 * again is off (doc/purge.md 1.2, 3.6).
		 */
		add_config(gargv, &n, "pack.useSparse", "false");
		add_config(gargv, &n, "uploadpack.packObjectsHook",
			   SERVE_PACK_HOOK);
		gargv[n++] = xstrdup("upload-pack");
		gargv[n++] = xstrdup("--strict");
	}
	free(own);
	return n;
}

int cmd_serve(struct mailbox *mb, int argc, char **argv)
{
	const char *peer = NULL, *cmd;
	char *asked = NULL, *repo = NULL, *hooks = NULL;
	char *gargv[40];
	size_t n = 0;
	enum serve_op op = SERVE_UPLOAD;
	/* virtual mailboxes, none picked with -a: the path picks one */
	bool every = config_is_virtual(mb->cfg) && !mb->cfg->address;
	int r;

	/* the peer sees its refusals on stderr, the admin in syslog */
	log_init("maildag", LOG_TO_STDERR | LOG_TO_SYSLOG, log_get_level());
	if (getuid() == 0 || geteuid() == 0) {
		log_error("refused: maildag serve does not run as root");
		return EX_NOPERM;
	}
	if (argc == 3 && !strcmp(argv[1], "--peer"))
		peer = argv[2];
	else if (argc == 2 && !strncmp(argv[1], "--peer=", 7))
		peer = argv[1] + 7;
	if (!peer) {
		usage(stderr);
		return EX_USAGE;
	}
	if (!config_name_valid(peer)) {
		log_error("'%s' is not a valid peer name (see maildag.conf(5))",
			  peer);
		return EX_USAGE;
	}
	if (!strcmp(peer, mb->cfg->node)) {
		log_error("'%s' is this replica's own name, not a peer", peer);
		return EX_CONFIG;
	}
	if (!every && !config_peer(mb->cfg, peer)) {
		log_error("'%s' is not a peer in the configuration", peer);
		return EX_CONFIG;
	}
	cmd = getenv("SSH_ORIGINAL_COMMAND");
	if (cmd && !strcmp(cmd, SESSION_COMMAND)) {
		/*
		 * no path from the peer: the configured repository; of
		 * virtual ones, none (77: the peer falls back to git's
		 * transport, which names the repository)
		 */
		if (every) {
			log_error("refused: a session names no virtual mailbox; "
				  "git's transport serves them");
			return EX_NOPERM;
		}
		if (check_safe_owner(mb->repository, mb->uid) < 0)
			return EX_NOPERM;
		umask(077);
		return serve_session(mb, peer, (unsigned long long)
				     serve_max_input(mb->cfg));
	}
	r = parse_command(&op, &asked, cmd);
	if (r < 0)
		return EX_NOPERM;
	if (every && select_by_path(mb, asked) < 0) {
		free(asked);
		return EX_NOPERM;
	}
	if (every && !config_peer(mb->cfg, peer)) {
		log_error("'%s' is not a peer of %s", peer, mb->cfg->address);
		free(asked);
		return EX_CONFIG;
	}
	if (!(repo = resolve_repository(mb, asked))) {
		free(asked);
		return EX_NOPERM;
	}
	if (check_safe_owner(repo, mb->uid) < 0) {
		r = EX_NOPERM;
		goto done;
	}
	/* a held mass deletion reaches no peer (maildag.conf(5) "alarm") */
	if (op == SERVE_UPLOAD && alarm_holding(repo)) {
		log_error("refused for now: a mass deletion made here waits to "
			  "be confirmed or undone (maildag status); fetch "
			  "again later");
		r = EX_TEMPFAIL;
		goto done;
	}
	umask(077);
	if (op == SERVE_RECEIVE && !(hooks = install_hook(repo))) {
		r = EX_TEMPFAIL;
		goto done;
	}
	if (clean_environment(peer) < 0) {
		r = EX_OSERR;
		goto done;
	}
	n = argv_for_git(gargv, op, peer, hooks, mb->cfg);
	gargv[n++] = xstrdup(repo);
	gargv[n] = NULL;
	execvp("git", gargv);
	log_error_errno("cannot run git");
	r = EX_UNAVAILABLE;
	for (size_t i = 0; i < n; i++)
		free(gargv[i]);
done:
	free(hooks);
	free(repo);
	free(asked);
	return r;
}

/* --- the line for the other servers --------------------------------------- */

/*
 * The "<type> <base64>" of the public key next to identity (its .pub),
 * or NULL when there is none or it does not look like one.
 */
static char *public_key(const char *identity)
{
	char *path = xasprintf("%s.pub", identity), line[16384];
	char *type, *key, *save = NULL, *ret = NULL;
	FILE *f = fopen(path, "r");

	free(path);
	if (!f)
		return NULL;
	if (fgets(line, sizeof line, f) &&
	    (type = strtok_r(line, " \t\r\n", &save)) &&
	    (key = strtok_r(NULL, " \t\r\n", &save)) &&
	    strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789-@.") == strlen(type) &&
	    strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		   "0123456789+/=") == strlen(key))
		ret = xasprintf("%s %s", type, key);
	fclose(f);
	return ret;
}

void serve_print_authorized_keys(FILE *out, const struct mailbox *mb)
{
	struct strbuf cmd = STRBUF_INIT, quoted = STRBUF_INIT;
	char *self = self_path();
	const char **seen = xcalloc(mb->cfg->npeers + 1, sizeof *seen);
	size_t nseen = 0;

	shell_quote(&quoted, self ? self : "maildag");
	/* exec: the shell sshd runs the command with gives way to serve */
	strbuf_addf(&cmd, "command=\"exec ");
	for (const char *p = quoted.buf; *p; p++) {
		if (*p == '"' || *p == '\\')
			strbuf_addch(&cmd, '\\');
		strbuf_addch(&cmd, *p);
	}
	strbuf_addf(&cmd, " serve --peer %s\",restrict", mb->cfg->node);
	fprintf(out, "on the other servers, in %s's ~/.ssh/authorized_keys "
		"(this replica logs in there as peer %s):\n",
		mb->user, mb->cfg->node);
	for (size_t i = 0; i < mb->cfg->npeers; i++) {
		const char *id = mb->cfg->peers[i].identity;
		bool dup = false;
		char *key;

		if (!id || strncmp(mb->cfg->peers[i].url, "ssh://", 6))
			continue;
		for (size_t j = 0; j < nseen; j++)
			dup = dup || !strcmp(seen[j], id);
		if (dup)
			continue;
		seen[nseen++] = id;
		if ((key = public_key(id)))
			fprintf(out, "%s %s maildag@%s\n", cmd.buf, key,
				mb->cfg->node);
		else
			fprintf(out, "%s <the public key of %s (%s.pub)>\n",
				cmd.buf, id, id);
		free(key);
	}
	if (!nseen)
		fprintf(out, "%s <the public key maildag-syncd logs in with: "
			"~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub, or "
			"the ssh agent's>\n", cmd.buf);
	free(seen);
	free(self);
	strbuf_release(&quoted);
	strbuf_release(&cmd);
}
