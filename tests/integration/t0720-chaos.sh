#!/bin/sh
# The crash and fault campaign (tests/chaos/campaign), short: a few dozen
# SIGKILLs of pulls (CLI and daemon), imports and daemons at their fault
# points and after random delays, a daemon stopped past the stale limit,
# and pulls from an origin with faults, on one store shared by two daemons
# (node b in its own UTS and PID namespace where unshare works), with
# leases held throughout; then every invariant of the store.  The
# campaign's summary line must say "violations 0".
#
# Kills of gc and rm, and models that share a blob, run apart so that a
# failure names them.  The scenarios that today's code fails are run as
# TODO (they do not fail the suite): clock skew (a gc whose clock runs
# 120 s ahead evicts leased models).  Move them to a plain run once they
# pass.  CHAOS_SEED replays a run; the full campaign is in HACKING.md.
. "$top_srcdir/tests/lib/tap.sh"

command -v python3 >/dev/null || { echo "1..0 # SKIP no python3"; exit 0; }
SAFE=pull-point,pull-kill,import-point,import-kill,daemon-point,daemon-kill,stall,fault
GC=gc-point,gc-kill
TODO_SKEW=skew
seed=${CHAOS_SEED:-720}

# campaign DESCRIPTION [TODO-REASON] ARGS...: one short campaign, one test
# point; its violations and summary as diagnostics.
campaign() {
	desc=$1 todo=$2
	shift 2
	TMPDIR=$T python3 "$top_srcdir/tests/chaos/campaign" --seed "$seed" \
	    --check-every 8 "$@" >"$T/campaign.out" 2>&1
	rc=$?
	line=$(tail -n 1 "$T/campaign.out")
	case "$line" in
	kills\ *", violations 0") [ "$rc" -eq 0 ] ;;
	*) false ;;
	esac
	r=$?
	if [ -n "$todo" ]; then
		# A short random run may miss the bug: an "ok # TODO" would be
		# an XPASS, which automake counts as a failure.
		tap_n=$((tap_n + 1))
		if [ "$r" -eq 0 ]; then
			echo "ok $tap_n - $desc # SKIP no violation this run;" \
			    "still TODO: $todo"
		else
			echo "not ok $tap_n - $desc # TODO $todo"
		fi
	else
		ok "$r" "$desc"
	fi
	diag "exit $rc, seed $seed" "$(cut -c1-400 "$T/campaign.out")"
}

campaign "kills, stalls and faults: $SAFE" "" \
    --only "$SAFE" --no-shared --kills 30 --seconds 65 --stale 2
kills=$(sed -n 's/^kills \([0-9]*\),.*/\1/p' "$T/campaign.out")
[ "${kills:-0}" -ge 15 ]
ok $? "at least 15 kills (${kills:-none})"
campaign "kills of gc and rm" "" \
    --only "$GC" --no-shared --kills 20 --seconds 15
campaign "kills with models that share a blob" "" \
    --only "pull-point,import-point" --kills 15 --seconds 15
campaign "clock skew of 120 s" "staleness judged by the local clock" \
    --only "$TODO_SKEW" --kills 0 --seconds 15
done_testing
