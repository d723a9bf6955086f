#!/bin/sh
test_description='maildag-syncd and a broken configuration: refused at start with exit 78 and one line naming the file and the place; refused on SIGHUP while the old one goes on replicating; a good change on SIGHUP adds and removes peers'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
test_have_prereq ROOT ||
	test_skip_all "needs root (users of its own; a file owned by another user)"
. "$abs_top_srcdir/t/lib-replica.sh"
[ -n "$PYTHON" ] || test_skip_all "no python3 to read maildag status --json"

# Three replicas of maildagc1 over file://; maildagc2 only owns a file.
C1=maildagc1 C2=maildagc2

# ere TEXT: TEXT quoted for grep -E
ere() { printf '%s\n' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g'; }

# conf_text I PEERS [EXTRA [PEER-EXTRA]]: a good configuration for
# replica I with only the peers listed (file:// URLs, each with the
# members PEER-EXTRA) and EXTRA top-level members
conf_text() {
	local i=$1 j sep=
	printf '{ "node": "%s",\n' "$(replica_node "$i")"
	printf '  "fetch_interval": 5, "backoff_min": 1, "backoff_max": 2,\n'
	printf '  "net_timeout": 5, "debounce_ms": 100,\n'
	[ -z "${3:-}" ] || printf '  %s,\n' "$3"
	printf '  "peers": {'
	for j in $2; do
		printf '%s\n    "%s": { "url": "%s"%s }' "$sep" "$(replica_node "$j")" \
			"$(replica_url "$j" "$i")" "${4:+, $4}"
		sep=,
	done
	printf '\n  } }\n'
}

# conf I PEERS [EXTRA]: write it as replica I's configuration
conf() { replica_write_config "$1" "$(conf_text "$@")"; }

# The broken configurations of replica 1, each a variation of the good
# one (peer r2 only).  bad_config NAME writes it; bad_error NAME prints
# the error line it must give (a grep -E pattern, the file's path
# quoted).
BAD="syntax duplicate unknown peer-unknown type peer-type range hooks-type group-writable world-writable other-owner unreadable"

bad_config() {
	local f url
	f=$(replica_config_file 1)
	url=$(replica_url 2 1)
	case $1 in
	syntax)	replica_write_config 1 "$(printf '%s\n' \
			'{ "node": "r1",' \
			'  "fetch_interval": 5,' \
			'  "peers": {' \
			"    \"r2\": { \"url\": \"$url\", }," \
			'  } }')";;
	duplicate) replica_write_config 1 "$(printf '%s\n' \
			'{ "node": "r1",' \
			'  "quorum": 1,' \
			'  "quorum": 2,' \
			"  \"peers\": { \"r2\": { \"url\": \"$url\" } } }")";;
	unknown) conf 1 2 '"quorom": 2';;
	peer-unknown) replica_write_config 1 \
		"{ \"node\": \"r1\", \"peers\": { \"r2\": { \"url\": \"$url\", \"pushh\": true } } }";;
	type)	conf 1 2 '"quorum": "2"';;
	peer-type) replica_write_config 1 \
		"{ \"node\": \"r1\", \"peers\": { \"r2\": { \"url\": \"$url\", \"push\": \"yes\" } } }";;
	range)	replica_write_config 1 "$(conf_text 1 2 | sed 's/"backoff_min": 1/"backoff_min": 0/')";;
	hooks-type) conf 1 2 '"hooks": { "webhooks": "http://127.0.0.1:1/hook" }';;
	group-writable) conf 1 2 && chmod 620 "$f";;
	world-writable) conf 1 2 && chmod 602 "$f";;
	other-owner) conf 1 2 && chmod 644 "$f" && chown "$C2:" "$f";;
	unreadable) conf 1 2 && chmod 000 "$f";;
	*) echo "bad_config: no case $1" >&2; return 1;;
	esac
}

