#!/bin/sh
test_description='maildag status and maildag sync: without a daemon, and against a stand-in'
. "$abs_top_srcdir/t/test-lib.sh"

# The daemon's side of these verbs is tested with the real maildag-syncd
# elsewhere; here a stand-in answers as the control socket's protocol
# (common/control.h) says, so that what the admin tool prints, and its
# exit statuses, are checked for every kind of answer.
. "$abs_top_srcdir/t/lib-fake-syncd.sh"
[ -n "$PYTHON" ] && test_set_prereq PYTHON

# ugit ARGS: git writing the user's repository, as the user (what root
# writes there is root's alone: core.sharedRepository is 0600)
ugit() {
	as_user git -c safe.directory='*' -c user.name=t -c user.email=t@t \
		--git-dir="$REPO" "$@"
}

# run_status WANT-STATUS args...: maildag as the user, stdout in out,
# stderr in err
run_maildag() {
	local want=$1 got=0
	shift
	as_user maildag "$@" >out 2>err || got=$?
	cat out err >&2
	if [ "$got" != "$want" ]; then
		echo "exit $got, wanted $want" >&2
		return 1
	fi
}

test_expect_success 'setup: a mailbox with two peers' '
	test_message first | as_user maildag-lda &&
	mkdir -p "$USER_HOME/.config/maildag" &&
	cat >"$USER_HOME/.config/maildag/config.json" <<-EOF &&
	{ "node": "mx1",
	  "peers": { "mx2": { "url": "file://$TRASH/mx2.git" },
		     "usb": { "url": "file:///media/none.git", "push": false } } }
	EOF
	chown -R "$TEST_USER" "$USER_HOME/.config" &&
	chmod -R go-w "$USER_HOME/.config"
'

test_expect_success 'status without a daemon: says so, exits 3, shows the peers' '
	run_maildag 3 status &&
	test "$(cat err)" = "maildag-syncd is not running" &&
	grep -q "^node mx1: refs/heads/mail at $(mgit rev-parse --short=10 refs/heads/mail)\$" out &&
	grep -q "^peer mx2  file://$TRASH/mx2.git\$" out &&
	grep -q "^  commits:  nothing from mx2 yet" out &&
	grep -q "^  push:     on (state unknown)\$" out &&
	sed -n "/^peer usb/,\$p" out | grep -q "^  push:     off\$"
'

test_expect_success 'status without a daemon: commits ahead on either side' '
	ugit update-ref refs/peers/mx2/mail refs/heads/mail &&
	test_message second | as_user maildag-lda &&
	run_maildag 3 status &&
	grep -q "^  commits:  ours 1 ahead, theirs 0 ahead (refs/peers/mx2/mail at $(mgit rev-parse --short=10 refs/peers/mx2/mail))\$" out &&
	tree=$(mgit rev-parse refs/peers/mx2/mail^{tree}) &&
	theirs=$(ugit commit-tree -p refs/peers/mx2/mail -m peer "$tree") &&
	theirs2=$(ugit commit-tree -p "$theirs" -m peer2 "$tree") &&
	ugit update-ref refs/peers/mx2/mail "$theirs2" &&
	run_maildag 3 status &&
	grep -q "^  commits:  ours 1 ahead, theirs 2 ahead " out
'

test_expect_success PYTHON 'status --json without a daemon: the same shape, running false' '
	run_maildag 3 status --json &&
	test "$(wc -l <out)" = 1 &&
	"$PYTHON" -c "
