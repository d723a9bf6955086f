# lib-replica.sh: several replicas of one mailbox on this machine, each
# with its own home, Maildir, repository, configuration and
# maildag-syncd, peered over file:// or over ssh through the test sshd;
# sourced after test-lib.sh, and after lib-sshd.sh when any two replicas
# talk over ssh.  It sources lib-dovecot.sh (daemons, wait_for, imap).
#
# A replica set is made once per script (or again after replica_stop_all,
# under another set name).  Everything about it is kept in files under
# $TRASH/replicas/, so the functions work in any test body (test bodies
# are subshells: variables they set are lost).  Replicas are numbered 1..N;
# replica i is node "r<i>".
#
#   replica_setup SET USER1 USER2 ...
#	make one replica per USER (as root, users are made as needed):
#	home $TRASH/SET/r<i>, Maildir ~/Maildir, repository
#	~/.local/share/maildag/mail.git (made by `maildag init`), the
#	configuration ~/.config/maildag/config.json naming every other
#	replica as a peer, and XDG_RUNTIME_DIR ~/run (the control socket).
#	Two replicas of the same user talk over file://; of different users,
#	over ssh://USER@127.0.0.1:$SSHD_PORT with the host key pinned to
#	$SSHD_FINGERPRINT and a key pair of each replica's own (~/.ssh),
#	authorized for the other users in the test sshd.  With
#	REPLICA_FORCE_SSH=1, replicas of the same user use ssh too.
#	Tunables written in the configuration (seconds): REPLICA_FETCH_INTERVAL
#	(5), REPLICA_BACKOFF_MIN (1), REPLICA_BACKOFF_MAX (2),
#	REPLICA_NET_TIMEOUT (5), REPLICA_DEBOUNCE_MS (100); REPLICA_HOST_KEY,
#	when set, is pinned instead of $SSHD_FINGERPRINT.
#   replica_count			N
#   replica_user I, replica_home I, replica_node I, replica_maildir I,
#   replica_repo I, replica_config_file I, replica_log I
#					where things are
#   replica_url J I			the URL replica I uses for replica J
#   replica_run I CMD...		CMD as replica I's user, with its
#					HOME, XDG_CONFIG_HOME, XDG_RUNTIME_DIR
#   replica_git I ARGS...		git (as root, read-only uses) on I's
#					repository
#   replica_ugit I ARGS...		git as I's user on its repository
#					(objects it writes stay the user's)
#
# Configuration:
#   replica_peer_json I J [MEMBERS]	replica J as a peer entry of I's
#					configuration ("rJ": {...}), with extra
#					JSON members (e.g. '"push": false')
#   replica_config I [--peers "J K"] [--extra MEMBERS] [--peer-extra MEMBERS]
#					(re)write I's configuration: the peers
#					listed (default: all others), extra
#					top-level members ('"quorum": 2'),
#					extra members in every peer entry
#   replica_write_config I TEXT		write TEXT as I's configuration
#					(owned by I's user, mode 0600)
#   replica_reload I			SIGHUP: the daemon reads it again
#
# Daemons (pid files in $PIDS, stopped when the script ends):
#   replica_start I [ARGS]		maildag-syncd -v for I, log in
#					replica_log I; ready once it watches
#   replica_stop I, replica_kill I	SIGTERM / SIGKILL, and wait
#   replica_start_all, replica_stop_all
#   replica_sync I			`maildag sync`: fetch and push now
#   replica_status I			`maildag status --json` (the daemon's
#					per-peer state, control.h)
#   replica_sshd_cut freeze|stop	a partition: freeze the test sshd's
#					listener or stop it, and wait until the
#					ssh sessions under way have ended
#   replica_sshd_restart		the test sshd again, on the same port,
#					after a stop (outside test bodies)
#
# Mail:
#   replica_deliver I ID [LDA ARGS]	test_message ID through maildag-lda
#					on I; the ID (letters and digits, no
#					dot) is recorded as delivered when the
#					LDA exits 0; else its exit status
#   replica_imap I CMD...		one Dovecot IMAP session on I's
#					Maildir (lib-dovecot's imap)
#   replica_on_message I ID FOLDER CMD...
#					one session: SELECT FOLDER, find the
#					message ID (saved as "$", RFC 5182),
#					run each CMD ("STORE $ ..."); fails
#					unless it is there exactly once
#   replica_flag I ID FLAGS [FOLDER]	STORE +FLAGS on the message ID
#   replica_unflag I ID FLAGS [FOLDER]	STORE -FLAGS
#   replica_move I ID TO [FOLDER]	MOVE it to folder TO (which exists)
#   replica_expunge I ID [FOLDER]	\Deleted and EXPUNGE; recorded
#	(FOLDER defaults to INBOX; the message is found by its Message-ID,
#	 in the same session, and must be there exactly once)
#
# Checks:
#   replica_state I		the Maildir as sorted lines
#				"<folder> <key> <flags> <sha256>" (folder
#				INBOX or .Name; key the name up to ',' or ':')
#   replica_tree I, replica_head I	refs/heads/mail's tree and commit
#   replica_applied I		the disk holds exactly refs/heads/mail's
#				messages (names compared, shards left out)
#   wait_converged [SECONDS] [I...]	poll (default 60 s, all replicas)
#				until the replicas' states and trees are equal,
#				each applied, twice in a row; on failure print
#				how they differ and the logs' tails
#   replica_merges I [SINCE]	merge commits in refs/heads/mail (not in
#				SINCE)
#   replica_log_count I PATTERN	lines of I's syncd log matching the
#				grep -E PATTERN
#   replica_wait_log I PATTERN [N] [SECONDS]
#				wait (20 s) until N (1) lines match
#   replica_where I ID		"<folder> <flags>" of each copy of the
#				message ID in I's Maildir (INBOX or .Name;
#				flags "-" for none)
#   replica_message_ids I	the ID of every file in I's Maildir (its
#				Message-ID up to the first dot), sorted,
#				one line per file
#   replica_expect_messages [I...]	every ID delivered and not expunged
#				is in each replica's Maildir exactly once,
#				and nothing else is
#   replica_fsck I		git fsck --strict and maildag fsck clean

