# lib-postfix.sh: a private Postfix instance for the t50NN scripts.
#
# Source after test-lib.sh:
#
#	. "$abs_top_srcdir/t/lib-postfix.sh"
#	pf_setup                    # main.cf + master.cf in $PF_CONF
#	pf_set mailbox_command="$BIN/maildag-lda -f \"\$SENDER\" -a \"\$RECIPIENT\""
#	pf_start                    # master, smtpd on 127.0.0.1:$(pf_port)
#	qid=$(mta_msg 1 | pf_send "$TEST_USER@localhost")
#	pf_wait_status "$qid" && test "$(pf_status "$qid")" = sent
#
# The instance lives wholly in $PF_DIR inside the trash directory: its own
# config directory (postfix -c), queue, data directory and log file
# (maillog_file through postlogd, no syslog needed).  Nothing is chrooted,
# nothing listens but smtpd on 127.0.0.1, and mail for any other domain is
# discarded (bounces to example.org senders never leave the machine).  A
# system Postfix in /etc/postfix, running or not, is left alone: every
# command here names $PF_CONF.  pf_stop runs when the script ends.
#
# Postfix finds the recipient's home in passwd, so the script gets a user
# of its own (see lib-mta.sh) and TEST_USER names it.

. "$abs_top_srcdir/t/lib-mta.sh"

[ "$(id -u)" = 0 ] ||
	test_skip_all "a private Postfix instance needs root"
PF_SBIN=
for pf_d in /usr/sbin /usr/local/sbin /sbin; do
	[ -x "$pf_d/postfix" ] && [ -x "$pf_d/postconf" ] && { PF_SBIN=$pf_d; break; }
done
[ -n "$PF_SBIN" ] || test_skip_all "postfix is not installed (Debian: postfix)"
command -v swaks >/dev/null 2>&1 ||
	test_skip_all "swaks is not installed (Debian: swaks)"
command -v ss >/dev/null 2>&1 ||
	test_skip_all "ss is not installed (Debian: iproute2)"
id postfix >/dev/null 2>&1 && getent group postdrop >/dev/null 2>&1 ||
	test_skip_all "the postfix user or postdrop group is missing"

PF_DAEMON_DIR=$("$PF_SBIN/postconf" -dh daemon_directory 2>/dev/null)
[ -x "$PF_DAEMON_DIR/master" ] ||
	test_skip_all "postfix daemons not found in '$PF_DAEMON_DIR'"

mta_own_user

PF_DIR=$TRASH/postfix
PF_CONF=$PF_DIR/etc
PF_QUEUE=$PF_DIR/queue
PF_LOG=$PF_DIR/maillog
PF_NAME=postfix-$(printf '%s' "$test_name" | cut -d- -f1)
export PF_DIR PF_CONF PF_LOG
# test bodies run in subshells: the instance's state lives in files.  The
# instance stops when the script exits, whatever the outcome.
test_at_end pf_stop
mta_at_exit pf_stop

pf() { "$PF_SBIN/postfix" -c "$PF_CONF" "$@"; }
pf_postconf() { "$PF_SBIN/postconf" -c "$PF_CONF" "$@"; }
pf_postqueue() { "$PF_SBIN/postqueue" -c "$PF_CONF" "$@"; }
pf_postsuper() { "$PF_SBIN/postsuper" -c "$PF_CONF" "$@"; }

# pf_setup: write the instance's main.cf and master.cf (not started yet)
pf_setup() {
	mkdir -p "$PF_CONF" "$PF_QUEUE" "$PF_DIR/data" || return 1
	chown postfix: "$PF_DIR/data"
	: >"$PF_LOG"
	cat >"$PF_CONF/main.cf" <<-EOF
	# private instance for $test_name; see t/lib-postfix.sh
	compatibility_level = 3.6
	queue_directory = $PF_QUEUE
	data_directory = $PF_DIR/data
	mail_owner = postfix
	setgid_group = postdrop
	syslog_name = $PF_NAME
	maillog_file = $PF_LOG
	maillog_file_prefixes = $PF_DIR
	myhostname = mx.maildag.test
	mydomain = maildag.test
	myorigin = \$myhostname
	mydestination = localhost
	inet_interfaces = 127.0.0.1
	inet_protocols = ipv4
	mynetworks = 127.0.0.0/8
	smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
	smtpd_peername_lookup = no
	smtpd_banner = \$myhostname ESMTP $PF_NAME
	alias_maps =
	alias_database =
	local_recipient_maps = unix:passwd.byname
	recipient_delimiter = +
	biff = no
	append_dot_mydomain = no
	# nothing leaves the machine: bounces to remote senders are discarded
	default_transport = discard:outside the test instance
	relay_transport = discard:outside the test instance
	# retries happen when a test flushes the queue, never behind its back
	queue_run_delay = 3600s
	minimal_backoff_time = 3600s
	maximal_backoff_time = 3600s
	command_time_limit = 120s
	EOF
	cat >"$PF_CONF/master.cf" <<-'EOF'
	# service type  private unpriv  chroot  wakeup  maxproc command + args
	pickup    unix  n       -       n       60      1       pickup
	cleanup   unix  n       -       n       -       0       cleanup
	qmgr      unix  n       -       n       300     1       qmgr
	rewrite   unix  -       -       n       -       -       trivial-rewrite
	bounce    unix  -       -       n       -       0       bounce
	defer     unix  -       -       n       -       0       bounce
	trace     unix  -       -       n       -       0       bounce
	verify    unix  -       -       n       -       1       verify
	flush     unix  n       -       n       1000?   0       flush
	proxymap  unix  -       -       n       -       -       proxymap
	proxywrite unix -       -       n       -       1       proxymap
	showq     unix  n       -       n       -       -       showq
	error     unix  -       -       n       -       -       error
	retry     unix  -       -       n       -       -       error
	discard   unix  -       -       n       -       -       discard
	local     unix  -       n       n       -       -       local
	anvil     unix  -       -       n       -       1       anvil
	scache    unix  -       -       n       -       1       scache
	postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
}

