#!/bin/sh
test_description='kept peer sessions (issue 15): replication through one ssh connection per peer and maildag serve in session mode, the git fallback for a peer that does not speak it, and the faults of a session: the peer daemon restarted, the session cut, the listener stopped and frozen, a peer that acks nothing'
. "$abs_top_srcdir/t/test-lib.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
test_have_prereq ROOT || test_skip_all "needs root: users of its own and an sshd"
. "$abs_top_srcdir/t/lib-sshd.sh"
sshd_start || test_skip_all "no test sshd"
. "$abs_top_srcdir/t/lib-replica.sh"

S1=maildagss1 S2=maildagss2 S3=maildagss3

# authorize I J [COMMAND]: replica I's key logs in to J's account with
# the forced command maildag init prints, or COMMAND
authorize() {
	local i=$1 j=$2 cmd=${3:-"exec $BIN/maildag serve --peer r$1"}
	printf 'command="%s",restrict %s\n' "$cmd" \
		"$(cut -d" " -f1,2 "$(replica_home "$i")/.ssh/id_ed25519.pub")" \
		>>"$SSHD_DIR/keys/$(replica_user "$j")"
}

# conn I NAME FIELD: FIELD of the connection to peer NAME in I's status
conn() {
	replica_status "$1" | json_get "(peer(\"$2\")[\"connection\"] or {}).get(\"$3\")"
}

# logins: how many ssh logins the test sshd has taken so far
logins() { grep -c "Accepted publickey" "$SSHD_DIR/log"; }

# arrived I ID: the message is in replica I's Maildir
arrived() {
	grep -rlq "^Message-ID: <$2\." "$(replica_maildir "$1")/new" \
		"$(replica_maildir "$1")/cur" 2>/dev/null
}

test_expect_success 'setup: three replicas over ssh, forced commands on every key; r3 serves with an older maildag that refuses sessions' '
	REPLICA_FETCH_INTERVAL=300 replica_setup sess $S1 $S2 $S3 &&
	for j in 1 2 3; do
		: >"$SSHD_DIR/keys/$(replica_user $j)" || return 1
	done &&
	# what an older maildag serve answers to "maildag-session 1"
	cat >"$TRASH/old-serve" <<-EOF &&
	#!/bin/sh
	case "\$SSH_ORIGINAL_COMMAND" in
	maildag-session*)
		echo "maildag: refused: '\''\$SSH_ORIGINAL_COMMAND'\'': this key serves git-upload-pack and git-receive-pack only" >&2
		exit 77;;
	esac
	exec "$BIN/maildag" serve --peer "\$1"
	EOF
	chmod 755 "$TRASH/old-serve" &&
	authorize 1 2 && authorize 2 1 && authorize 3 1 && authorize 3 2 &&
	authorize 1 3 "$TRASH/old-serve r1" && authorize 2 3 "$TRASH/old-serve r2" &&
	cat "$SSHD_DIR/keys/$S3"
'

test_expect_success 'the daemons start; r1 keeps a session up to r2, and r3 is served by git (fallback)' '
	replica_start_all &&
	wait_for "test \"\$(conn 1 r2 state)\" = up" &&
	wait_for "test \"\$(conn 2 r1 state)\" = up" &&
	wait_for "test \"\$(conn 1 r3 state)\" = fallback" &&
	conn 1 r3 last_error | grep "serves git-upload-pack" &&
	test "$(conn 3 r1 state)" = up
'

# r1_logins_to J: logins of r1's key into replica J's account so far
r1_logins_to() {
	local fp
	fp=$(ssh-keygen -l -E sha256 -f "$(replica_home 1)/.ssh/id_ed25519.pub" | cut -d" " -f2) &&
	grep "Accepted publickey for $(replica_user "$1") " "$SSHD_DIR/log" |
		grep -c "$fp" || :
}

test_expect_success 'deliveries reach the session peer over the kept session, with no new ssh login' '
	wait_converged 60 &&
	before=$(r1_logins_to 2) &&
	pushes=$(conn 1 r2 pushes) &&
	for k in 1 2 3 4 5; do
		replica_deliver 1 s$k || return 1
	done &&
	for k in 1 2 3 4 5; do
		wait_for "arrived 2 s$k" || return 1
	done &&
	test "$(conn 1 r2 pushes)" -gt "$pushes" &&
	test "$(conn 1 r2 state)" = up &&
	test "$(r1_logins_to 2)" = "$before" &&
	wait_converged 60 &&
	replica_expect_messages
