#!/bin/sh
test_description='virtual mailboxes over ssh: one key per server serves every mailbox of the mail user, and the README runbooks for a virtual site: add a mailbox, move one to another site'
# Three servers, each the mail user (vmail) of its own site directory:
# r1 and r2 are one site (a@, b@, c@example.org, replicated with each
# other); r3 is another site (d@example.org).  Every link is ssh through
# the test sshd, each server's key in the others' authorized_keys with
# the forced command "maildag serve --peer <node>", no -a: the path the
# peer asks for picks the mailbox.  Then c@ moves from r1/r2 to r3, step
# by step as the README's runbook says.
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
[ -n "$PYTHON" ] || test_skip_all "no python3 to read maildag status --json"
test_have_prereq ROOT || test_skip_all "needs root for three users and sshd"
. "$abs_top_srcdir/t/lib-sshd.sh"
sshd_start || test_skip_all "no test sshd"
. "$abs_top_srcdir/t/lib-replica.sh"

U1=maildagvs1 U2=maildagvs2 U3=maildagvs3

# key_line I: the authorized_keys line of replica I (README, "Runbooks")
key_line() {
	printf 'command="%s serve --peer %s",restrict %s\n' "$BIN/maildag" \
		"$(replica_node "$1")" "$(cat "$(replica_home "$1")/.ssh/id_ed25519.pub")"
}
# authorize J I...: J's authorized_keys holds the lines of I..., nothing else
authorize() {
	local j=$1 i
	shift
	: >"$SSHD_DIR/keys/$(replica_user "$j")" || return 1
	for i in "$@"; do
		key_line "$i" >>"$SSHD_DIR/keys/$(replica_user "$j")" || return 1
	done
}

# vpeer I J: replica J as a peer of I's virtual mailboxes, over ssh
vpeer() {
	printf '"%s": { "url": "ssh://%s@127.0.0.1:%s%s/vmail/%%d/%%n/mail.git", "host_key": "%s", "identity": "%s/.ssh/id_ed25519" }' \
		"$(replica_node "$2")" "$(replica_user "$2")" "$(replica_sshd_port)" \
		"$(replica_home "$2")" "$(replica_sshd_fingerprint)" "$(replica_home "$1")"
}
# vconfig I PEERS MAILBOXES: replica I's configuration; PEERS and
# MAILBOXES the JSON of "virtual"'s peers and mailboxes
vconfig() {
	replica_write_config "$1" "{ \"node\": \"$(replica_node "$1")\",
	  \"debounce_ms\": 100, \"fetch_interval\": 5, \"backoff_min\": 1,
	  \"backoff_max\": 2, \"net_timeout\": 10,
	  \"virtual\": { \"maildir\": \"$(replica_home "$1")/vmail/%d/%n/Maildir\",
	    \"repository\": \"$(replica_home "$1")/vmail/%d/%n/mail.git\",
	    \"peers\": { $2 }, \"mailboxes\": { $3 } } }"
}

# vstart I N: start replica I's daemon and wait until it serves its N
# mailboxes (replica_start waits for a line of one mailbox's daemon)
vstart() {
	local log before
	log=$(replica_log "$1") || return 1
	before=$(grep -c "serving [0-9]* mailboxes" "$log" 2>/dev/null || :)
	(
		TEST_USER=$(replica_user "$1") && USER_HOME=$(replica_home "$1") &&
		daemon_start "$(replica_set)-r$1" "$log" \
			env XDG_CONFIG_HOME="$USER_HOME/.config" \
			XDG_RUNTIME_DIR="$USER_HOME/run" maildag-syncd -v
	) &&
	wait_for "[ \$(grep -c \"serving $2 mailboxes\" \"$log\") -gt ${before:-0} ]" 60 || {
		tail -n 20 "$log" >&2; return 1; }
}

