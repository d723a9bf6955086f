/*
 * merge-imap-bench: what format 2's records (common/merge_records.c) add
 * to the merge, at a given mailbox size; format 1 and format 2 in the
 * same run, on the same repository.
 *
 *   merge-imap-bench [-n inbox] [-f folders] [-m per-folder] [-c changes]
 *                    [-r runs] WORKDIR
 *
 * Builds, in WORKDIR/repo.git (objects packed into one pack, as after a
 * fetch), the same mailbox twice: <inbox> messages in INBOX and <folders>
 * folders of <per-folder>, as a format 1 tree and as a format 2 tree
 * (imapfolder in every folder, imap/<xx> records with UIDs 1..n per
 * folder, uidslots).  Then, from each base, the same two sides of
 * <changes> changes each: 30% flags, 10% keywords (format 1: a letter in
 * the name; format 2: a name in the record), 20% moves (format 2: a new
 * UID in the destination, from the side's slot), 20% expunges, 20%
 * deliveries (format 2: UIDs from slot 0 on one side, slot 1 on the
 * other, so INBOX's record changes on both sides, the common case: every
 * changed shard is read), five messages changed on both sides.
 *
 * Timed, best and median of <runs>, format 1 and format 2 interleaved:
 * merge_trees() on a fresh repository handle each run ("cold": every
 * tree read from the pack), new objects written without fsync and
 * deleted after the run.  Output: one "key value" line per figure, and
 * the ratio format 2 / format 1 of the best times.
 *
 * Build it against a build directory BUILD (bench/merge-imap does):
 *   cc -O2 -Icommon -Icommon/util -IBUILD -o merge-imap-bench \
 *      bench/merge-imap-bench.c BUILD/common/libcommon.a \
 *      BUILD/common/util/libutil.a \
 *      $(pkg-config --cflags --libs libgit2 jansson zlib)
 */
#include "autoconf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2/sys/mempack.h>

#include "imaprec.h"
#include "log.h"
#include "mailbox.h"
#include "maildir_name.h"
#include "merge.h"
#include "mtimes.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

static unsigned n_inbox = 100000, n_folders = 10, n_per_folder = 1000;
static unsigned n_changes = 100, n_runs = 7;
static uint64_t rng = 0x243f6a8885a308d3ULL;
static char *repo_dir;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static unsigned rn(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "merge-imap-bench: %s: %s\n", what, repo_git_error());
	exit(2);
}

/* --- the mailbox, once for both formats ---------------------------------- */

struct msg {
	int folder;		/* 0: INBOX, 1..: folders[f - 1] */
	bool cur;
	char *key, *fields;
	char flags[8];		/* system flags */
	bool kw;		/* keyword: letter 'a' / "$Label1" */
	struct oid blob;
	uint32_t uid;
	bool gone;		/* not a candidate for changes */
};

static struct msg *msgs;
static size_t nmsgs, amsgs;
static unsigned serial;
static char *folders[64 + 1];

static size_t new_msg(struct repo *r, int folder, bool seen)
{
	unsigned k = serial++;
	char *body = xasprintf("From: Bench <bench@example.org>\nSubject: "
			       "message %u\nMessage-ID: <%u.%llx@example.org>\n"
			       "\nbody of message %u\n", k, k,
			       (unsigned long long)rnd(), k);
	struct msg *m;

	xgrow((void **)&msgs, &amsgs, nmsgs + 1, sizeof *msgs);
	m = &msgs[nmsgs];
	memset(m, 0, sizeof *m);
	m->folder = folder;
	m->cur = seen;
	m->key = xasprintf("%lld.M%uP%uR%016llxQ1.bench.example",
			   1500000000LL + (long long)k * 97, k % 1000000,
			   1000 + k % 30000, (unsigned long long)rnd());
	m->fields = xasprintf(",S=%zu", strlen(body));
	strcpy(m->flags, seen ? "S" : "");
	if (repo_blob_from_buffer(&m->blob, r, body, strlen(body)) < 0)
		die("write blob");
	free(body);
	return nmsgs++;
}

