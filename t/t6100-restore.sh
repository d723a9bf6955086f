#!/bin/sh
test_description='removed mail comes back: a message expunged with Dovecot, a folder Dovecot deleted and a folder removed with rm -rf are found by maildag log --expunged and brought back by restore or undo on both replicas, byte for byte with their INTERNALDATE; a mass deletion raises the alarm (log, status, hook, webhook) and, with alarm.hold, waits for maildag confirm before any peer gets it'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"
[ -n "$PYTHON" ] || test_skip_all "no python3 for the HTTP server"

# --- a webhook receiver: one JSON body per line in $HTTPD/records -------
HTTPD=$TRASH/httpd
mkdir -p "$HTTPD"
cat >"$HTTPD/server.py" <<'EOF'
import http.server, os, sys, threading
portfile, records = sys.argv[1:3]
lock = threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        with lock, open(records, "a") as f:
            f.write(body.replace("\n", " ") + "\n")
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % server.server_address[1])
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
EOF
: >"$HTTPD/records"
"$PYTHON" "$HTTPD/server.py" "$HTTPD/port" "$HTTPD/records" \
	</dev/null >>"$HTTPD/log" 2>&1 &
HTTPD_PID=$!
httpd_stop() {
	[ -n "$HTTPD_PID" ] || return 0
	kill "$HTTPD_PID" 2>/dev/null
	wait "$HTTPD_PID" 2>/dev/null
	HTTPD_PID=
	return 0
}
test_at_end httpd_stop
trap 'httpd_stop; lib_dovecot_cleanup' EXIT
n=0
while ! [ -s "$HTTPD/port" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -s "$HTTPD/port" ] || test_skip_all "the test HTTP server did not start"
HOOK_URL=http://127.0.0.1:$(cat "$HTTPD/port")/hook

# --- the hook: every run's MAILDAG_* variables, a blank line between ----
HOOKS=$TRASH/hooks
mkdir -p "$HOOKS"
cat >"$HOOKS/on-event" <<EOF
#!/bin/sh
{ env | grep '^MAILDAG_' | sort; echo; } >>"$HOOKS/\$MAILDAG_NODE.out"
EOF
chmod 755 "$HOOKS" "$HOOKS/on-event"
chmod 777 "$HOOKS"

# Low thresholds: 6 messages in one change, half of a folder of which at
# least 3, or a folder removed with its messages.
ALARM='"alarm": { "messages": 6, "share": 50, "share_min": 3, "folders": true'
HOOK_JSON="\"hooks\": { \"command\": \"$HOOKS/on-event\", \"webhooks\": [ \"$HOOK_URL\" ] }"

# --- helpers --------------------------------------------------------------

# replica_append I MAILBOX DATE ID: APPEND message ID with INTERNALDATE DATE
replica_append() {
	test_message "$4" >"$TRASH/append.$4" &&
	(
		TEST_USER=$(replica_user "$1") && USER_HOME=$(replica_home "$1") &&
		DOVECOT_DIR=$TRASH/$(replica_set)/dovecot-r$1 &&
		DOVECOT_CONF=$DOVECOT_DIR/dovecot.conf &&
		imap_append "$2" "\\Seen" "$3" "$TRASH/append.$4" >/dev/null
	) &&
	echo "$4" >>"$REPLICAS/delivered"
}

# not_expunged ID: ID is back (for replica_expect_messages)
not_expunged() {
	grep -vx "$1" "$REPLICAS/expunged" >"$REPLICAS/expunged.new"
	mv "$REPLICAS/expunged.new" "$REPLICAS/expunged"
}

# webhook_alarm CHANGE: the webhook was told of the alarm of CHANGE
webhook_alarm() {
	grep '"event": *"alarm"' "$HTTPD/records" |
		grep -q "\"undo\": *\"maildag undo $1\""
}

# msg_file I ID: the path of message ID in replica I's Maildir
msg_file() {
	grep -rl "^Message-ID: <$2\." "$(replica_maildir "$1")" 2>/dev/null |
		grep -E '/(cur|new)/[^/]*$'
}

# facts I ID: "<path in the Maildir> <sha256> <mtime>" of message ID
facts() {
	local f md
	md=$(replica_maildir "$1") && f=$(msg_file "$1" "$2") &&
	[ "$(printf '%s\n' "$f" | wc -l)" = 1 ] || {
		echo "replica $1: message $2 is not there once" >&2; return 1; }
	printf '%s %s %s\n' "${f#$md/}" "$(sha256sum <"$f" | cut -c 1-64)" \
		"$(stat -c %Y "$f")"
}

