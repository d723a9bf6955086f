#!/bin/sh
test_description='maildag fsck checks the repository format and the Maildir'
. "$abs_top_srcdir/t/test-lib.sh"

# git on the user's repository as the user: objects stay theirs
ugit() {
	as_user env GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@localhost \
		GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@localhost \
		git -c safe.directory='*' --git-dir="$REPO" "$@"
}

# put_entry TREE PATH MODE TYPE ID: the id of TREE with PATH (nested
# paths allowed) set to MODE TYPE ID, built with git mktree
put_entry() {
	local tree=$1 path=$2 mode=$3 type=$4 id=$5 first sub
	case "$path" in
	*/*)
		first=${path%%/*}
		sub=$(mgit ls-tree "$tree" -- "$first" | awk '{print $3}')
		[ -n "$sub" ] || sub=$(printf '' | ugit mktree)
		id=$(put_entry "$sub" "${path#*/}" "$mode" "$type" "$id") || return 1
		mode=040000 type=tree path=$first
		;;
	esac
	{
		mgit ls-tree "$tree" | awk -F'\t' -v p="$path" '$2 != p'
		printf '%s %s %s\t%s\n' "$mode" "$type" "$id" "$path"
	} | ugit mktree --missing
}

# raw_tree 'MODE NAME HEX'...: a tree object of exactly these entries, in
# this order, which git mktree would refuse to write
raw_tree() {
	perl -e 'binmode STDOUT; for (@ARGV) {
		/^(\S+) (.*) ([0-9a-f]{40})$/s or die "bad entry $_";
		print "$1 $2\0", pack("H*", $3) }' "$@" |
	ugit hash-object -t tree -w --literally --stdin
}

# point REF at a new commit of TREE on top of GOOD
point() { ugit update-ref "$1" "$(ugit commit-tree -p "$GOOD" -m corrupt "$2")"; }

# fsck_fails PATTERN [ARGS]: fsck exits 1 and prints PATTERN (a grep -F)
fsck_fails() {
	local want=$1
	shift
	test_expect_code 1 as_user maildag fsck "$@" >out &&
	cat out &&
	grep -F -- "$want" out
}

test_expect_success 'deliver three messages' '
	for i in 1 2 3; do
		test_message $i | as_user maildag-lda -f alice@example.org || exit 1
	done &&
	test "$(tree_files | wc -l)" = 3
'

