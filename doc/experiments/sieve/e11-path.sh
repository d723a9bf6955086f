#!/bin/sh
# E11: dovecot-lda -p FILE (the message as a file, not on stdin).  Dovecot
# hard-links the file into the Maildir instead of copying it when the
# file's mode fits the folder's (mail-copy.c:
# mail_storage_copy_can_use_hardlink): here, when Dovecot made the
# Maildir (0700 directories), not when the directories are 0755.  With
# "fileinto; keep" both copies are then links of the one inode.
. "$(dirname "$0")/env.sh"
for dirs in dovecot 0755; do
	x_setup
	[ "$dirs" = 0755 ] && as_user sh -c 'umask 022; mkdir -p ~/Maildir/cur ~/Maildir/new ~/Maildir/tmp'
	for s in plain twice; do
		msg 12 "$s" >"$XHOME/in.$s"; chown "$XUSER:" "$XHOME/in.$s"; chmod 600 "$XHOME/in.$s"
		as_user env DOVECOT_PRESERVE_ENVS="DOVECOT_HOSTNAME DOVECOT_HOSTDOMAIN" \
			DOVECOT_HOSTNAME=vm.mdgfeed DOVECOT_HOSTDOMAIN=mx1.example.org \
			"$LDA" -c "$XD/dovecot.conf" -e -p "$XHOME/in.$s" \
			-a xuser@example.org -f s@example.net </dev/null
		echo "== Maildir made by $dirs, $s: exit $?; the input file has $(stat -c '%h' "$XHOME/in.$s") links"
	done
	(cd "$XHOME/Maildir" && find . \( -path '*/new/*' -o -path '*/cur/*' \) -type f -printf '   inode %i links=%n %p\n' | sort)
done
