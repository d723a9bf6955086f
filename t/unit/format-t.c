/*
 * Unit tests for common/format.c: the repository format validator.
 *
 * Trees are written as raw objects (git_odb_write of hand-made tree
 * bytes), because libgit2's tree builder refuses some of the names a
 * hostile peer can send.  A tree is described as a list of flat entries:
 * a path split at '/', in which '|' stands for a '/' inside a name,
 * "{S:key}" for the shard of key and "{W:key}" for a wrong one.
 */
#include "autoconf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "format.h"
#include "fsutil.h"
#include "log.h"
#include "maildir_name.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

static struct repo *repo;
static git_odb *odb;

#define K1 "1700000000.M1P1Q1.host"
#define K2 "1700000001.M2P2Q2.host"
#define K3 "1700000002.M3P3Q3.host"
#define K4 "1700000003.M4P4Q4.host"
#define K5 "1700000005.M5P5Q5.host"
#define LONG255 \
	"1234567890123456789012345678901234567890123456789012345678901234567890" \
	"1234567890123456789012345678901234567890123456789012345678901234567890" \
	"1234567890123456789012345678901234567890123456789012345678901234567890" \
	"123456789012345678901234567890123456789012345"

/* --- building trees ---------------------------------------------------------- */

struct fent {
	const char *path;
	const char *mode;	/* NULL: "100644" */
	const char *content;	/* blob bytes; NULL with a blob mode: a missing blob */
};

/* Expand {S:key} and {W:key} in s. */
static char *expand(const char *s)
{
	struct strbuf out = STRBUF_INIT;

	while (*s) {
		if ((s[0] == '{') && (s[1] == 'S' || s[1] == 'W') && s[2] == ':') {
			const char *end = strchr(s, '}');
			char hex[3];
			maildir_shard_hex(hex, s + 3, (size_t)(end - s - 3));
			if (s[1] == 'W') {
				unsigned v = maildir_shard(s + 3, (size_t)(end - s - 3)) ^ 1;
				snprintf(hex, sizeof hex, "%02x", v);
			}
			strbuf_addstr(&out, hex);
			s = end + 1;
		} else {
			strbuf_addch(&out, *s++);
		}
	}
	return strbuf_detach(&out, NULL);
}

static void write_blob(struct oid *out, const char *content)
{
	if (git_odb_write(GIT_OID(out), odb, content, strlen(content), GIT_OBJECT_BLOB) < 0)
		log_fatal("write blob: %s", repo_git_error());
}

struct raw {
	const char *mode;
	char *name;
	size_t nlen;
	struct oid id;
};

static int dir_mode(const char *mode)
{
	return !strcmp(mode, "40000") || !strcmp(mode, "040000");
}

static int raw_cmp(const void *a, const void *b)
{
	const struct raw *x = a, *y = b;
	size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
	int c = memcmp(x->name, y->name, n);
	unsigned cx, cy;

	if (c)
		return c;
	cx = n < x->nlen ? (unsigned char)x->name[n] : dir_mode(x->mode) ? '/' : 0;
	cy = n < y->nlen ? (unsigned char)y->name[n] : dir_mode(y->mode) ? '/' : 0;
	return (int)cx - (int)cy;
}

/* Write a tree of the given raw entries, in the order given. */
static void write_raw(struct oid *out, const struct raw *e, size_t n)
{
	struct strbuf b;

	strbuf_init(&b, 256);
	for (size_t i = 0; i < n; i++) {
		strbuf_addf(&b, "%s ", e[i].mode);
		strbuf_add(&b, e[i].name, e[i].nlen);
		strbuf_addch(&b, '\0');
		strbuf_add(&b, e[i].id.id, OID_RAWSZ);
	}
	if (git_odb_write(GIT_OID(out), odb, b.len ? b.buf : "", b.len, GIT_OBJECT_TREE) < 0)
		log_fatal("write tree: %s", repo_git_error());
	strbuf_release(&b);
}

struct node {
	char *comp[8];
	size_t n;
	const char *mode;
	const char *content;
};

/* A blob id nobody wrote. */
static void missing_id(struct oid *id)
{
	oid_fromstr(id, "0123456789abcdef0123456789abcdef01234567");
}

static void leaf_id(struct oid *id, const struct node *nd)
{
	if (dir_mode(nd->mode)) {
		struct raw x = { "100644", "x", 1, { { 0 } } };
		write_blob(&x.id, "x");
		write_raw(id, &x, 1);
	} else if (nd->content) {
		write_blob(id, nd->content);
	} else {
		missing_id(id);
	}
}

/* The tree of the nodes whose components from depth on are below it. */
static void build(struct oid *out, struct node **nodes, size_t n, size_t depth)
{
	struct raw *e = xcalloc(n + 1, sizeof *e);
	size_t ne = 0;
	char *done = xcalloc(n + 1, 1);

	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		if (nodes[i]->n == depth + 1) {
			e[ne].mode = nodes[i]->mode;
			e[ne].name = nodes[i]->comp[depth];
			e[ne].nlen = strlen(e[ne].name);
			leaf_id(&e[ne].id, nodes[i]);
			ne++;
			done[i] = 1;
			continue;
		}
		{
			struct node **sub = xcalloc(n, sizeof *sub);
			size_t ns = 0;
			for (size_t j = i; j < n; j++) {
				if (!done[j] && nodes[j]->n > depth + 1 &&
				    !strcmp(nodes[j]->comp[depth], nodes[i]->comp[depth])) {
					sub[ns++] = nodes[j];
					done[j] = 1;
				}
			}
			e[ne].mode = "40000";
			e[ne].name = nodes[i]->comp[depth];
			e[ne].nlen = strlen(e[ne].name);
			build(&e[ne].id, sub, ns, depth + 1);
			ne++;
			free(sub);
		}
	}
	qsort(e, ne, sizeof *e, raw_cmp);
	write_raw(out, e, ne);
	free(done);
	free(e);
}

static struct node *node_new(const struct fent *f)
{
	struct node *nd = xcalloc(1, sizeof *nd);
	char *path = expand(f->path), *p = path;

	for (;;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		nd->comp[nd->n] = xstrdup(p);
		for (char *q = nd->comp[nd->n]; *q; q++)
			if (*q == '|')
				*q = '/';
		nd->n++;
		if (!slash)
			break;
		p = slash + 1;
	}
	free(path);
	nd->mode = f->mode ? f->mode : "100644";
	nd->content = f->content;
	return nd;
}

