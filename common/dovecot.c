/*
 * dovecot: dovecot-uidlist, its dotlock, and dovecot-keywords (see
 * dovecot.h).
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dovecot.h"
#include "fsutil.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define LOCK_SUFFIX ".lock"
#define TMP_SUFFIX ".maildag.tmp"	/* never Dovecot's own ".tmp" */
#define FILE_MAX (256u << 20)
#define LOCK_POLL_MS 10

/* --- the lock ------------------------------------------------------------ */

int dovecot_lock(struct dovecot_lock *out, const char *dir, int timeout_ms)
{
	char *path = xasprintf("%s/" DOVECOT_UIDLIST LOCK_SUFFIX, dir);
	char host[256];
	struct strbuf who = STRBUF_INIT;
	int waited = 0, fd, ret = 0;

	if (gethostname(host, sizeof host) < 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	strbuf_addf(&who, "%ld:%s", (long)getpid(), host);
	while ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			  0644)) < 0) {
		struct timespec ts = { 0, LOCK_POLL_MS * 1000000L };
		if (errno != EEXIST) {
			ret = log_error_errno("create '%s'", path);
			goto fail;
		}
		if (waited >= timeout_ms) {
			ret = E_TEMP;	/* Dovecot's: never ours to remove */
			goto fail;
		}
		nanosleep(&ts, NULL);
		waited += LOCK_POLL_MS;
	}
	if (write_full(fd, who.buf, who.len) < 0) {
		ret = log_error_errno("write '%s'", path);
		close(fd);
		unlink(path);
		goto fail;
	}
	{
		struct stat st;
		if (fstat(fd, &st) == 0) {
			out->dev = (unsigned long long)st.st_dev;
			out->ino = (unsigned long long)st.st_ino;
		}
	}
	close(fd);
	out->path = path;
	strbuf_release(&who);
	return 0;
fail:
	free(path);
	strbuf_release(&who);
	return ret;
}

/*
 * Our lock file went with its folder: a client's RENAME moves the
 * directory whatever lock is held in it (Dovecot's RENAME does not take
 * the uidlist lock).  Left there, it would hold the renamed folder's
 * every session and commit until Dovecot breaks it.  It is found by its
 * inode among the folders beside the old one.  True when removed.
 */
static bool unlock_moved(const struct dovecot_lock *l)
{
	char *root = xstrdup(l->path), *slash;
	DIR *dh;
	struct dirent *de;
	bool done = false;

	/* <root>/<folder>/dovecot-uidlist.lock */
	for (int i = 0; i < 2 && (slash = strrchr(root, '/')); i++)
		*slash = '\0';
	dh = slash ? opendir(root) : NULL;
	while (dh && !done && (de = readdir(dh))) {
		char *p;
		struct stat st;

		if (de->d_name[0] != '.' || !strcmp(de->d_name, ".") ||
		    !strcmp(de->d_name, ".."))
			continue;
		p = xasprintf("%s/%s/" DOVECOT_UIDLIST LOCK_SUFFIX, root,
			      de->d_name);
		if (lstat(p, &st) == 0 &&
		    (unsigned long long)st.st_dev == l->dev &&
		    (unsigned long long)st.st_ino == l->ino && unlink(p) == 0) {
			log_info("'%s': our lock went with its folder's rename; "
				 "removed", p);
			done = true;
		}
		free(p);
	}
	if (dh)
		closedir(dh);
	free(root);
	return done;
}

void dovecot_unlock(struct dovecot_lock *l)
{
	if (!l->path)
		return;
	if (unlink(l->path) < 0) {
		int e = errno;
		if (!(e == ENOENT && l->ino && unlock_moved(l))) {
			errno = e;
			log_warn_errno("unlink '%s'", l->path);
		}
	}
	free(l->path);
	l->path = NULL;
}

/* --- reading a small file ------------------------------------------------ */

