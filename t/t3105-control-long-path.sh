#!/bin/sh
test_description='the control socket in a repository whose path is longer than a socket address holds: maildag-syncd listens, maildag status reaches it, a second daemon finds it'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"

# No runtime directory (no XDG_RUNTIME_DIR, no /run/user/<uid> for the
# test user): the socket goes into the repository, maildag/control.  A
# sockaddr_un holds 107 bytes of path; this repository's is longer.
DEEP=$USER_HOME/a-directory-whose-name-is-long-on-purpose/and-another-one-as-long-as-that/mail.git
CONF=$USER_HOME/deep.json
unset XDG_RUNTIME_DIR

test_expect_success 'setup: a repository deeper than a socket path may be' '
	test $(printf "%s/maildag/control" "$DEEP" | wc -c) -gt 108 &&
	! test -d "/run/user/$(id -u "$TEST_USER")" &&
	cat >"$CONF" <<-EOF &&
	{ "node": "mx1", "maildir": "~/Maildir", "repository": "$DEEP", "peers": {} }
	EOF
	chown "$TEST_USER:" "$CONF" && chmod 600 "$CONF" &&
	test_message first | as_user maildag-lda -c "$CONF" &&
	test -d "$DEEP"
'

test_expect_success 'maildag-syncd listens there' '
	syncd_start -c "$CONF" &&
	test -S "$DEEP/maildag/control" &&
	! grep -q "no control socket" "$SYNCD_LOG"
'

test_expect_success 'maildag status reaches it' '
	as_user maildag -c "$CONF" status >out &&
	cat out &&
	grep -q "maildag-syncd pid $(daemon_pid syncd)" out
'

test_expect_success 'a second daemon for the same mailbox finds the first one there' '
	# (without the check a second daemon would run on: timeout ends it)
	test_expect_code 75 as_user timeout 60 maildag-syncd -c "$CONF" 2>err &&
	grep -q "another maildag-syncd" err
'

test_expect_success 'the daemon stops and removes its socket' '
	syncd_stop &&
	! test -e "$DEEP/maildag/control"
'

test_done
