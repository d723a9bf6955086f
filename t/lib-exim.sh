# lib-exim.sh: a private Exim for the t50NN scripts.
#
# Source after test-lib.sh:
#
#	. "$abs_top_srcdir/t/lib-exim.sh"
#	ex_setup                    # $EX_CONF: routers, pipe transport
#	id=$(mta_msg 1 | ex_send "$TEST_USER@localhost")
#	ex_queue_run -qf            # deliver (as root, see below)
#	test "$(ex_status "$id")" = delivered
#
# Debian's exim4 conflicts with postfix, so unless an exim4 is installed
# (or MAILDAG_TEST_EXIM names one) the binary comes from the
# exim4-daemon-light .deb, fetched once with "apt-get download" into
# $MAILDAG_TEST_CACHE/exim (default /var/cache/maildag-test/exim) and
# unpacked there with dpkg -x.  Its shared libraries must be installed
# (on Debian 12 that means libidn12 besides what postfix pulls in), and
# its compiled-in user Debian-exim must exist: it is created if missing,
# as the exim4-base package would.
#
# The configuration ($EX_CONF, passed with -C) keeps spool, logs and pid
# file in $EX_DIR.  Messages arrive over SMTP on exim's stdin (-bs, with
# swaks --pipe) and are only queued; deliveries happen in queue runs
# started as root (ex_queue_run).  That is not a shortcut: an Exim
# process that re-executes itself as the Exim user with a -C file not
# listed in /etc/exim4/trusted_configs loses root ("exim user lost
# privilege for using -C option") and could not switch to the recipient,
# and this library does not touch /etc/exim4.  So the daemon (-bd) and
# -odi are not used.

. "$abs_top_srcdir/t/lib-mta.sh"

[ "$(id -u)" = 0 ] || test_skip_all "a private Exim needs root"
command -v swaks >/dev/null 2>&1 ||
	test_skip_all "swaks is not installed (Debian: swaks)"

EX_CACHE=${MAILDAG_TEST_CACHE:-/var/cache/maildag-test}/exim

# ex_fetch: print the path of an exim binary, fetching and unpacking the
# Debian package into $EX_CACHE when needed (serialised with flock)
ex_fetch() {
	local bin=$EX_CACHE/root/usr/sbin/exim4 tmp
	if [ -n "${MAILDAG_TEST_EXIM:-}" ]; then
		echo "$MAILDAG_TEST_EXIM"; return 0
	fi
	if [ -x /usr/sbin/exim4 ]; then
		echo /usr/sbin/exim4; return 0
	fi
	mkdir -p "$EX_CACHE" || return 1
	(
		flock 9
		[ -x "$bin" ] && exit 0
		if ! ls "$EX_CACHE"/exim4-daemon-light_*.deb >/dev/null 2>&1; then
			tmp=$(mktemp -d "$EX_CACHE/dl.XXXXXX") || exit 1
			chmod 755 "$tmp"
			# apt runs as _apt where it can: let it write here
			chown _apt "$tmp" 2>/dev/null
			(cd "$tmp" && apt-get download -q exim4-daemon-light) \
				>"$EX_CACHE/download.log" 2>&1 &&
			mv "$tmp"/exim4-daemon-light_*.deb "$EX_CACHE/"
			rm -rf "$tmp"
		fi
		deb=$(ls "$EX_CACHE"/exim4-daemon-light_*.deb 2>/dev/null | tail -n 1)
		[ -n "$deb" ] || exit 1
		rm -rf "$EX_CACHE/root.new" &&
		dpkg -x "$deb" "$EX_CACHE/root.new" &&
		rm -rf "$EX_CACHE/root" &&
		mv "$EX_CACHE/root.new" "$EX_CACHE/root"
	) 9>"$EX_CACHE/.lock" || return 1
	[ -x "$bin" ] && echo "$bin"
}

EXIM=$(ex_fetch) ||
	test_skip_all "no exim: cannot download exim4-daemon-light ($(tail -n 1 "$EX_CACHE/download.log" 2>/dev/null))"
