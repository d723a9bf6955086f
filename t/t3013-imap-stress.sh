#!/bin/sh
test_description='format 2 under load: two replicas, each with maildag-syncd and a real Dovecot, several IMAP clients on each at once (APPEND, STORE of system flags and 26 keyword names, EXPUNGE, MOVE, COPY, CREATE, RENAME) and maildag-lda deliveries on both, a recorder looking at both throughout: no UID names two messages, nothing lost or duplicated, equal mailboxes, Dovecot logs clean'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
[ -n "$PYTHON" ] || test_skip_all "no python3"
. "$abs_top_srcdir/t/lib-replica.sh"

. "$abs_top_srcdir/t/lib-imap.sh"

# The load is random but seeded: STRESS_SEED=<n> replays a failing run's
# choices (the interleaving of the clients is the machine's).  A client
# renames only a folder no other session of its Dovecot is in, as mail
# clients do (Dovecot alone logs errors otherwise: lib-imap-stress.py,
# SHARED); STRESS_SHARED_FOLDERS=1 shows that race, STRESS_SAVES=anywhere
# and STRESS_KEYWORDS=32 the limits of doc/imap-identity.md 4.8 (1), (3).
STRESS_SEED=${STRESS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
STRESS_CLIENTS=${STRESS_CLIENTS:-3}
STRESS_OPS=${STRESS_OPS:-40}
STRESS_DELIVERIES=${STRESS_DELIVERIES:-8}
echo "# STRESS_SEED=$STRESS_SEED (clients $STRESS_CLIENTS per replica, $STRESS_OPS operations each, $STRESS_DELIVERIES deliveries per replica)"

S=$TRASH/stress
stress() {
	as_user "$PYTHON" "$abs_top_srcdir/t/lib-imap-stress.py" "$@"
}

# snapshots_agree: both replicas show the same folders and messages to a
# fresh client (retried while replication runs)
snapshots_agree() {
	local n=0
	while [ $n -lt 120 ]; do
		stress snapshot "$S" 1 >"$S/snapshot.1" 2>/dev/null &&
		stress snapshot "$S" 2 >"$S/snapshot.2" 2>/dev/null &&
		cmp -s "$S/snapshot.1" "$S/snapshot.2" && return 0
		n=$((n + 1))
		sleep 0.5
	done
	diff "$S/snapshot.1" "$S/snapshot.2" >&2
	return 1
}

test_expect_success 'setup: r1 format 2, r2 starts from its history, the failover settings' '
	replica_setup imap $TEST_USER $TEST_USER &&
	replica_config 1 --extra "\"uid_slot\": 0" &&
	replica_config 2 --extra "\"uid_slot\": 1" &&
	rm -rf "$(replica_repo 1)" "$(replica_repo 2)" &&
	replica_run 1 maildag init --format 2 >/dev/null &&
	replica_run 2 maildag init --format 2 >/dev/null &&
	replica_ugit 2 fetch -q "$(replica_repo 1)" +refs/heads/mail:refs/heads/mail &&
	replica_ugit 2 update-ref -d refs/maildag/worktree &&
	rm -f "$(replica_maildir 2)/dovecot-uidlist" &&
	if [ "${STRESS_INDEX:-}" != disk ]; then
		imap_failover_conf 1 && imap_failover_conf 2
	fi &&
	mkdir -p "$S" && chmod 777 "$S" &&
	for i in 1 2; do
		echo "$i $(replica_home $i) $TRASH/imap/dovecot-r$i/dovecot.conf" || return 1
	done >"$S/replicas" &&
	echo "$DOVECOT_IMAP" >"$S/imap" &&
	echo "$BIN/maildag-lda" >"$S/lda" &&
	replica_start 1 && replica_start 2 &&
	replica_imap 1 "CREATE Archive" "CREATE Lists" "CREATE Work" >/dev/null &&
	replica_deliver 1 first &&
	wait_converged 60 &&
	snapshots_agree &&
	grep -q "^folder Work " "$S/snapshot.2"
'

# Found by the stress test: a message APPENDed and expunged before
# maildag-syncd committed it left no file, so the folder's uidnext in
# the tree stayed below the UID Dovecot had given it, and the other
# replica's Dovecot gave that UID again to another message.
test_expect_success 'an APPEND expunged before it was committed: its UID is burnt on both' '
	replica_stop 1 &&
	msg=$(printf "Message-ID: <gone.1@example.org>\r\nSubject: g\r\n\r\nbody\r\n") &&
	replica_imap 1 "APPEND Work {$(printf "%s" "$msg" | wc -c)+}
$msg" "SELECT Work" "UID STORE 1 +FLAGS.SILENT (\\Deleted)" "UID EXPUNGE 1" >out &&
	grep -q "APPENDUID [0-9]* 1\]" out &&
	replica_start 1 &&
	wait_for "replica_git 1 show refs/heads/mail:.Work/imapfolder | grep -qx \"uidnext 2\"" 30 &&
	wait_converged 60 &&
	snapshots_agree &&
	grep -x "folder Work uidvalidity [0-9]* uidnext 2" "$S/snapshot.2"
'

test_expect_success 'several clients on each replica at once, deliveries on both, the recorder looking' '
	stress run "$S" "$STRESS_SEED" "$STRESS_CLIENTS" "$STRESS_OPS" "$STRESS_DELIVERIES" &&
	cat "$S"/ops.* | wc -l
'

test_expect_success 'the replicas converge; the recorder looks once more' '
	wait_converged 120 &&
	snapshots_agree &&
	stress record "$S" &&
	wait_converged 60 &&
	snapshots_agree
'

test_expect_success 'no UID named two messages; per message the same folder, UID, flags, keywords and date on both; nothing lost or duplicated' '
	stress snapshot "$S" 1 >"$S/snapshot.1" &&
	stress snapshot "$S" 2 >"$S/snapshot.2" &&
	stress check "$S" >"$S/check.out" || { cat "$S/check.out"; false; }
'
# what the load did and what the check told apart, for the log
[ -f "$S/check.out" ] && grep -v "^only\|^UID [0-9]\|^known\|copies, expected" "$S/check.out" | sed 's/^/# /'

test_expect_success 'Dovecot logs clean, repositories valid' '
	dovecot_logs_clean &&
	! grep -iE "error|warning|panic|fatal|broken|corrupt|reappeared|UIDVALIDITY changed|inconsistent" "$S/imap.stderr" &&
	replica_fsck 1 && replica_fsck 2
'

test_done
