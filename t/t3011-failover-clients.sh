#!/bin/sh
test_description='format 2: real IMAP clients fail over.  mbsync and offlineimap3 sync a local Maildir from replica r1 (its Dovecot through a pre-auth tunnel), are then pointed at r2: the next run downloads nothing again, keeps every local file (same inode), reports no UIDVALIDITY change, and carries what was changed on r2 (flags, keywords, a new message, an expunge) and what the client changed, both ways; moved to a replica that is behind, the clients drop what it lacks, and only offlineimap3 takes it again'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
command -v mbsync >/dev/null && command -v offlineimap >/dev/null ||
	test_skip_all "mbsync (isync) or offlineimap (offlineimap3) is not installed"
. "$abs_top_srcdir/t/lib-replica.sh"

. "$abs_top_srcdir/t/lib-imap.sh"

# FAILOVER_FORMAT=1 runs the same script on format 1 replicas, where
# each Dovecot numbers the mail its own way: the checks below must fail
# there (doc/failover-progress.md shows how).
FORMAT=${FAILOVER_FORMAT:-2}

# The client's side: its own home, as the test user.  $TRASH/server is
# the "DNS name" both clients use: a link to the tunnel of r1 or r2.
CLIENT=$TRASH/client

# tunnel I: $TRASH/tunnel-rI runs replica I's Dovecot imap pre-auth on
# stdin and stdout, what mbsync's Tunnel and offlineimap's preauthtunnel
# expect of "ssh mx imapd"
tunnel() {
	cat >"$TRASH/tunnel-r$1" <<-EOF &&
	#!/bin/sh
	exec env HOME='$(replica_home "$1")' USER='$TEST_USER' TZ=UTC '$DOVECOT_IMAP' \\
		-c '$TRASH/imap/dovecot-r$1/dovecot.conf' \\
		2>>'$TRASH/tunnel-r$1.stderr'
	EOF
	chmod 755 "$TRASH/tunnel-r$1" &&
	: >"$TRASH/tunnel-r$1.stderr" && chmod 666 "$TRASH/tunnel-r$1.stderr"
}

# point I: the clients' server is now replica I
point() { ln -sfn "tunnel-r$1" "$TRASH/server"; }

client() { as_user -h "$CLIENT" "$@"; }

# files DIR: "<folder> <name up to the flags> <inode> <flags>" of every
# message file under the client's Maildir DIR: a message downloaded
# again is a new name and a new inode, a flag change keeps both
files() {
	(cd "$1" && find . -path '*/tmp' -prune -o \
		\( -path '*/cur/*' -o -path '*/new/*' \) -type f -printf '%i %p\n') |
	awk '{ n = split($2, p, "/"); name = p[n]; folder = p[2]
		if (n == 3) folder = "INBOX"
		fl = "-"
		if ((k = index(name, ":2,")) > 0) {
			if (k + 3 <= length(name)) fl = substr(name, k + 3)
			name = substr(name, 1, k - 1)
		}
		print folder, name, $1, fl }' | sort
}

# agree IDS...: both replicas show Archive and INBOX (with IDS) alike,
# INBOX's views left in view.1 and view.2 (format 1: the same Maildirs,
# as its replicas can promise no more)
agree() {
	if [ "$FORMAT" = 2 ]; then
		FOLDER=Archive views_agree && views_agree "$@"
	else
		wait_converged
	fi
}

# has_file DIR ID [FLAGS]: the client's Maildir holds message ID once
# (with exactly the flag letters FLAGS, when given)
has_file() {
	local f n
	f=$(grep -rl "^Message-ID: <$2\." "$1" | grep -E '/(cur|new)/')
	n=$(printf '%s\n' "$f" | grep -c .)
	[ "$n" = 1 ] || { echo "$2: $n files in $1" >&2; return 1; }
	[ $# -lt 3 ] || case $f in
	*:2,"$3") ;;
	*) echo "$2: $f, not flags '$3'" >&2; return 1;;
	esac
}

