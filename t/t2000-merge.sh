#!/bin/sh
test_description='maildag merge joins two histories with the Maildir merge'
. "$abs_top_srcdir/t/test-lib.sh"

IDX=$USER_HOME/merge-index

# git on the user's repository as the user: objects stay theirs
ugit() {
	as_user env GIT_INDEX_FILE="$IDX" \
		GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@localhost \
		GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@localhost \
		git -c safe.directory='*' --git-dir="$REPO" "$@"
}

# commit_with PARENT FILE MSG: a commit on PARENT, its tree changed by the
# git update-index --index-info lines in FILE
commit_with() {
	rm -f "$IDX" &&
	ugit read-tree "$1" &&
	ugit update-index --index-info <"$2" &&
	tree=$(ugit write-tree) &&
	ugit commit-tree -p "$1" -m "$3" "$tree"
}

Z=0000000000000000000000000000000000000000

# index-info lines: rm_line PATH, put_line PATH BLOB, mv_line COMMIT OLD NEW
rm_line() { printf '0 %s\t%s\n' "$Z" "$1"; }
put_line() { printf '100644 %s\t%s\n' "$2" "$1"; }
mv_line() { rm_line "$2" && put_line "$3" "$(mgit rev-parse "$1:$2")"; }

# path_of N [COMMIT]: the tree path of "test message N"
path_of() {
	for p in $(tree_files "${2:-refs/heads/mail}"); do
		if mgit cat-file blob "${2:-refs/heads/mail}:$p" |
			grep -q "^Subject: test message $1\$"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# shard KEY: fnv1a32(key) & 0xff in hex, as maildag computes it
shard() {
	perl -e '$h = 2166136261; for (unpack("C*", $ARGV[0])) {
		$h ^= $_; $h = ($h * 16777619) & 0xffffffff } printf "%02x\n", $h & 255' "$1"
}

# dupkey KEY BLOB: the key the merge gives the second message of KEY:
# KEY.dup, 16 hex digits of BLOB, and two characters of [0-9A-Za-z_-]
# that keep the shard of KEY
dupkey() {
	perl -e 'sub h { my $h = 2166136261; for (unpack("C*", $_[0])) {
		$h ^= $_; $h = ($h * 16777619) & 0xffffffff } $h & 255 }
		my ($k, $b) = @ARGV; my $p = $k . ".dup" . substr($b, 0, 16);
		my @a = split //, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";
		for my $x (@a) { for my $y (@a) {
			if (h("$p$x$y") == h($k)) { print "$p$x$y\n"; exit 0 } } }
		exit 1' "$1" "$2"
}

# the file name, and the shard directory, of a tree path
name_of() { basename "$1"; }
shard_dir() { basename "$(dirname "$1")"; }
count_objects() { find "$REPO/objects" -type f | wc -l; }

test_expect_success 'deliver four messages' '
	for i in 1 2 3 4; do
		test_message $i | as_user maildag-lda -f alice@example.org || exit 1
	done &&
	test "$(tree_files | wc -l)" = 4
'

BASE=$(mgit rev-parse refs/heads/mail 2>/dev/null)

test_expect_success 'side A: flag 1, expunge 2, move 3 to a new folder .Work' '
	p1=$(path_of 1) && p2=$(path_of 2) && p3=$(path_of 3) &&
	sh1=$(shard_dir "$p1") && sh3=$(shard_dir "$p3") &&
	empty=$(ugit hash-object -w --stdin </dev/null) &&
	{
		mv_line "$BASE" "$p1" "cur/$sh1/$(name_of "$p1"):2,S" &&
		rm_line "$p2" &&
		mv_line "$BASE" "$p3" ".Work/cur/$sh3/$(name_of "$p3"):2," &&
		put_line .Work/maildirfolder "$empty"
	} >a.info &&
	A=$(commit_with "$BASE" a.info "side A") &&
	echo "$A" >A &&
	test "$(mgit ls-tree -r --name-only "$A" | grep -c /)" = 4
'