/* The bytes of path into out; E_NOTFOUND, or E_FAIL (logged). */
static int slurp(struct strbuf *out, const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return errno == ENOENT ? E_NOTFOUND :
		       log_error_errno("open '%s'", path);
	if (fstat(fd, st) < 0 || st->st_size > FILE_MAX) {
		close(fd);
		return log_error("cannot read '%s': too large or no stat", path);
	}
	strbuf_grow(out, (size_t)st->st_size + 1);
	if (read_full(fd, out->buf, (size_t)st->st_size) !=
	    (ssize_t)st->st_size)
		ret = log_error_errno("read '%s'", path);
	else
		strbuf_setlen(out, (size_t)st->st_size);
	close(fd);
	return ret;
}

/* Write data to dir/name through dir/name.maildag.tmp; mtime if > 0. */
static int replace(const char *dir, const char *name, const char *data,
		   size_t len, time_t mtime)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *tmp = xasprintf("%s" TMP_SUFFIX, path);
	int fd, ret = E_FAIL;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error_errno("open '%s'", tmp);
		goto done;
	}
	if (write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		log_error_errno("write '%s'", tmp);
		close(fd);
		goto unlink;
	}
	if (mtime > 0) {
		struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
		if (futimens(fd, ts) < 0)
			log_warn_errno("futimens '%s'", tmp);
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		log_error_errno("rename '%s'", tmp);
		goto unlink;
	}
	ret = fsync_parent(path);
	goto done;
unlink:
	unlink(tmp);
done:
	free(tmp);
	free(path);
	return ret;
}

/* --- dovecot-uidlist ---------------------------------------------------- */

void uidlist_release(struct uidlist *u)
{
	for (size_t i = 0; i < u->n; i++) {
		free(u->v[i].ext);
		free(u->v[i].base);
	}
	free(u->v);
	free(u->hdr);
	memset(u, 0, sizeof *u);
}

/* "[1-9][0-9]*" up to 2^32-1 at *p, ending at a space, NUL or LF */
static bool number(const char **p, uint32_t *out)
{
	unsigned long long v = 0;
	const char *s = *p;

	if (*s < '1' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (unsigned)(*s++ - '0');
		if (v > 4294967295ull)
			return false;
	}
	if (*s && *s != ' ' && *s != '\n')
		return false;
	*out = (uint32_t)v;
	*p = s;
	return true;
}

/* The header "3 V.. N.. [...]" of line (NUL-terminated, no LF). */
static bool parse_header(struct uidlist *u, const char *line)
{
	struct strbuf rest = STRBUF_INIT;
	const char *p = line;

	if (strncmp(p, "3 ", 2))
		return false;
	p += 2;
	while (*p) {
		const char *sp = strchr(p, ' ');
		size_t len = sp ? (size_t)(sp - p) : strlen(p);
		const char *q = p + 1;

		if (*p == 'V' && number(&q, &u->uidvalidity) && q == p + len) {
			;
		} else if (*p == 'N' && number(&q, &u->nextuid) && q == p + len) {
			;
		} else if (len && *p >= 'A' && *p <= 'Z') {
			strbuf_addch(&rest, ' ');
			strbuf_add(&rest, p, len);
		} else {
			strbuf_release(&rest);
			return false;
		}
		p += len + (sp ? 1 : 0);
	}
	u->hdr = strbuf_detach(&rest, NULL);
	return u->uidvalidity && u->nextuid;
}

/* One record line (NUL-terminated, no LF): "<uid> [<k><v>]... :<base>". */
static bool parse_record(struct uidlist *u, const char *line)
{
	struct uidlist_rec rec;
	const char *p = line, *ext;

	if (!number(&p, &rec.uid) || *p != ' ')
		return false;
	ext = p;
	while (*p == ' ' && p[1] != ':') {
		if (p[1] < 'A' || p[1] > 'Z')
			return false;
		p = strchr(p + 1, ' ');
		if (!p)
			return false;
	}
	if (p[0] != ' ' || p[1] != ':' || !p[2] || strchr(p + 2, '/'))
		return false;
	if (u->n && u->v[u->n - 1].uid >= rec.uid)
		return false;
	rec.ext = xstrndup(ext, (size_t)(p - ext));
	rec.base = xstrdup(p + 2);
	xgrow((void **)&u->v, &u->alloc, u->n + 1, sizeof *u->v);
	u->v[u->n++] = rec;
	return true;
}