static void node_free(struct node *nd)
{
	for (size_t i = 0; i < nd->n; i++)
		free(nd->comp[i]);
	free(nd);
}

/* The base mailbox: every kind of entry, valid. */
static const struct fent base[] = {
	{ "FORMAT", NULL, "maildag 1\n" },
	{ "subscriptions", NULL, "Sent\nLists.dev\n" },
	{ "cur/{S:" K1 "}/" K1 ",S=5:2,S", NULL, "msg1" },
	{ "new/{S:" K2 "}/" K2 ",S=5", NULL, "msg2" },
	{ ".Sent/maildirfolder", NULL, "" },
	{ ".Sent/cur/{S:" K3 "}/" K3 ",S=5:2,RS", NULL, "msg3" },
	{ ".Lists.dev/maildirfolder", NULL, "" },
	{ ".Lists.dev/new/{S:" K4 "}/" K4, NULL, "msg4" },
	{ "mtimes/{S:" K1 "}", NULL, K1 " 1600000000\n" },
};
#define NBASE (sizeof base / sizeof base[0])

/*
 * The tree of base less the entry at path remove (if any) plus the
 * entries add (up to a NULL path).
 */
static void make_tree2(struct oid *out, const char *const *remove,
		       const struct fent *add)
{
	struct node *nodes[64];
	size_t n = 0;

	for (size_t i = 0; i < NBASE; i++) {
		char *p = expand(base[i].path);
		bool keep = true;
		for (size_t j = 0; remove && remove[j]; j++) {
			char *rm = expand(remove[j]);
			keep &= strcmp(p, rm) != 0;
			free(rm);
		}
		if (keep)
			nodes[n++] = node_new(&base[i]);
		free(p);
	}
	for (; add && add->path; add++)
		nodes[n++] = node_new(add);
	build(out, nodes, n, 0);
	for (size_t i = 0; i < n; i++)
		node_free(nodes[i]);
}

static void make_tree(struct oid *out, const char *remove, const struct fent *add)
{
	const char *rm[] = { remove, NULL };

	make_tree2(out, rm, add);
}

/* --- the table --------------------------------------------------------------- */

struct tcase {
	const char *title;
	const char *remove;
	struct fent add[3];
	const char *want;	/* NULL: valid; "...*": a prefix */
	int same_incremental;	/* the incremental check names the same entry */
};

