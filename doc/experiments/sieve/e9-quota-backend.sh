#!/bin/sh
# E9: does Dovecot's quota see a message that another writer (as
# maildag-syncd applying a peer's delivery) put into the Maildir?  Limit
# 10 KB: a 3 KB delivery by dovecot-lda, then a 9 KB file written into
# cur/ directly, then another 3 KB delivery.  maildir++ quota
# (maildirsize) against the count backend (Dovecot's indexes); then once
# more after Dovecot has synced INBOX (as an IMAP session would).
. "$(dirname "$0")/env.sh"
sized() { msg "$1" plain; head -c "$2" /dev/zero | tr '\0' 'x' | fold -w 70; }
for backend in "maildir:User quota" "count:User quota"; do
	X_MAIL_PLUGINS=quota X_PLUGIN_SETTINGS="quota = $backend
  quota_rule = *:storage=10K
  quota_vsizes = yes" x_setup
	sized 1 3000 | lda -e -f s@example.net; a=$?
	sized 2 9000 >"$XD/peer"
	n=$(wc -c <"$XD/peer"); mv "$XD/peer" "$XHOME/Maildir/cur/1700000000.M1P1.peer,S=$n:2,"
	chown "$XUSER:" "$XHOME/Maildir/cur/"*
	sized 3 3000 | lda -e -f s@example.net 2>"$XD/err"; b=$?
	as_user doveadm -c "$XD/dovecot.conf" mailbox status messages INBOX >/dev/null	# Dovecot syncs INBOX
	sized 4 3000 | lda -e -f s@example.net 2>"$XD/err2"; c=$?
	echo "$backend: first $a, after a 9 KB file from another writer: $b $(cat "$XD/err"), after Dovecot synced INBOX: $c $(cat "$XD/err2")"
	as_user doveadm -c "$XD/dovecot.conf" quota get 2>&1 | sed 's/^/  /'
	[ -f "$XHOME/Maildir/maildirsize" ] && echo "  maildirsize: $(tr '\n' ' ' <"$XHOME/Maildir/maildirsize")"
done
