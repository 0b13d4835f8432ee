#!/bin/sh
# gpt2-server's Unicode tables (inference/examples/gpt2-server/
# unicode_classes.h, committed so that the build needs no Python) are what
# their generator, unicode_classes.py beside them, writes now.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/python.sh"

d=$top_srcdir/inference/examples/gpt2-server
if ! "$PY3" -c 'import regex' 2>/dev/null; then
	echo "1..0 # SKIP $PY3 has no regex module (Debian: python3-regex)"
	exit 0
fi
PYTHONDONTWRITEBYTECODE=1 "$PY3" "$d/unicode_classes.py" "$T/unicode_classes.h"
ok $? "unicode_classes.py runs"
cmp -s "$T/unicode_classes.h" "$d/unicode_classes.h"
rc=$?
ok $rc "unicode_classes.h is up to date"
[ $rc -eq 0 ] || diag "$(diff "$d/unicode_classes.h" "$T/unicode_classes.h" |
    head -20)" "run: $PY3 $d/unicode_classes.py $d/unicode_classes.h"
grep -q '^#include "unicode_classes.h"' "$d/tokenizer.c" &&
    ! grep -q '^static const struct cprange' "$d/tokenizer.c"
ok $? "tokenizer.c includes the tables and spells none of its own"

done_testing
