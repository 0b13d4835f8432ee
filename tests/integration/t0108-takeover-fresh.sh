#!/bin/sh
# A stalled holder's late writes never reach a published blob.  Pull A (on
# a node of its own, so that only its heartbeat speaks for it) stops itself
# (SIGSTOP at its 3rd finished range) while it fetches a 1 MiB file in
# 64 KiB ranges, with tmp/partial.<sha> open.  Pull B takes the claim over
# once A's heartbeat is stale and publishes.  The blob B published must be
# another file than the one A still has open: before takeovers copied the
# saved ranges into a fresh file, B resumed A's very inode and published
# it, and a write through A's descriptor (what A does for up to a tick
# after it wakes) changed the verified blob.  Then A goes on (SIGCONT),
# stands down, reuses B's blob; the blob's digest is right, verify clean.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/nodes.sh"

nodes_check
MODELCACHE_STALE_AFTER=2
export MODELCACHE_STALE_AFTER

big_model t0108
ok $? "the test origin starts"

stopped_pull pull-range-done 12 org/big
ok $? "pull A stalls (SIGSTOP) in the middle of the big file"
claim_a=$(cat "$STORE/claims/$big")
ok "$([ -n "$afd" ]; echo $?)" "A has its partial file open ($afd)"
saved=$(tail -n +2 "$STORE/tmp/partial.$big.ranges" 2>/dev/null | wc -l)
diag "ranges A saved before it stalled: $saved of 16"

mc pull --json --chunk-size 64KiB org/big >"$T/b.out" 2>"$T/b.err"
ok $? "pull B takes the stale claim over and publishes"
ok "$([ "$(cat "$STORE/claims/$big" 2>/dev/null)" != "$claim_a" ]; echo $?)" \
    "the claim is no longer A's"
ok "$([ -f "$blob" ]; echo $?)" "the blob is published"
b_ino=$(stat -c %i "$blob")
ok "$([ "$b_ino" != "$a_ino" ]; echo $?)" \
    "the published blob is not the file A has open (blob $b_ino, A's $a_ino)"
# What A would write when it wakes, before it finds its claim taken.
printf 'late bytes of a stalled holder' |
    dd of="$afd" bs=1 seek=70000 conv=notrunc 2>/dev/null
ok $? "a late write through A's descriptor"
is "$(sha_of "$blob")" "$big" "does not change the published blob"

kill -CONT "$A"
wait "$AU"
ok $? "A, continued, completes"
is "$(json '.claims_lost' <"$T/a.out")" 1 "A reports the claim it lost"
is "$(sha_of "$blob")" "$big" "the blob's digest still matches its name"
is "$(stat -c %s "$blob")" 1048576 "and its size"
run_ok "verify is clean" mc verify org/big
run_ok "fsck is clean" mc fsck
# A's range state, saved by its hashing job as it woke, may stay: it names
# a file that is gone, and the next holder's resume finds no partial.
is "$(find "$STORE/tmp" -mindepth 1 ! -name '*.ranges' | wc -l)" 0 \
    "A left no partial file behind"
done_testing