# json_get EXPR: EXPR (Python, over d, the JSON object on stdin, and
# peer(NAME), that peer's entry in d["peers"]) printed: a string as it
# is, None as "null", anything else as JSON
json_get() {
	"$PYTHON" -c 'import json, sys
d = json.loads(sys.stdin.read())
def peer(n):
    for p in d.get("peers") or []:
        if p.get("name") == n:
            return p
    return None
v = eval(sys.argv[1])
print("null" if v is None else v if isinstance(v, str) else json.dumps(v))' "$1"
}

# shard KEY (for trees built by hand): the key's shard, fnv1a32(key) & 0xff in two hex digits
shard() {
	"$PYTHON" -c 'import sys
h = 2166136261
for b in sys.argv[1].encode():
    h = ((h ^ b) * 16777619) & 0xffffffff
print("%02x" % (h & 0xff))' "$1"
}

if ! command -v daemon_start >/dev/null 2>&1; then
	. "$abs_top_srcdir/t/lib-dovecot.sh"
fi

REPLICAS=$TRASH/replicas
mkdir -p "$REPLICAS"
chmod 755 "$REPLICAS"

# --- where things are ------------------------------------------------------

# the set's list: "<i> <node> <user> <home>" per replica
replica_field() {
	awk -v i="$1" -v f="$2" '$1 == i { print $f; found = 1 }
		END { exit !found }' "$REPLICAS/list" 2>/dev/null || {
		echo "no replica $1" >&2; return 1; }
}
replica_count() { wc -l <"$REPLICAS/list"; }
replica_node() { replica_field "$1" 2; }
replica_user() { replica_field "$1" 3; }
replica_home() { replica_field "$1" 4; }
replica_maildir() { echo "$(replica_home "$1")/Maildir"; }
replica_repo() { echo "$(replica_home "$1")/.local/share/maildag/mail.git"; }
replica_config_file() { echo "$(replica_home "$1")/.config/maildag/config.json"; }
replica_set() { cat "$REPLICAS/set"; }
replica_log() { echo "$TRASH/logs/$(replica_set)-r$1.syncd.log"; }
replica_all() { seq 1 "$(replica_count)"; }