static const struct tcase cases[] = {
	{ "the base tree", NULL, { { NULL } }, NULL, 1 },
	{ "a 255-byte name", NULL,
	  { { "cur/{S:" LONG255 "}/" LONG255, NULL, "m" } }, NULL, 1 },
	{ "a message without flags in cur", NULL,
	  { { "cur/{S:" K5 "}/" K5, NULL, "m" } }, NULL, 1 },
	{ "no subscriptions and no mtimes", "subscriptions", { { NULL } }, NULL, 1 },
	{ "a folder without its marker", ".Sent/maildirfolder", { { NULL } }, NULL, 1 },
	{ "a negative mtime", "mtimes/{S:" K1 "}",
	  { { "mtimes/{S:" K1 "}", NULL, K1 " -1\n" } }, NULL, 1 },
	{ "a message moved with its mtime record", "cur/{S:" K1 "}/" K1 ",S=5:2,S",
	  { { ".Sent/cur/{S:" K1 "}/" K1 ",S=5:2,S", NULL, "msg1" } }, NULL, 1 },

	{ "'..' at the root", NULL, { { "../x", NULL, "x" } },
	  "'..': forbidden name", 1 },
	{ "'..' as a message name", NULL,
	  { { ".Sent/cur/{S:..}/..", NULL, "x" } },
	  "'.Sent/cur/{S:..}/..': forbidden name", 1 },
	{ "'.' as a folder", NULL, { { "./maildirfolder", NULL, "" } },
	  "'.': forbidden name", 1 },
	{ ".git", NULL, { { ".git/config", NULL, "[core]\n" } },
	  "'.git': forbidden name", 1 },
	{ ".GIT", NULL, { { ".GIT/config", NULL, "[core]\n" } },
	  "'.GIT': forbidden name", 1 },
	{ ".Git. (trailing dot)", NULL, { { ".Git./HEAD", NULL, "x" } },
	  "'.Git.': forbidden name", 1 },
	{ ".git as a blob", NULL, { { ".git", NULL, "gitdir: /etc\n" } },
	  "'.git': forbidden name", 1 },
	{ "GIT~1 as a message name", NULL,
	  { { "cur/{S:GIT~1}/GIT~1", NULL, "x" } },
	  "'cur/{S:GIT~1}/GIT~1': forbidden name", 1 },
	{ "a symlink message", NULL,
	  { { "cur/{S:" K5 "}/" K5, "120000", "/etc/passwd" } },
	  "'cur/{S:" K5 "}/" K5 "': symbolic link", 1 },
	{ "a symlink at the root", NULL, { { "cur2", "120000", "cur" } },
	  "'cur2': symbolic link", 1 },
	{ "a gitlink", NULL,
	  { { ".Sent/new/{S:" K5 "}/" K5, "160000", "x" } },
	  "'.Sent/new/{S:" K5 "}/" K5 "': gitlink (submodule)", 1 },
	{ "a leading '/'", NULL, { { "|etc/passwd", NULL, "x" } },
	  "'/etc': name contains '/'", 1 },
	{ "a '/' in a message name", NULL,
	  { { "cur/{S:|x}/|x", NULL, "x" } },
	  "'cur/{S:|x}//x': name contains '/'", 1 },
	{ "a 256-byte name", NULL,
	  { { "cur/{S:" LONG255 "6}/" LONG255 "6", NULL, "x" } },
	  "'cur/{S:" LONG255 "6}/" LONG255 "6': name longer than 255 bytes", 1 },
	{ "folder .a..b", NULL, { { ".a..b/maildirfolder", NULL, "" } },
	  "'.a..b': not a valid folder name", 1 },
	{ "folder .foo.", NULL, { { ".foo./maildirfolder", NULL, "" } },
	  "'.foo.': not a valid folder name", 1 },
	{ "folder .foo/", NULL, { { ".foo|/maildirfolder", NULL, "" } },
	  "'.foo/': name contains '/'", 1 },
	{ "folder ..", NULL, { { "../cur/00/x", NULL, "" } },
	  "'..': forbidden name", 1 },
	{ "a control character in a folder", NULL,
	  { { ".a\tb/maildirfolder", NULL, "" } },
	  "'.a\\x09b': control character in name", 1 },
	{ "a control character in a message name", NULL,
	  { { "new/{S:a\x01" "b}/a\x01" "b", NULL, "x" } },
	  "'new/{S:a\x01" "b}/a\\x01b': control character in name", 1 },
	{ "a message name starting with '.'", NULL,
	  { { "cur/{S:.x}/.x", NULL, "x" } },
	  "'cur/{S:.x}/.x': invalid message name", 1 },
	{ "an empty key", NULL, { { "cur/{S:}/:2,S", NULL, "x" } },
	  "'cur/{S:}/:2,S': invalid message name", 1 },
	{ "a wrong shard", NULL,
	  { { "cur/{W:" K5 "}/" K5, NULL, "x" } },
	  "'cur/{W:" K5 "}/" K5 "': wrong shard (the key belongs in '{S:" K5 "}')", 1 },
	{ "an upper-case shard", NULL, { { "cur/AB/x", NULL, "x" } },
	  "'cur/AB': unexpected entry (not a shard: two lowercase hex digits)", 1 },
	{ "a three-digit shard", NULL, { { "new/abc/x", NULL, "x" } },
	  "'new/abc': unexpected entry (not a shard: two lowercase hex digits)", 1 },
	{ "a duplicate key in cur and new", NULL,
	  { { "new/{S:" K1 "}/" K1 ",S=5", NULL, "msg1" } },
	  "'new/{S:" K1 "}/" K1 ",S=5': duplicate key (also at 'cur/{S:" K1 "}/"
	  K1 ",S=5:2,S')", 1 },
	{ "a duplicate key as two flag variants", NULL,
	  { { "cur/{S:" K1 "}/" K1 ",S=5:2,T", NULL, "msg1" } },
	  "'cur/{S:" K1 "}/" K1 ",S=5:2,T': duplicate key (also at 'cur/{S:" K1
	  "}/" K1 ",S=5:2,S')", 1 },
	{ "a duplicate key in another folder", NULL,
	  { { ".Trash/cur/{S:" K4 "}/" K4 ":2,ST", NULL, "msg4" } },
	  "'.Trash/cur/{S:" K4 "}/" K4 ":2,ST': duplicate key (also at "
	  "'.Lists.dev/new/{S:" K4 "}/" K4 "')", 1 },
	{ "an executable blob", NULL,
	  { { "cur/{S:" K5 "}/" K5, "100755", "x" } },
	  "'cur/{S:" K5 "}/" K5 "': executable blob", 1 },
	{ "a group-writable blob", NULL,
	  { { "cur/{S:" K5 "}/" K5, "100664", "x" } },
	  "'cur/{S:" K5 "}/" K5 "': bad mode '100664'", 1 },
	{ "a zero-padded tree mode", NULL,
	  { { "cur/{S:" K5 "}/" K5, "040000", NULL } },
	  "'cur/{S:" K5 "}/" K5 "': bad mode '040000'", 1 },
	{ "a tree where a message is expected", NULL,
	  { { "cur/{S:" K5 "}/" K5, "40000", NULL } },
	  "'cur/{S:" K5 "}/" K5 "': expected a blob, found a tree", 1 },
	{ "a tree as FORMAT", "FORMAT", { { "FORMAT/x", NULL, "maildag 1\n" } },
	  "'FORMAT': expected a blob, found a tree", 1 },
	{ "a blob as a folder", NULL, { { ".Trash", NULL, "x" } },
	  "'.Trash': expected a tree, found a blob", 1 },
	{ "a blob as cur", NULL, { { ".Trash/cur", NULL, "x" } },
	  "'.Trash/cur': expected a tree, found a blob", 1 },
	{ "a tree as an mtimes record", NULL, { { "mtimes/{S:" K2 "}", "40000", NULL } },
	  "'mtimes/{S:" K2 "}': expected a blob, found a tree", 1 },
	{ "a tree under a shard", NULL, { { "cur/00/x/y", NULL, "x" } },
	  "'cur/00/x': expected a blob, found a tree", 1 },
	{ "no FORMAT", "FORMAT", { { NULL } }, "'FORMAT': missing", 1 },
	{ "FORMAT maildag 2", "FORMAT", { { "FORMAT", NULL, "maildag 2\n" } },
	  "'FORMAT': format 2 (maildag 2), and this repository is format 1 (maildag 1): 'maildag upgrade' makes it format 2", 1 },
	{ "FORMAT maildag 10", "FORMAT", { { "FORMAT", NULL, "maildag 10\n" } },
	  "'FORMAT': format 'maildag 10' is newer than this maildag understands", 1 },
	{ "FORMAT without newline", "FORMAT", { { "FORMAT", NULL, "maildag 1" } },
	  "'FORMAT': not a maildag format 1 file (want \"maildag 1\")", 1 },
	{ "FORMAT maildag 0", "FORMAT", { { "FORMAT", NULL, "maildag 0\n" } },
	  "'FORMAT': not a maildag format 1 file (want \"maildag 1\")", 1 },
	{ "FORMAT something else", "FORMAT", { { "FORMAT", NULL, "ref: x\n" } },
	  "'FORMAT': not a maildag format 1 file (want \"maildag 1\")", 1 },
	{ "FORMAT executable", "FORMAT", { { "FORMAT", "100755", "maildag 1\n" } },
	  "'FORMAT': executable blob", 1 },
	{ "an unknown root file", NULL, { { "README", NULL, "x" } },
	  "'README': unexpected entry", 1 },
	{ "tmp/ at the root", NULL, { { "tmp/x", NULL, "x" } },
	  "'tmp': unexpected entry", 1 },
	{ "tmp/ in a folder", NULL, { { ".Sent/tmp/x", NULL, "x" } },
	  "'.Sent/tmp': unexpected entry", 1 },
	{ "dovecot index files", NULL, { { "dovecot.index", NULL, "x" } },
	  "'dovecot.index': unexpected entry", 1 },
	{ "maildirfolder in INBOX", NULL, { { "maildirfolder", NULL, "" } },
	  "'maildirfolder': unexpected entry", 1 },
	{ "a non-empty folder marker", ".Sent/maildirfolder",
	  { { ".Sent/maildirfolder", NULL, "x" } },
	  "'.Sent/maildirfolder': folder marker is not empty", 1 },
	{ "a missing message blob", NULL,
	  { { "cur/{S:" K5 "}/" K5, NULL, NULL } },
	  "'cur/{S:" K5 "}/" K5 "': missing blob 0123456789abcdef0123456789abcdef01234567", 1 },
	{ "a message that is a commit id", NULL,
	  { { "cur/{S:" K5 "}/" K5, "160000", NULL } },
	  "'cur/{S:" K5 "}/" K5 "': gitlink (submodule)", 1 },
	{ "an mtimes line with a leading zero", "mtimes/{S:" K1 "}",
	  { { "mtimes/{S:" K1 "}", NULL, K1 " 0160\n" } },
	  "'mtimes/{S:" K1 "}': line 1: time is not canonical decimal", 1 },
	{ "an mtimes line without newline", "mtimes/{S:" K1 "}",
	  { { "mtimes/{S:" K1 "}", NULL, K1 " 160" } },
	  "'mtimes/{S:" K1 "}': line 1: no newline at the end", 1 },
	{ "an mtimes line in the wrong shard", NULL,
	  { { "mtimes/{W:" K2 "}", NULL, K2 " 160\n" } },
	  "'mtimes/{W:" K2 "}': line 1: key belongs in shard '{S:" K2 "}'", 1 },
	{ "an mtimes line with a whole name", "mtimes/{S:" K1 "}",
	  { { "mtimes/{S:" K1 "}", NULL, K1 ":2,S 160\n" } },
	  "'mtimes/{S:" K1 "}': line 1: invalid key", 1 },
	{ "an mtimes line with time -0", "mtimes/{S:" K1 "}",
	  { { "mtimes/{S:" K1 "}", NULL, K1 " -0\n" } },
	  "'mtimes/{S:" K1 "}': line 1: time is not canonical decimal", 1 },
	{ "an mtimes record equal to the key's time", "mtimes/{S:" K1 "}",
	  { { "mtimes/{S:" K1 "}", NULL, K1 " 1700000000\n" } },
	  "'mtimes/{S:" K1 "}': line 1: record not needed (the time is the key's)", 1 },
	{ "an empty mtimes record", NULL, { { "mtimes/00", NULL, "" } },
	  "'mtimes/00': empty record (a shard without records has no blob)", 1 },
	{ "an mtimes record of no message", NULL,
	  { { "mtimes/{S:" K5 "}", NULL, K5 " 1\n" } },
	  "'mtimes/{S:" K5 "}': line 1: no message with key '" K5 "'", 1 },
	{ "an mtimes record left behind by an expunge", "cur/{S:" K1 "}/" K1 ",S=5:2,S",
	  { { NULL } },
	  "'mtimes/{S:" K1 "}': line 1: no message with key '" K1 "'", 1 },
	{ "mtimes lines twice", "mtimes/{S:" K1 "}",
	  { { "mtimes/{S:" K1 "}", NULL, K1 " 1\n" K1 " 2\n" } },
	  "'mtimes/{S:" K1 "}': line 2: duplicate key", 1 },
	{ "an mtimes record named oddly", NULL, { { "mtimes/x", NULL, "" } },
	  "'mtimes/x': unexpected entry (not a shard: two lowercase hex digits)", 1 },
	{ "an mtimes tree in a folder", NULL, { { ".Sent/mtimes/00", NULL, "" } },
	  "'.Sent/mtimes': unexpected entry", 1 },
};

