#!/bin/sh
test_description='a peer history of 5,000 commits, with real daemons: while a child process checks every commit of it, maildag-syncd keeps answering maildag status and a delivery goes through; a bad commit deep in such a history still refuses all of it; a good one is merged whole; a check child killed, or the daemon stopped or killed under it, approves nothing'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"
[ -n "$PYTHON" ] || test_skip_all "no python3 to write the histories"
command -v pgrep >/dev/null || test_skip_all "no pgrep to find the check child"

if test_have_prereq ROOT; then
	U=maildagk1
else
	U=$(id -un)
fi

# r1 runs; r2's daemon is stopped and its refs/heads/mail is set, with
# git plumbing, to the tip of a long history made with git fast-import;
# r1 gets it by its own fetch (maildag sync) and checks it in a child.

N=5000
BAD_AT=100
FLAGS=20000
# the largest resident set maildag-syncd may reach, in kB
RSS_MAX=65536
# a fetch of 5,000 commits on a busy machine is never cut short here
REPLICA_NET_TIMEOUT=60

g2() { replica_ugit 2 "$@"; }
now_ms() { date +%s%3N; }
syncd_pid() { daemon_pid "$(replica_set)-r1"; }
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$(syncd_pid)/status"; }
contains() {
	replica_git "$1" merge-base --is-ancestor "$2" "${3:-refs/heads/mail}" 2>/dev/null
}
status_merge_error() { replica_status 1 | json_get "peer(\"r2\")[\"merge_error\"]"; }

# history.py PARENT N BAD_AT PREFIX [PATH BLOB]: a git fast-import stream
# of N commits on PARENT (onto refs/heads/PREFIX), commit i delivering
# the message PREFIX<i> into INBOX; with BAD_AT > 0, commit BAD_AT also
# adds a symbolic link in .Evil, and commit BAD_AT + 1 removes .Evil
# again.  With PATH and BLOB (a message of PARENT's, flags ":2,S"), commit
# i flags it instead (":2,FS" and back: what a client does), delivering
# nothing.
cat >history.py <<'EOF'
import sys
parent, n, bad_at, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
flip = sys.argv[5:7]
out = sys.stdout.buffer

def shard(key):
    h = 2166136261
    for b in key.encode():
        h = ((h ^ b) * 16777619) & 0xffffffff
    return "%02x" % (h & 0xff)

def data(b):
    out.write(b"data %d\n" % len(b) + b + b"\n")

if bad_at:
    out.write(b"blob\nmark :1000000\n")
    data(b"/etc/passwd")
for i in range(1, n + 1) if flip else ():
    path, blob = flip
    out.write(b"commit refs/heads/%s\n" % prefix.encode())
    out.write(b"committer peer <peer@example.org> %d +0000\n" % (1700000000 + i))
    data(b"flags %d" % i)
    if i == 1:
        out.write(b"from %s\n" % parent.encode())
    old, new = (path, path[:-1] + "FS") if i % 2 else (path[:-1] + "FS", path)
    out.write(("D %s\nM 100644 %s %s\n" % (old, blob, new)).encode())
for i in range(1, n + 1) if not flip else ():
    body = ("From: Peer <peer@example.org>\nTo: user@localhost\n"
            "Subject: history %d\nMessage-ID: <%s%d.1@example.org>\n"
            "Date: Sun, 22 Nov 2026 10:00:00 +0000\n\nmessage %d\n"
            % (i, prefix, i, i)).encode()
    out.write(b"blob\nmark :%d\n" % i)
    data(body)
    key = "%d.M%dP7Q1.%s" % (1600000000 + i, i, prefix)
    out.write(b"commit refs/heads/%s\n" % prefix.encode())
    out.write(b"committer peer <peer@example.org> %d +0000\n" % (1700000000 + i))
    data(b"commit %d" % i)
    if i == 1:
        out.write(b"from %s\n" % parent.encode())
    out.write(("M 100644 :%d cur/%s/%s,S=%d:2,S\n"
               % (i, shard(key), key, len(body))).encode())
    if i == bad_at:
        evil = "1600000000.M0P7Q1.evil"
        out.write(b"M 100644 inline .Evil/maildirfolder\n")
        data(b"")
        out.write(("M 120000 :1000000 .Evil/cur/%s/%s:2,\n"
                   % (shard(evil), evil)).encode())
    if i == bad_at + 1:
        out.write(b"D .Evil\n")
