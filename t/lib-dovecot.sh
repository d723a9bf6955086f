# lib-dovecot.sh: a real Dovecot IMAP server against the test Maildir,
# and maildag-syncd running beside it; sourced after test-lib.sh.
#
# Dovecot runs as /usr/lib/dovecot/imap in pre-authenticated mode: started
# as the test user with HOME and USER set, it speaks IMAP on stdin and
# stdout with no login, no network and no master process.
#
#	imap 'SELECT INBOX' 'STORE 1 +FLAGS (\Seen)'	one session, output on stdout
#	imap_open; imap_send 'SELECT INBOX'; ...; imap_close
#						a session that stays connected
#	syncd_start; syncd_idle; syncd_stop		the daemon
#	mail_moved_from OLD				wait for refs/heads/mail to move

DOVECOT_IMAP=/usr/lib/dovecot/imap
[ -x "$DOVECOT_IMAP" ] || test_skip_all "Dovecot's imap is not installed"

# dovecot_setup DIR USER: a private Dovecot configuration in DIR (its
# logs and state there too), owned by USER when run as root
dovecot_setup() {
	mkdir -p "$1/run" "$1/state" &&
	cat >"$1/dovecot.conf" <<EOF &&
mail_location = maildir:~/Maildir
log_path = $1/dovecot.log
info_log_path = $1/dovecot.log
base_dir = $1/run
state_dir = $1/state
ssl = no
EOF
	: >"$1/dovecot.log" &&
	{ [ "$(id -u)" != 0 ] || chown -R "$2:" "$1"; } &&
	chmod 644 "$1/dovecot.conf"
}

DOVECOT_DIR=$TRASH/dovecot
DOVECOT_CONF=$DOVECOT_DIR/dovecot.conf
dovecot_setup "$DOVECOT_DIR" "$TEST_USER"

# imap CMD...: one session running the commands (tags a1, a2, ...), then
# LOGOUT; the whole dialogue on stdout.  Fails if a command is not OK.
imap() {
	local i=0 c out
	out=$(for c in "$@"; do
		i=$((i + 1))
		printf 'a%d %s\r\n' "$i" "$c"
	done
	printf 'z LOGOUT\r\n') || return 1
	out=$(printf '%s' "$out" | as_user env TZ=UTC "$DOVECOT_IMAP" -c "$DOVECOT_CONF" 2>>"$DOVECOT_DIR/stderr")
	printf '%s\n' "$out" | tr -d '\r'
	i=0
	for c in "$@"; do
		i=$((i + 1))
		printf '%s\n' "$out" | grep -q "^a$i OK" || {
			echo "IMAP command '$c' failed:" >&2
			printf '%s\n' "$out" | grep "^a$i " >&2
			return 1
		}
	done
}

# imap_append MAILBOX FLAGS DATE FILE: APPEND with an explicit
# INTERNALDATE (DATE as "01-Jan-2020 10:00:00 +0000"); prints the dialogue
imap_append() {
	local out
	sed 's/$/\r/' "$4" >"$DOVECOT_DIR/append.crlf"
	out=$({ printf 'a1 APPEND %s (%s) "%s" {%d+}\r\n' "$1" "$2" "$3" \
		"$(wc -c <"$DOVECOT_DIR/append.crlf")"
		cat "$DOVECOT_DIR/append.crlf"
		printf '\r\nz LOGOUT\r\n'; } |
		as_user env TZ=UTC "$DOVECOT_IMAP" -c "$DOVECOT_CONF" 2>>"$DOVECOT_DIR/stderr")
	printf '%s\n' "$out" | tr -d '\r'
	printf '%s\n' "$out" | grep -q '^a1 OK'
}

