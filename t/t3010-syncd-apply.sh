#!/bin/sh
test_description='maildag-syncd applies what another replica did, under a connected Dovecot'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

# Replica A is the test user's default Maildir and repository, with the
# Dovecot of lib-dovecot.sh.  Replica B is a second Maildir and repository
# of the same user, with its own config, syncd and Dovecot.
B=$USER_HOME/b
B_REPO=$B/mail.git
B_CONF=$USER_HOME/b.json
B_DOVECOT=$DOVECOT_DIR/b.conf
sed "s|^mail_location = .*|mail_location = maildir:$B/Maildir|" \
	"$DOVECOT_CONF" >"$B_DOVECOT"
chmod 644 "$B_DOVECOT"

imap_b() {
	( DOVECOT_CONF=$B_DOVECOT; imap "$@" )
}
fetch_flags_b() {
	( DOVECOT_CONF=$B_DOVECOT; fetch_flags "$@" )
}
bgit() { git -c safe.directory='*' --git-dir="$B_REPO" "$@"; }

B_LOG=$TRASH/syncd-b.log
syncd_b_start() {
	( SYNCD_NAME=syncd-b; SYNCD_LOG=$B_LOG; syncd_start -c "$B_CONF" )
}

b_idle() {
	( MAILDIR=$B/Maildir; REPO=$B_REPO; SYNCD_LOG=$B_LOG; syncd_idle )
}

# transfer FROM_REPO TO_REPO NAME: what a peer's fetch and merge do:
# FROM's refs/heads/mail into TO's refs/peers/NAME/mail, then merged
# into TO's refs/heads/mail (under TO's writer lock)
transfer() {
	as_user git -c safe.directory='*' --git-dir="$2" fetch -q "$1" \
		"+refs/heads/mail:refs/peers/$3/mail" &&
	if as_user maildag merge -h >/dev/null 2>&1; then
		if [ "$2" = "$REPO" ]; then
			as_user maildag merge -q -u refs/heads/mail "refs/peers/$3/mail"
		else
			as_user maildag -c "$B_CONF" merge -q -u refs/heads/mail \
				"refs/peers/$3/mail"
		fi
	else
		new=$(git -c safe.directory='*' --git-dir="$2" rev-parse "refs/peers/$3/mail") &&
		old=$(git -c safe.directory='*' --git-dir="$2" rev-parse refs/heads/mail) &&
		git -c safe.directory='*' --git-dir="$2" merge-base --is-ancestor "$old" "$new" &&
		as_user flock "$2/maildag/lock" git -c safe.directory='*' \
			--git-dir="$2" update-ref refs/heads/mail "$new" "$old"
	fi
}

test_expect_success 'setup: replica A with three messages' '
	for i in 1 2 3; do test_message $i | as_user maildag-lda || return 1; done &&
	syncd_start &&
	imap "SELECT INBOX" >/dev/null &&
	syncd_idle
'

test_expect_success 'a new replica B from a copy of the repository: written out, nothing deleted' '
	mkdir -p "$B" &&
	cp -a "$REPO" "$B_REPO" &&
	git -c safe.directory="*" --git-dir="$B_REPO" update-ref -d refs/maildag/worktree &&
	printf "{ \"node\": \"b\", \"maildir\": \"%s\", \"repository\": \"%s\" }\n" \
		"$B/Maildir" "$B_REPO" >"$B_CONF" &&
	chown -R "$TEST_USER:" "$B" "$B_CONF" 2>/dev/null; chmod 600 "$B_CONF" &&
	head=$(mail_head) &&
	syncd_b_start &&
	b_idle &&
	test "$(bgit rev-parse refs/heads/mail)" = "$head" &&
	test "$(ls "$B/Maildir/cur" | wc -l)" = 3 &&
	fetch_flags >a.flags && fetch_flags_b >b.flags &&
	test_cmp a.flags b.flags
'

test_expect_success 'changes made on B through Dovecot' '
	test_message appended >appended.msg &&
	old=$(bgit rev-parse refs/heads/mail) &&
	imap_b "SELECT INBOX" "STORE 1 +FLAGS (\\Flagged)" "CREATE Lists" \
		"MOVE 2 Lists" "STORE 3 +FLAGS (\\Deleted)" "EXPUNGE" >/dev/null &&
	( DOVECOT_CONF=$B_DOVECOT; imap_append INBOX "\\Answered" \
		"02-Feb-2020 12:34:56 +0000" "$TRASH/appended.msg" ) >/dev/null &&
	wait_for "[ \"\$(bgit rev-parse refs/heads/mail)\" != $old ]" &&
	b_idle &&
	fetch_flags_b >b.flags && cat b.flags &&
	grep -q "02-Feb-2020 12:34:56 +0000 \\\\Answered" b.flags &&
	grep -q Flagged b.flags
'

test_expect_success 'applied on A while a Dovecot session is connected to A' '
	imap_open &&
	imap_send "SELECT INBOX" >/dev/null &&
	transfer "$B_REPO" "$REPO" b &&
	wait_for "[ \"\$(mail_head)\" = \"\$(bgit rev-parse refs/heads/mail)\" ]" &&
	syncd_idle &&
	imap_send "NOOP" >noop.out && cat noop.out &&
	grep -q EXPUNGE noop.out &&
	imap_send "FETCH 1:* (FLAGS INTERNALDATE)" >fetch.out &&
	imap_close &&
	fetch_flags >a.flags && fetch_flags_b >b.flags &&
	test_cmp b.flags a.flags &&
	fetch_flags Lists >a.lists && fetch_flags_b Lists >b.lists &&
	test_cmp b.lists a.lists &&
	test "$(wc -l <a.lists)" = 1 &&
	syncd_idle &&
	test_repo_consistent
'

test_expect_success 'no half-written file was ever visible: nothing left in tmp/' '
	test -z "$(find "$MAILDIR/tmp" "$MAILDIR/.Lists/tmp" -type f)"
'

test_expect_success 'and back: a change on A reaches B under its Dovecot' '
	old=$(mail_head) &&
	imap "SELECT Lists" "STORE 1 +FLAGS (\\Seen \\Draft)" >/dev/null &&
	mail_moved_from "$old" >/dev/null &&
	transfer "$REPO" "$B_REPO" a &&
	wait_for "bgit merge-base --is-ancestor \$(mail_head) refs/heads/mail" &&
	b_idle &&
	fetch_flags Lists >a.lists && fetch_flags_b Lists >b.lists &&
	test_cmp a.lists b.lists &&
	grep -q "Draft" b.lists
'

test_expect_success 'a folder deleted on A is deleted on B' '
	old=$(mail_head) &&
	imap "DELETE Lists" >/dev/null &&
	mail_moved_from "$old" >/dev/null &&
	transfer "$REPO" "$B_REPO" a &&
	b_idle &&
	! test -e "$B/Maildir/.Lists" &&
	! imap_b "SELECT Lists" >/dev/null 2>&1
'

test_done
