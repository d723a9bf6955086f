#!/bin/sh
test_description='the Debian package builds, passes lintian, installs, runs the demo from /usr/bin, and purges cleanly'
. "$abs_top_srcdir/t/test-lib.sh"
. "$abs_top_srcdir/t/lib-demo.sh"

# It installs the package on this machine and purges it again: root only,
# and never over a maildag package or an /etc/maildag it did not install
# (CI's machine is the project's: there a package left by an earlier,
# interrupted run is purged first).
[ "$(id -u)" = 0 ] || test_skip_all "needs root: it installs the package with dpkg -i"
for t in dpkg-buildpackage dh lintian systemd-analyze git; do
	command -v "$t" >/dev/null 2>&1 ||
		test_skip_all "$t is missing (Debian: apt-get install debhelper lintian systemd git; .ci/setup does)"
done
[ -f "$abs_top_srcdir/debian/rules" ] || test_skip_all "no debian/ in $abs_top_srcdir"
pkg_status() { dpkg-query -W -f '${db:Status-Status}' maildag 2>/dev/null; }
case "$(pkg_status)" in
""|not-installed) ;;
*)	[ "${CI:-}" = true ] && dpkg --purge maildag >/dev/null 2>&1 ||
		test_skip_all "the maildag package is installed here (dpkg --purge maildag to run this)";;
esac
[ -e /etc/maildag ] &&
	test_skip_all "/etc/maildag exists and is not the package's: purging would remove it"

ARCH=$(dpkg --print-architecture)
VERSION=$(dpkg-parsechangelog -l "$abs_top_srcdir/debian/changelog" -S Version)
DEB=$TRASH/maildag_${VERSION}_$ARCH.deb
installed=
purge_at_end() { [ -n "$installed" ] && dpkg --purge maildag >/dev/null 2>&1; return 0; }
test_at_end purge_at_end

# The tracked files as they are in the work tree (what a clone has: a
# new file is in once git knows it), or a tarball's whole tree (also one
# unpacked inside a work tree, as make distcheck does in a build
# directory there: git knows none of its files).
test_expect_success 'a copy of the source tree' '
	mkdir src &&
	if [ "$(git -C "$abs_top_srcdir" rev-parse --show-toplevel 2>/dev/null)" = \
	     "$(cd "$abs_top_srcdir" && pwd -P)" ]; then
		git -C "$abs_top_srcdir" ls-files -z |
			tar -C "$abs_top_srcdir" --null -T - -cf - |
			tar -C src -xf -
	else
		tar -C "$abs_top_srcdir" --exclude=./build --exclude=./_build \
			--exclude=./debian/build \
			-cf - . | tar -C src -xf -
	fi &&
	test -x src/debian/rules
'

# not make check's own MAKEFLAGS (its jobserver, its TESTS=)
test_expect_success 'dpkg-buildpackage -us -uc -b builds it' '
	(cd src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		DEB_BUILD_OPTIONS="parallel=$(nproc)" \
		dpkg-buildpackage -us -uc -b) >build.log 2>&1 ||
		{ tail -n 30 build.log; false; } &&
	test -f "$DEB" &&
	# dh_auto_test ran the unit tests and nothing else
	grep "^PASS: t/unit/" build.log &&
	! grep "^[A-Z]*: t/t[0-9]" build.log
'

test_expect_success 'lintian: no errors' '
	lintian --fail-on error -I --pedantic \
		"maildag_${VERSION}_$ARCH.changes" >lintian.out 2>&1 ||
		{ cat lintian.out; false; } &&
	sed -n "/^[EWIPX]: /p" lintian.out
'
if [ -f "$TRASH/lintian.out" ]; then
	n=$(grep -c "^[EWIPX]: " "$TRASH/lintian.out")
	say "lintian: $n tags (errors, warnings, info, pedantic)"
	grep "^[EWIPX]: " "$TRASH/lintian.out" | sed 's/^/#   /'
fi

