#!/bin/sh
test_description='maildag push and fetch: file:// peers and ssh peers through a real sshd'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-sshd.sh"

# Users of their own (maildagt's home is moved by other scripts running
# in parallel): maildagn1 is replica mx1, maildagn2 is mx2 across ssh.
if test_have_prereq ROOT; then
	N1=maildagn1 N2=maildagn2
else
	N1=$(id -un) N2=
fi
H1=$TRASH/n1 H2=$TRASH/n2
R1=$H1/.local/share/maildag/mail.git
R2=$H2/.local/share/maildag/mail.git
USB=$TRASH/p/usb/mail.git
GONE=$TRASH/absent/mail.git
EVIL=$TRASH/p/evil.git
test_user_setup "$N1" "$H1" || test_skip_all "cannot create user $N1"
if [ -n "$N2" ]; then
	test_user_setup "$N2" "$H2" || test_skip_all "cannot create user $N2"
	sshd_start && test_set_prereq SSHD
fi
unset SSH_AUTH_SOCK

# git on any repository, whoever owns it
rgit() { local d=$1; shift; git -c safe.directory='*' --git-dir="$d" "$@"; }
u1() { as_user -u "$N1" -h "$H1" "$@"; }
u2() { as_user -u "$N2" -h "$H2" "$@"; }

# put_config USER FILE: stdin becomes USER's config file FILE
put_config() {
	mkdir -p "$(dirname "$2")" &&
	cat >"$2" &&
	chmod 600 "$2" &&
	if [ "$(id -u)" = 0 ]; then chown -R "$1:" "$(dirname "$2")"; fi
}

# a fingerprint that is not the server's
WRONG_FP=SHA256:B2jb0QAtC3GBzbGFCPdwz6MEEOw5LVXqqerneXF4eYI
# a port nobody listens on
CLOSED_PORT=1

test_expect_success 'setup: mx1, a USB copy and (with sshd) mx2' '
	if test_have_prereq SSHD; then
		ssh_peers=$(cat <<EOF
    "mx2": { "url": "ssh://$N2@127.0.0.1:$SSHD_PORT$R2",
             "host_key": "$SSHD_FINGERPRINT" },
    "badkey": { "url": "ssh://$N2@127.0.0.1:$SSHD_PORT$R2",
                "host_key": "$WRONG_FP", "push": false, "fetch": false },
    "nokey": { "url": "ssh://$N2@127.0.0.1:$SSHD_PORT$R2",
               "host_key": "$SSHD_FINGERPRINT", "identity": "~/.ssh/other",
               "push": false, "fetch": false },
    "norepo": { "url": "ssh://$N2@127.0.0.1:$SSHD_PORT$TRASH/nowhere.git",
                "host_key": "$SSHD_FINGERPRINT", "push": false, "fetch": false },
    "closed": { "url": "ssh://$N2@127.0.0.1:$CLOSED_PORT$R2",
                "host_key": "$SSHD_FINGERPRINT", "push": false, "fetch": false },
EOF
)
	else
		ssh_peers=
	fi &&
	put_config "$N1" "$H1/.config/maildag/config.json" <<-EOF &&
	{ "node": "mx1",
	  "peers": {
	$ssh_peers
	    "usb": { "url": "file://$USB" },
	    "gone": { "url": "file://$GONE" },
	    "evil": { "url": "file://$EVIL", "push": false, "fetch": false }
	  } }
	EOF
	put_config "$N1" "$TRASH/usbconf/config.json" <<-EOF &&
	{ "node": "usb", "maildir": "$TRASH/p/usb/Maildir", "repository": "$USB" }
	EOF
	mkdir -p "$TRASH/p" &&
	if [ "$(id -u)" = 0 ]; then chown "$N1:" "$TRASH/p"; fi &&
	u1 maildag init &&
	u1 maildag -c "$TRASH/usbconf/config.json" init &&
	test_message 1 | u1 maildag-lda &&
	if test_have_prereq SSHD; then
		put_config "$N2" "$H2/.config/maildag/config.json" <<-EOF &&
		{ "node": "mx2" }
		EOF
		u2 maildag init &&
		test_message 2 | u2 maildag-lda &&
		sshd_user_key "$N1" "$H1/.ssh/id_ed25519" &&
		sshd_user_key "$N1" "$H1/.ssh/other" &&
		sshd_authorize "$N2" "$H1/.ssh/id_ed25519.pub"
	fi
