/*
 * net: push and fetch with one peer, in a child process (see net.h).
 *
 * The child reports on one line, the only thing it writes to the pipe:
 *
 *	<status> <id> <changed> <error>\n
 *
 * <status> is net_status_name(), <id> 40 hex digits (all zero for
 * none), <changed> "0" or "1", <error> the rest of the line with "\"
 * written as "\\" and any control character as "\xHH".  Anything else
 * (a child killed half-way, a line that does not parse) is NET_FAILED.
 *
 * A fetch child's memory is bounded (RLIMIT_DATA, net_fetch_memory()):
 * what a hostile pack makes libgit2 allocate (an object inflated whole,
 * a delta base) fails the fetch with an error saying so, instead of
 * taking the machine's memory; what the limits let through fits.
 *
 * Invariants: nothing here prompts, and nothing here writes the
 * repository's config; every error text is one line; a callback that
 * refuses (host key, credentials) records why in the context, and that
 * reason wins over libgit2's own message for the failure it causes.
 */
#include "autoconf.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "format.h"
#include "fsutil.h"
#include "hex.h"
#include "log.h"
#include "net.h"
#include "net_p.h"
#include "repo_p.h"
#include "xalloc.h"

/* A result line longer than this is not one a child of ours wrote. */
#define RESULT_MAX 4096

static const char *const status_names[] = {
	[NET_OK] = "ok",
	[NET_UNREACHABLE] = "unreachable",
	[NET_HOSTKEY] = "hostkey",
	[NET_AUTH] = "auth",
	[NET_REJECTED] = "rejected",
	[NET_INVALID] = "invalid",
	[NET_TIMEOUT] = "timeout",
	[NET_FAILED] = "failed",
};

const char *net_status_name(enum net_status s)
{
	if ((size_t)s < sizeof status_names / sizeof status_names[0] &&
	    status_names[s])
		return status_names[s];
	return "failed";
}

/* --- one-line error texts ---------------------------------------------- */

/*
 * Make s one line in place: each line trimmed, empty ones dropped, the
 * rest joined with "; ", other control characters made spaces.  A remote
 * git's stderr ("fatal: ...\nfatal: ...\n") arrives this way.
 */
static void one_line(char *s)
{
	char *out = s, *p = s;

	while (*p) {
		char *eol = p + strcspn(p, "\r\n"), *b = p, *e = eol;

		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > b) {
			if (out != s) {
				*out++ = ';';
				*out++ = ' ';
			}
			for (; b < e; b++)
				*out++ = (unsigned char)*b < 0x20 || *b == 0x7f
					 ? ' ' : *b;
		}
		p = eol;
		while (*p == '\r' || *p == '\n')
			p++;
	}
	*out = '\0';
}

static __attribute__((format(printf, 3, 4)))
void set_result(struct net_result *res, enum net_status status,
		const char *fmt, ...)
{
	va_list ap;
	int n;

	res->status = status;
	va_start(ap, fmt);
	n = vsnprintf(res->error, sizeof res->error, fmt, ap);
	va_end(ap);
	if (n < 0)
		res->error[0] = '\0';
	else if ((size_t)n >= sizeof res->error)
		memcpy(res->error + sizeof res->error - 4, "...", 4);
	one_line(res->error);
}

/* --- what a callback decided ------------------------------------------- */

enum key_kind { KEY_FILE, KEY_AGENT };

struct key {
	enum key_kind kind;
	char *path;		/* KEY_FILE */
};

struct ctx {
	enum net_op op;
	const struct config_peer *peer;
	const char *dst_ref;	/* the ref the update goes to */
	char *user;		/* the local user name */
	char *home;

	/* the ssh keys to offer, in order; next is the one to offer next */
	struct key *keys;
	size_t nkeys, next;
	bool keys_ready;

	/* a callback's refusal, which explains the failure it causes */
	enum net_status status;
	char error[512];

	/* push: the update libgit2 negotiated, and what the peer said */
	bool negotiated;
	struct oid accepted;
	bool moves;		/* the update changes the peer's ref */
	bool rejected;
	char reject_msg[256];
	bool has_anchor;	/* push: the purge anchor to hide (net_p.h) */
	struct oid anchor;
};

