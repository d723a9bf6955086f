#!/bin/sh
# E13: maildag-syncd (as it is today) runs beside a Sieve delivery and
# sees Dovecot's file in new/ before the LDA commits it (the prototype
# waits 3 s after the child, as an LDA held up by the writer lock would).
# Which commit holds the message, and does any commit say Input:?
. "$(dirname "$0")/env.sh"
x_setup && x_init || exit 1
as_user sh -c 'echo $$ >"$HOME/syncd.pid"; exec "$0" -v' "$BUILD/syncd/maildag-syncd" >"$XD/syncd.log" 2>&1 &
for i in $(seq 100); do grep -q 'watching [0-9]* directories' "$XD/syncd.log" && break; sleep 0.1; done
msg 30 plain | proto -s 3 2>"$XD/err"; echo "delivery: exit $?"
sleep 1
kill "$(cat "$XHOME/syncd.pid")"; wait
echo "== commits, newest first:"
xgit log --format='--- %s%n%b' refs/heads/mail | grep -v '^$'
echo "== commits that say Input: $(xgit log --format=%B refs/heads/mail | grep -c '^Input:')"
