/*
 * The model test of format 2 trees through the real merge
 * (merge_commits(), common/merge_records.c), part of merge-model-t.
 *
 * Each case makes 2 to 4 replicas of a small format 2 mailbox (commits
 * in an in-memory repository) and applies random operations to random
 * replicas, as a replica's commits would: deliver (a UID from the
 * replica's own slot in the folder, above its uidnext), expunge, change
 * flags, add or remove a keyword in a random case spelling, move to
 * another folder (a new UID there), create and delete a folder (a new
 * UIDVALIDITY each time).  Random pairs sync in between: replica a
 * merges b's head (merge_commits both ways round: the same commit), and
 * then applies it the way "number at apply" says: the messages the
 * merge left unnumbered get UIDs from a's own slot above the folder's
 * uidnext, committed on top of the merge; with "both", b takes the
 * merge and numbers it from its own slot too.  Some cases start from
 * unrelated histories (each replica its own INBOX UIDVALIDITY).
 *
 * Checked: every tree a replica shows is valid (format_check_tree()),
 * alone and against the replica's previous head (an ancestor: the
 * format 2 ancestor rule, "-" records included);
 * a merge that reads every shard (MERGE_COUNT) writes the same commit;
 * every UID a merge kept is one both sides gave the message there, or at
 * or above the uidnext of the side without it (Dovecot takes no UID
 * below its UIDNEXT);
 * the recorder: every (folder, UIDVALIDITY, UID) any replica ever showed
 * names one message (by content); at the end, after every replica
 * merged every other until they agree, all hold the same tree, whose
 * messages are those delivered and never expunged, each once.
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

#include "format.h"
#include "imaprec.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "merge.h"
#include "merge-model.h"
#include "mtimes.h"
#include "purged.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "xalloc.h"

#define VR 4			/* replicas at most */
#define VM 64			/* messages in one tree at most */
#define VF 4			/* folders, INBOX included */
#define VMSG 160		/* messages delivered in one case at most */

static const char *const vfolders[VF] = { "", ".A", ".B", ".A.Sub" };
static const char *const vkw[][2] = {
	{ "$Junk", "$junk" }, { "$Forwarded", "$FORWARDED" },
	{ "work", "Work" }, { "NonJunk", "nonjunk" },
};
#define VKW (sizeof vkw / sizeof vkw[0])

struct vmsg {
	char key[48];
	int folder;		/* index in vfolders */
	bool cur;
	char flags[8];
	struct oid blob;
	uint32_t uid;		/* 0: unnumbered */
	unsigned kw, sp;	/* bit w: name w, its second spelling */
};

struct vstate {
	bool has[VF];		/* folders that exist (INBOX always) */
	struct imap_folder f[VF];
	struct vmsg m[VM];
	size_t n;
	unsigned slots;		/* bit r: the line "r r<r>" */
	struct oid pg[VMSG];	/* purged/ */
	size_t npg;
};

struct vcase {
	struct repo *repo;
	uint64_t rng;
	unsigned long long no;
	int n;
	struct oid head[VR];
	time_t clock;
	uint32_t vclock;	/* UIDVALIDITYs */
	unsigned next_key;
	struct oid msg[VMSG];	/* the oracle */
	bool expunged[VMSG];
	bool purged[VMSG];
	size_t nmsg;
	struct strmap seen;	/* "<folder> <v> <uid>" -> message */
	unsigned long long failed, merges, numbered, unnumbered;
	const uint8_t *bytes;	/* fuzzing: the choices, one byte each */
	size_t nbytes, pos;
};

static long long vtrace = -1;	/* MERGE_MODEL_V2_CASE: trace that case */

