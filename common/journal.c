/*
 * journal: maildag-lda's delivery journal, <repo>/maildag/pending/
 * (DESIGN section 4).  This comment is the protocol's one description;
 * maildag-format(5) says the same for readers of the repository, and no
 * other file knows the names below.
 *
 * Why.  A delivery renames its message into new/ before it commits it
 * (it commits under the writer lock, and may wait for it there), and the
 * MTA takes exit status 0 as "stored for good".  The journal names the
 * files in new/ that are deliveries not committed yet, so that a
 * delivery killed at any point, timed out, or cut short by a crash ends,
 * after the MTA's retry, with exactly one copy.
 *
 * Files, all in <repo>/maildag/pending/:
 *
 *	<blob id>-<key>	an entry: a regular file of one line,
 *			"<target>\n", the message's path in the Maildir,
 *			"new/<name>" or ".<Folder>/new/<name>"; <blob id>
 *			is the git blob id of the message's bytes, <key>
 *			the unique part of <name> (maildir_key_len)
 *	<entry>.c	the entry, claimed by a committer
 *	<entry>.w	the entry, withdrawn by its writer
 *	.new-<pid>	an entry being written, not yet published
 *	<blob id>-mdg<token>
 *			a Sieve entry (doc/sieve.md): maildag-lda hands
 *			the message whose bytes <blob id> names to
 *			dovecot-lda, which names every file it writes
 *			<...>.<host>.mdg<token> (16 lowercase hex digits,
 *			fresh per attempt); one line "sieve <unix time>\n".
 *			The <key> slot never looks like a Maildir key
 *			(those start with digits), so journal_has_blob()
 *			finds both kinds.
 *
 * A Sieve entry is written and locked as an entry is, then fsynced with
 * the directory before dovecot-lda starts (Dovecot syncs its files on
 * its own), and its descriptor is inherited by dovecot-lda: unlocked
 * means neither lives.  It has no .c or .w state.  Its files are
 * committed by maildag-lda (the attempt, or the retry of the same bytes
 * that finds the entry dead), which then removes it; maildag-syncd
 * leaves out the files of a live Sieve entry (JOURNAL_FOUND_SIEVE) and
 * commits those of a dead one as the mail client's.  A file with the
 * token is never deleted: a client may have seen it.  The group commit
 * leaves Sieve entries alone; fsck's listing says which they are.
 *
 * The writer, one maildag-lda:
 *  1. writes .new-<pid>, takes an flock(2) on it and renames it to
 *     <entry>.  It keeps the descriptor open, so the flock lives exactly
 *     as long as the writer: an entry nobody holds locked is a dead
 *     writer's.  (A rename keeps the inode, and the lock with it.)
 *  2. renames its message from tmp/ into new/.
 *  3. takes the writer lock.  If neither <entry> nor <entry>.c is left,
 *     another delivery committed it; otherwise it commits the whole
 *     journal itself (group commit: deliveries that queued behind the
 *     lock are committed together, with one flush).
 *  When its deadline passes before 3, it renames <entry> to <entry>.w,
 *  removes its message from new/, then <entry>.w.
 *
 * A committer holds the writer lock: maildag-lda's group commit, which
 * claims the whole journal, or maildag-syncd, which claims the entry of
 * each new message it finds on disk.  It renames <entry> to <entry>.c
 * before it commits the message, and removes <entry>.c once the commit
 * is durable; a claim it finds already (<entry>.c: its committer died)
 * it takes over.  Exactly one of the two renames of <entry>, to .c or to
 * .w, succeeds: a message is committed or taken back, never half of each.
 * A delivery commit says which messages it holds (delivery.h), so that
 * the MTA's retry of the same bytes finds it.
 *
 * Recovery, by the next group commit: a dead writer's entry is committed
 * when its message is in new/, or in cur/ (the mail client moved it),
 * with the bytes its blob id names; dropped, with its tmp/ file, when the
 * message never reached new/ or was cut short by a crash (it was never
 * acknowledged, so the MTA brings it again); removed when the message is
 * committed already.  A live writer's entry whose message is not in new/
 * yet is given back (renamed from .c to <entry>).  A dead writer's .w has
 * its message removed, then itself; a .new- file whose writer is dead is
 * removed once ten minutes old (its writer locks it just after creating
 * it).  A retry of the same bytes finds its entry by blob id
 * (journal_has_blob) and finishes the journal before it looks for a
 * delivery commit of those bytes.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fsutil.h"
#include "journal.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "repo.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define JOURNAL_DIR "pending"
#define UNPUBLISHED ".new-"	/* an entry being written */
#define CLAIMED ".c"
#define WITHDRAWN ".w"
#define SUFFIX_LEN 2
#define UNPUBLISHED_MAX_AGE 600	/* seconds a writer may take to lock it */
#define SIEVE_MARK "mdg"		/* a Sieve entry's key slot: mdg<token> */
#define SIEVE_MARK_LEN 3
#define DOVECOT_UIDLIST_LOCK "dovecot-uidlist.lock"

