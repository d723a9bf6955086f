#!/bin/sh
test_description='maintenance keeps a repository compact: packs by class, rolled up geometrically, unreachable objects pruned after the grace, no delivery blocked, nothing lost to a killed pass'
. "$abs_top_srcdir/t/test-lib.sh"

packs() { find "$REPO/objects/pack" -name 'pack-*.pack' | wc -l; }
loose_count() {
	find "$REPO/objects" -path '*/objects/[0-9a-f][0-9a-f]/*' -type f | wc -l
}
deliver() {	# deliver N messages named PREFIX<i>
	local i=0
	while [ $i -lt "$1" ]; do
		test_message "$2$i" | as_user maildag-lda || return 1
		i=$((i + 1))
	done
}
# every message of the history readable, fsck clean (no dangling check:
# young unreachable objects are kept on purpose)
all_there() {
	mgit fsck --strict --no-dangling >"$TRASH/.fsck" 2>&1 ||
		{ cat "$TRASH/.fsck" >&2; return 1; }
	test "$(tree_files | wc -l)" = "$1"
}

test_expect_success 'setup: maildag init leaves a packed repository' '
	mkdir -p "$MAILDIR/cur" "$MAILDIR/new" "$MAILDIR/tmp" &&
	i=0 &&
	while [ $i -lt 300 ]; do
		test_message "m$i" >"$MAILDIR/cur/1700000000.M${i}P1Q1.test,S=200:2,S"
		i=$((i + 1))
	done &&
	chown -R "$TEST_USER:" "$MAILDIR" &&
	as_user maildag init >out &&
	grep "^packed: " out &&
	test "$(loose_count)" = 0 &&
	test "$(packs)" -le 3 &&
	for p in "$REPO"/objects/pack/pack-*.pack; do
		grep -qx "live\|history\|expunged" "${p%.pack}.maildag" || return 1
	done &&
	all_there 300
'

test_expect_success 'maildag maintain reports; maildag status shows the last pass' '
	as_user maildag maintain >out &&
	grep "^packs [0-9]* -> [0-9]*" out &&
	as_user maildag status >st 2>&1 || : &&
	grep -i "^maintenance:" st &&
	as_user maildag status --json >st.json 2>/dev/null || : &&
	grep "\"maintenance\"" st.json &&
	grep "\"packs_after\"" st.json &&
	as_user maildag status --metrics >st.om 2>/dev/null || : &&
	grep "^maildag_packs{.*} [0-9]" st.om &&
	grep "^maildag_loose_objects{.*} 0" st.om &&
	grep "^maildag_maintenance_last_success{.*} 1" st.om
'

test_expect_success 'after many deliveries and passes the pack count stays bounded' '
	n=300 && round=0 && max=0 &&
	while [ $round -lt 16 ]; do
		deliver 12 "r$round-" &&
		n=$((n + 12)) &&
		# a flag change and an expunge, as a client would
		f=$(find "$MAILDIR/new" -type f | head -1) &&
		mv "$f" "$MAILDIR/cur/$(basename "$f"):2,S" &&
		as_user maildag maintain >/dev/null &&
		test "$(loose_count)" = 0 &&
		all_there $n || return 1
		p=$(packs) && [ $p -gt $max ] && max=$p
		round=$((round + 1))
	done &&
	say "at most $max packs over 16 rounds of deliveries" &&
	# without roll-up: one pack per round and class, 16 or more
	test $max -le 10 &&
	test -e "$REPO/objects/pack/multi-pack-index"
'

test_expect_success 'unreachable objects older than the grace go, younger ones stay' '
	old=$(echo "old unreachable $$" | as_user git --git-dir="$REPO" hash-object -w --stdin) &&
	young=$(echo "young unreachable $$" | as_user git --git-dir="$REPO" hash-object -w --stdin) &&
	touch -d "-2 days" "$REPO/objects/$(echo $old | cut -c1-2)/$(echo $old | cut -c3-)" &&
	# the same in a pack (a refused fetch leaves such packs)
	pold=$(echo "old packed $$" | as_user git --git-dir="$REPO" hash-object -w --stdin) &&
	pyoung=$(echo "young packed $$" | as_user git --git-dir="$REPO" hash-object -w --stdin) &&
	printf "%s\n" $pold | as_user git --git-dir="$REPO" pack-objects -q "$REPO/objects/pack/pack" >pa &&
	printf "%s\n" $pyoung | as_user git --git-dir="$REPO" pack-objects -q "$REPO/objects/pack/pack" >pb &&
	touch -d "-2 days" "$REPO/objects/pack/pack-$(cat pa).pack" &&
	rm -f "$REPO/objects/$(echo $pold | cut -c1-2)/$(echo $pold | cut -c3-)" \
	      "$REPO/objects/$(echo $pyoung | cut -c1-2)/$(echo $pyoung | cut -c3-)" &&
	as_user maildag maintain >out && cat out &&
	! mgit cat-file -e $old &&
	! mgit cat-file -e $pold &&
	mgit cat-file -e $young &&
	mgit cat-file -e $pyoung &&
	grep " 2 unreachable pruned" out &&
	# the young one kept its pack'"'"'s time: a day on, it goes too
	as_user maildag maintain >out &&
	mgit cat-file -e $pyoung &&
	for f in $(find "$REPO/objects" -path "*/objects/[0-9a-f][0-9a-f]/*" -type f); do
		touch -d "-25 hours" "$f"
	done &&
	as_user maildag maintain >out && cat out &&
	! mgit cat-file -e $young &&
	! mgit cat-file -e $pyoung &&
	all_there $(tree_files | wc -l)
