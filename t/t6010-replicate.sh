#!/bin/sh
test_description='three replicas converge while mail arrives on each and Dovecot works on the others, over file:// and over ssh'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
if [ -e "$abs_top_srcdir/t/lib-sshd.sh" ] && test_have_prereq ROOT; then
	. "$abs_top_srcdir/t/lib-sshd.sh"
	sshd_start || say "no test sshd: the ssh cases are skipped"
fi
. "$abs_top_srcdir/t/lib-replica.sh"

# deliver I ID: maildag-lda on replica I, retried on 75 as an MTA would
# (the retry must find the first attempt's commit, never make a copy)
deliver() {
	local n=0 st
	while :; do
		st=0
		replica_deliver "$1" "$2" 2>>"$TRASH/lda.err" || st=$?
		case $st in
		0) return 0;;
		75) n=$((n + 1))
		    echo "retry $2 on replica $1" >>"$TRASH/lda.retries"
		    [ $n -lt 5 ] || return 1
		    sleep 1;;
		*) echo "delivery of $2 to replica $1: exit $st" >&2; return 1;;
		esac
	done
}

# flag_if_there I ID FLAGS FOLDER...: STORE +FLAGS on the message in the
# first FOLDER that holds it; nothing if none does any more (another
# replica moved or expunged it and that reached I first)
flag_if_there() {
	local i=$1 id=$2 flags=$3 f
	shift 3
	for f in "$@"; do
		replica_on_message "$i" "$id" "$f" \
			"STORE \$ +FLAGS.SILENT ($flags)" 2>/dev/null && return 0
	done
	echo "flag_if_there: $id was in none of $* on replica $i" >&2
	return 0
}

