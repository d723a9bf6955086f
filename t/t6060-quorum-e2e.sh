#!/bin/sh
test_description='quorum delivery end to end: maildag-lda on a replica whose maildag-syncd pushes to real peers exits 0 only once enough peers hold the commit, 75 (committed once) when they cannot, and a retry of the same message then ends with one copy everywhere'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
command -v flock >/dev/null || test_skip_all "no flock(1)"
. "$abs_top_srcdir/t/lib-replica.sh"

# Three replicas of one user over file://.  Fetches only at start and
# then every five minutes: what a peer holds of r1's, it holds because
# r1's daemon pushed it.
if test_have_prereq ROOT; then Q=maildagq1; else Q=$(id -un); fi
REPLICA_FETCH_INTERVAL=300

# lda I FILE [ARGS]: maildag-lda on replica I with FILE on stdin; its
# status in the file st, its standard error in err
lda() {
	local i=$1 f=$2 s=0
	shift 2
	replica_run "$i" maildag-lda "$@" <"$f" 2>err || s=$?
	echo $s >st
	cat err >&2
}

# copies I ID: the copies of message ID in replica I's Maildir and in its
# refs/heads/mail, as "<disk> <tree>"
copies() {
	echo "$(replica_message_ids "$1" | grep -cx "$2")" \
		"$(replica_git "$1" grep -l "^Message-ID: <$2\." refs/heads/mail -- . | wc -l)"
}

# delivery_commit I ID: the commit of replica I that added message ID
delivery_commit() {
	local p
	p=$(replica_git "$1" grep -l "^Message-ID: <$2\." refs/heads/mail -- . |
		sed 's/^refs\/heads\/mail://') &&
	[ -n "$p" ] &&
	replica_git "$1" log --no-merges --diff-filter=A --format=%H refs/heads/mail -- "$p" |
		tail -n 1
}

# holds J COMMIT: peer J's repository holds COMMIT, in what r1 pushed
# there or in its own refs/heads/mail
holds() {
	replica_git "$1" merge-base --is-ancestor "$2" refs/peers/r1/mail 2>/dev/null ||
		replica_git "$1" merge-base --is-ancestor "$2" refs/heads/mail 2>/dev/null
}

delivered() { echo "$1" >>"$REPLICAS/delivered"; }

test_expect_success 'setup: three replicas converge; quorum 2 in r1'"'"'s configuration' '
	replica_setup quorum $Q $Q $Q &&
	replica_config 1 --extra "\"quorum\": 2" &&
	grep -q "\"quorum\": 2" "$(replica_config_file 1)" &&
	replica_start_all &&
	replica_deliver 2 q0 &&
	wait_converged 30 &&
	for m in q1 q2 q3 q4; do test_message $m >$m.eml || return 1; done
'

test_expect_success 'quorum 2: maildag-lda waits for the daemon; exits 0 once a peer holds the commit' '
	before=$(replica_head 1) &&
	pid=$(daemon_pid quorum-r1) &&
	lock=$(replica_repo 1)/maildag/lock &&
	# stop r1'"'"'s daemon between two syncs (not holding the writer lock)
	n=0 &&
	while :; do
		kill -STOP $pid &&
		flock -n "$lock" true && break
		kill -CONT $pid
		n=$((n + 1)) && test $n -lt 50 && sleep 0.1 || return 1
	done &&
	rm -f st &&
	{ lda 1 q1.eml & } &&
	# committed, then waiting for an answer that cannot come yet
	wait_for "test \"\$(replica_head 1)\" != $before" &&
	c=$(delivery_commit 1 q1) && test -n "$c" &&
	test "$(replica_head 1)" = $c &&
	sleep 1 &&
	! test -e st &&
	! holds 2 $c && ! holds 3 $c &&
	kill -CONT $pid &&
	wait_for "test -s st" 30 &&
	# at this moment, not later: a peer holds it
	{ holds 2 $c || holds 3 $c; } &&
	test "$(cat st)" = 0 &&
	test ! -s err &&
	delivered q1 &&
	test "$(copies 1 q1)" = "1 1"
'

test_expect_success 'quorum 2: again, with the daemon running all along' '
	for m in q2 q3; do
		lda 1 $m.eml &&
		test "$(cat st)" = 0 &&
		c=$(delivery_commit 1 $m) &&
		{ holds 2 $c || holds 3 $c; } || return 1
		delivered $m
	done &&
	wait_converged 30 &&
	replica_expect_messages
'

