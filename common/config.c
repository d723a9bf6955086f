/*
 * config: load maildag's JSON configuration (see config.h).
 *
 * Loading starts from the defaults and applies the system file, then the
 * user's, with one parser.  Every value is checked as it is read, so an
 * error names its file and key path; the checks that involve two keys
 * (backoff_min against backoff_max, the Maildir against the repository)
 * run after each file, so they name the file that broke them.
 *
 * What a loaded config guarantees: strings are owned by it, free of
 * control characters; paths are absolute and normalised (no "//", "/./"
 * or trailing "/"); names are safe to put in a git ref name; a peer URL
 * parses as ssh://[user@]host[:port]/path or file:///path; an ssh:// peer
 * has a host key, always kept as its "SHA256:" fingerprint.
 */
#include "autoconf.h"
#include "base64.h"
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "config_p.h"
#include "folder.h"
#include "format.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

#define SYSTEM_CONFIG "/etc/maildag/config.json"
#define NAME_MAX_LEN 64

static __attribute__((format(printf, 4, 5)))
int fail(const struct ctx *c, const char *pre, const char *key,
	 const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	log_error("%s: %s%s: %s", c->file, pre, key, msg.buf);
	strbuf_release(&msg);
	return E_INVALID;
}

/* --- names, paths, URLs ------------------------------------------------ */

/*
 * A node or peer name: [A-Za-z0-9_.-]{1,64}.  It becomes a component of
 * refs/peers/<name>/mail, so also what git refuses there (a leading ".",
 * "..", a trailing ".lock"), and a leading "-" that a command line would
 * take for an option.
 */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > NAME_MAX_LEN || s[0] == '.' || s[0] == '-')
		return false;
	for (const char *p = s; *p; p++)
		if (!config_p_alnum(*p) && *p != '_' && *p != '.' && *p != '-')
			return false;
	if (strstr(s, ".."))
		return false;
	return !(n >= 5 && !strcmp(s + n - 5, ".lock"));
}

/* Collapse "//" and "/./" and drop a trailing "/"; s is absolute. */
static char *normalize_path(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	while (*s) {
		size_t n;

		while (*s == '/')
			s++;
		n = strcspn(s, "/");
		if (n && !(n == 1 && s[0] == '.')) {
			strbuf_addch(&sb, '/');
			strbuf_add(&sb, s, n);
		}
		s += n;
	}
	if (!sb.len)
		strbuf_addch(&sb, '/');
	return strbuf_detach(&sb, NULL);
}

/* "~" and "~/..." under home; NULL unless the result is absolute. */
static char *expand_path(const char *s, const char *home)
{
	char *joined, *res;

	if (s[0] == '~' && (s[1] == '\0' || s[1] == '/')) {
		joined = xasprintf("%s/%s", home, s + 1);
		res = normalize_path(joined);
		free(joined);
		return res;
	}
	if (s[0] != '/')
		return NULL;
	return normalize_path(s);
}

/* inner is outer or below it; both normalised. */
static bool path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (!strcmp(outer, "/"))
		return true;
	return !strncmp(inner, outer, n) &&
	       (inner[n] == '\0' || inner[n] == '/');
}

/* Every "%u" replaced by user; any other "%" (percent-encoding) kept. */
static char *expand_user(const char *s, const char *user)
{
	struct strbuf sb = STRBUF_INIT;

	for (; *s; s++) {
		if (s[0] == '%' && s[1] == 'u') {
			strbuf_addstr(&sb, user);
			s++;
		} else {
			strbuf_addch(&sb, *s);
		}
	}
	return strbuf_detach(&sb, NULL);
}

static int get_string(const struct ctx *c, const char *pre, const char *key,
		      json_t *v, const char **out)
{
	const char *s;

	if (!json_is_string(v))
		return fail(c, pre, key, "expected a string");
	s = json_string_value(v);
	if (!*s)
		return fail(c, pre, key, "must not be empty");
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return fail(c, pre, key,
				    "must not contain control characters");
	*out = s;
	return 0;
}