# what sshd_start said, as the set was made
replica_sshd_port() { cat "$REPLICAS/sshd_port" 2>/dev/null; }
replica_sshd_fingerprint() { cat "$REPLICAS/sshd_fingerprint" 2>/dev/null; }

replica_run() {
	local i=$1 u h
	shift
	u=$(replica_user "$i") && h=$(replica_home "$i") || return 1
	as_user -u "$u" -h "$h" env XDG_CONFIG_HOME="$h/.config" \
		XDG_RUNTIME_DIR="$h/run" "$@"
}

replica_git() {
	local i=$1
	shift
	git -c safe.directory='*' --git-dir="$(replica_repo "$i")" "$@"
}

replica_ugit() {
	local i=$1
	shift
	replica_run "$i" git -c safe.directory='*' -c user.name=peer \
		-c user.email=peer@example.org --git-dir="$(replica_repo "$i")" "$@"
}

# over ssh or file://?
replica_uses_ssh() {
	[ "${REPLICA_FORCE_SSH:-}" = 1 ] ||
		[ "$(replica_user "$1")" != "$(replica_user "$2")" ]
}

replica_url() {
	local j=$1 i=$2
	if replica_uses_ssh "$i" "$j"; then
		echo "ssh://$(replica_user "$j")@127.0.0.1:$(replica_sshd_port)$(replica_repo "$j")"
	else
		echo "file://$(replica_repo "$j")"
	fi
}

# --- configuration --------------------------------------------------------

replica_peer_json() {
	local i=$1 j=$2 extra=${3:-}
	printf '"%s": { "url": "%s"' "$(replica_node "$j")" "$(replica_url "$j" "$i")"
	if replica_uses_ssh "$i" "$j"; then
		printf ', "host_key": "%s", "identity": "%s"' \
			"${REPLICA_HOST_KEY:-$(replica_sshd_fingerprint)}" \
			"$(replica_home "$i")/.ssh/id_ed25519"
	fi
	[ -z "$extra" ] || printf ', %s' "$extra"
	printf ' }'
}

replica_write_config() {
	local i=$1 f u
	f=$(replica_config_file "$i") && u=$(replica_user "$i") || return 1
	printf '%s\n' "$2" >"$f.tmp" &&
	chmod 600 "$f.tmp" &&
	{ [ "$(id -u)" != 0 ] || chown "$u:" "$f.tmp"; } &&
	mv -f "$f.tmp" "$f"
}

replica_config() {
	local i=$1 peers= extra= pextra= j sep= text
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--peers) peers=$2; shift 2;;
		--extra) extra=$2; shift 2;;
		--peer-extra) pextra=$2; shift 2;;
		*) echo "replica_config: unknown option '$1'" >&2; return 1;;
		esac
	done
	if [ -z "$peers" ]; then
		for j in $(replica_all); do
			[ "$j" = "$i" ] || peers="$peers $j"
		done
	fi
	text=$(
		printf '{\n'
		printf '  "node": "%s",\n' "$(replica_node "$i")"
		printf '  "maildir": "~/Maildir",\n'
		printf '  "repository": "~/.local/share/maildag/mail.git",\n'
		printf '  "fetch_interval": %d,\n' "${REPLICA_FETCH_INTERVAL:-5}"
		printf '  "backoff_min": %d,\n' "${REPLICA_BACKOFF_MIN:-1}"
		printf '  "backoff_max": %d,\n' "${REPLICA_BACKOFF_MAX:-2}"
		printf '  "net_timeout": %d,\n' "${REPLICA_NET_TIMEOUT:-5}"
		printf '  "debounce_ms": %d,\n' "${REPLICA_DEBOUNCE_MS:-100}"
		[ -z "$extra" ] || printf '  %s,\n' "$extra"
		printf '  "peers": {'
		for j in $peers; do
			[ "$j" = "$i" ] && continue
			printf '%s\n    %s' "$sep" "$(replica_peer_json "$i" "$j" "$pextra")"
			sep=,
		done
		printf '\n  }\n}\n'
	) || return 1
	replica_write_config "$i" "$text"
}

replica_reload() {
	local pid
	pid=$(daemon_pid "$(replica_set)-r$1") || return 1
	kill -HUP "$pid"
}

# --- the set --------------------------------------------------------------

