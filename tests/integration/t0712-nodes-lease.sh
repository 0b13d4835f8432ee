#!/bin/sh
# Two nodes, one GlusterFS volume: a server on node a holds a lease through
# a's daemon; gc --max-size 0 and the quota of b's daemon keep the model,
# on the default-caching and the strict volume.  Once the lease ends, gc
# on b evicts it, and node a's index no longer lists it.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/gluster.sh"

gluster_setup
ok $? "glusterd, two volumes, four mounts and two nodes are up"
make_model "$T/demo" demo
make_model "$T/other" other
start_origin_ns --repo org/demo="$T/demo" --repo org/other="$T/other"
ok $? "the origin starts in the namespace"
MCCLIENT="$top_srcdir/tests/lib/mcclient.py"
HOLDER=
trap 'kill $HOLDER 2>/dev/null; gluster_exit' EXIT

lists() {	# lists NODE STORE: the repos NODE's index lists
	node_mc "$1" "$2" ls --json | json 'map(.repo) | sort | join(",")'
}
leases_gone() {
	[ -z "$(ls -A "$1/leases")" ]
}

for mode in default strict; do
	t0=$(gl_now)
	SA="$GL/$mode-a/lease" SB="$GL/$mode-b/lease"
	node_daemon a "$SA" "$T/a-$mode.sock"
	ok $? "$mode: a daemon on node a"
	node_daemon b "$SB" "$T/b-$mode.sock" --max-size 500KB
	ok $? "$mode: a daemon on node b, quota 500 KB"
	rm -f "$T/hold.fifo"
	mkfifo "$T/hold.fifo"
	python3 "$MCCLIENT" "$T/a-$mode.sock" --hold \
	    '{"op":"acquire","model":"org/demo"}' <"$T/hold.fifo" \
	    >"$T/hold-$mode.out" 2>&1 &
	HOLDER=$!
	sleep 3600 >"$T/hold.fifo" &
	FIFO_PID=$!
	HOLDER="$HOLDER $FIFO_PID"
	wait_for grep -q '"event":"ready"' "$T/hold-$mode.out"
	ok $? "$mode: a server on node a holds a lease on org/demo"
	run_fails 7 "leased" "$mode: gc --max-size 0 on node b keeps it" \
	    node_mc b "$SB" gc --max-size 0
	is "$(lists b "$SB")" "org/demo" "$mode: node b still lists it"
	python3 "$MCCLIENT" "$T/b-$mode.sock" \
	    '{"op":"acquire","model":"org/other"}' >"$T/q-$mode.out" 2>&1
	grep -q '"no_space"' "$T/q-$mode.out"
	rc=$?
	ok "$rc" "$mode: b's quota cannot evict the leased model: no_space"
	[ "$rc" -eq 0 ] || diag "$(tail -3 "$T/q-$mode.out")"
	snap=$(echo "$SA"/hub/models--org--demo/snapshots/*)
	is "$(sha_of "$snap/model.safetensors")" \
	    "$(sha_of "$T/demo/model.safetensors")" \
	    "$mode: the server on node a still reads its bytes"
	run_ok "$mode: verify on node a" node_mc a "$SA" verify
	kill "$FIFO_PID"
	wait "$FIFO_PID" 2>/dev/null
	HOLDER=
	wait_for leases_gone "$SA"
	ok $? "$mode: the lease ends with the server"
	run_ok "$mode: gc --max-size 0 on node b" node_mc b "$SB" gc \
	    --max-size 0
	is "$(lists a "$SA")" "" "$mode: node a's index no longer lists it"
	is "$(find "$SA/blobs" -type f | wc -l)" 0 "$mode: its blobs are gone"
	run_ok "$mode: fsck on node a" node_mc a "$SA" fsck
	eval "kill \$GL_DAEMON_a \$GL_DAEMON_b"
	echo "# time $mode: $(gl_since "$t0") s"
done
done_testing
