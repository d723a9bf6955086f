#!/bin/bash
# growth.sh: does the receive side's cost per push grow as pushes
# accumulate?  One pack per push leaves one more pack each time, and
# every object lookup then visits every pack; git's receive-pack avoids
# it for small pushes by unpacking them loose (transfer.unpackLimit,
# 100 objects).  For doc/persistent-peers.md; an experiment.
#
# For each way sessiond stores a push, a fresh repository takes N pushes
# over a pipe (pushproto pipe); prints the mean store time per push over
# the first, middle and last 50, the packs left, and sessiond's CPU.
#
# usage (root or any user): doc/experiments/growth.sh BUILD_DIR [N]
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [N]}" && pwd)
N=${2:-400}
# as root, the directory is made here and the script runs again as a
# user of ours (maildag refuses root), finding it in GROWTH_DIR
W=${GROWTH_DIR:-$(mktemp -d /var/tmp/maildag-growth.XXXXXX)}
trap 'rm -rf "$W"' EXIT
cc -O2 -o "$W/pushproto" "$HERE/pushproto.c" $(pkg-config --cflags --libs libgit2 libssh2) &&
	cc -O2 -o "$W/sessiond" "$HERE/sessiond.c" $(pkg-config --cflags --libs libgit2) || exit 2
export HOME=$W XDG_CONFIG_HOME=$W/.config XDG_RUNTIME_DIR=$W/run
mkdir -p "$W/.config/maildag" "$W/run" && chmod 700 "$W/run"
echo '{ "node": "b", "peers": { "a": { "url": "file:///nonexistent" } } }' >"$W/.config/maildag/config.json"
chmod 600 "$W/.config/maildag/config.json"
if [ "$(id -u)" = 0 ]; then
	id maildagcx2 >/dev/null 2>&1 || useradd --system --user-group --no-create-home maildagcx2
	chown -R maildagcx2: "$W"
	exec setpriv --reuid=maildagcx2 --regid=maildagcx2 --init-groups \
		env GROWTH_DIR="$W" "$0" "$@"
fi
"$BUILD/syncd/maildag" init >/dev/null || exit 2
printf 'From: x@example.org\nSubject: first\n\nfirst\n' | "$BUILD/lda/maildag-lda" || exit 2
REPO=$W/.local/share/maildag/mail.git
echo "== growth.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $N pushes each; $(uptime)"
for v in libgit2 loose batch git; do
	rm -rf "$W/src.git" "$W/dst.git"
	cp -a "$REPO" "$W/src.git" && cp -a "$REPO" "$W/dst.git"
	SESSIOND_TIMES=1 "$W/pushproto" pipe "$W/src.git" "$N" "$W/sessiond" "$W/dst.git" a $v \
		>"$W/$v.client" 2>"$W/$v.times"
	awk -v v=$v -v n="$N" '/^sessiond: read/ { i++; t = $3 + $5 + $7 + $9
			if (i <= 51) a += t; else if (i > n/2 - 25 && i <= n/2 + 25) b += t; else if (i > n - 49) c += t }
		END { printf "%-8s store per push, mean: pushes 1-50 %6.1f ms, %d-%d %6.1f ms, %d-%d %6.1f ms", v, a/51, n/2-24, n/2+25, b/50, n-48, n, c/50 }' "$W/$v.times"
	printf '; packs left %d, loose objects %d; %s\n' "$(find "$W/dst.git/objects/pack" -name "*.pack" | wc -l)" \
		"$(find "$W/dst.git/objects" -path '*/objects/??/*' -type f | wc -l)" \
		"$(grep -o 'cpu [0-9.]* ms per push' "$W/$v.times")"
done
uptime
