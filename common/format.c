/*
 * format: validation of repository format version 1 (see format.h and
 * maildag-format(5)).
 *
 * Trees are read as raw objects and parsed here, so what is checked is
 * exactly what a later reader will see: the mode as written, the name as
 * bytes, the order of the entries.  The walk knows the only shape a valid
 * tree has (root, folder, cur|new, shard, message; root, mtimes, record),
 * so it never recurses deeper than four trees whatever a peer sends.
 *
 * With a trusted tree the walk goes down only where ids differ at the
 * same path.  Keys of the shard trees it checks go into one set; a second
 * pass then reads, for every shard number <xx> that changed anywhere, the
 * other <xx> trees of every folder and looks their keys up in that set.
 * That finds every duplicate: two entries with one key share a shard
 * number, and if both sat in unchanged trees the trusted tree would have
 * held both already.  The same shard numbers, plus those of mtimes/<xx>
 * blobs that changed and of shard trees that disappeared, are the ones
 * whose records are matched against the messages: a record can only lose
 * its message where something of its shard changed.
 *
 * Limits (struct format_limits) are checked from object headers before
 * any object is read whole: a blob's size, and a tree's size against what
 * its allowed number of entries could take (an entry of a valid tree is
 * at most ENTRY_MAX bytes), then its entries as they are parsed.  The
 * message blobs a check reads the header of are the ones new against the
 * trusted tree by path; those whose key and id the trusted tree holds
 * elsewhere (a flag change, a move) are not added bytes, which a last
 * pass over the trusted trees of the changed shard numbers settles.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "config.h"
#include "folder.h"
#include "format.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "xalloc.h"

#define NAME_MAX_BYTES 255
#define FORMAT_MAX 64			/* bytes worth reading of FORMAT */
#define SHOW_MAX 512			/* bytes of a path shown in a message */
#define EMPTY_BLOB_HEX "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
/* the largest entry of a valid tree: "100644 " <255 bytes> NUL <id> */
#define ENTRY_MAX (7 + NAME_MAX_BYTES + 1 + OID_RAWSZ)

static struct format_limits limits = {
	FORMAT_DEFAULT_MESSAGE_BYTES, FORMAT_DEFAULT_SUBSCRIPTIONS_BYTES,
	FORMAT_DEFAULT_TREE_ENTRIES, FORMAT_DEFAULT_FOLDERS,
	FORMAT_DEFAULT_MERGE_BYTES,
};

void format_set_limits(const struct format_limits *l)
{
	limits = *l;
}

const struct format_limits *format_get_limits(void)
{
	return &limits;
}

void format_use_config(const struct config *cfg)
{
	limits.message_bytes = (unsigned long long)cfg->size_limit;
	limits.subscriptions_bytes = (unsigned long long)cfg->subscriptions_limit;
	limits.tree_entries = (size_t)cfg->tree_entries_limit;
	limits.folders = (size_t)cfg->folder_limit;
	limits.merge_bytes = (unsigned long long)cfg->merge_limit;
}

/* Append a formatted line to a caller's buffer. */
static __attribute__((format(printf, 2, 3)))
void errf(struct strbuf *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(err, fmt, ap);
	va_end(ap);
}

/* --- a set of byte strings, each with a value ---------------------------- */

struct slot {
	char *key;		/* NULL: empty */
	size_t len;
	char *val;
	uint64_t hash;
};

struct strset {
	struct slot *s;
	size_t n, cap;		/* cap is 0 or a power of two */
};

static uint64_t hash_seed;

