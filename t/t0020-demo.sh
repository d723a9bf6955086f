#!/bin/sh
test_description='the demo (.ci/setup demo) delivers, replicates, and stops its daemons'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-demo.sh"

[ -x "$abs_top_builddir/syncd/maildag-syncd" ] ||
	test_skip_all "maildag is not built in $abs_top_builddir"

test_expect_success 'the demo runs to its end' '
	demo_run "$abs_top_builddir" || { cat demo.out; false; } &&
	grep "now holds the message" demo.out &&
	grep ":Subject: and back again" demo.out &&
	grep "both daemons stopped" demo.out
'

test_expect_success 'no maildag-syncd of the demo is left running' '
	demo_left >left &&
	cat left &&
	test ! -s left
'

# The demo is stopped by SIGTERM at its first look for the message on
# mx2, once both daemons have been started: an ls found first in PATH
# sends it to the demo (its parent) and lets the real ls run.
test_expect_success 'stopped while its daemons run, the demo stops them too' '
	mkdir -p fake &&
	cat >fake/ls <<-\EOF &&
	#!/bin/sh
	case "$*" in */mx2/Maildir/new/*) kill -TERM $PPID;; esac
	exec /bin/ls "$@"
	EOF
	chmod 755 fake/ls &&
	{ PATH=$TRASH/fake:$PATH TMPDIR=$DEMO_DIR \
		sh "$abs_top_srcdir/.ci/demo" "$abs_top_builddir" \
		>int.out 2>&1 </dev/null || echo "exit $?" >status; } &&
	cat status && grep "^exit 143" status &&
	grep "^== 3\." int.out &&
	! grep "now holds the message" int.out &&
	demo_left >left &&
	cat left &&
	test ! -s left
'

test_done
