#!/bin/sh
test_description='format 2 (experimental): maildag init --format 2 writes a tree fsck calls clean, with the IMAP records; a format 1 replica and a format 2 replica refuse each other by name, and neither loses anything'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"

K1=1700000000.M1P1Q1.host
K2=1700000001.M2P2Q2.host
K3=1700000002.M3P3Q3.host

# put I PATH TEXT: a message file in replica I's Maildir
put() {
	printf 'From: a@example.org\nSubject: %s\nMessage-ID: <%s@example.org>\n\nbody\n' \
		"$3" "$3" | replica_run "$1" sh -c "cat >'$(replica_maildir "$1")/$2'"
}

# blob I PATH: the blob at PATH of replica I's mail
blob() { replica_git "$1" cat-file -p "refs/heads/mail:$2"; }

# record I KEY: "<uid>[ TAB keywords]" of KEY in replica I's records
record() {
	local xx
	xx=$(shard "$2") &&
	blob "$1" "imap/$xx" | awk -F '\t' -v k="$2" '$1 == k { print substr($0, length(k) + 2) }'
}

test_expect_success 'setup: r1 format 1, r2 made again with init --format 2' '
	replica_setup ftwo $TEST_USER $TEST_USER &&
	md=$(replica_maildir 2) &&
	replica_run 2 mkdir -p "$md/.Sent/cur" "$md/.Sent/new" "$md/.Sent/tmp" \
		"$md/.Empty/cur" "$md/.Empty/new" "$md/.Empty/tmp" &&
	replica_run 2 touch "$md/.Sent/maildirfolder" "$md/.Empty/maildirfolder" &&
	put 2 "cur/$K1,S=120:2,Sa" m1 &&
	put 2 "cur/$K2:2,S" m2 &&
	put 2 ".Sent/cur/$K3:2,S" m3 &&
	# Dovecot numbered K1 already (UID 7) and knows its keyword
	printf "3 V1234567 N9\n7 :%s,S=120\n" "$K1" |
		replica_run 2 sh -c "cat >\"$md/dovecot-uidlist\"" &&
	printf "0 \$Forwarded\n" | replica_run 2 sh -c "cat >\"$md/dovecot-keywords\"" &&
	rm -rf "$(replica_repo 2)" &&
	replica_run 2 maildag init --format 2 >out &&
	cat out &&
	grep "format 2 (experimental): 3 folders, 3 messages recorded, 2 UIDs given in slot 0" out
'

test_expect_success 'init --format 2: FORMAT, folder records, message records, slots' '
	test "$(blob 2 FORMAT)" = "maildag 2" &&
	printf "uidvalidity 1234567\nuidnext 10\n" >expect &&
	blob 2 imapfolder >actual && test_cmp expect actual &&
	blob 2 .Sent/imapfolder | grep -q "^uidnext 2$" &&
	blob 2 .Empty/imapfolder | grep -q "^uidnext 1$" &&
	test "$(record 2 $K1)" = "$(printf "7\t\$Forwarded")" &&
	test "$(record 2 $K2)" = 9 &&
	test "$(record 2 $K3)" = 1 &&
	test "$(blob 2 uidslots)" = "0 r2" &&
	# the name in the tree lost its letter; the disk kept it
	replica_git 2 ls-tree -r --name-only refs/heads/mail | grep -q "cur/../$K1,S=120:2,S$" &&
	test -e "$(replica_maildir 2)/cur/$K1,S=120:2,Sa" &&
	# what the records say, Dovecot finds in its uidlist
	grep -q "^9 :$K2$" "$(replica_maildir 2)/dovecot-uidlist" &&
	grep -q "^3 V[0-9]* N2$" "$(replica_maildir 2)/.Sent/dovecot-uidlist" &&
	test "$(replica_git 2 rev-parse refs/heads/mail)" = \
	     "$(replica_git 2 rev-parse refs/maildag/worktree)"
'

test_expect_success 'init --format 2: fsck clean' '
	replica_fsck 2 &&
	cat "$REPLICAS/mfsck.2" &&
	grep -q "3 messages" "$REPLICAS/mfsck.2"
'

test_expect_success 'a second init --format 2 refuses an existing repository' '
	test_must_fail replica_run 2 maildag init --format 2 2>err &&
	grep -q "already exists" err &&
	test_must_fail replica_run 2 maildag init --format 3 2>err
'

# Until the worktree reads letters through dovecot-keywords (issue 12
# step 4), maildag-syncd would commit the letter of K1 back into the
# format 2 name: the disk drops it first.
test_expect_success 'format 1 and format 2 replicas refuse each other by name' '
	# r2 keeps its file with keyword letter a ($Forwarded, as committed)
	replica_deliver 1 f1-delivered &&
	h1=$(replica_head 1) && h2=$(replica_head 2) &&
	replica_start_all &&
	replica_wait_log 1 "peer r2: refusing [0-9a-f]*: .*format 2 \(maildag 2\), and this repository is format 1 \(maildag 1\): .maildag upgrade. makes it format 2" &&
	replica_wait_log 2 "peer r1: refusing [0-9a-f]*: format 1 \(maildag 1\) from a peer, and this repository is format 2 \(maildag 2\): its mail is taken once that peer runs .maildag upgrade." &&
	replica_stop_all &&
	test "$(replica_head 1)" = "$h1" &&
	test "$(replica_head 2)" = "$h2"
'

test_expect_success 'nothing lost: each keeps its mail, the other'\''s waits in its peer ref' '
	replica_git 1 merge-base --is-ancestor "$(replica_head 2)" refs/peers/r2/mail &&
	replica_git 2 merge-base --is-ancestor "$(replica_head 1)" refs/peers/r1/mail &&
	has1=$(replica_where 1 f1-delivered) && test -n "$has1" &&
	test "$(blob 2 FORMAT)" = "maildag 2" &&
	test "$(blob 1 FORMAT)" = "maildag 1" &&
	replica_fsck 1 && replica_fsck 2
'

test_done