char *journal_dir(const struct repo *r)
{
	return repo_state_path(r, JOURNAL_DIR);
}

/* An entry's name: "<blob id>-<key>". */
static char *entry_name(const struct oid *blob, const char *key, size_t klen)
{
	char hex[OID_HEXSZ + 1];

	oid_tostr(hex, sizeof hex, blob);
	return xasprintf("%s-%.*s", hex, (int)klen, key);
}

/* Does name start as an entry's does, "<blob id>-"?  Sets blob. */
static bool entry_blob(const char *name, struct oid *blob)
{
	return strlen(name) > OID_HEXSZ + 1 && name[OID_HEXSZ] == '-' &&
	       oid_fromstr(blob, name) == 0;
}

/* The target line of a message delivered to folder as name. */
static char *target_line(const char *folder, const char *name)
{
	struct strbuf sb = STRBUF_INIT;

	layout_disk_place(&sb, folder, "new", name);
	strbuf_addch(&sb, '\n');
	return strbuf_detach(&sb, NULL);
}

/*
 * Parse a target, the place of a message in new/ (layout.h), into its
 * folder and name (new strings); E_INVALID if it is not one.
 */
static int parse_target(char **folder, char **name, const char *target)
{
	struct layout_path lp;

	if (layout_parse_disk_place(&lp, target) < 0 || lp.sub != 1)
		return E_INVALID;
	*folder = xstrndup(lp.folder, lp.folder_len);
	*name = xstrdup(lp.name);
	return 0;
}

/*
 * The target an entry file holds, without its newline (a new string):
 * 0, E_NOTFOUND when the file is gone, E_INVALID when it is not one
 * line of a valid target.
 */
static int read_target(char **out, const char *path)
{
	char buf[PATH_MAX], *nl, *folder, *name;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return E_NOTFOUND;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0 || !(nl = memchr(buf, '\n', (size_t)n)))
		return E_INVALID;
	*nl = '\0';
	if (parse_target(&folder, &name, buf) < 0)
		return E_INVALID;
	free(folder);
	free(name);
	*out = xstrdup(buf);
	return 0;
}

/* Is the entry's writer alive (does it still hold its flock)? */
static bool owner_alive(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	bool alive;

	if (fd < 0)
		return false;
	alive = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return alive;
}

/*
 * The state of the entry file name in dir (entry_blob() holds for it),
 * its target, and the length of its name without the state's suffix.
 * A key may itself end in a suffix's letters (a host named "w"), so the
 * state is told by the name the target gives.  Returns 0, E_NOTFOUND
 * when the file is gone, E_INVALID when it is not a valid entry.
 */
static int classify(enum journal_state *state, char **target,
		    size_t *base_len, const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name), *folder, *file;
	size_t len = strlen(name), klen;
	int r = read_target(target, path);

	free(path);
	if (r < 0)
		return r;
	parse_target(&folder, &file, *target);
	klen = maildir_key_len(file);
	*base_len = OID_HEXSZ + 1 + klen;
	r = E_INVALID;
	if (len >= *base_len && !memcmp(name + OID_HEXSZ + 1, file, klen)) {
		const char *sfx = name + *base_len;
		r = 0;
		if (!*sfx)
			*state = JOURNAL_PUBLISHED;
		else if (!strcmp(sfx, CLAIMED))
			*state = JOURNAL_CLAIMED;
		else if (!strcmp(sfx, WITHDRAWN))
			*state = JOURNAL_WITHDRAWN;
		else
			r = E_INVALID;
	}
	free(folder);
	free(file);
	if (r < 0) {
		free(*target);
		*target = NULL;
	}
	return r;
}

