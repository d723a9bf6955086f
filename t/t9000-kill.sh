#!/bin/sh
test_description='maildag-lda killed at each step, then retried: one copy, clean repository'
. "$abs_top_srcdir/t/test-lib.sh"

command -v strace >/dev/null 2>&1 || test_skip_all 'strace is not installed (it injects the kills)'

# kill_at NAME STRACE-ARGS...: deliver message NAME (no sender, so the
# stored bytes are the input) under strace, which sends SIGKILL at the
# chosen system call; the delivery must not report success
kill_at() {
	name=$1
	shift
	test_message "$name" >"$name.msg"
	got=0
	out=$STRACE_DIR/$name.strace
	as_user strace -f -o "$out" -qq "$@" maildag-lda <"$name.msg" || got=$?
	test "$got" != 0 || { echo "delivery was not killed" >&2; return 1; }
	grep -q "killed by SIGKILL" "$out" || {
		echo "strace did not kill it" >&2; tail "$out" >&2; return 1; }
}

# retry_once NAME: the MTA's retry succeeds and leaves exactly one copy
retry_once() {
	as_user maildag-lda <"$1.msg" &&
	test "$(grep -l "^Subject: test message $1\$" $(mail_files) | wc -l)" = 1 &&
	test "$(for p in $(tree_files); do mgit cat-file blob "refs/heads/mail:$p"; done |
		grep -c "^Subject: test message $1\$")" = 1 &&
	mgit fsck --strict --no-dangling &&
	test_repo_consistent &&
	test -z "$(ls -A "$REPO/maildag/pending")"
}

STRACE_DIR=$TRASH/strace
mkdir -p "$STRACE_DIR" && chown "$TEST_USER" "$STRACE_DIR"

test_expect_success 'setup: a first delivery' '
	test_message first | as_user maildag-lda
'

test_expect_success 'killed after the tmp/ write and the journal, before the rename' '
	# rename 1 publishes the journal entry, rename 2 moves the message
	kill_at tmpwrite -e trace=rename -e inject=rename:signal=KILL:when=2 &&
	test -n "$(ls -A "$REPO/maildag/pending")" &&
	test -z "$(grep -l "test message tmpwrite" $(mail_files))" &&
	retry_once tmpwrite
'

test_expect_success 'killed right after the rename into new/' '
	# rename 3 claims the journal entry, under the writer lock
	kill_at renamed -e trace=rename -e inject=rename:signal=KILL:when=3 &&
	test "$(grep -l "test message renamed" $(mail_files) | wc -l)" = 1 &&
	test -n "$(ls -A "$REPO/maildag/pending")" &&
	retry_once renamed
'

# libgit2 moves each new loose object into place with link(2)
for n in 1 2 3 4 5; do
	test_expect_success "killed during the commit (object write $n)" "
		kill_at commit$n -e trace=link -e inject=link:signal=KILL:when=$n &&
		retry_once commit$n
	"
done

test_expect_success 'killed while refs/heads/mail.lock is held: the stale lock does not block' '
	kill_at reflock -P "$REPO/refs/heads/mail" -e trace=link -e inject=link:signal=KILL:when=1 &&
	test -e "$REPO/refs/heads/mail.lock" &&
	retry_once reflock &&
	! test -e "$REPO/refs/heads/mail.lock"
'

test_expect_success 'killed after the ref update, before the work tree ref' '
	kill_at wtref -P "$REPO/refs/maildag/worktree" -e trace=link -e inject=link:signal=KILL:when=1 &&
	mgit show refs/heads/mail --stat | grep -q "deliver to INBOX" &&
	retry_once wtref
'

test_expect_success 'killed after both refs moved, before the journal entry is removed' '
	# which unlink(2) removes the journal entry: count them in a dry run
	# (twice: the first may also finish what earlier kills left)
	test_message probe1 | as_user strace -f -qq -o "$STRACE_DIR/probe" -e trace=unlink maildag-lda &&
	test_message probe2 | as_user strace -f -qq -o "$STRACE_DIR/probe" -e trace=unlink maildag-lda &&
	n=$(grep -n "maildag/pending/[0-9a-f]\{40\}-" "$STRACE_DIR/probe" | head -n 1 | cut -d: -f1) &&
	test -n "$n" &&
	kill_at journal -e trace=unlink -e inject=unlink:signal=KILL:when=$n &&
	ls "$REPO/maildag/pending" | grep -q "^[0-9a-f]\{40\}-" &&
	mgit log -1 --format=%B refs/heads/mail | grep -q "^Blob: " &&
	retry_once journal
'

test_expect_success 'killed before the rename, never retried: the next delivery cleans up' '
	kill_at lost -e trace=rename -e inject=rename:signal=KILL:when=2 &&
	test_message after-lost | as_user maildag-lda &&
	test -z "$(ls -A "$REPO/maildag/pending")" &&
	test -z "$(ls -A "$MAILDIR/tmp")" &&
	test -z "$(grep -l "test message lost" $(mail_files))" &&
	test_repo_consistent
