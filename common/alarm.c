/*
 * alarm: weighing changes against the thresholds, and the file of
 * alarms (see alarm.h).
 *
 * The file is a JSON array of objects, oldest first:
 *	{"change": hex, "parent": hex, "node": "mx1", "time": seconds,
 *	 "raised": seconds, "expunged": N, "summary": "...",
 *	 "local": bool, "held": bool, "state": "open"|"confirmed"|"undone"}
 * Readers take what they understand and skip entries they do not.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "alarm.h"
#include "folder.h"
#include "fsutil.h"
#include "hex.h"
#include "log.h"
#include "strbuf.h"
#include "strmap.h"
#include "xalloc.h"

#define ALARMS_FILE "maildag/alarms"
#define ALARMS_LOCK "maildag/alarms.lock"

static const char *const state_names[] = { "open", "confirmed", "undone" };

void alarm_release(struct alarm *a)
{
	free(a->node);
	free(a->summary);
	memset(a, 0, sizeof *a);
}

void alarms_free(struct alarm *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		alarm_release(&v[i]);
	free(v);
}

/* --- weighing ------------------------------------------------------------ */

struct weigh {
	struct repo *r;
	const struct config *cfg;
	struct alarm *v;
	size_t n, alloc;
	char (*undone)[CHANGE_SHORT + 1];	/* undos met */
	size_t nundone, undone_alloc;
};

char *alarm_undo_origin(const char *change)
{
	return xasprintf("undo %.*s", CHANGE_SHORT, change);
}

bool alarm_undo_of(const char *subject, char prefix[CHANGE_SHORT + 1])
{
	if (strncmp(subject, "undo ", 5) ||
	    strspn(subject + 5, "0123456789abcdef") != CHANGE_SHORT ||
	    subject[5 + CHANGE_SHORT] != ':')
		return false;
	memcpy(prefix, subject + 5, CHANGE_SHORT);
	prefix[CHANGE_SHORT] = '\0';
	return true;
}

static bool ignored(const struct config *cfg, const char *folder)
{
	for (char **p = cfg->alarm_ignore; p && *p; p++)
		if (!strcmp(*p, folder))
			return true;
	return false;
}

static bool gone(const struct change *c, const char *folder)
{
	for (size_t i = 0; i < c->nfolders_gone; i++)
		if (!strcmp(c->folders_gone[i], folder))
			return true;
	return false;
}

/* Per folder: how many messages the change expunged there. */
struct tally {
	char **folder;
	size_t *count;
	size_t n, alloc_f, alloc_c;
	size_t total;
};

static void tally_of(struct tally *t, const struct change *c,
		     const struct config *cfg)
{
	struct strmap at = STRMAP_INIT;

	memset(t, 0, sizeof *t);
	for (size_t i = 0; i < c->nexpunged; i++) {
		const char *f = c->expunged[i].folder;
		size_t k;

		if (ignored(cfg, f))
			continue;
		if (!strmap_get(&at, f, &k)) {
			k = t->n;
			strmap_put(&at, f, k);
			xgrow((void **)&t->folder, &t->alloc_f, t->n + 1,
			      sizeof *t->folder);
			xgrow((void **)&t->count, &t->alloc_c, t->n + 1,
			      sizeof *t->count);
			t->folder[k] = xstrdup(f);
			t->count[k] = 0;
			t->n++;
		}
		t->count[k]++;
		t->total++;
	}
	strmap_clear(&at);
}

static void tally_release(struct tally *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->folder[i]);
	free(t->folder);
	free(t->count);
}

#define REASONS_SHOWN 5	/* folders named in a summary; the rest counted */