/* --- the writer -------------------------------------------------------- */

int journal_publish(struct journal_entry *out, const char *dir,
		    const struct oid *blob, const char *key, const char *folder,
		    const char *name)
{
	char *ename = entry_name(blob, key, strlen(key));
	char *tmp = NULL, *line = NULL;
	int n, fd, ret = E_FAIL;

	memset(out, 0, sizeof *out);
	out->fd = -1;
	n = snprintf(out->path, sizeof out->path, "%s/%s", dir, ename);
	free(ename);
	if (n < 0 || (size_t)n + SUFFIX_LEN >= sizeof out->path) {
		out->path[0] = '\0';
		return E_INVALID;
	}
	memcpy(out->claimed, out->path, (size_t)n);
	memcpy(out->claimed + n, CLAIMED, SUFFIX_LEN + 1);
	memcpy(out->withdrawn, out->path, (size_t)n);
	memcpy(out->withdrawn + n, WITHDRAWN, SUFFIX_LEN + 1);
	out->name_off = strlen(dir) + 1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_error_errno("mkdir '%s'", dir);
		goto done;
	}
	tmp = xasprintf("%s/" UNPUBLISHED "%ld", dir, (long)getpid());
	line = target_line(folder, name);
	unlink(tmp);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	/* locked before it is published: unlocked means dead */
	if (fd < 0 || flock(fd, LOCK_EX) < 0 ||
	    write_full(fd, line, strlen(line)) < 0 ||
	    rename(tmp, out->path) < 0) {
		log_error_errno("journal '%s'", out->path);
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		goto done;
	}
	out->fd = fd;
	ret = 0;
done:
	if (ret < 0)
		out->path[0] = '\0';
	free(line);
	free(tmp);
	return ret;
}

bool journal_withdraw(const struct journal_entry *e, const char *message)
{
	if (!e->path[0] || rename(e->path, e->withdrawn) < 0)
		return false;	/* claimed: it will be committed */
	if (message)
		unlink(message);
	unlink(e->withdrawn);
	return true;
}

bool journal_entry_present(const struct journal_entry *e)
{
	return e->path[0] && (path_exists(e->path) || path_exists(e->claimed));
}

void journal_entry_remove(const struct journal_entry *e)
{
	if (!e->path[0])
		return;
	unlink(e->path);
	unlink(e->claimed);
}

void journal_entry_close(struct journal_entry *e)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
}

bool journal_has_blob(const char *dir, const struct oid *blob)
{
	char hex[OID_HEXSZ + 1];
	struct dirent *de;
	DIR *d = opendir(dir);
	bool found = false;

	oid_tostr(hex, sizeof hex, blob);
	while (d && !found && (de = readdir(d)))
		found = !strncmp(de->d_name, hex, OID_HEXSZ) &&
			de->d_name[OID_HEXSZ] == '-';
	if (d)
		closedir(d);
	return found;
}

void journal_done(const char *claimed)
{
	if (unlink(claimed) < 0 && errno != ENOENT)
		log_warn_errno("unlink '%s'", claimed);
}

/* --- snapshots --------------------------------------------------------- */

void journal_snapshot_read(struct journal_snapshot *out, const char *dir)
{
	struct dirent *de;
	size_t alloc = 0;
	DIR *d = opendir(dir);

	memset(out, 0, sizeof *out);
	out->dir = xstrdup(dir);
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		xgrow((void **)&out->names, &alloc, out->n + 1,
		      sizeof *out->names);
		out->names[out->n++] = xstrdup(de->d_name);
	}
	if (d)
		closedir(d);
	if (out->n)
		qsort(out->names, out->n, sizeof *out->names, strvec_cmp);
}

void journal_snapshot_release(struct journal_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	free(s->dir);
	memset(s, 0, sizeof *s);
}

static bool snapshot_has(const struct journal_snapshot *s, const char *name)
{
	return s->n && bsearch(&name, s->names, s->n, sizeof *s->names,
			       strvec_cmp);
}

