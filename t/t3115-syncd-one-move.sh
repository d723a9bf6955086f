#!/bin/sh
test_description='maildag-syncd commits a MOVE and a folder RENAME as one change, however the daemon and Dovecot interleave'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

command -v perl >/dev/null 2>&1 || test_skip_all 'perl is not installed'
command -v strace >/dev/null 2>&1 || test_skip_all 'strace is not installed'

N=300		# messages moved, renamed
ROUNDS=5	# of each, under load

dovecot_stalled_imap

# move_all FROM TO [stall]: MOVE every message of FROM to TO, one IMAP
# command; with stall, Dovecot stops 3 s before its first unlink
move_all() {
	local first
	if [ -n "${3:-}" ]; then
		first=$(ls "$MAILDIR/.$1/cur" | sort | head -n 1) &&
		echo "$MAILDIR/.$1/cur/$first" >"$TRASH/stall-path" &&
		: >"$TRASH/strace.out" &&
		DOVECOT_IMAP=$TRASH/imap-stalled
	fi
	imap_open &&
	imap_send "SELECT $1" >/dev/null &&
	imap_send "MOVE 1:* $2" >/dev/null &&
	imap_close &&
	if [ -n "${3:-}" ]; then
		grep -q "DELAYED" "$TRASH/strace.out" || {
			echo "Dovecot was not held" >&2; return 1; }
	fi
}

# in_tree FOLDER COUNT: wait until mail holds COUNT messages in FOLDER
in_tree() {
	wait_for "[ \$(tree_state | grep -c '^\.$1/') = $2 ]" 60
}

# mark_log: one_change looks at the daemon's log from here on
mark_log() { wc -l <"$SYNCD_LOG" >log.mark; }

# keys REF: the message keys REF holds, sorted
keys() { tree_state "$1" | sed 's|.*/||; s/[,:].*//' | sort; }

# one_change OLD [MOVED]: every commit since OLD moved messages (or
# folders, or flags), none added or expunged one; no key was given a key
# of its own; no alarm; what moved adds up to MOVED (when the daemon
# cannot have seen a MOVE and the MOVE back as one: with them apart)
one_change() {
	mgit log --format=%s "$1..refs/heads/mail" >subjects &&
	cat subjects &&
	! grep -E "added|expunged" subjects &&
	{ [ -z "${2:-}" ] ||
	  test "$(sed -n 's/.* \([0-9][0-9]*\) moved.*/\1/p' subjects |
		awk '{ n += $1 } END { print n + 0 }')" = "$2"; } &&
	as_user maildag log --expunged >expunged &&
	! test -s expunged &&
	tail -n +$(($(cat log.mark) + 1)) "$SYNCD_LOG" >log.new &&
	! grep -E "mass deletion|repeats a key" log.new &&
	keys refs/heads/mail >keys.now &&
	test_cmp keys.start keys.now
}

test_expect_success "setup: $N messages in A, B empty, a daemon" '
	as_user mkdir -p "$MAILDIR/cur" "$MAILDIR/new" "$MAILDIR/tmp" \
		"$MAILDIR/.A/cur" "$MAILDIR/.A/new" "$MAILDIR/.A/tmp" &&
	as_user touch "$MAILDIR/.A/maildirfolder" &&
	dovecot_make_msgs "$MAILDIR/.A/cur" $N a S &&
	dovecot_make_msgs "$MAILDIR/cur" 1 i S &&
	imap "SELECT A" "CREATE B" "CREATE A.x" >/dev/null &&
	dovecot_make_msgs "$MAILDIR/.A.x/cur" 30 x S &&
	syncd_start &&
	syncd_idle &&
	test "$(tree_state | wc -l)" = $((N + 31)) &&
	keys refs/heads/mail >keys.start
'

# Dovecot keeps the name the first time a message moves; afterwards
# (its GUID is not its name, or the destination still lists the name)
# it gives a new one: round 2 and later move under new names
for round in 1 2; do
test_expect_success "MOVE A -> B -> A, Dovecot held between the halves ($round)" '
	before=$(mail_head) && mark_log &&
	move_all A B stall &&
	syncd_idle &&
	move_all B A stall &&
	syncd_idle &&
	one_change $before $((2 * N))
'
done

