#!/bin/sh
test_description='experiment for doc/purge.md (not in the suite): a blob deleted by hand on one replica, and what maildag as it is does over ssh through maildag serve when a replica whose history names it comes back, and when a new replica fetches'
# Run from a build directory, as root:
#   abs_top_srcdir=$PWD/.. abs_top_builddir=$PWD sh ../doc/experiments/purge/x3-maildag-ssh.sh
# Every step prints what maildag said; the tests assert today's
# behaviour (they document it, they are not what maildag should do).
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
test_have_prereq ROOT || test_skip_all "needs root"
. "$abs_top_srcdir/t/lib-sshd.sh"
sshd_start || test_skip_all "the test sshd does not start"
. "$abs_top_srcdir/t/lib-replica.sh"

# edit I MSG CHANGE...: a commit on I's refs/heads/mail made with git
# fast-import as I's user, each CHANGE a fast-import file command
# ("D <path>", "M 100644 <blob> <path>"); refs/heads/mail moves to it
edit() {
	local i=$1 msg=$2 tip
	shift 2
	tip=$(replica_git "$i" rev-parse refs/heads/mail) &&
	{
		printf 'commit refs/heads/x3\ncommitter maildag <x3@maildag> %s +0000\n' "$(date +%s)"
		printf 'data %d\n%s\nfrom %s\n' "${#msg}" "$msg" "$tip"
		for c in "$@"; do printf '%s\n' "$c"; done
		printf '\n'
	} | replica_ugit "$i" fast-import --quiet &&
	replica_ugit "$i" update-ref refs/heads/mail refs/heads/x3 "$tip" &&
	replica_ugit "$i" update-ref -d refs/heads/x3
}

# purge I BLOB: every object of I but BLOB into one new pack, everything
# else removed (what a purge pass leaves)
purge() {
	local i=$1 b=$2 r
	r=$(replica_repo "$i") &&
	replica_ugit "$i" cat-file --batch-all-objects --batch-check='%(objectname)' |
		grep -vx "$b" >"$TRASH/keep" &&
	replica_ugit "$i" pack-objects -q "$r/objects/pack/new" <"$TRASH/keep" >"$TRASH/newpack" &&
	for p in "$r"/objects/pack/*.pack; do
		case $p in */new-$(cat "$TRASH/newpack").pack) ;; *) rm -f "$p" "${p%.pack}.idx" "${p%.pack}.rev";; esac
	done &&
	rm -rf "$r"/objects/[0-9a-f][0-9a-f] &&
	! replica_ugit "$i" cat-file -e "$b" 2>/dev/null
}

# what each step said goes to $X3_OUT too (passing tests' output is not shown)
: "${X3_OUT:=/tmp/x3-maildag-ssh.out}"
show() { sed 's/^/#   /' "$TRASH/out"; sed 's/^/    /' "$TRASH/out" >>"$X3_OUT"; }
say_out() { say "$*"; printf '%s\n' "$*" >>"$X3_OUT"; }
: >"$X3_OUT"

test_expect_success 'r1 and r2 (two users, ssh); M and N delivered on r1, pushed to r2, merged' '
	replica_setup x3 maildagx1 maildagx2 maildagx3 &&
	replica_deliver 1 M && replica_deliver 1 N &&
	replica_run 1 maildag push r2 &&
	replica_run 2 maildag merge -u -q refs/heads/mail refs/peers/r1/mail >/dev/null &&
	test "$(replica_tree 1)" = "$(replica_tree 2)" &&
	# what r2 pushed before it went away: r1 advertises it to r2 later
	replica_run 2 maildag push r1 &&
	test "$(replica_git 1 rev-parse refs/peers/r2/mail)" = "$(replica_git 2 rev-parse refs/heads/mail)"
'