/* --- helpers ------------------------------------------------------------------ */

static char *check(const struct oid *tree, const struct oid *trusted, int *ret)
{
	struct strbuf err = STRBUF_INIT;

	*ret = format_check_tree(repo, tree, trusted, &err);
	return strbuf_detach(&err, NULL);
}

static int want_match(const char *got, const char *want)
{
	size_t n = strlen(want);

	if (n && want[n - 1] == '*')
		return !strncmp(got, want, n - 1);
	return !strcmp(got, want);
}

/* Every ref and its target, one per line. */
static char *refs_snapshot(void)
{
	struct strbuf out;
	git_reference_iterator *it;
	git_reference *ref;

	strbuf_init(&out, 256);
	if (git_reference_iterator_new(&it, repo->git) < 0)
		return xstrdup("?");
	while (git_reference_next(&ref, it) == 0) {
		const struct oid *id = OID(git_reference_target(ref));
		strbuf_addf(&out, "%s %s\n", git_reference_name(ref),
			    id ? oid_hex(id) : git_reference_symbolic_target(ref));
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	return strbuf_detach(&out, NULL);
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	while (d && (de = readdir(d))) {
		char *p;
		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		n += de->d_type == DT_DIR ? count_files(p) : 1;
		free(p);
	}
	if (d)
		closedir(d);
	return n;
}

static void raw_entry(struct raw *e, const char *mode, const char *name,
		      size_t nlen, const struct oid *id)
{
	e->mode = mode;
	e->name = (char *)name;
	e->nlen = nlen;
	e->id = *id;
}

/* A root tree: FORMAT plus the given entries, written as given. */
static void raw_root(struct oid *out, const struct raw *extra, size_t n,
		     int format_last)
{
	struct raw e[8];
	size_t k = 0;
	struct oid fmt;

	write_blob(&fmt, FORMAT_CONTENT);
	if (!format_last)
		raw_entry(&e[k++], "100644", "FORMAT", 6, &fmt);
	for (size_t i = 0; i < n; i++)
		e[k++] = extra[i];
	if (format_last)
		raw_entry(&e[k++], "100644", "FORMAT", 6, &fmt);
	write_raw(out, e, k);
}

static void problem_count(const char *path, const char *reason, void *data)
{
	struct strbuf *sb = data;

	strbuf_addf(sb, "'%s': %s\n", path, reason);
}

static int count_message(const char *path, const char *folder, const char *sub,
			 const char *name, const struct oid *blob, void *data)
{
	(*(int *)data)++;
	return 0;
}

/* --- the tests ------------------------------------------------------------------ */

static void test_table(const struct oid *base_tree)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct tcase *c = &cases[i];
		char *want = c->want ? expand(c->want) : NULL;
		struct oid tree;
		char *full, *incr;
		int r1, r2;

		make_tree(&tree, c->remove, c->add);
		full = check(&tree, NULL, &r1);
		incr = check(&tree, base_tree, &r2);
		if (!want) {
			is_int(r1, 0, "%s: valid", c->title);
			if (r1)
				diag("%s", full);
			is_int(r2, 0, "%s: valid against the base", c->title);
			if (r2)
				diag("%s", incr);
		} else {
			is_int(r1, E_INVALID, "%s: refused", c->title);
			ok(want_match(full, want), "%s: message", c->title);
			if (!want_match(full, want))
				diag("got  %s\n# want %s", full, want);
			is_int(r2, E_INVALID, "%s: refused against the base", c->title);
			if (c->same_incremental)
				ok(want_match(incr, want),
				   "%s: same message against the base: %s", c->title,
				   incr);
		}
		free(full);
		free(incr);
		free(want);
	}
}

