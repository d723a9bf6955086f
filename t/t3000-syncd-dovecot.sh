#!/bin/sh
test_description='maildag-syncd commits what Dovecot does, one commit per command'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

# step 'IMAP commands...': run them in one session and wait for the one
# commit they make; the commit's change (shards left out) in $TRASH/change.
# It starts once syncd has committed everything the tests before did: a
# session that only looked (the FETCH after APPEND below SELECTs Work)
# still moves what is in new/ to cur/, and that commit must not be
# counted as this step's.
step() {
	syncd_idle &&
	old=$(mail_head) &&
	imap "$@" >"$TRASH/imap.out" &&
	new=$(mail_moved_from "$old") &&
	test "$(commits_between "$old" "$new")" = 1 &&
	test "$(mgit rev-parse "$new^")" = "$old" &&
	commit_change "$new" >"$TRASH/change" &&
	cat "$TRASH/change"
}

# only_change 'grep -E pattern'...: every line of the change matches one
# of the patterns, and each pattern matches as many lines as asked:
# only_change 'D	cur/KEY' 1 'A	cur/KEY:2,S' 1
only_change() {
	cp "$TRASH/change" "$TRASH/rest"
	while [ $# -gt 0 ]; do
		got=$(grep -cE "^$1\$" "$TRASH/rest")
		[ "$got" = "$2" ] || {
			echo "expected $2 lines like '$1', got $got:" >&2
			cat "$TRASH/change" >&2; return 1; }
		grep -vE "^$1\$" "$TRASH/rest" >"$TRASH/rest2" || :
		mv "$TRASH/rest2" "$TRASH/rest"
		shift 2
	done
	[ ! -s "$TRASH/rest" ] || {
		echo "unexpected changes:" >&2; cat "$TRASH/rest" >&2; return 1; }
}

TAB=$(printf '\t')

test_expect_success 'setup: three deliveries, syncd started' '
	for i in 1 2 3; do test_message $i | as_user maildag-lda || return 1; done &&
	syncd_start &&
	syncd_idle &&
	test "$(ls "$MAILDIR/new" | wc -l)" = 3 &&
	test_repo_consistent
'

test_expect_success 'SELECT moves new/ to cur/: three moves, nothing else' '
	step "SELECT INBOX" &&
	only_change "D${TAB}new/[^/]*,S=[0-9]*" 3 "A${TAB}cur/[^/]*,S=[0-9]*:2," 3 &&
	test_repo_consistent
'

test_expect_success 'STORE +FLAGS renames one message' '
	step "SELECT INBOX" "STORE 1 +FLAGS (\\Flagged \\Seen)" &&
	only_change "D${TAB}cur/.*:2," 1 "A${TAB}cur/.*:2,FS" 1 &&
	test_repo_consistent
'

test_expect_success 'STORE -FLAGS' '
	step "SELECT INBOX" "STORE 1 -FLAGS (\\Flagged)" &&
	only_change "D${TAB}cur/.*:2,FS" 1 "A${TAB}cur/.*:2,S" 1 &&
	test_repo_consistent
'

test_expect_success 'CREATE makes an empty folder: its marker only' '
	step "CREATE Work" &&
	only_change "A${TAB}\.Work/maildirfolder" 1
'

test_expect_success 'COPY to a folder adds one message there (under its own key)' '
	step "SELECT INBOX" "COPY 2 Work" &&
	only_change "A${TAB}\.Work/(cur|new)/.*" 1 &&
	test_repo_consistent &&
	test "$(tree_state | grep -c "^/cur/")" = 3 &&
	test "$(tree_state | grep -c "^\.Work/")" = 1
'

test_expect_success 'MOVE to a folder: one message leaves, the same arrives' '
	key=$(tree_state | grep "^/cur/" | sed -n 3p | sed "s|.*/||; s|[,:].*||") &&
	step "SELECT INBOX" "MOVE 3 Work" &&
	only_change "D${TAB}cur/$key.*" 1 "A${TAB}\.Work/(cur|new)/$key.*" 1 &&
	test_repo_consistent
'

test_expect_success 'STORE \Deleted, then EXPUNGE: one commit each' '
	step "SELECT INBOX" "STORE 1 +FLAGS (\\Deleted)" &&
	only_change "D${TAB}cur/.*:2,S" 1 "A${TAB}cur/.*:2,ST" 1 &&
	step "SELECT INBOX" "EXPUNGE" &&
	only_change "D${TAB}cur/.*:2,ST" 1 &&
	test_repo_consistent
'

test_expect_success 'APPEND with INTERNALDATE: the message and its mtime record' '
	test_message appended >appended.msg &&
	old=$(mail_head) &&
	imap_append Work "\\Seen" "01-Jan-2020 10:00:00 +0000" appended.msg &&
	new=$(mail_moved_from "$old") &&
	test "$(commits_between "$old" "$new")" = 1 &&
	commit_change "$new" >change && cat change &&
	only_change "A${TAB}\.Work/cur/.*:2,S" 1 "[AM]${TAB}mtimes/[0-9a-f]{2}" 1 &&
	key=$(grep "Work/cur" change | sed "s|.*/||; s|[,:].*||") &&
	mgit cat-file -p "$new:$(mgit ls-tree -r --name-only "$new" mtimes/)" >rec &&
	grep "^$key 1577872800\$" rec &&
	fetch_flags Work | grep "01-Jan-2020 10:00:00 +0000 \\\\Seen"
'

test_expect_success 'RENAME a folder: everything moves, nothing else' '
	n=$(tree_state | grep -c "^\.Work/") &&
	step "RENAME Work Archive" &&
	only_change "D${TAB}\.Work/.*" $((n + 1)) "A${TAB}\.Archive/.*" $((n + 1)) &&
	test_repo_consistent
'

test_expect_success 'SUBSCRIBE changes the subscriptions file' '
	step "SUBSCRIBE Archive" &&
	only_change "A${TAB}subscriptions" 1 &&
	mgit cat-file blob refs/heads/mail:subscriptions | grep -x Archive
'

test_expect_success 'DELETE a folder with messages: all of it goes' '
	n=$(tree_state | grep -c "^\.Archive/") &&
	records=$(mgit ls-tree -r --name-only refs/heads/mail mtimes/ | wc -l) &&
	step "DELETE Archive" &&
	only_change "D${TAB}\.Archive/.*" $((n + 1)) "D${TAB}mtimes/[0-9a-f]{2}" $records &&
	test_repo_consistent &&
	! test -e "$MAILDIR/.Archive"
'

test_expect_success 'Dovecot state files never reach the repository' '
	ls "$MAILDIR" | grep -q dovecot &&
	! mgit ls-tree -r --name-only refs/heads/mail | grep -i -e dovecot -e uidlist -e tmp/
'

test_expect_success 'a restart finds nothing to commit' '
	old=$(mail_head) &&
	syncd_stop &&
	syncd_start &&
	syncd_idle &&
	test "$(mail_head)" = "$old"
'

test_expect_success 'the repository passes fsck' '
	mgit fsck --strict --no-dangling &&
	{ ! test -x "$BIN/maildag" || as_user maildag fsck >fsck.out 2>&1 || { cat fsck.out; false; }; }
'

test_done
