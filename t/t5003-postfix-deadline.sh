#!/bin/sh
test_description='real Postfix: maildag-lda waits for the writer lock, and its own deadline keeps below command_time_limit'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-postfix.sh"

ME=$TEST_USER@localhost
LOCK=$REPO/maildag/lock

# hold_lock: take the repository's writer lock (as another maildag
# process would) in the background until release_lock
hold_lock() {
	rm -f "$TRASH/locked" || return 1
	# exec: the pid is the sleep's, which holds the lock until killed
	sh -c 'exec 9>>"$1" && flock -x 9 && : >"$2" && exec sleep 60' - \
		"$LOCK" "$TRASH/locked" >/dev/null 2>&1 </dev/null &
	echo $! >"$TRASH/lock.pid"
	mta_wait_for 10 test -e "$TRASH/locked"
}
release_lock() {
	if [ -s "$TRASH/lock.pid" ]; then
		kill "$(cat "$TRASH/lock.pid")" 2>/dev/null
		rm -f "$TRASH/lock.pid"
	fi
	return 0
}
mta_at_exit release_lock

# busy ID: how long the command ran, in seconds (the last of Postfix's
# delays=a/b/c/d), for message ID's last attempt
busy() {
	pf_status_lines "$(pf_qid "$1")" | tail -n 1 |
		sed -n 's/.* delays=[0-9.]*\/[0-9.]*\/[0-9.]*\/\([0-9.]*\),.*/\1/p'
}

test_expect_success 'setup: Postfix with mailbox_command, command_time_limit 20s' '
	pf_setup &&
	pf_set "mailbox_command = $BIN/maildag-lda" &&
	pf_set "command_time_limit = 20s" &&
	pf_start &&
	pf_send_msg first &&
	pf_delivered_once first &&
	test -f "$LOCK"
'

test_expect_success 'the lock held for 2 s: the delivery waits for it and succeeds' '
	hold_lock &&
	pf_send_msg waited &&
	sleep 2 &&
	release_lock &&
	pf_delivered_once waited &&
	test "$(pf_attempts "$(pf_qid waited)")" = 1 &&
	awk "BEGIN { exit !($(busy waited) >= 1) }" &&
	test_repo_consistent
'

test_expect_success 'the lock held past lda_deadline (3 s): deferred with 4.4.7, not killed' '
	echo "{\"lda_deadline\": 3}" |
		mta_write_user_file "$USER_HOME/.config/maildag/config.json" 600 &&
	head=$(mgit rev-parse refs/heads/mail) &&
	hold_lock &&
	pf_send_msg late &&
	pf_wait_status "$(pf_qid late)" &&
	test "$(pf_status "$(pf_qid late)")" = deferred &&
	test "$(pf_dsn "$(pf_qid late)")" = 4.4.7 &&
	! pf_status_lines "$(pf_qid late)" | grep -qi "time limit" &&
	awk "BEGIN { t = $(busy late); exit !(t >= 2.5 && t < 20) }" &&
	pf_queued "$(pf_qid late)" &&
	test "$(mgit rev-parse refs/heads/mail)" = "$head" &&
	test -z "$(find "$MAILDIR/tmp" -type f)" &&
	mta_not_delivered late
'

test_expect_success 'the lock released, the queue flushed: delivered exactly once' '
	release_lock &&
	pf_flush &&
	pf_wait_status "$(pf_qid late)" 2 &&
	pf_delivered_once late &&
	test "$(pf_attempts "$(pf_qid late)")" = 2 &&
	as_user rm "$USER_HOME/.config/maildag/config.json" &&
	pf_check_all 3
'

test_done