test_expect_success 'r2 goes away and flags M (a new path for M in its trees); r1 expunges M' '
	replica_git 2 ls-tree -r --name-only refs/heads/mail >"$TRASH/paths" &&
	p= &&
	while read -r x; do
		case $x in new/*) ;; *) continue;; esac
		replica_git 2 cat-file -p "refs/heads/mail:$x" >"$TRASH/body" &&
		if grep "^Message-ID: <M\." "$TRASH/body" >/dev/null; then p=$x; fi
	done <"$TRASH/paths" &&
	test -n "$p" && echo "$p" >"$TRASH/mpath" &&
	M=$(replica_git 2 rev-parse "refs/heads/mail:$p") && echo "$M" >"$TRASH/mblob" &&
	q=$(echo "$p" | sed "s,^new/,cur/,"):2,F &&
	edit 2 "flags" "D $p" "M 100644 $M $q" &&
	edit 1 "expunge" "D $p"
'

test_expect_success 'r1 purges M by hand (all its objects but M in one pack)' '
	test -s "$TRASH/mblob" && purge 1 "$(cat "$TRASH/mblob")"
'

test_expect_success 'side check, git alone on copies: does upload-pack send M for r2s flag change (pack.useSparse)?' '
	for sparse in true false; do
		rm -rf "$TRASH/c1.git" "$TRASH/c2.git" &&
		cp -a "$(replica_repo 1)" "$TRASH/c1.git" &&
		cp -a "$(replica_repo 2)" "$TRASH/c2.git" &&
		git -c safe.directory="*" --git-dir="$TRASH/c1.git" -c fetch.unpackLimit=1 fetch -q \
			--upload-pack="git -c safe.directory=* -c pack.useSparse=$sparse -c uploadpack.hideRefs=refs/ -c uploadpack.hideRefs=!refs/heads/mail upload-pack --strict" \
			"$TRASH/c2.git" +refs/heads/mail:refs/peers/r2/mail || return 1
		if git -c safe.directory="*" --git-dir="$TRASH/c1.git" cat-file -e "$(cat "$TRASH/mblob")" 2>/dev/null
		then say_out "pack.useSparse=$sparse: M sent again"
		else say_out "pack.useSparse=$sparse: M not sent"
		fi
	done
'

test_expect_success 'r2 pushes to r1 (libgit2 over ssh into receive-pack with receive.fsckObjects): refused' '
	replica_run 2 maildag push r1 >"$TRASH/out" 2>&1; st=$?
	say_out "r2: maildag push r1, exit $st:"; show
	test $st != 0 && grep -q "$(cat "$TRASH/mblob")\|unpack\|expected object" "$TRASH/out"
'

test_expect_success 'r1 fetches from r2 (libgit2 over ssh from upload-pack): accepted' '
	replica_run 1 maildag fetch r2 >"$TRASH/out" 2>&1; st=$?
	say_out "r1: maildag fetch r2, exit $st:"; show
	test $st = 0 &&
	test "$(replica_git 1 rev-parse refs/peers/r2/mail)" = "$(replica_git 2 rev-parse refs/heads/mail)"
'

test_expect_success 'the fetch brought M back (upload-pack: pack.useSparse sends a blob whose path changed); r1 purges it again' '
	replica_ugit 1 cat-file -e "$(cat "$TRASH/mblob")" &&
	say_out "r1: M is back after the fetch" &&
	purge 1 "$(cat "$TRASH/mblob")"
'

test_expect_success 'r1 merges what it fetched: the check of r2s tree refuses the missing blob' '
	replica_run 1 maildag merge -n -q refs/heads/mail refs/peers/r2/mail >"$TRASH/out" 2>&1; st=$?
	say_out "r1: maildag merge -n mail peers/r2/mail, exit $st:"; show
	test $st != 0
'

test_expect_success 'r1: maildag fsck --all-refs and git fsck' '
	replica_run 1 maildag fsck --all-refs >"$TRASH/out" 2>&1; st=$?
	say_out "r1: maildag fsck --all-refs, exit $st:"; show
	replica_ugit 1 fsck --no-dangling >"$TRASH/out" 2>&1; st2=$?
	say_out "r1: git fsck, exit $st2:"; show
	test $st != 0 && test $st2 != 0
'

test_expect_success 'a new replica r3 fetches r1s whole history: upload-pack cannot read M' '
	replica_run 3 maildag fetch r1 >"$TRASH/out" 2>&1; st=$?
	say_out "r3: maildag fetch r1, exit $st:"; show
	test $st != 0
'

test_done
