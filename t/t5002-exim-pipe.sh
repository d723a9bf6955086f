#!/bin/sh
test_description='real Exim delivers through a pipe transport running maildag-lda'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-exim.sh"

ME=$TEST_USER@localhost

send() { ex_send_msg "$@"; }
eid() { ex_id "$@"; }
delivered_once() { ex_delivered_once "$@"; }

objects_readonly() { find "$REPO/objects" -type d -exec chmod u-w {} +; }
objects_writable() { find "$REPO/objects" -type d -exec chmod u+w {} +; }

# The transport (lib-exim.sh): "command = maildag-lda" (Exim 4.96 refuses
# tainted values such as $sender_address in a pipe command; SENDER and
# LOCAL_PART_SUFFIX reach the LDA in the environment), return_path_add,
# log_output, an empty message_suffix, default temp_errors.
test_expect_success 'setup: a private Exim with a pipe transport' '
	ex_setup &&
	grep -q "^  command = $BIN/maildag-lda\$" "$EX_CONF" &&
	ex -bt "$ME" >bt && grep -q "transport = maildag_pipe" bt &&
	ex -bt "$TEST_USER+ext@localhost" >bt && grep -q "transport = maildag_pipe" bt
'

test_expect_success 'a mailbox that may not be created: exit 67 is a bounce, nothing made' '
	echo "{\"create\": false}" |
		mta_write_user_file "$USER_HOME/.config/maildag/config.json" 600 &&
	send nocreate &&
	ex_queue_run &&
	test "$(ex_status "$(eid nocreate)")" = bounced &&
	ex_attempt_lines "$(eid nocreate)" | grep -q "returned 67" &&
	grep -q " $(eid nocreate) <$ME>: maildag_pipe transport output: 5\.1\.1 " "$EX_LOG" &&
	! test -e "$MAILDIR" && ! test -e "$REPO" &&
	as_user rm "$USER_HOME/.config/maildag/config.json" &&
	ex_queue_run &&
	test "$(ex_queue_count)" = 0
'

test_expect_success 'three messages over SMTP: each in new/ once, committed once' '
	send x1 && send x2 && send x3 &&
	for m in x1 x2 x3; do ex_queued "$(eid $m)" || exit 1; done &&
	ex_queue_run &&
	delivered_once x1 && delivered_once x2 && delivered_once x3 &&
	for m in x1 x2 x3; do
		ex_attempt_lines "$(eid $m)" |
		grep -q " => $TEST_USER <$ME> R=maildag_user T=maildag_pipe" ||
		exit 1
	done &&
	test "$(find "$MAILDIR/new" -type f | wc -l)" = 3 &&
	test "$(tree_files | wc -l)" = 3 &&
	test "$(ex_queue_count)" = 0 &&
	test -z "$(find "$MAILDIR" "$REPO" ! -user "$TEST_USER")" &&
	test_repo_consistent
'

