/*
 * mkseeds: write the seed corpora of the fuzz targets.
 *
 *	mkseeds NAME-DIR TREE-DIR
 *
 * NAME-DIR gets typical and odd Maildir file and folder names, TREE-DIR
 * mailbox trees in the chunk encoding of fuzz.h: the base mailbox itself,
 * valid changes of it, and one of each kind of invalid tree.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "maildir_name.h"
#include "strbuf.h"
#include "xalloc.h"

static const char *const names[] = {
	FUZZ_N1, FUZZ_N2, FUZZ_K3,
	"1700000000.M123456P4242R0123456789abcdefQ1.mx1.example.org,S=2211,W=2260:2,FRS",
	"1700000000.M1P1.host:2,", "1700000000.M1P1.host:2,TSRFDP", "k,", "k:1,xyz",
	"a\\054b\\072c:2,RS", "05:2,", ".hidden", ":2,S", ",S=12", "a/b", "git~1",
	"GIT~1:2,S", "k:2,SSaa\xc3\xa9", "INBOX", "INBOX.Lists.dev", "Lists/dev",
	".Sent", ".Lists.dev", ".a..b", ".", "..", ".git", ".GIT.", ".g\xe2\x80\x8cit",
	"../x", "",
};

static void write_file(const char *dir, const char *kind, int n,
		       const char *p, size_t len)
{
	char *path = xasprintf("%s/%s-%02d", dir, kind, n);
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	free(path);
}

/* One tree entry naming reference ref (a chunk number or a FUZZ_ id). */
static void ent(struct strbuf *c, const char *mode, const char *name, int ref)
{
	strbuf_addf(c, "%s %s", mode, name);
	strbuf_addch(c, '\0');
	for (int i = 0; i < FUZZ_REF_LEN; i++)
		strbuf_addch(c, FUZZ_REF);
	strbuf_addch(c, ref);
}

static void sep(struct strbuf *c, char type)
{
	strbuf_add(c, FUZZ_SEP, FUZZ_SEP_LEN);
	strbuf_addch(c, type);
}

static const char *shard(const char *key)
{
	static char hex[8][3];
	static int i;

	i = (i + 1) % 8;
	maildir_shard_hex(hex[i], key, strlen(key));
	return hex[i];
}

