#!/bin/sh
test_description='maildag init imports as maildag-syncd commits; repositories stay private; writing verbs refuse root'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

# Dovecot's COPY keeps the file name, so one name is in two folders
printf 'maildir_copy_preserve_filename = yes\n' >>"$DOVECOT_CONF"

test_expect_success 'a Maildir holding a copy made by Dovecot COPY' '
	test_message 1 >m1 && test_message 2 >m2 &&
	imap_append INBOX "\\Seen" "01-Jan-2020 10:00:00 +0000" m1 >/dev/null &&
	imap_append INBOX "" "02-Jan-2020 10:00:00 +0000" m2 >/dev/null &&
	imap "CREATE Archive" "SELECT INBOX" "COPY 1 Archive" >/dev/null &&
	copy=$(find "$MAILDIR/.Archive/cur" "$MAILDIR/.Archive/new" -type f -printf "%f\n") &&
	test -n "$copy" &&
	find "$MAILDIR/cur" "$MAILDIR/new" -type f -printf "%f\n" | grep -qxF "$copy" &&
	! test -e "$REPO"
'

test_expect_success 'maildag init of it: fsck clean, the copy under a key of its own' '
	as_user maildag init >out &&
	cat out &&
	grep -q "3 messages in 2 folders" out &&
	{ as_user maildag fsck >fsck.out 2>&1 || { cat fsck.out; false; }; } &&
	! grep -i "duplicate" fsck.out &&
	! grep "^warning" fsck.out &&
	tree_state >tree && disk_state >disk && test_cmp disk tree &&
	grep -q "^\.Archive/cur/[^/]*\.c[0-9a-f]\{8\}" tree &&
	test "$(grep -c "^\.Archive/" tree)" = 1 &&
	test "$(grep -c "^/" tree)" = 2 &&
	test "$(mgit rev-parse refs/heads/mail)" = "$(mgit rev-parse refs/maildag/worktree)" &&
	mgit log --format=%s refs/heads/mail >log &&
	grep -q "^import existing Maildir" log
'

test_expect_success 'the INTERNALDATEs are recorded, and Dovecot sees both messages' '
	mgit ls-tree -r --name-only refs/heads/mail | grep -q "^mtimes/" &&
	fetch_flags INBOX >inbox && fetch_flags Archive >archive &&
	cat inbox archive &&
	test "$(wc -l <inbox)" = 2 && test "$(wc -l <archive)" = 1 &&
	grep -q "^01-Jan-2020 10:00:00 +0000 .*Seen" inbox &&
	grep -q "^02-Jan-2020 10:00:00 +0000" inbox &&
	grep -q "^01-Jan-2020 10:00:00 +0000 .*Seen" archive
'

test_expect_success 'a file-level copy (cp -p) is imported the same way' '
	home3=$TRASH/home3 && md=$home3/Maildir &&
	test_user_setup "$TEST_USER" "$home3" &&
	mkdir -p "$md/cur" "$md/new" "$md/tmp" "$md/.Keep/cur" "$md/.Keep/new" "$md/.Keep/tmp" &&
	: >"$md/.Keep/maildirfolder" &&
	test_message 3 >"$md/cur/1700000000.M1P1.h,S=10:2,S" &&
	cp -p "$md/cur/1700000000.M1P1.h,S=10:2,S" "$md/.Keep/cur/" &&
	touch -d "2021-03-04 05:06:07 UTC" "$md/.Keep/cur/1700000000.M1P1.h,S=10:2,S" &&
	chown -R "$TEST_USER" "$home3" && chmod -R go-w "$home3" &&
	as_user -h "$home3" maildag init >out &&
	grep -q "2 messages in 2 folders" out &&
	{ as_user -h "$home3" maildag fsck >fsck.out 2>&1 || { cat fsck.out; false; }; } &&
	ls "$md/.Keep/cur" | grep -q "^1700000000\.M1P1\.h\.c[0-9a-f]\{8\},S=10:2,S$" &&
	test -e "$md/cur/1700000000.M1P1.h,S=10:2,S"
'

# --- private, whatever the umask --------------------------------------------

home2=$TRASH/home2
other_home=$TRASH/home-other

test_expect_success ROOT 'umask 022, "repository": "~/mail.git": init, deliver, syncd' '
	test_user_setup "$TEST_USER" "$home2" &&
	chmod 755 "$home2" &&
	as_user -h "$home2" mkdir -p "$home2/.config/maildag" &&
	printf "{ \"node\": \"p\", \"repository\": \"~/mail.git\" }\n" >"$home2/.config/maildag/config.json" &&
	chown "$TEST_USER" "$home2/.config/maildag/config.json" &&
	chmod 600 "$home2/.config/maildag/config.json" &&
	test "$(umask)" = 0022 &&
	as_user -h "$home2" maildag init &&
	test_message 20 | as_user -h "$home2" maildag-lda &&
	test_message 21 | as_user -h "$home2" maildag-lda &&
	f=$(ls "$home2/Maildir/new" | head -n 1) &&
	as_user -h "$home2" mv "$home2/Maildir/new/$f" "$home2/Maildir/cur/$f:2,S" &&
	as_user -h "$home2" maildag-syncd -1 &&
	git -c safe.directory="*" --git-dir="$home2/mail.git" ls-tree -r --name-only refs/heads/mail >tree &&
	grep -q "^cur/../$f:2,S$" tree
