/*
 * config: maildag's configuration, read from JSON (jansson).
 *
 * The user's file ($XDG_CONFIG_HOME/maildag/config.json, else
 * ~/.config/maildag/config.json) is read on top of the optional system
 * file /etc/maildag/config.json.  Scalars in the user's file replace the
 * system's; peers are keyed by name, and a user's peer entry replaces the
 * system's entry of the same name whole ("peers": {"mx2": null} removes
 * it).  "%u" in a peer URL expands to the user name, a leading "~/" in a
 * path to the home directory.  Both files may be absent; every field then
 * has its default.
 *
 * Invariants: a loaded struct config is complete (defaults filled in,
 * paths absolute, peers sorted by name); unknown keys and wrong types are
 * errors, reported as "FILE:LINE:COLUMN: ..." or "FILE: KEY.PATH: ...";
 * a file that is not owned by the user (or root, for the system file) or
 * is writable by group or others is refused.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "strbuf.h"

struct config_peer {
	char *name;		/* [A-Za-z0-9_.-]{1,64}, not "." or ".." */
	char *url;		/* ssh://[user@]host[:port]/path or file:///path, %u expanded */
	bool push;		/* default true */
	bool fetch;		/* default true */
	char *host_key;		/* "SHA256:<base64>" pin; required for ssh://,
				   NULL for file:// */
	char *host_key_pub;	/* "<type> <base64>" when the whole public key
				   was given (for a known_hosts line); NULL
				   when only the fingerprint was */
	char *identity;		/* private key path, ~ expanded; NULL = agent/default */
};

struct config {
	char *node;		/* this replica's name; default: short hostname */
	char *maildir;		/* default ~/Maildir */
	char *repository;	/* default ~/.local/share/maildag/mail.git */
	int quorum;		/* stores that must hold a delivery; default 1 (this one) */
	bool create;		/* LDA may create Maildir and repository; default true */
	long long size_limit;	/* largest message, bytes: what maildag-lda
				   takes and a peer may send; default 64 MiB */
	long long subscriptions_limit;	/* bytes of subscriptions; 1 MiB */
	long long tree_entries_limit;	/* entries of one tree; 65536 */
	long long folder_limit;	/* folders, INBOX counted; 10000 */
	long long merge_limit;	/* message bytes one peer merge may add;
				   8 GiB */
	int lda_deadline;	/* seconds; default 600 (below Postfix's 1000) */
	char *dovecot_lda;	/* deliver through this dovecot-lda (Sieve);
				   NULL: maildag-lda stores itself */
	char *dovecot_config;	/* its -c; NULL: Dovecot's default */
	int fetch_interval;	/* seconds; default 300 */
	int debounce_ms;	/* syncd commit debounce; default 200 */
	int backoff_min;	/* seconds; default 1 */
	int backoff_max;	/* seconds; default 300 */
	int net_timeout;	/* seconds for one push or fetch; default 60 */
	/*
	 * The mass-deletion alarm (alarm.h, maildag.conf(5) "alarm"): a
	 * change that expunges alarm_messages messages (0: no such rule),
	 * alarm_share percent (0: none) of a folder's, at least
	 * alarm_share_min of them, or (alarm_folders) a folder with its
	 * messages; alarm_hold holds such a change of ours back from peers
	 * until confirmed; alarm_ignore lists folder directories (".Trash")
	 * not looked at.  Defaults 100, 50, 20, true, false, Trash and Junk.
	 */
	long long alarm_messages;
	int alarm_share;
	long long alarm_share_min;
	bool alarm_folders;
	bool alarm_hold;
	char **alarm_ignore;	/* NULL-terminated; never NULL */
	/*
	 * Maintenance (objects.h, maildag.conf(5) "maintenance"): a pass
	 * every maint_interval seconds (default 3600); unreachable objects
	 * dropped when older than maint_grace seconds (86400, at least 60).
	 */
	long long maint_interval;
	long long maint_grace;
	char *hook_command;	/* NULL if unset */
	char **webhooks;	/* NULL-terminated array; never NULL */
	struct config_peer *peers;
	size_t npeers;
	/* where it came from, for messages: NULL when the file was absent */
	char *system_file;
	char *user_file;
};

enum config_flags {
	CONFIG_NO_SYSTEM = 1 << 0,	/* ignore /etc/maildag/config.json */
};

/*
 * Load the configuration for the user (name, uid, home).  user_file may
 * be NULL for the default location; system_file NULL for the default.
 * On success *out is a new config the caller frees with config_free();
 * on failure returns E_INVALID (bad file) or E_PERM (unsafe ownership or
 * permissions) after logging one line naming the file and the place.
 */
int config_load(struct config **out, const char *user, uid_t uid,
		const char *home, const char *user_file,
		const char *system_file, unsigned flags);

/*
 * The defaults alone, as config_load() with no files would give.  home
 * must be an absolute path.  The caller frees the result with
 * config_free().
 */
struct config *config_defaults(const char *user, const char *home);

void config_free(struct config *cfg);

/*
 * Append a host key's fingerprint, "SHA256:" and the unpadded base64 of
 * the SHA-256 of its key blob, as ssh-keygen -l prints it and as
 * host_key pins it.
 */
void config_fingerprint(struct strbuf *out, const unsigned char sha256[32]);

/*
 * Is name a valid node or peer name ([A-Za-z0-9_.-]{1,64}, and a
 * component git takes in refs/peers/<name>/mail)?
 */
bool config_name_valid(const char *name);

/* The peer called name, or NULL. */
const struct config_peer *config_peer(const struct config *cfg,
				      const char *name);

#endif
