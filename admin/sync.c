/*
 * maildag sync: have maildag-syncd push and fetch now, whatever the
 * backoff; and the one request of the daemon over its control socket
 * (control.h) the other verbs make too.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "admin.h"
#include "control.h"
#include "log.h"

#define REQUEST_TIMEOUT_MS 10000

int admin_ask(const struct mailbox *mb, const char *cmd, json_t **ans,
	      bool *connected)
{
	json_t *req;
	int fd = control_connect(mb), r;

	*ans = NULL;
	*connected = fd >= 0;
	if (fd < 0)
		return fd;
	req = json_pack("{s:s}", "cmd", cmd);
	/* one daemon serves every virtual mailbox: name ours */
	if (mb->cfg->address)
		json_object_set_new(req, "mailbox",
				    json_string(mb->cfg->address));
	r = control_request(fd, req, ans, REQUEST_TIMEOUT_MS);
	close(fd);
	json_decref(req);
	return r;
}

int admin_poke_daemon(const struct mailbox *mb)
{
	bool connected;
	json_t *ans;
	int r = admin_ask(mb, "sync", &ans, &connected);

	json_decref(ans);
	return r < 0 ? r : 0;
}

int cmd_sync(struct mailbox *mb, int argc, char **argv)
{
	bool connected;
	json_t *ans;
	int r;

	(void)argv;
	if (argc > 1) {
		fputs("usage: maildag sync\n", stderr);
		return EX_USAGE;
	}
	r = admin_ask(mb, "sync", &ans, &connected);
	if (r == E_NOTFOUND) {
		log_error("maildag-syncd is not running");
		return EX_UNAVAILABLE;
	}
	if (r == E_TEMP && !connected) {
		log_error("maildag-syncd does not accept connections");
		return EX_TEMPFAIL;
	}
	if (r < 0)	/* said by control.c */
		return connected ? EX_TEMPFAIL : EX_UNAVAILABLE;
	if (!json_is_true(json_object_get(ans, "ok"))) {
		char *e = admin_json_string(ans, "error");
		log_error("maildag-syncd: %s", e ? e : "sync refused");
		free(e);
		json_decref(ans);
		return EX_TEMPFAIL;
	}
	json_decref(ans);
	return EX_OK;
}
