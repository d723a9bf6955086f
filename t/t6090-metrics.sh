#!/bin/sh
test_description='maildag status --metrics: OpenMetrics text from real daemons, a good peer and a failing one, parsed by a strict parser'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"
[ -n "$PYTHON" ] && "$PYTHON" -c 'import prometheus_client.openmetrics.parser' 2>/dev/null ||
	test_skip_all "no python3-prometheus-client for the OpenMetrics parser"

REPLICA_FETCH_INTERVAL=2
export REPLICA_FETCH_INTERVAL

# scrape WANT-STATUS [ARGS]: replica 1's metrics into out (stderr in err)
scrape() {
	local want=$1 got=0
	shift
	replica_run 1 maildag status --metrics "$@" >out 2>err || got=$?
	cat err >&2
	if [ "$got" != "$want" ]; then
		cat out >&2
		echo "exit $got, wanted $want" >&2
		return 1
	fi
}

# check FILE PYTHON [prometheus]: parse FILE with prometheus_client's
# OpenMetrics parser (it raises on anything malformed, a missing "# EOF"
# included), or with "prometheus" its Prometheus text format parser (and
# no "# EOF", no "# UNIT"), then run the assertions in PYTHON with
# m(name, peer=, direction=) the value of one sample (None when absent)
# and fam the families by name
check() {
	"$PYTHON" -c '
import sys
text = open(sys.argv[1]).read()
if sys.argv[4] == "prometheus":
    from prometheus_client.parser import text_string_to_metric_families
    assert "# EOF" not in text and "# UNIT" not in text
else:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    assert text.endswith("# EOF\n"), text[-40:]
fam = {f.name: f for f in text_string_to_metric_families(text)}
samples = {}
for f in fam.values():
    assert f.documentation, f.name
    for s in f.samples:
        key = (s.name,) + tuple(sorted(s.labels.items()))
        assert key not in samples, key
        samples[key] = s.value
        assert s.labels["mailbox"] == sys.argv[3], s
def m(name, **labels):
    labels["mailbox"] = sys.argv[3]
    return samples.get((name,) + tuple(sorted(labels.items())))
exec(sys.argv[2])
' "$1" "$2" "$(replica_repo 1)" "${3:-openmetrics}"
}

# field PEER KEY: of replica 1's status --json
field() {
	replica_status 1 | json_get "(peer(\"$1\") or {}).get(\"$2\")"
}

# push_failures PEER: replica 1's pushes to PEER that failed in a row
push_failures() {
	replica_status 1 | json_get "peer(\"$1\")[\"push\"][\"failures\"]"
}

unreadable_count() {
	replica_status 1 | json_get "len(d[\"unreadable\"])"
}

test_expect_success 'setup: two replicas, and a third peer of r1 that does not exist' '
	replica_setup met u1 u1 &&
	replica_write_config 1 "{ \"node\": \"r1\", \"fetch_interval\": 2,
	  \"backoff_min\": 1, \"backoff_max\": 2, \"net_timeout\": 5,
	  \"debounce_ms\": 100,
	  \"peers\": { $(replica_peer_json 1 2),
		\"dead\": { \"url\": \"file://$TRASH/nowhere.git\" } } }" &&
	replica_start_all &&
	replica_deliver 1 m1 &&
	replica_deliver 2 m2 &&
	wait_for "replica_expect_messages 2>/dev/null" 30 &&
	replica_expect_messages &&
	wait_for "[ \"\$(field r2 unpushed)\" = 0 ]" 30 &&
	wait_for "[ \"\$(push_failures dead)\" -ge 1 ]" 30
'

test_expect_success 'scrape: 0, OpenMetrics that a strict parser takes, # EOF at the end' '
	scrape 0 &&
	test ! -s err &&
	test "$(tail -n 1 out)" = "# EOF" &&
	check out "
