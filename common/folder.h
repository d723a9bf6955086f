/*
 * folder: Maildir++ folder names.
 *
 * On disk INBOX is the Maildir root and every other folder is a
 * directory ".Name" or ".Parent.Child" beside it.  maildag names a folder
 * by that directory name ("" for INBOX) everywhere, including in the git
 * tree, where a folder's messages live under "<dir>/cur/" and "<dir>/new/".
 *
 * A valid folder directory starts with '.', has non-empty '.'-separated
 * components, is at most 255 bytes, holds no '/', NUL or control
 * character, and is not ".git" in any spelling (case, trailing dots or
 * spaces, HFS-ignorable characters, the NTFS short name "git~1").
 */
#ifndef FOLDER_H
#define FOLDER_H

#include <stdbool.h>

#define FOLDER_NAME_MAX 255

/* Is dir ("" for INBOX, else ".Name...") a valid folder directory? */
bool folder_dir_valid(const char *dir);

/* Is name a path component git (or a Maildir) must never see? */
bool path_component_forbidden(const char *name);

/*
 * The folder directory for an IMAP-style mailbox name: "INBOX" (any case)
 * is "", "Lists/foo", "Lists.foo" and "INBOX.Lists.foo" are ".Lists.foo".
 * Returns a new string, or NULL when the name cannot be a folder.
 */
char *folder_from_mailbox(const char *mailbox);

/* The mailbox name to show for a folder directory ("INBOX", "Lists.foo"). */
const char *folder_display(const char *dir);

#endif
