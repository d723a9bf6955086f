#!/bin/sh
test_description='real Postfix delivers through a pipe(8) transport running maildag-lda'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-postfix.sh"

ME=$TEST_USER@localhost

send() { pf_send_msg "$@"; }
qid() { pf_qid "$@"; }
delivered_once() { pf_delivered_once "$@"; }

# status ID: what Postfix logged for message ID, e.g. "bounced 5.2.3"
status() {
	pf_wait_status "$(qid "$1")" &&
	echo "$(pf_status "$(qid "$1")") $(pf_dsn "$(qid "$1")")"
}

# As an admin would set it up: every local recipient through the
# "maildag" pipe(8) service, one recipient per delivery, the extension as
# the folder.  pipe(8) sets no HOME: the LDA must find the home itself.
# No R flag: the LDA adds Return-Path from -f.  null_sender= makes
# ${sender} empty for bounces (pipe's default is "MAILER-DAEMON").  A second service with a
# broken command line shows what Postfix makes of EX_USAGE.
test_expect_success 'setup: a private Postfix with a pipe transport' '
	pf_setup &&
	pf_master_add <<-EOF &&
	maildag   unix  -       n       n       -       -       pipe
	  flags=Dhu user=$TEST_USER null_sender=
	  argv=$BIN/maildag-lda -f \${sender} -a \${recipient} -m \${extension}
	maildag-broken unix -   n       n       -       -       pipe
	  flags=Dhu user=$TEST_USER argv=$BIN/maildag-lda -Z \${recipient}
	EOF
	pf_set "local_transport = maildag" &&
	pf_set "maildag_destination_recipient_limit = 1" &&
	pf_set "transport_maps = inline:{{$TEST_USER+broken@localhost = maildag-broken:}}" &&
	pf_set "smtpd_sender_restrictions = check_sender_access inline:{{burst@example.org = HOLD}}" &&
	pf_start &&
	pf_postconf -M maildag/unix | grep -q "argv=$BIN/maildag-lda"
'

test_expect_success 'a mailbox that may not be created: bounced (5.1.1), nothing made' '
	echo "{\"create\": false}" |
		mta_write_user_file "$USER_HOME/.config/maildag/config.json" 600 &&
	send nocreate &&
	test "$(status nocreate)" = "bounced 5.1.1" &&
	pf_wait_removed "$(qid nocreate)" &&
	! test -e "$MAILDIR" && ! test -e "$REPO" &&
	as_user rm "$USER_HOME/.config/maildag/config.json"
'

test_expect_success 'three messages: each in new/ once, committed once, relay=maildag' '
	send p1 && send p2 && send p3 &&
	delivered_once p1 && delivered_once p2 && delivered_once p3 &&
	for m in p1 p2 p3; do
		test "$(pf_attempts "$(qid $m)")" = 1 &&
		pf_status_lines "$(qid $m)" | grep -q " relay=maildag, .*status=sent (delivered via maildag service)" ||
		exit 1
	done &&
	test "$(find "$MAILDIR/new" -type f | wc -l)" = 3 &&
	test "$(tree_files | wc -l)" = 3 &&
	test -z "$(find "$MAILDIR" "$REPO" ! -user "$TEST_USER")" &&
	test_repo_consistent
'