# replica_keypair I: an ed25519 key pair in I's ~/.ssh, owned by its user
replica_keypair() {
	local h
	h=$(replica_home "$1") || return 1
	[ -e "$h/.ssh/id_ed25519" ] ||
		sshd_user_key "$(replica_user "$1")" "$h/.ssh/id_ed25519"
}

replica_setup() {
	local set=$1 i=0 u h j any_ssh=
	shift
	[ $# -ge 1 ] || { echo "replica_setup: no users" >&2; return 1; }
	case $set in ''|*[!a-z0-9]*)
		echo "replica_setup: bad set name '$set'" >&2; return 1;;
	esac
	mkdir -p "$TRASH/$set" "$TRASH/logs" &&
	chmod 755 "$TRASH/$set" "$TRASH/logs" || return 1
	: >"$REPLICAS/list.new"
	for u in "$@"; do
		i=$((i + 1))
		echo "$i r$i $u $TRASH/$set/r$i" >>"$REPLICAS/list.new"
	done
	mv "$REPLICAS/list.new" "$REPLICAS/list" &&
	echo "$set" >"$REPLICAS/set" &&
	: >"$REPLICAS/delivered" && : >"$REPLICAS/expunged" || return 1
	for i in $(replica_all); do
		for j in $(replica_all); do
			[ "$i" != "$j" ] && replica_uses_ssh "$i" "$j" && any_ssh=1
		done
	done
	if [ -n "$any_ssh" ]; then
		[ -n "${SSHD_PORT:-}" ] && [ -n "${SSHD_FINGERPRINT:-}" ] || {
			echo "replica_setup: ssh peers need sshd_start first" >&2
			return 1; }
		echo "$SSHD_PORT" >"$REPLICAS/sshd_port" &&
		echo "$SSHD_FINGERPRINT" >"$REPLICAS/sshd_fingerprint" || return 1
	fi
	for i in $(replica_all); do
		u=$(replica_user "$i") && h=$(replica_home "$i") || return 1
		# several replicas of one user: the last home is the passwd one
		# (as_user gives each its own HOME anyway)
		test_user_setup "$u" "$h" || return 1
		replica_run "$i" mkdir -p -m 700 "$h/.config/maildag" "$h/run" || return 1
		# Dovecot of its own, as lib-dovecot.sh makes for $TEST_USER
		dovecot_setup "$TRASH/$set/dovecot-r$i" "$u" || return 1
	done
	if [ -n "$any_ssh" ]; then
		for i in $(replica_all); do
			replica_keypair "$i" || return 1
		done
		for i in $(replica_all); do
			for j in $(replica_all); do
				[ "$i" != "$j" ] && replica_uses_ssh "$i" "$j" || continue
				# i logs in to j's account
				sshd_authorize "$(replica_user "$j")" \
					"$(replica_home "$i")/.ssh/id_ed25519.pub" || return 1
			done
		done
	fi
	for i in $(replica_all); do
		replica_config "$i" &&
		replica_run "$i" maildag init >/dev/null || {
			echo "replica_setup: cannot make replica $i" >&2; return 1; }
	done
}

# --- daemons --------------------------------------------------------------

replica_start() {
	local i=$1 log before
	shift
	log=$(replica_log "$i") || return 1
	before=$(grep -c "watching [0-9]* directories" "$log" 2>/dev/null || :)
	(
		TEST_USER=$(replica_user "$i") && USER_HOME=$(replica_home "$i") &&
		daemon_start "$(replica_set)-r$i" "$log" \
			env XDG_CONFIG_HOME="$USER_HOME/.config" \
			XDG_RUNTIME_DIR="$USER_HOME/run" maildag-syncd -v "$@"
	) &&
	wait_for "[ \$(grep -c 'watching [0-9]* directories' '$log') -gt ${before:-0} ]" || {
		tail -n 20 "$log" >&2; return 1; }
}
replica_stop() { daemon_stop "$(replica_set)-r$1"; }
replica_kill() { daemon_stop "$(replica_set)-r$1" KILL; }
replica_start_all() {
	local i
	for i in $(replica_all); do replica_start "$i" || return 1; done
}
replica_stop_all() {
	local i
	for i in $(replica_all); do replica_stop "$i"; done
	return 0
}
replica_sync() { replica_run "$1" maildag sync; }
replica_status() { replica_run "$1" maildag status --json; }

