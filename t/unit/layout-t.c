/*
 * Unit tests for common/layout.c: the tree path and the disk place of a
 * message (built and parsed, table-driven), the folder rule on a real
 * directory, and tmp/ cleaning.
 */
#include "autoconf.h"
#include "repo_p.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../tap.h"
#include "fsutil.h"
#include "layout.h"
#include "log.h"
#include "xalloc.h"

/* The shard of "1700000000.M1P1.host" is 9c (fnv1a32 & 0xff). */
#define NAME "1700000000.M1P1.host,S=12:2,S"

static const struct {
	const char *folder, *sub, *name;
	const char *tree, *place;
} builds[] = {
	{ "", "cur", NAME, "cur/9c/" NAME, "cur/" NAME },
	{ "", "new", "1700000000.M1P1.host", "new/9c/1700000000.M1P1.host",
	  "new/1700000000.M1P1.host" },
	{ ".Sent", "cur", NAME, ".Sent/cur/9c/" NAME, ".Sent/cur/" NAME },
	{ ".Lists.debian", "new", "1700000001.M2P2.host:2,",
	  ".Lists.debian/new/93/1700000001.M2P2.host:2,",
	  ".Lists.debian/new/1700000001.M2P2.host:2," },
};

/*
 * Parses: what each parser says of a string (-1: E_INVALID), and the
 * parts found (the shard is the one a shard directory names; "cur/9c" is
 * also the place of a message named "9c").
 */
static const struct {
	const char *s;
	int tree, shard_dir, place;	/* 0 or -1 */
	size_t flen;
	unsigned sub, shard;
} parses[] = {
	{ "cur/9c/" NAME, 0, -1, -1, 0, 0, 0x9c },
	{ "new/9c/" NAME, 0, -1, -1, 0, 1, 0x9c },
	{ ".Sent/cur/9c/" NAME, 0, -1, -1, 5, 0, 0x9c },
	{ ".a.b/new/9c/" NAME, 0, -1, -1, 4, 1, 0x9c },
	{ "cur/9c", -1, 0, 0, 0, 0, 0x9c },
	{ ".Sent/new/00", -1, 0, 0, 5, 1, 0x00 },
	{ ".Sent/new/ff", -1, 0, 0, 5, 1, 0xff },
	{ "new/" NAME, -1, -1, 0, 0, 1, 0x9c },
	{ ".Sent/cur/" NAME, -1, -1, 0, 5, 0, 0x9c },
	/* wrong shard, hex case, length */
	{ "cur/00/" NAME, -1, -1, -1, 0, 0, 0 },
	{ "cur/9C/" NAME, -1, -1, -1, 0, 0, 0 },
	{ "cur/9C", -1, -1, 0, 0, 0, 0 },
	{ "cur/9/" NAME, -1, -1, -1, 0, 0, 0 },
	{ "cur/9c9/" NAME, -1, -1, -1, 0, 0, 0 },
	{ "cur/9c/", -1, -1, -1, 0, 0, 0 },
	{ "cur/9c/x/" NAME, -1, -1, -1, 0, 0, 0 },
	{ "cur/9c/.hidden", -1, -1, -1, 0, 0, 0 },
	/* not cur or new, not a folder */
	{ "tmp/9c/" NAME, -1, -1, -1, 0, 0, 0 },
	{ "tmp/" NAME, -1, -1, -1, 0, 0, 0 },
	{ "Sent/cur/9c/" NAME, -1, -1, -1, 0, 0, 0 },
	{ ".a..b/cur/9c/" NAME, -1, -1, -1, 0, 0, 0 },
	{ ".git/cur/9c/" NAME, -1, -1, -1, 0, 0, 0 },
	{ ".Sent", -1, -1, -1, 0, 0, 0 },
	{ ".Sent/maildirfolder", -1, -1, -1, 0, 0, 0 },
	{ "/cur/9c/" NAME, -1, -1, -1, 0, 0, 0 },
	{ "curx/9c/" NAME, -1, -1, -1, 0, 0, 0 },
	{ "FORMAT", -1, -1, -1, 0, 0, 0 },
	{ "mtimes/9c", -1, -1, -1, 0, 0, 0 },
	{ "", -1, -1, -1, 0, 0, 0 },
};

