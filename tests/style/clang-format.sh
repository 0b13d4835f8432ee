#!/bin/sh
# Every C file is formatted as .clang-format says (KNF).
. "$top_srcdir/tests/lib/tap.sh"

if [ -z "${CLANG_FORMAT:-}" ] || ! command -v "$CLANG_FORMAT" >/dev/null; then
	echo "1..0 # SKIP clang-format not found"
	exit 0
fi
cd "$top_srcdir" || exit 1
for f in src/*.[ch] sidecar/*/*.[ch] inference/*.[ch] bench/*.c \
    inference/examples/gpt2-server/*.[ch] tests/unit/*.[ch] \
    tests/inference/*.c tests/fuzz/*.c; do
	"$CLANG_FORMAT" --style=file --dry-run --Werror "$f" >/dev/null 2>"$T/err"
	rc=$?
	ok $rc "$f is formatted"
	[ $rc -eq 0 ] || diag "$(head -20 "$T/err")" "run: clang-format -i $f"
done
done_testing
