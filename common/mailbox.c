/*
 * mailbox: the user's mailbox parts and layout (see mailbox.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "fsutil.h"
#include "log.h"
#include "mailbox.h"
#include "maildir_name.h"
#include "repo.h"
#include "xalloc.h"

static bool home_usable(const char *home, uid_t uid)
{
	struct stat st;

	return home && home[0] == '/' && stat(home, &st) == 0 &&
	       S_ISDIR(st.st_mode) && st.st_uid == uid &&
	       !(st.st_mode & (S_IWGRP | S_IWOTH));
}

int mailbox_open(struct mailbox **out, const char *config_file,
		 unsigned flags)
{
	struct mailbox *mb;
	struct passwd *pw;
	const char *env_home = getenv("HOME");
	uid_t uid = getuid();
	int r;

	*out = NULL;
	errno = 0;
	pw = getpwuid(uid);
	if (!pw) {
		if (errno) {
			log_error_errno("cannot look up uid %u", (unsigned)uid);
			return E_TEMP;
		}
		log_error("uid %u has no password entry", (unsigned)uid);
		return E_NOTFOUND;
	}
	mb = xcalloc(1, sizeof *mb);
	mb->user = xstrdup(pw->pw_name);
	mb->uid = uid;
	mb->gid = getgid();
	if (home_usable(env_home, uid))
		mb->home = xstrdup(env_home);
	else if (home_usable(pw->pw_dir, uid))
		mb->home = xstrdup(pw->pw_dir);
	else {
		log_error("home directory '%s' of '%s' is missing or unsafe",
			  pw->pw_dir, pw->pw_name);
		mailbox_free(mb);
		return E_NOTFOUND;
	}
	if (config_file && !path_exists(config_file)) {
		log_error("configuration file '%s' does not exist", config_file);
		mailbox_free(mb);
		return E_INVALID;
	}
	r = config_load(&mb->cfg, mb->user, uid, mb->home, config_file, NULL,
			flags & MAILBOX_NO_SYSTEM_CONFIG ? CONFIG_NO_SYSTEM : 0);
	if (r < 0) {
		mailbox_free(mb);
		return r;
	}
	mb->maildir = mb->cfg->maildir;
	mb->repository = mb->cfg->repository;
	format_use_config(mb->cfg);	/* what every check here refuses */
	*out = mb;
	return 0;
}

static int select_virtual(struct mailbox *mb, const char *address)
{
	int r;

	mb->user_socket = true;
	if ((r = config_select_mailbox(mb->cfg, address)) < 0)
		return r;
	config_virtual_forget(mb->cfg);
	mb->maildir = mb->cfg->maildir;
	mb->repository = mb->cfg->repository;
	return 0;
}

int mailbox_open_virtual(struct mailbox **out, const char *config_file,
			 unsigned flags, const char *address)
{
	struct mailbox *mb;
	int r;

	*out = NULL;
	if ((r = mailbox_open(&mb, config_file, flags)) < 0)
		return r;
	if ((r = select_virtual(mb, address)) < 0) {
		mailbox_free(mb);
		return r;
	}
	*out = mb;
	return 0;
}

int mailbox_open_sibling(struct mailbox **out, const struct mailbox *base,
			 const char *config_file, unsigned flags,
			 const char *address)
{
	struct mailbox *mb = xcalloc(1, sizeof *mb);
	int r;

	*out = NULL;
	mb->user = xstrdup(base->user);
	mb->uid = base->uid;
	mb->gid = base->gid;
	mb->home = xstrdup(base->home);
	r = config_load(&mb->cfg, mb->user, mb->uid, mb->home, config_file,
			NULL, flags & MAILBOX_NO_SYSTEM_CONFIG ? CONFIG_NO_SYSTEM : 0);
	if (r == 0)
		r = select_virtual(mb, address);
	if (r < 0) {
		mailbox_free(mb);
		return r;
	}
	*out = mb;
	return 0;
}

void mailbox_free(struct mailbox *mb)
{
	if (!mb)
		return;
	config_free(mb->cfg);
	free(mb->user);
	free(mb->home);
	free(mb);
}

char *mailbox_folder_path(const struct mailbox *mb, const char *folder)
{
	return layout_folder_dir(mb->maildir, folder, NULL);
}

int mailbox_create_folder(const struct mailbox *mb, const char *folder)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	char *dir = mailbox_folder_path(mb, folder);
	int r = 0;

	for (size_t i = 0; i < 3 && r == 0; i++) {
		char *sub = xasprintf("%s/%s", dir, subs[i]);
		/* the usual case, on every delivery: one stat, no mkdir walk */
		if (!is_dir(sub))
			r = mkdir_p(sub, 0700);
		free(sub);
	}
	if (r == 0 && *folder) {
		char *marker = xasprintf("%s/maildirfolder", dir);
		if (!path_exists(marker))
			r = write_file_atomic(marker, "", 0, 0600);
		free(marker);
	}
	free(dir);
	return r;
}

bool mailbox_folder_exists(const struct mailbox *mb, const char *folder)
{
	return layout_folder_exists(mb->maildir, folder);
}

struct key_match {
	const char *key;
	size_t klen;
};

/* Is name the key's message, under any flags? */
static int names_key(const char *name, void *data)
{
	const struct key_match *k = data;

	return !strncmp(name, k->key, k->klen) &&
	       (name[k->klen] == '\0' || name[k->klen] == ',' ||
		name[k->klen] == ':');
}

bool mailbox_tree_has_key(struct repo *r, const struct oid *tree,
			  const char *folder, const char *key)
{
	static const char *const subs[] = { "new", "cur" };
	struct key_match k = { key, strlen(key) };
	unsigned shard = maildir_shard(key, k.klen);
	bool found = false;

	for (size_t i = 0; i < 2 && !found; i++) {
		struct strbuf path = STRBUF_INIT;
		tree_shard_path(&path, folder, subs[i], shard);
		found = repo_tree_foreach_name(r, tree, path.buf, names_key,
					       &k) > 0;
		strbuf_release(&path);
	}
	return found;
}
