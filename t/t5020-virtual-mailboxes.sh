#!/bin/sh
test_description='virtual mailboxes: 50 under one uid on two replicas, one maildag-syncd each; mail through a real Postfix virtual transport piping to maildag-lda -a; read and changed through a real Dovecot with a passwd-file userdb; all converge'
# Issue 14, "What it must show" 1 (doc/virtual.md).  Replica a is the
# user's home, replica b a second home of the same user; each keeps 50
# mailboxes under vmail/<domain>/<user>/ and runs ONE maildag-syncd for
# all of them, peered over file://.  Postfix (virtual_mailbox_domains,
# virtual_transport = a pipe(8) service running maildag-lda -a
# ${recipient}) delivers on a; a Dovecot master (IMAP on 127.0.0.1, a
# passwd-file passdb and userdb of the 50 users) serves b.
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-postfix.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
mta_at_exit lib_dovecot_cleanup

[ -x "$BIN/maildag-syncd" ] || test_skip_all "maildag-syncd is not built"
[ -x /usr/sbin/dovecot ] || test_skip_all "the Dovecot master is not installed"
[ -n "$PYTHON" ] || test_skip_all "python3 is needed for the IMAP client"
id dovecot >/dev/null 2>&1 && id dovenull >/dev/null 2>&1 ||
	test_skip_all "Dovecot's users dovecot and dovenull are missing"

N=50
A=$USER_HOME
B=$TRASH/b
VA=$A/vmail
VB=$B/vmail
DV=$TRASH/dovecot-master
FROM=sender@outside.test

# the 50 addresses: u01..u45@example.org, u46..u50@example.net
addresses() {
	local i=1
	while [ $i -le $N ]; do
		if [ $i -le 45 ]; then printf 'u%02d@example.org\n' $i
		else printf 'u%02d@example.net\n' $i; fi
		i=$((i + 1))
	done
}
# maildir ROOT ADDRESS, repo ROOT ADDRESS
maildir() { echo "$1/${2#*@}/${2%@*}/Maildir"; }
repo() { echo "$1/${2#*@}/${2%@*}/mail.git"; }
vgit() { git -c safe.directory='*' --git-dir="$(repo "$1" "$2")" "$3" "$4" "$5"; }

# config NODE ROOT PEER PEERROOT: the user's configuration on one replica
config() {
	local boxes
	boxes=$(addresses | sed 's/.*/"&": {}/' | paste -sd, -)
	cat <<-EOF
	{ "node": "$1", "debounce_ms": 100, "fetch_interval": 30,
	  "backoff_min": 1, "backoff_max": 2, "net_timeout": 20,
	  "virtual": {
	    "maildir": "$2/%d/%n/Maildir",
	    "repository": "$2/%d/%n/mail.git",
	    "peers": { "$3": { "url": "file://$4/%d/%n/mail.git" } },
	    "mailboxes": { $boxes } } }
	EOF
}

# daemons: how many maildag-syncd processes of the user are not children
# of one (transfers run in children of the same name)
daemons() {
	ps -u "$TEST_USER" -o pid=,ppid=,comm= |
		awk '$3 == "maildag-syncd" { d[$1] = 1; p[$1] = $2 }
		     END { for (i in d) if (!(p[i] in d)) n++; print n + 0 }'
}

# files ROOT ADDRESS: the mailbox's message files, "<folder>/<name>"
# without the flags (Dovecot moves new/ to cur/ and flags change)
files() {
	local md
	md=$(maildir "$1" "$2")
	( cd "$md" && find . \( -path '*/cur/*' -o -path '*/new/*' \) -type f |
		sed 's|^\./||; s|/\(cur\|new\)/| |; s|^\(cur\|new\)/|INBOX |' | sort )
}
# state ROOT ADDRESS: the same with the flags, and refs/heads/mail's tree
state() {
	local md
	md=$(maildir "$1" "$2")
	( cd "$md" && find . \( -path '*/cur/*' -o -path '*/new/*' \) -type f |
		sed 's|^\./||; s|/\(cur\|new\)/| |; s|^\(cur\|new\)/|INBOX |' | sort )
	vgit "$1" "$2" rev-parse 'refs/heads/mail^{tree}'
}

