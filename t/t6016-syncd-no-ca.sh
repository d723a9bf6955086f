#!/bin/sh
test_description='maildag-syncd and its check children never read the CA bundle: peers are ssh:// or file://, not libgit2 https'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
command -v strace >/dev/null || test_skip_all "no strace"
. "$abs_top_srcdir/t/lib-replica.sh"

# Debian's libgit2 (mbedTLS) parsed every certificate of the bundle at
# each initialisation: in the daemon at start and again in every
# whole-history check child it forks for a peer's mail (common/notls.c).

test_expect_success 'setup: two replicas over file://, r1 under strace' '
	replica_setup noca u1 u1 &&
	replica_start 2 &&
	log=$(replica_log 1) &&
	touch "$TRASH/r1.trace" && chmod 666 "$TRASH/r1.trace" &&
	(
		TEST_USER=$(replica_user 1) && USER_HOME=$(replica_home 1) &&
		daemon_start "$(replica_set)-r1" "$log" \
			strace -f -qq -e trace=open,openat -o "$TRASH/r1.trace" \
			env XDG_CONFIG_HOME="$USER_HOME/.config" \
			XDG_RUNTIME_DIR="$USER_HOME/run" maildag-syncd -v
	) &&
	wait_for "grep -q \"watching [0-9]* directories\" \"$log\"" 60
'

test_expect_success 'a peer'"'"'s mail is checked and merged without the CA bundle' '
	replica_deliver 2 noca1 &&
	wait_for "replica_expect_messages 1 2>/dev/null" 60 &&
	grep -E "peer r2: (merged|fast-forward to)" "$(replica_log 1)" &&
	# a check child ran, and the trace saw it open the repository
	pid=$(sed -n "s/.*peer r2: checking the history of .* (pid \([0-9]*\)).*/\1/p" \
		"$(replica_log 1)" | head -n 1) &&
	test -n "$pid" &&
	grep "^$pid .*mail.git" "$TRASH/r1.trace" &&
	! grep -E "ca-certificates|/etc/ssl/certs" "$TRASH/r1.trace"
'

test_expect_success 'and it still replicates the other way' '
	replica_deliver 1 noca2 &&
	wait_for "replica_expect_messages 1 2 2>/dev/null" 60 &&
	replica_stop_all
'

test_done
