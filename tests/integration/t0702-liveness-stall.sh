#!/bin/sh
# Stalls.  (1) Daemon A is stopped (SIGSTOP) in the middle of a pull, with
# the stale limit at 2 s, while daemon B on another node pulls the same
# model: B takes A's claim over once A's heartbeat is stale, publishes, and
# holds a lease; a gc --max-size 0 on a third node keeps B's model.  Then A
# goes on (SIGCONT): it finds its claim taken, stands down without
# publishing or deleting B's work, reuses B's blob and answers ready.  No
# blob of a wrong size or digest, fsck clean.  A stopped process's
# heartbeats stop with it (its beat thread too): its claim may be taken,
# which is why a holder checks its claim's line before it publishes.
# (2) A daemon whose index write waits on another process's exclusive
# SQLite lock keeps its leases beating: the lease's mtime moves on while
# the acquire that waits for that write is still unanswered.  Before the
# beat thread, heartbeats ran on the loop, and the loop waited on SQLite
# (since the index's queue, a worker thread waits; t0209).  Daemon C has
# stale_after 8 s (beats every 2 s) and index_busy_timeout 6 s, and the
# lock is held until C answers: the publish waits 6 s for its index row
# before the answer (the row is tried again behind it), so the beat (at
# most 2 s away) is seen with 4 s to spare, and the end does not depend on
# when the test lets go.  The index busy past its
# timeout loses nothing: the files are published and the acquire is
# answered ready; the row comes at the next use (or from fsck).  A busy
# timeout at or above stale_after is refused.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/nodes.sh"

nodes_check
MODELCACHE_STALE_AFTER=2
export MODELCACHE_STALE_AFTER

make_model "$T/demo" demo
make_model "$T/two" two
big=$(sha_of "$T/demo/model.safetensors")
# About 3 s to fetch demo's big file: A is stopped in the middle of it.
start_origin --repo org/demo="$T/demo" --repo org/two="$T/two" \
    --fault "slow:100000@/cdn/$big"
ok $? "the test origin starts (slow CDN)"
node_daemon a +0s
ok $? "daemon A starts on a node of its own"
node_daemon b +0s
ok $? "daemon B starts on another"

client_on() {
	sock=$1
	shift
	python3 "$top_srcdir/tests/lib/mcclient.py" "$T/$sock/mc.sock" "$@"
}
status_on() {
	"$MC" status --json --socket "$T/$1/mc.sock" | jqe "$2"
}

# --- (1) A stopped past the stale limit while B pulls ---------------------
client_on a '{"op":"acquire","model":"hf://org/demo"}' >"$T/a.out" 2>&1 &
A=$!
wait_for status_on a '[.pulls[]?.done_bytes] | add > 150000'
ok $? "A is fetching the big file"
kill -STOP "$NODE_PID_a"
claim_a=$(cat "$STORE/claims/$big")
mkfifo "$T/hold"
client_on b --hold '{"op":"acquire","model":"hf://org/demo"}' \
    <"$T/hold" >"$T/b.out" &
HOLD=$!
exec 9>"$T/hold"
wait_for grep -q '"event": *"ready"' "$T/b.out"
ok $? "B takes the stale claim over and finishes the pull"
claim_b=$(cat "$STORE/claims/$big" 2>/dev/null)
ok "$([ "$claim_b" != "$claim_a" ]; echo $?)" \
    "the claim is no longer A's (A: $claim_a)"
node +0s "$MC" gc --max-size 0 >"$T/gc.out" 2>"$T/gc.err"
is "$?" 7 "gc --max-size 0 on a third node keeps the model B leases"
kill -CONT "$NODE_PID_a"
wait "$A"
ok $? "A, continued, answers its acquire"
grep -q '"event": *"ready"' "$T/a.out"
ok $? "ready"
wait_for grep -q "stood down" "$T/a.log"
ok $? "A says it found its claim taken and stood down"
is "$(sha_of "$STORE/blobs/sha256/$(echo "$big" | cut -c1-2)/$big")" "$big" \
    "the published blob has the right digest"
is "$(stat -c %s "$STORE/blobs/sha256/$(echo "$big" | cut -c1-2)/$big")" \
    300000 "and the right size"
run_ok "verify the model" mc verify org/demo
is "$(mc ls --json | json 'map(.repo) | join(",")')" "org/demo" \
    "the leased model is still there"