# replica_sshd_cut freeze|stop: cut every ssh link, and wait until the
# sessions under way when it was cut have ended, so that nothing crosses
# once this returns.  freeze: the listener is stopped (SIGSTOP) and
# accepts connections it never answers; stop: it exits (SIGTERM), as
# `systemctl stop ssh` does, leaving the sessions under way to finish.
# Either way the listener is first frozen, so that it forks no session
# between the count and the cut.
replica_sshd_cut() {
	local kids k n=0 alive
	[ -n "${SSHD_PID:-}" ] || return 1
	kill -STOP "$SSHD_PID" || return 1
	kids=$(ps -o pid= --ppid "$SSHD_PID" 2>/dev/null)
	case $1 in
	freeze) ;;
	stop)	kill -TERM "$SSHD_PID" && kill -CONT "$SSHD_PID" &&
		wait_for "! kill -0 $SSHD_PID 2>/dev/null ||
			ps -o stat= -p $SSHD_PID | grep -q '^Z'" || return 1;;
	*)	echo "replica_sshd_cut: freeze or stop" >&2; return 1;;
	esac
	while :; do
		alive=
		for k in $kids; do
			case $(ps -o stat= -p "$k" 2>/dev/null) in
			''|Z*) ;;
			*) alive=1;;
			esac
		done
		[ -z "$alive" ] && return 0
		n=$((n + 1))
		[ $n -lt 600 ] || { echo "ssh sessions still running: $kids" >&2; return 1; }
		sleep 0.05
	done
}

# sshd_start picks a new port each time; after sshd_stop (a partition),
# this starts the test sshd again with the same configuration, port and
# host key, so the replicas find it where they knew it.  Call it outside
# test bodies: it sets SSHD_PID, which lib-sshd's sshd_stop (at the end)
# needs in the script's own shell.
replica_sshd_restart() {
	local n=0 before pat
	[ -n "${SSHD_PORT:-}" ] && [ -f "$SSHD_DIR/sshd_config" ] || return 1
	sshd_stop
	pat="Server listening on 127.0.0.1 port $SSHD_PORT"
	before=$(grep -c "$pat" "$SSHD_DIR/log")
	"$SSHD" -D -f "$SSHD_DIR/sshd_config" -E "$SSHD_DIR/log" \
		</dev/null >/dev/null 2>&1 &
	SSHD_PID=$!
	while [ $n -lt 100 ]; do
		[ "$(grep -c "$pat" "$SSHD_DIR/log")" -gt "$before" ] && return 0
		kill -0 "$SSHD_PID" 2>/dev/null || break
		sleep 0.1
		n=$((n + 1))
	done
	tail -n 5 "$SSHD_DIR/log" >&2
	return 1
}

# --- mail -----------------------------------------------------------------

replica_deliver() {
	local i=$1 id=$2 st=0
	shift 2
	test_message "$id" | replica_run "$i" maildag-lda "$@" || st=$?
	if [ $st != 0 ]; then
		echo "delivery of $id to replica $i: exit $st" >&2
		return $st
	fi
	echo "$id" >>"$REPLICAS/delivered"
}

replica_imap() {
	local i=$1
	shift
	(
		TEST_USER=$(replica_user "$i") && USER_HOME=$(replica_home "$i") &&
		DOVECOT_DIR=$TRASH/$(replica_set)/dovecot-r$i &&
		DOVECOT_CONF=$DOVECOT_DIR/dovecot.conf &&
		imap "$@"
	)
}

# replica_on_message I ID FOLDER CMD...: select FOLDER, find the message
# ID (its Message-ID is "<ID.<pid>@example.org>"), run CMD on it (as "$")
replica_on_message() {
	local i=$1 id=$2 folder=$3 out
	shift 3
	out=$(replica_imap "$i" "SELECT $folder" \
		"SEARCH RETURN (SAVE COUNT) HEADER Message-ID \"<$id.\"" "$@") || {
		printf '%s\n' "$out" >&2; return 1; }
	printf '%s\n' "$out" | grep -q '^\* ESEARCH (TAG "a2") COUNT 1$' || {
		echo "replica $i: message $id is not in $folder once:" >&2
		printf '%s\n' "$out" >&2; return 1; }
}