# pf_set NAME=VALUE...: set main.cf parameters (before pf_start)
pf_set() { pf_postconf -e "$@"; }

# pf_master_add: append stdin (a service and its -o/argument lines) to
# master.cf (before pf_start)
pf_master_add() { cat >>"$PF_CONF/master.cf"; }

# pf_start: start the instance with smtpd on a free port of 127.0.0.1
# (pf_port prints it); a port taken meanwhile is retried
pf_start() {
	local try=0 port
	[ -f "$PF_CONF/master.cf.base" ] ||
		cp "$PF_CONF/master.cf" "$PF_CONF/master.cf.base" || return 1
	while [ $try -lt 5 ]; do
		try=$((try + 1))
		port=$(mta_free_port "$try") || return 1
		echo "$port" >"$PF_DIR/port"
		{
			cat "$PF_CONF/master.cf.base"
			printf '127.0.0.1:%s inet n - n - - smtpd\n' "$port"
		} >"$PF_CONF/master.cf"
		pf check >>"$PF_DIR/start.out" 2>&1 || {
			echo "postfix check failed:" >&2
			cat "$PF_DIR/start.out" "$PF_LOG" >&2
			return 1
		}
		if pf start >>"$PF_DIR/start.out" 2>&1 &&
		   mta_wait_for 10 pf_smtp_ready; then
			return 0
		fi
		say "postfix did not come up on port $port (try $try)"
		pf_stop
	done
	echo "cannot start postfix:" >&2
	cat "$PF_DIR/start.out" >&2
	tail -n 20 "$PF_LOG" >&2
	return 1
}

# pf_port: the port smtpd listens on
pf_port() { cat "$PF_DIR/port"; }

# pf_smtp_ready: smtpd answers with our banner
pf_smtp_ready() {
	local port
	port=$(pf_port) || return 1
	timeout 20 swaks --server 127.0.0.1 --port "$port" --quit-after banner \
		--timeout 10 2>&1 | grep -q "^<-  220 .*ESMTP $PF_NAME\$"
}

pf_master_pid() {
	local pid
	[ -f "$PF_QUEUE/pid/master.pid" ] || return 1
	pid=$(tr -d ' ' <"$PF_QUEUE/pid/master.pid") || return 1
	[ -n "$pid" ] && mta_alive "$pid" && echo "$pid"
}

# pf_stop: stop the instance and wait (bounded) for its master to exit
pf_stop() {
	local pid
	pid=$(pf_master_pid) || return 0
	pf stop >/dev/null 2>&1 || pf abort >/dev/null 2>&1 || :
	mta_wait_for 15 test_must_fail mta_alive "$pid" ||
		kill -9 "$pid" 2>/dev/null
	return 0
}

# pf_send RCPT [FROM]: send the message on stdin over SMTP to the
# instance; print the queue id Postfix gave it.  FROM "" sends with the
# null sender (as a bounce would).
pf_send() {
	local rcpt=$1 from=${2-alice@example.org} out qid port
	[ -n "$from" ] || from='<>'
	port=$(pf_port) && [ -n "$port" ] || { echo "postfix is not started" >&2; return 1; }
	out=$PF_DIR/swaks.$(date +%s%N)
	# swaks ends DATA with CRLF "." CRLF after the text as given: drop the
	# text's own last newline, or the message gains an empty last line
	printf '%s' "$(cat)" >"$out.msg" || return 1
	timeout 60 swaks --server 127.0.0.1 --port "$port" \
		--helo client.maildag.test \
		--from "$from" --to "$rcpt" --data - --timeout 30 \
		<"$out.msg" >"$out" 2>&1 || {
		echo "swaks failed:" >&2; cat "$out" >&2; return 1; }
	qid=$(sed -n 's/.*250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' "$out")
	[ -n "$qid" ] || { echo "no queue id in:" >&2; cat "$out" >&2; return 1; }
	echo "$qid"
}