static __attribute__((format(printf, 3, 4)))
void ctx_refuse(struct ctx *c, enum net_status status, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->status != NET_OK)
		return;		/* the first reason is the one */
	c->status = status;
	va_start(ap, fmt);
	n = vsnprintf(c->error, sizeof c->error, fmt, ap);
	va_end(ap);
	if (n < 0)
		c->error[0] = '\0';
	one_line(c->error);
}

/* --- host keys --------------------------------------------------------- */

/*
 * The host key must be the pinned one.  Returning an error here makes
 * libgit2 drop the connection before it authenticates: nothing is sent.
 */
static int cb_certificate(git_cert *cert, int valid, const char *host,
			  void *payload)
{
	struct ctx *c = payload;
	const git_cert_hostkey *hk;
	struct strbuf fps = STRBUF_INIT;
	char fp[7 + 44];

	(void)valid;	/* libgit2's own opinion (known_hosts) is not ours */
	if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) {
		ctx_refuse(c, NET_HOSTKEY, "peer %s (%s): not an ssh host key",
			   c->peer->name, host);
		return GIT_ECERTIFICATE;
	}
	hk = (const git_cert_hostkey *)cert;
	if (!(hk->type & GIT_CERT_SSH_SHA256)) {
		ctx_refuse(c, NET_HOSTKEY,
			   "peer %s (%s): no SHA256 fingerprint of its host key",
			   c->peer->name, host);
		return GIT_ECERTIFICATE;
	}
	config_fingerprint(&fps, hk->hash_sha256);
	snprintf(fp, sizeof fp, "%s", fps.buf);
	strbuf_release(&fps);
	if (!c->peer->host_key) {
		ctx_refuse(c, NET_HOSTKEY,
			   "peer %s (%s) presented host key %s, but no host_key is pinned for it",
			   c->peer->name, host, fp);
		return GIT_ECERTIFICATE;
	}
	if (strcmp(fp, c->peer->host_key)) {
		ctx_refuse(c, NET_HOSTKEY,
			   "peer %s (%s) presented host key %s, expected %s",
			   c->peer->name, host, fp, c->peer->host_key);
		return GIT_ECERTIFICATE;
	}
	log_debug("peer %s: host key %s", c->peer->name, fp);
	return 0;
}

/* --- credentials -------------------------------------------------------- */

static void add_key(struct ctx *c, enum key_kind kind, char *path)
{
	c->keys = xrealloc(c->keys, (c->nkeys + 1) * sizeof *c->keys);
	c->keys[c->nkeys].kind = kind;
	c->keys[c->nkeys].path = path;
	c->nkeys++;
}

/* The keys of net_ssh_keys(), agent first when it is to be offered. */
static void list_keys(struct ctx *c)
{
	char **paths;
	size_t n;
	bool agent;

	c->keys_ready = true;
	net_ssh_keys(&paths, &n, &agent, c->peer, c->home);
	if (agent)
		add_key(c, KEY_AGENT, NULL);
	for (size_t i = 0; i < n; i++)
		add_key(c, KEY_FILE, paths[i]);
	free(paths);
}

void net_ssh_keys(char ***paths, size_t *n, bool *agent,
		  const struct config_peer *p, const char *home)
{
	static const char *const defaults[] = {
		"id_ed25519", "id_ecdsa", "id_rsa",
	};
	const char *sock = getenv("SSH_AUTH_SOCK");
	struct stat st;

	*paths = xcalloc(sizeof defaults / sizeof defaults[0] + 1, sizeof **paths);
	*n = 0;
	*agent = false;
	if (p->identity) {
		(*paths)[(*n)++] = xstrdup(p->identity);
		return;
	}
	/* a stale $SSH_AUTH_SOCK would end the login before the key files */
	*agent = sock && *sock && stat(sock, &st) == 0 && S_ISSOCK(st.st_mode);
	for (size_t i = 0; home && i < sizeof defaults / sizeof defaults[0]; i++) {
		char *path = xasprintf("%s/.ssh/%s", home, defaults[i]);

		if (access(path, R_OK) == 0)
			(*paths)[(*n)++] = path;
		else
			free(path);
	}
}

/*
 * libgit2 asks again after every refusal: each call offers the next key,
 * and when none is left the refusal is final (NET_AUTH), not a loop.
 */
