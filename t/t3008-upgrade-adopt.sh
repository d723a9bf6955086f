#!/bin/sh
test_description='maildag upgrade adopts a format 2 peer: a replica that upgrades after another takes its UIDVALIDITY and UIDs, Dovecot shows them, with a clean log, and both trees hold the same records'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -n "$PYTHON" ] || test_skip_all "no python3"

# replica A is the test's usual home and Dovecot; B has its own of both
HOME_A=$USER_HOME
HOME_B=$TRASH/home-b
DOVECOT_B=$TRASH/dovecot-b
REPO_B=$HOME_B/.local/share/maildag/mail.git
test_user_setup "$TEST_USER" "$HOME_B"
dovecot_setup "$DOVECOT_B" "$TEST_USER"

message() {
	printf 'From: a@example.org\nSubject: %s\nMessage-ID: <%s@example.org>\n\nbody %s\n' \
		"$1" "$1" "$1" >"$TRASH/$1.eml"
}

# imap_b CMD...: one session on B's Dovecot
imap_b() {
	local i=0 c
	for c in "$@"; do
		i=$((i + 1))
		printf 'a%d %s\r\n' "$i" "$c"
	done | { cat; printf 'z LOGOUT\r\n'; } |
		as_user -h "$HOME_B" env TZ=UTC "$DOVECOT_IMAP" -c "$DOVECOT_B/dovecot.conf" \
			2>>"$DOVECOT_B/stderr" | tr -d '\r'
}

# uid_at A|B MAILBOX ID: the UID that replica's Dovecot shows for <ID@example.org>
uid_at() {
	local m=$2 id=$3
	if [ "$1" = A ]; then
		imap "SELECT $m" "UID SEARCH HEADER Message-ID <$id@example.org>"
	else
		imap_b "SELECT $m" "UID SEARCH HEADER Message-ID <$id@example.org>"
	fi | sed -n 's/^\* SEARCH \([0-9]*\)$/\1/p'
}

uidvalidity_at() {
	if [ "$1" = A ]; then imap "SELECT $2"; else imap_b "SELECT $2"; fi |
		grep -o "UIDVALIDITY [0-9]*" | cut -d" " -f2
}

git_a() { git -c safe.directory='*' --git-dir="$REPO" "$@"; }
git_b() { git -c safe.directory='*' --git-dir="$REPO_B" "$@"; }

test_expect_success 'setup: A numbered by its Dovecot, B a copy numbered by its own' '
	for m in m1 m2 m3 m4; do message $m || return 1; done &&
	imap_append INBOX "\\Seen" "01-Jan-2024 10:00:00 +0000" "$TRASH/m1.eml" >/dev/null &&
	imap_append INBOX "\\Seen \$Forwarded" "02-Jan-2024 10:00:00 +0000" "$TRASH/m2.eml" >/dev/null &&
	imap_append INBOX "" "03-Jan-2024 10:00:00 +0000" "$TRASH/m3.eml" >/dev/null &&
	imap "CREATE Sent" >/dev/null &&
	imap_append Sent "\\Seen" "04-Jan-2024 10:00:00 +0000" "$TRASH/m4.eml" >/dev/null &&
	imap "SELECT INBOX" "STORE 1 +FLAGS (\\Deleted)" "EXPUNGE" >/dev/null &&
	as_user maildag init >/dev/null &&
	# B: the same repository and message files, no Dovecot state but
	# the keyword names (as replication leaves it)
	as_user mkdir -p "$HOME_B/.local/share/maildag" "$HOME_B/.config/maildag" &&
	as_user cp -a "$REPO" "$REPO_B" &&
	as_user mkdir -p "$HOME_B/Maildir" &&
	(cd "$HOME_A/Maildir" && find . -path "*/tmp" -prune -o \( -type f ! -name "dovecot*" -o -name dovecot-keywords \) -print) |
		while read -r f; do
			as_user mkdir -p "$HOME_B/Maildir/$(dirname "$f")" &&
			as_user cp -p "$HOME_A/Maildir/$f" "$HOME_B/Maildir/$f" || exit 1
		done &&
	as_user mkdir -p "$HOME_B/Maildir/tmp" "$HOME_B/Maildir/.Sent/tmp" &&
	printf "{ \"node\": \"b\", \"peers\": { \"a\": { \"url\": \"file://%s\" } } }\n" "$REPO" |
		as_user sh -c "cat >\"$HOME_B/.config/maildag/config.json\"" &&
	sleep 1 &&
	test "$(uid_at B INBOX m2)" = 1 && test "$(uid_at A INBOX m2)" = 2 &&
	test "$(uidvalidity_at A INBOX)" != "$(uidvalidity_at B INBOX)"
'

test_expect_success 'A upgrades first; B fetches it' '
	as_user maildag upgrade >out.a &&
	cat out.a &&
	as_user -h "$HOME_B" maildag fetch a >out.fetch &&
	git_b rev-parse -q --verify refs/peers/a/mail >/dev/null &&
	test "$(git_b show refs/peers/a/mail:FORMAT)" = "maildag 2"
'

test_expect_success 'B upgrades adopting A: A s UIDVALIDITY and UIDs' '
	as_user -h "$HOME_B" maildag upgrade >out.b &&
	cat out.b &&
	grep "adopting the UIDs of refs/peers/a/mail: 2 folders, 3 messages recorded, 3 with the peer.s UID, 0 given in slot 1; 2 folders renumbered" out.b &&
	test "$(git_b rev-parse "refs/heads/mail^{tree}:imap")" = \
	     "$(git_a rev-parse "refs/heads/mail^{tree}:imap")" &&
	test "$(git_b rev-parse refs/heads/mail:imapfolder)" = \
	     "$(git_a rev-parse refs/heads/mail:imapfolder)" &&
	test "$(git_b rev-parse refs/heads/mail:.Sent/imapfolder)" = \
	     "$(git_a rev-parse refs/heads/mail:.Sent/imapfolder)" &&
	git_b show refs/heads/mail:uidslots >slots &&
	grep -q "^1 b$" slots && test $(wc -l <slots) = 2
'

test_expect_success 'B s Dovecot shows A s UIDVALIDITY and UIDs' '
	test "$(uidvalidity_at B INBOX)" = "$(uidvalidity_at A INBOX)" &&
	test "$(uidvalidity_at B Sent)" = "$(uidvalidity_at A Sent)" &&
	for m in m2 m3; do
		test "$(uid_at B INBOX $m)" = "$(uid_at A INBOX $m)" || return 1
	done &&
	test "$(uid_at B Sent m4)" = "$(uid_at A Sent m4)" &&
	imap_b "SELECT INBOX" "FETCH 1:* (FLAGS)" >flags.b &&
	grep -q "\\\$Forwarded" flags.b
'

test_expect_success 'both Dovecots logged nothing wrong; fsck clean on B' '
	! grep -hE "Error|Warning|Panic|Fatal|Broken|reappeared|UIDVALIDITY changed" \
		"$DOVECOT_DIR/dovecot.log" "$DOVECOT_DIR/stderr" \
		"$DOVECOT_B/dovecot.log" "$DOVECOT_B/stderr" 2>/dev/null &&
	as_user -h "$HOME_B" maildag fsck
'

test_done
