#!/bin/sh
test_description='maildag-syncd applies a change while the mail client changes the same message'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

command -v strace >/dev/null 2>&1 || test_skip_all 'strace is not installed (it holds the apply)'

STRACE_OUT=$TRASH/strace.out

test_expect_success 'setup: one message, seen by Dovecot' '
	test_message 1 | as_user maildag-lda &&
	syncd_start &&
	imap "SELECT INBOX" >/dev/null &&
	syncd_idle &&
	name=$(ls "$MAILDIR/cur") &&
	echo "$name" >name &&
	syncd_stop
'

# strace holds syncd's rename of that file for a few seconds: the window
# in which the mail client renames it first
test_expect_success 'mail flags it \Flagged while Dovecot marks it \Answered' '
	name=$(cat name) &&
	touch "$STRACE_OUT" && chmod 666 "$STRACE_OUT" &&
	( SYNCD_NAME=syncd; daemon_start syncd "$SYNCD_LOG" strace -f -qq \
		-o "$STRACE_OUT" -e trace=renameat2,rename,renameat \
		-e inject=renameat2:delay_enter=3000000 \
		-P "$MAILDIR/cur/$name" maildag-syncd -v ) &&
	wait_for "grep -q \"watching [0-9]* directories\" \"\$SYNCD_LOG\"" &&
	syncd_idle &&
	path=$(tree_path "$name") &&
	mail_edit "mv $path ${path%:2,*}:2,F" >remote &&
	wait_for "grep -q renameat2 \"\$STRACE_OUT\"" &&
	imap "SELECT INBOX" "STORE 1 +FLAGS (\\Answered)" >/dev/null &&
	test -e "$MAILDIR/cur/${name%:2,*}:2,R" &&
	wait_for "grep -q ENOENT \"\$STRACE_OUT\"" &&
	cat "$STRACE_OUT"
'

test_expect_success 'the client change is committed, merged with the other' '
	name=$(cat name) &&
	syncd_idle &&
	remote=$(cat remote) &&
	mgit log --format="%H %s" "$remote..refs/heads/mail" >log && cat log &&
	grep -q "mail client" log &&
	tree_state >tree && cat tree &&
	grep -q "^/cur/${name%:2,*}:2,FR\$" tree &&
	test "$(disk_state)" = "$(cat tree)" &&
	fetch_flags >flags && cat flags &&
	grep -q "Answered.*Flagged\|Flagged.*Answered" flags &&
	grep -q "left .* as the mail client changed it" "$SYNCD_LOG"
'

test_expect_success 'nothing lost, nothing twice' '
	test "$(tree_state | wc -l)" = 1 &&
	test_repo_consistent
'

test_done
