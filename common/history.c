/*
 * history: the whole-history check of a peer's commits (see history.h).
 *
 * A reverse topological revwalk of theirs ^ ours hands out each commit
 * after all its parents, so the first parent is always either hidden
 * (trusted) or checked already when its child comes: the incremental check
 * against it costs O(changed shards) per commit, not O(mailbox).
 *
 * A check child reports on one line, the only thing it writes:
 *
 *	<word> <theirs> <bad> <checked> <max-rss-kb> <why>\n
 *
 * <word> is "ok", "refused" (E_INVALID) or "temp" (E_TEMP), the ids 40
 * hex digits (<bad> all zero unless refused), the numbers decimal, <why>
 * the rest of the line, printable ASCII (history_check's texts escape
 * names already; any other byte is sent as '?').
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "child.h"
#include "format.h"
#include "fsutil.h"
#include "history.h"
#include "log.h"
#include "repo_p.h"

/* A result line longer than this is not one a child of ours wrote. */
#define RESULT_MAX 2048
/*
 * libgit2's object cache in the child (its default is 256 MB): the walk
 * reads each tree once or twice, and the daemon's own setting does not
 * survive the restart of libgit2 in the child.
 */
#define CHILD_CACHE_MAX ((size_t)32 << 20)
#define WHY_MAX (sizeof ((struct history_result *)NULL)->why)

/* The purged/ set of commit's tree, as a hint of the format check. */
static int hint(struct repo *r, const struct oid *commit, struct strbuf *err)
{
	struct oid tree;
	int ret;

	if (repo_commit_tree(&tree, r, commit) < 0)
		return 0;	/* the walk says why */
	if ((ret = format_purged_hint(r, &tree)) < 0)
		strbuf_addf(err, "commit %.12s: bad purged/ records",
			    oid_hex(commit));
	return ret == E_INVALID ? E_INVALID : ret < 0 ? E_TEMP : 0;
}

int history_check(struct repo *r, const struct oid *ours,
		  const struct oid *approved,
		  const struct oid *theirs, struct strbuf *err, size_t *checked,
		  struct oid *bad)
{
	git_revwalk *walk = NULL;
	git_commit *c = NULL;
	struct oid id;
	size_t n = 0;
	int ret = 0, err2;

	/* a format 2 repository takes no format 1 commit it lacks (4.9) */
	if ((ret = format_peer_allowed(r, ours, theirs, err)) < 0) {
		if (ret == E_INVALID && bad)
			oid_cpy(bad, theirs);
		goto done;
	}
	/*
	 * A blob purged on either side may be absent, named by the history
	 * before its purge: the sets of both tips cover all of it (a set
	 * only grows).
	 */
	format_purged_hints_clear();
	if ((ret = hint(r, theirs, err)) < 0 ||
	    (ours && (ret = hint(r, ours, err)) < 0))
		goto done;
	if ((err2 = git_revwalk_new(&walk, r->git)) < 0 ||
	    (err2 = git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL |
					GIT_SORT_REVERSE)) < 0 ||
	    (err2 = git_revwalk_push(walk, GIT_OID(theirs))) < 0 ||
	    (ours && (err2 = git_revwalk_hide(walk, GIT_OID(ours))) < 0) ||
	    (approved && (err2 = git_revwalk_hide(walk,
						  GIT_OID(approved))) < 0)) {
		strbuf_addf(err, "walk the history of %.12s: %s",
			    oid_hex(theirs), repo_git_error());
		ret = E_TEMP;
		goto done;
	}
	while ((err2 = git_revwalk_next(GIT_OID(&id), walk)) == 0) {
		struct strbuf why = STRBUF_INIT;
		const struct oid *trusted = NULL;

		if ((err2 = git_commit_lookup(&c, r->git, GIT_OID(&id))) < 0) {
			strbuf_addf(err, "commit %.12s: %s",
				    oid_hex(&id), repo_git_error());
			ret = E_TEMP;
			goto done;
		}
		/* parents come first: the first one is trusted or checked */
		if (git_commit_parentcount(c) > 0)
			trusted = OID(git_commit_parent_id(c, 0));
		ret = format_check_commit(r, &id, trusted, &why);
		git_commit_free(c);
		c = NULL;
		n++;
		if (ret < 0) {
			if (ret == E_INVALID && bad)
				oid_cpy(bad, &id);
			if (oid_equal(&id, theirs))
				strbuf_add(err, why.buf, why.len);
			else
				strbuf_addf(err, "commit %.12s of its history: %s",
					    oid_hex(&id), why.buf);
			strbuf_release(&why);
			goto done;
		}
		strbuf_release(&why);
	}
	if (err2 != GIT_ITEROVER) {
		strbuf_addf(err, "walk the history of %.12s: %s",
			    oid_hex(theirs), repo_git_error());
		ret = E_TEMP;
	}
done:
	format_purged_hints_clear();
	git_commit_free(c);
	git_revwalk_free(walk);
	if (checked)
		*checked = n;
	return ret;
}

/* --- in a child process ------------------------------------------------ */