int uidlist_read(struct uidlist *out, const char *dir)
{
	char *path = xasprintf("%s/" DOVECOT_UIDLIST, dir);
	struct strbuf buf = STRBUF_INIT;
	struct stat st;
	unsigned line = 0;
	char *p, *eol;
	int ret;

	if ((ret = slurp(&buf, path, &st)) < 0)
		goto done;
	for (p = buf.buf; *p; p = eol + 1) {
		eol = strchr(p, '\n');
		if (!eol)	/* a line being appended: not there yet */
			break;
		*eol = '\0';
		if (!(line++ ? parse_record(out, p) : parse_header(out, p))) {
			log_error("'%s' line %u: not a uidlist line Dovecot "
				  "would accept", path, line);
			uidlist_release(out);
			ret = E_INVALID;
			goto done;
		}
	}
	if (!line) {
		log_error("'%s': no header", path);
		ret = E_INVALID;
	}
done:
	strbuf_release(&buf);
	free(path);
	return ret;
}

/*
 * A partial read (uidlist_read_some): the file mapped, records found by
 * binary search on their UIDs (Dovecot keeps them in UID order), each
 * line checked as the full read checks it.
 */
struct umap {
	const char *buf, *rec, *end;	/* file, first record, end of the
					   last complete line */
};

/* the start of the line holding p (rec <= p < end) */
static const char *line_start(const struct umap *m, const char *p)
{
	while (p > m->rec && p[-1] != '\n')
		p--;
	return p;
}

static const char *line_end(const char *p)
{
	return strchr(p, '\n');	/* within the map: lines end before end */
}

/* The UID of the line at p (0 when it is not a record). */
static uint32_t line_uid(const char *p)
{
	uint32_t uid;

	return number(&p, &uid) ? uid : 0;
}

/* The first line whose UID is at or above uid; m->end when none. */
static const char *lower_bound(const struct umap *m, uint32_t uid, bool *bad)
{
	const char *lo = m->rec, *hi = m->end;

	while (lo < hi) {
		const char *s = line_start(m, lo + (hi - lo) / 2);
		uint32_t u = line_uid(s);

		if (!u) {
			*bad = true;
			return m->end;
		}
		if (u < uid)
			lo = line_end(s) + 1;
		else
			hi = s;
	}
	return lo;
}

/* Parse the line at p into u, kept in UID order; false: not a record. */
static bool add_line(struct uidlist *u, const char *p)
{
	size_t len = (size_t)(line_end(p) - p);
	char *line = xstrndup(p, len);
	struct uidlist one = UIDLIST_INIT;
	size_t at;
	bool ok = parse_record(&one, line);

	free(line);
	if (!ok)
		return false;
	for (at = u->n; at > 0 && u->v[at - 1].uid >= one.v[0].uid; at--)
		;
	if (at < u->n && u->v[at].uid == one.v[0].uid) {
		free(one.v[0].ext);
		free(one.v[0].base);
	} else {
		xgrow((void **)&u->v, &u->alloc, u->n + 1, sizeof *u->v);
		memmove(&u->v[at + 1], &u->v[at], (u->n - at) * sizeof *u->v);
		u->v[at] = one.v[0];
		u->n++;
	}
	free(one.v);
	return true;
}

