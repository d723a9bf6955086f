#!/bin/sh
test_description='a key whose bytes changed is written anew, never renamed over; fsck compares the bytes'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

# blob_of PATH [REF]: the blob id at a tree path
blob_of() { mgit rev-parse "${2:-refs/heads/mail}:$1"; }

test_expect_success 'setup: two messages, applied and idle' '
	test_message 1 | as_user maildag-lda &&
	test_message 2 | as_user maildag-lda &&
	syncd_start &&
	imap "SELECT INBOX" >/dev/null &&
	syncd_idle
'

test_expect_success 'a commit gives a key a new name and new bytes: the disk holds the new bytes' '
	name=$(ls "$MAILDIR/cur" "$MAILDIR/new" 2>/dev/null | grep "^[0-9]" | sort | head -n 1) &&
	old=$(tree_path "$name") && test -n "$old" &&
	base=$(basename "$old") && shard=$(basename "$(dirname "$old")") &&
	test_message 1 | sed "s/Hello, this is message 1./Other bytes under the same key./" >changed &&
	new=cur/$shard/${base%%[,:]*},S=$(wc -c <changed):2,S &&
	oid=$(ugit hash-object -w --stdin <changed) &&
	test "$oid" != "$(blob_of "$old")" &&
	head=$(mail_head) &&
	mail_edit "rm $old" "add $new $oid" >/dev/null &&
	mail_moved_from "$head" >/dev/null &&
	file=$MAILDIR/$(echo "$new" | sed "s|/[0-9a-f][0-9a-f]/|/|") &&
	test -f "$file" &&
	test_cmp changed "$file" &&
	! test -e "$MAILDIR/$(echo "$old" | sed "s|/[0-9a-f][0-9a-f]/|/|")" &&
	test "$(blob_of "$new" refs/maildag/worktree)" = "$oid" &&
	test "$(disk_state)" = "$(tree_state)"
'

test_expect_success 'maildag fsck --hash is clean, and Dovecot reads the new bytes' '
	as_user maildag fsck --hash >out 2>&1 || { cat out; false; } &&
	imap "SELECT INBOX" "FETCH 1:* (BODY.PEEK[TEXT])" >fetch &&
	grep -q "Other bytes under the same key" fetch
'

test_expect_success 'a move to another folder with new bytes: the same' '
	imap "CREATE Other" >/dev/null &&
	syncd_idle &&
	name=$(ls "$MAILDIR/cur" "$MAILDIR/new" 2>/dev/null | grep "^[0-9]" | sort | tail -n 1) &&
	old=$(tree_path "$name") && test -n "$old" &&
	base=$(basename "$old") && shard=$(basename "$(dirname "$old")") &&
	test_message 2 | sed "s/message 2/message two, edited/" >changed2 &&
	new=.Other/cur/$shard/${base%%[,:]*},S=$(wc -c <changed2):2,F &&
	oid=$(ugit hash-object -w --stdin <changed2) &&
	head=$(mail_head) &&
	mail_edit "rm $old" "add $new $oid" >/dev/null &&
	mail_moved_from "$head" >/dev/null &&
	f=$(find "$MAILDIR/.Other/cur" -type f) && test -n "$f" &&
	test_cmp changed2 "$f" &&
	as_user maildag fsck --hash >out 2>&1 || { cat out; false; }
'

test_expect_success 'fsck: other bytes at the recorded mtime are a problem; --hash finds same-size ones' '
	syncd_stop &&
	f=$(find "$MAILDIR/.Other/cur" -type f) &&
	cp -p "$f" saved &&
	sed "s/edited/EDITED/" saved >"$f" && touch -r saved "$f" &&
	test_expect_code 0 as_user maildag fsck >out 2>&1 &&
	test_expect_code 1 as_user maildag fsck --hash >out 2>&1 &&
	grep "bytes on disk differ" out &&
	echo more >>"$f" && touch -r saved "$f" &&
	test_expect_code 1 as_user maildag fsck >out 2>&1 &&
	grep "bytes on disk differ" out &&
	touch -d "2020-01-01 00:00:00" "$f" &&
	test_expect_code 0 as_user maildag fsck >out 2>&1 &&
	grep "^warning: .*changed on disk, not committed yet" out &&
	cp -p saved "$f" &&
	as_user maildag fsck --hash >out 2>&1 || { cat out; false; }
'

test_done
