#!/bin/sh
test_description='the README runbooks, step by step over ssh: add a server to a running set, retire a dead one, move a mailbox to another site'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
[ -n "$PYTHON" ] || test_skip_all "no python3 to read maildag status --json"
test_have_prereq ROOT || test_skip_all "needs root for three users and sshd"
. "$abs_top_srcdir/t/lib-sshd.sh"
sshd_start || test_skip_all "no test sshd"
. "$abs_top_srcdir/t/lib-replica.sh"

# Three servers of one mailbox, each its own user (so every link is ssh
# through the test sshd, with the forced command as the README says).
# r1 and r2 run; r3 is the server that joins.  Then r1 dies for good and
# is retired.  That is also the move of a mailbox from the site of r1 to
# the site of r3: add the new site, wait until it holds everything,
# retire the old one.
U1=maildagrb1 U2=maildagrb2 U3=maildagrb3

# key_line I: the authorized_keys line of replica I, as the README writes
# it by hand for a server that is already set up
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

# peer_state I NAME: "ahead behind" of replica I's status for peer NAME
peer_state() {
	replica_status "$1" >st.json &&
	json_get "\"%s %s\" % (peer(\"$2\")[\"ahead\"], peer(\"$2\")[\"behind\"])" <st.json
}

# deliver_quorum I ID: maildag-lda on replica I, which must exit 0
deliver_quorum() { replica_deliver "$1" "$2"; }

test_expect_success 'setup: r1 and r2 run and hold mail; r3 is a new server, not yet known' '
	replica_setup rb $U1 $U2 $U3 &&
	replica_config 1 --peers 2 &&
	replica_config 2 --peers 1 &&
	authorize 1 2 && authorize 2 1 && : >"$SSHD_DIR/keys/$U3" &&
	replica_start 1 && replica_start 2 &&
	replica_deliver 1 m1 &&
	replica_deliver 2 m2 &&
	wait_for "test -n \"\$(replica_where 1 m2)\"" 30 &&
	replica_flag 1 m2 "\\Seen" &&
	wait_converged 60 1 2 &&
	replica_expect_messages 1 2
'

test_expect_success 'add a server: r3 configured with both, its key on both and theirs on r3, then a reload of each' '
	# on r3: the configuration names r1 and r2 (its repository exists:
	# replica_setup ran maildag init, as the runbook does)
	replica_config 3 --peers "1 2" &&
	authorize 3 1 2 &&
	authorize 1 2 3 && authorize 2 1 3 &&
	replica_config 1 --peers "2 3" &&
	replica_config 2 --peers "1 3" &&
	replica_reload 1 && replica_reload 2 &&
	replica_wait_log 1 "configuration reloaded" &&
	replica_wait_log 2 "configuration reloaded" &&
	replica_start 3 &&
	wait_converged 60 &&
	replica_expect_messages &&
	replica_deliver 3 m3 &&
	replica_deliver 1 m4 &&
	wait_converged 60 &&
	replica_expect_messages
'

test_expect_success 'the new server holds everything: maildag status says 0 ahead, 0 behind for each peer' '
	replica_sync 3 && replica_sync 1 && replica_sync 2 &&
	wait_for "test \"\$(peer_state 3 r1)\" = \"0 0\" && test \"\$(peer_state 3 r2)\" = \"0 0\"" 60
'

test_expect_success 'retire a dead server: r1 is gone; r2 and r3 drop it from their configuration and its key, then reload' '
	replica_kill 1 &&
	replica_config 2 --peers 3 --extra "\"quorum\": 2" &&
	replica_config 3 --peers 2 --extra "\"quorum\": 2" &&
	authorize 2 3 && authorize 3 2 &&
	replica_reload 2 && replica_reload 3 &&
	replica_wait_log 2 "configuration reloaded" 2 &&
	replica_wait_log 3 "configuration reloaded" &&
	replica_status 2 >st.json &&
	json_get "[p[\"name\"] for p in d[\"peers\"]]" <st.json >names &&
	test "$(cat names)" = "[\"r3\"]"
'

test_expect_success 'after it: deliveries under quorum 2 exit 0 on either, and the two converge' '
	deliver_quorum 2 m5 &&
	deliver_quorum 3 m6 &&
	replica_flag 2 m3 "\\Flagged" &&
	wait_converged 60 2 3 &&
	replica_expect_messages 2 3
'

test_expect_success 'the retired server cannot push any more, even with its old configuration' '
	r1ref=$(replica_git 2 rev-parse -q --verify refs/peers/r1/mail) &&
	replica_start 1 &&
	replica_deliver 1 late &&
	replica_sync 1 &&
	replica_wait_log 1 "peer r2: push failed: " &&
	replica_wait_log 1 "peer r3: push failed: " &&
	replica_stop 1 &&
	test -z "$(replica_where 2 late)" &&
	test -z "$(replica_where 3 late)" &&
	test "$(replica_git 2 rev-parse -q --verify refs/peers/r1/mail)" = "$r1ref"
'

test_expect_success 'stop' '
	replica_stop_all
'

test_done