/* Trees libgit2's tree builder would not write, made byte by byte. */
static void test_raw(void)
{
	struct oid blob, sub, tree, empty;
	struct raw e[4];
	char *msg;
	int r;

	write_blob(&blob, "x");
	write_blob(&empty, "");

	/* entries out of order */
	raw_entry(&e[0], "100644", "subscriptions", 13, &blob);
	raw_root(&tree, e, 1, 1);
	msg = check(&tree, NULL, &r);
	is_int(r, E_INVALID, "entries out of order are refused");
	is_str(msg, "'FORMAT': entry out of order", "... naming the entry");
	free(msg);

	/* the same name twice */
	raw_entry(&e[0], "100644", "subscriptions", 13, &blob);
	raw_entry(&e[1], "100644", "subscriptions", 13, &empty);
	raw_root(&tree, e, 2, 0);
	msg = check(&tree, NULL, &r);
	is_str(msg, "'subscriptions': duplicate entry", "a duplicate entry is refused");
	free(msg);

	/* a name as a blob and as a tree */
	write_raw(&sub, NULL, 0);
	raw_entry(&e[0], "100644", "cur", 3, &blob);
	raw_entry(&e[1], "40000", "cur", 3, &sub);
	raw_root(&tree, e, 2, 0);
	msg = check(&tree, NULL, &r);
	is_str(msg, "'cur': expected a tree, found a blob",
	       "cur as a blob and a tree is refused");
	free(msg);

	/* an empty name */
	raw_entry(&e[0], "100644", "", 0, &blob);
	raw_root(&tree, e, 1, 1);
	msg = check(&tree, NULL, &r);
	is_str(msg, "root tree: empty name", "an empty name is refused");
	free(msg);

	/* a name that is only "/" */
	raw_entry(&e[0], "100644", "/", 1, &blob);
	raw_root(&tree, e, 1, 1);
	msg = check(&tree, NULL, &r);
	is_str(msg, "'/': name contains '/'", "the name '/' is refused");
	free(msg);

	/* a mode that is not a number */
	raw_entry(&e[0], "10x644", "subscriptions", 13, &blob);
	raw_root(&tree, e, 1, 0);
	msg = check(&tree, NULL, &r);
	is_str(msg, "'subscriptions': bad mode '10x644'", "a non-octal mode is refused");
	free(msg);

	/* corrupt tree bytes */
	if (git_odb_write(GIT_OID(&tree), odb, "100644 FORMAT\0abc", 17, GIT_OBJECT_TREE) < 0)
		log_fatal("write: %s", repo_git_error());
	msg = check(&tree, NULL, &r);
	is_int(r, E_INVALID, "a truncated tree object is refused");
	is_str(msg, "root tree: corrupt tree object: truncated object id",
	       "... saying so");
	free(msg);

	/* the root is a blob */
	msg = check(&blob, NULL, &r);
	is_int(r, E_INVALID, "a blob as the root is refused");
	ok(strstr(msg, "is a blob, not a tree") != NULL, "... saying so: %s", msg);
	free(msg);

	/* a missing root */
	missing_id(&tree);
	msg = check(&tree, NULL, &r);
	is_int(r, E_INVALID, "a missing root is refused");
	ok(!strncmp(msg, "root tree: missing tree", 23), "... saying so: %s", msg);
	free(msg);

	/* a message entry naming a tree object */
	{
		char hex[3];
		struct raw m, s, c;
		maildir_shard_hex(hex, K5, strlen(K5));
		raw_entry(&m, "100644", K5, strlen(K5), &sub);
		write_raw(&s.id, &m, 1);
		raw_entry(&s, "40000", hex, 2, &s.id);
		write_raw(&c.id, &s, 1);
		raw_entry(&c, "40000", "cur", 3, &c.id);
		raw_root(&tree, &c, 1, 0);
		msg = check(&tree, NULL, &r);
		ok(strstr(msg, "is a tree, not a blob") != NULL,
		   "a message naming a tree object is refused: %s", msg);
		free(msg);
	}
	(void)empty;
}

