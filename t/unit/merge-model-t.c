/*
 * Randomised model test of common/merge.c.
 *
 * Each case makes 3 to 5 replicas of one small mailbox (heads of commits
 * in one repository, objects kept in memory), applies random operations
 * to random replicas -- deliver, flag, unflag, new -> cur, move between
 * folders, expunge, create and delete a folder, change an mtime or the
 * subscriptions, and deliver one key with different content on two
 * replicas, purge a message (a forget, or the retention purge of one a
 * replica no longer names: it is listed in purged/) and restore a
 * message another replica purged -- and syncs random pairs in between, one way (criss-cross
 * histories) or both ways.  Every merge is also done with the sides
 * swapped and must give the same commit.  At the end every replica merges
 * every other; then all must hold the same tree, whose messages are
 * exactly those delivered and never expunged, each once, in a tree that
 * is well formed (keys unique, shards right, markers for the folders that
 * hold mail, mtimes records exactly for messages that need one, and
 * format_check_tree() content).
 *
 * The oracle knows only which messages were delivered, expunged and
 * purged, by content; it never calls the merge.  A purged message is in
 * no result, whatever came after (purge wins), and the final purged/
 * lists exactly the purged blobs.
 *
 *	merge-model-t [seed [cases]]
 *	MERGE_MODEL_SEED, MERGE_MODEL_CASES (default 10000),
 *	MERGE_MODEL_JOBS (default 2 processes), MERGE_MODEL_CASE=N: run
 *	only case N of the seed, tracing every step (this model only).
 *	A failed case of the format 2 model (test 3, merge-model-v2.c) is
 *	traced with MERGE_MODEL_V2_CASE=N MERGE_MODEL_CASES=N+1
 *	MERGE_MODEL_JOBS=1 (the other tests run too; test 3 then says
 *	"not ok", as it ran one case).
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <git2/sys/mempack.h>
#include <git2/sys/repository.h>

#include "../tap.h"
#include "format.h"
#include "log.h"
#include "mailbox.h"
#include "maildir_name.h"
#include "merge.h"
#include "merge-model.h"
#include "mtimes.h"
#include "purged.h"
#include "repo_p.h"
#include "strbuf.h"
#include "xalloc.h"

#define MAXR 5
#define MAXMSG 256

static struct repo *repo;
static git_odb_backend *mempack;
static int trace;

/* --- randomness ------------------------------------------------------- */

static uint64_t rng;

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static unsigned rn(unsigned n)
{
	return n ? (unsigned)(rnd() % n) : 0;
}

/* --- the case's state: replicas and the oracle ------------------------ */

struct model {
	int nrep;
	struct oid head[MAXR];
	time_t clock;
	unsigned next_key;
	/* the oracle: every message by content */
	struct oid msg[MAXMSG];
	bool expunged[MAXMSG];
	bool purged[MAXMSG];	/* forgotten or purged on some replica */
	char *key[MAXMSG];	/* owned */
	size_t nmsg;
	unsigned long long case_no;
	/* failures of this case */
	int failed;
	size_t merges, real, criss, nobase, npurged;
};

static void fail(struct model *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct model *m, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (m->failed++ < 3) {
		printf("# case %llu: %s\n", m->case_no, buf);
		fflush(stdout);
	}
}

