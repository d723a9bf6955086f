#!/bin/sh
test_description='real Postfix delivers through mailbox_command = maildag-lda'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-postfix.sh"

ME=$TEST_USER@localhost

send() { pf_send_msg "$@"; }
qid() { pf_qid "$@"; }
delivered_once() { pf_delivered_once "$@"; }

test_expect_success 'setup: a private Postfix with mailbox_command' '
	pf_setup &&
	pf_set "mailbox_command = $BIN/maildag-lda -f \"\$SENDER\" -a \"\$RECIPIENT\"" &&
	pf_set "local_destination_concurrency_limit = 4" &&
	pf_set "smtpd_sender_restrictions = check_sender_access inline:{{burst@example.org = HOLD}}" &&
	pf_start &&
	pf_postconf -h mailbox_command | grep -q maildag-lda
'

test_expect_success 'a mailbox that may not be created: bounced (5.1.1), nothing made' '
	echo "{\"create\": false}" |
		mta_write_user_file "$USER_HOME/.config/maildag/config.json" 600 &&
	send nocreate &&
	pf_wait_status "$(qid nocreate)" &&
	test "$(pf_status "$(qid nocreate)")" = bounced &&
	test "$(pf_dsn "$(qid nocreate)")" = 5.1.1 &&
	pf_wait_removed "$(qid nocreate)" &&
	! test -e "$MAILDIR" && ! test -e "$REPO" &&
	as_user rm "$USER_HOME/.config/maildag/config.json"
'

test_expect_success 'three messages over SMTP: each in new/ once, each committed once' '
	send m1 && send m2 && send m3 &&
	delivered_once m1 && delivered_once m2 && delivered_once m3 &&
	test "$(find "$MAILDIR/new" -type f | wc -l)" = 3 &&
	test "$(tree_files | wc -l)" = 3 &&
	test_repo_consistent &&
	mta_wait_for 10 pf_queue_empty
'

test_expect_success 'Postfix logged one attempt each, delivered to the command' '
	for m in m1 m2 m3; do
		test "$(pf_attempts "$(qid $m)")" = 1 &&
		pf_status_lines "$(qid $m)" | grep -q "delivered to command: $BIN/maildag-lda" ||
		exit 1
	done
'