/* What changed since a trusted tree is all that is checked. */
static void test_incremental(const struct oid *base_tree)
{
	static const struct fent bad_add[] = {
		{ ".Sent/tmp/x", NULL, "unchecked" }, { NULL, NULL, NULL },
	};
	static const struct fent bad_more[] = {
		{ ".Sent/tmp/x", NULL, "unchecked" },
		{ "new/{S:" K5 "}/" K5, NULL, "m5" }, { NULL, NULL, NULL },
	};
	static const struct fent moved[] = {
		{ ".Sent/cur/{S:" K1 "}/" K1 ",S=5:2,ST", NULL, "msg1" },
		{ NULL, NULL, NULL },
	};
	static const struct fent dup_new_folder[] = {
		{ ".New/new/{S:" K3 "}/" K3, NULL, "msg3" }, { NULL, NULL, NULL },
	};
	struct oid bad, bad2, t;
	char *msg;
	int r;

	msg = check(base_tree, base_tree, &r);
	is_int(r, 0, "a tree equal to the trusted one is valid");
	free(msg);

	make_tree(&bad, NULL, bad_add);
	make_tree(&bad2, NULL, bad_more);
	msg = check(&bad2, &bad, &r);
	is_int(r, 0, "an unchanged part is not checked again");
	free(msg);
	msg = check(&bad2, NULL, &r);
	is_int(r, E_INVALID, "... but is without a trusted tree");
	free(msg);

	/* a move: one key leaves cur, arrives in .Sent */
	make_tree(&t, "cur/{S:" K1 "}/" K1 ",S=5:2,S", moved);
	msg = check(&t, base_tree, &r);
	is_int(r, 0, "a move to another folder is valid against the base");
	free(msg);
	msg = check(&t, NULL, &r);
	is_int(r, 0, "... and on its own");
	free(msg);

	/* a shard tree emptied, its record left: found from the trusted side */
	{
		static const struct fent plus5[] = {
			{ "cur/{S:" K5 "}/" K5, NULL, "m5" }, { NULL, NULL, NULL },
		};
		static const char *const rm1[] = {
			"cur/{S:" K1 "}/" K1 ",S=5:2,S", NULL,
		};
		static const struct fent rec3[] = {
			{ "mtimes/{S:" K3 "}", NULL, K3 " 5\n" }, { NULL, NULL, NULL },
		};
		static const struct fent rec3_gone[] = {
			{ "mtimes/{S:" K3 "}", NULL, K3 " 5\n" },
			{ "cur/{S:" K5 "}/" K5, NULL, "m5" }, { NULL, NULL, NULL },
		};
		static const char *const rm_sent[] = {
			".Sent/maildirfolder", ".Sent/cur/{S:" K3 "}/" K3 ",S=5:2,RS",
			NULL,
		};
		struct oid a, b;
		char *want;

		ok(maildir_shard(K1, strlen(K1)) != maildir_shard(K5, strlen(K5)),
		   "K1 and K5 are in different shards");
		make_tree(&a, NULL, plus5);
		make_tree2(&b, rm1, plus5);
		msg = check(&b, &a, &r);
		want = expand("'mtimes/{S:" K1 "}': line 1: no message with key '" K1 "'");
		is_str(msg, want, "an emptied shard's record is found against the trusted tree");
		free(want);
		free(msg);

		make_tree(&a, NULL, rec3);
		msg = check(&a, base_tree, &r);
		is_int(r, 0, "a record of a message in a folder is valid");
		free(msg);
		make_tree2(&b, rm_sent, rec3_gone);
		msg = check(&b, &a, &r);
		want = expand("'mtimes/{S:" K3 "}': line 1: no message with key '" K3 "'");
		is_str(msg, want, "a deleted folder's record is found against the trusted tree");
		free(want);
		free(msg);
	}

	make_tree(&t, NULL, dup_new_folder);
	msg = check(&t, base_tree, &r);
	is_int(r, E_INVALID, "a key copied into a new folder is a duplicate");
	{
		char *want = expand("'.New/new/{S:" K3 "}/" K3 "': duplicate key "
				    "(also at '.Sent/cur/{S:" K3 "}/" K3 ",S=5:2,RS')");
		is_str(msg, want, "... naming both places");
		free(want);
	}
	free(msg);
}

static void test_commit(const struct oid *base_tree)
{
	static const struct fent add[] = {
		{ "new/{S:" K5 "}/" K5, NULL, "m5" }, { NULL, NULL, NULL },
	};
	static const struct fent bad_add[] = {
		{ "cur/{S:..}/..", NULL, "x" }, { NULL, NULL, NULL },
	};
	struct strbuf err = STRBUF_INIT;
	struct oid c1, c2, c3, t;

	if (repo_commit(&c1, repo, base_tree, NULL, 0, "base\n", 1, NULL, NULL) < 0)
		log_fatal("commit");
	make_tree(&t, NULL, add);
	if (repo_commit(&c2, repo, &t, &c1, 1, "add\n", 2, NULL, NULL) < 0)
		log_fatal("commit");
	make_tree(&t, NULL, bad_add);
	if (repo_commit(&c3, repo, &t, &c1, 1, "bad\n", 2, NULL, NULL) < 0)
		log_fatal("commit");
	is_int(format_check_commit(repo, &c1, NULL, &err), 0, "a valid commit");
	is_int(format_check_commit(repo, &c2, &c1, &err), 0,
	       "a valid commit against its parent");
	is_int(format_check_commit(repo, &c3, &c1, &err), E_INVALID,
	       "an invalid commit against its parent");
	{
		char *want = expand("'cur/{S:..}/..': forbidden name");
		is_str(err.buf, want, "... with a message");
		free(want);
	}
	strbuf_reset(&err);
	missing_id(&t);
	is_int(format_check_commit(repo, &t, NULL, &err), E_INVALID,
	       "a missing commit");
	ok(strstr(err.buf, "missing") != NULL, "... saying so: %s", err.buf);
	strbuf_release(&err);
}

static void test_fsck_and_walk(const struct oid *base_tree)
{
	static const struct fent bad[] = {
		{ "README", NULL, "x" },
		{ "cur/{S:" K5 "}/" K5, "120000", "/etc/passwd" },
		{ "new/{S:" K1 "}/" K1, NULL, "dup" }, { NULL, NULL, NULL },
	};
	struct strbuf out;
	struct format_stats st;
	struct oid t;
	int n = 0;

	strbuf_init(&out, 256);
	is_int(format_fsck_tree(repo, base_tree, problem_count, &out, &st), 0,
	       "fsck: the base tree has no problem");
	is_int((long long)st.messages, 4, "fsck: 4 messages");
	is_int((long long)st.folders, 3, "fsck: 3 folders with INBOX");
	is_int((long long)st.mtimes, 1, "fsck: 1 mtimes record line");
	make_tree(&t, NULL, bad);
	is_int(format_fsck_tree(repo, &t, problem_count, &out, NULL), 3,
	       "fsck: three problems found");
	ok(strstr(out.buf, "'README': unexpected entry\n") &&
	   strstr(out.buf, "symbolic link\n") && strstr(out.buf, "duplicate key"),
	   "fsck: each reported");
	diag("%s", out.buf);
	strbuf_release(&out);

	is_int(format_foreach_message(repo, base_tree, count_message, &n), 0,
	       "walk: returns 0");
	is_int(n, 4, "walk: every message once");
}

