# test-lib.sh: the harness every t/tNNNN-*.sh script sources (git style).
#
#	test_description='what this script checks'
#	. "${srcdir:-.}/t/test-lib.sh"
#	test_expect_success 'title' '
#		command && command
#	'
#	test_done
#
# Output is TAP for automake's tap-driver.  Each script gets its own trash
# directory under /tmp (readable by the test user), removed on success
# unless MAILDAG_TEST_KEEP=1.  Run as root, the scripts create an ordinary
# user (maildagt, and maildagt2.. for multi-user tests) and run maildag's
# programs as that user through as_user, because maildag-lda refuses root.

set -u
export LC_ALL=C
unset CDPATH
umask 022

: "${abs_top_builddir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${abs_top_srcdir:=$abs_top_builddir}"
export abs_top_builddir abs_top_srcdir

test_count=0
test_failures=0
test_prereqs=" "
test_name=$(basename "$0" .sh)

# One run of a script at a time on this machine: a script's system users
# (its replicas', sshd's) have fixed names, and two checkouts running the
# same script at once would move each other's homes.  A second run waits
# here for the first (the lock goes when the first run's shell and what
# it started have ended; a daemon it failed to stop would hold it, hence
# the bound).
if [ "$(id -u)" = 0 ] && command -v flock >/dev/null 2>&1; then
	exec 9>"/run/lock/maildag-test-$test_name.lock"
	flock -w 1200 9 ||
		echo "# $test_name: another run held its lock for 20 minutes; going on" >&2
fi

# test_lock_machine NAME: this script alone, among those that take NAME,
# runs from here to its end (for what is shared by the whole machine:
# t3075 lowers fs.inotify.max_user_watches, which t3070's 30,000 watches
# would run into).  Call it at the top level of the script.
test_lock_machine() {
	[ "$(id -u)" = 0 ] && command -v flock >/dev/null 2>&1 || return 0
	exec 7>"/run/lock/maildag-test-machine-$1.lock"
	flock -w 1200 7 ||
		echo "# $test_name: another script held the lock $1 for 20 minutes; going on" >&2
}

say() { printf '# %s\n' "$*"; }

test_set_prereq() { test_prereqs="$test_prereqs$1 "; }
test_have_prereq() {
	for p in $(printf '%s' "$1" | tr ',' ' '); do
		case "$test_prereqs" in *" $p "*) ;; *) return 1;; esac
	done
	return 0
}

test_skip_all() {
	printf '1..0 # SKIP %s\n' "$*"
	test_cleanup
	exit 0
}

# test_expect_success [PREREQ] 'title' 'body'
test_expect_success() {
	local prereq=
	if [ $# = 3 ]; then prereq=$1; shift; fi
	test_count=$((test_count + 1))
	if [ -n "$prereq" ] && ! test_have_prereq "$prereq"; then
		printf 'ok %d - %s # SKIP missing %s\n' "$test_count" "$1" "$prereq"
		return 0
	fi
	say "test $test_count: $1"
	if (cd "$TRASH" && set -e && eval "$2") >"$TRASH/.out.$test_count" 2>&1; then
		printf 'ok %d - %s\n' "$test_count" "$1"
		[ "${MAILDAG_TEST_VERBOSE:-}" = 1 ] && sed 's/^/# /' "$TRASH/.out.$test_count"
	else
		test_failures=$((test_failures + 1))
		printf 'not ok %d - %s\n' "$test_count" "$1"
		printf '%s\n' "$2" | sed 's/^/#	/'
		tail -n 40 "$TRASH/.out.$test_count" | cut -c 1-300 | sed 's/^/# > /'
	fi
	rm -f "$TRASH/.out.$test_count"
	return 0
}

test_done() {
	printf '1..%d\n' "$test_count"
	[ "$test_failures" = 0 ] ||
		say "failed $test_failures of $test_count; trash kept in $TRASH"
	test_cleanup
	exit 0
}

# stop what test_at_end registered, always; keep the trash after a failure
test_cleanup() {
	for f in ${test_cleanup_cmds:-}; do "$f" || :; done
	if [ "${MAILDAG_TEST_KEEP:-}" != 1 ] && [ "$test_failures" = 0 ]; then
		chmod -R u+w "$TRASH" 2>/dev/null
		rm -rf "$TRASH"
	fi
}

# test_at_end FUNCTION: run FUNCTION when the script ends (stop daemons).
test_at_end() { test_cleanup_cmds="${test_cleanup_cmds:-} $1"; }

# test_expect_code N command...: the command exits with status N.
test_expect_code() {
	local want=$1 got=0
	shift
	"$@" || got=$?
	if [ "$got" != "$want" ]; then
		echo "expected exit $want from '$*', got $got" >&2
		return 1
	fi
}

test_must_fail() {
	if "$@"; then
		echo "'$*' succeeded but should have failed" >&2
		return 1
	fi
	return 0
}

test_cmp() { diff -u "$1" "$2"; }

# the trash directory, reachable by the test user
TRASH=$(mktemp -d "/tmp/maildag-$test_name.XXXXXX") || exit 1
chmod 755 "$TRASH"
cd "$TRASH" || exit 1

# maildag's programs, copied where the test user can run them
BIN=$TRASH/bin
mkdir -p "$BIN"
for p in lda/maildag-lda admin/maildag syncd/maildag-syncd; do
	[ -x "$abs_top_builddir/$p" ] && cp "$abs_top_builddir/$p" "$BIN/"
done
chmod 755 "$BIN"/* 2>/dev/null
PATH=$BIN:$PATH
export PATH

# test_user_setup NAME HOME: make NAME (as root) own HOME; print its uid.
test_user_setup() {
	local name=$1 home=$2
	if [ "$(id -u)" = 0 ]; then
		id -u "$name" >/dev/null 2>&1 ||
			useradd --system --no-create-home --shell /bin/sh \
				--home-dir "$home" "$name" >/dev/null 2>&1 ||
			id -u "$name" >/dev/null 2>&1 || return 1
		usermod -d "$home" "$name" >/dev/null 2>&1 || :
		mkdir -p "$home"
		chown "$name:" "$home"
		chmod 700 "$home"
	else
		mkdir -p "$home"
		chmod 700 "$home"
	fi
}

if [ "$(id -u)" = 0 ]; then
	test_set_prereq ROOT
	TEST_USER=maildagt
else
	TEST_USER=$(id -un)
	test_set_prereq NOTROOT
fi
USER_HOME=$TRASH/home
test_user_setup "$TEST_USER" "$USER_HOME" || test_skip_all "cannot create test user $TEST_USER"
MAILDIR=$USER_HOME/Maildir
REPO=$USER_HOME/.local/share/maildag/mail.git
export TEST_USER USER_HOME MAILDIR REPO

# inotify_watches PID: the inotify watches the process PID holds
inotify_watches() {
	local f n=0
	for f in /proc/$1/fd/*; do
		[ "$(readlink "$f" 2>/dev/null)" = "anon_inode:inotify" ] || continue
		n=$((n + $(grep -c "^inotify wd" "/proc/$1/fdinfo/${f##*/}")))
	done
	echo $n
}

