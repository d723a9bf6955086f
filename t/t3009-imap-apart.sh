#!/bin/sh
test_description='format 2: two replicas apart, each with maildag-syncd and a real Dovecot: deliveries and keyword changes on both at once, then together again: the same UID per message on both, no UID ever shown for two messages, keywords merged per name, Dovecot logs clean'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"

. "$abs_top_srcdir/t/lib-imap.sh"

# record: every (UIDVALIDITY, UID) -> message a view showed, both replicas
record() {
	local v
	for i in 1 2; do
		v=$(sed -n "s/^UIDVALIDITY //p" view.$i)
		sed -n "s/^\([a-z0-9]*\) \([0-9]*\).*/$v \2 \1/p" view.$i
	done >>recorder
}

# watch SECONDS: views of both replicas, recorded, every half second
watch() {
	local n=0
	while [ $n -lt $(($1 * 2)) ]; do
		view 1 ${FOLDER:-} >view.1 2>/dev/null &&
		view 2 ${FOLDER:-} >view.2 2>/dev/null &&
		record
		n=$((n + 1))
		sleep 0.5
	done
}

test_expect_success 'setup: r1 format 2, r2 starts from its history' '
	replica_setup imap $TEST_USER $TEST_USER &&
	imap_format2_pair &&
	replica_start 1 && replica_start 2
'


test_expect_success 'a first message on both' '
	replica_deliver 1 base &&
	views_agree base && record &&
	grep -q "^base 1 $" view.1
'

test_expect_success 'apart: deliveries and keywords on both' '
	replica_stop 2 &&
	replica_deliver 1 a1 && replica_deliver 1 a2 &&
	replica_deliver 2 b1 && replica_deliver 2 b2 &&
	replica_flag 1 base "\\Seen from-r1 \$Forwarded" &&
	replica_flag 2 base "\\Flagged from-r2 NonJunk" &&
	view 1 >view.1 && view 2 >view.2 && record &&
	cat view.1 view.2
'

test_expect_success 'together again: the same UIDs, keywords merged per name' '
	replica_start 2 &&
	views_agree base a1 a2 b1 b2 &&
	record &&
	watch 3 &&
	views_agree base a1 a2 b1 b2 &&
	record &&
	cat view.1 &&
	grep "^base " view.1 >base &&
	for k in "\\Seen" "\\Flagged" from-r1 from-r2 "\$Forwarded" NonJunk; do
		grep -qF " $k" base || { echo "missing $k"; return 1; }
	done
'

test_expect_success 'at once: deliveries and keywords on both while both run' '
	ids="base a1 a2 b1 b2" &&
	for n in 1 2 3 4 5 6; do
		replica_deliver 1 p$n &
		replica_deliver 2 q$n &&
		wait $! &&
		ids="$ids p$n q$n" &&
		view 1 >view.1 && view 2 >view.2 && record || return 1
	done &&
	views_agree $ids &&
	{ replica_flag 1 p1 "later" & } &&
	replica_flag 2 p1 "sooner" && wait $! &&
	views_agree $ids &&
	watch 3 &&
	views_agree $ids &&
	record &&
	cat view.1 &&
	grep "^p1 " view.1 | grep -q " later" &&
	grep "^p1 " view.1 | grep -q " sooner"
'

# The race of a busy replica, made to happen: a peer's message is merged
# into mail with the peer's UID, and before it is applied this replica
# numbers a delivery of its own above it.  Dovecot here cannot take the
# peer's UID any more; it is numbered anew (never held back for good).
test_expect_success 'a peer UID merged in below one Dovecot gave meanwhile: numbered anew' '
	replica_stop 1 &&
	replica_deliver 2 late &&
	wait_for "[ \"\$(replica_git 1 rev-parse -q --verify refs/peers/r2/mail)\" = \"\$(replica_head 2)\" ]" 30 &&
	replica_run 1 maildag merge -u -q refs/heads/mail refs/peers/r2/mail >/dev/null &&
	replica_git 1 grep -q late refs/heads/mail -- "cur/*" "new/*" &&
	replica_deliver 1 early &&
	replica_start 1 &&
	ids="base a1 a2 b1 b2 p1 p2 p3 p4 p5 p6 q1 q2 q3 q4 q5 q6 late early" &&
	views_agree $ids &&
	view 1 >view.1 && record &&
	u_late=$(sed -n "s/^late \([0-9]*\).*/\1/p" view.1) &&
	u_early=$(sed -n "s/^early \([0-9]*\).*/\1/p" view.1) &&
	test "$u_late" -gt "$u_early" &&
	replica_wait_log 1 "below Dovecot.s next UID [0-9]*; numbering it anew"
'

# The other half of that race: Dovecot here numbers a save, then a
# peer's history with greater UIDs is merged before the save is
# committed.  Committed with its UID, it would lie below its parent's
# uidnext, which every replica refuses; it is numbered anew instead.
test_expect_success 'a UID Dovecot gave before a merge passed it: numbered anew, history accepted' '
	replica_stop 2 &&
	msg=$(printf "Message-ID: <saved.1@example.org>\r\nSubject: s\r\n\r\nbody\r\n") &&
	replica_imap 2 "APPEND INBOX {$(printf "%s" "$msg" | wc -c)+}
