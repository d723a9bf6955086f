/*
 * purge: retention and forget (see purge.h).
 */
#include "autoconf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "expunged.h"
#include "format.h"
#include "fsutil.h"
#include "header.h"
#include "log.h"
#include "maildir_name.h"
#include "merge.h"
#include "objects.h"
#include "purge.h"
#include "repo.h"
#include "strbuf.h"
#include "strmap.h"
#include "xalloc.h"

#define EXPIRED_FILE "expired"

/* One candidate of <repo>/maildag/expired. */
struct cand {
	struct oid id;
	long long seen, removed;
};

struct expired {
	char tip[CHANGE_HEX];		/* "" before the first run */
	long long wall, boot;		/* the clocks at the last run; 0 none */
	struct cand *v;
	size_t n, alloc;
	struct strmap ix;		/* blob hex -> index in v */
	long long now;
};

static void expired_release(struct expired *x)
{
	free(x->v);
	strmap_clear(&x->ix);
}

static struct cand *cand_get(struct expired *x, const char *hex, bool add)
{
	size_t i;

	if (strmap_get(&x->ix, hex, &i))
		return &x->v[i];
	if (!add)
		return NULL;
	xgrow((void **)&x->v, &x->alloc, x->n + 1, sizeof *x->v);
	memset(&x->v[x->n], 0, sizeof *x->v);
	if (oid_fromstr(&x->v[x->n].id, hex) < 0)
		return NULL;
	strmap_put(&x->ix, hex, x->n);
	return &x->v[x->n++];
}

/* Read the file; a missing one is a first run, a damaged line skipped. */
static int expired_read(struct expired *x, struct repo *r)
{
	char *path = repo_state_path(r, EXPIRED_FILE);
	char line[256];
	FILE *f = fopen(path, "r");

	free(path);
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		char hex[CHANGE_HEX];
		long long a, b;
		struct cand *c;

		if (sscanf(line, "tip %40s", hex) == 1 && strlen(hex) == 40) {
			memcpy(x->tip, hex, sizeof hex);
		} else if (sscanf(line, "clock %lld %lld", &a, &b) == 2) {
			x->wall = a;
			x->boot = b;
		} else if (sscanf(line, "%40s %lld %lld", hex, &a, &b) == 3 &&
			   strlen(hex) == 40 && (c = cand_get(x, hex, true))) {
			c->seen = a;
			c->removed = b;
		}
	}
	fclose(f);
	return 0;
}

static int expired_write(const struct expired *x, struct repo *r,
			 const struct purged *gone)
{
	struct strbuf sb = STRBUF_INIT;
	char *path = repo_state_path(r, EXPIRED_FILE);
	int ret;

	if (x->tip[0])
		strbuf_addf(&sb, "tip %s\n", x->tip);
	strbuf_addf(&sb, "clock %lld %lld\n", x->wall, x->boot);
	for (size_t i = 0; i < x->n; i++)
		if (!oid_is_zero(&x->v[i].id) && !purged_has(gone, &x->v[i].id))
			strbuf_addf(&sb, "%s %lld %lld\n", oid_hex(&x->v[i].id),
				    x->v[i].seen, x->v[i].removed);
	ret = write_file_atomic(path, sb.buf, sb.len, 0600);
	if (ret < 0)
		log_error("write '%s'", path);
	free(path);
	strbuf_release(&sb);
	return ret < 0 ? E_FAIL : 0;
}

/* Every message blob a tree names, as hex keys of set. */
static int name_blob(const char *path, const char *folder, const char *sub,
		     const char *name, const struct oid *blob, void *data)
{
	(void)path;
	(void)folder;
	(void)sub;
	(void)name;
	strmap_put(data, oid_hex(blob), 0);
	return 0;
}

static int named_by(struct strmap *set, struct repo *r, const char *ref)
{
	struct oid c, t;

	if (repo_ref_read(&c, r, ref) < 0)
		return 0;	/* no worktree yet */
	if (repo_commit_tree(&t, r, &c) < 0)
		return E_FAIL;
	return format_foreach_message(r, &t, name_blob, set) < 0 ? E_FAIL : 0;
}