static int cb_credentials(git_credential **out, const char *url,
			  const char *user_from_url, unsigned int allowed,
			  void *payload)
{
	struct ctx *c = payload;
	const char *user = user_from_url && *user_from_url ? user_from_url
							   : c->user;
	const struct key *k;

	(void)url;
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	if (!(allowed & GIT_CREDENTIAL_SSH_KEY)) {
		ctx_refuse(c, NET_AUTH,
			   "peer %s does not accept public-key authentication",
			   c->peer->name);
		return GIT_EAUTH;
	}
	if (!c->keys_ready)
		list_keys(c);
	if (c->next >= c->nkeys) {
		if (!c->nkeys)
			ctx_refuse(c, NET_AUTH,
				   "no ssh key to log in to peer %s as '%s' (set its identity, run an agent or create ~/.ssh/id_ed25519)",
				   c->peer->name, user);
		else if (c->peer->identity)
			ctx_refuse(c, NET_AUTH,
				   "peer %s refused the key '%s' for user '%s'",
				   c->peer->name, c->peer->identity, user);
		else
			ctx_refuse(c, NET_AUTH,
				   "peer %s refused every key offered for user '%s' (%zu tried)",
				   c->peer->name, user, c->nkeys);
		return GIT_EAUTH;
	}
	k = &c->keys[c->next++];
	if (k->kind == KEY_AGENT) {
		log_debug("peer %s: offering the agent's keys as '%s'",
			  c->peer->name, user);
		return git_credential_ssh_key_from_agent(out, user);
	}
	if (access(k->path, R_OK) < 0) {
		ctx_refuse(c, NET_AUTH, "cannot read the ssh key '%s': %s",
			   k->path, strerror(errno));
		return GIT_EAUTH;
	}
	log_debug("peer %s: offering '%s' as '%s'", c->peer->name, k->path,
		  user);
	/* libssh2 derives the public key from the private one */
	return git_credential_ssh_key_new(out, user, NULL, k->path, NULL);
}

/* --- push reports -------------------------------------------------------- */

static int cb_negotiation(const git_push_update **updates, size_t len,
			  void *payload)
{
	struct ctx *c = payload;

	for (size_t i = 0; i < len; i++) {
		if (strcmp(updates[i]->dst_refname, c->dst_ref))
			continue;
		c->negotiated = true;
		oid_cpy(&c->accepted, OID(&updates[i]->dst));
		/* libgit2 sends an update even when the peer is up to date */
		c->moves = !oid_equal(OID(&updates[i]->src),
				      OID(&updates[i]->dst));
	}
	return 0;
}

/* git_remote_upload() returns 0 even when the peer refused the ref */
static int cb_update_reference(const char *refname, const char *status,
			       void *payload)
{
	struct ctx *c = payload;

	if (!status)
		return 0;
	c->rejected = true;
	snprintf(c->reject_msg, sizeof c->reject_msg, "%s: %s", refname,
		 status);
	one_line(c->reject_msg);
	return 0;
}

/* --- errors --------------------------------------------------------------- */

/*
 * A failed libgit2 call: a callback's reason if it gave one, else what
 * libgit2 said, sorted into a status.
 */
static void git_failure(struct net_result *res, const struct ctx *c, int err)
{
	const git_error *e = git_error_last();
	const char *msg = e && e->message ? e->message : "unknown libgit2 error";
	int klass = e ? e->klass : GIT_ERROR_NONE;
	enum net_status st = NET_FAILED;

	if (c->status != NET_OK) {
		set_result(res, c->status, "%s", c->error);
		return;
	}
	if (c->op == NET_FETCH && klass == GIT_ERROR_NOMEMORY) {
		/* the cap of child_main(): most likely an object too large */
		set_result(res, NET_INVALID, "%s: the fetch is limited to %llu "
			   "MiB of memory (sized from size_limit and "
			   "tree_entries_limit): the peer sent an object larger "
			   "than the limits allow", msg, net_fetch_memory() >> 20);
		return;
	}
	if (err == GIT_EAUTH || strstr(msg, "authenticat"))
		st = NET_AUTH;
	else if (err == GIT_ECERTIFICATE)
		st = NET_HOSTKEY;
	else if (c->op == NET_FETCH &&
		 (err == GIT_EMISMATCH || klass == GIT_ERROR_INDEXER ||
		  klass == GIT_ERROR_ZLIB || klass == GIT_ERROR_OBJECT ||
		  strstr(msg, "invalid pack") || strstr(msg, "corrupt") ||
		  strstr(msg, "does not match the type")))
		/* what we read while fetching is the peer's */
		st = NET_INVALID;
	else if (strstr(msg, "failed to connect") ||
		 strstr(msg, "failed to resolve") ||
		 strstr(msg, "Connection refused") ||
		 strstr(msg, "No route to host") ||
		 strstr(msg, "Network is unreachable") ||
		 strstr(msg, "Host is unreachable"))
		st = NET_UNREACHABLE;
	set_result(res, st, "%s", msg);
}

