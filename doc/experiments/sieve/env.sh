# env.sh: the private Dovecot + Pigeonhole set-up the experiments share;
# sourced.  Needs root (it runs things as the experiment user), Debian's
# dovecot-core, dovecot-sieve (and dovecot-lmtpd for the LMTP one).
#
#	XUSER	the user mail is delivered to (made if missing)
#	XD	the directory of the Dovecot config, logs, stub sendmail
#	XHOME	XUSER's home: Maildir, sieve script, maildag's repository
XUSER=${XUSER:-mdsieve}
XHOME=${XHOME:-/var/tmp/$XUSER}
XD=${XD:-$XHOME/dovecot}
LDA=/usr/lib/dovecot/dovecot-lda
BUILD=${BUILD:-$(cd "$(dirname "$0")/../../.." && pwd)/build}

id "$XUSER" >/dev/null 2>&1 ||
	useradd -r -m -d "$XHOME" -s /bin/sh "$XUSER" || exit 1

as_user() {
	setpriv --reuid="$XUSER" --regid="$XUSER" --init-groups \
		env -i HOME="$XHOME" USER="$XUSER" LOGNAME="$XUSER" \
		PATH=/usr/bin:/bin "$@"
}

# x_setup: a fresh home (Maildir, script, config, stub sendmail)
x_setup() {
	rm -rf "$XHOME" && mkdir -p "$XHOME" "$XD/run" "$XD/state" "$XD/sent" &&
	cat >"$XD/dovecot.conf" <<CONF &&
mail_location = maildir:~/Maildir
log_path = $XD/dovecot.log
info_log_path = $XD/dovecot.log
base_dir = $XD/run
state_dir = $XD/state
ssl = no
protocols =
sendmail_path = $XD/stub-sendmail
postmaster_address = postmaster@example.org
hostname = mx1.example.org
lda_mailbox_autocreate = yes
lda_mailbox_autosubscribe = yes
mail_plugins = \$mail_plugins ${X_MAIL_PLUGINS:-}
protocol lda {
  mail_plugins = \$mail_plugins sieve ${X_LDA_PLUGINS:-}
}
protocol lmtp {
  mail_plugins = \$mail_plugins sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
  ${X_PLUGIN_SETTINGS:-}
}
${X_EXTRA_CONF:-}
CONF
	cat >"$XD/stub-sendmail" <<'SM' &&
#!/bin/sh
# records what Dovecot sends: argv, then the message
d=$(dirname "$0")/sent
n=$(date +%s%N)
# a delay on demand, to hold dovecot-lda in the middle of a delivery
[ -s "$d/../sendmail-delay" ] && sleep "$(cat "$d/../sendmail-delay")"
{ printf 'argv:'; printf ' %s' "$@"; printf '\n'; cat; } >"$d/$n.$$"
SM
	chmod 755 "$XD/stub-sendmail" &&
	mkdir -p "$XHOME/sieve" &&
	cat >"$XHOME/sieve/main.sieve" <<'SIEVE' &&
require ["fileinto", "vacation", "mailbox", "imap4flags"];
if header :contains "subject" "spam" { fileinto :create "Junk"; stop; }
if header :contains "subject" "drop" { discard; stop; }
if header :contains "subject" "twice" { fileinto :create "Lists"; keep; stop; }
if header :contains "subject" "seen" { fileinto :create :flags "\\Seen" "Lists"; stop; }
if header :contains "subject" "away" {
	vacation :days 1 :addresses ["xuser@example.org"] "I am away.";
}
SIEVE
	ln -s sieve/main.sieve "$XHOME/.dovecot.sieve" &&
	: >"$XD/dovecot.log" &&
	chown -R "$XUSER:" "$XHOME" && chmod 644 "$XD/dovecot.conf"
}

# msg N SUBJECT: a small message to xuser@example.org
msg() {
	printf 'From: sender%s@example.net\nTo: xuser@example.org\nSubject: %s %s\nMessage-ID: <%s.%s@example.net>\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nbody %s\n' \
		"$1" "$2" "$1" "$1" "$$" "$1"
}

# lda ARGS < message: dovecot-lda as the user with the private config
lda() { as_user "$LDA" -c "$XD/dovecot.conf" "$@"; }

PROTO=${PROTO:-/var/tmp/proto-sieve/proto}
MAILDAG=$BUILD/syncd/maildag

# x_init: the repository of the fresh home (maildag init)
x_init() {
	as_user mkdir -p "$XHOME/Maildir/cur" "$XHOME/Maildir/new" "$XHOME/Maildir/tmp" &&
	as_user "$MAILDAG" init >/dev/null
}

# proto ARGS < message: the prototype as the user, dovecot-lda as its child
proto() {
	as_user "$PROTO" "$@" -- "$LDA" -c "$XD/dovecot.conf" \
		-a xuser@example.org -f sender@example.net
}

# xgit ARGS: git on the user's repository
xgit() { git -c safe.directory='*' --git-dir="$XHOME/.local/share/maildag/mail.git" "$@"; }

# tree_msgs: the messages refs/heads/mail holds, "<folder>/<sub>/<name>"
tree_msgs() {
	xgit ls-tree -r --name-only refs/heads/mail |
		grep -E '(^|/)(cur|new)/[0-9a-f]{2}/' |
		sed -E 's#/[0-9a-f]{2}/#/#' | sort
}
# disk_msgs: the same from the Maildir
disk_msgs() {
	(cd "$XHOME/Maildir" && find . \( -path '*/cur/*' -o -path '*/new/*' \) -type f) |
		sed 's#^\./##' | sort
}