test_expect_success 'side B: deliver 5 with maildag-lda, flag 1, 2 and 3' '
	test_message 5 | as_user maildag-lda -f bob@example.org &&
	D5=$(mgit rev-parse refs/heads/mail) &&
	echo "$D5" >D5 &&
	p1=$(path_of 1) && p2=$(path_of 2) && p3=$(path_of 3) &&
	{
		mv_line "$D5" "$p1" "cur/$(shard_dir "$p1")/$(name_of "$p1"):2,F" &&
		mv_line "$D5" "$p2" "cur/$(shard_dir "$p2")/$(name_of "$p2"):2,R" &&
		mv_line "$D5" "$p3" "cur/$(shard_dir "$p3")/$(name_of "$p3"):2,S"
	} >b.info &&
	B=$(commit_with "$D5" b.info "side B") &&
	echo "$B" >B
'

A=$(cat "$TRASH/A" 2>/dev/null)
B=$(cat "$TRASH/B" 2>/dev/null)

test_expect_success 'merge A B prints the merge commit and what it did' '
	as_user maildag merge "$A" "$B" >out &&
	cat out &&
	M=$(head -n 1 out) &&
	test "$(mgit cat-file -t "$M")" = commit &&
	echo "$M" >M &&
	grep -E "^merged [0-9a-f]{10} and [0-9a-f]{10} \(1 merge base\)$" out &&
	grep -E "^a [0-9a-f]{10}: 1 added, 0 expunged, 0 moved, 2 flag changes, 0 renamed$" out &&
	grep -E "^b [0-9a-f]{10}: 0 added, 1 expunged, 1 moved, 1 flag changes, 0 renamed$" out
'

M=$(cat "$TRASH/M" 2>/dev/null)

