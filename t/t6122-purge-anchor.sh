#!/bin/sh
test_description='purge and transfers that must not look for purged blobs: r1 in the middle takes in r2'"'"'s commits naming a message r1, r3 and r4 purged (r2 flagged it while away) and drops the bytes again; r4, which only r1 pushes to, gets them through a push hiding the purge anchor, and r3, which only fetches from r1 over file://, through maildag'"'"'s own copy; no purged bytes travel'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"
. "$abs_top_srcdir/t/lib-purge.sh"

# config I "J...": replica I's peers are these; r1 never pushes to r3
# (r3 fetches), r4 never fetches from r1 (r1 pushes)
config() {
	replica_config "$1" --peers "$2" --extra "$RETENTION" &&
	f=$(replica_config_file "$1") &&
	case $1 in
	1) sed -i "s|\"r3\": { \"url\": \"\([^\"]*\)\"|\"r3\": { \"url\": \"\\1\", \"push\": false|" "$f";;
	4) sed -i "s|\"r1\": { \"url\": \"\([^\"]*\)\"|\"r1\": { \"url\": \"\\1\", \"fetch\": false|" "$f";;
	esac
}

# peers I "J...": replica I's peers are now these, applied
peers() {
	local before
	before=$(replica_log_count "$1" "configuration reloaded")
	config "$1" "$2" &&
	replica_reload "$1" &&
	replica_wait_log "$1" "configuration reloaded" $((before + 1))
}

test_expect_success 'setup: r1 between r2, r3 and r4 (file://), p1 everywhere; r5 made, not started' '
	replica_setup anchor "$TEST_USER" "$TEST_USER" "$TEST_USER" "$TEST_USER" \
		"$TEST_USER" &&
	config 1 "2 3 4" && config 2 "1" && config 3 "1" && config 4 "1" &&
	config 5 "1" &&
	grep -q "\"push\": false" "$(replica_config_file 1)" &&
	grep -q "\"fetch\": false" "$(replica_config_file 4)" &&
	for i in 1 2 3 4; do replica_start $i || return 1; done &&
	replica_deliver 1 m1 &&
	deliver_marked 1 p1 "ANCHORED-$$-xyzzy" &&
	wait_converged 60 1 2 3 4 &&
	replica_expect_messages 1 2 3 4
'

test_expect_success 'r2 away; p1 expunged on r1, purged on r1, r3 and r4, bytes gone there' '
	replica_stop 2 &&
	peers 1 "3 4" &&
	replica_expunge 1 p1 &&
	wait_converged 60 1 3 4 &&
	maintain_until 1 "test \$(listed 1) = 1" &&
	wait_for "test \$(listed 3) = 1 && test \$(listed 4) = 1" 30 &&
	maintain 1 && maintain 3 && maintain 4 &&
	for i in 1 3 4; do no_bytes $i "ANCHORED-$$-xyzzy" || return 1; done &&
	replica_flag 2 p1 "\\Flagged"
'

test_expect_success 'r2 back with r1 alone: its flag change reaches r1, which drops the bytes again' '
	replica_stop 3 && replica_stop 4 &&
	peers 1 "2" &&
	replica_start 2 &&
	wait_converged 90 1 2 &&
	test -z "$(replica_where 1 p1)" && test -z "$(replica_where 2 p1)" &&
	# r2'"'"'s commit names p1 at its flagged path: the bytes came along
	replica_git 1 log --format=%s refs/heads/mail | grep -q "^mail client: .*moved" &&
	maintain 1 &&
	no_bytes 1 "ANCHORED-$$-xyzzy" &&
	wait_for "no_bytes 2 \"ANCHORED-$$-xyzzy\"" 60
'

test_expect_success 'r4 gets those commits by r1'"'"'s push (the anchor), r3 by its file:// fetch (our own copy); no purged bytes travel' '
	peers 1 "2 3 4" &&
	replica_start 3 && replica_start 4 &&
	wait_converged 90 1 2 3 4 &&
	replica_expect_messages 1 2 3 4 &&
	no_bytes 3 "ANCHORED-$$-xyzzy" &&
	no_bytes 4 "ANCHORED-$$-xyzzy" &&
	! grep -q "cannot read header" "$(replica_log 1)" "$(replica_log 3)" &&
	for i in 1 2 3 4; do
		replica_run $i maildag fsck >fsck.$i 2>&1 || { cat fsck.$i; return 1; }
		grep -q "^1 purged blob absent, as recorded" fsck.$i || return 1
	done
'

test_expect_success 'a new replica seeded from r1 over file:// (its whole history, purged blobs absent): no purged bytes, fsck knows them' '
	replica_start 5 &&
	wait_converged 90 &&
	replica_expect_messages &&
	no_bytes 5 "ANCHORED-$$-xyzzy" &&
	replica_run 5 maildag fsck >fsck.5 2>&1 || { cat fsck.5; return 1; }
	grep -q "^1 purged blob absent, as recorded" fsck.5
'

test_done
