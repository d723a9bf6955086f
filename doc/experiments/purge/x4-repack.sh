#!/bin/bash
# x4-repack: one repository of 100,000 generated messages (what `maildag
# init` leaves: loose objects) put into one pack, by git and by
# libgit2's packbuilder; then the same again from the packed state (the
# consolidation of packs that already exist); then a purge of 1% of the
# blobs (rewrite the pack without them).
#
#   [SKIP_LOOSE=1] x4-repack.sh BASE.git WORKDIR X4-PACKBUILDER
#
# Each run works on a fresh copy of BASE.git; times are wall seconds on
# whatever else the machine runs (`uptime` is printed).
set -u
BASE=$1 W=$2 PB=$3
mkdir -p "$W"
t() { local s=$(date +%s.%N); "$@" >"$W/out" 2>&1; local rc=$?; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; [ $rc = 0 ] || { echo " FAILED:"; cat "$W/out"; }; }
packsize() { du -cb "$1"/objects/pack/*.pack | tail -1 | cut -f1; }
fresh() { rm -rf "$W/r.git"; cp -a "$BASE" "$W/r.git"; sync; }
G="git -c gc.auto=0 --git-dir=$W/r.git"
uptime

if [ -z "${SKIP_LOOSE:-}" ]; then
echo "== from loose objects (maildag init's state)"
for thr in 1 2; do
	fresh; s=$(t $G -c pack.threads=$thr repack -adq)
	echo "git repack -ad, threads=$thr: ${s}s, pack $(packsize "$W/r.git") bytes"
done
fresh; s=$(t $G -c pack.threads=2 repack -adq --window=0)
echo "git repack -ad --window=0: ${s}s, pack $(packsize "$W/r.git") bytes"
for mode in foreach walk; do
	for thr in 1 2; do
		fresh; s=$(t "$PB" "$W/r.git" $mode $thr); echo "libgit2 $mode threads=$thr: ${s}s  $(cat "$W/out")"
	done
done

fi

echo "== from one pack (the consolidation of existing packs)"
fresh; $G repack -adq
rm -rf "$W/packed.git"; cp -a "$W/r.git" "$W/packed.git"
rm -rf "$W/r.git"; cp -a "$W/packed.git" "$W/r.git"; s=$(t $G repack -adq); echo "git repack -ad: ${s}s, pack $(packsize "$W/r.git") bytes"
rm -rf "$W/r.git"; cp -a "$W/packed.git" "$W/r.git"; s=$(t $G repack -adfq); echo "git repack -adf (no reuse): ${s}s"
for mode in foreach; do
	rm -rf "$W/r.git"; cp -a "$W/packed.git" "$W/r.git"
	s=$(t "$PB" "$W/r.git" $mode 2); echo "libgit2 $mode threads=2: ${s}s  $(cat "$W/out")"
done

echo "== purge 1% of the blobs: rewrite the pack without them"
$G --git-dir="$W/packed.git" cat-file --batch-all-objects --batch-check='%(objectname) %(objecttype)' |
	awk '$2 == "blob" && NR % 100 == 0 { print $1 }' >"$W/skip"
echo "$(wc -l <"$W/skip") blobs to purge"
rm -rf "$W/r.git"; cp -a "$W/packed.git" "$W/r.git"
old=$(ls "$W/r.git"/objects/pack/*.pack)
s=$(t "$PB" "$W/r.git" foreach 2 "$W/skip"); echo "libgit2 foreach threads=2 without them: ${s}s  $(cat "$W/out")"
rm -f "$old" "${old%.pack}.idx"
left=$(while read -r id; do git --git-dir="$W/r.git" cat-file -e "$id" 2>/dev/null && echo "$id"; done <"$W/skip" | wc -l)
echo "purged blobs still readable after the old pack is removed: $left"
rm -rf "$W/r.git"; cp -a "$W/packed.git" "$W/r.git"
s=$(t sh -c "git --git-dir='$W/r.git' cat-file --batch-all-objects --batch-check='%(objectname)' | grep -vxFf '$W/skip' | git --git-dir='$W/r.git' pack-objects -q '$W/r.git/objects/pack/pack'")
echo "git pack-objects (reuse) without them: ${s}s"
uptime
