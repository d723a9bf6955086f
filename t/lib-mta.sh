# lib-mta.sh: what the real-MTA scripts (t50NN) share; sourced by
# lib-postfix.sh and lib-exim.sh after test-lib.sh.
#
# A real MTA finds the recipient's home in the passwd database, not in
# as_user's environment, so a script that lets Postfix or Exim deliver
# needs a user of its own: test-lib's shared "maildagt" has its home moved
# by whichever script ran usermod last, and scripts run in parallel.

# mta_own_user: give this script its own test user (maildagt<NNNN>, from
# the script's number), home $USER_HOME, and point TEST_USER at it.
mta_own_user() {
	local num try
	num=$(printf '%s' "$test_name" | sed -n 's/^t\([0-9]\{4\}\).*/\1/p')
	[ -n "$num" ] || num=$$
	TEST_USER=maildagt$num
	# useradd and usermod fail while a parallel script holds the passwd
	# lock, and the MTA must see this very home: check, and retry
	for try in 1 2 3 4 5 6 7 8 9 10; do
		test_user_setup "$TEST_USER" "$USER_HOME" &&
		[ "$(getent passwd "$TEST_USER" | cut -d: -f6)" = "$USER_HOME" ] &&
			break
		sleep 1
	done
	[ "$(getent passwd "$TEST_USER" | cut -d: -f6)" = "$USER_HOME" ] ||
		test_skip_all "cannot make $USER_HOME the home of test user $TEST_USER"
	# test-lib made the home for maildagt first: it is ours now
	chown -R "$TEST_USER:" "$USER_HOME"
	export TEST_USER
}

# mta_at_exit FUNCTION: run FUNCTION when the script exits, however it
# exits (test_done, test_skip_all, a signal): a daemon left running would
# outlive its trash directory
mta_exit_cmds=
mta_at_exit() {
	mta_exit_cmds="$mta_exit_cmds $1"
	trap mta_run_exit_cmds EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
}
mta_run_exit_cmds() {
	local f
	for f in $mta_exit_cmds; do "$f" || :; done
	mta_exit_cmds=
}

# mta_alive PID: the process runs (a zombie does not count)
mta_alive() {
	kill -0 "$1" 2>/dev/null || return 1
	case $(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) in
	Z|X|'') return 1;;
	esac
}

# mta_free_port [SALT]: print a TCP port in 20000-49999 that nothing
# listens on.  The search starts at a point derived from the PID, SALT and
# the clock, so scripts run in parallel try different ports first; the
# caller still retries if the bind fails (another program may take the
# port meanwhile).
mta_free_port() {
	local p tries=0
	p=$(( 20000 + ($$ * 7 + ${1:-0} * 101 + $(date +%N | sed 's/^0*//;s/^$/0/') % 997) % 30000 ))
	while [ $tries -lt 200 ]; do
		if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
			echo "$p"
			return 0
		fi
		p=$(( p + 1 ))
		[ $p -lt 50000 ] || p=20000
		tries=$(( tries + 1 ))
	done
	return 1
}

# mta_wait_for TIMEOUT command...: run command every 0.2 s until it
# succeeds, at most TIMEOUT seconds; fail (with a note) if it never does.
mta_wait_for() {
	local limit=$(( $1 * 5 )) n=0
	shift
	while ! "$@" >/dev/null 2>&1; do
		n=$(( n + 1 ))
		if [ $n -ge $limit ]; then
			echo "timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.2
	done
}

# mta_write_user_file PATH MODE: write stdin to PATH as the test user
# (directories made as needed), e.g. ~/.config/maildag/config.json.
mta_write_user_file() {
	as_user mkdir -p "$(dirname "$1")" &&
	as_user sh -c 'umask 077; cat >"$1" && chmod "$2" "$1"' - "$1" "$2"
}

# mta_count_messages_matching PATTERN: how many message files (any
# folder, new/ and cur/) contain PATTERN (fixed string)
mta_count_messages_matching() {
	local n=0 f
	for f in $(mail_files); do
		grep -qF -- "$1" "$f" && n=$((n + 1))
	done
	echo $n
}

# mta_msg ID: a message whose Subject and Message-ID hold ID (and the
# script's PID), so tests find it again in the Maildir and the repository
mta_msg() {
	cat <<MSG
From: Alice <alice@example.org>
To: $TEST_USER@localhost
Subject: mta test $1
Message-ID: <$1.$$@maildag.test>
Date: Sun, 22 Nov 2026 10:00:00 +0000

Hello, this is message $1.
MSG
}

# mta_stored_once ID [FOLDER]: exactly one file in FOLDER's new/ (INBOX
# by default) holds message ID and no other file anywhere does; the tree
# of refs/heads/mail holds the same bytes at FOLDER/new/<xx>/<name>, and
# exactly one commit added that path
mta_stored_once() {
	local key="Message-ID: <$1.$$@" dir=$MAILDIR${2:+/$2} files name path
	files=$(grep -lF "$key" "$dir"/new/* 2>/dev/null) || {
		echo "message $1 is not in ${2:-INBOX}/new" >&2; return 1; }
	[ "$(echo "$files" | wc -l)" = 1 ] || {
		echo "message $1 is in ${2:-INBOX}/new more than once:" >&2
		echo "$files" >&2; return 1; }
	[ "$(mta_count_messages_matching "$key")" = 1 ] || {
		echo "message $1 is in the Maildir more than once" >&2; return 1; }
	name=$(basename "$files")
	path=$(tree_files | grep -F "/$name") || {
		echo "$name is not in refs/heads/mail" >&2; return 1; }
	case "$path" in
	"${2:+$2/}"new/[0-9a-f][0-9a-f]/"$name") ;;
	*) echo "$name is at the wrong place in the tree: $path" >&2; return 1;;
	esac
	mgit cat-file blob "refs/heads/mail:$path" | cmp - "$files" || {
		echo "$path in the tree differs from $files" >&2; return 1; }
	[ "$(mgit log --format=%H --diff-filter=A refs/heads/mail -- "$path" | wc -l)" = 1 ] || {
		echo "not exactly one commit added $path" >&2; return 1; }
}

# mta_not_delivered ID: no copy of message ID on disk or in the tree
mta_not_delivered() {
	local key="Message-ID: <$1.$$@"
	[ "$(mta_count_messages_matching "$key")" = 0 ] || {
		echo "message $1 is in the Maildir" >&2; return 1; }
	if mgit rev-parse -q --verify refs/heads/mail >/dev/null; then
		[ "$(mta_repo_count "$key")" = 0 ] || {
			echo "message $1 is in refs/heads/mail" >&2; return 1; }
	fi
}

# mta_commit_count: commits on refs/heads/mail (0 if none)
mta_commit_count() {
	mgit rev-list --count refs/heads/mail 2>/dev/null || echo 0
}

# mta_repo_count STRING: how many messages in the tree of
# refs/heads/mail hold STRING (fixed string)
mta_repo_count() {
	local n=0 path
	for path in $(tree_files); do
		mgit cat-file blob "refs/heads/mail:$path" | grep -qF -- "$1" &&
			n=$((n + 1))
	done
	echo $n
}

# mta_in_repo_once STRING: exactly one message in the tree holds STRING
mta_in_repo_once() {
	local n
	n=$(mta_repo_count "$1")
	[ "$n" = 1 ] || { echo "'$1' is in the tree $n times" >&2; return 1; }
}
