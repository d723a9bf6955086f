#!/bin/sh
test_description='what a replica must not trust, with real daemons: a peer that presents another host key than the pinned one gets nothing and gives nothing; a peer commit whose tree breaks the format is refused whole; the other peers go on'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
if [ -e "$abs_top_srcdir/t/lib-sshd.sh" ] && test_have_prereq ROOT; then
	. "$abs_top_srcdir/t/lib-sshd.sh"
	sshd_start || say "no test sshd: the host key cases are skipped"
fi
. "$abs_top_srcdir/t/lib-replica.sh"
[ -n "$PYTHON" ] || test_skip_all "no python3 to read maildag status --json"

# Users of this script's own (test_user_setup moves their homes, and
# scripts run in parallel): maildagh1..3 for the ssh set, maildagh4 for
# the three replicas of the file:// set.
if test_have_prereq ROOT; then
	H1=maildagh1 H2=maildagh2 H3=maildagh3 H4=maildagh4
else
	H4=$(id -un)
fi

# ere TEXT: TEXT quoted for grep -E (fingerprints hold "+" and "/")
ere() { printf '%s\n' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g'; }

# status_get I EXPR: json_get on replica I's `maildag status --json`
status_get() { replica_status "$1" | json_get "$2"; }

# has_ref I REF: replica I's repository has REF
has_ref() { replica_git "$1" rev-parse -q --verify "$2" >/dev/null; }

# contains I COMMIT [REF]: REF (refs/heads/mail) of replica I contains COMMIT
contains() {
	replica_git "$1" merge-base --is-ancestor "$2" "${3:-refs/heads/mail}" 2>/dev/null
}

# has_message I ID: the message ID is in replica I's Maildir
has_message() { test -n "$(replica_where "$1" "$2")"; }

# conf I PEERS [EXTRA [PEER-EXTRA]]: replica I's configuration, with only
# the peers listed (each as replica_peer_json makes it, with PEER-EXTRA)
conf() {
	local i=$1 peers=$2 extra=${3:-} pextra=${4:-} j sep=
	replica_write_config "$i" "$(
		printf '{ "node": "%s", "fetch_interval": 5, "backoff_min": 1,\n' \
			"$(replica_node "$i")"
		printf '  "backoff_max": 2, "net_timeout": 5, "debounce_ms": 100,\n'
		[ -z "$extra" ] || printf '  %s,\n' "$extra"
		printf '  "peers": {'
		for j in $peers; do
			printf '%s\n    %s' "$sep" "$(replica_peer_json "$i" "$j" "$pextra")"
			sep=,
		done
		printf '\n  } }\n'
	)"
}

# --- 1. a peer that presents another host key than the pinned one -------
#
# r1, r2 and r3 are three users, every link through the test sshd.  r1
# pins, for r2, the fingerprint of a key made for the purpose: the sshd
# presents its own, so for r1 whoever answers at r2's address is an
# impostor.  r3 is pinned right.  r2's daemon does not run and r3 peers
# with r1 only: whatever reaches r2's repository, or comes from it, can
# only be r1's doing.  r3 does not fetch from r1, so what r3 holds of
# r1's comes by r1's push.

test_expect_success SSHD 'host key: setup; r1 pins a wrong key for r2, the right one for r3' '
	replica_setup keys $H1 $H2 $H3 &&
	ssh-keygen -q -t ed25519 -N "" -C impostor -f "$TRASH/other_key" &&
	ssh-keygen -l -E sha256 -f "$TRASH/other_key.pub" | awk "{print \$2}" >wrong_fp &&
	grep -q "^SHA256:" wrong_fp &&
	test "$(cat wrong_fp)" != "$SSHD_FINGERPRINT" &&
	replica_write_config 1 "$(
		printf "{ \"node\": \"r1\", \"fetch_interval\": 5, \"backoff_min\": 1,\n"
		printf "  \"backoff_max\": 2, \"net_timeout\": 5, \"debounce_ms\": 100,\n"
		printf "  \"peers\": {\n    %s,\n    %s\n  } }\n" \
			"$(REPLICA_HOST_KEY=$(cat wrong_fp) replica_peer_json 1 2)" \
			"$(replica_peer_json 1 3)"
	)" &&
	grep -q "\"r2\": { \"url\": \"ssh://$H2@127.0.0.1:$SSHD_PORT.*\"host_key\": \"$(cat wrong_fp)\"" \
		"$(replica_config_file 1)" &&
	grep -q "\"r3\": { \"url\": \"ssh://$H3@.*\"host_key\": \"$SSHD_FINGERPRINT\"" \
		"$(replica_config_file 1)" &&
	conf 3 1 "" "\"fetch\": false" &&
	grep -q "\"fetch\": false" "$(replica_config_file 3)" &&
	# a commit of r2 alone (its daemon does not run): r1 must not get it
	replica_deliver 2 k0 &&
	{ grep -c "Accepted publickey for $H2 " "$SSHD_DIR/log" >logins.r2 || :; } &&
	test "$(cat logins.r2)" = 0