/* The reasons change c alarms, appended to why ("; "-separated). */
static int reasons(struct strbuf *why, struct weigh *w, const struct change *c,
		   const struct tally *t)
{
	const struct config *cfg = w->cfg;
	size_t shown = 0, more = 0;

	for (size_t i = 0; i < t->n; i++) {
		const char *f = t->folder[i];
		bool folder_gone = *f && gone(c, f);
		size_t before;

		if (folder_gone && cfg->alarm_folders) {
			if (shown++ >= REASONS_SHOWN) {
				more++;
				continue;
			}
			strbuf_addf(why, "%sfolder %s removed with %zu message%s",
				    why->len ? "; " : "", folder_display(f),
				    t->count[i], t->count[i] == 1 ? "" : "s");
			continue;
		}
		if (!cfg->alarm_share ||
		    (long long)t->count[i] < cfg->alarm_share_min)
			continue;
		if (change_folder_size(&before, w->r, c->parent, f) < 0)
			return E_FAIL;
		if (t->count[i] * 100 < (size_t)cfg->alarm_share * before)
			continue;
		if (shown++ >= REASONS_SHOWN) {
			more++;
			continue;
		}
		strbuf_addf(why, "%s%zu of %zu in %s", why->len ? "; " : "",
			    t->count[i], before, folder_display(f));
	}
	if (more)
		strbuf_addf(why, "; and %zu more folder%s", more,
			    more == 1 ? "" : "s");
	if (!why->len && cfg->alarm_messages &&
	    (long long)t->total >= cfg->alarm_messages)
		strbuf_addf(why, "at least %lld in one change",
			    cfg->alarm_messages);
	return 0;
}

static int weigh_one(const struct change *c, void *data)
{
	struct weigh *w = data;
	struct strbuf why = STRBUF_INIT;
	struct tally t;
	struct alarm *a;
	const char *at;
	int ret;

	if (w->nundone < ALARM_WALK_MAX) {
		xgrow((void **)&w->undone, &w->undone_alloc, w->nundone + 1,
		      sizeof *w->undone);
		if (alarm_undo_of(c->subject, w->undone[w->nundone]))
			w->nundone++;
	}
	if (!c->nexpunged || !c->parent[0])
		return 0;
	tally_of(&t, c, w->cfg);
	ret = t.total ? reasons(&why, w, c, &t) : 0;
	if (ret < 0 || !why.len)
		goto done;
	xgrow((void **)&w->v, &w->alloc, w->n + 1, sizeof *w->v);
	a = &w->v[w->n++];
	memset(a, 0, sizeof *a);
	memcpy(a->change, c->id, CHANGE_HEX);
	memcpy(a->parent, c->parent, CHANGE_HEX);
	at = strchr(c->committer, '@');
	a->node = xstrdup(at ? at + 1 : c->committer);
	a->time = c->time;
	a->expunged = t.total;
	a->summary = xasprintf("%zu message%s expunged: %s", t.total,
			       t.total == 1 ? "" : "s", why.buf);
	a->local = !strcmp(a->node, w->cfg->node);
	a->held = a->local && w->cfg->alarm_hold;
	a->state = ALARM_OPEN;
	ret = 0;
done:
	tally_release(&t);
	strbuf_release(&why);
	return ret;
}

static void settle_prefix(const char *repo_path, const char *prefix);

int alarm_check(struct alarm **out, size_t *n, struct repo *r,
		const struct config *cfg, const char *from, const char *to,
		long long now)
{
	struct weigh w = { r, cfg, NULL, 0, 0, NULL, 0, 0 };
	size_t kept = 0;
	int ret = 0;

	*out = NULL;
	*n = 0;
	if (!from || !strcmp(from, to) ||
	    (!cfg->alarm_messages && !cfg->alarm_share && !cfg->alarm_folders))
		return 0;
	ret = change_walk(r, to, from, ALARM_WALK_MAX, now - ALARM_RECENT,
			  weigh_one, &w);
	if (ret < 0) {
		alarms_free(w.v, w.n);
		free(w.undone);
		return E_FAIL;
	}
	for (size_t i = 0; i < w.nundone; i++)
		settle_prefix(repo_path(r), w.undone[i]);
	/* a change undone already, in the same batch, alarms nobody */
	for (size_t i = 0; i < w.n; i++) {
		bool undone = false;

		for (size_t k = 0; k < w.nundone && !undone; k++)
			undone = !strncmp(w.v[i].change, w.undone[k],
					  CHANGE_SHORT);
		if (!undone) {
			w.v[kept++] = w.v[i];
			continue;
		}
		log_info("change %.*s expunged %zu messages, and was undone "
			 "since", CHANGE_SHORT, w.v[i].change, w.v[i].expunged);
		alarm_release(&w.v[i]);
	}
	w.n = kept;
	free(w.undone);
	for (size_t i = 0; i < w.n; i++)
		w.v[i].raised = now;
	*out = w.v;
	*n = w.n;
	return 0;
}