# vmaildir I ADDRESS, vrepo I ADDRESS
vmaildir() { echo "$(replica_home "$1")/vmail/${2#*@}/${2%@*}/Maildir"; }
vrepo() { echo "$(replica_home "$1")/vmail/${2#*@}/${2%@*}/mail.git"; }
vgit() {
	local i=$1 a=$2
	shift 2
	git -c safe.directory='*' --git-dir="$(vrepo "$i" "$a")" "$@"
}
# vdeliver I ADDRESS ID: maildag-lda -a on replica I
vdeliver() { test_message "$3" | replica_run "$1" maildag-lda -a "$2"; }
# vhas I ADDRESS ID: message ID is in the mailbox's Maildir on replica I, once
vhas() {
	test "$(grep -rlF "Message-ID: <$3.$$@" "$(vmaildir "$1" "$2")" 2>/dev/null |
		grep -c '/\(cur\|new\)/')" = 1
}
# vids I ADDRESS: the Message-IDs in the mailbox on replica I, sorted
vids() {
	find "$(vmaildir "$1" "$2")" \( -path "*/cur/*" -o -path "*/new/*" \) \
		-type f -exec sed -n "s/^Message-ID: //p" {} + | sort
}
# vsame ADDRESS I J: the same messages and the same tree on I and J
vsame() {
	[ "$(vids "$2" "$1")" = "$(vids "$3" "$1")" ] &&
	[ "$(vgit "$2" "$1" rev-parse 'refs/heads/mail^{tree}')" = \
	  "$(vgit "$3" "$1" rev-parse 'refs/heads/mail^{tree}')" ]
}
# vpeers I ADDRESS: how many peers maildag -a ADDRESS status lists
vpeers() {
	replica_run "$1" maildag -a "$2" status --json >st.json &&
	json_get "len(d[\"peers\"])" <st.json
}
# vpeer_state I ADDRESS PEER: "ahead behind" of maildag -a ADDRESS status
vpeer_state() {
	replica_run "$1" maildag -a "$2" status --json >st.json &&
	json_get "\"%s %s\" % (peer(\"$3\")[\"ahead\"], peer(\"$3\")[\"behind\"])" <st.json
}

BOX_A='"a@example.org": {}' BOX_B='"b@example.org": {}' BOX_C='"c@example.org": {}'
BOX_D='"d@example.org": {}'

test_expect_success 'setup: r1 and r2 one site of three virtual mailboxes, r3 another site; one key per server, no -a' '
	replica_setup vs $U1 $U2 $U3 &&
	vconfig 1 "$(vpeer 1 2)" "$BOX_A, $BOX_B, $BOX_C" &&
	vconfig 2 "$(vpeer 2 1)" "$BOX_A, $BOX_B, $BOX_C" &&
	vconfig 3 "" "$BOX_D" &&
	authorize 1 2 && authorize 2 1 && : >"$SSHD_DIR/keys/$U3" &&
	vstart 1 3 && vstart 2 3 && vstart 3 1
'

test_expect_success 'mail on either server of the site reaches the other over ssh, every mailbox' '
	vdeliver 1 a@example.org a1 &&
	vdeliver 2 b@example.org b1 &&
	vdeliver 1 c@example.org c1 &&
	vdeliver 2 c@example.org c2 &&
	wait_for "vhas 2 a@example.org a1 && vhas 1 b@example.org b1 &&
		vhas 2 c@example.org c1 && vhas 1 c@example.org c2" 60 &&
	for a in a b c; do
		wait_for "vsame $a@example.org 1 2" 30 || return 1
	done
'

test_expect_success 'the key serves the mailboxes only: another path of the user is refused' '
	for asked in "$(replica_home 2)/vmail" "$(replica_home 2)/.local/share/maildag/mail.git" \
		"$(replica_home 2)/vmail/example.org/zz/mail.git" \
		"$(replica_home 2)/vmail/example.org/a/../b/mail.git"; do
		st=0 &&
		replica_run 2 env SSH_ORIGINAL_COMMAND="git-upload-pack '"'"'$asked'"'"'" \
			maildag serve --peer r1 </dev/null >out 2>err || st=$? &&
		cat err &&
		test "$st" = 77 && test ! -s out || return 1
	done &&
	st=0 &&
	replica_run 2 env SSH_ORIGINAL_COMMAND="git-upload-pack '"'"'$(vrepo 2 a@example.org)'"'"'" \
		maildag serve --peer r3 </dev/null >out 2>err || st=$? &&
	test "$st" = 78 && grep -q "not a peer of a@example.org" err &&
	# a session names no repository: 77, and the peer uses git instead
	st=0 &&
	replica_run 2 env SSH_ORIGINAL_COMMAND="maildag-session 1" \
		maildag serve --peer r1 </dev/null >out 2>err || st=$? &&
	test "$st" = 77 && grep -q "session names no virtual mailbox" err
'

