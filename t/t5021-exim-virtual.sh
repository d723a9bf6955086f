#!/bin/sh
test_description='virtual mailboxes through a real Exim: a router over the mail root (dsearch), a pipe transport running maildag-lda -a with untainted $local_part_data@$domain_data'
# The Exim half of issue 14's "as a Postfix virtual/pipe transport or an
# Exim router calls it" (doc/virtual.md); Postfix's is t5020.
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-exim.sh"

V=$USER_HOME/vmail
FROM=sender@outside.test

# in_box ADDRESS ID: message ID is in that mailbox's new/, once
in_box() {
	test "$(grep -lF "Message-ID: <$2.$$@" "$V/${1#*@}/${1%@*}"/Maildir/new/* 2>/dev/null | wc -l)" = 1
}

test_expect_success 'setup: three virtual mailboxes, Exim routing their domains to maildag-lda -a' '
	as_user mkdir -p "$USER_HOME/.config/maildag" &&
	for a in alice@example.org bob@example.org carol@example.net; do
		as_user mkdir -p "$V/${a#*@}/${a%@*}/Maildir" || return 1
	done &&
	printf "%s\n" "{ \"virtual\": { \"maildir\": \"$V/%d/%n/Maildir\"," \
		"  \"repository\": \"$V/%d/%n/mail.git\" } }" |
		mta_write_user_file "$USER_HOME/.config/maildag/config.json" 600 &&
	chmod 755 "$USER_HOME" "$V" "$V"/* &&
	ex_setup &&
	sed -i -e "s|^domainlist local_domains = localhost\$|domainlist local_domains = localhost : dsearch;$V|" \
		-e "s|^begin routers\$|begin routers\\
\\
vmail:\\
  driver = accept\\
  domains = dsearch;$V\\
  local_parts = dsearch;$V/\$domain_data\\
  transport = maildag_vmail\\
|" \
		-e "s|^begin transports\$|begin transports\\
\\
maildag_vmail:\\
  driver = pipe\\
  command = $BIN/maildag-lda -a \$local_part_data@\$domain_data\\
  user = $TEST_USER\\
  return_path_add\\
  log_output\\
  message_suffix =\\
|" "$EX_CONF" &&
	ex -bV >"$EX_DIR/bV2.out" 2>&1 || { cat "$EX_DIR/bV2.out" >&2; false; } &&
	ex -bt alice@example.org >bt && grep -q "transport = maildag_vmail" bt
'

test_expect_success 'mail to two mailboxes of two domains: each in its own Maildir and repository' '
	mta_msg e1 | ex_send alice@example.org "$FROM" >"$EX_DIR/id.e1" &&
	mta_msg e2 | ex_send carol@example.net "$FROM" >"$EX_DIR/id.e2" &&
	ex_queue_run &&
	test "$(ex_status "$(cat "$EX_DIR/id.e1")")" = delivered &&
	test "$(ex_status "$(cat "$EX_DIR/id.e2")")" = delivered &&
	in_box alice@example.org e1 && in_box carol@example.net e2 &&
	! in_box bob@example.org e1 &&
	git -c safe.directory="*" --git-dir="$V/example.org/alice/mail.git" log --format=%s refs/heads/mail | grep -q "^deliver"
'

test_expect_success 'a recipient with no mailbox is refused by the router, nothing made' '
	if mta_msg e3 | ex_send dave@example.org "$FROM" >"$EX_DIR/id.e3" 2>err; then
		ex_queue_run &&
		test "$(ex_status "$(cat "$EX_DIR/id.e3")")" = bounced
	else
		grep -qi "unrouteable\|550" err
	fi &&
	! test -e "$V/example.org/dave"
'

test_done
