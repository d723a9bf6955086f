#!/bin/sh
test_description='the manual pages are mandoc -Tlint clean'
. "$abs_top_srcdir/t/test-lib.sh"

command -v mandoc >/dev/null 2>&1 || test_skip_all 'mandoc is not installed'

for page in "$abs_top_srcdir"/man/*.[1-8]; do
	test_expect_success "$(basename "$page") is lint clean" "
		mandoc -Tlint -W warning '$page' &&
		mandoc -Tascii '$page' >/dev/null
	"
done

test_done