/* --- the file ------------------------------------------------------------ */

json_t *alarm_json(const struct alarm *a)
{
	char *undo = alarm_undo_line(a), *confirm = alarm_confirm_line(a);
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:b, s:b, "
			      "s:s, s:s, s:s}",
			      "change", a->change, "parent", a->parent,
			      "node", a->node ? a->node : "",
			      "time", (json_int_t)a->time,
			      "raised", (json_int_t)a->raised,
			      "expunged", (json_int_t)a->expunged,
			      "summary", a->summary ? a->summary : "",
			      "local", a->local, "held", a->held,
			      "state", state_names[a->state],
			      "undo", undo, "confirm", confirm);

	free(undo);
	free(confirm);
	return o;
}

static bool hex_id(const char *s)
{
	return s && strlen(s) == CHANGE_HEX - 1 && hex_is_lower(s, CHANGE_HEX - 1);
}

/* One entry of the file; false when it is not one. */
static bool alarm_of_json(struct alarm *a, json_t *o)
{
	const char *change = json_string_value(json_object_get(o, "change"));
	const char *parent = json_string_value(json_object_get(o, "parent"));
	const char *st = json_string_value(json_object_get(o, "state"));
	const char *node = json_string_value(json_object_get(o, "node"));
	const char *sum = json_string_value(json_object_get(o, "summary"));

	memset(a, 0, sizeof *a);
	if (!hex_id(change) || !hex_id(parent) || !st)
		return false;
	memcpy(a->change, change, CHANGE_HEX);
	memcpy(a->parent, parent, CHANGE_HEX);
	for (size_t i = 0; i < 3; i++)
		if (!strcmp(st, state_names[i]))
			a->state = (enum alarm_state)i;
	a->node = xstrdup(node ? node : "");
	a->summary = xstrdup(sum ? sum : "");
	a->time = (long long)json_integer_value(json_object_get(o, "time"));
	a->raised = (long long)json_integer_value(json_object_get(o, "raised"));
	a->expunged = (size_t)json_integer_value(json_object_get(o, "expunged"));
	a->local = json_is_true(json_object_get(o, "local"));
	a->held = json_is_true(json_object_get(o, "held"));
	return true;
}

static char *file_path(const char *repo_path, const char *name)
{
	return xasprintf("%s/%s", repo_path, name);
}

int alarm_load(struct alarm **out, size_t *n, const char *repo_path)
{
	char *path = file_path(repo_path, ALARMS_FILE);
	json_error_t jerr;
	json_t *arr, *o;
	size_t i;

	*out = NULL;
	*n = 0;
	arr = json_load_file(path, 0, &jerr);
	if (!arr) {
		int absent = !path_exists(path);
		if (!absent)
			log_error("'%s': %s", path, jerr.text);
		free(path);
		return absent ? 0 : E_FAIL;
	}
	free(path);
	if (json_is_array(arr) && json_array_size(arr))
		*out = xcalloc(json_array_size(arr), sizeof **out);
	json_array_foreach(arr, i, o)
		if (alarm_of_json(&(*out)[*n], o))
			(*n)++;
	json_decref(arr);
	return 0;
}