static void test_builds(void)
{
	for (size_t i = 0; i < sizeof builds / sizeof builds[0]; i++) {
		struct strbuf sb = STRBUF_INIT;
		struct layout_path lp;

		tree_message_path(&sb, builds[i].folder, builds[i].sub,
				  builds[i].name);
		is_str(sb.buf, builds[i].tree, "tree path %zu", i);
		ok(layout_parse_tree_path(&lp, sb.buf) == 0 &&
		   lp.folder_len == strlen(builds[i].folder) &&
		   !strncmp(lp.folder, builds[i].folder, lp.folder_len) &&
		   !strcmp(layout_sub_name(lp.sub), builds[i].sub) &&
		   !strcmp(lp.name, builds[i].name),
		   "tree path %zu parses back", i);
		strbuf_reset(&sb);
		layout_disk_place(&sb, builds[i].folder, builds[i].sub,
				  builds[i].name);
		is_str(sb.buf, builds[i].place, "disk place %zu", i);
		ok(layout_parse_disk_place(&lp, sb.buf) == 0 &&
		   lp.folder_len == strlen(builds[i].folder) &&
		   !strcmp(lp.name, builds[i].name),
		   "disk place %zu parses back", i);
		strbuf_release(&sb);
	}
	{
		struct strbuf sb = STRBUF_INIT;
		tree_shard_path(&sb, "", "new", 0x0a);
		is_str(sb.buf, "new/0a", "shard path of INBOX");
		strbuf_reset(&sb);
		tree_shard_path(&sb, ".A.B", "cur", 255);
		is_str(sb.buf, ".A.B/cur/ff", "shard path of a folder");
		strbuf_release(&sb);
	}
}

static void test_parses(void)
{
	for (size_t i = 0; i < sizeof parses / sizeof parses[0]; i++) {
		struct layout_path lp;
		int r[3];

		r[0] = layout_parse_tree_path(&lp, parses[i].s) < 0 ? -1 : 0;
		if (r[0] == 0)
			ok(lp.folder_len == parses[i].flen &&
			   lp.sub == parses[i].sub && lp.shard == parses[i].shard,
			   "'%s': its parts as a tree path", parses[i].s);
		r[1] = layout_parse_shard_dir(&lp, parses[i].s) < 0 ? -1 : 0;
		if (r[1] == 0)
			ok(lp.folder_len == parses[i].flen && !lp.name &&
			   lp.sub == parses[i].sub && lp.shard == parses[i].shard,
			   "'%s': its parts as a shard directory", parses[i].s);
		r[2] = layout_parse_disk_place(&lp, parses[i].s) < 0 ? -1 : 0;
		if (r[2] == 0)
			ok(lp.folder_len == parses[i].flen &&
			   lp.sub == parses[i].sub,
			   "'%s': its parts as a disk place", parses[i].s);
		is_int(r[0], parses[i].tree, "'%s' as a tree path", parses[i].s);
		is_int(r[1], parses[i].shard_dir, "'%s' as a shard directory",
		       parses[i].s);
		is_int(r[2], parses[i].place, "'%s' as a disk place",
		       parses[i].s);
	}
	ok(layout_shard_name(NULL, "0f", 2), "0f is a shard name");
	ok(!layout_shard_name(NULL, "0F", 2), "0F is not");
	ok(!layout_shard_name(NULL, "0f0", 3), "0f0 is not");
	ok(!layout_shard_name(NULL, "g0", 2), "g0 is not");
}

static void mk(const char *root, const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);
	mkdir_p(p, 0700);
	free(p);
}

/* A file at root/rel whose mtime and atime are age seconds ago. */
static void file_aged(const char *root, const char *rel, time_t age)
{
	char *p = xasprintf("%s/%s", root, rel);
	struct timespec ts[2] = { { time(NULL) - age, 0 },
				  { time(NULL) - age, 0 } };
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd >= 0)
		close(fd);
	utimensat(AT_FDCWD, p, ts, 0);
	free(p);
}