# save_facts NAME ID...: the facts of the messages on both replicas
save_facts() {
	local name=$1 i id
	shift
	for i in 1 2; do
		for id in "$@"; do facts $i "$id" || return 1; done >"$TRASH/facts.$name.$i"
	done
	test_cmp "$TRASH/facts.$name.1" "$TRASH/facts.$name.2"
}

# same_facts NAME ID...: both replicas hold them again, as they were
same_facts() {
	local name=$1 i id
	shift
	for i in 1 2; do
		for id in "$@"; do facts $i "$id" || return 1; done >"$TRASH/facts.$name.now.$i"
		test_cmp "$TRASH/facts.$name.$i" "$TRASH/facts.$name.now.$i" || return 1
	done
}

# gone I ID...: none of the messages is in replica I's Maildir
gone() {
	local i=$1 id
	shift
	for id in "$@"; do
		[ -z "$(msg_file $i "$id")" ] || {
			echo "replica $i still holds $id" >&2; return 1; }
	done
}

# internaldates I MAILBOX: what Dovecot says, sorted
internaldates() {
	replica_imap "$1" "SELECT $2" "FETCH 1:* (INTERNALDATE)" |
		sed -n 's/^\* [0-9]* FETCH (INTERNALDATE "\(.*\)")$/\1/p' | sort
}

# the line of maildag status that says how to undo, the command alone
undo_line() {
	replica_run "$1" maildag status | sed -n 's/^  undo it:  //p' | head -n 1
}

# the change (10 hex digits) log --expunged names for message ID on I
removed_by() {
	replica_run "$1" maildag log --expunged --subject "test message $2" |
		awk '{ print $3 }' | sort -u
}

# --- the story ------------------------------------------------------------

test_expect_success 'setup: two replicas, mail in INBOX, Archive and Lists, some with old INTERNALDATEs' '
	replica_setup restore "$TEST_USER" "$TEST_USER" &&
	for i in 1 2; do
		replica_config $i --extra "$ALARM }, $HOOK_JSON" || return 1
	done &&
	replica_start_all &&
	for k in 1 2 3 4 5 6 7 8; do replica_deliver 1 m$k || return 1; done &&
	replica_imap 1 "CREATE Archive" "CREATE Lists" "SUBSCRIBE Archive" >/dev/null &&
	replica_append 1 Archive "01-Jan-2020 10:00:00 +0000" a1 &&
	replica_append 1 Archive "02-Feb-2021 11:30:00 +0000" a2 &&
	replica_append 1 Archive "03-Mar-2022 12:45:00 +0000" a3 &&
	for k in 1 2 3 4; do
		replica_append 1 Lists "0$k-Apr-2019 08:00:00 +0000" l$k || return 1
	done &&
	replica_imap 1 "SELECT INBOX" >/dev/null &&
	wait_converged &&
	test "$(replica_state 1 | wc -l)" = 15 &&
	internaldates 2 Archive >dates.archive &&
	grep -x "01-Jan-2020 10:00:00 +0000" dates.archive
'

test_expect_success 'a message expunged with Dovecot is found by log --expunged on the other replica; no alarm' '
	save_facts m3 m3 &&
	mid=$(grep -m 1 "^Message-ID:" "$(msg_file 1 m3)" | sed "s/^Message-ID: //") &&
	replica_expunge 1 m3 &&
	wait_converged &&
	gone 1 m3 && gone 2 m3 &&
	replica_run 2 maildag log --expunged --message-id "$mid" >found &&
	cat found &&
	test "$(wc -l <found)" = 1 &&
	grep -q "  expunged from INBOX: from Alice <alice@example.org>, \"test message m3\", [0-9]* bytes, $mid\$" found &&
	test "$(replica_log_count 1 "mass deletion")" = 0 &&
	test "$(replica_log_count 2 "mass deletion")" = 0
'

test_expect_success 'restore --message-id on the other replica brings it back on both, byte for byte, with its mtime' '
	replica_run 2 maildag restore --message-id "$(sed -n "s/.*bytes, //p" found)" >out &&
	cat out &&
	grep -q "^restored: 1 message written back" out &&
	wait_converged &&
	same_facts m3 m3 &&
	not_expunged m3 &&
	replica_expect_messages &&
	test -z "$(replica_run 1 maildag log --expunged --subject "test message m3")"
'