'

test_expect_success 'maildag init writes the git settings a peer needs' '
	test "$(git config -f "$R1/config" core.fsync)" = committed &&
	test "$(git config -f "$R1/config" core.fsyncMethod)" = fsync &&
	test "$(git config -f "$R1/config" receive.autogc)" = false &&
	test "$(git config -f "$R1/config" gc.auto)" = 0 &&
	test "$(git config -f "$R1/config" receive.fsckObjects)" = true
'

test_expect_success 'push to a file:// peer' '
	mail=$(rgit "$R1" rev-parse refs/heads/mail) &&
	usbmail=$(rgit "$USB" rev-parse refs/heads/mail) &&
	u1 maildag push usb >out &&
	echo "usb: pushed $(echo $mail | cut -c1-12)" >expect &&
	test_cmp expect out &&
	test "$(rgit "$USB" rev-parse refs/peers/mx1/mail)" = "$mail" &&
	test "$(rgit "$USB" rev-parse refs/heads/mail)" = "$usbmail" &&
	rgit "$USB" fsck --strict --no-dangling &&
	test -z "$(rgit "$USB" for-each-ref refs/remotes refs/tags)" &&
	test -z "$(git config -f "$R1/config" --get-regexp "^remote\\.")"
'

test_expect_success 'pushing again is up to date' '
	u1 maildag push usb >out &&
	echo "usb: up to date" >expect &&
	test_cmp expect out
'

test_expect_success 'fetch from a file:// peer' '
	usbmail=$(rgit "$USB" rev-parse refs/heads/mail) &&
	mail=$(rgit "$R1" rev-parse refs/heads/mail) &&
	u1 maildag fetch usb >out &&
	echo "usb: fetched $(echo $usbmail | cut -c1-12)" >expect &&
	test_cmp expect out &&
	test "$(rgit "$R1" rev-parse refs/peers/usb/mail)" = "$usbmail" &&
	test "$(rgit "$R1" rev-parse refs/heads/mail)" = "$mail" &&
	! test -e "$R1/FETCH_HEAD" &&
	rgit "$R1" fsck --strict --no-dangling &&
	u1 maildag fetch usb >out &&
	echo "usb: up to date" >expect &&
	test_cmp expect out
'

test_expect_success 'an absent file:// peer is unreachable, and nothing is created' '
	test_expect_code 75 u1 maildag push gone >out &&
	echo "gone: unreachable: file://$GONE: no repository there (not mounted?)" >expect &&
	test_cmp expect out &&
	test_expect_code 75 u1 maildag fetch gone >out &&
	test_cmp expect out &&
	! test -e "$TRASH/absent" &&
	test -z "$(rgit "$R1" for-each-ref refs/peers/gone)"
'

test_expect_success 'an unknown peer name is a usage error, and nothing is done' '
	before=$(rgit "$USB" for-each-ref) &&
	test_expect_code 64 u1 maildag push usb nosuch >out 2>err &&
	grep "unknown peer .nosuch." err &&
	grep "usage: maildag push" err &&
	! test -s out &&
	test_expect_code 64 u1 maildag fetch mx1 2>err &&
	grep "unknown peer .mx1. (it is this replica" err &&
	test_expect_code 64 u1 maildag push -t 0 usb &&
	test_expect_code 64 u1 maildag push -t x usb &&
	test "$(rgit "$USB" for-each-ref)" = "$before"
'

test_expect_success 'without names: every peer that has push (fetch) on' '
	test_message 3 | u1 maildag-lda &&
	test_expect_code 75 u1 maildag push >out &&
	grep "^usb: pushed " out &&
	grep "^gone: unreachable: " out &&
	if test_have_prereq SSHD; then
		grep "^mx2: pushed " out && test "$(wc -l <out)" = 3
	else
		test "$(wc -l <out)" = 2
	fi &&
	test "$(rgit "$USB" rev-parse refs/peers/mx1/mail)" = \
		"$(rgit "$R1" rev-parse refs/heads/mail)" &&
	test_expect_code 75 u1 maildag fetch >out &&
	grep "^usb: up to date" out &&
	grep "^gone: unreachable: " out
