/*
 * child: the worker processes of maildag-syncd (a fetch, a push, the
 * whole-history check of a peer's commits), forked and never exec'd,
 * each of which writes one result to a pipe that the caller's poll loop
 * reads; so the loop never waits for their work, and their memory is
 * theirs, not the daemon's.
 *
 * In the child: stdin and stdout are /dev/null, stderr is kept, the
 * result pipe is descriptor 3 and every other descriptor is closed (a
 * lock the caller holds, its sockets; libgit2's pack files too unless
 * CHILD_KEEP_PACKS); signal
 * handlers are back to their defaults, SIGPIPE ignored, nothing blocked;
 * the data segment is capped when asked (RLIMIT_DATA: an allocation
 * over it fails, it does not take the machine's memory).  The child's
 * function ends with the child: _exit(0), so no atexit handler or stdio
 * buffer of the caller runs twice.  A child that uses libgit2 either
 * keeps the packs (CHILD_KEEP_PACKS) and goes on with libgit2 as it is,
 * opening repositories of its own (the caller's open ones are not its
 * to touch; their packs, found again by path, are the same files), or
 * starts libgit2 afresh (repo_global_reinit): libgit2 would otherwise
 * read packs through descriptors closed here, or reused.
 *
 * Invariants: the caller reaps every child it spawns, through
 * child_read() at EOF or child_kill(); a child killed that does not die
 * at once is reaped later by child_reap(), never waited for.
 */
#ifndef CHILD_H
#define CHILD_H

#include <stdbool.h>
#include <sys/types.h>

#include "strbuf.h"

/* The descriptor a child writes its result to. */
#define CHILD_RESULT_FD 3

enum child_flags {
	/* SIGKILL when the caller dies (Linux: PR_SET_PDEATHSIG) */
	CHILD_DIE_WITH_PARENT = 1 << 0,
	/*
	 * descriptor 3 and *fd are the two ends of a stream socket pair,
	 * both ways, instead of a pipe (a worker that is told things)
	 */
	CHILD_SOCKET = 1 << 1,
	/*
	 * the pack files the caller's libgit2 holds open stay open, so the
	 * child may go on with libgit2 as it inherited it instead of
	 * starting it again (repo_global_reinit() frees every pack of
	 * every mailbox in the child, a thousand in a virtual daemon, and
	 * without common/notls.c linked parsed a CA bundle too; doc/virtual.md)
	 */
	CHILD_KEEP_PACKS = 1 << 2,
};

/*
 * In a child spawned with CHILD_KEEP_PACKS: whether its pack descriptors
 * were kept (false when /proc/self/fd could not be listed and every one
 * was closed: then libgit2 must be started afresh, repo_global_reinit).
 */
bool child_kept_packs(void);

/*
 * In a process forked otherwise (a maintenance pass): close every
 * descriptor from lowfd on, but with keep_packs the pack files libgit2
 * holds open.  Whether they were kept: false when /proc/self/fd could
 * not be listed and every one was closed (repo_global_reinit(true)).
 */
bool child_close_fds(int lowfd, bool keep_packs);

/*
 * In a long-lived child: unmap the parent's mappings of repository
 * object files (packs, their indexes, commit-graphs), which the fork
 * copied and nothing in the child will read or free: kept, they hold
 * the disk space of every pack maintenance removes for as long as the
 * child lives.  Call it before the child's libgit2 maps anything of its
 * own, with libgit2 set never to close a pack by itself
 * (repo_global_reinit(true)): its list of the parent's packs goes stale.
 * How many were unmapped.
 */
size_t child_unmap_packs(void);

/* Runs in the child; writes its result to CHILD_RESULT_FD and returns. */
typedef void child_fn(void *arg);

/*
 * Fork a child that runs fn(arg), then _exit(0).  data_limit: its
 * RLIMIT_DATA in bytes, 0 for none.  name (may be NULL): its process
 * name as ps(1) and top(1) show it (at most 15 bytes are kept).  *pid is
 * the child, *fd the read end of its pipe (non-blocking, close-on-exec),
 * to poll for POLLIN.  0, or E_FAIL (logged) when the pipe or the fork
 * fails; then *pid is 0 and *fd -1.
 */
int child_spawn(pid_t *pid, int *fd, unsigned long long data_limit,
		unsigned flags, const char *name, child_fn *fn, void *arg);

/*
 * Read what is available on fd into buf; once buf holds max bytes or
 * more, the rest is read and dropped (a child of ours never writes that
 * much: the caller takes buf->len >= max as no result).  Returns 1 at
 * EOF: fd closed, the child reaped and *wstatus its wait status (-1 when
 * someone else reaped it); 0 when more is to come (poll again).
 */
int child_read(pid_t pid, int fd, struct strbuf *buf, size_t max,
	       int *wstatus);

/*
 * Why a child gave no usable result, from its wait status and whether
 * it wrote anything: "the child process died of signal 9 (Killed)",
 * "... exited with status 70 without a result", "... gave no usable
 * result".  Appended to out.
 */
void child_describe(struct strbuf *out, int wstatus, bool wrote);

/*
 * Kill (SIGKILL) the child and close fd (either may be <= 0 / < 0: left
 * alone).  A child that does not die at once (stuck in uninterruptible
 * I/O on a failing drive) is not waited for: child_reap(), which the
 * caller runs now and then, reaps it later.
 */
void child_kill(pid_t pid, int fd);
void child_reap(void);

#endif