EOF
chmod 644 history.py

# history NAME BAD_AT [PARENT-FILE [COUNT]]: that history (COUNT commits,
# default $N) on the commit in PARENT-FILE (default good: r2's good
# head), made with git fast-import; its tip
history() {
	"$PYTHON" history.py "$(cat "${3:-good}")" "${4:-$N}" "$2" "$1" ${5:+"$5" "$6"} |
		g2 fast-import --quiet &&
	g2 rev-parse "refs/heads/$1"
}

# gone PID: the process PID is gone, or a zombie nobody has reaped yet
gone() {
	case $(ps -o stat= -p "$1" 2>/dev/null) in
	''|Z*) return 0;;
	*) return 1;;
	esac
}

# check_field EXPR: json_get of r1's status on r2's "check" object
check_field() { replica_status 1 | json_get "peer(\"r2\")[\"check\"]$1"; }

# flag_history NAME: r2 (stopped) gets $FLAGS commits more on its head,
# each flagging or unflagging one message (nothing new to write, and
# each commit is checked faster than a delivery: more of them, so that
# the check is not over before catch_check sees it); their tip in
# tip.NAME; r1 fetches it, and its check child is caught and stopped
# (check.pid)
flag_history() {
	local m
	replica_head 2 >"head2.$1" &&
	m=$(g2 ls-tree -r "$(cat "head2.$1")" | grep -m 1 "	cur/.*Q1\.h,S=[0-9]*:2,S$") &&
	history "$1" 0 "head2.$1" $FLAGS "$(printf "%s" "$m" | cut -f 2)" \
		"$(printf "%s" "$m" | cut -d " " -f 3 | cut -f 1)" >"tip.$1" &&
	rm -f check.pid &&
	{ catch_check & } &&
	g2 update-ref refs/heads/mail "$(cat "tip.$1")" &&
	replica_sync 1 &&
	wait_for "test -s check.pid" 120
}

# probe_start: in the background, `maildag status --json` on r1 again and
# again; each answer's latency in ms and whether it said r2's history was
# being checked ("<ms> true|false") goes to probe.log, a failure as
# "failed <exit status>"
probe_start() {
	rm -f probe.stop probe.log
	( while ! test -e probe.stop; do
		t0=$(now_ms)
		if replica_status 1 >probe.json 2>probe.err; then
			t1=$(now_ms)
			echo "$((t1 - t0)) $(json_get \
				"peer(\"r2\")[\"check\"][\"running\"]" <probe.json)"
		else
			echo "failed $?"
		fi >>probe.log
	done ) &
	echo $! >probe.pid
}

# probe_stop NAME [MIN]: end the probe; every call must have been
# answered, and at least MIN (0) of them while the check ran; the
# latencies go to latency.NAME
probe_stop() {
	touch probe.stop &&
	wait_for "! kill -0 $(cat probe.pid) 2>/dev/null" 30 &&
	cp probe.log "latency.$1" &&
	{ ! grep -q "^failed" probe.log || { cat probe.log >&2; false; }; } &&
	during=$(grep -c " true$" probe.log || :) &&
	echo "maildag status answered $(wc -l <probe.log) times, $during during the check" &&
	test "$during" -ge "${2:-0}"
}

# say_latencies NAME TIP: the figures of latency.NAME and the check of
# TIP as "#" lines
say_latencies() {
	[ -s "latency.$1" ] || return 0
	grep -v "^failed" "latency.$1" | sort -n | awk -v name="$1" '{
		n++; v[n] = $1; if ($2 == "true") d++
	} END {
		if (!n) exit
		printf "%s: maildag status answered %d times (%d during the check); " \
			"latency ms min %d, median %d, max %d\n", name, n, d,
			v[1], v[int((n + 1) / 2)], v[n]
	}' | sed "s/^/# /"
	grep -h "during.$1" latency.lda 2>/dev/null | sed "s/^/# /"
	grep -hoE "peer r2: [0-9]+ commits of $(cut -c1-12 "$2") checked in [0-9]+ ms, in a child of [0-9]+ kB at most" \
		"$(replica_log 1)" 2>/dev/null | sed "s/^/# /"
}