'

test_expect_success 'maintenance.grace is read, and refused below 60' '
	mkdir -p "$USER_HOME/.config/maildag" &&
	echo "{\"maintenance\": {\"grace\": 10}}" >"$USER_HOME/.config/maildag/config.json" &&
	chown -R "$TEST_USER:" "$USER_HOME/.config" &&
	test_must_fail as_user maildag maintain 2>err &&
	grep "maintenance.grace" err &&
	echo "{\"maintenance\": {\"grace\": 60, \"interval\": 600}}" >"$USER_HOME/.config/maildag/config.json" &&
	x=$(echo "a minute $$" | as_user git --git-dir="$REPO" hash-object -w --stdin) &&
	touch -d "-2 minutes" "$REPO/objects/$(echo $x | cut -c1-2)/$(echo $x | cut -c3-)" &&
	as_user maildag maintain &&
	! mgit cat-file -e $x &&
	rm "$USER_HOME/.config/maildag/config.json"
'

# stop_at_unlink CMD...: run CMD as the user under strace, stopped (SIGSTOP) at its
# first unlink: the new packs are written and durable, the old ones and
# the multi-pack-index not yet removed.  Sets $pass (strace's pid) and
# $tracee; waits until the tracee is stopped.
stop_at_unlink() {
	as_user strace -qq -o /dev/null -e trace=unlink,unlinkat \
		-e inject=unlink,unlinkat:signal=SIGSTOP:when=1 "$@" &
	pass=$!
	wait_stopped
}
wait_stopped() {
	local n=0 tracer st
	while [ $n -lt 600 ]; do
		# $pass is the subshell of as_user; then strace; then maildag
		tracer=$(pgrep -P $pass | head -1)
		tracee=${tracer:+$(pgrep -P $tracer | head -1)}
		st=${tracee:+$(awk "{print \$3}" /proc/$tracee/stat 2>/dev/null)}
		case "$st" in t|T) return 0;; esac
		sleep 0.1
		n=$((n + 1))
	done
	return 1
}

test_expect_success 'a delivery during a pass succeeds, and the pass then ends well' '
	n=$(tree_files | wc -l) &&
	deliver 20 "during-a-" &&
	rm -f "$REPO/objects/pack/multi-pack-index" &&
	before=$(packs) &&
	stop_at_unlink maildag maintain &&
	# mid-way: new packs beside the old
	test "$(packs)" -gt "$before" &&
	deliver 5 "during-b-" &&
	all_there $((n + 25)) &&
	kill -CONT $tracee &&
	wait $pass &&
	all_there $((n + 25)) &&
	as_user maildag maintain &&
	test "$(loose_count)" = 0 &&
	all_there $((n + 25))
'

test_expect_success 'a pass killed mid-way loses nothing' '
	n=$(tree_files | wc -l) &&
	deliver 20 "killed-" &&
	before=$(packs) &&
	stop_at_unlink maildag maintain &&
	test "$(packs)" -gt "$before" &&
	kill -KILL $tracee &&
	{ wait $pass || :; } &&
	all_there $((n + 20)) &&
	deliver 3 "after-kill-" &&
	as_user maildag maintain >out && cat out &&
	all_there $((n + 23)) &&
	test "$(loose_count)" = 0 &&
	test "$(find "$REPO/objects/pack" -name "pack-*.pack" | while read p; do
		test -e "${p%.pack}.maildag" || echo unmarked; done)" = ""
'

if grep -q "define MAILDAG_TEST_CLOCK 1" "$abs_top_builddir/autoconf.h" 2>/dev/null
then
	test_set_prereq TESTCLOCK
else
	test_set_prereq NORMALCLOCK
fi

test_expect_success NORMALCLOCK 'a normal build ignores MAILDAG_TEST_NOW_FILE' '
	echo 1000000000 >"$TRASH/now" &&
	chmod 644 "$TRASH/now" &&
	test_message clock | as_user env MAILDAG_TEST_NOW_FILE="$TRASH/now" maildag-lda &&
	t=$(mgit log -1 --format=%ct refs/heads/mail) &&
	test "$t" -gt 1700000000 &&
	! find "$MAILDIR/new" -name "1000000000.*" | grep . &&
	echo "{\"maintenance\": {\"grace\": 60}}" >"$USER_HOME/.config/maildag/config.json" &&
	chown -R "$TEST_USER:" "$USER_HOME/.config" &&
	echo 4000000000 >"$TRASH/now" &&
	x=$(echo "young $$" | as_user git --git-dir="$REPO" hash-object -w --stdin) &&
	as_user env MAILDAG_TEST_NOW_FILE="$TRASH/now" maildag maintain &&
	mgit cat-file -e $x &&
	rm "$USER_HOME/.config/maildag/config.json"
'

test_expect_success TESTCLOCK 'a --enable-test-clock build reads MAILDAG_TEST_NOW_FILE' '
	echo 1000000000 >"$TRASH/now" &&
	chmod 644 "$TRASH/now" &&
	test_message clock | as_user env MAILDAG_TEST_NOW_FILE="$TRASH/now" maildag-lda &&
	test "$(mgit log -1 --format=%ct refs/heads/mail)" = 1000000000 &&
	find "$MAILDIR/new" -name "1000000000.*" | grep .
'

test_done
