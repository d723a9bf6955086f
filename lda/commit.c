/*
 * commit: maildag-lda's group commit.  Whoever holds the writer lock
 * commits every journalled delivery whose message is in the Maildir, in
 * one commit, and removes those entries: deliveries that queue behind
 * the lock are committed together.  The journal's protocol is described
 * in common/journal.c; what is decided here is each entry's fate.
 */
#include "autoconf.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery.h"
#include "folder.h"
#include "format.h"
#include "mtimes.h"
#include "fsutil.h"
#include "lda.h"
#include "log.h"
#include "maildir_name.h"
#include "strbuf.h"
#include "worktree.h"
#include "xalloc.h"

struct pending {
	char *entry;		/* path of the claimed journal entry */
	char *folder;		/* "" for INBOX */
	char *sub;		/* "new" or "cur" */
	char *name;		/* file name in the Maildir */
	char *file;		/* full path of the message */
	struct oid blob;
	bool alive;		/* its writer still runs (or is the committer) */
	bool dropped;		/* cut short by a crash: not committed */
};

static void pending_release(struct pending *p)
{
	free(p->entry);
	free(p->folder);
	free(p->sub);
	free(p->name);
	free(p->file);
}

/*
 * Find a message with key in folder's cur/ (the mail client may have
 * moved an interrupted delivery there).  Returns its name or NULL.
 */
static char *find_in_cur(const struct mailbox *mb, const char *folder,
			 const char *key)
{
	char *dir = mailbox_folder_path(mb, folder);
	char *cur = xasprintf("%s/cur", dir);
	size_t klen = strlen(key);
	char *found = NULL;
	struct dirent *de;
	DIR *d = opendir(cur);

	while (d && (de = readdir(d))) {
		if (!strncmp(de->d_name, key, klen) &&
		    (de->d_name[klen] == ',' || de->d_name[klen] == ':' ||
		     de->d_name[klen] == '\0')) {
			found = xstrdup(de->d_name);
			break;
		}
	}
	if (d)
		closedir(d);
	free(cur);
	free(dir);
	return found;
}

/* What the group commit collects, then writes. */
struct group {
	const struct mailbox *mb;
	struct repo *r;
	struct oid head, tree;	/* refs/heads/mail before, and its tree */
	struct pending *ps;	/* the deliveries to commit */
	size_t n, alloc;
	bool recovering;	/* a writer died: a crash, maybe */
	struct repo_update *ups;	/* their tree paths and blobs */
	size_t nups;		/* n, and format 2's record updates */
	struct update_list recs;	/* format 2: the records */
	struct strbuf *paths;
	struct oid new_tree, commit;	/* what was written */
};

static void group_release(struct group *g)
{
	for (size_t i = 0; i < g->n; i++) {
		pending_release(&g->ps[i]);
		if (g->paths)
			strbuf_release(&g->paths[i]);
	}
	free(g->paths);
	free(g->ps);
	free(g->ups);
	update_list_release(&g->recs);
}

/*
 * Format 2: the records of the group's messages (doc/imap-identity.md
 * 4.1), from each folder's dovecot-uidlist under Dovecot's lock, after
 * the message paths in g->ups.
 */
static int add_records(struct group *g)
{
	const char **folders = xcalloc(g->n + 1, sizeof *folders);
	const char **names = xcalloc(g->n + 1, sizeof *names);
	int ret;

	for (size_t i = 0; i < g->n; i++) {
		folders[i] = g->ps[i].folder;
		names[i] = g->ps[i].name;
	}
	ret = worktree_dovecot_records(&g->recs, g->r, &g->tree,
				       g->mb->maildir, g->mb->cfg->node,
				       g->mb->cfg->uid_slot, folders, names,
				       g->n);
	free(folders);
	free(names);
	if (ret < 0)
		return E_FAIL;
	g->ups = xrealloc(g->ups, (g->n + g->recs.n) * sizeof *g->ups);
	for (size_t i = 0; i < g->recs.n; i++)
		g->ups[g->n + i] = g->recs.v[i];
	g->nups = g->n + g->recs.n;
	return 0;
}

/*
 * Decide the fate of a claimed journal entry (journal_claim_fn): commit
 * it (where is its message?), give it back to its writer, or drop it.
 */
static enum journal_verdict decide(struct journal_claim *c, void *data)
{
	struct group *g = data;
	struct pending p = { 0 };
	enum journal_verdict v = JOURNAL_DROP;
	char *key = xstrndup(c->name, maildir_key_len(c->name));
	char *fdir = mailbox_folder_path(g->mb, c->folder);