static void tr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void tr(const char *fmt, ...)
{
	va_list ap;

	if (!trace)
		return;
	printf("#   ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* --- reading a replica's tree ------------------------------------------ */

struct entry {
	char *path;
	char *folder;
	char sub[4];
	char *name;
	struct oid id;
};

struct snap {
	struct entry *e;
	size_t n, alloc;
	char *folders[16];	/* folders with a marker */
	size_t nfolders;
	bool has_subs;
	struct oid subs;
	struct mtimes mt[256];
	int mt_bad;
	char *other[8];		/* paths that fit nothing */
	size_t nother;
};

static int snap_cb(const char *root, const git_tree_entry *te, void *data)
{
	struct snap *s = data;
	const char *name = git_tree_entry_name(te);
	char *path;

	if (git_tree_entry_type(te) != GIT_OBJECT_BLOB)
		return 0;
	path = xasprintf("%s%s", root, name);
	if (!strcmp(path, "FORMAT")) {
		free(path);
		return 0;
	}
	if (!strcmp(path, "subscriptions")) {
		s->has_subs = true;
		oid_cpy(&s->subs, OID(git_tree_entry_id(te)));
		free(path);
		return 0;
	}
	if (!strncmp(path, PURGED_DIR "/", strlen(PURGED_DIR) + 1)) {
		free(path);
		return 0;
	}
	if (!strncmp(path, "mtimes/", 7)) {
		git_blob *b;
		unsigned x = (unsigned)strtoul(path + 7, NULL, 16);
		bool canon = false;
		if (git_blob_lookup(&b, repo->git, git_tree_entry_id(te)) < 0 ||
		    mtimes_parse(&s->mt[x & 255], git_blob_rawcontent(b),
				 (size_t)git_blob_rawsize(b), &canon) < 0 ||
		    !canon || strlen(path) != 9)
			s->mt_bad++;
		git_blob_free(b);
		free(path);
		return 0;
	}
	if (!strcmp(name, "maildirfolder") && root[0] == '.' &&
	    strchr(root, '/') == root + strlen(root) - 1) {
		if (s->nfolders < 16)
			s->folders[s->nfolders++] = xstrndup(root, strlen(root) - 1);
		free(path);
		return 0;
	}
	{
		/* [<folder>/](cur|new)/<xx>/<name> */
		size_t rl = strlen(root);
		char shard[3];
		maildir_shard_hex(shard, name, maildir_key_len(name));
		if (rl >= 7 && root[rl - 1] == '/' && !strncmp(root + rl - 3, shard, 2) &&
		    root[rl - 4] == '/' && (!strncmp(root + rl - 7, "cur", 3) ||
					    !strncmp(root + rl - 7, "new", 3)) &&
		    (rl == 7 || root[rl - 8] == '/')) {
			struct entry *e;
			xgrow((void **)&s->e, &s->alloc, s->n + 1, sizeof *s->e);
			e = &s->e[s->n++];
			e->path = path;
			e->folder = xstrndup(root, rl > 7 ? rl - 8 : 0);
			memcpy(e->sub, root + rl - 7, 3);
			e->sub[3] = '\0';
			e->name = xstrdup(name);
			oid_cpy(&e->id, OID(git_tree_entry_id(te)));
			return 0;
		}
	}
	if (s->nother < 8)
		s->other[s->nother++] = path;
	else
		free(path);
	return 0;
}

static void snap_read(struct snap *s, const struct oid *commit)
{
	struct oid tid;
	git_tree *t;

	memset(s, 0, sizeof *s);
	repo_commit_tree(&tid, repo, commit);
	git_tree_lookup(&t, repo->git, GIT_OID(&tid));
	git_tree_walk(t, GIT_TREEWALK_PRE, snap_cb, s);
	git_tree_free(t);
}

static void snap_release(struct snap *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->e[i].path);
		free(s->e[i].folder);
		free(s->e[i].name);
	}
	free(s->e);
	for (size_t i = 0; i < s->nfolders; i++)
		free(s->folders[i]);
	for (size_t i = 0; i < s->nother; i++)
		free(s->other[i]);
	for (int x = 0; x < 256; x++)
		mtimes_release(&s->mt[x]);
}

static bool snap_has_folder(const struct snap *s, const char *f)
{
	if (!*f)
		return true;
	for (size_t i = 0; i < s->nfolders; i++)
		if (!strcmp(s->folders[i], f))
			return true;
	return false;
}

/* --- operations ------------------------------------------------------- */

static const char *const folder_pool[] = { ".A", ".B", ".A.Sub", ".Lists.x" };
#define NFOLDERS (sizeof folder_pool / sizeof folder_pool[0])
static const char *const subs_pool[] = { "INBOX", "A", "B", "A.Sub", "Lists.x" };

static void commit_updates(struct model *m, int r, struct update_list *ups,
			   const char *what)
{
	struct oid tree, ntree, c;

	repo_commit_tree(&tree, repo, &m->head[r]);
	if (repo_tree_update(&ntree, repo, &tree, ups->v, ups->n) < 0 ||
	    repo_commit(&c, repo, &ntree, &m->head[r], 1, what, ++m->clock,
			"model", "model@example.org") < 0) {
		fail(m, "cannot commit '%s'", what);
		return;
	}
	oid_cpy(&m->head[r], &c);
}

static char *msg_path(const char *folder, const char *sub, const char *name)
{
	struct strbuf sb = STRBUF_INIT;

	tree_message_path(&sb, folder, sub, name);
	return strbuf_detach(&sb, NULL);
}

/* a new message in replica r, folder f; its blob id is the oracle's */
static void deliver_key(struct model *m, int r, const char *key,
			const char *folder)
{
	struct oid id, tree;
	char *body, *name, *path;
	struct update_list ups = UPDATE_LIST_INIT;

	if (m->nmsg >= MAXMSG)
		return;
	body = xasprintf("Subject: message %zu of case %llu\n\n%0*u\n",
			 m->nmsg, m->case_no, (int)rn(40) + 1, rn(1000));
	repo_blob_from_buffer(&id, repo, body, strlen(body));
	oid_cpy(&m->msg[m->nmsg], &id);
	m->expunged[m->nmsg] = false;
	m->purged[m->nmsg] = false;
	m->key[m->nmsg] = xstrdup(key);
	m->nmsg++;
	name = xasprintf("%s,S=%zu", key, strlen(body));
	path = msg_path(folder, "new", name);
	update_list_add(&ups, path, &id);
	if (rn(4) == 0) {
		/* a delivery whose mtime is not the time in its name */
		struct mtime_change ch = { key, maildir_key_time(key) + 1 + rn(500) };
		repo_commit_tree(&tree, repo, &m->head[r]);
		mtimes_update(&ups, repo, &tree, &ch, 1);
	}
	tr("r%d: deliver %s (msg %zu)", r, path, m->nmsg - 1);
	commit_updates(m, r, &ups, "deliver\n");
	update_list_release(&ups);
	free(path);
	free(name);
	free(body);
}