static int save(const char *repo_path, const struct alarm *v, size_t n)
{
	char *path = file_path(repo_path, ALARMS_FILE), *text;
	size_t first = n > ALARMS_KEPT ? n - ALARMS_KEPT : 0;
	json_t *arr = json_array();
	int ret;

	for (size_t i = first; i < n; i++)
		json_array_append_new(arr, alarm_json(&v[i]));
	text = json_dumps(arr, JSON_INDENT(1));
	json_decref(arr);
	ret = text ? write_file_atomic(path, text, strlen(text), 0600) : E_FAIL;
	free(text);
	free(path);
	return ret < 0 ? E_FAIL : 0;
}

/* The file's own lock, for a read, change and write; -1 on failure. */
static int lock_file(const char *repo_path)
{
	char *path = file_path(repo_path, ALARMS_LOCK);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		log_error_errno("lock '%s'", path);
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

int alarm_record(const char *repo_path, const struct alarm *v, size_t n)
{
	struct alarm *all;
	size_t have;
	int fd, ret;

	if (!n)
		return 0;
	if ((fd = lock_file(repo_path)) < 0)
		return E_FAIL;
	if ((ret = alarm_load(&all, &have, repo_path)) == 0) {
		size_t total = have;

		all = xrealloc(all, (have + n) * sizeof *all);
		for (size_t i = 0; i < n; i++) {
			bool known = false;
			for (size_t j = 0; j < total && !known; j++)
				known = !strcmp(all[j].change, v[i].change);
			if (known)
				continue;
			all[total] = v[i];
			all[total].node = xstrdup(v[i].node ? v[i].node : "");
			all[total].summary = xstrdup(v[i].summary ? v[i].summary : "");
			total++;
		}
		ret = total > have ? save(repo_path, all, total) : 0;
		alarms_free(all, total);
	}
	close(fd);
	return ret;
}

int alarm_settle(const char *repo_path, const char *change,
		 enum alarm_state state)
{
	struct alarm *all;
	size_t n;
	int fd, ret;
	bool found = false;

	if ((fd = lock_file(repo_path)) < 0)
		return E_FAIL;
	if ((ret = alarm_load(&all, &n, repo_path)) == 0) {
		for (size_t i = 0; i < n; i++)
			if (all[i].state == ALARM_OPEN &&
			    !strcmp(all[i].change, change)) {
				all[i].state = state;
				found = true;
			}
		ret = found ? save(repo_path, all, n) : E_NOTFOUND;
		alarms_free(all, n);
	}
	close(fd);
	return ret;
}

/* The open alarms of changes whose ids start with prefix: undone. */
static void settle_prefix(const char *repo_path, const char *prefix)
{
	struct alarm *v;
	size_t n;

	if (alarm_load(&v, &n, repo_path) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (v[i].state == ALARM_OPEN &&
		    !strncmp(v[i].change, prefix, CHANGE_SHORT) &&
		    alarm_settle(repo_path, v[i].change, ALARM_UNDONE) == 0)
			log_info("the alarm of change %.*s is settled: it was "
				 "undone", CHANGE_SHORT, v[i].change);
	alarms_free(v, n);
}

bool alarm_holding(const char *repo_path)
{
	struct alarm *v;
	size_t n;
	bool held = false;

	if (alarm_load(&v, &n, repo_path) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		held |= v[i].state == ALARM_OPEN && v[i].held;
	alarms_free(v, n);
	return held;
}

char *alarm_undo_line(const struct alarm *a)
{
	return xasprintf("maildag undo %.*s", CHANGE_SHORT, a->change);
}

char *alarm_confirm_line(const struct alarm *a)
{
	return xasprintf("maildag confirm %.*s", CHANGE_SHORT, a->change);
}

json_t *alarm_open_json(const char *repo_path)
{
	json_t *arr = json_array();
	struct alarm *v;
	size_t n;

	if (alarm_load(&v, &n, repo_path) < 0)
		return arr;
	for (size_t i = 0; i < n; i++)
		if (v[i].state == ALARM_OPEN)
			json_array_append_new(arr, alarm_json(&v[i]));
	alarms_free(v, n);
	return arr;
}