static int get_path(const struct ctx *c, const char *pre, const char *key,
		    json_t *v, char **out)
{
	const char *s;
	char *path;

	if (get_string(c, pre, key, v, &s) < 0)
		return E_INVALID;
	if (!(path = expand_path(s, c->home)))
		return fail(c, pre, key,
			    "'%s' is not an absolute path (nor starts with ~/)",
			    s);
	free(*out);
	*out = path;
	return 0;
}

static int get_bool(const struct ctx *c, const char *pre, const char *key,
		    json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return fail(c, pre, key, "expected a boolean");
	*out = json_is_true(v);
	return 0;
}

static int get_int(const struct ctx *c, const char *pre, const char *key,
		   json_t *v, long long min, long long max, long long *out)
{
	long long n;

	if (!json_is_integer(v))
		return fail(c, pre, key, "expected an integer");
	n = json_integer_value(v);
	if (n < min)
		return fail(c, pre, key, "must be at least %lld", min);
	if (n > max)
		return fail(c, pre, key, "must be at most %lld", max);
	*out = n;
	return 0;
}

/* --- peers --------------------------------------------------------------- */

static void peer_release(struct config_peer *p)
{
	free(p->name);
	free(p->url);
	free(p->host_key);
	free(p->host_key_pub);
	free(p->identity);
	memset(p, 0, sizeof *p);
}

static void remove_peer(struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->npeers; i++) {
		if (strcmp(cfg->peers[i].name, name))
			continue;
		peer_release(&cfg->peers[i]);
		memmove(&cfg->peers[i], &cfg->peers[i + 1],
			(cfg->npeers - i - 1) * sizeof cfg->peers[0]);
		cfg->npeers--;
		return;
	}
}

static int parse_peer(const struct ctx *c, const char *name, json_t *obj,
		      struct config_peer *p)
{
	char *pre = xasprintf("peers.%s.", name);
	enum scheme scheme = SCHEME_FILE;
	const char *key, *s, *why;
	json_t *v;
	int err = 0;

	memset(p, 0, sizeof *p);
	p->name = xstrdup(name);
	p->push = p->fetch = p->session = true;
	json_object_foreach(obj, key, v) {
		if (!strcmp(key, "url")) {
			char *url;

			if ((err = get_string(c, pre, key, v, &s)) < 0)
				goto done;
			url = expand_user(s, c->user);
			if ((why = config_p_url(url, &scheme))) {
				err = fail(c, pre, key, "'%s': %s", url, why);
				free(url);
				goto done;
			}
			p->url = url;
		} else if (!strcmp(key, "push")) {
			if ((err = get_bool(c, pre, key, v, &p->push)) < 0)
				goto done;
		} else if (!strcmp(key, "fetch")) {
			if ((err = get_bool(c, pre, key, v, &p->fetch)) < 0)
				goto done;
		} else if (!strcmp(key, "host_key")) {
			if ((err = get_string(c, pre, key, v, &s)) < 0)
				goto done;
			if ((why = config_p_host_key(s, &p->host_key,
						  &p->host_key_pub))) {
				err = fail(c, pre, key, "%s", why);
				goto done;
			}
		} else if (!strcmp(key, "identity")) {
			if ((err = get_path(c, pre, key, v, &p->identity)) < 0)
				goto done;
		} else if (!strcmp(key, "session")) {
			if ((err = get_bool(c, pre, key, v, &p->session)) < 0)
				goto done;
		} else {
			err = fail(c, pre, key, "unknown key");
			goto done;
		}
	}
	if (!p->url)
		err = fail(c, pre, "url", "missing (every peer needs one)");
	else if (scheme != SCHEME_SSH && p->host_key)
		err = fail(c, pre, "host_key", "only meaningful for an ssh:// peer");
	else if (scheme != SCHEME_SSH && p->identity)
		err = fail(c, pre, "identity", "only meaningful for an ssh:// peer");
	else if (scheme == SCHEME_SSH && !p->host_key)
		/* a host key is pinned, never learnt on first use (DESIGN 6) */
		err = fail(c, pre, "host_key", "required for an ssh:// peer");
done:
	if (err < 0)
		peer_release(p);
	free(pre);
	return err;
}

