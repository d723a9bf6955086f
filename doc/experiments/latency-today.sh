#!/bin/bash
# latency-today.sh: where the time of one replication goes today, for
# doc/persistent-peers.md (issue 15).  Not a test, not a benchmark of
# record: an experiment whose raw output the note quotes.
#
# Two replicas a -> b, maildag-syncd -v on each with the default
# configuration but for the peers, a private sshd on 127.0.0.1 whose
# authorized_keys hold the lines `maildag init` prints (the forced
# command `maildag serve --peer NAME`), so a push goes through serve,
# git-receive-pack and the pre-receive hook as in production.  A second
# scenario does the same over file://.
#
# For each delivery (maildag-lda on a, one at a time, the next once the
# last has arrived) every event is stamped as it is read: the LDA's exit,
# each log line of both daemons and of their push children (they share
# the daemons' stderr), sshd's log (LogLevel VERBOSE on stderr: the TCP
# accept, the accepted key, the forced command's start), inotify on b's
# refs/peers/a/ (the ref written) and on b's Maildir new/ (the file).
# split.py turns the stamps into the parts of each delivery.
#
# usage (root): doc/experiments/latency-today.sh BUILD_DIR [N] [ssh|file|both]
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [N] [ssh|file|both]}" && pwd)
N=${2:-60}
WHICH=${3:-both}
WARM=5
WORK=/var/tmp/maildag-conndesign
OUT=$WORK/out
U1=maildagcx1 U2=maildagcx2
BIN=$WORK/bin
PATH=$BIN:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin

