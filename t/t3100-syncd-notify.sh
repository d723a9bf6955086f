#!/bin/sh
test_description='maildag-syncd under Type=notify: READY=1 after the first sync, STATUS= with the lag, WATCHDOG=1, RELOADING=1 and STOPPING=1'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] ||
	test_skip_all "maildag's programs are not built"
[ -n "$PYTHON" ] || test_skip_all "no python3 to listen on NOTIFY_SOCKET"
grep -q '^#define HAVE_LIBSYSTEMD 1' "$abs_top_builddir/autoconf.h" ||
	test_skip_all "built --without-libsystemd"
. "$abs_top_srcdir/t/lib-replica.sh"

# No systemd runs here: the test is the service manager.  It listens on
# a datagram socket of its own, as systemd does on NOTIFY_SOCKET, and
# writes down each message it receives, one line per assignment, with a
# line "--" after each datagram.
SOCK=$TRASH/notify.sock
NLOG=$TRASH/notify.log
: >"$NLOG"
"$PYTHON" - "$SOCK" "$NLOG" <<'PY' >/dev/null 2>&1 &
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open(out, "a") as f:
    while True:
        data = s.recv(65536).decode()
        f.write(data.rstrip("\n") + "\n--\n")
        f.flush()
PY
LISTENER=$!
stop_listener() { kill "$LISTENER" 2>/dev/null; }
test_at_end stop_listener
wait_for "test -S '$SOCK'" || test_skip_all "the stand-in listener did not start"

# count_of LINE: how many times the daemon sent LINE
count_of() { grep -cx "$1" "$NLOG" || :; }

start_notified() {
	( NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=1000000
	  export NOTIFY_SOCKET WATCHDOG_USEC
	  replica_start 1 )
}

replica_setup u "$TEST_USER" "$TEST_USER" || test_skip_all "cannot make the replicas"
M1=$(replica_maildir 1)

test_expect_success 'setup: a delivered message, and one a client left in new/ while no daemon ran' '
	replica_deliver 1 m1 &&
	test_message early >"$M1/new/1700000000.M1P1Q1.early" &&
	chown "$TEST_USER:" "$M1/new/1700000000.M1P1Q1.early" &&
	! replica_git 1 ls-tree -r --name-only refs/heads/mail | grep -q "early$"
'

test_expect_success 'READY=1 comes once the first sync is done: what was on disk is committed by then' '
	start_notified &&
	wait_for "grep -qx READY=1 \"$NLOG\"" &&
	replica_git 1 ls-tree -r --name-only refs/heads/mail >names &&
	grep -q "early$" names &&
	test "$(count_of READY=1)" = 1
'

test_expect_success 'STATUS= says the daemon is in sync and gives the peer lag' '
	wait_for "grep -q \"^STATUS=in sync with the Maildir; r2: \" \"$NLOG\"" &&
	grep "^STATUS=" "$NLOG" | tail -n 1 >status &&
	grep -Eq "r2: (lag [0-9]+ s|never pushed)" status
'

test_expect_success 'WATCHDOG=1 keeps coming from the loop, at half of WATCHDOG_USEC' '
	n=$(count_of WATCHDOG=1) &&
	wait_for "test \$(count_of WATCHDOG=1) -ge $((n + 3))" &&
	grep -q "watchdog: a ping every 0.5 s" "$(replica_log 1)"
'

# mark NAME: a datagram of the test's own through the same socket, read
# in order: once MARK=NAME is written down, so is all that came before
mark() {
	"$PYTHON" -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b'MARK=' + sys.argv[2].encode(), sys.argv[1])
" "$SOCK" "$1" && wait_for "grep -qx MARK=$1 \"$NLOG\""
}

test_expect_success 'a daemon stopped in its loop sends no WATCHDOG=1 until it runs again' '
	pid=$(daemon_pid "$(replica_set)-r1") &&
	kill -STOP "$pid" &&
	mark stopped && n=$(count_of WATCHDOG=1) &&
	sleep 1.5 &&
	mark still && m=$(count_of WATCHDOG=1) &&
	kill -CONT "$pid" &&
	test "$m" = "$n" &&
	wait_for "test \$(count_of WATCHDOG=1) -gt $m"
'

test_expect_success 'SIGHUP: RELOADING=1, then READY=1 again' '
	kill -HUP "$(daemon_pid "$(replica_set)-r1")" &&
	wait_for "test \$(count_of READY=1) = 2" &&
	grep -nx "RELOADING=1" "$NLOG" | tail -n 1 | cut -d: -f1 >r &&
	grep -nx "READY=1" "$NLOG" | tail -n 1 | cut -d: -f1 >y &&
	test "$(cat r)" -lt "$(cat y)"
'

test_expect_success 'SIGTERM: STOPPING=1, and the daemon ends' '
	replica_stop 1 &&
	test "$(count_of STOPPING=1)" = 1
'

test_expect_success 'without NOTIFY_SOCKET nothing is sent, and the daemon works as before' '
	before=$(wc -l <"$NLOG") &&
	replica_start 1 &&
	replica_deliver 1 m2 &&
	replica_sync 1 &&
	replica_stop 1 &&
	test "$(wc -l <"$NLOG")" = "$before"
'

test_done