int uidlist_read_some(struct uidlist *out, const char *dir,
		      const uint32_t *uids, size_t n, uint32_t tail)
{
	char *path = xasprintf("%s/" DOVECOT_UIDLIST, dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	struct stat st;
	struct umap m;
	void *map = MAP_FAILED;
	const char *p, *nl, *last;
	bool bad = false;

	if (fd < 0) {
		ret = errno == ENOENT ? E_NOTFOUND :
		      log_error_errno("open '%s'", path);
		goto done;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > FILE_MAX ||
	    (map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
			fd, 0)) == MAP_FAILED) {
		ret = UIDLIST_WHOLE;
		goto done;
	}
	/* every look below stops at a LF before m.end */
	m.buf = map;
	nl = memchr(m.buf, '\n', (size_t)st.st_size);
	last = m.buf + st.st_size;
	while (last > m.buf && last[-1] != '\n')
		last--;	/* a line being appended: not there yet */
	if (!nl) {
		ret = UIDLIST_WHOLE;
		goto done;
	}
	{
		char *hdr = xstrndup(m.buf, (size_t)(nl - m.buf));
		bool ok = parse_header(out, hdr);
		free(hdr);
		if (!ok) {
			ret = UIDLIST_WHOLE;
			goto done;
		}
	}
	m.rec = nl + 1;
	m.end = last;
	for (size_t i = 0; i < n && !bad; i++) {
		p = lower_bound(&m, uids[i], &bad);
		if (!bad && p < m.end && line_uid(p) == uids[i] && !add_line(out, p))
			bad = true;
	}
	p = bad ? m.end : lower_bound(&m, tail, &bad);
	for (; !bad && p < m.end; p = line_end(p) + 1)
		bad = !add_line(out, p);
	/* the last record, for uidlist_next() */
	if (!bad && m.end > m.rec && !add_line(out, line_start(&m, m.end - 1)))
		bad = true;
	if (bad)
		ret = UIDLIST_WHOLE;
done:
	if (ret != 0)
		uidlist_release(out);
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

uint32_t uidlist_next(const struct uidlist *u)
{
	uint32_t last = u->n ? u->v[u->n - 1].uid : 0;

	return last >= u->nextuid ? last + 1 : u->nextuid;
}

const struct uidlist_rec *uidlist_find(const struct uidlist *u,
				       const char *base)
{
	for (size_t i = 0; i < u->n; i++)
		if (!strcmp(u->v[i].base, base))
			return &u->v[i];
	return NULL;
}

int uidlist_add(struct uidlist *u, uint32_t uid, const char *base,
		const char *ext)
{
	if (!uid || uid < uidlist_next(u)) {
		log_error("UID %u for '%s' is below the next UID %u", uid,
			  base, uidlist_next(u));
		return E_INVALID;
	}
	xgrow((void **)&u->v, &u->alloc, u->n + 1, sizeof *u->v);
	u->v[u->n].uid = uid;
	u->v[u->n].ext = xstrdup(ext ? ext : "");
	u->v[u->n].base = xstrdup(base);
	u->n++;
	return 0;
}

bool uidlist_remove(struct uidlist *u, const char *base)
{
	for (size_t i = 0; i < u->n; i++) {
		if (strcmp(u->v[i].base, base))
			continue;
		/* the next UID never goes down, even when the last one goes */
		u->nextuid = uidlist_next(u);
		free(u->v[i].ext);
		free(u->v[i].base);
		memmove(&u->v[i], &u->v[i + 1], (u->n - i - 1) * sizeof *u->v);
		u->n--;
		return true;
	}
	return false;
}

bool uidlist_rename(struct uidlist *u, const char *from, const char *to)
{
	for (size_t i = 0; i < u->n; i++) {
		if (strcmp(u->v[i].base, from))
			continue;
		free(u->v[i].base);
		u->v[i].base = xstrdup(to);
		if (!strstr(u->v[i].ext, " G")) {
			char *ext = xasprintf("%s G%s", u->v[i].ext, from);
			free(u->v[i].ext);
			u->v[i].ext = ext;
		}
		return true;
	}
	return false;
}

static void format_records(struct strbuf *out, const struct uidlist *u,
			   size_t from)
{
	for (size_t i = from; i < u->n; i++)
		strbuf_addf(out, "%u%s :%s\n", u->v[i].uid, u->v[i].ext,
			    u->v[i].base);
}

int uidlist_append(const char *dir, const struct uidlist *u, size_t from)
{
	char *path = xasprintf("%s/" DOVECOT_UIDLIST, dir);
	struct strbuf buf = STRBUF_INIT;
	int fd, ret = 0;

	format_records(&buf, u, from);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		ret = log_error_errno("open '%s'", path);
	else if (write_full(fd, buf.buf, buf.len) < 0 || fsync(fd) < 0)
		ret = log_error_errno("append to '%s'", path);
	if (fd >= 0)
		close(fd);
	strbuf_release(&buf);
	free(path);
	return ret;
}

int uidlist_rewrite(const char *dir, const struct uidlist *u)
{
	struct strbuf buf = STRBUF_INIT;
	int ret;

	strbuf_addf(&buf, "3 V%u N%u%s\n", u->uidvalidity, uidlist_next(u),
		    u->hdr ? u->hdr : "");
	format_records(&buf, u, 0);
	ret = replace(dir, DOVECOT_UIDLIST, buf.buf, buf.len, 0);
	strbuf_release(&buf);
	return ret;
}

/* --- dovecot-keywords --------------------------------------------------- */

void dovecot_keywords_release(struct dovecot_keywords *k)
{
	for (int i = 0; i < DOVECOT_MAX_KEYWORDS; i++) {
		free(k->name[i]);
		k->name[i] = NULL;
	}
}

int dovecot_keywords_read(struct dovecot_keywords *out, const char *dir)
{
	char *path = xasprintf("%s/" DOVECOT_KEYWORDS, dir);
	struct strbuf buf = STRBUF_INIT;
	struct stat st;
	char *p, *eol;
	int ret;

	memset(out, 0, sizeof *out);
	ret = slurp(&buf, path, &st);
	if (ret == E_NOTFOUND)
		ret = 0;
	for (p = buf.buf; ret == 0 && *p; p = eol + 1) {
		char *end;
		long idx;

		if (!(eol = strchr(p, '\n')))
			break;
		*eol = '\0';
		idx = strtol(p, &end, 10);
		/* Dovecot skips what it cannot read; so do we */
		if (end == p || *end != ' ' || idx < 0 ||
		    idx >= DOVECOT_MAX_KEYWORDS || !end[1] || out->name[idx])
			continue;
		out->name[idx] = xstrdup(end + 1);
	}
	strbuf_release(&buf);
	free(path);
	return ret;
}

static int casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int x = *a >= 'A' && *a <= 'Z' ? *a - 'A' + 'a' : *a;
		int y = *b >= 'A' && *b <= 'Z' ? *b - 'A' + 'a' : *b;
		if (x != y || !x)
			return x - y;
	}
}