/* --- locks against a killed predecessor --------------------------------- */

/*
 * Take <repo>/maildag/<name> (flock, waiting: the caller's deadline
 * bounds it) and remove the ref lock a killed run of the same operation
 * left.  Returns the lock's descriptor, or -1 when the repository has no
 * maildag/ directory or it cannot be opened (then nothing is removed).
 */
#define STALE_REF_LOCK 60	/* seconds */

static int take_net_lock(const char *repo, const char *name,
			 const char *ref)
{
	char *dir = xasprintf("%s/maildag", repo);
	char *path = xasprintf("%s/%s", dir, name);
	char *reflock = xasprintf("%s/%s.lock", repo, ref);
	int fd = -1;

	if (!is_dir(dir))
		goto done;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_debug_errno("open '%s'", path);
		goto done;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			log_debug_errno("lock '%s'", path);
			close(fd);
			fd = -1;
			goto done;
		}
	}
	/*
	 * We hold the lock every maildag writer of this ref takes, but a
	 * git-receive-pack serving the peer's ssh push does not take it: a
	 * ref lock is stale only when it is older than any live one can be.
	 */
	{
		struct stat st;
		if (lstat(reflock, &st) == 0 &&
		    time(NULL) - st.st_mtime > STALE_REF_LOCK &&
		    unlink(reflock) == 0)
			log_warn("removed stale lock '%s'", reflock);
	}
done:
	free(reflock);
	free(path);
	free(dir);
	return fd;
}

/* --- the operation -------------------------------------------------------- */

/* The path of a file:// URL, %XX decoded as libgit2 does; NULL if not one. */
static char *file_url_path(const char *url)
{
	struct strbuf sb = STRBUF_INIT;

	if (strncmp(url, "file://", 7))
		return NULL;
	for (const char *p = url + 7; *p; p++) {
		int hi, lo;

		if (p[0] == '%' && (hi = hex_value(p[1])) >= 0 &&
		    (lo = hex_value(p[2])) >= 0) {
			strbuf_addch(&sb, hi << 4 | lo);
			p += 2;
		} else {
			strbuf_addch(&sb, *p);
		}
	}
	return strbuf_detach(&sb, NULL);
}

/* Who we are: the password database, else the environment. */
static void local_user(char **user, char **home)
{
	struct passwd *pw = getpwuid(getuid());
	const char *u = getenv("USER"), *h = getenv("HOME");

	*user = xstrdup(pw ? pw->pw_name : u ? u : "nobody");
	*home = xstrdup(pw && pw->pw_dir ? pw->pw_dir : h ? h : "/");
}

static bool ref_component_ok(const char *name)
{
	char *ref;
	int valid = 0;

	if (!name || !*name || strchr(name, '/'))
		return false;
	ref = xasprintf("refs/peers/%s/mail", name);
	if (git_reference_name_is_valid(&valid, ref) < 0)
		valid = 0;
	free(ref);
	return valid;
}

/* The value the peer advertises for ref (zero if it has none). */
static int remote_ref(struct oid *out, git_remote *remote, const char *ref)
{
	const git_remote_head **heads;
	size_t n;
	int err;

	memset(out, 0, sizeof *out);
	if ((err = git_remote_ls(&heads, &n, remote)) < 0)
		return err;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(heads[i]->name, ref))
			oid_cpy(out, OID(&heads[i]->oid));
	return 0;
}

/* A push's transport: libgit2's, the purge anchor advertised too. */
static int cb_transport(git_transport **out, git_remote *owner, void *param)
{
	struct ctx *c = param;

	return net_anchor_transport(out, owner, git_remote_url(owner),
				    &c->anchor);
}

