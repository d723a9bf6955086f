/*
 * sieve: maildag-lda delivering through dovecot-lda, so that Pigeonhole
 * Sieve (filing rules, vacation, redirect) and Dovecot's quota work as
 * the site configured them (doc/sieve.md, maildag-lda(8) "SIEVE AND
 * DOVECOT").
 *
 * maildag-lda keeps its step 1 (the message in tmp/, synced, its blob
 * id) and hands that file to dovecot-lda as its child (-e -p FILE).  It
 * knows what the child wrote because it names it: the child runs with
 * DOVECOT_HOSTNAME=<host>.mdg<token>, a fresh token per attempt, and
 * Dovecot puts its hostname into every Maildir name it makes.  Before
 * the child starts, a Sieve entry naming the input's blob and the token
 * is made durable in the journal and locked on a descriptor the child
 * inherits (common/journal.c).  After the child, every file with the
 * token is committed in one commit whose delivery record also names the
 * input (delivery.h), and the quorum is waited for as usual.
 *
 * A retry of the same bytes finds the Sieve entry, or once it is gone
 * the record, and commits what the earlier attempt wrote instead of
 * running Sieve again; only an attempt that wrote nothing is run again.
 * So a crash at any point, retried by the MTA, never gives two copies
 * and never a second vacation reply.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "delivery.h"
#include "folder.h"
#include "format.h"
#include "fsutil.h"
#include "lda.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "mtimes.h"
#include "strbuf.h"
#include "strvec.h"
#include "worktree.h"
#include "xalloc.h"

#define LINE_MAX_KEPT 400	/* of the child's last line */
#define EXEC_FAILED 127		/* the child's status when exec failed */

/*
 * Test hooks (t5010): MAILDAG_TEST_CRASH=<point> dies there as SIGKILL
 * would; MAILDAG_TEST_HOLD=<point>:<fifo> waits there until the test
 * writes to the fifo.
 */
static void crash_point(const char *point)
{
	const char *p = getenv("MAILDAG_TEST_CRASH");
	const char *h = getenv("MAILDAG_TEST_HOLD");
	size_t len = strlen(point);

	if (p && !strcmp(p, point))
		kill(getpid(), SIGKILL);
	if (h && !strncmp(h, point, len) && h[len] == ':') {
		int fd = open(h + len + 1, O_RDONLY | O_CLOEXEC);
		char c;
		while (fd >= 0 && read(fd, &c, 1) < 0 && errno == EINTR)
			;
		if (fd >= 0)
			close(fd);
	}
}

/* A file the child wrote: its folder ("" INBOX), "new" or "cur", name. */
struct found {
	char *folder, *sub, *name, *file;
};

struct finding {
	struct found *v;
	size_t n, alloc;
};

static void finding_release(struct finding *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].folder);
		free(f->v[i].name);
		free(f->v[i].file);
	}
	free(f->v);
	memset(f, 0, sizeof *f);
}

/* Does name's key end in ".mdg<token>"? */
static bool has_token(const char *name, const char *token)
{
	size_t klen = maildir_key_len(name), tlen = strlen(token);

	return klen > tlen + 4 && name[klen - tlen - 4] == '.' &&
	       !memcmp(name + klen - tlen - 3, "mdg", 3) &&
	       !memcmp(name + klen - tlen, token, tlen);
}

static void scan_dir(struct finding *out, const struct mailbox *mb,
		     const char *folder, const char *sub, const char *token)
{
	char *fdir = mailbox_folder_path(mb, folder);
	char *dir = xasprintf("%s/%s", fdir, sub);
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		struct found *f;
		if (de->d_name[0] == '.' || !has_token(de->d_name, token))
			continue;
		xgrow((void **)&out->v, &out->alloc, out->n + 1,
		      sizeof *out->v);
		f = &out->v[out->n++];
		f->folder = xstrdup(folder);
		f->sub = (char *)sub;
		f->name = xstrdup(de->d_name);
		f->file = xasprintf("%s/%s", dir, de->d_name);
	}
	if (d)
		closedir(d);
	free(dir);
	free(fdir);
}

/*
 * Every file with the token, in the new/ and cur/ of every folder (a
 * full scan: Sieve may have filed into any folder, or made one).
 */
