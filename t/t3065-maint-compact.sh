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
	echo "$max" >"$TRASH/max-packs" &&
	# every class holds fewer than 2,000 objects: one pack each (without
	# the roll-up: one more pack per round and class)
	test $max -le 3 &&
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

pass=
# stop_at_unlink CMD...: run CMD as the user under strace, held at the
# entry of its first unlink (strace delays it; /proc shows it there): the
# new packs are written and durable, the multi-pack-index, the old packs
# and the loose copies not yet removed.  Sets $pass (the background job),
# $tracer (strace) and $tracee (CMD's process).
stop_at_unlink() {
	as_user strace -qq -o /dev/null -e trace=unlink,unlinkat \
		-e inject=unlink,unlinkat:delay_enter=600000000:when=1 "$@" &
	pass=$!
	tracer= tracee=
	wait_stopped
}
# the descendants of pid $1, one a line
descendants() {
	local c
	for c in $(pgrep -P "$1"); do
		echo "$c"
		descendants "$c"
	done
}
wait_stopped() {
	local n=0 p
	while [ $n -lt 1200 ]; do
		for p in $(descendants $pass); do
			[ "$(cat /proc/$p/comm 2>/dev/null)" = maildag ] || continue
			case "$(cut -d" " -f1 /proc/$p/syscall 2>/dev/null)" in
			87|263)	tracee=$p
				tracer=$(awk "/^PPid:/ { print \$2 }" /proc/$p/status)
				return 0;;
			esac
		done
		kill -0 $pass 2>/dev/null || { echo "the pass ended unheld" >&2; return 1; }
		sleep 0.1
		n=$((n + 1))
	done
	echo "the pass was not held: $(ps -o pid,stat,comm $(descendants $pass) 2>&1)" >&2
	return 1
}
# resume_pass: strace goes, the pass goes on from where it was held;
# returns once it has ended
resume_pass() {
	kill -KILL $tracer 2>/dev/null
	wait $pass 2>/dev/null
	while kill -0 $tracee 2>/dev/null &&
	      [ "$(sed "s/.*) //" /proc/$tracee/stat | cut -d" " -f1)" != Z ]; do
		sleep 0.1
	done
	pass=
}
# end_pass: whatever became of the test, no held pass is left
end_pass() {
	local p
	[ -n "$pass" ] || return 0
	for p in $(descendants $pass); do kill -KILL $p 2>/dev/null; done
	wait $pass 2>/dev/null
	pass=
	return 0
}

test_expect_success 'a delivery during a pass succeeds, and the pass then ends well' '
	n=$(tree_files | wc -l) &&
	deliver 20 "during-a-" &&
	rm -f "$REPO/objects/pack/multi-pack-index" &&
	before=$(packs) &&
	stop_at_unlink maildag maintain &&
	{
		# mid-way: new packs beside the old
		test "$(packs)" -gt "$before" &&
		deliver 5 "during-b-" &&
		all_there $((n + 25))
	}
	r=$?
	if [ $r = 0 ]; then resume_pass; else end_pass; fi
	test $r = 0 &&
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
	{
		test "$(packs)" -gt "$before" || {
			echo "held with $(packs) packs, $before before;" \
				"syscall $(cat /proc/$tracee/syscall)" >&2
			ls -l "$REPO/objects/pack" >&2
			false
		}
	} &&
	kill -KILL $tracee
	r=$?
	end_pass
	test $r = 0 &&
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
	end_pass &&
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
	end_pass &&
	echo 1000000000 >"$TRASH/now" &&
	chmod 644 "$TRASH/now" &&
	test_message clock | as_user env MAILDAG_TEST_NOW_FILE="$TRASH/now" maildag-lda &&
	test "$(mgit log -1 --format=%ct refs/heads/mail)" = 1000000000 &&
	find "$MAILDIR/new" -name "1000000000.*" | grep .
'

test_expect_success TESTCLOCK 'a test clock days ahead ages no object: the grace runs on file times' '
	end_pass &&
	echo "{\"maintenance\": {\"grace\": 60}}" >"$USER_HOME/.config/maildag/config.json" &&
	chown -R "$TEST_USER:" "$USER_HOME/.config" &&
	echo $(( $(date +%s) + 10 * 86400 )) >"$TRASH/now" &&
	chmod 644 "$TRASH/now" &&
	young=$(echo "young, clock ahead $$" | as_user git --git-dir="$REPO" hash-object -w --stdin) &&
	old=$(echo "old, clock ahead $$" | as_user git --git-dir="$REPO" hash-object -w --stdin) &&
	touch -d "-2 minutes" "$REPO/objects/$(echo $old | cut -c1-2)/$(echo $old | cut -c3-)" &&
	as_user env MAILDAG_TEST_NOW_FILE="$TRASH/now" maildag maintain >out && cat out &&
	mgit cat-file -e $young &&
	! mgit cat-file -e $old &&
	rm "$USER_HOME/.config/maildag/config.json"
'

test_done