__attribute__((format(printf, 2, 3)))
static void vtr(struct vcase *c, const char *fmt, ...)
{
	va_list ap;

	if ((long long)c->no != vtrace)
		return;
	printf("#   ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static uint64_t vrnd(struct vcase *c)
{
	if (c->bytes)
		return c->pos < c->nbytes ? c->bytes[c->pos++] : 0;
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545f4914f6cdd1dULL;
}

static unsigned vrn(struct vcase *c, unsigned n)
{
	return n ? (unsigned)(vrnd(c) % n) : 0;
}

__attribute__((format(printf, 2, 3)))
static void vfail(struct vcase *c, const char *fmt, ...)
{
	va_list ap;

	if (c->failed++ < 3) {
		printf("# format 2 model, case %llu: ", c->no);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
		fflush(stdout);
	}
}

/* --- a state as a tree, and back --------------------------------------- */

static void add_blob(struct vcase *c, struct update_list *ups,
		     const char *path, const char *data, size_t len)
{
	struct oid id;

	if (repo_blob_from_buffer(&id, c->repo, len ? data : "", len) < 0)
		log_fatal("blob");
	update_list_add(ups, path, &id);
}

static void kw_list(const char **v, size_t *n, const struct vmsg *m)
{
	*n = 0;
	for (unsigned w = 0; w < VKW; w++)
		if (m->kw & (1u << w))
			v[(*n)++] = vkw[w][(m->sp >> w) & 1];
}

static void state_tree(struct oid *out, struct vcase *c, const struct vstate *s)
{
	struct update_list ups = UPDATE_LIST_INIT;
	struct imap_recs recs[256];
	struct strbuf sb = STRBUF_INIT;

	memset(recs, 0, sizeof recs);
	add_blob(c, &ups, FORMAT_PATH, "maildag 2\n", 10);
	for (int r = 0; r < VR; r++)
		if (s->slots & (1u << r))
			strbuf_addf(&sb, "%d r%d\n", r, r);
	if (sb.len)
		add_blob(c, &ups, IMAPREC_SLOTS, sb.buf, sb.len);
	for (int f = 0; f < VF; f++) {
		char *p;
		if (!s->has[f])
			continue;
		strbuf_reset(&sb);
		imap_folder_format(&sb, &s->f[f]);
		p = f ? xasprintf("%s/" IMAPREC_FOLDER, vfolders[f]) :
			xstrdup(IMAPREC_FOLDER);
		add_blob(c, &ups, p, sb.buf, sb.len);
		free(p);
		if (f) {
			p = xasprintf("%s/maildirfolder", vfolders[f]);
			add_blob(c, &ups, p, "", 0);
			free(p);
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct vmsg *m = &s->m[i];
		const char *kv[VKW];
		size_t nk;
		char *name = m->cur ? xasprintf("%s:2,%s", m->key, m->flags) :
				      xstrdup(m->key);
		strbuf_reset(&sb);
		tree_message_path(&sb, vfolders[m->folder], m->cur ? "cur" : "new",
				  name);
		update_list_add(&ups, sb.buf, &m->blob);
		kw_list(kv, &nk, m);
		imap_recs_set(&recs[maildir_shard(m->key, strlen(m->key))], m->key,
			      m->uid, kv, nk);
		free(name);
	}
	for (unsigned x = 0; x < 256; x++) {
		struct strbuf path = STRBUF_INIT;
		if (!recs[x].n)
			continue;
		strbuf_reset(&sb);
		imap_recs_format(&sb, &recs[x]);
		imap_recs_shard_path(&path, x);
		add_blob(c, &ups, path.buf, sb.buf, sb.len);
		strbuf_release(&path);
		imap_recs_release(&recs[x]);
	}
	{
		struct purged none = PURGED_INIT, set = PURGED_INIT;
		for (size_t i = 0; i < s->npg; i++)
			purged_add(&set, &s->pg[i]);
		purged_updates(&ups, c->repo, &none, &set);
		purged_release(&set);
	}
	if (repo_tree_update(out, c->repo, NULL, ups.v, ups.n) < 0)
		log_fatal("tree");
	update_list_release(&ups);
	strbuf_release(&sb);
}

struct vread {
	struct vcase *c;
	struct vstate *s;
	struct imap_recs recs;	/* all of them, any shard */
	bool bad;
};

static int folder_index(const char *name, size_t len)
{
	for (int f = 1; f < VF; f++)
		if (strlen(vfolders[f]) == len && !strncmp(vfolders[f], name, len))
			return f;
	return len ? -1 : 0;
}

static void read_blob(struct strbuf *out, struct vcase *c,
		      const git_tree_entry *te)
{
	strbuf_reset(out);
	if (repo_blob_read(out, c->repo, OID(git_tree_entry_id(te))) < 0)
		log_fatal("read blob");
}

static int read_cb(const char *root, const git_tree_entry *te, void *data)
{
	struct vread *rd = data;
	const char *name = git_tree_entry_name(te);
	size_t rl = strlen(root);
	struct strbuf buf = STRBUF_INIT;
	struct layout_path lp;
	char *path;
	int f;

	if (git_tree_entry_type(te) != GIT_OBJECT_BLOB)
		return 0;
	path = xasprintf("%s%s", root, name);
	if (!strcmp(name, IMAPREC_FOLDER)) {
		f = folder_index(root, rl ? rl - 1 : 0);
		read_blob(&buf, rd->c, te);
		if (f < 0 || imap_folder_parse(&rd->s->f[f], buf.buf, buf.len,
					       NULL) < 0)
			rd->bad = true;
		else
			rd->s->has[f] = true;
	} else if (!strncmp(path, IMAPREC_DIR "/", 5)) {
		struct imap_recs one = IMAP_RECS_INIT;
		read_blob(&buf, rd->c, te);
		if (imap_recs_parse(&one, buf.buf, buf.len, NULL, NULL) < 0)
			rd->bad = true;
		for (size_t i = 0; i < one.n; i++)
			imap_recs_set(&rd->recs, one.v[i].key, one.v[i].uid,
				      (const char *const *)one.v[i].kw,
				      one.v[i].nkw);
		imap_recs_release(&one);
	} else if (!strncmp(path, PURGED_DIR "/", strlen(PURGED_DIR) + 1)) {
		struct purged one = PURGED_INIT;
		struct strbuf why = STRBUF_INIT;
		unsigned x = (unsigned)strtoul(name, NULL, 16);
		read_blob(&buf, rd->c, te);
		if (purged_parse(&one, buf.buf, buf.len, x, &why) < 0)
			rd->bad = true;
		strbuf_release(&why);
		for (size_t i = 0; i < one.n && rd->s->npg < VMSG; i++)
			oid_cpy(&rd->s->pg[rd->s->npg++], &one.v[i]);
		purged_release(&one);
	} else if (!strcmp(path, IMAPREC_SLOTS)) {
		read_blob(&buf, rd->c, te);
		for (int r = 0; r < VR; r++) {
			char l[16];
			snprintf(l, sizeof l, "%d r%d\n", r, r);
			if (strstr(buf.buf, l))
				rd->s->slots |= 1u << r;
		}
	} else if (layout_parse_tree_path(&lp, path) == 0) {
		struct vmsg *m;
		struct maildir_name mn;
		f = folder_index(path, lp.folder_len);
		if (f < 0 || rd->s->n >= VM || maildir_name_parse(&mn, lp.name) < 0) {
			rd->bad = true;
		} else {
			m = &rd->s->m[rd->s->n++];
			memset(m, 0, sizeof *m);
			snprintf(m->key, sizeof m->key, "%s", mn.key);
			m->folder = f;
			m->cur = lp.sub == 0;
			snprintf(m->flags, sizeof m->flags, "%s",
				 maildir_name_flags(&mn));
			oid_cpy(&m->blob, OID(git_tree_entry_id(te)));
			maildir_name_release(&mn);
		}
	}
	strbuf_release(&buf);
	free(path);
	return 0;
}

/* The state of commit id; false (failed) when it does not fit the model. */
static bool state_read(struct vstate *s, struct vcase *c, const struct oid *id)
{
	struct vread rd = { c, s, IMAP_RECS_INIT, false };
	struct oid tid;
	git_tree *t;

	memset(s, 0, sizeof *s);
	if (repo_commit_tree(&tid, c->repo, id) < 0 ||
	    git_tree_lookup(&t, c->repo->git, GIT_OID(&tid)) < 0)
		log_fatal("read commit");
	git_tree_walk(t, GIT_TREEWALK_PRE, read_cb, &rd);
	git_tree_free(t);
	for (size_t i = 0; i < s->n; i++) {
		struct vmsg *m = &s->m[i];
		const struct imap_rec *rec = imap_recs_find(&rd.recs, m->key);
		if (!rec) {
			rd.bad = true;
			continue;
		}
		m->uid = rec->uid;
		for (size_t k = 0; k < rec->nkw; k++)
			for (unsigned w = 0; w < VKW; w++)
				for (unsigned v = 0; v < 2; v++)
					if (!strcmp(rec->kw[k], vkw[w][v])) {
						m->kw |= 1u << w;
						m->sp |= v << w;
					}
	}
	imap_recs_release(&rd.recs);
	if (rd.bad || !s->has[0])
		vfail(c, "a tree that does not fit the model");
	return !rd.bad;
}

/* --- the recorder ------------------------------------------------------ */

static size_t msg_index(struct vcase *c, const struct oid *blob)
{
	for (size_t i = 0; i < c->nmsg; i++)
		if (oid_equal(&c->msg[i], blob))
			return i;
	return (size_t)-1;
}

static void record(struct vcase *c, const struct vstate *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct vmsg *m = &s->m[i];
		char k[64];
		size_t at, me = msg_index(c, &m->blob);

		if (!m->uid)
			continue;
		snprintf(k, sizeof k, "%d %u %u", m->folder,
			 s->f[m->folder].uidvalidity, m->uid);
		if (!strmap_get(&c->seen, k, &at))
			strmap_put(&c->seen, k, me);
		else if (at != me)
			vfail(c, "UID %u of UIDVALIDITY %u in '%s' names messages "
			      "%zu and %zu", m->uid, s->f[m->folder].uidvalidity,
			      vfolders[m->folder], at, me);
	}
}

/*
 * Is commit's tree valid: alone, and (anc not NULL) checked against the
 * tree of anc, an ancestor, as a replica checks a peer's history (the
 * ancestor rule of format_imap_since.c: UIDs kept or at or above the
 * ancestor's uidnext, "-" records taken as they are)?
 */
static void check_tree(struct vcase *c, const struct oid *commit,
		       const struct oid *anc)
{
	struct strbuf err = STRBUF_INIT;
	struct oid tid, aid;

	repo_commit_tree(&tid, c->repo, commit);
	if (format_check_tree(c->repo, &tid, NULL, &err) < 0)
		vfail(c, "invalid tree: %s", err.buf);
	strbuf_reset(&err);
	if (anc && !oid_equal(anc, commit)) {
		repo_commit_tree(&aid, c->repo, anc);
		if (format_check_tree_since(c->repo, &tid, &aid, &err) < 0)
			vfail(c, "invalid against an ancestor: %s", err.buf);
	}
	strbuf_release(&err);
}

/* Replica r commits state s on top of its head. */
static void commit_state(struct vcase *c, int r, struct vstate *s,
			 const char *what)
{
	struct oid tree, id;

	s->slots |= 1u << r;
	state_tree(&tree, c, s);
	if (repo_commit(&id, c->repo, &tree, &c->head[r], 1, what, ++c->clock,
			"model", "model@example.org") < 0)
		log_fatal("commit");
	oid_cpy(&c->head[r], &id);
	vtr(c, "r%d: %.*s -> %.8s", r, (int)strlen(what) - 1, what,
	    oid_hex(&id));
	for (int f = 0; f < VF; f++)
		if (s->has[f])
			vtr(c, "    folder '%s' %u %u", vfolders[f],
			    s->f[f].uidvalidity, s->f[f].uidnext);
	for (size_t i = 0; i < s->n; i++)
		vtr(c, "    msg %zu '%s' uid %u", msg_index(c, &s->m[i].blob),
		    vfolders[s->m[i].folder], s->m[i].uid);
	record(c, s);
}

/* --- operations -------------------------------------------------------- */

static char *new_key(struct vcase *c)
{
	static const unsigned shards[] = { 0x11, 0x5a, 0xa7 };
	unsigned want = shards[vrn(c, 3)];
	bool any = vrn(c, 3) == 0;

	for (;;) {
		unsigned k = c->next_key++;
		char *key = xasprintf("%u.M%uP%lluQ2.h", 1000000 + k * 7, k, c->no);
		if (any || maildir_shard(key, strlen(key)) == want)
			return key;
		free(key);
	}
}

/* A new UID for a message replica r puts in folder f of s. */
static uint32_t take_uid(struct vstate *s, int f, int r)
{
	uint32_t u = imap_uid_alloc(s->f[f].uidnext, (unsigned)r, 1);

	if (u)
		s->f[f].uidnext = u + 1;
	return u;
}

static int some_folder(struct vcase *c, const struct vstate *s)
{
	int f = (int)vrn(c, VF);

	return s->has[f] ? f : 0;
}

static void op_deliver(struct vcase *c, int r, struct vstate *s)
{
	struct vmsg *m;
	char *key, *body;
	int f = some_folder(c, s);

	if (s->n >= VM || c->nmsg >= VMSG)
		return;
	m = &s->m[s->n];
	memset(m, 0, sizeof *m);
	if (!(m->uid = take_uid(s, f, r)))
		return;
	key = new_key(c);
	snprintf(m->key, sizeof m->key, "%s", key);
	body = xasprintf("Subject: %s\n\nmessage %zu of case %llu\n", key,
			 c->nmsg, c->no);
	repo_blob_from_buffer(&m->blob, c->repo, body, strlen(body));
	oid_cpy(&c->msg[c->nmsg], &m->blob);
	c->expunged[c->nmsg++] = false;
	m->folder = f;
	m->kw = vrn(c, 4) ? 0 : 1u << vrn(c, VKW);
	s->n++;
	commit_state(c, r, s, "deliver\n");
	free(body);
	free(key);
}

static void drop(struct vcase *c, struct vstate *s, size_t i)
{
	size_t k = msg_index(c, &s->m[i].blob);

	if (k != (size_t)-1)
		c->expunged[k] = true;
	s->m[i] = s->m[--s->n];
}

static void op_expunge(struct vcase *c, int r, struct vstate *s)
{
	if (!s->n)
		return;
	drop(c, s, vrn(c, (unsigned)s->n));
	commit_state(c, r, s, "expunge\n");
}

static void op_flag(struct vcase *c, int r, struct vstate *s)
{
	static const char *const fl[] = { "", "S", "FS", "RS", "DS" };
	struct vmsg *m;

	if (!s->n)
		return;
	m = &s->m[vrn(c, (unsigned)s->n)];
	m->cur = true;
	snprintf(m->flags, sizeof m->flags, "%s", fl[vrn(c, 5)]);
	commit_state(c, r, s, "flag\n");
}

static void op_keyword(struct vcase *c, int r, struct vstate *s)
{
	struct vmsg *m;
	unsigned w = vrn(c, VKW);

	if (!s->n)
		return;
	m = &s->m[vrn(c, (unsigned)s->n)];
	if (!(m->kw & (1u << w)) || vrn(c, 3))
		m->kw ^= 1u << w;	/* add or remove the name */
	if (vrn(c, 2))
		m->sp ^= 1u << w;	/* (or only) another spelling */
	commit_state(c, r, s, "keyword\n");
}

static void op_move(struct vcase *c, int r, struct vstate *s)
{
	struct vmsg *m;
	int f = some_folder(c, s);
	uint32_t u;

	if (!s->n)
		return;
	m = &s->m[vrn(c, (unsigned)s->n)];
	if (m->folder == f || !(u = take_uid(s, f, r)))
		return;
	m->folder = f;
	m->uid = u;
	m->cur = true;
	commit_state(c, r, s, "move\n");
}

static void op_folder(struct vcase *c, int r, struct vstate *s)
{
	int f = 1 + (int)vrn(c, VF - 1);

	if (s->has[f]) {
		for (size_t i = s->n; i-- > 0;)
			if (s->m[i].folder == f)
				drop(c, s, i);
		s->has[f] = false;
		commit_state(c, r, s, "delete folder\n");
		return;
	}
	s->has[f] = true;
	s->f[f] = (struct imap_folder){ c->vclock += 1 << 20, 1 };
	commit_state(c, r, s, "create folder\n");
}

/* A forget or a retention purge on r: the blob goes, and is listed. */
static void op_purge(struct vcase *c, int r, struct vstate *s)
{
	size_t k;

	if (!c->nmsg)
		return;
	k = vrn(c, (unsigned)c->nmsg);
	for (size_t i = 0; i < s->npg; i++)
		if (oid_equal(&s->pg[i], &c->msg[k]))
			return;
	for (size_t i = s->n; i-- > 0;)
		if (oid_equal(&s->m[i].blob, &c->msg[k]))
			drop(c, s, i);
	oid_cpy(&s->pg[s->npg++], &c->msg[k]);
	c->expunged[k] = c->purged[k] = true;
	commit_state(c, r, s, "purge\n");
}

/* --- syncing ------------------------------------------------------------- */

/* Replica r applies the tree at its head: it numbers what is unnumbered. */
static void apply(struct vcase *c, int r, const struct oid *before)
{
	struct vstate s;
	size_t todo = 0;
	struct oid merged;

	check_tree(c, &c->head[r], before);
	oid_cpy(&merged, &c->head[r]);
	if (!state_read(&s, c, &c->head[r]))
		return;
	for (size_t i = 0; i < s.n; i++) {
		struct vmsg *m = &s.m[i];
		if (m->uid)
			continue;
		todo++;
		if (!(m->uid = take_uid(&s, m->folder, r)))
			vfail(c, "no UID left");
	}
	c->unnumbered += todo;
	c->numbered += todo;
	if (todo) {
		commit_state(c, r, &s, "number\n");
		check_tree(c, &c->head[r], &merged);
	}
}

/* The message of blob in s, or NULL. */
static const struct vmsg *find_msg(const struct vstate *s, const struct oid *blob)
{
	for (size_t i = 0; i < s->n; i++)
		if (oid_equal(&s->m[i].blob, blob))
			return &s->m[i];
	return NULL;
}

/*
 * Every UID the merge x of o and t kept is one both gave the message
 * there, or one the side without it never showed: at or above its
 * uidnext (else that replica's Dovecot could not take it, E4).
 */
static void check_kept(struct vcase *c, const struct vstate *x,
		       const struct vstate *o, const struct vstate *t)
{
	const struct vstate *sd[2] = { o, t };

	for (size_t i = 0; i < x->n; i++) {
		const struct vmsg *m = &x->m[i];
		int f = m->folder;

		if (!m->uid)
			continue;
		for (int k = 0; k < 2; k++) {
			const struct vstate *y = sd[k];
			const struct vmsg *ym = find_msg(y, &m->blob);
			if (!y->has[f] ||
			    y->f[f].uidvalidity != x->f[f].uidvalidity ||
			    (ym && ym->folder == f && ym->uid == m->uid))
				continue;
			if (m->uid < y->f[f].uidnext)
				vfail(c, "UID %u kept in '%s' below a side's uidnext "
				      "%u", m->uid, vfolders[f], y->f[f].uidnext);
		}
	}
}

static void sync_pair(struct vcase *c, int a, int b, bool both)
{
	struct vstate so, st, sx;
	struct oid prev[2];
	struct oid x, y;

	if (merge_commits(&x, c->repo, &c->head[a], &c->head[b], 0, NULL,
			  NULL) < 0 ||
	    merge_commits(&y, c->repo, &c->head[b], &c->head[a], 0, NULL,
			  NULL) < 0) {
		vfail(c, "merge of r%d and r%d failed: %s", a, b,
		      log_last_error());
		return;
	}
	c->merges += 2;
	if (vrn(c, 4) == 0) {
		/* reading every shard (to count changes) gives the same commit */
		struct merge_opts count = { NULL, NULL, MERGE_COUNT };
		struct oid z;
		if (merge_commits(&z, c->repo, &c->head[a], &c->head[b], 0,
				  &count, NULL) < 0 || !oid_equal(&z, &x))
			vfail(c, "merge(r%d, r%d) differs when counting", a, b);
		c->merges++;
	}
	vtr(c, "sync r%d %s r%d -> %.8s", a, both ? "<->" : "<-", b,
	    oid_hex(&x));
	if (!oid_equal(&x, &y))
		vfail(c, "merge(r%d, r%d) != merge(r%d, r%d)", a, b, b, a);
	if (state_read(&so, c, &c->head[a]) && state_read(&st, c, &c->head[b]) &&
	    state_read(&sx, c, &x))
		check_kept(c, &sx, &so, &st);
	oid_cpy(&prev[0], &c->head[a]);
	oid_cpy(&prev[1], &c->head[b]);
	oid_cpy(&c->head[a], &x);
	apply(c, a, &prev[0]);
	if (both) {
		oid_cpy(&c->head[b], &x);
		apply(c, b, &prev[1]);
	}
}

static bool same_trees(struct vcase *c)
{
	struct oid t0, t;

	repo_commit_tree(&t0, c->repo, &c->head[0]);
	for (int r = 1; r < c->n; r++) {
		repo_commit_tree(&t, c->repo, &c->head[r]);
		if (!oid_equal(&t0, &t))
			return false;
	}
	return true;
}

static void check_final(struct vcase *c)
{
	struct vstate s;

	if (!same_trees(c)) {
		vfail(c, "replicas differ after healing");
		return;
	}
	if (!state_read(&s, c, &c->head[0]))
		return;
	for (size_t i = 0; i < c->nmsg; i++) {
		size_t n = 0;
		for (size_t k = 0; k < s.n; k++)
			n += oid_equal(&s.m[k].blob, &c->msg[i]);
		if (c->expunged[i] ? n != 0 : n != 1)
			vfail(c, "message %zu is there %zu times (expunged: %d)",
			      i, n, c->expunged[i]);
		n = 0;
		for (size_t k = 0; k < s.npg; k++)
			n += oid_equal(&s.pg[k], &c->msg[i]);
		if (n != (c->purged[i] ? 1 : 0))
			vfail(c, "message %zu listed %zu times in purged/ "
			      "(purged: %d)", i, n, c->purged[i]);
	}
	for (size_t k = 0; k < s.n; k++)
		if (!s.m[k].uid)
			vfail(c, "a message without a UID after healing");
}

static void run_vcase(struct vcase *c)
{
	struct vstate s;
	struct oid tree, root;
	bool apart = vrn(c, 4) == 0;

	for (int r = 0; r < c->n; r++) {
		if (r == 0 || apart) {
			memset(&s, 0, sizeof s);
			s.has[0] = true;
			s.f[0] = (struct imap_folder){ c->vclock += 1 << 20, 1 };
			state_tree(&tree, c, &s);
			repo_commit(&root, c->repo, &tree, NULL, 0, "new mailbox\n",
				    ++c->clock, "model", "model@example.org");
		}
		oid_cpy(&c->head[r], &root);
	}
	for (unsigned i = 0, nops = c->bytes ? 400 : 10 + vrn(c, 30);
	     i < nops && !c->failed; i++) {
		int r = (int)vrn(c, (unsigned)c->n);
		unsigned op = vrn(c, 100);

		if (c->bytes && c->pos >= c->nbytes)
			break;

		if (op >= 70) {
			int b = (r + 1 + (int)vrn(c, (unsigned)c->n - 1)) % c->n;
			sync_pair(c, r, b, vrn(c, 2));
			continue;
		}
		if (!state_read(&s, c, &c->head[r]))
			break;
		if (op < 25)
			op_deliver(c, r, &s);
		else if (op < 33)
			op_expunge(c, r, &s);
		else if (op < 43)
			op_flag(c, r, &s);
		else if (op < 55)
			op_keyword(c, r, &s);
		else if (op < 65)
			op_move(c, r, &s);
		else if (op < 67)
			op_folder(c, r, &s);
		else
			op_purge(c, r, &s);
	}
	/* heal: everyone merges everyone until they agree */
	for (int round = 0; round < 8 && !c->failed && !same_trees(c); round++)
		for (int a = 0; a < c->n; a++)
			for (int b = 0; b < c->n; b++)
				if (a != b)
					sync_pair(c, a, b, false);
	if (!c->failed)
		check_final(c);
}

static struct repo *mem_repo(git_odb_backend **mempack)
{
	struct repo *r = xcalloc(1, sizeof *r);
	git_odb *odb;

	r->lock_fd = -1;
	if (git_repository_new(&r->git) < 0 || git_odb_new(&odb) < 0 ||
	    git_mempack_new(mempack) < 0 ||
	    git_odb_add_backend(odb, *mempack, 999) < 0 ||
	    git_repository_set_odb(r->git, odb) < 0)
		log_fatal("in-memory repository: %s", repo_git_error());
	git_odb_free(odb);
	return r;
}

unsigned long long v2_model_run(uint64_t seed, unsigned long long ncases,
				int job, int jobs, struct v2_totals *t)
{
	git_odb_backend *mempack;
	struct repo_batch batch = REPO_BATCH_INIT;
	struct repo *r;

	if (repo_global_init() < 0)
		log_fatal("libgit2 init failed");
	format_allow_version(FORMAT_VERSION_IMAP);
	if (getenv("MERGE_MODEL_V2_CASE"))
		vtrace = atoll(getenv("MERGE_MODEL_V2_CASE"));
	r = mem_repo(&mempack);
	repo_batch_begin(&batch, r);
	memset(t, 0, sizeof *t);
	for (unsigned long long i = (unsigned long long)job; i < ncases;
	     i += (unsigned long long)jobs) {
		struct vcase *c;

		if (vtrace >= 0 && (long long)i != vtrace)
			continue;
		c = xcalloc(1, sizeof *c);
		c->repo = r;
		c->no = i;
		c->rng = (seed * 0x9e3779b97f4a7c15ULL) ^ (i * 0xbf58476d1ce4e5b9ULL);
		c->rng |= 1;
		vrnd(c);
		c->n = 2 + (int)vrn(c, VR - 1);
		c->clock = 1700000000;
		c->vclock = 1000;	/* creations step by 2^20: a revival adds < 2^16 + 1 */
		run_vcase(c);
		t->cases++;
		t->merges += c->merges;
		t->numbered += c->numbered;
		t->messages += c->nmsg;
		if (c->failed) {
			t->failed++;
			printf("# format 2 model case %llu failed (seed %" PRIu64
			       ")\n", i, seed);
		}
		strmap_clear(&c->seen);
		free(c);
		git_mempack_reset(mempack);
		if (t->failed >= 5)
			break;
	}
	repo_batch_end(&batch, false);
	repo_free(r);
	return t->failed;
}

/*
 * One case whose choices are the bytes data[0..size) (a fuzzer's input):
 * the number of failures (0: every property held).  The repository is
 * made on the first call and emptied on each.
 */
unsigned long long v2_model_bytes(const uint8_t *data, size_t size)
{
	static struct repo *r;
	static git_odb_backend *mempack;
	struct vcase *c = xcalloc(1, sizeof *c);
	unsigned long long failed;

	if (!r) {
		if (repo_global_init() < 0)
			log_fatal("libgit2 init failed");
		format_allow_version(FORMAT_VERSION_IMAP);
		r = mem_repo(&mempack);
	}
	git_mempack_reset(mempack);
	c->repo = r;
	c->bytes = data;
	c->nbytes = size;
	c->n = 2 + (int)vrn(c, VR - 1);
	c->clock = 1700000000;
	c->vclock = 1000;
	run_vcase(c);
	failed = c->failed;
	strmap_clear(&c->seen);
	free(c);
	return failed;
}

/* The format 2 tree model in jobs processes; failed cases. */
unsigned long long v2_run_jobs(uint64_t seed, unsigned long long ncases,
				      int jobs)
{
	struct v2_totals all = { 0, 0, 0, 0, 0 };
	int fds[16][2];
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (jobs < 1 || jobs > 16)
		jobs = 1;
	fflush(stdout);
	for (int j = 0; j < jobs; j++) {
		pid_t pid;
		if (pipe(fds[j]) < 0 || (pid = fork()) < 0)
			log_fatal("pipe or fork failed");
		if (pid == 0) {
			struct v2_totals t;
			close(fds[j][0]);
			v2_model_run(seed, ncases, j, jobs, &t);
			if (write(fds[j][1], &t, sizeof t) != (ssize_t)sizeof t)
				_exit(2);
			git_libgit2_shutdown();
			_exit(0);
		}
		close(fds[j][1]);
	}
	for (int j = 0; j < jobs; j++) {
		struct v2_totals t;
		int status;
		if (read(fds[j][0], &t, sizeof t) != (ssize_t)sizeof t) {
			memset(&t, 0, sizeof t);
			t.failed = 1;
			printf("# format 2 worker %d died\n", j);
		}
		close(fds[j][0]);
		all.cases += t.cases;
		all.failed += t.failed;
		all.merges += t.merges;
		all.numbered += t.numbered;
		all.messages += t.messages;
		wait(&status);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# format 2 trees: %llu cases, %llu merges, %llu messages, %llu "
	       "UIDs given at apply, in %.1f s\n", all.cases, all.merges,
	       all.messages, all.numbered,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	fflush(stdout);
	if (all.cases != ncases && !all.failed)
		all.failed = 1;
	return all.failed;
}
