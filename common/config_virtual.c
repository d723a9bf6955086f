/*
 * config_virtual: the "virtual" key of maildag's configuration, many
 * mailboxes under one system user (see config.h).
 *
 *   "virtual": {
 *     "maildir": "/var/vmail/%d/%n/Maildir",
 *     "repository": "/var/vmail/%d/%n/mail.git",
 *     "peers": { "mx2": { "url": "ssh://vmail@mx2/var/vmail/%d/%n/mail.git",
 *                         "host_key": "SHA256:..." } },
 *     "mailboxes": { "alice@example.org": {},
 *                    "bob@example.org": { "maildir": "/srv/bob/Maildir",
 *                                         "peers": { "mx3": null } } }
 *   }
 *
 * The object is checked whole when it is read (every pattern, every
 * peer of every mailbox, expanded for a sample address) and kept as
 * JSON; config_select_mailbox() applies it for one address with the same
 * parser, so a selection can only fail on the address.
 *
 * Invariants: an address that passes config_address_parse() expands into
 * one path component per escape: no "/", no "..", no leading "." or "-",
 * nothing outside [a-z0-9._+=-] and "@"; so a pattern's expansion stays
 * where the pattern says.  A later file's "virtual" replaces an earlier
 * one whole.
 */
#include "autoconf.h"

#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "config_p.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

#define LOCAL_MAX 64		/* RFC 5321 4.5.3.1.1 */
#define ADDRESS_MAX 254		/* RFC 5321 path, less the brackets */
#define SAMPLE_LOCAL "sample"
#define SAMPLE_DOMAIN "example.org"

struct config_virtual {
	json_t *json;		/* the checked object */
	char *file;		/* the file it came from, for messages */
	char *home;		/* what "~/" expands to */
	char *maildir;		/* patterns, ~ expanded; NULL: none */
	char *repository;
	char **listed;		/* folded addresses, sorted; NULL-terminated */
	size_t nlisted;
};

void config_strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

void config_virtual_free(struct config_virtual *v)
{
	if (!v)
		return;
	json_decref(v->json);
	free(v->file);
	free(v->home);
	free(v->maildir);
	free(v->repository);
	config_strv_free(v->listed);
	free(v);
}

bool config_is_virtual(const struct config *cfg)
{
	return cfg && cfg->virt;
}

bool config_virtual_listed(const struct config *cfg)
{
	return cfg && cfg->virt && cfg->virt->nlisted > 0;
}

/* --- addresses ----------------------------------------------------------- */

static bool local_char(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '+' || ch == '=' || ch == '-';
}

static const char *check_local(const char *s, size_t n)
{
	if (n == 0)
		return "empty local part";
	if (n > LOCAL_MAX)
		return "local part longer than 64 characters";
	if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
		return "local part begins with '.' or '-' or ends with '.'";
	for (size_t i = 0; i < n; i++) {
		if (!local_char(s[i]))
			return "character not allowed in a mailbox name";
		if (s[i] == '.' && s[i + 1] == '.')
			return "'..' in the local part";
	}
	return NULL;
}

static const char *check_domain(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0)
		return "empty domain";
	for (size_t i = 0; i <= n; i++) {
		char ch = i < n ? s[i] : '.';

		if (ch == '.') {
			if (label == 0)
				return "empty label in the domain";
			if (s[i - 1] == '-')
				return "domain label ends with '-'";
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-'))
			return "character not allowed in a domain";
		if (label == 0 && ch == '-')
			return "domain label begins with '-'";
		if (++label > 63)
			return "domain label longer than 63 characters";
	}
	return NULL;
}

