/*
 * history: the whole-history check of a peer's commits (see history.h).
 *
 * A reverse topological revwalk of theirs ^ ours hands out each commit
 * after all its parents, so the first parent is always either hidden
 * (ours) or checked already when its child comes: the incremental check
 * against it costs O(changed shards) per commit, not O(mailbox).
 */
#include "autoconf.h"

#include "format.h"
#include "history.h"
#include "log.h"

int history_check(struct repo *r, const git_oid *ours, const git_oid *theirs,
		  struct strbuf *err, size_t *checked)
{
	git_revwalk *walk = NULL;
	git_commit *c = NULL;
	git_oid id;
	size_t n = 0;
	int ret = 0, err2;

	if ((err2 = git_revwalk_new(&walk, r->git)) < 0 ||
	    (err2 = git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL |
					GIT_SORT_REVERSE)) < 0 ||
	    (err2 = git_revwalk_push(walk, theirs)) < 0 ||
	    (ours && (err2 = git_revwalk_hide(walk, ours)) < 0)) {
		strbuf_addf(err, "walk the history of %.12s: %s",
			    git_oid_tostr_s(theirs), repo_git_error());
		ret = E_TEMP;
		goto done;
	}
	while ((err2 = git_revwalk_next(&id, walk)) == 0) {
		struct strbuf why = STRBUF_INIT;
		const git_oid *trusted = NULL;

		if ((err2 = git_commit_lookup(&c, r->git, &id)) < 0) {
			strbuf_addf(err, "commit %.12s: %s",
				    git_oid_tostr_s(&id), repo_git_error());
			ret = E_TEMP;
			goto done;
		}
		/* parents come first: the first one is ours or checked */
		if (git_commit_parentcount(c) > 0)
			trusted = git_commit_parent_id(c, 0);
		ret = format_check_commit(r, &id, trusted, &why);
		git_commit_free(c);
		c = NULL;
		n++;
		if (ret < 0) {
			if (git_oid_equal(&id, theirs))
				strbuf_add(err, why.buf, why.len);
			else
				strbuf_addf(err, "commit %.12s of its history: %s",
					    git_oid_tostr_s(&id), why.buf);
			strbuf_release(&why);
			goto done;
		}
		strbuf_release(&why);
	}
	if (err2 != GIT_ITEROVER) {
		strbuf_addf(err, "walk the history of %.12s: %s",
			    git_oid_tostr_s(theirs), repo_git_error());
		ret = E_TEMP;
	}
done:
	git_commit_free(c);
	git_revwalk_free(walk);
	if (checked)
		*checked = n;
	return ret;
}