/*
 * A new unique key.  Most fall in one of four shards, so that both sides
 * of a merge often change the same shard (the merge reads those, and
 * takes a shard only one side changed whole).
 */
static char *new_key(struct model *m)
{
	static const unsigned shards[] = { 0x11, 0x5a, 0xa7, 0xf0 };
	unsigned want = shards[rn(4)];
	bool any = rn(4) == 0;

	for (;;) {
		unsigned k = m->next_key++;
		char *key = xasprintf("%u.M%uP%lluQ1.h", 1000000 + k * 7, k,
				      m->case_no);
		if (any || maildir_shard(key, strlen(key)) == want)
			return key;
		free(key);
	}
}

static const char *random_folder(const struct snap *s)
{
	unsigned k = rn((unsigned)s->nfolders + 1);

	return k == s->nfolders ? "" : s->folders[k];
}

static void op_deliver(struct model *m, int r)
{
	struct snap s;
	char *key = new_key(m);

	snap_read(&s, &m->head[r]);
	deliver_key(m, r, key, random_folder(&s));
	snap_release(&s);
	free(key);
}

static void op_same_key(struct model *m, int r)
{
	int r2 = (r + 1 + (int)rn((unsigned)m->nrep - 1)) % m->nrep;
	char *key = new_key(m);

	struct snap s;

	deliver_key(m, r, key, "");
	snap_read(&s, &m->head[r2]);
	deliver_key(m, r2, key, random_folder(&s));
	snap_release(&s);
	free(key);
}

/* the name of entry e with its flags changed by fn */
static void rename_entry(struct model *m, int r, const struct entry *e,
			 const char *folder, const char *sub, const char *flags,
			 const char *what)
{
	struct maildir_name mn;
	struct strbuf name = STRBUF_INIT;
	struct update_list ups = UPDATE_LIST_INIT;
	char *path;

	if (maildir_name_parse(&mn, e->name) < 0) {
		fail(m, "bad name '%s' in a replica", e->name);
		return;
	}
	if (flags)
		maildir_name_set_flags(&mn, flags);
	else if (!strcmp(sub, "cur") && !mn.info)
		maildir_name_set_flags(&mn, "");
	maildir_name_format(&name, &mn);
	path = msg_path(folder, sub, name.buf);
	if (strcmp(path, e->path)) {
		update_list_add(&ups, e->path, NULL);
		update_list_add(&ups, path, &e->id);
		tr("r%d: %s %s -> %s", r, what, e->path, path);
		commit_updates(m, r, &ups, what);
	}
	update_list_release(&ups);
	free(path);
	strbuf_release(&name);
	maildir_name_release(&mn);
}

static void op_flag(struct model *m, int r)
{
	static const char letters[] = "DFRST";
	struct snap s;
	const struct entry *e;
	struct maildir_name mn;
	char flags[64], c = letters[rn(5)], *p;

	snap_read(&s, &m->head[r]);
	if (!s.n)
		goto done;
	e = &s.e[rn((unsigned)s.n)];
	if (maildir_name_parse(&mn, e->name) < 0)
		goto done;
	snprintf(flags, sizeof flags, "%s", maildir_name_flags(&mn));
	maildir_name_release(&mn);
	if ((p = strchr(flags, c)))
		memmove(p, p + 1, strlen(p));	/* unflag */
	else if (strlen(flags) < sizeof flags - 2)
		strncat(flags, &c, 1);
	/* a client that flags a new message usually moves it to cur/ */
	rename_entry(m, r, e, e->folder, rn(3) ? "cur" : e->sub, flags, "flag");
done:
	snap_release(&s);
}

static void op_seen(struct model *m, int r)
{
	struct snap s;

	snap_read(&s, &m->head[r]);
	for (size_t i = 0, k = rn((unsigned)s.n); i < s.n; i++) {
		const struct entry *e = &s.e[(i + k) % s.n];
		if (!strcmp(e->sub, "new")) {
			rename_entry(m, r, e, e->folder, "cur", NULL, "new->cur");
			break;
		}
	}
	snap_release(&s);
}

static void op_move(struct model *m, int r)
{
	struct snap s;
	const struct entry *e;
	const char *to;

	snap_read(&s, &m->head[r]);
	if (!s.n)
		goto done;
	e = &s.e[rn((unsigned)s.n)];
	to = random_folder(&s);
	if (strcmp(to, e->folder))
		rename_entry(m, r, e, to, "cur", NULL, "move");
done:
	snap_release(&s);
}

static void oracle_expunge(struct model *m, const struct oid *id)
{
	for (size_t i = 0; i < m->nmsg; i++)
		if (oid_equal(&m->msg[i], id))
			m->expunged[i] = true;
}