static int take_change(const struct change *ch, void *data)
{
	struct expired *x = data;

	for (size_t i = 0; i < ch->nexpunged; i++) {
		struct cand *c = cand_get(x, ch->expunged[i].blob, false);
		if (!c) {
			if (!(c = cand_get(x, ch->expunged[i].blob, true)))
				continue;
			c->seen = x->now;
		}
		if (ch->time > c->removed)
			c->removed = ch->time;
	}
	return 0;
}

/* Did the wall clock jump forward since the last run (one boot)? */
static bool clock_jumped(struct expired *x, long long now)
{
	struct timespec ts;
	long long boot, wall0 = x->wall, boot0 = x->boot;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	boot = (long long)ts.tv_sec;
	x->wall = now;
	x->boot = boot;
	/* tests drive the wall clock on purpose */
	if (clock_is_test() || !wall0 || boot < boot0)
		return false;
	return (now - wall0) - (boot - boot0) > PURGE_CLOCK_JUMP;
}

static int commit_purge(struct repo *r, const struct oid *mail,
			const struct purged *add, const char *msg,
			long long when, struct purge_result *res)
{
	struct oid tree, t2, c;
	size_t dropped = 0;
	int ret;

	if ((ret = repo_commit_tree(&tree, r, mail)) < 0 ||
	    (ret = merge_purge_tree(&t2, r, &tree, add, &dropped)) < 0)
		return ret;
	res->messages = dropped;
	if (oid_equal(&t2, &tree))
		return 0;
	/* objects durable before the ref names them */
	if ((ret = repo_commit(&c, r, &t2, mail, 1, msg, (time_t)when, NULL,
			       NULL)) < 0 ||
	    (ret = repo_syncfs(r)) < 0)
		return ret;
	if ((ret = repo_ref_cas(r, REF_MAIL, &c, mail, msg)) < 0)
		return ret;
	oid_cpy(&res->commit, &c);
	res->committed = true;
	return 0;
}