'

test_expect_success SSHD 'host key: r1 and r3 start; mail delivered on r1 reaches r3' '
	replica_start 1 &&
	replica_start 3 &&
	replica_deliver 1 k1 &&
	wait_for "has_message 3 k1" 30 &&
	wait_for "contains 3 \"\$(replica_head 1)\" refs/peers/r1/mail" 30
'

test_expect_success SSHD 'host key: push and fetch to r2 fail with an error naming both keys, in the log' '
	fp=$(ere "$(cat wrong_fp)") && real=$(ere "$SSHD_FINGERPRINT") &&
	replica_wait_log 1 "peer r2: push failed: hostkey: .*presented host key $real, expected $fp" &&
	replica_wait_log 1 "peer r2: fetch failed: hostkey: .*presented host key $real, expected $fp" &&
	# every failure with r2, first or again, is for the host key
	grep "peer r2: " "$(replica_log 1)" | grep -i "failed" >fails &&
	! grep -Ev "presented host key $real, expected $fp" fails
'

test_expect_success SSHD 'host key: maildag status --json shows it as the last error of r2, r3 is fine' '
	fp=$(cat wrong_fp) &&
	replica_status 1 >st.4 &&
	json_get "peer(\"r2\")[\"push\"][\"last_error\"]" <st.4 >err.push &&
	json_get "peer(\"r2\")[\"fetch\"][\"last_error\"]" <st.4 >err.fetch &&
	cat err.push err.fetch &&
	for e in err.push err.fetch; do
		grep -q "^hostkey: .*host key" $e &&
		grep -qF "$SSHD_FINGERPRINT" $e &&
		grep -qF "$fp" $e || return 1
	done &&
	test "$(json_get "peer(\"r2\")[\"push\"][\"failures\"] >= 1" <st.4)" = true &&
	test "$(json_get "peer(\"r2\")[\"push\"][\"last_ok\"]" <st.4)" = null &&
	test "$(json_get "peer(\"r2\")[\"fetch\"][\"last_ok\"]" <st.4)" = null &&
	test "$(json_get "peer(\"r2\")[\"push\"][\"id\"]" <st.4)" = null &&
	test "$(json_get "peer(\"r2\")[\"peer_ref\"]" <st.4)" = null &&
	test "$(json_get "peer(\"r3\")[\"push\"][\"failures\"]" <st.4)" = 0 &&
	test "$(json_get "peer(\"r3\")[\"push\"][\"last_ok\"] is not None" <st.4)" = true &&
	test "$(json_get "peer(\"r3\")[\"peer_ref\"] is not None" <st.4)" = true
'

test_expect_success SSHD 'host key: nothing was fetched from r2 and nothing pushed to it; nobody logged in there' '
	replica_sync 1 &&
	replica_wait_log 1 "peer r2: (push|fetch) failed" 3 &&
	! has_ref 1 refs/peers/r2/mail &&
	test -z "$(replica_git 1 for-each-ref refs/peers/r2)" &&
	! contains 1 "$(replica_head 2)" &&
	! replica_git 1 cat-file -e "$(replica_head 2)" 2>/dev/null &&
	! has_ref 2 refs/peers/r1/mail &&
	! replica_git 2 cat-file -e "$(replica_head 1)" 2>/dev/null &&
	test -z "$(replica_git 2 for-each-ref refs/peers)" &&
	! contains 2 "$(replica_head 1)" &&
	test -z "$(replica_where 2 k1)" &&
	test "$(grep -c "Accepted publickey for $H2 " "$SSHD_DIR/log")" = "$(cat logins.r2)"