test_expect_success "setup: two replicas, format $FORMAT; the clients' homes" '
	replica_setup imap $TEST_USER $TEST_USER &&
	if [ "$FORMAT" = 2 ]; then
		imap_format2_pair
	fi &&
	# the Dovecot settings maildag-syncd(8) asks for (t3012 says why)
	imap_failover_conf 1 && imap_failover_conf 2 &&
	replica_start 1 && replica_start 2 &&
	tunnel 1 && tunnel 2 && point 1 &&
	test_user_setup "$TEST_USER" "$CLIENT" &&
	mkdir -p "$CLIENT/mb" && chown "$TEST_USER:" "$CLIENT/mb" 2>/dev/null || :
'

test_expect_success 'mail on r1: deliveries, flags and keywords, a folder' '
	for id in m1 m2 m3 m4; do replica_deliver 1 $id || return 1; done &&
	replica_flag 1 m1 "\\Seen \$Forwarded work-project" &&
	replica_flag 1 m2 "\\Flagged" &&
	replica_imap 1 "CREATE Archive" >/dev/null &&
	replica_move 1 m4 Archive &&
	replica_wait_log 2 "applied [0-9a-f]*: .*1 folders created" &&
	agree
'

mbsync_conf() {
	cat >"$CLIENT/mbsyncrc" <<-EOF
	IMAPStore far
	Tunnel "$TRASH/server"

	MaildirStore near
	Path $CLIENT/mb/
	Inbox $CLIENT/mb/INBOX
	SubFolders Verbatim

	Channel ch
	Far :far:
	Near :near:
	Patterns *
	Create Near
	Expunge Both
	SyncState *
	EOF
}

# mbsync_run: one run of every channel, with mbsync's sync trace
# (-Ds: one "pair (far,near)" line per message it knows, and what it
# propagates); its output in mbsync.out, and fails as mbsync does
mbsync_run() {
	local st=0
	client mbsync -Ds -c "$CLIENT/mbsyncrc" -a >mbsync.out 2>&1 || st=$?
	cat mbsync.out
	return $st
}

# mbsync_state: mbsync's own record of what it synced: per folder its
# far side's UIDVALIDITY and the (far UID, near UID) of each message
mbsync_state() {
	for f in "$CLIENT/mb/INBOX" "$CLIENT/mb/Archive"; do
		echo "${f##*/}" &&
		sed -n "s/^FarUidValidity /far-uidvalidity /p; s/^\([0-9][0-9]*\) \([0-9][0-9]*\) .*/\1 \2/p" \
			"$f/.mbsyncstate" || return 1
	done
}

# mbsync_fresh: the run had nothing to do: it reports no UIDVALIDITY
# change, found no new message on either side, and wrote nothing to its
# sync state's journal ("-> log: ..." is every message it pulls or
# pushes, every flag and every expunge it carries)
mbsync_fresh() {
	! grep -i "uidvalidity" mbsync.out &&
	! grep -E "^new message|^-> log: |Error|Warning" mbsync.out
}

test_expect_success 'mbsync syncs from r1' '
	mbsync_conf &&
	mbsync_run &&
	grep -q "^Starting tunnel .*server" mbsync.out &&
	files "$CLIENT/mb" >files.r1 &&
	cat files.r1 &&
	test $(wc -l <files.r1) = 4 &&
	has_file "$CLIENT/mb" m1 PS &&
	has_file "$CLIENT/mb" m2 F &&
	has_file "$CLIENT/mb" m4 &&
	mbsync_state >state.r1 &&
	cat state.r1 &&
	mbsync_run && mbsync_fresh
'

test_expect_success 'pointed at r2, mbsync downloads nothing and keeps every file' '
	point 2 &&
	mbsync_run &&
	mbsync_fresh &&
	grep -c "^pair (" mbsync.out >pairs &&
	test "$(cat pairs)" = 4 &&
	files "$CLIENT/mb" >files.r2 &&
	test_cmp files.r1 files.r2 &&
	mbsync_state >state.r2 &&
	test_cmp state.r1 state.r2
'

