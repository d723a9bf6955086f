#!/bin/sh
test_description='many deliveries at once to one user'
. "$abs_top_srcdir/t/test-lib.sh"

N=50

test_expect_success "$N deliveries started at once into a new mailbox" '
	for i in $(seq $N); do
		( test_message "c$i" | as_user maildag-lda; echo $? >"status.$i" ) &
	done &&
	wait &&
	cat status.* | sort | uniq -c >statuses &&
	echo "     $N 0" >expect && test_cmp expect statuses
'

# deliveries that wait for the writer lock are committed together
test_expect_success "$N messages, each once, each recorded by one commit" '
	test "$(find "$MAILDIR/new" -type f | wc -l)" = $N &&
	for i in $(seq $N); do
		test "$(grep -l "^Subject: test message c$i\$" "$MAILDIR"/new/* | wc -l)" = 1 || exit 1
	done &&
	test "$(tree_files | wc -l)" = $N &&
	mgit log --format=%B refs/heads/mail | grep "^Blob: " | sort >blobs &&
	test "$(wc -l <blobs)" = $N && test "$(sort -u blobs | wc -l)" = $N &&
	for f in "$MAILDIR"/new/*; do
		grep -qx "Blob: $(git hash-object "$f")" blobs || exit 1
	done &&
	commits=$(mgit rev-list --count refs/heads/mail) &&
	test "$commits" -ge 2 && test "$commits" -le $((N + 1)) &&
	echo "$N deliveries in $((commits - 1)) commits"
'

test_expect_success 'maildag log shows every delivery once' '
	as_user maildag log >log &&
	test "$(grep -c "delivered to INBOX: from Alice" log)" = $N &&
	for i in $(seq $N); do
		test "$(grep -c "\"test message c$i\"" log)" = 1 || exit 1
	done
'

test_expect_success 'fsck is clean and the work tree ref agrees' '
	mgit fsck --strict --no-dangling &&
	test "$(mgit rev-parse refs/maildag/worktree^{tree})" = \
	     "$(mgit rev-parse refs/heads/mail^{tree})" &&
	test_repo_consistent &&
	test -z "$(ls "$REPO/maildag/pending")"
'

test_expect_success "$N more at once into the existing mailbox, with retries mixed in" '
	for i in $(seq $N); do
		( test_message "d$i" | as_user maildag-lda; echo $? >"status2.$i" ) &
		( test_message "c$i" | as_user maildag-lda; echo $? >"status3.$i" ) &
	done &&
	wait &&
	test "$(cat status2.* status3.* | sort -u)" = 0 &&
	test "$(find "$MAILDIR/new" -type f | wc -l)" = $((2 * N)) &&
	test "$(tree_files | wc -l)" = $((2 * N)) &&
	mgit fsck --strict --no-dangling && test_repo_consistent
'

test_done