	p.file = xasprintf("%s/new/%s", fdir, c->name);
	/*
	 * Only a dead writer's entry can name a message that is committed
	 * already (it died after the ref moved): look in the tree for
	 * those alone, so the usual delivery reads no shard tree here.
	 */
	if (!c->alive && mailbox_tree_has_key(g->r, &g->tree, c->folder, key)) {
		/* committed before its writer died, or by syncd since */
	} else if (path_exists(p.file)) {
		p.sub = xstrdup("new");
		p.name = xstrdup(c->name);
		v = JOURNAL_COMMIT;
	} else if (c->alive && !c->mine) {
		/* about to rename its message into new/: give it back */
		v = JOURNAL_GIVE_BACK;
	} else if (c->mine &&
		   mailbox_tree_has_key(g->r, &g->tree, c->folder, key)) {
		/* moved by the client and committed by syncd meanwhile */
	} else if ((p.name = find_in_cur(g->mb, c->folder, key))) {
		/* the mail client moved it to cur/ already */
		free(p.file);
		p.sub = xstrdup("cur");
		p.file = xasprintf("%s/cur/%s", fdir, p.name);
		v = JOURNAL_COMMIT;
	} else {
		/* died before the rename, or expunged already */
		char *tmp = xasprintf("%s/tmp/%s", fdir, key);
		unlink(tmp);
		free(tmp);
	}
	if (v == JOURNAL_COMMIT) {
		p.entry = c->path;
		p.folder = c->folder;
		oid_cpy(&p.blob, &c->blob);
		p.alive = c->alive;
		free(c->name);
		log_debug("committing %s", p.name);
		xgrow((void **)&g->ps, &g->alloc, g->n + 1, sizeof *g->ps);
		g->ps[g->n++] = p;
	} else {
		pending_release(&p);
	}
	free(fdir);
	free(key);
	return v;
}

/*
 * Check the objects a commit just written names on the paths of ups
 * (repo_object_check): 0, or E_INVALID when one was damaged and removed.
 */
static int check_written(struct repo *r, const struct oid *commit,
			 const struct oid *tree, const struct repo_update *ups,
			 size_t n)
{
	int ret = 0, c;

	if ((c = repo_object_check(r, commit, NULL)) < 0 ||
	    (c = repo_object_check(r, tree, NULL)) < 0)
		return c;
	for (size_t i = 0; i < n && ret == 0; i++) {
		char *path = xstrdup(ups[i].path);
		/* from the top down: a tree is read only once it is checked */
		for (char *slash = strchr(path, '/'); slash && ret == 0;
		     slash = strchr(slash + 1, '/')) {
			struct oid id;
			*slash = '\0';
			if (repo_tree_lookup(&id, r, tree, path) < 0)
				ret = E_FAIL;
			else if ((c = repo_object_check(r, &id, NULL)) < 0)
				ret = c;
			*slash = '/';
		}
		free(path);
	}
	return ret;
}

/*
 * A dead writer's message and blob were maybe never synced: after a
 * crash either can be cut short.  Such a message was never acknowledged,
 * so the MTA will bring it again: drop it.
 */
static int drop_cut_short(struct group *g)
{
	size_t w = 0;

	for (size_t i = 0; i < g->n; i++) {
		struct pending *p = &g->ps[i];
		struct oid id;
		if (p->alive)
			continue;
		g->recovering = true;
		if (repo_blob_hash_file(&id, p->file) < 0)
			return E_FAIL;
		if (!oid_equal(&id, &p->blob)) {
			log_warn("dropping '%s': its content is not what was "
				 "delivered (cut short by a crash?)", p->file);
			unlink(p->file);
			journal_done(p->entry);
			p->dropped = true;
		} else if (repo_object_check(g->r, &p->blob, p->file) == E_FAIL) {
			return E_FAIL;
		}
	}
	for (size_t i = 0; i < g->n; i++) {
		if (g->ps[i].dropped)
			pending_release(&g->ps[i]);
		else
			g->ps[w++] = g->ps[i];
	}
	g->n = w;
	return 0;
}

#define ALL_COMMITTED 1

/*
 * Write the trees and the commit of the group: 0, ALL_COMMITTED when the
 * tree already holds every message (a committer died after its commit),
 * or E_FAIL.  After a crash, a tree or commit of the same content may
 * have been left by the attempt that died, cut short: when recovering,
 * what was written is checked, and written again if it was damaged.
 */
