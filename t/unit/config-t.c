/*
 * config-t: config_load() against small files in a temporary directory:
 * the defaults, every key, system and user files layered, peers replaced
 * and removed, %u and ~ expansion, host keys, and every error with the
 * exact line it logs.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "../tap.h"
#include "xalloc.h"

static char dir[] = "/tmp/config-t.XXXXXX";
static char *home, *sys_path, *user_path;

/* Keys made with ssh-keygen; fingerprints as ssh-keygen -l printed them. */
#define ED_KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBNHUvQGfjuLxQeQSGLOAkHjSn3wRndtcYUcHLdrKCNI"
#define ED_FP "SHA256:B2jb0QAtC3GBzbGFCPdwz6MEEOw5LVXqqerneXF4eYI"
#define EC_KEY "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEwpynLK9Mflw7wyCt14WIqWzLf2/XlbO9XWINdtCNYm0ZUtwOksDFzDZI+J7I9PXVer2kooKf4QP3nDPS1OIXA="
#define EC_FP "SHA256:SWKISTODo6U+uIkbmmb9polGGg33Mk29ZVXwQjN9R6A"
#define RSA_KEY "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDdUtuEGoWnEG0adU7R820HpzRgzD8z8sN1ihV43ofKewm22YfCUaCkhS0e9iekC/zIjQsuvtT2uvPxwwgI6I+AQcpBCQRHA7PXDUhugsZkCfuoyPfsNkk3kEejKAf6itaaOrtktg7UzOK+Y7twnimQ9m1j20/sff3SbIPrqaBdZQ=="
#define RSA_FP "SHA256:l/aIC8gGxBQxypUaGLP+TN94HBSMSKnD7IhJfNUbZSw"

/* Write text to path with mode, or remove path when text is NULL. */
static void put(const char *path, const char *text, mode_t mode)
{
	FILE *f;

	if (!text) {
		unlink(path);
		return;
	}
	if (!(f = fopen(path, "w")) || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(99);
	}
	if (chmod(path, mode) < 0) {
		perror(path);
		exit(99);
	}
}

/* Load sys and user texts (NULL: no such file) as "alice". */
static int load(struct config **out, const char *sys, const char *user)
{
	put(sys_path, sys, 0644);
	put(user_path, user, 0644);
	return config_load(out, "alice", getuid(), home, user_path, sys_path, 0);
}

/* want with every "$D" replaced by the test directory. */
static char *subst(const char *want)
{
	char *res = xstrdup(""), *tmp;
	const char *p;

	while ((p = strstr(want, "$D"))) {
		tmp = xasprintf("%s%.*s%s", res, (int)(p - want), want, dir);
		free(res);
		res = tmp;
		want = p + 2;
	}
	tmp = xasprintf("%s%s", res, want);
	free(res);
	return tmp;
}

/* The load fails with code and logs exactly msg ("$D" = the directory). */
static void fails(const char *name, const char *sys, const char *user,
		  int code, const char *msg)
{
	struct config *cfg = (struct config *)1;
	char *want = subst(msg);
	int r = load(&cfg, sys, user);

	is_int(r, code, "%s: fails", name);
	ok(cfg == NULL, "%s: no config", name);
	is_str(log_last_error(), want, "%s: message", name);
	free(want);
	config_free(r == 0 ? cfg : NULL);
}

static void test_defaults(void)
{
	struct config *cfg, *d;
	char host[256], *want;
	int r;

	gethostname(host, sizeof host);
	host[sizeof host - 1] = '\0';
	host[strcspn(host, ".")] = '\0';

	r = load(&cfg, NULL, NULL);
	is_int(r, 0, "defaults: no files load");
	is_str(cfg->node, host, "defaults: node is the short host name");
	want = xasprintf("%s/Maildir", home);
	is_str(cfg->maildir, want, "defaults: maildir");
	free(want);
	want = xasprintf("%s/.local/share/maildag/mail.git", home);
	is_str(cfg->repository, want, "defaults: repository");
	free(want);
	is_int(cfg->quorum, 1, "defaults: quorum");
	is_int(cfg->create, 1, "defaults: create");
	is_int(cfg->size_limit, 64ll << 20, "defaults: size_limit");
	is_int(cfg->subscriptions_limit, 1 << 20, "defaults: subscriptions_limit");
	is_int(cfg->tree_entries_limit, 65536, "defaults: tree_entries_limit");
	is_int(cfg->folder_limit, 10000, "defaults: folder_limit");
	is_int(cfg->merge_limit, 8ll << 30, "defaults: merge_limit");
	is_int(cfg->lda_deadline, 600, "defaults: lda_deadline");
	ok(!cfg->dovecot_lda && !cfg->dovecot_config,
	   "defaults: no dovecot_lda, no dovecot_config");
	is_int(cfg->fetch_interval, 300, "defaults: fetch_interval");
	is_int(cfg->debounce_ms, 200, "defaults: debounce_ms");
	is_int(cfg->backoff_min, 1, "defaults: backoff_min");
	is_int(cfg->backoff_max, 300, "defaults: backoff_max");
	is_int(cfg->net_timeout, 60, "defaults: net_timeout");
	ok(cfg->hook_command == NULL, "defaults: no hook command");
	ok(cfg->webhooks && !cfg->webhooks[0], "defaults: empty webhooks");
	is_int(cfg->alarm_messages, 100, "defaults: alarm.messages");
	is_int(cfg->alarm_share, 50, "defaults: alarm.share");
	is_int(cfg->alarm_share_min, 20, "defaults: alarm.share_min");
	is_int(cfg->alarm_folders, 1, "defaults: alarm.folders");
	is_int(cfg->alarm_hold, 0, "defaults: alarm.hold is off");
	ok(cfg->alarm_ignore && cfg->alarm_ignore[0] && cfg->alarm_ignore[1] &&
	   !strcmp(cfg->alarm_ignore[0], ".Trash") &&
	   !strcmp(cfg->alarm_ignore[1], ".Junk") && !cfg->alarm_ignore[2],
	   "defaults: alarm.ignore is Trash and Junk");
	is_int((long long)cfg->npeers, 0, "defaults: no peers");
	ok(config_peer(cfg, "mx2") == NULL, "defaults: config_peer finds none");
	ok(!cfg->system_file && !cfg->user_file, "defaults: no file names");

	d = config_defaults("alice", home);
	is_str(d->node, cfg->node, "config_defaults: node");
	is_str(d->maildir, cfg->maildir, "config_defaults: maildir");
	is_str(d->repository, cfg->repository, "config_defaults: repository");
	is_int(d->quorum + d->lda_deadline + d->net_timeout,
	       cfg->quorum + cfg->lda_deadline + cfg->net_timeout,
	       "config_defaults: numbers");
	config_free(d);
	config_free(cfg);
	config_free(NULL);
	ok(1, "config_free(NULL) is a no-op");

	r = load(&cfg, "", "");
	is_int(r, 0, "empty files load");
	is_str(cfg->user_file, user_path, "empty files: user_file recorded");
	is_str(cfg->system_file, sys_path, "empty files: system_file recorded");
	is_int(cfg->quorum, 1, "empty files: defaults");
	config_free(cfg);
}