# catch_check: wait for the check child (named maildag-check) under r1's
# daemon, stop it (SIGSTOP) and write its pid to check.pid
catch_check() {
	local n=0 pid
	while [ $n -lt 12000 ]; do
		pid=$(pgrep -P "$(syncd_pid)" -x maildag-check) &&
			kill -STOP "$pid" && echo "$pid" >check.pid && return 0
		sleep 0.005
		n=$((n + 1))
	done
	return 1
}

test_expect_success 'setup: two replicas over file://, some mail; r2 stops' '
	replica_setup hist $U $U &&
	replica_start_all &&
	replica_deliver 2 m1 &&
	replica_deliver 1 m2 &&
	wait_converged 30 &&
	wait_for "test \"\$(replica_head 1)\" = \"\$(replica_head 2)\"" 30 &&
	replica_stop 2 &&
	replica_head 2 >good &&
	replica_head 1 >head.1
'

test_expect_success "two histories of $N commits on r2: one good, one with a symbolic link in commit $BAD_AT, gone in the next" '
	history h 0 >tip.good &&
	history b $BAD_AT >tip.bad &&
	test "$(g2 rev-list --count "$(cat tip.good)" "^$(cat good)")" = $N &&
	test "$(g2 rev-list --count "$(cat tip.bad)" "^$(cat good)")" = $N &&
	g2 rev-list --reverse "$(cat tip.bad)" "^$(cat good)" | sed -n "${BAD_AT}p" >bad.commit &&
	g2 ls-tree -r "$(cat bad.commit)" | grep -q "^120000 blob .*	\.Evil/cur/" &&
	! g2 ls-tree -r "$(cat tip.bad)" | grep -q "\.Evil" &&
	test "$(g2 ls-tree -r "$(cat tip.good)" | grep -c "\.h[0-9]*,S=")" = $N
'

test_expect_success "a bad commit $BAD_AT deep in $N is refused whole; maildag status answers meanwhile" '
	b=$(cat tip.bad) && b12=$(cut -c1-12 tip.bad) && c12=$(cut -c1-12 bad.commit) &&
	g2 update-ref refs/heads/mail "$b" &&
	probe_start &&
	replica_sync 1 &&
	replica_wait_log 1 "peer r2: refusing $b12: commit $c12 of its history: .*symbolic link" 1 300 ||
		{ probe_stop bad; false; } &&
	probe_stop bad &&
	# parents first: the walk stops at the bad commit
	replica_wait_log 1 "peer r2: $BAD_AT commits of $b12 checked in [0-9]+ ms, in a child" &&
	test "$(replica_log_count 1 "refusing $b12")" = 1 &&
	replica_status 1 >st.bad &&
	json_get "peer(\"r2\")[\"merge_error\"]" <st.bad >merge_error &&
	cat merge_error &&
	grep -q "^refused $b12: commit $c12 of its history: .*symbolic link" merge_error &&
	test "$(json_get "peer(\"r2\")[\"check\"][\"running\"]" <st.bad)" = false &&
	test "$(replica_head 1)" = "$(cat head.1)" &&
	! contains 1 "$(cat bad.commit)" && ! contains 1 "$b" &&
	test -z "$(find "$(replica_home 1)" -name .Evil)" &&
	test -z "$(find "$(replica_maildir 1)" -type l)"
'

test_expect_success "the good $N: while the child checks them (stopped, then running), status answers and a delivery exits 0; then all are merged" '
	t=$(cat tip.good) && t12=$(cut -c1-12 tip.good) &&
	rm -f check.pid &&
	{ catch_check & } &&
	probe_start &&
	g2 update-ref refs/heads/mail "$t" &&
	replica_sync 1 &&
	wait_for "test -s check.pid" 300 ||
		{ probe_stop good; false; } &&
	# the check is under way, and stays so until SIGCONT
	for i in 1 2 3; do
		replica_status 1 >st.during &&
		test "$(json_get "peer(\"r2\")[\"check\"][\"running\"]" <st.during)" = true &&
		test "$(json_get "peer(\"r2\")[\"check\"][\"commit\"]" <st.during)" = "$t" ||
			{ kill -CONT "$(cat check.pid)"; probe_stop good; false; }
	done &&
	t0=$(now_ms) &&
	{ test_message during | replica_run 1 maildag-lda; echo $? >lda.rc; } &&
	t1=$(now_ms) &&
	echo "during.good: maildag-lda exited $(cat lda.rc) after $((t1 - t0)) ms" >>latency.lda &&
	kill -0 "$(cat check.pid)" &&
	kill -CONT "$(cat check.pid)" &&
	test "$(cat lda.rc)" = 0 &&
	echo during >>"$REPLICAS/delivered" &&
	replica_wait_log 1 "peer r2: (fast-forward to|merged) $t12" 1 300 ||
		{ probe_stop good; false; } &&
	probe_stop good 3 &&
	replica_wait_log 1 "peer r2: $N commits of $t12 checked in [0-9]+ ms, in a child" &&
	grep -E "peer r2: $N commits of $t12 checked" "$(replica_log 1)" &&
	contains 1 "$t" &&
	test "$(status_merge_error)" = null