/*
 * Does key end in ".mdg<token>" of a Sieve entry of s?  0 no; 1 yes and
 * its writers live (the file is maildag-lda's to commit); 2 yes and they
 * are dead.  *token points into key.
 */
static int sieve_state(const struct journal_snapshot *s, const char *key,
		       size_t klen, const char **token)
{
	const size_t tail = 1 + SIEVE_MARK_LEN + JOURNAL_TOKEN_LEN;
	const char *t = key + klen - tail;
	int state = 0;

	if (klen <= tail || *t != '.' || memcmp(t + 1, SIEVE_MARK,
						SIEVE_MARK_LEN))
		return 0;
	t += 1 + SIEVE_MARK_LEN;
	*token = t;
	for (size_t i = 0; i < s->n && state != 1; i++) {
		const char *tok = journal_sieve_token(s->names[i]);
		if (tok && !memcmp(tok, t, JOURNAL_TOKEN_LEN)) {
			char *path = xasprintf("%s/%s", s->dir, s->names[i]);
			state = owner_alive(path) ? 1 : 2;
			free(path);
		}
	}
	return state;
}

bool journal_snapshot_sieve_dead(const struct journal_snapshot *s,
				 const char *key, size_t klen,
				 char token[JOURNAL_TOKEN_LEN + 1])
{
	const char *t;

	if (sieve_state(s, key, klen, &t) != 2)
		return false;
	memcpy(token, t, JOURNAL_TOKEN_LEN);
	token[JOURNAL_TOKEN_LEN] = '\0';
	return true;
}

enum journal_found journal_snapshot_claim(char **claimed,
					  struct journal_snapshot *s,
					  const struct oid *blob,
					  const char *key, size_t klen)
{
	enum journal_found ret = JOURNAL_FOUND_NONE;
	const char *token;
	char *e, *c, *w;

	if (!s->n)
		return ret;

	if (sieve_state(s, key, klen, &token) == 1)
		return JOURNAL_FOUND_SIEVE;
	e = entry_name(blob, key, klen);
	c = xasprintf("%s" CLAIMED, e);
	w = xasprintf("%s" WITHDRAWN, e);
	if (snapshot_has(s, w)) {
		ret = JOURNAL_FOUND_WITHDRAWN;
	} else if (snapshot_has(s, e)) {
		char *from = xasprintf("%s/%s", s->dir, e);
		char *to = xasprintf("%s/%s", s->dir, c);
		if (rename(from, to) == 0) {
			ret = JOURNAL_FOUND_CLAIMED;
			*claimed = to;
			to = NULL;
		} else {
			ret = JOURNAL_FOUND_WITHDRAWN;	/* just now */
		}
		free(from);
		free(to);
	} else if (snapshot_has(s, c)) {
		/* claimed by a committer that died */
		ret = JOURNAL_FOUND_CLAIMED;
		*claimed = xasprintf("%s/%s", s->dir, c);
	}
	free(e);
	free(c);
	free(w);
	return ret;
}

/* --- the group commit -------------------------------------------------- */

void journal_claim_release(struct journal_claim *c)
{
	free(c->path);
	free(c->folder);
	free(c->name);
	memset(c, 0, sizeof *c);
}

/* A dead writer's unpublished entry, old enough: remove it. */
static void clean_unpublished(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 &&
	    st.st_mtime < time(NULL) - UNPUBLISHED_MAX_AGE && !owner_alive(path))
		unlink(path);
}

/*
 * A dead writer's withdrawn entry (it was killed between the rename to
 * .w and the removal of its message): finish the withdrawal.
 */
static void clean_withdrawn(const char *path, const char *maildir,
			    const char *target)
{
	char *file;

	if (owner_alive(path))
		return;
	file = xasprintf("%s/%s", maildir, target);
	unlink(file);
	free(file);
	unlink(path);
}

/*
 * Claim the entry base (its name without suffix), which holds target,
 * and hand it to fn.
 */
