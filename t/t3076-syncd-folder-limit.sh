#!/bin/sh
test_description='maildag-syncd keeps folder_limit on what it commits: folders beyond it are left out, kept on disk, taken in when room is made'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

# folder_limit 6: INBOX and five folders.  .a to .h are made before the
# daemon starts: .a to .e are committed (name order), .f .g .h left out.
TAB=$(printf '\t')

# folder NAME: a folder with its marker and one message, as a mail client
# leaves it
folder() {
	as_user mkdir -p "$MAILDIR/.$1/cur" "$MAILDIR/.$1/new" "$MAILDIR/.$1/tmp" &&
	as_user touch "$MAILDIR/.$1/maildirfolder" &&
	test_message "in-$1" >msg &&
	as_user cp msg "$MAILDIR/.$1/cur/1700000000.M1P1.$1.test,S=200:2,S"
}

write_config() {
	mkdir -p "$USER_HOME/.config/maildag" &&
	echo "{ \"node\": \"mx1\", \"folder_limit\": $1 }" \
		>"$USER_HOME/.config/maildag/config.json" &&
	chown -R "$TEST_USER" "$USER_HOME/.config" &&
	chmod -R go-w "$USER_HOME/.config"
}

# the folders refs/heads/mail holds, on one line
tree_folders() {
	mgit ls-tree --name-only refs/heads/mail | grep '^\.' | tr '\n' ' '
}

status_has() {
	as_user maildag status --json >status.json &&
	grep -q "\"folders_left_out\":$1" status.json &&
	grep -q "\"folder_limit\":$2" status.json
}

# the replicated part of the Maildir and the tree agree, fsck is clean
consistent() {
	mgit fsck --strict --no-dangling >fsck.out 2>&1 || { cat fsck.out; return 1; }
	replicated_state >disk.list &&
	tree_state >tree.list &&
	test_cmp disk.list tree.list
}

test_expect_success 'setup: eight folders, folder_limit 6' '
	as_user mkdir -p "$MAILDIR/cur" "$MAILDIR/new" "$MAILDIR/tmp" &&
	for f in a b c d e f g h; do folder $f || return 1; done &&
	write_config 6
'

LEFT_OUT='^\.(f|g|h)/'
test_expect_success 'the start commits INBOX and .a to .e; .f .g .h are left out, said once' '
	syncd_start &&
	syncd_idle &&
	test "$(tree_folders)" = ".a .b .c .d .e " &&
	test "$(disk_state | grep -c -E "$LEFT_OUT")" = 3 &&
	status_has 3 6 &&
	as_user maildag status >status.out &&
	grep -q "^3 folders on disk left out by folder_limit (6): not committed, watched or replicated\$" status.out &&
	consistent &&
	test "$(grep -c "folder_limit" "$SYNCD_LOG")" = 1 &&
	grep -q "folder_limit (6) reached: 3 folders on disk left out" "$SYNCD_LOG"
'

test_expect_success 'a folder left out is not watched: a file in it is not committed with a change elsewhere' '
	test_message late >msg &&
	as_user cp msg "$MAILDIR/.g/new/1700000100.M2P1.late.test" &&
	old=$(mail_head) &&
	as_user mv "$MAILDIR/.a/cur/1700000000.M1P1.a.test,S=200:2,S" \
		"$MAILDIR/.a/cur/1700000000.M1P1.a.test,S=200:2,FS" &&
	new=$(mail_moved_from "$old") &&
	commit_change "$new" >change &&
	test "$(grep -c . change)" = 2 &&
	! grep -q "\.g/" change &&
	test -f "$MAILDIR/.g/new/1700000100.M2P1.late.test" &&
	status_has 3 6 &&
	consistent
'