bad_error() {
	local f
	f=$(ere "$(replica_config_file 1)")
	case $1 in
	syntax)	echo "$f:4:[0-9]+: .*";;
	duplicate) echo "$f:3:[0-9]+: duplicate object key.*quorum.*";;
	unknown) echo "$f: quorom: unknown key";;
	peer-unknown) echo "$f: peers\.r2\.pushh: unknown key";;
	type)	echo "$f: quorum: expected an integer";;
	peer-type) echo "$f: peers\.r2\.push: expected a boolean";;
	range)	echo "$f: backoff_min: must be at least 1";;
	hooks-type) echo "$f: hooks\.webhooks: expected an array.*";;
	group-writable) echo "refusing '$f': writable by its group \(mode 0620\)";;
	world-writable) echo "refusing '$f': writable by others \(mode 0602\)";;
	other-owner) echo "refusing '$f': owned by uid $(id -u $C2), not uid $(id -u $C1)";;
	unreadable) echo "cannot open '$f': Permission denied";;
	esac
}


# r1's own view, whatever its configuration file says now: through a
# good copy of its configuration (the LDA and maildag read the file too)
good1() { echo "$(replica_home 1)/good.json"; }
save_good1() {
	cp "$(replica_config_file 1)" "$(good1)" &&
	chown "$C1:" "$(good1)" && chmod 600 "$(good1)"
}
status1() { replica_run 1 maildag -c "$(good1)" status --json; }
peers1() { status1 | json_get '" ".join(sorted(p["name"] for p in d["peers"]))'; }
deliver1() { replica_deliver 1 "$1" -c "$(good1)"; }

has_message() { test -n "$(replica_where "$1" "$2")"; }
has_ref() { replica_git "$1" rev-parse -q --verify "$2" >/dev/null; }
contains() {
	replica_git "$1" merge-base --is-ancestor "$2" "${3:-refs/heads/mail}" 2>/dev/null
}
r1_pid() { daemon_pid "$(replica_set)-r1"; }

# r2 and r3 merge only what a configured peer pushes: r1 is a peer of
# theirs that they neither push to nor fetch from
test_expect_success 'setup: three replicas; r1 with r2 as its only peer, r2 and r3 only take what r1 pushes' '
	id -u $C2 >/dev/null 2>&1 || useradd --system --no-create-home \
		--shell /bin/sh --home-dir "$TRASH/c2" $C2 >/dev/null 2>&1 &&
	id -u $C2 >/dev/null &&
	replica_setup conf $C1 $C1 $C1 &&
	conf 1 2 && save_good1 &&
	conf 2 1 "" "\"push\": false, \"fetch\": false" &&
	conf 3 1 "" "\"push\": false, \"fetch\": false" &&
	grep -q "\"r1\": { \"url\": \"file://.*\"push\": false, \"fetch\": false }" \
		"$(replica_config_file 3)"
'

# --- (a) at start --------------------------------------------------------
#
# maildag-syncd(8): 78 (EX_CONFIG) "the configuration is invalid"; 77 is
# for a Maildir or repository not safely owned.  maildag.conf(5) counts a
# file with unsafe ownership or mode as one that is refused, like a
# syntax error: so 78 for every case here.

for c in $BAD; do
	test_expect_success "at start: $c: exit 78, one line naming the file and the place" '
		bad_config '$c' &&
		st=0 &&
		{ replica_run 1 timeout 20 maildag-syncd >out 2>err || st=$?; } &&
		cat err &&
		test $st = 78 &&
		test ! -s out &&
		test "$(wc -l <err)" = 1 &&
		grep -Ex "maildag-syncd: error: $(bad_error '$c')" err &&
		! test -e "$(replica_home 1)/run/maildag/control"
	'
done

test_expect_success 'at start: -c names another file: that file is named' '
	f=$(replica_home 1)/other.json &&
	printf "{ \"peers\": { \"r2\": { \"url\": \"file:///x\", \"host_key\": \"SHA256:B2jb0QAtC3GBzbGFCPdwz6MEEOw5LVXqqerneXF4eYI\" } } }\n" >"$f" &&
	chown $C1: "$f" && chmod 600 "$f" &&
	conf 1 2 &&
	st=0 &&
	{ replica_run 1 timeout 20 maildag-syncd -c "$f" 2>err || st=$?; } &&
	cat err &&
	test $st = 78 &&
	test "$(wc -l <err)" = 1 &&
	grep -Ex "maildag-syncd: error: $(ere "$f"): peers\.r2\.host_key: only meaningful for an ssh:// peer" err
'

# --- (b) on SIGHUP -------------------------------------------------------

