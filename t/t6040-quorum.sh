#!/bin/sh
test_description='maildag-lda quorum delivery: the client side, against a stand-in daemon'
. "$abs_top_srcdir/t/test-lib.sh"

# A small stand-in for maildag-syncd's control socket, run as the test
# user (the LDA talks only to a daemon of its own user): it logs each
# request line and answers as its mode says.  The end-to-end test with
# real daemons and peers is elsewhere; this one checks what maildag-lda
# does with each kind of answer, and that the message is committed once.
. "$abs_top_srcdir/t/lib-fake-syncd.sh"
[ -n "$PYTHON" ] || test_skip_all "no python3 for the stand-in daemon"

# deliver_q WANT-STATUS FILE [lda args...]: deliver FILE, check the status
deliver_q() {
	local want=$1 file=$2 got=0
	shift 2
	as_user maildag-lda "$@" <"$file" 2>err || got=$?
	cat err >&2
	if [ "$got" != "$want" ]; then
		echo "exit $got, wanted $want" >&2
		return 1
	fi
}

# copies SUBJECT: how many copies the Maildir and refs/heads/mail hold
copies() {
	local disk tree
	disk=$(grep -l "^Subject: test message $1\$" $(mail_files) 2>/dev/null | wc -l)
	tree=$(mgit grep -l "^Subject: test message $1\$" refs/heads/mail -- . | wc -l)
	echo "$disk $tree"
}

# last_request KEY: a field of the last request the stand-in got
last_request() {
	tail -n 1 "$TRASH/requests" | "$PYTHON" -c \
		'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"
}

set_quorum() {
	mkdir -p "$USER_HOME/.config/maildag" &&
	echo "{\"quorum\": $1}" >"$USER_HOME/.config/maildag/config.json" &&
	chown -R "$TEST_USER" "$USER_HOME/.config" &&
	chmod -R go-w "$USER_HOME/.config"
}

test_expect_success 'setup: a repository, quorum 3 in the configuration' '
	test_message first | as_user maildag-lda &&
	set_quorum 3 &&
	for m in met notmet nodaemon never short xdg cli nomsg; do
		test_message $m >$m.eml || return 1
	done
'

test_expect_success 'quorum met: 0, after asking for 2 acks of the new commit' '
	fake_start ok &&
	: >"$TRASH/requests" &&
	deliver_q 0 met.eml &&
	test ! -s err &&
	test "$(copies met)" = "1 1" &&
	test "$(wc -l <"$TRASH/requests")" = 1 &&
	test "$(last_request cmd)" = wait &&
	test "$(last_request acks)" = 2 &&
	test "$(last_request commit)" = "$(mgit rev-parse refs/heads/mail)" &&
	t=$(last_request timeout) &&
	test "$t" -gt 500 && test "$t" -lt 600
'

test_expect_success 'quorum not met: 75 with 4.4.0, the message committed once' '
	fake_stop && fake_start no &&
	deliver_q 75 notmet.eml &&
	test "$(wc -l <err)" = 1 &&
	grep -q "^4\.4\.0 quorum 3 not reached: 1 of 2 peers acknowledged within [0-9]* s$" err &&
	test "$(copies notmet)" = "1 1" &&
	test "$(last_request commit)" = "$(mgit rev-parse refs/heads/mail)"
'

test_expect_success 'the retry waits for the commit that holds the message' '
	delivery=$(mgit rev-parse refs/heads/mail) &&
	test_message later | as_user maildag-lda -q 1 &&
	test "$(mgit rev-parse refs/heads/mail)" != "$delivery" &&
	: >"$TRASH/requests" &&
	deliver_q 75 notmet.eml &&
	grep -q "^4\.4\.0 quorum 3 not reached" err &&
	test "$(last_request commit)" = "$delivery" &&
	fake_stop && fake_start ok &&
	deliver_q 0 notmet.eml &&
	test "$(last_request commit)" = "$delivery" &&
	test "$(last_request acks)" = 2 &&
	test "$(copies notmet)" = "1 1"
'