/* FNV-1a, 64 bits, from a random basis so a peer cannot pick collisions */
static uint64_t strset_hash(const char *p, size_t len)
{
	uint64_t h;

	if (!hash_seed) {
		if (getrandom(&hash_seed, sizeof hash_seed, GRND_NONBLOCK) !=
		    (ssize_t)sizeof hash_seed)
			hash_seed = (uint64_t)(uintptr_t)&hash_seed;
		hash_seed |= 1;
	}
	h = 14695981039346656037ull ^ hash_seed;
	while (len--) {
		h ^= (unsigned char)*p++;
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static struct slot *strset_slot(const struct strset *ss, const char *key,
				size_t len, uint64_t h)
{
	size_t i = (size_t)h & (ss->cap - 1);

	for (;; i = (i + 1) & (ss->cap - 1)) {
		struct slot *s = &ss->s[i];
		if (!s->key || (s->hash == h && s->len == len &&
				!memcmp(s->key, key, len)))
			return s;
	}
}

static const char *strset_get(const struct strset *ss, const char *key,
			      size_t len)
{
	struct slot *s;

	if (!ss->cap)
		return NULL;
	s = strset_slot(ss, key, len, strset_hash(key, len));
	return s->key ? s->val : NULL;
}

/* Add key with a copy of val; if key is there already, return its value. */
static const char *strset_add(struct strset *ss, const char *key, size_t len,
			      const char *val)
{
	uint64_t h = strset_hash(key, len);
	struct slot *s;

	if (2 * (ss->n + 1) > ss->cap) {
		struct strset bigger = { NULL, 0, ss->cap ? 2 * ss->cap : 64 };
		bigger.s = xcalloc(bigger.cap, sizeof *bigger.s);
		for (size_t i = 0; i < ss->cap; i++)
			if (ss->s[i].key)
				*strset_slot(&bigger, ss->s[i].key, ss->s[i].len,
					     ss->s[i].hash) = ss->s[i];
		free(ss->s);
		bigger.n = ss->n;
		*ss = bigger;
	}
	s = strset_slot(ss, key, len, h);
	if (s->key)
		return s->val;
	s->key = xstrndup(key, len);
	s->len = len;
	s->val = xstrdup(val);
	s->hash = h;
	ss->n++;
	return NULL;
}

static void strset_release(struct strset *ss)
{
	for (size_t i = 0; i < ss->cap; i++) {
		free(ss->s[i].key);
		free(ss->s[i].val);
	}
	free(ss->s);
	memset(ss, 0, sizeof *ss);
}

/* --- raw tree objects ------------------------------------------------------ */

struct rentry {
	const char *name;	/* NUL-terminated inside the object's bytes */
	size_t nlen;
	const char *mode;	/* not terminated */
	size_t mlen;
	bool dir;		/* the mode says directory (for git's order) */
	struct oid id;
};

struct rtree {
	git_odb_object *obj;
	struct rentry *e;
	size_t n, alloc;
};

static void rtree_release(struct rtree *t)
{
	git_odb_object_free(t->obj);
	free(t->e);
	memset(t, 0, sizeof *t);
}

static bool mode_is(const struct rentry *e, const char *mode)
{
	return e->mlen == strlen(mode) && !memcmp(e->mode, mode, e->mlen);
}

static bool is_blob(const struct rentry *e) { return mode_is(e, "100644"); }
static bool is_tree(const struct rentry *e) { return mode_is(e, "40000"); }

static bool name_is(const struct rentry *e, const char *name)
{
	return !strcmp(e->name, name);
}

/* Does the mode, read as git reads it (octal), say directory? */
static bool mode_dir(const char *m, size_t mlen)
{
	unsigned long v = 0;

	if (mlen == 0 || mlen > 7)
		return false;
	for (size_t i = 0; i < mlen; i++) {
		if (m[i] < '0' || m[i] > '7')
			return false;
		v = v * 8 + (unsigned long)(m[i] - '0');
	}
	return (v & 0170000) == 0040000;
}

static const char too_many[] = "too many entries";

/*
 * Parse a tree object's bytes, at most max entries; NULL, or why they
 * are not a tree (too_many when there are more than max).
 */
static const char *rtree_parse(struct rtree *t, const char *p, size_t len,
			       size_t max)
{
	const char *end = p + len;

	while (p < end) {
		const char *sp, *nul;
		struct rentry *e;

		if (t->n == max)
			return too_many;
		if (!(sp = memchr(p, ' ', (size_t)(end - p))))
			return "corrupt tree object: no space after mode";
		if (!(nul = memchr(sp + 1, '\0', (size_t)(end - sp - 1))))
			return "corrupt tree object: name not terminated";
		if ((size_t)(end - nul - 1) < OID_RAWSZ)
			return "corrupt tree object: truncated object id";
		xgrow((void **)&t->e, &t->alloc, t->n + 1, sizeof *t->e);
		e = &t->e[t->n++];
		e->mode = p;
		e->mlen = (size_t)(sp - p);
		e->name = sp + 1;
		e->nlen = (size_t)(nul - sp - 1);
		e->dir = mode_dir(e->mode, e->mlen);
		memcpy(e->id.id, nul + 1, OID_RAWSZ);
		p = nul + 1 + OID_RAWSZ;
	}
	return NULL;
}

/* git's order: names compared bytewise, a directory as if it ended in '/' */
static int entry_cmp(const struct rentry *a, const struct rentry *b)
{
	size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
	int c = memcmp(a->name, b->name, n);
	unsigned ca, cb;

	if (c)
		return c;
	ca = n < a->nlen ? (unsigned char)a->name[n] : a->dir ? '/' : 0;
	cb = n < b->nlen ? (unsigned char)b->name[n] : b->dir ? '/' : 0;
	return (int)ca - (int)cb;
}

/*
 * The entry of a (trusted) tree with this name and kind, or NULL.  A
 * binary search, so an unsorted trusted tree only makes more work (an
 * entry not found is checked as new), never a wrong answer.
 */
static const struct rentry *rtree_find(const struct rtree *t,
				       const struct rentry *like)
{
	size_t lo = 0, hi = t ? t->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = entry_cmp(&t->e[mid], like);
		if (c == 0)	/* same name, same directory bit */
			return &t->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct rentry *rtree_lookup(const struct rtree *t,
					 const char *name)
{
	for (size_t i = 0; t && i < t->n; i++)
		if (name_is(&t->e[i], name))
			return &t->e[i];
	return NULL;
}

/* --- the checker ------------------------------------------------------------ */

struct checker {
	git_odb *odb;
	bool all;			/* report every problem, not the first */
	format_problem_fn *fn;
	void *data;
	int problems;
	int fatal;			/* E_TEMP once an object read failed */
	bool stop;			/* nothing more to check */
	bool incremental;		/* a trusted tree was given */
	struct strbuf path;		/* raw path of the tree being checked */
	struct strset keys;		/* key -> path, of the checked shards */
	struct strset changed;		/* "<folder>/<sub>/<xx>" checked */
	bool affected[256];		/* shard numbers checked somewhere */
	bool bad_records[256];		/* mtimes/<xx> refused already */
	struct strset seen;		/* keys of unchanged trees of them */
	struct format_stats st;
	bool merge;			/* check limits.merge_bytes */
	const struct oid *trusted;	/* the trusted root, or NULL */
	struct added {			/* message blobs new by path */
		struct oid id;
		unsigned long long size;
	} *add;
	size_t nadd, aladd;
	unsigned long long added;	/* their sizes summed */
};

void format_escape(struct strbuf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '\\') {
			strbuf_addstr(out, "\\x");
			strbuf_addch(out, hex[c >> 4]);
			strbuf_addch(out, hex[c & 15]);
		} else {
			strbuf_addch(out, c);
		}
	}
}

/* Escape a path for a message, cut to SHOW_MAX bytes. */
static void show_path(struct strbuf *out, const char *p, size_t len)
{
	if (len > SHOW_MAX) {
		format_escape(out, p, SHOW_MAX);
		strbuf_addstr(out, "...");
	} else {
		format_escape(out, p, len);
	}
}

static void vreport(struct checker *ck, const char *path, size_t plen,
		    const char *fmt, va_list ap)
{
	struct strbuf shown = STRBUF_INIT, reason = STRBUF_INIT;

	show_path(&shown, path, plen);
	strbuf_vaddf(&reason, fmt, ap);
	ck->problems++;
	ck->fn(shown.len ? shown.buf : "", reason.buf, ck->data);
	if (!ck->all)
		ck->stop = true;
	strbuf_release(&shown);
	strbuf_release(&reason);
}

/* A problem at the entry name of the tree being checked. */
static __attribute__((format(printf, 4, 5)))
void report(struct checker *ck, const char *name, size_t nlen,
	    const char *fmt, ...)
{
	size_t old = ck->path.len;
	va_list ap;

	if (name) {
		if (ck->path.len)
			strbuf_addch(&ck->path, '/');
		strbuf_add(&ck->path, name, nlen);
	}
	va_start(ap, fmt);
	vreport(ck, ck->path.len ? ck->path.buf : "", ck->path.len, fmt, ap);
	va_end(ap);
	strbuf_setlen(&ck->path, old);
}

/* A problem at a full raw path. */
static __attribute__((format(printf, 3, 4)))
void report_path(struct checker *ck, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ck, path, strlen(path), fmt, ap);
	va_end(ap);
}

static size_t path_push(struct checker *ck, const struct rentry *e)
{
	size_t old = ck->path.len;

	if (ck->path.len)
		strbuf_addch(&ck->path, '/');
	strbuf_add(&ck->path, e->name, e->nlen);
	return old;
}

static void path_pop(struct checker *ck, size_t old)
{
	strbuf_setlen(&ck->path, old);
}

static const char *git_error_text(void)
{
	const git_error *ge = git_error_last();

	return ge && ge->message ? ge->message : "unknown libgit2 error";
}

/*
 * Reading the object id named by entry name (NULL: the tree being
 * checked) failed: a problem of the tree (1), or a transient failure of
 * this host (E_TEMP).
 */
