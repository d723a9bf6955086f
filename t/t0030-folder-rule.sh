#!/bin/sh
test_description='one rule for a folder (common/layout.h): only cur/, only new/, both, or only tmp/ is the same to maildag init, maildag-syncd, maildag fsck and maildag-lda'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

# folder NAME "SUBS" [KEY]: the directory .NAME with its marker and the
# subdirectories SUBS; with KEY, a message of that key in the first
folder() {
	local s
	for s in $2; do
		as_user mkdir -p "$MAILDIR/.$1/$s" || return 1
	done
	as_user touch "$MAILDIR/.$1/maildirfolder" &&
	if [ -n "${3:-}" ]; then
		s=${2%% *}
		test_message "$3" >msg &&
		as_user cp msg "$MAILDIR/.$1/$s/$3.M1P1.rule"
	fi
}

# the folders a tree holds, on one line
tree_folders() {
	mgit ls-tree --name-only "${1:-refs/heads/mail}" | grep '^\.' | tr '\n' ' '
}

# fsck finds nothing, not even a warning: it sees the folders the
# worktree was committed from
fsck_clean() {
	as_user maildag fsck >fsck.out 2>&1 || { cat fsck.out; return 1; }
	cat fsck.out
	! grep "^warning" fsck.out
}

test_expect_success 'setup: a folder with only cur/, only new/, both, only tmp/' '
	as_user mkdir -p "$MAILDIR/cur" "$MAILDIR/new" "$MAILDIR/tmp" &&
	folder OnlyCur cur 1700000001 &&
	folder OnlyNew new 1700000002 &&
	folder Both "cur new tmp" 1700000003 &&
	folder TmpOnly tmp 1700000004 &&
	test -f "$MAILDIR/.TmpOnly/tmp/1700000004.M1P1.rule"
'

test_expect_success 'maildag init: cur/ or new/ makes a folder, tmp/ alone does not' '
	as_user maildag init >out &&
	cat out &&
	grep -q "3 messages in 4 folders" out &&
	test "$(tree_folders)" = ".Both .OnlyCur .OnlyNew " &&
	disk_state >disk && tree_state >tree && test_cmp disk tree &&
	grep -q "^\.OnlyCur/cur/1700000001" tree &&
	grep -q "^\.OnlyNew/new/1700000002" tree
'

test_expect_success 'maildag fsck: the same folders, no warning' '
	fsck_clean
'

test_expect_success 'maildag-syncd: the same rule for folders made while it runs' '
	syncd_start &&
	syncd_idle &&
	folder OnlyCur2 cur 1700000011 &&
	folder OnlyNew2 new &&
	folder Both2 "cur new tmp" 1700000013 &&
	folder TmpOnly2 tmp 1700000014 &&
	wait_for "mgit ls-tree --name-only refs/heads/mail | grep -q \"^\\.OnlyNew2\$\"" &&
	wait_for "mgit ls-tree --name-only refs/heads/mail | grep -q \"^\\.OnlyCur2\$\"" &&
	wait_for "mgit ls-tree --name-only refs/heads/mail | grep -q \"^\\.Both2\$\"" &&
	syncd_idle &&
	test "$(tree_folders)" = ".Both .Both2 .OnlyCur .OnlyCur2 .OnlyNew .OnlyNew2 " &&
	mgit ls-tree --name-only refs/heads/mail:.OnlyNew2 >entries &&
	test "$(cat entries)" = maildirfolder
'

test_expect_success 'maildag-syncd: a folder whose last of cur/ and new/ goes is no folder' '
	as_user rmdir "$MAILDIR/.OnlyNew2/new" &&
	wait_for "! mgit ls-tree --name-only refs/heads/mail | grep -q \"^\\.OnlyNew2\$\"" &&
	syncd_idle &&
	test "$(tree_folders)" = ".Both .Both2 .OnlyCur .OnlyCur2 .OnlyNew " &&
	test -d "$MAILDIR/.OnlyNew2" &&
	as_user rmdir "$MAILDIR/.Both2/new" &&
	syncd_idle &&
	test "$(tree_folders)" = ".Both .Both2 .OnlyCur .OnlyCur2 .OnlyNew " &&
	syncd_stop
'

test_expect_success 'maildag fsck agrees with what syncd committed' '
	fsck_clean
'

test_expect_success 'maildag-lda delivers into a folder by the same rule' '
	test_message lda-1 | as_user maildag-lda -m OnlyNew &&
	test "$(ls "$MAILDIR/.OnlyNew/new" | wc -l)" = 2 &&
	test_message lda-2 | as_user maildag-lda -m OnlyCur &&
	test "$(ls "$MAILDIR/.OnlyCur/new" | wc -l)" = 1 &&
	test_message lda-3 | as_user maildag-lda -m TmpOnly &&
	test "$(ls "$MAILDIR/new" | wc -l)" = 1 &&
	! test -e "$MAILDIR/.TmpOnly/cur" && ! test -e "$MAILDIR/.TmpOnly/new" &&
	test "$(tree_folders)" = ".Both .Both2 .OnlyCur .OnlyCur2 .OnlyNew " &&
	fsck_clean
'

test_done
