#!/bin/sh
# E2: DOVECOT_HOSTNAME puts a per-delivery token into every file name
# dovecot-lda writes; DOVECOT_HOSTDOMAIN keeps the names it shows the
# world (Message-IDs of vacation replies).  And: does dovecot-lda keep an
# inherited descriptor (with its flock) open while it runs?
. "$(dirname "$0")/env.sh"
x_setup || exit 1
tok=mdg0123456789abcdef
for s in plain twice seen away; do
	msg 2 "$s" >"$XD/in.$s"
	as_user env DOVECOT_HOSTNAME="vm.$tok" DOVECOT_HOSTDOMAIN=mx1.example.org \
		"$LDA" -c "$XD/dovecot.conf" -a xuser@example.org \
		-f sender@example.net <"$XD/in.$s"
	echo "== $s: exit $?"
done
(cd "$XHOME/Maildir" && find . -path '*/tmp' -prune -o -path '*/cur/*' -print -o -path '*/new/*' -print | sort)
echo "== uidlists"; cat "$XHOME/Maildir/dovecot-uidlist" "$XHOME/Maildir/.Lists/dovecot-uidlist"
echo "== vacation Message-ID"; grep -h '^Message-ID' "$XD"/sent/*
echo "== inherited fd: a lock file held on fd 9, input from a fifo"
rm -f "$XD/fifo" "$XD/lockf"; mkfifo "$XD/fifo"; : >"$XD/lockf"; chmod 666 "$XD/fifo" "$XD/lockf"
(
	exec 9<>"$XD/lockf"
	flock 9
	as_user "$LDA" -c "$XD/dovecot.conf" -a xuser@example.org \
		-f sender@example.net <"$XD/fifo" 9<&9 &
	echo $! >"$XD/ldapid"
	exec 9>&-
	wait
) &
exec 7>"$XD/fifo"
sleep 1
pid=$(pgrep -u "$XUSER" -f dovecot-lda | head -n1)
echo "dovecot-lda pid $pid fds:"; ls -l /proc/$pid/fd | awk '{print $(NF-2), $(NF-1), $NF}' | sed 1d
if flock -n "$XD/lockf" true; then echo "lock free (NOT kept)"; else echo "lock held by the child"; fi
msg 3 plain >&7; exec 7>&-
wait
if flock -n "$XD/lockf" true; then echo "after exit: lock free"; fi