# converged: every mailbox has the same messages and flags, and the same
# tree, on both replicas
converged() {
	local addr
	for addr in $(addresses); do
		[ "$(state "$VA" "$addr" 2>/dev/null)" = "$(state "$VB" "$addr" 2>/dev/null)" ] ||
			return 1
	done
}

# wait_converged: twice in a row, within 60 s; else say what differs
wait_converged() {
	local n=0 ok=0 addr
	while [ $n -lt 600 ]; do
		if converged; then
			ok=$((ok + 1))
			[ $ok -ge 2 ] && return 0
		else
			ok=0
		fi
		sleep 0.1
		n=$((n + 1))
	done
	for addr in $(addresses); do
		[ "$(state "$VA" "$addr" 2>/dev/null)" = "$(state "$VB" "$addr" 2>/dev/null)" ] && continue
		echo "differs: $addr" >&2
		state "$VA" "$addr" >&2; echo "--" >&2; state "$VB" "$addr" >&2
	done
	tail -n 20 "$TRASH/a.log" "$TRASH/b.log" >&2
	return 1
}

# in ROOT ADDRESS ID: message ID is in the mailbox's Maildir, once
in_box() {
	test "$(grep -lF "Message-ID: <$3.$$@" -r "$(maildir "$1" "$2")" |
		grep -c '/\(cur\|new\)/')" = 1
}

# imap USER CMD...: a Python IMAP session on the Dovecot master, logged
# in as USER; each CMD is one of
#   find ID            the message ID must be in INBOX (saved as the current one)
#   flag FLAGS         STORE +FLAGS on it
#   move FOLDER        CREATE FOLDER (if need be) and MOVE it there
#   expunge            \Deleted and EXPUNGE
vimap() {
	"$PYTHON" - "$(cat "$DV/port")" "$$" "$@" <<-'EOF'
	import imaplib, sys
	port, pid, user, cmds = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
	m = imaplib.IMAP4("127.0.0.1", port)
	m.login(user, "pw-" + user)
	typ, _ = m.select("INBOX")
	assert typ == "OK", typ
	uid = None
	for c in cmds:
	    verb, _, arg = c.partition(" ")
	    if verb == "find":
	        typ, data = m.uid("SEARCH", None, "HEADER", "Message-ID", "<%s.%s@" % (arg, pid))
	        found = data[0].split()
	        assert len(found) == 1, (arg, found)
	        uid = found[0].decode()
	    elif verb == "flag":
	        assert m.uid("STORE", uid, "+FLAGS", "(%s)" % arg)[0] == "OK"
	    elif verb == "move":
	        m.create(arg)
	        assert m.uid("MOVE", uid, arg)[0] == "OK"
	    elif verb == "expunge":
	        assert m.uid("STORE", uid, "+FLAGS", "(\\Deleted)")[0] == "OK"
	        assert m.expunge()[0] == "OK"
	m.logout()
	EOF
}

