#!/bin/sh
test_description='maildag-lda delivers into the Maildir and commits'
. "$abs_top_srcdir/t/test-lib.sh"

new_files() { find "$MAILDIR/${1:+$1/}new" -type f; }

test_expect_success 'a first delivery creates the Maildir and the repository' '
	{ echo "From alice@example.org Sun Nov 22 10:00:00 2026"; test_message 1; } >msg1 &&
	as_user maildag-lda -f alice@example.org <msg1 &&
	test -d "$MAILDIR/cur" && test -d "$MAILDIR/new" && test -d "$MAILDIR/tmp" &&
	test "$(new_files | wc -l)" = 1 &&
	test "$(mgit rev-parse --is-bare-repository)" = true
'

test_expect_success 'the stored message has Return-Path and no From_ line' '
	f=$(new_files) &&
	head -n 1 "$f" >first &&
	echo "Return-Path: <alice@example.org>" >expect &&
	test_cmp expect first &&
	! grep -q "^From alice" "$f" &&
	tail -n +2 "$f" >body && test_message 1 >expect && test_cmp expect body
'

test_expect_success 'the file name has the expected form and size' '
	name=$(basename "$(new_files)") &&
	size=$(wc -c <"$(new_files)") &&
	echo "$name" | grep -Eq "^[0-9]+\.M[0-9]{6}P[0-9]+R[0-9a-f]{16}Q1\.[^,:/]+,S=$size\$"
'

test_expect_success 'the mtime is the time in the name' '
	f=$(new_files) && name=$(basename "$f") &&
	test "$(stat -c %Y "$f")" = "${name%%.*}"
'

test_expect_success 'git log shows the delivery and the tree holds the bytes' '
	mgit log --format=%s refs/heads/mail >log &&
	printf "deliver to INBOX\nnew mailbox\n" >expect && test_cmp expect log &&
	f=$(new_files) && name=$(basename "$f") &&
	path=$(tree_files) &&
	case "$path" in new/[0-9a-f][0-9a-f]/"$name") ;; *) false;; esac &&
	mgit cat-file blob "refs/heads/mail:$path" >blob &&
	cmp blob "$f" &&
	mgit cat-file blob refs/heads/mail:FORMAT >format &&
	echo "maildag 1" >expect && test_cmp expect format
'

test_expect_success 'git fsck --strict is clean; worktree ref matches' '
	mgit fsck --strict --no-dangling &&
	test "$(mgit rev-parse refs/maildag/worktree^{tree})" = \
	     "$(mgit rev-parse refs/heads/mail^{tree})" &&
	test_repo_consistent
'

test_expect_success 'the repository and the Maildir are private' '
	test "$(stat -c %a "$MAILDIR")" = 700 &&
	test "$(stat -c %a "$REPO")" = 700 &&
	test "$(stat -c %a "$(new_files)")" = 600 &&
	test "$(stat -c %U "$REPO")" = "$TEST_USER"
'

test_expect_success 'maildag log shows the delivery in mail terms' '
	as_user maildag log >out &&
	grep "delivered to INBOX: from Alice <alice@example.org>, \"test message 1\"" out
'

test_expect_success 'a retry of the same bytes is not stored twice' '
	as_user maildag-lda -f alice@example.org <msg1 &&
	test "$(new_files | wc -l)" = 1 &&
	test "$(mgit rev-list --count refs/heads/mail)" = 2
'

test_expect_success 'the same message with another From_ date is a retry too' '
	{ echo "From alice@example.org Mon Nov 23 11:00:00 2026"; test_message 1; } >msg1b &&
	as_user maildag-lda -f alice@example.org <msg1b &&
	test "$(new_files | wc -l)" = 1
'

test_expect_success 'SENDER from the environment gives Return-Path; one is not added twice' '
	test_message 2 | as_user env SENDER=bob@example.org maildag-lda &&
	grep -l "^Return-Path: <bob@example.org>" $(new_files) >hits &&
	test "$(wc -l <hits)" = 1 &&
	{ echo "Return-Path: <carol@example.org>"; test_message 3; } >msg3 &&
	as_user maildag-lda -f carol@example.org <msg3 &&
	f=$(grep -l "test message 3" $(new_files)) &&
	test "$(grep -c "^Return-Path:" "$f")" = 1
'

test_expect_success 'the null sender gives Return-Path: <>' '
	test_message 4 | as_user maildag-lda -f "<>" &&
	f=$(grep -l "test message 4" $(new_files)) &&
	head -n 1 "$f" | grep -qx "Return-Path: <>"
'

test_expect_success 'a sender with a newline adds no header' '
	test_message 5 | as_user maildag-lda -f "$(printf "x@y\nX-Evil: 1")" &&
	f=$(grep -l "test message 5" $(new_files)) &&
	! grep -q "X-Evil" "$f" && ! grep -q "^Return-Path" "$f"
'