int purge_retention(struct repo *r, long long retention, long long now,
		    int lock_ms, struct purge_result *res)
{
	struct expired x;
	struct strmap named = STRMAP_INIT;
	struct purged gone = PURGED_INIT, due = PURGED_INIT;
	struct oid mail, tree;
	char tip[CHANGE_HEX];
	bool jump;
	int ret;

	memset(res, 0, sizeof *res);
	memset(&x, 0, sizeof x);
	x.now = now;
	if ((ret = repo_ref_read(&mail, r, REF_MAIL)) < 0) {
		strmap_clear(&x.ix);
		strmap_clear(&named);
		return ret == E_NOTFOUND ? 0 : ret;
	}
	oid_tostr(tip, sizeof tip, &mail);
	if ((ret = expired_read(&x, r)) < 0 ||
	    (ret = repo_commit_tree(&tree, r, &mail)) < 0 ||
	    (ret = purged_read(&gone, r, &tree)) < 0)
		goto done;
	/* a tip that is no ancestor any more (a new repository): all again */
	if (x.tip[0]) {
		struct oid h;
		if (oid_fromstr(&h, x.tip) < 0 ||
		    merge_is_ancestor(r, &h, &mail) != 1)
			x.tip[0] = '\0';
	}
	if (strcmp(x.tip, tip) &&
	    (ret = change_walk(r, tip, x.tip[0] ? x.tip : NULL, 0, LLONG_MIN,
			       take_change, &x)) < 0)
		goto done;
	memcpy(x.tip, tip, sizeof tip);
	if ((ret = named_by(&named, r, REF_MAIL)) < 0 ||
	    (ret = named_by(&named, r, REF_WORKTREE)) < 0)
		goto done;
	jump = clock_jumped(&x, now);
	res->clock_jump = jump;
	for (size_t i = 0; i < x.n; i++) {
		struct cand *c = &x.v[i];
		long long t = c->seen > c->removed ? c->seen : c->removed;

		if (oid_is_zero(&c->id) || purged_has(&gone, &c->id))
			continue;
		if (strmap_get(&named, oid_hex(&c->id), NULL)) {
			memset(&c->id, 0, sizeof c->id);	/* restored */
			continue;
		}
		res->candidates++;
		if (retention >= 0 && !jump && t <= now - retention)
			purged_add(&due, &c->id);
	}
	if (jump)
		log_warn("retention: the wall clock moved more than %d s "
			 "further than the boot clock since the last run: no "
			 "purge decided now", PURGE_CLOCK_JUMP);
	if (due.n) {
		char msg[128], day[32];
		time_t before = (time_t)(now - retention);
		struct tm tm;

		gmtime_r(&before, &tm);
		strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(msg, sizeof msg, "purge %zu messages expunged before "
			 "%s UTC\n", due.n, day);
		/* the lock for the commit alone; mail must not have moved */
		if (repo_lock(r, lock_ms) < 0) {
			log_warn("retention: the writer lock is busy: %zu "
				 "purges wait for the next pass", due.n);
			ret = expired_write(&x, r, &gone);
			goto done;
		}
		{
			struct oid now_mail;
			ret = repo_ref_read(&now_mail, r, REF_MAIL);
			if (ret == 0 && !oid_equal(&now_mail, &mail))
				ret = E_RACE;
			if (ret == 0)
				ret = commit_purge(r, &mail, &due, msg, now, res);
			repo_unlock(r);
		}
		if (ret == E_RACE) {
			log_info("retention: the mailbox moved: %zu purges wait "
				 "for the next pass", due.n);
			ret = expired_write(&x, r, &gone);
			goto done;
		}
		if (ret < 0)
			goto done;
		res->purged = due.n;
		res->candidates -= due.n;
		purged_union(&gone, &due);
		log_info("retention: %zu expunged messages purged (%s)", due.n,
			 day);
	}
	ret = expired_write(&x, r, &gone);
done:
	expired_release(&x);
	strmap_clear(&named);
	purged_release(&gone);
	purged_release(&due);
	return ret;
}

int purge_forget(struct repo *r, const struct oid *ids, size_t n,
		 struct purge_result *res)
{
	struct purged add = PURGED_INIT;
	struct oid mail;
	char msg[64];
	int ret;

	memset(res, 0, sizeof *res);
	if ((ret = repo_ref_read(&mail, r, REF_MAIL)) < 0)
		return ret;
	for (size_t i = 0; i < n; i++)
		purged_add(&add, &ids[i]);
	snprintf(msg, sizeof msg, "forget %zu messages\n", add.n);
	ret = commit_purge(r, &mail, &add, msg, (long long)clock_wall(), res);
	if (ret == 0 && res->committed)
		res->purged = add.n;
	purged_release(&add);
	return ret;
}

int purge_drop_set(struct purged *out, struct repo *r)
{
	struct oid mail, tree;
	int ret;

	if ((ret = repo_ref_read(&mail, r, REF_MAIL)) == E_NOTFOUND)
		return 0;
	if (ret < 0 || (ret = repo_commit_tree(&tree, r, &mail)) < 0)
		return ret;
	return purged_read(out, r, &tree);
}

int purge_reach(size_t *missing, size_t *total, struct repo *r,
		const struct oid *theirs)
{
	struct purged ours = PURGED_INIT, their = PURGED_INIT;
	struct oid tree, mail, mtree, a, b;
	int ret, ra = -1, rb;

	*missing = *total = 0;
	if ((ret = purge_drop_set(&ours, r)) < 0 || !ours.n)
		goto done;
	*total = *missing = ours.n;
	if ((ret = repo_commit_tree(&tree, r, theirs)) < 0)
		goto done;
	/* the same purged/ subtree: the same set, nothing more to read */
	if (repo_ref_read(&mail, r, REF_MAIL) == 0 &&
	    repo_commit_tree(&mtree, r, &mail) == 0)
		ra = purged_dir_id(&a, r, &mtree);
	rb = purged_dir_id(&b, r, &tree);
	if (ra == 0 && rb == 0 && oid_equal(&a, &b)) {
		*missing = 0;
		goto done;
	}
	if (rb == E_NOTFOUND)
		goto done;
	if ((ret = purged_read(&their, r, &tree)) < 0)
		goto done;
	*missing = 0;
	for (size_t i = 0; i < ours.n; i++)
		if (!purged_has(&their, &ours.v[i]))
			(*missing)++;
done:
	purged_release(&ours);
	purged_release(&their);
	return ret;
}