'

test_expect_success "r1 holds the $N messages and the delivery; r2 back, the two converge; maildag-syncd stayed small" '
	seq 1 $N | sed "s/^/h/" >>"$REPLICAS/delivered" &&
	wait_for "replica_applied 1" 120 &&
	replica_start 2 &&
	wait_converged 120 &&
	replica_expect_messages &&
	replica_run 1 maildag fsck &&
	h=$(hwm) && echo "maildag-syncd VmHWM $h kB" | tee vmhwm &&
	test "$h" -lt $RSS_MAX
'

test_expect_success 'a check child killed approves nothing: its check is tried again, and then merged' '
	replica_stop 2 &&
	flag_history k &&
	c=$(cat check.pid) && k12=$(cut -c1-12 tip.k) &&
	test "$(check_field "[\"commit\"]")" = "$(cat tip.k)" &&
	kill -KILL "$c" &&
	replica_wait_log 1 "peer r2: the history check of $k12 failed: the child process died of signal 9.*; trying again in" &&
	replica_wait_log 1 "peer r2: (fast-forward to|merged) $k12" 1 60 &&
	contains 1 "$(cat tip.k)" &&
	# in the log: the failure, a new check of the same commit that
	# passed, and only then the merge
	log=$(replica_log 1) &&
	f=$(grep -n "history check of $k12 failed" "$log" | cut -d: -f1) &&
	r=$(grep -n "checking the history of $k12" "$log" | tail -n 1 | cut -d: -f1) &&
	p=$(grep -n "$FLAGS commits of $k12 checked in" "$log" | cut -d: -f1) &&
	m=$(grep -En "peer r2: (fast-forward to|merged) $k12" "$log" | cut -d: -f1) &&
	echo "failed at $f, checked again at $r, passed at $p, merged at $m" &&
	test "$f" -lt "$r" && test "$r" -lt "$p" && test "$p" -lt "$m" &&
	test "$(grep -c "checking the history of $k12" "$log")" = 2 &&
	test "$(check_field "[\"failures\"]")" = 0 &&
	test "$(check_field "[\"runs\"]")" -ge 2
'

test_expect_success 'the daemon stopped (SIGTERM) while a check runs: the child goes with it; started again, it checks and merges' '
	flag_history s &&
	c=$(cat check.pid) &&
	replica_stop 1 &&
	wait_for "gone $c" 10 &&
	! contains 1 "$(cat tip.s)" &&
	replica_start 1 &&
	replica_wait_log 1 "peer r2: (fast-forward to|merged) $(cut -c1-12 tip.s)" 1 60 &&
	contains 1 "$(cat tip.s)"
'

test_expect_success 'the daemon killed (SIGKILL) while a check runs: the child dies with it' '
	flag_history x &&
	c=$(cat check.pid) &&
	replica_kill 1 &&
	wait_for "gone $c" 10 &&
	! contains 1 "$(cat tip.x)" &&
	replica_start 1 &&
	replica_wait_log 1 "peer r2: (fast-forward to|merged) $(cut -c1-12 tip.x)" 1 60 &&
	replica_start 2 &&
	wait_converged 120 &&
	replica_expect_messages &&
	replica_run 1 maildag fsck
'

test_expect_success 'stop' '
	replica_stop_all
'

say_latencies bad tip.bad
say_latencies good tip.good
! test -s vmhwm || sed "s/^/# /" vmhwm
grep -hoE "peer r2: $FLAGS commits of [0-9a-f]+ checked in [0-9]+ ms, in a child of [0-9]+ kB at most" \
	"$(replica_log 1 2>/dev/null)" 2>/dev/null | sed "s/^/# /"
test_done