static void remove_entries(struct model *m, int r, const struct snap *s,
			   const char *folder, const struct entry *one)
{
	struct update_list ups = UPDATE_LIST_INIT;
	struct mtime_change *ch = xcalloc(s->n + 1, sizeof *ch);
	size_t nch = 0;
	struct oid tree;

	for (size_t i = 0; i < s->n; i++) {
		const struct entry *e = &s->e[i];
		if (one ? e != one : strcmp(e->folder, folder))
			continue;
		update_list_add(&ups, e->path, NULL);
		oracle_expunge(m, &e->id);
		ch[nch].key = xstrndup(e->name, maildir_key_len(e->name));
		ch[nch++].mtime = MTIME_NONE;
		tr("r%d: expunge %s", r, e->path);
	}
	if (!one) {
		char *marker = xasprintf("%s/maildirfolder", folder);
		update_list_add(&ups, marker, NULL);
		tr("r%d: delete folder %s", r, folder);
		free(marker);
	}
	repo_commit_tree(&tree, repo, &m->head[r]);
	mtimes_update(&ups, repo, &tree, ch, nch);
	commit_updates(m, r, &ups, one ? "expunge\n" : "delete folder\n");
	for (size_t i = 0; i < nch; i++)
		free((char *)ch[i].key);
	free(ch);
	update_list_release(&ups);
}

static void op_expunge(struct model *m, int r)
{
	struct snap s;

	snap_read(&s, &m->head[r]);
	if (s.n)
		remove_entries(m, r, &s, NULL, &s.e[rn((unsigned)s.n)]);
	snap_release(&s);
}

static void op_delete_folder(struct model *m, int r)
{
	struct snap s;

	snap_read(&s, &m->head[r]);
	if (s.nfolders)
		remove_entries(m, r, &s, s.folders[rn((unsigned)s.nfolders)], NULL);
	snap_release(&s);
}

static void op_create_folder(struct model *m, int r)
{
	struct snap s;
	const char *f = folder_pool[rn(NFOLDERS)];

	snap_read(&s, &m->head[r]);
	if (!snap_has_folder(&s, f)) {
		struct update_list ups = UPDATE_LIST_INIT;
		char *marker = xasprintf("%s/maildirfolder", f);
		struct oid empty;
		repo_blob_from_buffer(&empty, repo, "", 0);
		update_list_add(&ups, marker, &empty);
		tr("r%d: create folder %s", r, f);
		commit_updates(m, r, &ups, "create folder\n");
		update_list_release(&ups);
		free(marker);
	}
	snap_release(&s);
}

static void op_mtime(struct model *m, int r)
{
	struct snap s;
	struct update_list ups = UPDATE_LIST_INIT;

	snap_read(&s, &m->head[r]);
	if (s.n) {
		const struct entry *e = &s.e[rn((unsigned)s.n)];
		char *key = xstrndup(e->name, maildir_key_len(e->name));
		struct mtime_change ch = { key, maildir_key_time(key) };
		struct oid tree;
		if (rn(3))
			ch.mtime += 1 + rn(100);
		repo_commit_tree(&tree, repo, &m->head[r]);
		mtimes_update(&ups, repo, &tree, &ch, 1);
		if (ups.n) {
			tr("r%d: mtime of %s = %lld", r, key, ch.mtime);
			commit_updates(m, r, &ups, "mtime\n");
		}
		free(key);
	}
	update_list_release(&ups);
	snap_release(&s);
}

static void op_subscriptions(struct model *m, int r)
{
	struct snap s;
	bool in[5] = { false };
	const char *line = subs_pool[rn(5)];
	struct strbuf sb = STRBUF_INIT;
	struct update_list ups = UPDATE_LIST_INIT;
	struct oid id;

	snap_read(&s, &m->head[r]);
	if (s.has_subs) {
		git_blob *b;
		git_blob_lookup(&b, repo->git, GIT_OID(&s.subs));
		for (int i = 0; i < 5; i++) {
			char *l = xasprintf("%s\n", subs_pool[i]);
			const char *p = git_blob_rawcontent(b);
			size_t n = (size_t)git_blob_rawsize(b), ll = strlen(l);
			for (size_t o = 0; o + ll <= n; o++)
				if ((o == 0 || p[o - 1] == '\n') && !memcmp(p + o, l, ll))
					in[i] = true;
			free(l);
		}
		git_blob_free(b);
	}
	for (int i = 0; i < 5; i++)
		if (subs_pool[i] == line)
			in[i] = !in[i];
	/* a client writes them in its own order */
	for (int i = 4; i >= 0; i--)
		if (in[i])
			strbuf_addf(&sb, "%s\n", subs_pool[i]);
	repo_blob_from_buffer(&id, repo, sb.len ? sb.buf : "", sb.len);
	update_list_add(&ups, "subscriptions", &id);
	tr("r%d: subscriptions toggle %s", r, line);
	commit_updates(m, r, &ups, "subscriptions\n");
	update_list_release(&ups);
	strbuf_release(&sb);
	snap_release(&s);
}

/*
 * A purge on replica r: a forget of a message it holds, or the retention
 * purge of one it no longer names (or never got): every entry of that
 * blob goes, with its mtimes record, and the blob is listed in purged/.
 */
