/*
 * maildag confirm CHANGE: settle CHANGE's mass-deletion alarm, the
 * deletion was meant (alarm.h), and have the daemon look again, so the
 * pushes it held back go.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "admin.h"
#include "alarm.h"
#include "log.h"

int cmd_confirm(struct mailbox *mb, int argc, char **argv)
{
	char id[CHANGE_HEX];
	struct repo *r = NULL;
	int x;

	if (argc != 2 || argv[1][0] == '-') {
		fputs("usage: maildag confirm CHANGE\n", stderr);
		return EX_USAGE;
	}
	if ((x = admin_open_repo(&r, mb)))
		return x;
	if (change_resolve(id, r, argv[1]) < 0) {
		repo_free(r);
		return EX_DATAERR;
	}
	repo_free(r);
	x = alarm_settle(mb->repository, id, ALARM_CONFIRMED);
	if (x == E_NOTFOUND) {
		fprintf(stderr, "no open alarm for %.*s\n", CHANGE_SHORT, id);
		return ADMIN_NOTHING;
	}
	if (x < 0)
		return EX_TEMPFAIL;
	admin_poke_daemon(mb);
	printf("confirmed %.*s: its alarm is settled%s\n", CHANGE_SHORT, id,
	       alarm_holding(mb->repository) ? "; other alarms still hold "
	       "changes back" : "");
	return EX_OK;
}
