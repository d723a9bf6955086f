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

# sources: the C files of the programs and the library, one a line
sources() {
	(cd "$abs_top_srcdir" &&
		find common lda syncd admin -name '*.[ch]' | LC_ALL=C sort)
}

test_expect_success 't/sizes.sh measures a function whatever its braces' '
	cat >sample.c <<-\EOF &&
	#define BRACE {
	struct s { int a; };
	static const char *t[] = { "}", "{" };
	/* { a comment with a brace } */
	static int __attribute__((unused))
	one(int x)
	{
		const char *p = "}}}";	// a }
		char c = '\''}'\'';
		if (x) {
			return p[0] + c;
		}
		return 0;
	}
	int two(void) { return 2; }
	int three(int (*f)(int),
		  int y)
	{
		return f(y);
	}
	EOF
	sh "$abs_top_srcdir/t/sizes.sh" sample.c >out &&
	cat >expect <<-\EOF &&
	10 sample.c:5 one
	1 sample.c:15 two
	5 sample.c:16 three
	EOF
	test_cmp expect out
'

test_expect_success 'no source file of the programs or the library is over 1,100 lines' '
	sources >files &&
	(cd "$abs_top_srcdir" && xargs wc -l) <files |
		awk '\''$2 != "total" && $1 > 1100'\'' >over &&
	cat over &&
	! test -s over
'

test_expect_success 'no function of the programs or the library is over 130 lines' '
	sources | grep "\.c$" >files &&
	(cd "$abs_top_srcdir" && xargs sh t/sizes.sh) <files >sizes &&
	test -s sizes &&
	awk '\''$1 > 130'\'' sizes >over &&
	cat over &&
	! test -s over
'

test_expect_success 'the generic layer includes no mail or git header' '
	(cd "$abs_top_srcdir/common/util" &&
		grep -h "^#include" *.[ch]) >includes &&
	sed -n "s/^#include \"\(.*\)\"$/\1/p" includes | sort -u >quoted &&
	(cd "$abs_top_srcdir/common/util" && ls) >here &&
	echo autoconf.h >>here &&
	! grep -vxF -f here quoted &&
	! grep "<git2" includes
'

test_expect_success 'the unit tests of the generic layer link it alone' '
	for t in strbuf strmap strvec log hash; do
		grep -q "^t_unit_${t}_t_LDADD = \$(UTIL_LIBS)\$" \
			"$abs_top_srcdir/Makefile.am" || {
			echo "t/unit/$t-t links more than libutil.a"; return 1; }
	done
'

test_done
