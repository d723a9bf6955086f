/*
 * Unit test of common/purged.c and of purged/ in the format check
 * (format_purged.c): good and bad record blobs, the shard rule, the set
 * written and read back, and the rules of doc/purge.md 3.5: no message
 * of a listed blob; an absent blob valid exactly where the trusted tree
 * or a hint lists it; a set that shrinks against an ancestor refused.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2/sys/mempack.h>
#include <git2/sys/repository.h>

#include "../tap.h"
#include "format.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "mtimes.h"
#include "purged.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

static struct repo *repo;

#define A1 "a1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define A2 "a1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define B1 "b2cccccccccccccccccccccccccccccccccccccc"

static const struct {
	const char *bytes;
	unsigned shard;
	const char *why;	/* NULL: good */
} records[] = {
	{ A1 "\n", 0xa1, NULL },
	{ A1 "\n" A2 "\n", 0xa1, NULL },
	{ "", 0xa1, "empty record" },
	{ A1, 0xa1, "line 1: not a blob id and a newline" },
	{ A2 "\n" A1 "\n", 0xa1, "line 2: ids not sorted and unique" },
	{ A1 "\n" A1 "\n", 0xa1, "line 2: ids not sorted and unique" },
	{ B1 "\n", 0xa1, "line 1: id b2cccccccccc in the wrong shard" },
	{ "A1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0xa1,
	  "line 1: not a lowercase blob id" },
	{ A1 "\r\n", 0xa1, "line 1: not a blob id and a newline" },
	{ A1 "\n\n", 0xa1, "line 2: not a blob id and a newline" },
};

static void test_parse(void)
{
	for (size_t i = 0; i < sizeof records / sizeof records[0]; i++) {
		struct purged p = PURGED_INIT;
		struct strbuf err = STRBUF_INIT;
		int r = purged_parse(&p, records[i].bytes,
				     strlen(records[i].bytes), records[i].shard,
				     &err);
		if (!records[i].why)
			ok(r == 0 && p.n >= 1, "record %zu is good", i);
		else
			is_str(err.buf, records[i].why, "record %zu: %s", i,
			       records[i].why);
		purged_release(&p);
		strbuf_release(&err);
	}
}

static void id(struct oid *out, const char *hex)
{
	if (oid_fromstr(out, hex) < 0)
		log_fatal("bad id");
}

static void test_set(void)
{
	struct purged a = PURGED_INIT, b = PURGED_INIT, r = PURGED_INIT;
	struct update_list ups = UPDATE_LIST_INIT, none = UPDATE_LIST_INIT;
	struct strbuf sb = STRBUF_INIT;
	struct oid x, tree, t2;

	id(&x, A2);
	purged_add(&a, &x);
	id(&x, A1);
	purged_add(&a, &x);
	purged_add(&a, &x);
	id(&x, B1);
	purged_add(&b, &x);
	purged_add(&b, &a.v[0]);
	purged_union(&a, &b);
	ok(a.n == 3 && oid_cmp(&a.v[0], &a.v[1]) < 0 &&
	   oid_cmp(&a.v[1], &a.v[2]) < 0, "union: sorted, unique");
	purged_format_shard(&sb, &a, 0xa1);
	is_str(sb.buf, A1 "\n" A2 "\n", "a shard's bytes");
	purged_updates(&ups, repo, &r, &a);
	ok(ups.n == 2, "two shards written");
	repo_tree_update(&tree, repo, NULL, ups.v, ups.n);
	ok(purged_read(&r, repo, &tree) == 0 && purged_equal(&r, &a),
	   "read back: the same set");
	purged_updates(&none, repo, &r, &a);
	ok(none.n == 0, "an unchanged set writes nothing");
	purged_release(&r);
	ok(purged_read_shard(&r, repo, &tree, 0xb2) == 0 && r.n == 1,
	   "one shard read alone");
	repo_tree_update(&t2, repo, NULL, NULL, 0);
	purged_release(&r);
	ok(purged_read(&r, repo, &t2) == 0 && r.n == 0,
	   "no purged/: an empty set");
	purged_release(&a);
	purged_release(&b);
	purged_release(&r);
	update_list_release(&ups);
	update_list_release(&none);
	strbuf_release(&sb);
}

