#!/bin/sh
test_description='each fact data safety rests on is spelled out in one source file'
. "$abs_top_srcdir/t/test-lib.sh"

# only_in FILE PATTERN: the sources of the programs and the library
# (comments included) match the extended regex PATTERN in FILE alone
only_in() {
	(cd "$abs_top_srcdir" &&
		grep -lE -- "$2" common/*.[ch] common/util/*.[ch] lda/*.[ch] \
			syncd/*.[ch] admin/*.[ch]) >files &&
	cat files &&
	echo "$1" >expect &&
	test_cmp expect files
}

test_expect_success 'the journal directory is named in journal.c alone' '
	only_in common/journal.c "\"pending\"|maildag/pending"
'

test_expect_success 'the journal file names are spelled in journal.c alone' '
	only_in common/journal.c "\"\\.new-|\\.[cw]\""
'

test_expect_success 'the delivery record is written and read in delivery.c alone' '
	only_in common/delivery.c "(^|[^-])(Path|Blob): " &&
	only_in common/delivery.c "deliver (to |%)"
'

test_expect_success 'the Maildir rule for tmp/ is applied in layout.c alone' '
	only_in common/layout.c "st_atime"
'

test_expect_success 'a tree path or a place on disk is parsed in layout.c alone' '
	only_in common/layout.c "(strncmp|memmem)\\([^)]*\"/?(cur|new)/"
'

test_expect_success 'no program includes libgit2, calls it or sees struct repo' '
	(cd "$abs_top_srcdir" &&
		! grep -lE "git2\.h|repo_p\.h|git_" lda/*.[ch] syncd/*.[ch] \
			admin/*.[ch])
'

test_expect_success 'of the library headers, repo_p.h alone includes <git2.h>' '
	(cd "$abs_top_srcdir" &&
		grep -l "^#include <git2" common/*.h common/util/*.h) >files &&
	echo common/repo_p.h >expect &&
	test_cmp expect files
'

test_done