static void test_every_key(void)
{
	struct config *cfg;
	const struct config_peer *p;
	char *want;
	int r;

	r = load(&cfg, NULL,
		 "{\n"
		 " \"node\": \"mx1.a_b-C\",\n"
		 " \"maildir\": \"~/Mail/\",\n"
		 " \"repository\": \"/srv//mail/./alice.git/\",\n"
		 " \"quorum\": 2,\n"
		 " \"create\": false,\n"
		 " \"size_limit\": 52428800,\n"
		 " \"subscriptions_limit\": 2048, \"tree_entries_limit\": 300,\n"
		 " \"folder_limit\": 295, \"merge_limit\": 1048576,\n"
		 " \"lda_deadline\": 900,\n"
		 " \"dovecot_lda\": \"/usr/lib/dovecot/dovecot-lda\",\n"
		 " \"dovecot_config\": \"~/dovecot.conf\",\n"
		 " \"fetch_interval\": 60,\n"
		 " \"debounce_ms\": 50,\n"
		 " \"backoff_min\": 2,\n"
		 " \"backoff_max\": 2,\n"
		 " \"net_timeout\": 30,\n"
		 " \"peers\": {\n"
		 "  \"mx2\": { \"url\": \"ssh://mail@mx2.example.org:2222/home/%u/mail%41.git\",\n"
		 "           \"push\": false, \"fetch\": true,\n"
		 "           \"host_key\": \"" ED_FP "\",\n"
		 "           \"identity\": \"~/.ssh/id_ed25519\" },\n"
		 "  \"usb\": { \"url\": \"file:///media/backup/%u.git\", \"fetch\": false },\n"
		 "  \"v6\": { \"url\": \"ssh://[2001:db8::1]/~/mail.git\",\n"
		 "          \"host_key\": \"" EC_KEY "\" }\n"
		 " },\n"
		 " \"hooks\": { \"command\": \"/usr/local/bin/on-mail-change --quiet\",\n"
		 "            \"webhooks\": [ \"https://hooks.example.org/mail\",\n"
		 "                          \"http://127.0.0.1:8080/x\" ] },\n"
		 " \"alarm\": { \"messages\": 0, \"share\": 80, \"share_min\": 5,\n"
		 "            \"folders\": false, \"hold\": true,\n"
		 "            \"ignore\": [ \"Spam\", \"Lists/old\" ] }\n"
		 "}\n");
	if (!is_int(r, 0, "every key: loads")) {
		diag("%s", log_last_error());
		return;
	}
	is_str(cfg->node, "mx1.a_b-C", "node");
	want = xasprintf("%s/Mail", home);
	is_str(cfg->maildir, want, "maildir: ~/ expanded, trailing / dropped");
	free(want);
	is_str(cfg->repository, "/srv/mail/alice.git",
	       "repository: // and /./ and trailing / normalised");
	is_int(cfg->quorum, 2, "quorum");
	is_int(cfg->create, 0, "create");
	is_int(cfg->size_limit, 52428800, "size_limit");
	is_int(cfg->subscriptions_limit, 2048, "subscriptions_limit");
	is_int(cfg->tree_entries_limit, 300, "tree_entries_limit");
	is_int(cfg->folder_limit, 295, "folder_limit (tree_entries_limit - 5)");
	is_int(cfg->merge_limit, 1048576, "merge_limit");
	is_int(cfg->lda_deadline, 900, "lda_deadline");
	is_str(cfg->dovecot_lda, "/usr/lib/dovecot/dovecot-lda", "dovecot_lda");
	want = xasprintf("%s/dovecot.conf", home);
	is_str(cfg->dovecot_config, want, "dovecot_config: ~/ expanded");
	free(want);
	is_int(cfg->fetch_interval, 60, "fetch_interval");
	is_int(cfg->debounce_ms, 50, "debounce_ms");
	is_int(cfg->backoff_min, 2, "backoff_min");
	is_int(cfg->backoff_max, 2, "backoff_max equal to backoff_min is fine");
	is_int(cfg->net_timeout, 30, "net_timeout");
	is_str(cfg->hook_command, "/usr/local/bin/on-mail-change --quiet",
	       "hooks.command");
	is_str(cfg->webhooks[0], "https://hooks.example.org/mail",
	       "hooks.webhooks[0]");
	is_str(cfg->webhooks[1], "http://127.0.0.1:8080/x", "hooks.webhooks[1]");
	ok(cfg->webhooks[2] == NULL, "hooks.webhooks ends in NULL");
	is_int(cfg->alarm_messages, 0, "alarm.messages: 0 turns the rule off");
	is_int(cfg->alarm_share, 80, "alarm.share");
	is_int(cfg->alarm_share_min, 5, "alarm.share_min");
	is_int(cfg->alarm_folders, 0, "alarm.folders");
	is_int(cfg->alarm_hold, 1, "alarm.hold");
	is_str(cfg->alarm_ignore[0], ".Spam", "alarm.ignore[0]: a folder directory");
	is_str(cfg->alarm_ignore[1], ".Lists.old", "alarm.ignore[1]: Lists/old");
	ok(cfg->alarm_ignore[2] == NULL, "alarm.ignore ends in NULL");
	is_int((long long)cfg->npeers, 3, "three peers");
	is_str(cfg->peers[0].name, "mx2", "peers sorted: mx2");
	is_str(cfg->peers[1].name, "usb", "peers sorted: usb");
	is_str(cfg->peers[2].name, "v6", "peers sorted: v6");
	p = config_peer(cfg, "mx2");
	ok(p == &cfg->peers[0], "config_peer finds mx2");
	is_str(p->url, "ssh://mail@mx2.example.org:2222/home/alice/mail%41.git",
	       "mx2.url: %%u expanded, other %% kept");
	is_int(p->push, 0, "mx2.push");
	is_int(p->fetch, 1, "mx2.fetch");
	is_str(p->host_key, ED_FP, "mx2.host_key: fingerprint kept");
	ok(p->host_key_pub == NULL, "mx2.host_key_pub: none given");
	want = xasprintf("%s/.ssh/id_ed25519", home);
	is_str(p->identity, want, "mx2.identity: ~/ expanded");
	free(want);
	p = config_peer(cfg, "usb");
	is_str(p->url, "file:///media/backup/alice.git", "usb.url");
	is_int(p->push, 1, "usb.push defaults to true");
	is_int(p->fetch, 0, "usb.fetch");
	ok(!p->host_key && !p->host_key_pub && !p->identity,
	   "usb: no host key, no identity");
	is_str(config_peer(cfg, "v6")->url, "ssh://[2001:db8::1]/~/mail.git",
	       "v6.url: bracketed IPv6 address");
	is_str(config_peer(cfg, "v6")->host_key, EC_FP,
	       "v6.host_key: the public key's fingerprint");
	ok(config_peer(cfg, "mx3") == NULL, "config_peer: unknown name");
	config_free(cfg);
}