static void test_mtimes(void)
{
	static const struct {
		const char *key_for_shard, *content, *want;
	} m[] = {
		{ K1, "", "empty record (a shard without records has no blob)" },
		{ K1, K1 " 0\n", NULL },
		{ K1, K1 " -1700000000\n", NULL },
		{ K1, K1 " 999999999999999999\n", NULL },
		{ K1, K1 " 1000000000000000000\n", "line 1: time is not canonical decimal" },
		{ K1, K1 " 1700000000\n", "line 1: record not needed (the time is the key's)" },
		{ "abc", "abc -1\n", "line 1: record not needed (the time is the key's)" },
		{ K1, K1 " 1\r\n", "line 1: time is not canonical decimal" },
		{ K1, K1 "\n", "line 1: no space before the time" },
		{ K1, K1 " \n", "line 1: time is not canonical decimal" },
		{ K1, K1 " 1\n\n", "line 2: no space before the time" },
		{ K1, " 1\n", "line 1: invalid key" },
		{ K1, K1 " +1\n", "line 1: time is not canonical decimal" },
		{ "a", "a b 12\n", "line 1: time is not canonical decimal" },
		{ K1, K1 ",S=1 12\n", "line 1: invalid key" },
		{ K2, K2 " 12\n", NULL },
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		struct strbuf err = STRBUF_INIT;
		char xx[3];
		int r;

		maildir_shard_hex(xx, m[i].key_for_shard, strlen(m[i].key_for_shard));
		r = format_mtimes_check(m[i].content, strlen(m[i].content), xx, &err);
		if (m[i].want) {
			is_int(r, E_INVALID, "mtimes %zu refused", i);
			is_str(err.buf, m[i].want, "mtimes %zu message", i);
		} else {
			is_int(r, 0, "mtimes %zu valid", i);
		}
		strbuf_release(&err);
	}
	/* two keys of one shard, in order and not */
	{
		char a[64], b[64], xx[3], yy[3], buf[160];
		struct strbuf err = STRBUF_INIT;
		int i = 0, found = 0;
		maildir_shard_hex(xx, "k0", 2);
		snprintf(a, sizeof a, "k0");
		for (i = 1; i < 100000 && !found; i++) {
			snprintf(b, sizeof b, "k%d", i);
			maildir_shard_hex(yy, b, strlen(b));
			found = !strcmp(xx, yy);
		}
		snprintf(buf, sizeof buf, "%s 1\n%s 2\n", a, b);
		is_int(format_mtimes_check(buf, strlen(buf), xx, &err), 0,
		       "mtimes: two sorted keys");
		snprintf(buf, sizeof buf, "%s 1\n%s 2\n", b, a);
		is_int(format_mtimes_check(buf, strlen(buf), xx, &err), E_INVALID,
		       "mtimes: two keys out of order");
		is_str(err.buf, "line 2: keys not sorted", "... saying so");
		strbuf_release(&err);
	}
}

/*
 * Regression, found by fuzz-tree under UBSan: the first line written into
 * a caller's STRBUF_INIT buffer went through strbuf_addf(), which adds 0
 * to its null pointer.
 */
static void test_fresh_err_buffer(const struct oid *base_tree)
{
	static const struct fent bad[] = {
		{ "README", NULL, "x" }, { NULL, NULL, NULL },
	};
	struct strbuf err = STRBUF_INIT;
	struct oid t;

	make_tree(&t, NULL, bad);
	is_int(format_check_tree(repo, &t, NULL, &err), E_INVALID,
	       "a refusal into a fresh buffer");
	is_str(err.buf, "'README': unexpected entry", "... is written whole");
	strbuf_release(&err);
	is_int(format_mtimes_check("x", 1, "00", &err), E_INVALID,
	       "an mtimes refusal into a fresh buffer");
	is_str(err.buf, "line 1: no newline at the end", "... is written whole");
	strbuf_release(&err);
}

/* Check tree against trusted under limits l; the first problem, or "". */
static char *check_lim(const struct format_limits *l, const struct oid *tree,
		       const struct oid *trusted, int *ret)
{
	struct format_limits saved = *format_get_limits();
	char *msg;

	format_set_limits(l);
	msg = check(tree, trusted, ret);
	format_set_limits(&saved);
	return msg;
}

static void lim_case(const struct format_limits *l, const struct oid *tree,
		     const struct oid *trusted, const char *want, const char *title)
{
	char *msg, *w = want ? expand(want) : NULL;
	int r;

	msg = check_lim(l, tree, trusted, &r);
	is_int(r, want ? E_INVALID : 0, "%s", title);
	if (want && want_match(msg, w))
		ok(1, "... %s", w);
	else if (want)
		is_str(msg, w, "... %s", w);
	free(w);
	free(msg);
}