int purge_pass(const char *repo_path, long long retention,
	       const struct objects_maint_opts *opts, bool wait,
	       struct purge_result *pres, struct objects_maint_result *mres)
{
	struct objects_maint_opts o = *opts;
	struct purged drop = PURGED_INIT;
	struct purge_result dummy;
	struct repo *r = NULL;
	int ret, lock;

	if (!pres)
		pres = &dummy;
	memset(pres, 0, sizeof *pres);
	/*
	 * One pass at a time, from the retention on: two (maildag forget's
	 * and the daemon's) would both rewrite maildag/expired.
	 */
	if ((lock = objects_maint_lock(repo_path, wait)) < 0)
		return lock;
	o.locked = true;
	if ((ret = repo_open(&r, repo_path, 0)) < 0)
		goto done;
	if ((ret = format_use_repo(r)) < 0)
		goto done;
	/* retention first: what it lists goes in this very pass */
	if ((ret = purge_retention(r, retention, (long long)clock_wall(),
				   wait ? 30000 : 5000, pres)) < 0)
		goto done;
	if ((ret = purge_drop_set(&drop, r)) < 0)
		goto done;
	o.drop = drop.v;
	o.ndrop = drop.n;
	repo_free(r);
	r = NULL;
	ret = objects_maintain(repo_path, &o, wait, mres);
done:
	repo_free(r);
	purged_release(&drop);
	close(lock);
	return ret;
}

/* --- what a forget names ------------------------------------------------ */

struct pick {
	struct repo *r;
	const char *what;	/* a key, or a Message-ID (with '@') */
	bool mid;
	struct purged *out;
	size_t live, gone;
};

static bool same_mid(const char *have, size_t hl, const char *want)
{
	size_t wl = strlen(want);

	if (hl >= 2 && have[0] == '<' && have[hl - 1] == '>') {
		have++;
		hl -= 2;
	}
	if (wl >= 2 && want[0] == '<' && want[wl - 1] == '>') {
		want++;
		wl -= 2;
	}
	return hl && hl == wl && !strncmp(have, want, hl);
}

static int pick_live(const char *path, const char *folder, const char *sub,
		     const char *name, const struct oid *blob, void *data)
{
	struct pick *p = data;
	bool hit;

	(void)path;
	(void)folder;
	(void)sub;
	if (p->mid) {
		struct strbuf msg = STRBUF_INIT, v = STRBUF_INIT;
		if (repo_blob_read(&msg, p->r, blob) < 0) {
			strbuf_release(&msg);
			return 0;
		}
		header_value(&v, msg.buf, msg.len, "Message-ID", 998);
		hit = same_mid(v.buf, v.len, p->what);
		strbuf_release(&msg);
		strbuf_release(&v);
	} else {
		size_t kl = maildir_key_len(name);
		hit = kl == strlen(p->what) && !strncmp(name, p->what, kl);
	}
	if (hit) {
		purged_add(p->out, blob);
		p->live++;
	}
	return 0;
}

static int pick_gone(const struct expunged *e, void *data)
{
	struct pick *p = data;
	struct oid id;

	if (!p->mid) {
		size_t kl = maildir_key_len(e->msg.name);
		if (kl != strlen(p->what) || strncmp(e->msg.name, p->what, kl))
			return 0;
	}
	if (oid_fromstr(&id, e->msg.blob) == 0) {
		purged_add(p->out, &id);
		p->gone++;
	}
	return 0;
}