/* size_limit 0 meant "no limit": it still loads, as the largest limit */
static void test_size_limit_zero(void)
{
	struct config *cfg = NULL;
	int r = load(&cfg, NULL, "{ \"size_limit\": 0 }");

	if (!is_int(r, 0, "size_limit 0 still loads (it meant no limit once)")) {
		diag("%s", log_last_error());
		return;
	}
	is_int(cfg->size_limit, 1ll << 30, "size_limit 0 is the largest limit, 1 GiB");
	config_free(cfg);
}

static void test_layering(void)
{
	static const char sys[] =
		"{ \"node\": \"mx1\", \"quorum\": 2, \"size_limit\": 4096,\n"
		"  \"peers\": {\n"
		"    \"mx1\": { \"url\": \"ssh://mx1.example.org/home/%u/mail.git\",\n"
		"             \"host_key\": \"" RSA_FP "\" },\n"
		"    \"mx2\": { \"url\": \"ssh://mx2.example.org/home/%u/mail.git\",\n"
		"             \"host_key\": \"" ED_FP "\", \"push\": true },\n"
		"    \"mx3\": { \"url\": \"ssh://mx3.example.org/home/%u/mail.git\",\n"
		"             \"host_key\": \"" EC_FP "\" },\n"
		"    \"gone\": null },\n"
		"  \"hooks\": { \"command\": \"/bin/sys-hook\",\n"
		"             \"webhooks\": [\"https://a.example/\"] } }\n";
	struct config *cfg;
	const struct config_peer *p;
	int r;

	r = load(&cfg, sys, NULL);
	if (!is_int(r, 0, "system file alone loads")) {
		diag("%s", log_last_error());
		return;
	}
	is_str(cfg->node, "mx1", "system: node");
	is_int((long long)cfg->npeers, 2, "system: the peer named after this node is dropped");
	ok(config_peer(cfg, "mx1") == NULL, "system: no peer mx1 on mx1");
	ok(cfg->system_file && !cfg->user_file, "system: file names");
	config_free(cfg);

	r = load(&cfg, sys,
		 "{ \"quorum\": 3,\n"
		 "  \"peers\": { \"mx2\": { \"url\": \"file:///srv/mx2.git\", \"push\": false },\n"
		 "             \"mx3\": null,\n"
		 "             \"laptop\": { \"url\": \"ssh://%u@laptop/mail.git\",\n"
		 "                         \"host_key\": \"" ED_FP "\" } },\n"
		 "  \"hooks\": { \"command\": null } }\n");
	if (!is_int(r, 0, "system + user loads")) {
		diag("%s", log_last_error());
		return;
	}
	is_int(cfg->quorum, 3, "user scalar replaces the system's");
	is_int(cfg->size_limit, 4096, "system scalar kept when the user's file lacks it");
	is_str(cfg->node, "mx1", "system node kept");
	is_int((long long)cfg->npeers, 2, "two peers left");
	is_str(cfg->peers[0].name, "laptop", "sorted: laptop first");
	is_str(cfg->peers[1].name, "mx2", "sorted: mx2 second");
	p = config_peer(cfg, "mx2");
	is_str(p->url, "file:///srv/mx2.git", "user's mx2 replaces the system's");
	ok(p->host_key == NULL, "replaced whole: the system's host_key is gone");
	is_int(p->push, 0, "replaced: user's push");
	is_int(p->fetch, 1, "replaced: fetch back to its default");
	ok(config_peer(cfg, "mx3") == NULL, "null removes a system peer");
	is_str(config_peer(cfg, "laptop")->url, "ssh://alice@laptop/mail.git",
	       "user adds a peer; %%u in the user part");
	ok(cfg->hook_command == NULL, "hooks.command null unsets the system's");
	is_str(cfg->webhooks[0], "https://a.example/", "system webhooks kept");
	is_str(cfg->system_file, sys_path, "system_file recorded");
	is_str(cfg->user_file, user_path, "user_file recorded");
	config_free(cfg);

	r = load(&cfg, sys, "{ \"hooks\": { \"webhooks\": [] } }");
	is_int(r, 0, "user webhooks [] loads");
	ok(cfg && cfg->webhooks && !cfg->webhooks[0], "webhooks [] clears the list");
	is_str(cfg ? cfg->hook_command : NULL, "/bin/sys-hook",
	       "hooks.command kept when only webhooks given");
	config_free(cfg);

	/* CONFIG_NO_SYSTEM: even a broken system file is not read */
	put(sys_path, "{ broken", 0644);
	put(user_path, "{ \"quorum\": 2 }", 0644);
	r = config_load(&cfg, "alice", getuid(), home, user_path, sys_path,
			CONFIG_NO_SYSTEM);
	is_int(r, 0, "CONFIG_NO_SYSTEM ignores the system file");
	ok(cfg && !cfg->system_file && cfg->quorum == 2, "CONFIG_NO_SYSTEM: user file read");
	config_free(cfg);
}