replica_flag() { replica_on_message "$1" "$2" "${4:-INBOX}" "STORE \$ +FLAGS.SILENT ($3)"; }
replica_unflag() { replica_on_message "$1" "$2" "${4:-INBOX}" "STORE \$ -FLAGS.SILENT ($3)"; }
replica_move() { replica_on_message "$1" "$2" "${4:-INBOX}" "MOVE \$ $3"; }
replica_expunge() {
	replica_on_message "$1" "$2" "${3:-INBOX}" \
		"STORE \$ +FLAGS.SILENT (\\Deleted)" "EXPUNGE" &&
	echo "$2" >>"$REPLICAS/expunged"
}

# --- checks ---------------------------------------------------------------

# replica_format2 I: replica I's mail is format 2 (keyword letters on
# disk are its own: what replicas compare drops them)
replica_format2() {
	[ "$(replica_git "$1" cat-file -p refs/heads/mail:FORMAT 2>/dev/null)" = "maildag 2" ]
}

replica_state() {
	local md lower=1
	md=$(replica_maildir "$1") || return 1
	replica_format2 "$1" && lower=0
	(cd "$md" && find . -path '*/tmp' -prune -o \
		\( -path '*/cur/*' -o -path '*/new/*' \) -type f -print0 |
		xargs -0 -r sha256sum) |
	awk '{
		hash = $1; sub(/^\\/, "", hash)
		path = substr($0, index($0, "  ") + 2)
		sub(/^\.\//, "", path)
		n = split(path, p, "/")
		folder = n > 2 ? p[1] : "INBOX"
		name = p[n]
		key = name; sub(/[,:].*/, "", key)
		flags = ""
		if ((k = index(name, ":2,")) > 0) flags = substr(name, k + 3)
		if (!lower) gsub(/[a-z]/, "", flags)
		print folder, key, (flags == "" ? "-" : flags), hash
	}' lower=$lower | sort
}

replica_head() { replica_git "$1" rev-parse -q --verify refs/heads/mail; }
replica_tree() { replica_git "$1" rev-parse -q --verify 'refs/heads/mail^{tree}'; }

# "<folder>/<cur|new>/<name>" of every message, on disk and in the tree
# (format 2: the tree's names carry no keyword letters, so neither do these)
replica_disk_names() {
	local strip=
	! replica_format2 "$1" ||
		strip='s|\(/new/[^/]*\):2,[a-z]*$|\1|; s/\(:2,[^a-z]*\)[a-z]*$/\1/'
	(cd "$(replica_maildir "$1")" && find . -path '*/tmp' -prune -o \
		\( -path '*/cur/*' -o -path '*/new/*' \) -type f -print) |
		sed 's|^\./||; s|^\([cn]\)|INBOX/\1|' | sed "$strip" | sort
}
replica_tree_names() {
	replica_git "$1" ls-tree -r --name-only refs/heads/mail |
		grep -E '(^|/)(cur|new)/[0-9a-f]{2}/' |
		sed -E 's#^(cur|new)/#INBOX/\1/#; s#/(cur|new)/[0-9a-f]{2}/#/\1/#' | sort
}
replica_applied() {
	[ "$(replica_disk_names "$1")" = "$(replica_tree_names "$1")" ]
}

# one look: 0 when all replicas agree; their summary in $REPLICAS/look
replica_look() {
	local i first= t s ok=0
	: >"$REPLICAS/look"
	for i in "$@"; do
		replica_state "$i" >"$REPLICAS/state.$i"
		t=$(replica_tree "$i")
		s=$(md5sum <"$REPLICAS/state.$i" | cut -c 1-32)
		echo "$i $t $s" >>"$REPLICAS/look"
		replica_applied "$i" || ok=1
		if [ -z "$first" ]; then
			first="$t $s"
		elif [ "$t $s" != "$first" ]; then
			ok=1
		fi
	done
	[ -n "$t" ] || ok=1
	return $ok
}