static void op_purge(struct model *m, int r)
{
	struct purged old = PURGED_INIT, now = PURGED_INIT;
	struct update_list ups = UPDATE_LIST_INIT;
	struct mtime_change ch[8];
	size_t nch = 0, i;
	struct oid tree;
	struct snap s;

	if (!m->nmsg)
		return;
	i = rn((unsigned)m->nmsg);
	repo_commit_tree(&tree, repo, &m->head[r]);
	if (purged_read(&old, repo, &tree) < 0) {
		fail(m, "r%d: cannot read purged/", r);
		return;
	}
	if (purged_has(&old, &m->msg[i]))
		goto done;
	snap_read(&s, &m->head[r]);
	for (size_t k = 0; k < s.n; k++)
		if (oid_equal(&s.e[k].id, &m->msg[i])) {
			update_list_add(&ups, s.e[k].path, NULL);
			if (nch < 8) {
				ch[nch].key = xstrndup(s.e[k].name,
						       maildir_key_len(s.e[k].name));
				ch[nch++].mtime = MTIME_NONE;
			}
			tr("r%d: purge %s", r, s.e[k].path);
		}
	snap_release(&s);
	tr("r%d: purge msg %zu", r, i);
	purged_union(&now, &old);
	purged_add(&now, &m->msg[i]);
	purged_updates(&ups, repo, &old, &now);
	mtimes_update(&ups, repo, &tree, ch, nch);
	commit_updates(m, r, &ups, "purge\n");
	m->expunged[i] = m->purged[i] = true;
	for (size_t k = 0; k < nch; k++)
		free((char *)ch[k].key);
done:
	update_list_release(&ups);
	purged_release(&old);
	purged_release(&now);
}

/*
 * A restore on replica r of a message some replica purged that r has
 * not heard of yet: it comes back under its key in INBOX's cur/.  Purge
 * wins: the oracle still wants it gone once r hears of the purge.
 */
static void op_restore_purged(struct model *m, int r)
{
	struct purged set = PURGED_INIT;
	struct update_list ups = UPDATE_LIST_INIT;
	struct oid tree;
	struct snap s;
	size_t i, k = rn((unsigned)m->nmsg + 1);
	bool busy = false;

	for (i = 0; i < m->nmsg; i++)
		if (m->purged[(i + k) % m->nmsg])
			break;
	if (i == m->nmsg)
		return;
	i = (i + k) % m->nmsg;
	repo_commit_tree(&tree, repo, &m->head[r]);
	purged_read(&set, repo, &tree);
	snap_read(&s, &m->head[r]);
	for (size_t e = 0; e < s.n; e++)
		busy |= oid_equal(&s.e[e].id, &m->msg[i]) ||
			!strncmp(s.e[e].name, m->key[i], strlen(m->key[i]));
	if (!busy && !purged_has(&set, &m->msg[i])) {
		git_blob *b;
		char *name, *path;
		git_blob_lookup(&b, repo->git, GIT_OID(&m->msg[i]));
		name = xasprintf("%s,S=%zu:2,S", m->key[i],
				 (size_t)git_blob_rawsize(b));
		git_blob_free(b);
		path = msg_path("", "cur", name);
		update_list_add(&ups, path, &m->msg[i]);
		tr("r%d: restore purged msg %zu at %s", r, i, path);
		commit_updates(m, r, &ups, "restore\n");
		free(path);
		free(name);
	}
	snap_release(&s);
	update_list_release(&ups);
	purged_release(&set);
}

/* --- syncing ---------------------------------------------------------- */

static int dump_cb(const char *root, const git_tree_entry *te, void *data)
{
	if (git_tree_entry_type(te) == GIT_OBJECT_BLOB)
		strbuf_addf(data, "%s%s %.7s\n", root, git_tree_entry_name(te),
			    oid_hex(OID(git_tree_entry_id(te))));
	return 0;
}

/* what differs between the trees of two commits, for a trace */
static void dump_diff(const struct oid *x, const struct oid *y)
{
	struct strbuf sb[2] = { STRBUF_INIT, STRBUF_INIT };

	for (int k = 0; k < 2; k++) {
		struct oid tid;
		git_tree *t;
		repo_commit_tree(&tid, repo, k ? y : x);
		git_tree_lookup(&t, repo->git, GIT_OID(&tid));
		git_tree_walk(t, GIT_TREEWALK_PRE, dump_cb, &sb[k]);
		git_tree_free(t);
	}
	for (int k = 0; k < 2; k++)
		for (char *l = sb[k].buf; l && *l;) {
			char *nl = strchr(l, '\n');
			size_t len = (size_t)(nl - l) + 1;
			bool found = false;
			for (char *o = sb[1 - k].buf; o && *o && !found;) {
				char *onl = strchr(o, '\n');
				found = (size_t)(onl - o) + 1 == len && !memcmp(o, l, len);
				o = onl + 1;
			}
			if (!found)
				printf("#     only in %s: %.*s\n", k ? "second" : "first",
				       (int)len - 1, l);
			l = nl + 1;
		}
	strbuf_release(&sb[0]);
	strbuf_release(&sb[1]);
}

