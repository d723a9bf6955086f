/*
 * config-virtual-t: the "virtual" key (config_virtual.c): addresses good
 * and hostile, patterns expanded, peers for all and per mailbox, listed
 * mailboxes, mailboxes found on disk, and the errors a bad key logs.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "../tap.h"
#include "xalloc.h"

static char dir[] = "/tmp/config-virtual-t.XXXXXX";
static char *home, *user_path;

static void put(const char *text)
{
	FILE *f = fopen(user_path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(user_path);
		exit(99);
	}
	chmod(user_path, 0644);
}

static int load(struct config **out, const char *text)
{
	put(text);
	return config_load(out, "vmail", getuid(), home, user_path, NULL,
			   CONFIG_NO_SYSTEM);
}

static const struct {
	const char *in, *out;	/* out NULL: refused */
} addresses[] = {
	{ "alice@example.org", "alice@example.org" },
	{ "Alice.Smith@Example.ORG", "alice.smith@example.org" },
	{ "a+b=c_d-e@x-y.example", "a+b=c_d-e@x-y.example" },
	{ "../x@example.org", NULL },
	{ "a/b@example.org", NULL },
	{ "alice@../etc", NULL },
	{ "alice@exa/mple.org", NULL },
	{ ".alice@example.org", NULL },
	{ "-alice@example.org", NULL },
	{ "al..ice@example.org", NULL },
	{ "alice.@example.org", NULL },
	{ "alice", NULL },
	{ "@example.org", NULL },
	{ "alice@", NULL },
	{ "a@b@example.org", NULL },
	{ "alice@example..org", NULL },
	{ "alice@-example.org", NULL },
	{ "al ice@example.org", NULL },
	{ "al\tice@example.org", NULL },
	{ "al%ice@example.org", NULL },
	{ "al'ice@example.org", NULL },
	{ "al\xc3\xa9@example.org", NULL },
	{ "", NULL },
};

static void test_addresses(void)
{
	char longlocal[80], longaddr[300];

	for (size_t i = 0; i < sizeof addresses / sizeof addresses[0]; i++) {
		const char *why = NULL;
		char *out;
		int r = config_address_parse(&out, addresses[i].in, &why);

		if (addresses[i].out)
			is_str(r == 0 ? out : why, addresses[i].out,
			       "address '%s'", addresses[i].in);
		else
			ok(r == E_INVALID && out == NULL && why,
			   "address '%s' refused (%s)", addresses[i].in,
			   why ? why : "");
		free(out);
	}
	memset(longlocal, 'a', 65);
	strcpy(longlocal + 65, "@example.org");
	{
		const char *why;
		char *out;
		ok(config_address_parse(&out, longlocal, &why) == E_INVALID,
		   "a 65-character local part is refused");
		memset(longaddr, 'a', 60);
		longaddr[60] = '@';
		for (int i = 61; i < 290; i++)
			longaddr[i] = (i % 10) ? 'b' : '.';
		strcpy(longaddr + 290, "org");
		ok(config_address_parse(&out, longaddr, &why) == E_INVALID,
		   "a 293-character address is refused");
	}
}

static void test_expand(void)
{
	char *s = config_expand_address("/v/%d/%n/%u/100%%", "bob", "ex.org");

	is_str(s, "/v/ex.org/bob/bob@ex.org/100%", "escapes expanded");
	free(s);
}

#define PATTERNS \
	"\"maildir\": \"/var/vmail/%d/%n/Maildir\", " \
	"\"repository\": \"~/repos/%u.git\""

static void test_select(void)
{
	struct config *cfg;
	char *want;
	int r;

	r = load(&cfg, "{\"peers\": {\"top\": {\"url\": \"file:///top\"}},"
		 " \"virtual\": {" PATTERNS ", \"peers\": {"
		 "\"mx2\": {\"url\": \"file:///mx2/%d/%n.git\"},"
		 "\"mx3\": {\"url\": \"ssh://vmail@mx3:2222/v/%u.git\","
		 " \"host_key\": \"SHA256:B2jb0QAtC3GBzbGFCPdwz6MEEOw5LVXqqerneXF4eYI\"}}}}");
	is_int(r, 0, "pattern config loads");
	ok(config_is_virtual(cfg), "it is virtual");
	ok(!config_virtual_listed(cfg), "nothing listed");
	is_int(config_select_mailbox(cfg, "Bob@Example.org"), 0,
	       "select bob");
	is_str(cfg->address, "bob@example.org", "address folded");
	is_str(cfg->maildir, "/var/vmail/example.org/bob/Maildir", "maildir");
	want = xasprintf("%s/repos/bob@example.org.git", home);
	is_str(cfg->repository, want, "repository under ~");
	free(want);
	is_int(cfg->npeers, 2, "the virtual peers, not the top-level one");
	is_str(cfg->peers[0].url, "file:///mx2/example.org/bob.git", "mx2 url");
	is_str(cfg->peers[1].url, "ssh://vmail@mx3:2222/v/bob@example.org.git",
	       "mx3 url");
	config_free(cfg);

	r = load(&cfg, "{\"node\": \"mx1\", \"virtual\": {" PATTERNS ","
		 " \"peers\": {\"mx1\": {\"url\": \"file:///a/%u\"},"
		 "  \"mx2\": {\"url\": \"file:///b/%u\"}},"
		 " \"mailboxes\": {\"alice@example.org\": {},"
		 "  \"carol@example.net\": {\"maildir\": \"/srv/carol/Maildir\","
		 "   \"peers\": {\"mx2\": null, \"mx4\": {\"url\": \"file:///c/%n\"}}}}}}");
	is_int(r, 0, "listed config loads");
	ok(config_virtual_listed(cfg), "listed");
	is_int(config_select_mailbox(cfg, "dave@example.org"), E_NOTFOUND,
	       "an unlisted address is not found");
	is_int(config_select_mailbox(cfg, "../x@example.org"), E_INVALID,
	       "a hostile address is invalid");
	is_int(config_select_mailbox(cfg, "carol@example.net"), 0,
	       "select carol");
	is_str(cfg->maildir, "/srv/carol/Maildir", "carol's own maildir");
	is_int(cfg->npeers, 1, "peer named as the node dropped, mx2 removed");
	is_str(cfg->peers[0].name, "mx4", "mx4 added");
	is_str(cfg->peers[0].url, "file:///c/carol", "mx4 url");
	config_free(cfg);
}

