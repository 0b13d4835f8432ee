#!/bin/sh
# The fuzz targets under libFuzzer for a few seconds each (FUZZ_TIME, 10 by
# default), each from a copy of its seed corpus: fuzz_proto (the protocol
# decoder) and fuzz_safetensors (gpt2-server's safetensors header parser).
# Any crash, leak, sanitizer report or broken promise (each target's
# checks) fails.  Skips when configure found no clang with libFuzzer.
. "$top_srcdir/tests/lib/tap.sh"

if [ ! -x "$top_builddir/tests/fuzz/fuzz_proto" ]; then
	echo "1..0 # SKIP no fuzz target (configure found no clang with libFuzzer)"
	exit 0
fi

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

# fuzz NAME ARGS...: one libFuzzer run of $fuzzer, which must end well and
# leave no crash, leak or timeout input behind.
fuzz() {
	name=$1
	shift
	rc=0
	"$fuzzer" -artifact_prefix="$T/artifacts/" -timeout=10 \
		-rss_limit_mb=2048 "$@" >"$T/$target/$name.log" 2>&1 || rc=$?
	found=$(ls "$T/artifacts")
	[ "$rc" -eq 0 ] && [ -z "$found" ]
	ok $? "$target: $name"
	if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
		diag "exit $rc; artifacts: ${found:-none}" \
			"$(grep -v '^#[0-9]' "$T/$target/$name.log" | tail -40)"
		for a in $found; do
			diag "--- $a:" "$(od -c "$T/artifacts/$a" | head -20)"
		done
	else
		diag "$(grep -E '^(Done|#[0-9]+.*DONE)' "$T/$target/$name.log" | tail -1)"
	fi
}

# target NAME: tests/fuzz/fuzz_NAME from corpus/NAME with NAME.dict: every
# seed once, then fuzzing for a while from them all.  libFuzzer adds what
# it finds to the corpus: a copy, never the source tree.
target() {
	target=$1
	fuzzer="$top_builddir/tests/fuzz/fuzz_$1"
	mkdir "$T/$1" "$T/$1/corpus" "$T/artifacts"
	cp "$top_srcdir/tests/fuzz/corpus/$1"/* "$T/$1/corpus/"
	chmod -R u+w "$T/$1/corpus"
	nseeds=$(ls "$T/$1/corpus" | wc -l)
	[ "$nseeds" -gt 0 ]
	ok $? "$1: the seed corpus has $nseeds inputs"
	fuzz "every seed runs without a fault" -runs=0 "$T/$1/corpus"
	fuzz "${FUZZ_TIME:-10}s of fuzzing finds nothing" \
		-max_total_time="${FUZZ_TIME:-10}" -max_len=4096 \
		-dict="$top_srcdir/tests/fuzz/$1.dict" \
		-print_final_stats=1 "$T/$1/corpus"
	rm -rf "$T/artifacts"
}

target proto
if [ -x "$top_builddir/tests/fuzz/fuzz_safetensors" ]; then
	target safetensors
else
	ok 0 "# SKIP gpt2-server is an example: configure --enable-examples"
fi
done_testing