exec 9>&-
wait "$HOLD"
wait_for status_on b '.leases | length == 0'
ok $? "B's lease ended"

# --- (2) a blocked loop keeps beating; a busy index loses nothing -------
MODELCACHE_STALE_AFTER=8
MODELCACHE_INDEX_BUSY_TIMEOUT=8
export MODELCACHE_INDEX_BUSY_TIMEOUT
"$MCD" --check --store "$STORE" --socket "$T/check.sock" >"$T/check.out" 2>&1
ok "$([ $? -ne 0 ]; echo $?)" \
    "modelcached refuses a busy timeout as long as the stale limit"
grep -q "index_busy_timeout (8 s) must be below stale_after (8 s)" \
    "$T/check.out"
ok $? "and says why" || diag "$(cat "$T/check.out")"
mc ls >"$T/check.out" 2>&1
ok "$([ $? -ne 0 ]; echo $?)" "so does modelcache"
MODELCACHE_INDEX_BUSY_TIMEOUT=6
node_daemon c +0s
ok $? "daemon C starts (stale_after 8 s, index_busy_timeout 6 s)"
mkfifo "$T/hold2"
client_on c --hold '{"op":"acquire","model":"hf://org/demo"}' \
    <"$T/hold2" >"$T/c2.out" &
HOLD2=$!
exec 8>"$T/hold2"
wait_for grep -q '"event": *"ready"' "$T/c2.out"
ok $? "C leases the model"
is "$(ls "$STORE/leases" | wc -l)" 1 "the only lease is C's"
lease=$(ls "$STORE/leases" | head -n 1)
# Another process takes the index's write lock and keeps it (.bail: no
# "locked" unless it has it).
mkfifo "$T/sql"
sqlite3 "$STORE/index.db" <"$T/sql" >"$T/sql.out" 2>&1 &
SQL=$!
exec 7>"$T/sql"
printf '.bail on\nBEGIN EXCLUSIVE;\nSELECT %s;\n' "'locked'" >&7
wait_for grep -q locked "$T/sql.out"
ok $? "another process holds the index's write lock"
# An acquire whose pull ends in an index write (the publish order puts the
# manifest and the hub view first, the index row last).
client_on c '{"op":"acquire","model":"hf://org/two"}' >"$T/two.out" 2>&1 &
TWO=$!
ref2="$STORE/hub/models--org--two/refs/main"
wait_for test -e "$ref2"
ok $? "C published org/two's files and waits to index them"
# The ref is C's loop's last write before it waits on SQLite: a lease
# mtime after it is a beat that the blocked loop did not make.
t0=$(stat -c %.9Y "$ref2")
beaten() {
	awk -v a="$(stat -c %.9Y "$STORE/leases/$lease")" -v b="$t0" \
	    'BEGIN { exit !(a > b) }'
}
wait_for beaten
ok $? "the lease's heartbeat moves on"
# Answers carry "ok"; progress events do not.  Only hello is answered.
is "$(grep -c '"ok"' "$T/two.out")" 1 \
    "while the acquire waiting on C's index is still unanswered"
wait "$TWO"
ok $? "the acquire is answered while the lock is still held"
ok "$(kill -0 "$SQL"; echo $?)" "(the lock is held)"
grep -q '"event": *"ready"' "$T/two.out"
ok $? "ready: the files are published, the index row is not needed" ||
    diag "$(cat "$T/two.out")"
grep -q "org/two.*published, but another process held the index" "$T/c.log"
ok $? "C says the index row is missing"
echo "COMMIT;" >&7
exec 7>&-
wait "$SQL"
client_on c '{"op":"acquire","model":"hf://org/two"}' >"$T/two2.out" 2>&1
grep -q '"event": *"ready"' "$T/two2.out"
ok $? "once the lock is gone, the next acquire is ready"
# The row comes from the manifest: C's refresh before it resolves the
# reference, or the CLI's at its open, whichever runs first.
is "$(mc ls --json | json 'map(.repo) | sort | join(",")')" \
    "org/demo,org/two" "the index lists org/two"
run_ok "verify org/two" mc verify org/two
exec 8>&-
wait "$HOLD2"
run_ok "fsck is clean" mc fsck

done_testing
