#!/bin/sh
# E6: dovecot-lda's exit status and stderr in the cases maildag must map:
# quota (with and without -e, quota_full_tempfail), Sieve reject, a
# broken Sieve script, an unwritable Maildir, a bad option, a missing
# config.  What was written and sent is listed with each.
. "$(dirname "$0")/env.sh"
big() { msg 9 "$1"; head -c 30000 /dev/zero | tr '\0' 'x' | fold -w 70; }
case1() {	# case1 TITLE MSG-SUBJECT [LDA ARGS]: one delivery, reported
	title=$1 subj=$2; shift 2
	big "$subj" >"$XD/in"; chmod 644 "$XD/in"; rm -f "$XD"/sent/*
	: >"$XD/dovecot.log"
	lda -a xuser@example.org -f sender@example.net "$@" <"$XD/in" >"$XD/out" 2>&1
	st=$?
	printf '%-36s exit %-3s stderr: %s | files %s | sent %s | log: %s\n' "$title" "$st" \
		"$(tr '\n' ' ' <"$XD/out")" "$(disk_msgs | wc -l)" "$(ls "$XD/sent" | wc -l)" \
		"$(grep -o '\(Info\|Error\|Warning\|Fatal\): .*' "$XD/dovecot.log" | cut -c1-110 | tr '\n' ' ')"
}
QUOTA='quota = maildir:User quota
  quota_rule = *:storage=10K'
X_MAIL_PLUGINS=quota X_PLUGIN_SETTINGS=$QUOTA x_setup
case1 "quota, default" plain
case1 "quota, -e" plain -e
X_MAIL_PLUGINS=quota X_PLUGIN_SETTINGS=$QUOTA X_EXTRA_CONF='quota_full_tempfail = yes' x_setup
case1 "quota, quota_full_tempfail" plain -e
echo "maildirsize: $(ls "$XHOME/Maildir" | grep -c maildirsize)"
x_setup
cat >"$XHOME/sieve/main.sieve" <<'S'
require ["reject"];
reject "not here";
S
case1 "sieve reject" plain
case1 "sieve reject, -e" plain -e
printf 'require ["fileinto"];\nif header :contains "subject" "x" { fileinto "A" \n' >"$XHOME/sieve/main.sieve"
case1 "broken sieve script" plain -e
x_setup
chmod 500 "$XHOME/Maildir" 2>/dev/null || { as_user mkdir -p "$XHOME/Maildir/new"; }
lda </dev/null >/dev/null 2>&1	# make the Maildir first
chmod 500 "$XHOME/Maildir/new" "$XHOME/Maildir/tmp"
case1 "unwritable new/ and tmp/" plain -e
chmod 700 "$XHOME/Maildir/new" "$XHOME/Maildir/tmp"
case1 "bad option" plain -e -Z
XD_SAVE=$XD
case1 "missing -c file" plain -e -c /nonexistent.conf
