#!/bin/bash
# x1-git-holes: what git 2.39 does with a repository whose trees name
# blobs that were deleted on purpose (design (b) of doc/purge.md).
#
# History, built identically in every repository (fixed dates):
#   c1  INBOX holds M (to be purged) and N
#   c2  M expunged, O delivered                  (P's line)
#   r1  X delivered, M still there               (R's line, R offline)
# P and Q hold c1..c2 and have purged M; R holds c1, r1 and still has M.
# Each scenario prints what git said and its exit status.
#
# Usage: x1-git-holes.sh [WORKDIR]   (default: a fresh mktemp -d)
set -u
W=${1:-$(mktemp -d /tmp/x1-git-holes.XXXXXX)}
cd "$W" || exit 2
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=$W
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t

g() { git --git-dir="$1" "${@:2}"; }
blob() { printf '%s\n' "$2" | g "$1" hash-object -w --stdin; }
mktree() { printf "$2" | g "$1" mktree; }
commit() { # repo date tree msg parents...
	local r=$1 d=$2 t=$3 m=$4; shift 4
	local p=(); for x in "$@"; do p+=(-p "$x"); done
	GIT_AUTHOR_DATE="$d +0000" GIT_COMMITTER_DATE="$d +0000" \
		g "$r" commit-tree "$t" "${p[@]}" -m "$m"
}
# build repo WHICH: P (c1 c2), R (c1 r1), Q = P
build() {
	g "$1" init -q --bare
	local M N O X t1 t2 tr c1 c2 r1
	M=$(blob "$1" "Subject: secret M $RANDOM_FIXED")
	N=$(blob "$1" "Subject: N")
	t1=$(mktree "$1" "100644 blob $M\tm\n100644 blob $N\tn\n")
	c1=$(commit "$1" 1700000000 "$t1" c1)
	if [ "$2" = R ]; then
		X=$(blob "$1" "Subject: X from R")
		tr=$(mktree "$1" "100644 blob $M\tm\n100644 blob $N\tn\n100644 blob $X\tx\n")
		r1=$(commit "$1" 1700100000 "$tr" r1 "$c1")
		g "$1" update-ref refs/heads/mail "$r1"
	else
		O=$(blob "$1" "Subject: O")
		t2=$(mktree "$1" "100644 blob $N\tn\n100644 blob $O\to\n")
		c2=$(commit "$1" 1700050000 "$t2" c2 "$c1")
		g "$1" update-ref refs/heads/mail "$c2"
		# P: what R pushed before it went offline (serve advertises it);
		# Q never talked to R
		[ "$2" = P ] && g "$1" update-ref refs/peers/R/mail "$c1"
	fi
	echo "$M"
}
purge() { # repo blob: the loose object goes (nothing is packed here)
	rm -f "$1/objects/${2:0:2}/${2:2}"
}
run() { # title, command...
	local out rc
	out=$("${@:2}" 2>&1 | tr -d '\0'; exit "${PIPESTATUS[0]}"); rc=$?
	printf '%s\n  exit %d: %s\n' "$1" "$rc" "$(printf '%s' "$out" | grep -v '^ *$' | tr '\n' '|' | cut -c1-300)"
}

RANDOM_FIXED=1
rm -rf P Q R
M=$(build P P); build Q Q >/dev/null; build R R >/dev/null
purge P "$M"; purge Q "$M"
echo "M = $M"; echo "$M" >M
RECV="git -c receive.fsckObjects=true -c receive.unpackLimit=1 receive-pack"
RECV_SMALL="git -c receive.fsckObjects=true receive-pack"
RECV_NOFSCK="git -c receive.fsckObjects=false -c receive.unpackLimit=1 receive-pack"
RECV_NOFSCK_SMALL="git -c receive.fsckObjects=false receive-pack"

