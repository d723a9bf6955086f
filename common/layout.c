/*
 * layout: where the parts of a mailbox are (see layout.h for the rules).
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "folder.h"
#include "fsutil.h"
#include "hex.h"
#include "layout.h"
#include "log.h"
#include "maildir_name.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

static const char *const subs[2] = { "cur", "new" };

const char *layout_sub_name(unsigned sub)
{
	return subs[sub & 1];
}

char *layout_folder_dir(const char *maildir, const char *folder,
			const char *sub)
{
	if (!sub)
		return *folder ? xasprintf("%s/%s", maildir, folder)
			       : xstrdup(maildir);
	return *folder ? xasprintf("%s/%s/%s", maildir, folder, sub)
		       : xasprintf("%s/%s", maildir, sub);
}

/* --- folders on disk ------------------------------------------------- */

bool layout_folder_exists(const char *maildir, const char *folder)
{
	bool ok = false;

	for (size_t i = 0; i < 2 && !ok; i++) {
		char *d = layout_folder_dir(maildir, folder, subs[i]);
		ok = is_dir(d);
		free(d);
	}
	return ok;
}

bool layout_dir_exists(const char *maildir, const char *folder)
{
	char *d = layout_folder_dir(maildir, folder, NULL);
	struct stat st;
	bool ok = lstat(d, &st) == 0 && S_ISDIR(st.st_mode);

	free(d);
	return ok;
}

/* "" and the folder directories of the root; those that exist with all. */
static int list_root(char ***out, size_t *n, const char *maildir, bool exist)
{
	char **v = NULL;
	size_t nv = 0, alloc = 0;
	struct dirent *de;
	DIR *d = opendir(maildir);

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 :
		       log_error_errno("opendir '%s'", maildir);
	xgrow((void **)&v, &alloc, nv + 1, sizeof *v);
	v[nv++] = xstrdup("");
	while ((de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] != '.' || !folder_dir_valid(de->d_name))
			continue;
		/* a directory itself: a symbolic link is not followed */
		if (de->d_type == DT_UNKNOWN &&
		    (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     !S_ISDIR(st.st_mode)))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (exist && !layout_folder_exists(maildir, de->d_name))
			continue;
		xgrow((void **)&v, &alloc, nv + 1, sizeof *v);
		v[nv++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(v, nv, sizeof *v, strvec_cmp);
	*out = v;
	*n = nv;
	return 0;
}

int layout_list_folders(char ***out, size_t *n, const char *maildir)
{
	return list_root(out, n, maildir, true);
}

int layout_list_dirs(char ***out, size_t *n, const char *maildir)
{
	return list_root(out, n, maildir, false);
}

void layout_list_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* --- paths ------------------------------------------------------------ */

void layout_disk_place(struct strbuf *out, const char *folder,
		       const char *sub, const char *name)
{
	if (*folder)
		strbuf_addf(out, "%s/", folder);
	strbuf_addf(out, "%s/%s", sub, name);
}

void tree_shard_path(struct strbuf *out, const char *folder, const char *sub,
		     unsigned shard)
{
	if (*folder)
		strbuf_addf(out, "%s/", folder);
	strbuf_addf(out, "%s/%02x", sub, shard & 0xff);
}

void tree_message_path(struct strbuf *out, const char *folder,
		       const char *sub, const char *name)
{
	tree_shard_path(out, folder, sub,
			maildir_shard(name, maildir_key_len(name)));
	strbuf_addf(out, "/%s", name);
}

/* "[<folder>/](cur|new)/" at the start of path; *rest is what follows. */
static int parse_head(struct layout_path *out, const char *path,
		      const char **rest)
{
	const char *p = path;

	memset(out, 0, sizeof *out);
	out->folder = path;
	if (*p == '.') {
		const char *slash = strchr(p, '/');
		char dir[FOLDER_NAME_MAX + 1];
		size_t len = slash ? (size_t)(slash - p) : 0;

		if (!slash || len > FOLDER_NAME_MAX)
			return E_INVALID;
		memcpy(dir, p, len);
		dir[len] = '\0';
		if (!folder_dir_valid(dir))
			return E_INVALID;
		out->folder_len = len;
		p = slash + 1;
	}
	if (!strncmp(p, "cur/", 4))
		out->sub = 0;
	else if (!strncmp(p, "new/", 4))
		out->sub = 1;
	else
		return E_INVALID;
	*rest = p + 4;
	return 0;
}

bool layout_shard_name(unsigned *out, const char *s, size_t len)
{
	if (len != 2 || !hex_is_lower(s, 2))
		return false;
	if (out)
		*out = (unsigned)(hex_value(s[0]) * 16 + hex_value(s[1]));
	return true;
}

/* A shard name at s, then end (a shard directory) or '/'. */
static int parse_shard(struct layout_path *out, const char *s, char end)
{
	if (!hex_is_lower(s, 2) || s[2] != end ||
	    !layout_shard_name(&out->shard, s, 2))
		return E_INVALID;
	return 0;
}

/* The file name at name; with check, it must be in shard out->shard. */
static int parse_name(struct layout_path *out, const char *name, bool check)
{
	unsigned shard;

	if (!maildir_name_valid(name))
		return E_INVALID;
	shard = maildir_shard(name, maildir_key_len(name));
	if (check && shard != out->shard)
		return E_INVALID;
	out->shard = shard;
	out->name = name;
	return 0;
}

int layout_parse_tree_path(struct layout_path *out, const char *path)
{
	const char *rest;

	if (parse_head(out, path, &rest) < 0 || parse_shard(out, rest, '/') < 0)
		return E_INVALID;
	return parse_name(out, rest + 3, true);
}

int layout_parse_shard_dir(struct layout_path *out, const char *path)
{
	const char *rest;

	if (parse_head(out, path, &rest) < 0)
		return E_INVALID;
	return parse_shard(out, rest, '\0');
}

int layout_parse_disk_place(struct layout_path *out, const char *place)
{
	const char *rest;

	if (parse_head(out, place, &rest) < 0)
		return E_INVALID;
	return parse_name(out, rest, false);
}

/* --- tmp/ ------------------------------------------------------------- */

size_t layout_clean_tmp(const char *maildir, const char *folder,
			time_t max_age)
{
	time_t cutoff = time(NULL) - max_age;
	char *tmp = layout_folder_dir(maildir, folder, "tmp");
	struct dirent *de;
	size_t n = 0;
	/* a folder's tmp/: beside its cur/ or new/ */
	DIR *d = layout_folder_exists(maildir, folder) ? opendir(tmp) : NULL;

	while (d && (de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_mtime < cutoff &&
		    st.st_atime < cutoff &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0) {
			log_info("removed '%s/%s', older than %ld hours", tmp,
				 de->d_name, (long)max_age / 3600);
			n++;
		}
	}
	if (d)
		closedir(d);
	free(tmp);
	return n;
}

void layout_clean_tmp_some(const char *maildir, char **folders, size_t n,
			   size_t *pos, time_t max_age, double seconds)
{
	double t0 = clock_now();

	for (size_t i = *pos; i < n; i++) {
		if (seconds && i > *pos && clock_now() - t0 >= seconds) {
			*pos = i;
			return;
		}
		layout_clean_tmp(maildir, folders[i], max_age);
	}
	*pos = n;
}

void layout_clean_tmp_all(const char *maildir, time_t max_age)
{
	char **folders;
	size_t n, pos = 0;

	if (layout_list_folders(&folders, &n, maildir) < 0)
		return;
	layout_clean_tmp_some(maildir, folders, n, &pos, max_age, 0);
	layout_list_free(folders, n);
}