test_expect_success '-m delivers into an existing folder, else INBOX' '
	mkdir -p "$MAILDIR/.Lists.debian/cur" "$MAILDIR/.Lists.debian/new" "$MAILDIR/.Lists.debian/tmp" &&
	chown -R "$TEST_USER" "$MAILDIR/.Lists.debian" &&
	test_message 6 | as_user maildag-lda -m Lists/debian &&
	grep -q "test message 6" "$MAILDIR"/.Lists.debian/new/* &&
	test_message 7 | as_user maildag-lda -m INBOX.Lists.debian &&
	grep -q "test message 7" "$MAILDIR"/.Lists.debian/new/* &&
	test_message 8 | as_user maildag-lda -m Nonexistent &&
	grep -q "test message 8" $(new_files) &&
	! test -e "$MAILDIR/.Nonexistent" &&
	tree_files | grep -q "^\.Lists\.debian/new/" &&
	test_repo_consistent
'

test_expect_success 'maildag log names the folder a message was delivered to' '
	as_user maildag log >out &&
	cat out &&
	grep "delivered to Lists.debian: from Alice <alice@example.org>, \"test message 6\"" out &&
	grep "delivered to INBOX: from Alice <alice@example.org>, \"test message 8\"" out
'

test_expect_success 'EXTENSION and LOCAL_PART_SUFFIX pick an existing folder' '
	test_message 9 | as_user env EXTENSION=Lists.debian maildag-lda &&
	grep -q "test message 9" "$MAILDIR"/.Lists.debian/new/* &&
	test_message 10 | as_user env LOCAL_PART_SUFFIX=+Lists.debian maildag-lda &&
	grep -q "test message 10" "$MAILDIR"/.Lists.debian/new/* &&
	test_message 11 | as_user env EXTENSION=nosuch maildag-lda &&
	grep -q "test message 11" $(new_files)
'

test_expect_success 'hostile extensions never become paths' '
	ls -a "$MAILDIR" "$USER_HOME" >before &&
	for ext in ../x .git a/b ../../etc "" "." ".." "Lists..debian" "$(printf "a\nb")"; do
		test_message "hostile $ext" | as_user env EXTENSION="$ext" maildag-lda || exit 1
	done &&
	test_message hostile-m | as_user maildag-lda -m ../x &&
	ls -a "$MAILDIR" "$USER_HOME" >after &&
	test_cmp before after &&
	test "$(grep -l "test message hostile" $(new_files) | wc -l)" = 10 &&
	! test -e "$USER_HOME/x" && ! test -e "$MAILDIR/.git" &&
	test_repo_consistent
'

# a host name of one letter gives keys that end in ".<letter>", as the
# journal's own suffixes do: a delivery is still committed (root only:
# the name is set in a UTS namespace of its own)
if [ "$(id -u)" = 0 ] && unshare --uts true 2>/dev/null; then
	test_set_prereq UTSNS
fi
test_expect_success UTSNS 'a delivery on a host named with one letter is committed' '
	test_message shorthost >short.msg &&
	unshare --uts sh -c '\''hostname w && exec "$@"'\'' - \
		setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --init-groups \
		env HOME="$USER_HOME" USER="$TEST_USER" LOGNAME="$TEST_USER" \
		PATH="$PATH" maildag-lda <short.msg &&
	f=$(grep -l "test message shorthost" $(new_files)) &&
	case "$f" in *Q1.w,S=*) ;; *) false;; esac &&
	tree_files | grep -q "/$(basename "$f")\$" &&
	test -z "$(ls -A "$REPO/maildag/pending")"
'

test_expect_success 'maildag init refuses an existing repository' '
	test_expect_code 73 as_user maildag init
'

test_expect_success 'maildag init imports an existing Maildir' '
	home2=$TRASH/home2 && md=$home2/Maildir &&
	test_user_setup "$TEST_USER" "$home2" &&
	mkdir -p "$md/cur" "$md/new" "$md/tmp" "$md/.Sent/cur" "$md/.Sent/new" "$md/.Sent/tmp" &&
	test_message a >"$md/cur/1700000000.M1P1.h,S=10:2,S" &&
	test_message b >"$md/new/1700000001.M1P1.h" &&
	test_message c >"$md/.Sent/cur/1700000002.M1P1.h:2,RS" &&
	: >"$md/.Sent/maildirfolder" &&
	echo junk >"$md/dovecot-uidlist" && echo tmp >"$md/tmp/1700000003.M1P1.h" &&
	echo Sent >"$md/subscriptions" &&
	chown -R "$TEST_USER" "$home2" && chmod -R go-w "$home2" &&
	as_user -h "$home2" maildag init >out &&
	grep "3 messages in 2 folders" out &&
	git -c safe.directory="*" --git-dir="$home2/.local/share/maildag/mail.git" \
		ls-tree -r --name-only refs/heads/mail >tree &&
	grep -q "^cur/../1700000000.M1P1.h,S=10:2,S$" tree &&
	grep -q "^new/../1700000001.M1P1.h$" tree &&
	grep -q "^\.Sent/cur/../1700000002.M1P1.h:2,RS$" tree &&
	grep -qx ".Sent/maildirfolder" tree &&
	grep -qx "subscriptions" tree && grep -qx FORMAT tree &&
	! grep -q "dovecot\|tmp/" tree &&
	git -c safe.directory="*" --git-dir="$home2/.local/share/maildag/mail.git" fsck --strict
'

test_done