# A session that stays connected, within one test body: commands go in
# through a fifo held open on descriptor 8.
IMAP_TAG=0
imap_open() {
	rm -f "$DOVECOT_DIR/session.in"
	mkfifo "$DOVECOT_DIR/session.in"
	chmod 666 "$DOVECOT_DIR/session.in"
	: >"$DOVECOT_DIR/session.out"
	chmod 666 "$DOVECOT_DIR/session.out"
	rm -f "$PIDS/imap-session"
	as_user sh -c 'echo $$ >"$0"; exec "$@"' "$PIDS/imap-session" \
		env TZ=UTC "$DOVECOT_IMAP" -c "$DOVECOT_CONF" \
		<"$DOVECOT_DIR/session.in" >"$DOVECOT_DIR/session.out" \
		2>>"$DOVECOT_DIR/stderr" &
	exec 8>"$DOVECOT_DIR/session.in"
	wait_for "test -s '$PIDS/imap-session'"
	wait_for 'grep -q "^\* PREAUTH" "$DOVECOT_DIR/session.out"'
}

# imap_send CMD: run CMD in the open session; its output (from the
# command's own lines to its tagged reply) on stdout; fails unless OK
imap_send() {
	local tag start
	IMAP_TAG=$((IMAP_TAG + 1))
	tag=s$IMAP_TAG
	start=$(wc -l <"$DOVECOT_DIR/session.out")
	printf '%s %s\r\n' "$tag" "$1" >&8
	wait_for "grep -q '^$tag ' \"\$DOVECOT_DIR/session.out\"" || {
		echo "no reply to '$1'" >&2; return 1; }
	tail -n +"$((start + 1))" "$DOVECOT_DIR/session.out" | tr -d '\r'
	grep -q "^$tag OK" "$DOVECOT_DIR/session.out"
}

imap_close() {
	[ -e "$PIDS/imap-session" ] || return 0
	printf 'z LOGOUT\r\n' >&8 2>/dev/null
	exec 8>&-
	daemon_stop imap-session
}

# fetch_flags [MAILBOX]: "<internaldate> <flags>" per message, sorted,
# from a fresh session (what a client would see)
fetch_flags() {
	imap "SELECT ${1:-INBOX}" 'FETCH 1:* (FLAGS INTERNALDATE)' |
		sed -n 's/^\* [0-9]* FETCH (\(.*\))$/\1/p' |
		sed 's/FLAGS (\([^)]*\)) INTERNALDATE "\([^"]*\)"/\2 \1/; s/ \\Recent//; s/\\Recent \{0,1\}//; s/ *$//' |
		sort
}

# wait_for 'shell condition' [SECONDS]: poll until it holds (20 s)
wait_for() {
	local n=0 max=$(( ${2:-20} * 20 ))
	while ! eval "$1"; do
		n=$((n + 1))
		[ $n -lt $max ] || { echo "timed out waiting for: $1" >&2; return 1; }
		sleep 0.05
	done
}

# --- maildag-syncd -----------------------------------------------------
#
# Test bodies run in subshells, so daemons are known by PID files, and
# every one left is stopped when the script exits, however it exits.

PIDS=$TRASH/pids
mkdir -p "$PIDS"
chmod 777 "$PIDS"

# daemon_start NAME LOG CMD...: run CMD as the test user in the background
daemon_start() {
	local name=$1 log=$2
	shift 2
	touch "$log" && chmod 666 "$log" &&
	rm -f "$PIDS/$name" &&
	# the daemon writes its own PID: $! would be a subshell's
	{ as_user sh -c 'echo $$ >"$0"; exec "$@"' "$PIDS/$name" "$@" \
		>>"$log" 2>&1 & } &&
	wait_for "test -s '$PIDS/$name'"
}

# daemon_pid NAME
daemon_pid() { cat "$PIDS/$1" 2>/dev/null; }

# daemon_stop NAME [SIGNAL]: stop it and wait for it to be gone
daemon_stop() {
	local pid n=0 c
	pid=$(daemon_pid "$1") || return 0
	rm -f "$PIDS/$1"
	# a daemon run under strace: its tracee first
	for c in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
		kill -"${2:-TERM}" "$c" 2>/dev/null
	done
	kill -"${2:-TERM}" "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null && [ $n -lt 200 ]; do
		sleep 0.05
		n=$((n + 1))
	done
}