struct spawn_args {
	const char *repo_path;
	const struct oid *ours, *approved, *theirs;
};

static const char *result_word(int status)
{
	return status == 0 ? "ok" : status == E_INVALID ? "refused" : "temp";
}

static void check_child(void *arg)
{
	const struct spawn_args *a = arg;
	struct strbuf err = STRBUF_INIT, line = STRBUF_INIT;
	char hex[OID_HEXSZ + 1], badhex[OID_HEXSZ + 1];
	struct repo *r = NULL;
	struct rusage ru;
	struct oid bad;
	size_t n = 0;
	int st;

	memset(&bad, 0, sizeof bad);
	/* libgit2 as inherited when its packs are open still (CHILD_KEEP_PACKS) */
	if ((child_kept_packs() ? repo_global_init() : repo_global_reinit(true)) < 0 ||
	    repo_open(&r, a->repo_path, 0) < 0) {
		strbuf_addf(&err, "cannot open the repository: %s",
			    log_last_error());
		st = E_TEMP;
	} else {
		repo_set_cache_max(CHILD_CACHE_MAX);
		st = history_check(r, a->ours, a->approved, a->theirs, &err,
				   &n, &bad);
		if (st < 0 && st != E_INVALID)
			st = E_TEMP;
	}
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		ru.ru_maxrss = 0;
	oid_tostr(hex, sizeof hex, a->theirs);
	oid_tostr(badhex, sizeof badhex, &bad);
	strbuf_addf(&line, "%s %s %s %zu %ld ", result_word(st), hex, badhex,
		    n, (long)ru.ru_maxrss);
	for (size_t i = 0; i < err.len && i + 1 < WHY_MAX; i++) {
		unsigned char ch = (unsigned char)err.buf[i];
		strbuf_addch(&line, ch >= 0x20 && ch < 0x7f ? (char)ch : '?');
	}
	strbuf_addch(&line, '\n');
	write_full(CHILD_RESULT_FD, line.buf, line.len);
	/* the child ends here (child.h): nothing to free */
}

int history_spawn(pid_t *pid, int *fd, const char *repo_path,
		  const struct oid *ours, const struct oid *approved,
		  const struct oid *theirs, unsigned long long data_limit)
{
	struct spawn_args a = { repo_path, ours, approved, theirs };

	return child_spawn(pid, fd, data_limit,
			   CHILD_DIE_WITH_PARENT | CHILD_KEEP_PACKS,
			   "maildag-check", check_child, &a);
}

/* "<word> <theirs> <bad> <checked> <rss> <why>\n"; 0 or -1 */
static int parse_result(const char *line, size_t len,
			struct history_result *res)
{
	char word[16], th[OID_HEXSZ + 1], bh[OID_HEXSZ + 1];
	unsigned long long n;
	long rss;
	int used = 0;
	size_t wl;

	if (!len || line[len - 1] != '\n' ||
	    memchr(line, '\n', len) != line + len - 1)
		return -1;
	for (size_t i = 0; i + 1 < len; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			return -1;
	if (sscanf(line, "%15s %40[0-9a-f] %40[0-9a-f] %llu %ld %n", word, th,
		   bh, &n, &rss, &used) != 5 || !used ||
	    strlen(th) != OID_HEXSZ || strlen(bh) != OID_HEXSZ ||
	    oid_fromstr(&res->theirs, th) < 0 ||
	    oid_fromstr(&res->bad, bh) < 0)
		return -1;
	if (!strcmp(word, "ok"))
		res->status = 0;
	else if (!strcmp(word, "refused"))
		res->status = E_INVALID;
	else if (!strcmp(word, "temp"))
		res->status = E_TEMP;
	else
		return -1;
	res->checked = (size_t)n;
	res->max_rss_kb = rss;
	/* " %n" may have eaten the newline of an empty <why> */
	wl = (size_t)used < len - 1 ? len - 1 - (size_t)used : 0;
	if (wl >= sizeof res->why)
		return -1;
	memcpy(res->why, line + used, wl);
	res->why[wl] = '\0';
	/* a refusal says which commit and why; an approval says nothing */
	if ((res->status == E_INVALID) != !oid_is_zero(&res->bad) ||
	    (res->status != 0) != (res->why[0] != '\0'))
		return -1;
	return 0;
}

int history_collect(pid_t pid, int fd, struct strbuf *buf,
		    struct history_result *res)
{
	struct strbuf why = STRBUF_INIT;
	int st;

	if (!child_read(pid, fd, buf, RESULT_MAX, &st))
		return 0;
	memset(res, 0, sizeof *res);
	/* an approval counts only from a child that finished as it should */
	if (buf->len < RESULT_MAX && st >= 0 && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0 && parse_result(buf->buf, buf->len, res) == 0) {
		strbuf_reset(buf);
		return 1;
	}
	memset(res, 0, sizeof *res);
	res->status = E_TEMP;
	child_describe(&why, st, buf->len > 0);
	snprintf(res->why, sizeof res->why, "%s", why.buf);
	strbuf_release(&why);
	strbuf_reset(buf);
	return 1;
}
