#!/bin/sh
test_description='maildag upgrade: a format 1 repository of a Maildir a real Dovecot numbered becomes format 2 in one commit, history kept, and its records hold the UIDs, UIDVALIDITY, UIDNEXT and keyword names Dovecot shows'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

message() {
	printf 'From: a@example.org\nSubject: %s\nMessage-ID: <%s@example.org>\n\nbody %s\n' \
		"$1" "$1" "$1" >"$TRASH/$1.eml"
}

# uid_of MAILBOX ID: the UID Dovecot shows for Message-ID <ID@example.org>
uid_of() {
	imap "SELECT $1" "UID SEARCH HEADER Message-ID <$2@example.org>" |
		sed -n 's/^\* SEARCH \([0-9]*\)$/\1/p'
}

# key_of DIR ID: the key of the file holding message ID in DIR (cur/new)
key_of() {
	grep -l "^Message-ID: <$2@example.org>" "$1"/cur/* "$1"/new/* 2>/dev/null |
		sed 's|.*/||; s/[,:].*//'
}

# record KEY: "<uid>[ TAB <keywords>]" of KEY in refs/heads/mail
record() {
	local xx
	xx=$(printf '%s' "$1" | "$PYTHON" -c 'import sys
h = 2166136261
for b in sys.stdin.buffer.read():
    h = ((h ^ b) * 16777619) & 0xffffffff
print("%02x" % (h & 0xff))') &&
	mgit show "refs/heads/mail:imap/$xx" |
		awk -F '\t' -v k="$1" '$1 == k { print substr($0, length(k) + 2) }'
}

mgit() { git -c safe.directory='*' --git-dir="$REPO" "$@"; }

[ -n "$PYTHON" ] || PYTHON=$(command -v python3) || test_skip_all "no python3"

test_expect_success 'setup: Dovecot numbers INBOX and Sent; one file it never saw' '
	for m in m1 m2 m3 m4; do message $m || return 1; done &&
	imap_append INBOX "\\Seen" "01-Jan-2024 10:00:00 +0000" "$TRASH/m1.eml" >/dev/null &&
	imap_append INBOX "\\Seen \$Forwarded work-project" "02-Jan-2024 10:00:00 +0000" "$TRASH/m2.eml" >/dev/null &&
	imap_append INBOX "" "03-Jan-2024 10:00:00 +0000" "$TRASH/m3.eml" >/dev/null &&
	imap "CREATE Sent" >/dev/null &&
	imap_append Sent "\\Seen" "04-Jan-2024 10:00:00 +0000" "$TRASH/m4.eml" >/dev/null &&
	imap "SELECT INBOX" "STORE 1 +FLAGS (\\Deleted)" "EXPUNGE" >/dev/null &&
	imap "SELECT INBOX" >select.before &&
	grep -o "UIDVALIDITY [0-9]*" select.before | cut -d" " -f2 >uidvalidity &&
	test "$(uid_of INBOX m2)" = 2 && test "$(uid_of Sent m4)" = 1 &&
	# a file Dovecot does not know yet (a mutt, a Sieve script)
	message m5 &&
	as_user sh -c "cat \"$TRASH/m5.eml\" >\"$MAILDIR/cur/1700000005.M5P5Q5.host:2,S\"" &&
	as_user maildag init >/dev/null &&
	test "$(mgit show refs/heads/mail:FORMAT)" = "maildag 1"
'

test_expect_success 'upgrade refuses while maildag-syncd runs, and changes nothing' '
	syncd_start &&
	test_expect_code 75 as_user maildag upgrade 2>err &&
	syncd_stop &&
	grep "maildag-syncd is running" err &&
	test "$(mgit show refs/heads/mail:FORMAT)" = "maildag 1"
'

test_expect_success 'maildag upgrade: one commit on top of mail, history kept' '
	mgit rev-parse refs/heads/mail >old_mail &&
	as_user maildag upgrade >out &&
	cat out &&
	grep "^upgraded .* to format 2 (experimental) in [0-9a-f]*: 2 folders, 4 messages recorded, 3 with a UID from Dovecot.s uidlist, 1 given in slot 0" out &&
	test "$(mgit show refs/heads/mail:FORMAT)" = "maildag 2" &&
	test "$(mgit rev-parse refs/heads/mail^)" = "$(cat old_mail)" &&
	test "$(mgit rev-parse refs/heads/mail)" = "$(mgit rev-parse refs/maildag/worktree)" &&
	as_user maildag fsck >fsck.out &&
	cat fsck.out
'

test_expect_success 'the records hold the UIDs Dovecot shows' '
	for m in m2 m3; do
		k=$(key_of "$MAILDIR" $m) && test -n "$k" &&
		r=$(record "$k") &&
		test "${r%%	*}" = "$(uid_of INBOX $m)" || return 1
	done &&
	k=$(key_of "$MAILDIR/.Sent" m4) &&
	test "$(record "$k")" = "$(uid_of Sent m4)"
'

test_expect_success 'the file Dovecot had not seen: a UID of slot 0, and Dovecot shows it' '
	k=$(key_of "$MAILDIR" m5) &&
	r=$(record "$k") &&
	test "$r" -ge 4 && test "$r" -le 512 &&
	test "$(uid_of INBOX m5)" = "$r"
'

test_expect_success 'keyword names in the record, no letters in the tree name' '
	k=$(key_of "$MAILDIR" m2) &&
	test "$(record "$k")" = "$(printf "%s\t%s" "$(uid_of INBOX m2)" "\$Forwarded work-project")" &&
	mgit ls-tree -r --name-only refs/heads/mail | grep "/$k" >name &&
	grep -q ":2,S$" name &&
	ls "$MAILDIR/cur" | grep "^$k" | grep -q ":2,S*[a-z]"
'

test_expect_success 'UIDVALIDITY and UIDNEXT as Dovecot has them' '
	imap "SELECT INBOX" >select.after &&
	uv=$(grep -o "UIDVALIDITY [0-9]*" select.after | cut -d" " -f2) &&
	un=$(grep -o "UIDNEXT [0-9]*" select.after | cut -d" " -f2) &&
	test "$uv" = "$(cat uidvalidity)" &&
	printf "uidvalidity %s\nuidnext %s\n" "$uv" "$un" >expect &&
	mgit show refs/heads/mail:imapfolder >actual &&
	test_cmp expect actual &&
	imap "SELECT Sent" >select.sent &&
	uv=$(grep -o "UIDVALIDITY [0-9]*" select.sent | cut -d" " -f2) &&
	mgit show refs/heads/mail:.Sent/imapfolder | grep -q "^uidvalidity $uv$"
'

test_expect_success 'Dovecot logged nothing wrong' '
	! grep -hE "Error|Warning|Panic|Fatal|Broken|reappeared|UIDVALIDITY changed" \
		"$DOVECOT_DIR/dovecot.log" "$DOVECOT_DIR/stderr" 2>/dev/null
'

test_expect_success 'a second upgrade says format 2 already, exit 1' '
	test_expect_code 1 as_user maildag upgrade >out &&
	grep "format 2 already" out
'

test_done
