/*
 * format-imap-bench: what format 2's record check (common/format_imap.c)
 * adds to the check of a tree, at a given mailbox size.
 *
 *   format-imap-bench [-n messages] WORKDIR
 *
 * Builds, in WORKDIR/repo.git, two trees of <messages> messages in INBOX
 * (cur/<xx>/<key>:2,S): one format 1, one format 2 (the same plus
 * imapfolder and imap/<xx> records), and for each a second tree with one
 * message's flags changed (a rename).  Then times, on a fresh repository
 * handle each:
 *
 *   full_v1, full_v2         format_check_tree(tree, NULL)
 *   flag_v1, flag_v2         format_check_tree(changed, trusted = tree)
 *
 * Output: one "key milliseconds" line per figure.
 *
 * Build it against a build directory BUILD:
 *   cc -O2 -Icommon -Icommon/util -IBUILD -o format-imap-bench \
 *      bench/format-imap-bench.c BUILD/common/libcommon.a \
 *      BUILD/common/util/libutil.a \
 *      $(pkg-config --cflags --libs libgit2 jansson zlib)
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "mtimes.h"
#include "repo.h"
#include "strbuf.h"
#include "xalloc.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *key_of(unsigned i)
{
	return xasprintf("1700000000.M%uP1Q1.host", i);
}

/* The two trees (v1, v2) of n messages, and each with message 0 renamed. */
static void build(struct repo *r, unsigned n, struct oid t[2],
		  struct oid changed[2])
{
	struct update_list ups = UPDATE_LIST_INIT;
	struct imap_recs recs[256];
	struct oid blob, fmt1, fmt2, id;
	struct strbuf p = STRBUF_INIT, b = STRBUF_INIT;
	struct repo_update mv[2];
	char hex[3];

	memset(recs, 0, sizeof recs);
	repo_blob_from_buffer(&blob, r, "Subject: x\n\nbody\n", 17);
	repo_blob_from_buffer(&fmt1, r, "maildag 1\n", 10);
	repo_blob_from_buffer(&fmt2, r, "maildag 2\n", 10);
	update_list_add(&ups, "FORMAT", &fmt1);
	for (unsigned i = 0; i < n; i++) {
		char *k = key_of(i);
		maildir_shard_hex(hex, k, strlen(k));
		strbuf_reset(&p);
		strbuf_addf(&p, "cur/%s/%s:2,S", hex, k);
		update_list_add(&ups, p.buf, &blob);
		imap_recs_set(&recs[maildir_shard(k, strlen(k))], k, i + 1,
			      NULL, 0);
		free(k);
	}
	if (repo_tree_update(&t[0], r, NULL, ups.v, ups.n) < 0)
		log_fatal("tree");
	update_list_release(&ups);
	update_list_add(&ups, "FORMAT", &fmt2);
	strbuf_addf(&b, "uidvalidity 1\nuidnext %u\n", n + 1);
	repo_blob_from_buffer(&id, r, b.buf, b.len);
	update_list_add(&ups, IMAPREC_FOLDER, &id);
	for (unsigned s = 0; s < 256; s++) {
		if (!recs[s].n)
			continue;
		strbuf_reset(&b);
		imap_recs_format(&b, &recs[s]);
		repo_blob_from_buffer(&id, r, b.buf, b.len);
		strbuf_reset(&p);
		imap_recs_shard_path(&p, s);
		update_list_add(&ups, p.buf, &id);
		imap_recs_release(&recs[s]);
	}
	if (repo_tree_update(&t[1], r, &t[0], ups.v, ups.n) < 0)
		log_fatal("tree");
	/* message 0: \Seen -> \Replied \Seen */
	{
		char *k = key_of(0);
		char *from, *to;
		maildir_shard_hex(hex, k, strlen(k));
		from = xasprintf("cur/%s/%s:2,S", hex, k);
		to = xasprintf("cur/%s/%s:2,RS", hex, k);
		mv[0] = (struct repo_update){ from, NULL, false };
		mv[1] = (struct repo_update){ to, &blob, false };
		for (int v = 0; v < 2; v++)
			if (repo_tree_update(&changed[v], r, &t[v], mv, 2) < 0)
				log_fatal("tree");
		free(from);
		free(to);
		free(k);
	}
	update_list_release(&ups);
	strbuf_release(&p);
	strbuf_release(&b);
}

static double timed(const char *path, const struct oid *tree,
		    const struct oid *trusted)
{
	struct strbuf err = STRBUF_INIT;
	struct repo *r;
	double t0;

	if (repo_open(&r, path, 0) < 0)
		log_fatal("open");
	t0 = now_ms();
	if (format_check_tree(r, tree, trusted, &err) < 0)
		log_fatal("check: %s", err.buf);
	t0 = now_ms() - t0;
	repo_free(r);
	strbuf_release(&err);
	return t0;
}

int main(int argc, char **argv)
{
	unsigned n = 100000;
	struct oid t[2], ch[2];
	struct repo *r;
	char *path;
	int c;

	log_init("format-imap-bench", LOG_TO_STDERR, LOG_LVL_ERROR);
	while ((c = getopt(argc, argv, "n:")) != -1)
		if (c == 'n')
			n = (unsigned)atoi(optarg);
	if (optind >= argc)
		log_fatal("usage: format-imap-bench [-n messages] WORKDIR");
	path = xasprintf("%s/repo.git", argv[optind]);
	if (repo_open(&r, path, REPO_CREATE | REPO_NO_FSYNC) < 0)
		log_fatal("create");
	build(r, n, t, ch);
	repo_free(r);
	format_allow_version(FORMAT_VERSION_IMAP);
	printf("messages %u\n", n);
	printf("full_v1 %.1f\n", timed(path, &t[0], NULL));
	printf("full_v2 %.1f\n", timed(path, &t[1], NULL));
	printf("flag_v1 %.1f\n", timed(path, &ch[0], &t[0]));
	printf("flag_v2 %.1f\n", timed(path, &ch[1], &t[1]));
	free(path);
	return 0;
}
