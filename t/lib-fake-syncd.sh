# lib-fake-syncd.sh: a stand-in for maildag-syncd's control socket
# (common/control.h), for testing its clients (maildag status and sync,
# maildag-lda's quorum wait) against every kind of answer.  Sourced after
# test-lib.sh.  The daemon's own side is tested with the real
# maildag-syncd elsewhere.
#
#   (it needs $PYTHON, from test-lib.sh: callers skip without it)
#   sock_path			where the clients look when the MTA gives
#				them no XDG_RUNTIME_DIR: /run/user/<uid> when
#				it is the test user's, else the repository
#   fake_start MODE [PATH] [root]
#				start the stand-in on PATH (default
#				sock_path), as the test user (or root), and
#				wait for its socket.  It logs each request
#				line to $TRASH/requests and answers:
#				  answers=FILE  what FILE (JSON, keyed by
#				    "cmd") holds for the command, with the
#				    peers' integer times taken as relative
#				    to now
#				  ok, open      a wait is met ("acked": as
#				    many peers as asked; open: the socket is
#				    mode 0666)
#				  no            a wait is not met, with an
#				    error; nomsg: without one
#				  never         keep the connection, say
#				    nothing
#   fake_stop			kill it; its socket stays behind, as a
#				crashed daemon's would (stopped at the end)


cat >"$TRASH/fake-syncd.py" <<'EOF'
import json, os, socket, sys, time
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

def from_file(name, req):
    with open(name) as f:
        ans = json.load(f).get(req["cmd"],
                               {"ok": False, "error": "unknown command"})
    now = int(time.time())
    for p in ans.get("peers", []):
        for d in ("push", "fetch"):
            for k in ("last_ok", "error_at", "next_try"):
                if p.get(d) and isinstance(p[d].get(k), int):
                    p[d][k] += now
    return ans

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
    if mode.startswith("answers="):
        ans = from_file(mode[len("answers="):], req)
    elif mode in ("ok", "open"):
        ans = {"ok": True, "acked": ["mx%d" % (i + 2) for i in range(acks)]}
    elif mode == "no":
        ans = {"ok": False, "acked": ["mx2"],
               "error": "1 of %d peers acknowledged within %d s"
                        % (acks, req.get("timeout", 0))}
    elif mode == "nomsg":
        ans = {"ok": False, "acked": ["mx2"]}
    else:  # never
        held.append(c)
        continue
    c.sendall((json.dumps(ans) + "\n").encode())
    c.close()
EOF
chmod 644 "$TRASH/fake-syncd.py"
: >"$TRASH/requests"
: >"$TRASH/fake.pid"
chown "$TEST_USER" "$TRASH/requests" "$TRASH/fake.pid" 2>/dev/null || :

sock_path() {
	local uid
	uid=$(id -u "$TEST_USER")
	if [ -d "/run/user/$uid" ] && [ "$(stat -c %u "/run/user/$uid")" = "$uid" ]; then
		echo "/run/user/$uid/maildag/control"
	else
		echo "$REPO/maildag/control"
	fi
}

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
