# lib-sshd.sh: a private OpenSSH server on 127.0.0.1 for replication
# tests; sourced after test-lib.sh.
#
#	sshd_start			start it (as root); sets SSHD_PORT,
#					SSHD_FINGERPRINT and the prereq SSHD
#	sshd_user_key USER FILE		make USER an ed25519 key pair FILE{,.pub}
#	sshd_authorize USER PUBKEYFILE	let USER log in with that key
#	sshd_freeze / sshd_thaw		stop / resume the listener: a peer that
#					accepts connections and never answers
#	sshd_stop			stop it (also done when the script ends)
#
# The server has its own host key, config, pid file, log
# ($SSHD_DIR/log) and authorized_keys files ($SSHD_DIR/keys/USER), so it
# never reads or changes the machine's own sshd setup.  Call sshd_start
# at the top level of the script, not in a test body: SSHD_PID, the port
# and the prereq must be set in the script's own shell.  Without root or
# without /usr/sbin/sshd, sshd_start fails and SSHD stays unset: tests
# that need it are skipped.

SSHD=/usr/sbin/sshd
SSHD_DIR=$TRASH/sshd
SSHD_PID=
SSHD_PORT=
SSHD_FINGERPRINT=

sshd_start() {
	local try port i
	[ "$(id -u)" = 0 ] || { say "sshd: not root"; return 1; }
	[ -x "$SSHD" ] || { say "sshd: $SSHD is not installed"; return 1; }
	command -v ssh-keygen >/dev/null || { say "sshd: no ssh-keygen"; return 1; }
	mkdir -p "$SSHD_DIR/keys" /run/sshd || return 1
	chmod 755 "$SSHD_DIR" "$SSHD_DIR/keys"
	[ -f "$SSHD_DIR/host_key" ] ||
		ssh-keygen -q -t ed25519 -N '' -C maildag-test-host \
			-f "$SSHD_DIR/host_key" || return 1
	chmod 600 "$SSHD_DIR/host_key"
	SSHD_FINGERPRINT=$(ssh-keygen -l -E sha256 -f "$SSHD_DIR/host_key.pub" |
		awk '{print $2}')
	case "$SSHD_FINGERPRINT" in SHA256:*) ;; *) return 1;; esac
	for try in 1 2 3 4 5 6 7 8 9 10; do
		port=$(awk -v s="$$$try$(date +%N)" \
			'BEGIN { srand(s % 2147483647); print int(20000 + rand() * 40000) }')
		[ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] || continue
		cat >"$SSHD_DIR/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $SSHD_DIR/host_key
PidFile $SSHD_DIR/sshd.pid
AuthorizedKeysFile $SSHD_DIR/keys/%u
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 100
LogLevel VERBOSE
EOF
		: >"$SSHD_DIR/log"
		# -D: the pid we get is the listener's, for sshd_freeze
		"$SSHD" -D -f "$SSHD_DIR/sshd_config" -E "$SSHD_DIR/log" \
			</dev/null >/dev/null 2>&1 &
		SSHD_PID=$!
		i=0
		while [ $i -lt 100 ]; do
			grep -q "Server listening on 127.0.0.1 port $port" \
				"$SSHD_DIR/log" 2>/dev/null && break
			kill -0 "$SSHD_PID" 2>/dev/null || break
			sleep 0.1
			i=$((i + 1))
		done
		if grep -q "Server listening on 127.0.0.1 port $port" "$SSHD_DIR/log"; then
			SSHD_PORT=$port
			export SSHD_PORT SSHD_FINGERPRINT
			test_at_end sshd_stop
			test_set_prereq SSHD
			return 0
		fi
		kill "$SSHD_PID" 2>/dev/null
		wait "$SSHD_PID" 2>/dev/null
		SSHD_PID=
	done
	say "sshd did not start:"
	sed 's/^/# /' "$SSHD_DIR/log"
	return 1
}

sshd_stop() {
	[ -n "$SSHD_PID" ] || return 0
	kill -CONT "$SSHD_PID" 2>/dev/null
	kill "$SSHD_PID" 2>/dev/null
	wait "$SSHD_PID" 2>/dev/null
	SSHD_PID=
	return 0
}

# The listener keeps accepting (the kernel completes the handshake into
# its backlog) but never sends its banner.
sshd_freeze() { kill -STOP "$SSHD_PID"; }
sshd_thaw() { kill -CONT "$SSHD_PID"; }

# sshd_user_key USER FILE: a new ed25519 key pair FILE and FILE.pub, owned
# by USER, FILE mode 600 (its directory is made, owned by USER, 700)
sshd_user_key() {
	local user=$1 file=$2 dir
	dir=$(dirname "$file")
	mkdir -p "$dir" &&
	rm -f "$file" "$file.pub" &&
	ssh-keygen -q -t ed25519 -N '' -C "$user@maildag-test" -f "$file" &&
	chmod 600 "$file" &&
	chmod 700 "$dir" &&
	if [ "$(id -u)" = 0 ]; then
		chown "$user:" "$dir" "$file" "$file.pub"
	fi
}

# sshd_authorize USER PUBKEYFILE: USER may log in with the key.  Accounts
# made by useradd --system are locked ("!"), which sshd refuses even for
# a key: give them a password that matches nothing instead.
sshd_authorize() {
	local user=$1 pub=$2
	usermod -p '*' "$user" >/dev/null 2>&1 || return 1
	cat "$pub" >>"$SSHD_DIR/keys/$user" &&
	chmod 644 "$SSHD_DIR/keys/$user"
}
