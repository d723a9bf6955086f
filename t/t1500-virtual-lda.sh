#!/bin/sh
test_description='maildag-lda -a for virtual mailboxes: the recipient picks the Maildir and repository, an extension picks a folder, unknown and hostile recipients bounce with 67 and one line'
. "$abs_top_srcdir/t/test-lib.sh"

V=$USER_HOME/vmail
CONF=$USER_HOME/.config/maildag/config.json

# conf JSON: the test user's configuration
conf() {
	as_user mkdir -p "$USER_HOME/.config/maildag" &&
	printf '%s\n' "$1" | as_user sh -c "cat >'$CONF'" &&
	as_user chmod 600 "$CONF"
}

# lda_status WANT CODE ARGS...: maildag-lda's exit status and its one line
lda_status() {
	local want=$1 code=$2 got=0
	shift 2
	test_message x | as_user maildag-lda "$@" 2>err || got=$?
	cat err >&2
	test "$got" = "$want" || { echo "exit $got, wanted $want" >&2; return 1; }
	test -z "$code" || { test "$(wc -l <err)" = 1 && grep -q "^$code " err; }
}

vgit() { git -c safe.directory='*' --git-dir="$V/$1/mail.git" "$@"; }
vcount() { git -c safe.directory='*' --git-dir="$V/$1/mail.git" ls-tree -r --name-only refs/heads/mail | grep -c "${2:-}/new/" || :; }

test_expect_success 'setup: a listed set-up' '
	conf "{ \"virtual\": { \"maildir\": \"$V/%d/%n/Maildir\",
	  \"repository\": \"$V/%u/mail.git\",
	  \"mailboxes\": { \"alice@example.org\": {}, \"bob@example.net\": {} } } }"
'

test_expect_success 'a listed mailbox is made on the first delivery' '
	test_message a1 | as_user maildag-lda -a alice@example.org &&
	grep -q "test message a1" "$V"/example.org/alice/Maildir/new/* &&
	test "$(git -c safe.directory="*" --git-dir="$V/alice@example.org/mail.git" ls-tree -r --name-only refs/heads/mail | grep -c new/)" = 1 &&
	test ! -e "$USER_HOME/Maildir"
'

test_expect_success 'the address is folded to lower case' '
	test_message b1 | as_user maildag-lda -a Bob@EXAMPLE.net &&
	grep -q "test message b1" "$V"/example.net/bob/Maildir/new/*
'

test_expect_success 'an extension picks an existing folder, else INBOX' '
	as_user mkdir -p "$V/example.org/alice/Maildir/.lists/cur" \
		"$V/example.org/alice/Maildir/.lists/new" \
		"$V/example.org/alice/Maildir/.lists/tmp" &&
	test_message a2 | as_user maildag-lda -a alice+lists@example.org &&
	grep -q "test message a2" "$V"/example.org/alice/Maildir/.lists/new/* &&
	test_message a3 | as_user maildag-lda -a alice+nofolder@example.org &&
	grep -q "test message a3" "$V"/example.org/alice/Maildir/new/*
'

test_expect_success 'an unlisted recipient: 67 with 5.1.1, nothing made' '
	lda_status 67 5.1.1 -a carol@example.org &&
	grep -q "carol@example.org" err &&
	test ! -e "$V/example.org/carol" && test ! -e "$V/carol@example.org"
'

test_expect_success 'hostile recipients: 67 with 5.1.3, never echoed, nothing made' '
	ls -R "$V" >before &&
	for a in "../../x@example.org" "a/b@example.org" "alice@../../etc" \
		 ".git@example.org" "alice@example.org/../x" "a@b@example.org" \
		 "al\$(id)@example.org" "alice" "" \
		 "$(printf "%0300d@example.org" 0)" \
		 "$(printf "al\001ice@example.org")"; do
		lda_status 67 5.1.3 -a "$a" || return 1
		! grep -q "\.\./\|/b@\|\$(id)\|00000000" err || return 1
	done &&
	ls -R "$V" >after && test_cmp before after
'

test_expect_success 'no -a in a virtual set-up: 64' '
	lda_status 64 5.3.5
'

test_expect_success 'setup: patterns only, mailboxes on disk' '
	conf "{ \"virtual\": { \"maildir\": \"$V/%d/%n/Maildir\",
	  \"repository\": \"$V/%u/mail.git\" } }"
'

test_expect_success 'a mailbox on disk gets mail' '
	test_message a4 | as_user maildag-lda -a alice@example.org &&
	grep -q "test message a4" "$V"/example.org/alice/Maildir/new/*
'

test_expect_success 'one not on disk is unknown: 67, nothing made' '
	lda_status 67 5.1.1 -a dave@example.org &&
	test ! -e "$V/example.org/dave" && test ! -e "$V/dave@example.org"
'

test_expect_success 'a Maildir made by the admin is enough' '
	as_user mkdir -p "$V/example.org/dave/Maildir" &&
	test_message d1 | as_user maildag-lda -a dave@example.org &&
	grep -q "test message d1" "$V"/example.org/dave/Maildir/new/* &&
	test -d "$V/dave@example.org/mail.git"
'

test_expect_success 'without "virtual", -a is only logged, as before' '
	conf "{ }" &&
	test_message s1 | as_user maildag-lda -a someone@example.org &&
	grep -q "test message s1" "$MAILDIR"/new/*
'

test_done
