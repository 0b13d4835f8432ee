#!/bin/sh
# Two "nodes" on one plain local store, each with its own index
# (MODELCACHE_INDEX): each sees what the other imports and removes, at its
# next command, with no error, no lost row and no stale answer; a corrupt
# private index is rebuilt beside the old one and switched.
. "$top_srcdir/tests/lib/tap.sh"

mkdir -p "$T/a" "$T/b"
A="env MODELCACHE_INDEX=$T/a/index.db"
B="env MODELCACHE_INDEX=$T/b/index.db"
repos() {	# repos NODE: the repos its ls lists, sorted
	$1 "$MC" ls --json | json 'map(.repo) | sort | join(",")'
}

for i in 1 2 3; do make_model "$T/m$i" "seed$i"; done
run_ok "node a imports org/one" $A "$MC" import "$T/m1" org/one
is "$(repos "$B")" "org/one" "node b's own index lists it"
run_ok "node b imports org/two" $B "$MC" import "$T/m2" org/two
is "$(repos "$A")" "org/one,org/two" "node a's lists both"
is "$($A "$MC" show --json org/two | json '.[0].files')" 5 \
    "node a shows the other node's model whole"
[ ! -e "$STORE/index.db" ]
ok $? "no shared index.db was made in the store"
[ -s "$T/a/index.db" ] && [ -s "$T/b/index.db" ]
ok $? "each node wrote only its own index"
run_ok "node a removes org/two" $A "$MC" rm org/two
is "$(repos "$B")" "org/one" "node b no longer lists it"
run_fails 3 "" "node b cannot show it" $B "$MC" show org/two
run_ok "node b imports org/three" $B "$MC" import "$T/m3" org/three
run_ok "node a pins it" $A "$MC" pin org/three
is "$($B "$MC" ls --json | json 'map(select(.repo == "org/three")) |
    .[0].pinned')" true "node b sees the pin (the manifest changed)"
run_fails 7 "pinned" "gc on node b evicts the other's models, not the pin" \
    $B "$MC" gc --max-size 0
is "$(repos "$A")" "org/three" "gc on b evicted what a imported, kept the pin"
run_ok "verify on a" $A "$MC" verify
run_ok "fsck on b" $B "$MC" fsck

# A corrupt private index: rebuilt beside it, never renamed.
head -c 8192 /dev/urandom >"$T/a/index.db"
cp "$T/a/index.db" "$T/a/bad"
is "$(repos "$A")" "org/three" "node a rebuilt its corrupt index from the files"
cmp -s "$T/a/index.db" "$T/a/bad"
ok $? "the corrupt file was left in place, not renamed or rewritten"
is "$(cat "$T/a/index.db.gen")" 1 "index.db.gen names the new generation"
[ -s "$T/a/index.db.1" ]
ok $? "the new generation was built beside it"

# A node id that could escape nodes/ is refused.
run_fails 2 "index" "a bad node id is refused" \
    env MODELCACHE_NODE=../x "$MC" ls
done_testing