GOOD=$(mgit rev-parse refs/heads/mail 2>/dev/null)
ROOT=$(mgit rev-parse "refs/heads/mail^{tree}" 2>/dev/null)
BLOB=$(mgit rev-parse "refs/heads/mail:FORMAT" 2>/dev/null)
SHARD=$(tree_files | head -n 1)
SHARD=${SHARD%/*}

test_expect_success 'fsck of a clean repository exits 0' '
	as_user maildag fsck >out &&
	cat out &&
	grep -E "^refs/heads/mail [0-9a-f]{10}: ok, 3 messages in 1 folder," out &&
	! grep -v "^refs/heads/mail" out
'

test_expect_success 'fsck --all-refs checks the worktree ref too' '
	as_user maildag fsck --all-refs >out &&
	cat out &&
	grep "^refs/heads/mail .*: ok" out &&
	grep "^refs/maildag/worktree .*: ok" out
'

test_expect_success 'fsck changes no ref and writes nothing' '
	mgit for-each-ref >before &&
	find "$REPO/objects" -type f | sort >objects-before &&
	as_user maildag fsck --all-refs >/dev/null &&
	mgit for-each-ref >after &&
	find "$REPO/objects" -type f | sort >objects-after &&
	test_cmp before after && test_cmp objects-before objects-after
'

test_expect_success 'a symlink in a shard is reported' '
	t=$(put_entry "$ROOT" "$SHARD/1700000000.M1P1.evil" 120000 blob "$BLOB") &&
	point refs/heads/mail "$t" &&
	fsck_fails "refs/heads/mail: '\''$SHARD/1700000000.M1P1.evil'\'': symbolic link"
'

test_expect_success 'a gitlink is reported' '
	t=$(put_entry "$ROOT" "$SHARD/sub" 160000 commit "$GOOD") &&
	point refs/heads/mail "$t" &&
	fsck_fails "'\''$SHARD/sub'\'': gitlink (submodule)"
'

test_expect_success 'a .. entry in a folder is reported' '
	t=$(put_entry "$ROOT" ".Sent/cur/00/.." 100644 blob "$BLOB") &&
	point refs/heads/mail "$t" &&
	fsck_fails "'\''.Sent/cur/00/..'\'': forbidden name"
'

test_expect_success 'a .git folder in any spelling is reported' '
	t=$(put_entry "$ROOT" ".GiT./config" 100644 blob "$BLOB") &&
	point refs/heads/mail "$t" &&
	fsck_fails "'\''.GiT.'\'': forbidden name"
'

test_expect_success 'a leading / is reported' '
	new=$(mgit rev-parse "refs/heads/mail:new") &&
	t=$(raw_tree "100644 /etc $BLOB" "100644 FORMAT $BLOB" "40000 new $new") &&
	point refs/heads/mail "$t" &&
	fsck_fails "'\''/etc'\'': name contains '\''/'\''"
'

test_expect_success 'tmp/ and an unknown file are reported, each on a line' '
	t=$(put_entry "$ROOT" "tmp/x" 100644 blob "$BLOB") &&
	t=$(put_entry "$t" "README" 100755 blob "$BLOB") &&
	point refs/heads/mail "$t" &&
	fsck_fails "'\''tmp'\'': unexpected entry" &&
	grep -F "'\''README'\'': executable blob" out &&
	grep "^2 problems found" out
'

test_expect_success 'a message whose blob is missing is reported' '
	t=$(put_entry "$ROOT" "$SHARD/$(basename "$(tree_files | head -n 1)")" \
		100644 blob 0123456789abcdef0123456789abcdef01234567) &&
	point refs/heads/mail "$t" &&
	fsck_fails "missing blob 0123456789abcdef0123456789abcdef01234567"
'

test_expect_success 'a newer format is refused with a clear message' '
	v3=$(printf "maildag 3\n" | ugit hash-object -w --stdin) &&
	t=$(put_entry "$ROOT" FORMAT 100644 blob "$v3") &&
	point refs/heads/mail "$t" &&
	fsck_fails "'\''FORMAT'\'': format '\''maildag 3'\'' is newer than this maildag understands"
'

test_expect_success 'a peer ref is checked only with --all-refs' '
	ugit update-ref refs/heads/mail "$GOOD" &&
	t=$(put_entry "$ROOT" "cur/zz/x" 100644 blob "$BLOB") &&
	point refs/peers/mx2/mail "$t" &&
	as_user maildag fsck >out &&
	fsck_fails "refs/peers/mx2/mail: '\''cur/zz'\'': unexpected entry" --all-refs &&
	ugit update-ref -d refs/peers/mx2/mail
'

test_expect_success 'a corrupt peer ref is a problem, not a crash' '
	as_user mkdir -p "$REPO/refs/peers/bad" &&
	echo garbage | as_user tee "$REPO/refs/peers/bad/mail" >/dev/null &&
	fsck_fails "refs/peers/bad/mail: unreadable" --all-refs &&
	rm -r "$REPO/refs/peers/bad"
'

test_expect_success 'a missing worktree ref is a problem with --all-refs' '
	ugit update-ref -d refs/maildag/worktree &&
	fsck_fails "refs/maildag/worktree: missing" --all-refs &&
	ugit update-ref refs/maildag/worktree "$GOOD"
'

test_expect_success 'the Maildir and the worktree ref are compared (warnings)' '
	set -- $(find "$MAILDIR/new" -type f | sort) &&
	gone=$(basename "$1") && moved=$(basename "$2") &&
	rm "$1" &&
	mv "$2" "$MAILDIR/cur/$moved:2,S" &&
	echo "extra" >"$MAILDIR/cur/1700000009.M9P9.host" &&
	mkdir "$MAILDIR/new/adir" &&
	chown -R "$TEST_USER" "$MAILDIR" &&
	as_user maildag fsck >out &&
	cat out &&
	grep -F "warning: '\''new/$gone'\'' in refs/maildag/worktree, not on disk" out &&
	grep -F "warning: '\''cur/$moved:2,S'\'' on disk is '\''new/$moved'\'' in refs/maildag/worktree" out &&
	grep -F "warning: '\''cur/1700000009.M9P9.host'\'' on disk, not in refs/maildag/worktree" out &&
	grep -F "warning: '\''new/adir'\'': not a regular file, not tracked" out &&
	test "$(grep -c "^warning" out)" = 4
'

# wait_until COMMAND...: poll until COMMAND succeeds (a guard against a
# hang, not a timing: it gives up after a minute)
wait_until() {
	local i=0
	until "$@"; do
		i=$((i + 1))
		test $i -lt 600 || { echo "gave up waiting for: $*" >&2; return 1; }
		sleep 0.1
	done
}

# The writer lock held as another delivery or maildag-syncd holds it,
# until release_lock: a delivery started meanwhile stops with its
# journal entry published and its message in new/, waiting for it.
LOCKDIR=$TRASH/lockholder
hold_lock() {
	rm -rf "$LOCKDIR" && mkdir "$LOCKDIR" && chown "$TEST_USER" "$LOCKDIR" &&
	{ as_user flock "$REPO/maildag/lock" sh -c '
		: >"$1/held"; while ! test -e "$1/release"; do sleep 0.1; done' \
		- "$LOCKDIR" & } &&
	wait_until test -e "$LOCKDIR/held"
}
release_lock() { ! test -d "$LOCKDIR" || : >"$LOCKDIR/release"; }
test_at_end release_lock

# pending_message: the file in new/ of the delivery that waits
pending_message() {
	find "$MAILDIR/new" -type f -exec grep -l "test message pending" {} + |
		grep .
}

# journal_lines: fsck's warnings about the delivery journal
journal_lines() { grep -F "in the journal" out || :; }

test_expect_success 'a delivery waiting for the writer lock is listed by its message' '
	hold_lock &&
	{ test_message pending | as_user maildag-lda; echo $? >lda.status; } &
	lda=$! &&
	wait_until pending_message &&
	f=$(pending_message) &&
	name=$(basename "$f") && echo "$name" >pending.name &&
	ls "$REPO/maildag/pending" | grep -q "^[0-9a-f]\{40\}-" &&
	as_user maildag fsck >out &&
	cat out &&
	journal_lines >lines &&
	echo "warning: '\''new/$name'\'': delivery under way in the journal (maildag-lda is running)" >expect &&
	test_cmp expect lines &&
	! grep -F "maildag/pending" out &&
	# killed while it waits: its entry stays, with no writer
	pid=$(echo "$name" | sed "s/^[0-9]*\.M[0-9]*P\([0-9]*\)R.*/\1/") &&
	as_user kill -KILL "$pid" &&
	wait $lda &&
	test "$(cat lda.status)" = 137 &&
	as_user maildag fsck >out &&
	cat out &&
	journal_lines >lines &&
	echo "warning: '\''new/$name'\'': delivery unfinished in the journal (the next delivery finishes it)" >expect &&
	test_cmp expect lines
'

test_expect_success 'the next delivery finishes it; fsck lists nothing more' '
	release_lock &&
	wait &&
	name=$(cat pending.name) &&
	test_message after-pending | as_user maildag-lda &&
	tree_files | grep -q "/$name\$" &&
	test -z "$(ls -A "$REPO/maildag/pending")" &&
	as_user maildag fsck >out &&
	cat out &&
	test -z "$(journal_lines)"
'

test_expect_success 'a withdrawal left half-way and a malformed entry are listed' '
	name=1700000000.M1P1R0000000000000000Q1.test,S=5 &&
	hex=0123456789abcdef0123456789abcdef01234567 &&
	as_user sh -c "echo new/$name >\"$REPO/maildag/pending/$hex-${name%,*}.w\" &&
		echo junk >\"$REPO/maildag/pending/junk\"" &&
	as_user maildag fsck >out &&
	cat out &&
	journal_lines >lines &&
	{
		echo "warning: '\''new/$name'\'': withdrawn delivery in the journal (the next delivery removes it)" &&
		echo "warning: '\''$REPO/maildag/pending/junk'\'': malformed entry in the journal"
	} >expect &&
	test_cmp expect lines &&
	rm "$REPO/maildag/pending/junk" "$REPO/maildag/pending/$hex-${name%,*}.w"
'

test_expect_success 'fsck with a bad argument is a usage error' '
	test_expect_code 64 as_user maildag fsck --bogus
'

test_done
