#!/bin/sh
test_description='fetches from a healthy file:// peer, started by the periodic timer, never time out (every child is polled in the turn that starts it)'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"

# A fetch from a file:// peer takes milliseconds; with the timer bug the
# loop saw its child's answer only when something else woke it, so most
# periodic fetches ran into the net_timeout deadline and were reported as
# "no answer within 5 s".
REPLICA_FETCH_INTERVAL=1
REPLICA_NET_TIMEOUT=5
export REPLICA_FETCH_INTERVAL REPLICA_NET_TIMEOUT

RUNS=100

# fetch_field I PEER FIELD: one field of I's fetch state for PEER
fetch_field() {
	replica_status "$1" | json_get "(peer(\"$2\")[\"fetch\"] or {}).get(\"$3\")"
}

test_expect_success 'setup: two replicas of one user, over file://' '
	replica_setup fetch u1 u1 &&
	replica_start_all
'

test_expect_success "$RUNS periodic fetches from a healthy peer: none times out" '
	wait_for "[ \"\$(fetch_field 1 r2 runs)\" -ge $RUNS ]" $((RUNS * 3)) &&
	runs=$(fetch_field 1 r2 runs) &&
	timeouts=$(fetch_field 1 r2 timeouts) &&
	echo "runs $runs, timeouts $timeouts" &&
	test "$timeouts" = 0 &&
	test "$(fetch_field 1 r2 failures)" = 0 &&
	! grep "no answer within" "$(replica_log 1)"
'

test_expect_success 'the other side too, and both still replicate' '
	test "$(fetch_field 2 r1 timeouts)" = 0 &&
	replica_deliver 1 often1 &&
	replica_deliver 2 often2 &&
	wait_for "replica_expect_messages 1 2 2>/dev/null" 30 &&
	replica_expect_messages 1 2
'

test_done