test_expect_success 'the stored message: one Return-Path on top, no From_ line, body intact' '
	f=$(grep -lF "Message-ID: <x1.$$@" "$MAILDIR"/new/*) &&
	head -n 1 "$f" >first &&
	grep -qi "^Return-Path: <alice@example.org>\$" first &&
	test "$(grep -ci "^Return-Path:" "$f")" = 1 &&
	! grep -q "^From " "$f" &&
	grep -q "^Received: .*(helo=client.maildag.test)" "$f" &&
	mta_msg x1 >expect &&
	tail -n "$(wc -l <expect)" "$f" >tail &&
	test_cmp expect tail
'

test_expect_success 'the null sender is delivered with Return-Path: <>' '
	send nullsender "$ME" "" &&
	ex_queue_run &&
	delivered_once nullsender &&
	f=$(grep -lF "Message-ID: <nullsender.$$@" "$MAILDIR"/new/*) &&
	head -n 1 "$f" | grep -qi "^Return-Path: <>\$" &&
	test "$(grep -ci "^Return-Path:" "$f")" = 1
'

test_expect_success '+ext (LOCAL_PART_SUFFIX) goes to .ext when it exists, else INBOX' '
	as_user mkdir -p "$MAILDIR/.ext/cur" "$MAILDIR/.ext/new" "$MAILDIR/.ext/tmp" &&
	as_user touch "$MAILDIR/.ext/maildirfolder" &&
	send ext1 "$TEST_USER+ext@localhost" &&
	send ext2 "$TEST_USER+nosuch@localhost" &&
	send ext3 "$TEST_USER+.git@localhost" &&
	ls -a "$MAILDIR" >before &&
	ex_queue_run &&
	delivered_once ext1 .ext &&
	delivered_once ext2 &&
	delivered_once ext3 &&
	ls -a "$MAILDIR" >after && test_cmp before after &&
	test_repo_consistent
'

test_expect_success 'eight messages delivered by three queue runners at once: each once' '
	for i in 1 2 3 4 5 6 7 8; do send burst$i || exit 1; done &&
	{ ex_queue_run & ex_queue_run & ex_queue_run & wait; } &&
	for i in 1 2 3 4 5 6 7 8; do
		delivered_once burst$i || exit 1
	done &&
	test "$(ex_queue_count)" = 0 &&
	test_repo_consistent
'

test_expect_success 'an unwritable repository: exit 75 is a deferral, the message stays queued' '
	head=$(mgit rev-parse refs/heads/mail) &&
	objects_readonly &&
	send defer1 &&
	ex_queue_run &&
	test "$(ex_status "$(eid defer1)")" = deferred &&
	ex_attempt_lines "$(eid defer1)" | grep -q " == $ME R=maildag_user T=maildag_pipe defer .*returned 75" &&
	grep -q " $(eid defer1) <$ME>: maildag_pipe transport output: 4\.[0-9]*\.[0-9]* " "$EX_LOG" &&
	ex_queued "$(eid defer1)" &&
	! ex_completed "$(eid defer1)" &&
	test "$(mgit rev-parse refs/heads/mail)" = "$head"
'

test_expect_success 'fixed, forced queue run (-qff): delivered exactly once' '
	objects_writable &&
	ex_queue_run -qff &&
	test "$(ex_status "$(eid defer1)")" = delivered &&
	test "$(ex_attempts "$(eid defer1)")" = 2 &&
	ex_completed "$(eid defer1)" &&
	! ex_queued "$(eid defer1)" &&
	test "$(mta_count_messages_matching "Message-ID: <defer1.$$@")" = 1 &&
	mta_in_repo_once "Message-ID: <defer1.$$@" &&
	test_repo_consistent
'

test_expect_success 'over size_limit: exit 77 is a bounce, nothing kept' '
	echo "{\"size_limit\": 3000}" |
		mta_write_user_file "$USER_HOME/.config/maildag/config.json" 600 &&
	head=$(mgit rev-parse refs/heads/mail) &&
	{ mta_msg big; for i in $(seq 1 100); do
		echo "padding line $i padding padding padding padding padding"; done; } |
		ex_send "$ME" >"$EX_DIR/id.big" &&
	ex_queue_run &&
	test "$(ex_status "$(eid big)")" = bounced &&
	ex_attempt_lines "$(eid big)" | grep -q " \*\* $ME R=maildag_user T=maildag_pipe: .*returned 77" &&
	grep -q " $(eid big) <$ME>: maildag_pipe transport output: 5\.2\.3 " "$EX_LOG" &&
	ex_completed "$(eid big)" &&
	mta_not_delivered big &&
	test "$(mgit rev-parse refs/heads/mail)" = "$head" &&
	as_user rm "$USER_HOME/.config/maildag/config.json"
'

test_expect_success 'the bounce to the (remote) sender leaves the queue' '
	ex_queue_run &&
	test "$(ex_queue_count)" = 0
'

test_expect_success 'in the end: what Exim delivered is there once, nothing else' '
	ex_check_all 16
'

test_done
