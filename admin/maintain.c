/*
 * maildag maintain: one maintenance pass now (purge.h, objects.h), as
 * maildag-syncd runs them: expunged mail past the retention listed in
 * purged/, purged blobs removed, packs rolled up by class, unreachable
 * objects older than maintenance.grace pruned, loose objects packed.  It waits
 * for a pass under way (the daemon's) to end first.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <jansson.h>

#include "admin.h"
#include "log.h"
#include "objects.h"
#include "purge.h"
#include "repo.h"

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
	struct purge_result pr;
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
	if (purge_pass(mb->repository, mb->cfg->retention, &o, true, &pr,
		       &r) < 0)
		return EX_TEMPFAIL;
	printf("retention: %zu purged now, %zu expunged waiting%s\n",
	       pr.purged, pr.candidates, pr.clock_jump ?
	       " (clock jump: no purge decided)" : "");
	admin_print_maintenance(stdout, &r);
	return EX_OK;
}

json_t *admin_maintenance_json(const struct mailbox *mb)
{
	struct objects_maint_result r;
	unsigned long long bytes = 0;
	size_t packs = 0, loose = 0;
	json_t *o = json_object();

	if (objects_count_now(mb->repository, &packs, &loose, &bytes) == 0) {
		json_object_set_new(o, "packs", json_integer((json_int_t)packs));
		json_object_set_new(o, "loose", json_integer((json_int_t)loose));
		json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
	}
	{
		/* what purged/ lists: the blobs gone from every replica */
		struct purged set = PURGED_INIT;
		struct repo *repo;
		if (repo_open(&repo, mb->repository, 0) == 0) {
			if (purge_drop_set(&set, repo) == 0)
				json_object_set_new(o, "purged",
						    json_integer((json_int_t)set.n));
			repo_free(repo);
		}
		purged_release(&set);
		json_object_set_new(o, "retention", json_integer(
			(json_int_t)mb->cfg->retention));
	}
	if (objects_maint_last(mb->repository, &r) == 0) {
		json_t *l = json_object();
#define I(f) json_object_set_new(l, #f, json_integer((json_int_t)r.f))
		json_object_set_new(l, "ok", json_boolean(r.ok));
		I(start); I(duration_ms); I(packs_before); I(packs_after);
		I(packs_live); I(packs_expunged); I(packs_history);
		I(packs_other); I(loose_before); I(loose_after);
		I(packs_written); I(packs_removed); I(objects_packed);
		I(pruned); I(loosened); I(dropped); I(drop_left);
		I(bytes_before); I(bytes_after);
#undef I
		json_object_set_new(o, "last", l);
	}
	return o;
}

void admin_print_maintenance_status(json_t *m, time_t now)
{
	json_t *l = json_object_get(m, "last");
	long long v;

	printf("maintenance: %lld packs, %lld loose objects, %lld bytes",
	       (long long)json_integer_value(json_object_get(m, "packs")),
	       (long long)json_integer_value(json_object_get(m, "loose")),
	       (long long)json_integer_value(json_object_get(m, "bytes")));
	if (json_is_integer(json_object_get(m, "purged")))
		printf(", %lld purged blobs recorded",
		       (long long)json_integer_value(json_object_get(m,
							     "purged")));
	if (!json_is_object(l)) {
		printf("; no pass yet\n");
		return;
	}
	v = (long long)json_integer_value(json_object_get(l, "start"));
	printf("\n  last pass: %lld s ago, %s, %lld ms: packs %lld -> %lld, "
	       "loose %lld -> %lld, %lld objects packed, %lld unreachable "
	       "pruned, %lld purged blobs removed, bytes %lld -> %lld\n",
	       (long long)now - v,
	       json_is_true(json_object_get(l, "ok")) ? "ok" : "FAILED",
#define G(f) (long long)json_integer_value(json_object_get(l, f))
	       G("duration_ms"), G("packs_before"), G("packs_after"),
	       G("loose_before"), G("loose_after"), G("objects_packed"),
	       G("pruned"), G("dropped"), G("bytes_before"), G("bytes_after"));
#undef G
}