'

test_expect_success 'the fallback peer is reached by git: a login per push' '
	before=$(r1_logins_to 3) &&
	replica_deliver 1 f1 &&
	wait_for "arrived 3 f1" &&
	# (r3 may have it first by its own session to r1: wait for the push)
	wait_for "test \$(r1_logins_to 3) -gt $before" &&
	test "$(conn 1 r3 state)" = fallback
'

test_expect_success 'quorum 2 is met by the session acknowledgement' '
	replica_deliver 1 q1 --quorum 2 &&
	# exit 0: a peer holds it in its repository already (its Maildir
	# follows when its daemon merges)
	{ replica_git 2 grep -q -F "<q1." refs/peers/r1/mail ||
	  replica_git 3 grep -q -F "<q1." refs/peers/r1/mail; } &&
	wait_for "arrived 2 q1"
'

test_expect_success 'status: the connection says up, since, bytes, acknowledgements' '
	replica_status 1 | json_get "peer(\"r2\")[\"connection\"]" >c &&
	cat c &&
	grep "\"state\": \"up\"" c &&
	grep "\"bytes_out\": [1-9]" c &&
	grep "\"ack_ms\": [0-9]" c &&
	replica_run 1 maildag status >text &&
	cat text &&
	grep "^  session:  up since " text &&
	replica_run 1 maildag status --metrics >metrics &&
	grep "^maildag_peer_session_up{.*peer=\"r2\"" metrics | grep " 1\$" &&
	grep "^maildag_peer_session_up{.*peer=\"r3\"" metrics | grep " 0\$" &&
	grep "^maildag_peer_session_pushes_total{.*peer=\"r2\"" metrics
'

test_expect_success 'the peer daemon restarted: the session stays, nothing lost or twice' '
	replica_stop 2 &&
	replica_deliver 1 d1 &&
	replica_start 2 &&
	replica_deliver 1 d2 &&
	wait_for "arrived 2 d1 && arrived 2 d2" &&
	wait_converged 60 &&
	replica_expect_messages
'

# cut_session I USER: end the sshd processes serving I's session to USER
# (the listener keeps running): the link is gone
cut_session() {
	local pids
	pids=$(pgrep -u "$2" -f "maildag serve --peer r$1" || :)
	[ -n "$pids" ] || return 1
	for p in $pids; do
		kill -9 "$(ps -o ppid= -p "$p")" 2>/dev/null || :
	done
}

test_expect_success 'the session cut: it comes back on its own, nothing lost or twice' '
	cut_session 1 $S2 &&
	replica_deliver 1 c1 &&
	wait_for "arrived 2 c1" &&
	wait_for "test \"\$(conn 1 r2 state)\" = up" &&
	wait_converged 60 &&
	replica_expect_messages
'

# serve_pid I USER: the maildag serve of replica I's session in USER's account
# (the process itself, not a shell that runs it: its command line starts with it)
serve_pid() { pgrep -u "$2" -f "^[^ ]*maildag serve --peer r$1" | head -n 1; }

test_expect_success 'the sshd listener stopped: the kept session carries the mail on' '
	wait_for "test \"\$(conn 1 r2 state)\" = up" &&
	kill -TERM "$SSHD_PID" &&
	wait_for "! kill -0 $SSHD_PID 2>/dev/null" &&
	replica_deliver 1 l1 &&
	wait_for "arrived 2 l1" &&
	test "$(conn 1 r2 state)" = up
'
replica_sshd_restart || say "the test sshd did not come back"

