#!/bin/sh
# Two nodes, one GlusterFS volume (tests/lib/gluster.sh): ten concurrent
# pulls of one model, five on each node (three with modelcache pull, two
# acquires through the node's daemon), on
# the default-caching volume and on the strict one.  Each blob is served by
# the origin once, every pull succeeds (no EIO, no ESTALE), the Hugging Face
# layout is intact on both mounts, verify and fsck are clean, and each
# node's CLI lists the model.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/gluster.sh"

gluster_setup
ok $? "glusterd, two volumes, four mounts and two nodes are up"

make_model "$T/repo" nodes
openssl enc -aes-128-ctr -nosalt -pass pass:nodes-big </dev/zero \
    2>/dev/null | head -c $((16 * 1024 * 1024)) >"$T/repo/big.safetensors"
big=$(sha_of "$T/repo/big.safetensors")
total=$(find "$T/repo" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
start_origin_ns --repo org/demo="$T/repo"
ok $? "the origin starts in the namespace"

# node_env NODE MODE: the environment of a node's processes.
node_env() {
	echo "MODELCACHE_STORE=$GL/$2-$1/store-$2" \
	    "MODELCACHE_SOCKET=$T/$1-$2.sock"
}

start_node_daemon() {	# start_node_daemon NODE MODE
	# shellcheck disable=SC2046
	on_bg "$1" env $(node_env "$1" "$2") "$MCD" -v \
	    >>"$T/daemon-$1-$2.log" 2>&1
	eval "DPID_$1=\$BG_PID"
	wait_for "$MC" status --socket "$T/$1-$2.sock"
}

for mode in default strict; do
	t0=$(gl_now)
	curl_reset() { ns curl -s -X POST "$ORIGIN/_reset" >/dev/null; }
	curl_reset
	mkdir -p "$GL/$mode-a/store-$mode"
	start_node_daemon a "$mode"
	ok $? "$mode: a daemon on node a"
	start_node_daemon b "$mode"
	ok $? "$mode: a daemon on node b"
	# On each node three CLI pulls and two acquires through its daemon.
	pids=
	for i in 1 2 3 4 5; do
		for n in a b; do
			if [ "$i" -le 3 ]; then
				# shellcheck disable=SC2046
				on "$n" env $(node_env "$n" "$mode") "$MC" \
				    pull --chunk-size 1MiB org/demo \
				    >"$T/p-$mode-$n$i.out" 2>&1 &
			else
				python3 "$top_srcdir/tests/lib/mcclient.py" \
				    "$T/$n-$mode.sock" \
				    '{"op":"acquire","model":"org/demo"}' \
				    >"$T/p-$mode-$n$i.out" 2>&1 &
			fi
			pids="$pids $!"
		done
	done
	failed=0
	for p in $pids; do wait "$p" || failed=$((failed + 1)); done
	is "$failed" 0 "$mode: six pulls and four acquires over two nodes succeed"
	[ "$failed" -eq 0 ] || diag "$(cat "$T"/p-"$mode"-*.out | sort | uniq -c)"
	! grep -l "Input/output error\|Stale file handle\|Permission denied" \
	    "$T"/p-"$mode"-*.out "$T"/daemon-*-"$mode".log >/dev/null
	ok $? "$mode: no EIO, ESTALE or EACCES in any pull or daemon log"
	is "$(stats ".bytes_by_sha256[\"$big\"]")" $((16 * 1024 * 1024)) \
	    "$mode: the large blob was served exactly once"
	is "$(stats '.bytes')" "$total" "$mode: every blob was served once"
	for n in a b; do
		s="$GL/$mode-$n/store-$mode"
		snap=$(echo "$s"/hub/models--org--demo/snapshots/*)
		commit=$(basename "$snap")
		is "$(cat "$s/hub/models--org--demo/refs/main")" "$commit" \
		    "$mode: node $n sees refs/main name the snapshot"
		bad=0
		for f in config.json sub/dir/notes.txt merges.txt \
		    model.safetensors sub/weights.bin big.safetensors; do
			l=$(readlink "$snap/$f")
			case $l in ../*blobs/*) ;; *) bad=1 ;; esac
			[ "$(sha_of "$snap/$f")" = "$(sha_of "$T/repo/$f")" ] ||
			    bad=1
		done
		is "$bad" 0 "$mode: node $n reads every file through relative links"
		# shellcheck disable=SC2046
		run_ok "$mode: verify on node $n" on "$n" env \
		    $(node_env "$n" "$mode") "$MC" verify
		# shellcheck disable=SC2046
		is "$(on "$n" env $(node_env "$n" "$mode") "$MC" ls --json |
		    json 'map(.repo) | join(",")')" "org/demo" \
		    "$mode: node $n's index lists the model"
	done
	# shellcheck disable=SC2046
	run_ok "$mode: fsck on node b is clean" on b env \
	    $(node_env b "$mode") "$MC" fsck
	kill "$DPID_a" "$DPID_b"
	echo "# time $mode: $(gl_since "$t0") s"
done
done_testing