static int read_failed(struct checker *ck, const char *name, size_t nlen,
		       const struct oid *id, int err, const char *what)
{
	const git_error *ge = git_error_last();

	if (err == GIT_ENOTFOUND) {
		report(ck, name, nlen, "missing %s %s", what,
		       oid_hex(id));
		return 1;
	}
	if (ge && ge->klass == GIT_ERROR_OS) {
		/* EIO, EMFILE...: says nothing about the tree */
		log_error("read object %s: %s", oid_hex(id),
			  git_error_text());
		report(ck, name, nlen, "cannot read %s %s: %s", what,
		       oid_hex(id), git_error_text());
		ck->fatal = E_TEMP;
		ck->stop = true;
		return E_TEMP;
	}
	report(ck, name, nlen, "unreadable %s %s: %s", what,
	       oid_hex(id), git_error_text());
	return 1;
}

/*
 * Read the tree named by entry e (of the tree being checked) or, with e
 * NULL, the root tree id.  0, 1 after reporting a problem, or E_TEMP.
 */
static int read_tree(struct checker *ck, struct rtree *out,
		     const struct rentry *e, const struct oid *id)
{
	const char *name = e ? e->name : NULL, *why;
	size_t nlen = e ? e->nlen : 0, size;
	git_object_t type;
	int err;

	memset(out, 0, sizeof *out);
	if (e)
		id = &e->id;
	/* the header first: a huge tree is refused without being inflated */
	if ((err = git_odb_read_header(&size, &type, ck->odb, GIT_OID(id))) < 0)
		return read_failed(ck, name, nlen, id, err, "tree");
	if (type != GIT_OBJECT_TREE) {
		report(ck, name, nlen, "object %s is a %s, not a tree",
		       oid_hex(id), git_object_type2string(type));
		return 1;
	}
	if (limits.tree_entries < SIZE_MAX / ENTRY_MAX &&
	    size > limits.tree_entries * ENTRY_MAX) {
		report(ck, name, nlen,
		       "tree of %zu bytes: more entries than tree_entries_limit "
		       "(%zu) allows", size, limits.tree_entries);
		return 1;
	}
	if ((err = git_odb_read(&out->obj, ck->odb, GIT_OID(id))) < 0)
		return read_failed(ck, name, nlen, id, err, "tree");
	if (git_odb_object_type(out->obj) != GIT_OBJECT_TREE) {
		report(ck, name, nlen, "object %s is a %s, not a tree",
		       oid_hex(id),
		       git_object_type2string(git_odb_object_type(out->obj)));
		rtree_release(out);
		return 1;
	}
	why = rtree_parse(out, git_odb_object_data(out->obj),
			  git_odb_object_size(out->obj), limits.tree_entries);
	if (why == too_many)
		report(ck, name, nlen,
		       "more than tree_entries_limit (%zu) entries",
		       limits.tree_entries);
	else if (why)
		report(ck, name, nlen, "%s", why);
	if (why) {
		rtree_release(out);
		return 1;
	}
	return 0;
}

/* Read a tree we only trust, not check: failures leave it empty. */
static void read_trusted(struct checker *ck, struct rtree *out,
			 const struct oid *id)
{
	memset(out, 0, sizeof *out);
	if (!id || git_odb_read(&out->obj, ck->odb, GIT_OID(id)) < 0)
		return;
	if (git_odb_object_type(out->obj) != GIT_OBJECT_TREE ||
	    rtree_parse(out, git_odb_object_data(out->obj),
			git_odb_object_size(out->obj), SIZE_MAX))
		rtree_release(out);
}

/* The blob named by e exists and is a blob.  0, 1 (problem), E_TEMP. */
static int check_blob_object(struct checker *ck, const struct rentry *e,
			     size_t *size)
{
	git_object_t type;
	size_t len;
	int err;

	if ((err = git_odb_read_header(&len, &type, ck->odb,
				       GIT_OID(&e->id))) < 0)
		return read_failed(ck, e->name, e->nlen, &e->id, err, "blob");
	if (type != GIT_OBJECT_BLOB) {
		report(ck, e->name, e->nlen, "object %s is a %s, not a blob",
		       oid_hex(&e->id), git_object_type2string(type));
		return 1;
	}
	if (size)
		*size = len;
	return 0;
}

/*
 * What every entry must satisfy: a sane name, a mode maildag writes, and
 * git's order after prev.  Returns false after reporting a problem.
 */
static bool check_entry(struct checker *ck, const struct rentry *e,
			const struct rentry *prev)
{
	if (e->nlen == 0) {
		report(ck, e->name, 0, "empty name");
		return false;
	}
	if (e->nlen > NAME_MAX_BYTES) {
		report(ck, e->name, e->nlen, "name longer than %d bytes",
		       NAME_MAX_BYTES);
		return false;
	}
	if (memchr(e->name, '/', e->nlen)) {
		report(ck, e->name, e->nlen, "name contains '/'");
		return false;
	}
	for (size_t i = 0; i < e->nlen; i++) {
		unsigned char c = (unsigned char)e->name[i];
		if (c < 0x20 || c == 0x7f) {
			report(ck, e->name, e->nlen, "control character in name");
			return false;
		}
	}
	if (path_component_forbidden(e->name)) {
		report(ck, e->name, e->nlen, "forbidden name");
		return false;
	}
	if (!is_blob(e) && !is_tree(e)) {
		struct strbuf m = STRBUF_INIT;
		format_escape(&m, e->mode, e->mlen < 16 ? e->mlen : 16);
		if (mode_is(e, "120000"))
			report(ck, e->name, e->nlen, "symbolic link");
		else if (mode_is(e, "160000"))
			report(ck, e->name, e->nlen, "gitlink (submodule)");
		else if (mode_is(e, "100755"))
			report(ck, e->name, e->nlen, "executable blob");
		else
			report(ck, e->name, e->nlen, "bad mode '%s'",
			       m.len ? m.buf : "");
		strbuf_release(&m);
		return false;
	}
	if (prev) {
		int c = entry_cmp(prev, e);
		if (prev->nlen == e->nlen && !memcmp(prev->name, e->name, e->nlen)) {
			report(ck, e->name, e->nlen, "duplicate entry");
			return false;
		}
		if (c > 0) {
			report(ck, e->name, e->nlen, "entry out of order");
			return false;
		}
	}
	return true;
}

static bool want_tree(struct checker *ck, const struct rentry *e)
{
	if (is_tree(e))
		return true;
	report(ck, e->name, e->nlen, "expected a tree, found a blob");
	return false;
}

static bool want_blob(struct checker *ck, const struct rentry *e)
{
	if (is_blob(e))
		return true;
	report(ck, e->name, e->nlen, "expected a blob, found a tree");
	return false;
}