test_expect_success 'the stored message: Return-Path once on top, no From_ line, body intact' '
	f=$(grep -lF "Message-ID: <m1.$$@" "$MAILDIR"/new/*) &&
	head -n 1 "$f" >first &&
	echo "Return-Path: <alice@example.org>" >expect &&
	test_cmp expect first &&
	test "$(grep -c "^Return-Path:" "$f")" = 1 &&
	! grep -q "^From " "$f" &&
	grep -q "^Delivered-To: $ME\$" "$f" &&
	grep -q "^Received: from client.maildag.test" "$f" &&
	mta_msg m1 >expect &&
	tail -n "$(wc -l <expect)" "$f" >tail &&
	test_cmp expect tail
'

test_expect_success 'the Maildir and the repository belong to the recipient' '
	test "$(stat -c %U "$MAILDIR")" = "$TEST_USER" &&
	test "$(stat -c %U "$REPO")" = "$TEST_USER" &&
	test -z "$(find "$MAILDIR" "$REPO" ! -user "$TEST_USER")" &&
	mgit log --format=%s refs/heads/mail >log && test -s log
'

test_expect_success 'the null sender (a bounce) is delivered with Return-Path: <>' '
	send nullsender "$ME" "" &&
	delivered_once nullsender &&
	f=$(grep -lF "Message-ID: <nullsender.$$@" "$MAILDIR"/new/*) &&
	head -n 1 "$f" >first &&
	echo "Return-Path: <>" >expect && test_cmp expect first
'

test_expect_success '+ext goes to the folder .ext when it exists' '
	as_user mkdir -p "$MAILDIR/.ext/cur" "$MAILDIR/.ext/new" "$MAILDIR/.ext/tmp" &&
	as_user touch "$MAILDIR/.ext/maildirfolder" &&
	send ext1 "$TEST_USER+ext@localhost" &&
	delivered_once ext1 .ext &&
	test -z "$(grep -lF "Message-ID: <ext1.$$@" "$MAILDIR"/new/*)" &&
	test_repo_consistent
'

test_expect_success '+ext without such a folder goes to INBOX, no folder made' '
	send ext2 "$TEST_USER+nosuch@localhost" &&
	delivered_once ext2 &&
	! test -e "$MAILDIR/.nosuch" &&
	! tree_files | grep -q "^\.nosuch/"
'

test_expect_success 'an extension that is no folder name never becomes a path' '
	ls -a "$MAILDIR" >before &&
	send ext3 "$TEST_USER+.git@localhost" &&
	send ext4 "$TEST_USER+..@localhost" &&
	delivered_once ext3 && delivered_once ext4 &&
	ls -a "$MAILDIR" >after && test_cmp before after &&
	test_repo_consistent
'

test_expect_success 'a burst of 8 messages released at once: each delivered once' '
	for i in 1 2 3 4 5 6 7 8; do
		send burst$i "$ME" burst@example.org || exit 1
	done &&
	for i in 1 2 3 4 5 6 7 8; do
		pf_queued "$(qid burst$i)" || exit 1
	done &&
	before=$(mta_commit_count) &&
	pf_postsuper -H ALL &&
	pf_flush &&
	for i in 1 2 3 4 5 6 7 8; do
		delivered_once burst$i &&
		test "$(pf_attempts "$(qid burst$i)")" = 1 || exit 1
	done &&
	test "$(mta_commit_count)" -ge $((before + 1)) &&
	test_repo_consistent
'

# the LDA needs to write objects; make every object directory read-only
objects_readonly() { find "$REPO/objects" -type d -exec chmod u-w {} +; }
objects_writable() { find "$REPO/objects" -type d -exec chmod u+w {} +; }

test_expect_success 'an unwritable repository: deferred with 4.x.x, still queued' '
	head=$(mgit rev-parse refs/heads/mail) &&
	objects_readonly &&
	send defer1 &&
	pf_wait_status "$(qid defer1)" &&
	test "$(pf_status "$(qid defer1)")" = deferred &&
	pf_dsn "$(qid defer1)" | grep -q "^4\.[0-9]*\.[0-9]*\$" &&
	pf_status_lines "$(qid defer1)" | grep -q "status=deferred (.*[a-z]" &&
	pf_queued "$(qid defer1)" &&
	test "$(mgit rev-parse refs/heads/mail)" = "$head"
'

test_expect_success 'fixed and flushed: delivered exactly once' '
	objects_writable &&
	pf_flush &&
	pf_wait_status "$(qid defer1)" 2 &&
	delivered_once_after_retry=$(pf_status "$(qid defer1)") &&
	test "$delivered_once_after_retry" = sent &&
	test "$(pf_attempts "$(qid defer1)")" = 2 &&
	test "$(mta_count_messages_matching "Message-ID: <defer1.$$@")" = 1 &&
	mta_in_repo_once "Message-ID: <defer1.$$@" &&
	pf_wait_removed "$(qid defer1)" &&
	test_repo_consistent
'

test_expect_success 'over size_limit: bounced (5.2.3), nothing kept; smaller mail still delivered' '
	echo "{\"size_limit\": 3000}" |
		mta_write_user_file "$USER_HOME/.config/maildag/config.json" 600 &&
	head=$(mgit rev-parse refs/heads/mail) &&
	{ mta_msg big; for i in $(seq 1 100); do
		echo "padding line $i padding padding padding padding padding"; done; } |
		pf_send "$ME" >"$PF_DIR/qid.big" &&
	pf_wait_status "$(qid big)" &&
	test "$(pf_status "$(qid big)")" = bounced &&
	test "$(pf_dsn "$(qid big)")" = 5.2.3 &&
	pf_wait_removed "$(qid big)" &&
	mta_not_delivered big &&
	test "$(mgit rev-parse refs/heads/mail)" = "$head" &&
	send small &&
	delivered_once small &&
	as_user rm "$USER_HOME/.config/maildag/config.json"
'

test_expect_success 'in the end: what Postfix delivered is there once, nothing else' '
	pf_check_all 18
'

test_done