# R2: R's line, but R also got Y while apart, expunged it and purged it
# (its own retention ran out): r2's parent names Y, nobody else ever had it
cp -a R R2
Y=$(blob R2 "Subject: Y, R's own, purged on R")
t=$(g R2 rev-parse refs/heads/mail^{tree})
ty=$(printf "%s\n100644 blob $Y\ty\n" "$(g R2 ls-tree "$t")" | g R2 mktree)
ry=$(commit R2 1700150000 "$ty" "deliver Y" "$(g R2 rev-parse refs/heads/mail)")
r2=$(commit R2 1700160000 "$t" "expunge Y" "$ry")
g R2 update-ref refs/heads/mail "$r2"
purge R2 "$Y"; echo "$Y" >Y

echo "== S0: git fsck of P (M purged)"
run "git fsck" g P fsck --no-dangling
run "git fsck --connectivity-only" g P fsck --connectivity-only --no-dangling
run "git repack -ad" g P repack -adq
run "git gc --prune=now" g P gc --prune=now -q

echo "== S1: R (has M) pushes r1 to P (M purged); trees of r1 name M"
for recv in "$RECV" "$RECV_SMALL" "$RECV_NOFSCK" "$RECV_NOFSCK_SMALL"; do
	rm -rf P1 && cp -a P P1
	run "receive-pack: ${recv#git }" g R push -q --receive-pack="$recv" "$W/P1" refs/heads/mail:refs/peers/R/mail
	run "  M back in P after the push?" g P1 cat-file -t "$M"
done

echo "== S2: P merged r1 (so holds r1's trees naming M, but not M); P pushes the merge to Q (M purged)"
rm -rf P2 && cp -a P P2
g R push -q --receive-pack="$RECV_NOFSCK" "$W/P2" refs/heads/mail:refs/peers/R/mail
c2=$(g P2 rev-parse refs/heads/mail); r1=$(g P2 rev-parse refs/peers/R/mail)
X=$(g R rev-parse "refs/heads/mail:x"); N=$(g P2 rev-parse "$c2:n"); O=$(g P2 rev-parse "$c2:o")
tm=$(mktree P2 "100644 blob $N\tn\n100644 blob $O\to\n100644 blob $X\tx\n")
m=$(commit P2 1700100000 "$tm" merge "$c2" "$r1")
g P2 update-ref refs/heads/mail "$m"
for recv in "$RECV" "$RECV_NOFSCK" "$RECV_NOFSCK_SMALL"; do
	rm -rf Q1 && cp -a Q Q1
	run "P2 -> Q, receive-pack: ${recv#git }" g P2 push -q --receive-pack="$recv" "$W/Q1" refs/heads/mail:refs/peers/P/mail
done

echo "== S3: a new replica N clones P2 (whose history names M, which it lacks)"
UP="git -c uploadpack.allowFilter=false upload-pack --strict"
rm -rf N1; g N1 init -q --bare
run "fetch, upload-pack as serve runs it" g N1 fetch -q --upload-pack="$UP" "$W/P2" refs/heads/mail:refs/peers/P/mail
cat > "$W/hook" <<'H'
#!/bin/sh
# uploadpack.packObjectsHook: run pack-objects, letting it skip missing objects
shift   # "git" "pack-objects" <args>
exec git "$@" --missing=allow-any
H
chmod +x "$W/hook"
UPH="git -c uploadpack.packObjectsHook=$W/hook upload-pack --strict"
rm -rf N2; g N2 init -q --bare
run "fetch, upload-pack with packObjectsHook (--missing=allow-any)" g N2 fetch -q --upload-pack="$UPH" "$W/P2" refs/heads/mail:refs/peers/P/mail
rm -rf N3; g N3 init -q --bare; g N3 config fetch.fsckObjects false
run "same, fetched with --no-... (receiver connectivity check still on)" g N3 -c transfer.fsckObjects=false fetch -q --upload-pack="$UPH" "$W/P2" refs/heads/mail:refs/peers/P/mail
echo "== S4: Q (M purged) fetches P2's merge (upload-pack sender is P2, lacking M)"
rm -rf Q2 && cp -a Q Q2
run "Q fetches P2" g Q2 fetch -q --upload-pack="$UP" "$W/P2" refs/heads/mail:refs/peers/P/mail
run "  M in P2?" g P2 cat-file -t "$M"
echo "workdir: $W"
