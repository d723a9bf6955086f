#!/bin/sh
test_description='Sieve kept: real Postfix -> maildag-lda -> dovecot-lda with Pigeonhole; what Sieve stored is committed once, replicated, and the quorum decides the exit status'
# Must-show item 2 of issue 14; the design is doc/sieve.md.  Postfix's
# mailbox_command runs maildag-lda with "dovecot_lda" in the user's
# config; dovecot-lda (private config, Pigeonhole, a stub sendmail that
# keeps what vacation sends) runs as its child.  The user's maildag-syncd
# pushes to a second replica (file://) and "quorum": 2 makes maildag-lda
# wait for it.
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-postfix.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
# a maildag-lda held at a test hook is let go however the script ends
release_hold() {
	[ -p "$TRASH/fifo" ] || return 0
	: >"$TRASH/hold"
	exec 3<>"$TRASH/fifo" && exec 3>&-
}
mta_at_exit release_hold
mta_at_exit lib_dovecot_cleanup

LDA=/usr/lib/dovecot/dovecot-lda
[ -x "$LDA" ] && [ -e /usr/lib/dovecot/modules/lib90_sieve_plugin.so ] ||
	test_skip_all "dovecot-lda and Pigeonhole are not installed (dovecot-sieve)"
[ -x "$BIN/maildag-syncd" ] || test_skip_all "maildag-syncd is not built"

ME=$TEST_USER@localhost
DC=$TRASH/dovecot-lda
SENT=$TRASH/sent
B=$TRASH/b			# the second replica's home (same user)
BREPO=$B/.local/share/maildag/mail.git
bgit() { git -c safe.directory='*' --git-dir="$BREPO" "$@"; }

# config QUORUM: the user's maildag config (replica a, peer b)
config() {
	cat <<-EOF | mta_write_user_file "$USER_HOME/.config/maildag/config.json" 600
	{ "node": "a", "quorum": $1, "lda_deadline": 60,
	  "dovecot_lda": "$LDA", "dovecot_config": "$DC/dovecot.conf",
	  "fetch_interval": 300, "backoff_min": 1, "backoff_max": 1,
	  "debounce_ms": 100,
	  "peers": { "b": { "url": "file://$BREPO" } } }
	EOF
}

# input_is_blob ID: the commit that added message ID names its input, the
# same bytes as what it stored (no Sieve edit)
input_is_blob() {
	local c
	c=$(mgit log --format=%H -1 --grep="^Input: " refs/heads/mail) &&
	mgit log -1 --format=%B "$c" >rec &&
	grep -q "^Input: " rec &&
	test "$(sed -n "s/^Input: //p" rec)" = "$(sed -n "s/^Blob: //p" rec | head -n 1)"
}

