#!/bin/sh
test_description='the daemon of virtual mailboxes lets go of idle repositories: after mail reached every mailbox, none of their pack files stays mapped in the daemon (each mapping is copied by every fork of a child: a daemon of 1,000 mailboxes forked a push 3-4 ms slower than one of one, doc/virtual.md), and every mailbox syncs as before afterwards'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] || test_skip_all "maildag-syncd is not built"

N=12
V=$USER_HOME/vmail
LOG=$TRASH/syncd.log
USERS=$(seq -f 'u%02g' 1 "$N")
vgit() {
	local u=$1
	shift
	git -c safe.directory='*' --git-dir="$V/example.org/$u/mail.git" "$@"
}
# pack_maps: mappings of pack files (.pack, .idx) in the daemon
pack_maps() { grep -c '/objects/pack/' "/proc/$(cat "$PIDS/syncd")/maps" || :; }

test_expect_success "setup: $N listed mailboxes, each a packed repository of 30 messages" '
	as_user mkdir -p "$USER_HOME/.config/maildag" &&
	{
		printf "{ \"virtual\": { \"maildir\": \"%s/%%d/%%n/Maildir\",\n" "$V"
		printf "  \"repository\": \"%s/%%d/%%n/mail.git\", \"mailboxes\": {\n" "$V"
		for u in $USERS; do printf "  \"%s@example.org\": {},\n" "$u"; done
		printf "  \"last@example.org\": {} } } }\n"
	} | as_user sh -c "cat >\"$USER_HOME/.config/maildag/config.json\"" &&
	as_user chmod 600 "$USER_HOME/.config/maildag/config.json" &&
	for u in $USERS last; do
		as_user mkdir -p "$V/example.org/$u/Maildir/cur" \
			"$V/example.org/$u/Maildir/new" "$V/example.org/$u/Maildir/tmp" &&
		for i in $(seq 1 30); do
			test_message "$u-$i" | as_user sh -c "cat >\"$V/example.org/$u/Maildir/cur/$((1700000000 + i)).M1P1Q$i.h:2,S\"" ||
				return 1
		done &&
		as_user maildag -a "$u@example.org" init >/dev/null &&
		ls "$V/example.org/$u/mail.git/objects/pack/" | grep -q "\.idx$" ||
			return 1
	done
'

# in_cur U: how many messages U's refs/heads/mail holds in cur/, with
# none left in new/
in_cur() {
	vgit "$1" ls-tree -r --name-only refs/heads/mail >"$TRASH/tree.$1" &&
	! grep -q "^new/" "$TRASH/tree.$1" && grep -c "^cur/" "$TRASH/tree.$1"
}

test_expect_success 'mail to every mailbox, read by the client, is committed by the one daemon' '
	daemon_start syncd "$LOG" maildag-syncd -v &&
	wait_for "grep -q \"serving $((N + 1)) mailboxes\" \"$LOG\"" 120 &&
	for u in $USERS; do
		test_message "to-$u" | as_user maildag-lda -a "$u@example.org" &&
		f=$(ls "$V/example.org/$u/Maildir/new") &&
		as_user mv "$V/example.org/$u/Maildir/new/$f" \
			"$V/example.org/$u/Maildir/cur/$f:2,S" || return 1
	done &&
	for u in $USERS; do
		wait_for "test \"\$(in_cur $u)\" = 31" 60 || return 1
	done
'

# Without the release, the indexes of the packs the commits above read
# stay mapped for as long as the daemon runs: the wait fails.
test_expect_success 'then no pack file of any mailbox stays mapped in the daemon' '
	wait_for "test \"\$(pack_maps)\" = 0" 120 ||
	{ grep "/objects/pack/" "/proc/$(cat "$PIDS/syncd")/maps" | head -5 >&2; false; }
'

test_expect_success 'and every mailbox syncs as before: a client change, a delivery' '
	for u in $USERS; do
		as_user mv "$V/example.org/$u/Maildir/cur/1700000001.M1P1Q1.h:2,S" \
			"$V/example.org/$u/Maildir/cur/1700000001.M1P1Q1.h:2,FS" &&
		test_message "again-$u" | as_user maildag-lda -a "$u@example.org" ||
			return 1
	done &&
	for u in $USERS; do
		wait_for "vgit $u ls-tree -r --name-only refs/heads/mail | grep -q \"/1700000001\.M1P1Q1\.h:2,FS\$\"" 60 &&
		vgit "$u" ls-tree -r --name-only refs/heads/mail | grep -q "^new/" ||
			return 1
	done &&
	! grep -E "error|warning" "$LOG"
'

test_expect_success 'maildag fsck is clean for every mailbox' '
	for u in $USERS; do
		as_user maildag -a "$u@example.org" fsck >/dev/null || return 1
	done
'

test_done