test_expect_success 'a folder deleted with Dovecot: the alarm sounds on both replicas, in the log, the status, the hook and the webhook' '
	save_facts archive a1 a2 a3 &&
	replica_imap 2 "DELETE Archive" >/dev/null &&
	wait_converged &&
	gone 1 a1 a2 a3 && gone 2 a1 a2 a3 &&
	! test -e "$(replica_maildir 1)/.Archive" &&
	replica_wait_log 2 "error: mass deletion in change [0-9a-f]{10} \(made on r2\): 3 messages expunged: folder Archive removed with 3 messages; undo it with .maildag undo [0-9a-f]{10}." &&
	replica_wait_log 1 "error: mass deletion in change [0-9a-f]{10} \(made on r2\)" &&
	change=$(removed_by 1 a) &&
	test "$(printf "%s\n" "$change" | wc -l)" = 1 &&
	replica_run 1 maildag log --expunged --folder Archive >found &&
	cat found &&
	test "$(grep -c "  $change  expunged from Archive (folder removed): " found)" = 3 &&
	for i in 1 2; do
		replica_run $i maildag status >status.$i
		test $? = 0 || return 1
		grep -q "^ALARM: mass deletion in change $change, made on r2 .*: 3 messages expunged: folder Archive removed with 3 messages\$" status.$i &&
		grep -qx "  undo it:  maildag undo $change" status.$i &&
		replica_status $i >status.json.$i &&
		grep -q "\"alarms\":\[{\"change\":\"$change[0-9a-f]*\"" status.json.$i &&
		grep -q "\"undo\":\"maildag undo $change\"" status.json.$i || {
			cat status.$i; return 1; }
	done &&
	wait_for "grep -q \"^MAILDAG_UNDO=maildag undo $change\$\" \"$HOOKS/r2.out\"" &&
	wait_for "grep -q \"^MAILDAG_UNDO=maildag undo $change\$\" \"$HOOKS/r1.out\"" &&
	grep -q "^MAILDAG_EVENT=alarm\$" "$HOOKS/r2.out" &&
	grep -q "^MAILDAG_ALARM=3 messages expunged: folder Archive removed with 3 messages\$" "$HOOKS/r2.out" &&
	grep -q "^MAILDAG_ORIGIN=r2\$" "$HOOKS/r1.out" &&
	wait_for "webhook_alarm $change" &&
	echo "$change" >"$TRASH/archive.change"
'

test_expect_success 'the undo line the status gave, run on the other replica, brings the folder back on both' '
	change=$(cat "$TRASH/archive.change") &&
	line=$(undo_line 2) &&
	test "$line" = "maildag undo $change" &&
	replica_run 1 $line >out &&
	cat out &&
	grep -q "^undo $change: 3 messages written back, 1 folder created" out &&
	wait_converged &&
	same_facts archive a1 a2 a3 &&
	internaldates 1 Archive >dates.1 && internaldates 2 Archive >dates.2 &&
	test_cmp dates.archive dates.1 && test_cmp dates.archive dates.2 &&
	replica_imap 2 "LSUB \"\" *" | grep -q "Archive" &&
	test -f "$(replica_maildir 2)/.Archive/maildirfolder" &&
	# the undo settled the alarm, here and (once it arrived) there
	! replica_run 1 maildag status | grep -q "^ALARM" &&
	wait_for "! replica_run 2 maildag status | grep -q \"^ALARM\"" &&
	replica_expect_messages
'

test_expect_success 'a folder removed with rm -rf: the alarm; log --expunged on the other replica; restore --before brings it back on both' '
	save_facts lists l1 l2 l3 l4 &&
	replica_run 1 rm -rf "$(replica_maildir 1)/.Lists" &&
	wait_converged &&
	gone 1 l1 l2 l3 l4 && gone 2 l1 l2 l3 l4 &&
	replica_wait_log 1 "error: mass deletion in change [0-9a-f]{10} \(made on r1\): 4 messages expunged: folder Lists removed with 4 messages" &&
	change=$(removed_by 2 l) &&
	test "$(printf "%s\n" "$change" | wc -l)" = 1 &&
	test "$(replica_run 2 maildag log --expunged --folder Lists | grep -c "  $change  expunged from Lists (folder removed): ")" = 4 &&
	replica_run 2 maildag restore -n --before "$change" --folder Lists >plan &&
	test "$(grep -c "^would restore Lists/cur/" plan)" = 4 &&
	gone 2 l1 &&
	replica_run 2 maildag restore --before "$change" --folder Lists >out &&
	cat out &&
	grep -q "^restored: 4 messages written back, 1 folder created" out &&
	wait_converged &&
	same_facts lists l1 l2 l3 l4 &&
	internaldates 1 Lists | grep -x "01-Apr-2019 08:00:00 +0000" &&
	replica_expect_messages &&
	# a restore is not an undo: the alarm waits for a word
	replica_run 1 maildag status | grep -q "^ALARM: mass deletion in change $change" &&
	replica_run 1 maildag confirm "$change" &&
	! replica_run 1 maildag status | grep -q "^ALARM" &&
	test_expect_code 1 replica_run 1 maildag confirm "$change"
