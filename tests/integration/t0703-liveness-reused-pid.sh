#!/bin/sh
# A restarted daemon gets the dead one's name.  Daemon A, in a PID namespace
# of its own (pid 1 there), is killed (SIGKILL) in the middle of a pull,
# holding the blob's claim.  Daemon B is started the way a restarted
# container's daemon is: same host name (unshare -u copies it), a fresh
# PID namespace, which the kernel often gives A's namespace's inode again,
# and pid 1 again.  Owner ids were "<host>.<pidns>.<pid>", so A's claim
# named B, and B, finding that pid alive (itself), waited on it for ever,
# whatever its heartbeat said (the chaos campaign's seed 13).  Owner ids
# now hold the process's start time: B sees a dead incarnation, takes the
# claim over and finishes, within a bounded wait.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/nodes.sh"

nodes_check
MODELCACHE_STALE_AFTER=2
export MODELCACHE_STALE_AFTER

make_model "$T/demo" demo
big=$(sha_of "$T/demo/model.safetensors")
# About 3 s to fetch demo's big file: A is killed in the middle of it.
start_origin --repo org/demo="$T/demo" --fault "slow:100000@/cdn/$big"
ok $? "the test origin starts (slow CDN)"
node_daemon a +0s
ok $? "daemon A starts in a PID namespace of its own"

client_on() {
	sock=$1
	shift
	python3 "$top_srcdir/tests/lib/mcclient.py" "$T/$sock/mc.sock" "$@"
}
status_on() {
	"$MC" status --json --socket "$T/$1/mc.sock" | jqe "$2"
}
ns_of() {
	stat -L -c %i "/proc/$1/ns/pid"
}

client_on a '{"op":"acquire","model":"hf://org/demo"}' >"$T/a.out" 2>&1 &
A=$!
wait_for status_on a '[.pulls[]?.done_bytes] | add > 100000'
ok $? "A is fetching the big file"
claim_a=$(cat "$STORE/claims/$big")
ns_a=$(ns_of "$NODE_PID_a")
ok "$([ -n "$claim_a" ]; echo $?)" "A holds the blob's claim ($claim_a)"
kill -9 "$NODE_PID_a"
wait "$NODE_UPID_a" 2>/dev/null
wait "$A" 2>/dev/null
ok "$([ -e "$STORE/claims/$big" ]; echo $?)" \
    "A, killed, leaves its claim behind"

# The kernel frees a namespace's inode number some time after its last
# process is gone, and gives out the lowest free one: B is started again
# (a bounded number of times) until it gets A's, as a restarted container
# often does, so that its owner id differs from A's by the start time alone.
tries=0
while :; do
	node_daemon b +0s || break
	ns_b=$(ns_of "$NODE_PID_b")
	tries=$((tries + 1))
	[ "$ns_b" != "$ns_a" ] && [ $tries -lt 100 ] || break
	kill -9 "$NODE_UPID_b"
	wait "$NODE_UPID_b" 2>/dev/null
	sleep 0.05
done
ok "$(kill -0 "$NODE_PID_b"; echo $?)" \
    "daemon B starts in a fresh PID namespace, same host name ($tries tries)"
is "$(awk '/^NSpid/ { print $NF }' "/proc/$NODE_PID_b/status")" 1 \
    "B is pid 1 in it, as A was"
client_on b '{"op":"acquire","model":"hf://org/demo"}' >"$T/b.out" 2>&1 &
B=$!
wait_for grep -q '"event": *"ready"' "$T/b.out"
ok $? "B takes the dead incarnation's claim over and finishes the pull" ||
    diag "$(tail -n 3 "$T/b.out")" "claim: $(cat "$STORE/claims/$big" 2>&1)"
# Before owner ids held the start time, B waited on the claim for ever.
wait_for sh -c "! kill -0 $B"
kill "$B" 2>/dev/null
wait "$B"
ok $? "B answers the acquire"
# Whether the kernel gave B A's namespace inode decides whether this run
# saw the very name clash; say so either way.
if [ "$ns_a" = "$ns_b" ]; then
	ok 0 "B's namespace inode is A's ($ns_a): the same host, namespace, pid"
else
	tap_n=$((tap_n + 1))
	echo "ok $tap_n # SKIP the kernel gave B another namespace inode" \
	    "($ns_a, $ns_b): only the start time was needed this run"
fi
is "$(stat -c %s "$STORE/blobs/sha256/$(echo "$big" | cut -c1-2)/$big")" \
    300000 "the published blob has the right size"
is "$(sha_of "$STORE/blobs/sha256/$(echo "$big" | cut -c1-2)/$big")" "$big" \
    "and the right digest"
run_ok "verify the model" mc verify org/demo
run_ok "fsck is clean" mc fsck

done_testing
