/*
 * fuzz-tree: libFuzzer target for the repository format validator
 * (common/format.c).  Input: chunks that become raw tree and blob objects
 * in an in-memory object database (see fuzz.h).  Properties, each an
 * abort() when broken:
 *
 *  - format_check_tree() never crashes, and accepts only what an
 *    independent check (here, through libgit2's own tree parser) finds
 *    valid: every tree object byte-for-byte canonical, every path of the
 *    format's grammar, every key once, every mtimes record of a message;
 *  - the incremental check against the valid base mailbox agrees with the
 *    full check;
 *  - format_fsck_tree() finds no problem exactly when the tree is valid.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>
#include <git2/sys/mempack.h>

#include "folder.h"
#include "format.h"
#include "fuzz.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

static struct repo R = { NULL, NULL, -1 };
static git_odb *odb;
static git_odb_backend *scratch;	/* this input's objects */
static git_oid fixed[16];		/* FUZZ_FORMAT.. */

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "broken: %s (%s:%d)\n", \
	#x, __FILE__, __LINE__); abort(); } } while (0)

static void put(git_oid *out, const void *p, size_t n, git_object_t t)
{
	CHECK(git_odb_write(out, odb, p, n, t) == 0);
}

/* A raw tree: entries "mode name" with their ids, in the given order. */
static void put_tree(git_oid *out, size_t n, const char *const *entries,
		     const git_oid *ids)
{
	struct strbuf b;

	strbuf_init(&b, 256);
	for (size_t i = 0; i < n; i++) {
		strbuf_addstr(&b, entries[i]);
		strbuf_addch(&b, '\0');
		strbuf_add(&b, ids[i].id, GIT_OID_RAWSZ);
	}
	put(out, b.len ? b.buf : "", b.len, GIT_OBJECT_TREE);
	strbuf_release(&b);
}

static void build_base(void)
{
	char s1[3], s2[3], *e[5];
	git_oid id[5], shard2, cur2;

	put(&fixed[0], "maildag 1\n", 10, GIT_OBJECT_BLOB);
	put(&fixed[1], "", 0, GIT_OBJECT_BLOB);
	put(&fixed[2], FUZZ_MSG_TEXT, strlen(FUZZ_MSG_TEXT), GIT_OBJECT_BLOB);
	put(&fixed[3], "maildag 2\n", 10, GIT_OBJECT_BLOB);
	maildir_shard_hex(s1, FUZZ_K1, strlen(FUZZ_K1));
	maildir_shard_hex(s2, FUZZ_K2, strlen(FUZZ_K2));

	e[0] = xasprintf("100644 %s", FUZZ_N1);
	put_tree(&fixed[FUZZ_BASE_SHARD - FUZZ_FORMAT], 1,
		 (const char *const *)e, &fixed[2]);
	free(e[0]);
	e[0] = xasprintf("40000 %s", s1);
	put_tree(&fixed[FUZZ_BASE_CUR - FUZZ_FORMAT], 1, (const char *const *)e,
		 &fixed[FUZZ_BASE_SHARD - FUZZ_FORMAT]);
	free(e[0]);
	e[0] = xasprintf("100644 %s", FUZZ_N2);
	put_tree(&shard2, 1, (const char *const *)e, &fixed[2]);
	free(e[0]);
	e[0] = xasprintf("40000 %s", s2);
	put_tree(&cur2, 1, (const char *const *)e, &shard2);
	free(e[0]);
	{
		const char *se[] = { "40000 cur", "100644 maildirfolder" };
		git_oid sid[] = { cur2, fixed[1] };
		put_tree(&fixed[FUZZ_BASE_SENT - FUZZ_FORMAT], 2, se, sid);
	}
	put(&id[0], FUZZ_MTIMES_K1, strlen(FUZZ_MTIMES_K1), GIT_OBJECT_BLOB);
	e[0] = xasprintf("100644 %s", s1);
	put_tree(&fixed[FUZZ_BASE_MTIMES - FUZZ_FORMAT], 1,
		 (const char *const *)e, &id[0]);
	free(e[0]);
	{
		const char *re[] = { "40000 .Sent", "100644 FORMAT", "40000 cur",
				     "40000 mtimes", "100644 subscriptions" };
		git_oid rid[] = { fixed[FUZZ_BASE_SENT - FUZZ_FORMAT], fixed[0],
				  fixed[FUZZ_BASE_CUR - FUZZ_FORMAT],
				  fixed[FUZZ_BASE_MTIMES - FUZZ_FORMAT], fixed[2] };
		put_tree(&fixed[FUZZ_BASE - FUZZ_FORMAT], 5, re, rid);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	git_odb_backend *base;
	git_repository *git;
	struct strbuf err = STRBUF_INIT;

	log_init("fuzz-tree", LOG_TO_STDERR, LOG_LVL_ERROR);
	CHECK(git_libgit2_init() >= 0);
	/* the cache would keep objects of earlier inputs alive */
	git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 0);
	CHECK(git_odb_new(&odb) == 0);
	CHECK(git_mempack_new(&base) == 0);
	CHECK(git_odb_add_backend(odb, base, 1) == 0);
	build_base();
	CHECK(git_mempack_new(&scratch) == 0);
	CHECK(git_odb_add_backend(odb, scratch, 2) == 0);
	CHECK(git_repository_wrap_odb(&git, odb) == 0);
	R.git = git;
	R.path = "(memory)";
	CHECK(format_check_tree(&R, OID(&fixed[FUZZ_BASE - FUZZ_FORMAT]), NULL, &err) == 0);
	strbuf_release(&err);
	return 0;
}