static int apply_peers(const struct ctx *c, json_t *obj)
{
	struct config *cfg = c->cfg;
	const char *name;
	json_t *v;

	if (!json_is_object(obj))
		return fail(c, "", "peers", "expected an object");
	json_object_foreach(obj, name, v) {
		struct config_peer p;

		if (!name_ok(name))
			return fail(c, "peers.", name,
				    "not a valid peer name (see maildag.conf(5))");
		if (json_is_null(v)) {
			remove_peer(cfg, name);
			continue;
		}
		if (!json_is_object(v))
			return fail(c, "peers.", name, "expected an object or null");
		if (parse_peer(c, name, v, &p) < 0)
			return E_INVALID;
		remove_peer(cfg, name);
		cfg->peers = xrealloc(cfg->peers,
				      (cfg->npeers + 1) * sizeof cfg->peers[0]);
		cfg->peers[cfg->npeers++] = p;
	}
	return 0;
}

/* --- hooks --------------------------------------------------------------- */

static void free_strv(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

static int apply_hooks(const struct ctx *c, json_t *obj)
{
	struct config *cfg = c->cfg;
	const char *key, *s, *why;
	json_t *v;

	if (!json_is_object(obj))
		return fail(c, "", "hooks", "expected an object");
	json_object_foreach(obj, key, v) {
		if (!strcmp(key, "command")) {
			/* null lets a user turn off the system's hook */
			if (json_is_null(v)) {
				free(cfg->hook_command);
				cfg->hook_command = NULL;
				continue;
			}
			if (!json_is_string(v))
				return fail(c, "hooks.", key,
					    "expected a string or null");
			if (get_string(c, "hooks.", key, v, &s) < 0)
				return E_INVALID;
			free(cfg->hook_command);
			cfg->hook_command = xstrdup(s);
		} else if (!strcmp(key, "webhooks")) {
			size_t i, n;
			char **list;
			json_t *e;

			if (!json_is_array(v))
				return fail(c, "hooks.", key,
					    "expected an array of strings");
			n = json_array_size(v);
			list = xcalloc(n + 1, sizeof *list);
			json_array_foreach(v, i, e) {
				char elem[32];

				snprintf(elem, sizeof elem, "webhooks[%zu]", i);
				if (get_string(c, "hooks.", elem, e, &s) < 0) {
					free_strv(list);
					return E_INVALID;
				}
				if ((why = config_p_webhook(s))) {
					free_strv(list);
					return fail(c, "hooks.", elem, "'%s': %s",
						    s, why);
				}
				list[i] = xstrdup(s);
			}
			free_strv(cfg->webhooks);
			cfg->webhooks = list;
		} else {
			return fail(c, "hooks.", key, "unknown key");
		}
	}
	return 0;
}

/* --- the mass-deletion alarm ---------------------------------------------- */

static int apply_alarm(const struct ctx *c, json_t *obj)
{
	struct config *cfg = c->cfg;
	const char *key, *s;
	long long n;
	json_t *v;

	if (!json_is_object(obj))
		return fail(c, "", "alarm", "expected an object");
	json_object_foreach(obj, key, v) {
		if (!strcmp(key, "messages")) {
			if (get_int(c, "alarm.", key, v, 0, LLONG_MAX,
				    &cfg->alarm_messages) < 0)
				return E_INVALID;
		} else if (!strcmp(key, "share")) {
			if (get_int(c, "alarm.", key, v, 0, 100, &n) < 0)
				return E_INVALID;
			cfg->alarm_share = (int)n;
		} else if (!strcmp(key, "share_min")) {
			if (get_int(c, "alarm.", key, v, 1, LLONG_MAX,
				    &cfg->alarm_share_min) < 0)
				return E_INVALID;
		} else if (!strcmp(key, "folders")) {
			if (get_bool(c, "alarm.", key, v, &cfg->alarm_folders) < 0)
				return E_INVALID;
		} else if (!strcmp(key, "hold")) {
			if (get_bool(c, "alarm.", key, v, &cfg->alarm_hold) < 0)
				return E_INVALID;
		} else if (!strcmp(key, "ignore")) {
			size_t i, len;
			char **list;
			json_t *e;

			if (!json_is_array(v))
				return fail(c, "alarm.", key,
					    "expected an array of folder names");
			len = json_array_size(v);
			list = xcalloc(len + 1, sizeof *list);
			json_array_foreach(v, i, e) {
				char elem[32];

				snprintf(elem, sizeof elem, "ignore[%zu]", i);
				if (get_string(c, "alarm.", elem, e, &s) < 0) {
					free_strv(list);
					return E_INVALID;
				}
				if (!(list[i] = folder_from_mailbox(s)) ||
				    !*list[i]) {
					free_strv(list);
					return fail(c, "alarm.", elem,
						    "'%s' is not a folder other "
						    "than INBOX", s);
				}
			}
			free_strv(cfg->alarm_ignore);
			cfg->alarm_ignore = list;
		} else {
			return fail(c, "alarm.", key, "unknown key");
		}
	}
	return 0;
}

/* --- maintenance ---------------------------------------------------------- */

static int apply_maintenance(const struct ctx *c, json_t *obj)
{
	struct config *cfg = c->cfg;
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return fail(c, "", "maintenance", "expected an object");
	json_object_foreach(obj, key, v) {
		if (!strcmp(key, "interval")) {
			if (get_int(c, "maintenance.", key, v, 60, INT_MAX,
				    &cfg->maint_interval) < 0)
				return E_INVALID;
		} else if (!strcmp(key, "grace")) {
			if (get_int(c, "maintenance.", key, v, 60, INT_MAX,
				    &cfg->maint_grace) < 0)
				return E_INVALID;
		} else {
			return fail(c, "maintenance.", key, "unknown key");
		}
	}
	return 0;
}

/*
 * retention: days as a number, "<n>d", "<n>h", "<n>s" (tests), or
 * "forever"; at least one second, at most 100 years.
 */
static int apply_retention(const struct ctx *c, json_t *v)
{
	const long long max = 100ll * 365 * 86400;
	long long n, unit = 86400;
	const char *s;
	char *end;

	if (json_is_integer(v)) {
		if (get_int(c, "", "retention", v, 1, max / 86400, &n) < 0)
			return E_INVALID;
		c->cfg->retention = n * 86400;
		return 0;
	}
	if (get_string(c, "", "retention", v, &s) < 0)
		return E_INVALID;
	if (!strcmp(s, "forever")) {
		c->cfg->retention = CONFIG_RETENTION_FOREVER;
		return 0;
	}
	n = strtoll(s, &end, 10);
	if (end != s && end[0] && !end[1] && s[0] >= '0' && s[0] <= '9')
		unit = end[0] == 'd' ? 86400 : end[0] == 'h' ? 3600 :
		       end[0] == 's' ? 1 : 0;
	else
		unit = 0;
	if (!unit || n < 1 || n > max / unit)
		return fail(c, "", "retention", "'%s' is not a retention (days, "
			    "\"<n>d\", \"<n>h\", \"<n>s\" or \"forever\")", s);
	c->cfg->retention = n * unit;
	return 0;
}

/* --- the top level ------------------------------------------------------- */

enum kind { K_NODE, K_PATH, K_BOOL, K_INT, K_LLONG, K_PEERS, K_HOOKS,
	    K_ALARM, K_VIRTUAL, K_MAINT, K_RETENTION };

#define LIMIT_MIN 1		/* bytes: any limit, none is "no limit" */
#define ROOT_ENTRIES 5		/* FORMAT subscriptions mtimes cur new */

static const struct key {
	const char *name;
	enum kind kind;
	size_t off;
	long long min, max;
} keys[] = {
	{ "node", K_NODE, offsetof(struct config, node), 0, 0 },
	{ "maildir", K_PATH, offsetof(struct config, maildir), 0, 0 },
	{ "repository", K_PATH, offsetof(struct config, repository), 0, 0 },
	{ "quorum", K_INT, offsetof(struct config, quorum), 1, INT_MAX },
	{ "uid_slot", K_INT, offsetof(struct config, uid_slot), 0, 6 },
	{ "create", K_BOOL, offsetof(struct config, create), 0, 0 },
	{ "size_limit", K_LLONG, offsetof(struct config, size_limit),
	  LIMIT_MIN, 1ll << 30 },
	{ "subscriptions_limit", K_LLONG,
	  offsetof(struct config, subscriptions_limit), LIMIT_MIN, 64ll << 20 },
	{ "tree_entries_limit", K_LLONG,
	  offsetof(struct config, tree_entries_limit), 256, 1ll << 20 },
	{ "folder_limit", K_LLONG, offsetof(struct config, folder_limit),
	  1, 1ll << 20 },
	{ "merge_limit", K_LLONG, offsetof(struct config, merge_limit),
	  LIMIT_MIN, LLONG_MAX },
	{ "lda_deadline", K_INT, offsetof(struct config, lda_deadline), 1, INT_MAX },
	{ "dovecot_lda", K_PATH, offsetof(struct config, dovecot_lda), 0, 0 },
	{ "dovecot_config", K_PATH, offsetof(struct config, dovecot_config), 0, 0 },
	{ "fetch_interval", K_INT, offsetof(struct config, fetch_interval), 1, INT_MAX },
	{ "debounce_ms", K_INT, offsetof(struct config, debounce_ms), 1, INT_MAX },
	{ "backoff_min", K_INT, offsetof(struct config, backoff_min), 1, INT_MAX },
	{ "backoff_max", K_INT, offsetof(struct config, backoff_max), 1, INT_MAX },
	{ "net_timeout", K_INT, offsetof(struct config, net_timeout), 1, INT_MAX },
	{ "keepalive", K_INT, offsetof(struct config, keepalive), 1, 86400 },
	{ "peers", K_PEERS, 0, 0, 0 },
	{ "hooks", K_HOOKS, 0, 0, 0 },
	{ "alarm", K_ALARM, 0, 0, 0 },
	{ "virtual", K_VIRTUAL, 0, 0, 0 },
	{ "maintenance", K_MAINT, 0, 0, 0 },
	{ "retention", K_RETENTION, 0, 0, 0 },
};

static int apply_key(const struct ctx *c, const struct key *k, json_t *v)
{
	char *field = (char *)c->cfg + k->off;
	const char *s;
	long long n;

	switch (k->kind) {
	case K_NODE:
		if (get_string(c, "", k->name, v, &s) < 0)
			return E_INVALID;
		if (!name_ok(s))
			return fail(c, "", k->name,
				    "'%s' is not a valid node name (see maildag.conf(5))",
				    s);
		free(*(char **)field);
		*(char **)field = xstrdup(s);
		return 0;
	case K_PATH:
		return get_path(c, "", k->name, v, (char **)field);
	case K_BOOL:
		return get_bool(c, "", k->name, v, (bool *)field);
	case K_INT:
		if (get_int(c, "", k->name, v, k->min, k->max, &n) < 0)
			return E_INVALID;
		*(int *)field = (int)n;
		return 0;
	case K_LLONG:
		/*
		 * It meant "no limit" once.  A config that loaded before
		 * must not stop delivery now (every message would wait in
		 * the MTA's queue), so it means the largest limit there is,
		 * and the log says so.
		 */
		if (!strcmp(k->name, "size_limit") && json_is_integer(v) &&
		    json_integer_value(v) == 0) {
			log_warn("%s: size_limit: 0 (no limit) now means the "
				 "largest limit, %lld bytes: a peer could "
				 "otherwise send a message of any size",
				 c->file, k->max);
			*(long long *)field = k->max;
			return 0;
		}
		return get_int(c, "", k->name, v, k->min, k->max,
			       (long long *)field);
	case K_PEERS:
		return apply_peers(c, v);
	case K_HOOKS:
		return apply_hooks(c, v);
	case K_ALARM:
		return apply_alarm(c, v);
	case K_VIRTUAL:
		return config_virtual_apply(c, v);
	case K_MAINT:
		return apply_maintenance(c, v);
	case K_RETENTION:
		return apply_retention(c, v);
	}
	return E_INVALID;
}

static int apply(const struct ctx *c, json_t *root)
{
	struct config *cfg = c->cfg;
	const char *key;
	json_t *v;

	if (!json_is_object(root))
		return log_error("%s: expected a JSON object at the top level",
				 c->file), E_INVALID;
	json_object_foreach(root, key, v) {
		const struct key *k = NULL;

		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			if (!strcmp(key, keys[i].name))
				k = &keys[i];
		if (!k)
			return fail(c, "", key, "unknown key");
		if (apply_key(c, k, v) < 0)
			return E_INVALID;
	}
	/* the checks across keys, after each file, so they name it */
	if (cfg->backoff_min > cfg->backoff_max)
		return log_error("%s: backoff_min (%d) is greater than backoff_max (%d)",
				 c->file, cfg->backoff_min, cfg->backoff_max),
		       E_INVALID;
	if (cfg->folder_limit + ROOT_ENTRIES > cfg->tree_entries_limit)
		return log_error("%s: folder_limit (%lld) needs a tree_entries_limit "
				 "of at least %lld (it is %lld): the folders are "
				 "entries of the root tree",
				 c->file, cfg->folder_limit,
				 cfg->folder_limit + ROOT_ENTRIES,
				 cfg->tree_entries_limit), E_INVALID;
	if (path_within(cfg->repository, cfg->maildir) ||
	    path_within(cfg->maildir, cfg->repository))
		return log_error("%s: repository '%s' and maildir '%s' must not be inside one another",
				 c->file, cfg->repository, cfg->maildir),
		       E_INVALID;
	return 0;
}

/*
 * Read one file onto cfg.  Returns 0 when it was applied or is absent
 * (*found tells which), E_PERM or E_INVALID after logging.
 */
static int apply_file(struct ctx *c, const char *path, uid_t uid,
		      bool system, bool *found)
{
	json_error_t jerr;
	struct stat st;
	json_t *root;
	int fd, err, w;

	*found = false;
	/* O_NONBLOCK: a FIFO put there must not hang us; fstat refuses it */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (err == ENOENT)
			return 0;
		log_error("cannot open '%s': %s", path, strerror(err));
		return err == EACCES || err == EPERM ? E_PERM : E_INVALID;
	}
	/* check what we opened, not what the name pointed to a moment ago */
	if (fstat(fd, &st) < 0) {
		err = errno;
		close(fd);
		return log_error("stat '%s': %s", path, strerror(err)), E_INVALID;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return log_error("'%s' is not a regular file", path), E_INVALID;
	}
	if (st.st_uid != uid && !(system && st.st_uid == 0)) {
		close(fd);
		return log_error("refusing '%s': owned by uid %lu, not %s%lu",
				 path, (unsigned long)st.st_uid,
				 system ? "root or uid " : "uid ",
				 (unsigned long)uid), E_PERM;
	}
	if ((w = st.st_mode & (S_IWGRP | S_IWOTH))) {
		close(fd);
		return log_error("refusing '%s': writable by %s (mode %04o)", path,
				 w == S_IWGRP ? "its group" :
				 w == S_IWOTH ? "others" : "group and others",
				 (unsigned)(st.st_mode & 07777)), E_PERM;
	}
	*found = true;
	if (system) {
		free(c->cfg->system_file);
		c->cfg->system_file = xstrdup(path);
	} else {
		free(c->cfg->user_file);
		c->cfg->user_file = xstrdup(path);
	}
	/* an empty file (just touched) is an empty configuration */
	if (st.st_size == 0) {
		close(fd);
		return 0;
	}
	/*
	 * read whole, then parsed: jansson's json_loadfd reads a byte per
	 * read(2), and a daemon of a thousand virtual mailboxes loads a file
	 * listing them a thousand times
	 */
	{
		struct strbuf text = STRBUF_INIT;
		int r = strbuf_read_fd(&text, fd), rerr = errno;

		close(fd);
		if (r < 0) {
			strbuf_release(&text);
			errno = rerr;
			return log_error_errno("read '%s'", path), E_INVALID;
		}
		root = json_loadb(text.buf, text.len, JSON_REJECT_DUPLICATES,
				  &jerr);
		strbuf_release(&text);
	}
	if (!root)
		return log_error("%s:%d:%d: %s", path, jerr.line, jerr.column,
				 jerr.text), E_INVALID;
	c->file = path;
	err = apply(c, root);
	json_decref(root);
	return err;
}

