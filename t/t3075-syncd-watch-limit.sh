#!/bin/sh
test_description='the inotify watch limit reached for real (fs.inotify.max_user_watches lowered while the test runs): maildag-syncd says so once, maildag status counts the folders without a watch, and a message put into any folder, watched or not, is still committed (at the check every minute)'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
[ -n "$PYTHON" ] || test_skip_all "no python3 to read maildag status --json"
test_have_prereq ROOT || test_skip_all "needs root to lower fs.inotify.max_user_watches"
LIMIT_FILE=/proc/sys/fs/inotify/max_user_watches
[ -w "$LIMIT_FILE" ] || test_skip_all "cannot write $LIMIT_FILE"
. "$abs_top_srcdir/t/lib-replica.sh"

# The limit counts per user and the sysctl is the machine's: lowered, it
# binds every user.  It is lowered as little and as briefly as this
# allows: to half of what this script's own user (of its own, holding no
# watch before) needs, with $FOLDERS folders of three watches each, from
# just before the daemon starts until the last check; and put back when
# the script ends, however it ends.
U=maildagi1
# no other script that needs many watches runs meanwhile (t3070)
test_lock_machine inotify
FOLDERS=300

LIMIT_SAVED=$TRASH/max_user_watches.saved
restore_limit() {
	[ -s "$LIMIT_SAVED" ] || return 0
	cat "$LIMIT_SAVED" >"$LIMIT_FILE" && rm -f "$LIMIT_SAVED"
}
test_at_end restore_limit

syncd_pid() { daemon_pid "$(replica_set)-r1"; }
now_s() { date +%s; }

# committed: how many of the messages put into the folders are in
# refs/heads/mail's tree
committed() {
	replica_git 1 ls-tree -r --name-only refs/heads/mail |
		grep -c "Q1\.w[0-9][0-9][0-9],S=60" || :
}

test_expect_success "setup: one replica with $FOLDERS folders, no daemon yet" '
	replica_setup wlimit $U &&
	md=$(replica_maildir 1) &&
	replica_run 1 perl -e '"'"'
		my ($md, $n) = @ARGV;
		for my $i (1 .. $n) {
			my $f = sprintf("%s/.W%03d", $md, $i);
			mkdir $f or die "$f: $!";
			mkdir "$f/$_" or die "$f/$_: $!" for qw(cur new tmp);
			open(my $m, ">", "$f/maildirfolder") or die "$f: $!";
			close $m;
		}'"'"' "$md" $FOLDERS &&
	test "$(find "$md" -maxdepth 1 -name ".W*" | wc -l)" = $FOLDERS
'

test_expect_success 'the limit lowered below what the daemon needs: it starts, says so once, and maildag status counts the folders without a watch' '
	cat "$LIMIT_FILE" >"$LIMIT_SAVED" &&
	test "$(cat "$LIMIT_SAVED")" -gt $((3 * FOLDERS + 20)) &&
	echo $(((3 * FOLDERS) / 2)) >"$LIMIT_FILE" &&
	replica_start 1 &&
	replica_wait_log 1 "the inotify watch limit \(fs.inotify.max_user_watches\) is reached" &&
	w=$(inotify_watches "$(syncd_pid)") &&
	echo "maildag-syncd holds $w watches, the limit is $(cat "$LIMIT_FILE")" &&
	test "$w" -le "$(cat "$LIMIT_FILE")" &&
	replica_status 1 >st.json &&
	json_get "d.get(\"unwatched_folders\")" <st.json >unwatched &&
	echo "unwatched folders: $(cat unwatched)" &&
	test "$(cat unwatched)" -gt 0 &&
	test "$(cat unwatched)" -lt $FOLDERS
'

test_expect_success 'a message into every folder: all are committed, also those no watch sees' '
	md=$(replica_maildir 1) &&
	replica_wait_log 1 "in sync with the Maildir" &&
	t0=$(now_s) &&
	replica_run 1 perl -e '"'"'
		my ($md, $n) = @ARGV;
		for my $i (1 .. $n) {
			my $id = sprintf("w%03d", $i);
			my $f = sprintf("%s/.W%03d", $md, $i);
			my $name = sprintf("%d.M%dP1Q1.%s,S=60", 1700000000 + $i, $i, $id);
			open(my $h, ">", "$f/tmp/$name") or die "$f/tmp/$name: $!";
			print $h "From: a\@example.org\nSubject: folder $i\nMessage-ID: <$id.1\@example.org>\n\nmessage $i\n";
			close $h;
			rename("$f/tmp/$name", "$f/new/$name") or die "$f/new/$name: $!";
		}'"'"' "$md" $FOLDERS &&
	# what the watches see comes at once; the rest at the minute check
	watched=$((FOLDERS - $(cat unwatched))) &&
	wait_for "test \$(committed) -ge $watched" 150 &&
	t1=$(now_s) &&
	wait_for "test \$(committed) = $FOLDERS" 150 &&
	t2=$(now_s) &&
	echo "the $watched in watched folders committed $((t1 - t0)) s after they were written, all $FOLDERS after $((t2 - t0)) s" | tee took &&
	test "$(replica_log_count 1 "the inotify watch limit")" = 1 &&
	kill -0 "$(syncd_pid)" &&
	replica_applied 1 &&
	replica_run 1 maildag fsck
'

test_expect_success 'the limit back: the daemon keeps running' '
	restore_limit &&
	test "$(cat "$LIMIT_FILE")" -gt $((3 * FOLDERS)) &&
	replica_stop 1
'

! test -s "$TRASH/took" || sed "s/^/# /" "$TRASH/took"
test_done