# pf_status_lines QID: the delivery attempts Postfix logged for QID,
# oldest first
pf_status_lines() {
	grep -E " $PF_NAME/[a-z]+\[[0-9]+\]: $1: to=<[^>]*>.* status=" "$PF_LOG"
}

# pf_status QID: the status of the last attempt logged for QID:
# sent, deferred, bounced; empty if none yet
pf_status() {
	pf_status_lines "$1" | tail -n 1 | sed -n 's/.* status=\([a-z]*\).*/\1/p'
}

# pf_dsn QID: the DSN code of the last attempt (2.0.0, 4.3.0, ...)
pf_dsn() {
	pf_status_lines "$1" | tail -n 1 | sed -n 's/.* dsn=\([0-9.]*\),.*/\1/p'
}

# pf_attempts QID: how many attempts were logged for QID
pf_attempts() { pf_status_lines "$1" | wc -l; }

# pf_wait_status QID [N]: wait (30 s at most) until Postfix has logged N
# (default 1) delivery attempts for QID
pf_wait_status() {
	local qid=$1 n=${2:-1}
	mta_wait_for 30 sh -c "[ \$(grep -cE ': $qid: to=<.* status=' '$PF_LOG') -ge $n ]" || {
		echo "postfix logged no attempt $n for $qid; log:" >&2
		tail -n 20 "$PF_LOG" >&2
		return 1
	}
}

# pf_removed QID: Postfix has logged that QID left the queue
pf_removed() { grep -qE ": $1: removed\$" "$PF_LOG"; }

# pf_wait_removed QID: wait (30 s at most) until QID left the queue
pf_wait_removed() {
	mta_wait_for 30 pf_removed "$1" || {
		echo "$1 is still queued; log:" >&2
		tail -n 20 "$PF_LOG" >&2
		return 1
	}
}

# pf_queued QID: QID is in the queue (postqueue -p)
pf_queued() { pf_postqueue -p 2>/dev/null | grep -q "^$1[*!]\{0,1\} "; }

# pf_queue_empty: postqueue -p shows no mail
pf_queue_empty() { pf_postqueue -p 2>/dev/null | grep -q '^Mail queue is empty'; }

# pf_flush: ask Postfix to retry every deferred message now
pf_flush() { pf_postqueue -f; }

# pf_send_msg ID [RCPT [FROM]]: send mta_msg ID over SMTP (to the test
# user by default); remember its queue id for pf_qid
pf_send_msg() {
	mta_msg "$1" | pf_send "${2:-$TEST_USER@localhost}" ${3+"$3"} >"$PF_DIR/qid.$1" &&
	test -s "$PF_DIR/qid.$1"
}

# pf_qid ID: the queue id of the message pf_send_msg sent as ID
pf_qid() { cat "$PF_DIR/qid.$1"; }

# pf_sent_ids: the IDs pf_send_msg sent, one per line
pf_sent_ids() { ls "$PF_DIR" | sed -n 's/^qid\.//p'; }

# pf_delivered_once ID [FOLDER]: Postfix logged status=sent, dsn=2.0.0
# for message ID, and it is stored once (mta_stored_once)
pf_delivered_once() {
	local qid
	qid=$(pf_qid "$1") && pf_wait_status "$qid" &&
	test "$(pf_status "$qid")" = sent &&
	test "$(pf_dsn "$qid")" = 2.0.0 &&
	mta_stored_once "$@"
}

# pf_check_all [MIN]: every message pf_send_msg sent that Postfix logged
# as sent is stored once, every bounced one not at all, none is still
# queued, the Maildir holds nothing else and matches refs/heads/mail; at
# least MIN were sent
pf_check_all() {
	local id st sent=0
	mta_wait_for 10 pf_queue_empty || { pf_postqueue -p >&2; return 1; }
	for id in $(pf_sent_ids); do
		st=$(pf_status "$(pf_qid "$id")")
		case "$st" in
		sent)
			sent=$((sent + 1))
			[ "$(mta_count_messages_matching "Message-ID: <$id.$$@")" = 1 ] &&
			mta_in_repo_once "Message-ID: <$id.$$@" || {
				echo "$id: sent but not stored once" >&2; return 1; };;
		bounced)
			mta_not_delivered "$id" || return 1;;
		*)
			echo "$id: status '$st'" >&2; return 1;;
		esac
	done
	[ "$sent" -ge "${1:-1}" ] || { echo "only $sent sent" >&2; return 1; }
	[ "$(mail_files | wc -l)" = "$sent" ] || {
		echo "$sent sent, $(mail_files | wc -l) in the Maildir" >&2; return 1; }
	test_repo_consistent
}