test_expect_success 'the listener frozen and the session cut: no ack is counted, and it comes back on its own' '
	wait_for "test \"\$(conn 1 r2 state)\" = up" &&
	pushes=$(conn 1 r2 pushes) &&
	sshd_freeze &&
	cut_session 1 $S2 &&
	wait_for "test \"\$(conn 1 r2 state)\" != up" &&
	st=0 &&
	test_message z1 | replica_run 1 maildag-lda -d 4 --quorum 2 || st=$? &&
	echo z1 >>"$REPLICAS/delivered" &&
	test "$st" = 75 &&
	test "$(conn 1 r2 pushes)" = "$pushes" &&
	# (r2 may have z1 already: its own session to r1, which the cut
	# left up, fetches what r1 announces: no ack of the push by r1)
	sshd_thaw &&
	wait_for "arrived 2 z1" 60 &&
	wait_for "test \"\$(conn 1 r2 state)\" = up" 60 &&
	wait_converged 60 &&
	replica_expect_messages
'

test_expect_success 'a peer that acknowledges nothing: no ack counted, the other peers not delayed' '
	cat >"$TRASH/silent-serve" <<-EOF &&
	#!/bin/sh
	# says hello, then takes everything and answers nothing
	case "\$SSH_ORIGINAL_COMMAND" in
	maildag-session*) printf "maildag-session 1 node=r2 peer=r1 head=- have=-\\n";;
	esac
	exec cat >/dev/null
	EOF
	chmod 755 "$TRASH/silent-serve" &&
	keys="$SSHD_DIR/keys/$S2" &&
	cp "$keys" "$TRASH/keys.s2" &&
	grep -v -e "--peer r1" "$TRASH/keys.s2" >"$keys" &&
	authorize 1 2 "$TRASH/silent-serve" &&
	cut_session 1 $S2 &&
	wait_for "pgrep -u $S2 -x cat >/dev/null" &&
	wait_for "test \"\$(conn 1 r2 state)\" = up" &&
	pushes=$(conn 1 r2 pushes) || return 1
	# quorum 3: r3 (git) acknowledges, r2 never does
	(
		st=0
		test_message n1 | replica_run 1 maildag-lda -d 8 --quorum 3 \
			>/dev/null 2>&1 || st=$?
		echo $st >"$TRASH/n1.status"
	) &
	wait_for "arrived 3 n1" 5 &&
	test ! -s "$TRASH/n1.status" &&
	wait_for "test -s \"$TRASH/n1.status\"" 30 &&
	echo n1 >>"$REPLICAS/delivered" &&
	test "$(cat "$TRASH/n1.status")" = 75 &&
	test "$(conn 1 r2 pushes)" = "$pushes" &&
	# what r1 counts as held by r2: not its mail
	replica_status 1 | json_get "peer(\"r2\")[\"push\"][\"id\"]" >acked &&
	test "$(cat acked)" != "$(replica_head 1)" &&
	# the peer speaks again: its mail comes
	cp "$TRASH/keys.s2" "$keys" &&
	for p in $(pgrep -u $S2 -x cat); do
		kill -9 "$(ps -o ppid= -p "$p")" 2>/dev/null || :
	done &&
	wait_for "arrived 2 n1" 60 &&
	wait_converged 60 &&
	replica_expect_messages
'

test_expect_success 'the other direction: r2 fetches what r1 announces, over its own session' '
	replica_stop 3 &&
	f=$(replica_config_file 1) &&
	cp "$f" "$TRASH/config.r1" &&
	"$PYTHON" -c "import json, sys
