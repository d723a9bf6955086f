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
	local num
	num=$(printf '%s' "$test_name" | sed -n 's/^t\([0-9]\{4\}\).*/\1/p')
	[ -n "$num" ] || num=$$
	TEST_USER=maildagt$num
	test_user_setup "$TEST_USER" "$USER_HOME" ||
		test_skip_all "cannot create test user $TEST_USER"
	# test-lib made the home for maildagt first: it is ours now
	chown -R "$TEST_USER:" "$USER_HOME"
	export TEST_USER
}

# mta_free_port: print a TCP port on 127.0.0.1 nobody listens on.  Ports
# start from one derived from the script's number and PID, so scripts run
# in parallel try different ports first; the caller still retries if the
# bind fails (another program may take the port meanwhile).
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

# mta_msg ID [EXTRA-HEADER]: a message whose Subject and Message-ID hold
# ID, so tests find it again in the Maildir and the repository
mta_msg() {
	cat <<MSG
From: Alice <alice@example.org>
To: $TEST_USER@localhost
Subject: mta test $1
Message-ID: <$1.$$@maildag.test>
Date: Sun, 22 Nov 2026 10:00:00 +0000
${2:+$2
}
Hello, this is message $1.
MSG
}

# mta_commit_count: commits on refs/heads/mail (0 if none)
mta_commit_count() {
	mgit rev-list --count refs/heads/mail 2>/dev/null || echo 0
}

# mta_in_repo_once ID: exactly one message in the tree of refs/heads/mail
# holds ID
mta_in_repo_once() {
	local n=0 path
	for path in $(tree_files); do
		mgit cat-file blob "refs/heads/mail:$path" | grep -qF -- "$1" &&
			n=$((n + 1))
	done
	[ "$n" = 1 ] || { echo "message '$1' is in the tree $n times" >&2; return 1; }
}
