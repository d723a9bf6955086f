/*
 * alarm: the mass-deletion alarm (maildag.conf(5) "alarm",
 * maildag-syncd(8)).
 *
 * Every change (expunged.h) that reaches refs/heads/mail is weighed when
 * maildag-syncd sees the ref move: one that expunges at least
 * alarm_messages messages, or alarm_share percent of a folder's (and at
 * least alarm_share_min of them), or that removes a folder together with
 * messages it expunged (alarm_folders), raises an alarm.  Folders in
 * alarm_ignore (Trash, Junk by default) are not weighed.  Messages moved
 * elsewhere are not expunged.  A replica weighs the changes it receives
 * from peers as well as its own, the changes of the last ALARM_RECENT
 * seconds only (a replica that joins does not sound every alarm of the
 * mailbox's past), and ALARM_WALK_MAX of them at most per move of the
 * ref.
 *
 * An alarm is kept in <repository>/maildag/alarms, a JSON array, the
 * last ALARMS_KEPT of them, written whole (tmp, fsync, rename) under a
 * lock of its own (<repository>/maildag/alarms.lock), by maildag-syncd
 * when it raises one and by maildag confirm and maildag undo when they
 * settle one.  An alarm is open until one of those: open alarms are what
 * `maildag status` shows.  With alarm_hold, an alarm on a change made on
 * this replica is held: while one is open, maildag-syncd pushes nothing
 * and `maildag serve` serves no fetch, so the change reaches no peer that
 * goes through them.
 *
 * The interface speaks plain C: changes are 40-digit hex commit ids.
 */
#ifndef ALARM_H
#define ALARM_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config.h"
#include "expunged.h"
#include "repo.h"

#define ALARM_RECENT (7 * 24 * 3600)	/* seconds: older changes are not weighed */
#define ALARM_WALK_MAX 256		/* changes weighed per move of the ref */
#define ALARMS_KEPT 100			/* alarms the file keeps */

enum alarm_state {
	ALARM_OPEN,
	ALARM_CONFIRMED,	/* maildag confirm: the deletion was meant */
	ALARM_UNDONE,		/* maildag undo */
};

struct alarm {
	char change[CHANGE_HEX];	/* the commit */
	char parent[CHANGE_HEX];	/* its first parent */
	char *node;		/* the replica that made it (its committer's) */
	long long time;		/* when it was made (commit time) */
	long long raised;	/* when this replica raised the alarm */
	size_t expunged;	/* messages it expunged, ignored folders left out */
	char *summary;		/* "12 messages expunged; folder Archive
				   removed with 8 messages; 4 of 6 in INBOX" */
	bool local;		/* made on this replica */
	bool held;		/* held back from peers (alarm_hold) */
	enum alarm_state state;
};

void alarm_release(struct alarm *a);
void alarms_free(struct alarm *v, size_t n);

/*
 * Weigh the changes of to's history that from's lacks (from NULL: none
 * are weighed), made at now - ALARM_RECENT or later, with cfg's
 * thresholds.  A change made by node cfg->node is local, and held when
 * cfg->alarm_hold.  *out is a new array of the alarms raised (*n may be
 * 0; free with alarms_free()).  An undo among those changes (made on any
 * replica: see alarm_undo_origin()) settles the open alarm of the change
 * it undid, in this repository's file.  0, or E_FAIL (logged).
 */
int alarm_check(struct alarm **out, size_t *n, struct repo *r,
		const struct config *cfg, const char *from, const char *to,
		long long now);

/*
 * The alarms recorded for the repository at repo_path, oldest first
 * (none when the file is absent).  0 or E_FAIL (logged).
 */
int alarm_load(struct alarm **out, size_t *n, const char *repo_path);

/*
 * Record alarms (those of changes recorded already are left as they
 * are), keeping the last ALARMS_KEPT.  0 or E_FAIL (logged).
 */
int alarm_record(const char *repo_path, const struct alarm *v, size_t n);

/*
 * Settle the open alarm of change (a full id): confirmed or undone.  0,
 * E_NOTFOUND when no alarm of that change is open (not logged), E_FAIL.
 */
int alarm_settle(const char *repo_path, const char *change,
		 enum alarm_state state);

/* Is an open alarm held (alarm_hold): must pushes and fetches wait? */
bool alarm_holding(const char *repo_path);

/*
 * What `maildag undo` calls its commit ("undo <10 hex digits>", its
 * subject then reads "undo <id>: 3 added, ..."), a new string; and
 * whether a commit subject is one, with the digits copied to prefix.
 */
char *alarm_undo_origin(const char *change);
bool alarm_undo_of(const char *subject, char prefix[CHANGE_SHORT + 1]);

/*
 * The line that undoes a's change, "maildag undo <first 10 hex digits>",
 * and its counterpart "maildag confirm <...>"; new strings.
 */
char *alarm_undo_line(const struct alarm *a);
char *alarm_confirm_line(const struct alarm *a);

/*
 * The open alarms of the repository at repo_path as a JSON array of
 * objects {"change", "parent", "node", "time", "raised", "expunged",
 * "summary", "held", "undo", "confirm"} (maildag status), or an empty
 * array.  A new reference.
 */
json_t *alarm_open_json(const char *repo_path);

/* One alarm as such an object; a new reference. */
json_t *alarm_json(const struct alarm *a);

#endif