static void find_files(struct finding *out, const struct mailbox *mb,
		       const char *token)
{
	static const char *const subs[] = { "new", "cur" };
	DIR *root = opendir(mb->maildir);
	struct dirent *de;

	memset(out, 0, sizeof *out);
	for (int s = 0; s < 2; s++)
		scan_dir(out, mb, "", subs[s], token);
	while (root && (de = readdir(root))) {
		if (!folder_dir_valid(de->d_name))
			continue;
		for (int s = 0; s < 2; s++)
			scan_dir(out, mb, de->d_name, subs[s], token);
	}
	if (root)
		closedir(root);
}

/* The dovecot-uidlist.lock files a dead child of token left. */
static void remove_dead_locks(const struct mailbox *mb, const char *token)
{
	DIR *root = opendir(mb->maildir);
	struct dirent *de;
	char *fdir = mailbox_folder_path(mb, "");

	journal_sieve_clear_lock(fdir, token);
	free(fdir);
	while (root && (de = readdir(root))) {
		if (!folder_dir_valid(de->d_name))
			continue;
		fdir = mailbox_folder_path(mb, de->d_name);
		journal_sieve_clear_lock(fdir, token);
		free(fdir);
	}
	if (root)
		closedir(root);
}

/* Add path (a file of the Maildir, or empty when NULL) to the updates. */
static int add_update(struct repo *r, struct repo_update *ups,
		      struct strbuf *paths, struct oid *blobs, size_t *n,
		      const char *tree_path, const char *file)
{
	int ret = file ? repo_blob_from_file(&blobs[*n], r, file)
		       : repo_blob_from_buffer(&blobs[*n], r, "", 0);

	if (ret < 0)
		return ret;
	strbuf_init(&paths[*n], 0);
	strbuf_addstr(&paths[*n], tree_path);
	ups[*n].path = paths[*n].buf;
	ups[*n].blob = &blobs[*n];
	ups[*n].tree = false;
	(*n)++;
	return 0;
}

/* The updates of found files the tree lacks, folder markers with them. */
static int collect(struct lda *d, const struct oid *tree,
		   const struct finding *fd, struct repo_update *ups,
		   struct strbuf *paths, struct oid *blobs, size_t *n,
		   struct delivery_record *rec)
{
	struct strbuf p = STRBUF_INIT;
	int ret = 0;

	for (size_t i = 0; i < fd->n && ret == 0; i++) {
		const struct found *f = &fd->v[i];
		char *key = xstrndup(f->name, maildir_key_len(f->name));
		bool have = mailbox_tree_has_key(d->repo, tree, f->folder, key);
		struct oid id;

		free(key);
		if (have)
			continue;	/* syncd, or an earlier attempt */
		strbuf_reset(&p);
		if (*f->folder) {
			strbuf_addf(&p, "%s/maildirfolder", f->folder);
			if (repo_tree_lookup(&id, d->repo, tree, p.buf) < 0 &&
			    (ret = add_update(d->repo, ups, paths, blobs, n,
					      p.buf, NULL)) < 0)
				break;
			strbuf_reset(&p);
		}
		if (format_repo_version() == FORMAT_VERSION_IMAP) {
			/* format 2: the tree's name has no keyword letters */
			struct strbuf tn = STRBUF_INIT;
			worktree_dovecot_tree_name(&tn, f->sub, f->name);
			tree_message_path(&p, f->folder, f->sub, tn.buf);
			strbuf_release(&tn);
		} else {
			tree_message_path(&p, f->folder, f->sub, f->name);
		}
		if ((ret = add_update(d->repo, ups, paths, blobs, n, p.buf,
				      f->file)) < 0)
			break;
		delivery_record_add(rec, f->folder, p.buf, &blobs[*n - 1]);
	}
	strbuf_release(&p);
	return ret;
}

/*
 * Format 2: the records of the found files (UIDs dovecot-lda gave them
 * in each folder's dovecot-uidlist, keyword names of their letters),
 * read under Dovecot's lock, appended to *ups (grown; *n counts them).
 */
static int add_records(struct lda *d, const struct oid *tree,
		       const struct finding *fd, struct repo_update **ups,
		       size_t *n, struct update_list *recs)
{
	const char **folders = xcalloc(fd->n + 1, sizeof *folders);
	const char **names = xcalloc(fd->n + 1, sizeof *names);
	int ret;

	for (size_t i = 0; i < fd->n; i++) {
		folders[i] = fd->v[i].folder;
		names[i] = fd->v[i].name;
	}
	ret = worktree_dovecot_records(recs, d->repo, tree, d->mb->maildir,
				       d->mb->cfg->node, d->mb->cfg->uid_slot,
				       folders, names, fd->n);
	free(folders);
	free(names);
	if (ret < 0)
		return E_FAIL;
	*ups = xrealloc(*ups, (*n + recs->n) * sizeof **ups);
	for (size_t i = 0; i < recs->n; i++)
		(*ups)[(*n)++] = recs->v[i];
	return 0;
}

