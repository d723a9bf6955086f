/*
 * proto: an experiment for doc/sieve.md, not maildag code.  A model of
 * the chosen design: maildag-lda runs dovecot-lda (Pigeonhole) as a
 * child, with a per-delivery token in DOVECOT_HOSTNAME, so that every
 * file the child writes carries the token in its name; a journal entry
 * naming the input's blob id and the token is made durable before the
 * child starts; afterwards the files with the token are found and
 * committed through the worktree module.  A retry of the same bytes
 * finds the entry and commits what the dead attempt wrote instead of
 * running Sieve again.
 *
 *   proto [-c group|worktree] [-k POINT] [-m scan|mtime] -- DOVECOT-LDA
 *         [ARG...] <message
 *
 * -s SECONDS: wait that long between the child's exit and the search
 * (an LDA held up, for instance by the writer lock).
 *
 * -c: how the files are committed: as maildag-lda's group commit does
 * (the default: the changed paths only, the worktree told), or through
 * a fresh worktree (worktree_commit, as maildag-syncd commits).
 *
 * POINT is where the process kills itself (as SIGKILL would), to try the
 * crash windows: entry (entry written, no child yet), fork (child
 * started: it goes on alone), exited (the child has exited), committed
 * (commit made, entry not yet removed).
 *
 * It prints one line on stderr: the child's status and the time each
 * step took (microseconds), and the cost of each way of finding what
 * the child wrote: scan (every folder's new/ and cur/), mtime (only
 * directories whose mtime moved since the child started), uidlist (the
 * dovecot-uidlist of those directories' folders).
 *
 * Simplifications against the design: the record that a delivery is
 * done is a file "done-<blob id>" in the state directory instead of the
 * Input: line of the delivery commit; no quorum; no From_ stripping or
 * Return-Path (the input is stored as given).
 *
 * Built by run-proto.sh against build/common/libcommon.a.
 */
#define _GNU_SOURCE
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "delivery.h"
#include "fsutil.h"
#include "layout.h"
#include "log.h"
#include "mailbox.h"
#include "repo.h"
#include "strbuf.h"
#include "worktree.h"
#include "xalloc.h"

static const char *kill_at = "";
static const char *method = "mtime";
static const char *committer = "group";
static int pause_after_child;	/* -s: seconds between the child and the commit */

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void maybe_die(const char *point)
{
	if (!strcmp(kill_at, point)) {
		fprintf(stderr, "proto: killed at %s\n", point);
		kill(getpid(), SIGKILL);
	}
}

/* A file found: folder ("" INBOX, ".Name"), sub, name. */
struct found {
	char folder[256], sub[4], name[256];
};

struct finding {
	struct found f[64];
	size_t n;
	size_t dirs_read, entries_read;
};

static bool has_token(const char *name, const char *tok)
{
	const char *p = strstr(name, tok);
	size_t len = strlen(tok);

	return p && p > name && p[-1] == '.' &&
	       (p[len] == '\0' || p[len] == ',' || p[len] == ':');
}

static bool newer(const struct stat *st, const struct timespec *t0)
{
	return st->st_mtim.tv_sec > t0->tv_sec ||
	       (st->st_mtim.tv_sec == t0->tv_sec &&
		st->st_mtim.tv_nsec >= t0->tv_nsec);
}

static void read_dir(struct finding *out, const char *maildir,
		     const char *folder, const char *sub, const char *tok)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof path, "%s/%s%s%s", maildir, folder,
		 *folder ? "/" : "", sub);
	if (!(d = opendir(path)))
		return;
	out->dirs_read++;
	while ((de = readdir(d))) {
		out->entries_read++;
		if (de->d_name[0] == '.' || !has_token(de->d_name, tok) ||
		    out->n >= 64)
			continue;
		snprintf(out->f[out->n].folder, 256, "%s", folder);
		snprintf(out->f[out->n].sub, 4, "%s", sub);
		snprintf(out->f[out->n].name, 256, "%s", de->d_name);
		out->n++;
	}
	closedir(d);
}

/*
 * Read the dovecot-uidlist of folder and count the records that carry the
 * token (the third way: what Dovecot says it numbered).
 */
