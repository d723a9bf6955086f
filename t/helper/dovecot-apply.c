/*
 * dovecot-apply: a test helper that does to one Maildir folder what
 * maildag's apply will do for the messages it gives UIDs
 * (doc/imap-identity.md 4.1), through common/dovecot.c alone:
 *
 *	dovecot-apply DIR UIDVALIDITY UID:BASE[:KEYWORD,...]...
 *
 * Under the uidlist dotlock: give each keyword name a letter of DIR's
 * dovecot-keywords (adding names as needed), rename the file of BASE in
 * cur/ or new/ to carry the system flags it has plus those letters,
 * append a record "UID :BASE" to dovecot-uidlist (created with
 * UIDVALIDITY when absent), write dovecot-keywords if it changed.  The
 * UIDs must be at or above Dovecot's next UID, in order.  Exit 0, or 1
 * with a message.
 */
#include "autoconf.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dovecot.h"
#include "log.h"
#include "maildir_name.h"
#include "strbuf.h"
#include "xalloc.h"

/* The path of the file of base in dir's cur/ or new/, or NULL. */
static char *find_file(const char *dir, const char *base)
{
	static const char *const subs[] = { "cur", "new" };
	size_t bl = strlen(base);

	for (int s = 0; s < 2; s++) {
		char *d = xasprintf("%s/%s", dir, subs[s]);
		DIR *dh = opendir(d);
		struct dirent *de;
		char *found = NULL;

		while (dh && (de = readdir(dh)))
			if (!strncmp(de->d_name, base, bl) &&
			    (!de->d_name[bl] || de->d_name[bl] == ':')) {
				found = xasprintf("%s/%s", d, de->d_name);
				break;
			}
		if (dh)
			closedir(dh);
		free(d);
		if (found)
			return found;
	}
	return NULL;
}

/* Rename the file of base to carry the letters of the keywords in kws. */
static int set_keywords(const char *dir, const char *base, char *kws,
			struct dovecot_keywords *k)
{
	char *path = find_file(dir, base), *slash;
	struct maildir_name mn;
	struct strbuf flags = STRBUF_INIT, to = STRBUF_INIT;
	int ret = 0;

	if (!path)
		return log_error("no file for '%s'", base);
	slash = strrchr(path, '/');
	if (maildir_name_parse(&mn, slash + 1) < 0) {
		ret = log_error("bad name '%s'", slash + 1);
		free(path);
		return ret;
	}
	for (const char *f = maildir_name_flags(&mn); *f; f++)
		if (*f < 'a' || *f > 'z')
			strbuf_addch(&flags, *f);
	for (char *kw = strtok(kws, ","); kw; kw = strtok(NULL, ",")) {
		int i = dovecot_keywords_index(k, kw, true);
		if (i < 0) {
			ret = log_error("no letter left for '%s'", kw);
			goto done;
		}
		strbuf_addch(&flags, (char)('a' + i));
	}
	maildir_name_set_flags(&mn, flags.buf);
	strbuf_add(&to, path, (size_t)(slash + 1 - path));
	maildir_name_format(&to, &mn);
	if (strcmp(path, to.buf) && rename(path, to.buf) < 0)
		ret = log_error_errno("rename '%s'", path);
done:
	maildir_name_release(&mn);
	strbuf_release(&flags);
	strbuf_release(&to);
	free(path);
	return ret;
}

int main(int argc, char **argv)
{
	struct dovecot_lock lock = DOVECOT_LOCK_INIT;
	struct uidlist u = UIDLIST_INIT;
	struct dovecot_keywords k;
	const char *dir;
	size_t old;
	bool fresh = false;
	int r, ret = 1;

	log_init("dovecot-apply", LOG_TO_STDERR, LOG_LVL_INFO);
	if (argc < 3)
		log_fatal("usage: dovecot-apply DIR UIDVALIDITY UID:BASE[:KW,...]...");
	dir = argv[1];
	if (dovecot_lock(&lock, dir, 10000) < 0)
		log_fatal("cannot lock '%s'", dir);
	r = uidlist_read(&u, dir);
	if (r == E_NOTFOUND) {
		u.uidvalidity = (uint32_t)strtoul(argv[2], NULL, 10);
		u.nextuid = 1;
		u.hdr = xstrdup("");
		fresh = true;
	} else if (r < 0) {
		goto done;
	}
	old = u.n;
	if (dovecot_keywords_read(&k, dir) < 0)
		goto done;
	for (int i = 3; i < argc; i++) {
		char *arg = xstrdup(argv[i]), *base = strchr(arg, ':'), *kws;
		uint32_t uid = (uint32_t)strtoul(arg, NULL, 10);

		kws = base ? strchr(base + 1, ':') : NULL;
		if (kws)
			*kws++ = '\0';
		r = !base ? log_error("bad argument '%s'", argv[i]) :
		    set_keywords(dir, base + 1, kws ? kws : (char *)"", &k);
		if (r == 0)
			r = uidlist_add(&u, uid, base + 1, "");
		free(arg);
		if (r < 0)
			goto release;
	}
	if (dovecot_keywords_write(dir, &k) < 0 ||
	    (fresh || !old ? uidlist_rewrite(dir, &u) :
	     uidlist_append(dir, &u, old)) < 0)
		goto release;
	ret = 0;
release:
	dovecot_keywords_release(&k);
done:
	uidlist_release(&u);
	dovecot_unlock(&lock);
	return ret;
}