static void test_default_paths(void)
{
	struct config *cfg;
	char *xdg = xasprintf("%s/xdg", dir), *p, *want;
	int r;

	p = xasprintf("%s/maildag", xdg);
	mkdir(xdg, 0755);
	mkdir(p, 0755);
	free(p);
	want = xasprintf("%s/maildag/config.json", xdg);
	put(want, "{ \"node\": \"fromxdg\" }", 0644);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	r = config_load(&cfg, "alice", getuid(), home, NULL, sys_path,
			CONFIG_NO_SYSTEM);
	is_int(r, 0, "XDG_CONFIG_HOME: loads");
	is_str(cfg ? cfg->node : NULL, "fromxdg", "XDG_CONFIG_HOME: file read");
	is_str(cfg ? cfg->user_file : NULL, want, "XDG_CONFIG_HOME: user_file");
	config_free(cfg);
	free(want);

	p = xasprintf("%s/.config", home);
	mkdir(p, 0755);
	free(p);
	p = xasprintf("%s/.config/maildag", home);
	mkdir(p, 0755);
	free(p);
	want = xasprintf("%s/.config/maildag/config.json", home);
	put(want, "{ \"node\": \"fromhome\" }", 0644);
	setenv("XDG_CONFIG_HOME", "relative/ignored", 1);
	r = config_load(&cfg, "alice", getuid(), home, NULL, sys_path,
			CONFIG_NO_SYSTEM);
	is_int(r, 0, "relative XDG_CONFIG_HOME: loads");
	is_str(cfg ? cfg->node : NULL, "fromhome",
	       "relative XDG_CONFIG_HOME ignored: ~/.config used");
	config_free(cfg);
	unsetenv("XDG_CONFIG_HOME");
	r = config_load(&cfg, "alice", getuid(), home, NULL, sys_path,
			CONFIG_NO_SYSTEM);
	is_str(cfg ? cfg->user_file : NULL, want, "no XDG_CONFIG_HOME: ~/.config");
	config_free(cfg);
	unlink(want);
	free(want);

	/* a symlinked config (dotfile managers) is checked at its target */
	want = xasprintf("%s/real.json", dir);
	put(want, "{ \"quorum\": 4 }", 0644);
	unlink(user_path);
	if (symlink(want, user_path) < 0)
		perror("symlink");
	r = config_load(&cfg, "alice", getuid(), home, user_path, sys_path,
			CONFIG_NO_SYSTEM);
	ok(r == 0 && cfg->quorum == 4, "a symlink to a good file loads");
	config_free(cfg);
	chmod(want, 0666);
	r = config_load(&cfg, "alice", getuid(), home, user_path, sys_path,
			CONFIG_NO_SYSTEM);
	is_int(r, E_PERM, "a symlink to a world-writable file is refused");
	unlink(user_path);
	unlink(want);
	free(want);
	free(xdg);
}

static void test_host_keys(void)
{
	static const struct {
		const char *given, *fp, *pub;
	} t[] = {
		{ ED_FP, ED_FP, NULL },
		{ ED_KEY, ED_FP, ED_KEY },
		{ ED_KEY " root@mx2", ED_FP, ED_KEY },
		{ "mx2.example.org " ED_KEY, ED_FP, ED_KEY },
		{ "[mx2.example.org]:2222,192.0.2.7 " ED_KEY " c", ED_FP, ED_KEY },
		{ EC_KEY " ", EC_FP, EC_KEY },
		{ RSA_KEY, RSA_FP, RSA_KEY },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct config *cfg;
		char *json = xasprintf("{ \"peers\": { \"p\": { \"url\": \"ssh://h/x\","
				       " \"host_key\": \"%s\" } } }", t[i].given);
		int r = load(&cfg, NULL, json);

		if (!is_int(r, 0, "host_key %zu: loads", i)) {
			diag("%s", log_last_error());
		} else {
			is_str(cfg->peers[0].host_key, t[i].fp,
			       "host_key %zu: fingerprint", i);
			is_str(cfg->peers[0].host_key_pub, t[i].pub,
			       "host_key %zu: public key", i);
		}
		config_free(cfg);
		free(json);
	}
}

