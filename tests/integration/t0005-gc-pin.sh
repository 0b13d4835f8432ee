#!/bin/sh
# gc: least recently used first, pinned models never, distinct blobs counted
# once, --dry-run changes nothing, an unreachable quota is an error.
. "$top_srcdir/tests/lib/tap.sh"

# Three models of known sizes; c shares its big file with b.
mk() {
	mkdir -p "$T/$1"
	printf '{"name":"%s"}' "$1" >"$T/$1/config.json"
	head -c "$2" /dev/zero | tr '\0' "$3" >"$T/$1/model.safetensors"
}
mk a 400000 a
mk b 300000 b
mk c 10 c
cp "$T/b/model.safetensors" "$T/c/weights.bin"

# Imported in this order; ties in last use are broken by name, so the
# least recently used order is a, b, c whatever the clock says.
run_ok "import a" mc import "$T/a" org/a
run_ok "import b" mc import "$T/b" org/b
run_ok "import c" mc import "$T/c" org/c
total=$(mc du --json | json '.size')
is "$total" $((400000 + 300000 + 10 + 3 * 12)) \
    "the store size counts the shared file once"

before=$(store_state)
run_ok "gc --dry-run" mc gc --dry-run --json --max-size 500000
is "$(json '.evicted | map(.repo) | join(",")' <"$T/out")" "org/a" \
    "the plan evicts the least recently used model"
is "$(store_state)" "$before" "--dry-run changes nothing"

run_ok "gc to 350000 bytes" mc gc --json --max-size 350000
is "$(json '.evicted | map(.repo) | join(",")' <"$T/out")" "org/a" \
    "only a goes: evicting b would free nothing that c still uses"
is "$(json '.after' <"$T/out")" $((300000 + 10 + 24)) "the plan's size after"
is "$(mc ls --json | json 'map(.repo) | join(",")')" "org/b,org/c" \
    "b and c remain"
is "$(mc du --json | json '.size')" $((300000 + 10 + 24)) \
    "du agrees with the plan"

run_fails 2 "MODELCACHE_MAX_SIZE" "gc needs a size" mc gc
before=$(store_state)
MODELCACHE_MAX_SIZE=1G run_ok "gc takes its size from MODELCACHE_MAX_SIZE" \
    mc --json gc --dry-run
is "$(json '.max_size' <"$T/out")" 1000000000 "the quota is the variable's"
is "$(store_state)" "$before" "a dry run under the quota changes nothing"

run_ok "pin c" mc --json pin org/c
is "$(json '.[0].pinned' <"$T/out")" true "pin --json reports the pin"
run_fails 7 "above" "gc to 0 cannot evict a pinned model" \
    mc gc --max-size 0
is "$(mc ls --json | json 'map(.repo) | join(",")')" "org/c" \
    "b is evicted, pinned c stays"
sha=$(sha256sum <"$T/b/model.safetensors" | cut -c1-64)
[ -e "$STORE/blobs/sha256/$(echo "$sha" | cut -c1-2)/$sha" ]
ok $? "the blob b shared with c is kept"
run_ok "unpin c" mc unpin org/c
run_ok "gc to 0 evicts everything" mc gc --max-size 0
is "$(mc ls --json | json 'length')" 0 "the store is empty"
is "$(find "$STORE/blobs" -type f | wc -l)" 0 "every blob is deleted"
is "$(ls "$STORE/hub")" "" "the hub view is empty"
run_ok "fsck is clean" mc fsck
run_ok "gc of an empty store" mc gc --max-size 1G
done_testing
