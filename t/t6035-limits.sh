#!/bin/sh
test_description='the limits a peer cannot get past, with real daemons: a 2 GiB message, a tree of 1,000,000 entries, a huge subscriptions file and 30,000 folders are each refused with a reason in the log and in maildag status, nothing reaches the Maildir, maildag-syncd stays small and keeps answering, and deliveries go on'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-dovecot.sh"
[ -x "$BIN/maildag-syncd" ] && [ -x "$BIN/maildag-lda" ] && [ -x "$BIN/maildag" ] ||
	test_skip_all "maildag's programs are not built"
. "$abs_top_srcdir/t/lib-replica.sh"
[ -n "$PYTHON" ] || test_skip_all "no python3 to make the objects"

if test_have_prereq ROOT; then
	U=maildagl1
else
	U=$(id -un)
fi

# r1 runs; r2 is the hostile peer: its daemon is stopped and its
# refs/heads/mail is set, with git plumbing, to a child of the last good
# commit holding one thing too big.  r1 gets each by its own fetch
# (maildag sync) or by a push into its refs/peers/r2/mail.

# the largest resident set maildag-syncd may reach, in kB
RSS_MAX=65536
# a fetch from a busy machine's peer is never cut short here
REPLICA_NET_TIMEOUT=20

g2() { replica_ugit 2 "$@"; }

# objects GITDIR blob SIZE: a loose blob of SIZE zero bytes, streamed
# (never whole in memory); objects GITDIR tree [N MODE ID PREFIX]: a loose
# tree of the "MODE TYPE ID<TAB>NAME" lines on stdin (git ls-tree's) and
# N more entries MODE ID PREFIX<7 digits>, in git's order.  Prints the id.
cat >objects.py <<'EOF'
import hashlib, os, sys, zlib
gitdir, kind = sys.argv[1], sys.argv[2]

def write(kind, size, chunks):
    hdr = b"%s %d\0" % (kind, size)
    h, z = hashlib.sha1(hdr), zlib.compressobj(1)
    out = [z.compress(hdr)]
    for c in chunks:
        h.update(c)
        out.append(z.compress(c))
    out.append(z.flush())
    oid = h.hexdigest()
    d = os.path.join(gitdir, "objects", oid[:2])
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, oid[2:])
    if not os.path.exists(p):
        with open(p + ".tmp", "wb") as f:
            f.writelines(out)
        os.rename(p + ".tmp", p)
    print(oid)

if kind == "blob":
    size = int(sys.argv[3])
    def zeros(left):
        mib = bytes(1 << 20)
        while left:
            n = min(left, len(mib))
            yield mib[:n]
            left -= n
    write(b"blob", size, zeros(size))
else:
    ents = []
    for line in sys.stdin.read().splitlines():
        meta, name = line.split("\t", 1)
        mode, _, oid = meta.split()
        ents.append((mode.lstrip("0").encode(), name.encode(), bytes.fromhex(oid)))
    if len(sys.argv) > 3:
        n, mode, oid, prefix = sys.argv[3:7]
        raw = bytes.fromhex(oid)
        ents += [(mode.encode(), b"%s%07d" % (prefix.encode(), i), raw)
                 for i in range(int(n))]
    ents.sort(key=lambda e: e[1] + (b"/" if e[0] == b"40000" else b""))
    body = b"".join(m + b" " + nm + b"\0" + oid for m, nm, oid in ents)
    write(b"tree", len(body), [body])
EOF
chmod 644 objects.py
obj() { replica_run 2 "$PYTHON" "$TRASH/objects.py" "$(replica_repo 2)" "$@"; }

# commit_of TREE: a child of the good commit with this root tree
commit_of() { echo "too big" | g2 commit-tree "$1" -p "$(cat good)"; }

# with_blob PATH BLOB: the good tree with BLOB at PATH (added or replaced)
with_blob() {
	local idx
	idx=$(replica_home 2)/limits.index
	rm -f "$idx"
	replica_run 2 env GIT_INDEX_FILE="$idx" git -c safe.directory='*' \
		--git-dir="$(replica_repo 2)" read-tree "$(cat good)" &&
	replica_run 2 env GIT_INDEX_FILE="$idx" git -c safe.directory='*' \
		--git-dir="$(replica_repo 2)" update-index --add \
		--cacheinfo "100644,$2,$1" &&
	replica_run 2 env GIT_INDEX_FILE="$idx" git -c safe.directory='*' \
		--git-dir="$(replica_repo 2)" write-tree &&
	rm -f "$idx"
}

syncd_pid() { daemon_pid "$(replica_set)-r1"; }
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$(syncd_pid)/status"; }

# How fast the daemon answered is a figure, not a verdict (a test asserts
# behaviour; a loaded machine stretches any time): every `maildag status`
# must answer and every delivery exit 0, and the latencies are printed as
# "# figure" lines for bench/limits, which holds them against the promises
# of maildag-syncd(8) (status within 1 s, a delivery within 2 s).  HANG
# only tells a hung daemon from a slow one.
HANG=60
now_ms() { date +%s%3N; }