static int cmp_peer(const void *a, const void *b)
{
	return strcmp(((const struct config_peer *)a)->name,
		      ((const struct config_peer *)b)->name);
}

/* --- the API ------------------------------------------------------------- */

static char *default_node(void)
{
	char host[256];

	if (gethostname(host, sizeof host) < 0)
		return xstrdup("localhost");
	host[sizeof host - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	return xstrdup(host[0] ? host : "localhost");
}

struct config *config_defaults(const char *user, const char *home)
{
	struct config *cfg = xcalloc(1, sizeof *cfg);

	(void)user;
	if (!home || home[0] != '/')
		home = "/";
	cfg->node = default_node();
	cfg->maildir = expand_path("~/Maildir", home);
	cfg->repository = expand_path("~/.local/share/maildag/mail.git", home);
	cfg->quorum = 1;
	cfg->uid_slot = -1;
	cfg->create = true;
	cfg->size_limit = (long long)FORMAT_DEFAULT_MESSAGE_BYTES;
	cfg->subscriptions_limit = (long long)FORMAT_DEFAULT_SUBSCRIPTIONS_BYTES;
	cfg->tree_entries_limit = FORMAT_DEFAULT_TREE_ENTRIES;
	cfg->folder_limit = FORMAT_DEFAULT_FOLDERS;
	cfg->merge_limit = (long long)FORMAT_DEFAULT_MERGE_BYTES;
	cfg->lda_deadline = 600;
	cfg->fetch_interval = 300;
	cfg->debounce_ms = 200;
	cfg->backoff_min = 1;
	cfg->backoff_max = 300;
	cfg->net_timeout = 60;
	cfg->keepalive = 30;
	cfg->alarm_messages = 100;
	cfg->alarm_share = 50;
	cfg->alarm_share_min = 20;
	cfg->alarm_folders = true;
	cfg->alarm_hold = false;
	cfg->alarm_ignore = xcalloc(3, sizeof *cfg->alarm_ignore);
	cfg->alarm_ignore[0] = xstrdup(".Trash");
	cfg->alarm_ignore[1] = xstrdup(".Junk");
	cfg->maint_interval = 3600;
	cfg->maint_grace = 86400;
	cfg->retention = CONFIG_RETENTION_DEFAULT;
	cfg->hook_command = NULL;
	cfg->webhooks = xcalloc(1, sizeof *cfg->webhooks);
	return cfg;
}

int config_load(struct config **out, const char *user, uid_t uid,
		const char *home, const char *user_file,
		const char *system_file, unsigned flags)
{
	struct ctx c = { NULL, NULL, user, home, uid };
	char *upath = NULL;
	const char *xdg;
	bool found;
	int err;

	*out = NULL;
	if (!user || !*user)
		return log_error("no user name to load the configuration for"),
		       E_INVALID;
	if (!home || home[0] != '/')
		return log_error("home directory '%s' is not an absolute path",
				 home ? home : ""), E_INVALID;
	if (!user_file) {
		xdg = getenv("XDG_CONFIG_HOME");
		/* the XDG spec: a relative value is to be ignored */
		if (xdg && xdg[0] == '/')
			upath = xasprintf("%s/maildag/config.json", xdg);
		else
			upath = xasprintf("%s/.config/maildag/config.json", home);
		user_file = upath;
	}
	if (!system_file)
		system_file = SYSTEM_CONFIG;

	c.cfg = config_defaults(user, home);
	if (!(flags & CONFIG_NO_SYSTEM) &&
	    (err = apply_file(&c, system_file, uid, true, &found)) < 0)
		goto done;
	if ((err = apply_file(&c, user_file, uid, false, &found)) < 0)
		goto done;

	/* only the host name can give a bad node name: files are checked */
	if (!name_ok(c.cfg->node)) {
		log_error("host name '%s' is not a valid node name; set \"node\" in '%s'",
			  c.cfg->node, user_file);
		err = E_INVALID;
		goto done;
	}
	/*
	 * A peer named after this node is this replica: dropping it lets one
	 * system file list every server and serve on all of them.
	 */
	remove_peer(c.cfg, c.cfg->node);
	if (c.cfg->npeers)
		qsort(c.cfg->peers, c.cfg->npeers, sizeof c.cfg->peers[0],
		      cmp_peer);
	*out = c.cfg;
	c.cfg = NULL;
	err = 0;
done:
	config_free(c.cfg);
	free(upath);
	return err;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->node);
	free(cfg->maildir);
	free(cfg->dovecot_lda);
	free(cfg->dovecot_config);
	free(cfg->repository);
	free(cfg->hook_command);
	free_strv(cfg->webhooks);
	free_strv(cfg->alarm_ignore);
	for (size_t i = 0; i < cfg->npeers; i++)
		peer_release(&cfg->peers[i]);
	free(cfg->peers);
	free(cfg->system_file);
	free(cfg->user_file);
	config_virtual_free(cfg->virt);
	free(cfg->address);
	free(cfg);
}

