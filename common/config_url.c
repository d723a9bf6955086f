/*
 * config_url: the checks of a peer URL, a webhook URL and an ssh host key
 * (see config.h for what a loaded config guarantees of them).
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "config.h"
#include "config_p.h"
#include "sha256.h"
#include "strbuf.h"
#include "xalloc.h"


/* NULL if url is a peer URL we can use, else why not. */
const char *config_p_url(const char *url, enum scheme *scheme)
{
	const char *a, *slash, *at, *host, *hend;

	if (!strncmp(url, "file://", 7)) {
		*scheme = SCHEME_FILE;
		if (url[7] != '/')
			return "a file URL must be file:///absolute/path";
		if (!url[8])
			return "missing the repository path";
		return NULL;
	}
	if (strncmp(url, "ssh://", 6))
		return "expected an ssh:// or file:// URL";
	*scheme = SCHEME_SSH;
	a = url + 6;
	slash = strchr(a, '/');
	if (!slash)
		return "missing the repository path";
	at = memchr(a, '@', (size_t)(slash - a));
	host = a;
	if (at) {
		if (at == a)
			return "empty user name";
		if (*a == '-')
			return "user name must not begin with '-'";
		for (const char *p = a; p < at; p++)
			if (*p == ':' || *p == ' ')
				return "the user name must not contain ':' or spaces (no passwords)";
		host = at + 1;
	}
	if (*host == '[') {
		for (hend = host + 1; hend < slash && *hend != ']'; hend++)
			if (!config_p_alnum(*hend) && *hend != ':' && *hend != '.')
				return "bad character in the host address";
		if (hend == slash)
			return "unterminated '[' in the host";
		if (hend == host + 1)
			return "missing the host name";
		hend++;
	} else {
		for (hend = host; hend < slash && *hend != ':'; hend++)
			if (!config_p_alnum(*hend) && *hend != '.' && *hend != '-' &&
			    *hend != '_')
				return "bad character in the host name";
		if (hend == host)
			return "missing the host name";
		if (*host == '-')
			return "host name must not begin with '-'";
	}
	if (hend < slash) {
		long port = 0;

		if (*hend != ':')
			return "unexpected character after the host";
		if (hend + 1 == slash)
			return "empty port";
		for (const char *p = hend + 1; p < slash; p++) {
			if (*p < '0' || *p > '9')
				return "the port must be a number";
			port = port * 10 + (*p - '0');
			if (port > 65535)
				break;
		}
		if (port < 1 || port > 65535)
			return "the port must be from 1 to 65535";
	}
	if (!slash[1])
		return "missing the repository path";
	return NULL;
}

const char *config_p_webhook(const char *url)
{
	const char *host;

	if (!strncmp(url, "https://", 8))
		host = url + 8;
	else if (!strncmp(url, "http://", 7))
		host = url + 7;
	else
		return "expected an http:// or https:// URL";
	if (!*host || *host == '/')
		return "missing the host name";
	if (strchr(url, ' '))
		return "must not contain spaces";
	return NULL;
}

/* --- host keys ----------------------------------------------------------- */

void config_fingerprint(struct strbuf *out, const unsigned char sha256[32])
{
	strbuf_addstr(out, "SHA256:");
	base64_encode(out, sha256, 32, false);
}

static const char *const key_types[] = {
	"ssh-ed25519",
	"ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521",
	"ssh-rsa",
	"sk-ssh-ed25519@openssh.com",
	"sk-ecdsa-sha2-nistp256@openssh.com",
};

static bool is_key_type(const char *s)
{
	for (size_t i = 0; i < sizeof key_types / sizeof key_types[0]; i++)
		if (!strcmp(s, key_types[i]))
			return true;
	return false;
}

static bool fingerprint_ok(const char *s)
{
	struct strbuf again = STRBUF_INIT;
	unsigned char *d;
	size_t n = 0;
	bool ok;

	if (strncmp(s, "SHA256:", 7))
		return false;
	s += 7;
	if (strlen(s) != 43 || !(d = base64_decode(s, &n)))
		return false;
	/* 43 characters carry 258 bits: 32 bytes, the last 2 bits zero */
	base64_encode(&again, d, n, false);
	ok = n == 32 && !strcmp(again.buf, s);
	strbuf_release(&again);
	free(d);
	return ok;
}

/*
 * A host key pin: "SHA256:<43 base64>" as ssh-keygen -l prints it, or an
 * OpenSSH public key "<type> <base64> [comment]", optionally after the
 * host field of a known_hosts or ssh-keyscan line.  The fingerprint is
 * what libgit2's certificate check compares; the key itself is kept too
 * when given, for whoever needs a known_hosts line.
 */
const char *config_p_host_key(const char *s, char **fp, char **pub)
{
	char *copy, *tok[3] = { NULL, NULL, NULL }, *save = NULL, *p;
	const char *why = NULL, *type, *data;
	unsigned char *blob = NULL, digest[32];
	size_t len = 0, i = 0;
	struct strbuf sb = STRBUF_INIT;

	*fp = *pub = NULL;
	if (!strncmp(s, "SHA256:", 7)) {
		if (!fingerprint_ok(s))
			return "expected \"SHA256:\" and 43 base64 characters";
		*fp = xstrdup(s);
		return NULL;
	}
	copy = xstrdup(s);
	for (p = strtok_r(copy, " ", &save); p && i < 3;
	     p = strtok_r(NULL, " ", &save))
		tok[i++] = p;
	if (tok[0] && !is_key_type(tok[0]) && tok[1] && is_key_type(tok[1])) {
		type = tok[1];
		data = tok[2];
	} else {
		type = tok[0];
		data = tok[1];
	}
	if (!type || !is_key_type(type)) {
		why = "expected \"SHA256:<fingerprint>\" or an OpenSSH public key";
		goto done;
	}
	if (!data || !(blob = base64_decode(data, &len))) {
		why = "the public key is not valid base64";
		goto done;
	}
	/* the key blob starts with its own type: catches a mangled paste */
	if (len < 4 ||
	    ((size_t)blob[0] << 24 | (size_t)blob[1] << 16 |
	     (size_t)blob[2] << 8 | blob[3]) != strlen(type) ||
	    len < 4 + strlen(type) || memcmp(blob + 4, type, strlen(type))) {
		why = "the public key does not match its type";
		goto done;
	}
	sha256_digest(blob, len, digest);
	config_fingerprint(&sb, digest);
	*fp = strbuf_detach(&sb, NULL);
	*pub = xasprintf("%s %s", type, data);
done:
	free(blob);
	free(copy);
	return why;
}

/* --- values -------------------------------------------------------------- */

const char *config_p_check_url(const char *url)
{
	enum scheme scheme;

	return config_p_url(url, &scheme);
}
