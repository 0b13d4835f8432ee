#!/bin/sh
# Crash safety: modelcache import is killed with SIGKILL at every durable
# step (injected fault points, src/fault.h) and at random moments; after
# each kill the store must hold no published-but-unverified blob, no
# half-built snapshot, no dangling hub link, and list either the old state
# or the new one.  fsck --repair then leaves it clean and a re-import works.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/a" alpha
make_model "$T/b" beta
cp "$T/a/sub/weights.bin" "$T/b/shared.bin"	# a blob that already exists
printf 'x' >"$T/b/tiny.txt"
mkdir -p "$T/big"
for i in 1 2 3 4; do
	openssl enc -aes-128-ctr -nosalt -pass "pass:big$i" </dev/zero \
	    2>/dev/null | head -c $((8 * 1024 * 1024)) >"$T/big/part$i.bin"
done

run_ok "a base store with one model" mc import "$T/a" org/alpha
cp -a "$STORE" "$T/base"
old=$(mc ls --json | json 'map(.repo + "@" + .commit) | sort | join(" ")')

# Each line: the invariants that must hold right after a kill.
after_kill() {
	# Every blob's bytes match its name.
	bad=$(cd "$STORE/blobs/sha256" &&
	    find . -type f -printf '%f\n' | while read -r h; do
		[ "$(sha256sum <"${h%"${h#??}"}/$h" | cut -c1-64)" = "$h" ] ||
		    echo "$h"
	    done)
	[ -z "$bad" ] || { echo "blob with wrong bytes: $bad"; return 1; }
	# No symlink in the hub view leads nowhere.
	dangling=$(find "$STORE/hub" -xtype l)
	[ -z "$dangling" ] || { echo "dangling: $dangling"; return 1; }
	# fsck: no problem of any kind (residue of the killed run is allowed).
	mc fsck --json >"$T/fsck.json"
	[ "$(json '.problems' <"$T/fsck.json")" = 0 ] ||
	    { json '.issues[] | select(.residue|not)' <"$T/fsck.json";
	    return 1; }
	# The listing is the old state or the new, never something between.
	now=$(mc ls --json | json 'map(.repo + "@" + .commit) | sort |
	    join(" ")')
	case "$now" in
	"$old" | "$old "* | *" $old") ;;
	*) echo "listing: $now"; return 1 ;;
	esac
	for s in $(mc ls --json | json '.[].dir'); do
		[ -d "$STORE/$s" ] || { echo "listed but missing: $s"; return 1; }
	done
	mc verify >/dev/null || { echo "verify failed"; return 1; }
}

after_repair() {
	mc fsck --repair >/dev/null &&
	    mc fsck --json >"$T/fsck.json" &&
	    [ "$(json '.issues | length' <"$T/fsck.json")" = 0 ] ||
	    { echo "fsck after repair:"; cat "$T/fsck.json"; return 1; }
	mc import "$1" "$2" >/dev/null || { echo "re-import failed"; return 1; }
	mc verify >/dev/null || { echo "verify after re-import failed"; return 1; }
	mc fsck >/dev/null || { echo "fsck after re-import"; return 1; }
}

# crash_run N DIR NAME: import DIR as NAME, killed at fault point N.
crash_run() {
	rm -rf "$STORE" && cp -a "$T/base" "$STORE"
	MODELCACHE_CRASH_AT=$1 "$MC" import "$2" "$3" >/dev/null 2>&1
	rc=$?
	if [ "$rc" -ne 137 ]; then
		ok 1 "kill at point $1 of importing $3"
		diag "import exited $rc, not killed"
		return
	fi
	msg=$(after_kill 2>&1 && after_repair "$2" "$3" 2>&1)
	ok $? "kill at point $1 of importing $3: consistent, repaired, redone"
	[ -n "$msg" ] && diag "$msg"
}

# points DIR NAME: how many fault points an import passes.
points() {
	rm -rf "$STORE" && cp -a "$T/base" "$STORE"
	MODELCACHE_CRASH_TRACE=1 "$MC" import "$1" "$2" 2>&1 >/dev/null |
	    grep -c '^fault point'
}

runs=0
for scenario in "$T/b org/beta" "$T/b org/alpha" "$T/big org/big"; do
	# shellcheck disable=SC2086
	set -- $scenario
	n=$(points "$1" "$2")
	[ "$n" -gt 10 ]
	ok $? "importing $2 passes $n fault points"
	for i in $(seq 1 "$n"); do
		crash_run "$i" "$1" "$2"
		runs=$((runs + 1))
	done
done

# Random moments: kill -9 a running import of 32 MiB after 0 to 200 ms.
for i in $(seq 1 12); do
	rm -rf "$STORE" && cp -a "$T/base" "$STORE"
	"$MC" import "$T/big" org/big >/dev/null 2>&1 &
	pid=$!
	delay=$(awk -v s="$i" 'BEGIN { srand(s); printf "%.3f", rand() / 5 }')
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	msg=$(after_kill 2>&1 && after_repair "$T/big" org/big 2>&1)
	ok $? "kill -9 after ${delay}s: consistent, repaired, redone"
	[ -n "$msg" ] && diag "$msg"
	runs=$((runs + 1))
done
[ "$runs" -ge 50 ]
ok $? "at least 50 kills ($runs)"
done_testing
