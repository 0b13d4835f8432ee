#!/bin/sh
# The README's first command from a clean clone: the command is read from
# the README (the first line of its first code block), run with --no-apt
# (the test command installed the packages) in a fresh `git clone` of this
# source tree's commit, building from nothing.  Checked: exit 0; the cold
# and warm answers and the side-by-side timeline, its steps in order and
# read from the three programs' JSON log events; the origin served the
# model's bytes once; nothing left running; the clone's tracked files
# unchanged and everything it wrote ignored by git (build/, demo/).
# t0501 checks the demo itself in detail with this build's programs.
#
# Skipped where there is no clone to make (a tarball's tree: distcheck)
# and in the sanitizer build: the demo builds its own plain tree, so a
# second run there would test nothing new.
. "$top_srcdir/tests/lib/tap.sh"

unset MODEL HF_ENDPOINT DEMO_DIR DEMO_NO_BUILD DEMO_BUILD
export PYTHONDONTWRITEBYTECODE=1

# A tarball's tree unpacked inside a checkout (distcheck's, under build/)
# is in a work tree but is not its top: only the top can be cloned.
top=$(git -C "$top_srcdir" rev-parse --show-toplevel 2>/dev/null)
if [ -z "$top" ] || [ "$top" != "$(cd "$top_srcdir" && pwd -P)" ]; then
	echo "1..0 # SKIP $top_srcdir is not the top of a git checkout"
	exit 0
fi
case $("$top_builddir/config.status" --config) in
*--enable-sanitizers*)
	echo "1..0 # SKIP sanitizer build (the demo builds its own tree)"
	exit 0
	;;
esac

# The first command of the README: "./dev demo" and its comment.
cmd=$(awk '/^```/ { if (on) exit; on = 1; next } on { print; exit }' \
    "$top_srcdir/README.md" | sed 's/ *#.*//')
is "$cmd" "./dev demo" "the README's first command is ./dev demo"

C=$T/clone
git clone -q "$top_srcdir" "$C" 2>"$T/clone.err"
ok $? "git clone of $(git -C "$top_srcdir" rev-parse --short HEAD)"
[ -x "$C/dev" ] && [ ! -e "$C/build" ] && [ ! -e "$C/configure" ]
ok $? "the clone is clean: no configure, no build/"

rc=0
(cd "$C" && timeout 1200 $cmd --no-apt) >"$T/demo.out" 2>"$T/demo.err" ||
	rc=$?
is "$rc" 0 "$cmd --no-apt exits 0 in the clone"
[ "$rc" -eq 0 ] || diag "$(tail -30 "$T/demo.out")" "$(tail -30 "$T/demo.err")"

R=$C/demo/run
for start in cold warm; do
	jqe '(.text | type) == "string" and .tokens > 0' \
	    "$R/$start-1.json" >/dev/null 2>&1
	ok $? "the $start start answered /generate"
done
awk '/^== cold and warm side by side/ { on = 1; next } /^== / { on = 0 }
    on' "$T/demo.out" >"$T/side"
steps="pull|verified, ready|warmed|server ready|first response|second response"
t='\+[0-9]+\.[0-9]{3} s'
is "$(grep -Ec "^  ($steps) +$t .* $t" "$T/side")" 6 \
    "it prints the side-by-side timeline of both starts"
for start in cold warm; do
	prev=0 rc=0
	for step in pull ready warm server first second; do
		ms=$(awk -v s="$step" '$1 == s { print $2; exit }' \
		    "$R/$start.timeline" 2>/dev/null)
		[ -n "$ms" ] && [ "$ms" -ge "$prev" ] || rc=1
		prev=${ms:-0}
	done
	ok $rc "the $start start's timeline: its steps in order"
	[ "$(jq -rR 'fromjson | select(has("ts")) | .prog' "$R/$start.log" \
	    2>/dev/null | sort -u | tr '\n' ' ')" = \
	    "gpt2-server modelcache-preload modelcached " ]
	ok $? "the $start start's log: JSON events of the three programs"
done
size=$(cat "$C"/demo/models/gpt2-tiny/* | wc -c)
grep -Eq "^  origin served +$size bytes +0 bytes$" "$T/side"
ok $? "the origin served the model's $size bytes cold and none warm"

n=0
for p in /proc/[0-9]*; do
	l=$(readlink "$p/exe" 2>/dev/null) || continue
	case $l in "$C"/*) n=$((n + 1)) ;; esac
done
is "$n" 0 "nothing the demo started is left running"
is "$(git -C "$C" status --porcelain)" "" \
    "the clone's tracked files unchanged, all it wrote ignored"

done_testing
