/*
 * select: what maildag log --expunged and maildag restore select by (a
 * folder, From, Subject, Message-ID, a time range, a change), parsed
 * from their long options into a struct selection (admin.h).
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "admin.h"
#include "folder.h"
#include "log.h"
#include "xalloc.h"

/* --- arguments ------------------------------------------------------------ */

int admin_parse_time(long long *out, const char *s)
{
	static const char *const forms[] = {
		"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
		"%Y-%m-%dT%H:%M", "%Y-%m-%d",
	};
	char *end;

	if (s[0] == '@') {
		*out = strtoll(s + 1, &end, 10);
		return s[1] && !*end ? 0 : -1;
	}
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		struct tm tm;
		const char *e;

		memset(&tm, 0, sizeof tm);
		e = strptime(s, forms[i], &tm);
		if (e && !*e) {
			tm.tm_isdst = -1;
			*out = (long long)mktime(&tm);
			return 0;
		}
	}
	return -1;
}

/* A folder as a user names it: "INBOX", "Archive", "Lists/x", ".Archive". */
static char *parse_folder(const char *s)
{
	if (s[0] == '.' && folder_dir_valid(s))
		return xstrdup(s);
	return folder_from_mailbox(s);
}

const struct option admin_select_opts[] = {
	{ "folder", required_argument, NULL, OPT_FOLDER },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "subject", required_argument, NULL, OPT_SUBJECT },
	{ "message-id", required_argument, NULL, OPT_MID },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "until", required_argument, NULL, OPT_UNTIL },
	{ "before", required_argument, NULL, OPT_BEFORE },
	{ "at", required_argument, NULL, OPT_AT },
	{ "expunged", no_argument, NULL, OPT_EXPUNGED },
	{ "dry-run", no_argument, NULL, 'n' },
	{ NULL, 0, NULL, 0 },
};

/* One option of a selection; 0, or EX_USAGE after saying why. */
int admin_select_opt(struct selection *s, int c, const char *arg)
{
	long long t;

	switch (c) {
	case OPT_FOLDER:
		free(s->folder);
		if (!(s->folder = parse_folder(arg))) {
			log_error("'%s' is not a folder name", arg);
			return EX_USAGE;
		}
		s->f.folder = s->folder;
		break;
	case OPT_FROM: s->f.from = arg; break;
	case OPT_SUBJECT: s->f.subject = arg; break;
	case OPT_MID: s->f.message_id = arg; break;
	case OPT_SINCE:
	case OPT_UNTIL:
		if (admin_parse_time(&t, arg) < 0) {
			log_error("'%s' is not a time (YYYY-MM-DD [HH:MM[:SS]] "
				  "or @seconds)", arg);
			return EX_USAGE;
		}
		*(c == OPT_SINCE ? &s->f.since : &s->f.until) = t;
		break;
	case OPT_BEFORE: s->before = arg; return 0;
	case OPT_AT: s->at = arg; return 0;
	default: return EX_USAGE;
	}
	s->any = true;
	return 0;
}