static bool exists(const char *root, const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);
	bool r = path_exists(p);

	free(p);
	return r;
}

/* v (freed here) as "[a][b]..." is want. */
static void is_list(char **v, size_t n, const char *want, const char *what)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < n; i++)
		strbuf_addf(&sb, "[%s]", v[i]);
	is_str(sb.buf, want, "%s", what);
	strbuf_release(&sb);
	layout_list_free(v, n);
}

static void test_disk(void)
{
	char tmpl[] = "/tmp/layout-t.XXXXXX";
	char *md = mkdtemp(tmpl), *link, **v;
	size_t n;
	const time_t old = LAYOUT_TMP_MAX_AGE + 3600;

	if (!md) {
		ok(0, "mkdtemp");
		return;
	}
	mk(md, "cur");
	mk(md, "tmp");
	mk(md, ".OnlyCur/cur");
	mk(md, ".OnlyNew/new");
	mk(md, ".Both/cur");
	mk(md, ".Both/new");
	mk(md, ".Both/tmp");
	mk(md, ".TmpOnly/tmp");
	mk(md, ".Empty");
	mk(md, ".a..b/cur");		/* not a valid folder name */
	file_aged(md, ".NotADir", 0);
	link = xasprintf("%s/.Link", md);
	if (symlink(".Both", link) < 0)
		ok(0, "symlink");
	free(link);

	ok(layout_folder_exists(md, ""), "INBOX with cur/ exists");
	ok(layout_folder_exists(md, ".OnlyCur"), "only cur/: a folder");
	ok(layout_folder_exists(md, ".OnlyNew"), "only new/: a folder");
	ok(layout_folder_exists(md, ".Both"), "cur/ and new/: a folder");
	ok(!layout_folder_exists(md, ".TmpOnly"), "only tmp/: not a folder");
	ok(!layout_folder_exists(md, ".Empty"), "nothing: not a folder");
	ok(!layout_folder_exists(md, ".Missing"), "missing: not a folder");
	ok(layout_folder_exists(md, ".Link"), "a link to a folder: named, one");

	is_int(layout_list_folders(&v, &n, md), 0, "list the folders");
	is_list(v, n, "[][.Both][.OnlyCur][.OnlyNew]",
		"the folders: no tmp/-only, empty, invalid, file or link");
	is_int(layout_list_dirs(&v, &n, md), 0, "list the folder directories");
	is_list(v, n, "[][.Both][.Empty][.OnlyCur][.OnlyNew][.TmpOnly]",
		"the directories: valid names, no file, no link");
	{
		char *gone = xasprintf("%s/missing", md);
		is_int(layout_list_folders(&v, &n, gone), 0, "no Maildir: no error");
		is_int(n, 0, "no Maildir: no folders");
		free(gone);
	}

	file_aged(md, "tmp/old", old);
	file_aged(md, "tmp/young", 60);
	file_aged(md, "tmp/.dot", old);
	file_aged(md, ".Both/tmp/old", old);
	file_aged(md, ".TmpOnly/tmp/old", old);
	is_int(layout_clean_tmp(md, "", LAYOUT_TMP_MAX_AGE), 1,
	       "INBOX's tmp/: one file old enough");
	ok(!exists(md, "tmp/old") && exists(md, "tmp/young") &&
	   exists(md, "tmp/.dot"), "the old one went, the others stay");
	layout_clean_tmp_all(md, LAYOUT_TMP_MAX_AGE);
	ok(!exists(md, ".Both/tmp/old"), "a folder's old tmp/ file went");
	ok(exists(md, ".TmpOnly/tmp/old"), "not a folder: its tmp/ is left");

	rm_rf(md);
}

int main(void)
{
	log_init("layout-t", LOG_TO_STDERR, LOG_LVL_WARN);
	test_builds();
	test_parses();
	test_disk();
	return tap_done();
}
