#!/bin/sh
test_description='the daemon of virtual mailboxes under Type=notify: READY=1 once every mailbox had its first sync, STATUS= counts them, WATCHDOG=1, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1; the hook gets the address of each mailbox as MAILDAG_USER'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] || test_skip_all "maildag-syncd is not built"
[ -n "$PYTHON" ] || test_skip_all "no python3 to listen on NOTIFY_SOCKET"
grep -q '^#define HAVE_LIBSYSTEMD 1' "$abs_top_builddir/autoconf.h" ||
	test_skip_all "built --without-libsystemd"

# the stand-in service manager, as in t3100: one line per assignment,
# "--" after each datagram
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

count_of() { grep -cx "$1" "$NLOG" || :; }
V=$USER_HOME/vmail
LOG=$TRASH/syncd.log
# vgit U GIT-ARGS...: git in U@example.org's repository
vgit() {
	local u=$1
	shift
	git -c safe.directory='*' --git-dir="$V/example.org/$u/mail.git" "$@"
}
vhead() { vgit "$1" rev-parse refs/heads/mail; }

# the hook command: one line "USER NEW EVENT" per run; a virtual
# mailbox's MAILDAG_USER is its address, not the system user
HOOK=$TRASH/hook
printf '#!/bin/sh\necho "$MAILDAG_USER $MAILDAG_NEW $MAILDAG_EVENT" >>"%s.out"\n' "$HOOK" >"$HOOK"
chmod 755 "$HOOK" && : >"$HOOK.out" && chmod 666 "$HOOK.out"
# hooked U: the hook's last line for U@example.org names its refs/heads/mail
hooked() {
	test "$(grep "^$1@example.org " "$HOOK.out" | tail -n 1)" = \
		"$1@example.org $(vhead "$1") change"
}

test_expect_success 'setup: five listed mailboxes, one with a message left in new/' '
	as_user mkdir -p "$USER_HOME/.config/maildag" "$V/example.org/u3/Maildir/new" \
		"$V/example.org/u3/Maildir/cur" "$V/example.org/u3/Maildir/tmp" &&
	echo "{ \"virtual\": { \"maildir\": \"$V/%d/%n/Maildir\",
	  \"repository\": \"$V/%d/%n/mail.git\", \"mailboxes\": {
	  \"u1@example.org\": {}, \"u2@example.org\": {}, \"u3@example.org\": {},
	  \"u4@example.org\": {}, \"u5@example.org\": {} } },
	  \"hooks\": { \"command\": \"$HOOK\" } }" |
		as_user sh -c "cat >\"$USER_HOME/.config/maildag/config.json\"" &&
	as_user chmod 600 "$USER_HOME/.config/maildag/config.json" &&
	test_message early | as_user sh -c "cat >\"$V/example.org/u3/Maildir/new/1700000000.M1P1Q1.early\""
'

test_expect_success 'READY=1 once, when every mailbox had its first sync' '
	daemon_start syncd "$LOG" env NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=1000000 maildag-syncd -v &&
	wait_for "grep -qx READY=1 \"$NLOG\"" &&
	for u in u1 u2 u3 u4 u5; do
		git -c safe.directory="*" --git-dir="$V/example.org/$u/mail.git" \
			rev-parse -q --verify refs/heads/mail >/dev/null || return 1
	done &&
	git -c safe.directory="*" --git-dir="$V/example.org/u3/mail.git" \
		ls-tree -r --name-only refs/heads/mail | grep -q "early$" &&
	test "$(count_of READY=1)" = 1 &&
	grep -q "serving 5 mailboxes" "$LOG"
'

test_expect_success 'STATUS= counts the mailboxes; WATCHDOG=1 keeps coming' '
	wait_for "grep -qx \"STATUS=5 mailboxes; 0 failing to sync\" \"$NLOG\"" 30 &&
	n=$(count_of WATCHDOG=1) &&
	wait_for "test \$(count_of WATCHDOG=1) -ge $((n + 3))"
'

test_expect_success 'the hook: MAILDAG_USER is the mailbox'"'"'s address, each mailbox told of its own changes' '
	for u in u1 u2 u3 u4 u5; do
		wait_for "hooked $u" 30 || return 1
	done &&
	! grep -v "^u[1-5]@example.org [0-9a-f]\{40\} change\$" "$HOOK.out" &&
	grep -v "^u2@" "$HOOK.out" >others &&
	n=$(grep -c "^u2@" "$HOOK.out") &&
	test_message v2 | as_user maildag-lda -a U2@example.org &&
	vgit u2 log -1 --format=%s refs/heads/mail | grep -q "^deliver" &&
	wait_for "hooked u2" 30 &&
	test "$(grep -c "^u2@" "$HOOK.out")" -gt "$n" &&
	grep -v "^u2@" "$HOOK.out" >others.after &&
	test_cmp others others.after
'

test_expect_success 'SIGHUP: RELOADING=1, then READY=1 again' '
	kill -HUP "$(daemon_pid syncd)" &&
	wait_for "test \$(count_of READY=1) = 2" &&
	grep -qx RELOADING=1 "$NLOG"
'

# (the reload above looked for new mailboxes and found none: that look
# must not keep the next one from finding one)
test_expect_success 'a mailbox added to the list, SIGHUP again: served at once' '
	sed "s/\"u5@example.org\": {}/\"u5@example.org\": {}, \"u6@example.org\": {}/" \
		"$USER_HOME/.config/maildag/config.json" >config.new &&
	grep -q u6@ config.new &&
	as_user sh -c "cat >\"$USER_HOME/.config/maildag/config.json\"" <config.new &&
	kill -HUP "$(daemon_pid syncd)" &&
	wait_for "grep -q \"1 more mailboxes served, 6 in all\" \"$LOG\"" 30 &&
	wait_for "vhead u6 >/dev/null 2>&1" 30 &&
	test_message v6 | as_user maildag-lda -a u6@example.org &&
	wait_for "hooked u6" 30
'

test_expect_success 'SIGTERM: STOPPING=1 and a clean exit' '
	pid=$(daemon_pid syncd) &&
	daemon_stop syncd &&
	! kill -0 "$pid" 2>/dev/null &&
	grep -qx STOPPING=1 "$NLOG" &&
	! grep -q "error:" "$LOG"
'

test_done