dovecot_master_stop() {
	local pid
	pid=$(cat "$DV/run/master.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || return 0
	mta_wait_for 15 test_must_fail mta_alive "$pid" || kill -9 "$pid" 2>/dev/null
	return 0
}
# before a passing script's trash (and the pid file) goes, and at exit
test_at_end dovecot_master_stop
mta_at_exit dovecot_master_stop

test_expect_success 'setup: two replicas of 50 virtual mailboxes, one daemon each' '
	as_user mkdir -p "$A/.config/maildag" "$VA" &&
	mkdir -p "$B" && chown "$TEST_USER:" "$B" && chmod 700 "$B" &&
	as_user mkdir -p "$B/.config/maildag" "$VB" &&
	config a "$VA" b "$VB" | mta_write_user_file "$A/.config/maildag/config.json" 600 &&
	config b "$VB" a "$VA" >"$TRASH/b.json" &&
	as_user sh -c "cat >\"$B/.config/maildag/config.json\"" <"$TRASH/b.json" &&
	as_user chmod 600 "$B/.config/maildag/config.json" &&
	daemon_start syncd-a "$TRASH/a.log" maildag-syncd -v &&
	daemon_start syncd-b "$TRASH/b.log" env HOME="$B" maildag-syncd -v &&
	wait_for "grep -q \"serving $N mailboxes\" \"$TRASH/a.log\"" 60 &&
	wait_for "grep -q \"serving $N mailboxes\" \"$TRASH/b.log\"" 60 &&
	test "$(ls -d "$VA"/*/*/Maildir | wc -l)" = $N &&
	test "$(ls -d "$VB"/*/*/mail.git | wc -l)" = $N &&
	test "$(daemons)" = 2
'

test_expect_success 'one inotify instance per daemon' '
	for d in syncd-a syncd-b; do
		pid=$(daemon_pid $d) &&
		test "$(ls -l /proc/$pid/fd | grep -c "anon_inode:inotify")" = 1 &&
		say "$d: $(inotify_watches $pid) inotify watches for $N mailboxes" ||
		return 1
	done
'

test_expect_success 'setup: Postfix with a virtual transport piping to maildag-lda -a' '
	pf_setup &&
	pf_master_add <<-EOF &&
	maildag   unix  -       n       n       -       -       pipe
	  flags=Dhu user=$TEST_USER null_sender=
	  argv=$BIN/maildag-lda -f \${sender} -a \${recipient}
	EOF
	{ addresses | sed "s/\$/ ok/"; echo "ghost@example.org ok"; } >"$PF_CONF/vmailbox" &&
	pf_set "virtual_mailbox_domains = example.org example.net" \
	       "virtual_mailbox_maps = texthash:$PF_CONF/vmailbox" \
	       "virtual_transport = maildag" \
	       "maildag_destination_recipient_limit = 1" &&
	pf_start
'

test_expect_success 'mail to ten of them: delivered on a, committed, replicated to b' '
	for i in 01 07 13 22 30 38 44 46 49 50; do
		addr=$(addresses | grep "^u$i@") &&
		mta_msg v$i | pf_send "$addr" "$FROM" >"$PF_DIR/qid.v$i" || return 1
	done &&
	for i in 01 07 13 22 30 38 44 46 49 50; do
		addr=$(addresses | grep "^u$i@") &&
		pf_wait_status "$(cat "$PF_DIR/qid.v$i")" &&
		test "$(pf_status "$(cat "$PF_DIR/qid.v$i")")" = sent &&
		in_box "$VA" "$addr" v$i &&
		test "$(vgit "$VA" "$addr" log --format=%s refs/heads/mail | grep -c "^deliver")" -ge 1 ||
		return 1
	done &&
	for i in 01 07 13 22 30 38 44 46 49 50; do
		addr=$(addresses | grep "^u$i@") &&
		wait_for "in_box \"$VB\" $addr v$i" 30 || return 1
	done &&
	! in_box "$VA" u02@example.org v01 &&
	wait_converged
'

test_expect_success 'an address with an extension: the folder when it exists' '
	as_user mkdir -p "$(maildir "$VA" u07@example.org)/.lists/cur" \
		"$(maildir "$VA" u07@example.org)/.lists/new" \
		"$(maildir "$VA" u07@example.org)/.lists/tmp" &&
	mta_msg ext | pf_send u07+lists@example.org "$FROM" >"$PF_DIR/qid.ext" &&
	pf_wait_status "$(cat "$PF_DIR/qid.ext")" &&
	test "$(pf_status "$(cat "$PF_DIR/qid.ext")")" = sent &&
	grep -lqF "Message-ID: <ext.$$@" "$(maildir "$VA" u07@example.org)"/.lists/new/* &&
	wait_converged
'

test_expect_success 'a recipient Postfix knows and maildag does not: bounced 5.1.1' '
	mta_msg ghost | pf_send ghost@example.org "$FROM" >"$PF_DIR/qid.ghost" &&
	pf_wait_status "$(cat "$PF_DIR/qid.ghost")" &&
	test "$(pf_status "$(cat "$PF_DIR/qid.ghost")")" = bounced &&
	test "$(pf_dsn "$(cat "$PF_DIR/qid.ghost")")" = 5.1.1 &&
	! test -e "$VA/example.org/ghost" && ! test -e "$VB/example.org/ghost"
'

test_expect_success 'setup: a Dovecot master on b with a passwd-file userdb of the 50' '
	mkdir -p "$DV/run" "$DV/state" &&
	addresses | while read a; do
		echo "$a:{PLAIN}pw-$a::::::"
	done >"$DV/users" &&
	chmod 644 "$DV/users" &&
	port=$(mta_free_port 7) && echo "$port" >"$DV/port" &&
	cat >"$DV/dovecot.conf" <<-EOF &&
	protocols = imap
	listen = 127.0.0.1
	base_dir = $DV/run
	state_dir = $DV/state
	log_path = $DV/dovecot.log
	ssl = no
	disable_plaintext_auth = no
	auth_mechanisms = plain login
	first_valid_uid = 1
	first_valid_gid = 1
	default_internal_user = dovecot
	default_login_user = dovenull
	postmaster_address = postmaster@example.org
	sendmail_path = /bin/false
	lda_mailbox_autocreate = yes
	protocol lda {
	  mail_plugins = \$mail_plugins sieve
	}
	plugin {
	  sieve = file:~/sieve;active=~/.dovecot.sieve
	}
	passdb {
	  driver = passwd-file
	  args = scheme=PLAIN username_format=%Lu $DV/users
	}
	userdb {
	  driver = passwd-file
	  args = username_format=%Lu $DV/users
	  default_fields = uid=$TEST_USER gid=$TEST_USER home=$VB/%Ld/%Ln mail=maildir:~/Maildir
	}
	service imap-login {
	  inet_listener imap {
	    address = 127.0.0.1
	    port = $port
	  }
	  inet_listener imaps {
	    port = 0
	  }
	}
	EOF
	# dovecot-lda (the Sieve test) runs as the user and logs there too
	: >"$DV/dovecot.log" && chmod 666 "$DV/dovecot.log" &&
	/usr/sbin/dovecot -c "$DV/dovecot.conf" 7>&- 9>&- &&
	wait_for "ss -Htln \"sport = :$port\" | grep -q ." 20
'

test_expect_success 'Dovecot on b sees what Postfix delivered on a; flags and a move there come back to a' '
	vimap u01@example.org "find v01" "flag \\Seen \\Flagged" &&
	vimap u13@example.org "find v13" "move Archive" &&
	vimap u46@example.net "find v46" "flag \\Answered" &&
	wait_for "grep -lF \"Message-ID: <v01.$$@\" \"$(maildir "$VA" u01@example.org)\"/cur/*:2,FS" 30 &&
	wait_for "grep -lqF \"Message-ID: <v13.$$@\" \"$(maildir "$VA" u13@example.org)\"/.Archive/*/*" 30 &&
	wait_for "grep -lF \"Message-ID: <v46.$$@\" \"$(maildir "$VA" u46@example.net)\"/cur/*:2,R*" 30 &&
	wait_converged
'

test_expect_success 'an expunge on b and a delivery on a to the same mailbox: both arrive' '
	vimap u22@example.org "find v22" expunge &&
	mta_msg v22b | pf_send u22@example.org "$FROM" >"$PF_DIR/qid.v22b" &&
	pf_wait_status "$(cat "$PF_DIR/qid.v22b")" &&
	wait_for "! in_box \"$VA\" u22@example.org v22" 30 &&
	wait_for "in_box \"$VB\" u22@example.org v22b" 30 &&
	vimap u22@example.org "find v22b" &&
	wait_converged
'

[ -x /usr/lib/dovecot/dovecot-lda ] &&
[ -e /usr/lib/dovecot/modules/lib90_sieve_plugin.so ] && test_set_prereq SIEVE

test_expect_success SIEVE 'Sieve for a virtual user: maildag-lda -a on b runs dovecot-lda -d, what Sieve filed is committed and reaches a' '
	home=$VB/example.org/u05 &&
	printf "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"sieve\" { fileinto :create \"Filed\"; }\n" >"$TRASH/u05.sieve" &&
	as_user cp "$TRASH/u05.sieve" "$home/.dovecot.sieve" &&
	sed "s|\"node\": \"b\",|\"node\": \"b\", \"dovecot_lda\": \"/usr/lib/dovecot/dovecot-lda\", \"dovecot_config\": \"$DV/dovecot.conf\",|" \
		"$TRASH/b.json" >"$TRASH/b-sieve.json" &&
	grep -q dovecot_lda "$TRASH/b-sieve.json" &&
	as_user sh -c "cat >\"$B/.config/maildag/config.json\"" <"$TRASH/b-sieve.json" &&
	mta_msg sieve | sed "s/^Subject: .*/Subject: sieve test/" |
		as_user env HOME="$B" maildag-lda -f "$FROM" -a u05@example.org &&
	grep -lqF "Message-ID: <sieve.$$@" "$(maildir "$VB" u05@example.org)"/.Filed/*/* &&
	git -c safe.directory="*" --git-dir="$(repo "$VB" u05@example.org)" log --format=%B refs/heads/mail | grep -q "^Input: " &&
	wait_for "grep -lqF \"Message-ID: <sieve.$$@\" \"$(maildir "$VA" u05@example.org)\"/.Filed/*/* 2>/dev/null" 30 &&
	as_user sh -c "cat >\"$B/.config/maildag/config.json\"" <"$TRASH/b.json" &&
	wait_converged
'

test_expect_success 'maildag status: all mailboxes, or one with -a' '
	as_user maildag status >all &&
	grep -q "^$N virtual mailboxes" all &&
	test "$(grep -c "^== " all)" = $N &&
	as_user maildag -a U13@Example.org status --json >one &&
	"$PYTHON" -c "import json,sys; d=json.load(open(\"one\")); assert d[\"mailbox\"] == \"u13@example.org\" and d[\"peers\"][0][\"name\"] == \"b\", d" &&
	as_user env HOME="$B" maildag -a u13@example.org log >log &&
	grep -q "delivered to INBOX" log &&
	as_user maildag status --metrics >metrics &&
	test "$(grep "^maildag_up{" metrics | grep -c " 1\$")" = $N &&
	test "$(sed -n "s/^maildag_up{mailbox=\"\([^\"]*\)\".*/\1/p" metrics | sort -u | wc -l)" = $N &&
	test "$(grep -c "^# TYPE maildag_up " metrics)" = 1 &&
	tail -n 1 metrics | grep -q "^# EOF" &&
	if "$PYTHON" -c "import prometheus_client.openmetrics.parser" 2>/dev/null; then
		"$PYTHON" -c "
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
boxes = set()
for f in text_string_to_metric_families(open(\"metrics\").read()):
    for s in f.samples:
        boxes.add(s.labels[\"mailbox\"])
assert len(boxes) == $N, len(boxes)
"
	fi
'

test_expect_success 'quorum 2 for a virtual mailbox: the wait names it to the one daemon' '
	mta_msg q1 | as_user maildag-lda -q 2 -f "$FROM" -a u09@example.org 2>err &&
	! test -s err &&
	c=$(vgit "$VA" u09@example.org log -1 --format=%H --grep=^deliver refs/heads/mail) &&
	# exit 0 with quorum 2: b held the delivery when the LDA returned
	git -c safe.directory="*" --git-dir="$(repo "$VB" u09@example.org)" cat-file -e "$c" &&
	wait_for "in_box \"$VB\" u09@example.org q1" 30
'

test_expect_success 'a mailbox added to the list and SIGHUP: served on both, mail converges' '
	N=51 &&
	config a "$VA" b "$VB" | mta_write_user_file "$A/.config/maildag/config.json" 600 &&
	config b "$VB" a "$VA" >"$TRASH/b.json" &&
	as_user sh -c "cat >\"$B/.config/maildag/config.json\"" <"$TRASH/b.json" &&
	kill -HUP "$(daemon_pid syncd-a)" "$(daemon_pid syncd-b)" &&
	wait_for "grep -q \"1 more mailboxes served, 51 in all\" \"$TRASH/a.log\"" 30 &&
	wait_for "grep -q \"1 more mailboxes served, 51 in all\" \"$TRASH/b.log\"" 30 &&
	printf "u51@example.net ok\n" >>"$PF_CONF/vmailbox" &&
	mta_msg v51 | as_user maildag-lda -f "$FROM" -a u51@example.net &&
	wait_for "in_box \"$VB\" u51@example.net v51" 30 &&
	wait_converged
'

test_expect_success 'every mailbox converged, each repository clean' '
	wait_converged &&
	for addr in $(addresses); do
		vgit "$VA" "$addr" fsck --strict --no-dangling >/dev/null 2>&1 &&
		vgit "$VB" "$addr" fsck --strict --no-dangling >/dev/null 2>&1 ||
		{ echo "fsck: $addr" >&2; return 1; }
	done &&
	! grep -q "error:" "$TRASH/a.log" && ! grep -q "error:" "$TRASH/b.log"
'

test_done