SYNCD_LOG=$TRASH/syncd.log

# syncd_start [ARGS]: the daemon for $MAILDIR (log in $SYNCD_LOG), ready
# once it watches the Maildir
syncd_start() {
	local before
	before=$(grep -c "watching [0-9]* directories" "$SYNCD_LOG" 2>/dev/null || :)
	daemon_start "${SYNCD_NAME:-syncd}" "$SYNCD_LOG" maildag-syncd -v "$@" &&
	wait_for "[ \$(grep -c 'watching [0-9]* directories' '$SYNCD_LOG') -gt ${before:-0} ]"
}
syncd_stop() { daemon_stop "${SYNCD_NAME:-syncd}"; }
syncd_kill() { daemon_stop "${SYNCD_NAME:-syncd}" KILL; }

lib_dovecot_cleanup() {
	local f
	for f in "$PIDS"/*; do
		[ -e "$f" ] && daemon_stop "$(basename "$f")"
	done
	return 0
}
test_at_end lib_dovecot_cleanup	# before a passing script's trash goes
trap lib_dovecot_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

mail_head() { mgit rev-parse -q --verify refs/heads/mail 2>/dev/null; }
worktree_head() { mgit rev-parse -q --verify refs/maildag/worktree 2>/dev/null; }

# the Maildir as a sorted list of "<folder>/<sub>/<name>" (INBOX is "")
disk_state() {
	(cd "$MAILDIR" && find . \( -path '*/cur/*' -o -path '*/new/*' \) -type f) |
		sed 's|^\./||; s|^\([^.]\)|/\1|; s|^\(\.[^/]*\)/|\1/|' | sort
}

# LEFT_OUT: an extended regular expression for the disk_state lines of
# folders folder_limit leaves out (on disk, never committed); the
# replicated part of the Maildir is the rest
LEFT_OUT=
replicated_state() {
	if [ -n "$LEFT_OUT" ]; then
		disk_state | grep -v -E "$LEFT_OUT"
	else
		disk_state
	fi
}

# tree_state [REF]: the tree as the same list, shards left out
tree_state() {
	mgit ls-tree -r --name-only "${1:-refs/heads/mail}" |
		grep -E '(^|/)(cur|new)/[0-9a-f]{2}/' |
		sed -E 's#^(cur|new)/#/\1/#; s#/(cur|new)/[0-9a-f]{2}/#/\1/#' | sort
}

# syncd_idle: wait until the daemon has nothing left to do: the disk, mail
# and the worktree agree and stay so a little while
syncd_idle() {
	local n=0 last= cur
	while [ $n -lt 100 ]; do
		cur="$(mail_head) $(worktree_head) $(disk_state | md5sum)"
		if [ "$cur" = "$last" ] &&
		   [ "$(mail_head)" = "$(worktree_head)" ] &&
		   [ "$(replicated_state)" = "$(tree_state)" ]; then
			return 0
		fi
		last=$cur
		n=$((n + 1))
		sleep 0.3
	done
	echo "syncd did not settle" >&2
	tail -n 20 "$SYNCD_LOG" >&2
	return 1
}

# mail_moved_from OLD: wait until refs/heads/mail is no longer OLD, then
# until it settles; the new head on stdout
mail_moved_from() {
	wait_for "[ \"\$(mail_head)\" != '$1' ]" || return 1
	syncd_idle >&2 || return 1
	mail_head
}

# changes OLD NEW: the commits between, one per line, each as
# "<count of parents> <name-status lines joined>"
commits_between() { mgit rev-list "$1..$2" | wc -l; }

# the change a commit makes, shard directories left out: "A\tpath" lines
commit_change() {
	mgit diff-tree -r --no-commit-id --name-status "$1" |
		sed -E 's#(cur|new)/[0-9a-f]{2}/#\1/#' | sort
}

# ugit ARGS: git on the repository as the test user (objects it writes
# must stay the user's)
ugit() { as_user git -c safe.directory='*' -c user.name=peer -c user.email=peer@example.org --git-dir="$REPO" "$@"; }

# tree_path NAME [REF]: the tree path of the message file NAME
tree_path() {
	mgit ls-tree -r --name-only "${2:-refs/heads/mail}" | grep -F "/$1" |
		grep -E "(^|/)(cur|new)/[0-9a-f]{2}/" | head -n 1
}

# mail_edit 'rm PATH' 'mv PATH NEWPATH' 'add PATH OID'...: a commit on refs/heads/mail
# made with git plumbing, as a merge from another replica makes one,
# under the writer lock; its id on stdout
idxgit() {
	as_user env GIT_INDEX_FILE="$USER_HOME/edit.index" git \
		-c safe.directory='*' --git-dir="$REPO" \
		--work-tree="$USER_HOME/no-work-tree" "$@"
}
mail_edit() {
	local old tree commit oid op
	old=$(mail_head) &&
	as_user mkdir -p "$USER_HOME/no-work-tree" &&
	idxgit read-tree "$old" || return 1
	for op in "$@"; do
		set -- $op
		case $1 in
		rm)	idxgit update-index --force-remove "$2" || return 1;;
		add)	idxgit update-index --add --cacheinfo "100644,$3,$2" ||
				return 1;;
		mv)	oid=$(mgit rev-parse "$old:$2") &&
			idxgit update-index --force-remove "$2" &&
			idxgit update-index --add --cacheinfo "100644,$oid,$3" ||
				return 1;;
		esac
	done
	tree=$(idxgit write-tree) &&
	commit=$(ugit commit-tree -p "$old" -m "change from elsewhere" "$tree") &&
	as_user flock "$REPO/maildag/lock" git -c safe.directory='*' \
		--git-dir="$REPO" update-ref refs/heads/mail "$commit" "$old" &&
	rm -f "$USER_HOME/edit.index" &&
	echo "$commit"
}

# dovecot_make_msgs DIR N PREFIX [FLAGS]: N messages in DIR, named
# "<time>.M<i>P1<PREFIX>.test:2,FLAGS", Message-ID <PREFIX<i>@x>, not
# yet seen by Dovecot
dovecot_make_msgs() {
	as_user perl -e '
		my ($dir, $n, $p, $fl) = @ARGV;
		for my $i (1 .. $n) {
			my $t = 1700000000 + $i;
			my $name = "$dir/$t.M${i}P1$p.test:2,$fl";
			open(my $f, ">", $name) or die "$name: $!";
			print $f "From: a\@example.org\nMessage-ID: <$p$i\@x>\n";
			print $f "Subject: m $i\n\nmessage $p $i\n";
			close $f;
			utime($t, $t, $name);
		}' "$1" "$2" "$3" "${4:-}"
}

# dovecot_stalled_imap: $TRASH/imap-stalled, a Dovecot imap (to use as
# DOVECOT_IMAP) whose first unlink(2) of the path written in
# $TRASH/stall-path waits 3 s, strace's log in $TRASH/strace.out: a
# MOVE's two halves apart, as on a busy machine (Dovecot renames the
# destination files in before it unlinks a source)
dovecot_stalled_imap() {
	cat >"$TRASH/imap-stalled" <<EOS &&
#!/bin/sh
exec strace -qq -f -o "$TRASH/strace.out" -e trace=unlink,unlinkat \\
	-e inject=unlink:delay_enter=3000000:when=1 \\
	-P "\$(cat "$TRASH/stall-path")" $DOVECOT_IMAP "\$@"
EOS
	chmod 755 "$TRASH/imap-stalled" &&
	touch "$TRASH/strace.out" "$TRASH/stall-path" &&
	chmod 666 "$TRASH/strace.out" "$TRASH/stall-path"
}