static char *msg_path(const struct msg *m, bool v2)
{
	struct strbuf sb = STRBUF_INIT;
	char *name;

	if (!m->cur)
		name = xasprintf("%s%s", m->key, m->fields);
	else
		name = xasprintf("%s%s:2,%s%s", m->key, m->fields, m->flags,
				 !v2 && m->kw ? "a" : "");
	tree_message_path(&sb, folders[m->folder], m->cur ? "cur" : "new", name);
	free(name);
	return strbuf_detach(&sb, NULL);
}

static const char *const kw1[] = { "$Label1" };

/* --- one format's trees --------------------------------------------------- */

struct fmt {
	bool v2;
	struct imap_recs recs[256];	/* the tree's records (v2) */
	bool touched[256];
	struct imap_folder f[65];
	bool fchanged[65];
};

static void rec_set(struct fmt *t, const struct msg *m)
{
	unsigned x = maildir_shard(m->key, strlen(m->key));

	imap_recs_set(&t->recs[x], m->key, m->uid, m->kw ? kw1 : NULL, m->kw);
	t->touched[x] = true;
}

static void rec_remove(struct fmt *t, const struct msg *m)
{
	unsigned x = maildir_shard(m->key, strlen(m->key));

	imap_recs_remove(&t->recs[x], m->key);
	t->touched[x] = true;
}

static void add_blob(struct update_list *ups, struct repo *r, const char *path,
		     const char *data, size_t len)
{
	struct oid id;

	if (repo_blob_from_buffer(&id, r, len ? data : "", len) < 0)
		die("blob");
	update_list_add(ups, path, &id);
}

/* The records and folder records t changed, as updates. */
static void flush(struct fmt *t, struct update_list *ups, struct repo *r)
{
	struct strbuf sb = STRBUF_INIT, p = STRBUF_INIT;

	for (unsigned x = 0; t->v2 && x < 256; x++) {
		if (!t->touched[x])
			continue;
		strbuf_reset(&sb);
		strbuf_reset(&p);
		imap_recs_format(&sb, &t->recs[x]);
		imap_recs_shard_path(&p, x);
		if (sb.len)
			add_blob(ups, r, p.buf, sb.buf, sb.len);
		else
			update_list_add(ups, p.buf, NULL);
		t->touched[x] = false;
	}
	for (unsigned f = 0; t->v2 && f <= n_folders; f++) {
		if (!t->fchanged[f])
			continue;
		strbuf_reset(&sb);
		strbuf_reset(&p);
		imap_folder_format(&sb, &t->f[f]);
		strbuf_addf(&p, "%s%s" IMAPREC_FOLDER, folders[f], f ? "/" : "");
		add_blob(ups, r, p.buf, sb.buf, sb.len);
		t->fchanged[f] = false;
	}
	strbuf_release(&sb);
	strbuf_release(&p);
}

static void commit_ups(struct oid *out, struct repo *r, const struct oid *parent,
		       struct update_list *ups, time_t when)
{
	struct oid tree, ptree;

	if (parent && repo_commit_tree(&ptree, r, parent) < 0)
		die("read commit");
	if (repo_tree_update(&tree, r, parent ? &ptree : NULL, ups->v, ups->n) < 0 ||
	    repo_commit(out, r, &tree, parent, parent ? 1 : 0, "bench\n", when,
			NULL, NULL) < 0)
		die("commit");
}

static void copy_recs(struct fmt *dst, const struct fmt *src)
{
	memset(dst, 0, sizeof *dst);
	dst->v2 = src->v2;
	memcpy(dst->f, src->f, sizeof dst->f);
	for (unsigned x = 0; src->v2 && x < 256; x++)
		for (size_t i = 0; i < src->recs[x].n; i++) {
			const struct imap_rec *rc = &src->recs[x].v[i];
			imap_recs_set(&dst->recs[x], rc->key, rc->uid,
				      (const char *const *)rc->kw, rc->nkw);
		}
	memset(dst->touched, 0, sizeof dst->touched);
}

static void release_recs(struct fmt *t)
{
	for (unsigned x = 0; x < 256; x++)
		imap_recs_release(&t->recs[x]);
}

