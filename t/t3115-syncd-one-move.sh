#!/bin/sh
test_description='maildag-syncd commits a MOVE and a folder RENAME as one change'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"

command -v perl >/dev/null 2>&1 || test_skip_all 'perl is not installed'
command -v strace >/dev/null 2>&1 || test_skip_all 'strace is not installed'

N=${ONEMOVE_N:-300}

# make_msgs DIR N PREFIX: N messages in DIR
make_msgs() {
	as_user perl -e '
		my ($dir, $n, $p) = @ARGV;
		for my $i (1 .. $n) {
			my $t = 1700000000 + $i;
			my $name = "$dir/$t.M${i}P1$p.test,S=60:2,S";
			open(my $f, ">", $name) or die "$name: $!";
			print $f "From: a\@example.org\nMessage-ID: <$p$i\@x>\nSubject: m $i\n\nmessage $p $i\n";
			close $f;
			utime($t, $t, $name);
		}' "$1" "$2" "$3"
}

# a Dovecot whose first unlink(2) of STALL_PATH waits 3 s: a busy
# machine between a MOVE's two halves
cat >"$TRASH/imap-stalled" <<EOS
#!/bin/sh
exec strace -qq -f -o "$TRASH/strace.out" -e trace=unlink,unlinkat \
	-e inject=unlink:delay_enter=3000000:when=1 \
	-P "\$(cat "$TRASH/stall-path")" $DOVECOT_IMAP "\$@"
EOS
chmod 755 "$TRASH/imap-stalled"
touch "$TRASH/strace.out" "$TRASH/stall-path"
chmod 666 "$TRASH/strace.out" "$TRASH/stall-path"

# move_all FROM TO [stall]: MOVE every message of FROM to TO in one
# IMAP session; with stall, Dovecot stops 3 s before its first unlink
move_all() {
	local first
	if [ -n "${3:-}" ]; then
		first=$(ls "$MAILDIR/.$1/cur" | sort | head -n 1) &&
		echo "$MAILDIR/.$1/cur/$first" >"$TRASH/stall-path" &&
		DOVECOT_IMAP=$TRASH/imap-stalled
	fi
	imap_open &&
	imap_send "SELECT $1" >/dev/null &&
	imap_send "MOVE 1:* $2" >out &&
	imap_close
}

test_expect_success "setup: $N messages in A" '
	as_user mkdir -p "$MAILDIR/cur" "$MAILDIR/new" "$MAILDIR/tmp" &&
	as_user mkdir -p "$MAILDIR/.A/cur" "$MAILDIR/.A/new" "$MAILDIR/.A/tmp" &&
	as_user touch "$MAILDIR/.A/maildirfolder" &&
	make_msgs "$MAILDIR/.A/cur" $N a &&
	imap "SELECT A" "CREATE B" >/dev/null &&
	syncd_start &&
	syncd_idle &&
	test "$(tree_state | wc -l)" = $N
'

for round in 1; do
test_expect_success "round $round: MOVE of $N messages A -> B and back, stalled" '
	before=$(mail_head) &&
	ls "$MAILDIR/.A/cur" | head -n 2 &&
	move_all A B stall &&
	syncd_idle &&
	ls "$MAILDIR/.B/cur" | head -n 2 &&
	move_all B A stall &&
	syncd_idle &&
	mgit log --format="%h %s" $before..refs/heads/mail &&
	as_user maildag log --expunged >exp && cat exp &&
	{ grep -i "mass deletion\|repeats a key" "$SYNCD_LOG" | tail -3; true; } &&
	test ! -s exp
'
done

test_expect_success 'setup: A.x, syncd under strace' '
	syncd_stop &&
	imap "CREATE A.x" >/dev/null &&
	make_msgs "$MAILDIR/.A.x/cur" 30 x &&
	touch "$TRASH/syncd-strace.out" && chmod 666 "$TRASH/syncd-strace.out" &&
	( SYNCD_NAME=syncd; daemon_start syncd "$SYNCD_LOG" strace -f -qq \
		-o "$TRASH/syncd-strace.out" -e trace=openat \
		-e inject=openat:delay_enter=3000000:when=2 \
		-P "$MAILDIR/.A/cur" maildag-syncd -v ) &&
	wait_for "grep -q \"watching [0-9]* directories\" \"\$SYNCD_LOG\"" &&
	syncd_idle
'

test_expect_success 'RENAME A C while syncd reads A' '
	before=$(mail_head) &&
	cat "$TRASH/syncd-strace.out" &&
	as_user rm "$MAILDIR/.A/maildirfolder" &&
	as_user touch "$MAILDIR/.A/maildirfolder" &&
	wait_for "test \$(grep -c openat \"$TRASH/syncd-strace.out\") -ge 2" &&
	imap "RENAME A C" &&
	syncd_idle &&
	cat "$TRASH/syncd-strace.out" &&
	mgit log --format="%h %s" $before..refs/heads/mail &&
	{ grep -i "mass deletion\|repeats a key" "$SYNCD_LOG" | tail -3; true; }
'

test_done
