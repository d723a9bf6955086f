#!/bin/sh
test_description='maildag-lda exit statuses: each row of the table, provoked'
. "$abs_top_srcdir/t/test-lib.sh"

# deliver_status EXPECTED CODE-PREFIX [lda args...] < message
# runs the LDA, checks the exit status and the RFC 3463 line on stderr
deliver_status() {
	want=$1 code=$2
	shift 2
	got=0
	as_user maildag-lda "$@" 2>err || got=$?
	cat err >&2
	if [ "$got" != "$want" ]; then
		echo "exit $got, wanted $want" >&2
		return 1
	fi
	if [ -n "$code" ]; then
		test "$(wc -l <err)" = 1 && grep -Eq "^${code}[0-9.]* " err
	fi
}

# nothing_left: no message file in new/ or tmp/ beyond those listed in
# the file "keep", and the repository unchanged since "head"
nothing_left() {
	find "$MAILDIR/new" "$MAILDIR/tmp" -type f | sort >left &&
	test_cmp keep left &&
	test "$(mgit rev-parse refs/heads/mail)" = "$(cat head)"
}

snapshot() {
	find "$MAILDIR/new" "$MAILDIR/tmp" -type f | sort >keep &&
	mgit rev-parse refs/heads/mail >head
}

deliver_ok() {
	test_message "$1" | as_user maildag-lda &&
	grep -q "test message $1" "$MAILDIR"/new/*
}

test_expect_success 'setup: a first delivery' '
	deliver_ok first
'

test_expect_success ROOT 'as root: 75 with 4.3.0, nothing written' '
	snapshot &&
	got=0 && test_message root | env HOME="$USER_HOME" maildag-lda 2>err || got=$? &&
	test "$got" = 75 && grep -q "^4\.3\.0 .*root" err &&
	nothing_left
'

test_expect_success 'a bad option: 64' '
	snapshot &&
	test_message usage | deliver_status 64 5.3.5 -x &&
	test_message usage | deliver_status 64 5.3.5 extra-argument &&
	test_message usage | deliver_status 64 5.3.5 -d notanumber &&
	nothing_left
'

test_expect_success 'a mailbox that must not be created: 67, nothing created' '
	home2=$TRASH/home-nocreate &&
	test_user_setup "$TEST_USER" "$home2" &&
	got=0 && test_message nouser | as_user -h "$home2" maildag-lda -N 2>err || got=$? &&
	test "$got" = 67 && grep -q "^5\.1\.1 " err &&
	test -z "$(ls -A "$home2")"
'

test_expect_success 'a config with "create": false: 67' '
	home3=$TRASH/home-nocreate2 &&
	test_user_setup "$TEST_USER" "$home3" &&
	mkdir -p "$home3/.config/maildag" &&
	echo "{\"create\": false}" >"$home3/.config/maildag/config.json" &&
	chown -R "$TEST_USER" "$home3/.config" && chmod -R go-w "$home3/.config" &&
	got=0 && test_message nouser | as_user -h "$home3" maildag-lda 2>err || got=$? &&
	test "$got" = 67 && ! test -e "$home3/Maildir"
'

test_expect_success 'a message over size_limit: 77 with 5.2.3, nothing kept' '
	mkdir -p "$USER_HOME/.config/maildag" &&
	echo "{\"size_limit\": 1000}" >"$USER_HOME/.config/maildag/config.json" &&
	chown -R "$TEST_USER" "$USER_HOME/.config" && chmod -R go-w "$USER_HOME/.config" &&
	snapshot &&
	{ test_message big; head -c 5000 /dev/zero | tr "\0" x; } | deliver_status 77 5.2.3 &&
	nothing_left &&
	deliver_ok small-after-big &&
	rm "$USER_HOME/.config/maildag/config.json"
'

test_expect_success 'a broken config: 75 with 4.3.5 naming the place' '
	echo "{\"size_limit\": 1000,,}" >"$USER_HOME/.config/maildag/config.json" &&
	chown "$TEST_USER" "$USER_HOME/.config/maildag/config.json" &&
	snapshot &&
	test_message badcfg | deliver_status 75 4.3.5 &&
	grep -q "config.json:1:" err &&
	echo "{\"sise_limit\": 1000}" >"$USER_HOME/.config/maildag/config.json" &&
	test_message badcfg | deliver_status 75 4.3.5 &&
	grep -q "sise_limit" err &&
	nothing_left &&
	rm "$USER_HOME/.config/maildag/config.json" &&
	deliver_ok after-badcfg
'

test_expect_success 'a config writable by others: 75' '
	echo "{}" >"$USER_HOME/.config/maildag/config.json" &&
	chown "$TEST_USER" "$USER_HOME/.config/maildag/config.json" &&
	chmod 666 "$USER_HOME/.config/maildag/config.json" &&
	snapshot &&
	test_message unsafe | deliver_status 75 4.3.5 &&
	nothing_left &&
	rm "$USER_HOME/.config/maildag/config.json"
'

test_expect_success 'a group-writable Maildir: 75 with 4.3.5' '
	chmod 770 "$MAILDIR" &&
	snapshot &&
	test_message unsafe-md | deliver_status 75 4.3.5 &&
	chmod 700 "$MAILDIR" &&
	nothing_left &&
	deliver_ok after-unsafe
'

test_expect_success ROOT 'a repository owned by someone else: 75' '
	chown root "$REPO" &&
	snapshot &&
	test_message foreign | deliver_status 75 4.3.5 &&
	chown "$TEST_USER" "$REPO" &&
	nothing_left
'

test_expect_success 'an unwritable repository: 75, nothing left in new/, then fine' '
	snapshot &&
	chmod 500 "$REPO/objects" &&
	test_message unwritable | deliver_status 75 4 &&
	chmod 700 "$REPO/objects" &&
	nothing_left &&
	deliver_ok after-unwritable &&
	mgit fsck --strict --no-dangling && test_repo_consistent
'

test_expect_success 'the deadline passing: 75 with 4.4.7, nothing left' '
	snapshot &&
	{ sleep 3; test_message slow; } | deliver_status 75 4.4.7 -d 1 &&
	nothing_left &&
	deliver_ok after-deadline
'

test_expect_success 'the writer lock held too long: 75, nothing left' '
	snapshot &&
	as_user flock "$REPO/maildag/lock" sleep 4 &
	sleep 0.5 &&
	test_message locked | deliver_status 75 4 -d 2 &&
	wait &&
	nothing_left &&
	deliver_ok after-lock
'

test_expect_success ROOT 'a full disk: 75 with 4.2.2, nothing left, then fine' '
	home4=$TRASH/home-full &&
	mkdir -p "$home4" && mount -t tmpfs -o size=2m,mode=700 tmpfs "$home4" &&
	chown "$TEST_USER:" "$home4" &&
	test_message tiny | as_user -h "$home4" maildag-lda &&
	mgit4() { git -c safe.directory="*" --git-dir="$home4/.local/share/maildag/mail.git" "$@"; } &&
	before=$(mgit4 rev-parse refs/heads/mail) &&
	{ test_message huge; head -c 3000000 /dev/urandom | base64; } >huge &&
	got=0 && as_user -h "$home4" maildag-lda <huge 2>err || got=$? &&
	cat err && test "$got" = 75 && grep -q "^4\.2\.2 " err &&
	test "$(find "$home4/Maildir/new" -type f | wc -l)" = 1 &&
	test -z "$(ls "$home4/Maildir/tmp")" &&
	test "$(mgit4 rev-parse refs/heads/mail)" = "$before" &&
	test_message after-full | as_user -h "$home4" maildag-lda &&
	test "$(find "$home4/Maildir/new" -type f | wc -l)" = 2 &&
	mgit4 fsck --strict --no-dangling;
	r=$?; umount "$home4"; exit $r
'

test_expect_success ROOT 'a disk that fills during the commit: 75, nothing left' '
	home5=$TRASH/home-full2 &&
	mkdir -p "$home5" && mount -t tmpfs -o size=1200k,mode=700 tmpfs "$home5" &&
	chown "$TEST_USER:" "$home5" &&
	test_message tiny | as_user -h "$home5" maildag-lda &&
	mgit5() { git -c safe.directory="*" --git-dir="$home5/.local/share/maildag/mail.git" "$@"; } &&
	before=$(mgit5 rev-parse refs/heads/mail) &&
	used=$(df --output=used -k "$home5" | tail -1) &&
	{ test_message nearly-full; head -c $(( (1100 - used) * 1024 )) /dev/urandom | base64 -w 76 | head -c $(( (1100 - used) * 1024 * 3 / 4 )); } >big &&
	got=0 && as_user -h "$home5" maildag-lda <big 2>err || got=$? &&
	cat err && test "$got" = 75 &&
	test "$(find "$home5/Maildir/new" -type f | wc -l)" = 1 &&
	test "$(mgit5 rev-parse refs/heads/mail)" = "$before" &&
	test_message after-full2 | as_user -h "$home5" maildag-lda &&
	test "$(find "$home5/Maildir/new" -type f | wc -l)" = 2 &&
	mgit5 fsck --strict --no-dangling;
	r=$?; umount "$home5"; exit $r
'

test_expect_success 'after all of that: a clean, consistent repository' '
	mgit fsck --strict --no-dangling && test_repo_consistent
'

test_done