static bool is_shard_name(const struct rentry *e)
{
	return layout_shard_name(NULL, e->name, e->nlen);
}

/* The number of a shard name is_shard_name() accepted. */
static unsigned shard_value(const char *xx)
{
	unsigned v = 0;

	layout_shard_name(&v, xx, 2);
	return v;
}

/* Entry e of the tree being checked is unchanged from trusted tree t. */
static bool unchanged(const struct rtree *t, const struct rentry *e)
{
	const struct rentry *te = rtree_find(t, e);

	return te && te->mlen == e->mlen && !memcmp(te->mode, e->mode, e->mlen) &&
	       oid_equal(&te->id, &e->id);
}

/* --- mtimes records --------------------------------------------------------- */

typedef void record_fn(const char *key, size_t klen, unsigned line,
		       void *data);

/*
 * Check an mtimes record (see format_mtimes_check()), calling fn (may be
 * NULL) for each line's key once the line is known good.
 */
static int scan_records(const char *buf, size_t len, const char *xx,
			struct strbuf *err, record_fn *fn, void *data)
{
	const char *p = buf, *end = buf + len, *prev = NULL;
	size_t prevlen = 0;
	unsigned line = 0;

	if (len == 0) {
		strbuf_addstr(err, "empty record (a shard without records has no blob)");
		return E_INVALID;
	}
	for (; p < end; p++) {
		const char *nl, *sp, *d;
		char key[NAME_MAX_BYTES + 1], shard[3];
		size_t klen, ndig;
		long long v = 0;
		bool neg;

		line++;
		if (!(nl = memchr(p, '\n', (size_t)(end - p)))) {
			errf(err, "line %u: no newline at the end", line);
			return E_INVALID;
		}
		if (!(sp = memchr(p, ' ', (size_t)(nl - p)))) {
			errf(err, "line %u: no space before the time", line);
			return E_INVALID;
		}
		klen = (size_t)(sp - p);
		if (klen == 0 || klen > NAME_MAX_BYTES || memchr(p, '\0', klen)) {
			errf(err, "line %u: invalid key", line);
			return E_INVALID;
		}
		memcpy(key, p, klen);
		key[klen] = '\0';
		if (!maildir_name_valid(key) || maildir_key_len(key) != klen) {
			errf(err, "line %u: invalid key", line);
			return E_INVALID;
		}
		maildir_shard_hex(shard, key, klen);
		if (memcmp(shard, xx, 2)) {
			errf(err, "line %u: key belongs in shard '%s'",
				    line, shard);
			return E_INVALID;
		}
		if (prev) {
			size_t n = prevlen < klen ? prevlen : klen;
			int c = memcmp(prev, p, n);
			if (c == 0 && prevlen == klen) {
				errf(err, "line %u: duplicate key", line);
				return E_INVALID;
			}
			if (c > 0 || (c == 0 && prevlen > klen)) {
				errf(err, "line %u: keys not sorted", line);
				return E_INVALID;
			}
		}
		/* "-?[0-9]{1,18}", no leading zero, no "-0" (mtimes.c) */
		d = sp + 1;
		neg = d < nl && *d == '-';
		d += neg;
		ndig = (size_t)(nl - d);
		if (ndig == 0 || ndig > 18 || (ndig > 1 && d[0] == '0') ||
		    (neg && ndig == 1 && d[0] == '0')) {
			errf(err, "line %u: time is not canonical decimal",
				    line);
			return E_INVALID;
		}
		for (size_t i = 0; i < ndig; i++) {
			if (d[i] < '0' || d[i] > '9') {
				errf(err, "line %u: time is not canonical decimal",
					    line);
				return E_INVALID;
			}
			v = v * 10 + (d[i] - '0');
		}
		if ((neg ? -v : v) == maildir_key_time(key)) {
			errf(err, "line %u: record not needed (the time is "
				    "the key's)", line);
			return E_INVALID;
		}
		if (fn)
			fn(p, klen, line, data);
		prev = p;
		prevlen = klen;
		p = nl;
	}
	return 0;
}

int format_mtimes_check(const char *buf, size_t len, const char *xx,
			struct strbuf *err)
{
	return scan_records(buf, len, xx, err, NULL, NULL);
}

/* --- the levels ------------------------------------------------------------ */

/*
 * Trusted tree tt had entry te where the checked tree has none (depth:
 * 0 a shard tree, 1 cur/ or new/, 2 a folder): the shards under it lost
 * messages, so their mtimes records must be looked at again.
 */
static void mark_removed(struct checker *ck, const struct rentry *te,
			 int depth)
{
	struct rtree t;

	if (!mode_is(te, "40000"))
		return;
	if (depth == 0) {
		if (is_shard_name(te))
			ck->affected[shard_value(te->name)] = true;
		return;
	}
	read_trusted(ck, &t, &te->id);
	for (size_t i = 0; i < t.n; i++)
		if (depth == 1 || name_is(&t.e[i], "cur") || name_is(&t.e[i], "new"))
			mark_removed(ck, &t.e[i], depth - 1);
	rtree_release(&t);
}

/* Mark what trusted tt holds and t (sorted, checked) does not. */
static void mark_all_removed(struct checker *ck, const struct rtree *t,
			     const struct rtree *tt, int depth, bool root)
{
	for (size_t i = 0; i < tt->n && !ck->stop; i++) {
		const struct rentry *te = &tt->e[i];
		if (rtree_find(t, te))
			continue;
		if (!root)
			mark_removed(ck, te, depth);
		else if (name_is(te, "cur") || name_is(te, "new"))
			mark_removed(ck, te, 1);
		else if (te->nlen && te->name[0] == '.')
			mark_removed(ck, te, 2);
	}
}

