/*
 * maildag merge [-n] [-u] [-q] [-v] <commit-a> <commit-b>: merge two
 * commits of the repository with maildag's Maildir merge (common/merge.h)
 * and print the result, by hand what maildag-syncd does when a peer's
 * history arrives.
 *
 *   -n, --dry-run   write nothing: the objects stay in memory
 *   -u, --update    move refs/heads/mail to the result (under the writer
 *                   lock, by compare-and-swap); refs/heads/mail must be in
 *                   the history of a or b, so nothing of it is dropped
 *   -q, --quiet     print the commit id only
 *   -v, --verbose   list every change the merge makes to a
 *
 * Output: the merged commit id (a or b for a fast-forward), then what
 * the merge did, for each side.  Both commits are checked against the
 * format first (format_check_commit); a commit that fails is refused.
 *
 * Exit status: 0 done, 64 bad usage, 65 a commit that does not exist or
 * fails the check, or refs/heads/mail outside the merged history, 66 no
 * repository, 75 a transient failure (lock, I/O, the ref moved meanwhile).
 */
#include "autoconf.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "admin.h"
#include "format.h"
#include "log.h"
#include "mailbox.h"
#include "merge.h"
#include "repo.h"
#include "strbuf.h"

static void merge_usage(FILE *f)
{
	fputs("usage: maildag merge [-n | --dry-run] [-u | --update] [-q] [-v]\n"
	      "                     <commit-a> <commit-b>\n", f);
}

static void print_note(void *data, const struct merge_note *n)
{
	static const char *const verbs[] = {
		[MERGE_NOTE_ADD] = "add", [MERGE_NOTE_EXPUNGE] = "expunge",
		[MERGE_NOTE_MOVE] = "move", [MERGE_NOTE_FLAGS] = "flags",
		[MERGE_NOTE_RENAME] = "rename", [MERGE_NOTE_OTHER] = "file",
	};

	(void)data;
	if (n->from && n->to && strcmp(n->from, n->to))
		printf("  %-7s %s -> %s\n", verbs[n->kind], n->from, n->to);
	else
		printf("  %-7s %s%s\n", verbs[n->kind], n->from ? n->from : n->to,
		       n->kind == MERGE_NOTE_OTHER && !n->to ? " (removed)" : "");
}

static void print_counts(const char *side, const struct oid *id,
			 const struct merge_counts *c)
{
	printf("%s %.10s: %zu added, %zu expunged, %zu moved, %zu flag changes, "
	       "%zu renamed\n", side, oid_hex(id), c->added, c->expunged,
	       c->moved, c->flagged, c->renamed);
}

/* Is the commit a valid tree of the format?  trusted: mail, if any. */
static int check_commit(struct repo *r, const char *spec, const struct oid *id,
			const struct oid *trusted)
{
	struct strbuf err = STRBUF_INIT;
	int ret = format_check_commit(r, id, trusted, &err);

	if (ret == E_INVALID)
		log_error("'%s' is not a valid maildag tree: %s", spec, err.buf);
	else if (ret < 0)
		log_error("cannot check '%s': %s", spec, err.buf);
	strbuf_release(&err);
	return ret;
}

/*
 * May --update move mail (NULL: there is none) to the merge of a and b?
 * Only when mail is in the history of one of them: nothing is dropped.
 * 0, or the exit status (EX_DATAERR, EX_TEMPFAIL) after saying why.
 */
static int may_update(struct repo *r, const struct oid *mail,
		      const struct oid *a, const struct oid *b)
{
	int in_a, in_b;

	if (!mail) {
		log_error("'%s' does not exist", REF_MAIL);
		return EX_DATAERR;
	}
	in_a = merge_is_ancestor(r, mail, a);
	in_b = merge_is_ancestor(r, mail, b);
	if (in_a < 0 || in_b < 0)
		return EX_TEMPFAIL;
	if (!in_a && !in_b) {
		log_error("'%s' (%.10s) is in the history of neither commit: "
			  "refusing to drop it", REF_MAIL,
			  oid_hex(mail));
		return EX_DATAERR;
	}
	return 0;
}