test_expect_success 'a message Dovecot moves into a folder left out leaves the replicated mailbox and stays on disk' '
	old=$(mail_head) &&
	imap "SELECT a" "MOVE 1 g" >imap.out &&
	new=$(mail_moved_from "$old") &&
	commit_change "$new" >change &&
	grep -q "^D${TAB}\.a/cur/1700000000.M1P1.a.test" change &&
	! grep -q "\.g/" change &&
	grep -rl "test message in-a" "$MAILDIR/.g" >moved &&
	test "$(wc -l <moved)" = 1 &&
	test "$(tree_folders)" = ".a .b .c .d .e " &&
	consistent
'

test_expect_success 'maildag-lda -m for a folder left out delivers into INBOX' '
	test_message for-h >msg &&
	as_user maildag-lda -v -m h <msg 2>lda.err &&
	grep -q "left out by folder_limit" lda.err &&
	file=$(grep -rl "test message for-h" "$MAILDIR/new") &&
	test -n "$(tree_path "$(basename "$file")")" &&
	test "$(ls "$MAILDIR/.h/new" | wc -l)" = 0 &&
	syncd_idle &&
	consistent
'

LEFT_OUT='^\.(g|h)/'
test_expect_success 'a folder deleted makes room: the first left out in name order (.f) is committed' '
	old=$(mail_head) &&
	imap "DELETE b" >imap.out &&
	wait_for "[ \"\$(tree_folders)\" = \".a .c .d .e .f \" ]" &&
	syncd_idle &&
	test -d "$MAILDIR/.g" && test -d "$MAILDIR/.h" &&
	status_has 2 6 &&
	consistent
'

LEFT_OUT='^\.(h|zz)/'
test_expect_success 'a folder renamed at the limit counts as new: .g, first in name order, takes the room' '
	imap "RENAME c zz" >imap.out &&
	wait_for "[ \"\$(tree_folders)\" = \".a .d .e .f .g \" ]" &&
	syncd_idle &&
	grep -rl "test message in-c" "$MAILDIR/.zz" >renamed &&
	test "$(wc -l <renamed)" = 1 &&
	test "$(grep -rl "test message" "$MAILDIR/.g" | wc -l)" = 3 &&
	status_has 2 6 &&
	consistent
'

LEFT_OUT='^\.zz/'
test_expect_success 'a peer tree that removes a folder makes room: .h is committed' '
	set -- &&
	for p in $(mgit ls-tree -r --name-only refs/heads/mail | grep "^\.d/"); do
		set -- "$@" "rm $p"
	done &&
	test $# = 2 &&
	mail_edit "$@" >/dev/null &&
	wait_for "[ \"\$(tree_folders)\" = \".a .e .f .g .h \" ]" &&
	syncd_idle &&
	test ! -d "$MAILDIR/.d" &&
	status_has 1 6 &&
	consistent
'

LEFT_OUT=
test_expect_success 'folder_limit raised, SIGHUP: every folder is committed, and the log says so' '
	write_config 100 &&
	kill -HUP "$(daemon_pid syncd)" &&
	wait_for "[ \"\$(tree_folders)\" = \".a .e .f .g .h .zz \" ]" &&
	syncd_idle &&
	status_has 0 100 &&
	grep -q "every folder on disk is committed again (folder_limit 100)" "$SYNCD_LOG" &&
	consistent
'

test_expect_success 'maildag init leaves out what maildag-syncd would, and says so' '
	h2=$TRASH/home2 &&
	mkdir -p "$h2/.config/maildag" &&
	cp -a "$MAILDIR" "$h2/Maildir" &&
	echo "{ \"node\": \"mx2\", \"folder_limit\": 4 }" >"$h2/.config/maildag/config.json" &&
	chown -R "$TEST_USER" "$h2" && chmod -R go-w "$h2" && chmod 700 "$h2" &&
	as_user -h "$h2" maildag init >init.out 2>init.err &&
	grep -q ", 3 folders left out by folder_limit (4)\$" init.out &&
	test "$(git -c safe.directory="*" --git-dir="$h2/.local/share/maildag/mail.git" \
		ls-tree --name-only refs/heads/mail | grep "^\." | tr "\n" " ")" = ".a .e .f " &&
	grep -q "folder_limit (4) reached: 3 folders on disk left out" init.err
'

test_done