/* A shard tree <folder>/<sub>/<xx>: message blobs. */
static int check_shard(struct checker *ck, const char *loc,
		       const struct rentry *se, const struct oid *trusted)
{
	struct rtree t, tt;
	const struct rentry *prev = NULL;
	unsigned xx = shard_value(se->name);
	size_t old;
	int r;

	if ((r = read_tree(ck, &t, se, NULL)))
		return r < 0 ? r : 0;
	read_trusted(ck, &tt, trusted);
	old = path_push(ck, se);
	strset_add(&ck->changed, loc, strlen(loc), "");
	ck->affected[xx] = true;
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i];
		const char *other;
		char shard[3];
		size_t klen, size;

		if (!check_entry(ck, e, prev))
			continue;
		prev = e;
		if (!want_blob(ck, e))
			continue;
		if (!maildir_name_valid(e->name)) {
			report(ck, e->name, e->nlen, "invalid message name");
			continue;
		}
		klen = maildir_key_len(e->name);
		maildir_shard_hex(shard, e->name, klen);
		if (memcmp(shard, se->name, 2)) {
			report(ck, e->name, e->nlen,
			       "wrong shard (the key belongs in '%s')", shard);
			continue;
		}
		{
			size_t here = path_push(ck, e);
			other = strset_add(&ck->keys, e->name, klen, ck->path.buf);
			path_pop(ck, here);
		}
		if (other) {
			struct strbuf o = STRBUF_INIT;
			show_path(&o, other, strlen(other));
			report(ck, e->name, e->nlen, "duplicate key (also at '%s')",
			       o.buf);
			strbuf_release(&o);
			continue;
		}
		ck->st.messages++;
		if (unchanged(&tt, e))
			continue;
		if ((r = check_blob_object(ck, e, &size)) < 0)
			break;
		if (r)
			continue;
		if (size > limits.message_bytes) {
			report(ck, e->name, e->nlen,
			       "message of %zu bytes, more than size_limit (%llu)",
			       size, limits.message_bytes);
			continue;
		}
		xgrow((void **)&ck->add, &ck->aladd, ck->nadd + 1,
		      sizeof *ck->add);
		oid_cpy(&ck->add[ck->nadd].id, &e->id);
		ck->add[ck->nadd++].size = size;
		ck->added += size;
	}
	path_pop(ck, old);
	rtree_release(&tt);
	rtree_release(&t);
	return ck->fatal;
}

/* <folder>/cur or <folder>/new: shard trees. */
static int check_sub(struct checker *ck, const char *folder,
		     const struct rentry *sub, const struct oid *trusted)
{
	struct rtree t, tt;
	const struct rentry *prev = NULL;
	struct strbuf loc = STRBUF_INIT;
	size_t old;
	int r;

	if ((r = read_tree(ck, &t, sub, NULL)))
		return r < 0 ? r : 0;
	read_trusted(ck, &tt, trusted);
	old = path_push(ck, sub);
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i], *te;

		if (!check_entry(ck, e, prev))
			continue;
		prev = e;
		if (!is_shard_name(e)) {
			report(ck, e->name, e->nlen,
			       "unexpected entry (not a shard: two lowercase hex digits)");
			continue;
		}
		if (!want_tree(ck, e))
			continue;
		te = rtree_find(&tt, e);
		if (te && oid_equal(&te->id, &e->id))
			continue;
		strbuf_reset(&loc);
		tree_shard_path(&loc, folder, sub->name, shard_value(e->name));
		r = check_shard(ck, loc.buf, e, te ? &te->id : NULL);
		if (r < 0)
			break;
	}
	if (ck->incremental)
		mark_all_removed(ck, &t, &tt, 0, false);
	path_pop(ck, old);
	strbuf_release(&loc);
	rtree_release(&tt);
	rtree_release(&t);
	return ck->fatal;
}

/* A folder tree .Name: its marker and cur/ new/. */
static int check_folder(struct checker *ck, const struct rentry *fe,
			const struct oid *trusted)
{
	struct rtree t, tt;
	const struct rentry *prev = NULL;
	size_t old;
	int r;

	if ((r = read_tree(ck, &t, fe, NULL)))
		return r < 0 ? r : 0;
	read_trusted(ck, &tt, trusted);
	old = path_push(ck, fe);
	ck->st.folders++;
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i], *te;

		if (!check_entry(ck, e, prev))
			continue;
		prev = e;
		if (name_is(e, "maildirfolder")) {
			struct oid empty;
			oid_fromstr(&empty, EMPTY_BLOB_HEX);
			if (!want_blob(ck, e))
				continue;
			if (!oid_equal(&e->id, &empty))
				report(ck, e->name, e->nlen,
				       "folder marker is not empty");
		} else if (name_is(e, "cur") || name_is(e, "new")) {
			if (!want_tree(ck, e))
				continue;
			te = rtree_find(&tt, e);
			if (te && oid_equal(&te->id, &e->id))
				continue;
			if (check_sub(ck, fe->name, e, te ? &te->id : NULL) < 0)
				break;
		} else {
			report(ck, e->name, e->nlen, "unexpected entry");
		}
	}
	if (ck->incremental)
		mark_all_removed(ck, &t, &tt, 1, false);
	path_pop(ck, old);
	rtree_release(&tt);
	rtree_release(&t);
	return ck->fatal;
}

static void count_record(const char *key, size_t klen, unsigned line,
			 void *data)
{
	((struct checker *)data)->st.mtimes++;
}

/* mtimes/: one record blob per shard number. */
static int check_mtimes(struct checker *ck, const struct rentry *me,
			const struct oid *trusted)
{
	struct rtree t, tt;
	const struct rentry *prev = NULL;
	size_t old;
	int r;

	if ((r = read_tree(ck, &t, me, NULL)))
		return r < 0 ? r : 0;
	read_trusted(ck, &tt, trusted);
	old = path_push(ck, me);
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i];
		struct strbuf why = STRBUF_INIT;
		git_odb_object *obj;
		size_t size;
		int err;

		if (!check_entry(ck, e, prev))
			continue;
		prev = e;
		if (!is_shard_name(e)) {
			report(ck, e->name, e->nlen,
			       "unexpected entry (not a shard: two lowercase hex digits)");
			continue;
		}
		if (!want_blob(ck, e) || unchanged(&tt, e))
			continue;
		if ((r = check_blob_object(ck, e, &size)))
			continue;
		if (size > FORMAT_MTIMES_MAX) {
			report(ck, e->name, e->nlen, "record larger than %d bytes",
			       FORMAT_MTIMES_MAX);
			continue;
		}
		if ((err = git_odb_read(&obj, ck->odb, GIT_OID(&e->id))) < 0) {
			if (read_failed(ck, e->name, e->nlen, &e->id, err, "blob") < 0)
				break;
			continue;
		}
		if (scan_records(git_odb_object_data(obj), git_odb_object_size(obj),
				 e->name, &why, count_record, ck) < 0) {
			report(ck, e->name, e->nlen, "%s", why.buf);
			ck->bad_records[shard_value(e->name)] = true;
		} else {
			/* its keys are looked for once every shard is seen */
			ck->affected[shard_value(e->name)] = true;
		}
		strbuf_release(&why);
		git_odb_object_free(obj);
	}
	path_pop(ck, old);
	rtree_release(&tt);
	rtree_release(&t);
	return ck->fatal;
}

