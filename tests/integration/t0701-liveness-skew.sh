#!/bin/sh
# Nodes whose clocks disagree share a store: daemon A's clock runs 120 s
# behind, daemon B's 120 s ahead, each on a "host" of its own (UTS and PID
# namespaces, tests/lib/nodes.sh), and the CLI runs on a third, 120 s
# ahead.  The skew is four times the stale limit, yet no live claim or lease
# is judged dead: both daemons pull one model and the origin serves each
# blob once; gc --max-size 0 keeps the model leased through A, and fsck
# calls that lease live; once the lease ends, gc evicts the model.
# Heartbeats are stamped by the filesystem (utimensat(NULL)) and ages are
# judged on the store's clock (store_now_ms()), so the processes' clocks
# never meet.  Before that, gc 120 s ahead evicted the leased model and B
# took A's claim for stale and fetched the blob again.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/nodes.sh"

nodes_check
MODELCACHE_STALE_AFTER=30
export MODELCACHE_STALE_AFTER

make_model "$T/demo" demo
# About 3 s a pull: B asks while A's claim on the big file is held.
start_origin --repo org/demo="$T/demo" --fault 'slow:100000@/cdn/'
ok $? "the test origin starts (slow CDN)"
node_daemon a -120s
ok $? "daemon A starts, 120 s behind, on a node of its own"
node_daemon b +120s
ok $? "daemon B starts, 120 s ahead, on another"
ok "$([ "$NODE_PID_a" != "$NODE_PID_b" ] && [ -n "$NODE_PID_a" ]; echo $?)" \
    "each daemon runs in its own PID namespace"

# A acquires and holds the lease until fd 9 closes.
mkfifo "$T/hold"
python3 "$top_srcdir/tests/lib/mcclient.py" "$T/a/mc.sock" --hold \
    '{"op":"acquire","model":"hf://org/demo"}' <"$T/hold" >"$T/a.out" &
HOLD=$!
exec 9>"$T/hold"
# B asks once A holds the big file's claim and is fetching it.
big=$(sha_of "$T/demo/model.safetensors")
wait_for test -e "$STORE/claims/$big"
ok $? "A claims the big file"
python3 "$top_srcdir/tests/lib/mcclient.py" "$T/b/mc.sock" \
    '{"op":"acquire","model":"hf://org/demo"}' >"$T/b.out" 2>&1 &
B=$!
wait_for grep -q '"event": *"ready"' "$T/a.out"
ok $? "A's acquire is ready"
wait "$B"
ok $? "B's acquire is ready too"
grep -q '"event": *"ready"' "$T/b.out"
ok $? "B answered ready"
is "$(stats ".bytes_by_sha256[\"$big\"]")" 300000 \
    "the big blob was served once, though B's clock is 240 s past A's"
is "$(stats '.bytes')" "$(find "$T/demo" -type f -printf '%s\n' |
    awk '{ s += $1 } END { print s }')" "every blob was served once"
grep -q "taken over\|stood down" "$T/a.log" "$T/b.log"
ok "$((! $?))" "neither daemon took the other's claim"

# The lease of A, judged by a gc and an fsck 120 s ahead on a third node.
status_a() {
	"$MC" status --json --socket "$T/a/mc.sock" | jqe "$1"
}
wait_for status_a '.leases | length == 1'
ok $? "A holds the lease"
node +120s "$MC" gc --max-size 0 >"$T/gc.out" 2>"$T/gc.err"
is "$?" 7 "gc --max-size 0, 120 s ahead, cannot evict the model A leases"
is "$(mc ls --json | json 'map(.repo) | join(",")')" "org/demo" \
    "the leased model stays"
node +120s "$MC" fsck --json >"$T/fsck.out" 2>"$T/fsck.err"
is "$(json '[.issues[]? | select(.kind == "lease_stale")] | length' \
    <"$T/fsck.out")" 0 "fsck 120 s ahead calls A's lease live"
node -120s "$MC" gc --max-size 0 >"$T/gc2.out" 2>"$T/gc2.err"
is "$?" 7 "gc 120 s behind keeps it too"
run_ok "verify the model" mc verify org/demo

# The lease ends with its connection; then the model may go.
exec 9>&-
wait "$HOLD"
wait_for status_a '.leases | length == 0'
ok $? "A's lease ended"
node +120s "$MC" gc --max-size 0 >"$T/gc3.out" 2>"$T/gc3.err"
is "$?" 0 "gc 120 s ahead evicts the model once no lease holds it"
is "$(mc ls --json | json 'length')" 0 "the store is empty"
run_ok "fsck is clean" mc fsck

done_testing