import json, sys
s = json.load(open(\"out\"))
assert s[\"running\"] is False and s[\"ok\"] is False, s
assert s[\"node\"] == \"mx1\", s
p = {x[\"name\"]: x for x in s[\"peers\"]}
assert p[\"mx2\"][\"ahead\"] == 1 and p[\"mx2\"][\"behind\"] == 2, p
assert p[\"mx2\"][\"push\"] is None and p[\"mx2\"][\"fetch\"] is None, p
assert p[\"usb\"][\"peer_ref\"] is None, p
"
'

test_expect_success 'sync without a daemon: 69 and one line' '
	run_maildag 69 sync &&
	test "$(wc -l <err)" = 1 &&
	grep -q "maildag-syncd is not running" err
'

test_expect_success 'bad usage: 64' '
	run_maildag 64 status --nope &&
	run_maildag 64 status extra &&
	run_maildag 64 sync extra
'

test_expect_success PYTHON 'status from a daemon: every field printed' '
	cat >"$TRASH/answers.json" <<-EOF &&
	{ "status": { "ok": true, "node": "mx1", "pid": 4242,
	    "mail": "$(mgit rev-parse refs/heads/mail)",
	    "peers": [
	      { "name": "mx2", "url": "file://$TRASH/mx2.git",
		"peer_ref": "$(mgit rev-parse refs/peers/mx2/mail)",
		"ahead": 1, "behind": 2,
		"push": { "last_ok": -12, "last_error": "connection refused\\nagain",
			  "error_at": -73, "failures": 3, "next_try": 47,
			  "running": true, "id": "1111111111111111111111111111111111111111" },
		"fetch": { "last_ok": null, "last_error": null, "error_at": null,
			   "failures": 0, "next_try": null, "running": false, "id": null } },
	      { "name": "usb", "url": "file:///media/none.git", "peer_ref": null,
		"ahead": 0, "behind": 0, "push": null,
		"fetch": { "last_ok": -5, "failures": 0, "running": false,
			   "id": "2222222222222222222222222222222222222222" } } ] },
	  "sync": { "ok": true } }
	EOF
	chmod 644 "$TRASH/answers.json" &&
	fake_start "answers=$TRASH/answers.json" &&
	run_maildag 0 status &&
	test ! -s err &&
	grep -q "^node mx1: refs/heads/mail at $(mgit rev-parse --short=10 refs/heads/mail), maildag-syncd pid 4242\$" out &&
	grep -q "^  commits:  ours 1 ahead, theirs 2 ahead " out &&
	grep -Eq "^  push:     last ok [0-9-]+ [0-9:]+ \(1[0-9] s ago\), accepted 1111111111; running now\$" out &&
	grep -Eq "^            last error [0-9-]+ [0-9:]+ \([0-9]+ s ago\), 3 failures in a row: connection refused\?again\$" out &&
	grep -Eq "^            next try [0-9-]+ [0-9:]+ \(in [0-9]+ s\)\$" out &&
	grep -q "^  fetch:    last ok never\$" out &&
	sed -n "/^peer usb/,\$p" out >usb &&
	grep -q "^  push:     off\$" usb &&
	grep -Eq "^  fetch:    last ok .* s ago\), fetched 2222222222\$" usb &&
	tail -n 1 "$TRASH/requests" | grep -q "\"cmd\": *\"status\""
'

test_expect_success PYTHON 'status --json from a daemon: its answer, on one line' '
	run_maildag 0 status --json &&
	test "$(wc -l <out)" = 1 &&
	"$PYTHON" -c "
import json
s = json.load(open(\"out\"))
assert s[\"ok\"] is True and s[\"pid\"] == 4242, s
assert s[\"peers\"][0][\"push\"][\"failures\"] == 3, s
"
'

test_expect_success PYTHON 'sync with a daemon: 0, the request sent' '
	run_maildag 0 sync &&
	test ! -s out && test ! -s err &&
	tail -n 1 "$TRASH/requests" | grep -q "\"cmd\": *\"sync\""
'

test_expect_success PYTHON 'a daemon that refuses: 75 with its reason' '
	echo "{\"sync\": {\"ok\": false, \"error\": \"shutting down\"},
	       \"status\": {\"ok\": false, \"error\": \"shutting down\"}}" >"$TRASH/answers.json" &&
	run_maildag 75 sync &&
	grep -q "maildag-syncd: shutting down" err &&
	run_maildag 75 status &&
	grep -q "maildag-syncd: shutting down" err
'

test_expect_success PYTHON 'a daemon that died: status 3, sync 69' '
	fake_stop &&
	test -S "$(sock_path)" &&
	run_maildag 3 status &&
	test "$(cat err)" = "maildag-syncd is not running" &&
	run_maildag 69 sync
'

test_done