test_expect_success 'no daemon (a stale socket, then none): 75, committed once' '
	fake_stop &&
	test -S "$(sock_path)" &&
	deliver_q 75 nodaemon.eml &&
	test "$(cat err)" = "4.4.0 quorum 3 not reached: maildag-syncd is not running" &&
	rm -f "$(sock_path)" &&
	deliver_q 75 nodaemon.eml &&
	test "$(cat err)" = "4.4.0 quorum 3 not reached: maildag-syncd is not running" &&
	test "$(copies nodaemon)" = "1 1"
'

test_expect_success 'the retry once the daemon runs: 0, not duplicated' '
	fake_start ok &&
	deliver_q 0 nodaemon.eml &&
	test "$(copies nodaemon)" = "1 1"
'

test_expect_success 'a daemon that never answers: 75 before the deadline' '
	fake_stop && fake_start never &&
	start=$(date +%s) &&
	deliver_q 75 never.eml -d 9 &&
	end=$(date +%s) &&
	grep -q "^4\.4\.0 quorum 3 not reached: no answer from maildag-syncd within [0-9]* s$" err &&
	test $((end - start)) -lt 9 &&
	test "$(last_request timeout)" -ge 1 &&
	test "$(last_request timeout)" -le 4 &&
	test "$(copies never)" = "1 1"
'

test_expect_success 'a deadline too short to wait: 75, committed' '
	deliver_q 75 short.eml -d 4 &&
	grep -q "^4\.4\.0 quorum 3 not reached: no time left" err &&
	test "$(copies short)" = "1 1"
'

test_expect_success 'a refusal without a reason: the count of acks' '
	fake_stop && fake_start nomsg &&
	deliver_q 75 nomsg.eml &&
	grep -q "^4\.4\.0 quorum 3 not reached: 1 of 2 peers acknowledged within [0-9]* s$" err
'

test_expect_success '-q and --quorum override the configuration' '
	fake_stop &&
	test_message q1 | as_user maildag-lda -q 1 &&
	test_message q1b | as_user maildag-lda --quorum=1 &&
	set_quorum 1 &&
	fake_start ok &&
	: >"$TRASH/requests" &&
	deliver_q 0 cli.eml --quorum 2 &&
	test "$(last_request acks)" = 1 &&
	test_message q2 | as_user maildag-lda -q 4 &&
	test "$(last_request acks)" = 3 &&
	test "$(wc -l <"$TRASH/requests")" = 2 &&
	test_message q3 | as_user maildag-lda &&
	test "$(wc -l <"$TRASH/requests")" = 2
'

test_expect_success 'a bad quorum on the command line: 64' '
	head=$(mgit rev-parse refs/heads/mail) &&
	deliver_q 64 cli.eml -q 0 && grep -q "^5\.3\.5 bad quorum" err &&
	deliver_q 64 cli.eml -q x && grep -q "^5\.3\.5 bad quorum" err &&
	deliver_q 64 cli.eml --quorum && grep -q "^5\.3\.5 " err &&
	deliver_q 64 cli.eml --no-such-option && grep -q "^5\.3\.5 .*--no-such-option" err &&
	test "$(mgit rev-parse refs/heads/mail)" = "$head"
'

test_expect_success 'a daemon found through XDG_RUNTIME_DIR' '
	fake_stop &&
	rm -f "$(sock_path)" &&
	mkdir -p "$TRASH/xdg" && chown "$TEST_USER" "$TRASH/xdg" && chmod 700 "$TRASH/xdg" &&
	fake_start ok "$TRASH/xdg/maildag/control" &&
	: >"$TRASH/requests" &&
	got=0 &&
	as_user env XDG_RUNTIME_DIR="$TRASH/xdg" maildag-lda -q 2 <xdg.eml 2>err || got=$? &&
	cat err && test "$got" = 0 &&
	test "$(wc -l <"$TRASH/requests")" = 1 &&
	fake_stop
'

test_expect_success ROOT 'a socket served by another user: 75, not trusted' '
	fake_start open "$(sock_path)" root &&
	: >"$TRASH/requests" &&
	test_message other-user >other.eml &&
	deliver_q 75 other.eml -q 2 &&
	grep -q "^4\.4\.0 quorum 2 not reached: .*another user" err &&
	test ! -s "$TRASH/requests" &&
	fake_stop && rm -f "$(sock_path)"
'

test_expect_success 'after all of that: a clean, consistent repository' '
	test -z "$(ls "$MAILDIR/tmp")" &&
	test_repo_consistent
'

test_done
