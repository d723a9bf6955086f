/*
 * maildag upgrade: make a format 1 repository format 2 (experimental;
 * doc/imap-identity.md 4.9, maildag-format(5)), in one commit on top of
 * refs/heads/mail, history kept (common/upgrade.h says what it writes).
 *
 * It runs with maildag-syncd stopped (a daemon that answers its control
 * socket is refused: it would go on in format 1), under the writer lock,
 * and only when the Maildir holds what refs/heads/mail says.
 *
 * When a peer's last known history (refs/peers/<node>/mail, what the
 * last fetch or push brought) is format 2 and shares history with ours,
 * its UIDVALIDITY and UIDs are adopted (common/upgrade_adopt.c): this
 * replica's clients see the folders whose UIDs changed as new once, the
 * peer's never.  A format 2 peer it cannot adopt from (no common history)
 * is named: the first merge settles each folder's UIDVALIDITY by the
 * greater value (4.4), and one side's clients see that folder as new.
 *
 * Exit status: 0 done, 1 already format 2, 64 usage, 65 the repository
 * is not what it can upgrade (not format 1, a Dovecot uidlist it cannot
 * read), 66 no repository, 75 maildag-syncd running, Dovecot's lock
 * held, the Maildir behind, or a transient failure.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "admin.h"
#include "format.h"
#include "log.h"
#include "upgrade.h"

struct peers_seen {
	struct repo *r;
	const char *adopted;
};

/* A peer whose last known history is format 2 already: say so. */
static int peer_format(const char *ref, void *data)
{
	struct peers_seen *p = data;
	struct oid id;

	if (strcmp(ref, p->adopted) && repo_ref_read(&id, p->r, ref) == 0 &&
	    format_commit_version(p->r, &id) == FORMAT_VERSION_IMAP)
		printf("note: %s is format 2 too, with no history in common "
		       "or not adopted: the first merge keeps the greater "
		       "UIDVALIDITY of each folder, and the clients of the "
		       "other side see that folder as new once\n", ref);
	return 0;
}

int cmd_upgrade(struct mailbox *mb, int argc, char **argv)
{
	struct upgrade_stats st;
	struct peers_seen seen = { NULL, "" };
	struct repo *r = NULL;
	struct oid head;
	bool connected;
	json_t *ans = NULL;
	int x;

	(void)argv;
	if (argc != 1) {
		fputs("usage: maildag upgrade\n", stderr);
		return EX_USAGE;
	}
	x = admin_ask(mb, "status", &ans, &connected);
	json_decref(ans);
	if (connected) {
		log_error("maildag-syncd is running: stop it first, upgrade, "
			  "then start it again");
		return EX_TEMPFAIL;
	}
	if ((x = admin_open_repo(&r, mb)))
		return x;
	if (format_repo_version() == FORMAT_VERSION_IMAP) {
		printf("'%s' is format 2 already\n", mb->repository);
		repo_free(r);
		return ADMIN_NOTHING;
	}
	if (repo_lock(r, 10000) < 0) {
		repo_free(r);
		return EX_TEMPFAIL;
	}
	x = upgrade_repo(&head, r, mb->maildir, mb->cfg->node,
			 "upgrade to format 2\n", true, &st);
	if (x == 0 && !st.peer[0])
		printf("upgraded '%s' to format 2 (experimental) in %.10s: "
		       "%zu folders, %zu messages recorded, %zu with a UID "
		       "from Dovecot's uidlist, %zu given in slot %u\n",
		       mb->repository, oid_hex(&head), st.folders, st.messages,
		       st.messages - st.numbered, st.numbered, st.slot);
	else if (x == 0)
		printf("upgraded '%s' to format 2 (experimental) in %.10s, "
		       "adopting the UIDs of %s: %zu folders, %zu messages "
		       "recorded, %zu with the peer's UID, %zu given in slot "
		       "%u; %zu folders renumbered for Dovecot (their clients "
		       "see them as new once)\n", mb->repository,
		       oid_hex(&head), st.peer, st.folders, st.messages,
		       st.adopted, st.numbered, st.slot, st.renumbered);
	if (x == 0) {
		seen.r = r;
		seen.adopted = st.peer;
		repo_foreach_peer_ref(r, peer_format, &seen);
	}
	repo_free(r);
	if (x == 0)
		return EX_OK;
	if (x == E_EXISTS)
		return ADMIN_NOTHING;
	return x == E_INVALID ? EX_DATAERR : EX_TEMPFAIL;
}
