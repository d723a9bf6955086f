/*
 * maildag maintain: one maintenance pass now (objects.h), as
 * maildag-syncd runs them: packs rolled up by class, unreachable objects
 * older than maintenance.grace pruned, loose objects packed.  It waits
 * for a pass under way (the daemon's) to end first.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "admin.h"
#include "log.h"
#include "objects.h"

void admin_print_maintenance(FILE *f, const struct objects_maint_result *r)
{
	fprintf(f, "packs %zu -> %zu (%zu written, %zu removed; live %zu, "
		"expunged %zu, history %zu, other %zu), loose objects %zu -> "
		"%zu, %zu objects packed, %zu unreachable pruned",
		r->packs_before, r->packs_after, r->packs_written,
		r->packs_removed, r->packs_live, r->packs_expunged,
		r->packs_history, r->packs_other, r->loose_before,
		r->loose_after, r->objects_packed, r->pruned);
	if (r->dropped || r->drop_left)
		fprintf(f, ", %zu purged blobs removed", r->dropped);
	fprintf(f, ", %llu -> %llu bytes, %lld ms\n", r->bytes_before,
		r->bytes_after, r->duration_ms);
}

int cmd_maintain(struct mailbox *mb, int argc, char **argv)
{
	struct objects_maint_opts o = { .grace = (long)mb->cfg->maint_grace };
	struct objects_maint_result r;
	struct repo *repo;
	int e;

	(void)argv;
	if (argc > 1) {
		admin_usage(stderr);
		return EX_USAGE;
	}
	if ((e = admin_open_repo(&repo, mb)))
		return e;
	repo_free(repo);
	if (objects_maintain(mb->repository, &o, true, &r) < 0)
		return EX_TEMPFAIL;
	admin_print_maintenance(stdout, &r);
	return EX_OK;
}
