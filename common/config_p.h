/*
 * config_p: what config.c shares with config_virtual.c (not for others).
 */
#ifndef CONFIG_P_H
#define CONFIG_P_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "config.h"

/* Where the parser is: for messages, and what %u and ~ expand to. */
struct ctx {
	struct config *cfg;
	const char *file;
	const char *user;
	const char *home;
	uid_t uid;
};

/* Log "FILE: PREKEY: what" and return E_INVALID. */
int config_p_fail(const struct ctx *c, const char *pre, const char *key,
		  const char *what);
/* An absolute path or one under ~/, normalised, into *out (replaced). */
int config_p_get_path(const struct ctx *c, const char *pre, const char *key,
		      json_t *v, char **out);
/* A "peers" object applied onto c->cfg's peers ("%u" expands to c->user). */
int config_p_apply_peers(const struct ctx *c, json_t *obj);
/* Remove every peer of cfg. */
void config_p_drop_peers(struct config *cfg);
/* NULL if url is a usable peer URL, else why not. */
const char *config_p_check_url(const char *url);
/* [A-Za-z0-9], whatever the locale */
static inline bool config_p_alnum(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}
/* config_url.c: NULL when good, else why not. */
enum scheme { SCHEME_SSH, SCHEME_FILE };
const char *config_p_url(const char *url, enum scheme *scheme);
const char *config_p_webhook(const char *url);
/* An ssh host key or fingerprint: its fingerprint (and key) into fp, pub. */
const char *config_p_host_key(const char *s, char **fp, char **pub);
/*
 * After the Maildir, the repository or the peers changed: the Maildir and
 * the repository apart, the peer named after the node dropped, the peers
 * sorted.  E_INVALID after logging.
 */
int config_p_finish(const struct ctx *c);

/* The "virtual" key (config_virtual.c): checked and kept in c->cfg->virt. */
int config_virtual_apply(const struct ctx *c, json_t *v);
void config_virtual_free(struct config_virtual *v);

#endif