static void init_callbacks(git_remote_callbacks *cbs, struct ctx *c)
{
	git_remote_init_callbacks(cbs, GIT_REMOTE_CALLBACKS_VERSION);
	cbs->credentials = cb_credentials;
	cbs->certificate_check = cb_certificate;
	cbs->push_negotiation = cb_negotiation;
	cbs->push_update_reference = cb_update_reference;
	if (c->has_anchor)
		cbs->transport = cb_transport;
	cbs->payload = c;
}

static int do_push(struct repo *r, git_remote *remote, struct ctx *c,
		   const char *node, struct net_result *res)
{
	git_remote_callbacks cbs;
	git_push_options opts;
	char *spec = xasprintf("+%s:%s", REF_MAIL, c->dst_ref);
	git_strarray specs = { &spec, 1 };
	struct oid local, before;
	char *lock_repo = NULL;
	int lock = -1, err;

	if ((err = repo_ref_read(&local, r, REF_MAIL)) < 0) {
		set_result(res, NET_FAILED, "nothing to push: %s",
			   err == E_NOTFOUND ? "no " REF_MAIL : log_last_error());
		goto done;
	}
	/* purged blobs are absent: the push must not look for them */
	if (net_anchor_make(&c->anchor, &c->has_anchor, r) < 0) {
		set_result(res, NET_FAILED, "cannot write the purge anchor");
		goto done;
	}
	/* a file:// peer's ref is written by this process: guard it */
	if ((lock_repo = file_url_path(c->peer->url))) {
		char *name = xasprintf("peerref-%s.lock", node);
		lock = take_net_lock(lock_repo, name, c->dst_ref);
		free(name);
	}
	for (int attempt = 0;; attempt++) {
		bool busy;
		if (attempt) {
			/* a moment for the peer's fetch to let go of the ref */
			git_remote_disconnect(remote);
			usleep(100000U * (unsigned)attempt);
			c->rejected = c->negotiated = false;
			c->moves = false;
			/* a new login: every key may be offered again */
			c->next = 0;
		}
		init_callbacks(&cbs, c);
		if ((err = git_remote_connect(remote, GIT_DIRECTION_PUSH, &cbs,
					      NULL, NULL)) < 0 ||
		    (err = remote_ref(&before, remote, c->dst_ref)) < 0) {
			git_failure(res, c, err);
			goto done;
		}
		git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
		opts.callbacks = cbs;
		if ((err = git_remote_upload(remote, &specs, &opts)) < 0) {
			git_failure(res, c, err);
			goto done;
		}
		if (!c->rejected)
			break;
		/*
		 * The peer's own fetch from us writes the same ref: a ref
		 * that is locked or could not be written is a passing
		 * failure, tried again at once (then later); anything else
		 * (a hook, a policy) is a refusal.
		 */
		busy = strstr(c->reject_msg, "lock") ||
		       strstr(c->reject_msg, "failed to update ref");
		if (busy && attempt < 3)
			continue;
		set_result(res, busy ? NET_FAILED : NET_REJECTED,
			   "peer %s %s %s", c->peer->name,
			   busy ? "could not update" : "refused", c->reject_msg);
		goto done;
	}
	if (c->negotiated) {
		oid_cpy(&res->id, &c->accepted);
		res->changed = c->moves;
	} else {
		/* up to date: the peer already holds what we have */
		oid_cpy(&res->id, oid_is_zero(&before) ? &local : &before);
	}
	res->status = NET_OK;
done:
	if (lock >= 0)
		close(lock);
	free(lock_repo);
	free(spec);
	return res->status == NET_OK ? 0 : E_FAIL;
}

/*
 * libgit2's fetch (git_remote_fetch, git_remote_update_tips) always
 * writes FETCH_HEAD, even with update_fetchhead off: download the objects
 * only, then move the one ref ourselves.
 */
static int do_fetch(struct repo *r, git_remote *remote, struct ctx *c,
		    struct net_result *res)
{
	git_remote_callbacks cbs;
	git_fetch_options opts;
	char *spec = xasprintf("+%s:%s", REF_MAIL, c->dst_ref);
	char *why = xasprintf("maildag: fetch from %s", c->peer->name);
	char *lock_name = xasprintf("peerref-%s.lock", c->peer->name);
	git_strarray specs = { &spec, 1 };
	struct oid theirs, before, advertised;
	char *local = NULL;
	bool had;
	int lock, err;