test_expect_success 'runbook, add a mailbox: listed on both servers of the site, a reload; its first delivery makes it, the other gets it' '
	vconfig 1 "$(vpeer 1 2)" "$BOX_A, $BOX_B, $BOX_C, \"e@example.org\": {}" &&
	vconfig 2 "$(vpeer 2 1)" "$BOX_A, $BOX_B, $BOX_C, \"e@example.org\": {}" &&
	replica_reload 1 && replica_reload 2 &&
	replica_wait_log 1 "1 more mailboxes served, 4 in all" 1 30 &&
	replica_wait_log 2 "1 more mailboxes served, 4 in all" 1 30 &&
	vdeliver 1 e@example.org e1 &&
	wait_for "vhas 2 e@example.org e1" 60 &&
	wait_for "vsame e@example.org 1 2" 30
'

test_expect_success 'runbook, move c@ to the other site, 1: r3 lists it with r1 and r2 as its peers, keys exchanged, r1 and r2 add r3 to its peers' '
	authorize 3 1 2 && authorize 1 2 3 && authorize 2 1 3 &&
	vconfig 3 "" "$BOX_D, \"c@example.org\": { \"peers\": { $(vpeer 3 1), $(vpeer 3 2) } }" &&
	vconfig 1 "$(vpeer 1 2)" "$BOX_A, $BOX_B, \"e@example.org\": {}, \"c@example.org\": { \"peers\": { $(vpeer 1 3) } }" &&
	vconfig 2 "$(vpeer 2 1)" "$BOX_A, $BOX_B, \"e@example.org\": {}, \"c@example.org\": { \"peers\": { $(vpeer 2 3) } }" &&
	replica_reload 1 && replica_reload 2 && replica_reload 3 &&
	replica_wait_log 3 "1 more mailboxes served, 2 in all" 1 30 &&
	wait_for "vhas 3 c@example.org c1 && vhas 3 c@example.org c2" 60 &&
	replica_run 3 maildag -a c@example.org sync &&
	replica_run 1 maildag -a c@example.org sync &&
	replica_run 2 maildag -a c@example.org sync &&
	wait_for "test \"\$(vpeer_state 3 c@example.org r1)\" = \"0 0\" &&
		test \"\$(vpeer_state 3 c@example.org r2)\" = \"0 0\"" 60 &&
	vsame c@example.org 1 3 &&
	# the other mailboxes stay where they are
	! test -e "$(vrepo 3 a@example.org)" && ! test -e "$(vrepo 3 b@example.org)"
'

test_expect_success 'move, 2: mail switched to r3; what r1 still receives meanwhile reaches r3 too' '
	vdeliver 3 c@example.org c3 &&
	vdeliver 1 c@example.org c4 &&
	wait_for "vhas 1 c@example.org c3 && vhas 2 c@example.org c3 && vhas 3 c@example.org c4" 60 &&
	wait_for "vsame c@example.org 1 3 && vsame c@example.org 2 3" 30
'

test_expect_success 'move, 3: r1 and r2 unlist c@ and restart; r3 drops their peers; the rest of the site carries on' '
	head1=$(vgit 1 c@example.org rev-parse refs/heads/mail) &&
	vconfig 1 "$(vpeer 1 2)" "$BOX_A, $BOX_B, \"e@example.org\": {}" &&
	vconfig 2 "$(vpeer 2 1)" "$BOX_A, $BOX_B, \"e@example.org\": {}" &&
	vconfig 3 "" "$BOX_D, $BOX_C" &&
	replica_stop 1 && replica_stop 2 &&
	vstart 1 3 && vstart 2 3 &&
	replica_reload 3 &&
	wait_for "test \"\$(vpeers 3 c@example.org)\" = 0" 30 &&
	vdeliver 3 c@example.org c5 &&
	vdeliver 1 a@example.org a2 &&
	wait_for "vhas 2 a@example.org a2" 60 &&
	vhas 3 c@example.org c5 &&
	for id in c1 c2 c3 c4 c5; do vhas 3 c@example.org $id || return 1; done &&
	test "$(vgit 1 c@example.org rev-parse refs/heads/mail)" = "$head1" &&
	! vhas 1 c@example.org c5 &&
	st=0 && vdeliver 1 c@example.org late || st=$? &&
	test "$st" = 67
'

test_expect_success 'stop' '
	replica_stop_all &&
	for i in 1 2 3; do
		! grep "^maildag-syncd: error:" "$(replica_log $i)" || return 1
	done
'

test_done
