#!/bin/sh
test_description='a new replica seeded over ssh, through maildag serve, from a repository with purged blobs: upload-pack skips them (the pack-objects hook), the new replica takes the history (the purged/ records say why they are absent) and holds no purged bytes'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
test_have_prereq ROOT || test_skip_all "needs root (users of their own, an sshd)"
[ -e "$abs_top_srcdir/t/lib-sshd.sh" ] || test_skip_all "no t/lib-sshd.sh"
. "$abs_top_srcdir/t/lib-sshd.sh"
sshd_start || test_skip_all "the test sshd does not start"
. "$abs_top_srcdir/t/lib-replica.sh"
. "$abs_top_srcdir/t/lib-purge.sh"

U1=maildagps1 U2=maildagps2

test_expect_success 'setup: r1 gets p1 and p2, expunges and purges p1; r2 is not started' '
	replica_setup seed $U1 $U2 &&
	# r1 knows r2 (its serve takes r2'"'"'s key) but neither pushes to it
	# nor fetches from it: r2 is seeded by its own fetch
	replica_config 1 --extra "$RETENTION" \
		--peer-extra "\"push\": false, \"fetch\": false" &&
	replica_config 2 --extra "$RETENTION" &&
	grep -q "\"r1\": { \"url\": \"ssh://" "$(replica_config_file 2)" &&
	serve_keys &&
	replica_start 1 &&
	deliver_marked 1 p1 "SEEDED-$$-xyzzy" &&
	replica_deliver 1 p2 &&
	replica_flag 1 p1 "\\Seen" &&
	replica_expunge 1 p1 &&
	wait_for "replica_applied 1 && ! replica_where 1 p1 | grep -q ." &&
	wait_for "maintain 1 && test \$(listed 1) = 1" 60 &&
	maintain 1 &&
	no_bytes 1 "SEEDED-$$-xyzzy"
'

test_expect_success 'r2, new, fetches r1 over ssh through serve: the whole history without the purged bytes' '
	replica_start 2 &&
	wait_converged 90 &&
	replica_expect_messages &&
	test "$(listed 2)" = 1 &&
	no_bytes 2 "SEEDED-$$-xyzzy" &&
	replica_run 2 maildag fsck >fsck.2 2>&1 || { cat fsck.2; return 1; }
	cat fsck.2 &&
	grep -q "^1 purged blob absent, as recorded" fsck.2 &&
	# r1 now has r2 as a peer too: mail from r2 arrives
	replica_config 1 --extra "$RETENTION" &&
	replica_reload 1 &&
	replica_deliver 2 m2 &&
	wait_converged &&
	replica_expect_messages
'

test_done
