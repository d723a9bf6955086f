#!/bin/bash
# proto.sh: one small push timed each way pushproto knows, through a
# private sshd on 127.0.0.1 whose authorized_keys give replica a's keys
# the forced commands of production (maildag serve --peer a) and of the
# prototype (sessiond).  For
# doc/persistent-peers.md (issue 15); an experiment, not a test.
#
# The kept sessions' server is sessiond's "batch" store (the one the note
# chooses); growth.sh compares the stores, which must each start from a
# repository of their own: one pack per push slows every later push.
#
# usage (root): doc/experiments/proto.sh BUILD_DIR [N] [IDLE_SECONDS]
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [N] [IDLE_SECONDS]}" && pwd)
N=${2:-200}
IDLE=${3:-60}
WORK=/var/tmp/maildag-conndesign
OUT=$WORK/out/proto
U1=maildagcx1 U2=maildagcx2
BIN=$WORK/bin
PATH=$BIN:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin

die() { echo "proto: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root"
SSHD_PID=
RELAY_PID=
cleanup() { for p in $SSHD_PID $RELAY_PID; do kill "$p"; done; wait 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$WORK/proto" "$WORK/sshd" "$OUT"
mkdir -p "$BIN" "$OUT" "$WORK/sshd/keys" "$WORK/proto" && chmod 777 "$OUT" &&
	chmod 755 "$WORK" "$BIN" "$WORK/sshd" "$WORK/sshd/keys" "$WORK/proto" || die "mkdir"
cp "$BUILD/lda/maildag-lda" "$BUILD/syncd/maildag" "$BUILD/syncd/maildag-syncd" "$BIN/" || die "cp"
cc -O2 -Wall -o "$BIN/pushproto" "$HERE/pushproto.c" $(pkg-config --cflags --libs libgit2 libssh2) &&
	cc -O2 -Wall -o "$BIN/sessiond" "$HERE/sessiond.c" $(pkg-config --cflags --libs libgit2) ||
	die "cannot build the prototype"
chmod 755 "$BIN"/*
for u in $U1 $U2; do
	id "$u" >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /bin/sh "$u" || die "useradd"
	usermod -p '*' "$u" >/dev/null 2>&1
done
as() {
	local u=$1 h=$2
	shift 2
	setpriv --reuid="$u" --regid="$u" --init-groups env -i HOME="$h" USER="$u" \
		LOGNAME="$u" PATH="$PATH" XDG_CONFIG_HOME="$h/.config" \
		XDG_RUNTIME_DIR="$h/run" "$@"
}
HA=$WORK/proto/a HB=$WORK/proto/b
usermod -d "$HA" $U1 >/dev/null 2>&1; usermod -d "$HB" $U2 >/dev/null 2>&1
for x in "$U1 $HA a b" "$U2 $HB b a"; do
	set -- $x
	mkdir -p "$2" && chown "$1:" "$2" && chmod 700 "$2" &&
	as "$1" "$2" mkdir -p -m 700 "$2/.config/maildag" "$2/run" "$2/.ssh" &&
	printf '{ "node": "%s", "peers": { "%s": { "url": "file:///nonexistent" } } }\n' "$3" "$4" \
		>"$2/.config/maildag/config.json" && chown "$1:" "$2/.config/maildag/config.json" &&
	chmod 600 "$2/.config/maildag/config.json" &&
	as "$1" "$2" maildag init >/dev/null || die "replica $3"
done
RA=$HA/.local/share/maildag/mail.git RB=$HB/.local/share/maildag/mail.git
printf 'From: x@example.org\nSubject: first\n\nfirst\n' | as $U1 "$HA" maildag-lda || die "lda"
for k in serve session fan1 fan2 fan3 fan4 fan5; do
	as $U1 "$HA" ssh-keygen -q -t ed25519 -N '' -f "$HA/.ssh/$k" || die "key"
done
# five more peers for the fan-out: a repository each, b's user
for i in 1 2 3 4 5; do
	as $U2 "$HB" git init -q --bare "$HB/fan$i.git" &&
	as $U2 "$HB" git --git-dir="$HB/fan$i.git" config core.fsync committed &&
	as $U2 "$HB" git --git-dir="$HB/fan$i.git" config core.fsyncMethod fsync || die "fan repo"
done
{
	for i in 1 2 3 4 5; do
		printf 'command="SESSIOND_CPU_LOG=%s/fan.cpu %s/sessiond %s a batch",restrict %s\n' "$OUT" "$BIN" "$HB/fan$i.git" "$(cut -d' ' -f1,2 "$HA/.ssh/fan$i.pub")"
	done
	printf 'command="%s/maildag serve --peer a",restrict %s\n' "$BIN" "$(cut -d' ' -f1,2 "$HA/.ssh/serve.pub")"
	printf 'command="SESSIOND_CPU_LOG=%s/session.cpu %s/sessiond %s a batch",restrict %s\n' "$OUT" "$BIN" "$RB" "$(cut -d' ' -f1,2 "$HA/.ssh/session.pub")"
} >"$WORK/sshd/keys/$U2"
chmod 644 "$WORK/sshd/keys/$U2"

ssh-keygen -q -t ed25519 -N '' -f "$WORK/sshd/host_key" || die "host key"
mkdir -p /run/sshd
PORT=$(( 20000 + RANDOM % 30000 ))
cat >"$WORK/sshd/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $PORT
HostKey $WORK/sshd/host_key
PidFile $WORK/sshd/sshd.pid
AuthorizedKeysFile $WORK/sshd/keys/%u
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 100
LogLevel INFO
EOF
/usr/sbin/sshd -D -f "$WORK/sshd/sshd_config" -E "$OUT/sshd.log" &
SSHD_PID=$!
for i in $(seq 1 100); do
	grep -q "Server listening" "$OUT/sshd.log" 2>/dev/null && break
	sleep 0.1
done
grep -q "Server listening" "$OUT/sshd.log" || die "sshd"

# the CPU time of everything sshd ran and reaped (per connection: sshd,
# the forced command and what it ran), in ms; right for the modes whose
# connections have ended and been reaped (raw, fresh); a kept session's
# sessiond reports its own (SESSIOND_CPU_LOG)
srv_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); split($0, f, " "); print (f[14] + f[15]) * 1000 / hz }' "/proc/$SSHD_PID/stat"; }
# P MODE ARGS...: pushproto as a's user; then the peer side's CPU per push
P() {
	local c0 c1 n
	c0=$(srv_cpu)
	as $U1 "$HA" pushproto "$@"
	sleep 0.5
	c1=$(srv_cpu)
	case $1 in raw) n=${@: -1} ;; fan) n=$(( $6 * ($# - 6) )) ;; pipe) n=$3 ;; *) n=${@: -1} ;; esac
	awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN { printf "peer side (sshd and what it ran) cpu %.1f ms per push\n", (b - a) / n }'
}
# the system ssh client, host key pinned by a known_hosts file
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$WORK/sshd/host_key.pub")" >"$HA/.ssh/known_hosts"
chown $U1: "$HA/.ssh/known_hosts"
SSH="ssh -T -o BatchMode=yes -o IdentitiesOnly=yes -o UserKnownHostsFile=$HA/.ssh/known_hosts -o StrictHostKeyChecking=yes -p"
RPORT=$(( PORT + 1 ))
python3 "$HERE/delay-relay.py" $RPORT $PORT 25 >/dev/null &
RELAY_PID=$!
sleep 1
{
	echo "== proto.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), N=$N; $(uptime)"
	P raw 127.0.0.1 $PORT $U2 "$HA/.ssh/serve" "git-receive-pack '$RB'" 50
	P fresh "$RA" "ssh://$U2@127.0.0.1:$PORT$RB" "$HA/.ssh/serve" "$N"
	P mux "$RA" 127.0.0.1 $PORT $U2 "$HA/.ssh/serve" "$RB" "$N"
	P session "$RA" 127.0.0.1 $PORT $U2 "$HA/.ssh/session" "$N"
	echo "-- the same session through the system ssh client (a coprocess on pipes):"
	P pipe "$RA" "$N" $SSH $PORT -i "$HA/.ssh/session" $U2@127.0.0.1 maildag-session
	echo "-- the system ssh client, a new connection each time (git-upload-pack through serve, stdin at EOF):"
	as $U1 "$HA" python3 -c '
import subprocess, sys, time
cmd = sys.argv[1:]
v = []
for i in range(30):
    t = time.monotonic()
    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    v.append((time.monotonic() - t) * 1000)
v.sort()
print("ssh one-shot connect+exec+advert+exit: p50 %.1f p90 %.1f ms" % (v[14], v[26]))
' $SSH $PORT -i "$HA/.ssh/serve" $U2@127.0.0.1 "git-upload-pack '$RB'"
	echo "-- fan-out: 1 peer, then 5 peers, kept sessions (sessiond batch):"
	P fan "$RA" 127.0.0.1 $PORT $U2 "$N" "$HA/.ssh/fan1"
	P fan "$RA" 127.0.0.1 $PORT $U2 "$N" "$HA/.ssh/fan1" "$HA/.ssh/fan2" "$HA/.ssh/fan3" "$HA/.ssh/fan4" "$HA/.ssh/fan5"
	echo "-- through a relay that holds each chunk 25 ms each way (50 ms round trip):"
	P raw 127.0.0.1 $RPORT $U2 "$HA/.ssh/serve" "git-receive-pack '$RB'" 10
	P fresh "$RA" "ssh://$U2@127.0.0.1:$RPORT$RB" "$HA/.ssh/serve" 20
	P session "$RA" 127.0.0.1 $RPORT $U2 "$HA/.ssh/session" "$N"
	# file:// and a pipe: both sides as b's user on a copy of a's repository
	rm -rf "$HB/src.git" && cp -a "$RA" "$HB/src.git" && chown -R $U2: "$HB/src.git"
	as $U2 "$HB" pushproto fresh "$HB/src.git" "file://$RB" none "$N"
	for v in batch; do
		echo "-- pipe to sessiond $v:"
		as $U2 "$HB" env SESSIOND_TIMES=1 pushproto pipe "$HB/src.git" "$N" sessiond "$RB" a $v 2>"$OUT/sessiond-$v.times"
	done
	for v in batch; do
		awk -v v=$v '/^sessiond: read/ { r += $3; c += $5; m += $7; f += $9; n++ }
			END { printf "sessiond %s, mean of %d: read+index %.2f check %.2f move %.2f ref %.2f ms\n", v, n, r/n, c/n, m/n, f/n }' \
			"$OUT/sessiond-$v.times"
		grep 'cpu' "$OUT/sessiond-$v.times"
	done
	echo "-- sessiond's own cpu per push (each session in the order run):"
	cat "$OUT/session.cpu" "$OUT/fan.cpu" 2>/dev/null
	echo "$(uptime)"
} 2>&1 | tee "$OUT/proto.txt"

if [ "$IDLE" -gt 0 ]; then
	{
		P idle "$RA" 127.0.0.1 $PORT $U2 "$HA/.ssh/session" "$IDLE" 15 &
		sleep 3
		# the peer's side of the idle session: sshd's two processes and sessiond
		for p in $(ps -o pid= --ppid "$SSHD_PID"; pgrep -u $U2 sshd; pgrep -x sessiond); do
			printf 'peer side: pid %s %-28s %s\n' "$p" "$(tr '\0' ' ' </proc/$p/cmdline | cut -c1-28)" \
				"$(grep -E '^(VmRSS|RssAnon)' /proc/$p/status | tr -s ' \t\n' ' ')"
		done
		wait
	} 2>&1 | tee -a "$OUT/proto.txt"
fi
