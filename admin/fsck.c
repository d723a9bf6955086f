/*
 * maildag fsck [--all-refs] [--hash]: check the repository against the
 * format (maildag-format(5)) and the Maildir against the repository.
 *
 *  1. refs/heads/mail (with --all-refs also refs/maildag/worktree and
 *     every refs/peers/<node>/mail): the commit exists and its tree is
 *     valid format version 1, every blob it names present.  One line per
 *     problem on standard output, "<ref>: '<path>': <reason>".
 *     Then the purge (purge.h): an object some ref reaches that is
 *     absent is a problem unless a purged/ lists it ("N purged blobs
 *     absent, as recorded"), and so is a blob refs/heads/mail lists that
 *     is still stored.
 *  2. Warnings, which do not change the exit status: messages on disk
 *     that refs/maildag/worktree lacks or names differently, and the
 *     other way round (syncd commits the first kind when it runs); files
 *     in cur/ and new/ that are not tracked; unfinished LDA journal
 *     entries; a repository directory open to other users.
 *  3. The bytes of every message file refs/maildag/worktree names at the
 *     same place: its size against the blob's (always), its contents
 *     (with --hash, which reads the whole Maildir).  A difference whose
 *     file still has the mtime the worktree records is a problem
 *     (maildag-syncd looks at a known file again only when its mtime
 *     moves, so it never sees it); with another mtime it is a change
 *     syncd has yet to commit, a warning.
 *
 * Exit status: 0 clean, 1 problems found, 64 bad usage, 66 no
 * repository, 75 an object could not be read for a reason that may pass.
 * fsck only reads: it takes no lock and moves no ref.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "admin.h"
#include "folder.h"
#include "format.h"
#include "fsutil.h"
#include "journal.h"
#include "layout.h"
#include "log.h"
#include "mailbox.h"
#include "maildir_name.h"
#include "mtimes.h"
#include "purge.h"
#include "repo.h"
#include "strbuf.h"
#include "strmap.h"
#include "worktree.h"
#include "xalloc.h"

struct fsck {
	struct repo *repo;
	const char *ref;	/* the ref being checked */
	size_t problems;
	size_t warnings;
};

static void problem(const char *path, const char *reason, void *data)
{
	struct fsck *f = data;

	if (!path)
		printf("%s: %s\n", f->ref, reason);	/* the commit */
	else if (*path)
		printf("%s: '%s': %s\n", f->ref, path, reason);
	else
		printf("%s: root tree: %s\n", f->ref, reason);
	f->problems++;
}

/* Check one ref; 0, or E_TEMP when something could not be read. */
static int check_ref(struct fsck *f, const char *ref)
{
	struct format_stats st;
	struct oid id;
	int r;

	f->ref = ref;
	r = repo_ref_read(&id, f->repo, ref);
	if (r == E_NOTFOUND) {
		printf("%s: missing\n", ref);
		f->problems++;
		return 0;
	}
	if (r < 0) {
		/* a corrupt ref file is a problem of the repository */
		printf("%s: unreadable: %s\n", ref, log_last_error());
		f->problems++;
		return 0;
	}
	r = format_fsck_commit(f->repo, &id, problem, f, &st);
	if (r < 0)
		return r;
	if (r == 0)
		printf("%s %.10s: ok, %zu message%s in %zu folder%s, "
		       "%zu mtimes record%s\n", ref, oid_hex(&id),
		       st.messages, st.messages == 1 ? "" : "s",
		       st.folders, st.folders == 1 ? "" : "s",
		       st.mtimes, st.mtimes == 1 ? "" : "s");
	return 0;
}

/* One refs/peers/<node>/mail (repo_foreach_peer_ref). */
static int check_peer(const char *ref, void *data)
{
	return check_ref(data, ref);
}

/* --- the Maildir against refs/maildag/worktree ------------------------- */

struct msg {
	char *key;
	char *place;	/* "[<folder>/]<sub>/<name>", as on disk */
	char *file;	/* the disk's own place when it is not place: format
			   2's keyword letters, which tree names lack */
	bool matched;
	struct oid blob;	/* in the tree (zero for the disk's) */
};

struct msgs {
	struct msg *v;
	size_t n, alloc;
};

/* A message's place on disk (layout.h); the caller frees it. */
static char *disk_place(const char *folder, const char *sub, const char *name)
{
	struct strbuf sb = STRBUF_INIT;

	layout_disk_place(&sb, folder, sub, name);
	return strbuf_detach(&sb, NULL);
}