	/* one fetch from a peer at a time; a killed one's ref lock goes */
	lock = take_net_lock(r->path, lock_name, c->dst_ref);
	err = repo_ref_read(&before, r, c->dst_ref);
	if (err < 0 && err != E_NOTFOUND) {
		set_result(res, NET_FAILED, "%s", log_last_error());
		goto done;
	}
	had = err == 0;
	init_callbacks(&cbs, c);
	if ((err = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cbs, NULL,
				      NULL)) < 0 ||
	    (err = remote_ref(&theirs, remote, REF_MAIL)) < 0) {
		git_failure(res, c, err);
		goto done;
	}
	if (oid_is_zero(&theirs)) {
		/* a peer without a mailbox yet: nothing to fetch, no error */
		log_debug("peer %s has no %s", c->peer->name, REF_MAIL);
		res->status = NET_OK;
		goto done;
	}
	if (had && oid_equal(&before, &theirs)) {
		oid_cpy(&res->id, &theirs);
		res->status = NET_OK;
		goto done;
	}
	git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
	opts.callbacks = cbs;
	opts.prune = GIT_FETCH_NO_PRUNE;
	opts.update_fetchhead = 0;
	opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	if ((local = file_url_path(c->peer->url))) {
		/* libgit2's local transport looks for purged blobs */
		struct strbuf why_copy = STRBUF_INIT;
		int gerr = 0;
		err = net_local_copy(r, local, &theirs, &why_copy, &gerr);
		if (err < 0 && gerr < 0)
			git_failure(res, c, gerr);
		else if (err < 0)
			set_result(res, NET_FAILED, "fetch from %s: %s",
				   c->peer->url, why_copy.buf);
		strbuf_release(&why_copy);
		if (err < 0)
			goto done;
	} else if ((err = git_remote_download(remote, &specs, &opts)) < 0) {
		git_failure(res, c, err);
		goto done;
	}
	if (!repo_object_exists(r, &theirs)) {
		set_result(res, NET_INVALID, "peer %s did not send %s",
			   c->peer->name, oid_hex(&theirs));
		goto done;
	}
	oid_cpy(&advertised, &theirs);
	/*
	 * The peer's own push writes this ref too (DESIGN section 6): when
	 * it moved meanwhile, both values come from the peer's history, so
	 * keep whichever contains the other.
	 */
	for (int tries = 0;; tries++) {
		struct oid now;
		err = repo_ref_cas(r, c->dst_ref, &theirs, had ? &before : NULL,
				   why);
		if (err != E_RACE || tries == 3)
			break;
		if (repo_ref_read(&now, r, c->dst_ref) < 0)
			break;
		if (oid_equal(&now, &theirs) ||
		    git_graph_descendant_of(r->git, GIT_OID(&now),
					    GIT_OID(&theirs)) == 1) {
			oid_cpy(&theirs, &now);
			err = 0;
			break;
		}
		had = true;
		oid_cpy(&before, &now);
	}
	if (err < 0) {
		set_result(res, NET_FAILED, "update %s: %s", c->dst_ref,
			   *log_last_error() ? log_last_error() : "failed");
		goto done;
	}
	/* what the peer said it holds, not what our ref kept (net.h) */
	oid_cpy(&res->id, &advertised);
	res->changed = true;
	res->status = NET_OK;
done:
	if (lock >= 0)
		close(lock);
	free(local);
	free(lock_name);
	free(why);
	free(spec);
	return res->status == NET_OK ? 0 : E_FAIL;
}