test_expect_success 'the merged tree follows the rules' '
	p1=$(path_of 1 "$M") && p3=$(path_of 3 "$M") &&
	p4=$(path_of 4 "$M") && p5=$(path_of 5 "$M") &&
	! path_of 2 "$M" &&
	case "$p1" in cur/??/*:2,FS) ;; *) false;; esac &&
	case "$p3" in .Work/cur/??/*:2,S) ;; *) false;; esac &&
	case "$p4" in new/??/*) ;; *) false;; esac &&
	case "$p5" in new/??/*) ;; *) false;; esac &&
	mgit cat-file -e "$M:.Work/maildirfolder" &&
	test "$(mgit cat-file blob "$M:FORMAT")" = "maildag 1" &&
	test "$(tree_files "$M" | wc -l)" = 4
'

test_expect_success 'merge B A gives the same commit, with canonical metadata' '
	as_user maildag merge -q "$B" "$A" >out &&
	test "$(cat out)" = "$M" &&
	mgit cat-file commit "$M" >commit &&
	cat commit &&
	printf "%s\n%s\n" "$A" "$B" | sort >expect &&
	sed -n "s/^parent //p" commit >parents &&
	test_cmp expect parents &&
	tb=$(mgit log -1 --format=%ct "$B") && ta=$(mgit log -1 --format=%ct "$A") &&
	t=$(( ta > tb ? ta : tb )) &&
	grep -Fx "author maildag <merge@maildag> $t +0000" commit &&
	grep -Fx "committer maildag <merge@maildag> $t +0000" commit &&
	test "$(mgit log -1 --format=%B "$M")" = merge
'

test_expect_success '--verbose lists every change made to a' '
	as_user maildag merge -v "$A" "$B" >out &&
	cat out &&
	test "$(head -n 1 out)" = "changes to $(echo "$A" | cut -c1-10):" &&
	grep -E "^  add +new/../.*,S=[0-9]+$" out &&
	grep -E "^  flags +cur/../.*:2,S -> cur/../.*:2,FS$" out &&
	grep -E "^  flags +\.Work/cur/../.*:2, -> \.Work/cur/../.*:2,S$" out &&
	test "$(grep -c "^  " out)" = 3
'

test_expect_success 'no ref moved, and --dry-run writes no object' '
	test "$(mgit rev-parse refs/heads/mail)" = "$(cat D5)" &&
	rm_line "$(path_of 4 "$A")" >c.info &&
	C=$(commit_with "$A" c.info "side C") &&
	n=$(count_objects) &&
	as_user maildag merge --dry-run "$C" "$B" >out &&
	cat out &&
	grep -Fx "dry run: nothing written" out &&
	test "$(count_objects)" = "$n" &&
	! mgit cat-file -e "$(head -n 1 out)" 2>/dev/null &&
	as_user maildag merge -q "$C" "$B" >real &&
	test "$(head -n 1 out)" = "$(cat real)" &&
	mgit cat-file -e "$(cat real)"
'

test_expect_success 'a fast-forward writes no merge commit' '
	as_user maildag merge "$BASE" "$A" >out &&
	cat out &&
	test "$(head -n 1 out)" = "$A" &&
	grep "^fast-forward: " out &&
	as_user maildag merge "$A" "$A" >out &&
	grep -Fx "the two are the same commit" out
'

test_expect_success '--update moves refs/heads/mail to the merge' '
	as_user maildag merge --update "$A" refs/heads/mail >out &&
	cat out &&
	test "$(head -n 1 out)" = "$(as_user maildag merge -q "$A" "$(cat D5)")" &&
	test "$(mgit rev-parse refs/heads/mail)" = "$(head -n 1 out)" &&
	grep -E "^refs/heads/mail: [0-9a-f]{10} -> [0-9a-f]{10}$" out &&
	as_user maildag merge --update "$A" refs/heads/mail >again &&
	grep -E "^refs/heads/mail: already at [0-9a-f]{10}$" again
'

test_expect_success '--update refuses when refs/heads/mail would be dropped' '
	before=$(mgit rev-parse refs/heads/mail) &&
	test_expect_code 65 as_user maildag merge --update "$A" "$BASE" 2>err &&
	cat err &&
	grep "refusing to drop it" err &&
	test "$(mgit rev-parse refs/heads/mail)" = "$before"
'

test_expect_success 'the same key with two contents: both kept, one renamed' '
	key=1763800000.M1P1R0000000000000000Q1.example &&
	x=$(shard "$key") &&
	b1=$(printf "Subject: one\n\n1\n" | ugit hash-object -w --stdin) &&
	b2=$(printf "Subject: two\n\n2\n" | ugit hash-object -w --stdin) &&
	put_line "new/$x/$key,S=16" "$b1" >k1.info &&
	put_line "new/$x/$key,S=16" "$b2" >k2.info &&
	K1=$(commit_with "$BASE" k1.info "one") &&
	K2=$(commit_with "$BASE" k2.info "two") &&
	as_user maildag merge "$K1" "$K2" >out &&
	cat out &&
	grep -Fx "1 key given to a second message" out &&
	K=$(head -n 1 out) &&
	test "$(as_user maildag merge -q "$K2" "$K1")" = "$K" &&
	if [ "$b1" \< "$b2" ]; then lo=$b1 hi=$b2; else lo=$b2 hi=$b1; fi &&
	test "$(mgit rev-parse "$K:new/$x/$key,S=16")" = "$lo" &&
	hkey=$(dupkey "$key" "$hi") &&
	test "$(shard "$hkey")" = "$x" &&
	test "$(mgit rev-parse "$K:new/$x/$hkey,S=16")" = "$hi"
'

test_expect_success 'a commit that is not a valid tree is refused' '
	printf "100644 %s\tcur/zz/bad\n" "$(mgit rev-parse "$BASE:FORMAT")" >bad.info &&
	BAD=$(commit_with "$BASE" bad.info "bad") &&
	test_expect_code 65 as_user maildag merge "$A" "$BAD" 2>err &&
	cat err &&
	grep "is not a valid maildag tree" err &&
	test_expect_code 65 as_user maildag merge "$A" no-such-ref 2>err &&
	grep "names no commit" err &&
	test_expect_code 64 as_user maildag merge "$A" 2>err
'

test_expect_success 'the repository is sound' '
	mgit fsck --strict --no-dangling &&
	as_user maildag fsck
'

test_done
