#!/bin/sh
test_description='libFuzzer targets: Maildir names, the tree validator, the merge of format 2 trees'
. "$abs_top_srcdir/t/test-lib.sh"

# Each target runs from seeds for a bounded time and number of inputs;
# MAILDAG_FUZZ_TIME (seconds per target, default 20) lengthens a run.
# A crash or a broken property leaves its input in the trash directory.
FUZZ=$abs_top_builddir/t/fuzz
[ -x "$FUZZ/fuzz-name" ] && [ -x "$FUZZ/fuzz-tree" ] && [ -x "$FUZZ/mkseeds" ] &&
	[ -x "$FUZZ/fuzz-merge" ] ||
	test_skip_all "fuzz targets not built (configure found no clang able to" \
		"build -fsanitize=fuzzer,address, or --disable-fuzzers)"

TIME=${MAILDAG_FUZZ_TIME:-20}
# a small quarantine keeps memory bounded over millions of inputs
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=64
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# run_fuzzer TARGET CORPUS: TIME seconds and at most 5 million inputs
run_fuzzer() {
	"$FUZZ/$1" -max_total_time="$TIME" -runs=5000000 -timeout=10 \
		-rss_limit_mb=4096 -max_len=4096 -print_final_stats=1 \
		-artifact_prefix="$TRASH/$1-" "$2" >"$1.log" 2>&1
	status=$?
	grep -E "^stat::number_of_executed_units|^Done|broken:|ERROR" "$1.log"
	return $status
}

test_expect_success 'write the seed corpora' '
	mkdir names trees &&
	"$FUZZ/mkseeds" names trees &&
	test "$(ls names | wc -l)" -gt 20 &&
	test "$(ls trees | wc -l)" -gt 8
'

test_expect_success 'the seeds alone pass every property' '
	"$FUZZ/fuzz-name" -runs=0 names >seed-name.log 2>&1 &&
	"$FUZZ/fuzz-tree" -runs=0 trees >seed-tree.log 2>&1 &&
	! grep -q "runtime error" seed-name.log seed-tree.log
'

test_expect_success 'fuzz the file name parser' '
	run_fuzzer fuzz-name names &&
	! grep -q "runtime error" fuzz-name.log &&
	! ls fuzz-name-* 2>/dev/null | grep .
'

test_expect_success 'fuzz the tree validator' '
	run_fuzzer fuzz-tree trees &&
	! grep -q "runtime error" fuzz-tree.log &&
	! ls fuzz-tree-* 2>/dev/null | grep .
'

# fuzz-merge: an input is the choices of one case of the format 2 tree
# model (t/unit/merge-model-v2.c), a byte each; any bytes are a case
test_expect_success 'fuzz the merge of format 2 trees' '
	mkdir merges &&
	printf "\001\005\000\020\000\040\001\060\107\001\002\120" >merges/a &&
	printf "\002\070\001\000\100\002\003\145\001\000\107\002\001" >merges/b &&
	printf "\000\145\001\003\060\000\010\100\001\001\110\000\000" >merges/c &&
	run_fuzzer fuzz-merge merges &&
	! grep -q "runtime error" fuzz-merge.log &&
	! ls fuzz-merge-* 2>/dev/null | grep .
'

for t in fuzz-name fuzz-tree fuzz-merge; do
	[ -f "$TRASH/$t.log" ] &&
		say "$t: $(awk '/^stat::number_of_executed_units/ {print $2}' "$TRASH/$t.log") inputs in ${TIME}s"
done
test_done