test_expect_success 'changes made on r2 reach mbsync; the rest stays as it was' '
	replica_flag 2 m3 "\\Seen \$Forwarded" &&
	replica_unflag 2 m2 "\\Flagged" &&
	replica_expunge 2 m1 &&
	replica_deliver 2 m5 &&
	agree m2 m3 m5 &&
	mbsync_run &&
	! grep -i "uidvalidity" mbsync.out &&
	files "$CLIENT/mb" >files.after &&
	cat files.after &&
	has_file "$CLIENT/mb" m3 PS &&
	has_file "$CLIENT/mb" m2 &&
	! grep -rl "^Message-ID: <m1\." "$CLIENT/mb" &&
	has_file "$CLIENT/mb" m5 &&
	# m2, m3, m4 are the files they were (renamed at most)
	for k in $(grep -v -e "_1\." files.r1 | cut -d" " -f2); do
		grep "$k" files.r1 | cut -d" " -f1-3 >want &&
		grep "$k" files.after | cut -d" " -f1-3 >got &&
		test_cmp want got || return 1
	done &&
	test $(wc -l <files.after) = 4
'

test_expect_success 'what the client changes goes to r2 and on to r1; back on r1, nothing to do' '
	f=$(grep -rl "^Message-ID: <m5\." "$CLIENT/mb/INBOX/cur" "$CLIENT/mb/INBOX/new") &&
	mkdir -p "$CLIENT/mb/INBOX/cur" &&
	mv "$f" "$CLIENT/mb/INBOX/cur/$(basename "${f%%:*}"):2,FS" &&
	mbsync_run &&
	agree m5 &&
	grep "^m5 " view.1 | grep -qF "\\Flagged \\Seen" &&
	files "$CLIENT/mb" >files.before &&
	mbsync_state >state.before &&
	point 1 &&
	mbsync_run &&
	mbsync_fresh &&
	files "$CLIENT/mb" >files.back &&
	test_cmp files.before files.back &&
	mbsync_state >state.back &&
	test_cmp state.before state.back
'

# --- offlineimap3 ---------------------------------------------------------

# oi_conf: keywords the local Maildir shows as letters (offlineimap's
# mapping, one way: it takes keywords from the server and never sends
# letters back)
oi_conf() {
	cat >"$CLIENT/offlineimaprc" <<-EOF
	[general]
	accounts = a
	metadata = $CLIENT/oi-meta
	ui = basic

	[Account a]
	localrepository = local
	remoterepository = remote

	[Repository local]
	type = Maildir
	localfolders = $CLIENT/oi
	customflag_a = work-project
	customflag_b = NonJunk
	customflag_c = \$Junk
	customflag_d = \$Forwarded

	[Repository remote]
	type = IMAP
	preauthtunnel = $TRASH/server
	EOF
}

# oi_run: one run; its log in oi.out (fails as offlineimap does)
oi_run() {
	local st=0
	client offlineimap -o -c "$CLIENT/offlineimaprc" >oi.out 2>&1 || st=$?
	cat oi.out
	[ $st = 0 ] && ! grep -E "ERROR|Traceback" oi.out
}

# oi_fresh: the run copied nothing either way and saw no UIDVALIDITY change
oi_fresh() {
	! grep -i "validity" oi.out &&
	! grep -E "Copy message|Deleting|Adding flag|Deleting flag" oi.out
}

# oi_state: offlineimap's own records: the UIDVALIDITY it saved per
# folder, and the UIDs of its local status database
oi_state() {
	for f in INBOX Archive; do
		echo "$f $(cat "$CLIENT/oi-meta/Repository-remote/FolderValidity/$f")" &&
		"$PYTHON" -c "import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for r in c.execute(\"SELECT id FROM status ORDER BY id\"):
    print(r[0])" "$CLIENT/oi-meta/Account-a/LocalStatus-sqlite/$f" || return 1
	done
}

test_expect_success 'offlineimap syncs from r1, keywords as letters' '
	point 1 &&
	replica_flag 1 m2 "work-project NonJunk" &&
	agree m2 &&
	oi_conf &&
	oi_run &&
	files "$CLIENT/oi" >oi-files.r1 &&
	cat oi-files.r1 &&
	test $(wc -l <oi-files.r1) = 4 &&
	has_file "$CLIENT/oi" m2 ab &&
	has_file "$CLIENT/oi" m5 FS &&
	has_file "$CLIENT/oi" m3 Sd &&
	oi_state >oi-state.r1 &&
	cat oi-state.r1 &&
	oi_run && oi_fresh