int net_run(enum net_op op, const char *repo_path, const struct config_peer *p,
	    const char *node, struct net_result *res)
{
	struct ctx c;
	struct repo *r = NULL;
	git_remote *remote = NULL;
	char *path = NULL, *dst = NULL;
	int err;

	memset(res, 0, sizeof *res);
	memset(&c, 0, sizeof c);
	res->status = NET_FAILED;
	c.op = op;
	c.peer = p;
	if (repo_global_init() < 0) {
		set_result(res, NET_FAILED, "cannot start libgit2");
		return E_FAIL;
	}
	if (!ref_component_ok(p->name) || !ref_component_ok(node)) {
		set_result(res, NET_FAILED, "'%s' or '%s' cannot name a ref",
			   p->name, node);
		return E_FAIL;
	}
	dst = xasprintf("refs/peers/%s/mail", op == NET_PUSH ? node : p->name);
	c.dst_ref = dst;
	local_user(&c.user, &c.home);

	/* a drive not mounted: say so, and never let anything create it */
	if ((path = file_url_path(p->url)) && !path_exists(path)) {
		set_result(res, NET_UNREACHABLE,
			   "%s: no repository there (not mounted?)", p->url);
		goto done;
	}
	if ((err = repo_open(&r, repo_path, 0)) < 0) {
		set_result(res, NET_FAILED, "%s",
			   err == E_NOTFOUND ? "no repository" : log_last_error());
		goto done;
	}
	if ((err = git_remote_create_anonymous(&remote, r->git, p->url)) < 0) {
		git_failure(res, &c, err);
		goto done;
	}
	log_debug("peer %s: %s %s", p->name, op == NET_PUSH ? "push to" :
		  "fetch from", p->url);
	if (op == NET_PUSH)
		do_push(r, remote, &c, node, res);
	else
		do_fetch(r, remote, &c, res);
	git_remote_disconnect(remote);
done:
	if (res->status == NET_OK)
		res->error[0] = '\0';
	else
		memset(&res->id, 0, sizeof res->id);
	git_remote_free(remote);
	repo_free(r);
	for (size_t i = 0; i < c.nkeys; i++)
		free(c.keys[i].path);
	free(c.keys);
	free(c.user);
	free(c.home);
	free(path);
	free(dst);
	return res->status == NET_OK ? 0 : E_FAIL;
}

/* --- the child ------------------------------------------------------------- */

unsigned long long net_fetch_memory(void)
{
	const struct format_limits *l = format_get_limits();
	unsigned long long big = l->message_bytes,
			   tree = (unsigned long long)l->tree_entries * 300;

	/*
	 * The indexer holds an object whole while it hashes or resolves it
	 * (a delta's base and result both); local fetches pack it too.
	 */
	if (tree > big)
		big = tree;
	return 3 * big + NET_FETCH_BASE_MEMORY;
}

/* "status hex changed error\n", error escaped (see the top) */
static void format_result(struct strbuf *out, const struct net_result *res)
{
	char hex[OID_HEXSZ + 1];

	oid_tostr(hex, sizeof hex, &res->id);
	strbuf_addf(out, "%s %s %d ", net_status_name(res->status), hex,
		    res->changed ? 1 : 0);
	for (const char *p = res->error; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '\\')
			strbuf_addstr(out, "\\\\");
		else if (ch < 0x20 || ch == 0x7f)
			strbuf_addf(out, "\\x%02x", ch);
		else
			strbuf_addch(out, ch);
	}
	strbuf_addch(out, '\n');
}

static int parse_result(const char *line, size_t len, struct net_result *res)
{
	const char *p = line, *end = line + len, *sp;
	size_t o = 0;
	int i;

	memset(res, 0, sizeof *res);
	if (!len || line[len - 1] != '\n' || memchr(line, '\0', len))
		return -1;
	end--;
	if (!(sp = memchr(p, ' ', (size_t)(end - p))))
		return -1;
	for (i = 0; i < (int)(sizeof status_names / sizeof status_names[0]); i++)
		if (strlen(status_names[i]) == (size_t)(sp - p) &&
		    !memcmp(p, status_names[i], (size_t)(sp - p)))
			break;
	if (i == (int)(sizeof status_names / sizeof status_names[0]))
		return -1;
	res->status = (enum net_status)i;
	p = sp + 1;
	if (end - p < OID_HEXSZ + 3 || p[OID_HEXSZ] != ' ' ||
	    oid_fromstr(&res->id, p) < 0)
		return -1;
	p += OID_HEXSZ + 1;
	if ((p[0] != '0' && p[0] != '1') || p[1] != ' ')
		return -1;
	res->changed = p[0] == '1';
	for (p += 2; p < end && o + 1 < sizeof res->error; p++) {
		int hi, lo;

		if (*p != '\\') {
			res->error[o++] = *p;
		} else if (p + 1 < end && p[1] == '\\') {
			res->error[o++] = '\\';
			p++;
		} else if (p + 3 < end && p[1] == 'x' &&
			   (hi = hex_value(p[2])) >= 0 && (lo = hex_value(p[3])) >= 0) {
			int ch = hi << 4 | lo;
			res->error[o++] = ch ? (char)ch : ' ';
			p += 3;
		} else {
			return -1;
		}
	}
	res->error[o] = '\0';
	one_line(res->error);
	return 0;
}