static void fails(const char *name, const char *text, const char *msg)
{
	struct config *cfg = NULL;
	char *want = xasprintf("%s: %s", user_path, msg);
	int r = load(&cfg, text);

	is_int(r, E_INVALID, "%s: fails", name);
	is_str(log_last_error(), want, "%s: message", name);
	free(want);
	config_free(r == 0 ? cfg : NULL);
}

static void test_errors(void)
{
	fails("not an object", "{\"virtual\": 1}",
	      "virtual: expected an object");
	fails("unknown key", "{\"virtual\": {" PATTERNS ", \"x\": 1}}",
	      "virtual.x: unknown key");
	fails("shared pattern", "{\"virtual\": {\"maildir\": \"/v/%n\","
	      " \"repository\": \"/r/%u\"}}",
	      "virtual.maildir: must contain %u, or %n and %d: every mailbox "
	      "needs its own");
	fails("bad escape", "{\"virtual\": {\"maildir\": \"/v/%u/%h\","
	      " \"repository\": \"/r/%u\"}}",
	      "virtual.maildir: only %u, %n, %d and %% may follow '%'");
	fails("no repository", "{\"virtual\": {\"maildir\": \"/v/%u\"}}",
	      "virtual.repository: missing (needed without virtual.mailboxes)");
	fails("bad listed address", "{\"virtual\": {" PATTERNS ","
	      " \"mailboxes\": {\"a/b@x.org\": {}}}}",
	      "virtual.mailboxes.a/b@x.org: character not allowed in a "
	      "mailbox name");
	fails("upper case listed", "{\"virtual\": {" PATTERNS ","
	      " \"mailboxes\": {\"Al@x.org\": {}}}}",
	      "virtual.mailboxes.Al@x.org: write the address in lower case");
	fails("no pattern for a box", "{\"virtual\": {\"mailboxes\":"
	      " {\"al@x.org\": {\"maildir\": \"/m\"}}}}",
	      "virtual.mailboxes.al@x.org.repository: missing, and "
	      "virtual.repository is not set");
	fails("bad peer escape", "{\"virtual\": {" PATTERNS ","
	      " \"peers\": {\"mx2\": {\"url\": \"file:///x/%z\"}}}}",
	      "virtual.peers.mx2.url: only %u, %n and %d may follow '%'");
}

static void mk(const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);

	if (mkdir_p(p, 0700) < 0)
		exit(99);
	free(p);
}

static void test_found(void)
{
	struct config *cfg;
	char *text, **boxes;
	size_t n;

	mk("v/example.org/alice/Maildir");
	mk("v/example.org/bob/Maildir");
	mk("r/carol@example.net.git");
	mk("r/bob@example.org.git");
	mk("v/example.org/.hidden/Maildir");	/* not an address */
	mk("v/example.org/noMaildir");
	text = xasprintf("{\"virtual\": {\"maildir\": \"%s/v/%%d/%%n/Maildir\","
			 " \"repository\": \"%s/r/%%u.git\"}}", dir, dir);
	is_int(load(&cfg, text), 0, "found: loads");
	is_int(config_virtual_mailboxes(&boxes, &n, cfg), 0, "found: listed");
	is_int(n, 3, "found: three mailboxes");
	if (n == 3) {
		is_str(boxes[0], "alice@example.org", "found: alice");
		is_str(boxes[1], "bob@example.org", "found: bob once");
		is_str(boxes[2], "carol@example.net", "found: carol");
	}
	ok(boxes && boxes[n] == NULL, "found: NULL-terminated");
	config_strv_free(boxes);
	config_free(cfg);
	free(text);
}

int main(void)
{
	log_init("config-virtual-t", 0, LOG_LVL_ERROR);
	unsetenv("XDG_CONFIG_HOME");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 99;
	}
	home = xasprintf("%s/home", dir);
	mkdir(home, 0755);
	user_path = xasprintf("%s/user.json", dir);

	test_addresses();
	test_expand();
	test_select();
	test_errors();
	test_found();

	{
		char *cmd = xasprintf("rm -rf '%s'", dir);
		if (system(cmd) != 0)
			diag("could not remove %s", dir);
		free(cmd);
	}
	free(home);
	free(user_path);
	return tap_done();
}
