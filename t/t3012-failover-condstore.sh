#!/bin/sh
test_description='format 2: a CONDSTORE/QRESYNC client that took HIGHESTMODSEQ on replica r1 and reconnects to r2 with CHANGEDSINCE or QRESYNC learns every change made since on either replica, or is made to resynchronise.  With Dovecot'"'"'s defaults each replica counts modseqs on its own and r2 silently leaves changes out (the check below sees it); with the settings of maildag-syncd(8) ("Failing over": indexes in memory, no CONDSTORE or QRESYNC advertised) r2 answers NOMODSEQ and refuses CHANGEDSINCE, and the full fetch the client falls back to shows everything'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"

. "$abs_top_srcdir/t/lib-imap.sh"

# modseq_of I: the HIGHESTMODSEQ a CONDSTORE client is given by replica
# I's INBOX, or NOMODSEQ
modseq_of() {
	replica_imap "$1" "SELECT INBOX (CONDSTORE)" |
		sed -n 's/.*\[HIGHESTMODSEQ \([0-9]*\)\].*/\1/p; s/.*\[\(NOMODSEQ\)\].*/\1/p'
}

# since I N [qresync]: what a client holding modseq N asks replica I:
# SELECT INBOX (CONDSTORE) and UID FETCH 1:* (FLAGS) (CHANGEDSINCE N),
# or (qresync) ENABLE QRESYNC and SELECT INBOX (QRESYNC (<uidvalidity>
# N)).  Prints "NOMODSEQ" when the SELECT said so, "REFUSED" when the
# FETCH was not OK, and "<uid> <flags, sorted>" per message reported.
since() {
	local v
	v=$(sed -n 's/^UIDVALIDITY //p' cache)
	if [ "${3:-}" = qresync ]; then
		replica_imap "$1" "ENABLE QRESYNC" "SELECT INBOX (QRESYNC ($v $2))"
	else
		replica_imap "$1" "SELECT INBOX (CONDSTORE)" \
			"UID FETCH 1:* (FLAGS) (CHANGEDSINCE $2)"
	fi >since.raw 2>&1
	"$PYTHON" -c 'import re, sys
text = open("since.raw").read()
if "[NOMODSEQ]" in text:
    print("NOMODSEQ")
if re.search(r"^a2 (NO|BAD)", text, re.M):
    print("REFUSED")
for m in re.finditer(r"^\* \d+ FETCH \((.*)\)$", text, re.M):
    uid = re.search(r"UID (\d+)", m.group(1)).group(1)
    flags = re.search(r"FLAGS \(([^)]*)\)", m.group(1)).group(1).split()
    print(uid, " ".join(sorted(f for f in flags if f != "\\Recent")))'
}

# learns I N [qresync]: the client whose cache of r1's INBOX is in the
# file cache (a view) and who holds modseq N learns from replica I every
# message whose flags changed since (each reported with its flags now),
# or is told to resynchronise (NOMODSEQ, and CHANGEDSINCE refused); what
# it would miss is printed
learns() {
	view "$1" >now &&
	since "$@" >reported &&
	cat reported &&
	if grep -q "^NOMODSEQ$" reported &&
	   { [ "${3:-}" = qresync ] || grep -q "^REFUSED$" reported; }; then
		# told to resynchronise: no message reported as if the rest
		# were unchanged
		! grep -q "^[0-9]" reported || return 1
		echo "told to resynchronise"
		return 0
	fi
	"$PYTHON" -c 'import sys
def rows(f):
    return {l.split()[0]: l.split(None, 2)[1:] for l in open(f)
            if l.split() and l.split()[0] not in ("UIDVALIDITY", "UIDNEXT")}
old, now = rows("cache"), rows("now")
got = {}
for l in open("reported"):
    p = l.split(None, 1)
    if p and p[0].isdigit():
        got[p[0]] = p[1].strip() if len(p) > 1 else ""
missed = 0
for mid, r in sorted(now.items()):
    uid, flags = r[0], (r[1].strip() if len(r) > 1 else "")
    before = old.get(mid)
    if before is not None and before[0] == uid and \
       (before[1].strip() if len(before) > 1 else "") == flags:
        continue
    if got.get(uid) != flags:
        print("missed: %s UID %s now (%s), reported %r" % (mid, uid, flags, got.get(uid)))
        missed += 1
sys.exit(1 if missed else 0)'
}

# what maildag-syncd says at start when Dovecot's settings are Debian's
UNSAFE="dovecot keeps its indexes on disk and advertises CONDSTORE: a CONDSTORE or QRESYNC client moved between replicas can miss changes"
SAFE="settings make CONDSTORE clients resynchronise"