/*
 * libgit2 keeps process-wide state that points at the caller's open pack
 * files (one cache shared by every repository), whose descriptors the
 * child has closed: a repository opened in the child would read a closed
 * or reused descriptor.  So the child shuts libgit2 down and starts it
 * again, then puts back repo_global_init()'s settings, which the restart
 * dropped (repo_global_init() itself runs once per process).
 */
struct child_args {
	enum net_op op;
	const char *repo_path;
	const struct config_peer *peer;
	const char *node;
};

static void child_run(void *arg)
{
	const struct child_args *a = arg;
	struct strbuf line = STRBUF_INIT;
	struct net_result res;

	/* libgit2 as inherited when its packs are open still (CHILD_KEEP_PACKS) */
	if ((child_kept_packs() ? repo_global_init() : repo_global_reinit(true)) < 0) {
		memset(&res, 0, sizeof res);
		set_result(&res, NET_FAILED, "cannot start libgit2");
	} else {
		net_run(a->op, a->repo_path, a->peer, a->node, &res);
	}
	format_result(&line, &res);
	write_full(CHILD_RESULT_FD, line.buf, line.len);
}

int net_spawn(pid_t *pid, int *fd, enum net_op op, const char *repo_path,
	      const struct config_peer *p, const char *node)
{
	struct child_args a = { op, repo_path, p, node };

	return child_spawn(pid, fd, op == NET_FETCH ? net_fetch_memory() : 0,
			   CHILD_KEEP_PACKS, NULL, child_run, &a);
}

int net_collect(pid_t pid, int fd, struct strbuf *buf, struct net_result *res)
{
	struct strbuf why = STRBUF_INIT;
	int st;

	if (!child_read(pid, fd, buf, RESULT_MAX, &st))
		return 0;
	if (buf->len && buf->len < RESULT_MAX &&
	    memchr(buf->buf, '\n', buf->len) == buf->buf + buf->len - 1 &&
	    parse_result(buf->buf, buf->len, res) == 0) {
		strbuf_reset(buf);
		return 1;
	}
	memset(res, 0, sizeof *res);
	child_describe(&why, st, buf->len > 0);
	set_result(res, NET_FAILED, "%s", why.buf);
	strbuf_release(&why);
	strbuf_reset(buf);
	return 1;
}

void net_reap(void)
{
	child_reap();
}

void net_kill(pid_t pid, int fd, int timeout_s, struct net_result *res)
{
	child_kill(pid, fd);
	memset(res, 0, sizeof *res);
	set_result(res, NET_TIMEOUT, "no answer within %d s", timeout_s);
}

int net_run_deadline(enum net_op op, const char *repo_path,
		     const struct config_peer *p, const char *node,
		     int timeout_s, struct net_result *res)
{
	struct strbuf buf = STRBUF_INIT;
	long long deadline;
	pid_t pid;
	int fd;

	if (net_spawn(&pid, &fd, op, repo_path, p, node) < 0) {
		memset(res, 0, sizeof *res);
		set_result(res, NET_FAILED, "cannot start a child process: %s",
			   log_last_error());
		return E_FAIL;
	}
	deadline = clock_now_ms() + (long long)timeout_s * 1000;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = deadline - clock_now_ms();
		int n;

		if (left <= 0) {
			net_kill(pid, fd, timeout_s, res);
			break;
		}
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n < 0 && errno != EINTR) {
			int e = errno;
			net_kill(pid, fd, timeout_s, res);
			set_result(res, NET_FAILED, "poll: %s", strerror(e));
			break;
		}
		if (n > 0 && net_collect(pid, fd, &buf, res))
			break;
	}
	strbuf_release(&buf);
	return res->status == NET_OK ? 0 : E_FAIL;
}