/* --- the independent check ---------------------------------------------------- */

struct seen {
	char **keys;
	size_t n, alloc;
	char **records;		/* keys of mtimes records */
	size_t nr, ralloc;
	char **blobs;		/* message blob ids, hex */
	size_t nb, balloc;
	char **purged;		/* ids purged/ lists, hex */
	size_t np, palloc;
	bool bad;
};

static void push(char ***v, size_t *n, size_t *alloc, const char *s, size_t len)
{
	xgrow((void **)v, alloc, *n + 1, sizeof **v);
	(*v)[(*n)++] = xstrndup(s, len);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* git's order, directories as if their name ended in '/' */
static int git_order(const git_tree_entry *a, const git_tree_entry *b)
{
	const char *na = git_tree_entry_name(a), *nb = git_tree_entry_name(b);
	size_t la = strlen(na), lb = strlen(nb), n = la < lb ? la : lb;
	int c = memcmp(na, nb, n);
	unsigned ca, cb;

	if (c)
		return c;
	ca = n < la ? (unsigned char)na[n] :
	     git_tree_entry_type(a) == GIT_OBJECT_TREE ? '/' : 0;
	cb = n < lb ? (unsigned char)nb[n] :
	     git_tree_entry_type(b) == GIT_OBJECT_TREE ? '/' : 0;
	return (int)ca - (int)cb;
}

/* The tree, parsed by libgit2; its bytes must be the canonical ones. */
static git_tree *canonical_tree(const git_oid *id, struct seen *s)
{
	struct strbuf b = STRBUF_INIT;
	git_odb_object *raw;
	git_tree *t;

	strbuf_init(&b, 256);
	if (git_tree_lookup(&t, R.git, id) < 0) {
		s->bad = true;
		return NULL;
	}
	for (size_t i = 0; i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		git_filemode_t m = git_tree_entry_filemode_raw(e);
		if (m != GIT_FILEMODE_BLOB && m != GIT_FILEMODE_TREE)
			s->bad = true;
		if (i && git_order(git_tree_entry_byindex(t, i - 1), e) >= 0)
			s->bad = true;
		strbuf_addf(&b, "%o %s", (unsigned)m, git_tree_entry_name(e));
		strbuf_addch(&b, '\0');
		strbuf_add(&b, git_tree_entry_id(e)->id, GIT_OID_RAWSZ);
	}
	CHECK(git_odb_read(&raw, odb, id) == 0);
	if (git_odb_object_size(raw) != b.len ||
	    (b.len && memcmp(git_odb_object_data(raw), b.buf, b.len)))
		s->bad = true;
	git_odb_object_free(raw);
	strbuf_release(&b);
	return t;
}

static bool is_mode(const git_tree_entry *e, git_filemode_t m)
{
	return git_tree_entry_filemode_raw(e) == m;
}

static bool blob_ok(const git_oid *id, size_t *size)
{
	git_object_t type;
	size_t len;

	if (git_odb_read_header(&len, &type, odb, id) < 0 || type != GIT_OBJECT_BLOB)
		return false;
	if (size)
		*size = len;
	return true;
}

static bool hex2(const char *n)
{
	return strlen(n) == 2 && strspn(n, "0123456789abcdef") == 2;
}

static void walk_shard(const git_oid *id, const char *xx, struct seen *s)
{
	git_tree *t = canonical_tree(id, s);

	for (size_t i = 0; t && i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		const char *n = git_tree_entry_name(e);
		char sh[3];

		if (!is_mode(e, GIT_FILEMODE_BLOB) || !maildir_name_valid(n) ||
		    path_component_forbidden(n) || !blob_ok(git_tree_entry_id(e), NULL)) {
			s->bad = true;
			continue;
		}
		maildir_shard_hex(sh, n, maildir_key_len(n));
		if (strcmp(sh, xx))
			s->bad = true;
		push(&s->keys, &s->n, &s->alloc, n, maildir_key_len(n));
		{
			char hex[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hex, sizeof hex, git_tree_entry_id(e));
			push(&s->blobs, &s->nb, &s->balloc, hex, strlen(hex));
		}
	}
	git_tree_free(t);
}

static void walk_sub(const git_oid *id, struct seen *s)
{
	git_tree *t = canonical_tree(id, s);

	for (size_t i = 0; t && i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		if (!is_mode(e, GIT_FILEMODE_TREE) || !hex2(git_tree_entry_name(e)))
			s->bad = true;
		else
			walk_shard(git_tree_entry_id(e), git_tree_entry_name(e), s);
	}
	git_tree_free(t);
}

static void walk_folder(const git_oid *id, struct seen *s)
{
	git_tree *t = canonical_tree(id, s);

	for (size_t i = 0; t && i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		const char *n = git_tree_entry_name(e);

		if (!strcmp(n, "maildirfolder"))
			s->bad |= !is_mode(e, GIT_FILEMODE_BLOB) ||
				  !git_oid_equal(git_tree_entry_id(e), &fixed[1]);
		else if (!strcmp(n, "cur") || !strcmp(n, "new"))
			is_mode(e, GIT_FILEMODE_TREE) ?
				walk_sub(git_tree_entry_id(e), s) : (void)(s->bad = true);
		else
			s->bad = true;
	}
	git_tree_free(t);
}

/* Records: re-parsed here, simply, not with format_mtimes_check(). */
static void walk_record(const git_oid *id, const char *xx, struct seen *s)
{
	git_odb_object *o;
	const char *p, *end;
	char *prev = NULL;

	if (!blob_ok(id, NULL) || git_odb_read(&o, odb, id) < 0) {
		s->bad = true;
		return;
	}
	p = git_odb_object_data(o);
	end = p + git_odb_object_size(o);
	if (p == end)
		s->bad = true;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *sp = nl ? memchr(p, ' ', (size_t)(nl - p)) : NULL;
		char *key, *time, *stop, sh[3];
		long long v;

		if (!sp) {
			s->bad = true;
			break;
		}
		key = xstrndup(p, (size_t)(sp - p));
		time = xstrndup(sp + 1, (size_t)(nl - sp - 1));
		v = strtoll(time, &stop, 10);
		maildir_shard_hex(sh, key, strlen(key));
		if (strlen(key) != (size_t)(sp - p) || !maildir_name_valid(key) ||
		    strcspn(key, ",:") != strlen(key) || strcmp(sh, xx) ||
		    (prev && strcmp(prev, key) >= 0) || !*time || *stop ||
		    strlen(time) > 18 + (*time == '-') ||
		    (time[0] == '-' ? time[1] == '0' : time[0] == '0' && time[1]) ||
		    strchr("+ ", time[0]) || v == maildir_key_time(key))
			s->bad = true;
		push(&s->records, &s->nr, &s->ralloc, key, strlen(key));
		free(prev);
		free(time);
		prev = key;
		p = nl + 1;
	}
	free(prev);
	git_odb_object_free(o);
}