'

test_expect_success 'stale ref locks a killed push or fetch left are removed' '
	test_message 4 | u1 maildag-lda &&
	u1 touch -d "-2 minutes" "$USB/refs/peers/mx1/mail.lock" &&
	u1 maildag push usb >out &&
	grep "^usb: pushed " out &&
	! test -e "$USB/refs/peers/mx1/mail.lock" &&
	test -e "$USB/maildag/peerref-mx1.lock" &&
	u1 touch -d "-2 minutes" "$R1/refs/peers/usb/mail.lock" &&
	u1 maildag fetch usb >out &&
	grep "^usb: up to date" out &&
	! test -e "$R1/refs/peers/usb/mail.lock"
'

test_expect_success 'a fresh ref lock (a live writer, git-receive-pack) is left alone' '
	test_message 4b | u1 maildag-lda &&
	u1 touch "$USB/refs/peers/mx1/mail.lock" &&
	test_expect_code 75 u1 maildag push usb >out &&
	grep "^usb: failed: peer usb could not update refs/peers/mx1/mail" out &&
	test -e "$USB/refs/peers/mx1/mail.lock" &&
	rm "$USB/refs/peers/mx1/mail.lock" &&
	u1 maildag push usb >out &&
	grep "^usb: pushed " out
'

test_expect_success SSHD 'a wrong pinned host key is refused, and nothing arrives' '
	before=$(rgit "$R2" for-each-ref) &&
	logins=$(grep -c "Accepted publickey" "$SSHD_DIR/log") &&
	test_expect_code 69 u1 maildag push badkey >out &&
	echo "badkey: hostkey: peer badkey (127.0.0.1) presented host key $SSHD_FINGERPRINT, expected $WRONG_FP" >expect &&
	test_cmp expect out &&
	test "$(rgit "$R2" for-each-ref)" = "$before" &&
	test_expect_code 69 u1 maildag fetch badkey >out &&
	grep "^badkey: hostkey: .*presented host key $SSHD_FINGERPRINT, expected $WRONG_FP" out &&
	test -z "$(rgit "$R1" for-each-ref refs/peers/badkey)" &&
	test "$(grep -c "Accepted publickey" "$SSHD_DIR/log")" = "$logins"
'

test_expect_success SSHD 'a key the peer does not know is an auth failure, not a loop' '
	before=$(rgit "$R2" for-each-ref) &&
	test_expect_code 69 u1 maildag push nokey >out &&
	echo "nokey: auth: peer nokey refused the key '\''$H1/.ssh/other'\'' for user '\''$N2'\''" >expect &&
	test_cmp expect out &&
	test "$(rgit "$R2" for-each-ref)" = "$before" &&
	test "$(grep -c "Failed publickey for $N2" "$SSHD_DIR/log")" = 1
'

test_expect_success SSHD 'no repository at the far end, nobody listening: one line each' '
	test_expect_code 75 u1 maildag push norepo closed >out &&
	cat out &&
	test "$(wc -l <out)" = 2 &&
	grep "^norepo: failed: .*does not appear to be a git repository" out &&
	grep "^closed: unreachable: .*127.0.0.1" out &&
	test_expect_code 75 u1 maildag fetch norepo >out &&
	grep "^norepo: failed: .*does not appear to be a git repository" out &&
	! test -e "$TRASH/nowhere.git"
'

test_expect_success SSHD 'push over ssh' '
	mail=$(rgit "$R1" rev-parse refs/heads/mail) &&
	mx2mail=$(rgit "$R2" rev-parse refs/heads/mail) &&
	u1 maildag push mx2 >out &&
	echo "mx2: pushed $(echo $mail | cut -c1-12)" >expect &&
	test_cmp expect out &&
	test "$(rgit "$R2" rev-parse refs/peers/mx1/mail)" = "$mail" &&
	test "$(rgit "$R2" rev-parse refs/heads/mail)" = "$mx2mail" &&
	rgit "$R2" fsck --strict --no-dangling &&
	test -z "$(find "$R2" ! -user "$N2")" &&
	grep "Accepted publickey for $N2" "$SSHD_DIR/log" &&
	u1 maildag push mx2 >out &&
	echo "mx2: up to date" >expect &&
	test_cmp expect out