'

test_expect_success SSHD 'host key: mail delivered on r3 reaches r1, and r1 keeps running' '
	replica_deliver 3 k2 &&
	wait_for "has_message 1 k2" 30 &&
	kill -0 "$(daemon_pid keys-r1)" &&
	wait_converged 30 1 3 &&
	printf "k1\nk2\n" >expect &&
	replica_message_ids 1 >ids.1 && test_cmp expect ids.1 &&
	replica_message_ids 3 >ids.3 && test_cmp expect ids.3 &&
	! has_ref 1 refs/peers/r2/mail && ! has_ref 2 refs/peers/r1/mail &&
	! contains 1 "$(replica_head 2)" && ! contains 2 "$(replica_head 1)"
'

# the refusal was the key's doing, nothing else: pinned right, r2 syncs
test_expect_success SSHD 'host key: pinned right (SIGHUP), r2 gets the mail and r1 gets r2'"'"'s' '
	replica_config 1 &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded" &&
	wait_for "has_ref 2 refs/peers/r1/mail && contains 2 \"\$(replica_head 1)\" refs/peers/r1/mail" 30 &&
	wait_for "has_ref 1 refs/peers/r2/mail" 30 &&
	test "$(replica_git 1 rev-parse refs/peers/r2/mail)" = "$(replica_head 2)" &&
	wait_for "contains 1 \"\$(replica_head 2)\"" 30 &&
	wait_for "has_message 1 k0" 30 &&
	replica_status 1 >st &&
	test "$(json_get "peer(\"r2\")[\"push\"][\"failures\"]" <st)" = 0 &&
	test "$(json_get "peer(\"r2\")[\"push\"][\"last_error\"]" <st)" = null
'

test_expect_success SSHD 'host key: stop' '
	replica_stop_all
'

# --- 2. a peer commit whose tree breaks the format ----------------------
#
# Three replicas of one user over file://.  r2's daemon is stopped and its
# refs/heads/mail is made, with git plumbing, to point at a child of its
# last good commit whose tree has one thing more that maildag-format(5)
# forbids: a "../x", a ".git/config", a folder with a bad name, a
# symbolic link.  r1 fetches each (or has it pushed into its
# refs/peers/r2/mail) and must refuse it whole.

# g2 ARGS: git as r2's user on its repository
g2() { replica_ugit 2 "$@"; }

# blob_tree MODE PATH CONTENT: in r2's repository, a tree holding one
# blob at PATH (a path git takes); its id
blob_tree() {
	local idx blob
	idx=$(replica_home 2)/bad.index
	rm -f "$idx"
	blob=$(printf '%s' "$3" | g2 hash-object -w --stdin) &&
	replica_run 2 env GIT_INDEX_FILE="$idx" git -c safe.directory='*' \
		--git-dir="$(replica_repo 2)" update-index --add \
		--cacheinfo "$1,$blob,$2" &&
	replica_run 2 env GIT_INDEX_FILE="$idx" git -c safe.directory='*' \
		--git-dir="$(replica_repo 2)" write-tree &&
	rm -f "$idx"
}

# bad_commit BASE NAME SUBTREE: in r2's repository, a child of BASE whose
# root tree is BASE's with the tree SUBTREE added as NAME (any name: the
# tree object is written byte by byte, in git's order); its id
bad_commit() {
	local tree
	tree=$({ g2 ls-tree -z "$1^{tree}"
		printf '040000 tree %s\t%s\0' "$3" "$2"; } |
		perl -e 'binmode STDOUT; local $/ = "\0"; my @e;
			while (<STDIN>) {
				chomp;
				my ($meta, $name) = split /\t/, $_, 2;
				my ($mode, $type, $oid) = split / /, $meta;
				$mode =~ s/^0+//;
				push @e, [$mode, $name, $oid];
			}
			sub k { $_[0][1] . ($_[0][0] eq "40000" ? "/" : "") }
			for (sort { k($a) cmp k($b) } @e) {
				print "$_->[0] $_->[1]\0", pack("H*", $_->[2]);
			}' |
		g2 hash-object -t tree -w --literally --stdin) &&
	echo "not a mailbox" | g2 commit-tree "$tree" -p "$1"
}