/* purged/<xx>: "<40 lowercase hex>\n" lines starting with xx, ascending. */
static void walk_purged_record(const git_oid *id, const char *xx, struct seen *s)
{
	git_odb_object *o;
	const char *p, *end;
	char prev[41] = "";

	if (!blob_ok(id, NULL) || git_odb_read(&o, odb, id) < 0) {
		s->bad = true;
		return;
	}
	p = git_odb_object_data(o);
	end = p + git_odb_object_size(o);
	if (p == end)
		s->bad = true;
	for (; p < end; p += 41) {
		char line[41];
		if (end - p < 41 || p[40] != '\n' ||
		    strspn(p, "0123456789abcdef") < 40 || memcmp(p, xx, 2)) {
			s->bad = true;
			break;
		}
		memcpy(line, p, 40);
		line[40] = '\0';
		if (*prev && strcmp(prev, line) >= 0)
			s->bad = true;
		memcpy(prev, line, sizeof line);
		push(&s->purged, &s->np, &s->palloc, line, 40);
	}
	git_odb_object_free(o);
}

/* Is root valid, by this file's own reading of maildag-format(5)? */
static bool independently_valid(const git_oid *root)
{
	struct seen s = { 0 };
	git_tree *t = canonical_tree(root, &s);
	bool format = false;

	for (size_t i = 0; t && i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		const char *n = git_tree_entry_name(e);
		const git_oid *id = git_tree_entry_id(e);
		bool blob = is_mode(e, GIT_FILEMODE_BLOB);
		bool tree = is_mode(e, GIT_FILEMODE_TREE);

		if (!strcmp(n, "FORMAT")) {
			format = true;
			s.bad |= !blob || !git_oid_equal(id, &fixed[0]);
		} else if (!strcmp(n, "subscriptions")) {
			s.bad |= !blob || !blob_ok(id, NULL);
		} else if (!strcmp(n, "cur") || !strcmp(n, "new")) {
			tree ? walk_sub(id, &s) : (void)(s.bad = true);
		} else if (!strcmp(n, "mtimes") && tree) {
			git_tree *m = canonical_tree(id, &s);
			for (size_t j = 0; m && j < git_tree_entrycount(m); j++) {
				const git_tree_entry *r = git_tree_entry_byindex(m, j);
				if (!is_mode(r, GIT_FILEMODE_BLOB) ||
				    !hex2(git_tree_entry_name(r)))
					s.bad = true;
				else
					walk_record(git_tree_entry_id(r),
						    git_tree_entry_name(r), &s);
			}
			git_tree_free(m);
		} else if (!strcmp(n, "purged") && tree) {
			git_tree *m = canonical_tree(id, &s);
			for (size_t j = 0; m && j < git_tree_entrycount(m); j++) {
				const git_tree_entry *r = git_tree_entry_byindex(m, j);
				if (!is_mode(r, GIT_FILEMODE_BLOB) ||
				    !hex2(git_tree_entry_name(r)))
					s.bad = true;
				else
					walk_purged_record(git_tree_entry_id(r),
							   git_tree_entry_name(r), &s);
			}
			git_tree_free(m);
		} else if (n[0] == '.' && folder_dir_valid(n) && tree) {
			walk_folder(id, &s);
		} else {
			s.bad = true;
		}
	}
	s.bad |= !t || !format;
	git_tree_free(t);
	if (s.n)
		qsort(s.keys, s.n, sizeof *s.keys, cmp_str);
	for (size_t i = 1; i < s.n; i++)
		s.bad |= !strcmp(s.keys[i - 1], s.keys[i]);
	for (size_t i = 0; i < s.nr; i++)
		s.bad |= !s.n || !bsearch(&s.records[i], s.keys, s.n,
					  sizeof *s.keys, cmp_str);
	/* no message of a blob the tree lists as purged */
	for (size_t i = 0; i < s.nb; i++)
		for (size_t j = 0; j < s.np; j++)
			s.bad |= !strcmp(s.blobs[i], s.purged[j]);
	for (size_t i = 0; i < s.n; i++)
		free(s.keys[i]);
	for (size_t i = 0; i < s.nr; i++)
		free(s.records[i]);
	for (size_t i = 0; i < s.nb; i++)
		free(s.blobs[i]);
	for (size_t i = 0; i < s.np; i++)
		free(s.purged[i]);
	free(s.keys);
	free(s.records);
	free(s.blobs);
	free(s.purged);
	return !s.bad;
}

