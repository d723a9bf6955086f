#!/bin/sh
# E3: the prototype of the design delivers each Sieve case; the tree
# then holds exactly the Maildir's messages.
. "$(dirname "$0")/env.sh"
x_setup && x_init || exit 1
for s in plain spam drop twice seen away; do
	msg 6 "$s" | proto
	echo "== $s: exit $?"
done
echo "== disk"; disk_msgs
echo "== tree"; tree_msgs
[ "$(disk_msgs)" = "$(tree_msgs)" ] && echo "tree = disk"
echo "== commits"; xgit log --format='%s' refs/heads/mail
echo "== subscriptions in the tree"; xgit show refs/heads/mail:subscriptions
echo "== vacation replies: $(ls "$XD/sent" | wc -l)"