/* --- the changes of one side, the same for both formats ------------------ */

enum { CH_FLAG, CH_KW, CH_MOVE, CH_EXPUNGE, CH_DELIVER };

struct change {
	int kind;
	size_t msg;
	int to;			/* moves */
	char flags[8];
};

static size_t pick_live(void)
{
	for (;;) {
		size_t i = rn((unsigned)nmsgs);
		if (!msgs[i].gone)
			return i;
	}
}

static struct change *plan_side(struct repo *r, const size_t *shared, size_t nshared)
{
	struct change *ch = xcalloc(n_changes, sizeof *ch);

	for (unsigned c = 0; c < n_changes; c++) {
		unsigned p = c * 10 / n_changes;	/* 0..9 */
		struct change *x = &ch[c];

		x->kind = p < 3 ? CH_FLAG : p < 4 ? CH_KW : p < 6 ? CH_MOVE :
			  p < 8 ? CH_EXPUNGE : CH_DELIVER;
		if (x->kind == CH_DELIVER) {
			x->msg = new_msg(r, rn(2) ? 0 : 1 + (int)rn(n_folders), false);
			msgs[x->msg].gone = true;
			continue;
		}
		x->msg = c < nshared ? shared[c] : pick_live();
		if (x->kind == CH_FLAG) {
			static const char *const f[] = { "FS", "RS", "", "ST", "DS" };
			strcpy(x->flags, f[rn(5)]);
		} else if (x->kind == CH_MOVE) {
			x->to = rn(3) == 0 ? 0 : 1 + (int)rn(n_folders);
			if (x->to == msgs[x->msg].folder)
				x->to = x->to ? 0 : 1;
		}
	}
	return ch;
}

static uint32_t take_uid(struct fmt *t, int f, unsigned slot)
{
	uint32_t u = imap_uid_alloc(t->f[f].uidnext, slot, 1);

	t->f[f].uidnext = u + 1;
	t->fchanged[f] = true;
	return u;
}

/* The side of base in format t with the changes ch (message states are
 * restored after). */
static void make_side(struct oid *out, struct repo *r, const struct oid *base,
		      const struct fmt *tb, const struct change *ch,
		      unsigned slot, time_t when)
{
	struct update_list ups = UPDATE_LIST_INIT;
	struct fmt *t = xmalloc(sizeof *t);
	struct msg *save = xmalloc(nmsgs * sizeof *save);

	memcpy(save, msgs, nmsgs * sizeof *save);
	copy_recs(t, tb);
	for (unsigned c = 0; c < n_changes; c++) {
		struct msg *m = &msgs[ch[c].msg];
		char *from = msg_path(m, t->v2), *to;

		switch (ch[c].kind) {
		case CH_FLAG:
			m->cur = true;
			strcpy(m->flags, ch[c].flags);
			break;
		case CH_KW:
			m->cur = true;
			m->kw = !m->kw;
			break;
		case CH_MOVE:
			m->folder = ch[c].to;
			m->cur = true;
			m->uid = take_uid(t, m->folder, slot);
			break;
		case CH_EXPUNGE:
			update_list_add(&ups, from, NULL);
			if (t->v2)
				rec_remove(t, m);
			free(from);
			continue;
		case CH_DELIVER:
			free(from);
			from = NULL;
			m->uid = take_uid(t, m->folder, slot);
			break;
		}
		to = msg_path(m, t->v2);
		if (from && strcmp(from, to))
			update_list_add(&ups, from, NULL);
		update_list_add(&ups, to, &m->blob);
		if (t->v2)
			rec_set(t, m);
		free(from);
		free(to);
	}
	flush(t, &ups, r);
	commit_ups(out, r, base, &ups, when);
	update_list_release(&ups);
	memcpy(msgs, save, nmsgs * sizeof *save);
	release_recs(t);
	free(t);
	free(save);
}

/* --- building ------------------------------------------------------------ */

