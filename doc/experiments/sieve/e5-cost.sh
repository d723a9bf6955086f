#!/bin/bash
# E5: with F folders (default: 10 and 1000, each holding 50 messages in
# cur/, INBOX 1000), the latency of one delivery by dovecot-lda alone,
# by maildag-lda alone, and by the prototype (maildag-lda's design:
# dovecot-lda as a child, then find and commit); and, from the
# prototype, what each way of finding the written files costs.
# Half the messages carry X-Spam-Flag: YES and are filed into a folder
# by the Sieve script, the rest stay in INBOX.
#
#   e5-cost.sh [-n PER-ROUND] [-r ROUNDS] [FOLDERS...]
set -u
. "$(dirname "$0")/env.sh"
top=$(cd "$(dirname "$0")/../../.." && pwd)
N=15 ROUNDS=4
while getopts n:r: o; do
	case $o in n) N=$OPTARG;; r) ROUNDS=$OPTARG;; *) exit 64;; esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- 10 1000
W=/var/tmp/proto-sieve/e5
mkdir -p "$W/bin" "$W/msgs"
cc -O2 -o "$W/bin/run-deliveries" "$top/bench/run-deliveries.c" &&
cc -O2 -o "$W/bin/gen-maildir" "$top/bench/gen-maildir.c" -lm || exit 2
rm -f "$W/msgs"/*
"$W/bin/gen-maildir" -s 7 msgs "$W/msgs" 40 >/dev/null || exit 2
i=0
for m in "$W/msgs"/*.eml; do
	i=$((i + 1))
	[ $((i % 2)) = 0 ] && { printf 'X-Spam-Flag: YES\n'; cat "$m"; } >"$m.x" && mv "$m.x" "$m"
done
chmod -R a+rX "$W"
ls "$W/msgs"/*.eml >"$W/list"

# home F TOOL: a fresh home with the Maildir of F folders
home() {
	XHOME=$W/$1-$2 XD=$W/$1-$2/dovecot
	x_setup || exit 1
	cat >"$XHOME/sieve/main.sieve" <<'S'
require ["fileinto"];
if header :is "X-Spam-Flag" "YES" { fileinto "f0005"; stop; }
S
	"$W/bin/gen-maildir" -s 1 maildir "$XHOME/Maildir" 1000 >/dev/null
	mkdir -p "$XHOME/Maildir/new" "$XHOME/Maildir/tmp"
	for f in $(seq -f '%04g' 1 "$1"); do
		d=$XHOME/Maildir/.f$f
		"$W/bin/gen-maildir" -s "$((10#$f + 1))" maildir "$d" 50 >/dev/null
		mkdir -p "$d/new" "$d/tmp" && : >"$d/maildirfolder"
	done
	chown -R "$XUSER:" "$XHOME"
	[ "$2" = dovecot-lda ] || as_user "$MAILDAG" init >/dev/null || exit 1
}

run() {	# run F TOOL: N deliveries, raw figures appended
	local h=$W/$1-$2 cmd
	case $2 in
	dovecot-lda) cmd=("$LDA" -c "$h/dovecot/dovecot.conf" -a xuser@example.org);;
	maildag-lda) cmd=("$BUILD/lda/maildag-lda" -a xuser@example.org);;
	proto) cmd=("$PROTO" -- "$LDA" -c "$h/dovecot/dovecot.conf" -a xuser@example.org);;
	esac
	env -i HOME="$h" USER="$XUSER" LOGNAME="$XUSER" PATH=/usr/bin:/bin TZ=UTC \
		"$W/bin/run-deliveries" -u "$XUSER" -m "$W/list" -n "$N" -w 1 \
		-f sender@example.net -o "$W/raw.$1.$2.$r" -e "$W/err.$1.$2" \
		-- "${cmd[@]}" >/dev/null
}

pct() {	# pct P FILES...: the P-th percentile of column 2 (us), in ms
	local p=$1; shift
	cat "$@" | awk '$3 == 0 {print $2}' | sort -n |
		awk -v p="$p" '{v[NR] = $1} END {i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; printf "%.1f", v[i] / 1000}'
}
med() {	# med KEY FILE: the median of KEY=value over proto's lines, in ms
	grep -o "$1=[0-9.]*" "$2" | cut -d= -f2 | sort -n |
		awk '{v[NR] = $1} END {printf "%.2f", v[int((NR + 1) / 2)] / 1000}'
}

tools=(dovecot-lda maildag-lda proto)
for F in "$@"; do
	for t in "${tools[@]}"; do home "$F" "$t"; rm -f "$W"/raw."$F"."$t".* "$W/err.$F.$t"; done
	for r in $(seq 1 "$ROUNDS"); do
		# rotate the order, so a busy moment does not fall on one tool
		for k in 0 1 2; do run "$F" "${tools[$(((k + r) % 3))]}"; done
	done
	echo "== $F folders ($((N * ROUNDS)) deliveries per tool, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
	for t in "${tools[@]}"; do
		fails=$(cat "$W"/raw."$F"."$t".* | awk '$3 != 0' | wc -l)
		printf '%-12s p50 %6s ms  p90 %6s ms  failed %s\n' "$t" \
			"$(pct 50 "$W"/raw."$F"."$t".*)" "$(pct 90 "$W"/raw."$F"."$t".*)" "$fails"
	done
	e=$W/err.$F.proto
	echo "proto medians (ms): child $(med child "$e")  find: scan $(med scan "$e") mtime $(med mtime "$e") uidlist $(med uidlist "$e")  commit $(med commit "$e")  entry $(med entry "$e")"
	echo "proto scan reads $(grep -o 'scan=[0-9]* ([0-9]* dirs [0-9]* entries' "$e" | tail -n1 | sed 's/.*(//')"
	grep -h 'MISMATCH\|proto: [a-z]' "$e" | grep -v status= | sort | uniq -c
	# every delivery committed once, nothing else
	XHOME=$W/$F-proto
	n_disk=$(disk_msgs | wc -l); n_tree=$(tree_msgs | wc -l)
	echo "proto home: $n_disk messages on disk, $n_tree in the tree"
done