# probe_start: in the background, `maildag status` on r1 again and again;
# the time of each answer goes to probe.ms, a failure to probe.bad
probe_start() {
	rm -f probe.stop probe.bad probe.ms
	( while ! test -e probe.stop; do
		t0=$(now_ms)
		replica_run 1 timeout $HANG maildag status >/dev/null 2>&1 ||
			echo "status: exit $?" >>probe.bad
		echo $(($(now_ms) - t0)) >>probe.ms
	done ) &
	echo $! >probe.pid
}

# probe_stop: end the probe; it must have answered every time
probe_stop() {
	touch probe.stop &&
	wait_for "! kill -0 $(cat probe.pid) 2>/dev/null" $((HANG + 10)) &&
	test -s probe.ms &&
	echo "# figure: maildag status answered $(wc -l <probe.ms) times, slowest $(sort -n probe.ms | tail -n 1) ms" &&
	{ ! test -e probe.bad || { cat probe.bad >&2; false; }; }
}

# deliver_fast ID: maildag-lda on r1, which must exit 0 (its time is
# printed as a figure)
deliver_fast() {
	local t0=$(now_ms)
	test_message "$1" | replica_run 1 timeout $HANG maildag-lda &&
	echo "# figure: delivery $1 took $(($(now_ms) - t0)) ms" &&
	echo "$1" >>"$REPLICAS/delivered"
}

# while_refused CASE HOW REASON: r2's refs/heads/mail becomes the commit
# in bad.CASE; r1 gets it (HOW: "fetch", r1's maildag sync, or "push",
# git push into r1's refs/peers/r2/mail) and must refuse it for REASON
# (grep -E), while maildag status answers and a delivery goes through
while_refused() {
	local b b12 st=0
	b=$(cat "bad.$1") && b12=$(echo "$b" | cut -c1-12) &&
	g2 update-ref refs/heads/mail "$b" &&
	probe_start || return 1
	if [ "$2" = fetch ]; then
		replica_sync 1 &
	else
		g2 push -q "file://$(replica_repo 1)" "+$b:refs/peers/r2/mail" &
	fi
	deliver_fast "d$1" &&
	replica_wait_log 1 "peer r2: refusing $b12: .*$3" 1 60 &&
	deliver_fast "e$1" || st=1
	# the probe ends whatever happened, or the script never would
	probe_stop || st=1
	wait
	[ $st = 0 ] && check_refused "$1" "$3"
}

# check_refused CASE REASON: the commit of bad.CASE is refused, said in
# the status; r1 holds none of it; syncd stayed small
check_refused() {
	local b b12 h
	b=$(cat "bad.$1") && b12=$(echo "$b" | cut -c1-12) &&
	replica_status 1 >st.$1 &&
	json_get "peer(\"r2\")[\"merge_error\"]" <st.$1 >merge_error.$1 &&
	cat merge_error.$1 &&
	grep -Eq "^refused $b12: .*$2" merge_error.$1 &&
	! replica_git 1 merge-base --is-ancestor "$b" refs/heads/mail 2>/dev/null &&
	h=$(hwm) && echo "maildag-syncd VmHWM $h kB" &&
	test "$h" -lt $RSS_MAX
}

# nothing_written: r1's Maildir holds what it held and the deliveries;
# no file there is larger than a test message
nothing_written() {
	md=$(replica_maildir 1) &&
	test -z "$(find "$md" -type f -size +1M)" &&
	test -z "$(find "$md" -maxdepth 1 \( -name ".F0*" -o -name .Big \))" &&
	cmp subscriptions.1 "$md/subscriptions" &&
	replica_expect_messages 1 &&
	replica_applied 1
}

test_expect_success 'setup: two replicas over file://, some mail; r2 stops' '
	replica_setup limits $U $U &&
	replica_start_all &&
	replica_deliver 2 m1 &&
	replica_deliver 1 m2 &&
	wait_converged 30 &&
	wait_for "test \"\$(replica_head 1)\" = \"\$(replica_head 2)\"" 30 &&
	replica_stop 2 &&
	replica_head 2 >good &&
	printf "Sent\n" >subscriptions.1 &&
	cp subscriptions.1 "$(replica_maildir 1)/subscriptions" &&
	chown "$U" "$(replica_maildir 1)/subscriptions" &&
	wait_for "test \"\$(replica_git 1 ls-tree refs/heads/mail subscriptions)\"" 30 &&
	wait_for "replica_applied 1" 30 &&
	g2 fetch -q "file://$(replica_repo 1)" +refs/heads/mail:refs/heads/mail &&
	replica_head 2 >good &&
	test "$(cat good)" = "$(replica_head 1)" &&
	echo "maildag-syncd VmHWM at start: $(hwm) kB"
'