'

test_expect_success 'alarm.hold: a mass expunge on r1 goes to no peer until confirmed' '
	replica_config 1 --extra "$ALARM, \"hold\": true }, $HOOK_JSON" &&
	# r2 learns of r1 only through r1 pushes (no fetch), so what r1
	# holds back cannot reach it another way
	replica_config 2 --extra "$ALARM }, $HOOK_JSON" --peer-extra "\"fetch\": false" &&
	replica_reload 1 && replica_reload 2 &&
	replica_wait_log 1 "configuration reloaded" &&
	replica_wait_log 2 "configuration reloaded" &&
	save_facts inbox m1 m2 m4 m5 m6 m7 &&
	# flagged \Deleted first, and that replicated: no push of it is
	# under way when the expunge is committed
	replica_imap 1 "SELECT INBOX" \
		"SEARCH RETURN (SAVE) NOT (OR HEADER Subject \"message m3\" HEADER Subject \"message m8\")" \
		"STORE \$ +FLAGS.SILENT (\\Deleted)" >/dev/null &&
	wait_converged &&
	test "$(replica_state 2 | grep -c "^INBOX .* [A-Z]*T[A-Z]* ")" = 6 &&
	replica_imap 1 "SELECT INBOX" "EXPUNGE" >/dev/null &&
	replica_wait_log 1 "error: mass deletion in change [0-9a-f]{10} \(made on r1\): 6 messages expunged: 6 of 8 in INBOX; .*held back from peers until .maildag confirm" &&
	replica_wait_log 1 "holding every push back" &&
	gone 1 m1 m2 m4 m5 m6 m7 &&
	change=$(replica_run 1 maildag status | sed -n "s/^  keep it:  maildag confirm //p") &&
	full=$(replica_git 1 rev-parse "$change") &&
	! replica_git 2 cat-file -e "$full" &&
	replica_status 1 | grep -q "\"held\":true" &&
	replica_run 1 maildag status | grep -qx "  held back from every peer until then" &&
	wait_for "grep -q \"^MAILDAG_HELD=1\$\" \"$HOOKS/r1.out\"" &&
	test_expect_code 75 replica_run 1 maildag push 2>err &&
	grep -q "held back from peers" err &&
	test_expect_code 75 replica_run 1 env \
		SSH_ORIGINAL_COMMAND="git-upload-pack '\''$(replica_repo 1)'\''" \
		maildag serve --peer r2 </dev/null 2>err &&
	grep -q "refused for now: a mass deletion made here waits" err &&
	replica_sync 1 && replica_sync 2 &&
	! replica_git 2 cat-file -e "$full" &&
	test "$(replica_state 2 | grep -c "^INBOX ")" = 8
'

test_expect_success 'confirmed, it reaches r2; regretted, undo on r2 brings all six back on both' '
	change=$(replica_run 1 maildag status | sed -n "s/^  keep it:  maildag confirm //p") &&
	test -n "$change" &&
	replica_run 1 maildag confirm "$change" &&
	replica_wait_log 1 "no alarm holds pushes back any more" &&
	wait_converged &&
	gone 2 m1 m2 m4 m5 m6 m7 &&
	replica_run 2 maildag undo "$change" >out &&
	cat out &&
	grep -q "^undo $change: 6 messages written back" out &&
	wait_converged &&
	same_facts inbox m1 m2 m4 m5 m6 m7 &&
	replica_expect_messages
'

test_expect_success 'undo refuses a merge and an unknown change; restore wants to be told what' '
	# a merge: mail on both sides while r2 is down
	replica_stop 2 &&
	replica_deliver 1 m9 && replica_deliver 2 m10 &&
	replica_start 2 &&
	wait_converged &&
	merge=$(replica_git 1 rev-list --merges -n 1 refs/heads/mail) &&
	test -n "$merge" &&
	test_expect_code 65 replica_run 1 maildag undo "$merge" 2>err &&
	grep -q "a merge, which only brings changes made elsewhere" err &&
	test_expect_code 65 replica_run 1 maildag undo 0123456789 &&
	test_expect_code 64 replica_run 1 maildag restore
'

test_expect_success 'both repositories pass fsck; stop' '
	replica_fsck 1 && replica_fsck 2 &&
	replica_stop_all
'

test_done