static size_t uidlist_hits(const char *maildir, const char *folder,
			   const char *tok, size_t *bytes)
{
	char path[4096], line[1024];
	size_t hits = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/%s%sdovecot-uidlist", maildir, folder,
		 *folder ? "/" : "");
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');
		*bytes += strlen(line);
		if (colon && strstr(colon, tok))
			hits++;
	}
	fclose(f);
	return hits;
}

/*
 * Find the files with the token.  all: every folder's new/ and cur/;
 * otherwise only those whose directory mtime is at or after t0.
 * uidlist_us gets what reading the changed folders' uidlists cost.
 */
static void find_files(struct finding *out, const char *maildir,
		       const char *tok, const struct timespec *t0, bool all,
		       double *uidlist_us)
{
	static const char *const subs[] = { "new", "cur" };
	struct strbuf path = STRBUF_INIT;
	struct dirent *de;
	DIR *root = opendir(maildir);
	size_t hits = 0, bytes = 0;
	double u = 0;

	memset(out, 0, sizeof *out);
	for (bool inbox = true; root; inbox = false) {
		const char *folder = "";
		if (!inbox) {
			if (!(de = readdir(root)))
				break;
			if (de->d_name[0] != '.' || !strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, "..") || de->d_type != DT_DIR)
				continue;
			folder = de->d_name;
		}
		for (int s = 0; s < 2; s++) {
			struct stat st;
			strbuf_reset(&path);
			strbuf_addf(&path, "%s/%s%s%s", maildir, folder,
				    *folder ? "/" : "", subs[s]);
			if (!all && (stat(path.buf, &st) < 0 || !newer(&st, t0)))
				continue;
			read_dir(out, maildir, folder, subs[s], tok);
			if (!all && uidlist_us) {
				double a = now_us();
				hits += uidlist_hits(maildir, folder, tok, &bytes);
				u += now_us() - a;
			}
		}
	}
	if (root)
		closedir(root);
	strbuf_release(&path);
	if (uidlist_us)
		*uidlist_us = u;
	(void)hits;
}

/* Commit the found files through the worktree, as syncd would. */
static int commit_found(struct repo *r, struct mailbox *mb,
			const struct finding *fd, const struct timespec *t0)
{
	struct worktree *wt = worktree_new(r, mb->maildir, mb->cfg->node);
	struct worktree_result res;
	char path[4096];
	struct stat st;
	int ret;

	worktree_set_origin(wt, "sieve delivery");
	for (size_t i = 0; i < fd->n; i++) {
		const struct found *f = &fd->f[i];
		worktree_dirty_name(wt, f->folder, f->sub, f->name);
		snprintf(path, sizeof path, "%s/%s/maildirfolder", mb->maildir,
			 f->folder);
		if (*f->folder && stat(path, &st) == 0 && newer(&st, t0))
			worktree_dirty_folder(wt, f->folder);	/* made now */
	}
	snprintf(path, sizeof path, "%s/subscriptions", mb->maildir);
	if (stat(path, &st) == 0 && newer(&st, t0))
		worktree_dirty_root(wt);
	ret = worktree_commit(wt, &res);
	worktree_free(wt);
	return ret;
}

/*
 * Commit the found files as maildag-lda's group commit does: blobs, the
 * trees on their paths (and the maildirfolder of a folder the tree lacks),
 * one commit whose message is the delivery record plus the input's blob,
 * one syncfs, the ref moved by compare-and-swap, the worktree told.
 * Files the tree holds already (an earlier attempt) are left out.
 */