/* FORMAT: exactly "maildag 1\n".  Sets ck->stop when it is newer. */
static int check_format_file(struct checker *ck, const struct rentry *e)
{
	git_odb_object *obj;
	const char *p;
	size_t size, n, digits;
	int r, err;

	if ((r = check_blob_object(ck, e, &size)))
		return r < 0 ? r : 0;
	if (size > FORMAT_MAX) {
		report(ck, e->name, e->nlen, "not a maildag format file");
		return 0;
	}
	if ((err = git_odb_read(&obj, ck->odb, GIT_OID(&e->id))) < 0)
		return read_failed(ck, e->name, e->nlen, &e->id, err, "blob") < 0 ?
		       E_TEMP : 0;
	p = git_odb_object_data(obj);
	n = git_odb_object_size(obj);
	if (n == strlen(FORMAT_CONTENT) && !memcmp(p, FORMAT_CONTENT, n)) {
		git_odb_object_free(obj);
		return 0;
	}
	for (digits = 0; 8 + digits < n && p[8 + digits] >= '0' &&
			 p[8 + digits] <= '9'; digits++)
		;
	if (n > 8 && !memcmp(p, "maildag ", 8) && digits > 0 &&
	    8 + digits + 1 == n && p[n - 1] == '\n' && p[8] != '0' &&
	    (digits > 1 || p[8] > '0' + FORMAT_VERSION)) {
		report(ck, e->name, e->nlen,
		       "format 'maildag %.*s' is newer than this maildag understands",
		       (int)digits, p + 8);
		ck->stop = true;	/* its layout may be anything */
	} else {
		report(ck, e->name, e->nlen,
		       "not a maildag format %d file (want \"maildag %d\")",
		       FORMAT_VERSION, FORMAT_VERSION);
	}
	git_odb_object_free(obj);
	return 0;
}

/*
 * The second pass of an incremental check: every shard tree of a shard
 * number that changed, in every folder, not already checked, against the
 * keys of the checked ones.
 */
static void cross_check_sub(struct checker *ck, const char *folder,
			    const struct rentry *sub)
{
	struct strbuf here = STRBUF_INIT;
	struct rtree t;

	read_trusted(ck, &t, &sub->id);
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i];
		struct rtree s;
		size_t plen;

		if (!is_shard_name(e) || !is_tree(e) ||
		    !ck->affected[shard_value(e->name)])
			continue;
		strbuf_reset(&here);
		tree_shard_path(&here, folder, sub->name, shard_value(e->name));
		if (strset_get(&ck->changed, here.buf, here.len))
			continue;
		plen = here.len;
		read_trusted(ck, &s, &e->id);
		for (size_t j = 0; j < s.n && !ck->stop; j++) {
			const struct rentry *m = &s.e[j];
			const char *mine = strset_get(&ck->keys, m->name,
						      maildir_key_len(m->name));
			if (mine) {
				struct strbuf o = STRBUF_INIT;
				strbuf_setlen(&here, plen);
				strbuf_addf(&here, "/%s", m->name);
				show_path(&o, here.buf, here.len);
				report_path(ck, mine, "duplicate key (also at '%s')",
					    o.buf);
				strbuf_release(&o);
			}
			strset_add(&ck->seen, m->name, maildir_key_len(m->name), "");
		}
		rtree_release(&s);
	}
	strbuf_release(&here);
	rtree_release(&t);
}

struct orphans {
	struct checker *ck;
	const char *path;
};

static void orphan_record(const char *key, size_t klen, unsigned line,
			  void *data)
{
	struct orphans *o = data;
	struct strbuf k = STRBUF_INIT;

	if (o->ck->stop || strset_get(&o->ck->keys, key, klen) ||
	    strset_get(&o->ck->seen, key, klen))
		return;
	format_escape(&k, key, klen);
	report_path(o->ck, o->path, "line %u: no message with key '%s'", line,
		    k.buf);
	strbuf_release(&k);
}

/*
 * Every record of a shard number that was checked names a message of the
 * tree.  All keys of such a shard are in ck->keys (checked trees) or
 * ck->seen (the other trees of the shard, read by cross_check()).
 */
static void check_records(struct checker *ck, const struct rtree *root)
{
	const struct rentry *me = rtree_lookup(root, FORMAT_MTIMES_DIR);
	struct rtree t;

	if (!me || !is_tree(me))
		return;
	read_trusted(ck, &t, &me->id);
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i];
		struct strbuf scratch = STRBUF_INIT;
		struct orphans o = { ck, NULL };
		git_odb_object *obj;
		unsigned xx;

		if (!is_shard_name(e) || !is_blob(e))
			continue;
		xx = shard_value(e->name);
		if (ck->bad_records[xx] || !ck->affected[xx] ||
		    git_odb_read(&obj, ck->odb, GIT_OID(&e->id)) < 0)
			continue;
		o.path = xasprintf(FORMAT_MTIMES_DIR "/%s", e->name);
		scan_records(git_odb_object_data(obj), git_odb_object_size(obj),
			     e->name, &scratch, orphan_record, &o);
		free((char *)o.path);
		strbuf_release(&scratch);
		git_odb_object_free(obj);
	}
	rtree_release(&t);
}

static void cross_check(struct checker *ck, const struct rtree *root)
{
	for (size_t i = 0; i < root->n && !ck->stop; i++) {
		const struct rentry *e = &root->e[i];
		struct rtree f;

		if (!is_tree(e))
			continue;
		if (name_is(e, "cur") || name_is(e, "new")) {
			cross_check_sub(ck, "", e);
			continue;
		}
		if (e->name[0] != '.' || !folder_dir_valid(e->name))
			continue;
		read_trusted(ck, &f, &e->id);
		for (size_t j = 0; j < f.n && !ck->stop; j++)
			if (is_tree(&f.e[j]) && (name_is(&f.e[j], "cur") ||
						 name_is(&f.e[j], "new")))
				cross_check_sub(ck, e->name, &f.e[j]);
		rtree_release(&f);
	}
}

/* Add the ids of the message blobs of tree (a cur/ or new/) in shards affected. */
static void have_sub(struct checker *ck, struct strset *have,
		     const struct oid *tree)
{
	struct rtree t;

	read_trusted(ck, &t, tree);
	for (size_t i = 0; i < t.n; i++) {
		struct rtree s;

		if (!is_shard_name(&t.e[i]) || !is_tree(&t.e[i]) ||
		    !ck->affected[shard_value(t.e[i].name)])
			continue;
		read_trusted(ck, &s, &t.e[i].id);
		for (size_t j = 0; j < s.n; j++)
			if (is_blob(&s.e[j]))
				strset_add(have, oid_hex(&s.e[j].id),
					   OID_HEXSZ, "");
		rtree_release(&s);
	}
	rtree_release(&t);
}

/*
 * Settle ck->added: drop the blobs the trusted tree holds in a shard of
 * the same number (a message moved or renamed, its bytes already here).
 * Every shard number of ck->add is affected[], so those trees are all
 * that need reading.  0, or E_TEMP when the odb fails us.
 */