/* --- the target ------------------------------------------------------------------ */

static void count_problem(const char *path, const char *reason, void *data)
{
	CHECK(path && reason && *reason);
	(*(int *)data)++;
}

/* Replace every reference in chunk bytes p[0..n) by the id it names. */
static void resolve(char *p, size_t n, const git_oid *ids, const bool *have,
		    size_t nchunks)
{
	for (size_t i = 0; i + FUZZ_REF_LEN < n; i++) {
		unsigned idx;
		size_t j;

		for (j = 0; j < FUZZ_REF_LEN && (unsigned char)p[i + j] == FUZZ_REF; j++)
			;
		if (j < FUZZ_REF_LEN)
			continue;
		idx = (unsigned char)p[i + FUZZ_REF_LEN];
		if (idx >= FUZZ_FORMAT && idx <= FUZZ_BASE_MTIMES)
			memcpy(p + i, fixed[idx - FUZZ_FORMAT].id, GIT_OID_RAWSZ);
		else if (idx < nchunks && have[idx])
			memcpy(p + i, ids[idx].id, GIT_OID_RAWSZ);
		i += GIT_OID_RAWSZ - 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *starts[64];
	size_t lens[64], n = 0;
	git_oid ids[64];
	bool have[64] = { false };
	const char *p = (const char *)data, *end = p + size;
	struct strbuf err1 = STRBUF_INIT, err2 = STRBUF_INIT;
	int r1, r2, problems = 0;

	if (size > 1 << 16)
		return 0;
	while (n < 64) {
		const char *sep = memmem(p, (size_t)(end - p), FUZZ_SEP, FUZZ_SEP_LEN);
		starts[n] = p;
		lens[n] = sep ? (size_t)(sep - p) : (size_t)(end - p);
		n++;
		if (!sep)
			break;
		p = sep + FUZZ_SEP_LEN;
	}
	git_mempack_reset(scratch);
	for (size_t i = n; i-- > 0;) {
		char *c = xmalloc(lens[i] + 1);
		bool blob = lens[i] && starts[i][0] == 'B';
		size_t skip = lens[i] && (starts[i][0] == 'B' || starts[i][0] == 'T');

		memcpy(c, starts[i], lens[i]);
		resolve(c + skip, lens[i] - skip, ids, have, n);
		put(&ids[i], c + skip, lens[i] - skip,
		    blob ? GIT_OBJECT_BLOB : GIT_OBJECT_TREE);
		have[i] = true;
		free(c);
	}

	r1 = format_check_tree(&R, OID(&ids[0]), NULL, &err1);
	CHECK(r1 == 0 || r1 == E_INVALID);
	CHECK(r1 == 0 ? err1.len == 0 : err1.len > 0 && !strchr(err1.buf, '\n'));
	for (size_t i = 0; i < err1.len; i++)	/* one printable line */
		CHECK((unsigned char)err1.buf[i] >= 0x20 &&
		      (unsigned char)err1.buf[i] < 0x7f);
	CHECK(r1 != 0 || independently_valid(&ids[0]));

	r2 = format_check_tree(&R, OID(&ids[0]), OID(&fixed[FUZZ_BASE - FUZZ_FORMAT]), &err2);
	if (r2 != r1)
		fprintf(stderr, "full: %d %s\nagainst the base: %d %s\n", r1,
			err1.len ? err1.buf : "", r2, err2.len ? err2.buf : "");
	CHECK(r2 == r1);

	CHECK(format_fsck_tree(&R, OID(&ids[0]), count_problem, &problems, NULL) ==
	      problems);
	CHECK((problems == 0) == (r1 == 0));

	strbuf_release(&err1);
	strbuf_release(&err2);
	return 0;
}