'

test_expect_success ROOT 'a push by the git CLI with umask 022 stays private too' '
	as_user -h "$home2" git init -q "$home2/scratch" &&
	echo hi >"$home2/scratch/a" && chown "$TEST_USER" "$home2/scratch/a" &&
	as_user -h "$home2" git -C "$home2/scratch" add a &&
	as_user -h "$home2" git -C "$home2/scratch" -c user.name=a -c user.email=a@b commit -qm x &&
	as_user -h "$home2" git -C "$home2/scratch" push -q "$home2/mail.git" HEAD:refs/peers/x/mail &&
	as_user -h "$home2" git -C "$home2/scratch" push -q "$home2/mail.git" HEAD:refs/peers/y/mail
'

test_expect_success ROOT 'nothing in the repository is open to group or others' '
	find "$home2/mail.git" -perm /077 >open &&
	{ ! test -s open || { cat open; false; }; } &&
	find "$home2/mail.git/objects" -type f -name "[0-9a-f]*" >objects &&
	test -s objects
'

test_expect_success ROOT 'another local user can read no object' '
	test_user_setup maildagt2 "$other_home" &&
	obj=$(find "$home2/mail.git/objects" -type f -name "[0-9a-f]*" | head -n 1) && test -n "$obj" &&
	test_must_fail as_user -u maildagt2 -h "$other_home" cat "$obj" &&
	test_must_fail as_user -u maildagt2 -h "$other_home" ls "$home2/mail.git/objects" &&
	test_must_fail as_user -u maildagt2 -h "$other_home" \
		git -c safe.directory="*" --git-dir="$home2/mail.git" cat-file -p refs/heads/mail
'

test_expect_success ROOT 'maildag fsck warns of a repository open to others' '
	as_user -h "$home2" maildag fsck >out 2>&1 &&
	! grep -q "open to other users" out &&
	chmod 755 "$home2/mail.git" &&
	as_user -h "$home2" maildag fsck >out 2>&1 &&
	chmod 700 "$home2/mail.git" &&
	grep -q "^warning: .*mail.git. is open to other users (mode 0755)" out
'

# --- root -------------------------------------------------------------------

test_expect_success ROOT 'every verb that writes a repository refuses root, in one line' '
	printf "{ \"node\": \"t\", \"maildir\": \"%s\", \"repository\": \"%s\", \"peers\": { \"p\": { \"url\": \"file://%s\" } } }\n" \
		"$home2/Maildir" "$home2/mail.git" "$home2/mail.git" >rootconf.json &&
	chmod 600 rootconf.json &&
	mv "$home2/mail.git" "$home2/mail.git.away" &&
	test_expect_code 77 maildag -c rootconf.json init 2>err &&
	test "$(wc -l <err)" = 1 && grep -q "refusing to run .maildag init. as root" err &&
	! test -e "$home2/mail.git" &&
	mv "$home2/mail.git.away" "$home2/mail.git" &&
	before=$(git -c safe.directory="*" --git-dir="$home2/mail.git" for-each-ref) &&
	for verb in "push" "push p" "fetch" "fetch p" \
		"merge refs/heads/mail refs/peers/x/mail" \
		"merge -u refs/heads/mail refs/peers/x/mail"; do
		test_expect_code 77 maildag -c rootconf.json $verb 2>err || return 1
		test "$(wc -l <err)" = 1 || return 1
		grep -q "refusing to run .maildag ${verb%% *}. as root" err || return 1
	done &&
	test "$before" = "$(git -c safe.directory="*" --git-dir="$home2/mail.git" for-each-ref)" &&
	find "$home2" -user root >rootfiles &&
	{ grep -v "/config.json$\|^$home2$" rootfiles >rootfiles2 || :; } &&
	{ ! test -s rootfiles2 || { cat rootfiles2; false; }; }
'

test_expect_success ROOT 'read-only verbs run as root' '
	maildag -c rootconf.json fsck >out 2>err &&
	grep -q "refs/heads/mail .*: ok" out &&
	maildag -c rootconf.json log -n 1 >out 2>err &&
	test -s out &&
	{ maildag -c rootconf.json merge -n refs/heads/mail refs/heads/mail >out 2>err || :; } &&
	! grep -q "refusing to run" err &&
	test_expect_code 3 maildag -c rootconf.json status >out 2>err &&
	! grep -q "refusing" err &&
	find "$home2/mail.git" -user root >rootfiles &&
	{ ! test -s rootfiles || { cat rootfiles; false; }; }
'

test_done