'

test_expect_success SSHD 'a ref update the peer refuses is a failure' '
	test_message 7 | u1 maildag-lda &&
	before=$(rgit "$R2" rev-parse refs/peers/mx1/mail) &&
	printf "#!/bin/sh\ncase \"\$1\" in refs/peers/*) exit 1;; esac\n" >"$R2/hooks/update" &&
	chmod 755 "$R2/hooks/update" &&
	test_expect_code 69 u1 maildag push mx2 >out &&
	rm -f "$R2/hooks/update" &&
	grep "^mx2: rejected: peer mx2 refused refs/peers/mx1/mail: hook declined\$" out &&
	test "$(rgit "$R2" rev-parse refs/peers/mx1/mail)" = "$before" &&
	u1 maildag push mx2 >out &&
	grep "^mx2: pushed " out
'

# The peer's own fetch from us writes the same ref, so a locked ref is
# tried again over a new connection: each logs in with the key again (it
# was once refused on the second connection, the key counted as spent:
# t6020 and t6121 saw "refused the key" after a busy ref under load).
test_expect_success SSHD 'a ref locked at the peer over ssh: tried again, logging in each time, then "could not update"' '
	test_message 7b | u1 maildag-lda &&
	before=$(rgit "$R2" rev-parse refs/peers/mx1/mail) &&
	logins=$(grep -c "Accepted publickey for $N2" "$SSHD_DIR/log") &&
	u2 touch "$R2/refs/peers/mx1/mail.lock" &&
	test_expect_code 75 u1 maildag push mx2 >out &&
	cat out &&
	grep "^mx2: failed: peer mx2 could not update refs/peers/mx1/mail" out &&
	! grep "refused" out &&
	test "$(grep -c "Accepted publickey for $N2" "$SSHD_DIR/log")" = $((logins + 4)) &&
	test "$(rgit "$R2" rev-parse refs/peers/mx1/mail)" = "$before" &&
	rm "$R2/refs/peers/mx1/mail.lock" &&
	u1 maildag push mx2 >out &&
	grep "^mx2: pushed " out
'

test_expect_success SSHD 'fetch over ssh' '
	test_message 6 | u2 maildag-lda &&
	mx2mail=$(rgit "$R2" rev-parse refs/heads/mail) &&
	u1 maildag fetch mx2 >out &&
	echo "mx2: fetched $(echo $mx2mail | cut -c1-12)" >expect &&
	test_cmp expect out &&
	test "$(rgit "$R1" rev-parse refs/peers/mx2/mail)" = "$mx2mail" &&
	rgit "$R1" fsck --strict --no-dangling &&
	rgit "$R1" cat-file -e "$mx2mail^{tree}" &&
	u1 maildag fetch mx2 >out &&
	echo "mx2: up to date" >expect &&
	test_cmp expect out
'

test_expect_success SSHD 'a frozen peer times out; the healthy one still succeeds' '
	test_message 5 | u1 maildag-lda &&
	mail=$(rgit "$R1" rev-parse refs/heads/mail) &&
	sshd_freeze &&
	{ u1 maildag push -t 3 mx2 usb >out; rc=$?; sshd_thaw; } &&
	cat out &&
	test "$rc" = 75 &&
	grep "^mx2: timeout: no answer within 3 s\$" out &&
	grep "^usb: pushed $(echo $mail | cut -c1-12)\$" out &&
	test "$(wc -l <out)" = 2 &&
	test "$(rgit "$USB" rev-parse refs/peers/mx1/mail)" = "$mail" &&
	! pgrep -u "$N1" -x maildag &&
	u1 maildag push mx2 >out &&
	grep "^mx2: pushed $(echo $mail | cut -c1-12)\$" out &&
	test "$(rgit "$R2" rev-parse refs/peers/mx1/mail)" = "$mail"
'