int dovecot_keywords_index(struct dovecot_keywords *k, const char *name,
			   bool add)
{
	int i;

	for (i = 0; i < DOVECOT_MAX_KEYWORDS; i++)
		if (k->name[i] && !casecmp(k->name[i], name))
			return i;
	if (!add)
		return -1;
	for (i = 0; i < DOVECOT_MAX_KEYWORDS; i++)
		if (!k->name[i]) {
			k->name[i] = xstrdup(name);
			return i;
		}
	return -1;
}

void dovecot_keywords_names(struct strvec *out,
			    const struct dovecot_keywords *k,
			    const char *flags)
{
	for (; *flags; flags++) {
		int i = *flags - 'a';
		char buf[32];

		if (*flags < 'a' || *flags > 'z')
			continue;
		if (k->name[i]) {
			strvec_push(out, k->name[i]);
		} else {
			snprintf(buf, sizeof buf, "unknown-%d", i);
			strvec_push(out, buf);
		}
	}
}

size_t dovecot_keywords_letters(struct strbuf *out,
				struct dovecot_keywords *k,
				const char *const *names, size_t n, bool add)
{
	bool on[DOVECOT_MAX_KEYWORDS] = { false };
	size_t left = 0;

	for (size_t i = 0; i < n; i++) {
		int idx = dovecot_keywords_index(k, names[i], add);
		if (idx < 0)
			left++;
		else
			on[idx] = true;
	}
	for (int i = 0; i < DOVECOT_MAX_KEYWORDS; i++)
		if (on[i])
			strbuf_addch(out, (char)('a' + i));
	return left;
}

unsigned dovecot_keywords_gc(struct dovecot_keywords *k, uint32_t used)
{
	unsigned dropped = 0;

	for (int i = 0; i < DOVECOT_MAX_KEYWORDS; i++)
		if (k->name[i] && !(used & (1u << i))) {
			free(k->name[i]);
			k->name[i] = NULL;
			dropped++;
		}
	return dropped;
}