int main(int argc, char **argv)
{
	struct strbuf c = STRBUF_INIT;
	int n = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: mkseeds NAME-DIR TREE-DIR\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		write_file(argv[1], "name", (int)i, names[i], strlen(names[i]));

	/* the base mailbox, byte for byte: its root id is the trusted one */
	strbuf_addch(&c, 'T');
	ent(&c, "40000", ".Sent", 1);
	ent(&c, "100644", "FORMAT", FUZZ_FORMAT);
	ent(&c, "40000", "cur", 2);
	ent(&c, "40000", "mtimes", 3);
	ent(&c, "100644", "subscriptions", FUZZ_MSG);
	sep(&c, 'T');
	ent(&c, "40000", "cur", 4);
	ent(&c, "100644", "maildirfolder", FUZZ_EMPTY);
	sep(&c, 'T');
	ent(&c, "40000", shard(FUZZ_K1), 5);
	sep(&c, 'T');
	ent(&c, "100644", shard(FUZZ_K1), 6);
	sep(&c, 'T');
	ent(&c, "40000", shard(FUZZ_K2), 7);
	sep(&c, 'T');
	ent(&c, "100644", FUZZ_N1, FUZZ_MSG);
	sep(&c, 'B');
	strbuf_addstr(&c, FUZZ_MTIMES_K1);
	sep(&c, 'T');
	ent(&c, "100644", FUZZ_N2, FUZZ_MSG);
	write_file(argv[2], "tree", n++, c.buf, c.len);

	/* valid: the base plus a message in new/, sharing the base's trees */
	strbuf_reset(&c);
	strbuf_addch(&c, 'T');
	ent(&c, "40000", ".Sent", FUZZ_BASE_SENT);
	ent(&c, "100644", "FORMAT", FUZZ_FORMAT);
	ent(&c, "40000", "cur", FUZZ_BASE_CUR);
	ent(&c, "40000", "mtimes", FUZZ_BASE_MTIMES);
	ent(&c, "40000", "new", 1);
	ent(&c, "100644", "subscriptions", FUZZ_MSG);
	sep(&c, 'T');
	ent(&c, "40000", shard(FUZZ_K3), 2);
	sep(&c, 'T');
	ent(&c, "100644", FUZZ_K3, FUZZ_MSG);
	write_file(argv[2], "tree", n++, c.buf, c.len);

	/* invalid: K1 again, in new/ */
	strbuf_reset(&c);
	strbuf_addch(&c, 'T');
	ent(&c, "40000", ".Sent", FUZZ_BASE_SENT);
	ent(&c, "100644", "FORMAT", FUZZ_FORMAT);
	ent(&c, "40000", "cur", FUZZ_BASE_CUR);
	ent(&c, "40000", "new", 1);
	sep(&c, 'T');
	ent(&c, "40000", shard(FUZZ_K1), FUZZ_BASE_SHARD);
	write_file(argv[2], "tree", n++, c.buf, c.len);

	/* invalid: a shard of bad entries */
	strbuf_reset(&c);
	strbuf_addch(&c, 'T');
	ent(&c, "100644", "FORMAT", FUZZ_FORMAT);
	ent(&c, "40000", "cur", 1);
	sep(&c, 'T');
	ent(&c, "40000", shard(".."), 2);
	sep(&c, 'T');
	ent(&c, "100644", "..", FUZZ_MSG);
	ent(&c, "120000", "link", FUZZ_MSG);
	ent(&c, "160000", "sub", FUZZ_BASE);
	ent(&c, "100755", "x", FUZZ_MSG);
	write_file(argv[2], "tree", n++, c.buf, c.len);

	/* invalid: GIT~1 as a message, in its right shard */
	strbuf_reset(&c);
	strbuf_addch(&c, 'T');
	ent(&c, "100644", "FORMAT", FUZZ_FORMAT);
	ent(&c, "40000", "new", 1);
	sep(&c, 'T');
	ent(&c, "40000", shard("GIT~1"), 2);
	sep(&c, 'T');
	ent(&c, "100644", "GIT~1", FUZZ_MSG);
	write_file(argv[2], "tree", n++, c.buf, c.len);

	/* invalid: a newer format; an empty tree; .git */
	strbuf_reset(&c);
	strbuf_addch(&c, 'T');
	ent(&c, "100644", "FORMAT", FUZZ_FORMAT2);
	write_file(argv[2], "tree", n++, c.buf, c.len);
	write_file(argv[2], "tree", n++, "T", 1);
	strbuf_reset(&c);
	strbuf_addch(&c, 'T');
	ent(&c, "40000", ".Git.", FUZZ_BASE_SENT);
	ent(&c, "100644", "FORMAT", FUZZ_FORMAT);
	write_file(argv[2], "tree", n++, c.buf, c.len);

	/* invalid: an mtimes record of no message; a folder of the base root */
	strbuf_reset(&c);
	strbuf_addch(&c, 'T');
	ent(&c, "100644", "FORMAT", FUZZ_FORMAT);
	ent(&c, "40000", "mtimes", 1);
	sep(&c, 'T');
	ent(&c, "100644", shard(FUZZ_K3), 2);
	sep(&c, 'B');
	strbuf_addf(&c, "%s 5\n", FUZZ_K3);
	write_file(argv[2], "tree", n++, c.buf, c.len);
	strbuf_reset(&c);
	strbuf_addch(&c, 'T');
	ent(&c, "40000", ".x", FUZZ_BASE);
	ent(&c, "100644", "FORMAT", FUZZ_FORMAT);
	write_file(argv[2], "tree", n++, c.buf, c.len);

	/* invalid: the base less its cur/, the record of K1 left behind */
	strbuf_reset(&c);
	strbuf_addch(&c, 'T');
	ent(&c, "40000", ".Sent", FUZZ_BASE_SENT);
	ent(&c, "100644", "FORMAT", FUZZ_FORMAT);
	ent(&c, "40000", "mtimes", FUZZ_BASE_MTIMES);
	write_file(argv[2], "tree", n++, c.buf, c.len);

	strbuf_release(&c);
	return 0;
}
