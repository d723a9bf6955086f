/*
 * worktree-imap-bench: what format 2's Dovecot side (worktree_dovecot.c,
 * worktree_dvapply.c) adds to the worktree's commit and apply, at a given
 * mailbox size.
 *
 *   worktree-imap-bench [-n messages] [-k batch] WORKDIR
 *
 * Makes two Maildirs of <messages> messages in INBOX (cur/<key>:2,S) and
 * their repositories: v1 format 1, v2 the same made format 2 by
 * upgrade_repo() (as `maildag init --format 2`).  Then, on each, times:
 *
 *   rescan     a full rescan of the unchanged Maildir (nothing committed)
 *   add        <batch> files a mail client put in new/ (v2: numbered
 *              from our slot, appended to dovecot-uidlist), committed
 *   keyword    one file renamed to carry one more flag (v1: 'F'; v2: a
 *              keyword letter, 'a'), committed by name events
 *   apply_add  <batch> messages a peer added, applied
 *   apply_kw   one message's flag (v1) or keyword (v2) changed by a
 *              peer, applied (with -r, the best of that many rounds,
 *              set and cleared in turn)
 *
 * Output: one "<figure>_v1 ms" and "<figure>_v2 ms" line each.
 *
 * Build it against a build directory BUILD:
 *   cc -O2 -Icommon -Icommon/util -IBUILD -o worktree-imap-bench \
 *      bench/worktree-imap-bench.c BUILD/common/libcommon.a \
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
#include "fsutil.h"
#include "imaprec.h"
#include "log.h"
#include "maildir_name.h"
#include "mtimes.h"
#include "repo.h"
#include "strbuf.h"
#include "upgrade.h"
#include "worktree.h"
#include "xalloc.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct side {
	char *maildir;
	struct repo *r;
	struct worktree *wt;
	int v;
};

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		log_fatal("fopen '%s'", path);
	fputs(text, f);
	fclose(f);
}

static void make_side(struct side *s, const char *work, int v, unsigned n)
{
	char *repo = xasprintf("%s/v%d.git", work, v);
	struct upgrade_stats st;
	struct oid c;

	s->v = v;
	s->maildir = xasprintf("%s/v%d", work, v);
	for (int i = 0; i < 3; i++) {
		char *d = xasprintf("%s/%s", s->maildir,
				    i == 0 ? "cur" : i == 1 ? "new" : "tmp");
		mkdir_p(d, 0700);
		free(d);
	}
	for (unsigned i = 0; i < n; i++) {
		char *p = xasprintf("%s/cur/1700000000.M%uP1Q1.host:2,S",
				    s->maildir, i);
		char *body = xasprintf("Subject: %u\n\nbody %u\n", i, i);
		put(p, body);
		free(p);
		free(body);
	}
	if (repo_open(&s->r, repo, REPO_CREATE | REPO_NO_FSYNC) < 0)
		log_fatal("repo");
	s->wt = worktree_new(s->r, s->maildir, "bench");
	worktree_dirty_all(s->wt);
	repo_lock(s->r, -1);
	if (worktree_commit(s->wt, NULL) < 0)
		log_fatal("import");
	if (v == 2 && upgrade_repo(&c, s->r, s->maildir, "bench",
				   "upgrade\n", false, &st) < 0)
		log_fatal("upgrade");
	repo_unlock(s->r);
	free(repo);
}

static double timed_commit(struct side *s)
{
	struct worktree_result res;
	double t0 = now_ms();

	repo_lock(s->r, -1);
	if (worktree_commit(s->wt, &res) < 0)
		log_fatal("commit");
	repo_unlock(s->r);
	return now_ms() - t0;
}

static double timed_apply(struct side *s)
{
	struct worktree_result res;
	double t0 = now_ms();

	repo_lock(s->r, -1);
	if (worktree_apply(s->wt, 0, &res) < 0 || res.skipped)
		log_fatal("apply");
	repo_unlock(s->r);
	return now_ms() - t0;
}

/* mail's tree with ups applied, committed as a peer's merge would be. */
static void mail_change(struct side *s, const struct repo_update *ups,
			size_t n)
{
	struct oid m, t, t2, c;

	if (repo_ref_read(&m, s->r, REF_MAIL) < 0 ||
	    repo_commit_tree(&t, s->r, &m) < 0 ||
	    repo_tree_update(&t2, s->r, &t, ups, n) < 0 ||
	    repo_commit(&c, s->r, &t2, &m, 1, "peer\n", -1, NULL, NULL) < 0 ||
	    repo_ref_cas(s->r, REF_MAIL, &c, &m, "bench") < 0)
		log_fatal("mail change");
}

static char *blob_at(struct side *s, const char *path)
{
	struct strbuf b = STRBUF_INIT;
	struct oid m, t, id;

	if (repo_ref_read(&m, s->r, REF_MAIL) == 0 &&
	    repo_commit_tree(&t, s->r, &m) == 0 &&
	    repo_tree_lookup(&id, s->r, &t, path) == 0)
		repo_blob_read(&b, s->r, &id);
	return strbuf_detach(&b, NULL);
}