assert m(\"maildag_up\") == 1
assert m(\"maildag_quorum\") == 1
assert fam[\"maildag_peer_runs\"].type == \"counter\"
assert fam[\"maildag_peer_lag_seconds\"].unit == \"seconds\"
# the failing peer: failures counted, never a success
for d in (\"push\", \"fetch\"):
    assert m(\"maildag_peer_consecutive_failures\", peer=\"dead\", direction=d) >= 1, d
    assert m(\"maildag_peer_last_success_timestamp_seconds\", peer=\"dead\", direction=d) is None, d
    assert m(\"maildag_peer_last_error_timestamp_seconds\", peer=\"dead\", direction=d) > 0, d
    assert m(\"maildag_peer_runs_total\", peer=\"dead\", direction=d) >= 1, d
    assert m(\"maildag_peer_lag_seconds\", peer=\"dead\", direction=d) is None, d
assert m(\"maildag_peer_pending_push_commits\", peer=\"dead\") is None
assert m(\"maildag_peer_ahead_commits\", peer=\"dead\") is None
# the good peer: in step, its last success recent
assert m(\"maildag_peer_pending_push_commits\", peer=\"r2\") == 0
assert m(\"maildag_peer_lag_seconds\", peer=\"r2\", direction=\"push\") == 0
assert m(\"maildag_peer_lag_seconds\", peer=\"r2\", direction=\"fetch\") < 60
for d in (\"push\", \"fetch\"):
    assert m(\"maildag_peer_consecutive_failures\", peer=\"r2\", direction=d) == 0, d
    assert m(\"maildag_peer_runs_total\", peer=\"r2\", direction=d) >= 1, d
    assert m(\"maildag_peer_timeouts_total\", peer=\"r2\", direction=d) == 0, d
import time
t = m(\"maildag_peer_last_success_timestamp_seconds\", peer=\"r2\", direction=\"fetch\")
assert time.time() - 60 < t <= time.time() + 1, t
assert m(\"maildag_peer_behind_commits\", peer=\"r2\") is not None
assert m(\"maildag_peer_quorum_waits\", peer=\"r2\") == 0
assert m(\"maildag_peer_merge_refused\", peer=\"r2\") == 0
assert m(\"maildag_peer_history_check_running\", peer=\"r2\") in (0, 1)
assert m(\"maildag_peer_history_check_failures\", peer=\"r2\") == 0
assert m(\"maildag_repository_size_bytes\") > 0
assert m(\"maildag_unwatched_folders\") == 0
assert m(\"maildag_unreadable_files\") == 0
"
'

test_expect_success 'an unreadable file shows in maildag_unreadable_files' '
	f="$(replica_maildir 1)/cur/$(date +%s).M1P$$Qhidden.unreadable:2," &&
	test_message hidden >"$TRASH/put.tmp" &&
	chown u1: "$TRASH/put.tmp" && chmod 000 "$TRASH/put.tmp" &&
	mv "$TRASH/put.tmp" "$f" &&
	wait_for "[ \"\$(unreadable_count)\" = 1 ]" 30 &&
	scrape 0 &&
	check out "assert m(\"maildag_unreadable_files\") == 1" &&
	rm -f "$f"
'

test_expect_success '--metrics-file: the Prometheus text format for node_exporter, written whole by a rename' '
	mkdir -p "$TRASH/textfile" && chown u1: "$TRASH/textfile" &&
	scrape 0 --metrics-file "$TRASH/textfile/maildag.prom" &&
	test ! -s out &&
	test "$(ls "$TRASH/textfile")" = maildag.prom &&
	check "$TRASH/textfile/maildag.prom" "
assert m(\"maildag_up\") == 1
assert m(\"maildag_peer_consecutive_failures\", peer=\"dead\", direction=\"push\") >= 1
assert m(\"maildag_peer_runs_total\", peer=\"dead\", direction=\"push\") >= 1
assert fam[\"maildag_peer_runs\"].type == \"counter\"
" prometheus &&
	st=0 &&
	replica_run 1 maildag status --metrics-file /nonexistent/dir/x.prom \
		2>err || st=$? &&
	test "$st" = 73 && grep -q "x.prom.tmp" err
'

# node_exporter's textfile collector, the real one, when it is installed
# (.ci/setup installs Debian's prometheus-node-exporter): it reads the
# Prometheus text format, not OpenMetrics, and must take the file whole
NODE_EXPORTER=$(command -v prometheus-node-exporter || command -v node_exporter || :)
[ -n "$NODE_EXPORTER" ] && test_set_prereq NODE_EXPORTER
ne_stop() {
	[ -s "$TRASH/node_exporter.pid" ] &&
		kill "$(cat "$TRASH/node_exporter.pid")" 2>/dev/null
	rm -f "$TRASH/node_exporter.pid"
}
test_at_end ne_stop

test_expect_success NODE_EXPORTER 'node_exporter'"'"'s textfile collector takes the file: no scrape error, the samples there' '
	scrape 0 --metrics-file "$TRASH/textfile/maildag.prom"
	port=$("$PYTHON" -c "import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])")
	# (a command of its own: "a && b &" would put a in the background too;
	# its pid in a file, as the test runs in a subshell)
	sh -c "echo \$\$ >\"\$0\"; exec \"\$@\"" "$TRASH/node_exporter.pid" \
		"$NODE_EXPORTER" --web.listen-address=127.0.0.1:$port \
		--collector.disable-defaults --collector.textfile \
		--collector.textfile.directory="$TRASH/textfile" \
		>"$TRASH/node_exporter.log" 2>&1 </dev/null &
	wait_for "curl -sf http://127.0.0.1:$port/metrics >scraped" &&
	ne_stop &&
	grep -x "node_textfile_scrape_error 0" scraped &&
	grep -q "^maildag_up{mailbox=\"[^\"]*\"} 1\$" scraped &&
	# node_exporter sorts the labels
	grep -q "^maildag_peer_consecutive_failures{direction=\"push\",mailbox=\"[^\"]*\",peer=\"dead\"} [1-9]" scraped &&
	# a counter keeps its type and help
	grep -qx "# TYPE maildag_peer_runs_total counter" scraped &&
	grep -q "^# HELP maildag_peer_runs_total Pushes or fetches" scraped &&
	grep -q "^maildag_peer_runs_total{direction=\"push\",mailbox=\"[^\"]*\",peer=\"dead\"} [1-9]" scraped
'

test_expect_success 'no daemon: exit 3, maildag_up 0, what the repository tells' '
	replica_stop 1 &&
	scrape 3 &&
	test "$(cat err)" = "maildag-syncd is not running" &&
	test "$(tail -n 1 out)" = "# EOF" &&
	du=$(du -s --block-size=1 "$(replica_repo 1)/objects" | cut -f1) &&
	check out "
assert m(\"maildag_up\") == 0
assert m(\"maildag_repository_size_bytes\") == $du, (m(\"maildag_repository_size_bytes\"), $du)
assert m(\"maildag_peer_ahead_commits\", peer=\"r2\") is not None
assert m(\"maildag_peer_consecutive_failures\", peer=\"dead\", direction=\"push\") is None
assert m(\"maildag_unreadable_files\") is None
assert \"maildag_peer_runs\" in fam
" &&
	scrape 3 --metrics-file "$TRASH/textfile/maildag.prom" &&
	check "$TRASH/textfile/maildag.prom" "assert m(\"maildag_up\") == 0" prometheus
'

test_expect_success 'bad usage: 64' '
	st=0 &&
	replica_run 1 maildag status --json --metrics >out 2>err || st=$? &&
	test "$st" = 64 && grep -q "^usage: maildag status" err
'

test_done
