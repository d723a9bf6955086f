#!/bin/sh
test_description='maildag-syncd killed at each step of a commit and of an apply, then restarted'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

command -v strace >/dev/null 2>&1 || test_skip_all 'strace is not installed (it injects the kills)'

STRACE_OUT=$TRASH/strace.out
TAB=$(printf '\t')

# syncd_strace STRACE-ARGS...: syncd under strace, which kills it with
# SIGKILL at the chosen system call
syncd_strace() {
	: >"$STRACE_OUT" && chmod 666 "$STRACE_OUT" &&
	before=$(grep -c "watching [0-9]* directories" "$SYNCD_LOG" 2>/dev/null || :) &&
	daemon_start syncd "$SYNCD_LOG" strace -f -qq -o "$STRACE_OUT" "$@" \
		maildag-syncd -v &&
	wait_for "[ \$(grep -c 'watching [0-9]* directories' '$SYNCD_LOG') -gt ${before:-0} ]"
}

# killed: strace killed syncd; then it is restarted and left to settle
killed() {
	wait_for 'grep -q "killed by SIGKILL" "$STRACE_OUT"' || {
		tail -n 5 "$STRACE_OUT" >&2; return 1; }
	daemon_stop syncd &&
	syncd_start &&
	syncd_idle
}

# shard_of KEY: the two hex digits of fnv1a32(KEY) & 0xff
shard_of() {
	printf '%s' "$1" | perl -e '
		my $h = 2166136261;
		for (split //, <STDIN>) { $h ^= ord; $h = ($h * 16777619) % 4294967296 }
		printf "%02x", $h & 255'
}

# key_of PATH: the message key of a path
key_of() { basename "$1" | sed 's/[,:].*//'; }

# no_false_deletions OLD NEW: every message OLD..NEW removes is one the
# user expunged (key in $TRASH/expunged) or one that lives on under the
# same key
no_false_deletions() {
	mgit diff --no-renames --name-status "$1" "$2" | grep -E "(cur|new)/" >diff || :
	grep "^D" diff | while read -r _ p; do
		k=$(key_of "$p")
		grep -qx "$k" "$TRASH/expunged" 2>/dev/null && continue
		grep "^A" diff | grep -q "/$k[,:]" && continue
		grep "^A" diff | grep -q "/$k\$" && continue
		echo "deleted without the user: $p" >&2
		return 1
	done
}

# agree EXPECTED: the disk, refs/heads/mail and the worktree all hold it
agree() {
	disk_state >disk && tree_state >mail &&
	tree_state refs/maildag/worktree >wt &&
	test_cmp "$1" disk && test_cmp "$1" mail && test_cmp "$1" wt &&
	test "$(mail_head)" = "$(worktree_head)" &&
	test_repo_consistent
}

test_expect_success 'setup' '
	syncd_start &&
	: >"$TRASH/expunged"
'

# --- the commit: the mail client changes flags and expunges ----------------

# client_change N STRACE-ARGS...: deliver two messages, let syncd settle,
# then restart it under strace and have Dovecot flag one and expunge the
# other; the disk state after Dovecot in $TRASH/expected
client_change() {
	n=$1
	shift
	test_message "c$n-1" | as_user maildag-lda &&
	test_message "c$n-2" | as_user maildag-lda &&
	imap "SELECT INBOX" >/dev/null &&
	syncd_idle &&
	daemon_stop syncd &&
	before=$(mail_head) && echo "$before" >"$TRASH/before" &&
	syncd_strace "$@" &&
	count=$(imap "SELECT INBOX" "FETCH 1:* FLAGS" | grep -c "FETCH (FLAGS") &&
	ls "$MAILDIR/cur" | sed "s/[,:].*//" | sort >keys.before &&
	imap "SELECT INBOX" "STORE $((count - 1)) +FLAGS (\\Flagged)" \
		"STORE $count +FLAGS (\\Deleted)" "EXPUNGE" >/dev/null &&
	ls "$MAILDIR/cur" | sed "s/[,:].*//" | sort >keys.after &&
	comm -23 keys.before keys.after >>"$TRASH/expunged" &&
	disk_state >"$TRASH/expected"
}

check_commit_repair() {
	agree "$TRASH/expected" &&
	no_false_deletions "$(cat "$TRASH/before")" refs/heads/mail &&
	test "$(mgit rev-list "$(cat "$TRASH/before")..refs/heads/mail" | wc -l)" -le 2
}

n=0
for inj in \
	"-e trace=link -e inject=link:signal=KILL:when=1" \
	"-e trace=link -e inject=link:signal=KILL:when=2" \
	"-e trace=link -e inject=link:signal=KILL:when=3" \
	"-P $REPO/refs/heads/mail -e trace=rename,renameat,renameat2,link -e inject=rename,renameat,renameat2,link:signal=KILL:when=1" \
	"-P $REPO/refs/maildag/worktree -e trace=rename,renameat,renameat2,link -e inject=rename,renameat,renameat2,link:signal=KILL:when=1"
do
	n=$((n + 1))
	test_expect_success "commit killed ($inj)" "
		client_change $n $inj &&
		killed &&
		check_commit_repair
	"
done

# --- the apply: mail changes, as a merge from elsewhere would --------------

# remote_change N STRACE-ARGS...: four messages in cur/; then, with syncd
# under strace, a commit on mail adds one, flags one, moves one to a new
# folder and expunges one; the tree it should give in $TRASH/expected
remote_change() {
	n=$1
	shift
	for i in 1 2 3; do
		test_message "r$n-$i" | as_user maildag-lda || return 1
	done &&
	imap "SELECT INBOX" >/dev/null &&
	syncd_idle &&
	daemon_stop syncd &&
	syncd_strace "$@" &&
	p1=$(tree_path "$(grep -l "test message r$n-1\$" "$MAILDIR"/cur/* | xargs basename)") &&
	p2=$(tree_path "$(grep -l "test message r$n-2\$" "$MAILDIR"/cur/* | xargs basename)") &&
	p3=$(tree_path "$(grep -l "test message r$n-3\$" "$MAILDIR"/cur/* | xargs basename)") &&
	key_of "$p3" >>"$TRASH/expunged" &&
	test_message "r$n-new" >new.msg &&
	blob=$(ugit hash-object -w --stdin <new.msg) &&
	empty=$(ugit hash-object -w --stdin </dev/null) &&
	newname="1600000000.M$n.remote,S=$(wc -c <new.msg)" &&
	shard=$(shard_of "1600000000.M$n.remote") &&
	mail_edit "add new/$shard/$newname $blob" \
		"mv $p1 ${p1%:2,*}:2,FS" \
		"mv $p2 .Remote$n/cur/${p2#cur/}" \
		"add .Remote$n/maildirfolder $empty" \
		"rm $p3" >"$TRASH/edit" &&
	tree_state "$(cat "$TRASH/edit")" >"$TRASH/expected"
}

check_apply_repair() {
	agree "$TRASH/expected" &&
	test "$(mail_head)" = "$(cat "$TRASH/edit")" &&
	test -d "$MAILDIR/.Remote$n/tmp" &&
	test "$(stat -c %Y "$MAILDIR/new/1600000000.M$n.remote,S=$(wc -c <new.msg)")" = 1600000000
}

for inj in \
	"-e trace=renameat2 -e inject=renameat2:signal=KILL:when=1" \
	"-e trace=renameat2 -e inject=renameat2:signal=KILL:when=2" \
	"-e trace=renameat2 -e inject=renameat2:signal=KILL:when=3" \
	"-e trace=unlink,unlinkat -e inject=unlink,unlinkat:signal=KILL:when=1" \
	"-P FOLDER -e trace=mkdir -e inject=mkdir:signal=KILL:when=1" \
	"-P $MAILDIR/cur -e trace=fsync -e inject=fsync:signal=KILL:when=1" \
	"-P $REPO/refs/maildag/worktree -e trace=rename,renameat,renameat2,link -e inject=rename,renameat,renameat2,link:signal=KILL:when=1"
do
	n=$((n + 1))
	inj=$(printf '%s' "$inj" | sed "s|FOLDER|$MAILDIR/.Remote$n|")
	test_expect_success "apply killed ($inj)" "
		remote_change $n $inj &&
		killed &&
		check_apply_repair
	"
done

test_expect_success 'a delivery maildag-lda did not live to commit: syncd commits it, the retry adds nothing' '
	test_message orphan >orphan.msg &&
	: >lda.strace && chmod 666 lda.strace &&
	# killed after the rename into new/, claiming its journal entry
	{ as_user strace -f -qq -o "$TRASH/lda.strace" \
		-e trace=rename -e inject=rename:signal=KILL:when=3 \
		maildag-lda <orphan.msg; test $? != 0; } &&
	grep -q "killed by SIGKILL" lda.strace &&
	wait_for "test -z \"\$(ls -A \"\$REPO/maildag/pending\")\"" &&
	syncd_idle &&
	mgit log -1 --format=%B refs/heads/mail >msg && cat msg &&
	grep -q "^Blob: [0-9a-f]*\$" msg &&
	as_user maildag-lda <orphan.msg &&
	test "$(grep -l "test message orphan" $(mail_files) | wc -l)" = 1 &&
	syncd_idle &&
	test_repo_consistent
'

test_expect_success 'a restart of syncd alone does not check the loose objects again' '
	grep -q "after a restart of the machine: 0 damaged" "$SYNCD_LOG" &&
	before=$(grep -c "after a restart of the machine" "$SYNCD_LOG") &&
	daemon_stop syncd &&
	syncd_start && syncd_idle &&
	test "$(grep -c "after a restart of the machine" "$SYNCD_LOG")" = "$before"
'

test_expect_success 'after a restart of the machine, a blob a crash cut short is not reused' '
	daemon_stop syncd &&
	test_message cutblob >cutblob.msg &&
	: >lda.strace && chmod 666 lda.strace &&
	{ as_user strace -f -qq -o "$TRASH/lda.strace" \
		-e trace=rename -e inject=rename:signal=KILL:when=3 \
		maildag-lda <cutblob.msg; test $? != 0; } &&
	hex=$(git hash-object cutblob.msg) &&
	obj=$REPO/objects/$(echo "$hex" | cut -c1-2)/$(echo "$hex" | cut -c3-) &&
	truncate -s 5 "$obj" &&
	# another boot id: the machine restarted (after the crash)
	echo 00000000-0000-0000-0000-000000000000 >"$REPO/maildag/boot-id" &&
	syncd_start && syncd_idle &&
	grep "after a restart of the machine: 1 damaged" "$SYNCD_LOG" &&
	mgit cat-file blob "$hex" | cmp - cutblob.msg &&
	as_user maildag-lda <cutblob.msg &&
	test "$(grep -l "test message cutblob" $(mail_files) | wc -l)" = 1 &&
	syncd_idle &&
	test_repo_consistent
'

test_expect_success 'a killed syncd left no stale lock behind' '
	! test -e "$REPO/refs/heads/mail.lock" &&
	! test -e "$REPO/refs/maildag/worktree.lock" &&
	test_message last | as_user maildag-lda &&
	syncd_idle
'

test_done