/* replica a merges replica b's head; with both, b takes the result too */
static void sync_pair(struct model *m, int a, int b, bool both)
{
	struct merge_stats st;
	struct oid x, y;

	if (merge_commits(&x, repo, &m->head[a], &m->head[b], 0, NULL, &st) < 0 ||
	    merge_commits(&y, repo, &m->head[b], &m->head[a], 0, NULL, NULL) < 0) {
		fail(m, "merge of r%d and r%d failed: %s", a, b, log_last_error());
		return;
	}
	m->merges += 2;
	if (rn(4) == 0) {
		/* reading every shard (to count changes) gives the same commit */
		struct merge_opts count = { NULL, NULL, MERGE_COUNT };
		struct oid z;
		if (merge_commits(&z, repo, &m->head[a], &m->head[b], 0, &count,
				  NULL) < 0 || !oid_equal(&z, &x))
			fail(m, "merge(r%d, r%d) differs when counting", a, b);
		m->merges++;
	}
	if (st.kind == MERGE_MERGED) {
		m->real++;
		if (st.bases > 1)
			m->criss++;
		else if (st.bases == 0)
			m->nobase++;
	}
	if (!oid_equal(&x, &y)) {
		char hx[OID_HEXSZ + 1], hy[OID_HEXSZ + 1];
		oid_tostr(hx, sizeof hx, &x);
		oid_tostr(hy, sizeof hy, &y);
		fail(m, "merge(r%d, r%d) = %s but merge(r%d, r%d) = %s", a, b, hx,
		     b, a, hy);
		if (trace)
			dump_diff(&x, &y);
	}
	tr("sync r%d %s r%d -> %.10s", a, both ? "<->" : "<-", b,
	   oid_hex(&x));
	oid_cpy(&m->head[a], &x);
	if (both)
		oid_cpy(&m->head[b], &x);
}

/* --- the final checks ---------------------------------------------------- */

static int entry_key_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	size_t lx = maildir_key_len(x->name), ly = maildir_key_len(y->name);
	int c = strncmp(x->name, y->name, lx < ly ? lx : ly);

	return c ? c : (lx > ly) - (lx < ly);
}

static void check_final(struct model *m)
{
	struct snap s;
	struct oid tree;
	struct strbuf err = STRBUF_INIT;

	for (int r = 1; r < m->nrep; r++) {
		struct oid t0, tr_;
		repo_commit_tree(&t0, repo, &m->head[0]);
		repo_commit_tree(&tr_, repo, &m->head[r]);
		if (!oid_equal(&t0, &tr_))
			fail(m, "replicas r0 and r%d hold different trees", r);
	}
	snap_read(&s, &m->head[0]);
	/* the oracle: delivered less expunged, each exactly once */
	for (size_t i = 0; i < m->nmsg; i++) {
		size_t n = 0;
		for (size_t k = 0; k < s.n; k++)
			if (oid_equal(&s.e[k].id, &m->msg[i]))
				n++;
		if (m->expunged[i] && n)
			fail(m, "message %zu was expunged but is there %zu times", i, n);
		if (!m->expunged[i] && n != 1)
			fail(m, "message %zu is there %zu times, not once", i, n);
	}
	/* purged/: the union of every purge, no message of a listed blob */
	{
		struct purged set = PURGED_INIT;
		size_t want = 0;
		repo_commit_tree(&tree, repo, &m->head[0]);
		if (purged_read(&set, repo, &tree) < 0)
			fail(m, "purged/ unreadable");
		for (size_t i = 0; i < m->nmsg; i++) {
			bool dup = false;
			for (size_t j = 0; j < i && !dup; j++)
				dup = oid_equal(&m->msg[j], &m->msg[i]);
			if (!m->purged[i] || dup)
				continue;
			want++;
			if (!purged_has(&set, &m->msg[i]))
				fail(m, "purged message %zu not listed", i);
		}
		if (set.n != want)
			fail(m, "purged/ lists %zu blobs, not %zu", set.n, want);
		for (size_t k = 0; k < s.n; k++)
			if (purged_has(&set, &s.e[k].id))
				fail(m, "'%s' names a purged blob", s.e[k].path);
		m->npurged += want;
		purged_release(&set);
	}
	for (size_t k = 0; k < s.n; k++) {
		bool known = false;
		for (size_t i = 0; i < m->nmsg && !known; i++)
			known = oid_equal(&s.e[k].id, &m->msg[i]);
		if (!known)
			fail(m, "unknown blob at '%s'", s.e[k].path);
		if (!maildir_name_valid(s.e[k].name))
			fail(m, "invalid name '%s'", s.e[k].name);
		if (s.e[k].folder[0] && !snap_has_folder(&s, s.e[k].folder))
			fail(m, "folder '%s' holds mail but has no marker",
			     s.e[k].folder);
	}
	if (s.nother)
		fail(m, "unexpected path '%s'", s.other[0]);
	if (s.mt_bad)
		fail(m, "a malformed mtimes blob");
	/* keys unique */
	if (s.n) {
		qsort(s.e, s.n, sizeof *s.e, entry_key_cmp);
		for (size_t k = 1; k < s.n; k++)
			if (!entry_key_cmp(&s.e[k - 1], &s.e[k]))
				fail(m, "key of '%s' twice", s.e[k].name);
	}
	/* an mtimes record exactly for messages of the tree (in their shard) */
	for (unsigned x = 0; x < 256; x++)
		for (size_t i = 0; i < s.mt[x].n; i++) {
			const char *key = s.mt[x].v[i].key;
			bool found = false;
			if (maildir_shard(key, strlen(key)) != x)
				fail(m, "record of '%s' in the wrong shard", key);
			for (size_t k = 0; k < s.n && !found; k++)
				found = maildir_key_len(s.e[k].name) == strlen(key) &&
					!strncmp(s.e[k].name, key, strlen(key));
			if (!found)
				fail(m, "mtime record of '%s' without its message", key);
		}
	repo_commit_tree(&tree, repo, &m->head[0]);
	if (format_check_tree(repo, &tree, NULL, &err) < 0)
		fail(m, "format_check_tree: %s", err.buf);
	strbuf_release(&err);
	snap_release(&s);
}

