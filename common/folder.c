/*
 * folder: Maildir++ folder names (see folder.h).
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "folder.h"
#include "xalloc.h"

bool path_component_forbidden(const char *name)
{
	char ascii[FOLDER_NAME_MAX + 1];
	size_t n = 0;

	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return true;
	/* fold case and drop what HFS+ ignores (all non-ASCII here) */
	for (const unsigned char *p = (const unsigned char *)name;
	     *p && n < sizeof ascii - 1; p++)
		if (*p < 0x80)
			ascii[n++] = (char)tolower(*p);
	ascii[n] = '\0';
	/* NTFS drops trailing dots and spaces */
	while (n && (ascii[n - 1] == '.' || ascii[n - 1] == ' '))
		ascii[--n] = '\0';
	return !strcmp(ascii, ".git") || !strcmp(ascii, "git~1");
}

bool folder_dir_valid(const char *dir)
{
	size_t len = strlen(dir);
	bool empty_component = true;

	if (len == 0)
		return true;	/* INBOX */
	if (dir[0] != '.' || len > FOLDER_NAME_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)dir + 1; *p; p++) {
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
		if (*p == '.') {
			if (empty_component)
				return false;
			empty_component = true;
		} else {
			empty_component = false;
		}
	}
	if (empty_component)
		return false;
	return !path_component_forbidden(dir);
}

char *folder_from_mailbox(const char *mailbox)
{
	char *dir;

	if (!strcasecmp(mailbox, "INBOX"))
		return xstrdup("");
	if (!strncasecmp(mailbox, "INBOX.", 6) || !strncasecmp(mailbox, "INBOX/", 6))
		mailbox += 6;
	if (!*mailbox || strlen(mailbox) >= FOLDER_NAME_MAX)
		return NULL;
	dir = xasprintf(".%s", mailbox);
	for (char *p = dir + 1; *p; p++)
		if (*p == '/')
			*p = '.';
	if (!folder_dir_valid(dir)) {
		free(dir);
		return NULL;
	}
	return dir;
}

const char *folder_display(const char *dir)
{
	return *dir ? dir + 1 : "INBOX";
}