const struct config_peer *config_peer(const struct config *cfg,
				      const char *name)
{
	for (size_t i = 0; i < cfg->npeers; i++)
		if (!strcmp(cfg->peers[i].name, name))
			return &cfg->peers[i];
	return NULL;
}

bool config_name_valid(const char *name)
{
	return name_ok(name);
}

/* --- for config_virtual.c (config_p.h) ---------------------------------- */

int config_p_fail(const struct ctx *c, const char *pre, const char *key,
		  const char *what)
{
	return fail(c, pre, key, "%s", what);
}

int config_p_get_path(const struct ctx *c, const char *pre, const char *key,
		      json_t *v, char **out)
{
	return get_path(c, pre, key, v, out);
}

int config_p_apply_peers(const struct ctx *c, json_t *obj)
{
	return apply_peers(c, obj);
}

void config_p_drop_peers(struct config *cfg)
{
	for (size_t i = 0; i < cfg->npeers; i++)
		peer_release(&cfg->peers[i]);
	cfg->npeers = 0;
}

int config_p_finish(const struct ctx *c)
{
	struct config *cfg = c->cfg;

	if (path_within(cfg->repository, cfg->maildir) ||
	    path_within(cfg->maildir, cfg->repository))
		return log_error("%s: repository '%s' and maildir '%s' must not be inside one another",
				 c->file, cfg->repository, cfg->maildir),
		       E_INVALID;
	remove_peer(cfg, cfg->node);
	if (cfg->npeers)
		qsort(cfg->peers, cfg->npeers, sizeof cfg->peers[0], cmp_peer);
	return 0;
}