test_expect_success 'the hostile commits' '
	k=1700000000.M1P1Q1.evil &&
	big=$(obj blob 2147483648) &&
	test "$(g2 cat-file -s $big)" = 2147483648 &&
	commit_of "$(with_blob "cur/$(shard $k)/$k,S=2147483648:2," $big)" >bad.blob &&
	empty=$(g2 hash-object -w --stdin </dev/null) &&
	many=$(obj tree 1000000 100644 $empty 1700000000.M) &&
	test "$(g2 cat-file -p $many | wc -l)" = 1000000 &&
	sub=$(printf "40000 tree %s\t00\n" $many | obj tree) &&
	cur=$(printf "40000 tree %s\tcur\n" $sub | obj tree) &&
	commit_of "$( { g2 ls-tree "$(cat good)"
		printf "40000 tree %s\t.Big\n" $cur; } | obj tree)" >bad.tree &&
	subs=$(obj blob 33554432) &&
	commit_of "$(with_blob subscriptions $subs)" >bad.subscriptions &&
	folder=$(printf "100644 blob %s\tmaildirfolder\n" $empty | obj tree) &&
	commit_of "$(g2 ls-tree "$(cat good)" | obj tree 30000 40000 $folder .F)" >bad.folders &&
	test "$(g2 ls-tree "$(cat bad.folders)" | grep -c "	\.F0")" = 30000
'

test_expect_success 'a 2 GiB message fetched: the fetch fails on its memory cap, saying why' '
	g2 update-ref refs/heads/mail "$(cat bad.blob)" &&
	probe_start &&
	replica_sync 1 &&
	deliver_fast fblob &&
	replica_wait_log 1 "peer r2: fetch failed: invalid: .*limited to [0-9]+ MiB of memory" 1 60 ||
		{ probe_stop; false; } &&
	probe_stop &&
	replica_status 1 >st.fetch &&
	json_get "peer(\"r2\")[\"fetch\"][\"last_error\"]" <st.fetch >err.fetch &&
	cat err.fetch &&
	grep -q "larger than the limits allow" err.fetch &&
	test "$(hwm)" -lt $RSS_MAX &&
	nothing_written
'

test_expect_success 'a 2 GiB message pushed: refused by its size' '
	while_refused blob push "message of 2147483648 bytes, more than size_limit \(67108864\)" &&
	nothing_written
'

test_expect_success 'a tree of 1,000,000 entries: refused by its size, never read' '
	while_refused tree push "\.Big/cur/00.*more entries than tree_entries_limit \(65536\)" &&
	nothing_written
'

test_expect_success 'a subscriptions file of 32 MiB: refused' '
	while_refused subscriptions fetch "subscriptions.*33554432 bytes, more than subscriptions_limit \(1048576\)" &&
	nothing_written
'

test_expect_success '30,000 folders: refused' '
	while_refused folders fetch "more than folder_limit \(10000\) folders" &&
	nothing_written
'

test_expect_success 'each was refused once; fsck clean; r2 mended, the two converge' '
	for c in blob tree subscriptions folders; do
		test "$(replica_log_count 1 "refusing $(cut -c1-12 bad.$c)")" = 1 || return 1
	done &&
	replica_run 1 maildag fsck &&
	g2 update-ref refs/heads/mail "$(cat good)" &&
	replica_start 2 &&
	wait_converged 60 &&
	replica_expect_messages &&
	test "$(hwm)" -lt $RSS_MAX
'

# r1's Maildir on a file system of 70 MiB: an 8 MiB message from r2 needs
# 8.5 MiB and the 64 MiB kept for deliveries
test_expect_success ROOT 'no room for an apply: put off, said in the log, done once there is room' '
	replica_stop 1 &&
	md=$(replica_maildir 1) &&
	cp -a "$md" maildir.copy &&
	mount -t tmpfs -o size=70m,mode=700 tmpfs "$md" &&
	echo "$md" >"$TRASH/mounted" &&
	chown "$U:" "$md" &&
	cp -a maildir.copy/. "$md"/ &&
	replica_start 1 &&
	{ test_message big; head -c 8388608 /dev/zero | tr "\\0" x | fold -w 76; } |
		replica_run 2 maildag-lda &&
	echo big >>"$REPLICAS/delivered" &&
	replica_wait_log 1 "not enough space for the messages to apply in .$md.: needs [0-9]+ bytes" 1 60 &&
	test -z "$(replica_where 1 big)" &&
	test -z "$(find "$md" -type f -size +1M)" &&
	deliver_fast small &&
	mount -o remount,size=300m "$md" &&
	wait_for "test -n \"\$(replica_where 1 big)\"" 90 &&
	wait_converged 60 &&
	replica_expect_messages &&
	test "$(hwm)" -lt $RSS_MAX
'

test_expect_success 'stop' '
	replica_stop_all
'

! test -s "$TRASH/mounted" || umount "$(cat "$TRASH/mounted")"

test_done