static void base_tree(struct oid *out, struct repo *r, struct fmt *t)
{
	struct update_list ups = UPDATE_LIST_INIT;
	const char *format = t->v2 ? "maildag 2\n" : "maildag 1\n";
	struct oid empty;

	repo_blob_from_buffer(&empty, r, "", 0);
	add_blob(&ups, r, FORMAT_PATH, format, strlen(format));
	if (t->v2)
		add_blob(&ups, r, IMAPREC_SLOTS, "0 mx1\n1 mx2\n", 12);
	for (unsigned f = 1; f <= n_folders; f++) {
		char *marker = xasprintf("%s/maildirfolder", folders[f]);
		update_list_add(&ups, marker, &empty);
		free(marker);
	}
	for (unsigned f = 0; f <= n_folders; f++) {
		t->f[f] = (struct imap_folder){ 1700000000u + f, 1 };
		t->fchanged[f] = true;
	}
	for (size_t i = 0; i < nmsgs; i++) {
		char *p = msg_path(&msgs[i], t->v2);
		update_list_add(&ups, p, &msgs[i].blob);
		free(p);
		if (t->v2) {
			msgs[i].uid = t->f[msgs[i].folder].uidnext++;
			rec_set(t, &msgs[i]);
		}
	}
	flush(t, &ups, r);
	commit_ups(out, r, NULL, &ups, 1700000000);
	update_list_release(&ups);
}

static void pack_mempack(struct repo *r, git_odb_backend *mem)
{
	git_buf pack = GIT_BUF_INIT;
	git_indexer *idx = NULL;
	git_indexer_progress stats;
	char *dir = xasprintf("%s/objects/pack", repo_dir);

	if (git_mempack_dump(&pack, r->git, mem) < 0 ||
	    git_indexer_new(&idx, dir, 0, NULL, NULL) < 0 ||
	    git_indexer_append(idx, pack.ptr, pack.size, &stats) < 0 ||
	    git_indexer_commit(idx, &stats) < 0)
		die("write the pack");
	printf("pack_objects %u\npack_bytes %zu\n", stats.total_objects, pack.size);
	git_indexer_free(idx);
	git_buf_dispose(&pack);
	free(dir);
}

/* base, a, b of format 1 ([0]) and format 2 ([1]) */
static void build(struct oid base[2], struct oid a[2], struct oid b[2])
{
	struct repo *r;
	git_odb_backend *mem;
	git_odb *odb;
	struct fmt *t[2];
	struct change *ca, *cb;
	size_t shared[10];
	double t0 = now_ms();

	if (repo_open(&r, repo_dir, REPO_CREATE | REPO_NO_FSYNC) < 0)
		die("create the repository");
	if (git_mempack_new(&mem) < 0 || git_repository_odb(&odb, r->git) < 0 ||
	    git_odb_add_backend(odb, mem, 999) < 0)
		die("mempack");
	git_odb_free(odb);
	folders[0] = xstrdup("");
	for (unsigned f = 1; f <= n_folders; f++)
		folders[f] = xasprintf(".Folder%u", f);
	for (unsigned i = 0; i < n_inbox; i++)
		new_msg(r, 0, rn(10) != 0);
	for (unsigned f = 1; f <= n_folders; f++)
		for (unsigned i = 0; i < n_per_folder; i++)
			new_msg(r, (int)f, true);
	for (int v = 0; v < 2; v++) {
		t[v] = xcalloc(1, sizeof *t[v]);
		t[v]->v2 = v;
		base_tree(&base[v], r, t[v]);
	}
	for (size_t i = 0; i < 10; i++)
		shared[i] = pick_live();
	ca = plan_side(r, shared, 5);
	cb = plan_side(r, shared + 5, 5);
	for (int v = 0; v < 2; v++) {
		make_side(&a[v], r, &base[v], t[v], ca, 0, 1700000100);
		make_side(&b[v], r, &base[v], t[v], cb, 1, 1700000200);
		release_recs(t[v]);
		free(t[v]);
	}
	free(ca);
	free(cb);
	pack_mempack(r, mem);
	repo_free(r);
	printf("build_messages %zu\nbuild_ms %.0f\n", nmsgs, now_ms() - t0);
}

/* --- the runs ------------------------------------------------------------ */

