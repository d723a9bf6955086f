#!/bin/bash
# x6-year: what a year of history costs once packed, in maildag's layout
# (x6-year.py), and how much of it design (b) keeps (every commit and
# tree, the blobs of live and recently expunged mail) against design (a)
# (history within the retention window only).
#
#   x6-year.sh WORKDIR GEN-MAILDIR X4-PACKBUILDER [DAYS]
set -u
W=$1 GEN=$2 PB=$3 DAYS=${4:-365}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$W" && cd "$W" || exit 2
N=$((DAYS * 100))
[ -d msgs ] || "$GEN" -s 11 msgs msgs "$N" || exit 2
rm -rf year.git && git init -q --bare year.git
s=$(date +%s)
python3 "$HERE/x6-year.py" msgs "$DAYS" |
	git --git-dir=year.git fast-import --quiet --export-marks=marks || exit 1
echo "fast-import: $(( $(date +%s) - s ))s"
G="git --git-dir=year.git"
$G update-ref refs/heads/mail refs/heads/mx1
s=$(date +%s); $G -c pack.threads=2 repack -adfq --window=10 --depth=50; echo "git repack -adf: $(( $(date +%s) - s ))s"
$G cat-file --batch-all-objects --batch-check='%(objectname) %(objecttype) %(objectsize) %(objectsize:disk)' >objects
# marks: ":<mark> <sha>"; meta: "<mark> <day> <expday> <key>"
awk -v days="$DAYS" -v ret=30 '
	FILENAME == "marks" { sub(":", "", $1); sha[$1] = $2; next }
	FILENAME == "x6-year.meta" {
		c = ($3 < 0) ? "live" : ($3 >= days - ret) ? "window" : "purgeable"
		class[sha[$1]] = c; next }
	{
		t = $2
		if (t == "blob" && ($1 in class)) t = "blob-" class[$1]
		n[t]++; disk[t] += $4; raw[t] += $3
	}
	END {
		for (t in n) printf "%-16s %8d objects %12d bytes raw %12d bytes packed\n", t, n[t], raw[t], disk[t]
		live = raw["blob-live"]
		b = disk["commit"] + disk["tree"] + disk["blob-live"] + disk["blob-window"] + disk["blob"]
		a = (disk["commit"] + disk["tree"]) * ret / days + disk["blob-live"] + disk["blob-window"] + disk["blob"]
		printf "live Maildir bytes (message sizes): %d\n", live
		printf "retention window expunged (raw): %d\n", raw["blob-window"]
		printf "history (commits + trees), packed: %d = %.1f%% of the live Maildir\n", disk["commit"] + disk["tree"], 100 * (disk["commit"] + disk["tree"]) / live
		printf "design (b) after purge: %d = %.2fx (live + window raw: %.2fx)\n", b, b / live, (live + raw["blob-window"]) / live
		printf "design (a) after purge (history of the window only, estimated): %d = %.2fx\n", a, a / live
		printf "without purge: %d = %.2fx\n", b + disk["blob-purgeable"], (b + disk["blob-purgeable"]) / live
	}' marks x6-year.meta objects | sort
echo "commits: $($G rev-list --all | wc -l)"
# the same repository packed by libgit2's packbuilder (walk: with names)
rm -rf lg.git && cp -a year.git lg.git && rm -f lg.git/objects/pack/*
# objects back in: unpack from year.git's pack would be slow; instead
# pack from year.git's odb with an alternate
echo "$W/year.git/objects" >lg.git/objects/info/alternates
s=$(date +%s); "$PB" lg.git walk 2; echo "libgit2 walk pack: $(( $(date +%s) - s ))s"