static int write_group(struct group *g, const char *email)
{
	struct delivery_record rec = DELIVERY_RECORD_INIT;
	struct strbuf msg = STRBUF_INIT;
	int ret = E_FAIL;

	g->ups = xcalloc(g->n, sizeof *g->ups);
	g->paths = xcalloc(g->n, sizeof *g->paths);
	for (size_t i = 0; i < g->n; i++) {
		struct pending *p = &g->ps[i];
		strbuf_init(&g->paths[i], 0);
		/* a writer that died early may not have stored the blob */
		if (!repo_object_exists(g->r, &p->blob) &&
		    repo_blob_from_file(&p->blob, g->r, p->file) < 0)
			goto done;
		if (format_repo_version() == FORMAT_VERSION_IMAP) {
			/* format 2: the tree's name has no keyword letters */
			struct strbuf tn = STRBUF_INIT;
			worktree_dovecot_tree_name(&tn, p->sub, p->name);
			tree_message_path(&g->paths[i], p->folder, p->sub,
					  tn.buf);
			strbuf_release(&tn);
		} else {
			tree_message_path(&g->paths[i], p->folder, p->sub,
					  p->name);
		}
		g->ups[i].path = g->paths[i].buf;
		g->ups[i].blob = &p->blob;
		delivery_record_add(&rec, p->folder, g->paths[i].buf, &p->blob);
	}
	delivery_record_message(&msg, &rec, NULL);
	g->nups = g->n;
	if (format_repo_version() == FORMAT_VERSION_IMAP &&
	    add_records(g) < 0)
		goto done;
	for (int pass = 0;; pass++) {
		int c = 0;
		if (repo_tree_update(&g->new_tree, g->r, &g->tree, g->ups,
				     g->nups) < 0)
			goto done;
		if (oid_equal(&g->new_tree, &g->tree)) {
			ret = ALL_COMMITTED;
			goto done;
		}
		if (repo_commit(&g->commit, g->r, &g->new_tree, &g->head, 1,
				msg.buf, -1, "maildag-lda", email) < 0)
			goto done;
		if (!g->recovering ||
		    (c = check_written(g->r, &g->commit, &g->new_tree, g->ups,
				       g->nups)) == 0)
			break;
		if (c != E_INVALID || pass == 3)
			goto done;
		/* a damaged object was removed: write it again */
	}
	ret = 0;
done:
	delivery_record_release(&rec);
	strbuf_release(&msg);
	return ret;
}

/*
 * Make everything durable with one syncfs(2): the messages and their
 * renames into new/, the blobs, the trees and the commit, of every
 * delivery in the group.  One flush for all, while the others wait for
 * the lock, where syncing each file would cost one journal commit each.
 */
int make_durable(struct repo *r, const struct mailbox *mb)
{
	struct stat rs, ms;

	if (repo_syncfs(r) < 0)
		return E_FAIL;
	/* the messages are in the Maildir: its file system too */
	if (stat(repo_path(r), &rs) < 0 || stat(mb->maildir, &ms) < 0)
		return log_error_errno("stat '%s'", mb->maildir);
	if (rs.st_dev != ms.st_dev && syncfs_path(mb->maildir) < 0)
		return E_FAIL;
	return 0;
}

int commit_pending(struct repo *r, const struct mailbox *mb,
		   const char *journal, const struct journal_entry *own)
{
	struct group g = { .mb = mb, .r = r };
	char *email = xasprintf("lda@%s", mb->cfg->node);
	int ret = E_FAIL;

	if (repo_ref_read(&g.head, r, REF_MAIL) < 0 ||
	    repo_commit_tree(&g.tree, r, &g.head) < 0)
		goto done;
	if ((ret = journal_claim_all(journal, mb->maildir, own, decide,
				     &g)) < 0 ||
	    (ret = drop_cut_short(&g)) < 0 || g.n == 0)
		goto done;
	ret = write_group(&g, email);
	if (ret == ALL_COMMITTED) {
		for (size_t i = 0; i < g.n; i++)
			journal_done(g.ps[i].entry);
		ret = 0;
		goto done;
	}
	if (ret < 0 || (ret = make_durable(r, mb)) < 0)
		goto done;
	ret = E_FAIL;
	if (repo_ref_cas(r, REF_MAIL, &g.commit, &g.head,
			 "maildag-lda: deliver") < 0 ||
	    repo_sync_ref(r, REF_MAIL) < 0)
		goto done;
	/* the disk now also holds these files: say so, and no more */
	worktree_record_added(r, &g.tree, &g.commit, g.ups, g.nups,
			      "maildag-lda", email);
	for (size_t i = 0; i < g.n; i++) {
		log_info("delivered %s to %s as %.12s", g.ps[i].name,
			 folder_display(g.ps[i].folder),
			 oid_hex(&g.commit));
		journal_done(g.ps[i].entry);
	}
	ret = 0;
done:
	group_release(&g);
	free(email);
	return ret;
}
