#!/bin/sh
test_description='dovecot-uidlist and dovecot-keywords written by maildag: a real Dovecot on two replicas shows the same UIDs, UIDVALIDITY, UIDNEXT and keyword names'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

APPLY=$abs_top_builddir/t/helper/dovecot-apply
[ -x "$APPLY" ] || test_skip_all "t/helper/dovecot-apply is not built"

# replica A is the test's usual home and Dovecot; B has its own of both
HOME_A=$USER_HOME
HOME_B=$TRASH/home-b
DOVECOT_B=$TRASH/dovecot-b
test_user_setup "$TEST_USER" "$HOME_B"
dovecot_setup "$DOVECOT_B" "$TEST_USER"

K1=1700000000.M1P1Q1.host
K2=1700000001.M2P2Q2.host
K3=1700000002.M3P3Q3.host
K4=1700000003.M4P4Q4.host

# imap_at A|B CMD...: one session on that replica, the dialogue on stdout
imap_at() {
	local home conf i=0 c
	case "$1" in
	A) home=$HOME_A conf=$DOVECOT_CONF;;
	B) home=$HOME_B conf=$DOVECOT_B/dovecot.conf;;
	esac
	shift
	for c in "$@"; do
		i=$((i + 1))
		printf 'a%d %s\r\n' "$i" "$c"
	done | { cat; printf 'z LOGOUT\r\n'; } |
		as_user -h "$home" env TZ=UTC "$DOVECOT_IMAP" -c "$conf" \
			2>>"$TRASH/imap.stderr" | tr -d '\r'
}

# view A|B: what a client caches of INBOX: UIDVALIDITY, UIDNEXT, and per
# UID its flags (sorted), one line each
view() {
	imap_at "$1" 'SELECT INBOX' 'UID FETCH 1:* (FLAGS)' >"$TRASH/view.$1" &&
	grep -q '^a2 OK' "$TRASH/view.$1" &&
	grep -oE 'UIDVALIDITY [0-9]+|UIDNEXT [0-9]+' "$TRASH/view.$1" &&
	sed -n 's/^\* [0-9]* FETCH (UID \([0-9]*\) FLAGS (\(.*\)))$/\1 \2/p' \
		"$TRASH/view.$1" | while read -r uid flags; do
		printf '%s %s\n' "$uid" \
			"$(printf '%s\n' $flags | grep -v '^\\Recent$' | LC_ALL=C sort | tr '\n' ' ')"
	done
}

logs_clean() {
	! grep -hE 'Error|Warning|Panic|Fatal|Broken|reappeared|UIDVALIDITY changed' \
		"$DOVECOT_DIR/dovecot.log" "$DOVECOT_B/dovecot.log" \
		"$TRASH/imap.stderr" 2>/dev/null
}

message() {
	printf 'From: a@example.org\nSubject: %s\nMessage-ID: <%s@example.org>\n\nbody %s\n' \
		"$1" "$1" "$1"
}

test_expect_success 'two replicas hold the same messages, B knows another keyword' '
	for h in "$HOME_A" "$HOME_B"; do
		as_user -h "$h" mkdir -p "$h/Maildir/cur" "$h/Maildir/new" \
			"$h/Maildir/tmp" &&
		message 1 >"$h/Maildir/cur/$K1:2,S" &&
		message 2 >"$h/Maildir/cur/$K2:2,FS" &&
		message 3 >"$h/Maildir/cur/$K3:2," || return 1
	done &&
	printf "0 NonJunk\n" >"$HOME_B/Maildir/dovecot-keywords" &&
	{ [ "$(id -u)" != 0 ] ||
		chown -R "$TEST_USER:" "$HOME_A/Maildir" "$HOME_B/Maildir"; }
'

test_expect_success 'maildag numbers them before Dovecot ever looked' '
	for h in "$HOME_A" "$HOME_B"; do
		as_user -h "$h" "$APPLY" "$h/Maildir" 1796206203 \
			"1:$K1:\$Forwarded,work-project" "2:$K2" "20:$K3:\$Junk" ||
			return 1
	done &&
	ls "$HOME_A/Maildir/cur" "$HOME_B/Maildir/cur" &&
	test -f "$HOME_B/Maildir/cur/$K1:2,Sbc" &&
	test -f "$HOME_A/Maildir/cur/$K1:2,Sab"
'

test_expect_success 'Dovecot shows the same UIDs, UIDVALIDITY, UIDNEXT and keywords on both' '
	view A >view-a &&
	view B >view-b &&
	cat view-a &&
	cat >expect <<-\EOF &&
	UIDVALIDITY 1796206203
	UIDNEXT 21
	1 $Forwarded \Seen work-project 
	2 \Flagged \Seen 
	20 $Junk 
	EOF
	test_cmp expect view-a &&
	test_cmp view-a view-b &&
	logs_clean
'

test_expect_success 'a message added under the lock after Dovecot indexed the folder gets the same UID on both' '
	for h in "$HOME_A" "$HOME_B"; do
		message 4 >"$h/Maildir/new/$K4" &&
		{ [ "$(id -u)" != 0 ] || chown "$TEST_USER:" "$h/Maildir/new/$K4"; } &&
		as_user -h "$h" "$APPLY" "$h/Maildir" 1796206203 \
			"513:$K4:NonJunk" || return 1
	done &&
	view A >view-a &&
	view B >view-b &&
	cat view-a &&
	grep -x "UIDNEXT 514" view-a &&
	grep -x "513 NonJunk " view-a &&
	test_cmp view-a view-b &&
	logs_clean
'

test_expect_success 'a UID below Dovecot'"'"'s next UID is refused, the files left alone' '
	message 5 >"$HOME_A/Maildir/new/1700000009.M9P9Q9.host" &&
	{ [ "$(id -u)" != 0 ] || chown "$TEST_USER:" "$HOME_A/Maildir/new/1700000009.M9P9Q9.host"; } &&
	cp "$HOME_A/Maildir/dovecot-uidlist" uidlist.before &&
	test_must_fail as_user "$APPLY" "$HOME_A/Maildir" 1796206203 \
		"30:1700000009.M9P9Q9.host" &&
	test_cmp uidlist.before "$HOME_A/Maildir/dovecot-uidlist" &&
	test ! -e "$HOME_A/Maildir/dovecot-uidlist.lock"
'

test_done
