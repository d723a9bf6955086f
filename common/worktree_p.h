/*
 * worktree_p: what the parts of the worktree module share, and nothing
 * outside common/worktree*.c may use.
 *
 * The module is cut along its sections, each a file:
 *	worktree.c		the handle, the dirty marks, names and paths,
 *				reading trees, the key index of the worktree
 *				tree
 *	worktree_scan.c		scanning the disk against the worktree tree,
 *				and resolving what the scan found (renames,
 *				copies, new bytes)
 *	worktree_commit.c	committing: the local changes on top of mail
 *	worktree_apply.c	applying: mail's changes to the disk
 *	worktree_dovecot.c	format 2: names without keyword letters,
 *				the records a commit writes from Dovecot's
 *				files, maildag-lda's numbering
 *	worktree_dvapply.c	format 2: Dovecot's files at an apply
 *	worktree_moves.c	a MOVE in two halves, or under a new name,
 *				kept one move
 * The invariants are those of worktree.c's head comment.
 */
#ifndef WORKTREE_P_H
#define WORKTREE_P_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

#include "imaprec.h"
#include "mtimes.h"
#include "oid.h"
#include "repo_p.h"
#include "strbuf.h"
#include "strmap.h"
#include "strvec.h"
#include "worktree.h"

#define MARKER "maildirfolder"
#define SUBSCRIPTIONS "subscriptions"
#define DIRTY_MAX 500000	/* more dirty names than this: rescan all */
#define COPY_SETTLE 2		/* seconds a duplicate key may be half a move */
#define LINK_SETTLE 10		/* the same, for a hard link (Dovecot's MOVE) */
#define SCAN_SLICE_ADDS 5000	/* new files one slice of a rescan reads */
#define SCAN_SLICE_MIN 32	/* folders a slice looks at, at least */
#define KIDX_FOLDERS 64		/* more folders than this: index keys */

static const char *const subs[2] = { "cur", "new" };

struct worktree {
	struct repo *r;
	char *maildir;
	char *email;		/* commit identity */
	bool full;		/* everything must be looked at */
	bool root;		/* the root: subscriptions, folder list */
	struct strvec folders;	/* folders to look at whole */
	struct strmap folder_set;	/* the same, to find one at once */
	struct strvec names;	/* "<folder>/<sub>/<name>" to look at */
	struct strvec later;	/* names held back (maybe half a move) */
	/*
	 * "<folder>/<dev>:<ino>:<mtime>:<size>" of a new file -> when a
	 * scan first saw it there: how long a copy or a hard link is held
	 * back is counted from then, not from its ctime, which every
	 * rename of any of its links moves (a client storing flags kept a
	 * copy out for as long as it went on; doc/stress-progress.md,
	 * item 16).  Pruned by wt_seen_prune().
	 */
	struct strmap seen;
	double later_due;
	bool ensured;		/* every folder's cur/ new/ tmp/ checked */
	unsigned long gen;	/* counts dirty marks: did anything happen? */
	worktree_poll_fn *poll;	/* read pending events (they mark us) */
	void *poll_data;
	char *origin;		/* commit messages: "<origin>: ..." */
	struct strvec unreadable;	/* files skipped: cannot be read */
	double slice;		/* seconds one step may take; 0: no bound */
	double add_cost;	/* seconds one new file took to commit, lately */
	double apply_tail;	/* seconds a slice of an apply took after its
				   files (recording them), lately */
	double rescan_t0;	/* a sliced full rescan began; 0: none */
	size_t rescan_seen, rescan_slices;
	struct strvec queue;	/* folders a look at the root has yet to */
	size_t qpos;		/* see, from queue.v[qpos] on */
	bool pass;		/* such a look is under way (the queue is its) */
	size_t pass_left_out;	/* folders it left out so far */
	size_t left_out;	/* what the last whole look left out */
	worktree_folder_fn *folder_fn;	/* told of each folder looked at */
	void *folder_data;
	struct kidx *kidx;	/* the worktree tree's keys (wt_find_key) */
	struct plan *plan;	/* an apply cut short, to go on with */
	char *node;		/* this replica's name (uidslots) */
	int uid_slot;		/* format 2: the UID slot; -1: claim one */
	struct strvec dv_stale;	/* format 2: folders an apply found stale,
				   whose uidnext the next commit raises */
	/* format 2: the folders wt_dv_make_folder() made, each with our
	 * uidlist lock in it, until the apply takes the lock over */
	struct strvec made;
	struct dovecot_lock *made_lock;
	size_t amade;
};