test_expect_success 'quorum 3, one peer unreachable (its repository moved away): 75 within the deadline, committed once' '
	replica_stop 3 &&
	mv "$(replica_repo 3)" "$(replica_repo 3).away" &&
	replica_config 1 --extra "\"quorum\": 3, \"lda_deadline\": 12" &&
	replica_reload 1 &&
	lda 1 q4.eml &&
	test "$(cat st)" = 75 &&
	test "$(wc -l <err)" = 1 &&
	grep -Ex "4\.4\.0 quorum 3 not reached: 1 of 2 peers acknowledged within [0-9]+ s" err &&
	# the wait is the deadline (12 s) less 5 s, or less what the
	# delivery took
	w=$(sed "s/.*within \([0-9]*\) s$/\1/" err) &&
	test $w -le 7 && test $w -ge 5 &&
	test "$(copies 1 q4)" = "1 1" &&
	c=$(delivery_commit 1 q4) &&
	holds 2 $c &&
	! test -e "$(replica_repo 3)" &&
	replica_wait_log 1 "peer r3: push failed: unreachable"
'

test_expect_success 'the peer back, the same message again: 0, and one copy everywhere' '
	c=$(delivery_commit 1 q4) &&
	mv "$(replica_repo 3).away" "$(replica_repo 3)" &&
	replica_start 3 &&
	lda 1 q4.eml &&
	test "$(cat st)" = 0 &&
	holds 2 $c && holds 3 $c &&
	test "$(copies 1 q4)" = "1 1" &&
	test "$(delivery_commit 1 q4)" = $c &&
	delivered q4 &&
	wait_converged 30 &&
	replica_expect_messages &&
	for i in 1 2 3; do
		test "$(copies $i q4)" = "1 1" || return 1
	done
'

test_expect_success 'no daemon running: 75 naming that, committed once; the retry with it back: 0' '
	test_message q5 >q5.eml &&
	replica_stop 1 &&
	lda 1 q5.eml -q 2 &&
	test "$(cat st)" = 75 &&
	test "$(cat err)" = "4.4.0 quorum 2 not reached: maildag-syncd is not running" &&
	test "$(copies 1 q5)" = "1 1" &&
	c=$(delivery_commit 1 q5) &&
	! holds 2 $c && ! holds 3 $c &&
	replica_start 1 &&
	lda 1 q5.eml -q 2 &&
	test "$(cat st)" = 0 &&
	{ holds 2 $c || holds 3 $c; } &&
	delivered q5 &&
	wait_converged 30 &&
	replica_expect_messages &&
	for i in 1 2 3; do
		replica_fsck $i || return 1
	done
'

# A faked acknowledgement: refs/peers/r2/mail in r1's repository is
# written by r2's pushes, but also by anyone else who can write r1's
# repository (a file:// peer, another process of the user).  r2 away,
# our own commit written there by such a third party must not count.
test_expect_success 'a faked acknowledgement (our commit in refs/peers/r2/mail while r2 is away): 75, not 0' '
	replica_stop 2 &&
	mv "$(replica_repo 2)" "$(replica_repo 2).away" &&
	n=$(replica_log_count 1 "configuration reloaded") &&
	replica_config 1 --peers 2 --extra "\"quorum\": 2, \"lda_deadline\": 12" &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded" $((n + 1)) &&
	test_message q6 >q6.eml &&
	lda 1 q6.eml &&
	test "$(cat st)" = 75 &&
	grep -Ex "4\.4\.0 quorum 2 not reached: 0 of 1 peers acknowledged within [0-9]+ s" err &&
	c=$(delivery_commit 1 q6) && test -n "$c" &&
	# the third party: what a file:// peer "evil" could push
	replica_ugit 1 update-ref refs/peers/r2/mail $c &&
	test "$(replica_git 1 rev-parse refs/peers/r2/mail)" = $c &&
	lda 1 q6.eml &&
	test "$(cat st)" = 75 &&
	grep -Ex "4\.4\.0 quorum 2 not reached: 0 of 1 peers acknowledged within [0-9]+ s" err &&
	test "$(copies 1 q6)" = "1 1" &&
	! test -e "$(replica_repo 2)"
'

test_expect_success 'r2 back, the same delivery again: 0, r2 holds it' '
	c=$(delivery_commit 1 q6) &&
	mv "$(replica_repo 2).away" "$(replica_repo 2)" &&
	! holds 2 $c &&
	replica_start 2 &&
	lda 1 q6.eml &&
	test "$(cat st)" = 0 &&
	holds 2 $c &&
	test "$(copies 1 q6)" = "1 1" &&
	delivered q6 &&
	n=$(replica_log_count 1 "configuration reloaded") &&
	replica_config 1 --extra "\"quorum\": 2" &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded" $((n + 1)) &&
	wait_converged 30 &&
	replica_expect_messages
'

test_expect_success 'stop' '
	replica_stop_all
'

test_done