/* A format 1 tree: message key K with blob msg (NULL: none), purged set. */
static void tree_of(struct oid *out, const struct oid *msg,
		    const struct purged *set, const char *bad_record)
{
	struct update_list ups = UPDATE_LIST_INIT;
	struct purged none = PURGED_INIT;
	struct strbuf path = STRBUF_INIT;
	struct oid fmt, rec;
	const char *key = "1700000000.M1P1Q1.host";

	repo_blob_from_buffer(&fmt, repo, FORMAT_CONTENT, strlen(FORMAT_CONTENT));
	update_list_add(&ups, FORMAT_PATH, &fmt);
	if (msg) {
		tree_message_path(&path, "", "cur", key);
		strbuf_addstr(&path, ":2,S");
		update_list_add(&ups, path.buf, msg);
	}
	if (set)
		purged_updates(&ups, repo, &none, set);
	if (bad_record) {
		repo_blob_from_buffer(&rec, repo, bad_record, strlen(bad_record));
		update_list_add(&ups, PURGED_DIR "/a1", &rec);
	}
	if (repo_tree_update(out, repo, NULL, ups.v, ups.n) < 0)
		log_fatal("tree");
	update_list_release(&ups);
	strbuf_release(&path);
}

static void test_check(void)
{
	struct purged one = PURGED_INIT, two = PURGED_INIT;
	struct strbuf err = STRBUF_INIT;
	struct oid m, gone, t0, t1, t2, t3, t4, t5;

	repo_blob_from_buffer(&m, repo, "Subject: kept\n\nx\n", 17);
	id(&gone, "0123456789abcdef0123456789abcdef01234567");	/* absent */
	purged_add(&one, &gone);
	purged_add(&two, &gone);
	purged_add(&two, &m);

	tree_of(&t0, &m, NULL, NULL);
	ok(format_check_tree(repo, &t0, NULL, &err) == 0, "no purged/: valid");
	tree_of(&t1, &m, &one, NULL);
	strbuf_reset(&err);
	ok(format_check_tree(repo, &t1, NULL, &err) == 0 &&
	   format_check_tree(repo, &t1, &t0, &err) == 0,
	   "a set of an absent blob: valid (%s)", err.buf);
	tree_of(&t2, &m, &two, NULL);
	strbuf_reset(&err);
	ok(format_check_tree(repo, &t2, NULL, &err) == E_INVALID &&
	   strstr(err.buf, "message of purged blob"),
	   "a message of a listed blob: invalid (%s)", err.buf);
	strbuf_reset(&err);
	ok(format_check_tree(repo, &t2, &t1, &err) == E_INVALID &&
	   strstr(err.buf, "message of purged blob"),
	   "... also when only the set changed against trusted (%s)", err.buf);
	tree_of(&t3, &gone, NULL, NULL);
	strbuf_reset(&err);
	ok(format_check_tree(repo, &t3, NULL, &err) == E_INVALID &&
	   strstr(err.buf, "missing blob"), "an absent blob: invalid (%s)",
	   err.buf);
	strbuf_reset(&err);
	ok(format_check_tree(repo, &t3, &t1, &err) == 0,
	   "an absent blob the trusted tree lists: valid (%s)", err.buf);
	format_purged_hint(repo, &t1);
	strbuf_reset(&err);
	ok(format_check_tree(repo, &t3, NULL, &err) == 0,
	   "an absent blob a hint lists: valid (%s)", err.buf);
	format_purged_hints_clear();
	tree_of(&t4, &m, NULL, A2 "\n" A1 "\n");
	strbuf_reset(&err);
	ok(format_check_tree(repo, &t4, NULL, &err) == E_INVALID &&
	   strstr(err.buf, "'purged/a1': line 2: ids not sorted"),
	   "a malformed record: invalid (%s)", err.buf);
	strbuf_reset(&err);
	ok(format_check_tree_since(repo, &t0, &t1, &err) == E_INVALID &&
	   strstr(err.buf, "purged ids dropped"),
	   "a set that shrinks against an ancestor: invalid (%s)", err.buf);
	tree_of(&t5, NULL, &two, NULL);
	strbuf_reset(&err);
	ok(format_check_tree_since(repo, &t5, &t1, &err) == 0,
	   "a set that grows: valid (%s)", err.buf);
	purged_release(&one);
	purged_release(&two);
	strbuf_release(&err);
}

int main(void)
{
	git_odb *odb;
	git_odb_backend *mempack;

	log_init("purged-t", LOG_TO_STDERR, LOG_LVL_ERROR);
	if (repo_global_init() < 0)
		log_fatal("libgit2 init failed");
	repo = xcalloc(1, sizeof *repo);
	repo->lock_fd = -1;
	if (git_repository_new(&repo->git) < 0 || git_odb_new(&odb) < 0 ||
	    git_mempack_new(&mempack) < 0 ||
	    git_odb_add_backend(odb, mempack, 999) < 0 ||
	    git_repository_set_odb(repo->git, odb) < 0)
		log_fatal("in-memory repository: %s", repo_git_error());
	git_odb_free(odb);
	test_parse();
	test_set();
	test_check();
	repo_free(repo);
	return tap_done();
}