/* What the merge of a and b gave (out), in words. */
static void print_summary(const struct merge_stats *st, const struct oid *out,
			  const struct oid *a, const struct oid *b)
{
	if (st->kind == MERGE_SAME) {
		printf("the two are the same commit\n");
	} else if (st->kind == MERGE_FAST_FORWARD) {
		const struct oid *old = oid_equal(out, a) ? b : a;
		printf("fast-forward: %.10s is in the history of ",
		       oid_hex(old));
		printf("%.10s\n", oid_hex(out));
	} else {
		printf("merged %.10s and ", oid_hex(a));
		printf("%.10s (%zu merge base%s%s)\n", oid_hex(b),
		       st->bases, st->bases == 1 ? "" : "s",
		       st->bases > 1 ? ", merged first" : "");
		print_counts("a", a, &st->ours);
		print_counts("b", b, &st->theirs);
		if (st->collisions)
			printf("%zu key%s given to a second message\n",
			       st->collisions, st->collisions == 1 ? "" : "s");
	}
}

/* --update: mail moves from mail to out, once out is durable. */
static int move_mail(struct repo *r, struct repo_batch *batch,
		     const struct oid *out, const struct oid *mail, bool quiet)
{
	if (oid_equal(out, mail)) {
		if (!quiet)
			printf("%s: already at %.10s\n", REF_MAIL,
			       oid_hex(out));
		return 0;
	}
	if (repo_batch_end(batch, true) < 0)
		return E_FAIL;
	if (repo_ref_cas(r, REF_MAIL, out, mail, "maildag merge") < 0)
		return E_FAIL;
	if (!quiet) {
		printf("%s: %.10s -> ", REF_MAIL, oid_hex(mail));
		printf("%.10s\n", oid_hex(out));
	}
	return 0;
}

int cmd_merge(struct mailbox *mb, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "update", no_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* the summary counts every change: read every changed shard */
	struct merge_opts opts = { NULL, NULL, MERGE_COUNT };
	struct merge_stats st;
	struct repo *r = NULL;
	struct repo_batch batch = REPO_BATCH_INIT;
	struct oid a, b, out, mail;
	bool dry = false, update = false, quiet = false, verbose = false;
	bool have_mail;
	int c, ret = EX_TEMPFAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+nuqvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': dry = true; break;
		case 'u': update = true; break;
		case 'q': quiet = true; break;
		case 'v': verbose = true; break;
		case 'h': merge_usage(stdout); return EX_OK;
		default: merge_usage(stderr); return EX_USAGE;
		}
	}
	if (argc - optind != 2 || (dry && update)) {
		if (dry && update)
			log_error("--dry-run and --update exclude each other");
		merge_usage(stderr);
		return EX_USAGE;
	}
	/* a merge writes its objects, unless -n */
	if (!dry && (c = admin_refuse_root("merge")))
		return c;
	if ((c = admin_open_repo(&r, mb)))
		return c;
	if (dry && merge_objects_in_memory(r) < 0)
		goto done;
	if (update && repo_lock(r, 10000) < 0)
		goto done;
	have_mail = repo_ref_read(&mail, r, REF_MAIL) == 0;
	if (merge_resolve_commit(&a, r, argv[optind]) < 0 ||
	    merge_resolve_commit(&b, r, argv[optind + 1]) < 0) {
		ret = EX_DATAERR;
		goto done;
	}
	for (int k = 0; k < 2; k++) {
		c = check_commit(r, argv[optind + k], k ? &b : &a,
				 have_mail ? &mail : NULL);
		if (c < 0) {
			ret = c == E_INVALID ? EX_DATAERR : EX_TEMPFAIL;
			goto done;
		}
	}
	if (update) {
		if ((ret = may_update(r, have_mail ? &mail : NULL, &a, &b)))
			goto done;
		ret = EX_TEMPFAIL;
		/* one sync before the ref moves, not one per object */
		repo_batch_begin(&batch, r);
	}
	if (verbose && !quiet) {
		opts.notify = print_note;
		printf("changes to %.10s:\n", oid_hex(&a));
	}
	if (merge_commits(&out, r, &a, &b, 0, quiet ? NULL : &opts, &st) < 0)
		goto done;
	printf("%s\n", oid_hex(&out));
	if (!quiet) {
		print_summary(&st, &out, &a, &b);
		if (dry)
			printf("dry run: nothing written\n");
	}
	if (update && move_mail(r, &batch, &out, &mail, quiet) < 0)
		goto done;
	ret = EX_OK;
done:
	repo_batch_end(&batch, false);
	repo_free(r);
	return ret;
}