/* A peer adds k messages to INBOX (v2: UIDs of slot 1, their records). */
static void peer_adds(struct side *s, unsigned k)
{
	struct update_list ups = UPDATE_LIST_INIT;
	struct imap_recs recs[256];
	bool touched[256] = { false };
	uint32_t uid = 0;

	memset(recs, 0, sizeof recs);
	if (s->v == 2) {
		char *f = blob_at(s, IMAPREC_FOLDER);
		struct imap_folder fr;
		if (imap_folder_parse(&fr, f, strlen(f), NULL) < 0)
			log_fatal("imapfolder");
		uid = imap_uid_alloc(fr.uidnext, 1, k);
		fr.uidnext = uid + k;
		{
			struct strbuf b = STRBUF_INIT;
			struct oid id;
			imap_folder_format(&b, &fr);
			repo_blob_from_buffer(&id, s->r, b.buf, b.len);
			update_list_add(&ups, IMAPREC_FOLDER, &id);
			strbuf_release(&b);
		}
		free(f);
	}
	for (unsigned i = 0; i < k; i++) {
		char *key = xasprintf("1800000000.M%uP2Q2.peer", i);
		char *body = xasprintf("Subject: peer %u\n\nbody\n", i);
		char *name = xasprintf("%s:2,S", key);
		struct strbuf p = STRBUF_INIT;
		struct oid id;
		char xx[3];
		unsigned sh = maildir_shard(key, strlen(key));

		maildir_shard_hex(xx, key, strlen(key));
		repo_blob_from_buffer(&id, s->r, body, strlen(body));
		strbuf_addf(&p, "cur/%s/%s", xx, name);
		update_list_add(&ups, p.buf, &id);
		if (s->v == 2) {
			if (!touched[sh]) {
				struct strbuf rp = STRBUF_INIT;
				char *b;
				imap_recs_shard_path(&rp, sh);
				b = blob_at(s, rp.buf);
				if (*b && imap_recs_parse(&recs[sh], b, strlen(b),
							  xx, NULL) < 0)
					log_fatal("records");
				free(b);
				strbuf_release(&rp);
				touched[sh] = true;
			}
			imap_recs_set(&recs[sh], key, uid + i, NULL, 0);
		}
		strbuf_release(&p);
		free(key);
		free(body);
		free(name);
	}
	for (unsigned sh = 0; sh < 256; sh++) {
		struct strbuf rp = STRBUF_INIT, b = STRBUF_INIT;
		struct oid id;
		if (!touched[sh])
			continue;
		imap_recs_shard_path(&rp, sh);
		imap_recs_format(&b, &recs[sh]);
		repo_blob_from_buffer(&id, s->r, b.buf, b.len);
		update_list_add(&ups, rp.buf, &id);
		imap_recs_release(&recs[sh]);
		strbuf_release(&rp);
		strbuf_release(&b);
	}
	mail_change(s, ups.v, ups.n);
	update_list_release(&ups);
}

/* A peer changes message 1's flags (v1: +F, on; -F, off) or keywords
 * (v2: +seen-by-peer, on; none, off). */