struct dovecot_lock;

/* --- reading trees (worktree.c) ----------------------------------------- */

/* A message found in a tree. */
struct hit {
	char *folder;
	const char *sub;
	char *name;
	struct oid oid;
};

struct hitv {
	struct hit *v;
	size_t n, alloc;
};

/*
 * mtime records of a tree, read a shard at a time as needed, from its
 * mtimes/ tree read once (not from the root each time: the root of
 * thousands of folders is the largest tree there is).
 */
struct mtcache {
	const struct oid *tree;
	git_tree *dir;		/* mtimes/, once read; NULL: none */
	bool dir_read;
	struct mtimes m[256];
	bool loaded[256];
};

/* One path that differs between two trees. */
struct dchange {
	char *path;
	struct oid old, new;
	bool has_old, has_new;
};

struct dchv {
	struct dchange *v;
	size_t n, alloc;
};

/* The directory of folder's sub on disk, or of the folder when sub is NULL. */
char *wt_disk_dir(const struct worktree *wt, const char *folder,
		  const char *sub);

/*
 * Split a tree path (layout_parse_tree_path) into new strings, sub being
 * one of subs[]; E_INVALID when it is not a message's path.
 */
int wt_parse_msg_path(const char *path, char **folder, const char **sub,
		      char **name);

/* Does folder exist on disk (layout.h's rule)? */
bool wt_folder_on_disk(const struct worktree *wt, const char *folder);

/*
 * The tree at path under root (path "" or NULL: root itself); *out NULL
 * when there is none.  The caller frees *out.
 */
int wt_subtree(git_tree **out, struct repo *r, const struct oid *root,
	       const char *path);

/*
 * The tree at path under the open tree root; *out NULL when there is
 * none.  The caller frees *out.
 */
int wt_subtree_of(git_tree **out, struct repo *r, git_tree *root,
		  const char *path);

/* Free what the hits own; h is empty and usable again. */
void wt_hitv_clear(struct hitv *h);

/* Every message with key in the tree root, in any folder. */
int wt_tree_find_key(struct hitv *out, struct repo *r, const struct oid *root,
		     const char *key, size_t klen);

/* A cache of tree's mtime records, nothing read yet; tree is kept by
 * pointer and must outlive it. */
void wt_mtcache_init(struct mtcache *c, const struct oid *tree);
void wt_mtcache_release(struct mtcache *c);

/* The mtime the tree gives key (MTIME_NONE when it gives none). */
long long wt_mtcache_get(struct mtcache *c, struct repo *r,
			 const char *key, size_t klen);

/* Free the changes' paths and the vector; d is empty and usable again. */
void wt_dchv_clear(struct dchv *d);

/*
 * The blobs that differ between trees a and b (either may be NULL: the
 * empty tree), through treediff: the cost is that of the changed shards.
 */
int wt_diff_walk(struct repo *r, const struct oid *a, const struct oid *b,
		 struct strbuf *prefix, struct dchv *out);

/*
 * wt_tree_find_key() on the worktree's tree: through the index when the tree
 * has many folders, else directly.
 */
int wt_find_key(struct worktree *wt, struct hitv *out, const struct oid *tree,
		git_tree *root, const char *key, size_t klen);

/* --- scanning and resolving (worktree_scan.c) ----------------------------- */

