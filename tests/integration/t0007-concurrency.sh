#!/bin/sh
# Concurrency: imports of different models and a gc running at once on one
# store leave it consistent (fsck clean); ten imports of the same model at
# once all succeed and publish each blob once.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/x" xray
make_model "$T/y" yankee
cp "$T/x/sub/weights.bin" "$T/y/sub/weights.bin"	# shared blob
for i in 1 2 3; do
	openssl enc -aes-128-ctr -nosalt -pass "pass:p$i" </dev/zero \
	    2>/dev/null | head -c $((4 * 1024 * 1024)) >"$T/x/part$i.bin"
done
make_model "$T/old" old
cp "$T/x/sub/weights.bin" "$T/old/sub/weights.bin"	# gc will want it gone

for round in 1 2 3 4 5; do
	run_ok "round $round: an old model to collect" \
	    mc import "$T/old" "org/old$round"
	mc import "$T/x" "org/x$round" >"$T/x.out" 2>&1 &
	px=$!
	mc import "$T/y" "org/y$round" >"$T/y.out" 2>&1 &
	py=$!
	mc gc --max-size 0 >"$T/gc.out" 2>&1 &
	pg=$!
	wait "$px"
	ok $? "round $round: import x succeeds beside the others"
	wait "$py"
	ok $? "round $round: import y succeeds beside the others"
	wait "$pg"
	rc=$?
	# gc may evict x or y if it plans after they commit; it must not fail.
	[ "$rc" -eq 0 ]
	ok $? "round $round: gc succeeds beside the imports"
	[ "$rc" -eq 0 ] || diag "$(cat "$T/gc.out")"
	mc fsck --json >"$T/fsck.json"
	is "$(json '.issues | length' <"$T/fsck.json")" 0 \
	    "round $round: fsck finds nothing at all"
	run_ok "round $round: every listed model verifies" mc verify
	for s in $(mc ls --json | json '.[].dir'); do
		[ -d "$STORE/$s" ] || echo "$s"
	done >"$T/missing"
	is "$(cat "$T/missing")" "" "round $round: every listed model is in the hub view"
done

rm -rf "$STORE"
pids=
for i in $(seq 1 10); do
	mc import "$T/x" org/same >"$T/same$i.out" 2>&1 &
	pids="$pids $!"
done
failed=0
for p in $pids; do wait "$p" || failed=$((failed + 1)); done
is "$failed" 0 "ten imports of one model at once all succeed"
is "$(mc ls --json | json 'length')" 1 "they publish one snapshot"
is "$(find "$STORE/blobs" -type f | wc -l)" \
    "$(find "$T/x" -type f -exec sha256sum {} + | cut -c1-64 | sort -u | wc -l)" \
    "each distinct blob once"
is "$(find "$STORE/tmp" "$STORE/claims" -mindepth 1 | wc -l)" 0 \
    "no tmp file or claim is left"
run_ok "fsck is clean" mc fsck
done_testing