ex_missing=$(ldd "$EXIM" 2>/dev/null | sed -n 's/^[[:space:]]*\([^ ]*\) => not found.*/\1/p' | tr '\n' ' ')
[ -z "$ex_missing" ] ||
	test_skip_all "$EXIM needs libraries that are not installed: $ex_missing(Debian 12: apt-get install libidn12)"
getent passwd Debian-exim >/dev/null 2>&1 ||
	useradd --system --user-group --no-create-home \
		--home-dir /var/spool/exim4 --shell /usr/sbin/nologin \
		Debian-exim >/dev/null 2>&1 ||
	getent passwd Debian-exim >/dev/null 2>&1 ||
	test_skip_all "cannot create the user Debian-exim that exim needs"

mta_own_user

EX_DIR=$TRASH/exim
EX_CONF=$EX_DIR/exim.conf
EX_LOG=$EX_DIR/log/mainlog
export EXIM EX_DIR EX_CONF EX_LOG

ex() { "$EXIM" -C "$EX_CONF" "$@"; }

# ex_setup [TRANSPORT-OPTIONS]: write the configuration: localhost is the
# local domain; the test user (with an optional +suffix) is routed with
# check_local_user to the pipe transport "maildag_pipe", which runs
# maildag-lda as that user; every other domain
# is a black hole, so bounces to remote senders never freeze in the
# queue.  Extra lines for the transport come from the arguments.
ex_setup() {
	local opt
	mkdir -p "$EX_DIR/spool" "$EX_DIR/log" || return 1
	chown Debian-exim: "$EX_DIR/spool" "$EX_DIR/log"
	{
	cat <<-EOF
	# private Exim for $test_name; see t/lib-exim.sh
	exim_path = $EXIM
	exim_user = Debian-exim
	exim_group = Debian-exim
	spool_directory = $EX_DIR/spool
	log_file_path = $EX_DIR/log/%slog
	pid_file_path = $EX_DIR/exim.pid
	primary_hostname = mx.maildag.test
	qualify_domain = localhost
	domainlist local_domains = localhost
	local_interfaces = 127.0.0.1
	never_users = root
	keep_environment =
	tls_advertise_hosts =
	host_lookup =
	queue_only = true
	acl_smtp_rcpt = acl_check_rcpt

	begin acl

	acl_check_rcpt:
	  accept domains = +local_domains
	  deny   message = relaying denied

	begin routers

	maildag_user:
	  driver = accept
	  domains = +local_domains
	  local_parts = $TEST_USER
	  local_part_suffix = +*
	  local_part_suffix_optional
	  check_local_user
	  transport = maildag_pipe

	elsewhere:
	  driver = redirect
	  domains = ! +local_domains
	  data = :blackhole:

	begin transports

	maildag_pipe:
	  driver = pipe
	  command = $BIN/maildag-lda
	  return_path_add
	  log_output
	  # the default "\n" would end every message with an empty line;
	  # the default From_ prefix stays: the LDA drops it
	  message_suffix =
	EOF
	for opt in "$@"; do printf '  %s\n' "$opt"; done
	cat <<-'EOF'

	begin retry

	# retries happen when a test runs the queue, never behind its back
	*   *   F,1d,1d
	EOF
	} >"$EX_CONF" || return 1
	chmod 644 "$EX_CONF"
	: >"$EX_LOG" && chown Debian-exim: "$EX_LOG"
	ex -bV >"$EX_DIR/bV.out" 2>&1 || { cat "$EX_DIR/bV.out" >&2; return 1; }
}

# ex_send RCPT [FROM]: send the message on stdin over SMTP on exim -bs's
# stdin; print the message id exim gave it.  FROM "" is the null sender.
ex_send() {
	local rcpt=$1 from=${2-alice@example.org} out id
	[ -n "$from" ] || from='<>'
	out=$EX_DIR/swaks.$(date +%s%N)
	printf '%s' "$(cat)" >"$out.msg" || return 1
	timeout 60 swaks --pipe "$EXIM -C $EX_CONF -bs" \
		--helo client.maildag.test --from "$from" --to "$rcpt" \
		--data - --timeout 30 <"$out.msg" >"$out" 2>&1 || {
		echo "swaks failed:" >&2; cat "$out" >&2; return 1; }
	id=$(sed -n 's/.*250 OK id=\([-0-9A-Za-z]*\).*/\1/p' "$out")
	[ -n "$id" ] || { echo "no message id in:" >&2; cat "$out" >&2; return 1; }
	echo "$id"
}