/* One message at one place. */
struct ent {
	char *folder;
	const char *sub;
	char *name;
	size_t klen;
	struct oid oid;
	bool have_oid;
	bool claimed;		/* rm: its key was added elsewhere (a rename) */
	bool rehash;		/* add: new bytes under a known name */
	bool linked;		/* add: a hard link (st_nlink > 1) */
	bool fresh;		/* add: a key no removal or tree explains */
	long long mtime;	/* on disk (add); MTIME_NONE when unknown */
	time_t ctime;		/* add: settling from (wt_seen_since()) */
	char *seen;		/* add: its key in wt->seen; owned */
	char *dname;		/* format 2: the name on disk (with keyword
				   letters) when it is not name; owned */
	bool hold;		/* apply: its folder is stale, leave it */
};

struct entv {
	struct ent *v;
	size_t n, alloc;
};

/* A key whose mtime on disk differs from its record; key is owned. */
struct mtch {
	char *key;
	long long mtime;
};

/* What one scan found, and what it reads the worktree with. */
struct scan {
	struct repo *r;
	const struct oid *wtree;	/* the worktree's tree */
	const struct oid *mtree;	/* mail's tree when it differs, else NULL */
	struct entv rm, add;
	struct mtch *mt;
	size_t nmt, amt;
	struct strvec mk_add, mk_rm;	/* folders whose marker comes, goes */
	int subs;			/* 1 set to subs_oid, -1 removed */
	struct oid subs_oid;
	struct strmap scanned;		/* folders looked at whole */
	struct strvec later;		/* names held back */
	struct strvec held_rm;		/* folders with removals held back */
	struct mtcache wmt;
	git_tree *root;			/* the worktree's tree, once read */
	git_tree *mroot;		/* mail's, when it differs */
	size_t nfolders;		/* mail's folders and those admitted */
	bool counted;			/* nfolders is known */
	size_t seen;			/* files listed */
	bool temp_error;
	struct strvec unreadable;	/* files that could not be read */
	const struct strvec *was_unreadable;	/* the last commit's */
	bool partial;			/* a slice: some folders are left */
	bool imap;			/* format 2: names on disk carry
					   keyword letters the tree lacks */
	struct dvscan *dv;		/* format 2: keywords and records */
};

/* Append a copy of folder and name (sub is one of subs[], kept by
 * pointer), mtime unknown; the entry is ev's, valid until the next push. */
struct ent *wt_entv_push(struct entv *ev, const char *folder,
			 const char *sub, const char *name);
/* Free what e owns. */
void wt_ent_release(struct ent *e);
/* Release every entry and free the vector; ev is empty and usable. */
void wt_entv_clear(struct entv *ev);

/* Order by key, then folder, sub and name: deterministic everywhere. */
int wt_ent_cmp(const void *a, const void *b);

/* An empty scan of the disk against wtree (kept by pointer). */
void wt_scan_init(struct scan *sc, struct repo *r, const struct oid *wtree);
void wt_scan_release(struct scan *sc);

/* The worktree's tree, read once per scan; NULL when it cannot be. */
git_tree *wt_scan_root_tree(struct scan *sc);

/*
 * Look at one name in folder/sub; shard is the worktree's shard tree that
 * would hold it (NULL: there is none).
 */
int wt_scan_name(struct worktree *wt, struct scan *sc, const char *folder,
		 const char *sub, const char *name, git_tree *shard);

/* Does the worktree's tree hold folder (marker or not)?  < 0 on error. */
int wt_in_worktree(struct scan *sc, const char *folder);

/*
 * Compare a whole folder with the worktree: 0, 1 when folder_limit
 * leaves it out (nothing of it is read), < 0 on error.  in_pass: it comes
 * from a look at the root (the queue).  A folder that is part of the
 * mailbox is told to wt->folder_fn (the daemon watches it) before it is
 * read, so nothing changes unseen.
 */
int wt_scan_folder(struct worktree *wt, struct scan *sc, const char *folder,
		   bool in_pass);

/* The folders the worktree tree knows. */
int wt_tree_folders(struct strvec *out, struct repo *r, const struct oid *tree);

