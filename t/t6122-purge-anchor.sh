#!/bin/sh
test_description='purge and a push that must not look for purged blobs: r1 in the middle of r2 and r3 takes in r2'"'"'s commits naming a message r1 and r3 purged (r2 flagged it while away), drops the bytes again, and pushes to r3, which lacks those commits; the push hides the purge anchor and sends no purged bytes'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"

RETENTION='"retention": "2s"'

deliver_marked() {
	{ test_message "$2"; echo "$3"; } | replica_run "$1" maildag-lda &&
	echo "$2" >>"$REPLICAS/delivered"
}

# no_bytes I MARKER: no object of replica I holds MARKER (every object
# inflated by git cat-file; t6120 also inflates every zlib stream)
no_bytes() {
	! replica_git "$1" cat-file --batch-all-objects --batch | grep -aq "$2"
}

listed() {
	replica_git "$1" ls-tree -r refs/heads/mail purged/ | awk '{ print $3 }' |
		while read -r b; do replica_git "$1" cat-file blob "$b"; done | wc -l
}

maintain() {
	replica_run "$1" maildag maintain >"$TRASH/maint.$1" 2>&1 || {
		cat "$TRASH/maint.$1" >&2; return 1; }
}

maintain_until() {
	wait_for "maintain $1 && $2" 60
}

# peers I "J...": replica I's peers are now these, applied
peers() {
	local before
	before=$(replica_log_count "$1" "configuration reloaded")
	replica_config "$1" --peers "$2" --extra "$RETENTION" &&
	replica_reload "$1" &&
	replica_wait_log "$1" "configuration reloaded" $((before + 1))
}

test_expect_success 'setup: r1 between r2 and r3 (file://), p1 everywhere' '
	replica_setup anchor "$TEST_USER" "$TEST_USER" "$TEST_USER" &&
	replica_config 1 --peers "2 3" --extra "$RETENTION" &&
	replica_config 2 --peers "1" --extra "$RETENTION" &&
	replica_config 3 --peers "1" --extra "$RETENTION" &&
	replica_start_all &&
	replica_deliver 1 m1 &&
	deliver_marked 1 p1 "ANCHORED-$$-xyzzy" &&
	wait_converged &&
	replica_expect_messages
'

test_expect_success 'r2 away; p1 expunged on r1, purged on r1 and r3, bytes gone there' '
	replica_stop 2 &&
	peers 1 "3" &&
	replica_expunge 1 p1 &&
	wait_converged 60 1 3 &&
	maintain_until 1 "test \$(listed 1) = 1" &&
	wait_for "test \$(listed 3) = 1" 30 &&
	maintain 1 && maintain 3 &&
	no_bytes 1 "ANCHORED-$$-xyzzy" &&
	no_bytes 3 "ANCHORED-$$-xyzzy" &&
	replica_flag 2 p1 "\\Flagged"
'

test_expect_success 'r2 back with r1 alone: its flag change reaches r1, which drops the bytes again' '
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

test_expect_success 'r1 pushes to r3, which lacks those commits: the anchor keeps the purged blob out, and r3 converges' '
	peers 1 "2 3" &&
	wait_converged 90 &&
	replica_expect_messages &&
	no_bytes 3 "ANCHORED-$$-xyzzy" &&
	! grep -q "cannot read header" "$(replica_log 1)" &&
	for i in 1 2 3; do
		replica_run $i maildag fsck >fsck.$i 2>&1 || { cat fsck.$i; return 1; }
		grep -q "^1 purged blob absent, as recorded" fsck.$i || return 1
	done
'

test_done