/* --- one case ------------------------------------------------------------ */

static void initial(struct model *m, const struct oid *root)
{
	/* a shared history, a pre-filled one, or none at all */
	unsigned how = rn(4);

	for (int r = 0; r < m->nrep; r++)
		oid_cpy(&m->head[r], root);
	if (how == 0) {
		for (int r = 0; r < m->nrep; r++) {
			struct oid tree, c;
			repo_commit_tree(&tree, repo, root);
			repo_commit(&c, repo, &tree, NULL, 0, "new mailbox\n",
				    ++m->clock, "model", "model@example.org");
			oid_cpy(&m->head[r], &c);
		}
		tr("disjoint histories");
	} else if (how == 1) {
		unsigned n = 1 + rn(6);
		op_create_folder(m, 0);
		for (unsigned i = 0; i < n; i++)
			op_deliver(m, 0);
		for (int r = 1; r < m->nrep; r++)
			oid_cpy(&m->head[r], &m->head[0]);
	}
}

static void run_case(struct model *m, const struct oid *root)
{
	unsigned nops = 6 + rn(25);

	initial(m, root);
	for (unsigned i = 0; i < nops && !m->failed; i++) {
		int r = (int)rn((unsigned)m->nrep);
		unsigned op = rn(100);
		if (op < 18)
			op_deliver(m, r);
		else if (op < 21)
			op_same_key(m, r);
		else if (op < 32)
			op_flag(m, r);
		else if (op < 38)
			op_seen(m, r);
		else if (op < 46)
			op_move(m, r);
		else if (op < 53)
			op_expunge(m, r);
		else if (op < 57)
			op_create_folder(m, r);
		else if (op < 60)
			op_delete_folder(m, r);
		else if (op < 64)
			op_mtime(m, r);
		else if (op < 67)
			op_subscriptions(m, r);
		else if (op < 71)
			op_purge(m, r);
		else if (op < 73)
			op_restore_purged(m, r);
		else {
			int b = (r + 1 + (int)rn((unsigned)m->nrep - 1)) % m->nrep;
			sync_pair(m, r, b, rn(2));
		}
	}
	/* the final round: everyone merges everyone, in a random order */
	{
		int order[MAXR];
		for (int r = 0; r < m->nrep; r++)
			order[r] = r;
		for (int r = m->nrep - 1; r > 0; r--) {
			int k = (int)rn((unsigned)r + 1), t = order[r];
			order[r] = order[k];
			order[k] = t;
		}
		for (int pass = 0; pass < 2 && !m->failed; pass++)
			for (int i = 0; i < m->nrep; i++)
				for (int j = 0; j < m->nrep; j++)
					if (i != j)
						sync_pair(m, order[i], order[j], false);
	}
	if (!m->failed)
		check_final(m);
}

/* --- driver ---------------------------------------------------------------- */

struct totals {
	unsigned long long cases, failed, merges, messages, real, criss, nobase,
		purged;
};

static int worker(int job, int jobs, uint64_t seed,
		  unsigned long long ncases, long long only, struct totals *t)
{
	git_odb *odb;
	struct repo_batch batch = REPO_BATCH_INIT;
	struct oid root, tree, fmt;
	struct repo_update up = { FORMAT_PATH, &fmt };

	/*
	 * A repository that lives in memory only: objects in a mempack
	 * (dropped after each case), no refs (the heads are in struct model).
	 */
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
	repo_batch_begin(&batch, repo);	/* nothing to sync: no files */
	memset(t, 0, sizeof *t);
	for (unsigned long long c = (unsigned long long)job; c < ncases;
	     c += (unsigned long long)jobs) {
		struct model *m;
		if (only >= 0 && c != (unsigned long long)only)
			continue;
		m = xcalloc(1, sizeof *m);
		m->case_no = c;
		rng = splitmix(seed ^ splitmix(c)) | 1;
		m->nrep = 3 + (int)rn(3);
		m->clock = 1700000000;
		/* the root commit every replica starts from: FORMAT alone */
		if (repo_blob_from_buffer(&fmt, repo, FORMAT_CONTENT,
					  strlen(FORMAT_CONTENT)) < 0 ||
		    repo_tree_update(&tree, repo, NULL, &up, 1) < 0 ||
		    repo_commit(&root, repo, &tree, NULL, 0, "new mailbox\n",
				m->clock, NULL, NULL) < 0)
			log_fatal("cannot write the root commit");
		tr("case %llu: %d replicas", c, m->nrep);
		run_case(m, &root);
		t->cases++;
		t->merges += m->merges;
		t->messages += m->nmsg;
		t->real += m->real;
		t->criss += m->criss;
		t->nobase += m->nobase;
		t->purged += m->npurged;
		for (size_t i = 0; i < m->nmsg; i++)
			free(m->key[i]);
		if (m->failed) {
			t->failed++;
			printf("# case %llu failed; rerun it with MERGE_MODEL_SEED=%" PRIu64
			       " MERGE_MODEL_CASE=%llu\n", c, seed, c);
			fflush(stdout);
		}
		free(m);
		/* the case's objects go; the next starts from an empty pack */
		git_mempack_reset(mempack);
		if (t->failed >= 5)
			break;
	}
	repo_batch_end(&batch, false);
	repo_free(repo);
	return 0;
}

