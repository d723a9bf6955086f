/*
 * objects: the repository's loose objects, kept bounded (DESIGN section
 * 6: maintenance is maildag-syncd's job, never the LDA's): counted,
 * checked after the machine restarts, packed, and the temporary files of
 * killed writers removed.  libgit2 stays in here; the daemon only starts
 * the packing child (syncd/maint.h).
 *
 * Every delivery and every commit of the client's changes writes loose
 * objects.  When there are more than OBJECTS_LOOSE_MAX of them, they are
 * written into one new pack (fsynced), and then removed.  Only objects
 * that are in the new pack are removed, so a concurrent writer's new
 * object is never lost; readers that miss a removed loose object find it
 * in the pack (libgit2 looks at new packs on a miss).
 *
 * Packs are never combined or deleted here.  Temporary files of
 * killed transfers are removed once they are old (a peer that times out
 * again and again must not fill the disk with partial packs).
 */
#ifndef OBJECTS_H
#define OBJECTS_H

#include <stddef.h>

#define OBJECTS_LOOSE_MAX 2000

struct repo;

/*
 * Once after each start of the machine (its boot id differs from the
 * one <repo>/maildag/boot-id recorded): check every loose object and
 * remove the damaged ones (repo_object_check).  maildag-lda syncs what
 * it writes once per commit, so a crash can leave a loose object cut
 * short under its name; no ref names it, but a later commit of the same
 * content would reuse it, and libgit2 1.5.1 hangs reading it.  To be
 * run before anything writes or packs objects.  *damaged: how many were
 * removed.  0, or E_FAIL.
 */
int objects_check_after_boot(struct repo *r, size_t *damaged);

/* How many loose objects the repository holds (*n); 0 or E_FAIL. */
int objects_count_loose(const char *repo_path, size_t *n);

/*
 * Pack every loose object of the repository into one new pack and remove
 * the loose copies.  *packed (may be NULL) is how many.  0, or < 0 with
 * nothing removed.
 */
int objects_pack_loose(const char *repo_path, size_t *packed);

/*
 * Remove the temporary files that a killed fetch (objects/pack/pack_git2_*
 * from libgit2, tmp_pack_* and tmp_idx_* from git-receive-pack) or a
 * killed object writer (tmp_object_git2_*, tmp_obj_*) left, when older
 * than max_age seconds: no live transfer is that old.  Returns how many.
 */
size_t objects_clean_tmp(const char *repo_path, long max_age);

#endif