'

test_expect_success 'pointed at r2, offlineimap copies nothing and keeps every file' '
	point 2 &&
	oi_run &&
	oi_fresh &&
	files "$CLIENT/oi" >oi-files.r2 &&
	test_cmp oi-files.r1 oi-files.r2 &&
	oi_state >oi-state.r2 &&
	test_cmp oi-state.r1 oi-state.r2
'

test_expect_success 'changes made on r2 reach offlineimap; its own go to r2 and on to r1' '
	replica_flag 2 m3 "\$Junk" &&
	replica_unflag 2 m2 "NonJunk" &&
	replica_expunge 2 m5 &&
	replica_deliver 2 m6 &&
	agree m2 m3 m6 &&
	oi_run &&
	! grep -i "validity" oi.out &&
	test $(grep -c "Copy message" oi.out) = 1 &&
	files "$CLIENT/oi" >oi-files.after &&
	cat oi-files.after &&
	has_file "$CLIENT/oi" m2 a &&
	has_file "$CLIENT/oi" m3 Scd &&
	has_file "$CLIENT/oi" m6 &&
	! grep -rl "^Message-ID: <m5\." "$CLIENT/oi" &&
	f=$(grep -rl "^Message-ID: <m6\." "$CLIENT/oi/INBOX") &&
	mv "$f" "${f%%:*}:2,F" &&
	oi_run &&
	agree m6 &&
	grep "^m6 " view.1 | grep -qF "\\Flagged"
'

test_expect_success 'back on r1, offlineimap has nothing to do; Dovecot logs clean' '
	point 1 &&
	files "$CLIENT/oi" >oi-files.before &&
	oi_run &&
	oi_fresh &&
	files "$CLIENT/oi" >oi-files.back &&
	test_cmp oi-files.before oi-files.back &&
	dovecot_logs_clean
'

# flagged DIR ID: message ID's file in the client's Maildir DIR has
# the flag F
flagged() {
	grep -rl "^Message-ID: <$2\." "$1" | grep -E '/(cur|new)/[^/]*:2,[A-Za-z]*F'
}

# What maildag-syncd(8) says of a move to a replica that is behind: r2,
# apart, lacks a message both clients took from r1, and a flag.  Both
# drop their copy (r2 shows it as gone) and the flag; once r2 has them,
# under the same UID, the flag comes back, and offlineimap3 downloads
# the message again, mbsync does not (the UID is at or below what it
# has pulled already, which it takes as old).
test_expect_success 'moved to a replica that is behind: the clients drop what it lacks; flags come back, and the message to offlineimap3 only' '
	point 1 &&
	replica_stop 2 &&
	replica_deliver 1 m7 &&
	replica_flag 1 m2 "\\Flagged" &&
	view 1 >view.1 && grep "^m7 " view.1 &&
	mbsync_run >/dev/null && has_file "$CLIENT/mb" m7 &&
	oi_run >/dev/null && has_file "$CLIENT/oi" m7 &&
	flagged "$CLIENT/mb" m2 && flagged "$CLIENT/oi" m2 &&
	point 2 &&
	mbsync_run >/dev/null &&
	grep -F "(pulled deletion)" mbsync.out &&
	! grep -rl "^Message-ID: <m7\." "$CLIENT/mb" &&
	oi_run >/dev/null &&
	grep "^Deleting 1 messages" oi.out &&
	! grep -rl "^Message-ID: <m7\." "$CLIENT/oi" &&
	! flagged "$CLIENT/mb" m2 && ! flagged "$CLIENT/oi" m2 &&
	replica_start 2 &&
	agree m2 m7 &&
	grep "^m7 " view.1 >m7.1 && grep "^m7 " view.2 >m7.2 &&
	test_cmp m7.1 m7.2 &&
	oi_run >/dev/null &&
	test $(grep -c "Copy message" oi.out) = 1 &&
	has_file "$CLIENT/oi" m7 &&
	mbsync_run >/dev/null &&
	! grep -rl "^Message-ID: <m7\." "$CLIENT/mb" &&
	flagged "$CLIENT/mb" m2 && flagged "$CLIENT/oi" m2 &&
	dovecot_logs_clean
'

test_done
