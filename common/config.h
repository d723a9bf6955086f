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

#define CONFIG_RETENTION_DEFAULT (30ll * 86400)
#define CONFIG_RETENTION_FOREVER (-1ll)

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
	bool session;		/* ssh://: try a kept session (maildag serve's
				   "maildag-session 1"); default true */
};

struct config {
	char *node;		/* this replica's name; default: short hostname */
	char *maildir;		/* default ~/Maildir */
	char *repository;	/* default ~/.local/share/maildag/mail.git */
	int quorum;		/* stores that must hold a delivery; default 1 (this one) */
	int uid_slot;		/* format 2: the UID slot 0-6 this node numbers
				   from; -1 (default): claimed in uidslots */
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
	int keepalive;		/* seconds between a session's PINGs; default 30 */
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
	/*
	 * Retention (maildag.conf(5) "retention", doc/purge.md 3.2):
	 * seconds an expunged message is kept before it is purged; default
	 * CONFIG_RETENTION_DEFAULT, CONFIG_RETENTION_FOREVER: never (until
	 * a forget).
	 */
	long long retention;
	char *hook_command;	/* NULL if unset */
	char **webhooks;	/* NULL-terminated array; never NULL */
	struct config_peer *peers;
	size_t npeers;
	/* where it came from, for messages: NULL when the file was absent */
	char *system_file;
	char *user_file;
	/*
	 * Virtual mailboxes ("virtual", maildag.conf(5)): NULL when the key
	 * is absent (one mailbox for the user, as always).  address is the
	 * mailbox config_select_mailbox() made this config for, else NULL.
	 */
	struct config_virtual *virt;
	char *address;
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

/* --- virtual mailboxes (config_virtual.c) ------------------------------- */

/*
 * Many mailboxes under one system user ("virtual" in maildag.conf(5)):
 * each has an address user@domain, and its Maildir, repository and peer
 * URLs come from patterns where %u is the address, %n its local part, %d
 * its domain and %% a "%" (as Dovecot's mail_location), or from its own
 * entry in "virtual.mailboxes".  Addresses are folded to lower case; one
 * that could name anything but one directory (a "/", "..", a leading "."
 * or "-", control or non-ASCII characters, over 64 characters before the
 * "@" or 254 in all) is not an address here.
 */

/* Does cfg have a "virtual" key? */
bool config_is_virtual(const struct config *cfg);

/*
 * The address folded to lower case, into *out (the caller frees it), or
 * E_INVALID with *why saying what is wrong with it (static text).
 */
int config_address_parse(char **out, const char *address, const char **why);

/*
 * Make cfg (loaded, with a "virtual" key) the configuration of one
 * virtual mailbox: maildir, repository and peers are those of address
 * (the top-level peers are not used); cfg->address is set.  Returns 0,
 * E_INVALID (a bad address, logged, or no "virtual" key), E_NOTFOUND when
 * "virtual.mailboxes" lists mailboxes and address is not one of them
 * (logged).  Whether the mailbox is on disk is the caller's to check.
 */
int config_select_mailbox(struct config *cfg, const char *address);

/*
 * After config_select_mailbox(): drop what cfg kept of the other
 * mailboxes (the "virtual" object, as large as the list of them), so a
 * daemon of N mailboxes does not hold N copies of it.  cfg can select no
 * other mailbox afterwards; config_is_virtual() and
 * config_virtual_listed() still answer.
 */
void config_virtual_forget(struct config *cfg);

/*
 * Does cfg list its virtual mailboxes ("virtual.mailboxes")?  When not,
 * a mailbox exists when its Maildir or repository does.
 */
bool config_virtual_listed(const struct config *cfg);

/*
 * The virtual mailboxes' addresses, sorted: the listed ones, else every
 * address whose Maildir or repository the patterns find on disk.  *out
 * is a NULL-terminated array the caller frees with config_strv_free().
 * 0, or E_FAIL when a directory cannot be read (logged).
 */
int config_virtual_mailboxes(char ***out, size_t *n, const struct config *cfg);
void config_strv_free(char **v);

/*
 * Expand %u, %n, %d and %% in pattern for the address local@domain; the
 * caller frees the result.
 */
char *config_expand_address(const char *pattern, const char *local,
			    const char *domain);

#endif