static void peer_flags(struct side *s, bool on)
{
	const char *key = "1700000000.M1P1Q1.host";
	struct update_list ups = UPDATE_LIST_INIT;
	char xx[3];

	maildir_shard_hex(xx, key, strlen(key));
	if (s->v == 1) {
		struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
		struct oid m, t, id;
		strbuf_addf(&a, "cur/%s/%s:2,%s", xx, key, on ? "S" : "FS");
		strbuf_addf(&b, "cur/%s/%s:2,%s", xx, key, on ? "FS" : "S");
		if (repo_ref_read(&m, s->r, REF_MAIL) < 0 ||
		    repo_commit_tree(&t, s->r, &m) < 0 ||
		    repo_tree_lookup(&id, s->r, &t, a.buf) < 0)
			log_fatal("flags");
		update_list_add(&ups, a.buf, NULL);
		update_list_add(&ups, b.buf, &id);
		strbuf_release(&a);
		strbuf_release(&b);
	} else {
		struct strbuf rp = STRBUF_INIT, b = STRBUF_INIT;
		struct imap_recs r = IMAP_RECS_INIT;
		const struct imap_rec *x;
		const char *kw[] = { "seen-by-peer" };
		char *blob;
		struct oid id;
		imap_recs_path(&rp, key, strlen(key));
		blob = blob_at(s, rp.buf);
		if (imap_recs_parse(&r, blob, strlen(blob), xx, NULL) < 0 ||
		    !(x = imap_recs_find(&r, key)))
			log_fatal("record");
		imap_recs_set(&r, key, x->uid, kw, on ? 1 : 0);
		imap_recs_format(&b, &r);
		repo_blob_from_buffer(&id, s->r, b.buf, b.len);
		update_list_add(&ups, rp.buf, &id);
		imap_recs_release(&r);
		strbuf_release(&rp);
		strbuf_release(&b);
		free(blob);
	}
	mail_change(s, ups.v, ups.n);
	update_list_release(&ups);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One client keyword change on side s, round i: on (odd) or off (even). */
static __attribute__((noinline)) double keyword_round(struct side *s, unsigned i)
{
	const char *key = "1700000000.M2P1Q1.host";
	const char *with = s->v == 2 ? "Sa" : "FS";
	char *old = xasprintf("%s/cur/%s:2,%s", s->maildir, key,
			      i % 2 ? "S" : with);
	char *new_ = xasprintf("%s/cur/%s:2,%s", s->maildir, key,
			       i % 2 ? with : "S");
	double t;

	if (rename(old, new_) < 0)
		log_fatal("rename");
	worktree_dirty_name(s->wt, "", "cur", strrchr(old, '/') + 1);
	worktree_dirty_name(s->wt, "", "cur", strrchr(new_, '/') + 1);
	t = timed_commit(s);
	free(old);
	free(new_);
	return t;
}

/* apart, so a profile (callgrind --toggle-collect) tells them apart */
static __attribute__((noinline)) double keyword_v1(struct side *s, unsigned i)
{
	return keyword_round(s, i);
}

static __attribute__((noinline)) double keyword_v2(struct side *s, unsigned i)
{
	return keyword_round(s, i);
}

int main(int argc, char **argv)
{
	unsigned n = 10000, k = 100, reps = 1;
	struct side s[2];
	double t[5][2], *kw[2];
	int o;

	log_init("worktree-imap-bench", LOG_TO_STDERR, LOG_LVL_ERROR);
	while ((o = getopt(argc, argv, "n:k:r:")) != -1)
		if (o == 'n')
			n = (unsigned)strtoul(optarg, NULL, 10);
		else if (o == 'k')
			k = (unsigned)strtoul(optarg, NULL, 10);
		else if (o == 'r')
			reps = (unsigned)strtoul(optarg, NULL, 10) | 1;
	if (optind != argc - 1)
		log_fatal("usage: worktree-imap-bench [-n messages] [-k batch] "
			  "[-r rounds] WORKDIR");
	for (int v = 0; v < 2; v++) {
		struct side *x = &s[v];
		make_side(x, argv[optind], v + 1, n);

		worktree_dirty_all(x->wt);
		t[0][v] = timed_commit(x);

		for (unsigned i = 0; i < k; i++) {
			char *p = xasprintf("%s/new/1750000000.M%uP3Q3.mutt",
					    x->maildir, i);
			char *nm = xasprintf("1750000000.M%uP3Q3.mutt", i);
			put(p, "Subject: mutt\n\nbody\n");
			worktree_dirty_name(x->wt, "", "new", nm);
			free(p);
			free(nm);
		}
		t[1][v] = timed_commit(x);
		if (v == 1) {
			char *f = xasprintf("%s/dovecot-keywords", x->maildir);
			put(f, "0 bench-keyword\n");
			free(f);
		}
	}
	/* the keyword rounds, format 1 and 2 interleaved; best and median */
	kw[0] = xcalloc(reps, sizeof(double));
	kw[1] = xcalloc(reps, sizeof(double));
	for (unsigned i = 0; i < reps; i++)
		for (int v = 0; v < 2; v++)
			kw[v][i] = (v ? keyword_v2 : keyword_v1)(&s[v], i + 1);
	for (int v = 0; v < 2; v++) {
		qsort(kw[v], reps, sizeof(double), cmp_double);
		t[2][v] = kw[v][0];
	}
	for (int v = 0; v < 2; v++) {
		struct side *x = &s[v];
		peer_adds(x, k);
		t[3][v] = timed_apply(x);
		/* the worktree brought to mail (an apply that numbered leaves
		 * that to the next one), so apply_kw is the keyword alone */
		(void)timed_apply(x);
		t[4][v] = 1e9;
		for (unsigned i = 0; i < reps; i++) {
			double a;
			peer_flags(x, i % 2 == 0);
			a = timed_apply(x);
			if (a < t[4][v])
				t[4][v] = a;	/* the best of the rounds */
		}
		worktree_free(x->wt);
		repo_free(x->r);
	}
	{
		const char *names[] = { "rescan", "add", "keyword", "apply_add",
					"apply_kw" };
		for (int i = 0; i < 5; i++)
			printf("%s_v1 %.1f\n%s_v2 %.1f\n", names[i], t[i][0],
			       names[i], t[i][1]);
		printf("keyword_median_v1 %.1f\nkeyword_median_v2 %.1f\n"
		       "keyword_rounds %u\nkeyword_ratio_best %.2f\n"
		       "keyword_ratio_median %.2f\n", kw[0][reps / 2],
		       kw[1][reps / 2], reps, kw[1][0] / kw[0][0],
		       kw[1][reps / 2] / kw[0][reps / 2]);
	}
	free(kw[0]);
	free(kw[1]);
	return 0;
}
