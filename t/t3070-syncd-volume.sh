#!/bin/sh
test_description='maildag-syncd under volume: 30,000 folders (folder_limit 10,000), a large apply'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

command -v perl >/dev/null 2>&1 || test_skip_all 'perl is not installed (it makes the Maildir)'

# The sizes of the issue's promise (issue 10: 30,000 folders on disk, of
# which folder_limit, 10,000 with INBOX, are committed and watched); the
# apply is 20,000 messages here and 200,000 in bench/syncd-volume, which
# runs this script at that size and reports the figures printed as '#'
# lines (the slowest status answer, the delivery's time, the longest hold
# of the writer lock): the promises on time are checked there, this
# checks what the daemon does while it works.  (At 200,000 messages the
# apply's VmHWM is over the bound checked here: see BUGS in
# maildag-syncd(8).)
FOLDERS=${T3070_FOLDERS:-30000}
# its watches: not while t3075 lowers the machine's inotify limit
test_lock_machine inotify
MESSAGES=${T3070_MESSAGES:-20000}
LIMIT=10000			# folder_limit's default, INBOX counted
RSS_MAX_KB=65536
IN=$((FOLDERS < LIMIT - 1 ? FOLDERS : LIMIT - 1))	# folders committed
OUT=$((FOLDERS - IN))					# left out
# disk_state lines of the folders left out: .f10000 on, in name order
LEFT_OUT='^\.f(1[0-9]{4}|[2-9][0-9]{4})/'

now_ms() { date +%s%3N; }

# make_folders N: N folders, each with its marker and one message
make_folders() {
	as_user perl -e '
		my ($md, $n) = @ARGV;
		for my $i (1 .. $n) {
			my $f = sprintf("%s/.f%05d", $md, $i);
			mkdir $f or die "$f: $!";
			mkdir "$f/$_" or die "$f/$_: $!" for qw(cur new tmp);
			open(my $m, ">", "$f/maildirfolder") or die "$f: $!";
			close $m;
			my $t = 1700000000 + $i;
			my $name = "$f/cur/$t.M${i}P1.test,S=60:2,S";
			open(my $h, ">", $name) or die "$name: $!";
			print $h "From: a\@example.org\nSubject: folder $i\n\nmessage $i\n";
			close $h;
			utime($t, $t, $name);
		}' "$MAILDIR" "$1"
}

# big_commit N PARENT: a commit on PARENT adding N messages to INBOX's cur/,
# all with the same bytes (one blob), written by git fast-import; its id
# on stdout
big_commit() {
	perl -e '
		my ($n, $parent) = @ARGV;
		sub fnv { my $h = 0x811c9dc5;
			for my $c (unpack("C*", $_[0])) {
				$h ^= $c; $h = ($h * 0x01000193) & 0xffffffff; }
			return $h & 0xff; }
		my $body = "From: peer\@example.org\nSubject: bulk\n\nbulk\n";
		print "blob\nmark :1\ndata ", length($body), "\n$body\n";
		print "commit refs/heads/bulk\ncommitter peer <peer\@example.org> 1700000000 +0000\n";
		print "data 12\nbulk import\nfrom $parent\n";
		for my $i (1 .. $n) {
			my $key = sprintf("%d.M%dP7.bulk", 1600000000 + $i, $i);
			printf "M 100644 :1 cur/%02x/%s:2,S\n", fnv($key), $key;
		}' "$1" "$2" |
	as_user git -c safe.directory="*" --git-dir="$REPO" fast-import --quiet &&
	mgit rev-parse refs/heads/bulk
}

# watch_daemon DONE-CONDITION NAME: while the daemon works (until the
# shell condition holds), ask maildag status every 0.2 s, and after three
# answers deliver one message with maildag-lda.  Records each answer
# given while the daemon was busy (status.ok, its time in status.ms), the
# delivery's exit status (lda.rc), time (lda.ms) and file (lda.file),
# whether it was started while busy (lda.during), and syncd's VmHWM
# (rss.kb) once it is done.  The figures go to $TRASH/figures.NAME, which
# the script prints as '#' lines after the test.
watch_daemon() {
	local t0 t1 delivered= pid start
	pid=$(daemon_pid syncd)
	start=$(now_ms)
	: >status.ms
	: >status.ok
	rm -f lda.ms lda.rc lda.during lda.file
	while ! eval "$1"; do
		t0=$(now_ms)
		if as_user maildag status --json >status.json 2>status.err &&
		   grep -q '"ok":true' status.json; then
			t1=$(now_ms)
			echo $((t1 - t0)) >>status.ms
			echo ok >>status.ok
		else
			cat status.err >&2
		fi
		if [ -z "$delivered" ] && [ "$(wc -l <status.ok)" -ge 3 ]; then
			delivered=1
			echo busy >lda.during
			test_message "during-$2" >during.msg
			t0=$(now_ms)
			as_user maildag-lda -d 60 <during.msg
			echo $? >lda.rc
			t1=$(now_ms)
			echo $((t1 - t0)) >lda.ms
		fi
		sleep 0.2
	done
	grep VmHWM "/proc/$pid/status" | awk "{print \$2}" >rss.kb
	grep -rl "test message during-$2" "$MAILDIR/new" "$MAILDIR/cur" \
		>lda.file 2>/dev/null
	{
		echo "# $2: busy for $(($(now_ms) - start)) ms;" \
			"status answers while busy: $(wc -l <status.ok)," \
			"slowest $(sort -n status.ms | tail -n 1) ms;" \
			"delivery $(cat lda.ms 2>/dev/null) ms," \
			"exit $(cat lda.rc 2>/dev/null); VmHWM $(cat rss.kb) kB"
		echo "# $2: longest writer lock hold so far:" \
			"$(sed -n 's/.*writer lock held \([0-9]*\) ms.*/\1/p' \
			   "$SYNCD_LOG" | sort -n | tail -n 1) ms"
	} >"$TRASH/figures.$2"
}
figures() { cat "$TRASH/figures.$1" 2>/dev/null || :; }

