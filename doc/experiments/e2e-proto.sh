#!/bin/bash
# e2e-proto.sh: the whole path with the prototype in place of today's
# push, for doc/persistent-peers.md (issue 15).  An experiment.
#
# Replica a delivers with maildag-lda; instead of a's maildag-syncd,
# `pushproto follow` keeps one ssh session to b (forced command:
# sessiond, the prototype receive side) and pushes each new
# refs/heads/mail; b runs the real maildag-syncd -v, which merges
# refs/peers/a/mail and writes the message into b's Maildir as today.
# Per delivery: LDA exit -> ack (what a quorum of 2 would wait for) and
# LDA exit -> file in b's new/.  Same sshd set-up as latency-today.sh.
#
# usage (root): doc/experiments/e2e-proto.sh BUILD_DIR [N] [VARIANT] [RELAY_MS]
#   VARIANT: libgit2 (default), direct or git (see sessiond.c)
#   RELAY_MS: when set, the session goes through delay-relay.py holding
#   each chunk that long each way
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [N] [VARIANT] [RELAY_MS]}" && pwd)
N=${2:-60}
VARIANT=${3:-libgit2}
RELAY_MS=${4:-}
WARM=5
WORK=/var/tmp/maildag-conndesign
OUT=$WORK/out/e2e-$VARIANT${RELAY_MS:+-relay$RELAY_MS}
U1=maildagcx1 U2=maildagcx2
BIN=$WORK/bin
PATH=$BIN:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin

die() { echo "e2e-proto: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root"
PIDS=
STAMPS=
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.5
	for p in $STAMPS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$WORK/e2e" "$WORK/sshd" "$OUT"
mkdir -p "$BIN" "$OUT" "$WORK/sshd/keys" "$WORK/e2e" &&
	chmod 755 "$WORK" "$BIN" "$WORK/sshd" "$WORK/sshd/keys" "$WORK/e2e" && chmod 777 "$OUT" || die mkdir
cp "$BUILD/lda/maildag-lda" "$BUILD/syncd/maildag" "$BUILD/syncd/maildag-syncd" "$HERE/stamp.py" "$BIN/" &&
	cc -O2 -o "$BIN/pushproto" "$HERE/pushproto.c" $(pkg-config --cflags --libs libgit2 libssh2) &&
	cc -O2 -o "$BIN/sessiond" "$HERE/sessiond.c" $(pkg-config --cflags --libs libgit2) &&
	chmod 755 "$BIN"/* || die "build"
for u in $U1 $U2; do
	id "$u" >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /bin/sh "$u" || die useradd
	usermod -p '*' "$u" >/dev/null 2>&1
done
as() {
	local u=$1 h=$2
	shift 2
	setpriv --reuid="$u" --regid="$u" --init-groups env -i HOME="$h" USER="$u" \
		LOGNAME="$u" PATH="$PATH" XDG_CONFIG_HOME="$h/.config" \
		XDG_RUNTIME_DIR="$h/run" "$@"
}
# as_exec: the same, replacing the shell that runs it; for `as_exec ... &`,
# whose $! is then the program itself (a function run with & is a subshell)
as_exec() {
	local u=$1 h=$2
	shift 2
	exec setpriv --reuid="$u" --regid="$u" --init-groups env -i HOME="$h" USER="$u" \
		LOGNAME="$u" PATH="$PATH" XDG_CONFIG_HOME="$h/.config" \
		XDG_RUNTIME_DIR="$h/run" "$@"
}
cpu_of() {
	local t=0 p f
	for p in "$@"; do
		f=($(sed 's/^.*) //' "/proc/$p/stat"))
		t=$(( t + f[11] + f[12] + f[13] + f[14] ))
	done
	echo "$t"
}

ssh-keygen -q -t ed25519 -N '' -f "$WORK/sshd/host_key" || die "host key"
FP=$(ssh-keygen -l -E sha256 -f "$WORK/sshd/host_key.pub" | awk '{ print $2 }')
mkdir -p /run/sshd
PORT=$(( 20000 + RANDOM % 30000 ))
sed "s|@PORT@|$PORT|; s|@W@|$WORK|g" >"$WORK/sshd/sshd_config" <<'EOF'
ListenAddress 127.0.0.1
Port @PORT@
HostKey @W@/sshd/host_key
PidFile @W@/sshd/sshd.pid
AuthorizedKeysFile @W@/sshd/keys/%u
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
PIDS="$PIDS $SSHD_PID"
for i in $(seq 1 100); do grep -q "Server listening" "$OUT/sshd.log" 2>/dev/null && break; sleep 0.1; done
CPORT=$PORT
if [ -n "$RELAY_MS" ]; then
	CPORT=$(( PORT + 1 ))
	python3 "$HERE/delay-relay.py" $CPORT $PORT "$RELAY_MS" >/dev/null &
	PIDS="$PIDS $!"
	sleep 1
fi

HA=$WORK/e2e/a HB=$WORK/e2e/b
usermod -d "$HA" $U1 >/dev/null 2>&1; usermod -d "$HB" $U2 >/dev/null 2>&1
for x in "$U1 $HA a b" "$U2 $HB b a"; do
	set -- $x
	mkdir -p "$2" && chown "$1:" "$2" && chmod 700 "$2" &&
	as "$1" "$2" mkdir -p -m 700 "$2/.config/maildag" "$2/run" "$2/.ssh" &&
	printf '{ "node": "%s", "peers": { "%s": { "url": "ssh://x@127.0.0.1:%s/nowhere", "host_key": "%s", "push": false, "fetch": false } } }\n' \
		"$3" "$4" "$PORT" "$FP" >"$2/.config/maildag/config.json" &&
	chown "$1:" "$2/.config/maildag/config.json" && chmod 600 "$2/.config/maildag/config.json" &&
	as "$1" "$2" maildag init >/dev/null || die "replica $3"
done
RA=$HA/.local/share/maildag/mail.git RB=$HB/.local/share/maildag/mail.git
as $U1 "$HA" ssh-keygen -q -t ed25519 -N '' -f "$HA/.ssh/id_ed25519" || die key
printf 'command="%s/sessiond %s a %s",restrict %s\n' "$BIN" "$RB" "$VARIANT" \
	"$(cut -d' ' -f1,2 "$HA/.ssh/id_ed25519.pub")" >"$WORK/sshd/keys/$U2"
chmod 644 "$WORK/sshd/keys/$U2"
printf 'From: x@example.org\nSubject: first\n\nfirst\n' | as $U1 "$HA" maildag-lda || die lda
mkdir -p "$HB/Maildir/new" && chown $U2: "$HB/Maildir" "$HB/Maildir/new"

# each log through a stamper of its own; $! after exec is the stamper
exec {FI}> >(exec "$BIN/stamp.py" >"$OUT/inotify.log")
STAMPS=$!
exec {FB}> >(exec "$BIN/stamp.py" >"$OUT/b.log")
STAMPS="$STAMPS $!"
exec {FF}> >(exec "$BIN/stamp.py" >"$OUT/follow.log")
STAMPS="$STAMPS $!"
inotifywait -m -e moved_to,create --format '%w%f' "$HB/Maildir/new" 2>/dev/null >&$FI &
PIDS="$PIDS $!"
as_exec $U2 "$HB" maildag-syncd -v >&$FB 2>&1 &
PB=$!
PIDS="$PIDS $PB"
as_exec $U1 "$HA" pushproto follow "$RA" 127.0.0.1 $CPORT $U2 "$HA/.ssh/id_ed25519" 1000000 >&$FF 2>&1 &
PF=$!
PIDS="$PIDS $PF"
exec {FI}>&- {FB}>&- {FF}>&-
for i in $(seq 1 100); do grep -q ready "$OUT/follow.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$OUT/follow.log" || die "the session does not start: $(cat "$OUT/follow.log")"
sleep 2

message() {
	printf 'From sender@example.org %s\nFrom: Sender <sender@example.org>\nTo: someone@example.org\nSubject: e2e %s\nMessage-ID: <%s.%s@experiment.example.org>\nDate: %s\n\n%s\n' \
		"$(date -u '+%a %b %e %H:%M:%S %Y')" "$1" "$1" "$$" "$(date -R)" "$(head -c 3000 /dev/urandom | base64)"
}
: >"$OUT/lda.log"
for k in $(seq 1 $((WARM + N))); do
	[ "$k" = $((WARM + 1)) ] && C0=$(cpu_of "$PB" "$PF" "$SSHD_PID")
	ls "$HA/Maildir/new" >"$OUT/before"
	message "$k" | as $U1 "$HA" maildag-lda -f sender@example.org || die "delivery $k"
	t0=$EPOCHREALTIME
	f=$(ls "$HA/Maildir/new" | grep -vxF -f "$OUT/before")
	id=$(git --git-dir="$RA" -c safe.directory='*' rev-parse refs/heads/mail)
	echo "$t0 $k $f $id" >>"$OUT/lda.log"
	for i in $(seq 1 600); do [ -e "$HB/Maildir/new/$f" ] && break; sleep 0.01; done
	[ -e "$HB/Maildir/new/$f" ] || echo "delivery $k did not arrive" >&2
	sleep 0.3
done
# b's daemon and the follower now; then the follower goes, the session's
# sshd and sessiond on b's side end and are reaped: sshd's figure has them
# (and the session's set-up and the warm-up pushes: a small overcount)
C1=$(cpu_of "$PB" "$PF")
kill "$PF"; wait "$PF" 2>/dev/null; sleep 1
C2=$(( C1 + $(cpu_of "$SSHD_PID") ))
uptime >"$OUT/cpu.txt"
python3 - "$OUT" "$WARM" "$C0" "$C1" "$C2" <<'EOF' | tee "$OUT/summary.txt"
import os, re, sys
out, warm = sys.argv[1], int(sys.argv[2])
c0, c1, c2 = map(int, sys.argv[3:6])
def ev(name):
    r = []
    for l in open(os.path.join(out, name), errors="replace"):
        t, _, x = l.rstrip("\n").partition(" ")
        try: r.append((float(t), x))
        except ValueError: pass
    return r
ino, fol = ev("inotify.log"), ev("follow.log")
acks = {}
for t, x in fol:
    m = re.match(r"ack ([0-9a-f]{40}) ([0-9.]+)", x)
    if m: acks[m.group(1)] = float(m.group(2))
tot, ack = [], []
for l in open(os.path.join(out, "lda.log")):
    t0, k, f, cid = l.split()
    t0, k = float(t0), int(k)
    if k <= warm: continue
    tf = next((t for t, x in ino if x.endswith("/" + f)), None)
    if tf: tot.append((tf - t0) * 1000)
    if cid in acks: ack.append((acks[cid] - t0) * 1000)
def pct(v, p):
    v = sorted(v); i = max(1, min(len(v), int(p / 100 * len(v) + 0.999999))); return v[i - 1]
n = len(tot)
print("%s: %d deliveries" % (out, n))
print("LDA exit -> ack from b (sessiond durable):   p50 %6.1f  p90 %6.1f  p99 %6.1f ms (n=%d)" % (pct(ack, 50), pct(ack, 90), pct(ack, 99), len(ack)))
print("LDA exit -> file in b's new/ (b's syncd):    p50 %6.1f  p90 %6.1f  p99 %6.1f ms" % (pct(tot, 50), pct(tot, 90), pct(tot, 99)))
hz = os.sysconf("SC_CLK_TCK")
print("cpu per delivery, b's syncd + the follower + b's session (sshd, sessiond): %.1f ms" % ((c2 - c0) * 1000 / hz / n))
EOF
cat "$OUT/cpu.txt" | tail -1
