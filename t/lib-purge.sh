# Helpers of the purge tests (t612x), after lib-replica.sh.

RETENTION='"retention": "2s"'

# deliver_marked I ID MARKER: test message ID with a body line MARKER
deliver_marked() {
	{ test_message "$2"; echo "$3"; } | replica_run "$1" maildag-lda &&
	echo "$2" >>"$REPLICAS/delivered"
}

# no_bytes I MARKER: no object of replica I holds MARKER: every object
# git can name, inflated, and (with python3) every zlib stream of every
# file of the repository; prints where it is found
no_bytes() {
	! replica_git "$1" cat-file --batch-all-objects --batch | grep -aq "$2" &&
	{ [ -z "$PYTHON" ] ||
		"$PYTHON" "$abs_top_srcdir/t/findbytes.py" "$(replica_repo "$1")" "$2"; }
}

# listed I: how many blobs replica I's refs/heads/mail lists in purged/
listed() {
	replica_git "$1" ls-tree -r refs/heads/mail purged/ | awk '{ print $3 }' |
		while read -r b; do replica_git "$1" cat-file blob "$b"; done | wc -l
}

# maintain I: one maintenance pass on replica I
maintain() {
	replica_run "$1" maildag maintain >"$TRASH/maint.$1" 2>&1 || {
		cat "$TRASH/maint.$1" >&2; return 1; }
}

# maintain_until I CONDITION: maildag maintain on I until CONDITION
# holds (the retention counts from when maintenance first saw the
# expunge, which may be the daemon's own pass)
maintain_until() {
	wait_for "maintain $1 && $2" 60
}

# serve_keys: each of replicas 1 and 2 may log in to the other only
# through maildag serve, as maildag init prints the line
serve_keys() {
	local i j key
	for j in 1 2; do
		: >"$SSHD_DIR/keys/$(replica_user $j)" || return 1
		for i in 1 2; do
			[ $i = $j ] && continue
			key=$(cut -d" " -f1,2 "$(replica_home $i)/.ssh/id_ed25519.pub") &&
			echo "command=\"$BIN/maildag serve --peer r$i\",restrict $key maildag@r$i" \
				>>"$SSHD_DIR/keys/$(replica_user $j)" || return 1
		done
	done
}
