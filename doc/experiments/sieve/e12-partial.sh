#!/bin/sh
# E12: a Sieve script that stores twice ("fileinto Lists; keep"), with
# dovecot-lda killed (strace fault injection: SIGKILL on a rename) just
# as it renames the second message into new/ -- after Pigeonhole's first
# commit, before its second.  The prototype is the parent; what is left,
# and what the MTA's retry then does.  Also: is a dotlock with the
# token's host name left behind?
. "$(dirname "$0")/env.sh"
warm() {	# a fresh home, one delivery so Sieve's binary and the indexes exist
	x_setup && x_init && msg 0 warm | proto 2>/dev/null
}
# 1. which rename of the run moves the INBOX copy into new/?
warm
msg 21 twice >"$XD/in"; chmod 644 "$XD/in"
as_user "$PROTO" -- /usr/bin/strace -f -qq -e trace=rename -o "$XHOME/trace" \
	"$LDA" -c "$XD/dovecot.conf" -a xuser@example.org -f sender@example.net \
	<"$XD/in" 2>/dev/null
n=$(grep -n 'rename(' "$XHOME/trace" | grep '/Maildir/tmp/' | grep '/Maildir/new/' | cut -d: -f1)
echo "the INBOX copy is rename number $n of the run"
# 2. the same run, killed at that rename
warm
msg 21 twice >"$XD/in"; chmod 644 "$XD/in"
as_user "$PROTO" -- /usr/bin/strace -f -qq -o /dev/null -e trace=rename \
	-e inject=rename:signal=SIGKILL:when="$n" \
	"$LDA" -c "$XD/dovecot.conf" -a xuser@example.org -f sender@example.net \
	<"$XD/in" 2>"$XD/err"; echo "first attempt: exit $?; $(grep -o 'status=[0-9]* files=[0-9]*' "$XD/err")"
echo "== messages (the warm-up's and what the killed run left):"; disk_msgs
echo "== locks left:"; find "$XHOME/Maildir" -name '*.lock' -exec sh -c 'echo "$1: $(cat "$1")"' _ {} \;
[ "$(disk_msgs)" = "$(tree_msgs)" ] && echo "tree = disk"
proto <"$XD/in" 2>"$XD/err2"; echo "the MTA's retry: exit $? $(grep -v status= "$XD/err2")"
echo "copies of message 21: $(grep -l 'Subject: twice 21' $(find "$XHOME/Maildir" -path '*/new/*' -type f) | wc -l) (the script asks for 2)"