# recorded ID FOLDER: the one commit that added message ID (in FOLDER's
# new/) is maildag-lda's, with the delivery record and its Input line:
# maildag-syncd, running, left the file to it
recorded() {
	local f path
	f=$(grep -lF "Message-ID: <$1.$$@" "$MAILDIR${2:+/$2}"/new/*) &&
	path=$(tree_files | grep -F "/$(basename "$f")") &&
	mgit log --format=%B --diff-filter=A refs/heads/mail -- "$path" >rec2 &&
	grep -q "^deliver to " rec2 && grep -q "^Input: " rec2
}

# sieve_runs ID: how many times Pigeonhole ran for message ID
sieve_runs() { grep -c "msgid=<$1\.$$@.*stored mail into mailbox" "$DC/dovecot.log" || :; }

test_expect_success 'setup: Dovecot with Sieve, stub sendmail, two replicas, Postfix' '
	mkdir -p "$DC/run" "$DC/state" "$SENT" && chmod 777 "$SENT" &&
	cat >"$DC/dovecot.conf" <<-EOF &&
	mail_location = maildir:~/Maildir
	log_path = $DC/dovecot.log
	info_log_path = $DC/dovecot.log
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
	require ["fileinto", "vacation", "mailbox", "imap4flags", "reject"];
	if header :contains "subject" "spam" { fileinto :create "Junk"; stop; }
	if header :contains "subject" "drop" { discard; stop; }
	if header :contains "subject" "twice" { fileinto :create "Lists"; keep; stop; }
	if header :contains "subject" "seen" { fileinto :create :flags "\\\\Seen" "Lists"; stop; }
	if header :contains "subject" "refuse" { reject "not here"; stop; }
	if header :contains "subject" "away" {
	  vacation :days 1 :addresses ["$ME"] "I am away.";
	}
	EOF
	as_user cp "$TRASH/main.sieve" "$USER_HOME/sieve/main.sieve" &&
	as_user ln -s sieve/main.sieve "$USER_HOME/.dovecot.sieve" &&
	mkdir -p "$B/.config/maildag" && chown -R "$TEST_USER:" "$B" &&
	cat <<-EOF | mta_write_user_file "$B/.config/maildag/config.json" 600 &&
	{ "node": "b", "peers": { "a": { "url": "file://$REPO" } } }
	EOF
	as_user -h "$B" maildag init >/dev/null &&
	config 2 &&
	as_user maildag init >/dev/null &&
	syncd_start &&
	cat >"$BIN/sieve-lda" <<-EOF &&
	#!/bin/sh
	# maildag-lda, killed at the point named in $TRASH/crash (a test hook)
	MAILDAG_TEST_CRASH=\$(cat "$TRASH/crash" 2>/dev/null)
	MAILDAG_TEST_HOLD=\$(cat "$TRASH/hold" 2>/dev/null)
	export MAILDAG_TEST_CRASH MAILDAG_TEST_HOLD
	exec "$BIN/maildag-lda" -f "\$SENDER" -a "\$RECIPIENT"
	EOF
	chmod 755 "$BIN/sieve-lda" && : >"$TRASH/crash" && : >"$TRASH/hold" &&
	chmod 666 "$TRASH/crash" "$TRASH/hold" &&
	pf_setup &&
	pf_set "mailbox_command = $BIN/sieve-lda" &&
	pf_start
'

test_expect_success 'no filing rule: INBOX, committed once with its input, sent' '
	pf_send_msg plain1 &&
	pf_delivered_once plain1 &&
	input_is_blob &&
	recorded plain1 &&
	test "$(sieve_runs plain1)" = 1 &&
	test_repo_consistent
'

test_expect_success 'fileinto :create "Junk": the folder and the message in one commit' '
	pf_send_msg spam1 &&
	pf_delivered_once spam1 .Junk &&
	recorded spam1 .Junk &&
	mgit ls-tree -r --name-only refs/heads/mail >paths &&
	grep -qx ".Junk/maildirfolder" paths &&
	mgit show refs/heads/mail:subscriptions | grep -qx Junk &&
	test_repo_consistent
'

test_expect_success 'fileinto and keep: two copies, one commit; :flags: straight to cur/' '
	pf_send_msg twice1 &&
	qid=$(pf_qid twice1) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = sent &&
	test "$(mta_count_messages_matching "Message-ID: <twice1.$$@")" = 2 &&
	test "$(mta_repo_count "Message-ID: <twice1.$$@")" = 2 &&
	f1=$(grep -lF "Message-ID: <twice1.$$@" "$MAILDIR"/new/*) &&
	f2=$(grep -lF "Message-ID: <twice1.$$@" "$MAILDIR"/.Lists/new/*) &&
	c1=$(mgit log --format=%H --diff-filter=A refs/heads/mail -- "new/*/$(basename "$f1")") &&
	c2=$(mgit log --format=%H --diff-filter=A refs/heads/mail -- ".Lists/new/*/$(basename "$f2")") &&
	test -n "$c1" && test "$c1" = "$c2" &&
	pf_send_msg seen1 &&
	qid=$(pf_qid seen1) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = sent &&
	f=$(grep -lF "Message-ID: <seen1.$$@" "$MAILDIR"/.Lists/cur/*) &&
	case "$f" in *:2,S) ;; *) false;; esac &&
	test "$(mta_repo_count "Message-ID: <seen1.$$@")" = 1 &&
	test_repo_consistent
'

test_expect_success 'reject: sent (Dovecot sent the refusal itself), nothing stored' '
	rm -f "$SENT"/* &&
	pf_send_msg refuse1 &&
	qid=$(pf_qid refuse1) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = sent &&
	test "$(mta_count_messages_matching "Message-ID: <refuse1.$$@")" = 0 &&
	test "$(ls "$SENT" | wc -l)" = 1 &&
	grep -q "not here" "$SENT"/*
'

test_expect_success 'the filed message is replicated: the peer holds it, its Maildir too' '
	name=$(basename "$(grep -lF "Message-ID: <spam1.$$@" "$MAILDIR"/.Junk/new/*)") &&
	bgit ls-tree -r --name-only refs/peers/a/mail >bpaths &&
	grep -q "^\.Junk/new/../$name\$" bpaths &&
	daemon_start syncd-b "$TRASH/syncd-b.log" env HOME="$B" maildag-syncd -v &&
	wait_for "test -e \"$B/Maildir/.Junk/new/$name\"" &&
	daemon_stop syncd-b &&
	cmp "$MAILDIR/.Junk/new/$name" "$B/Maildir/.Junk/new/$name" &&
	kill -0 "$(daemon_pid syncd)"
'

test_expect_success 'discard: sent, nothing stored, refs/heads/mail unmoved' '
	before=$(mgit rev-parse refs/heads/mail) &&
	pf_send_msg drop1 &&
	qid=$(pf_qid drop1) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = sent &&
	test "$(mta_count_messages_matching "Message-ID: <drop1.$$@")" = 0 &&
	test "$(mgit rev-parse refs/heads/mail)" = "$before"
'

test_expect_success 'vacation: one reply through the stub sendmail, no token in it' '
	rm -f "$SENT"/* &&
	pf_send_msg away1 &&
	pf_delivered_once away1 &&
	test "$(ls "$SENT" | wc -l)" = 1 &&
	grep -q "^argv: .*alice@example.org" "$SENT"/* &&
	grep -q "^Auto-Submitted: auto-replied" "$SENT"/* &&
	! grep -qi "^Message-ID: .*\.mdg" "$SENT"/*
'

test_expect_success 'syncd sees the stored file before maildag-lda commits it: leaves it to the LDA' '
	mkfifo "$TRASH/fifo" && chmod 666 "$TRASH/fifo" &&
	echo "sieve-exited:$TRASH/fifo" >"$TRASH/hold" &&
	seen=$(grep -c "is a Sieve delivery maildag-lda commits" "$SYNCD_LOG" || :) &&
	pf_send_msg plain3 &&
	wait_for "grep -qsF \"Message-ID: <plain3.$$@\" \"$MAILDIR\"/new/*" &&
	wait_for "[ \$(grep -c \"is a Sieve delivery maildag-lda commits\" \"$SYNCD_LOG\") -gt $seen ]" &&
	test "$(mta_repo_count "Message-ID: <plain3.$$@")" = 0 &&
	: >"$TRASH/hold" && echo go >"$TRASH/fifo" &&
	pf_delivered_once plain3 &&
	recorded plain3 &&
	test_repo_consistent
'

test_expect_success 'no quorum (syncd down): deferred 4.4.0, committed; then sent, once' '
	syncd_stop &&
	pf_send_msg spam2 &&
	qid=$(pf_qid spam2) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = deferred &&
	grep -q "4\.4\.0.*quorum 2 not reached" "$PF_LOG" &&
	test "$(mta_repo_count "Message-ID: <spam2.$$@")" = 1 &&
	syncd_start &&
	pf_flush && pf_wait_status "$qid" 2 &&
	test "$(pf_status "$qid")" = sent &&
	pf_delivered_once spam2 .Junk &&
	recorded spam2 .Junk &&
	test "$(sieve_runs spam2)" = 1 &&
	test_repo_consistent
'

test_expect_success 'killed after dovecot-lda wrote, before the commit: one copy after the retry' '
	rm -f "$SENT"/* &&
	echo sieve-exited >"$TRASH/crash" &&
	pf_send_msg away2 "$ME" bob@example.org &&
	qid=$(pf_qid away2) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = deferred &&
	test "$(mta_count_messages_matching "Message-ID: <away2.$$@")" = 1 &&
	# as dovecot-lda leaves it when killed in its commit
	tok=$(ls "$REPO/maildag/pending" | sed -n "s/^[0-9a-f]*-mdg//p") &&
	test -n "$tok" &&
	{ as_user maildag fsck >fsck.out 2>&1 || :; } &&
	grep -q "Sieve delivery unfinished in the journal" fsck.out &&
	as_user sh -c "echo 999999:vm.mdg$tok >\"$MAILDIR/dovecot-uidlist.lock\"" &&
	: >"$TRASH/crash" &&
	pf_flush && pf_wait_status "$qid" 2 &&
	test "$(pf_status "$qid")" = sent &&
	pf_delivered_once away2 &&
	test "$(sieve_runs away2)" = 1 &&
	test "$(ls "$SENT" | wc -l)" = 1 &&
	! test -e "$MAILDIR/dovecot-uidlist.lock" &&
	test_repo_consistent
'

test_expect_success 'killed after the commit: the retry stores nothing more' '
	echo sieve-committed >"$TRASH/crash" &&
	pf_send_msg spam3 &&
	qid=$(pf_qid spam3) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = deferred &&
	: >"$TRASH/crash" &&
	pf_flush && pf_wait_status "$qid" 2 &&
	test "$(pf_status "$qid")" = sent &&
	pf_delivered_once spam3 .Junk &&
	test "$(sieve_runs spam3)" = 1 &&
	test_repo_consistent
'

test_expect_success 'killed before dovecot-lda ran: Sieve runs on the retry, once stored' '
	echo sieve-entry >"$TRASH/crash" &&
	pf_send_msg plain2 &&
	qid=$(pf_qid plain2) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = deferred &&
	test "$(mta_count_messages_matching "Message-ID: <plain2.$$@")" = 0 &&
	: >"$TRASH/crash" &&
	pf_flush && pf_wait_status "$qid" 2 &&
	test "$(pf_status "$qid")" = sent &&
	pf_delivered_once plain2 &&
	test_repo_consistent
'

test_expect_success 'past the deadline after dovecot-lda stored: 75 4.4.7; the retry commits it, Sieve not run again' '
	echo "sieve-exited:$TRASH/fifo" >"$TRASH/hold" &&
	mta_msg spam5 >spam5.eml &&
	s=0 && as_user env MAILDAG_TEST_HOLD="sieve-exited:$TRASH/fifo" \
		maildag-lda -d 1 -f alice@example.org -a "$ME" <spam5.eml 2>err || s=$? &&
	test "$s" = 75 && grep -q "^4\.4\.7 " err &&
	: >"$TRASH/hold" &&
	test "$(mta_count_messages_matching "Message-ID: <spam5.$$@")" = 1 &&
	as_user maildag-lda -f alice@example.org -a "$ME" <spam5.eml &&
	mta_stored_once spam5 .Junk &&
	test "$(sieve_runs spam5)" = 1 &&
	test_repo_consistent
'

# quota ARGS: Dovecot's count quota for dovecot-lda (a 1 KiB limit, so
# the Maildir is over it), with extra settings; no ARGS: none
quota() {
	sed -i "/^# quota/,\$d" "$DC/dovecot.conf" &&
	if [ $# -gt 0 ]; then
		printf "# quota\nmail_plugins = quota\nprotocol lda {\n  mail_plugins = quota sieve\n}\nplugin {\n  quota = count:User quota\n  quota_rule = *:storage=1k\n  quota_vsizes = yes\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n}\n%s\n" "$*" >>"$DC/dovecot.conf"
	fi
}

test_expect_success 'over quota (count backend): bounced 5.2.2; with quota_full_tempfail deferred 4.2.2' '
	quota "quota_full_tempfail = no" &&
	pf_send_msg full1 &&
	qid=$(pf_qid full1) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = bounced &&
	test "$(pf_dsn "$qid")" = 5.2.2 &&
	quota "quota_full_tempfail = yes" &&
	pf_send_msg full2 &&
	qid=$(pf_qid full2) && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = deferred &&
	test "$(pf_dsn "$qid")" = 4.2.2 &&
	test "$(mta_count_messages_matching "Message-ID: <full.$$@")" = 0 &&
	quota &&
	pf_flush && pf_wait_status "$qid" 2 &&
	test "$(pf_status "$qid")" = sent &&
	pf_delivered_once full2 &&
	test_repo_consistent
'

# ids DIR: the Message-IDs of the messages in Maildir DIR, sorted
ids() {
	find "$1" \( -path "*/cur/*" -o -path "*/new/*" \) -type f \
		-exec sed -n "s/^Message-ID: //p" {} + | sort
}

test_expect_success 'the second replica ends with the same messages, each once' '
	mgit rev-parse refs/heads/mail >want &&
	daemon_start syncd-b "$TRASH/syncd-b.log" env HOME="$B" maildag-syncd -v &&
	wait_for "bgit merge-base --is-ancestor \$(cat want) refs/heads/mail 2>/dev/null &&
		[ \"\$(ids \"$B/Maildir\" | md5sum)\" = \"\$(ids \"$MAILDIR\" | md5sum)\" ]" &&
	daemon_stop syncd-b &&
	ids "$MAILDIR" >a.ids && ids "$B/Maildir" >b.ids &&
	test_cmp a.ids b.ids &&
	test -z "$(grep -v twice1 a.ids | uniq -d)" && test "$(grep -c twice1 a.ids)" = 2 &&
	grep -q "away2" a.ids && grep -q "spam3" a.ids
'

test_expect_success 'the journal is empty at the end' '
	test -z "$(ls -A "$REPO/maildag/pending" 2>/dev/null)"
'

test_done