/* Every error class, with the line it logs; "$D" is the directory. */
static const struct {
	const char *name, *sys, *user;
	int code;
	const char *msg;
} errors[] = {
	/* syntax */
	{ "syntax error", NULL, "{\n  \"node\": \"a\",\n  \"quorum\": 2,,\n}\n",
	  E_INVALID, "$D/user.json:3:15: string or '}' expected near ','" },
	{ "syntax error in the system file", "{ \"node\": }", NULL,
	  E_INVALID, "$D/sys.json:1:11: unexpected token near '}'" },
	{ "duplicate key", NULL, "{ \"quorum\": 1,\n  \"quorum\": 2 }",
	  E_INVALID, "$D/user.json:2:10: duplicate object key near '\"quorum\"'" },
	{ "trailing garbage", NULL, "{} x", E_INVALID,
	  "$D/user.json:1:4: end of file expected near 'x'" },
	{ "not an object", NULL, "[1]", E_INVALID,
	  "$D/user.json: expected a JSON object at the top level" },
	/* unknown keys */
	{ "unknown key", NULL, "{ \"nodes\": \"a\" }", E_INVALID,
	  "$D/user.json: nodes: unknown key" },
	{ "unknown peer key", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"file:///x\", \"pushh\": true } } }",
	  E_INVALID, "$D/user.json: peers.mx2.pushh: unknown key" },
	{ "unknown hooks key", NULL, "{ \"hooks\": { \"cmd\": \"x\" } }",
	  E_INVALID, "$D/user.json: hooks.cmd: unknown key" },
	{ "unknown key in the system file", "{ \"peer\": {} }", NULL,
	  E_INVALID, "$D/sys.json: peer: unknown key" },
	/* wrong types */
	{ "push not a boolean", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"file:///x\", \"push\": \"yes\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.push: expected a boolean" },
	{ "fetch not a boolean", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"file:///x\", \"fetch\": 1 } } }",
	  E_INVALID, "$D/user.json: peers.mx2.fetch: expected a boolean" },
	{ "create not a boolean", NULL, "{ \"create\": \"true\" }", E_INVALID,
	  "$D/user.json: create: expected a boolean" },
	{ "quorum a string", NULL, "{ \"quorum\": \"2\" }", E_INVALID,
	  "$D/user.json: quorum: expected an integer" },
	{ "quorum a real", NULL, "{ \"quorum\": 1.5 }", E_INVALID,
	  "$D/user.json: quorum: expected an integer" },
	{ "size_limit null", NULL, "{ \"size_limit\": null }", E_INVALID,
	  "$D/user.json: size_limit: expected an integer" },
	{ "node a number", NULL, "{ \"node\": 1 }", E_INVALID,
	  "$D/user.json: node: expected a string" },
	{ "maildir an array", NULL, "{ \"maildir\": [\"/m\"] }", E_INVALID,
	  "$D/user.json: maildir: expected a string" },
	{ "url a number", NULL, "{ \"peers\": { \"a\": { \"url\": 1 } } }",
	  E_INVALID, "$D/user.json: peers.a.url: expected a string" },
	{ "peers an array", NULL, "{ \"peers\": [] }", E_INVALID,
	  "$D/user.json: peers: expected an object" },
	{ "peer a string", NULL, "{ \"peers\": { \"mx2\": \"ssh://h/x\" } }",
	  E_INVALID, "$D/user.json: peers.mx2: expected an object or null" },
	{ "hooks a string", NULL, "{ \"hooks\": \"x\" }", E_INVALID,
	  "$D/user.json: hooks: expected an object" },
	{ "hook command a number", NULL, "{ \"hooks\": { \"command\": 1 } }",
	  E_INVALID, "$D/user.json: hooks.command: expected a string or null" },
	{ "webhooks a string", NULL, "{ \"hooks\": { \"webhooks\": \"https://h/\" } }",
	  E_INVALID, "$D/user.json: hooks.webhooks: expected an array of strings" },
	{ "webhook a number", NULL,
	  "{ \"hooks\": { \"webhooks\": [\"https://h/\", 2] } }",
	  E_INVALID, "$D/user.json: hooks.webhooks[1]: expected a string" },
	/* strings */
	{ "empty string", NULL, "{ \"maildir\": \"\" }", E_INVALID,
	  "$D/user.json: maildir: must not be empty" },
	{ "control character", NULL, "{ \"hooks\": { \"command\": \"a\\nb\" } }",
	  E_INVALID, "$D/user.json: hooks.command: must not contain control characters" },
	/* ranges */
	{ "quorum 0", NULL, "{ \"quorum\": 0 }", E_INVALID,
	  "$D/user.json: quorum: must be at least 1" },
	{ "size_limit negative", NULL, "{ \"size_limit\": -1 }", E_INVALID,
	  "$D/user.json: size_limit: must be at least 1" },
	{ "size_limit over 1 GiB", NULL, "{ \"size_limit\": 1073741825 }",
	  E_INVALID, "$D/user.json: size_limit: must be at most 1073741824" },
	{ "subscriptions_limit too small", NULL,
	  "{ \"subscriptions_limit\": 0 }", E_INVALID,
	  "$D/user.json: subscriptions_limit: must be at least 1" },
	{ "subscriptions_limit too big", NULL,
	  "{ \"subscriptions_limit\": 67108865 }", E_INVALID,
	  "$D/user.json: subscriptions_limit: must be at most 67108864" },
	{ "tree_entries_limit too small", NULL,
	  "{ \"tree_entries_limit\": 255 }", E_INVALID,
	  "$D/user.json: tree_entries_limit: must be at least 256" },
	{ "tree_entries_limit too big", NULL,
	  "{ \"tree_entries_limit\": 1048577 }", E_INVALID,
	  "$D/user.json: tree_entries_limit: must be at most 1048576" },
	{ "folder_limit 0", NULL, "{ \"folder_limit\": 0 }", E_INVALID,
	  "$D/user.json: folder_limit: must be at least 1" },
	{ "folder_limit a string", NULL, "{ \"folder_limit\": \"many\" }",
	  E_INVALID, "$D/user.json: folder_limit: expected an integer" },
	{ "merge_limit too small", NULL, "{ \"merge_limit\": 0 }", E_INVALID,
	  "$D/user.json: merge_limit: must be at least 1" },
	{ "folder_limit above tree_entries_limit", NULL,
	  "{ \"folder_limit\": 65532 }", E_INVALID,
	  "$D/user.json: folder_limit (65532) needs a tree_entries_limit of at "
	  "least 65537 (it is 65536): the folders are entries of the root tree" },
	{ "lda_deadline 0", NULL, "{ \"lda_deadline\": 0 }", E_INVALID,
	  "$D/user.json: lda_deadline: must be at least 1" },
	{ "fetch_interval negative", NULL, "{ \"fetch_interval\": -5 }",
	  E_INVALID, "$D/user.json: fetch_interval: must be at least 1" },
	{ "debounce_ms 0", NULL, "{ \"debounce_ms\": 0 }", E_INVALID,
	  "$D/user.json: debounce_ms: must be at least 1" },
	{ "net_timeout too big", NULL, "{ \"net_timeout\": 2147483648 }",
	  E_INVALID, "$D/user.json: net_timeout: must be at most 2147483647" },
	{ "backoff_min above backoff_max", NULL,
	  "{ \"backoff_min\": 10, \"backoff_max\": 5 }", E_INVALID,
	  "$D/user.json: backoff_min (10) is greater than backoff_max (5)" },
	{ "backoff across files names the user file",
	  "{ \"backoff_min\": 100 }", "{ \"backoff_max\": 50 }", E_INVALID,
	  "$D/user.json: backoff_min (100) is greater than backoff_max (50)" },
	/* names */
	{ "node with a slash", NULL, "{ \"node\": \"a/b\" }", E_INVALID,
	  "$D/user.json: node: 'a/b' is not a valid node name (see maildag.conf(5))" },
	{ "node ..", NULL, "{ \"node\": \"..\" }", E_INVALID,
	  "$D/user.json: node: '..' is not a valid node name (see maildag.conf(5))" },
	{ "node .lock", NULL, "{ \"node\": \"mx1.lock\" }", E_INVALID,
	  "$D/user.json: node: 'mx1.lock' is not a valid node name (see maildag.conf(5))" },
	{ "node 65 characters", NULL,
	  "{ \"node\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" }",
	  E_INVALID, "$D/user.json: node: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is not a valid node name (see maildag.conf(5))" },
	{ "peer name with a space", NULL,
	  "{ \"peers\": { \"mx 2\": { \"url\": \"file:///x\" } } }", E_INVALID,
	  "$D/user.json: peers.mx 2: not a valid peer name (see maildag.conf(5))" },
	{ "peer name .", NULL, "{ \"peers\": { \".\": null } }", E_INVALID,
	  "$D/user.json: peers..: not a valid peer name (see maildag.conf(5))" },
	{ "peer name ..", NULL, "{ \"peers\": { \"..\": { \"url\": \"file:///x\" } } }",
	  E_INVALID, "$D/user.json: peers...: not a valid peer name (see maildag.conf(5))" },
	{ "peer name empty", NULL, "{ \"peers\": { \"\": { \"url\": \"file:///x\" } } }",
	  E_INVALID, "$D/user.json: peers.: not a valid peer name (see maildag.conf(5))" },
	{ "peer name leading -", NULL, "{ \"peers\": { \"-o\": { \"url\": \"file:///x\" } } }",
	  E_INVALID, "$D/user.json: peers.-o: not a valid peer name (see maildag.conf(5))" },
	{ "peer name 65 characters", NULL,
	  "{ \"peers\": { \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\": null } }",
	  E_INVALID, "$D/user.json: peers.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb: not a valid peer name (see maildag.conf(5))" },
	/* URLs */
	{ "url missing", NULL, "{ \"peers\": { \"mx2\": { \"push\": true } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: missing (every peer needs one)" },
	{ "url scheme http", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"https://mx2/x.git\" } } }", E_INVALID,
	  "$D/user.json: peers.mx2.url: 'https://mx2/x.git': expected an ssh:// or file:// URL" },
	{ "url scp-like", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"mx2:mail.git\" } } }", E_INVALID,
	  "$D/user.json: peers.mx2.url: 'mx2:mail.git': expected an ssh:// or file:// URL" },
	{ "ssh url without a path", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2\" } } }", E_INVALID,
	  "$D/user.json: peers.mx2.url: 'ssh://mx2': missing the repository path" },
	{ "ssh url with only /", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2/\" } } }", E_INVALID,
	  "$D/user.json: peers.mx2.url: 'ssh://mx2/': missing the repository path" },
	{ "ssh host that is an option", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://-oProxyCommand=x/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: 'ssh://-oProxyCommand=x/y': bad character in the host name" },
	{ "ssh host with a leading -", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://-mx2/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: 'ssh://-mx2/y': host name must not begin with '-'" },
	{ "ssh user with a leading -", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://-u@mx2/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: 'ssh://-u@mx2/y': user name must not begin with '-'" },
	{ "ssh empty host", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://u@/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: 'ssh://u@/y': missing the host name" },
	{ "ssh empty user", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://@mx2/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: 'ssh://@mx2/y': empty user name" },
	{ "ssh password", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://u:pw@mx2/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: 'ssh://u:pw@mx2/y': the user name must not contain ':' or spaces (no passwords)" },
	{ "ssh port 0", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2:0/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: 'ssh://mx2:0/y': the port must be from 1 to 65535" },
	{ "ssh port too big", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2:655350/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: 'ssh://mx2:655350/y': the port must be from 1 to 65535" },
	{ "ssh port not a number", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2:ssh/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: 'ssh://mx2:ssh/y': the port must be a number" },
	{ "ssh unterminated [", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://[::1/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.url: 'ssh://[::1/y': unterminated '[' in the host" },
	{ "file url with a host", NULL,
	  "{ \"peers\": { \"usb\": { \"url\": \"file://media/x.git\" } } }",
	  E_INVALID, "$D/user.json: peers.usb.url: 'file://media/x.git': a file URL must be file:///absolute/path" },
	{ "file url without a path", NULL,
	  "{ \"peers\": { \"usb\": { \"url\": \"file:///\" } } }",
	  E_INVALID, "$D/user.json: peers.usb.url: 'file:///': missing the repository path" },
	{ "webhook scheme", NULL, "{ \"hooks\": { \"webhooks\": [\"ftp://h/\"] } }",
	  E_INVALID, "$D/user.json: hooks.webhooks[0]: 'ftp://h/': expected an http:// or https:// URL" },
	/* host keys and identities */
	{ "host_key short", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2/y\", \"host_key\": \"SHA256:abc\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.host_key: expected \"SHA256:\" and 43 base64 characters" },
	{ "host_key padded", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2/y\", \"host_key\": \"" ED_FP "=\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.host_key: expected \"SHA256:\" and 43 base64 characters" },
	{ "host_key bad last character", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2/y\", \"host_key\": \"SHA256:B2jb0QAtC3GBzbGFCPdwz6MEEOw5LVXqqerneXF4eYJ\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.host_key: expected \"SHA256:\" and 43 base64 characters" },
	{ "host_key MD5", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2/y\", \"host_key\": \"MD5:12:34\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.host_key: expected \"SHA256:<fingerprint>\" or an OpenSSH public key" },
	{ "host_key bad base64", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2/y\", \"host_key\": \"ssh-ed25519 AAA*\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.host_key: the public key is not valid base64" },
	{ "host_key type mismatch", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2/y\", \"host_key\": \"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIBNHUvQGfjuLxQeQSGLOAkHjSn3wRndtcYUcHLdrKCNI\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.host_key: the public key does not match its type" },
	{ "host_key on a file peer", NULL,
	  "{ \"peers\": { \"usb\": { \"host_key\": \"" ED_FP "\", \"url\": \"file:///x\" } } }",
	  E_INVALID, "$D/user.json: peers.usb.host_key: only meaningful for an ssh:// peer" },
	{ "ssh peer without a host_key", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2/y\", \"identity\": \"~/.ssh/id\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.host_key: required for an ssh:// peer" },
	{ "ssh peer replaced without its host_key",
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2/y\", \"host_key\": \"" ED_FP "\" } } }",
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mail@mx2/y\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.host_key: required for an ssh:// peer" },
	{ "identity on a file peer", NULL,
	  "{ \"peers\": { \"usb\": { \"url\": \"file:///x\", \"identity\": \"~/.ssh/id\" } } }",
	  E_INVALID, "$D/user.json: peers.usb.identity: only meaningful for an ssh:// peer" },
	/* paths */
	{ "relative maildir", NULL, "{ \"maildir\": \"Maildir\" }", E_INVALID,
	  "$D/user.json: maildir: 'Maildir' is not an absolute path (nor starts with ~/)" },
	{ "~user repository", NULL, "{ \"repository\": \"~bob/mail.git\" }",
	  E_INVALID, "$D/user.json: repository: '~bob/mail.git' is not an absolute path (nor starts with ~/)" },
	{ "relative identity", NULL,
	  "{ \"peers\": { \"mx2\": { \"url\": \"ssh://mx2/y\", \"identity\": \"id_rsa\" } } }",
	  E_INVALID, "$D/user.json: peers.mx2.identity: 'id_rsa' is not an absolute path (nor starts with ~/)" },
	{ "repository inside the maildir", NULL,
	  "{ \"maildir\": \"/m\", \"repository\": \"/m/.git\" }", E_INVALID,
	  "$D/user.json: repository '/m/.git' and maildir '/m' must not be inside one another" },
	{ "maildir inside the repository", NULL,
	  "{ \"maildir\": \"/r/Maildir\", \"repository\": \"/r\" }", E_INVALID,
	  "$D/user.json: repository '/r' and maildir '/r/Maildir' must not be inside one another" },
	{ "maildir at home holds the default repository", NULL,
	  "{ \"maildir\": \"~\" }", E_INVALID,
	  "$D/user.json: repository '$D/home/.local/share/maildag/mail.git' and maildir '$D/home' must not be inside one another" },
	/* the alarm */
	{ "alarm not an object", NULL, "{ \"alarm\": 3 }", E_INVALID,
	  "$D/user.json: alarm: expected an object" },
	{ "alarm.share over 100", NULL, "{ \"alarm\": { \"share\": 101 } }",
	  E_INVALID, "$D/user.json: alarm.share: must be at most 100" },
	{ "alarm.share_min 0", NULL, "{ \"alarm\": { \"share_min\": 0 } }",
	  E_INVALID, "$D/user.json: alarm.share_min: must be at least 1" },
	{ "alarm.hold not a boolean", NULL, "{ \"alarm\": { \"hold\": 1 } }",
	  E_INVALID, "$D/user.json: alarm.hold: expected a boolean" },
	{ "alarm.ignore INBOX", NULL, "{ \"alarm\": { \"ignore\": [\"inbox\"] } }",
	  E_INVALID, "$D/user.json: alarm.ignore[0]: 'inbox' is not a folder other than INBOX" },
	{ "alarm unknown key", NULL, "{ \"alarm\": { \"count\": 3 } }",
	  E_INVALID, "$D/user.json: alarm.count: unknown key" },
};

static void test_errors(void)
{
	for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
		fails(errors[i].name, errors[i].sys, errors[i].user,
		      errors[i].code, errors[i].msg);
}

static void test_files(void)
{
	struct config *cfg;
	char *want, *sub;
	int r;

	put(sys_path, NULL, 0);
	put(user_path, "{}", 0664);
	r = config_load(&cfg, "alice", getuid(), home, user_path, sys_path, 0);
	is_int(r, E_PERM, "group-writable user file: E_PERM");
	ok(cfg == NULL, "group-writable user file: no config");
	want = subst("refusing '$D/user.json': writable by its group (mode 0664)");
	is_str(log_last_error(), want, "group-writable user file: message");
	free(want);

	chmod(user_path, 0646);
	r = config_load(&cfg, "alice", getuid(), home, user_path, sys_path, 0);
	is_int(r, E_PERM, "world-writable user file: E_PERM");
	want = subst("refusing '$D/user.json': writable by others (mode 0646)");
	is_str(log_last_error(), want, "world-writable user file: message");
	free(want);

	put(user_path, NULL, 0);
	put(sys_path, "{}", 0620);
	r = config_load(&cfg, "alice", getuid(), home, user_path, sys_path, 0);
	is_int(r, E_PERM, "group-writable system file: E_PERM");
	want = subst("refusing '$D/sys.json': writable by its group (mode 0620)");
	is_str(log_last_error(), want, "group-writable system file: message");
	free(want);

	/* the user file belongs to us: loading it for another uid refuses it */
	put(sys_path, NULL, 0);
	put(user_path, "{}", 0600);
	r = config_load(&cfg, "alice", getuid() + 1, home, user_path, sys_path, 0);
	is_int(r, E_PERM, "user file owned by another uid: E_PERM");
	want = xasprintf("refusing '%s': owned by uid %lu, not uid %lu",
			 user_path, (unsigned long)getuid(),
			 (unsigned long)getuid() + 1);
	is_str(log_last_error(), want, "user file owned by another uid: message");
	free(want);

	/* the system file: root or the user may own it, nobody else */
	put(user_path, NULL, 0);
	put(sys_path, "{}", 0644);
	if (getuid() == 0) {
		r = config_load(&cfg, "alice", 4242, home, user_path, sys_path, 0);
		is_int(r, 0, "system file owned by root, loaded for uid 4242");
		config_free(cfg);
		if (chown(sys_path, 4343, 4343) < 0)
			perror("chown");
		r = config_load(&cfg, "alice", 4242, home, user_path, sys_path, 0);
		want = subst("refusing '$D/sys.json': owned by uid 4343, not root or uid 4242");
	} else {
		r = config_load(&cfg, "alice", getuid() + 1, home, user_path,
				sys_path, 0);
		ok(1, "# SKIP system file owned by root: not running as root");
		want = xasprintf("refusing '%s': owned by uid %lu, not root or uid %lu",
				 sys_path, (unsigned long)getuid(),
				 (unsigned long)getuid() + 1);
	}
	is_int(r, E_PERM, "system file owned by another uid: E_PERM");
	is_str(log_last_error(), want, "system file owned by another uid: message");
	free(want);
	unlink(sys_path);

	/* a file that is there but cannot be read is an error, not defaults */
	put(user_path, "{}", 0);
	r = config_load(&cfg, "alice", getuid(), home, user_path, sys_path, 0);
	if (getuid() == 0) {
		ok(1, "# SKIP unreadable file: root reads anything");
		ok(1, "# SKIP unreadable file: root reads anything");
		config_free(cfg);
	} else {
		is_int(r, E_PERM, "unreadable user file: E_PERM");
		want = subst("cannot open '$D/user.json': Permission denied");
		is_str(log_last_error(), want, "unreadable user file: message");
		free(want);
	}
	unlink(user_path);

	sub = xasprintf("%s/adir", dir);
	mkdir(sub, 0700);
	r = config_load(&cfg, "alice", getuid(), home, sub, sys_path, 0);
	is_int(r, E_INVALID, "a directory as config file: E_INVALID");
	want = subst("'$D/adir' is not a regular file");
	is_str(log_last_error(), want, "a directory as config file: message");
	free(want);
	rmdir(sub);
	free(sub);

	r = config_load(&cfg, "alice", getuid(), "relative", user_path,
			sys_path, 0);
	is_int(r, E_INVALID, "relative home: E_INVALID");
}

int main(void)
{
	log_init("config-t", 0, LOG_LVL_ERROR);
	unsetenv("XDG_CONFIG_HOME");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 99;
	}
	home = xasprintf("%s/home", dir);
	mkdir(home, 0755);
	sys_path = xasprintf("%s/sys.json", dir);
	user_path = xasprintf("%s/user.json", dir);

	test_defaults();
	test_every_key();
	test_layering();
	test_size_limit_zero();
	test_default_paths();
	test_host_keys();
	test_errors();
	test_files();

	unlink(sys_path);
	unlink(user_path);
	{
		char *p = xasprintf("%s/xdg/maildag/config.json", dir);
		unlink(p);
		free(p);
		p = xasprintf("%s/xdg/maildag", dir);
		rmdir(p);
		free(p);
		p = xasprintf("%s/xdg", dir);
		rmdir(p);
		free(p);
		p = xasprintf("%s/.config/maildag", home);
		rmdir(p);
		free(p);
		p = xasprintf("%s/.config", home);
		rmdir(p);
		free(p);
	}
	rmdir(home);
	if (rmdir(dir) < 0)
		perror(dir);
	free(home);
	free(sys_path);
	free(user_path);
	return tap_done();
}