int config_address_parse(char **out, const char *address, const char **why)
{
	size_t len = strnlen(address, ADDRESS_MAX + 1);
	const char *at;
	char *a;

	*out = NULL;
	if (len > ADDRESS_MAX) {
		*why = "address longer than 254 characters";
		return E_INVALID;
	}
	a = xstrdup(address);
	for (char *p = a; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	at = strchr(a, '@');
	if (!at || strchr(at + 1, '@'))
		*why = "not of the form user@domain";
	else if (!(*why = check_local(a, (size_t)(at - a))))
		*why = check_domain(at + 1, strlen(at + 1));
	if (*why) {
		free(a);
		return E_INVALID;
	}
	*out = a;
	return 0;
}

char *config_expand_address(const char *pattern, const char *local,
			    const char *domain)
{
	struct strbuf sb = STRBUF_INIT;

	for (const char *p = pattern; *p; p++) {
		if (p[0] != '%' || !p[1]) {
			strbuf_addch(&sb, *p);
			continue;
		}
		switch (*++p) {
		case 'u': strbuf_addf(&sb, "%s@%s", local, domain); break;
		case 'n': strbuf_addstr(&sb, local); break;
		case 'd': strbuf_addstr(&sb, domain); break;
		case '%': strbuf_addch(&sb, '%'); break;
		default: strbuf_addch(&sb, '%'); strbuf_addch(&sb, *p); break;
		}
	}
	return strbuf_detach(&sb, NULL);
}

/* Split a folded address at its "@"; *local and *domain are new strings. */
static void split(const char *addr, char **local, char **domain)
{
	const char *at = strchr(addr, '@');

	*local = xstrndup(addr, (size_t)(at - addr));
	*domain = xstrdup(at + 1);
}

/* --- checking the object ------------------------------------------------- */

/*
 * A path pattern: only %u %n %d %% escapes, and one that tells mailboxes
 * apart (%u, or %n and %d) unless it is a single mailbox's own path.
 */
static int check_pattern(const struct ctx *c, const char *pre,
			 const char *key, const char *pat, bool shared)
{
	bool u = false, n = false, d = false;

	for (const char *p = pat; *p; p++) {
		if (*p != '%')
			continue;
		switch (*++p) {
		case 'u': u = true; break;
		case 'n': n = true; break;
		case 'd': d = true; break;
		case '%': break;
		default:
			return config_p_fail(c, pre, key,
					     "only %u, %n, %d and %% may follow '%'");
		}
	}
	if (shared && !u && !(n && d))
		return config_p_fail(c, pre, key,
				     "must contain %u, or %n and %d: every "
				     "mailbox needs its own");
	return 0;
}

/* Peers ("%u" kept) applied onto a scratch config, URLs expanded. */
static int check_peers(const struct ctx *c, json_t *peers)
{
	struct config scratch;
	struct ctx sc = *c;
	int err;

	memset(&scratch, 0, sizeof scratch);
	sc.cfg = &scratch;
	sc.user = "%u";
	err = config_p_apply_peers(&sc, peers);
	for (size_t i = 0; err == 0 && i < scratch.npeers; i++) {
		char *url = config_expand_address(scratch.peers[i].url,
						  SAMPLE_LOCAL, SAMPLE_DOMAIN);
		const char *why = config_p_check_url(url);

		if (why || strchr(url, '%')) {
			char *pre = xasprintf("virtual.peers.%s.",
					      scratch.peers[i].name);
			err = config_p_fail(c, pre, "url", why ? why :
					    "only %u, %n and %d may follow '%'");
			free(pre);
		}
		free(url);
	}
	config_p_drop_peers(&scratch);
	free(scratch.peers);
	return err;
}

/* One "mailboxes" entry: maildir, repository and peers of its own. */
static int check_box(const struct ctx *c, const char *addr, json_t *box,
		     const struct config_virtual *v)
{
	char *pre = xasprintf("virtual.mailboxes.%s.", addr);
	char *path = NULL;
	bool has_maildir = false, has_repo = false;
	const char *key;
	json_t *val;
	int err = 0;

	if (!json_is_object(box)) {
		err = config_p_fail(c, "virtual.mailboxes.", addr,
				    "expected an object");
		goto done;
	}
	json_object_foreach(box, key, val) {
		if (!strcmp(key, "maildir") || !strcmp(key, "repository")) {
			if ((err = config_p_get_path(c, pre, key, val, &path)) < 0 ||
			    (err = check_pattern(c, pre, key, path, false)) < 0)
				goto done;
			*(key[0] == 'm' ? &has_maildir : &has_repo) = true;
		} else if (!strcmp(key, "peers")) {
			if ((err = check_peers(c, val)) < 0)
				goto done;
		} else {
			err = config_p_fail(c, pre, key, "unknown key");
			goto done;
		}
	}
	if (!has_maildir && !v->maildir)
		err = config_p_fail(c, pre, "maildir",
				    "missing, and virtual.maildir is not set");
	else if (!has_repo && !v->repository)
		err = config_p_fail(c, pre, "repository",
				    "missing, and virtual.repository is not set");
done:
	free(path);
	free(pre);
	return err;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_boxes(const struct ctx *c, json_t *boxes,
		       struct config_virtual *v)
{
	const char *addr, *why;
	json_t *box;

	if (!json_is_object(boxes))
		return config_p_fail(c, "virtual.", "mailboxes",
				     "expected an object");
	v->listed = xcalloc(json_object_size(boxes) + 1, sizeof *v->listed);
	json_object_foreach(boxes, addr, box) {
		char *folded;

		if (config_address_parse(&folded, addr, &why) < 0)
			return config_p_fail(c, "virtual.mailboxes.", addr, why);
		if (strcmp(folded, addr)) {
			free(folded);
			return config_p_fail(c, "virtual.mailboxes.", addr,
					     "write the address in lower case");
		}
		v->listed[v->nlisted++] = folded;
		if (check_box(c, addr, box, v) < 0)
			return E_INVALID;
	}
	qsort(v->listed, v->nlisted, sizeof *v->listed, cmp_str);
	return 0;
}

int config_virtual_apply(const struct ctx *c, json_t *obj)
{
	struct config_virtual *v;
	const char *key;
	json_t *val;
	int err = 0;

	if (!json_is_object(obj))
		return config_p_fail(c, "", "virtual", "expected an object");
	v = xcalloc(1, sizeof *v);
	json_object_foreach(obj, key, val) {
		if (!strcmp(key, "maildir") || !strcmp(key, "repository")) {
			char **field = key[0] == 'm' ? &v->maildir : &v->repository;

			if ((err = config_p_get_path(c, "virtual.", key, val,
						     field)) < 0 ||
			    (err = check_pattern(c, "virtual.", key, *field,
						 true)) < 0)
				goto done;
		} else if (!strcmp(key, "peers")) {
			if ((err = check_peers(c, val)) < 0)
				goto done;
		} else if (strcmp(key, "mailboxes")) {
			err = config_p_fail(c, "virtual.", key, "unknown key");
			goto done;
		}
	}
	/* after the patterns: an entry may rely on them */
	if ((val = json_object_get(obj, "mailboxes")) &&
	    (err = check_boxes(c, val, v)) < 0)
		goto done;
	if (!v->nlisted && (!v->maildir || !v->repository)) {
		err = config_p_fail(c, "virtual.", v->maildir ? "repository" :
				    "maildir", "missing (needed without "
				    "virtual.mailboxes)");
		goto done;
	}
	v->json = json_incref(obj);
	v->file = xstrdup(c->file);
	v->home = xstrdup(c->home);
	config_virtual_free(c->cfg->virt);
	c->cfg->virt = v;
	v = NULL;
done:
	config_virtual_free(v);
	return err;
}

/* --- one mailbox ------------------------------------------------------- */

static bool listed(const struct config_virtual *v, const char *addr)
{
	return bsearch(&addr, v->listed, v->nlisted, sizeof *v->listed,
		       cmp_str) != NULL;
}

/* The box's own path, else the pattern's, expanded. */
static char *box_path(const struct ctx *c, json_t *box, const char *key,
		      const char *pattern, const char *local,
		      const char *domain)
{
	json_t *val = box ? json_object_get(box, key) : NULL;
	char *own = NULL, *res;

	if (val && config_p_get_path(c, "", key, val, &own) == 0)
		pattern = own;
	res = config_expand_address(pattern, local, domain);
	free(own);
	return res;
}

void config_virtual_forget(struct config *cfg)
{
	struct config_virtual *v = cfg->virt;

	if (!v)
		return;
	json_decref(v->json);
	v->json = NULL;
	/* nlisted stays: config_virtual_listed() */
	config_strv_free(v->listed);
	v->listed = NULL;
}

int config_select_mailbox(struct config *cfg, const char *address)
{
	struct config_virtual *v = cfg->virt;
	struct ctx c = { cfg, NULL, "%u", "/", 0 };
	char *addr = NULL, *local = NULL, *domain = NULL;
	const char *why;
	json_t *box = NULL, *peers;
	int err;

	if (!v || !v->json)
		return log_error("no virtual mailboxes are configured "
				 "(\"virtual\" in maildag.conf(5))"), E_INVALID;
	if (config_address_parse(&addr, address, &why) < 0)
		return log_error("bad address: %s", why), E_INVALID;
	if (v->nlisted && !listed(v, addr)) {
		log_error("'%s' is not one of the virtual mailboxes", addr);
		err = E_NOTFOUND;
		goto done;
	}
	c.file = v->file;
	c.home = v->home;
	if (v->nlisted)
		box = json_object_get(json_object_get(v->json, "mailboxes"),
				      addr);
	split(addr, &local, &domain);
	free(cfg->maildir);
	cfg->maildir = box_path(&c, box, "maildir", v->maildir, local, domain);
	free(cfg->repository);
	cfg->repository = box_path(&c, box, "repository", v->repository,
				   local, domain);
	config_p_drop_peers(cfg);
	err = 0;
	if ((peers = json_object_get(v->json, "peers")))
		err = config_p_apply_peers(&c, peers);
	if (err == 0 && box && (peers = json_object_get(box, "peers")))
		err = config_p_apply_peers(&c, peers);
	for (size_t i = 0; err == 0 && i < cfg->npeers; i++) {
		char *url = config_expand_address(cfg->peers[i].url, local,
						  domain);
		free(cfg->peers[i].url);
		cfg->peers[i].url = url;
	}
	if (err == 0)
		err = config_p_finish(&c);
	if (err == 0) {
		free(cfg->address);
		cfg->address = addr;
		addr = NULL;
	}
done:
	free(addr);
	free(local);
	free(domain);
	return err;
}

/* --- every mailbox ----------------------------------------------------- */

/*
 * Does path match pattern, the escapes standing for one path component's
 * text each?  Sets what %n, %d and %u matched (consistently) in *local,
 * *domain and *full (borrowed into buf).
 */
struct captures {
	char local[LOCAL_MAX + 1];
	char domain[ADDRESS_MAX + 1];
	char full[ADDRESS_MAX + 1];
};

static bool capture(char *slot, size_t cap, const char *s, size_t n)
{
	if (n >= cap || (slot[0] && (strlen(slot) != n || strncmp(slot, s, n))))
		return false;
	memcpy(slot, s, n);
	slot[n] = '\0';
	return true;
}

static bool match(const char *pat, const char *path, struct captures *k)
{
	struct captures save;

	if (!*pat)
		return !*path;
	if (pat[0] == '%' && pat[1] == '%')
		return *path == '%' && match(pat + 2, path + 1, k);
	if (pat[0] != '%')
		return *pat == *path && match(pat + 1, path + 1, k);
	for (size_t n = 1; path[n - 1] && path[n - 1] != '/'; n++) {
		char *slot = pat[1] == 'n' ? k->local :
			     pat[1] == 'd' ? k->domain : k->full;
		size_t cap = pat[1] == 'n' ? sizeof k->local : sizeof k->full;

		save = *k;
		if (capture(slot, cap, path, n) && match(pat + 2, path + n, k))
			return true;
		*k = save;
	}
	return false;
}

/* The pattern as a glob(3) pattern: escapes become "*". */
static char *glob_of(const char *pat)
{
	struct strbuf sb = STRBUF_INIT;

	for (const char *p = pat; *p; p++) {
		if (p[0] == '%' && p[1] && p[1] != '%') {
			strbuf_addch(&sb, '*');
			p++;
		} else if (p[0] == '%') {
			strbuf_addch(&sb, '%');
			p += p[1] ? 1 : 0;
		} else {
			if (strchr("*?[\\", *p))
				strbuf_addch(&sb, '\\');
			strbuf_addch(&sb, *p);
		}
	}
	return strbuf_detach(&sb, NULL);
}

/* Add the addresses whose path the pattern finds on disk. */
static int find(char ***out, size_t *n, size_t *alloc, const char *pat)
{
	char *g = glob_of(pat);
	glob_t gl;
	int r = glob(g, GLOB_NOSORT | GLOB_ONLYDIR, NULL, &gl);

	free(g);
	if (r == GLOB_NOMATCH)
		return 0;
	if (r != 0)
		return log_error("cannot look for mailboxes with '%s'", pat),
		       E_FAIL;
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		struct captures k;
		char *addr, *cand;
		const char *why;

		memset(&k, 0, sizeof k);
		if (!match(pat, gl.gl_pathv[i], &k))
			continue;
		if (k.full[0])
			cand = xstrdup(k.full);
		else
			cand = xasprintf("%s@%s", k.local, k.domain);
		if (k.full[0] && (k.local[0] || k.domain[0])) {
			char *parts = xasprintf("%s@%s", k.local, k.domain);
			bool same = !strcmp(parts, k.full);

			free(parts);
			if (!same) {
				free(cand);
				continue;
			}
		}
		if (config_address_parse(&addr, cand, &why) == 0 &&
		    !strcmp(addr, cand)) {
			if (*n + 2 > *alloc) {
				*alloc = *alloc ? 2 * *alloc : 16;
				*out = xrealloc(*out, *alloc * sizeof **out);
			}
			(*out)[(*n)++] = addr;
		} else {
			free(addr);
		}
		free(cand);
	}
	globfree(&gl);
	return 0;
}

int config_virtual_mailboxes(char ***out, size_t *n, const struct config *cfg)
{
	const struct config_virtual *v = cfg->virt;
	size_t alloc = 0, keep = 0;
	char **res = NULL;

	*out = NULL;
	*n = 0;
	if (!v || !v->json) {
		*out = xcalloc(1, sizeof **out);
		return 0;
	}
	if (v->nlisted) {
		res = xcalloc(v->nlisted + 1, sizeof *res);
		for (size_t i = 0; i < v->nlisted; i++)
			res[i] = xstrdup(v->listed[i]);
		*out = res;
		*n = v->nlisted;
		return 0;
	}
	if (find(&res, n, &alloc, v->maildir) < 0 ||
	    find(&res, n, &alloc, v->repository) < 0) {
		for (size_t i = 0; i < *n; i++)
			free(res[i]);
		free(res);
		*n = 0;
		return E_FAIL;
	}
	if (!res)
		res = xcalloc(1, sizeof *res);
	qsort(res, *n, sizeof *res, cmp_str);
	for (size_t i = 0; i < *n; i++) {
		if (keep && !strcmp(res[keep - 1], res[i]))
			free(res[i]);
		else
			res[keep++] = res[i];
	}
	res[keep] = NULL;
	*n = keep;
	*out = res;
	return 0;
}