c = json.load(open(sys.argv[1]))
c[\"peers\"][\"r2\"][\"push\"] = False
json.dump(c, open(sys.argv[1], \"w\"))" "$f" &&
	replica_reload 1 &&
	wait_for "grep -q \"configuration reloaded\" \"$(replica_log 1)\"" &&
	before=$(grep -c "fetched .* over the session" "$(replica_log 2)" || :) &&
	wait_for "test \"\$(conn 2 r1 state)\" = up" &&
	replica_deliver 1 o1 &&
	wait_for "arrived 2 o1" 30 &&
	grep "fetched .* over the session" "$(replica_log 2)" &&
	test "$(grep -c "fetched .* over the session" "$(replica_log 2)")" -gt "${before:-0}" &&
	cp "$TRASH/config.r1" "$f" &&
	replica_reload 1 &&
	replica_start 3 &&
	wait_converged 60 &&
	replica_expect_messages
'

# relay_start DROP_AFTER: t/lib-relay.py in front of the test sshd, on a
# free port (RELAY_PORT), its pid in $TRASH/relay.pid
relay_start() {
	local try
	for try in 1 2 3 4 5; do
		RELAY_PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000 ))
		[ -z "$(ss -Hltn "sport = :$RELAY_PORT" 2>/dev/null)" ] || continue
		: >"$TRASH/relay.out"
		"$PYTHON" "$abs_top_srcdir/t/lib-relay.py" "$RELAY_PORT" "$SSHD_PORT" 0 "$1" \
			>"$TRASH/relay.out" 2>&1 &
		echo $! >"$TRASH/relay.pid"
		wait_for "grep -q listening \"$TRASH/relay.out\"" 10 && return 0
		kill "$(cat "$TRASH/relay.pid")" 2>/dev/null
	done
	return 1
}
relay_stop() {
	[ -f "$TRASH/relay.pid" ] && kill "$(cat "$TRASH/relay.pid")" 2>/dev/null
	rm -f "$TRASH/relay.pid"
	return 0
}
test_at_end relay_stop

# peer_url I NAME URL: set peer NAME's url in replica I's configuration
peer_url() {
	"$PYTHON" -c "import json, sys
c = json.load(open(sys.argv[1]))
c['peers'][sys.argv[2]]['url'] = sys.argv[3]
json.dump(c, open(sys.argv[1], 'w'))" "$(replica_config_file "$1")" "$2" "$3"
}

test_expect_success 'the link cut in the middle of a pack: sent again, stored once, no quarantine left' '
	relay_start 300000 &&
	cp "$(replica_config_file 1)" "$TRASH/config.r1" &&
	peer_url 1 r2 "ssh://$S2@127.0.0.1:$RELAY_PORT$(replica_repo 2)" &&
	replica_reload 1 &&
	wait_for "test \"\$(conn 1 r2 state)\" = up" 30 &&
	{ test_message big && head -c 1500000 /dev/urandom | base64; } |
		replica_run 1 maildag-lda &&
	echo big >>"$REPLICAS/delivered" &&
	wait_for "grep -q cut \"$TRASH/relay.out\"" 30 &&
	wait_for "arrived 2 big" 60 &&
	wait_for "test \"\$(conn 1 r2 state)\" = up" 30 &&
	replica_git 2 count-objects -v &&
	wait_for "! ls -d \"$(replica_repo 2)\"/objects/incoming-* 2>/dev/null" &&
	cp "$TRASH/config.r1" "$(replica_config_file 1)" &&
	replica_reload 1 &&
	relay_stop &&
	wait_converged 60 &&
	replica_expect_messages
'

# worker_pid I: replica I's network worker
worker_pid() { pgrep -P "$(daemon_pid "$(replica_set)-r$1")" maildag-net | head -n 1; }
# wakeups PID: how often it has slept and woken
wakeups() { awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$1/status"; }

# private_kb PID: the memory only that process holds (kB)
private_kb() { awk '$1 == "Private_Dirty:" { print $2 }' "/proc/$1/smaps_rollup"; }

test_expect_success 'an idle session: about one wake-up of the worker per keepalive interval, serve under 1 MB' '
	replica_config 2 --extra "\"keepalive\": 2" &&
	replica_reload 2 &&
	# a new session, served by a serve that reads keepalive 2
	replica_reload 1 &&
	wait_for "test \"\$(conn 1 r2 state)\" = up" &&
	replica_deliver 1 idle1 &&
	wait_for "arrived 2 idle1" &&
	sleep 1 &&
	w=$(worker_pid 1) &&
	test -n "$w" &&
	before=$(wakeups "$w") &&
	sleep 12 &&
	after=$(wakeups "$w") &&
	say "worker $w: $((after - before)) wake-ups in 12 s, keepalive 2 s;" \
		"$(grep -E "^(VmRSS|RssAnon)" /proc/$w/status | tr -s " \t" " " | tr "\n" " ")" &&
	# 6 heartbeats, each read and answered (at most two wake-ups), and
	# a spare two: never a loop that polls
	test $((after - before)) -le 14 &&
	test $((after - before)) -ge 3 &&
	test "$(conn 1 r2 state)" = up &&
	# the other end of the session, idle after a push and a few
	# heartbeats: no CA bundle parsed (common/notls.c), the heap given back
	s=$(serve_pid 1 $S2) &&
	test -n "$s" &&
	kb=$(private_kb "$s") &&
	say "serve $s: Private_Dirty $kb kB" &&
	# the line maildag init prints has the shell give way to serve
	test "$(ps -o comm= -p "$(ps -o ppid= -p "$s" | tr -d " ")")" = sshd &&
	if [ "$kb" -ge 1024 ]; then
		# where it is, for whoever reads the log
		awk "/^[0-9a-f]/ { n = \$6 } /^Private_Dirty/ { if (\$2 > 0) print \$2, n }" \
			"/proc/$s/smaps" | sort -rn | head -n 8 >&2
		false
	fi
'

# deleted_packs PID: the pack files PID maps that are gone from disk
deleted_packs() { grep "objects/pack/.*(deleted)" "/proc/$1/maps"; }

test_expect_success 'packs removed from both repositories are let go of by the network worker and by serve' '
	wait_for "test \"\$(conn 1 r2 state)\" = up" &&
	# a pack on each side, then a push that reads it on both
	replica_deliver 1 pk1 &&
	wait_for "arrived 2 pk1" &&
	replica_ugit 1 repack -q -d &&
	replica_ugit 2 repack -q -d &&
	replica_deliver 1 pk2 &&
	wait_for "arrived 2 pk2" &&
	w=$(worker_pid 1) &&
	s=$(serve_pid 1 $S2) &&
	test -n "$w" && test -n "$s" &&
	# what maintenance does: every pack combined into one, the old removed
	replica_ugit 1 repack -q -a -d &&
	replica_ugit 2 repack -q -a -d &&
	# both let go of the old packs when idle (serve at its heartbeat,
	# every 2 s here): their disk space is free again
	say "worker $w, serve $s" &&
	{ wait_for "test -z \"\$(deleted_packs $w)\"" 30 || ! deleted_packs $w >&2; } &&
	{ wait_for "test -z \"\$(deleted_packs $s)\"" 30 || ! deleted_packs $s >&2; } &&
	test "$(worker_pid 1)" = "$w" &&
	test "$(serve_pid 1 $S2)" = "$s" &&
	replica_deliver 1 pk3 &&
	wait_for "arrived 2 pk3"
'

test_expect_success 'a peer removed from the configuration: its live session ends at the next heartbeat' '
	wait_for "test \"\$(conn 1 r2 state)\" = up" &&
	f=$(replica_config_file 2) &&
	cp "$f" "$TRASH/config.r2" &&
	"$PYTHON" -c "import json, sys
c = json.load(open(sys.argv[1]))
del c[\"peers\"][\"r1\"]
json.dump(c, open(sys.argv[1], \"w\"))" "$f" &&
	# keepalive 2 on r2 (above): serve reads the configuration again
	wait_for "test \"\$(conn 1 r2 state)\" != up" 20 &&
	wait_for "test -z \"\$(serve_pid 1 $S2)\"" 20 &&
	# and it is not let in again (serve refuses a peer not configured)
	sleep 3 &&
	test "$(conn 1 r2 state)" != up &&
	cp "$TRASH/config.r2" "$f" &&
	wait_for "test \"\$(conn 1 r2 state)\" = up" 60
'

test_expect_success 'a network worker that stops answering is replaced; mail goes on' '
	wait_for "test \"\$(conn 1 r2 state)\" = up" 60 &&
	w=$(worker_pid 1) &&
	test -n "$w" &&
	kill -STOP "$w" &&
	# meanwhile a delivery goes by the git path or waits for the new worker
	replica_deliver 1 w1 &&
	wait_for "test -n \"\$(worker_pid 1)\" && test \"\$(worker_pid 1)\" != $w" 30 &&
	grep "the network worker does not answer" "$(replica_log 1)" &&
	wait_for "arrived 2 w1" 60 &&
	wait_for "test \"\$(conn 1 r2 state)\" = up" 60 &&
	wait_converged 60 &&
	replica_expect_messages
'

test_done