test_expect_success 'the stored message: one Return-Path from -f, Delivered-To, body intact' '
	f=$(grep -lF "Message-ID: <p1.$$@" "$MAILDIR"/new/*) &&
	head -n 1 "$f" >first &&
	echo "Return-Path: <alice@example.org>" >expect &&
	test_cmp expect first &&
	test "$(grep -c "^Return-Path:" "$f")" = 1 &&
	! grep -q "^From " "$f" &&
	grep -q "^Delivered-To: $ME\$" "$f" &&
	mta_msg p1 >expect &&
	tail -n "$(wc -l <expect)" "$f" >tail &&
	test_cmp expect tail
'

test_expect_success 'the null sender is delivered with Return-Path: <>' '
	send nullsender "$ME" "" &&
	delivered_once nullsender &&
	f=$(grep -lF "Message-ID: <nullsender.$$@" "$MAILDIR"/new/*) &&
	head -n 1 "$f" >first &&
	echo "Return-Path: <>" >expect && test_cmp expect first
'

test_expect_success '+ext goes to .ext through -m ${extension}; +nosuch to INBOX' '
	as_user mkdir -p "$MAILDIR/.ext/cur" "$MAILDIR/.ext/new" "$MAILDIR/.ext/tmp" &&
	as_user touch "$MAILDIR/.ext/maildirfolder" &&
	send ext1 "$TEST_USER+ext@localhost" &&
	send ext2 "$TEST_USER+nosuch@localhost" &&
	send ext3 "$TEST_USER+.git@localhost" &&
	delivered_once ext1 .ext &&
	delivered_once ext2 && delivered_once ext3 &&
	! test -e "$MAILDIR/.nosuch" &&
	test_repo_consistent
'

test_expect_success 'a burst of 8 messages released at once: each delivered once' '
	for i in 1 2 3 4 5 6 7 8; do
		send burst$i "$ME" burst@example.org &&
		pf_queued "$(qid burst$i)" || exit 1
	done &&
	pf_postsuper -H ALL &&
	pf_flush &&
	for i in 1 2 3 4 5 6 7 8; do
		delivered_once burst$i &&
		test "$(pf_attempts "$(qid burst$i)")" = 1 || exit 1
	done &&
	test_repo_consistent
'

objects_readonly() { find "$REPO/objects" -type d -exec chmod u-w {} +; }
objects_writable() { find "$REPO/objects" -type d -exec chmod u+w {} +; }

test_expect_success 'an unwritable repository: deferred with 4.x.x, still queued' '
	head=$(mgit rev-parse refs/heads/mail) &&
	objects_readonly &&
	send defer1 &&
	status defer1 | grep -q "^deferred 4\.[0-9]*\.[0-9]*\$" &&
	pf_queued "$(qid defer1)" &&
	test "$(mgit rev-parse refs/heads/mail)" = "$head"
'

test_expect_success 'fixed and flushed: delivered exactly once' '
	objects_writable &&
	pf_flush &&
	pf_wait_status "$(qid defer1)" 2 &&
	test "$(pf_status "$(qid defer1)")" = sent &&
	test "$(pf_attempts "$(qid defer1)")" = 2 &&
	test "$(mta_count_messages_matching "Message-ID: <defer1.$$@")" = 1 &&
	mta_in_repo_once "Message-ID: <defer1.$$@" &&
	pf_wait_removed "$(qid defer1)" &&
	test_repo_consistent
'

test_expect_success 'over size_limit: bounced (5.2.3), nothing kept' '
	echo "{\"size_limit\": 3000}" |
		mta_write_user_file "$USER_HOME/.config/maildag/config.json" 600 &&
	head=$(mgit rev-parse refs/heads/mail) &&
	{ mta_msg big; for i in $(seq 1 100); do
		echo "padding line $i padding padding padding padding padding"; done; } |
		pf_send "$ME" >"$PF_DIR/qid.big" &&
	test "$(status big)" = "bounced 5.2.3" &&
	pf_wait_removed "$(qid big)" &&
	mta_not_delivered big &&
	test "$(mgit rev-parse refs/heads/mail)" = "$head" &&
	as_user rm "$USER_HOME/.config/maildag/config.json"
'

test_expect_success 'a broken command line (64): bounced with 5.3.5, nothing kept' '
	head=$(mgit rev-parse refs/heads/mail) &&
	send usage "$TEST_USER+broken@localhost" &&
	test "$(status usage)" = "bounced 5.3.5" &&
	pf_status_lines "$(qid usage)" | grep -q " relay=maildag-broken, " &&
	mta_not_delivered usage &&
	test "$(mgit rev-parse refs/heads/mail)" = "$head"
'

test_expect_success 'in the end: what Postfix delivered is there once, nothing else' '
	pf_check_all 16
'

test_done