static int commit_group(struct repo *r, struct mailbox *mb,
			const struct finding *fd, const char *input_hex,
			const struct timespec *t0)
{
	struct repo_update ups[130];
	struct oid blobs[130], head, tree, new_tree, commit;
	struct strbuf paths[130], msg = STRBUF_INIT;
	struct delivery_record rec = DELIVERY_RECORD_INIT;
	char file[4096];
	size_t n = 0;
	int ret = -1;

	if (repo_ref_read(&head, r, REF_MAIL) < 0 ||
	    repo_commit_tree(&tree, r, &head) < 0)
		return -1;
	for (size_t i = 0; i < fd->n; i++) {
		const struct found *f = &fd->f[i];
		struct oid id;
		char *key = xstrndup(f->name, strcspn(f->name, ",:"));
		bool have = mailbox_tree_has_key(r, &tree, f->folder, key);
		free(key);
		if (have)
			continue;
		if (*f->folder) {
			struct strbuf marker = STRBUF_INIT;
			strbuf_addf(&marker, "%s/maildirfolder", f->folder);
			if (repo_tree_lookup(&id, r, &tree, marker.buf) < 0) {
				strbuf_init(&paths[n], 0);
				strbuf_addstr(&paths[n], marker.buf);
				if (repo_blob_from_buffer(&blobs[n], r, "", 0) < 0)
					goto done;
				ups[n].path = paths[n].buf;
				ups[n].blob = &blobs[n];
				ups[n].tree = false;
				n++;
			}
			strbuf_release(&marker);
		}
		snprintf(file, sizeof file, "%s/%s%s%s/%s", mb->maildir,
			 f->folder, *f->folder ? "/" : "", f->sub, f->name);
		strbuf_init(&paths[n], 0);
		tree_message_path(&paths[n], f->folder, f->sub, f->name);
		if (repo_blob_from_file(&blobs[n], r, file) < 0)
			goto done;
		ups[n].path = paths[n].buf;
		ups[n].blob = &blobs[n];
		ups[n].tree = false;
		delivery_record_add(&rec, f->folder, paths[n].buf, &blobs[n]);
		n++;
	}
	if (n == 0)
		return 0;
	/* a folder Sieve made is subscribed (lda_mailbox_autosubscribe) */
	snprintf(file, sizeof file, "%s/subscriptions", mb->maildir);
	{
		struct stat st;
		if (stat(file, &st) == 0 && newer(&st, t0)) {
			strbuf_init(&paths[n], 0);
			strbuf_addstr(&paths[n], "subscriptions");
			if (repo_blob_from_file(&blobs[n], r, file) < 0)
				goto done;
			ups[n].path = paths[n].buf;
			ups[n].blob = &blobs[n];
			ups[n].tree = false;
			n++;
		}
	}
	delivery_record_message(&msg, &rec, NULL);
	strbuf_addf(&msg, "Input: %s\n", input_hex);
	if (repo_tree_update(&new_tree, r, &tree, ups, n) < 0 ||
	    repo_commit(&commit, r, &new_tree, &head, 1, msg.buf, -1,
			"maildag-lda", "lda@proto") < 0 ||
	    repo_syncfs(r) < 0 ||
	    repo_ref_cas(r, REF_MAIL, &commit, &head, "proto: deliver") < 0 ||
	    repo_sync_ref(r, REF_MAIL) < 0)
		goto done;
	worktree_record_added(r, &tree, &commit, ups, n, "maildag-lda",
			      "lda@proto");
	ret = 0;
done:
	for (size_t i = 0; i < n; i++)
		strbuf_release(&paths[i]);
	strbuf_release(&msg);
	delivery_record_release(&rec);
	return ret;
}

/* The token of an entry "<hex>-<token>", or NULL. */
static const char *entry_token(const char *name, const char *hex)
{
	size_t len = strlen(hex);
	return !strncmp(name, hex, len) && name[len] == '-' ? name + len + 1
							    : NULL;
}

static void token_host(char *out, size_t size, const char *token)
{
	char host[256];

	if (gethostname(host, sizeof host) < 0)
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	snprintf(out, size, "%s.mdg%s", host, token);
}

/*
 * An attempt before this one (same bytes): returns -1 when none is left,
 * else the exit status to give.
 */
static int commit_group(struct repo *r, struct mailbox *mb,
			const struct finding *fd, const char *input_hex,
			const struct timespec *t0);