int dovecot_keywords_write(const char *dir, const struct dovecot_keywords *k)
{
	char *path = xasprintf("%s/" DOVECOT_KEYWORDS, dir);
	struct strbuf buf = STRBUF_INIT;
	struct stat st;
	time_t mtime = time(NULL);
	int ret;

	if (stat(path, &st) == 0 && st.st_mtime >= mtime)
		mtime = st.st_mtime + 1;	/* E9: it must change */
	for (int i = 0; i < DOVECOT_MAX_KEYWORDS; i++)
		if (k->name[i])
			strbuf_addf(&buf, "%d %s\n", i, k->name[i]);
	ret = replace(dir, DOVECOT_KEYWORDS, buf.buf, buf.len, mtime);
	strbuf_release(&buf);
	free(path);
	return ret;
}

/* --- the records of a folder ---------------------------------------------- */

/* The base name of a file name: everything before ':' (1.1). */
static char *base_of(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon ? xstrndup(name, (size_t)(colon - name)) : xstrdup(name);
}

/* A name Dovecot knows that is no IMAP keyword cannot be recorded. */
static void drop_invalid(struct strvec *kw, const char *file)
{
	size_t w = 0;

	for (size_t i = 0; i < kw->n; i++) {
		if (imap_keyword_valid(kw->v[i], strlen(kw->v[i]))) {
			kw->v[w++] = kw->v[i];
			continue;
		}
		log_warn("'%s': keyword '%s' is not an IMAP keyword, not "
			 "recorded", file, kw->v[i]);
		free(kw->v[i]);
	}
	kw->n = w;
}

int dovecot_records(struct imap_recs *out, struct imap_folder *f,
		    struct uidlist *u, const struct dovecot_keywords *k,
		    const char *const *names, size_t n, unsigned slot)
{
	int ret = 0;

	for (size_t i = 0; i < n && ret == 0; i++) {
		struct maildir_name mn;
		struct strvec kw = STRVEC_INIT;
		const struct uidlist_rec *rec;
		char *base = base_of(names[i]);
		uint32_t uid;

		if (maildir_name_parse(&mn, names[i]) < 0) {
			log_error("'%s' is not a Maildir name", names[i]);
			free(base);
			return E_INVALID;
		}
		rec = uidlist_find(u, base);
		if (rec) {
			uid = rec->uid;
		} else {
			uid = imap_uid_alloc(uidlist_next(u), slot, 1);
			if (!uid)
				ret = log_error("no UID left in slot %u", slot);
			else
				ret = uidlist_add(u, uid, base, "");
		}
		if (ret == 0) {
			dovecot_keywords_names(&kw, k, maildir_name_flags(&mn));
			drop_invalid(&kw, names[i]);
			imap_recs_set(out, mn.key, uid,
				      (const char *const *)kw.v, kw.n);
		}
		strvec_clear(&kw);
		maildir_name_release(&mn);
		free(base);
	}
	f->uidvalidity = u->uidvalidity;
	f->uidnext = uidlist_next(u);
	return ret;
}

/* the word w (case aside) among s's space-separated words */
static bool has_word(const char *s, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = s; *p; ) {
		size_t len = strcspn(p, " \t");
		if (len == n && strncasecmp(p, w, n) == 0)
			return true;
		p += len;
		p += strspn(p, " \t");
	}
	return false;
}

unsigned dovecot_failover_unsafe(const char *mail_location,
				 const char *imap_capability)
{
	unsigned out = 0;
	const char *p;
	bool memory = false;

	/* INDEX=MEMORY as one of the ':'-separated parameters after the path */
	for (p = strchr(mail_location, ':'); p; p = strchr(p + 1, ':'))
		if (strncmp(p + 1, "INDEX=MEMORY", 12) == 0 &&
		    (p[13] == ':' || p[13] == '\0'))
			memory = true;
	if (!memory)
		out |= DOVECOT_FAILOVER_INDEX_ON_DISK;
	/* Dovecot's own list (empty, or "+" and additions) has both */
	if (imap_capability[0] == '\0' || imap_capability[0] == '+' ||
	    has_word(imap_capability, "CONDSTORE") ||
	    has_word(imap_capability, "QRESYNC"))
		out |= DOVECOT_FAILOVER_CONDSTORE;
	return out;
}
