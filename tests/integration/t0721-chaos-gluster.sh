#!/bin/sh
# The crash and fault campaign (tests/chaos/campaign --gluster), short, on
# a GlusterFS pair: one volume (the package's caching defaults) mounted
# twice with FUSE, one mount per node, node b in its own UTS and PID
# namespace, so that each node keeps its own index (nodes/NODE/index.db)
# and judges the other's leases by heartbeats.  A dozen SIGKILLs of pulls,
# imports and daemons at their fault points and after random delays, a
# daemon stopped past the stale limit, a skewed clock and pulls from
# origins with faults; then every invariant of the store, checked on the
# mounts.  The summary line must say "violations 0".  Runs with
# MODELCACHE_TEST_NODES=1 only, as the other GlusterFS tests (t071N);
# CHAOS_SEED replays a run.
. "$top_srcdir/tests/lib/tap.sh"

[ "${MODELCACHE_TEST_NODES:-}" = 1 ] || {
	echo "1..0 # SKIP the two-node tests run with MODELCACHE_TEST_NODES=1"
	exit 0
}
command -v python3 >/dev/null || { echo "1..0 # SKIP no python3"; exit 0; }
seed=${CHAOS_SEED:-721}
SCEN=pull-point,pull-kill,import-point,daemon-point,daemon-kill,stall,skew,fault

TMPDIR=$T python3 "$top_srcdir/tests/chaos/campaign" --gluster \
    --seed "$seed" --only "$SCEN" --no-shared --kills 12 --seconds 45 \
    --check-every 6 >"$T/campaign.out" 2>&1
rc=$?
if [ "$rc" -eq 77 ]; then
	echo "1..0 # SKIP $(grep -m1 'gluster: skip:' "$T/campaign.out" |
	    sed 's/^gluster: skip: //')"
	exit 0
fi
line=$(tail -n 1 "$T/campaign.out")
case "$line" in
kills\ *", violations 0") [ "$rc" -eq 0 ] ;;
*) false ;;
esac
r=$?
ok "$r" "kills, stalls, skews and faults on GlusterFS: $SCEN"
kills=$(sed -n 's/^kills \([0-9]*\),.*/\1/p' "$T/campaign.out")
[ "${kills:-0}" -ge 6 ]
ok $? "at least 6 kills (${kills:-none})"
diag "exit $rc, seed $seed" "$(cut -c1-400 "$T/campaign.out")"
! grep -q " $T/" /proc/mounts
ok $? "the campaign unmounted its volume"
done_testing