$msg" >/dev/null &&
	replica_deliver 1 ahead &&
	wait_for "[ \"\$(replica_git 2 rev-parse -q --verify refs/peers/r1/mail)\" = \"\$(replica_head 1)\" ]" 30 &&
	replica_run 2 maildag merge -u -q refs/heads/mail refs/peers/r1/mail >/dev/null &&
	replica_start 2 &&
	ids="base a1 a2 b1 b2 p1 p2 p3 p4 p5 p6 q1 q2 q3 q4 q5 q6 late early saved ahead" &&
	views_agree $ids &&
	view 1 >view.1 && record &&
	! grep "refusing" "$(replica_log 1)"
'

# The same for maildag-lda: it numbers a delivery, then waits for the
# writer lock while a merge takes mail past that UID (here the merge's
# fast-forward is made by hand under the lock, so the order is certain).
test_expect_success 'a delivery numbered before a merge passed its UID: numbered anew' '
	# uidnext in r2'"'"'s block: r2 numbers the next delivery below
	# the block r1 takes next
	replica_deliver 2 pre &&
	ids="base a1 a2 b1 b2 p1 p2 p3 p4 p5 p6 q1 q2 q3 q4 q5 q6 late early saved ahead pre" &&
	views_agree $ids &&
	replica_stop 2 &&
	replica_deliver 1 ahead2 &&
	# r1 has merged all of r2 and pushed it back: a fast-forward for r2
	old=$(replica_head 2) &&
	wait_for "[ \"\$(replica_git 2 rev-parse -q --verify refs/peers/r1/mail)\" = \"\$(replica_head 1)\" ] &&
		replica_git 2 merge-base --is-ancestor $old refs/peers/r1/mail &&
		replica_git 2 grep -q ahead2 refs/peers/r1/mail -- \"cur/*\" \"new/*\"" 30 &&
	new=$(replica_git 2 rev-parse refs/peers/r1/mail) &&
	repo=$(replica_repo 2) && md=$(replica_maildir 2) &&
	rm -f "$TRASH/go" &&
	{ replica_run 2 flock "$repo/maildag/lock" sh -c "
		while [ ! -e \"$TRASH/go\" ]; do sleep 0.05; done
		git -c safe.directory=\"*\" --git-dir=\"$repo\" \
			update-ref refs/heads/mail $new $old" & } &&
	lock=$! &&
	wait_for "! flock -n \"$repo/maildag/lock\" true" 30 &&
	{ replica_deliver 2 raced & } &&
	lda=$! &&
	wait_for "grep -qs raced \"$md\"/new/*" 30 &&
	f=$(grep -ls raced "$md"/new/*) && f=${f##*/} &&
	u=$(sed -n "s/^\([0-9]*\) .*:${f%%:*}\$/\1/p" "$md/dovecot-uidlist") &&
	n=$(replica_git 2 show $new:imapfolder | sed -n "s/^uidnext //p") &&
	echo "the delivery got UID $u; the merge takes uidnext to $n" &&
	test "$u" -lt "$n" &&
	touch "$TRASH/go" &&
	wait $lock && wait $lda &&
	replica_start 2 &&
	ids="$ids ahead2 raced" &&
	views_agree $ids &&
	view 1 >view.1 && record &&
	test "$(sed -n "s/^raced \([0-9]*\).*/\1/p" view.1)" -ge "$n" &&
	! grep "refusing" "$(replica_log 1)"
'

test_expect_success 'one folder made on both while apart: one UIDVALIDITY wins' '
	replica_stop 2 &&
	for i in 1 2; do
		msg=$(printf "Message-ID: <proj$i.1@example.org>\r\nSubject: p\r\n\r\nbody\r\n") &&
		replica_imap $i "CREATE Projects" \
			"APPEND Projects {$(printf "%s" "$msg" | wc -c)+}
$msg" >/dev/null &&
		view $i Projects >v$i || return 1
		# Dovecot takes the time for a new UIDVALIDITY: two apart
		[ $i = 2 ] || sleep 1.1
	done &&
	cat v1 v2 &&
	! cmp -s v1 v2 &&
	replica_start 2 &&
	FOLDER=Projects views_agree proj1 proj2 &&
	cat view.1 &&
	# the greater UIDVALIDITY won, on both
	v=$(sed -n "s/^UIDVALIDITY //p" view.1) &&
	w=$(sed -n "s/^UIDVALIDITY //p" v2) &&
	test "$v" = "$w" &&
	# (each Dovecot gave UID 1 to its own APPEND: 4.8 (1), not recorded)
	FOLDER=Projects watch 2 &&
	FOLDER=Projects views_agree proj1 proj2 &&
	record
'

test_expect_success 'no UID ever named two messages; logs clean' '
	sort -u recorder | awk "{ k = \$1 \" \" \$2; if (k in seen && seen[k] != \$3) { print \"UID \" k \": \" seen[k] \" and \" \$3; bad = 1 } seen[k] = \$3 } END { exit bad }" &&
	dovecot_logs_clean &&
	replica_fsck 1 && replica_fsck 2
'

test_done
