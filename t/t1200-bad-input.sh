#!/bin/sh
test_description='malformed mail is stored byte for byte, never bounced'
. "$abs_top_srcdir/t/test-lib.sh"

# deliver_exact NAME: deliver the file NAME (no sender: nothing is added)
# and check the stored file and the blob are the same bytes
deliver_exact() {
	before=$(find "$MAILDIR/new" -type f 2>/dev/null | sort)
	as_user maildag-lda <"$1" || return 1
	after=$(find "$MAILDIR/new" -type f | sort)
	f=$(printf '%s\n' "$after" | grep -vxF "$before" | grep .) || {
		echo "no new file for $1" >&2; return 1; }
	test "$(printf '%s\n' "$f" | wc -l)" = 1 &&
	cmp "$1" "$f" &&
	name=$(basename "$f") &&
	path=$(tree_files | grep -F "/$name") &&
	mgit cat-file blob "refs/heads/mail:$path" >blob &&
	cmp "$1" blob
}

test_expect_success 'NUL bytes' '
	printf "Subject: nul\n\na\0b\0\0c\n" >nul && deliver_exact nul
'
test_expect_success 'bare CR' '
	printf "Subject: cr\r\rX: y\n\nline\rline\r" >cr && deliver_exact cr
'
test_expect_success 'CRLF line ends' '
	printf "Subject: crlf\r\nFrom: a@b\r\n\r\nbody\r\n" >crlf && deliver_exact crlf
'
test_expect_success '8-bit headers' '
	printf "Subject: caf\351 \303\244\377\nFrom: \300\301 <x@y>\n\nbody \200\n" >8bit &&
	deliver_exact 8bit
'
test_expect_success 'a 10 MB line' '
	{ printf "Subject: long\n\n"; head -c 10485760 /dev/zero | tr "\0" a; echo; } >long &&
	deliver_exact long
'
test_expect_success 'no final newline' '
	printf "Subject: nonl\n\nno newline at the end" >nonl && deliver_exact nonl
'
test_expect_success 'an empty message' '
	: >empty && deliver_exact empty
'
test_expect_success 'headers only' '
	printf "Subject: headers only\nFrom: a@b\n" >hdr && deliver_exact hdr
'
test_expect_success 'a message that is only a From_ line is the empty one again' '
	printf "From x@y Sun Nov 22 10:00:00 2026\n" >fromonly &&
	find "$MAILDIR/new" -type f | sort >before &&
	as_user maildag-lda <fromonly &&
	find "$MAILDIR/new" -type f | sort >after &&
	test_cmp before after &&
	test "$(find "$MAILDIR/new" -type f -empty | wc -l)" = 1
'
test_expect_success 'a From_ line without a newline, then nothing' '
	printf "From x@y" >fromnonl &&
	as_user maildag-lda <fromnonl
'
test_expect_success '"From " later in the message is kept' '
	printf "Subject: f\n\nFrom here on\n" >fromlater && deliver_exact fromlater
'
test_expect_success 'binary garbage' '
	head -c 100000 /dev/urandom >garbage && deliver_exact garbage
'
test_expect_success 'corpus messages, if the corpus is there' '
	if [ -n "${MAILDAG_CORPUS:-}" ] && [ -d "$MAILDAG_CORPUS" ]; then
		n=0 &&
		for f in $(find "$MAILDAG_CORPUS" -type f -size -2M | sort | head -n 40); do
			cp "$f" corpus.msg && chmod 644 corpus.msg &&
			case "$(head -c 5 corpus.msg)" in "From ") continue;; esac &&
			deliver_exact corpus.msg || exit 1
			n=$((n + 1))
		done &&
		echo "delivered $n corpus messages"
	else
		echo "MAILDAG_CORPUS not set: generated messages only"
	fi
'
test_expect_success 'the repository is clean after all of it' '
	mgit fsck --strict --no-dangling && test_repo_consistent
'
test_done
