#!/bin/sh
# Two nodes, one GlusterFS volume: the daemon of node a is killed (-9) in
# the middle of a pull; an acquire on node b's daemon takes the stale
# claims over and finishes the model, resuming from what a saved.  On the
# default-caching and the strict volume.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/gluster.sh"

gluster_setup
ok $? "glusterd, two volumes, four mounts and two nodes are up"
make_model "$T/repo" takeover
size=$((24 * 1024 * 1024))
openssl enc -aes-128-ctr -nosalt -pass pass:takeover-big </dev/zero \
    2>/dev/null | head -c $size >"$T/repo/big.safetensors"
big=$(sha_of "$T/repo/big.safetensors")
# 6 MB/s per request: long enough to be killed in the middle.
start_origin_ns --repo org/big="$T/repo" --fault 'slow:6000000'
ok $? "the origin starts in the namespace"
MCCLIENT="$top_srcdir/tests/lib/mcclient.py"
# Another node's claim counts as dead once its heartbeat is 2 s old.
MODELCACHE_STALE_AFTER=2
export MODELCACHE_STALE_AFTER

partial_grew() {	# partial_grew STORE: a partial file past 2 MiB
	[ -n "$(find "$1/tmp" -name 'partial.*' -size +2M 2>/dev/null)" ]
}

for mode in default strict; do
	t0=$(gl_now)
	ns curl -s -X POST "$ORIGIN/_reset" >/dev/null
	SA="$GL/$mode-a/take" SB="$GL/$mode-b/take"
	node_daemon a "$SA" "$T/a-$mode.sock"
	ok $? "$mode: a daemon on node a"
	node_daemon b "$SB" "$T/b-$mode.sock"
	ok $? "$mode: a daemon on node b"
	python3 "$MCCLIENT" "$T/a-$mode.sock" \
	    '{"op":"acquire","model":"org/big"}' >"$T/a-$mode.out" 2>&1 &
	CLIENT_A=$!
	wait_for partial_grew "$SA"
	ok $? "$mode: node a's pull is under way"
	eval "kill -9 \$GL_DAEMON_a"
	wait "$CLIENT_A" 2>/dev/null
	python3 "$MCCLIENT" "$T/b-$mode.sock" \
	    '{"op":"acquire","model":"org/big"}' >"$T/b-$mode.out" 2>&1
	ok $? "$mode: node b's acquire takes over and gets the model ready"
	grep -q '"event":"ready"' "$T/b-$mode.out" ||
	    diag "$(tail -3 "$T/b-$mode.out")" "$(tail -5 "$T/daemon-b.log")"
	snap=$(echo "$SA"/hub/models--org--big/snapshots/*)
	is "$(sha_of "$snap/big.safetensors")" "$big" \
	    "$mode: node a's mount reads the right bytes"
	served=$(stats ".bytes_by_sha256[\"$big\"]")
	[ "$served" -lt $((2 * size)) ]
	ok $? "$mode: what a saved was resumed, not fetched again ($served B)"
	run_ok "$mode: verify on node b" node_mc b "$SB" verify
	run_ok "$mode: fsck on node a" node_mc a "$SA" fsck
	eval "kill \$GL_DAEMON_b"
	echo "# time $mode: $(gl_since "$t0") s"
done
done_testing