/*
 * The subscriptions file, and a look at the root: the folders to look at
 * whole (those that came or went, or all of them with all) go to
 * wt->queue in name order, and the look is under way (wt->pass) until
 * the queue is done.  Listing the root reads no folder: the folders are
 * looked into a slice at a time, from the queue.
 */
int wt_scan_root(struct worktree *wt, struct scan *sc, bool all);

/* e's key against key (klen bytes), as memcmp(3) orders them. */
int wt_key_cmp(const struct ent *e, const char *key, size_t klen);

/* Do two entries name the same file (a rewrite in place)? */
bool wt_same_place(const struct ent *a, const struct ent *b);

/*
 * Pair what the scan removed and added: a key in both is a rename and
 * keeps its blob; a copy, a half-done move and new bytes under a known
 * name are told apart (a copy gets a key of its own on disk).  0, or < 0
 * (logged).
 */
int wt_resolve(struct worktree *wt, struct scan *sc);

/* --- moves under a new name (worktree_moves.c) ---------------------------- */

/* Hold a back for a later look (by its name on disk). */
void wt_hold_back(struct scan *sc, const struct ent *a);

/*
 * The time an addition's settling is counted from: the earlier of st's
 * ctime and when a scan first saw its inode in folder (wt->seen); its
 * key in *key (the caller frees it).  A commit forgets the additions
 * it takes in, so the same file back in that folder later is new.
 */
time_t wt_seen_since(struct worktree *wt, const char *folder,
		     const struct stat *st, char **key);
/* Forget the inodes first seen before now - age seconds. */
void wt_seen_prune(struct worktree *wt, time_t now, time_t age);

/*
 * Is the addition a, whose key the worktree does not hold, half of a
 * move in progress: a hard link (Dovecot's MOVE and COPY link the file,
 * then unlink the source) younger than LINK_SETTLE?  Then it is held
 * back (true), to meet the removal of its source.
 */
bool wt_hold_link(struct scan *sc, const struct ent *a, time_t now);

/*
 * A MOVE that gave the message a new name (Dovecot's does when the
 * destination knows the old base name, or the message's GUID is not
 * its base name).  An addition whose key nothing explains (fresh) is
 * that move when it has the bytes of a removal of the scan, or when its
 * dovecot-uidlist record names as its GUID a key the worktree holds
 * and the disk no longer does; while that key's file is still on disk
 * the addition is held back (up to LINK_SETTLE), as the source's unlink
 * is to come.  The file is renamed back to the old key, its record
 * following (the same UID, E5), so the change is one move and the
 * message keeps its identity.  0, or E_TEMP.
 */
int wt_pair_moves(struct worktree *wt, struct scan *sc);

/* --- committing (worktree_commit.c) --------------------------------------- */

/* One key's change: where the worktree had it, where the disk has it. */
struct pair {
	struct ent *from, *to;
};

/* mtime changes with owned keys, for mtimes_update(). */
struct mlist {
	struct mtime_change *v;
	size_t n, alloc;
	struct strvec keys;
};

/* Record key (klen bytes, copied) at mtime (MTIME_NONE: gone). */
void wt_mlist_add(struct mlist *l, const char *key, size_t klen,
		  long long mtime);
void wt_mlist_release(struct mlist *l);

/* Count one change: from NULL an addition, to NULL an expunge, another
 * folder or sub a move, else a flag change. */
void wt_counts_add(struct worktree_counts *c, const struct ent *from,
		   const struct ent *to);
/* The counts as a commit message's words ("2 added, 1 moved"), or "no
 * change". */
void wt_counts_text(struct strbuf *out, const struct worktree_counts *c);

/* Add to ups the message's tree path with oid, or its removal when oid
 * is NULL. */
void wt_add_path(struct update_list *ups, const char *folder,
		 const char *sub, const char *name, const struct oid *oid);

/*
 * refs/maildag/worktree and refs/heads/mail, and their trees.  A missing
 * mail is an error; a missing worktree ref is made, an empty tree (the
 * disk is read as new).  0, or < 0 (logged).
 */
int wt_read_refs(struct worktree *wt, struct oid *w, struct oid *wtree,
		 struct oid *m, struct oid *mtree);