static int new_bytes(struct checker *ck)
{
	struct strset have = { NULL, 0, 0 };
	struct rtree root;

	if (!ck->trusted || !ck->nadd)
		return 0;
	read_trusted(ck, &root, ck->trusted);
	for (size_t i = 0; i < root.n; i++) {
		const struct rentry *e = &root.e[i];
		struct rtree f;

		if (!is_tree(e))
			continue;
		if (name_is(e, "cur") || name_is(e, "new")) {
			have_sub(ck, &have, &e->id);
			continue;
		}
		if (e->name[0] != '.')
			continue;
		read_trusted(ck, &f, &e->id);
		for (size_t j = 0; j < f.n; j++)
			if (is_tree(&f.e[j]) && (name_is(&f.e[j], "cur") ||
						 name_is(&f.e[j], "new")))
				have_sub(ck, &have, &f.e[j].id);
		rtree_release(&f);
	}
	rtree_release(&root);
	ck->added = 0;
	for (size_t i = 0; i < ck->nadd; i++)
		if (!strset_get(&have, oid_hex(&ck->add[i].id),
				OID_HEXSZ))
			ck->added += ck->add[i].size;
	strset_release(&have);
	return 0;
}

/* Is the n-th folder one too many?  Then say so and check no further. */
static bool too_many_folders(struct checker *ck, size_t n)
{
	if (n <= limits.folders)
		return false;
	report(ck, NULL, 0, "more than folder_limit (%zu) folders",
	       limits.folders);
	ck->stop = true;	/* what follows would only be noise */
	return true;
}

static int check_root(struct checker *ck, const struct oid *id,
		      const struct oid *trusted)
{
	struct rtree t, tt;
	const struct rentry *prev = NULL, *fmt;
	int r, inbox = 0;
	size_t folders = 0;

	if (trusted && oid_equal(id, trusted))
		return 0;
	if ((r = read_tree(ck, &t, NULL, id)))
		return r < 0 ? r : 0;
	read_trusted(ck, &tt, trusted);
	/* first FORMAT: a newer format may lay its tree out any way it likes */
	fmt = rtree_lookup(&t, FORMAT_PATH);
	if (!fmt)
		report(ck, FORMAT_PATH, strlen(FORMAT_PATH), "missing");
	else if (is_blob(fmt) && !unchanged(&tt, fmt) &&
		 check_format_file(ck, fmt) < 0)
		goto done;
	for (size_t i = 0; i < t.n && !ck->stop; i++) {
		const struct rentry *e = &t.e[i], *te;

		if (!check_entry(ck, e, prev))
			continue;
		prev = e;
		te = rtree_find(&tt, e);
		if (name_is(e, FORMAT_PATH)) {
			want_blob(ck, e);	/* its content is checked above */
		} else if (name_is(e, "subscriptions")) {
			size_t size;
			if (!want_blob(ck, e) || unchanged(&tt, e))
				continue;
			if ((r = check_blob_object(ck, e, &size)) < 0)
				break;
			if (!r && size > limits.subscriptions_bytes)
				report(ck, e->name, e->nlen,
				       "%zu bytes, more than subscriptions_limit (%llu)",
				       size, limits.subscriptions_bytes);
		} else if (name_is(e, FORMAT_MTIMES_DIR)) {
			if (!want_tree(ck, e) || (te && oid_equal(&te->id,
								  &e->id)))
				continue;
			if (check_mtimes(ck, e, te ? &te->id : NULL) < 0)
				break;
		} else if (name_is(e, "cur") || name_is(e, "new")) {
			if (!want_tree(ck, e))
				continue;
			if (!inbox++ && too_many_folders(ck, ++folders))
				continue;
			if (inbox == 1)
				ck->st.folders++;
			if (te && oid_equal(&te->id, &e->id))
				continue;
			if (check_sub(ck, "", e, te ? &te->id : NULL) < 0)
				break;
		} else if (e->name[0] == '.') {
			if (!folder_dir_valid(e->name)) {
				report(ck, e->name, e->nlen, "not a valid folder name");
				continue;
			}
			if (!want_tree(ck, e))
				continue;
			if (too_many_folders(ck, ++folders))
				continue;
			if (te && oid_equal(&te->id, &e->id))
				continue;
			if (check_folder(ck, e, te ? &te->id : NULL) < 0)
				break;
		} else {
			report(ck, e->name, e->nlen, "unexpected entry");
		}
	}
	if (ck->incremental && !ck->stop && !ck->fatal) {
		mark_all_removed(ck, &t, &tt, 0, true);
		cross_check(ck, &t);
	}
	if (!ck->stop && !ck->fatal)
		check_records(ck, &t);
	if (ck->merge && limits.merge_bytes && !ck->stop && !ck->fatal &&
	    ck->added > limits.merge_bytes &&
	    (r = new_bytes(ck)) >= 0 && ck->added > limits.merge_bytes)
		report(ck, NULL, 0, "adds %llu bytes of messages, more than "
		       "merge_limit (%llu)", ck->added, limits.merge_bytes);
done:
	rtree_release(&tt);
	rtree_release(&t);
	return ck->fatal;
}

/* --- the entry points ------------------------------------------------------ */

static int run(struct checker *ck, struct repo *r, const struct oid *tree,
	       const struct oid *trusted)
{
	int err;

	strbuf_init(&ck->path, 64);
	if (git_repository_odb(&ck->odb, r->git) < 0) {
		log_error("open object database: %s", git_error_text());
		strbuf_release(&ck->path);
		return E_TEMP;
	}
	ck->incremental = trusted != NULL;
	ck->trusted = trusted;
	err = check_root(ck, tree, trusted);
	git_odb_free(ck->odb);
	strbuf_release(&ck->path);
	strset_release(&ck->keys);
	strset_release(&ck->changed);
	strset_release(&ck->seen);
	free(ck->add);
	ck->add = NULL;
	return err < 0 ? err : ck->fatal;
}

struct first {
	struct strbuf *err;
	bool done;
};

static void first_problem(const char *path, const char *reason, void *data)
{
	struct first *f = data;

	if (f->done || !f->err)
		return;
	f->done = true;
	if (*path)
		errf(f->err, "'%s': %s", path, reason);
	else
		errf(f->err, "root tree: %s", reason);
}

int format_check_tree(struct repo *r, const struct oid *tree,
		      const struct oid *trusted, struct strbuf *err)
{
	struct first f = { err, false };
	struct checker ck;
	int ret;

	memset(&ck, 0, sizeof ck);
	ck.fn = first_problem;
	ck.data = &f;
	ck.merge = true;
	ret = run(&ck, r, tree, trusted);
	if (ret < 0)
		return ret;
	return ck.problems ? E_INVALID : 0;
}

static int commit_tree(struct oid *out, struct repo *r,
		       const struct oid *commit,
		       struct strbuf *err)
{
	git_commit *c;
	int e;

