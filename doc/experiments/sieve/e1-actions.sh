#!/bin/sh
# E1: what dovecot-lda + Pigeonhole write for each Sieve action, its exit
# status, its log lines, and what the stub sendmail got.
. "$(dirname "$0")/env.sh"
x_setup || exit 1
for s in plain spam drop twice seen away; do
	msg 1 "$s" >"$XD/in.$s"
	chmod 644 "$XD/in.$s"
	lda -a xuser@example.org -f sender@example.net <"$XD/in.$s"
	echo "== $s: exit $?"
	(cd "$XHOME/Maildir" && find . -path '*/tmp' -prune -o -newer "$XD/in.$s" -type f -print | sort)
done
echo "== log"; cat "$XD/dovecot.log"
echo "== sent"; for f in "$XD"/sent/*; do [ -e "$f" ] && cat "$f"; done
echo "== bytes: input vs file in Junk"
cmp "$XD/in.spam" "$XHOME"/Maildir/.Junk/new/* && echo identical
echo "== subscriptions"; cat "$XHOME/Maildir/subscriptions"