# ex_queue_run [-qf|-qff]: one queue run as root (default -qf: every
# message now, retry times or not); returns when its deliveries are done
ex_queue_run() { ex "${1:--qf}"; }

# ex_attempt_lines ID: the delivery lines exim logged for message ID:
# "=>" delivered, "==" deferred, "**" bounced
ex_attempt_lines() { grep -E "^[-0-9]+ [:0-9]+ $1 (=>|==|\*\*) " "$EX_LOG"; }

# ex_status ID: the outcome of the last attempt logged for ID: delivered,
# deferred, bounced; empty if none yet
ex_status() {
	case $(ex_attempt_lines "$1" | tail -n 1 | awk '{print $4}') in
	'=>') echo delivered;;
	'==') echo deferred;;
	'**') echo bounced;;
	esac
}

# ex_attempts ID: how many attempts exim logged for ID
ex_attempts() { ex_attempt_lines "$1" | wc -l; }

# ex_completed ID: exim logged that ID left the queue
ex_completed() { grep -qE " $1 Completed\$" "$EX_LOG"; }

# ex_queued ID: ID is in the queue (exim -bp)
ex_queued() { ex -bp 2>/dev/null | grep -q " $1 "; }

# ex_queue_count: how many messages are queued (exim -bpc)
ex_queue_count() { ex -bpc; }

# ex_send_msg ID [RCPT [FROM]]: send mta_msg ID (to the test user by
# default); remember its exim id for ex_id
ex_send_msg() {
	mta_msg "$1" | ex_send "${2:-$TEST_USER@localhost}" ${3+"$3"} >"$EX_DIR/id.$1" &&
	test -s "$EX_DIR/id.$1"
}

# ex_id ID: the exim message id of what ex_send_msg sent as ID
ex_id() { cat "$EX_DIR/id.$1"; }

# ex_sent_ids: the IDs ex_send_msg sent, one per line
ex_sent_ids() { ls "$EX_DIR" | sed -n 's/^id\.//p'; }

# ex_delivered_once ID [FOLDER]: exim logged one "=>" for message ID and
# that it completed; it is stored once (mta_stored_once)
ex_delivered_once() {
	local id
	id=$(ex_id "$1") &&
	test "$(ex_status "$id")" = delivered &&
	test "$(ex_attempt_lines "$id" | grep -c " => ")" = 1 &&
	ex_completed "$id" &&
	mta_stored_once "$@"
}

# ex_check_all [MIN]: the queue is empty; every message ex_send_msg sent
# that exim delivered is stored once, every bounced one not at all; the
# Maildir holds nothing else and matches refs/heads/mail
ex_check_all() {
	local id st sent=0
	[ "$(ex_queue_count)" = 0 ] || { ex -bp >&2; return 1; }
	for id in $(ex_sent_ids); do
		st=$(ex_status "$(ex_id "$id")")
		case "$st" in
		delivered)
			sent=$((sent + 1))
			[ "$(mta_count_messages_matching "Message-ID: <$id.$$@")" = 1 ] &&
			mta_in_repo_once "Message-ID: <$id.$$@" || {
				echo "$id: delivered but not stored once" >&2; return 1; };;
		bounced)
			mta_not_delivered "$id" || return 1;;
		*)
			echo "$id: status '$st'" >&2; return 1;;
		esac
	done
	[ "$sent" -ge "${1:-1}" ] || { echo "only $sent delivered" >&2; return 1; }
	[ "$(mail_files | wc -l)" = "$sent" ] || {
		echo "$sent delivered, $(mail_files | wc -l) in the Maildir" >&2; return 1; }
	test_repo_consistent
}
