/*
 * layout: where the parts of a mailbox are, on disk and in the git tree.
 * Each rule here is defined once, and the LDA, the daemon and the admin
 * tool all ask this module; none of them spells a rule out again.
 *
 * A folder on disk.  INBOX ("") is the Maildir root, every other folder
 * a directory beside it with a valid folder name (folder.h).  A folder
 * exists when its cur/ or its new/ is a directory (symbolic links
 * followed); a directory with only tmp/, or nothing, is not a folder
 * (yet).  Listing the root finds the folders that are directories
 * themselves: a symbolic link is not followed to find a folder, as it
 * may alias another one whose messages would then be seen twice (a
 * folder already committed stays one when its directory becomes a link
 * to one).  maildag-syncd commits by this rule, and so does maildag init,
 * which commits the way syncd does; maildag fsck compares the disk with
 * the worktree by it; maildag-lda delivers into a folder only when it
 * holds.
 *
 * Dovecot (Maildir++ layout) is looser: every ".Name" directory is a
 * mailbox to it, and opening one makes the cur/ new/ tmp/ it lacks (it
 * makes all three for a mailbox it creates).  maildag asks for cur/ or
 * new/ because deleting a folder removes its cur/ and new/ first and
 * keeps its directory when something untracked is left in it: by
 * Dovecot's rule that directory would be a folder again and the deletion
 * would come back.
 *
 * A message's place on disk, relative to the Maildir root, is
 * "[<folder>/]<sub>/<name>" and its path in the tree is
 * "[<folder>/]<sub>/<xx>/<name>", where sub is "cur" or "new" and xx the
 * shard of its key (maildir_name.h).  A shard directory is
 * "[<folder>/]<sub>/<xx>".
 *
 * tmp/.  Files in a folder's tmp/ older than LAYOUT_TMP_MAX_AGE by both
 * their mtime and atime are a writer's leftovers and are deleted (the
 * Maildir rule); nothing in tmp/ is ever tracked.
 */
#ifndef LAYOUT_H
#define LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "strbuf.h"

#define LAYOUT_TMP_MAX_AGE (36 * 3600)	/* seconds: the Maildir rule */

/* --- folders on disk ------------------------------------------------- */

/*
 * The directory of folder ("" for INBOX, else ".Name...") in maildir, or
 * of its sub ("cur", "new", "tmp") when sub is not NULL; a new string.
 */
char *layout_folder_dir(const char *maildir, const char *folder,
			const char *sub);

/* Does folder exist in maildir? */
bool layout_folder_exists(const char *maildir, const char *folder);

/*
 * The folders of maildir, sorted: "" (always) and every folder
 * directory for which layout_folder_exists() holds.  *out is a new
 * array of new strings; free it with layout_list_free().  0, or < 0
 * logged (a missing Maildir has no folders and is no error).
 */
int layout_list_folders(char ***out, size_t *n, const char *maildir);
/*
 * The same from the listing of the root alone: "" and every folder
 * directory, whether or not it holds cur/ or new/ (nothing inside is
 * looked at: one readdir for any number of folders).
 */
int layout_list_dirs(char ***out, size_t *n, const char *maildir);
void layout_list_free(char **v, size_t n);

/* --- paths ------------------------------------------------------------ */

/* Append "[<folder>/]<sub>/<name>", the place of a message on disk. */
void layout_disk_place(struct strbuf *out, const char *folder,
		       const char *sub, const char *name);
/* Append "[<folder>/]<sub>/<xx>", the shard directory of shard. */
void tree_shard_path(struct strbuf *out, const char *folder, const char *sub,
		     unsigned shard);
/* Append "[<folder>/]<sub>/<xx>/<name>", xx being the shard of name's key. */
void tree_message_path(struct strbuf *out, const char *folder,
		       const char *sub, const char *name);

/* What a parser found; folder and name point into the parsed string. */
struct layout_path {
	const char *folder;	/* the folder: its first folder_len bytes */
	size_t folder_len;	/* 0 for INBOX */
	unsigned sub;		/* 0: cur, 1: new (layout_sub_name) */
	unsigned shard;		/* xx, or the shard of name's key */
	const char *name;	/* the message's file name; NULL for a shard
				   directory */
};

/*
 * Are the len bytes at s a shard name, two lowercase hex digits?  Its
 * number in *out (when out is not NULL).
 */
bool layout_shard_name(unsigned *out, const char *s, size_t len);

/* "cur" for 0, "new" for 1. */
const char *layout_sub_name(unsigned sub);

/*
 * Parse a tree path "[<folder>/](cur|new)/<xx>/<name>": 0, or E_INVALID
 * (not logged) unless the folder is valid, xx two lowercase hex digits,
 * the name a valid Maildir name and xx the shard of its key.
 */
int layout_parse_tree_path(struct layout_path *out, const char *path);
/* Parse a shard directory "[<folder>/](cur|new)/<xx>" the same way. */
int layout_parse_shard_dir(struct layout_path *out, const char *path);
/* Parse a place on disk "[<folder>/](cur|new)/<name>" the same way. */
int layout_parse_disk_place(struct layout_path *out, const char *place);

/* --- tmp/ ------------------------------------------------------------- */

/*
 * Remove the files of folder's tmp/ older than max_age seconds (each is
 * logged), when the folder exists.  Returns how many went.
 */
size_t layout_clean_tmp(const char *maildir, const char *folder,
			time_t max_age);
/*
 * The same for folders[*pos] on (as layout_list_folders() or
 * layout_list_dirs() gives them), for about seconds (0: all);
 * *pos moves past what was done.
 */
void layout_clean_tmp_some(const char *maildir, char **folders, size_t n,
			   size_t *pos, time_t max_age, double seconds);
/* The same for every folder of maildir (layout_list_folders()), at once. */
void layout_clean_tmp_all(const char *maildir, time_t max_age);

#endif
