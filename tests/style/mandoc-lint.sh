#!/bin/sh
# Every man page passes mandoc -Tlint without a warning.
. "$top_srcdir/tests/lib/tap.sh"

if [ -z "${MANDOC:-}" ] || ! command -v "$MANDOC" >/dev/null; then
	echo "1..0 # SKIP mandoc not found"
	exit 0
fi
for f in "$top_srcdir"/man/*.[1-8]; do
	# Pages named in SEE ALSO that later work adds are not lint errors.
	"$MANDOC" -Tlint -Wwarning "$f" 2>&1 |
		grep -v 'referenced manual not found' >"$T/lint"
	[ ! -s "$T/lint" ]
	ok $? "$(basename "$f") is clean under mandoc -Tlint"
	[ -s "$T/lint" ] && diag "$(cat "$T/lint")"
done
done_testing
