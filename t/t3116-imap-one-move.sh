#!/bin/sh
test_description='format 2: a MOVE seen in two halves, a MOVE under new names and a folder RENAME are one move each; the other replica shows the same UIDs and keywords, nothing is expunged, no alarm'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
command -v perl >/dev/null 2>&1 || test_skip_all 'perl is not installed'
command -v strace >/dev/null 2>&1 || test_skip_all 'strace is not installed'
. "$abs_top_srcdir/t/lib-replica.sh"

. "$abs_top_srcdir/t/lib-imap.sh"

N=150

dovecot_stalled_imap

# move_held FROM TO: on r1, MOVE every message of FROM to TO, Dovecot
# held between the halves
move_held() {
	local md
	md=$(replica_maildir 1) &&
	echo "$md/.$1/cur/$(ls "$md/.$1/cur" | sort | head -n 1)" \
		>"$TRASH/stall-path" &&
	: >"$TRASH/strace.out" &&
	(
		TEST_USER=$(replica_user 1) && USER_HOME=$(replica_home 1) &&
		DOVECOT_DIR=$TRASH/$(replica_set)/dovecot-r1 &&
		DOVECOT_CONF=$DOVECOT_DIR/dovecot.conf &&
		DOVECOT_IMAP=$TRASH/imap-stalled &&
		imap_open &&
		imap_send "SELECT $1" >/dev/null &&
		imap_send "MOVE 1:* $2" >/dev/null &&
		imap_close
	) &&
	grep -q DELAYED "$TRASH/strace.out"
}

# one_move I OLD: replica I's commits since OLD add and expunge
# nothing, nothing is expunged, no alarm was raised
one_move() {
	replica_git "$1" log --format=%s "$2..refs/heads/mail" >subjects.$1 &&
	cat subjects.$1 &&
	! grep -E "added|expunged" subjects.$1 &&
	replica_run "$1" maildag log --expunged >expunged.$1 &&
	! test -s expunged.$1 &&
	! grep -E "mass deletion|repeats a key" "$(replica_log "$1")"
}

# keys_of I: the message keys of replica I's tree
keys_of() {
	replica_git "$1" ls-tree -r --name-only refs/heads/mail |
		grep -E '/(cur|new)/[0-9a-f]{2}/' | sed 's|.*/||; s/[,:].*//' |
		sort
}

test_expect_success 'setup: two format 2 replicas, A with messages and keywords' '
	replica_setup imap $TEST_USER $TEST_USER &&
	imap_format2_pair &&
	replica_start 1 && replica_start 2 &&
	replica_imap 1 "CREATE A" "CREATE B" >/dev/null &&
	# on r2 before its Dovecot looks (it would pick a UIDVALIDITY)
	replica_wait_log 2 "applied [0-9a-f]*: 2 folders created" &&
	dovecot_make_msgs "$(replica_maildir 1)/.A/cur" $N a &&
	FOLDER=A views_agree a1 a$N &&
	replica_imap 1 "SELECT A" "STORE 1:* +FLAGS.SILENT (\\Seen \$Junk work-project)" >/dev/null &&
	FOLDER=A views_agree a1 a$N &&
	test "$(grep -c "work-project" view.2)" = $N &&
	keys_of 1 >keys.start
'

for round in 1 2; do
test_expect_success "MOVE A -> B, Dovecot held between the halves ($round)" '
	before1=$(replica_head 1) && before2=$(replica_head 2) &&
	move_held A B &&
	FOLDER=B views_agree a1 a$N &&
	FOLDER=A views_agree &&
	test "$(grep -c "^a" view.1)" = 0 &&
	FOLDER=B view 2 B >b.2 &&
	test "$(grep -c "work-project" b.2)" = $N &&
	one_move 1 $before1 && one_move 2 $before2 &&
	keys_of 1 >keys.now && test_cmp keys.start keys.now
'

# Dovecot gives the way back new names: A still lists the old ones
test_expect_success "MOVE B -> A under new names, held ($round)" '
	before1=$(replica_head 1) && before2=$(replica_head 2) &&
	move_held B A &&
	FOLDER=A views_agree a1 a$N &&
	FOLDER=B views_agree &&
	FOLDER=A view 2 A >a.2 &&
	test "$(grep -c "work-project" a.2)" = $N &&
	one_move 1 $before1 && one_move 2 $before2 &&
	keys_of 1 >keys.now && test_cmp keys.start keys.now
'
done

test_expect_success 'RENAME A C: the same UIDVALIDITY, UIDs and keywords on r2' '
	FOLDER=A view 1 A >a.before &&
	before1=$(replica_head 1) && before2=$(replica_head 2) &&
	replica_imap 1 "RENAME A C" >/dev/null &&
	FOLDER=C views_agree a1 a$N &&
	sed 1d a.before >a.rows && sed 1d view.2 >c.rows &&
	test_cmp a.rows c.rows &&
	head -n 1 a.before >v.a && head -n 1 view.2 >v.c && test_cmp v.a v.c &&
	one_move 1 $before1 && one_move 2 $before2 &&
	grep -q "folders created, 1 folders deleted" subjects.1
'

test_expect_success 'the logs are clean, the repositories pass fsck' '
	dovecot_logs_clean &&
	replica_fsck 1 && replica_fsck 2
'

test_done
