/*
 * child-packs-t: a process forked from one whose libgit2 read more packs
 * than it keeps open at once (REPO_PACKS_MAPPED) goes on with libgit2
 * without libgit2 ever closing a descriptor that is not one of its packs.
 *
 * libgit2 1.5.1 keeps its list of open pack files across a shutdown, and
 * past the limit closes the least recently used one's descriptor: in a
 * child that had closed the parent's descriptors, a number it had reused
 * since (the maintenance pass failed with "failed to mmap ... Bad file
 * descriptor" on a repository of hundreds of packs).  Here the child
 * fills the low descriptor numbers with /dev/null before it reads the
 * packs again: each of those closed behind its back is that bug.
 */
#include "autoconf.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tap.h"
#include "child.h"
#include "log.h"
#include "oid.h"
#include "repo.h"
#include "strbuf.h"
#include "xalloc.h"

#define NPACKS 200
#define NSENTINELS 300

static struct oid ids[NPACKS];

/* Read every blob; how many could not be. */
static int read_all(struct repo *r)
{
	struct strbuf b = STRBUF_INIT;
	int bad = 0;

	for (int i = 0; i < NPACKS; i++) {
		strbuf_reset(&b);
		if (repo_blob_read(&b, r, &ids[i]) < 0)
			bad++;
	}
	strbuf_release(&b);
	return bad;
}

/*
 * In a child: close the descriptors as keep_packs says, start libgit2
 * again, take the low numbers, read every pack.  Exit 0 when every read
 * worked and no descriptor of ours was closed, 1 when a read failed, 2
 * when a sentinel was closed.
 */
static int child(const char *repo_path, bool keep_packs)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		log_fatal("fork");
	if (pid == 0) {
		struct repo *r = NULL;
		int fds[NSENTINELS], n = 0, bad;
		bool kept = child_close_fds(3, keep_packs);

		if (repo_global_reinit(!kept) < 0)
			_exit(3);
		while (n < NSENTINELS &&
		       (fds[n] = open("/dev/null", O_RDONLY)) >= 0)
			n++;
		if (repo_open(&r, repo_path, 0) < 0)
			_exit(3);
		bad = read_all(r);
		for (int i = 0; i < n; i++)
			if (fcntl(fds[i], F_GETFD) < 0)
				_exit(2);
		repo_free(r);
		_exit(bad ? 1 : 0);
	}
	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void)
{
	char tmpl[] = "/tmp/child-packs-t.XXXXXX", *dir, *cmd, *repo_path,
	     hex[64];
	struct repo *r = NULL;
	FILE *f;
	int n = 0;

	log_init("child-packs-t", LOG_TO_STDERR, LOG_LVL_WARN);
	if (!(dir = mkdtemp(tmpl)))
		log_fatal("mkdtemp");
	repo_path = xasprintf("%s/r.git", dir);
	/* NPACKS blobs, each in a pack of its own */
	cmd = xasprintf("cd '%s' && git init -q --bare r.git && "
			"for i in $(seq %d); do "
			"echo blob $i | git --git-dir=r.git hash-object -w --stdin |"
			" tee -a ids |"
			" git --git-dir=r.git pack-objects -q r.git/objects/pack/pack"
			" >/dev/null || exit 1; done && "
			"git --git-dir=r.git prune-packed", dir, NPACKS);
	if (system(cmd) != 0)
		log_fatal("cannot make the repository");
	free(cmd);
	cmd = xasprintf("%s/ids", dir);
	if (!(f = fopen(cmd, "r")))
		log_fatal("cannot read the ids");
	while (n < NPACKS && fscanf(f, "%63s", hex) == 1 &&
	       oid_fromstr(&ids[n], hex) == 0)
		n++;
	fclose(f);
	free(cmd);
	if (n != NPACKS)
		log_fatal("read %d ids of %d", n, NPACKS);

	/* the parent: every pack read, at most REPO_PACKS_MAPPED open */
	if (repo_global_init() < 0 || repo_open(&r, repo_path, 0) < 0)
		log_fatal("cannot open the repository");
	ok(read_all(r) == 0, "the parent reads the %d packs", NPACKS);

	ok(child(repo_path, true) == 0,
	   "a child that kept libgit2's packs and started it again: every "
	   "read works, none of its own descriptors closed");
	ok(child(repo_path, false) == 0,
	   "a child that closed them all: the same (libgit2 closes no pack "
	   "file in it)");
	ok(read_all(r) == 0, "the parent reads them all again");

	repo_free(r);
	cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		log_warn("cannot remove %s", dir);
	free(cmd);
	free(repo_path);
	return tap_done();
}