# as_user [-u NAME -h HOME] command...: run as the test user with a clean,
# predictable environment (the MTAs set these variables too).
as_user() {
	local name=$TEST_USER home=$USER_HOME
	while [ $# -gt 0 ]; do
		case "$1" in
		-u) name=$2; shift 2;;
		-h) home=$2; shift 2;;
		*) break;;
		esac
	done
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid="$name" --regid="$name" --init-groups \
			env HOME="$home" USER="$name" LOGNAME="$name" \
			PATH="$PATH" "$@"
	else
		env HOME="$home" "$@"
	fi
}

# PYTHON: a python3 for what the shell cannot do well (reading JSON, a
# stand-in server); empty when there is none: scripts that need it skip
PYTHON=
for p in /usr/bin/python3 /usr/local/bin/python3; do
	[ -x "$p" ] && PYTHON=$p && break
done

# mgit: git on a user's repository, whoever runs it
mgit() { git -c safe.directory='*' --git-dir="$REPO" "$@"; }

# test_message [ID]: print a small, well-formed message
test_message() {
	cat <<MSG
From: Alice <alice@example.org>
To: $TEST_USER@localhost
Subject: test message ${1:-1}
Message-ID: <${1:-1}.$$@example.org>
Date: Sun, 22 Nov 2026 10:00:00 +0000

Hello, this is message ${1:-1}.
MSG
}

# count_files DIR: number of regular files directly under DIR
count_files() { find "$1" -maxdepth 1 -type f | wc -l; }

# mail_files: every message file in the Maildir's new/ and cur/, any folder
mail_files() {
	find "$MAILDIR" \( -path '*/new/*' -o -path '*/cur/*' \) -type f | sort
}

# tree_files REF: every message path in the tree of REF
tree_files() {
	mgit ls-tree -r --name-only "${1:-refs/heads/mail}" |
		grep -E '(^|/)(cur|new)/[0-9a-f][0-9a-f]/' | sort
}

# test_repo_consistent: fsck is clean and every file in the Maildir is in
# refs/heads/mail, and the other way round, each once
test_repo_consistent() {
	mgit fsck --strict --no-dangling >"$TRASH/.fsck" 2>&1 || {
		cat "$TRASH/.fsck" >&2; return 1; }
	mail_files | sed "s|^$MAILDIR/||; s|\(cur\|new\)/|\1/XX/|" |
		awk -F/ '{print $NF}' | sort >"$TRASH/.disk"
	tree_files | awk -F/ '{print $NF}' | sort >"$TRASH/.tree"
	test_cmp "$TRASH/.disk" "$TRASH/.tree"
}