static void claim_one(const char *dir, const char *base, bool claimed,
		      const struct oid *blob, const char *target,
		      const struct journal_entry *own, journal_claim_fn *fn,
		      void *data)
{
	struct journal_claim c = { 0 };
	char *unclaimed = xasprintf("%s/%s", dir, base);

	c.path = xasprintf("%s" CLAIMED, unclaimed);
	oid_cpy(&c.blob, blob);
	if (!claimed && rename(unclaimed, c.path) < 0)
		goto done;	/* withdrawn meanwhile */
	parse_target(&c.folder, &c.name, target);
	c.mine = own && !strcmp(base, own->path + own->name_off);
	c.alive = c.mine || owner_alive(c.path);
	switch (fn(&c, data)) {
	case JOURNAL_COMMIT:
		memset(&c, 0, sizeof c);	/* fn has it */
		break;
	case JOURNAL_GIVE_BACK:
		rename(c.path, unclaimed);
		break;
	case JOURNAL_DROP:
		unlink(c.path);
		break;
	}
done:
	journal_claim_release(&c);
	free(unclaimed);
}

/* One name of the journal, for journal_claim_all(). */
static void claim_name(const char *dir, const char *name, const char *maildir,
		       const struct journal_entry *own, journal_claim_fn *fn,
		       void *data)
{
	char *path = xasprintf("%s/%s", dir, name), *target = NULL;
	enum journal_state state;
	size_t blen;
	struct oid blob;
	int r;

	if (!strncmp(name, UNPUBLISHED, strlen(UNPUBLISHED)))
		clean_unpublished(path);
	if (name[0] == '.' || !entry_blob(name, &blob) ||
	    journal_sieve_token(name))
		goto done;
	r = classify(&state, &target, &blen, dir, name);
	if (r == E_INVALID) {
		log_warn("dropping malformed journal entry '%s'", path);
		unlink(path);
	} else if (r == 0 && state == JOURNAL_WITHDRAWN) {
		clean_withdrawn(path, maildir, target);
	} else if (r == 0) {
		char *base = xstrndup(name, blen);
		claim_one(dir, base, state == JOURNAL_CLAIMED, &blob, target,
			  own, fn, data);
		free(base);
	}
done:
	free(target);
	free(path);
}

int journal_claim_all(const char *dir, const char *maildir,
		      const struct journal_entry *own, journal_claim_fn *fn,
		      void *data)
{
	struct journal_snapshot s;
	struct stat st;

	if (stat(dir, &st) < 0)
		return errno == ENOENT ? 0 :
		       log_error_errno("stat '%s'", dir);
	/* the names first: claims rename entries while we look */
	journal_snapshot_read(&s, dir);
	for (size_t i = 0; i < s.n; i++)
		claim_name(dir, s.names[i], maildir, own, fn, data);
	journal_snapshot_release(&s);
	return 0;
}

/* --- listing ----------------------------------------------------------- */

void journal_list(const char *dir, journal_list_fn *fn, void *data)
{
	struct journal_snapshot s;

	journal_snapshot_read(&s, dir);
	for (size_t i = 0; i < s.n; i++) {
		struct journal_item it = { 0 };
		char *path, *target = NULL;
		size_t blen;
		struct oid blob;

		if (s.names[i][0] == '.')
			continue;	/* not published: not a delivery yet */
		it.sieve = journal_sieve_token(s.names[i]) != NULL;
		if (!it.sieve && entry_blob(s.names[i], &blob) &&
		    classify(&it.state, &target, &blen, dir,
			     s.names[i]) == E_NOTFOUND)
			continue;	/* gone meanwhile */
		path = xasprintf("%s/%s", dir, s.names[i]);
		it.path = path;
		it.target = it.sieve ? path : target;
		it.alive = owner_alive(path);
		fn(&it, data);
		free(target);
		free(path);
	}
	journal_snapshot_release(&s);
}

/* --- Sieve entries ----------------------------------------------------- */

const char *journal_sieve_token(const char *name)
{
	const char *t = name + OID_HEXSZ + 1;

	if (strlen(name) != OID_HEXSZ + 1 + SIEVE_MARK_LEN + JOURNAL_TOKEN_LEN ||
	    name[OID_HEXSZ] != '-' || memcmp(t, SIEVE_MARK, SIEVE_MARK_LEN))
		return NULL;
	t += SIEVE_MARK_LEN;
	for (size_t i = 0; i < JOURNAL_TOKEN_LEN; i++)
		if (!strchr("0123456789abcdef", t[i]) || !t[i])
			return NULL;
	return t;
}

