#!/bin/sh
test_description='three replicas on one tree and three histories: the one of the smallest node name joins them, the others take its merge as a fast-forward; no merge ping-pong'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"

# Three replicas whose heads differ in history only (one tree) merge
# nothing but history.  Each merging the heads the others push to it, as
# they come, merges a different pair, and the canonical merge commit
# (DESIGN 3) does not help: under load t6020's three replicas made 19
# such merges, none with a change, until a partition stopped them.  The
# rule (maildag-syncd(8)): of two replicas, the one whose node name is
# smaller joins histories whose trees are one; the other waits for that
# merge, which reaches it as a fast-forward.  So here r3 makes no merge
# at all; r1 and r2 merge (r2 what reaches it from r3, r1 everything),
# and when they meet one pair they make one commit; all three end on one
# commit and stay there.
if test_have_prereq ROOT; then J=maildagj1; else J=$TEST_USER; fi

merges_logged() { replica_log_count "$1" "peer [^ ]*: merged "; }
joins_logged() { replica_log_count "$1" "joins the histories"; }
one_commit() {
	test "$(replica_head 1)" = "$(replica_head 2)" &&
	test "$(replica_head 1)" = "$(replica_head 3)"
}

test_expect_success 'setup: three replicas of one user over file://, on one commit' '
	replica_setup join $J $J $J &&
	replica_start_all &&
	replica_deliver 1 j1 &&
	wait_converged 60 &&
	wait_for one_commit 60 &&
	replica_stop_all
'

test_expect_success 'three heads of one tree: a commit of its own on each' '
	base=$(replica_head 1) &&
	tree=$(replica_tree 1) &&
	for i in 1 2 3; do
		c=$(echo "history of r$i" | replica_ugit $i commit-tree "$tree" -p "$base") &&
		replica_ugit $i update-ref refs/heads/mail "$c" "$base" &&
		echo "$c" >head.$i || return 1
	done &&
	test "$(sort -u head.1 head.2 head.3 | wc -l)" = 3 &&
	echo "$base" >base &&
	for i in 1 2 3; do merges_logged $i >merges.$i || return 1; done
'

# peer_ref I J: what replica I holds as replica J's mail
peer_ref() { replica_git "$1" rev-parse -q --verify "refs/peers/r$2/mail"; }

# Started one after the other.  r3 alone first: over file:// it fetches
# r2's head itself (no daemon needed there) and meets a merge of nothing
# but history, which the rule leaves to r2; it pushes its own head to
# the others.  Then r2 (which joins r3's head, and waits for r1's), then
# r1.  Waiting for r2's head at r3 after r2 has started would race with
# r2's own join, whose merge r2 pushes to r3 in its place.
test_expect_success 'started: one commit holding all three histories; r3 merged none' '
	replica_start 3 &&
	wait_for "test \"\$(peer_ref 3 2)\" = $(cat head.2)" 30 &&
	replica_wait_log 3 "peer r2: (merged|.* joins the histories)" 1 30 &&
	wait_for "test \"\$(peer_ref 2 3)\" = $(cat head.3)" 30 &&
	replica_start 2 &&
	replica_start 1 &&
	wait_for one_commit 60 &&
	head=$(replica_head 1) &&
	for i in 1 2 3; do
		replica_git 1 merge-base --is-ancestor "$(cat head.$i)" "$head" || {
			echo "r$i'"'"'s history is not in $head" >&2; return 1; }
	done &&
	for i in 1 2 3; do
		m=$(( $(merges_logged $i) - $(cat merges.$i) ))
		say "r$i made $m merge(s), joined by the other $(joins_logged $i) time(s)"
		echo $m >made.$i
	done &&
	say "$(replica_merges 1 "$(cat base)") merge commits in all" &&
	test "$(cat made.3)" = 0 &&
	test "$(joins_logged 3)" -ge 1 &&
	test "$(replica_tree 1)" = "$(replica_git 1 rev-parse "$(cat base)^{tree}")"
'

test_expect_success 'and there they stay: no merge, nobody moves' '
	head=$(replica_head 1) &&
	sleep $(( ${REPLICA_FETCH_INTERVAL:-5} * 2 )) &&
	for i in 1 2 3; do
		test "$(replica_head $i)" = "$head" || {
			echo "r$i moved" >&2; return 1; }
	done &&
	replica_expect_messages
'

test_done
