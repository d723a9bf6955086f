#!/bin/sh
test_description='purge: with a retention of seconds, a message expunged with Dovecot is, after maintenance, in no object (pack or loose, inflated) of either replica; maildag forget purges one at once on both; maildag fsck and git fsck know exactly what is purged; merges go on'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"
[ -n "$PYTHON" ] || test_skip_all "no python3 to inflate pack data"
. "$abs_top_srcdir/t/lib-purge.sh"

# purged_ids I: the blob ids replica I's refs/heads/mail lists in purged/
purged_ids() {
	replica_git "$1" ls-tree refs/heads/mail purged/ | awk '{ print $3 }' |
		while read -r b; do replica_git "$1" cat-file blob "$b"; done | sort
}

# missing_in_git_fsck I: the blobs git fsck finds missing, sorted
missing_in_git_fsck() {
	replica_git "$1" fsck --connectivity-only 2>&1 |
		sed -n 's/^missing blob \([0-9a-f]*\)$/\1/p' | sort -u
}

test_expect_success 'setup: two replicas with a retention of 2 s, mail on both' '
	replica_setup purge "$TEST_USER" "$TEST_USER" &&
	for i in 1 2; do replica_config $i --extra "$RETENTION" || return 1; done &&
	replica_start_all &&
	replica_deliver 1 m1 && replica_deliver 2 m2 &&
	deliver_marked 1 p1 "SECRET-P1-$$-xyzzy" &&
	deliver_marked 2 f1 "SECRET-F1-$$-plugh" &&
	wait_converged &&
	replica_expect_messages &&
	! no_bytes 1 "SECRET-P1-$$-xyzzy" >/dev/null &&
	! no_bytes 2 "SECRET-F1-$$-plugh" >/dev/null
'

test_expect_success 'expunged with Dovecot, kept for the retention, then in no object of either replica' '
	replica_expunge 1 p1 &&
	wait_converged &&
	replica_expect_messages &&
	replica_run 1 maildag log --expunged --subject "test message p1" >found &&
	test "$(wc -l <found)" = 1 &&
	maintain_until 1 "test \$(listed 1) = 1" &&
	blob=$(purged_ids 1) &&
	test -n "$blob" &&
	wait_for "test \"\$(purged_ids 2)\" = \"$blob\"" 30 &&
	maintain 2 && maintain 1 &&
	no_bytes 1 "SECRET-P1-$$-xyzzy" &&
	no_bytes 2 "SECRET-P1-$$-xyzzy" &&
	wait_converged &&
	replica_expect_messages
'

test_expect_success 'maildag forget on one replica: gone from both Maildirs and every object at once' '
	replica_run 1 maildag forget "<f1.$$@example.org>" >out 2>&1 &&
	cat out &&
	grep -q "^forgot 1 blobs: 1 messages removed" out &&
	echo f1 >>"$REPLICAS/expunged" &&
	no_bytes 1 "SECRET-F1-$$-plugh" &&
	wait_converged &&
	replica_expect_messages &&
	wait_for "no_bytes 2 \"SECRET-F1-$$-plugh\" >/dev/null" 60 &&
	test "$(purged_ids 1)" = "$(purged_ids 2)" &&
	test "$(purged_ids 1 | wc -l)" = 2
'

test_expect_success 'the forgotten bytes delivered again, or copied back into the Maildir, are not kept' '
	head=$(replica_head 2) &&
	{ test_message f1; echo "SECRET-F1-$$-plugh"; } >f1.eml &&
	replica_run 2 maildag-lda <f1.eml &&
	test "$(replica_head 2)" = "$head" &&
	test -z "$(replica_where 2 f1)" &&
	chmod 644 f1.eml &&
	replica_run 1 cp f1.eml "$(replica_maildir 1)/cur/1700000000.M1P1Q1.back:2,S" &&
	replica_wait_log 1 "a file on disk holds the bytes of a purged message" &&
	wait_for "test -z \"\$(replica_where 1 f1)\"" 30 &&
	wait_converged &&
	replica_expect_messages &&
	maintain 1 &&
	no_bytes 1 "SECRET-F1-$$-plugh" &&
	for i in 1 2; do
		replica_git $i ls-tree -r refs/heads/mail >tree.$i &&
		for b in $(purged_ids 1); do
			! grep -q "$b" tree.$i || return 1
		done
	done
'