/* --- applying (worktree_apply.c) ------------------------------------------- */

/* One message's change from the worktree to mail. */
struct op {
	struct ent *from, *to;	/* from: in the worktree; to: in mail */
};

/* Free an apply cut short (NULL: nothing). */
void wt_plan_free(struct plan *pl);

/* --- format 2: Dovecot's files (worktree_dovecot.c) ------------------------ */

#define DV_LOCK_MS 10000	/* waiting for Dovecot's uidlist lock */

/* Is tree a format 2 tree (its FORMAT says "maildag 2")? */
bool wt_dv_tree_is_imap(struct repo *r, const struct oid *tree);

/* The disk name of an entry: dname when set, else name. */
static inline const char *wt_ent_disk(const struct ent *e)
{
	return e->dname ? e->dname : e->name;
}

/*
 * Append disk name disk of sub ("cur" or "new") without its keyword
 * letters 'a'-'z' (the tree's name); in new/, without the info too when
 * letters were all it had, or nothing.
 */
void wt_dv_tree_name(struct strbuf *out, const char *sub, const char *disk);
/* Touch the folder dir's cur/: Dovecot reads its uidlist again (1.3). */
void wt_dv_touch_cur(const char *dir);

/* A tree's message records (imap/<xx>), read a shard at a time. */
struct reccache {
	const struct oid *tree;
	struct imap_recs s[256];
	bool loaded[256];
	bool changed[256];	/* wt_rc_write() writes these */
};

struct imap_folder;
struct imap_slots;
void wt_rc_init(struct reccache *c, const struct oid *tree);
void wt_rc_release(struct reccache *c);
/* Shard s, read on first use (unreadable: empty, with a warning). */
struct imap_recs *wt_rc_shard(struct reccache *c, struct repo *r, unsigned s);
/* The record of key, or NULL. */
const struct imap_rec *wt_rc_get(struct reccache *c, struct repo *r,
				 const char *key, size_t klen);
/* The changed shards as updates of ups.  0 or E_TEMP. */
int wt_rc_write(struct reccache *c, struct repo *r, struct update_list *ups);
/* A folder's record in tree: 0, or E_NOTFOUND. */
int wt_folder_rec(struct imap_folder *out, struct repo *r,
		  const struct oid *tree, const char *folder);
/* The update setting folder's record to f.  0 or E_TEMP. */
int wt_folder_rec_update(struct update_list *ups, struct repo *r,
			 const char *folder, const struct imap_folder *f);
/*
 * This replica's UID slot (worktree_set_uid_slot(), else its uidslots
 * line in tree, else the lowest free one: *add, the line must be added;
 * slots holds tree's table).  < 0 (logged) when none is left.
 */
int wt_our_slot(struct worktree *wt, const struct oid *tree, bool *add,
		struct imap_slots *slots);
/* The update of uidslots with (slot, node) added to slots. */
int wt_slots_update(struct update_list *ups, struct repo *r,
		    struct imap_slots *slots, int slot, const char *node);
/* The keyword letters 'a'-'z' of a disk name, as a bit set. */
uint32_t wt_letter_bits(const char *disk);

/* The scan's format 2 state (sc->dv), made by the first call. */
void wt_dv_scan_release(struct scan *sc);

/*
 * A file on disk under dname whose tree name the worktree holds: do the
 * keyword names of its letters differ from the worktree's record?
 */
bool wt_dv_keywords_differ(struct worktree *wt, struct scan *sc,
			   const char *folder, const char *dname);

/*
 * The name on disk of the worktree's message folder/sub/tname: the file
 * whose key is tname's in that directory; NULL when there is none.
 */
char *wt_dv_disk_name(struct worktree *wt, struct scan *sc,
		      const char *folder, const char *sub, const char *tname);

/*
 * Rename folder/sub's file from to to (rename_noreplace) under Dovecot's
 * lock, its dovecot-uidlist record following it: the same UID under the
 * new base name, "G<old base>" keeping Dovecot's GUID (E5).  0,
 * E_NOTFOUND when from is gone, E_TEMP (logged) otherwise.
 */