test_expect_success 'SIGHUP: the daemons start with good configurations; r1 replicates to r2' '
	conf 1 2 &&
	replica_start_all &&
	r1_pid >pid.1 &&
	test "$(peers1)" = r2 &&
	deliver1 b0 &&
	wait_for "has_message 2 b0" 30 &&
	! has_message 3 b0
'

n=0
for c in $BAD node-change maildir-change; do
	n=$((n + 1))
	test_expect_success "SIGHUP: $c: refused, the old configuration goes on" '
		kept=$(replica_log_count 1 "keeping the old one") &&
		case '$c' in
		node-change) conf 1 2 && sed -i "s/\"node\": \"r1\"/\"node\": \"r9\"/" \
			"$(replica_config_file 1)" &&
			pat="the new configuration changes the Maildir, the repository or the node name: that needs a restart; keeping the old one";;
		maildir-change) conf 1 2 "\"maildir\": \"~/Maildir2\"" &&
			pat="the new configuration changes the Maildir, the repository or the node name: that needs a restart; keeping the old one";;
		*) bad_config '$c' && pat=$(bad_error '$c');;
		esac &&
		before=$(replica_log_count 1 "^maildag-syncd: error: $pat\$") &&
		replica_reload 1 &&
		replica_wait_log 1 "keeping the old one" $((kept + 1)) &&
		test "$(replica_log_count 1 "^maildag-syncd: error: $pat\$")" = $((before + 1)) &&
		test "$(r1_pid)" = "$(cat pid.1)" && kill -0 "$(cat pid.1)" &&
		test "$(peers1)" = r2 &&
		deliver1 b'$n' &&
		wait_for "has_message 2 b'$n'" 30 &&
		test "$(replica_log_count 1 "configuration reloaded")" = 0
	'
done

test_expect_success 'SIGHUP: after all that, r1 and r2 hold the same mail, r1 is clean' '
	conf 1 2 &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded: 1 peers" &&
	wait_converged 30 1 2 &&
	replica_expect_messages 1 2 &&
	replica_fsck 1
'

# --- (c) a good change on SIGHUP -----------------------------------------

test_expect_success 'SIGHUP: a peer added is started: r3 gets r1'"'"'s history' '
	! has_ref 3 refs/peers/r1/mail &&
	test -z "$(replica_message_ids 3)" &&
	conf 1 "2 3" && save_good1 &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded: 2 peers" &&
	test "$(peers1)" = "r2 r3" &&
	wait_for "has_ref 3 refs/peers/r1/mail && contains 3 \"\$(replica_head 1)\" refs/peers/r1/mail" 30 &&
	wait_for "has_message 3 b0" 30 &&
	deliver1 c1 &&
	wait_for "has_message 3 c1 && has_message 2 c1" 30 &&
	wait_converged 30 &&
	replica_expect_messages &&
	status1 >st.c1 &&
	test "$(json_get "peer(\"r3\")[\"push\"][\"last_ok\"] is not None" <st.c1)" = true &&
	test "$(json_get "peer(\"r3\")[\"push\"][\"failures\"]" <st.c1)" = 0
'

test_expect_success 'SIGHUP: a peer removed is stopped: r2 gets nothing more' '
	conf 1 3 && save_good1 &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded: 1 peers" 2 &&
	test "$(peers1)" = r3 &&
	# once the reload is logged, r2 is no peer of r1 any more
	r2had=$(replica_git 2 rev-parse refs/peers/r1/mail) &&
	from=$(awk "/configuration reloaded: 1 peers/ { n = NR } END { print n }" "$(replica_log 1)") &&
	deliver1 c2 &&
	wait_for "has_message 3 c2" 30 &&
	wait_for "test \"\$(replica_git 3 rev-parse refs/peers/r1/mail)\" = \"\$(replica_head 1)\"" 30 &&
	# maildag sync answers once the daemon has started its pushes and
	# fetches (each logged as it starts): none may be r2'"'"'s
	replica_sync 1 &&
	test "$(replica_git 2 rev-parse refs/peers/r1/mail)" = "$r2had" &&
	! has_message 2 c2 &&
	tail -n +$((from + 1)) "$(replica_log 1)" >log.after &&
	grep "peer r3: push to" log.after &&
	! grep "peer r2: " log.after
'

test_expect_success 'stop' '
	replica_stop_all
'

test_done