test_expect_success 'setup: two format 2 replicas, three messages, CONDSTORE clients on both' '
	replica_setup imap $TEST_USER $TEST_USER &&
	for i in 1 2; do
		replica_config $i --extra "\"uid_slot\": $((i - 1)), \"dovecot_config\": \"$TRASH/imap/dovecot-r$i/dovecot.conf\"" ||
			return 1
	done &&
	rm -rf "$(replica_repo 1)" "$(replica_repo 2)" &&
	replica_run 1 maildag init --format 2 >/dev/null &&
	replica_run 2 maildag init --format 2 >/dev/null &&
	replica_ugit 2 fetch -q "$(replica_repo 1)" +refs/heads/mail:refs/heads/mail &&
	replica_ugit 2 update-ref -d refs/maildag/worktree &&
	rm -f "$(replica_maildir 2)/dovecot-uidlist" &&
	replica_start 1 && replica_start 2 &&
	replica_deliver 1 m1 && replica_deliver 1 m2 && replica_deliver 1 m3 &&
	views_agree m1 m2 m3 &&
	# both Dovecots keep modseqs per message from now on, as they do
	# once any CONDSTORE client has opened the folder
	test -n "$(modseq_of 1)" && test -n "$(modseq_of 2)" &&
	# maildag-syncd asked doveconf, and says what that means
	replica_wait_log 1 "$UNSAFE" && replica_wait_log 2 "$UNSAFE"
'

test_expect_success 'Dovecot'"'"'s defaults: a modseq of r1 used on r2 misses changes (why the settings are needed)' '
	# apart: r2 changes m1, r1 changes m2 and m3, then the client
	# takes r1'"'"'s HIGHESTMODSEQ and its flags
	replica_stop 2 &&
	replica_flag 2 m1 "\\Flagged" &&
	for k in one two three four; do
		replica_flag 1 m2 "k-$k" && replica_unflag 1 m2 "k-$k" || return 1
	done &&
	replica_flag 1 m2 "\\Seen" && replica_flag 1 m3 "\\Answered later" &&
	n=$(modseq_of 1) &&
	echo "r1 HIGHESTMODSEQ $n" &&
	test "$n" -gt 0 &&
	echo "$n" >n.1 &&
	view 1 >cache &&
	# together again, and one change more on each side
	replica_start 2 &&
	replica_flag 1 m3 "\\Seen" &&
	replica_flag 2 m2 "work-project" &&
	views_agree m1 m2 m3 &&
	cat view.2 &&
	! learns 2 "$n" >learns.out &&
	cat learns.out &&
	grep "^missed: m1 " learns.out &&
	! learns 2 "$n" qresync >learns.out &&
	cat learns.out &&
	grep "^missed: m1 " learns.out
'

test_expect_success 'failover settings: no CONDSTORE or QRESYNC advertised, NOMODSEQ on both' '
	imap_failover_conf 1 && imap_failover_conf 2 &&
	for i in 1 2; do
		replica_imap $i CAPABILITY >cap.$i &&
		grep "^\* CAPABILITY IMAP4rev1 " cap.$i &&
		! grep -E "CONDSTORE|QRESYNC" cap.$i &&
		test "$(modseq_of $i)" = NOMODSEQ || return 1
	done
'

test_expect_success 'failover settings: a client holding r1'"'"'s modseq is made to resynchronise on r2, and the resync shows every change' '
	n=$(cat n.1) &&
	view 1 >cache &&
	replica_stop 2 &&
	replica_unflag 2 m1 "\\Flagged" &&
	replica_flag 2 m3 "\$Junk" &&
	replica_flag 1 m2 "\\Flagged" &&
	replica_unflag 1 m3 "later" &&
	# r1 gives the client no modseq to carry over
	test "$(modseq_of 1)" = NOMODSEQ &&
	warned=$(replica_log_count 2 "$UNSAFE") &&
	replica_start 2 &&
	replica_wait_log 2 "$SAFE" &&
	test "$(replica_log_count 2 "$UNSAFE")" = "$warned" &&
	replica_flag 1 m1 "\\Seen" &&
	replica_flag 2 m2 "\$Forwarded" &&
	views_agree m1 m2 m3 &&
	learns 2 "$n" >learns.out &&
	cat learns.out &&
	grep "^REFUSED$" learns.out &&
	learns 2 "$n" qresync >learns.out &&
	cat learns.out &&
	grep "^told to resynchronise$" learns.out &&
	# a client that enables both although not advertised is told too
	replica_imap 2 "ENABLE CONDSTORE QRESYNC" \
		"SELECT INBOX (QRESYNC ($(sed -n "s/^UIDVALIDITY //p" cache) $n))" >raw &&
	grep "\[NOMODSEQ\]" raw &&
	! grep -E "^\* [0-9]+ FETCH|VANISHED" raw &&
	# what the client does instead: fetch every flag; it finds all
	# four changes, as r1 shows them
	view 2 >resync &&
	view 1 >r1 &&
	test_cmp r1 resync &&
	grep "^m1 [0-9]* \\\\Seen$" resync &&
	grep "^m2 [0-9]* \$Forwarded \\\\Flagged \\\\Seen work-project$" resync &&
	grep "^m3 [0-9]* \$Junk \\\\Answered \\\\Seen$" resync
'

test_expect_success 'Dovecot logs clean' '
	dovecot_logs_clean
'

test_done