test_expect_success 'maildag fsck is clean and counts the purged blobs; git fsck misses exactly them' '
	for i in 1 2; do
		replica_run $i maildag fsck --all-refs >fsck.$i 2>&1 || { cat fsck.$i; return 1; }
		cat fsck.$i &&
		grep -q "2 purged blobs absent, as recorded" fsck.$i &&
		replica_run $i maildag status >status.$i &&
		grep -q "^maintenance: .*, 2 purged blobs recorded" status.$i &&
		replica_run $i maildag status --metrics >metrics.$i &&
		grep -q "^maildag_purged_blobs{.*} 2\$" metrics.$i &&
		purged_ids $i >want.$i &&
		missing_in_git_fsck $i >got.$i &&
		test_cmp want.$i got.$i || return 1
	done
'

test_expect_success 'merges go on: deliveries and flag changes on both converge' '
	replica_deliver 1 m3 && replica_deliver 2 m4 &&
	replica_flag 1 m2 "\\Flagged" && replica_flag 2 m1 "\\Seen" &&
	wait_converged &&
	replica_expect_messages &&
	test "$(replica_where 1 m2)" = "INBOX F" &&
	test "$(replica_where 2 m1)" = "INBOX S"
'

test_expect_success 'log --expunged says what is purged; restore and undo give it no way back' '
	replica_run 2 maildag log --expunged >log.2 &&
	cat log.2 &&
	test "$(grep -c ": purged, its bytes are gone" log.2)" = 2 &&
	head=$(replica_head 2) &&
	test_expect_code 1 replica_run 2 maildag restore --folder INBOX >out 2>err &&
	grep -qx "2 purged messages cannot come back" out &&
	grep -q "nothing to restore" err &&
	change=$(grep "purged, its bytes" log.2 | head -n 1 | awk "{ print \$3 }") &&
	test_expect_code 1 replica_run 2 maildag undo "$change" >out 2>err &&
	grep -qx "1 purged message cannot come back" out &&
	test "$(replica_head 2)" = "$head"
'

test_expect_success 'maildag forget of what is already purged changes nothing' '
	head=$(replica_head 2) &&
	test_expect_code 65 replica_run 2 maildag forget nosuchkey 2>err &&
	grep -q "no message matches" err &&
	test "$(replica_head 2)" = "$head"
'

test_expect_success 'maildag status says per peer whether a forget has reached it' '
	deliver_marked 1 f2 "SECRET-F2-$$-frotz" &&
	wait_converged &&
	replica_expect_messages &&
	p2=$(replica_node 2) &&
	replica_stop 2 &&
	replica_run 1 maildag forget "<f2.$$@example.org>" >out 2>&1 &&
	echo f2 >>"$REPLICAS/expunged" &&
	replica_run 1 maildag status >status.1 &&
	cat status.1 &&
	grep -q "^  purges:   1 of our 3 purged blobs not yet purged by $p2: a forget or purge it has not merged\$" status.1 &&
	replica_run 1 maildag status --json >json.1 &&
	grep -q "\"purged_missing\":1[,}]" json.1 &&
	replica_run 1 maildag status --metrics >metrics.1 &&
	grep -q "^maildag_peer_purges_missing_blobs{.*peer=\"$p2\".*} 1\$" metrics.1 &&
	replica_start 2 &&
	wait_converged &&
	replica_expect_messages &&
	wait_for "replica_run 1 maildag status >status.1 &&
		grep -q \"^  purges:   every one of our 3 purged blobs is purged there too: forgets and purges reached $p2\\\$\" status.1" 30 &&
	replica_run 1 maildag status --metrics >metrics.1 &&
	grep -q "^maildag_peer_purges_missing_blobs{.*peer=\"$p2\".*} 0\$" metrics.1 &&
	wait_for "no_bytes 2 \"SECRET-F2-$$-frotz\" >/dev/null" 60
'

test_expect_success 'passes at once (forget and the daemon, or two maintains) wait for each other, none fails' '
	: >errs &&
	for i in 1 2 3 4 5 6 7 8; do
		{ replica_run 1 maildag maintain >m1.$i 2>&1 || echo "maintain 1 exit $?" >>errs; } &
		{ replica_run 1 maildag maintain >m2.$i 2>&1 || echo "maintain 2 exit $?" >>errs; } &
		wait
		grep -h "error" m1.$i m2.$i >>errs
	done
	cat errs &&
	! test -s errs
'

test_done
