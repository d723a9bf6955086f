/*
 * format-imap-bench: what format 2's record check (common/format_imap.c)
 * adds to the check of a tree, at a given mailbox size.
 *
 *   format-imap-bench [-n messages] WORKDIR
 *
 * Builds, in WORKDIR/repo.git, two trees of <messages> messages in INBOX
 * (cur/<xx>/<key>:2,S): one format 1, one format 2 (the same plus
 * imapfolder and imap/<xx> records), and for each a second tree with one
 * message's flags changed (a rename); for format 2 also one with a
 * keyword added to one message's record.  Then times, on a fresh
 * repository handle each, the median of RUNS runs:
 *
 *   full_v1, full_v2         format_check_tree(tree, NULL)
 *   flag_v1, flag_v2         format_check_tree_since(changed, tree): the
 *                            tree checked against its parent's (history.c)
 *   kw_v2                    the same, for the keyword change
 *   flag_v2_notanc           format_check_tree(changed, trusted = tree):
 *                            trusted not known to be an ancestor (the
 *                            records are all matched, admin/merge.c)
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

#include <stdbool.h>
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
		  struct oid changed[2], struct oid *kw)
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
		/* message 0 gets a keyword: its shard's record blob changes */
		{
			const char *w[] = { "$Junk" };
			struct imap_recs one = IMAP_RECS_INIT;
			struct repo_update up;
			char h2[3], *pth;

			for (unsigned i = 0; i < n; i++) {
				char *ki = key_of(i);
				maildir_shard_hex(h2, ki, strlen(ki));
				if (!strcmp(h2, hex))
					imap_recs_set(&one, ki, i + 1, w,
						      i ? 0 : 1);
				free(ki);
			}
			strbuf_reset(&b);
			imap_recs_format(&b, &one);
			imap_recs_release(&one);
			repo_blob_from_buffer(&id, r, b.buf, b.len);
			pth = xasprintf(IMAPREC_DIR "/%s", hex);
			up = (struct repo_update){ pth, &id, false };
			if (repo_tree_update(kw, r, &t[1], &up, 1) < 0)
				log_fatal("tree");
			free(pth);
		}
		free(k);
	}
	update_list_release(&ups);
	strbuf_release(&p);
	strbuf_release(&b);
}

#define RUNS 5

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of RUNS checks, each on a fresh repository handle. */
static double timed(const char *path, const struct oid *tree,
		    const struct oid *trusted, bool ancestor)
{
	double t[RUNS];

	for (int i = 0; i < RUNS; i++) {
		struct strbuf err = STRBUF_INIT;
		struct repo *r;
		int ret;

		if (repo_open(&r, path, 0) < 0)
			log_fatal("open");
		t[i] = now_ms();
		ret = ancestor ? format_check_tree_since(r, tree, trusted, &err)
			       : format_check_tree(r, tree, trusted, &err);
		if (ret < 0)
			log_fatal("check: %s", err.buf);
		t[i] = now_ms() - t[i];
		repo_free(r);
		strbuf_release(&err);
	}
	qsort(t, RUNS, sizeof *t, cmp_double);
	return t[RUNS / 2];
}

int main(int argc, char **argv)
{
	unsigned n = 100000;
	struct oid t[2], ch[2], kw;
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
	build(r, n, t, ch, &kw);
	repo_free(r);
	format_allow_version(FORMAT_VERSION_IMAP);
	printf("messages %u\n", n);
	printf("full_v1 %.2f\n", timed(path, &t[0], NULL, false));
	printf("full_v2 %.2f\n", timed(path, &t[1], NULL, false));
	printf("flag_v1 %.2f\n", timed(path, &ch[0], &t[0], true));
	printf("flag_v2 %.2f\n", timed(path, &ch[1], &t[1], true));
	printf("kw_v2 %.2f\n", timed(path, &kw, &t[1], true));
	printf("flag_v2_notanc %.2f\n", timed(path, &ch[1], &t[1], false));
	free(path);
	return 0;
}