wait_converged() {
	local max=${1:-60} n=0 prev= i
	[ $# -gt 0 ] && shift
	[ $# -gt 0 ] || set -- $(replica_all)
	while [ $n -lt $((max * 2)) ]; do
		if replica_look "$@"; then
			if [ "$prev" = "$(cat "$REPLICAS/look")" ]; then
				return 0
			fi
			prev=$(cat "$REPLICAS/look")
		else
			prev=
		fi
		n=$((n + 1))
		sleep 0.5
	done
	echo "replicas $* did not converge in $max s: replica tree state-md5:" >&2
	cat "$REPLICAS/look" >&2
	for i in "$@"; do
		echo "--- replica $i: head $(replica_head "$i"); applied: $(replica_applied "$i" && echo yes || echo NO)" >&2
		[ "$i" = "$1" ] ||
			diff "$REPLICAS/state.$1" "$REPLICAS/state.$i" | sed 's/^/    /' >&2
		if ! replica_applied "$i"; then
			replica_tree_names "$i" >"$REPLICAS/tree-names.$i"
			replica_disk_names "$i" >"$REPLICAS/disk-names.$i"
			diff "$REPLICAS/tree-names.$i" "$REPLICAS/disk-names.$i" |
				sed 's/^/    tree->disk /' >&2
		fi
		tail -n 15 "$(replica_log "$i")" | sed 's/^/    log: /' >&2
	done
	return 1
}

replica_merges() {
	replica_git "$1" rev-list --merges --count refs/heads/mail ${2:+"^$2"}
}

replica_log_count() { grep -cE "$2" "$(replica_log "$1")" || :; }

replica_wait_log() {
	local n=${3:-1}
	wait_for "[ \$(replica_log_count $1 '$2') -ge $n ]" "${4:-20}" || {
		tail -n 20 "$(replica_log "$1")" >&2; return 1; }
}

replica_message_ids() {
	local md
	md=$(replica_maildir "$1") || return 1
	(cd "$md" && find . -path '*/tmp' -prune -o \
		\( -path '*/cur/*' -o -path '*/new/*' \) -type f -print0 |
		xargs -0 -r grep -h -m 1 '^Message-ID:') |
		sed 's/^Message-ID: <\([^.]*\)\..*/\1/' | sort
}

replica_expect_messages() {
	local i
	[ $# -gt 0 ] || set -- $(replica_all)
	sort "$REPLICAS/delivered" >"$REPLICAS/expect.d"
	sort "$REPLICAS/expunged" >"$REPLICAS/expect.x"
	comm -23 "$REPLICAS/expect.d" "$REPLICAS/expect.x" >"$REPLICAS/expect"
	for i in "$@"; do
		replica_message_ids "$i" >"$REPLICAS/ids.$i"
		test_cmp "$REPLICAS/expect" "$REPLICAS/ids.$i" || {
			echo "replica $i: messages differ from the expected ones" \
				"(- expected, + found; a line twice is a duplicate)" >&2
			return 1; }
	done
}

replica_where() {
	local md
	md=$(replica_maildir "$1") || return 1
	grep -rl "^Message-ID: <$2\." "$md" 2>/dev/null |
		grep -E '/(cur|new)/[^/]*$' | sed "s|^$md/||" |
		sed -E 's#^(cur|new)/#INBOX/\1/#' |
		awk -F/ '{ f = $NF; fl = "-"
			if ((k = index(f, ":2,")) > 0 && k + 3 <= length(f))
				fl = substr(f, k + 3)
			print $1, fl }' | sort
}

# replica_fsck I: git fsck and maildag fsck pass on replica I's
# repository.  git fsck reads the packs before the refs: a push that lands
# in between (the daemons may still be running) names a commit in a pack
# it never read, "missing".  Such a run proves nothing either way and is
# done again; one with the refs unchanged from start to end decides.
replica_fsck() {
	local try=0 before after
	while :; do
		before=$(replica_git "$1" for-each-ref) &&
		if replica_git "$1" fsck --strict --no-dangling >"$REPLICAS/fsck.$1" 2>&1; then
			break
		fi
		after=$(replica_git "$1" for-each-ref)
		try=$((try + 1))
		if [ "$before" = "$after" ] || [ $try -ge 20 ]; then
			cat "$REPLICAS/fsck.$1" >&2
			return 1
		fi
	done
	replica_run "$1" maildag fsck >"$REPLICAS/mfsck.$1" 2>&1 || {
		cat "$REPLICAS/mfsck.$1" >&2; return 1; }
}
