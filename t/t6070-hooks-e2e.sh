#!/bin/sh
test_description='the hook command and the webhooks of a running maildag-syncd: every move of refs/heads/mail is told, with the ids in the environment and in a JSON body; a webhook that refuses connections, stalls or fails (500, 429 with Retry-After) is tried again until it is told every change, while the daemon carries on; a hook that fails is a warning'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"
[ -n "$PYTHON" ] || test_skip_all "no python3 for the HTTP server"

# Two replicas of maildagw1 over file://; r1 has the hooks.
if test_have_prereq ROOT; then W=maildagw1; else W=$(id -un); fi

# --- a small HTTP server that records what it is sent ------------------
#
# One JSON line per request in $HTTPD/records: method, path, content
# type, body, the status it answered.  /fail answers 500, /flaky 503
# with Retry-After while $HTTPD/down exists, the rest 204.  It also finds a port
# nobody listens on (bound, then closed) for the refusing URL.
HTTPD=$TRASH/httpd
mkdir -p "$HTTPD"
cat >"$HTTPD/server.py" <<'EOF'
import http.server, json, os, socket, sys, threading
portfile, records, downfile = sys.argv[1:4]
lock = threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        down = self.path == "/flaky" and os.path.exists(downfile)
        status = 500 if self.path == "/fail" else 503 if down else 204
        rec = {"method": "POST", "path": self.path, "status": status,
               "type": self.headers.get("Content-Type"), "body": body}
        with lock, open(records, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(status)
        if down:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
closed = probe.getsockname()[1]
probe.close()
with open(portfile + ".tmp", "w") as f:
    f.write("%d %d\n" % (server.server_address[1], closed))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
EOF
: >"$HTTPD/records"
"$PYTHON" "$HTTPD/server.py" "$HTTPD/port" "$HTTPD/records" "$HTTPD/down" \
	</dev/null >>"$HTTPD/log" 2>&1 &
HTTPD_PID=$!
httpd_stop() {
	[ -n "$HTTPD_PID" ] || return 0
	kill "$HTTPD_PID" 2>/dev/null
	wait "$HTTPD_PID" 2>/dev/null
	HTTPD_PID=
	return 0
}
test_at_end httpd_stop
trap 'httpd_stop; lib_dovecot_cleanup' EXIT
n=0
while ! [ -s "$HTTPD/port" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -s "$HTTPD/port" ] || test_skip_all "the test HTTP server did not start"
read HTTP_PORT CLOSED_PORT <"$HTTPD/port"
HOOK_URL=http://127.0.0.1:$HTTP_PORT/hook
FAIL_URL=http://127.0.0.1:$HTTP_PORT/fail
REFUSED_URL=http://127.0.0.1:$CLOSED_PORT/hook

# --- the hooks -----------------------------------------------------------
#
# on-change appends one line per run to $HOOKS/out:
#   OLD NEW NODE USER REF
# fails exits 3.
HOOKS=$TRASH/hooks
mkdir -p "$HOOKS"
cat >"$HOOKS/on-change" <<EOF
#!/bin/sh
echo "\$MAILDAG_OLD \$MAILDAG_NEW \$MAILDAG_NODE \$MAILDAG_USER \$MAILDAG_REF" >>"$HOOKS/out"
EOF
printf '#!/bin/sh\necho "failing hook ran" >&2\nexit 3\n' >"$HOOKS/fails"
chmod 755 "$HOOKS" "$HOOKS/on-change" "$HOOKS/fails"
: >"$HOOKS/out"
chmod 666 "$HOOKS/out"

ZERO=0000000000000000000000000000000000000000

# hooks_conf COMMAND URL...: r1's configuration with these hooks
hooks_conf() {
	local cmd=$1 urls= u sep=
	shift
	for u in "$@"; do urls="$urls$sep\"$u\""; sep=", "; done
	replica_config 1 --extra "\"hooks\": { \"command\": \"$cmd\", \"webhooks\": [ $urls ] }"
}

# web_lines [PATH]: the requests to PATH (/hook) as lines
#   OLD NEW NODE USER REF EVENT TYPE TIME
# (a null old as 40 zeros)
web_lines() {
	"$PYTHON" -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["path"] != sys.argv[2] or r["method"] != "POST":
        continue
    b = json.loads(r["body"])
    print(b["old"] or "0" * 40, b["new"], b["node"], b["user"], b["ref"],
          b["event"], r["type"], b["time"] if isinstance(b["time"], int) else "not-an-integer")
' "$HTTPD/records" "${1:-/hook}"
}

# ok_lines PATH: the POSTs to PATH that were answered 2xx, as web_lines
ok_lines() {
	"$PYTHON" -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["path"] == sys.argv[2] and r["status"] < 300:
        b = json.loads(r["body"])
        print(b["old"] or "0" * 40, b["new"])
' "$HTTPD/records" "$1"
}

# the NEW of the last line the hook wrote, of the last POST to /hook
hook_last_new() { tail -n 1 "$HOOKS/out" | cut -d" " -f2; }
web_last_new() { web_lines | tail -n 1 | cut -d" " -f2; }

# chained FILE: each line's OLD is the NEW of the line before
chained() {
	awk 'NR > 1 && $1 != prev { print "line " NR ": old " $1 ", expected " prev; bad = 1 }
		{ prev = $2 } END { exit bad }' "$1" >&2
}

# told: the hook and the webhook have both been told of r1's
# refs/heads/mail as it is now, and it stays so (the daemon settled)
told() {
	wait_for "test \"\$(hook_last_new)\" = \"\$(replica_head 1)\" &&
		test \"\$(web_last_new)\" = \"\$(replica_head 1)\"" 30 || {
		echo "head $(replica_head 1); hook:" >&2; cat "$HOOKS/out" >&2
		echo "webhook:" >&2; web_lines >&2; return 1; }
}

has_message() { test -n "$(replica_where "$1" "$2")"; }
contains() {
	replica_git "$1" merge-base --is-ancestor "$2" "${3:-refs/heads/mail}" 2>/dev/null
}

test_expect_success 'setup: two replicas; r1 has a hook command and a webhook' '
	replica_setup hooks $W $W &&
	hooks_conf "$HOOKS/on-change" "$HOOK_URL" &&
	grep -q "\"command\": \"$HOOKS/on-change\"" "$(replica_config_file 1)" &&
	replica_start_all &&
	wait_converged 30
'

test_expect_success 'a delivery: the hook is run with the new refs/heads/mail' '
	replica_deliver 1 w1 &&
	c=$(replica_head 1) &&
	wait_for "has_message 2 w1" 30 &&
	wait_converged 30 &&
	told &&
	cat "$HOOKS/out" &&
	contains 1 $c "$(hook_last_new)" &&
	test "$(tail -n 1 "$HOOKS/out" | cut -d" " -f3-)" = "r1 $W refs/heads/mail" &&
	chained "$HOOKS/out" &&
	# every id it was given is a commit of r1
	for id in $(cut -d" " -f1,2 "$HOOKS/out"); do
		test $id = $ZERO || replica_git 1 cat-file -e $id^{commit} || return 1
	done &&
	# r2 has no hooks
	test "$(grep -c " r2 " "$HOOKS/out")" = 0
'

test_expect_success 'a delivery: the webhook got a JSON POST for it, the same changes as the hook' '
	web_lines >web &&
	cat web &&
	test -s web &&
	test "$(tail -n 1 web | cut -d" " -f2)" = "$(replica_head 1)" &&
	test "$(tail -n 1 web | cut -d" " -f3-7)" = "r1 $W refs/heads/mail change application/json" &&
	tail -n 1 web | cut -d" " -f8 | grep -Eqx "[0-9]+" &&
	chained web &&
	cut -d" " -f1,2 web >web.ids &&
	cut -d" " -f1,2 "$HOOKS/out" >hook.ids &&
	test_cmp hook.ids web.ids
'

test_expect_success 'a change that comes from the peer is told too' '
	replica_deliver 2 w2 &&
	wait_for "has_message 1 w2" 30 &&
	wait_converged 30 &&
	told &&
	contains 1 "$(replica_head 2)" "$(hook_last_new)" &&
	chained "$HOOKS/out"
'

test_expect_success 'a webhook that refuses connections and one that fails: warnings, the rest goes on' '
	hooks_conf "$HOOKS/on-change" "$REFUSED_URL" "$FAIL_URL" "$HOOK_URL" &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded" &&
	refused=$(replica_log_count 1 "warning: webhook .http://127\.0\.0\.1:$CLOSED_PORT/hook.: ") &&
	failed=$(replica_log_count 1 "warning: webhook .http://127\.0\.0\.1:$HTTP_PORT/fail.: HTTP status 500") &&
	replica_deliver 1 w3 &&
	replica_wait_log 1 "warning: webhook .http://127\.0\.0\.1:$CLOSED_PORT/hook.: " $((refused + 1)) &&
	replica_wait_log 1 "warning: webhook .http://127\.0\.0\.1:$HTTP_PORT/fail.: HTTP status 500" $((failed + 1)) &&
	grep "warning: webhook" "$(replica_log 1)" | tail -n 2 &&
	wait_for "has_message 2 w3" 30 &&
	wait_converged 30 &&
	told &&
	test "$(web_lines /fail | tail -n 1 | cut -d" " -f2)" = "$(replica_head 1)" &&
	kill -0 "$(daemon_pid hooks-r1)"
'

test_expect_success 'and a later delivery still replicates and still runs the hook' '
	refused=$(replica_log_count 1 "warning: webhook .http://127\.0\.0\.1:$CLOSED_PORT/hook.: ") &&
	replica_deliver 1 w4 &&
	wait_for "has_message 2 w4" 30 &&
	wait_converged 30 &&
	told &&
	replica_wait_log 1 "warning: webhook .http://127\.0\.0\.1:$CLOSED_PORT/hook.: " $((refused + 1)) &&
	chained "$HOOKS/out" &&
	web_lines >web && chained web &&
	replica_expect_messages
'

test_expect_success 'a hook that fails: a warning, the webhook is still told, the daemon carries on' '
	hooks_conf "$HOOKS/fails" "$HOOK_URL" &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded" 2 &&
	lines=$(wc -l <"$HOOKS/out") &&
	replica_deliver 1 w5 &&
	replica_wait_log 1 "warning: hook .$HOOKS/fails. exited with status 3" &&
	wait_for "has_message 2 w5" 30 &&
	wait_converged 30 &&
	wait_for "test \"\$(web_last_new)\" = \"\$(replica_head 1)\"" 30 &&
	test "$(wc -l <"$HOOKS/out")" = $lines &&
	replica_deliver 2 w6 &&
	wait_for "has_message 1 w6" 30 &&
	wait_converged 30 &&
	replica_expect_messages &&
	kill -0 "$(daemon_pid hooks-r1)"
'

test_expect_success 'a webhook that is down: tried again after its Retry-After, and told every change once back, also across a restart' '
	flaky=http://127.0.0.1:$HTTP_PORT/flaky &&
	: >"$HTTPD/down" &&
	hooks_conf "$HOOKS/on-change" "$flaky" &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded" 3 &&
	before=$(replica_head 1) &&
	replica_deliver 1 w7 &&
	replica_wait_log 1 "warning: webhook .$flaky.: HTTP status 503; trying again in 5 s .Retry-After." &&
	replica_run 1 maildag status --json >st.json &&
	json_get "d[\"webhooks\"][0][\"failures\"] >= 1 and d[\"webhooks\"][0][\"untold\"]" <st.json >untold &&
	test "$(cat untold)" = true &&
	{ replica_run 1 maildag status >st.txt || :; } &&
	grep -q "^webhook $flaky: [0-9]* failures\{0,1\} in a row, last: HTTP status 503; changes since $(echo $before | cut -c1-10) not told; next try " st.txt &&
	# it stays down while the daemon is stopped and mail comes
	replica_stop 1 &&
	replica_deliver 1 w8 &&
	rm "$HTTPD/down" &&
	replica_start 1 &&
	wait_for "test \"\$(ok_lines /flaky | tail -n 1 | cut -d\" \" -f2)\" = \"\$(replica_head 1)\"" 60 &&
	ok_lines /flaky >ok &&
	cat ok &&
	test "$(head -n 1 ok | cut -d" " -f1)" = "$before" &&
	chained ok &&
	replica_wait_log 1 "webhook .$flaky.: telling it of the changes since"
'

# --- a webhook through everything a site's endpoint does wrong ----------
#
# The URL's port refuses connections at first (nobody listens on
# CLOSED_PORT); then site.py listens there and answers, in turn: a
# request it holds without answering while $HTTPD/stall exists (longer
# than the daemon's 10 s timeout), a 500, then 429 with Retry-After: 1
# for as long as $HTTPD/site-down exists, then 204.  One JSON line per
# request in $HTTPD/site-records ("status" 0: held; "begin" when it came).
cat >"$HTTPD/site.py" <<'EOF'
import http.server, json, os, sys, threading, time
port, records, stall, down = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
lock = threading.Lock()
seen = [0]
def record(rec):
    with lock, open(records, "a") as f:
        f.write(json.dumps(rec) + "\n")
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        with lock:
            k = seen[0]
            seen[0] += 1
        if k == 0:
            record({"status": 0, "body": body})
            while os.path.exists(stall):
                time.sleep(0.1)
            return
        status = 500 if k == 1 else 429 if os.path.exists(down) else 204
        record({"status": status, "body": body})
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
EOF
# (its pid in a file: a test runs in a subshell)
site_stop() {
	rm -f "$HTTPD/stall"
	[ -s "$HTTPD/site.pid" ] && kill "$(cat "$HTTPD/site.pid")" 2>/dev/null
	rm -f "$HTTPD/site.pid"
	return 0
}
test_at_end site_stop
trap 'site_stop; httpd_stop; lib_dovecot_cleanup' EXIT

# site_lines STATUS: "OLD NEW" of each request answered STATUS
site_lines() {
	"$PYTHON" -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["status"] == int(sys.argv[2]):
        b = json.loads(r["body"])
        print(b["old"] or "0" * 40, b["new"])
' "$HTTPD/site-records" "$1"
}
site_count() { site_lines "$1" | wc -l; }
webhook_json() {
	replica_run 1 maildag status --json >st.json &&
	json_get "$1" <st.json
}

test_expect_success 'a webhook that refuses, then stalls, answers 500, then 429 with Retry-After: the daemon syncs on meanwhile, and the webhook is told every change in the end' '
	site=http://127.0.0.1:$CLOSED_PORT/site &&
	shown="webhook .http://127\.0\.0\.1:$CLOSED_PORT/site.: " &&
	: >"$HTTPD/site-records" && : >"$HTTPD/stall" && : >"$HTTPD/site-down" &&
	reloads=$(replica_log_count 1 "configuration reloaded") &&
	hooks_conf "$HOOKS/on-change" "$site" &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded" $((reloads + 1)) &&
	before=$(replica_head 1) &&
	# refused: nobody listens yet
	replica_deliver 1 w9 &&
	replica_wait_log 1 "$shown.*; trying again in 5 s\$" &&
	{ "$PYTHON" "$HTTPD/site.py" "$CLOSED_PORT" "$HTTPD/site-records" \
		"$HTTPD/stall" "$HTTPD/site-down" </dev/null >>"$HTTPD/log" 2>&1 &
	  echo $! >"$HTTPD/site.pid"; } &&
	# stalled: the request is held; the daemon gives up on it by itself
	# and meanwhile replicates both ways
	wait_for "test \$(site_count 0) = 1" 30 &&
	wait_for "has_message 2 w9" 30 &&
	replica_deliver 1 w10 &&
	replica_deliver 2 w11 &&
	wait_for "has_message 2 w10 && has_message 1 w11" 30 &&
	replica_wait_log 1 "$shown.*timed out.*; trying again in [0-9]+ s\$" 1 30 &&
	test -e "$HTTPD/stall" && rm "$HTTPD/stall" &&
	# then 500, then 429 with Retry-After (1 s, kept to the 5 s minimum)
	replica_wait_log 1 "${shown}HTTP status 500; trying again in [0-9]+ s\$" 1 60 &&
	replica_wait_log 1 "${shown}HTTP status 429; trying again in 5 s \(Retry-After\)\$" 1 120 &&
	test "$(webhook_json "d[\"webhooks\"][0][\"failures\"] >= 4 and d[\"webhooks\"][0][\"untold\"]")" = true &&
	# the waits without Retry-After double: 5 s, 10 s, 20 s ...
	grep "$shown.*; trying again in [0-9]* s\$" "$(replica_log 1)" |
		sed "s/.*trying again in \([0-9]*\) s\$/\1/" >waits &&
	cat waits && test "$(wc -l <waits)" -ge 3 &&
	awk "NR == 1 && \$1 != 5 || NR > 1 && \$1 != 2 * prev { bad = 1 } { prev = \$1 } END { exit bad }" waits &&
	test "$(site_count 204)" = 0 &&
	replica_deliver 2 w12 &&
	wait_for "has_message 1 w12" 30 &&
	wait_converged 30 &&
	replica_expect_messages &&
	# the endpoint is back: one POST covers every change since before
	rm "$HTTPD/site-down" &&
	wait_for "test \"\$(site_lines 204 | tail -n 1 | cut -d\" \" -f2)\" = \"\$(replica_head 1)\"" 60 &&
	site_lines 204 >ok &&
	cat ok &&
	test "$(head -n 1 ok | cut -d" " -f1)" = "$before" &&
	chained ok &&
	replica_wait_log 1 "${shown}told again, after [0-9]+ failures" &&
	test "$(webhook_json "d[\"webhooks\"][0][\"untold\"]")" = false &&
	kill -0 "$(daemon_pid hooks-r1)"
'

test_expect_success 'stop' '
	replica_stop_all
'

test_done
