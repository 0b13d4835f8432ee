#!/bin/sh
# The protocol decoder under libFuzzer for a few seconds (FUZZ_TIME, 10 by
# default), from a copy of the seed corpus: any crash, leak, sanitizer
# report or broken promise (fuzz_proto.c's checks) fails.  Skips when
# configure found no clang with libFuzzer.
. "$top_srcdir/tests/lib/tap.sh"

fuzzer="$top_builddir/tests/fuzz/fuzz_proto"
seeds="$top_srcdir/tests/fuzz/corpus/proto"
if [ ! -x "$fuzzer" ]; then
	echo "1..0 # SKIP no fuzz target (configure found no clang with libFuzzer)"
	exit 0
fi

# libFuzzer adds what it finds to the corpus: never to the source tree.
mkdir "$T/corpus" "$T/artifacts"
cp "$seeds"/* "$T/corpus/"
chmod -R u+w "$T/corpus"
nseeds=$(ls "$T/corpus" | wc -l)
[ "$nseeds" -gt 0 ]
ok $? "the seed corpus has $nseeds inputs"

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

# fuzz NAME ARGS...: one libFuzzer run, which must end well and leave no
# crash, leak or timeout input behind.
fuzz() {
	name=$1
	shift
	rc=0
	"$fuzzer" -artifact_prefix="$T/artifacts/" -timeout=10 \
		-rss_limit_mb=2048 "$@" >"$T/$name.log" 2>&1 || rc=$?
	found=$(ls "$T/artifacts")
	[ "$rc" -eq 0 ] && [ -z "$found" ]
	ok $? "$name"
	if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
		diag "exit $rc; artifacts: ${found:-none}" \
			"$(grep -v '^#[0-9]' "$T/$name.log" | tail -40)"
		for a in $found; do
			diag "--- $a:" "$(od -c "$T/artifacts/$a" | head -20)"
		done
	else
		diag "$(grep -E '^(Done|#[0-9]+.*DONE)' "$T/$name.log" | tail -1)"
	fi
}

# Every seed once, then fuzzing for a while from them all.
fuzz "every seed decodes without a fault" -runs=0 "$T/corpus"
fuzz "${FUZZ_TIME:-10}s of fuzzing finds nothing" \
	-max_total_time="${FUZZ_TIME:-10}" -max_len=4096 \
	-dict="$top_srcdir/tests/fuzz/proto.dict" \
	-print_final_stats=1 "$T/corpus"
done_testing
