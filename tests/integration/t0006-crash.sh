#!/bin/sh
# Crash safety: modelcache import is killed with SIGKILL at every durable
# step (injected fault points, src/fault.h) and at random moments; after
# each kill the store must hold no published-but-unverified blob, no
# half-built snapshot, no dangling hub link, and list either the old state
# or the new one.  fsck --repair then leaves it clean and a re-import works.
# Then rm and gc are killed at each of their fault points the same way, and
# rm must keep a blob that a published but not yet indexed snapshot uses.
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

# Removal: rm and gc killed at each of their fault points.  The manifest
# is their commit point: what is left is the old state, or the new one with
# residue (a view or an index row without a manifest, unreferenced blobs),
# never a problem; the next rm or gc, then fsck --repair, finish it.
rm -rf "$STORE" && cp -a "$T/base" "$STORE"
run_ok "a store of two models sharing a blob" mc import "$T/b" org/beta
cp -a "$STORE" "$T/base2"
two=$(mc ls --json | json 'map(.repo + "@" + .commit) | sort | join(" ")')
beta=$(mc ls --json | json 'map(select(.repo == "org/beta"))[0] |
    .repo + "@" + .commit')

# The snapshots that have a manifest and a view, as ls --json names them.
published() {
	(cd "$STORE" && for m in manifests/*/*.json; do
		[ -f "$m" ] || continue
		f=${m#manifests/}
		d="hub/${f%%/*}/snapshots/$(basename "$m" .json)"
		[ -d "$d" ] && echo "$d"
	done) | sort
}

after_rm_kill() {
	dangling=$(find "$STORE/hub" -xtype l 2>/dev/null)
	[ -z "$dangling" ] || { echo "dangling: $dangling"; return 1; }
	for r in $(find "$STORE/hub" -path '*/refs/*' -type f 2>/dev/null); do
		s="${r%%/refs/*}/snapshots/$(cat "$r")"
		[ -d "$s" ] || { echo "ref $r names a missing snapshot"; return 1; }
	done
	mc fsck --json >"$T/fsck.json"
	[ "$(json '.problems' <"$T/fsck.json")" = 0 ] ||
	    { json '.issues[] | select(.residue|not)' <"$T/fsck.json";
	    return 1; }
	now=$(mc ls --json | json 'map(.repo + "@" + .commit) | sort |
	    join(" ")')
	case "$1:$now" in
	rm:"$two" | rm:"$beta" | gc:"$two" | gc:"$beta" | gc:) ;;
	*) echo "listing after $1: $now"; return 1 ;;
	esac
	[ "$(mc ls --json | json '.[].dir' | sort)" = "$(published)" ] ||
	    { echo "ls is not what the files say"; return 1; }
	mc verify >/dev/null || { echo "verify failed"; return 1; }
}

# finish rm|gc: the next run completes; then the store is clean.
finish() {
	case $1 in
	rm) if mc ls --json | json '.[].repo' | grep -qx org/alpha; then
		mc rm org/alpha >/dev/null || { echo "second rm failed"; return 1; }
	    fi
	    want=$beta ;;
	gc) mc gc --max-size 0 >/dev/null || { echo "second gc failed"; return 1; }
	    want= ;;
	esac
	mc fsck --repair >/dev/null &&
	    mc fsck --json >"$T/fsck.json" &&
	    [ "$(json '.issues | length' <"$T/fsck.json")" = 0 ] ||
	    { echo "fsck after repair:"; cat "$T/fsck.json"; return 1; }
	now=$(mc ls --json | json 'map(.repo + "@" + .commit) | sort |
	    join(" ")')
	[ "$now" = "$want" ] || { echo "listing at the end: $now"; return 1; }
	[ ! -e "$STORE/hub/models--org--alpha" ] ||
	    { echo "org/alpha's view is left"; return 1; }
	mc verify >/dev/null || { echo "verify at the end failed"; return 1; }
}

for op in rm gc; do
	case $op in
	rm) set -- rm org/alpha ;;
	gc) set -- gc --max-size 0 ;;
	esac
	rm -rf "$STORE" && cp -a "$T/base2" "$STORE"
	n=$(MODELCACHE_CRASH_TRACE=1 "$MC" "$@" 2>&1 >/dev/null |
	    grep -c '^fault point')
	[ "$n" -ge 4 ]
	ok $? "$op passes $n fault points"
	for i in $(seq 1 "$n"); do
		rm -rf "$STORE" && cp -a "$T/base2" "$STORE"
		MODELCACHE_CRASH_AT=$i "$MC" "$@" >/dev/null 2>&1
		rc=$?
		if [ "$rc" -ne 137 ]; then
			ok 1 "kill at point $i of $op"
			diag "$op exited $rc, not killed"
			continue
		fi
		msg=$(after_rm_kill "$op" 2>&1 && finish "$op" 2>&1)
		ok $? "kill at point $i of $op: old state or residue, finished"
		[ -n "$msg" ] && diag "$msg"
		runs=$((runs + 1))
	done
done

# A blob that a published snapshot uses stays, even when that snapshot's
# publisher was killed before its index row: rm asks the manifests.
rm -rf "$STORE" && cp -a "$T/base" "$STORE"
n=$(MODELCACHE_CRASH_TRACE=1 "$MC" import "$T/b" org/beta 2>&1 >/dev/null |
    awk -F'[ :]' '/^fault point [0-9]*: hub-published$/ { print $3; exit }')
rm -rf "$STORE" && cp -a "$T/base" "$STORE"
MODELCACHE_CRASH_AT=$n "$MC" import "$T/b" org/beta >/dev/null 2>&1
is "$?" 137 "import of org/beta killed at hub-published (point $n)"
run_ok "rm org/alpha" mc rm org/alpha
shared=$(sha256sum <"$T/a/sub/weights.bin" | cut -c1-64)
[ -f "$STORE/blobs/sha256/$(echo "$shared" | cut -c1-2)/$shared" ]
ok $? "the blob org/beta shares with it stays"
run_ok "verify org/beta" mc verify org/beta
mc fsck --json >"$T/fsck.json"
is "$(json '.problems' <"$T/fsck.json")" 0 "fsck finds no problem"

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
