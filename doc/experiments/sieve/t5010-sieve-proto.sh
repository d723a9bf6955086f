#!/bin/sh
test_description='real Postfix -> the prototype -> dovecot-lda with Pigeonhole'
# E10 of doc/sieve.md, a draft of must-show item 2's test: Postfix's
# mailbox_command runs the prototype (proto.c, built by build-proto.sh),
# which runs dovecot-lda with Sieve as its child and commits what it
# wrote.  Not part of make check; from build/:
#
#   sh ../doc/experiments/sieve/t5010-sieve-proto.sh
#
# The real test (t/t5010-sieve.sh) will run maildag-lda instead, and add
# replication and quorum (see doc/sieve.md, "Tests").
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-postfix.sh"

PROTO=${PROTO:-/var/tmp/proto-sieve/proto}
LDA=/usr/lib/dovecot/dovecot-lda
[ -x "$PROTO" ] || test_skip_all "build the prototype first (build-proto.sh)"
[ -x "$LDA" ] && [ -e /usr/lib/dovecot/modules/lib90_sieve_plugin.so ] ||
	test_skip_all "dovecot-lda and Pigeonhole are not installed (dovecot-sieve)"

ME=$TEST_USER@localhost
DC=$TRASH/dovecot
SENT=$TRASH/sent

test_expect_success 'setup: Dovecot config, Sieve script, stub sendmail, Postfix' '
	mkdir -p "$DC" "$SENT" && chmod 777 "$SENT" &&
	cat >"$DC/dovecot.conf" <<-EOF &&
	mail_location = maildir:~/Maildir
	log_path = $DC/dovecot.log
	base_dir = $DC/run
	state_dir = $DC/state
	ssl = no
	protocols =
	sendmail_path = $DC/sendmail
	postmaster_address = postmaster@maildag.test
	lda_mailbox_autocreate = yes
	lda_mailbox_autosubscribe = yes
	protocol lda {
	  mail_plugins = \$mail_plugins sieve
	}
	plugin {
	  sieve = file:~/sieve;active=~/.dovecot.sieve
	}
	EOF
	: >"$DC/dovecot.log" && chmod 666 "$DC/dovecot.log" &&
	printf "#!/bin/sh\n{ echo \"argv: \$*\"; cat; } >\"%s/\$(date +%%s%%N).\$\$\"\n" \
		"$SENT" >"$DC/sendmail" && chmod 755 "$DC" "$DC/sendmail" &&
	chmod 644 "$DC/dovecot.conf" &&
	as_user mkdir -p "$USER_HOME/sieve" "$MAILDIR/cur" "$MAILDIR/new" "$MAILDIR/tmp" &&
	cat >"$TRASH/main.sieve" <<-EOF &&
	require ["fileinto", "vacation", "mailbox"];
	if header :contains "subject" "spam" { fileinto :create "Junk"; stop; }
	if header :contains "subject" "drop" { discard; stop; }
	if header :contains "subject" "away" {
	  vacation :days 1 :addresses ["$ME"] "I am away.";
	}
	EOF
	as_user cp "$TRASH/main.sieve" "$USER_HOME/sieve/main.sieve" &&
	as_user ln -s sieve/main.sieve "$USER_HOME/.dovecot.sieve" &&
	as_user maildag init >/dev/null &&
	cat >"$BIN/sieve-lda" <<-EOF &&
	#!/bin/sh
	# the prototype, killed at the point named in $TRASH/kill (once)
	k=\$(cat "$TRASH/kill" 2>/dev/null)
	exec "$PROTO" \${k:+-k "\$k"} -- "$LDA" -c "$DC/dovecot.conf" -e \\
		-f "\$SENDER" -a "\$RECIPIENT"
	EOF
	chmod 755 "$BIN/sieve-lda" && : >"$TRASH/kill" && chmod 666 "$TRASH/kill" &&
	pf_setup &&
	pf_set "mailbox_command = $BIN/sieve-lda" &&
	pf_start
'

test_expect_success 'no filing rule: INBOX, committed once, Postfix says sent' '
	pf_send_msg plain1 &&
	pf_delivered_once plain1 &&
	test_repo_consistent
'

test_expect_success 'fileinto :create "Junk": filed, the folder and message committed' '
	pf_send_msg spam1 &&
	pf_delivered_once spam1 .Junk &&
	mgit ls-tree -r --name-only refs/heads/mail | grep -qx ".Junk/maildirfolder" &&
	mgit show refs/heads/mail:subscriptions | grep -qx Junk &&
	test_repo_consistent
'

test_expect_success 'discard: Postfix says sent, nothing stored or committed' '
	before=$(mgit rev-parse refs/heads/mail) &&
	pf_send_msg drop1 &&
	qid=$(pf_qid drop1) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = sent &&
	test "$(mta_count_messages_matching "Message-ID: <drop1.$$@")" = 0 &&
	test "$(mgit rev-parse refs/heads/mail)" = "$before"
'

test_expect_success 'vacation: one reply to the sender, the message in INBOX' '
	pf_send_msg away1 &&
	pf_delivered_once away1 &&
	test "$(ls "$SENT" | wc -l)" = 1 &&
	grep -q "^argv: .*alice@example.org" "$SENT"/* &&
	grep -q "^Subject: Auto: mta test away1" "$SENT"/* &&
	grep -q "^Auto-Submitted: auto-replied" "$SENT"/*
'

test_expect_success 'killed after dovecot-lda wrote, before the commit: deferred, then one copy' '
	echo exited >"$TRASH/kill" &&
	pf_send_msg crash1 &&
	qid=$(pf_qid crash1) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = deferred &&
	test "$(mta_count_messages_matching "Message-ID: <crash1.$$@")" = 1 &&
	: >"$TRASH/kill" &&
	pf_flush &&
	pf_wait_status "$qid" 2 &&
	test "$(pf_status "$qid")" = sent &&
	pf_delivered_once crash1 &&
	test_repo_consistent
'

test_expect_success 'killed after the commit: the retry stores nothing more' '
	echo committed >"$TRASH/kill" &&
	pf_send_msg crash2 &&
	qid=$(pf_qid crash2) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = deferred &&
	: >"$TRASH/kill" && pf_flush && pf_wait_status "$qid" 2 &&
	test "$(pf_status "$qid")" = sent &&
	pf_delivered_once crash2 &&
	test_repo_consistent
'

test_expect_success 'a vacation delivery killed after the write: still one reply' '
	rm -f "$SENT"/* &&
	echo exited >"$TRASH/kill" &&
	pf_send_msg away2 "$ME" bob@example.org &&
	qid=$(pf_qid away2) && pf_wait_status "$qid" &&
	: >"$TRASH/kill" && pf_flush && pf_wait_status "$qid" 2 &&
	test "$(pf_status "$qid")" = sent &&
	pf_delivered_once away2 &&
	test "$(ls "$SENT" | wc -l)" = 1 &&
	grep -q "^argv: .*bob@example.org" "$SENT"/*
'

test_done
