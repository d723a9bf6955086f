#!/bin/sh
test_description='a file maildag-syncd cannot read is skipped and reported, never a reason to stop committing or pushing'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
[ -n "$PYTHON" ] || test_skip_all "no python3 to read maildag status --json"
. "$abs_top_srcdir/t/lib-replica.sh"

# Two replicas of the test user over file://.  The files are made
# unreadable with chmod 000: the daemons run as the test user, so only
# root (the test) can still read them; as an ordinary user, skip.
test_have_prereq ROOT || test_skip_all "needs root to read what the test user cannot"

replica_setup u "$TEST_USER" "$TEST_USER" || test_skip_all "cannot make the replicas"
M1=$(replica_maildir 1)

# put_unreadable ID DIR: the message ID as a new file in DIR, mode 000
put_unreadable() {
	local f="$2/$(date +%s).M1P$$Q$1.unreadable"
	test_message "$1" >"$TRASH/put.tmp" &&
	chown "$TEST_USER:" "$TRASH/put.tmp" && chmod 000 "$TRASH/put.tmp" &&
	mv "$TRASH/put.tmp" "$f" &&
	echo "$f"
}

test_expect_success 'setup: two replicas, a folder and two messages, converged' '
	replica_deliver 1 m1 &&
	replica_deliver 1 m2 &&
	replica_imap 1 "CREATE Private" >/dev/null &&
	replica_start_all &&
	wait_converged
'

test_expect_success 'an unreadable new message, then a Dovecot change and a delivery' '
	put_unreadable hidden "$M1/.Private/cur" >"$TRASH/hidden" &&
	replica_wait_log 1 "unreadable.: Permission denied" &&
	replica_flag 1 m1 "\\Flagged" &&
	replica_deliver 1 m3 &&
	wait_for "replica_where 2 m1 | grep -q \"^INBOX F\$\"" 30 &&
	wait_for "test -n \"\$(replica_where 2 m3)\"" 30
'

test_expect_success 'the skipped file is logged once, and shown by maildag status' '
	replica_sync 1 && replica_sync 1 &&
	replica_flag 1 m2 "\\Seen" &&
	wait_for "replica_where 2 m2 | grep -q \"^INBOX S\$\"" 30 &&
	test "$(replica_log_count 1 "cannot read")" = 1 &&
	replica_status 1 >st.json &&
	json_get "d[\"unreadable\"]" <st.json >list &&
	grep -q "\.Private/cur/.*\.unreadable" list &&
	{ replica_run 1 maildag status >st.txt || :; } &&
	grep -q "1 file cannot be read" st.txt &&
	grep -q "\.Private/cur/.*\.unreadable" st.txt &&
	test -z "$(replica_where 2 hidden)"
'

test_expect_success 'a known message made unreadable with a new mtime stops nothing' '
	f=$(grep -rl "^Message-ID: <m2\." "$M1/cur" "$M1/new") &&
	chmod 000 "$f" && touch -d "2021-02-03 04:05:06 UTC" "$f" &&
	replica_wait_log 1 "cannot read .*$(basename "$f" | cut -c 1-20)" &&
	replica_deliver 1 m4 &&
	wait_for "test -n \"\$(replica_where 2 m4)\"" 30 &&
	chmod 600 "$f"
'

test_expect_success 'once readable, the message is committed and reaches the peer' '
	chmod 600 "$(cat "$TRASH/hidden")" &&
	echo hidden >>"$REPLICAS/delivered" &&
	wait_for "test -n \"\$(replica_where 2 hidden)\"" 30 &&
	replica_wait_log 1 "is no longer unreadable" &&
	wait_converged &&
	replica_expect_messages &&
	replica_status 1 >st.json &&
	test "$(json_get "d[\"unreadable\"]" <st.json)" = "[]" &&
	replica_fsck 1 && replica_fsck 2
'

test_expect_success 'an unreadable file that goes away is forgotten' '
	f=$(put_unreadable gone "$M1/cur") &&
	wait_for "replica_status 1 | json_get \"len(d[\\\"unreadable\\\"])\" | grep -qx 1" &&
	rm -f "$f" &&
	wait_for "replica_status 1 | json_get \"len(d[\\\"unreadable\\\"])\" | grep -qx 0" &&
	wait_converged &&
	replica_expect_messages
'

test_done