static void msgs_add(struct msgs *m, const char *folder, const char *sub,
		     const char *name)
{
	xgrow((void **)&m->v, &m->alloc, m->n + 1, sizeof *m->v);
	m->v[m->n].key = xstrndup(name, maildir_key_len(name));
	m->v[m->n].place = disk_place(folder, sub, name);
	m->v[m->n].file = NULL;
	m->v[m->n].matched = false;
	memset(&m->v[m->n].blob, 0, sizeof m->v[m->n].blob);
	m->n++;
}

static void msgs_release(struct msgs *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].key);
		free(m->v[i].place);
		free(m->v[i].file);
	}
	free(m->v);
}

static int msg_cmp(const void *a, const void *b)
{
	const struct msg *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : strcmp(x->place, y->place);
}

/* An escaped copy of s, safe to print; the caller frees it. */
static char *esc(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	format_escape(&sb, s, strlen(s));
	return strbuf_detach(&sb, NULL);
}

static __attribute__((format(printf, 2, 3)))
void warn(struct fsck *f, const char *fmt, ...)
{
	va_list ap;

	printf("warning: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	f->warnings++;
}

/* A warning about one place: "'<place>'<what>". */
static void warn_place(struct fsck *f, const char *place, const char *what)
{
	char *e = esc(place);

	warn(f, "'%s'%s", e, what);
	free(e);
}

/*
 * A file on disk, under the name its tree holds it by: in format 2 its
 * keyword letters are records, not part of the name
 * (worktree_dovecot_tree_name()).
 */
static void disk_add(struct msgs *disk, const char *folder, const char *sub,
		     const char *name)
{
	struct strbuf tn = STRBUF_INIT;

	if (format_repo_version() != FORMAT_VERSION_IMAP) {
		msgs_add(disk, folder, sub, name);
		return;
	}
	worktree_dovecot_tree_name(&tn, sub, name);
	msgs_add(disk, folder, sub, tn.buf);
	if (strcmp(tn.buf, name))
		disk->v[disk->n - 1].file = disk_place(folder, sub, name);
	strbuf_release(&tn);
}

static void scan_sub(struct fsck *f, struct msgs *disk, const char *dir,
		     const char *folder, const char *sub)
{
	char *path = xasprintf("%s/%s", dir, sub);
	struct dirent *de;
	DIR *d = opendir(path);

	while (d && (de = readdir(d))) {
		struct stat st;
		char *place;

		if (de->d_name[0] == '.')
			continue;
		place = disk_place(folder, sub, de->d_name);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			warn_place(f, place, ": not a regular file, not tracked");
		else if (!maildir_name_valid(de->d_name))
			warn_place(f, place, ": not a valid message name, not tracked");
		else
			disk_add(disk, folder, sub, de->d_name);
		free(place);
	}
	if (d)
		closedir(d);
	free(path);
}

static void scan_folder(struct fsck *f, struct msgs *disk,
			const struct mailbox *mb, const char *folder)
{
	char *dir = mailbox_folder_path(mb, folder);

	scan_sub(f, disk, dir, folder, "cur");
	scan_sub(f, disk, dir, folder, "new");
	free(dir);
}

/*
 * The messages of every folder on disk, by the rule maildag-syncd commits
 * by (layout.h): the folders a listing of the root finds, and those the
 * worktree holds messages in that still exist (a folder whose directory
 * became a symbolic link stays one).
 */
static int scan_folders(struct fsck *f, struct msgs *disk,
			const struct msgs *tree, const struct mailbox *mb)
{
	struct strmap seen = STRMAP_INIT;
	char **folders;
	size_t n;

	if (layout_list_folders(&folders, &n, mb->maildir) < 0)
		return E_TEMP;
	for (size_t i = 0; i < n; i++) {
		strmap_put(&seen, folders[i], 0);
		scan_folder(f, disk, mb, folders[i]);
	}
	layout_list_free(folders, n);
	for (size_t i = 0; i < tree->n; i++) {
		struct layout_path lp;
		char *folder;

		if (layout_parse_disk_place(&lp, tree->v[i].place) < 0)
			continue;
		folder = xstrndup(lp.folder, lp.folder_len);
		if (strmap_put(&seen, folder, 0) &&
		    mailbox_folder_exists(mb, folder))
			scan_folder(f, disk, mb, folder);
		free(folder);
	}
	strmap_clear(&seen);
	return 0;
}

static int tree_message(const char *path, const char *folder, const char *sub,
			const char *name, const struct oid *blob, void *data)
{
	struct msgs *m = data;

	msgs_add(m, folder, sub, name);
	oid_cpy(&m->v[m->n - 1].blob, blob);
	return 0;
}

/*
 * Does the file at t's place hold t's blob?  Sizes always (the object's
 * header), the bytes with hash.  See the top of the file for what a
 * difference is.
 */
static void check_bytes(struct fsck *f, const struct mailbox *mb,
			const struct msg *t, const struct msg *d,
			const struct oid *tree, bool hash)
{
	char *path = xasprintf("%s/%s", mb->maildir,
			       d->file ? d->file : d->place);
	struct mtimes mt = MTIMES_INIT;
	struct stat st;
	struct oid now;
	size_t len;
	bool differ = false;

	if (stat(path, &st) < 0)
		goto done;	/* gone meanwhile */
	if (repo_object_size(&len, f->repo, &t->blob) == 0 &&
	    (off_t)len != st.st_size)
		differ = true;
	if (!differ && hash && repo_blob_hash_file(&now, path) == 0 &&
	    !oid_equal(&now, &t->blob))
		differ = true;
	if (!differ)
		goto done;
	if (mtimes_read_shard(&mt, f->repo, tree,
			      maildir_shard(t->key, strlen(t->key))) == 0 &&
	    mtimes_get(&mt, t->key) == (long long)st.st_mtime) {
		char *e = esc(t->place);
		printf("%s: '%s': bytes on disk differ from blob %.10s, at the "
		       "mtime recorded (maildag-syncd will not see it)\n",
		       REF_WORKTREE, e, oid_hex(&t->blob));
		free(e);
		f->problems++;
	} else {
		warn_place(f, t->place, ": changed on disk, not committed yet");
	}
done:
	mtimes_release(&mt);
	free(path);
}

/* Compare the Maildir with the tree of refs/maildag/worktree. */
static int compare_disk(struct fsck *f, const struct mailbox *mb, bool hash)
{
	struct msgs disk = { 0 }, tree = { 0 };
	struct oid commit, tid;
	struct dirent *de;
	size_t i, j;
	DIR *d;

	if (!is_dir(mb->maildir)) {
		char *e = esc(mb->maildir);
		warn(f, "no Maildir at '%s'", e);
		free(e);
		return 0;
	}
	if (repo_ref_read(&commit, f->repo, REF_WORKTREE) < 0 ||
	    repo_commit_tree(&tid, f->repo, &commit) < 0)
		return 0;	/* reported with the refs, or not asked for */
	if (format_foreach_message(f->repo, &tid, tree_message, &tree) < 0) {
		msgs_release(&tree);
		return E_TEMP;
	}
	if (scan_folders(f, &disk, &tree, mb) < 0) {
		msgs_release(&tree);
		return E_TEMP;
	}
	/* what layout.h does not count as a folder and a user may think is */
	if ((d = opendir(mb->maildir))) {
		while ((de = readdir(d)))
			if (de->d_name[0] == '.' && strcmp(de->d_name, ".") &&
			    strcmp(de->d_name, "..") &&
			    !folder_dir_valid(de->d_name) &&
			    mailbox_folder_exists(mb, de->d_name))
				warn_place(f, de->d_name,
					   ": not a valid folder name, not tracked");
		closedir(d);
	}
	qsort(disk.v, disk.n, sizeof *disk.v, msg_cmp);
	qsort(tree.v, tree.n, sizeof *tree.v, msg_cmp);
	/* the same place on both sides first, then what remains per key */
	for (i = 0, j = 0; i < disk.n && j < tree.n;) {
		int c = msg_cmp(&disk.v[i], &tree.v[j]);
		if (c == 0) {
			check_bytes(f, mb, &tree.v[j], &disk.v[i], &tid, hash);
			disk.v[i++].matched = true;
			tree.v[j++].matched = true;
		} else if (c < 0) {
			i++;
		} else {
			j++;
		}
	}
	for (i = 0, j = 0; i < disk.n || j < tree.n;) {
		int c;

		if (i < disk.n && disk.v[i].matched) {
			i++;
			continue;
		}
		if (j < tree.n && tree.v[j].matched) {
			j++;
			continue;
		}
		c = i >= disk.n ? 1 : j >= tree.n ? -1 :
		    strcmp(disk.v[i].key, tree.v[j].key);
		if (c == 0) {
			char *a = esc(disk.v[i].place), *b = esc(tree.v[j].place);
			warn(f, "'%s' on disk is '%s' in " REF_WORKTREE, a, b);
			free(a);
			free(b);
			i++;
			j++;
		} else if (c < 0) {
			warn_place(f, disk.v[i++].place,
				   " on disk, not in " REF_WORKTREE);
		} else {
			warn_place(f, tree.v[j++].place,
				   " in " REF_WORKTREE ", not on disk");
		}
	}
	msgs_release(&disk);
	msgs_release(&tree);
	return 0;
}

/*
 * A repository other local users may enter (made by an older maildag
 * under umask 022, or by hand) lets them read every message.
 */
static void check_private(struct fsck *f)
{
	struct stat st;

	if (stat(repo_path(f->repo), &st) == 0 && (st.st_mode & 077)) {
		char *e = esc(repo_path(f->repo));
		warn(f, "'%s' is open to other users (mode %04o): every message "
		     "in it is readable; 'chmod -R go= %s' closes it", e,
		     (unsigned)(st.st_mode & 07777), e);
		free(e);
	}
}

/* One entry of the delivery journal: a warning naming its message. */
static void journal_entry(const struct journal_item *it, void *data)
{
	struct fsck *f = data;
	const char *what;

	if (!it->target) {
		warn_place(f, it->path, ": malformed entry in the journal");
		return;
	}
	if (it->sieve) {
		warn_place(f, it->path, it->alive ?
			   ": Sieve delivery under way in the journal "
			   "(maildag-lda or its dovecot-lda is running)" :
			   ": Sieve delivery unfinished in the journal (the "
			   "MTA's retry commits what dovecot-lda stored)");
		return;
	}
	if (it->state == JOURNAL_WITHDRAWN)
		what = it->alive ? ": withdrawn delivery in the journal "
				   "(maildag-lda is taking it back)"
				 : ": withdrawn delivery in the journal "
				   "(the next delivery removes it)";
	else
		what = it->alive ? ": delivery under way in the journal "
				   "(maildag-lda is running)"
				 : ": delivery unfinished in the journal "
				   "(the next delivery finishes it)";
	warn_place(f, it->target, what);
}

/* Deliveries the LDA journalled and did not finish (maildag-lda(8)). */
static void check_journal(struct fsck *f)
{
	char *dir = journal_dir(f->repo);

	journal_list(dir, journal_entry, f);
	free(dir);
}

static void purge_problem(const char *why, void *data)
{
	struct fsck *f = data;

	printf("purged: %s\n", why);
	f->problems++;
}

/* Absent objects are purged ones, and purged ones are absent. */
static int check_purged(struct fsck *f)
{
	size_t absent = 0;

	if (purge_fsck(f->repo, purge_problem, f, &absent) < 0)
		return E_TEMP;
	if (absent)
		printf("%zu purged blob%s absent, as recorded\n", absent,
		       absent == 1 ? "" : "s");
	return 0;
}

int cmd_fsck(struct mailbox *mb, int argc, char **argv)
{
	struct fsck f = { 0 };
	bool all = false, hash = false;
	int r, ret = EX_TEMPFAIL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all-refs")) {
			all = true;
		} else if (!strcmp(argv[i], "--hash")) {
			hash = true;
		} else {
			fprintf(stderr, "usage: maildag fsck [--all-refs] [--hash]\n");
			return EX_USAGE;
		}
	}
	if ((r = admin_open_repo(&f.repo, mb)))
		return r;
	repo_verify_reads(true);	/* a damaged object is a problem here */
	{
		/* a ref may name a blob mail lists as purged, absent on
		   purpose (a peer's that predates the purge, the worktree) */
		struct oid mail, tree;
		if (repo_ref_read(&mail, f.repo, REF_MAIL) == 0 &&
		    repo_commit_tree(&tree, f.repo, &mail) == 0)
			format_purged_hint(f.repo, &tree);
	}
	if (check_ref(&f, REF_MAIL) < 0)
		goto done;
	if (all) {
		if (check_ref(&f, REF_WORKTREE) < 0)
			goto done;
		if (repo_foreach_peer_ref(f.repo, check_peer, &f) < 0)
			goto done;
	}
	if (check_purged(&f) < 0)
		goto done;
	if (compare_disk(&f, mb, hash) < 0)
		goto done;
	check_journal(&f);
	check_private(&f);
	ret = f.problems ? 1 : EX_OK;
	if (f.problems)
		printf("%zu problem%s found\n", f.problems,
		       f.problems == 1 ? "" : "s");
done:
	repo_free(f.repo);
	fflush(stdout);
	return ret;
}
