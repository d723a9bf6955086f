#!/bin/sh
test_description='maildag-syncd and maildag-lda at the same time'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

test_expect_success 'setup' '
	test_message 0 | as_user maildag-lda &&
	syncd_start &&
	syncd_idle
'

# The mail client works in another folder meanwhile: a client that moves
# a delivery out of new/ before maildag-lda has committed it makes that
# maildag-lda give up (exit 75), which is maildag-lda's business, not
# this test's.
test_expect_success '30 deliveries at once while Dovecot works in another folder' '
	imap "CREATE Other" >/dev/null &&
	test_message other >other.msg &&
	imap_append Other "" "01-Jan-2021 00:00:00 +0000" other.msg >/dev/null &&
	for i in $(seq 1 30); do
		test_message "p$i" >"p$i.msg" || return 1
	done &&
	for i in $(seq 1 30); do
		as_user maildag-lda <"p$i.msg" >"p$i.out" 2>&1 &
	done &&
	for f in "\\Seen" "\\Flagged" "\\Answered"; do
		imap "SELECT Other" "STORE 1 +FLAGS ($f)" >/dev/null || return 1
	done &&
	wait &&
	cat p*.out &&
	imap "SELECT INBOX" "STORE 1:* +FLAGS (\\Seen)" >/dev/null &&
	syncd_idle &&
	test "$(tree_state | wc -l)" = 32 &&
	test "$(disk_state | wc -l)" = 32 &&
	test_repo_consistent &&
	test -z "$(ls -A "$REPO/maildag/pending" 2>/dev/null)"
'

test_expect_success 'every delivery is recorded as one: retries store nothing' '
	for i in $(seq 1 30); do
		as_user maildag-lda <"p$i.msg" || return 1
	done &&
	syncd_idle &&
	test "$(tree_state | wc -l)" = 32 &&
	for i in $(seq 1 30); do
		test "$(grep -l "^Subject: test message p$i\$" $(mail_files) | wc -l)" = 1 ||
			return 1
	done
'

test_expect_success 'nothing was ever committed as expunged' '
	! mgit log --no-renames --format= --name-status refs/heads/mail | grep "^D.*/new/.*" |
		while read -r _ p; do
			k=$(basename "$p" | sed "s/[,:].*//")
			mgit ls-tree -r --name-only refs/heads/mail | grep -q "/$k" || echo "$p"
		done | grep .
'

test_expect_success 'tmp/ files older than 36 hours go at start; newer ones stay' '
	syncd_stop &&
	as_user sh -c "echo old >\"$MAILDIR/tmp/old.1\" && echo new >\"$MAILDIR/tmp/new.1\" &&
		echo old >\"$MAILDIR/.Other/tmp/old.2\"" &&
	as_user touch -d "37 hours ago" "$MAILDIR/tmp/old.1" "$MAILDIR/.Other/tmp/old.2" &&
	as_user touch -d "35 hours ago" "$MAILDIR/tmp/new.1" &&
	syncd_start &&
	wait_for "! test -e \"$MAILDIR/tmp/old.1\"" &&
	wait_for "! test -e \"$MAILDIR/.Other/tmp/old.2\"" &&
	test -e "$MAILDIR/tmp/new.1" &&
	syncd_idle &&
	! mgit ls-tree -r --name-only refs/heads/mail | grep tmp/
'

test_done
