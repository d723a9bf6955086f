#!/bin/sh
test_description='maildag-syncd under 20,000 inotify events at once, and a queue overflow'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

command -v perl >/dev/null 2>&1 || test_skip_all 'perl is not installed (it renames in bulk)'

N=20000

# flags_all FLAGS: rename every message in cur/ to carry exactly FLAGS,
# as fast as a mail client's mass "mark all read" would
flags_all() {
	as_user perl -e '
		my ($dir, $flags) = @ARGV;
		opendir(my $d, $dir) or die "$dir: $!";
		for my $f (readdir $d) {
			next if $f =~ /^\./;
			(my $n = $f) =~ s/:2,.*$//;
			rename("$dir/$f", "$dir/$n:2,$flags") or die "$f: $!";
		}' "$MAILDIR/cur" "$1"
}

# all_flags_are FLAGS REF: every message of REF carries FLAGS
all_flags_are() {
	tree_state "$2" >state &&
	test "$(wc -l <state)" = $N &&
	test "$(grep -c ":2,$1\$" state)" = $N
}

test_expect_success "setup: $N messages imported" '
	as_user mkdir -p "$MAILDIR/cur" "$MAILDIR/new" "$MAILDIR/tmp" &&
	as_user perl -e '\''
		my ($dir, $n) = @ARGV;
		for my $i (1 .. $n) {
			my $t = 1700000000 + $i;
			my $name = "$dir/$t.M${i}P1.test,S=60:2,";
			open(my $f, ">", $name) or die "$name: $!";
			print $f "From: a\@example.org\nSubject: mass $i\n\nmessage $i\n";
			close $f;
			utime($t, $t, $name);
		}'\'' "$MAILDIR/cur" $N &&
	syncd_start &&
	syncd_idle &&
	test "$(tree_state | wc -l)" = $N &&
	! mgit ls-tree -r --name-only refs/heads/mail mtimes/ | grep -q .
'

test_expect_success "$N renames at once (a mass flag change) commit correctly" '
	old=$(mail_head) &&
	flags_all S &&
	wait_for "[ \"\$(mail_head)\" != $old ]" &&
	syncd_idle &&
	all_flags_are S refs/heads/mail &&
	all_flags_are S refs/maildag/worktree &&
	test "$(disk_state)" = "$(tree_state)" &&
	mgit diff --no-renames --name-status "$old" refs/heads/mail >diff &&
	test "$(grep -c "^D" diff)" = $N &&
	test "$(grep -c "^A" diff)" = $N &&
	! grep -v "cur/" diff &&
	grep "committed" "$SYNCD_LOG" | tail -n 3
'

test_expect_success ROOT 'a forced inotify queue overflow ends in a rescan with the right result' '
	q=/proc/sys/fs/inotify/max_queued_events &&
	saved=$(cat $q) &&
	syncd_stop &&
	echo 64 >$q &&
	{ syncd_start; r=$?; echo "$saved" >$q; test $r = 0; } &&
	test "$(cat $q)" = "$saved" &&
	syncd_idle &&
	old=$(mail_head) &&
	# the daemon is stopped while the renames happen: the 64-event
	# queue overflows whatever the scheduling
	kill -STOP "$(daemon_pid syncd)" &&
	flags_all FS &&
	kill -CONT "$(daemon_pid syncd)" &&
	wait_for "grep -q \"queue overflow: rescanning\" \"\$SYNCD_LOG\"" &&
	wait_for "[ \"\$(mail_head)\" != $old ]" &&
	syncd_idle &&
	all_flags_are FS refs/heads/mail &&
	test "$(disk_state)" = "$(tree_state)" &&
	test "$(mgit diff --no-renames --name-status "$old" refs/heads/mail | grep -c "^A")" = $N
'

test_expect_success 'and new events are seen after the overflow' '
	old=$(mail_head) &&
	f=$(ls "$MAILDIR/cur" | head -n 1) &&
	as_user mv "$MAILDIR/cur/$f" "$MAILDIR/cur/${f%:2,*}:2,S" &&
	new=$(mail_moved_from "$old") &&
	test "$(mgit diff --no-renames --name-status "$old" "$new" | wc -l)" = 2
'

test_done