die() { echo "latency-today: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root"

PIDS=
SSHD_PID=
cleanup() {
	for p in $PIDS $SSHD_PID; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$WORK/ssh" "$WORK/file" "$WORK/sshd"
mkdir -p "$BIN" "$OUT" "$WORK/sshd/keys" && chmod 755 "$WORK" "$BIN" "$WORK/sshd" "$WORK/sshd/keys" ||
	die "cannot make $WORK"
cp "$BUILD/lda/maildag-lda" "$BUILD/syncd/maildag" "$BUILD/syncd/maildag-syncd" "$BIN/" &&
	cp "$HERE/stamp.py" "$BIN/" && chmod 755 "$BIN"/* || die "cannot copy the programs"
for u in $U1 $U2; do
	id "$u" >/dev/null 2>&1 ||
		useradd --system --user-group --no-create-home --shell /bin/sh "$u" ||
		die "useradd $u"
	usermod -p '*' "$u" >/dev/null 2>&1
done

# as U HOME CMD...: CMD as user U with home HOME
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

# --- sshd ------------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -f "$WORK/sshd/host_key" || die "host key"
FP=$(ssh-keygen -l -E sha256 -f "$WORK/sshd/host_key.pub" | awk '{ print $2 }')
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
LogLevel VERBOSE
EOF
/usr/sbin/sshd -D -e -f "$WORK/sshd/sshd_config" 2> >("$BIN/stamp.py" >"$OUT/sshd.log") &
SSHD_PID=$!
for i in $(seq 1 100); do
	grep -q "Server listening on 127.0.0.1 port $PORT" "$OUT/sshd.log" 2>/dev/null && break
	sleep 0.1
done
grep -q "Server listening" "$OUT/sshd.log" || die "sshd does not start"

# --- replicas ----------------------------------------------------------------
repo_of() { echo "$1/.local/share/maildag/mail.git"; }

# replica U HOME NODE PEERS-JSON
replica() {
	local u=$1 h=$2
	mkdir -p "$h" && chown "$u:" "$h" && chmod 700 "$h" &&
	as "$u" "$h" mkdir -p -m 700 "$h/.config/maildag" "$h/run" "$h/.ssh" &&
	{ [ -e "$h/.ssh/id_ed25519" ] || as "$u" "$h" ssh-keygen -q -t ed25519 -N '' -f "$h/.ssh/id_ed25519"; } &&
	printf '{ "node": "%s", "peers": { %s } }\n' "$3" "$4" >"$h/.config/maildag/config.json" &&
	chown "$u:" "$h/.config/maildag/config.json" && chmod 600 "$h/.config/maildag/config.json" &&
	as "$u" "$h" maildag init >/dev/null
}

message() {
	cat <<EOF
From sender@example.org $(date -u '+%a %b %e %H:%M:%S %Y')
From: Sender <sender@example.org>
To: someone@example.org
Subject: latency $1
Message-ID: <$1.$$@experiment.example.org>
Date: $(date -R)

$(head -c 3000 /dev/urandom | base64)
EOF
}

# cpu_of PID...: utime+stime+cutime+cstime in clock ticks, summed
cpu_of() {
	local t=0 p f
	for p in "$@"; do
		f=($(sed 's/^.*) //' "/proc/$p/stat"))
		t=$(( t + f[11] + f[12] + f[13] + f[14] ))
	done
	echo "$t"
}

# run_scenario NAME UA HA UB HB: a on UA/HA pushes to b on UB/HB
run_scenario() {
	local name=$1 ua=$2 ha=$3 ub=$4 hb=$5 k t0 f got pa pb cpu0 cpu1 sshd_pid
	local o=$OUT/$name
	rm -rf "$o" && mkdir -p "$o" && chmod 777 "$o"
	mkdir -p "$hb/Maildir/new" "$(repo_of "$hb")/refs/peers/a" &&
	chown -R "$ub:" "$hb/Maildir" "$(repo_of "$hb")/refs/peers"
	inotifywait -m -e moved_to,create --format '%w%f' "$hb/Maildir/new" "$(repo_of "$hb")/refs/peers/a" \
		2>/dev/null > >("$BIN/stamp.py" >"$o/inotify.log") &
	PIDS="$PIDS $!"
	# setpriv and env exec: $! is the daemon itself
	as_exec "$ua" "$ha" maildag-syncd -v > >("$BIN/stamp.py" >"$o/a.log") 2>&1 &
	pa=$!
	as_exec "$ub" "$hb" maildag-syncd -v > >("$BIN/stamp.py" >"$o/b.log") 2>&1 &
	pb=$!
	PIDS="$PIDS $pa $pb"
	sleep 2
	sshd_pid=$SSHD_PID
	: >"$o/lda.log"
	for k in $(seq 1 $((WARM + N))); do
		[ "$k" = $((WARM + 1)) ] && cpu0=$(cpu_of "$pa" "$pb" "$sshd_pid")
		ls "$ha/Maildir/new" >"$o/before"
		message "$name-$k" | as "$ua" "$ha" maildag-lda -f sender@example.org ||
			die "delivery $k failed"
		t0=$EPOCHREALTIME
		f=$(ls "$ha/Maildir/new" | grep -vxF -f "$o/before")
		echo "$t0 $k $f" >>"$o/lda.log"
		got=
		for i in $(seq 1 600); do
			[ -e "$hb/Maildir/new/$f" ] && got=1 && break
			sleep 0.01
		done
		[ -n "$got" ] || echo "delivery $k: $f did not arrive in 6 s" >&2
		# let b's push back to a (if any) and the daemons settle
		sleep 0.5
	done
	cpu1=$(cpu_of "$pa" "$pb" "$sshd_pid")
	echo "cpu_ticks $((cpu1 - cpu0)) for $N deliveries (CLK_TCK $(getconf CLK_TCK))" >"$o/cpu.txt"
	uptime >>"$o/cpu.txt"
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	PIDS=
}

if [ "$WHICH" != file ]; then
	HA=$WORK/ssh/a HB=$WORK/ssh/b
	mkdir -p "$WORK/ssh" && chmod 755 "$WORK/ssh"
	usermod -d "$HA" $U1 && usermod -d "$HB" $U2
	pj() { printf '"%s": { "url": "ssh://%s@127.0.0.1:%s%s", "host_key": "%s", "identity": "%s/.ssh/id_ed25519" }' \
		"$1" "$2" "$PORT" "$(repo_of "$3")" "$FP" "$4"; }
	for h in "$HA" "$HB"; do mkdir -p "$h" && chmod 700 "$h"; done
	chown $U1: "$HA"; chown $U2: "$HB"
	as $U1 "$HA" mkdir -p -m 700 "$HA/.ssh" && as $U1 "$HA" ssh-keygen -q -t ed25519 -N '' -f "$HA/.ssh/id_ed25519"
	as $U2 "$HB" mkdir -p -m 700 "$HB/.ssh" && as $U2 "$HB" ssh-keygen -q -t ed25519 -N '' -f "$HB/.ssh/id_ed25519"
	replica $U1 "$HA" a "$(pj b $U2 "$HB" "$HA")" || die "replica a"
	replica $U2 "$HB" b "$(pj a $U1 "$HA" "$HB")" || die "replica b"
	# the lines maildag init prints, each in the other's authorized_keys
	printf 'command="%s/maildag serve --peer a",restrict %s\n' "$BIN" "$(cut -d' ' -f1,2 "$HA/.ssh/id_ed25519.pub")" >"$WORK/sshd/keys/$U2"
	printf 'command="%s/maildag serve --peer b",restrict %s\n' "$BIN" "$(cut -d' ' -f1,2 "$HB/.ssh/id_ed25519.pub")" >"$WORK/sshd/keys/$U1"
	chmod 644 "$WORK/sshd/keys"/*
	run_scenario ssh $U1 "$HA" $U2 "$HB"
	cp "$OUT/sshd.log" "$OUT/ssh/sshd.log"
fi
if [ "$WHICH" != ssh ]; then
	HA=$WORK/file/a HB=$WORK/file/b
	mkdir -p "$WORK/file" && chmod 755 "$WORK/file"
	usermod -d "$HA" $U1
	replica $U1 "$HA" a "\"b\": { \"url\": \"file://$(repo_of "$HB")\" }" || die "replica a"
	replica $U1 "$HB" b "\"a\": { \"url\": \"file://$(repo_of "$HA")\" }" || die "replica b"
	run_scenario file $U1 "$HA" $U1 "$HB"
fi
python3 "$HERE/split.py" "$OUT" $WARM
