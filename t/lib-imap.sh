# lib-imap.sh: what the format 2 replica tests (t3006, t3009) ask of the
# two replicas' Dovecots: a client's view of a folder, waiting for the
# two views to agree, and clean Dovecot logs.  Sourced after
# lib-replica.sh, with the replicas set up as "imap".
KEYWORDS='$Forwarded $Junk NonJunk work-project $MDNSent Todo later project-x Invoice2026 $label1'

# view I: what an IMAP client caches of replica I's INBOX: UIDVALIDITY,
# UIDNEXT, then per message "<id> <uid> <flags, sorted>" sorted by id
# (view I FOLDER: that folder's)
view() {
	replica_imap "$1" "SELECT ${2:-INBOX}" \
		'UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])' |
	"$PYTHON" -c 'import re, sys
text = sys.stdin.read()
for k in ("UIDVALIDITY", "UIDNEXT"):
    m = re.search(r"\[" + k + r" (\d+)\]", text)
    print(k, m.group(1) if m else "?")
rows = []
for m in re.finditer(r"\* \d+ FETCH \((.*?)\{\d+\}\r?\n(.*?)\r?\n", text, re.S):
    head, body = m.group(1), m.group(2)
    uid = re.search(r"UID (\d+)", head).group(1)
    flags = re.search(r"FLAGS \(([^)]*)\)", head).group(1).split()
    flags = sorted(f for f in flags if f != "\\Recent")
    mid = re.search(r"<([^.@>]*)", body)
    rows.append((mid.group(1) if mid else "?", uid, " ".join(flags)))
for r in sorted(rows):
    print(*r)'
}

# views_agree IDS...: both replicas show every ID, with the same UIDs,
# UIDVALIDITY, UIDNEXT and flags (retried while replication runs), in
# INBOX or in $FOLDER
views_agree() {
	local n=0 id all
	while [ $n -lt 120 ]; do
		if view 1 ${FOLDER:-} >view.1 2>/dev/null &&
		   view 2 ${FOLDER:-} >view.2 2>/dev/null &&
		   cmp -s view.1 view.2; then
			all=1
			for id in "$@"; do
				grep -q "^$id " view.1 || all=
			done
			[ -n "$all" ] && return 0
		fi
		n=$((n + 1))
		sleep 0.5
	done
	echo "the two views differ:" >&2
	diff view.1 view.2 >&2
	for i in 1 2; do
		echo "--- replica $i log tail" >&2
		tail -20 "$(replica_log $i)" >&2
	done
	return 1
}

dovecot_logs_clean() {
	! grep -hiE 'error|warning|panic|fatal|broken|corrupt|reappeared|UIDVALIDITY changed' \
		"$TRASH/imap/dovecot-r1/dovecot.log" "$TRASH/imap/dovecot-r2/dovecot.log"
}

# The Dovecot settings of maildag-syncd(8)'s "Failing over" (see
# doc/failover.md): Dovecot 2.3.19's capabilities without CONDSTORE and
# QRESYNC, and its indexes in memory, so that no client holds a modseq
# of one replica to use on another (SELECT answers NOMODSEQ, FETCH
# CHANGEDSINCE is refused)
IMAP_FAILOVER_CAPABILITY='IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY'

# imap_failover_conf I: replica I's Dovecot takes those settings (its
# next session does)
imap_failover_conf() {
	local c
	c=$TRASH/$(replica_set)/dovecot-r$1/dovecot.conf
	grep -v -e '^mail_location' -e '^imap_capability' "$c" >"$c.new" &&
	printf 'mail_location = maildir:~/Maildir:INDEX=MEMORY\nimap_capability = %s\n' \
		"$IMAP_FAILOVER_CAPABILITY" >>"$c.new" &&
	chmod 644 "$c.new" &&
	mv -f "$c.new" "$c"
}

# imap_format2_pair: replicas 1 and 2 (after replica_setup) in format 2,
# UID slots 0 and 1, r2's repository starting from r1's history with
# nothing of it on disk yet (no worktree, no Dovecot files); not started
imap_format2_pair() {
	replica_config 1 --extra "\"uid_slot\": 0" &&
	replica_config 2 --extra "\"uid_slot\": 1" &&
	rm -rf "$(replica_repo 1)" "$(replica_repo 2)" &&
	replica_run 1 maildag init --format 2 >/dev/null &&
	replica_run 2 maildag init --format 2 >/dev/null &&
	replica_ugit 2 fetch -q "$(replica_repo 1)" +refs/heads/mail:refs/heads/mail &&
	replica_ugit 2 update-ref -d refs/maildag/worktree &&
	rm -f "$(replica_maildir 2)/dovecot-uidlist"
}