'

test_expect_success 'a killed delivery that is never retried is finished by the next one' '
	kill_at orphan -e trace=rename -e inject=rename:signal=KILL:when=3 &&
	test_message other | as_user maildag-lda &&
	test "$(grep -l "test message orphan" $(mail_files) | wc -l)" = 1 &&
	tree_files >tree && test "$(wc -l <tree)" = "$(mail_files | wc -l)" &&
	test_repo_consistent &&
	test -z "$(ls -A "$REPO/maildag/pending")"
'

test_expect_success 'the mail client moved the orphan to cur/ before the recovery' '
	kill_at moved -e trace=rename -e inject=rename:signal=KILL:when=3 &&
	f=$(grep -l "test message moved" "$MAILDIR"/new/*) &&
	mv "$f" "$MAILDIR/cur/$(basename "$f"):2,S" &&
	retry_once moved &&
	tree_files | grep -q "^cur/.*:2,S$"
'

test_expect_success 'what a killed delivery left half-way in the journal is cleaned up' '
	name=1700000000.M1P1R0000000000000000Q1.test,S=5 &&
	hex=0123456789abcdef0123456789abcdef01234567 &&
	as_user sh -c "echo half >\"$MAILDIR/new/$name\" &&
		echo new/$name >\"$REPO/maildag/pending/$hex-1700000000.M1P1R0000000000000000Q1.test.w\" &&
		echo x >\"$REPO/maildag/pending/.new-99999999\" &&
		touch -d \"1 hour ago\" \"$REPO/maildag/pending/.new-99999999\"" &&
	test_message after-half | as_user maildag-lda &&
	! test -e "$MAILDIR/new/$name" &&
	test -z "$(ls -A "$REPO/maildag/pending")" &&
	test_repo_consistent
'

test_expect_success 'the mail client moves the message to cur/ while the LDA waits for the lock' '
	as_user flock "$REPO/maildag/lock" sleep 3 &
	sleep 0.5 &&
	test_message waiting >waiting.msg &&
	{ as_user maildag-lda <waiting.msg; echo $? >waiting.status; } &
	for i in $(seq 50); do
		f=$(grep -l "test message waiting" "$MAILDIR"/new/* 2>/dev/null) && break
		sleep 0.1
	done &&
	test -n "$f" &&
	mv "$f" "$MAILDIR/cur/$(basename "$f"):2,S" &&
	wait &&
	test "$(cat waiting.status)" = 0 &&
	retry_once waiting &&
	tree_files | grep -q "^cur/.*:2,S$"
'

# A crash (power loss, not a kill) can cut short what was written but
# not yet synced: a blob, or the trees and commit of a commit that never
# reached the ref (the message file is synced before its rename, but a
# damaged one is caught too).  cut_short FILE... does that.
cut_short() {
	for f in "$@"; do
		truncate -s 5 "$f" || return 1
	done
}

test_expect_success 'a dead delivery whose message is not the bytes its journal names is dropped; the retry stores it once' '
	kill_at cutmsg -e trace=rename -e inject=rename:signal=KILL:when=3 &&
	f=$(grep -l "test message cutmsg" "$MAILDIR"/new/*) &&
	cut_short "$f" &&
	test_message after-cutmsg | as_user maildag-lda &&
	! test -e "$f" &&
	test -z "$(ls -A "$REPO/maildag/pending")" &&
	test_repo_consistent &&
	retry_once cutmsg
'

test_expect_success 'a blob cut short by a crash is written again, not reused' '
	kill_at cutblob -e trace=rename -e inject=rename:signal=KILL:when=2 &&
	hex=$(git hash-object cutblob.msg) &&
	obj=$REPO/objects/$(echo "$hex" | cut -c1-2)/$(echo "$hex" | cut -c3-) &&
	test -f "$obj" &&
	cut_short "$obj" &&
	! mgit cat-file blob "$hex" >/dev/null 2>&1 &&
	retry_once cutblob &&
	mgit cat-file blob "$hex" | cmp - cutblob.msg
'

test_expect_success 'trees a crashed commit left cut short are written again, not reused' '
	touch "$TRASH/before-cuttree" &&
	# links: the blob, then the shard tree, new/ and the root; killed
	# before the root tree, so the retry writes the same two trees again
	kill_at cuttree -e trace=link -e inject=link:signal=KILL:when=4 &&
	trees=$(find "$REPO/objects" -type f -newer "$TRASH/before-cuttree" |
		while read -r o; do
			h=$(echo "$o" | sed "s|.*/objects/\(..\)/|\1|")
			test "$(mgit cat-file -t "$h")" != tree || echo "$o"
		done) &&
	test "$(echo "$trees" | wc -l)" = 2 &&
	cut_short $trees &&
	retry_once cuttree
'

test_done