int purge_select(struct purged *out, struct repo *r, const char *what,
		 size_t *live, size_t *gone)
{
	struct expunged_filter f;
	struct pick p = { r, what, strchr(what, '@') != NULL, out, 0, 0 };
	struct oid mail, tree;
	int ret;

	if ((ret = repo_ref_read(&mail, r, REF_MAIL)) < 0 ||
	    (ret = repo_commit_tree(&tree, r, &mail)) < 0 ||
	    (ret = format_foreach_message(r, &tree, pick_live, &p)) < 0)
		return ret;
	expunged_filter_init(&f);
	if (p.mid)
		f.message_id = what;
	if ((ret = expunged_find(r, &f, pick_gone, &p)) < 0)
		return ret;
	*live = p.live;
	*gone = p.gone;
	return 0;
}

/* --- fsck ------------------------------------------------------------- */

struct purge_fsck_ctx {
	struct repo *r;
	struct purged *u;	/* the union of the refs' sets */
	struct oid *tips;	/* the refs that read */
	size_t n, alloc;
};

static int add_ref_set(const char *ref, void *data)
{
	struct purge_fsck_ctx *c = data;
	struct oid id, tree;

	if (repo_ref_read(&id, c->r, ref) < 0 ||
	    repo_commit_tree(&tree, c->r, &id) < 0)
		return 0;	/* fsck's ref check says why */
	xgrow((void **)&c->tips, &c->alloc, c->n + 1, sizeof *c->tips);
	oid_cpy(&c->tips[c->n++], &id);
	return purged_read(c->u, c->r, &tree) < 0 ? E_FAIL : 0;
}

int purge_fsck(struct repo *r, purge_problem_fn *fn, void *data,
	       size_t *absent)
{
	struct purge_fsck_ctx c = { r, NULL, NULL, 0, 0 };
	struct purged all = PURGED_INIT, mine = PURGED_INIT;
	struct oid *miss = NULL;
	size_t nmiss = 0;
	int ret;

	*absent = 0;
	c.u = &all;
	if ((ret = purge_drop_set(&mine, r)) < 0 ||
	    (ret = add_ref_set(REF_MAIL, &c)) < 0 ||
	    (ret = add_ref_set(REF_WORKTREE, &c)) < 0 ||
	    (ret = repo_foreach_peer_ref(r, add_ref_set, &c)) < 0 ||
	    (ret = objects_missing(repo_path(r), c.tips, c.n, &miss,
				   &nmiss)) < 0)
		goto done;
	for (size_t i = 0; i < nmiss; i++) {
		char why[128];
		if (purged_has(&all, &miss[i])) {
			(*absent)++;
			continue;
		}
		snprintf(why, sizeof why, "object %s missing, and no purged/ "
			 "lists it", oid_hex(&miss[i]));
		fn(why, data);
	}
	for (size_t i = 0; i < mine.n; i++)
		if (repo_object_exists(r, &mine.v[i])) {
			char why[128];
			snprintf(why, sizeof why, "purged blob %s still stored "
				 "(the next maintenance pass removes it)",
				 oid_hex(&mine.v[i]));
			fn(why, data);
		}
done:
	free(c.tips);
	free(miss);
	purged_release(&all);
	purged_release(&mine);
	return ret;
}

int purge_listed(struct repo *r, const struct oid *tree, const struct oid *blob)
{
	struct purged p = PURGED_INIT;
	struct oid mail, t;
	int ret;

	if (!tree) {
		if ((ret = repo_ref_read(&mail, r, REF_MAIL)) == E_NOTFOUND)
			return 0;
		if (ret < 0 || (ret = repo_commit_tree(&t, r, &mail)) < 0)
			return ret;
		tree = &t;
	}
	if ((ret = purged_read_shard(&p, r, tree, blob->id[0])) == 0)
		ret = purged_has(&p, blob);
	purged_release(&p);
	return ret;
}