static void test_limits(const struct oid *base_tree)
{
	static const struct fent ten[] = {
		{ "new/{S:" K5 "}/" K5, NULL, "0123456789" }, { NULL, NULL, NULL },
	};
	static const struct fent moved[] = {
		{ ".Sent/cur/{S:" K1 "}/" K1 ",S=5:2,ST", NULL, "msg1" },
		{ NULL, NULL, NULL },
	};
	static const struct fent folder[] = {
		{ ".New/maildirfolder", NULL, "" }, { NULL, NULL, NULL },
	};
	const struct format_limits def = *format_get_limits();
	struct format_limits l;
	struct oid t, mv, nf, huge, c0, c1, c2;
	unsigned long long n;
	char *name;

	is_int((long long)def.message_bytes, 64ll << 20, "default size_limit 64 MiB");
	make_tree(&t, NULL, ten);
	make_tree(&mv, "cur/{S:" K1 "}/" K1 ",S=5:2,S", moved);
	make_tree(&nf, NULL, folder);

	/* size_limit: the new message has 10 bytes */
	l = def;
	l.message_bytes = 10;
	lim_case(&l, &t, NULL, NULL, "size_limit: a message at the limit");
	lim_case(&l, &t, base_tree, NULL, "... against a trusted tree");
	l.message_bytes = 9;
	lim_case(&l, &t, NULL, "'new/{S:" K5 "}/" K5 "': message of 10 bytes, "
		 "more than size_limit (9)", "size_limit: one byte over");
	lim_case(&l, &t, base_tree, "'new/{S:" K5 "}/" K5 "': message of 10 bytes, "
		 "more than size_limit (9)", "... against a trusted tree");

	/* subscriptions_limit: "Sent\nLists.dev\n" is 15 bytes */
	l = def;
	l.subscriptions_bytes = 15;
	lim_case(&l, base_tree, NULL, NULL, "subscriptions_limit: at the limit");
	l.subscriptions_bytes = 14;
	lim_case(&l, base_tree, NULL, "'subscriptions': 15 bytes, more than "
		 "subscriptions_limit (14)", "subscriptions_limit: one byte over");

	/* tree_entries_limit: the root holds 7 entries */
	l = def;
	l.tree_entries = 7;
	lim_case(&l, base_tree, NULL, NULL, "tree_entries_limit: at the limit");
	l.tree_entries = 6;
	lim_case(&l, base_tree, NULL, "root tree: more than tree_entries_limit "
		 "(6) entries", "tree_entries_limit: one entry over");
	/* the header alone: bytes no 7 valid entries can take */
	{
		struct raw e[2];
		struct oid blob;
		/* FORMAT's entry is 34 bytes, this one's 28 and its name */
		size_t len = 7 * (7 + 255 + 1 + 20) + 1 - 34 - 28;
		name = xmalloc(len + 1);
		memset(name, 'a', len);
		name[len] = '\0';
		write_blob(&blob, "x");
		raw_entry(&e[0], "100644", name, len, &blob);
		raw_root(&huge, e, 1, 0);
		l.tree_entries = 7;
		lim_case(&l, &huge, NULL, "root tree: tree of 1982 bytes: more "
			 "entries than tree_entries_limit (7) allows",
			 "tree_entries_limit: a tree too large for it, by its header");
		l = def;
		lim_case(&l, &huge, NULL, "'aaaa*", "... else refused for its name");
		free(name);
	}

	/* folder_limit: INBOX, .Sent, .Lists.dev */
	l = def;
	l.folders = 3;
	lim_case(&l, base_tree, NULL, NULL, "folder_limit: at the limit");
	lim_case(&l, &nf, base_tree, "root tree: more than folder_limit (3) folders",
		 "folder_limit: one folder over, against a trusted tree");
	l.folders = 2;
	lim_case(&l, base_tree, NULL, "root tree: more than folder_limit (2) folders",
		 "folder_limit: one folder over");

	/* fsck: said once, and merge_limit is not fsck's */
	{
		struct strbuf out = STRBUF_INIT;
		l = def;
		l.folders = 1;
		l.merge_bytes = 1;
		format_set_limits(&l);
		is_int(format_fsck_tree(repo, base_tree, problem_count, &out, NULL), 1,
		       "fsck: two folders over folder_limit, one problem");
		is_str(out.buf, "'': more than folder_limit (1) folders\n",
		       "... the folder limit");
		format_set_limits(&def);
		strbuf_release(&out);
	}

	/* merge_limit: 10 new bytes; a moved message adds none */
	l = def;
	l.merge_bytes = 10;
	lim_case(&l, &t, base_tree, NULL, "merge_limit: at the limit");
	l.merge_bytes = 9;
	lim_case(&l, &t, base_tree, "root tree: adds 10 bytes of messages, more "
		 "than merge_limit (9)", "merge_limit: one byte over");
	l.merge_bytes = 15;
	lim_case(&l, base_tree, NULL, "root tree: adds 16 bytes of messages, more "
		 "than merge_limit (15)", "merge_limit: without a trusted tree, every message");
	l.merge_bytes = 1;
	lim_case(&l, &mv, base_tree, NULL,
		 "merge_limit: a message moved and its flags changed adds nothing");

	/* format_added_bytes(), by commits */
	if (repo_commit(&c0, repo, base_tree, NULL, 0, "base\n", 1, NULL, NULL) < 0 ||
	    repo_commit(&c1, repo, &t, &c0, 1, "ten\n", 2, NULL, NULL) < 0 ||
	    repo_commit(&c2, repo, &mv, &c0, 1, "moved\n", 2, NULL, NULL) < 0)
		log_fatal("commit");
	is_int(format_added_bytes(&n, repo, &c1, &c0), 0, "added bytes: a message");
	is_int((long long)n, 10, "... 10");
	is_int(format_added_bytes(&n, repo, &c2, &c0), 0, "added bytes: a move");
	is_int((long long)n, 0, "... 0");
	is_int(format_added_bytes(&n, repo, &c1, NULL), 0, "added bytes: all");
	is_int((long long)n, 26, "... 26");
	is_int(format_added_bytes(&n, repo, &c0, &c0), 0, "added bytes: none");
	is_int((long long)n, 0, "... 0");
}

static void test_escape(void)
{
	struct strbuf sb = STRBUF_INIT;

	format_escape(&sb, "a\x01" "b\\c\xff\x7f", 7);
	is_str(sb.buf, "a\\x01b\\x5cc\\xff\\x7f", "escape: controls, backslash, high bytes");
	strbuf_release(&sb);
}

int main(void)
{
	char dir[] = "/tmp/format-t.XXXXXX", *path, *before, *after, *objects;
	struct oid base_tree;
	size_t nobj;

	log_init("format-t", LOG_TO_STDERR, LOG_LVL_WARN);
	if (!mkdtemp(dir))
		log_fatal("mkdtemp");
	path = xasprintf("%s/mail.git", dir);
	if (repo_open(&repo, path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		log_fatal("cannot create a repository");
	if (git_repository_odb(&odb, repo->git) < 0)
		log_fatal("odb");
	make_tree(&base_tree, NULL, NULL);

	/* write every object the tests need first, then check read-only */
	before = refs_snapshot();
	objects = xasprintf("%s/objects", path);
	test_table(&base_tree);
	test_raw();
	test_incremental(&base_tree);
	test_fsck_and_walk(&base_tree);
	test_mtimes();
	test_escape();
	test_fresh_err_buffer(&base_tree);
	nobj = count_files(objects);
	{
		struct oid t;
		struct strbuf err = STRBUF_INIT;
		make_tree(&t, NULL, cases[20].add);
		nobj = count_files(objects);
		format_check_tree(repo, &t, NULL, &err);
		format_check_tree(repo, &t, &base_tree, &err);
		is_int((long long)count_files(objects), (long long)nobj,
		       "validation writes no object");
		strbuf_release(&err);
	}
	after = refs_snapshot();
	is_str(after, before, "validation leaves the refs untouched");
	test_commit(&base_tree);
	test_limits(&base_tree);

	free(before);
	free(after);
	free(objects);
	git_odb_free(odb);
	repo_free(repo);
	rm_rf(dir);
	free(path);
	git_libgit2_shutdown();
	return tap_done();
}
