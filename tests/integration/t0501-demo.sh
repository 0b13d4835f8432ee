#!/bin/sh
# The README's first command, `./dev demo`, as a test: run with --no-apt,
# without building (DEMO_NO_BUILD, DEMO_BUILD: this build's programs) and
# in this test's directory (DEMO_DIR), it makes the tiny GPT-2, serves it
# from the local origin, and starts modelcached, modelcache-preload and
# gpt2-server twice, cold then warm.  Checked: exit 0; both answers of
# each start there, and the same cold and warm (greedy decoding); the
# cold timeline and the side-by-side one with their six steps in order;
# the cold pull fetched the model's bytes and the warm start none (the
# origin's own counter; the daemon never pulled); the timeline is read
# from the programs' JSON log events (every line of a start's log is an
# event of modelcached, modelcache-preload or gpt2-server with its "ts",
# and the steps are as far apart as the events that say them);
# modelcache ls; nothing left running; the store verifies; nothing
# written into the source tree.
# Then the demo again in the same directory: the model is not made again,
# and a SIGTERM in the middle of it leaves nothing running either.  And
# MODEL=hf://openai-community/gpt2, the Hub's path (modelcache pull of the
# files gpt2-server reads, then the daemon asked for that commit), with
# HF_ENDPOINT on the test origin.
#
# Nothing waits on a timer for an event: conditions are polled, bounded.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/python.sh"

unset MODEL HF_ENDPOINT DEMO_NO_BUILD DEMO_BUILD PROMPT
export PYTHONDONTWRITEBYTECODE=1

for tool in jq curl; do
	if ! command -v $tool >/dev/null; then
		echo "1..0 # SKIP no $tool"
		exit 0
	fi
done
if [ ! -x "$top_builddir/gpt2-server" ]; then
	echo "1..0 # SKIP gpt2-server is an example: configure --enable-examples"
	exit 0
fi
if ! "$PY3" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP $PY3 has no numpy (make-model; Debian: python3-numpy)"
	exit 0
fi

D=$T/demo
R=$D/run
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; tap_cleanup' EXIT

# demo [VAR=VALUE...]: ./dev demo --no-apt on $D with this build.
demo() {
	env DEMO_DIR="$D" DEMO_NO_BUILD=1 DEMO_BUILD="$top_builddir" "$@" \
	    sh "$top_srcdir/dev" demo --no-apt
}

# leftovers: the processes that the demo started (they inherit its
# DEMO_DIR) that still run.
leftovers() {
	for p in /proc/[0-9]*; do
		{ tr '\0' '\n' <"$p/environ"; } 2>/dev/null |
		    grep -qx "DEMO_DIR=$D" &&
			echo "${p#/proc/}: $({ tr '\0' ' ' <"$p/cmdline"; } \
			    2>/dev/null)"
	done
	return 0
}

# section TITLE: the demo's output from the "== TITLE" line to the next
# header.
section() {
	awk -v t="== $1" 'index($0, t) == 1 { on = 1; next }
	    /^== / { on = 0 } on' "$T/demo.out"
}

# in_order NAME: the timeline's steps of that start, in order of time.
in_order() {
	prev=0
	for step in pull ready warm server first second; do
		ms=$(awk -v s="$step" '$1 == s { print $2; exit }' \
		    "$R/$1.timeline")
		[ -n "$ms" ] && [ "$ms" -ge "$prev" ] || return 1
		prev=$ms
	done
}

# step NAME STEP: the step's ms in the start's timeline.
step() {
	awk -v s="$2" '$1 == s { print $2; exit }' "$R/$1.timeline"
}

# event NAME PROG REGEX [N]: the time (ms since the epoch) of the Nth
# (default first) event of PROG whose message matches REGEX in the
# start's log.
event() {
	jq -rRn --arg p "$2" --arg re "$3" --argjson n "${4:-1}" '
	    [inputs | fromjson | select(.prog == $p and (.msg | test($re)))] |
	    .[$n - 1].ts | capture("^(?<s>[^.]+)\\.(?<f>[0-9]{3})Z$") |
	    ((.s + "Z") | fromdateiso8601) * 1000 + (.f | tonumber)' \
	    "$R/$1.log"
}

src_state() {
	for d in inference/examples tests/origin demo; do
		[ -d "$top_srcdir/$d" ] && tree_state "$top_srcdir/$d"
	done
	return 0
}
src_before=$(src_state)