# scenario PREREQ LABEL: the same story for each replica set
scenario() {
	p=$1 l=$2

	test_expect_success $p "$l: three replicas start and converge" '
		replica_start_all &&
		wait_converged &&
		test "$(replica_head 1)" = "$(replica_head 2)" &&
		test "$(replica_head 1)" = "$(replica_head 3)"
	'

	test_expect_success $p "$l: a delivery to each replica reaches the others" '
		for k in 1 2 3 4 5 6; do
			deliver $(( (k - 1) % 3 + 1 )) m$k || return 1
		done &&
		wait_converged &&
		replica_expect_messages &&
		test "$(replica_state 1 | wc -l)" = 6
	'

	test_expect_success $p "$l: a folder made with Dovecot on one replica appears on all" '
		replica_imap 2 "CREATE Archive" >/dev/null &&
		wait_converged &&
		for i in 1 2 3; do
			test -f "$(replica_maildir $i)/.Archive/maildirfolder" || return 1
		done &&
		replica_imap 3 "LIST \"\" *" | grep -q "Archive"
	'

	test_expect_success $p "$l: deliveries on all three at once while Dovecot flags, moves and expunges" '
		: >"$TRASH/lda.err" &&
		for i in 1 2 3; do
			(
				for k in $(seq $((6 + i)) 3 30); do
					deliver $i m$k || exit 1
				done
			) &
			eval "job$i=\$!"
		done &&
		# on other replicas than the messages came in on, meanwhile
		replica_flag 2 m1 "\\Seen \\Flagged" &&
		replica_move 3 m2 Archive &&
		replica_expunge 1 m3 &&
		replica_flag 3 m4 "\\Answered" &&
		replica_imap 1 "SELECT INBOX" >/dev/null &&
		# the same message on two replicas at once: flag and move,
		# flag and expunge
		{ flag_if_there 3 m5 "\\Answered" INBOX Archive & f1=$!; } &&
		replica_move 2 m5 Archive &&
		{ flag_if_there 2 m6 "\\Flagged" INBOX & f2=$!; } &&
		replica_expunge 1 m6 &&
		replica_imap 3 "SELECT INBOX" >/dev/null &&
		wait $f1 && wait $f2 &&
		wait $job1 && wait $job2 && wait $job3 &&
		{ cat "$TRASH/lda.err" "$TRASH/lda.retries" 2>/dev/null || :; } &&
		wait_converged
	'

	test_expect_success $p "$l: every replica holds the same messages, each once, in the same folders with the same flags" '
		replica_expect_messages &&
		test "$(replica_state 1 | wc -l)" = 28 &&
		for i in 1 2 3; do
			test "$(replica_where $i m1)" = "INBOX FS" &&
			test "$(replica_where $i m2 | cut -d" " -f1)" = .Archive &&
			test -z "$(replica_where $i m3)" &&
			test "$(replica_where $i m4)" = "INBOX R" &&
			test "$(replica_where $i m5)" = ".Archive R" &&
			test -z "$(replica_where $i m6)" &&
			test "$(replica_where $i m30)" = "INBOX -" || {
				echo "replica $i:"; replica_state $i; return 1; }
		done &&
		test "$(replica_state 1 | grep -c "^INBOX ")" = 26 &&
		test "$(replica_state 1 | grep -c "^\.Archive ")" = 2 &&
		replica_state 1 >state.1 &&
		replica_state 2 >state.2 &&
		replica_state 3 >state.3 &&
		test_cmp state.1 state.2 &&
		test_cmp state.1 state.3
	'

	test_expect_success $p "$l: Dovecot on each replica sees the same flags" '
		for i in 1 2 3; do
			replica_imap $i "SELECT INBOX" "FETCH 1:* (FLAGS)" |
				sed -n "s/^\* [0-9]* FETCH (FLAGS (\(.*\)))\$/\1/p" |
				sed "s/ *\\\\Recent//; s/\\\\Recent *//" | sort >flags.$i || return 1
		done &&
		test_cmp flags.1 flags.2 &&
		test_cmp flags.1 flags.3 &&
		grep -x "\\\\Flagged \\\\Seen" flags.1 &&
		test "$(wc -l <flags.1)" = 26
	'

	test_expect_success $p "$l: a flag taken away and an expunge later travel too" '
		replica_unflag 3 m1 "\\Flagged" &&
		replica_expunge 2 m2 Archive &&
		wait_converged &&
		replica_expect_messages &&
		for i in 1 2 3; do
			test "$(replica_where $i m1)" = "INBOX S" &&
			test -z "$(replica_where $i m2)" || return 1
		done
	'

	# A mail client's move that syncd sees in two halves: the file in
	# the new folder first (held back a moment: it may be a COPY), the
	# original's removal half a second later (one process does both, so
	# that a busy machine cannot stretch the gap past the two seconds a
	# copy is held back).  It is one move (see
	# maildag-syncd(8)), and a flag set on another replica meanwhile
	# must survive it (DESIGN 3: "moved to folder F | flags changed: in
	# F with the merged flags").  Were the halves committed apart, an
	# expunge first and an addition later, a merge between the two
	# would let the expunge win over the flag, and the addition would
	# come back as a new message without it.  r2 flags while its syncd
	# is down and starts as soon as r1 has committed something.
	test_expect_success $p "$l: a move seen in two halves is one move: a flag set elsewhere meanwhile survives" '
		deliver 1 m31 &&
		wait_converged &&
		replica_stop 2 &&
		replica_flag 2 m31 "\\Flagged" &&
		before=$(replica_head 1) &&
		md=$(replica_maildir 1) &&
		src=$(grep -rl "^Message-ID: <m31\\." "$md/new" "$md/cur") &&
		key=$(basename "$src" | sed "s/[,:].*//") &&
		sub=$(basename "$(dirname "$src")") &&
		replica_run 1 "$PYTHON" -c "import os, sys, time
os.link(sys.argv[1], sys.argv[2]); time.sleep(0.5); os.unlink(sys.argv[1])" \
			"$src" "$md/.Archive/$sub/${src##*/}" &&
		wait_for "test \"\$(replica_head 1)\" != $before" &&
		replica_start 2 &&
		wait_converged &&
		replica_expect_messages &&
		replica_git 1 log --format="%h %s" --name-status "$before..refs/heads/mail" &&
		for i in 1 2 3; do
			test "$(replica_where $i m31)" = ".Archive F" || {
				echo "replica $i: m31 is at $(replica_where $i m31)"
				return 1; }
		done &&
		for c in $(replica_git 1 rev-list --no-merges "$before..refs/heads/mail"); do
			replica_git 1 diff-tree -r --no-commit-id --name-status "$c" |
				grep "/$key" >change || continue
			if grep -q "^D" change && ! grep -q "^A" change; then
				echo "commit $c expunges m31 and adds it nowhere:"
				cat change
				return 1
			fi
		done
	'

	test_expect_success $p "$l: every repository passes fsck; the worktree records the disk" '
		say "$l: $(replica_merges 1) merge commits in refs/heads/mail;" \
			"merges made: $(replica_log_count 1 ": merged ")," \
			"$(replica_log_count 2 ": merged "), $(replica_log_count 3 ": merged ")" &&
		for i in 1 2 3; do
			replica_fsck $i &&
			test "$(replica_git $i rev-parse "refs/maildag/worktree^{tree}")" = \
				"$(replica_tree $i)" || return 1
		done
	'

	test_expect_success $p "$l: stop" '
		replica_stop_all
	'
}

test_expect_success 'file://: three replicas of one user, different homes' '
	replica_setup file "$TEST_USER" "$TEST_USER" "$TEST_USER" &&
	grep -q "\"url\": \"file://$(replica_repo 2)\"" "$(replica_config_file 1)"
'
scenario "" file://

test_expect_success SSHD,ROOT 'ssh: three replicas, three users, through the test sshd' '
	replica_setup ssh maildagr1 maildagr2 maildagr3 &&
	grep -q "\"url\": \"ssh://maildagr2@127.0.0.1:$SSHD_PORT$(replica_repo 2)\"" \
		"$(replica_config_file 1)"
'
scenario SSHD,ROOT ssh

test_done
