/*
 * session_store: the git side of the peer session (issue 15): the pack
 * a push or a fetch sends, and the store of a pack that arrives, in
 * process, without git receive-pack (doc/persistent-peers.md 5.3).
 *
 * A pack that arrives is indexed as its bytes come (libgit2's indexer,
 * every object hashed, deltas resolved; that everything it names is in
 * it or in the repository, or purged, is history_check()'s to say, as
 * libgit2's verify knows nothing of purged blobs) into a quarantine
 * directory, objects/incoming-<pid>-<n>/, that no reader of the
 * repository looks at.  Only when the ref may move are its objects let
 * in: written loose, or, from SESSION_STORE_PACK_MIN objects on, the pack
 * moved in whole; then made durable (one syncfs, repo_syncfs()), and
 * then the ref moved by compare-and-swap under <repo>/maildag/<lock>
 * (flock), the lock every maildag writer of that ref takes (net.h).
 *
 * Invariants: a refused or abandoned pack leaves nothing but its
 * quarantine, which session_in_free() removes (and the next
 * session_in_new() removes what a killed process left, after a day);
 * the ref names a commit only once every object it reaches is durable;
 * with a check, it names only history that passed history_check()
 * against refs/heads/mail.
 */
#ifndef SESSION_STORE_H
#define SESSION_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "oid.h"
#include "repo.h"
#include "strbuf.h"

/* git's transfer.unpackLimit: a pack this large is kept whole */
#define SESSION_STORE_PACK_MIN 100

/*
 * The pack of want ^ have (have NULL: all of want's history) appended to
 * out.  0, or E_TEMP (logged).
 */
int session_pack(struct strbuf *out, struct repo *r, const struct oid *want,
		 const struct oid *have);

struct session_in;

/*
 * Start receiving a pack of at most max bytes into a new quarantine of
 * r.  0, or E_TEMP (logged).
 */
int session_in_new(struct session_in **out, struct repo *r,
		   unsigned long long max);

/*
 * More bytes of the pack.  0; E_INVALID when they break the pack or the
 * limit (why appended to err; the pack is then dead: free it).
 */
int session_in_add(struct session_in *in, const void *data, size_t len,
		   struct strbuf *err);

struct session_store_args {
	const char *ref;	/* the ref to move */
	const char *lock;	/* its lock file's name under <repo>/maildag */
	const struct oid *old;	/* the value it must have, NULL: none */
	const struct oid *new;	/* the value it gets */
	bool check;		/* history_check() new against refs/heads/mail */
	const char *peer;	/* with check: the approval's peer, or NULL */
};

/*
 * The whole pack is there: check it and move a->ref from a->old to
 * a->new, durably.  0 when the ref is a->new (also when it was already);
 * E_RACE when the ref is neither a->old nor a->new (*now its value,
 * zero when there is none; nothing was let in); E_INVALID when the pack
 * or the history is refused (why in err); E_TEMP otherwise (why in err).
 * The pack is spent either way: free it.
 */
int session_in_store(struct session_in *in, const struct session_store_args *a,
		     struct strbuf *err, struct oid *now);

/*
 * The approval (issue 15): a store with a check and a peer leaves, before
 * its ref moves, <repo>/maildag/approved-<peer> saying "<new> <base>":
 * new's whole history passed history_check() against base, the value of
 * refs/heads/mail the check ran against (zero: none).  maildag-syncd
 * takes it as its own check child's approval of new (peers_check.c), so
 * that a session push is checked once, not twice.  Written unsynced
 * (after a crash the daemon checks again); only the user's own serve
 * writes it, in a directory no peer can write to.
 *
 * session_approval_read: 0 with *new and *base (zero when none) when
 * <repo_path>/maildag/approved-<peer> holds one, E_NOTFOUND otherwise.
 */
int session_approval_read(const char *repo_path, const char *peer,
			  struct oid *new, struct oid *base);

/* Drop the pack and its quarantine; NULL is a no-op. */
void session_in_free(struct session_in *in);

#endif