static void loose_clean(void)
{
	char *objdir = xasprintf("%s/objects", repo_dir);
	DIR *d = opendir(objdir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char *sub;
		DIR *sd;
		struct dirent *se;
		/* the loose objects' directories: two hex digits (not "..") */
		if (strlen(de->d_name) != 2 || de->d_name[0] == '.')
			continue;
		sub = xasprintf("%s/%s", objdir, de->d_name);
		sd = opendir(sub);
		while (sd && (se = readdir(sd))) {
			char *p;
			if (se->d_name[0] == '.')
				continue;
			p = xasprintf("%s/%s", sub, se->d_name);
			unlink(p);
			free(p);
		}
		if (sd)
			closedir(sd);
		free(sub);
	}
	if (d)
		closedir(d);
	free(objdir);
}

static int dbl_cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* One cold merge_trees() of base, a, b; its time. */
static double one_merge(const struct oid *base, const struct oid *a,
			const struct oid *b, bool first, const char *v)
{
	struct repo *r;
	struct merge_stats st;
	struct oid tb, ta, tt, out, out2;
	double t0, ms;

	if (repo_open(&r, repo_dir, REPO_NO_FSYNC) < 0)
		die("open");
	repo_commit_tree(&tb, r, base);
	repo_commit_tree(&ta, r, a);
	repo_commit_tree(&tt, r, b);
	t0 = now_ms();
	if (merge_trees(&out, r, &tb, &ta, &tt, NULL, &st) < 0)
		die("merge_trees");
	ms = now_ms() - t0;
	if (first) {
		printf("%s_messages %zu\n%s_trees_read %zu\n%s_shards_skipped %zu\n",
		       v, st.messages, v, st.trees_read, v, st.shards_skipped);
		if (merge_trees(&out2, r, &tb, &tt, &ta, NULL, NULL) < 0 ||
		    !oid_equal(&out, &out2))
			die("merge_trees is not commutative");
	}
	repo_free(r);
	loose_clean();
	return ms;
}

int main(int argc, char **argv)
{
	struct oid base[2], a[2], b[2];
	double *ms[2];
	int c;

	log_init("merge-imap-bench", LOG_TO_STDERR, LOG_LVL_WARN);
	while ((c = getopt(argc, argv, "n:f:m:c:r:")) != -1) {
		switch (c) {
		case 'n': n_inbox = (unsigned)atoi(optarg); break;
		case 'f': n_folders = (unsigned)atoi(optarg); break;
		case 'm': n_per_folder = (unsigned)atoi(optarg); break;
		case 'c': n_changes = (unsigned)atoi(optarg); break;
		case 'r': n_runs = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: merge-imap-bench [-n inbox] "
				"[-f folders] [-m per-folder] [-c changes] "
				"[-r runs] WORKDIR\n");
			return 64;
		}
	}
	if (optind + 1 != argc || n_runs < 1 || n_folders < 1 ||
	    n_folders > 64 || n_inbox < 10 || n_changes < 10) {
		fprintf(stderr, "merge-imap-bench: bad arguments\n");
		return 64;
	}
	repo_dir = xasprintf("%s/repo.git", argv[optind]);
	build(base, a, b);
	for (int v = 0; v < 2; v++)
		ms[v] = xcalloc(n_runs, sizeof *ms[v]);
	for (unsigned i = 0; i < n_runs; i++)
		for (int v = 0; v < 2; v++)
			ms[v][i] = one_merge(&base[v], &a[v], &b[v], i == 0,
					     v ? "v2" : "v1");
	for (int v = 0; v < 2; v++) {
		qsort(ms[v], n_runs, sizeof *ms[v], dbl_cmp);
		printf("merge_trees_v%d_best_ms %.3f\nmerge_trees_v%d_median_ms %.3f\n",
		       v + 1, ms[v][0], v + 1, ms[v][n_runs / 2]);
	}
	printf("ratio_best %.2f\nratio_median %.2f\n", ms[1][0] / ms[0][0],
	       ms[1][n_runs / 2] / ms[0][n_runs / 2]);
	git_libgit2_shutdown();
	return 0;
}