test_expect_success 'Dovecot gave new names, the keys are the old ones' '
	grep -q "moved under a new name; renamed back" "$SYNCD_LOG" ||
	grep -q "G1700000001.M1P1a.test" "$MAILDIR/.A/dovecot-uidlist"
'

# the real case: the same, many times, with the machine busy and the
# daemon committing all along (a message flagged and unflagged in a
# loop while the MOVEs run), nothing held
test_expect_success 'load: two busy loops, a client changing INBOX' '
	daemon_start load1 "$TRASH/load.log" sh -c "while :; do :; done" &&
	daemon_start load2 "$TRASH/load.log" sh -c "while :; do :; done" &&
	daemon_start churn "$TRASH/load.log" sh -c "
		cd \"$MAILDIR/cur\" && f=\$(ls | head -n 1) && b=\${f%%:2,*}
		while :; do mv \"\$f\" \"\$b:2,F\"; mv \"\$b:2,F\" \"\$f\"; done"
'

test_expect_success "MOVE A -> B -> A, $ROUNDS times under load" '
	before=$(mail_head) && mark_log &&
	i=0 &&
	while [ $i -lt $ROUNDS ]; do
		move_all A B && in_tree B $N &&
		move_all B A && in_tree A $N || return 1
		i=$((i + 1))
	done &&
	daemon_stop churn &&
	syncd_idle &&
	one_change $before $((2 * N * ROUNDS))
'

test_expect_success "RENAME A C -> A, $ROUNDS times under load" '
	daemon_start churn "$TRASH/load.log" sh -c "
		cd \"$MAILDIR/cur\" && f=\$(ls | head -n 1) && b=\${f%%:2,*}
		while :; do mv \"\$f\" \"\$b:2,F\"; mv \"\$b:2,F\" \"\$f\"; done" &&
	before=$(mail_head) && mark_log &&
	i=0 &&
	while [ $i -lt $ROUNDS ]; do
		imap "RENAME A C" >/dev/null && in_tree C $N &&
		in_tree C.x 30 &&
		imap "RENAME C A" >/dev/null && in_tree A $N &&
		in_tree A.x 30 || return 1
		i=$((i + 1))
	done &&
	daemon_stop churn &&
	syncd_idle &&
	one_change $before $((2 * (N + 30) * ROUNDS)) &&
	# the old names go in the commit that makes the new ones
	! grep folders subjects | grep -v "2 folders created, 2 folders deleted" &&
	test -d "$MAILDIR/.A.x" && ! test -d "$MAILDIR/.C"
'

test_expect_success 'the load stops' '
	daemon_stop load1 && daemon_stop load2
'

# the rename lands between the daemon's look at the root and its
# opendir of the folder: its scan sees A gone and C not there yet
test_expect_success 'RENAME A C while the daemon reads A: one change' '
	syncd_stop &&
	: >"$TRASH/syncd-strace.out" && chmod 666 "$TRASH/syncd-strace.out" &&
	( SYNCD_NAME=syncd; daemon_start syncd "$SYNCD_LOG" strace -f -qq \
		-o "$TRASH/syncd-strace.out" -e trace=openat \
		-e inject=openat:delay_enter=3000000:when=2 \
		-P "$MAILDIR/.A/cur" maildag-syncd -v ) &&
	wait_for "grep -q \"watching [0-9]* directories\" \"\$SYNCD_LOG\"" &&
	syncd_idle &&
	before=$(mail_head) && mark_log &&
	as_user rm "$MAILDIR/.A/maildirfolder" &&
	as_user touch "$MAILDIR/.A/maildirfolder" &&
	wait_for "test \$(grep -c openat \"$TRASH/syncd-strace.out\") -ge 2" &&
	imap "RENAME A C" >/dev/null &&
	syncd_idle &&
	grep "ENOENT.*DELAYED" "$TRASH/syncd-strace.out" &&
	one_change $before $((N + 30)) &&
	test "$(grep -c "folders created" subjects)" = 1
'

test_expect_success 'Dovecot saw no trouble, the disk is the tree' '
	! grep -iE "error|warning|panic|fatal|duplicate|corrupt" \
		"$DOVECOT_DIR/dovecot.log" &&
	test "$(disk_state)" = "$(tree_state)" &&
	test_repo_consistent
'

test_done