# --- the demo, cold and warm ------------------------------------------
# (demo, spelt out: timeout runs programs, not functions)
rc=0
timeout 600 env DEMO_DIR="$D" DEMO_NO_BUILD=1 DEMO_BUILD="$top_builddir" \
    sh "$top_srcdir/dev" demo --no-apt >"$T/demo.out" 2>"$T/demo.err" ||
	rc=$?
is "$rc" 0 "./dev demo --no-apt exits 0"
[ "$rc" -eq 0 ] || diag "$(tail -30 "$T/demo.out")" "$(cat "$T/demo.err")"

grep -q '^== make-model --size tiny --out ' "$T/demo.out"
ok $? "it made the tiny GPT-2 with make-model"
for start in cold warm; do
	for i in 1 2; do
		jqe '(.text | type) == "string" and .tokens == 24' \
		    "$R/$start-$i.json" >/dev/null 2>&1
		ok $? "$start start: answer $i has a text and 24 tokens"
	done
	is "$(jq -c '[.text, .ids]' "$R/$start-1.json" 2>&1)" \
	    "$(jq -c '[.text, .ids]' "$R/$start-2.json" 2>&1)" \
	    "$start start: the second answer is the first's"
done
for i in 1 2; do
	is "$(jq -c '[.text, .ids]' "$R/warm-$i.json" 2>&1)" \
	    "$(jq -c '[.text, .ids]' "$R/cold-$i.json" 2>&1)" \
	    "answer $i: the same text and ids cold and warm"
done
text=$(jq -r .text "$R/cold-1.json")
[ "$(section "GET " | grep -cxF "  answer: $text")" -eq 2 ]
ok $? "the answer is printed, in each start"

# The timelines: every step with a time, in both columns.
steps="pull|verified, ready|warmed|server ready|first response|second response"
t='\+[0-9]+\.[0-9]{3} s'
n=$(section "timeline of the cold start" | grep -Ec "^  ($steps) +$t")
is "$n" 6 "the cold start's timeline has its six steps"
n=$(section "cold and warm side by side" |
    grep -Ec "^  ($steps) +$t .* $t")
is "$n" 6 "the side-by-side timeline has the six steps of both starts"
for start in cold warm; do
	rc=0
	in_order "$start" || rc=1
	ok $rc "$start start: the steps' times in order"
	[ $rc -eq 0 ] || diag "$(cat "$R/$start.timeline")"
done

# The timeline is the programs' own events: every line of each start's
# log is a JSON event with its time, and each step is as far from another
# as the events that say them.
for start in cold warm; do
	jq -eR 'fromjson | (.ts | test("^[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}Z$"))
	    and (.prog | IN("modelcached", "modelcache-preload",
		"gpt2-server")) and (.msg | type == "string")' "$R/$start.log" \
	    >/dev/null 2>&1
	ok $? "$start start: its log is JSON events (ts, prog, msg)"
	for p in modelcached modelcache-preload gpt2-server; do
		grep -q "\"prog\":\"$p\"" "$R/$start.log"
		ok $? "$start start: $p logged JSON"
	done
	is "$(($(step $start server) - $(step $start ready)))" \
	    "$(($(event $start gpt2-server '^listening on ') - \
	    $(event $start modelcache-preload ' ready: ')))" \
	    "$start start: ready to server ready, as far as their events"
	is "$(($(step $start second) - $(step $start warm)))" \
	    "$(($(event $start gpt2-server '^GET /generate ' 2) - \
	    $(event $start modelcache-preload '^warmed ')))" \
	    "$start start: warmed to second response, as far as their events"
done
is "$(($(step cold ready) - $(step cold pull)))" \
    "$(($(event cold modelcache-preload ' ready: ') - \
    $(event cold modelcached "^pull '.*' done: ")))" \
    "cold start: pull to ready, as far as their events"