/*
 * Under the writer lock: commit the found files the tree lacks, with
 * the folders Sieve made and subscriptions when it changed since t0, in
 * one commit whose record names the input.  Sets d->wait_for to the
 * commit that holds them.  Returns 0 or E_FAIL.
 */
static int commit_found(struct lda *d, const struct finding *fd, time_t t0)
{
	size_t cap = 2 * fd->n + 1, n = 0;
	struct repo_update *ups = xcalloc(cap, sizeof *ups);
	struct strbuf *paths = xcalloc(cap, sizeof *paths);
	struct oid *blobs = xcalloc(cap, sizeof *blobs);
	struct delivery_record rec = DELIVERY_RECORD_INIT;
	struct strbuf msg = STRBUF_INIT;
	char *email = xasprintf("lda@%s", d->mb->cfg->node);
	char *subs = xasprintf("%s/subscriptions", d->mb->maildir);
	struct oid head, tree, new_tree, commit;
	struct update_list recs = UPDATE_LIST_INIT;
	struct stat st;
	int ret = E_FAIL;

	if (repo_ref_read(&head, d->repo, REF_MAIL) < 0 ||
	    repo_commit_tree(&tree, d->repo, &head) < 0 ||
	    collect(d, &tree, fd, ups, paths, blobs, &n, &rec) < 0)
		goto done;
	oid_cpy(&d->wait_for, &head);
	if (!rec.n) {
		ret = 0;	/* all committed already */
		goto done;
	}
	/* a folder Sieve made is subscribed (lda_mailbox_autosubscribe) */
	if (stat(subs, &st) == 0 && st.st_mtime >= t0 &&
	    add_update(d->repo, ups, paths, blobs, &n, "subscriptions",
		       subs) < 0)
		goto done;
	delivery_record_input(&rec, &d->blob);
	delivery_record_message(&msg, &rec, NULL);
	if (format_repo_version() == FORMAT_VERSION_IMAP &&
	    add_records(d, &tree, fd, &ups, &n, &recs) < 0)
		goto done;
	if (repo_tree_update(&new_tree, d->repo, &tree, ups, n) < 0 ||
	    repo_commit(&commit, d->repo, &new_tree, &head, 1, msg.buf, -1,
			"maildag-lda", email) < 0 ||
	    make_durable(d->repo, d->mb) < 0 ||
	    repo_ref_cas(d->repo, REF_MAIL, &commit, &head,
			 "maildag-lda: deliver through dovecot-lda") < 0 ||
	    repo_sync_ref(d->repo, REF_MAIL) < 0)
		goto done;
	worktree_record_added(d->repo, &tree, &commit, ups, n, "maildag-lda",
			      email);
	for (size_t i = 0; i < fd->n; i++)
		log_info("delivered %s to %s by dovecot-lda as %.12s",
			 fd->v[i].name, folder_display(fd->v[i].folder),
			 oid_hex(&commit));
	oid_cpy(&d->wait_for, &commit);
	ret = 0;
done:
	/* paths has cap entries; format 2's record updates come after */
	for (size_t i = 0; i < n && i < cap; i++)
		strbuf_release(&paths[i]);
	free(paths);
	free(ups);
	free(blobs);
	update_list_release(&recs);
	strbuf_release(&msg);
	delivery_record_release(&rec);
	free(subs);
	free(email);
	return ret;
}

/*
 * Under the writer lock, the dead attempt of entry e: commit what it
 * wrote.  True when it wrote something (now committed: Sieve is not run
 * again); false when nothing, the entry removed.
 */
static bool finish_earlier(struct lda *d, struct journal_sieve *e)
{
	struct finding fd;
	bool stored;

	find_files(&fd, d->mb, e->token);
	remove_dead_locks(d->mb, e->token);
	stored = fd.n > 0;
	if (stored && commit_found(d, &fd, 0) < 0) {
		unlink(d->tmp);
		fail_temp("cannot commit what an earlier dovecot-lda wrote");
	}
	if (stored)
		log_info("an earlier attempt stored %zu files; committed, "
			 "Sieve not run again", fd.n);
	else
		log_info("an earlier attempt through dovecot-lda stored "
			 "nothing; running it again");
	journal_sieve_remove(e);
	finding_release(&fd);
	return stored;
}

