#!/bin/sh
test_description='format 2: two replicas, each with maildag-syncd and a real Dovecot: deliveries on both, keywords set through IMAP on one shown by name on the other, the same UID, UIDVALIDITY and UIDNEXT per message on both, and no error in either Dovecot log'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"

. "$abs_top_srcdir/t/lib-imap.sh"

test_expect_success 'setup: r1 format 2, r2 starts from its history' '
	replica_setup imap $TEST_USER $TEST_USER &&
	imap_format2_pair &&
	replica_start 1 && replica_start 2
'

test_expect_success 'a delivery on r1 shows on r2 with the same UID' '
	replica_deliver 1 one &&
	views_agree one &&
	cat view.1 &&
	grep -q "^one 1 $" view.1 &&
	grep -q "^UIDNEXT 2$" view.1
'

test_expect_success 'a delivery on r2 takes a UID of its slot, shown on r1' '
	replica_deliver 2 two &&
	views_agree one two &&
	cat view.2 &&
	grep -q "^two 513 $" view.2 &&
	grep -q "^UIDNEXT 514$" view.2
'

test_expect_success 'ten keywords set through IMAP on r1 show by name on r2' '
	replica_flag 1 one "\\Seen $KEYWORDS" &&
	views_agree one two &&
	cat view.2 &&
	for k in $KEYWORDS; do
		grep "^one 1 " view.2 | grep -qF " $k" || {
			echo "missing $k"; return 1; }
	done &&
	grep "^one 1 " view.2 | grep -qF "\\Seen"
'

test_expect_success 'a keyword taken off on r2 goes off on r1; a third delivery' '
	replica_unflag 2 one "work-project \$Junk" &&
	replica_deliver 1 three &&
	views_agree one two three &&
	cat view.1 &&
	! grep "^one " view.1 | grep -qF "work-project" &&
	! grep "^one " view.1 | grep -qF "\$Junk" &&
	grep "^one " view.1 | grep -qF "NonJunk"
'

test_expect_success 'a folder made through IMAP on r2, a message moved there on r1' '
	replica_imap 2 "CREATE Archive" >/dev/null &&
	# r1 has it on disk, its uidlist with r2'"'"'s UIDVALIDITY, before
	# its Dovecot is asked (one that opened it first would pick its own)
	replica_wait_log 1 "applied [0-9a-f]*: 1 folders created" &&
	FOLDER=Archive views_agree &&
	cat view.2 &&
	replica_move 1 two Archive &&
	FOLDER=Archive views_agree two &&
	cat view.1 &&
	views_agree one three &&
	! grep -q "^two " view.1
'

test_expect_success 'a COPY on r1 keeps its UID when maildag gives it a key of its own' '
	replica_on_message 1 one INBOX "COPY \$ Archive" &&
	replica_imap 1 "SELECT Archive" "UID FETCH 1:* (UID)" >before &&
	grep -q "FETCH (UID 2)" before &&
	replica_wait_log 1 "repeats a key; renamed to" &&
	FOLDER=Archive views_agree one two &&
	cat view.1 &&
	grep -q "^one 2 " view.1 &&
	ls "$(replica_maildir 1)/.Archive/cur" | grep -q "\.c[0-9a-f]\{8\}," &&
	views_agree one three
'

test_expect_success 'an APPEND on r1 (Dovecot numbers it) and an expunge on r2 show on both' '
	msg=$(printf "Message-ID: <appended.1@example.org>\r\nSubject: a\r\n\r\nbody\r\n") &&
	replica_imap 1 "APPEND INBOX (\\Seen NonJunk) {$(printf "%s" "$msg" | wc -c)+}
$msg" >append.out &&
	grep -q "APPENDUID" append.out &&
	replica_expunge 2 three &&
	views_agree one appended &&
	cat view.1 &&
	! grep -q "^three " view.1 &&
	grep -q "^appended [0-9]* NonJunk \\\\Seen$" view.1
'

test_expect_success 'Sieve on r1 files a message with keywords into a new folder; r2 shows them by name' '
	[ -x /usr/lib/dovecot/dovecot-lda ] &&
	[ -e /usr/lib/dovecot/modules/lib90_sieve_plugin.so ] || {
		echo "dovecot-lda or Pigeonhole missing: not checked"; return 0; }
	conf=$TRASH/imap/dovecot-r1/dovecot.conf &&
	cat >>"$conf" <<-\EOF &&
	lda_mailbox_autocreate = yes
	protocol lda {
	  mail_plugins = $mail_plugins sieve
	}
	plugin {
	  sieve = file:~/sieve;active=~/.dovecot.sieve
	}
	EOF
	cat >main.sieve <<-\EOF &&
	require ["fileinto", "mailbox", "imap4flags"];
	if header :contains "subject" "tagged" {
	  fileinto :create :flags ["\\Seen", "$Junk", "sieve-tag"] "Lists";
	  stop;
	}
	EOF
	replica_run 1 sh -c "mkdir -p ~/sieve && cat >~/sieve/main.sieve && ln -sf sieve/main.sieve ~/.dovecot.sieve" <main.sieve &&
	replica_config 1 --extra "\"uid_slot\": 0, \"dovecot_config\": \"$conf\"" &&
	replica_deliver 1 tagged --dovecot-lda &&
	replica_wait_log 2 "applied [0-9a-f]*: .*1 folders created" &&
	FOLDER=Lists views_agree tagged &&
	cat view.2 &&
	grep -q "^tagged [0-9]* \$Junk \\\\Seen sieve-tag$" view.2
'

test_expect_success 'the trees hold names, not letters; the logs are clean' '
	replica_git 1 ls-tree -r --name-only refs/heads/mail >names &&
	! grep -E "/[^/]*:2,[A-Z]*[a-z]" names &&
	dovecot_logs_clean &&
	replica_fsck 1 && replica_fsck 2 &&
	# maildag fsck compares the disk with the worktree by tree names:
	# a file with keyword letters is not "on disk ... in the worktree"
	ls "$(replica_maildir 1)/cur" | grep ":2,[A-Z]*[a-z]" &&
	! grep "on disk is" "$REPLICAS/mfsck.1" "$REPLICAS/mfsck.2"
'

test_done
