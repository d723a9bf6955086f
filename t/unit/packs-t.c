/*
 * packs-t: the maintenance pass's drop set (objects.h), the interface the
 * purge fills: listed blobs leave every pack and every loose file,
 * reachable or not, young or not; the rest stays where the classes say.
 * Also: what the delivery journal names stays, however old; an old
 * unreachable object goes; a burst of packs (fetches) makes a pass due.  The repository is made with the git CLI
 * (the pass runs it anyway).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "log.h"
#include "objects.h"
#include "xalloc.h"

static char *dir, *repo;

/* Run script in dir with sh(1); its exit status. */
static int sh(const char *script)
{
	char *cmd = xasprintf("cd '%s' && %s", dir, script);
	int r = system(cmd);

	free(cmd);
	return r;
}

static bool stored(const char *hex)
{
	char *cmd = xasprintf("git --git-dir='%s' cat-file -e %s 2>/dev/null",
			      repo, hex);
	int r = system(cmd);

	free(cmd);
	return r == 0;
}

/* The ids the setup wrote, by name. */
static void read_ids(char ids[7][41])
{
	char *path = xasprintf("%s/ids", dir);
	FILE *f = fopen(path, "r");

	for (int i = 0; i < 7; i++)
		if (!f || fscanf(f, "%40s", ids[i]) != 1)
			log_fatal("cannot read the ids");
	fclose(f);
	free(path);
}

int main(void)
{
	char tmpl[] = "/tmp/packs-t.XXXXXX", ids[7][41];
	struct objects_maint_result r;
	struct oid drop[3];
	struct objects_maint_opts o = { .grace = 86400, .drop = drop,
					.ndrop = 3 };

	if (!(dir = mkdtemp(tmpl)))
		log_fatal("mkdtemp");
	repo = xasprintf("%s/r.git", dir);
	/* live A and B under cur/<xx>/, an expunged E, unreachable U and V */
	/* an identity of its own: a package build has no usable HOME */
	if (sh("export GIT_DIR=r.git GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t "
	       "GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t && "
	       "git init -q --bare r.git && "
	       "mkdir r.git/maildag && "
	       "A=$(echo live A | git hash-object -w --stdin) && "
	       "B=$(echo live B | git hash-object -w --stdin) && "
	       "E=$(echo expunged E | git hash-object -w --stdin) && "
	       "U=$(echo unreachable U | git hash-object -w --stdin) && "
	       "V=$(echo unreachable V | git hash-object -w --stdin) && "
	       "t1=$(printf '100644 blob %s\\tm1\\n100644 blob %s\\tm2\\n' $A $B | git mktree) && "
	       "t0=$(printf '100644 blob %s\\tm0\\n' $E | git mktree) && "
	       "c1=$(printf '040000 tree %s\\tab\\n' $t0 | git mktree) && "
	       "c2=$(printf '040000 tree %s\\tab\\n' $t1 | git mktree) && "
	       "r1=$(printf '040000 tree %s\\tcur\\n' $c1 | git mktree) && "
	       "r2=$(printf '040000 tree %s\\tcur\\n' $c2 | git mktree) && "
	       "k1=$(git commit-tree -m one $r1) && "
	       "k2=$(git commit-tree -m two -p $k1 $r2) && "
	       "git update-ref refs/heads/mail $k2 && "
	       "W=$(echo pending W | git hash-object -w --stdin) && "
	       "X=$(echo old X | git hash-object -w --stdin) && "
	       "for x in $W $X; do touch -d '-2 days' "
	       "r.git/objects/$(echo $x | cut -c1-2)/$(echo $x | cut -c3-); done && "
	       "mkdir r.git/maildag/pending && "
	       ": >r.git/maildag/pending/$W-1700000000.M1P1.test && "
	       "echo $A $B $E $U $V $W $X >ids") != 0)
		log_fatal("setup");
	read_ids(ids);
	/* drop B (live), E (expunged) and U (unreachable, young) */
	oid_fromstr(&drop[0], ids[1]);
	oid_fromstr(&drop[1], ids[2]);
	oid_fromstr(&drop[2], ids[3]);

	ok(objects_maintain(repo, &o, true, &r) == 0, "the pass");
	is_int((long long)r.dropped, 3, "three ids of the drop set removed");
	is_int((long long)r.drop_left, 0, "none left");
	ok(stored(ids[0]), "A, live and not listed, stays");
	ok(!stored(ids[1]), "B, live and listed, is gone");
	ok(!stored(ids[2]), "E, expunged and listed, is gone");
	ok(!stored(ids[3]), "U, unreachable, young and listed, is gone");
	ok(stored(ids[4]), "V, unreachable and young, stays (the grace)");
	ok(stored(ids[5]), "W, old but named by the delivery journal, stays");
	ok(!stored(ids[6]), "X, unreachable and older than the grace, goes");
	is_int((long long)r.pruned, 1, "one pruned");
	is_int((long long)r.packs_live, 1, "one live pack");
	is_int((long long)r.packs_history, 1, "one history pack");
	is_int((long long)r.loose_after, 1, "V alone is loose");

	/* A second pass, B now in a pack: the pack is rewritten without it */
	oid_fromstr(&drop[0], ids[0]);
	o.ndrop = 1;
	ok(objects_maintain(repo, &o, true, &r) == 0, "a second pass");
	ok(!stored(ids[0]), "A, packed then listed, is gone");
	is_int((long long)r.dropped, 1, "counted");
	ok(stored(ids[5]), "W, in the same live pack, stays");
	is_int((long long)r.packs_live, 1, "the live pack, rewritten without A");

	/* a burst of fetches, each leaving a pack, makes a pass due */
	const char *why = NULL;
	bool due;

	ok(!objects_maint_due(repo, 3600, &why), "no pass due after one");
	if (sh("for i in 1 2 3 4 5 6 7; do echo fetched $i | git --git-dir=r.git "
	       "hash-object -w --stdin | git --git-dir=r.git pack-objects -q "
	       "r.git/objects/pack/pack >/dev/null || exit 1; done") != 0)
		log_fatal("seven packs");
	ok(!objects_maint_due(repo, 3600, &why), "seven new packs: not yet");
	if (sh("echo fetched 8 | git --git-dir=r.git hash-object -w --stdin | "
	       "git --git-dir=r.git pack-objects -q r.git/objects/pack/pack "
	       ">/dev/null") != 0)
		log_fatal("an eighth pack");
	due = objects_maint_due(repo, 3600, &why);
	ok(due && why && !strcmp(why, "packs piled up"),
	   "eight: a pass is due (%s)", why ? why : "none");
	ok(objects_maintain(repo, &o, true, &r) == 0, "the pass");
	ok(r.packs_after < r.packs_before, "it combined them (%zu -> %zu)",
	   r.packs_before, r.packs_after);
	ok(!objects_maint_due(repo, 3600, &why), "no pass due after it");

	sh("cd / && rm -rf \"$OLDPWD\"");
	return tap_done();
}
