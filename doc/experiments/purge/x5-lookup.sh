#!/bin/bash
# x5-lookup: the same 100,000-message repository spread over 1, 10, 50
# and 200 packs (objects dealt to packs at random, as packs made at
# different times hold unrelated ids), then 200 packs with a
# multi-pack-index; x5-lookup reads 10,000 random objects on each.
#
#   x5-lookup.sh PACKED.git WORKDIR X5-LOOKUP [N]
#
# Each figure is the second of two runs (the page cache warm, as on a
# server that keeps its repository in memory), and the median of 3.
set -u
SRC=$1 W=$2 X5=$3 N=${4:-10000}
mkdir -p "$W"
git --git-dir="$SRC" cat-file --batch-all-objects --batch-check='%(objectname)' >"$W/all"
shuf -n "$N" --random-source=<(yes) "$W/all" >"$W/ids"
uptime
split_into() { # packs
	local P=$1 R="$W/p$1.git"
	rm -rf "$R"; git init -q --bare "$R"
	cp -a "$SRC/refs" "$SRC/packed-refs" "$R/" 2>/dev/null
	awk -v P="$P" 'BEGIN { srand(7) } { print > (FILENAME ".g" int(rand() * P)) }' "$W/all"
	for g in "$W"/all.g*; do
		GIT_ALTERNATE_OBJECT_DIRECTORIES="$SRC/objects" \
			git --git-dir="$R" pack-objects -q --window=0 "$R/objects/pack/pack" <"$g" >/dev/null
		rm -f "$g"
	done
}
median() { sort -n | sed -n 2p; }
measure() { # repo label
	local r=$1 label=$2 out h rd a
	"$X5" "$r" "$W/ids" "$N" >/dev/null
	out=$(for i in 1 2 3; do "$X5" "$r" "$W/ids" "$N"; done)
	h=$(echo "$out" | sed 's/.*header_us=\([^ ]*\).*/\1/' | median)
	rd=$(echo "$out" | sed 's/.*read_us=\([^ ]*\).*/\1/' | median)
	a=$(echo "$out" | sed 's/.*absent_us=\([^ ]*\).*/\1/' | median)
	o=$(echo "$out" | sed 's/.*open_ms=\([^ ]*\).*/\1/' | median)
	printf '%-22s open %6s ms  header %7s us  read %7s us  absent %7s us\n' "$label" "$o" "$h" "$rd" "$a"
}
for P in ${PACKS:-1 10 50 200}; do
	split_into "$P"
	measure "$W/p$P.git" "$P packs"
done
[ -d "$W/p200.git" ] && git --git-dir="$W/p200.git" multi-pack-index write &&
measure "$W/p200.git" "200 packs + midx"
uptime