	if ((e = git_commit_lookup(&c, r->git, GIT_OID(commit))) < 0) {
		const git_error *ge = git_error_last();
		if (err)
			errf(err, "commit %s: %s", oid_hex(commit),
				    e == GIT_ENOTFOUND ? "missing" :
				    ge && ge->message ? ge->message : "unreadable");
		return e == GIT_ENOTFOUND || !ge || ge->klass != GIT_ERROR_OS ?
		       E_INVALID : E_TEMP;
	}
	oid_cpy(out, OID(git_commit_tree_id(c)));
	git_commit_free(c);
	return 0;
}

int format_check_commit(struct repo *r, const struct oid *commit,
			const struct oid *trusted_commit, struct strbuf *err)
{
	struct oid tree, trusted;
	int e;

	if ((e = commit_tree(&tree, r, commit, err)) < 0)
		return e;
	if (trusted_commit && commit_tree(&trusted, r, trusted_commit, NULL) < 0)
		trusted_commit = NULL;	/* check everything */
	return format_check_tree(r, &tree, trusted_commit ? &trusted : NULL, err);
}

static void ignore_problem(const char *path, const char *reason, void *data)
{
	(void)path;
	(void)reason;
	(void)data;
}

static int added_bytes(unsigned long long *out, struct repo *r,
		       const struct oid *tree, const struct oid *trusted)
{
	struct format_limits saved = limits;
	struct checker ck;
	int ret;

	*out = 0;
	if (trusted && oid_equal(tree, trusted))
		return 0;
	/* every blob counts here, whatever the limits say */
	limits.message_bytes = ULLONG_MAX;
	limits.subscriptions_bytes = ULLONG_MAX;
	limits.tree_entries = SIZE_MAX;
	limits.folders = SIZE_MAX;
	memset(&ck, 0, sizeof ck);
	ck.all = true;
	ck.fn = ignore_problem;
	strbuf_init(&ck.path, 64);
	if (git_repository_odb(&ck.odb, r->git) < 0) {
		limits = saved;
		strbuf_release(&ck.path);
		return log_error("open object database: %s", git_error_text());
	}
	ck.incremental = trusted != NULL;
	ck.trusted = trusted;
	ret = check_root(&ck, tree, trusted);
	if (ret >= 0)
		ret = new_bytes(&ck);
	if (ret >= 0 && ck.fatal)
		ret = ck.fatal;
	*out = ck.added;
	limits = saved;
	git_odb_free(ck.odb);
	strbuf_release(&ck.path);
	strset_release(&ck.keys);
	strset_release(&ck.changed);
	strset_release(&ck.seen);
	free(ck.add);
	return ret < 0 ? ret : 0;
}

int format_added_bytes(unsigned long long *out, struct repo *r,
		       const struct oid *commit,
		       const struct oid *trusted_commit)
{
	struct oid tree, trusted;
	int e;

	*out = 0;
	if (trusted_commit && oid_equal(commit, trusted_commit))
		return 0;
	if ((e = commit_tree(&tree, r, commit, NULL)) < 0)
		return e;
	if (trusted_commit && commit_tree(&trusted, r, trusted_commit, NULL) < 0)
		trusted_commit = NULL;	/* count everything */
	return added_bytes(out, r, &tree, trusted_commit ? &trusted : NULL);
}

int format_fsck_tree(struct repo *r, const struct oid *tree,
		     format_problem_fn *fn, void *data,
		     struct format_stats *stats)
{
	struct checker ck;
	int ret;

	memset(&ck, 0, sizeof ck);
	ck.all = true;
	ck.fn = fn;
	ck.data = data;
	ret = run(&ck, r, tree, NULL);
	if (stats)
		*stats = ck.st;
	return ret < 0 ? ret : ck.problems;
}

int format_fsck_commit(struct repo *r, const struct oid *commit,
		       format_problem_fn *fn, void *data,
		       struct format_stats *stats)
{
	git_commit *c;
	struct oid tree;

	if (git_commit_lookup(&c, r->git, GIT_OID(commit)) < 0) {
		char *why = xasprintf("commit %s: %s", oid_hex(commit),
				      git_error_text());
		fn(NULL, why, data);
		free(why);
		if (stats)
			memset(stats, 0, sizeof *stats);
		return 1;
	}
	oid_cpy(&tree, OID(git_commit_tree_id(c)));
	git_commit_free(c);
	return format_fsck_tree(r, &tree, fn, data, stats);
}

/* --- walking messages --------------------------------------------------------- */

static int foreach_sub(struct checker *ck, const char *folder,
		       const struct rentry *sub, format_message_fn *fn,
		       void *data)
{
	struct strbuf path = STRBUF_INIT;
	struct rtree t;
	int ret = 0;

	read_trusted(ck, &t, &sub->id);
	for (size_t i = 0; i < t.n && !ret; i++) {
		struct rtree s;

		if (!is_shard_name(&t.e[i]) || !is_tree(&t.e[i]))
			continue;
		read_trusted(ck, &s, &t.e[i].id);
		for (size_t j = 0; j < s.n && !ret; j++) {
			const struct rentry *m = &s.e[j];

			if (!is_blob(m) || !maildir_name_valid(m->name))
				continue;
			/* where it is, which a tree fsck checks may not
			   have made its shard */
			strbuf_reset(&path);
			tree_shard_path(&path, folder, sub->name,
					shard_value(t.e[i].name));
			strbuf_addf(&path, "/%s", m->name);
			ret = fn(path.buf, folder, sub->name, m->name, &m->id,
				 data);
		}
		rtree_release(&s);
	}
	strbuf_release(&path);
	rtree_release(&t);
	return ret;
}

int format_foreach_message(struct repo *r, const struct oid *tree,
			   format_message_fn *fn, void *data)
{
	struct checker ck;
	struct rtree root;
	int ret = 0;

	memset(&ck, 0, sizeof ck);
	if (git_repository_odb(&ck.odb, r->git) < 0)
		return log_error("open object database: %s", git_error_text());
	read_trusted(&ck, &root, tree);
	if (!root.obj) {
		git_odb_free(ck.odb);
		return log_error("cannot read tree %s", oid_hex(tree));
	}
	for (size_t i = 0; i < root.n && !ret; i++) {
		const struct rentry *e = &root.e[i];
		struct rtree f;

		if (!is_tree(e))
			continue;
		if (name_is(e, "cur") || name_is(e, "new")) {
			ret = foreach_sub(&ck, "", e, fn, data);
			continue;
		}
		if (e->name[0] != '.' || !folder_dir_valid(e->name))
			continue;
		read_trusted(&ck, &f, &e->id);
		for (size_t j = 0; j < f.n && !ret; j++)
			if (is_tree(&f.e[j]) && (name_is(&f.e[j], "cur") ||
						 name_is(&f.e[j], "new")))
				ret = foreach_sub(&ck, e->name, &f.e[j], fn, data);
		rtree_release(&f);
	}
	rtree_release(&root);
	git_odb_free(ck.odb);
	return ret;
}
