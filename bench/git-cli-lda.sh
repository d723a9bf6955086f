#!/bin/sh
# git-cli-lda.sh: the delivery agent a person would write to keep a
# Maildir in git with the git command line, as the baseline bench/lda
# measures maildag-lda against.
#
#   git-cli-lda.sh [-f sender] < message
#
# The Maildir ($MAILDIR, default $HOME/Maildir) is a git work tree.
# The message is written to tmp/, fsynced, renamed into new/, then
# `git add` + `git commit`. It is as durable as the repository's
# core.fsync setting (bench/lda sets `committed`, the other tools fsync
# too). Exit 0 when committed, 75 (EX_TEMPFAIL) on any failure; with
# several deliveries at once `git add` and `git commit` fail on index.lock.
# It strips the mbox `From ` line like the other tools; -f is accepted
# and ignored.

maildir=${MAILDIR:-$HOME/Maildir}
while getopts f: _; do
	:
done

fail() {
	echo "4.3.0 git-cli-lda: $*" >&2
	exit 75
}

cd "$maildir" || fail "no maildir"
name=$(date +%s.M%6N)P$$.$(uname -n) || fail "date"
sed '1{/^From /d}' > "tmp/$name" || fail "write"
sync "tmp/$name" || fail "fsync"
mv "tmp/$name" "new/$name" || fail "rename"
sync new || fail "fsync new"
git add "new/$name" || fail "git add"
git commit -q -m "deliver $name" || fail "git commit"
exit 0