/* The host part Dovecot will use: the short host name and the token. */
static char *token_host(const char *token)
{
	char host[256];
	struct strbuf sb = STRBUF_INIT;

	if (gethostname(host, sizeof host) < 0 || !host[0])
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	for (const char *p = host; *p && *p != '.' && sb.len < 63; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-')
			strbuf_addch(&sb, *p);
	if (!sb.len)
		strbuf_addstr(&sb, "localhost");
	strbuf_addf(&sb, ".mdg%s", token);
	return strbuf_detach(&sb, NULL);
}

/* The host's domain name as Dovecot finds it, for DOVECOT_HOSTDOMAIN. */
static char *host_domain(void)
{
	struct addrinfo hints = { .ai_flags = AI_CANONNAME }, *ai = NULL;
	char host[256];
	char *out;

	if (gethostname(host, sizeof host) < 0 || !host[0])
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	if (strchr(host, '.') || getaddrinfo(host, NULL, &hints, &ai) != 0 ||
	    !ai || !ai->ai_canonname)
		out = xstrdup(host);
	else
		out = xstrdup(ai->ai_canonname);
	if (ai)
		freeaddrinfo(ai);
	return out;
}

/* In the child: the environment and the command line, then exec. */
static void __attribute__((noreturn))
exec_child(const struct lda *d, const char *token, int out)
{
	const char *keep = getenv("DOVECOT_PRESERVE_ENVS");
	const char *cfg = d->mb->cfg->dovecot_config;
	struct strvec argv = STRVEC_INIT;
	char *v;
	int null = open("/dev/null", O_RDONLY);

	if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
	    dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
		_exit(EX_TEMPFAIL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	setenv("HOME", d->mb->home, 1);
	setenv("USER", d->mb->user, 1);
	v = xasprintf("%s%sDOVECOT_HOSTNAME DOVECOT_HOSTDOMAIN",
		      keep ? keep : "", keep && *keep ? " " : "");
	setenv("DOVECOT_PRESERVE_ENVS", v, 1);
	setenv("DOVECOT_HOSTNAME", token_host(token), 1);
	if (!getenv("DOVECOT_HOSTDOMAIN"))
		setenv("DOVECOT_HOSTDOMAIN", host_domain(), 1);
	strvec_push(&argv, d->dovecot_lda);
	if (cfg) {
		strvec_push(&argv, "-c");
		strvec_push(&argv, cfg);
	}
	strvec_push(&argv, "-e");
	strvec_push(&argv, "-p");
	strvec_push(&argv, d->tmp);
	if (d->sender) {
		strvec_push(&argv, "-f");
		strvec_push(&argv, *d->sender ? d->sender : "<>");
	}
	/* a virtual mailbox: Dovecot's userdb knows it by its address */
	if (d->mb->cfg->address) {
		strvec_push(&argv, "-d");
		strvec_push(&argv, d->mb->cfg->address);
	}
	if (d->recipient) {
		strvec_push(&argv, "-a");
		strvec_push(&argv, d->recipient);
	}
	if (d->mailbox_arg) {
		strvec_push(&argv, "-m");
		strvec_push(&argv, d->mailbox_arg);
	}
	strvec_push_nodup(&argv, NULL);
	execv(d->dovecot_lda, argv.v);
	dprintf(STDERR_FILENO, "%s\n", strerror(errno));
	_exit(EXEC_FAILED);
}

/*
 * Run dovecot-lda with the token; its last line of output goes to line
 * (with -e its rejection reason comes last, after any doveconf warnings;
 * the rest is logged at debug level).  Returns its wait status.
 */
static int run_child(const struct lda *d, const char *token, char *line,
		     size_t size)
{
	struct strbuf out = STRBUF_INIT;
	int pfd[2], status = 0;
	pid_t pid;

	line[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		log_error_errno("pipe");
		fail_temp("cannot run dovecot-lda");
	}
	pid = fork();
	if (pid < 0) {
		log_error_errno("fork");
		fail_temp("cannot run dovecot-lda");
	}
	if (pid == 0)
		exec_child(d, token, pfd[1]);
	lda_child = pid;
	close(pfd[1]);
	crash_point("sieve-child");
	(void)strbuf_read_fd(&out, pfd[0]);	/* an error: what came so far */
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	lda_child = 0;
	while (out.len && out.buf[out.len - 1] == '\n')
		out.buf[--out.len] = '\0';
	if (out.len) {
		char *last = strrchr(out.buf, '\n');
		snprintf(line, size, "%s", last ? last + 1 : out.buf);
		if (last) {
			*last = '\0';
			log_debug("dovecot-lda said: %s", out.buf);
		}
	}
	strbuf_release(&out);
	return status;
}

/* The exit status and line for a child that stored nothing; may return. */
static void fail_nothing(const struct lda *d, int status, const char *line)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

	if (code == 0) {
		log_info("nothing stored by Sieve (discarded, rejected or "
			 "redirected)");
		return;
	}
	unlink(d->tmp);
	if (code == EX_TEMPFAIL && !strncmp(line, "Quota exceeded", 14))
		fail(EX_TEMPFAIL, "4.2.2", "mailbox full: %s", line);
	if (code == EX_TEMPFAIL)
		fail(EX_TEMPFAIL, "4.3.0", "dovecot-lda: %s", line);
	if (code == EX_NOPERM)
		fail(EX_NOPERM, "5.2.2", "mailbox full: %s", line);
	if (code == EX_NOUSER)
		fail(EX_NOUSER, "5.1.1", "%s", line);
	if (code == EX_USAGE)
		fail(EX_TEMPFAIL, "4.3.5", "dovecot-lda refused its command "
		     "line: %s", line);
	if (code == EXEC_FAILED)
		fail(EX_TEMPFAIL, "4.3.5", "cannot run dovecot-lda '%s': %s",
		     d->dovecot_lda, line);
	if (WIFSIGNALED(status))
		fail(EX_TEMPFAIL, "4.3.0", "dovecot-lda died (signal %d)",
		     WTERMSIG(status));
	fail(EX_TEMPFAIL, "4.3.0", "dovecot-lda exited %d: %s", code, line);
}

/* Under the writer lock: an earlier attempt of the same bytes? */
static bool earlier_attempt(struct lda *d)
{
	struct journal_sieve e;
	int r = journal_sieve_find(&e, d->journal, &d->blob);

	if (r == 2) {
		journal_sieve_close(&e);
		repo_unlock(d->repo);
		unlink(d->tmp);
		fail(EX_TEMPFAIL, "4.3.0", "an earlier attempt of this message "
		     "through dovecot-lda still runs");
	}
	return r == 1 && finish_earlier(d, &e);
}

void sieve_deliver(struct lda *d)
{
	struct journal_sieve e;
	struct finding fd;
	unsigned char rnd[JOURNAL_TOKEN_LEN / 2];
	char token[JOURNAL_TOKEN_LEN + 1], line[LINE_MAX_KEPT];
	struct stat st;
	int status;

	if (repo_lock(d->repo, -1) < 0) {
		unlink(d->tmp);
		fail(EX_TEMPFAIL, "4.3.0", "repository is busy");
	}
	if (earlier_attempt(d)) {
		unlink(d->tmp);
		return;		/* under the lock, wait_for set */
	}
	repo_unlock(d->repo);
	if (already_delivered(d))
		return;
	if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd) {
		unlink(d->tmp);
		fail(EX_TEMPFAIL, "4.3.0", "no random token: %s",
		     strerror(errno));
	}
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	if (journal_sieve_publish(&e, d->journal, &d->blob, token) < 0) {
		unlink(d->tmp);
		fail_temp("cannot write the journal");
	}
	crash_point("sieve-entry");
	/* whole seconds, one back: the Maildir may keep coarser times */
	if (fstat(e.fd, &st) < 0)
		st.st_mtime = time(NULL);
	status = run_child(d, token, line, sizeof line);
	crash_point("sieve-exited");
	find_files(&fd, d->mb, token);
	if (!fd.n) {
		journal_sieve_remove(&e);
		finding_release(&fd);
		fail_nothing(d, status, line);
		unlink(d->tmp);
		repo_unlock(d->repo);
		exit(EX_OK);
	}
	if (repo_lock(d->repo, -1) < 0)
		fail(EX_TEMPFAIL, "4.3.0", "repository is busy");
	if (commit_found(d, &fd, st.st_mtime - 1) < 0)
		fail_temp("cannot commit what dovecot-lda stored");
	crash_point("sieve-committed");
	journal_sieve_remove(&e);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		log_warn("dovecot-lda failed (%s) after it stored %zu files: "
			 "delivered", line, fd.n);
	finding_release(&fd);
	unlink(d->tmp);
}