test_expect_success 'a peer whose mail is not a valid maildag tree still fetches' '
	u1 git init -q --bare "$EVIL" &&
	blob=$(echo "/etc/passwd" | u1 git --git-dir="$EVIL" hash-object -w --stdin) &&
	tree=$(printf "120000 blob %s\tevil\n" "$blob" |
		u1 git --git-dir="$EVIL" mktree) &&
	commit=$(echo evil | u1 env GIT_AUTHOR_NAME=e GIT_AUTHOR_EMAIL=e@e \
		GIT_COMMITTER_NAME=e GIT_COMMITTER_EMAIL=e@e \
		git --git-dir="$EVIL" commit-tree "$tree") &&
	u1 git --git-dir="$EVIL" update-ref refs/heads/mail "$commit" &&
	mail=$(rgit "$R1" rev-parse refs/heads/mail) &&
	u1 maildag fetch evil >out &&
	echo "evil: fetched $(echo $commit | cut -c1-12)" >expect &&
	test_cmp expect out &&
	test "$(rgit "$R1" rev-parse refs/peers/evil/mail)" = "$commit" &&
	test "$(rgit "$R1" rev-parse refs/heads/mail)" = "$mail" &&
	rgit "$R1" fsck --no-dangling &&
	test_expect_code 65 u1 maildag merge -n refs/heads/mail refs/peers/evil/mail &&

	# names git itself refuses: fetched all the same
	tree=$(perl -e '\''binmode STDOUT;
		print "100644 ..\0", pack("H*", $ARGV[0]);
		print "100644 .git\0", pack("H*", $ARGV[0]);
		print "100644 a/b\0", pack("H*", $ARGV[0])'\'' "$blob" |
		u1 git --git-dir="$EVIL" hash-object -t tree -w --literally --stdin) &&
	commit=$(echo evil | u1 env GIT_AUTHOR_NAME=e GIT_AUTHOR_EMAIL=e@e \
		GIT_COMMITTER_NAME=e GIT_COMMITTER_EMAIL=e@e \
		git --git-dir="$EVIL" commit-tree "$tree" -p "$commit") &&
	u1 git --git-dir="$EVIL" update-ref refs/heads/mail "$commit" &&
	u1 maildag fetch evil >out &&
	echo "evil: fetched $(echo $commit | cut -c1-12)" >expect &&
	test_cmp expect out &&
	test "$(rgit "$R1" rev-parse refs/peers/evil/mail)" = "$commit" &&
	test "$(rgit "$R1" rev-parse refs/heads/mail)" = "$mail" &&
	test_expect_code 65 u1 maildag merge -n refs/heads/mail refs/peers/evil/mail
'

test_expect_success 'a peer whose objects do not hold together is "invalid"' '
	blob=$(echo x | u1 git --git-dir="$EVIL" hash-object -w --stdin) &&
	tree=$(perl -e '\''binmode STDOUT;
		print "40000 sub\0", pack("H*", $ARGV[0])'\'' "$blob" |
		u1 git --git-dir="$EVIL" hash-object -t tree -w --literally --stdin) &&
	commit=$(echo evil | u1 env GIT_AUTHOR_NAME=e GIT_AUTHOR_EMAIL=e@e \
		GIT_COMMITTER_NAME=e GIT_COMMITTER_EMAIL=e@e \
		git --git-dir="$EVIL" commit-tree "$tree") &&
	u1 git --git-dir="$EVIL" update-ref refs/heads/mail "$commit" &&
	before=$(rgit "$R1" rev-parse refs/peers/evil/mail) &&
	test_expect_code 69 u1 maildag fetch evil >out &&
	grep "^evil: invalid: " out &&
	test "$(rgit "$R1" rev-parse refs/peers/evil/mail)" = "$before"
'

test_expect_success 'a peer without refs/heads/mail has nothing to fetch' '
	u1 git init -q --bare "$TRASH/p/empty.git" &&
	put_config "$N1" "$TRASH/emptyconf/config.json" <<-EOF &&
	{ "node": "mx1", "peers": { "empty": { "url": "file://$TRASH/p/empty.git" } } }
	EOF
	u1 maildag -c "$TRASH/emptyconf/config.json" fetch >out &&
	echo "empty: nothing to fetch (no refs/heads/mail there yet)" >expect &&
	test_cmp expect out &&
	test -z "$(rgit "$R1" for-each-ref refs/peers/empty)"
'

test_done
