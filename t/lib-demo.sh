# lib-demo.sh: run .ci/demo (the README's first command, less the set-up)
# from a test, and find what it left running; sourced after test-lib.sh.
#
#   DEMO_DIR
#	where the demo's files go: a short directory of its own under
#	/tmp (the control socket's path, ~/.local/share/maildag/mail.git/
#	maildag/control under it, must fit in 107 bytes), removed with
#	the trash
#   demo_run FROM
#	run .ci/demo FROM (a build tree, or a directory of installed
#	programs such as /usr/bin) with its files under $DEMO_DIR;
#	its output in $TRASH/demo.out; its exit status
#   demo_left
#	every process whose HOME is under $DEMO_DIR (the demo's
#	replicas: their daemons and whatever those started), one
#	"PID COMMAND" line each; nothing when the demo stopped them all
#   demo_kill_left
#	kill what demo_left lists, then remove $DEMO_DIR unless the trash
#	is kept (test_at_end: a failed demo must not leave its daemons to
#	the next test)

DEMO_DIR=$(mktemp -d /tmp/mdemo.XXXXXX) || exit 1
chmod 755 "$DEMO_DIR"
ln -s "$DEMO_DIR" "$TRASH/demo"

demo_run() {
	TMPDIR=$DEMO_DIR sh "$abs_top_srcdir/.ci/demo" "$1" \
		>"$TRASH/demo.out" 2>&1 </dev/null
}

demo_left() {
	local p
	for p in /proc/[0-9]*; do
		{ tr '\0' '\n' <"$p/environ"; } 2>/dev/null |
			grep -q "^HOME=$DEMO_DIR/" || continue
		printf '%s %s\n' "${p#/proc/}" \
			"$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null)"
	done
}

demo_kill_left() {
	local pid _
	demo_left | while read -r pid _; do kill "$pid" 2>/dev/null; done
	if [ "${MAILDAG_TEST_KEEP:-}" != 1 ] && [ "$test_failures" = 0 ]; then
		chmod -R u+w "$DEMO_DIR" 2>/dev/null
		rm -rf "$DEMO_DIR"
	fi
	return 0
}
test_at_end demo_kill_left