test_expect_success 'dpkg -i installs it in /usr, with its conffile' '
	echo installed >"$TRASH/installed" &&
	dpkg -i "$DEB" >install.log 2>&1 || { cat install.log; false; } &&
	dpkg -L maildag >files &&
	for f in /usr/bin/maildag-lda /usr/bin/maildag /usr/bin/maildag-syncd \
		/usr/share/man/man8/maildag-lda.8.gz \
		/usr/share/man/man8/maildag-syncd.8.gz \
		/usr/share/man/man1/maildag.1.gz \
		/usr/share/man/man5/maildag.conf.5.gz \
		/usr/share/man/man5/maildag-format.5.gz \
		/usr/lib/systemd/user/maildag-syncd.service \
		/lib/systemd/system/maildag-syncd@.service \
		/usr/share/doc/maildag/examples/config.json \
		/etc/maildag/config.json; do
		grep -qx "$f" files && test -f "$f" ||
			{ echo "missing: $f"; false; }
	done &&
	dpkg-query -W -f "\${Conffiles}\n" maildag | grep "^ /etc/maildag/config.json " &&
	! grep "^/usr/local" files
'
[ -f "$TRASH/installed" ] && installed=1

test_expect_success 'the demo runs from /usr/bin and leaves no daemon running' '
	demo_run /usr/bin || { cat demo.out; false; } &&
	grep "run this for each message: /usr/bin/maildag-lda " demo.out &&
	grep "now holds the message" demo.out &&
	grep ":Subject: and back again" demo.out &&
	grep "both daemons stopped" demo.out &&
	demo_left >left &&
	cat left &&
	test ! -s left
'

test_expect_success 'systemd-analyze verify: both units' '
	# a user manager needs a runtime directory, even offline
	mkdir -m 700 xdg &&
	XDG_RUNTIME_DIR=$TRASH/xdg systemd-analyze --user verify \
		/usr/lib/systemd/user/maildag-syncd.service \
		>verify.user 2>&1 || { cat verify.user; false; } &&
	cat verify.user &&
	! grep maildag verify.user &&
	systemd-analyze verify maildag-syncd@maildag-demo.service \
		>verify.system 2>&1 || { cat verify.system; false; } &&
	cat verify.system &&
	! grep maildag verify.system
'

test_expect_success 'systemd-analyze security: the template unit is hardened' '
	systemd-analyze security --offline=true \
		/lib/systemd/system/maildag-syncd@.service >security 2>&1 ||
		{ cat security; false; } &&
	grep "Overall exposure level" security >exposure &&
	cat exposure &&
	# 1.6 when written; more means a hardening setting went
	sed "s/.*: \([0-9.]*\) .*/\1/" exposure >figure &&
	awk "{ exit !(\$1 <= 2.0) }" figure
'
if [ -f "$TRASH/exposure" ]; then
	say "systemd-analyze security --offline=true maildag-syncd@.service:"
	sed 's/^/#   /' "$TRASH/exposure"
fi

test_expect_success 'dpkg --remove keeps the conffile; --purge leaves nothing' '
	dpkg --remove maildag >remove.log 2>&1 || { cat remove.log; false; } &&
	test ! -e /usr/bin/maildag-lda &&
	test -f /etc/maildag/config.json &&
	dpkg --purge maildag >purge.log 2>&1 || { cat purge.log; false; } &&
	rm -f "$TRASH/installed" &&
	case "$(dpkg-query -W -f "\${db:Status-Status}" maildag 2>/dev/null)" in
	""|not-installed) ;; *) echo "still known to dpkg"; false;; esac &&
	while read -r f; do
		case "$f" in *maildag*) ! test -e "$f" ||
			{ echo "left: $f"; false; };; esac
	done <files &&
	find /usr /etc /var/lib/systemd -path /usr/local -prune -o \
		-name "*maildag*" -print >left &&
	cat left &&
	test ! -s left
'
[ -f "$TRASH/installed" ] || installed=

test_done