# What the origin served: the model's bytes cold, nothing warm.
size=$(cat "$D"/models/gpt2-tiny/* | wc -c)
is "$(awk '$1 == "origin" { print $3 }' "$R/cold.timeline")" "$size" \
    "the cold start fetched the model's $size bytes from the origin"
is "$(awk '$1 == "origin" { print $3 }' "$R/warm.timeline")" 0 \
    "the warm start: 0 bytes from the origin (its /_stats)"
section "cold and warm side by side" |
    grep -Eq "^  origin served +$size bytes +0 bytes$"
ok $? "the side-by-side timeline says so"
grep -q "pull 'hf://demo/gpt2-tiny@main' done: .* $size bytes from the" \
    "$R/cold.log"
ok $? "cold: modelcached pulled the model"
! grep -q "pull '" "$R/warm.log"
ok $? "warm: modelcached pulled nothing, it answered from the store"
grep -q "lease(s) ended" "$R/cold.log" && grep -q "lease(s) ended" "$R/warm.log"
ok $? "each start's lease ended with its server"

section "modelcache ls" | grep -q '^demo/gpt2-tiny  *main  '
ok $? "modelcache ls shows demo/gpt2-tiny"
grep -q '^== done: gpt2-server, modelcached and the origin are stopped' \
    "$T/demo.out"
ok $? "it says it stopped everything"
is "$(leftovers)" "" "nothing the demo started is left running"
run_ok "the store verifies (modelcache verify)" mc --store "$D/store" verify
is "$(src_state)" "$src_before" "nothing written into the source tree"

cp "$R/cold-1.json" "$T/local-1.json"

# --- again, interrupted -----------------------------------------------
rm -rf "$R"
env DEMO_DIR="$D" DEMO_NO_BUILD=1 DEMO_BUILD="$top_builddir" \
    sh "$top_srcdir/dev" demo --no-apt >"$T/demo2.out" 2>&1 &
pid=$!
BG=$pid
# Once the cold start's daemon runs, the demo still has all of both
# starts ahead.
n=0
until grep -q '"prog":"modelcached","msg":"listening on' "$R/cold.log" \
    2>/dev/null; do
	kill -0 "$pid" 2>/dev/null || break
	n=$((n + 1))
	[ $n -lt 3000 ] || break
	sleep 0.01
done
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rc=$?
BG=
grep -q '^== the demo model: .* (made before, unchanged)' "$T/demo2.out"
ok $? "run again: the model is not made again"
if [ "$rc" -eq 0 ]; then
	ok 0 "# SKIP the demo ended before the SIGTERM came"
else
	is "$rc" 143 "SIGTERM in the middle: the demo exits 143"
fi
is "$(leftovers)" "" "and leaves nothing running"
run_ok "the store still verifies" mc --store "$D/store" verify

# --- MODEL=hf://..., the Hub's path, on the test origin ----------------
# The path a real model takes, offline: the same tiny model as
# openai-community/gpt2 at an HF_ENDPOINT of this test's.
start_origin --repo "openai-community/gpt2=$D/models/gpt2-tiny"
ok $? "the test origin serves the tiny model as openai-community/gpt2"
rc=0
timeout 600 env DEMO_DIR="$D" DEMO_NO_BUILD=1 DEMO_BUILD="$top_builddir" \
    MODEL=hf://openai-community/gpt2 no_proxy=127.0.0.1,localhost \
    sh "$top_srcdir/dev" demo --no-apt >"$T/demo.out" 2>"$T/demo.err" ||
	rc=$?
is "$rc" 0 "MODEL=hf://openai-community/gpt2 ./dev demo --no-apt exits 0"
[ "$rc" -eq 0 ] || diag "$(tail -30 "$T/demo.out")" "$(cat "$T/demo.err")"
jqe '.commit | test("^[0-9a-f]{40}$")' "$R/pull.json" >/dev/null 2>&1
ok $? "the cold start began with modelcache pull, which gave the commit"
is "$(jq -c '[.text, .ids]' "$R/warm-2.json" 2>&1)" \
    "$(jq -c '[.text, .ids]' "$T/local-1.json" 2>&1)" \
    "the answers are the local demo model's"
n=$(section "cold and warm side by side" |
    grep -Ec "^  ($steps) +$t .* $t")
is "$n" 6 "the side-by-side timeline has the six steps of both starts"
section "cold and warm side by side" |
    grep -Eq "^  pull +$t +2\.1 MiB fetched in .* +$t +none: in the store$"
ok $? "cold: the pull fetched the model; warm: none, it is in the store"
is "$(stats .bytes)" "$size" \
    "the origin served the model's bytes once, in the cold start (/_stats)"
is "$(leftovers)" "" "nothing left running"
stop_origin
unset HF_ENDPOINT

# --- a MODEL it does not know -----------------------------------------
run_fails 2 "MODEL='nonsense'" "an unknown MODEL: exit 2, saying so" \
    demo MODEL=nonsense
is "$(leftovers)" "" "nothing left running"

done_testing