int journal_sieve_publish(struct journal_sieve *out, const char *dir,
			  const struct oid *blob, const char *token)
{
	char hex[OID_HEXSZ + 1], line[64];
	char *tmp;
	int n, fd;

	memset(out, 0, sizeof *out);
	out->fd = -1;
	oid_tostr(hex, sizeof hex, blob);
	n = snprintf(out->path, sizeof out->path, "%s/%s-" SIEVE_MARK "%s",
		     dir, hex, token);
	if (n < 0 || (size_t)n >= sizeof out->path) {
		out->path[0] = '\0';
		return E_INVALID;
	}
	snprintf(out->token, sizeof out->token, "%s", token);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno("mkdir '%s'", dir);
	tmp = xasprintf("%s/" UNPUBLISHED "%ld", dir, (long)getpid());
	snprintf(line, sizeof line, "sieve %lld\n", (long long)clock_wall());
	unlink(tmp);
	/* no O_CLOEXEC: dovecot-lda inherits it, and the lock with it */
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0 ||
	    write_full(fd, line, strlen(line)) < 0 || fsync(fd) < 0 ||
	    rename(tmp, out->path) < 0 || fsync_dir(dir) < 0) {
		log_error_errno("journal '%s'", out->path);
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		unlink(out->path);
		free(tmp);
		out->path[0] = '\0';
		return E_FAIL;
	}
	free(tmp);
	out->fd = fd;
	return 0;
}

int journal_sieve_find(struct journal_sieve *out, const char *dir,
		       const struct oid *blob)
{
	char hex[OID_HEXSZ + 1];
	struct dirent *de;
	DIR *d = opendir(dir);
	int ret = 0;

	memset(out, 0, sizeof *out);
	out->fd = -1;
	oid_tostr(hex, sizeof hex, blob);
	while (d && !ret && (de = readdir(d))) {
		const char *tok = journal_sieve_token(de->d_name);
		if (!tok || strncmp(de->d_name, hex, OID_HEXSZ))
			continue;
		snprintf(out->path, sizeof out->path, "%s/%s", dir, de->d_name);
		snprintf(out->token, sizeof out->token, "%s", tok);
		out->fd = open(out->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (out->fd < 0)
			continue;	/* removed meanwhile */
		ret = flock(out->fd, LOCK_EX | LOCK_NB) < 0 ? 2 : 1;
	}
	if (d)
		closedir(d);
	return ret;
}

void journal_sieve_remove(struct journal_sieve *e)
{
	if (e->path[0] && unlink(e->path) < 0 && errno != ENOENT)
		log_warn_errno("unlink '%s'", e->path);
	journal_sieve_close(e);
}

void journal_sieve_close(struct journal_sieve *e)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
}

bool journal_sieve_clear_lock(const char *folder_dir, const char *token)
{
	char buf[512], *lock = xasprintf("%s/" DOVECOT_UIDLIST_LOCK, folder_dir);
	char *want = xasprintf("." SIEVE_MARK "%s", token);
	int fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	bool removed = false;

	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = '\0';
		/* "<pid>:<host>": the host is the dead child's */
		if (strstr(buf, want) && unlink(lock) == 0) {
			log_info("removed '%s' of a dead dovecot-lda", lock);
			removed = true;
		}
	}
	free(want);
	free(lock);
	return removed;
}

void journal_blobs(const char *repo_path, journal_blob_fn *fn, void *data)
{
	char *path = xasprintf("%s/maildag/" JOURNAL_DIR, repo_path);
	DIR *d = opendir(path);
	struct dirent *de;

	free(path);
	while (d && (de = readdir(d))) {
		const char *n = de->d_name;
		struct oid id;

		if (!strncmp(n, UNPUBLISHED, strlen(UNPUBLISHED)))
			n += strlen(UNPUBLISHED);
		if (strlen(n) > OID_HEXSZ && n[OID_HEXSZ] == '-' &&
		    oid_fromstr(&id, n) == 0)
			fn(&id, data);
	}
	if (d)
		closedir(d);
}
