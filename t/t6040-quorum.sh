#!/bin/sh
test_description='maildag-lda quorum delivery: the client side, against a stand-in daemon'
. "$abs_top_srcdir/t/test-lib.sh"

# A small stand-in for maildag-syncd's control socket, run as the test
# user (the LDA talks only to a daemon of its own user): it logs each
# request line and answers as its mode says.  The end-to-end test with
# real daemons and peers is elsewhere; this one checks what maildag-lda
# does with each kind of answer, and that the message is committed once.
PYTHON=
for p in /usr/bin/python3 /usr/local/bin/python3; do
	[ -x "$p" ] && PYTHON=$p && break
done
[ -n "$PYTHON" ] || test_skip_all "no python3 for the stand-in daemon"

cat >"$TRASH/fake-syncd.py" <<'EOF'
import json, os, socket, sys
path, mode, log, pidfile = sys.argv[1:5]
with open(pidfile, "w") as f:
    f.write("%d\n" % os.getpid())
try:
    os.unlink(path)
except FileNotFoundError:
    pass
os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666 if mode == "open" else 0o600)
s.listen(8)
held = []
while True:
    c, _ = s.accept()
    line = c.makefile("rb").readline()
    if not line:
        c.close()
        continue
    with open(log, "ab") as f:
        f.write(line)
    req = json.loads(line)
    acks = req.get("acks", 0)
    if mode in ("ok", "open"):
        ans = {"ok": True, "acked": ["mx%d" % (i + 2) for i in range(acks)]}
    elif mode == "no":
        ans = {"ok": False, "acked": ["mx2"],
               "error": "1 of %d peers acknowledged within %d s"
                        % (acks, req.get("timeout", 0))}
    elif mode == "nomsg":
        ans = {"ok": False, "acked": ["mx2"]}
    else:  # never: keep the connection, say nothing
        held.append(c)
        continue
    c.sendall((json.dumps(ans) + "\n").encode())
    c.close()
EOF
chmod 644 "$TRASH/fake-syncd.py"
# the stand-in runs as the test user and logs here
: >"$TRASH/requests"
: >"$TRASH/fake.pid"
chown "$TEST_USER" "$TRASH/requests" "$TRASH/fake.pid"

# where maildag-lda looks when the MTA gives it no XDG_RUNTIME_DIR
sock_path() {
	local uid
	uid=$(id -u "$TEST_USER")
	if [ -d "/run/user/$uid" ] && [ "$(stat -c %u "/run/user/$uid")" = "$uid" ]; then
		echo "/run/user/$uid/maildag/control"
	else
		echo "$REPO/maildag/control"
	fi
}

# fake_start MODE [PATH] [as root]: start the stand-in, wait for its socket
fake_start() {
	local mode=$1 path=${2:-$(sock_path)}
	rm -f "$path"
	: >"$TRASH/fake.pid"
	if [ "${3:-}" = root ]; then
		"$PYTHON" "$TRASH/fake-syncd.py" "$path" "$mode" \
			"$TRASH/requests" "$TRASH/fake.pid" &
	else
		as_user "$PYTHON" "$TRASH/fake-syncd.py" "$path" "$mode" \
			"$TRASH/requests" "$TRASH/fake.pid" &
	fi
	for i in $(seq 50); do
		[ -S "$path" ] && return 0
		sleep 0.1
	done
	echo "the stand-in daemon did not start" >&2
	return 1
}

# fake_stop: kill it; its socket stays behind, as a crashed daemon's would
fake_stop() {
	local pid
	pid=$(cat "$TRASH/fake.pid" 2>/dev/null)
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	: >"$TRASH/fake.pid"
	return 0
}
test_at_end fake_stop

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
