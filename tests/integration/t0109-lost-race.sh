#!/bin/sh
# The pull's lost race: the file it hashed is no longer at its partial's
# name, so it publishes nothing of its own and looks again.  Pull A (on a
# node of its own) stops itself (SIGSTOP) just after verifying its file,
# before publishing it.  Pull B takes A's stale claim over, finds no saved
# range state (removed, as if A had not saved any yet), makes its own
# partial file, and is killed (SIGKILL) once it finished its first range:
# another, unfinished file than A's is now at tmp/partial.<sha>, and no
# blob.  A goes on (SIGCONT): its publish finds the name is not its file,
# publishes nothing, waits for B's stale claim, resumes from B's partial,
# fetches the rest and publishes that.  Publishing whatever is at the
# partial's name (as before the publish by descriptor) publishes B's
# unfinished file under the digest; publishing A's own file would carry
# the write made into it while A was stopped.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/nodes.sh"

nodes_check
MODELCACHE_STALE_AFTER=2
export MODELCACHE_STALE_AFTER

big_model t0109
ok $? "the test origin starts"

# Only the big file: its "pull-verified" is the process's first.
stopped_pull pull-verified 1 --include model.safetensors org/big
ok $? "pull A stalls (SIGSTOP) after verifying its file, before publishing"
ok "$([ -n "$afd" ]; echo $?)" "A has its partial file open ($afd)"

rm -f "$STORE/tmp/partial.$big.ranges"
MODELCACHE_CRASH_POINT=pull-range-done MODELCACHE_CRASH_AT=1 \
    mc pull --chunk-size 64KiB --include model.safetensors org/big \
    >"$T/b.out" 2>"$T/b.err"
is "$?" 137 "pull B takes the claim over and is killed after one range"
ok "$([ ! -e "$blob" ]; echo $?)" "no blob is published yet"
p_ino=$(stat -c %i "$STORE/tmp/partial.$big")
ok "$([ "$p_ino" != "$a_ino" ]; echo $?)" \
    "B's file, not A's, is at the partial's name ($p_ino, A's $a_ino)"
# A write into A's file, verified already: were A's file published, the
# blob would carry it.
printf 'bytes of another holder' |
    dd of="$afd" bs=1 seek=70000 conv=notrunc 2>/dev/null
ok $? "a write into A's verified file"

kill -CONT "$A"
wait "$AU"
ok $? "A, continued, completes"
is "$(json '.claims_lost' <"$T/a.out")" 1 \
    "A reports that it lost the race and published nothing of its own"
ok "$([ "$(stat -c %i "$blob")" != "$a_ino" ]; echo $?)" \
    "the published blob is not A's file"
is "$(sha_of "$blob")" "$big" "the blob's digest matches its name"
is "$(stat -c %s "$blob")" 1048576 "and its size"
run_ok "verify is clean" mc verify org/big
run_ok "fsck is clean" mc fsck
is "$(find "$STORE/tmp" -mindepth 1 | wc -l)" 0 "tmp/ is empty"
done_testing