int wt_dv_rekey(struct worktree *wt, const char *folder, const char *sub,
		const char *from, const char *to);

/*
 * The name on disk of folder/sub's message whose tree name is tname,
 * found by listing the directory; NULL when there is none.
 */
char *wt_dv_find_disk(struct worktree *wt, const char *folder,
		      const char *sub, const char *tname);

/*
 * Does Dovecot's dovecot-uidlist in folder give a UIDVALIDITY other than
 * the worktree's record of the folder?  Then the folder was made anew
 * (deleted or renamed away, and made again): what the worktree had
 * there and the disk has not is gone for good, not held back.  Read
 * without the lock: commit_folder() looks again under it.
 */
bool wt_dv_reborn(struct worktree *wt, struct scan *sc, const char *folder);

/*
 * Commit side: add to ups the records (imap/<xx>, imapfolder, uidslots)
 * of the np changes of p on the worktree tree wtree, reading each changed
 * folder's dovecot-uidlist and dovecot-keywords under Dovecot's lock and
 * numbering files without a record there (doc/imap-identity.md 4.1).
 * mk_add, mk_rm: folders made and gone.  names: the marks of this
 * commit ("<folder>/<sub>/<name>"): their folders and those the scan
 * looked at whole get their folder records read as well, so uidnext
 * follows Dovecot's next UID where no file changed.  0 or E_TEMP (logged).
 */
int wt_dv_commit(struct worktree *wt, struct scan *sc, const struct pair *p,
		 size_t np, const struct strvec *names,
		 struct update_list *ups);

/*
 * Apply side.  wt_dv_plan_records() adds to olds/news the messages whose
 * record alone changed between wtree and mtree (keywords, UID), from the
 * changes d; wt_dv_apply_begin() then takes the lock of every folder the
 * ops touch (and those whose folder record in d came or changed), drops
 * stale folders (their ops get hold), gives each op its
 * disk names and writes dovecot-keywords and dovecot-uidlist (last: the
 * ops end the plan, so N may be raised to mail's uidnext);
 * wt_dv_apply_end() takes out the records of files the apply left out,
 * releases the locks and commits the numbering of unnumbered records as
 * a local commit.  wt_dv_make_folder() makes a new folder appear with
 * our uidlist lock already in it (0 also when it cannot: the caller
 * makes the folder then); wt_dv_apply_begin() takes that lock over, and
 * wt_dv_made_release() releases those an apply did not reach.
 */
struct dvapply;
/*
 * Put the ops whose message mail leaves unnumbered last (their order
 * kept): numbering one raises Dovecot's next UID, which a numbered
 * message of a later slice must stay above.
 */
void wt_dv_order_ops(struct worktree *wt, const struct oid *mtree,
		     struct op *ops, size_t nops);
int wt_dv_plan_records(struct worktree *wt, const struct dchv *d,
		       const struct oid *wtree, const struct oid *mtree,
		       struct entv *olds, struct entv *news);
int wt_dv_apply_begin(struct dvapply **out, struct worktree *wt,
		      const struct oid *wtree, const struct oid *mtree,
		      struct op *ops, size_t nops, const struct dchv *d,
		      bool last);
int wt_dv_make_folder(struct worktree *wt, const char *folder);
void wt_dv_made_release(struct worktree *wt);
int wt_dv_apply_end(struct dvapply *dv, struct update_list *wu,
		    const struct oid *w2, const struct oid *m, bool whole);
/*
 * An apply that wrote part of the plan: wt_dv_applied() notes each op
 * done; wt_dv_applied_updates() adds to wu the worktree's records of
 * those messages (mail's) and, for every folder written, a folder record
 * whose uidnext is Dovecot's next UID now, so the next slice does not
 * find the folder stale by what this one wrote.
 */
void wt_dv_applied(struct dvapply *dv, const struct op *op);
int wt_dv_applied_updates(struct dvapply *dv, struct update_list *wu);

#endif
