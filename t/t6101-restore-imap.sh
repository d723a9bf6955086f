#!/bin/sh
test_description='format 2 (IMAP identity on): a message expunged with Dovecot and brought back by maildag restore gets a new UID, at or above the folder'"'"'s UIDNEXT, the same on both replicas; a UID an IMAP client saw expunged never names a message again'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"

. "$abs_top_srcdir/t/lib-imap.sh"

# uid_of I ID: the UID replica I's Dovecot shows for ID in INBOX
uid_of() { view "$1" | awk -v id="$2" '$1 == id { print $2 }'; }
uidnext_of() { view "$1" | sed -n 's/^UIDNEXT //p'; }

test_expect_success 'setup: two format 2 replicas, three messages in INBOX on both' '
	replica_setup imaprestore $TEST_USER $TEST_USER &&
	replica_config 1 --extra "\"uid_slot\": 0" &&
	replica_config 2 --extra "\"uid_slot\": 1" &&
	rm -rf "$(replica_repo 1)" "$(replica_repo 2)" &&
	replica_run 1 maildag init --format 2 >/dev/null &&
	replica_run 2 maildag init --format 2 >/dev/null &&
	replica_ugit 2 fetch -q "$(replica_repo 1)" +refs/heads/mail:refs/heads/mail &&
	replica_ugit 2 update-ref -d refs/maildag/worktree &&
	rm -f "$(replica_maildir 2)/dovecot-uidlist" &&
	replica_start 1 && replica_start 2 &&
	replica_deliver 1 one && replica_deliver 1 two && replica_deliver 1 three &&
	views_agree one two three &&
	cat view.1 &&
	test "$(uid_of 1 two)" = 2 &&
	test "$(uidnext_of 1)" = 4
'

test_expect_success 'expunged with Dovecot on r1: gone from both views' '
	replica_expunge 1 two &&
	views_agree one three &&
	! grep -q "^two " view.1 &&
	! grep -q "^two " view.2 &&
	wait_converged
'

test_expect_success 'restored on r2: back on both, under a new UID above the UIDNEXT both showed' '
	next=$(uidnext_of 2) &&
	test "$next" -ge 4 &&
	replica_run 2 maildag log --expunged --subject "test message two" >found &&
	test "$(wc -l <found)" = 1 &&
	replica_run 2 maildag restore --message-id "$(sed -n "s/.*bytes, //p" found)" >out &&
	cat out &&
	grep -q "^restored: 1 message written back" out &&
	sed -i "/^two\$/d" "$REPLICAS/expunged" &&
	views_agree one two three &&
	cat view.1 view.2 &&
	uid1=$(uid_of 1 two) && uid2=$(uid_of 2 two) &&
	test "$uid1" = "$uid2" &&
	test "$uid1" -ge "$next" &&
	test "$(uid_of 1 one)" = 1 && test "$(uid_of 1 three)" = 3 &&
	test "$(uidnext_of 1)" -gt "$uid1" &&
	wait_converged &&
	replica_expect_messages
'

test_expect_success 'the restored message is byte for byte what was delivered, on both' '
	test_message two >want &&
	for i in 1 2; do
		md=$(replica_maildir $i) &&
		f=$(grep -rl "^Message-ID: <two\." "$md/cur" "$md/new") &&
		test "$(echo "$f" | wc -l)" = 1 &&
		cmp want "$f" || return 1
	done
'

test_expect_success 'no Dovecot error or warning (no "reappeared"); both repositories pass fsck' '
	dovecot_logs_clean &&
	for i in 1 2; do
		replica_run $i maildag fsck >fsck.$i 2>&1 || { cat fsck.$i; return 1; }
	done &&
	replica_stop_all
'

test_done
