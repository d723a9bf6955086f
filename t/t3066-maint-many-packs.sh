#!/bin/sh
test_description='a repository of hundreds of packs (maintenance that could not run for a while, a burst of fetches) is compacted by the daemon: its maintenance child, forked from a daemon that had read more packs than libgit2 keeps open at once (128), must not close descriptors it reused ("failed to mmap ... Bad file descriptor")'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] || test_skip_all "maildag-syncd is not built"

LOG=$TRASH/syncd.log
packs() { find "$REPO/objects/pack" -name 'pack-*.pack' | wc -l; }

# 300 messages over the 256 shards of cur/, then every object of the
# repository in a pack of its own: the daemon's first look at the tree
# reads a pack per shard, more than libgit2's 128 open at once
test_expect_success 'setup: a repository of one pack per object' '
	mkdir -p "$MAILDIR/cur" "$MAILDIR/new" "$MAILDIR/tmp" &&
	i=0 &&
	while [ $i -lt 300 ]; do
		test_message "m$i" >"$MAILDIR/cur/1700000000.M${i}P1Q1.test,S=200:2,S"
		i=$((i + 1))
	done &&
	chown -R "$TEST_USER:" "$MAILDIR" &&
	as_user maildag init >/dev/null &&
	mgit cat-file --batch-all-objects --batch-check="%(objectname)" >objs &&
	test "$(wc -l <objs)" -gt 600 &&
	old=$(ls "$REPO/objects/pack/") &&
	while read -r o; do
		echo "$o" | as_user git -c safe.directory="*" --git-dir="$REPO" \
			pack-objects -q "$REPO/objects/pack/pack" >/dev/null || return 1
	done <objs &&
	for f in $old; do rm -f "$REPO/objects/pack/$f" || return 1; done &&
	test "$(packs)" -gt 600 &&
	mgit fsck --no-dangling 2>&1
'

test_expect_success 'the daemon compacts it: the maintenance pass succeeds' '
	daemon_start syncd "$LOG" maildag-syncd -v &&
	wait_for "grep -q \"maintenance pass (pid\" \"$LOG\"" 60 &&
	wait_for "test \$(packs) -le 20 || grep -q \"maintenance pass failed\" \"$LOG\"" 300 &&
	! grep -E "maintenance pass failed|Bad file descriptor" "$LOG" &&
	test "$(packs)" -le 20
'

test_expect_success 'and nothing is lost: every message there, fsck clean' '
	daemon_stop syncd &&
	test "$(tree_files | wc -l)" = 300 &&
	mgit fsck --no-dangling &&
	as_user maildag fsck >/dev/null
'

test_done