int main(int argc, char **argv)
{
	const char *e;
	uint64_t seed;
	unsigned long long ncases = 10000;
	long long only = -1;
	int jobs = 2, fds[MAXR * 4][2];
	struct totals all = { 0, 0, 0, 0, 0, 0, 0, 0 };
	struct timespec t0, t1;

	log_init("merge-model-t", LOG_TO_STDERR, LOG_LVL_ERROR);
	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if ((e = getenv("MERGE_MODEL_SEED")) && *e)
		seed = strtoull(e, NULL, 0);
	if ((e = getenv("MERGE_MODEL_CASES")) && *e)
		ncases = strtoull(e, NULL, 0);
	if ((e = getenv("MERGE_MODEL_JOBS")) && *e)
		jobs = atoi(e);
	if ((e = getenv("MERGE_MODEL_CASE")) && *e) {
		only = atoll(e);
		trace = 1;
		jobs = 1;
	}
	if (argc > 1)
		seed = strtoull(argv[1], NULL, 0);
	if (argc > 2)
		ncases = strtoull(argv[2], NULL, 0);
	if (jobs < 1 || jobs > (int)(sizeof fds / sizeof fds[0]))
		jobs = 1;
	printf("# seed %" PRIu64 ", %llu cases, %d processes\n", seed, ncases, jobs);
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int j = 0; j < jobs; j++) {
		pid_t pid;
		if (pipe(fds[j]) < 0)
			log_fatal("pipe failed");
		pid = fork();
		if (pid < 0)
			log_fatal("fork failed");
		if (pid == 0) {
			struct totals t;
			close(fds[j][0]);
			worker(j, jobs, seed, ncases, only, &t);
			if (write(fds[j][1], &t, sizeof t) != (ssize_t)sizeof t)
				_exit(2);
			git_libgit2_shutdown();
			_exit(0);
		}
		close(fds[j][1]);
	}
	for (int j = 0; j < jobs; j++) {
		struct totals t;
		int status;
		if (read(fds[j][0], &t, sizeof t) != (ssize_t)sizeof t) {
			memset(&t, 0, sizeof t);
			t.failed = 1;
			diag("worker %d died", j);
		}
		close(fds[j][0]);
		all.cases += t.cases;
		all.failed += t.failed;
		all.merges += t.merges;
		all.messages += t.messages;
		all.real += t.real;
		all.criss += t.criss;
		all.nobase += t.nobase;
		all.purged += t.purged;
		wait(&status);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	diag("%llu cases, %llu merges (%llu new merge commits, %llu of them "
	     "criss-cross, %llu without a base), %llu messages, %llu purged "
	     "in %.1f s",
	     all.cases, all.merges, all.real, all.criss, all.nobase, all.messages,
	     all.purged,
	     (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	ok(all.cases == (only >= 0 ? 1 : ncases) || all.failed,
	   "ran every case");
	if (!ok(all.failed == 0, "%llu random cases: replicas converge, nothing "
		"lost or resurrected, merges commutative (seed %" PRIu64 ")",
		all.cases, seed))
		diag("seed %" PRIu64 " failed", seed);
	if (only < 0) {
		unsigned long long numbered, bad;

		bad = v2_run_jobs(seed, ncases, jobs);
		ok(bad == 0, "%llu random cases of format 2 trees through the "
		   "merge (2-4 replicas, number at apply): merges commutative, "
		   "trees valid, no (folder, UIDVALIDITY, UID) ever names two "
		   "messages, replicas converge, nothing lost (seed %" PRIu64 ")",
		   ncases, seed);

		bad = imap_model_run(seed, ncases, &numbered);
		diag("IMAP records: %llu UIDs given at apply to messages "
		     "merges left unnumbered", numbered);
		ok(bad == 0, "%llu random cases of the IMAP rules (2-4 "
		   "replicas, number at apply): commutative, no UID ever names "
		   "two messages, kept UIDs never shown by the other side, "
		   "converge (seed %" PRIu64 ")", ncases, seed);
	}
	return tap_done();
}