# what the daemon promises while it works (maildag-syncd(8)), checked
# after watch_daemon and syncd_idle: maildag status answered, several
# times; the delivery made meanwhile exited 0 and its message is
# committed; the daemon stayed small
promises_kept() {
	test "$(wc -l <status.ok)" -ge 3 &&
	test "$(cat lda.during)" = busy &&
	test "$(cat lda.rc)" = 0 &&
	test "$(wc -l <lda.file)" = 1 &&
	tree_files | grep -q -F "/$(basename "$(cat lda.file)")" &&
	test "$(cat rss.kb)" -lt $RSS_MAX_KB
}

# every message of refs/heads/mail was added by exactly one commit
added_once() {
	mgit log --no-renames --format= --diff-filter=A --name-only refs/heads/mail |
		grep -E '(^|/)(cur|new)/' | sort | uniq -d >twice &&
	test_cmp /dev/null twice
}

# the daemon's maintenance pass (a child) removes loose objects while
# git fsck reads them: wait until every pass it started has ended (the
# daemon logs both at debug level)
maint_idle() {
	wait_for "[ \$(grep -c 'maintenance pass (.*): pid' \"\$SYNCD_LOG\") -le \
		\$(grep -c 'maintenance pass (pid [0-9]*) ended' \"\$SYNCD_LOG\") ]" 120
}

# packings of loose objects the daemon has started so far
packings() { grep -c 'packing [0-9]* loose objects (pid' "$SYNCD_LOG" || :; }

# the replicated part of the Maildir and refs/heads/mail hold the same
# messages, and git fsck is clean.  A packing can start between
# maint_idle and fsck (the daemon starts one every 10 s while loose
# objects are many) and prune what fsck reads: a failure is looked at
# again only when a packing started during that fsck
consistent() {
	local n=0 before
	while :; do
		before=$(packings)
		maint_idle || return 1
		mgit fsck --strict --no-dangling >fsck.out 2>&1 && break
		if [ "$(packings)" -le "$before" ] || [ $n -ge 5 ]; then
			cat fsck.out
			return 1
		fi
		n=$((n + 1))
	done
	replicated_state >disk.list &&
	tree_state >tree.list &&
	test_cmp disk.list tree.list
}

# the folders left out: on disk with their message, not in the tree,
# counted by maildag status
left_out_kept() {
	test "$(ls -A "$MAILDIR" | grep -c '^\.f')" = $FOLDERS &&
	test "$(disk_state | grep -c -E "$LEFT_OUT")" = $OUT &&
	test "$(mgit ls-tree --name-only refs/heads/mail | grep -c '^\.f')" = $IN &&
	! mgit ls-tree --name-only refs/heads/mail | grep -q -E '^\.f(1[0-9]{4}|[2-9][0-9]{4})$' &&
	as_user maildag status --json >status.json &&
	grep -q "\"folders_left_out\":$OUT" status.json &&
	grep -q "\"folder_limit\":$LIMIT" status.json
}

test_expect_success "setup: $FOLDERS folders" '
	as_user mkdir -p "$MAILDIR/cur" "$MAILDIR/new" "$MAILDIR/tmp" &&
	make_folders $FOLDERS &&
	test "$(ls -A "$MAILDIR" | grep -c "^\.f")" = $FOLDERS
'

test_expect_success "the start rescan of $FOLDERS folders: status answers, a delivery goes through, $IN folders committed" '
	syncd_start &&
	watch_daemon "grep -q \"in sync with the Maildir\" \"\$SYNCD_LOG\"" rescan &&
	syncd_idle &&
	promises_kept &&
	test "$(tree_state | wc -l)" = $((IN + 1)) &&
	left_out_kept &&
	consistent &&
	added_once
'
figures rescan

test_expect_success 'the folders left out are said once in the log, with the limit and their number' '
	grep "folder_limit" "$SYNCD_LOG" >limit.log || :
	if [ $OUT = 0 ]; then
		test_cmp /dev/null limit.log
	else
		test "$(wc -l <limit.log)" = 1 &&
		grep -q "folder_limit ($LIMIT) reached: $OUT folders on disk left out" limit.log
	fi
'

test_expect_success "an apply of $MESSAGES messages: status answers, a delivery goes through" '
	old=$(mail_head) &&
	new=$(big_commit $MESSAGES "$old") &&
	as_user maildag merge -u -q "$old" "$new" >/dev/null &&
	watch_daemon "test \"\$(worktree_head)\" = \"\$(mail_head)\" &&
		test \$(find \"\$MAILDIR/cur\" -type f | wc -l) -ge $MESSAGES" apply &&
	syncd_idle &&
	promises_kept &&
	test "$(find "$MAILDIR/cur" -name "*.bulk:2,S" | wc -l)" = $MESSAGES &&
	test "$(tree_state | wc -l)" = $((IN + MESSAGES + 2)) &&
	left_out_kept &&
	consistent &&
	added_once
'
figures apply

# bench/syncd-volume reads the daemon's log
test_expect_success 'the log, for bench/syncd-volume' '
	if [ -n "${T3070_KEEP_LOG:-}" ]; then cp "$SYNCD_LOG" "$T3070_KEEP_LOG"; fi
'

test_done
