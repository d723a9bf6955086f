/* Unit tests for common/folder.c: table-driven. */
#include "autoconf.h"

#include <stdlib.h>

#include "../tap.h"
#include "folder.h"

static const struct {
	const char *dir;
	int valid;
} dirs[] = {
	{ "", 1 }, { ".Sent", 1 }, { ".Lists.debian", 1 }, { ".a.b.c", 1 },
	{ ".&AOQ-pfel", 1 }, { ".caf\xc3\xa9", 1 }, { ".Git.hub", 1 },
	{ "Sent", 0 }, { ".", 0 }, { "..", 0 }, { "...", 0 }, { ".a..b", 0 },
	{ ".a.", 0 }, { "..a", 0 }, { ".a/b", 0 }, { "./x", 0 },
	{ ".git", 0 }, { ".GIT", 0 }, { ".Git", 0 }, { ".git ", 0 },
	{ ".g\xe2\x80\x8cit", 0 }, { ".a\nb", 0 }, { ".a\x7f", 0 },
};

static const struct {
	const char *mailbox, *dir;
} mailboxes[] = {
	{ "INBOX", "" }, { "inbox", "" }, { "Sent", ".Sent" },
	{ "Lists/debian", ".Lists.debian" }, { "Lists.debian", ".Lists.debian" },
	{ "INBOX.Lists.debian", ".Lists.debian" }, { "INBOX/Drafts", ".Drafts" },
	{ "../x", NULL }, { "git", NULL }, { "a//b", NULL }, { "", NULL },
	{ "INBOX.", NULL }, { "x/", NULL },
};

int main(void)
{
	char big[300];

	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		is_int(folder_dir_valid(dirs[i].dir), dirs[i].valid,
		       "folder_dir_valid(%zu)", i);
	for (size_t i = 0; i < sizeof mailboxes / sizeof mailboxes[0]; i++) {
		char *d = folder_from_mailbox(mailboxes[i].mailbox);
		is_str(d, mailboxes[i].dir, "mailbox '%s'", mailboxes[i].mailbox);
		free(d);
	}
	big[0] = '.';
	for (int i = 1; i < 256; i++)
		big[i] = 'x';
	big[256] = '\0';
	is_int(folder_dir_valid(big), 0, "256-byte folder refused");
	big[255] = '\0';
	is_int(folder_dir_valid(big), 1, "255-byte folder accepted");
	ok(path_component_forbidden("git~1"), "NTFS short name refused");
	ok(path_component_forbidden(".."), ".. refused");
	ok(!path_component_forbidden("cur"), "cur allowed");
	is_str(folder_display(""), "INBOX", "display INBOX");
	is_str(folder_display(".Sent"), "Sent", "display Sent");
	return tap_done();
}
