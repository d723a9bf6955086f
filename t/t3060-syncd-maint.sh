#!/bin/sh
test_description='maildag-syncd runs a maintenance pass when loose objects pile up, and removes what killed transfers left'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

loose_count() {
	find "$REPO/objects" -path '*/objects/[0-9a-f][0-9a-f]/*' -type f | wc -l
}

test_expect_success 'setup: a Maildir of 2100 messages imported, then unpacked loose' '
	mkdir -p "$MAILDIR/cur" "$MAILDIR/new" "$MAILDIR/tmp" &&
	i=0 &&
	while [ $i -lt 2100 ]; do
		test_message "m$i" >"$MAILDIR/cur/1700000000.M${i}P1Q1.test,S=200:2,S"
		i=$((i + 1))
	done &&
	chown -R "$TEST_USER:" "$MAILDIR" &&
	as_user maildag init &&
	# maildag init packs; loose again, as 2100 deliveries would leave them
	mkdir "$TRASH/packs" &&
	mv "$REPO"/objects/pack/* "$TRASH/packs/" &&
	for p in "$TRASH"/packs/pack-*.pack; do
		as_user git --git-dir="$REPO" unpack-objects -q <"$p" || return 1
	done &&
	test "$(loose_count)" -gt 2000 &&
	test "$(find "$REPO/objects/pack" -name "*.pack" | wc -l)" = 0
'

test_expect_success 'the daemon packs them and removes the loose copies' '
	# what killed transfers leave: old ones go, a fresh one (live) stays
	mkdir -p "$REPO/objects/pack" "$REPO/objects/ab" &&
	for f in pack/pack_git2_AbCdEf pack/tmp_pack_XyZ ab/tmp_obj_Q tmp_object_git2_R; do
		echo partial >"$REPO/objects/$f" &&
		touch -d "-2 hours" "$REPO/objects/$f" || return 1
	done &&
	echo live >"$REPO/objects/pack/pack_git2_live" &&
	chown -R "$TEST_USER:" "$REPO/objects" &&
	syncd_start &&
	wait_for "grep -q \"maintenance: [0-9]* packs before\" \"\$SYNCD_LOG\"" 120 &&
	syncd_idle &&
	# what the first sync commits may come after the packing (its
	# mtimes/ records: a few hundred objects), the 2100 messages not
	test "$(loose_count)" -lt 1000 &&
	test "$(find "$REPO/objects/pack" -name "*.pack" | wc -l)" -le 3 &&
	grep "removed 4 temporary object files" "$SYNCD_LOG" &&
	test -z "$(find "$REPO/objects" -name "*_git2_*" ! -name pack_git2_live)" &&
	! test -e "$REPO/objects/pack/tmp_pack_XyZ" &&
	! test -e "$REPO/objects/ab/tmp_obj_Q" &&
	test -e "$REPO/objects/pack/pack_git2_live"
'

test_expect_success 'nothing was lost: every object of the history is there' '
	mgit fsck --strict --no-dangling &&
	mgit ls-tree -r refs/heads/mail | awk "{print \$3}" |
		mgit cat-file --batch-check >objects &&
	! grep missing objects &&
	test "$(grep -c " blob " objects)" -ge 2100 &&
	test "$(tree_files | wc -l)" = 2100
'

test_expect_success 'deliveries and the daemon go on after packing' '
	test_message after | as_user maildag-lda &&
	syncd_idle &&
	test "$(tree_files | wc -l)" = 2101 &&
	test_repo_consistent
'

test_done