static int earlier_attempt(struct repo *r, struct mailbox *mb,
			   const char *state, const char *hex)
{
	char path[4096], tokhost[300];
	struct timespec zero = { 0, 0 };
	struct finding fd;
	struct dirent *de;
	DIR *d;
	int ret = -1;

	snprintf(path, sizeof path, "%s/done-%s", state, hex);
	if (path_exists(path)) {
		fprintf(stderr, "proto: already delivered\n");
		return 0;
	}
	if (!(d = opendir(state)))
		return -1;
	while (ret < 0 && (de = readdir(d))) {
		const char *tok = entry_token(de->d_name, hex);
		int efd;
		if (!tok)
			continue;
		snprintf(path, sizeof path, "%s/%s", state, de->d_name);
		if ((efd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		if (flock(efd, LOCK_EX | LOCK_NB) < 0) {
			fprintf(stderr, "proto: an earlier attempt still runs\n");
			close(efd);
			ret = EX_TEMPFAIL;
			break;
		}
		token_host(tokhost, sizeof tokhost, tok);
		find_files(&fd, mb->maildir, tokhost, &zero, true, NULL);
		if (fd.n) {
			if ((!strcmp(committer, "worktree") ?
			     commit_found(r, mb, &fd, &zero) :
			     commit_group(r, mb, &fd, hex, &zero)) < 0) {
				ret = EX_TEMPFAIL;
			} else {
				char done[4096];
				snprintf(done, sizeof done, "%s/done-%s", state, hex);
				close(open(done, O_CREAT | O_WRONLY, 0600));
				ret = 0;
				fprintf(stderr, "proto: finished an earlier "
					"attempt: %zu files\n", fd.n);
			}
		} else {
			fprintf(stderr, "proto: earlier attempt wrote nothing\n");
		}
		if (ret <= 0)
			unlink(path);
		close(efd);
	}
	closedir(d);
	return ret;
}

int main(int argc, char **argv)
{
	struct mailbox *mb = NULL;
	struct repo *r = NULL;
	struct finding fd, fd2;
	struct timespec t0;
	struct oid blob;
	char hex[OID_HEXSZ + 1], tmp[4096], entry[4096], token[17];
	char tokhost[300], *state;
	unsigned char rnd[8];
	double ts, t_in, t_entry, t_child, t_scan, t_mtime, t_uid = 0, t_commit;
	double t_found;
	int c, efd, tfd, status, ret;
	pid_t pid;

	while ((c = getopt(argc, argv, "c:k:m:s:")) != -1) {
		if (c == 's')
			pause_after_child = atoi(optarg);
		else if (c == 'c')
			committer = optarg;
		else if (c == 'k')
			kill_at = optarg;
		else if (c == 'm')
			method = optarg;
		else
			return EX_USAGE;
	}
	if (optind >= argc)
		return EX_USAGE;
	umask(077);
	log_init("proto", LOG_TO_STDERR, LOG_LVL_WARN);
	ts = now_us();
	if (mailbox_open(&mb, NULL, 0) < 0 ||
	    repo_open(&r, mb->repository, REPO_NO_FSYNC) < 0)
		return EX_TEMPFAIL;

	/* 1. the input into tmp/, and its blob id */
	snprintf(tmp, sizeof tmp, "%s/tmp/proto.%ld", mb->maildir,
		 (long)getpid());
	tfd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	for (char buf[65536]; tfd >= 0;) {
		ssize_t n = read(0, buf, sizeof buf);
		if (n <= 0)
			break;
		if (write_full(tfd, buf, (size_t)n) < 0)
			return EX_TEMPFAIL;
	}
	if (tfd < 0 || repo_blob_hash_file(&blob, tmp) < 0)
		return EX_TEMPFAIL;
	oid_tostr(hex, sizeof hex, &blob);
	state = repo_state_path(r, "sieve");
	mkdir(state, 0700);
	t_in = now_us();

	/* 2. an earlier attempt of the same bytes? */
	if (repo_lock(r, -1) < 0)
		return EX_TEMPFAIL;
	ret = earlier_attempt(r, mb, state, hex);
	repo_unlock(r);
	if (ret >= 0) {
		unlink(tmp);
		return ret;
	}

	/* 3. the entry, durable and locked before the child can write */
	if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
		return EX_TEMPFAIL;
	for (int i = 0; i < 8; i++)
		sprintf(token + 2 * i, "%02x", rnd[i]);
	snprintf(entry, sizeof entry, "%s/%s-%s", state, hex, token);
	efd = open(entry, O_RDWR | O_CREAT | O_EXCL, 0600);	/* inherited */
	if (efd < 0 || flock(efd, LOCK_EX) < 0 ||
	    write_full(efd, token, 16) < 0 || fsync(efd) < 0 ||
	    fsync_dir(state) < 0)
		return EX_TEMPFAIL;
	t_entry = now_us();
	maybe_die("entry");

	/* 4. dovecot-lda, with the token in every name it writes */
	token_host(tokhost, sizeof tokhost, token);
	{
		/*
		 * The entry's mtime comes from the clock the file system
		 * stamps directories with (coarse, behind CLOCK_REALTIME):
		 * every directory the child changes is at or after it.
		 */
		struct stat est;
		if (fstat(efd, &est) < 0)
			return EX_TEMPFAIL;
		/*
		 * Whole seconds, one back: the Maildir may be on a file
		 * system that keeps coarser times than the state directory's.
		 */
		t0.tv_sec = est.st_mtim.tv_sec - 1;
		t0.tv_nsec = 0;
	}
	pid = fork();
	if (pid == 0) {
		setenv("DOVECOT_PRESERVE_ENVS",
		       "DOVECOT_HOSTNAME DOVECOT_HOSTDOMAIN", 1);
		setenv("DOVECOT_HOSTNAME", tokhost, 1);
		if (!getenv("DOVECOT_HOSTDOMAIN"))
			setenv("DOVECOT_HOSTDOMAIN", "mx1.example.org", 1);
		lseek(tfd, 0, SEEK_SET);
		dup2(tfd, 0);
		execv(argv[optind], argv + optind);
		_exit(EX_TEMPFAIL);
	}
	maybe_die("fork");
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	t_child = now_us();
	maybe_die("exited");
	if (pause_after_child)
		sleep((unsigned)pause_after_child);	/* a slow LDA: syncd may come first */

	/* 5. what it wrote: the three ways, timed */
	find_files(&fd, mb->maildir, tokhost, &t0, true, NULL);
	t_scan = now_us();
	find_files(&fd2, mb->maildir, tokhost, &t0, false, &t_uid);
	t_found = now_us();
	t_mtime = t_found - t_scan - t_uid;
	if (fd.n != fd2.n)
		fprintf(stderr, "proto: MISMATCH scan %zu mtime %zu\n", fd.n,
			fd2.n);
	ret = WIFEXITED(status) ? WEXITSTATUS(status) : EX_TEMPFAIL;

	/* 6. commit them, under the writer lock */
	if (repo_lock(r, -1) < 0)
		return EX_TEMPFAIL;
	if (!strcmp(committer, "worktree")) {
		if (fd.n && commit_found(r, mb, !strcmp(method, "scan") ? &fd :
					 &fd2, &t0) < 0)
			return EX_TEMPFAIL;
		if (fd.n && repo_syncfs(r) < 0)
			return EX_TEMPFAIL;
	} else if (commit_group(r, mb, !strcmp(method, "scan") ? &fd : &fd2,
				hex, &t0) < 0) {
		return EX_TEMPFAIL;
	}
	t_commit = now_us();
	maybe_die("committed");
	if (fd.n) {
		char done[4096];
		snprintf(done, sizeof done, "%s/done-%s", state, hex);
		close(open(done, O_CREAT | O_WRONLY, 0600));
		if (ret != 0)
			ret = 0;	/* it is in the mailbox: never twice */
	}
	unlink(entry);
	repo_unlock(r);
	unlink(tmp);
	fprintf(stderr, "proto: status=%d files=%zu in=%.0f entry=%.0f "
		"child=%.0f scan=%.0f (%zu dirs %zu entries) mtime=%.0f "
		"(%zu dirs) uidlist=%.0f commit=%.0f total=%.0f\n", ret, fd.n,
		t_in - ts, t_entry - t_in, t_child - t_entry,
		t_scan - t_child, fd.dirs_read, fd.entries_read,
		t_mtime, fd2.dirs_read, t_uid, t_commit - t_found,
		now_us() - ts);
	return ret;
}
