#!/bin/sh
# The crash and fault campaign (tests/chaos/campaign), short: a few dozen
# SIGKILLs of pulls (CLI and daemon), imports and daemons at their fault
# points and after random delays, a daemon stopped past the stale limit,
# and pulls from an origin with faults, on one store shared by two daemons
# (node b in its own UTS and PID namespace where unshare works), with
# leases held throughout; then every invariant of the store.  The
# campaign's summary line must say "violations 0".
#
# The first run also restarts node b's daemon with its clock 120 s ahead
# or behind and runs gc under such a clock (libfaketime), and a second run
# pulls only from origins with the hostile faults (extra bytes, a body
# closed early, a short or too long range, bytes that change between
# requests, a body without end), each racing a daemon's pull.  Kills of gc
# and rm, and models that share a blob, run apart so that a failure names
# them.  CHAOS_SEED replays a run; the full campaign is in HACKING.md.
. "$top_srcdir/tests/lib/tap.sh"

command -v python3 >/dev/null || { echo "1..0 # SKIP no python3"; exit 0; }
# Its skews preload libfaketime, which AddressSanitizer refuses, and its
# timings assume plain binaries: the sanitizer build skips it, as it skips
# the other multi-node tests.
if ldd "$MC" 2>/dev/null | grep -q libasan; then
	echo "1..0 # SKIP a sanitizer build (libfaketime, timings)"
	exit 0
fi
SAFE=pull-point,pull-kill,import-point,import-kill,daemon-point,daemon-kill,stall,skew,fault
HOSTILE="extra:100000 extraclose:100000 short:100000 longrange:100000 mutate
endless:4000000"
GC=gc-point,gc-kill
seed=${CHAOS_SEED:-720}

# campaign DESCRIPTION ARGS...: one short campaign, one test point; its
# violations and summary as diagnostics.
campaign() {
	desc=$1
	shift
	TMPDIR=$T python3 "$top_srcdir/tests/chaos/campaign" --seed "$seed" \
	    --check-every 8 "$@" >"$T/campaign.out" 2>&1
	rc=$?
	line=$(tail -n 1 "$T/campaign.out")
	case "$line" in
	kills\ *", violations 0") [ "$rc" -eq 0 ] ;;
	*) false ;;
	esac
	ok $? "$desc"
	diag "exit $rc, seed $seed" "$(cut -c1-400 "$T/campaign.out")"
}

campaign "kills, stalls, skews and faults: $SAFE" \
    --only "$SAFE" --no-shared --kills 30 --seconds 60 --stale 2
kills=$(sed -n 's/^kills \([0-9]*\),.*/\1/p' "$T/campaign.out")
[ "${kills:-0}" -ge 15 ]
ok $? "at least 15 kills (${kills:-none})"
hostile=
for f in $HOSTILE; do
	hostile="$hostile --fault $f"
done
# shellcheck disable=SC2086
campaign "hostile origins: $(echo $HOSTILE)" \
    --only fault --no-shared --kills 0 --fault-pulls 3 --seconds 60 $hostile
faults=$(sed -n 's/^kills [0-9]*, stalls [0-9]*, faults \([0-9]*\),.*/\1/p' \
    "$T/campaign.out")
[ "${faults:-0}" -ge 3 ]
ok $? "at least 3 pulls from a hostile origin (${faults:-none})"
campaign "kills of gc and rm" \
    --only "$GC" --no-shared --kills 20 --seconds 15
campaign "kills with models that share a blob" \
    --only "pull-point,import-point" --kills 15 --seconds 15
done_testing