# push_peer_ref I J SPEC: as replica I's user, git push SPEC into replica
# J's repository, holding the lock J's daemon takes to fetch from I (as
# maildag's own file:// push does): the daemon's fetch writes the same
# refs/peers/rI/mail, and git push would fail meeting it ("cannot lock
# ref ...: is at X but expected Y")
push_peer_ref() {
	replica_run "$1" flock "$(replica_repo "$2")/maildag/peerref-r$1.lock" \
		git -c safe.directory='*' --git-dir="$(replica_repo "$1")" \
		push -q "file://$(replica_repo "$2")" "$3"
}

# the keys and names of the messages the bad trees carry
evil_name() { echo "1700000000.M$1P1Q1.evil,S=6:2,"; }
evil_path() { echo "cur/$(shard "1700000000.M$1P1Q1.evil")/$(evil_name "$1")"; }

# refused_by_fetch CASE REASON: r2's refs/heads/mail becomes the commit
# made in the file bad.CASE; r1 fetches it (maildag sync) and must refuse
# it, logged and in the status; its refs/heads/mail does not move
refused_by_fetch() {
	local b
	b=$(cat "bad.$1") &&
	g2 update-ref refs/heads/mail "$b" &&
	replica_sync 1 &&
	replica_wait_log 1 "peer r2: refusing $(echo "$b" | cut -c1-12): .*$2" &&
	check_refused "$1" "$2"
}

# check_refused CASE REASON: r1 refused the commit of bad.CASE, once
check_refused() {
	local b b12
	b=$(cat "bad.$1") && b12=$(echo "$b" | cut -c1-12)
	test "$(replica_log_count 1 "refusing $b12")" = 1 || {
		echo "r1 refused $b12 $(replica_log_count 1 "refusing $b12") times" >&2
		return 1; }
	replica_status 1 >st.$1 &&
	json_get "peer(\"r2\")[\"merge_error\"]" <st.$1 >merge_error.$1 &&
	cat merge_error.$1 &&
	grep -q "^refused $b12: .*$2" merge_error.$1 &&
	test "$(replica_head 1)" = "$(cat head.1)" &&
	! contains 1 "$b" && ! contains 3 "$b"
}

test_expect_success 'bad tree: setup; three replicas share some mail, then r2 stops' '
	replica_setup trees $H4 $H4 $H4 &&
	replica_start_all &&
	replica_deliver 2 t1 &&
	replica_deliver 1 t2 &&
	wait_converged 30 &&
	replica_expect_messages &&
	# on one commit, so nothing of theirs moves r1 later
	wait_for "test \"\$(replica_head 1)\" = \"\$(replica_head 2)\" &&
		test \"\$(replica_head 1)\" = \"\$(replica_head 3)\"" 30 &&
	replica_stop 2 &&
	replica_head 2 >good.2 &&
	replica_head 1 >head.1 &&
	replica_git 1 rev-parse refs/maildag/worktree >worktree.1 &&
	replica_state 1 >state.1 &&
	test "$(wc -l <state.1)" = 2
'

test_expect_success 'bad tree: the commits' '
	g=$(cat good.2) &&
	x=$(blob_tree 100644 x "pwned") &&
	bad_commit $g .. $x >bad.dotdot &&
	g2 ls-tree -r "$(cat bad.dotdot)" | grep -q "	\.\./x$" &&
	cfg=$(blob_tree 100644 config "[core]
	worktree = /") &&
	bad_commit $g .git $cfg >bad.dotgit &&
	g2 ls-tree -r "$(cat bad.dotgit)" | grep -q "	\.git/config$" &&
	f=$(blob_tree 100644 "$(evil_path 1)" "evil1
") &&
	bad_commit $g .a..b $f >bad.folder &&
	g2 ls-tree -r "$(cat bad.folder)" | grep -q "	\.a\.\.b/cur/" &&
	l=$(blob_tree 120000 "$(evil_path 2)" "/etc/passwd") &&
	bad_commit $g .Evil $l >bad.symlink &&
	g2 ls-tree -r "$(cat bad.symlink)" | grep -q "^120000 blob .*	\.Evil/cur/" &&
	# each is the good tree with one entry more
	for c in dotdot dotgit folder symlink; do
		test "$(g2 rev-parse "$(cat bad.$c)^")" = $g &&
		test "$(g2 ls-tree "$(cat bad.$c)" | wc -l)" = \
			$(( $(g2 ls-tree $g | wc -l) + 1 )) || return 1
	done
'

test_expect_success 'bad tree: a "../x" entry is refused' '
	refused_by_fetch dotdot "\.\." &&
	has_ref 1 refs/peers/r2/mail &&
	test "$(replica_git 1 rev-parse refs/peers/r2/mail)" = "$(cat bad.dotdot)"
'

test_expect_success 'bad tree: a ".git/config" entry is refused' '
	refused_by_fetch dotgit "\.git"
'

test_expect_success 'bad tree: a folder with a bad Maildir++ name is refused' '
	refused_by_fetch folder "\.a\.\.b"
'

test_expect_success 'bad tree: a symbolic link pushed straight into refs/peers/r2/mail is refused' '
	b=$(cat bad.symlink) &&
	g2 update-ref refs/heads/mail "$b" &&
	push_peer_ref 2 1 "+$b:refs/peers/r2/mail" &&
	replica_wait_log 1 "peer r2: refusing $(echo $b | cut -c1-12): .*symbolic link" &&
	check_refused symlink "symbolic link"
'

test_expect_success 'bad tree: r1'"'"'s Maildir and refs are untouched, maildag fsck is clean' '
	test "$(replica_head 1)" = "$(cat head.1)" &&
	test "$(replica_git 1 rev-parse refs/maildag/worktree)" = "$(cat worktree.1)" &&
	replica_state 1 >state.1.after &&
	test_cmp state.1 state.1.after &&
	md=$(replica_maildir 1) &&
	test -z "$(find "$md" -type l)" &&
	test -z "$(find "$(replica_home 1)" -name x -o -name "*.evil*" -o -name .a..b -o -name .Evil -o -name .git)" &&
	test -z "$(grep -rl "pwned\|evil1" "$md")" &&
	! test -e "$md/../x" &&
	replica_run 1 maildag fsck &&
	replica_applied 1 &&
	# the refused commit stays where it came, and fsck --all-refs says so
	test_expect_code 1 replica_run 1 maildag fsck --all-refs >fsck.out 2>&1 &&
	cat fsck.out &&
	grep -q "refs/peers/r2/mail" fsck.out
'

test_expect_success 'bad tree: r1 goes on with r3: mail from r3 reaches r1, and back' '
	replica_deliver 3 t3 &&
	wait_for "has_message 1 t3" 30 &&
	replica_deliver 1 t4 &&
	wait_for "has_message 3 t4" 30 &&
	wait_converged 30 1 3 &&
	replica_expect_messages 1 3 &&
	for c in dotdot dotgit folder symlink; do
		! contains 1 "$(cat bad.$c)" && ! contains 3 "$(cat bad.$c)" &&
		# refused once, not looked at again at the merges since
		test "$(replica_log_count 1 "refusing $(cut -c1-12 bad.$c)")" = 1 || return 1
	done &&
	test -z "$(find "$(replica_maildir 1)" "$(replica_maildir 3)" -type l)" &&
	replica_run 1 maildag fsck &&
	replica_run 3 maildag fsck &&
	test "$(status_get 1 "peer(\"r2\")[\"merge_error\"]")" != null
'

# the cases above were fast-forwards of r1's refs/heads/mail (their parent
# was r1's head); now r1 has moved on and it would be a merge
test_expect_success 'bad tree: an executable blob, where a merge would be needed, is refused' '
	replica_head 1 >head.1 &&
	test "$(replica_head 1)" != "$(cat good.2)" &&
	replica_state 1 >state.1 &&
	e=$(blob_tree 100755 "$(evil_path 3)" "evil3
") &&
	bad_commit "$(cat good.2)" .Exec $e >bad.exec &&
	g2 ls-tree -r "$(cat bad.exec)" | grep -q "^100755 blob .*	\.Exec/cur/" &&
	refused_by_fetch exec "executable blob" &&
	test -z "$(find "$(replica_home 1)" "$(replica_home 3)" -name .Exec)" &&
	replica_state 1 >state.1.after &&
	test_cmp state.1 state.1.after &&
	replica_run 1 maildag fsck
'

test_expect_success 'bad tree: r2 mended and back: all converge, the error is gone' '
	g2 update-ref refs/heads/mail "$(cat good.2)" &&
	replica_start 2 &&
	wait_converged 30 &&
	replica_expect_messages &&
	wait_for "test \"\$(status_get 1 \"peer(\\\"r2\\\")[\\\"merge_error\\\"]\")\" = null" &&
	for i in 1 2 3; do
		replica_run $i maildag fsck || return 1
	done
'

# --- 3. names that are not peers ---------------------------------------
#
# Anyone who can write refs/peers/ (any file:// peer, another process of
# the user) can make any number of refs/peers/<name>/mail.  Only the
# configured peers' are watched, merged or counted: 1,000 strangers
# pointing at a commit with a message of its own cost r1 no inotify watch
# and bring nothing in.

r1_watches() { inotify_watches "$(daemon_pid "$(replica_set)-r1")"; }

test_expect_success 'strangers: 1,000 refs/peers/n*/mail of names not configured' '
	wait_converged 30 &&
	r1_watches >watches.before &&
	test "$(cat watches.before)" -gt 5 &&
	test "$(cat watches.before)" -lt 100 &&
	# a valid commit on top of r2'"'"'s head with a folder of its own
	g=$(g2 rev-parse refs/heads/mail) &&
	f=$(blob_tree 100644 "$(evil_path 5)" "stranger") &&
	bad_commit $g .Stranger $f >stranger &&
	s=$(cat stranger) &&
	g2 push -q "file://$(replica_repo 1)" "$s:refs/peers/n0000/mail" &&
	replica_run 1 maildag merge -n -q "$g" "$s" >merged &&
	test "$(cat merged)" = "$s" &&
	for i in $(seq 1 999); do
		printf "create refs/peers/n%04d/mail %s\n" $i $s
	done | replica_ugit 1 update-ref --stdin &&
	test "$(replica_git 1 for-each-ref "refs/peers/n*/mail" | wc -l)" = 1000
'

test_expect_success 'strangers: none is watched or merged; mail still travels between r1 and r3' '
	s=$(cat stranger) &&
	replica_deliver 1 n1 &&
	wait_for "has_message 3 n1" 30 &&
	replica_deliver 3 n2 &&
	wait_for "has_message 1 n2" 30 &&
	replica_sync 1 &&
	wait_converged 30 &&
	r1_watches >watches.after &&
	cat watches.before watches.after &&
	test "$(cat watches.after)" -le "$(cat watches.before)" &&
	! contains 1 $s && ! contains 2 $s && ! contains 3 $s &&
	test -z "$(find "$(replica_home 1)" "$(replica_home 3)" -name .Stranger)" &&
	test "$(replica_log_count 1 "peer n[0-9]")" = 0 &&
	kill -0 "$(daemon_pid "$(replica_set)-r1")"
'

test_expect_success 'strangers: a reload (SIGHUP) without r3 stops watching refs/peers/r3/, with it again watches it' '
	test -d "$(replica_repo 1)/refs/peers/r3" &&
	w=$(r1_watches) &&
	n=$(replica_log_count 1 "configuration reloaded") &&
	conf 1 2 &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded" $((n + 1)) &&
	wait_for "test \$(r1_watches) = $((w - 1))" &&
	replica_config 1 &&
	replica_reload 1 &&
	replica_wait_log 1 "configuration reloaded" $((n + 2)) &&
	wait_for "test \$(r1_watches) = $w" &&
	# r3 is merged again: mail from it arrives
	replica_deliver 3 n3 &&
	wait_for "has_message 1 n3" 30
'

test_expect_success 'strangers: gone' '
	replica_git 1 for-each-ref --format="delete %(refname)" "refs/peers/n*/mail" |
		replica_ugit 1 update-ref --stdin &&
	test -z "$(replica_git 1 for-each-ref "refs/peers/n*/mail")" &&
	wait_converged 30 &&
	replica_expect_messages
'

# --- 4. a poisoned history ----------------------------------------------
#
# r2 (stopped) sends c1, a child of its good head that holds a symbolic
# link, and c2 on top that removes it again: c2's tree is good.  Checking
# the tip and the merge bases alone let c1 in by fast-forward, and an
# honest replica whose history held c1 was then refused for good.  Every
# commit of theirs ^ ours is checked: the batch is refused whole, and r1
# and r3 never hold c1 and go on converging.  c3, a merge of r2's good
# head and c1 (the good tree), hides c1 behind its second parent.

test_expect_success 'poisoned history: c1 (a symbolic link), c2 on top (good tree), c3 (a merge with c1 as second parent)' '
	replica_stop 2 &&
	g=$(g2 rev-parse refs/heads/mail) && echo $g >good.2 &&
	wait_for "contains 1 $g && contains 3 $g" 30 &&
	l=$(blob_tree 120000 "$(evil_path 4)" "/etc/shadow") &&
	bad_commit $g .Evil $l >c1 &&
	g2 ls-tree -r "$(cat c1)" | grep -q "^120000 blob .*	\.Evil/cur/" &&
	echo "good again" | g2 commit-tree "$g^{tree}" -p "$(cat c1)" >c2 &&
	echo "a merge" | g2 commit-tree "$g^{tree}" -p $g -p "$(cat c1)" >c3 &&
	test "$(g2 rev-parse "$(cat c2)^{tree}")" = "$(g2 rev-parse "$g^{tree}")" &&
	test "$(g2 rev-parse "$(cat c3)^2")" = "$(cat c1)" &&
	replica_head 1 >head.1
'

# refused_history CASE: r2's refs/heads/mail becomes the commit in the
# file CASE, pushed to r1 as r2 would; r1 refuses it for c1, whole, once
refused_history() {
	local b b12 c12
	b=$(cat "$1") && b12=$(echo $b | cut -c1-12) && c12=$(cut -c1-12 c1) &&
	g2 update-ref refs/heads/mail $b &&
	push_peer_ref 2 1 "+$b:refs/peers/r2/mail" &&
	replica_wait_log 1 "peer r2: refusing $b12: commit $c12 of its history: .*symbolic link" &&
	test "$(replica_log_count 1 "refusing $b12")" = 1 &&
	replica_status 1 >st.$1 &&
	json_get "peer(\"r2\")[\"merge_error\"]" <st.$1 >merge_error.$1 &&
	cat merge_error.$1 &&
	grep -q "^refused $b12: commit $c12 of its history: .*symbolic link" merge_error.$1 &&
	! contains 1 "$(cat c1)" && ! contains 1 $b
}

test_expect_success 'poisoned history: c2 is refused whole, for c1; r1 never holds c1' '
	refused_history c2 &&
	test "$(replica_head 1)" = "$(cat head.1)"
'

test_expect_success 'poisoned history: c3 (c1 behind a merge'"'"'s second parent) is refused whole too' '
	refused_history c3 &&
	test "$(replica_head 1)" = "$(cat head.1)"
'

test_expect_success 'poisoned history: r3 (fetching from r2) refuses it as well; r1 and r3 go on converging' '
	c1=$(cat c1) &&
	replica_sync 3 &&
	replica_wait_log 3 "peer r2: refusing $(cut -c1-12 c3): commit $(cut -c1-12 c1) of its history" &&
	replica_deliver 1 p1 &&
	wait_for "has_message 3 p1" 30 &&
	replica_deliver 3 p2 &&
	wait_for "has_message 1 p2" 30 &&
	wait_converged 30 1 3 &&
	! contains 1 $c1 && ! contains 3 $c1 &&
	! replica_git 1 merge-base --is-ancestor $c1 refs/maildag/worktree &&
	test -z "$(find "$(replica_maildir 1)" "$(replica_maildir 3)" -type l)" &&
	test -z "$(find "$(replica_home 1)" "$(replica_home 3)" -name .Evil)" &&
	replica_run 1 maildag fsck &&
	replica_run 3 maildag fsck &&
	# refused once each, never tried again while the ref stays
	test "$(replica_log_count 1 "refusing $(cut -c1-12 c3)")" = 1 &&
	test "$(replica_log_count 1 "refusing $(cut -c1-12 c2)")" = 1
'

test_expect_success 'poisoned history: r2 mended and back: all converge, the error is gone' '
	g2 update-ref refs/heads/mail "$(cat good.2)" &&
	replica_start 2 &&
	wait_converged 30 &&
	replica_expect_messages &&
	wait_for "test \"\$(status_get 1 \"peer(\\\"r2\\\")[\\\"merge_error\\\"]\")\" = null" &&
	for i in 1 2 3; do
		! contains $i "$(cat c1)" &&
		replica_run $i maildag fsck || return 1
	done
'

test_expect_success 'bad tree: stop' '
	replica_stop_all
'

test_done
