#!/bin/sh
# Corruption: a flipped byte is named by verify and fsck; a lost or garbled
# index is rebuilt from the manifests; bad manifests and refs are found and
# repaired.  Files are the truth, SQLite only the index.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/a" alpha
make_model "$T/b" beta
run_ok "import a" mc import "$T/a" org/alpha
run_ok "import b" mc import --revision v2 "$T/b" org/beta
run_ok "pin b" mc pin org/beta

# The listing as the files define it (last_used is an index-only fact).
listing() {
	mc ls --json | json 'map({repo, commit, revisions, files, size, pinned,
	    source}) | sort_by(.repo)'
}
before=$(listing)

sha=$(sha256sum <"$T/a/model.safetensors" | cut -c1-64)
blob="$STORE/blobs/sha256/$(echo "$sha" | cut -c1-2)/$sha"
chmod u+w "$blob"
printf '\377' | dd of="$blob" bs=1 seek=1000 conv=notrunc 2>/dev/null
chmod 444 "$blob"
run_fails 5 "" "verify exits 5 on a flipped byte" mc verify
grep -q "BAD  org/alpha@.*model.safetensors: content does not match" "$T/out"
ok $? "verify names the bad file"
mc verify --json >"$T/v.json"
is "$(json '.bad | map(.path) | join(",")' <"$T/v.json")" \
    model.safetensors "verify --json lists exactly the bad file"
run_ok "verify of the other model alone passes" mc verify org/beta
run_fails 1 "" "fsck reports the corrupt blob" mc fsck
grep -q "PROBLEM  blob_corrupt" "$T/out"
ok $? "fsck calls it blob_corrupt"
run_ok "fsck --repair" mc fsck --repair
is "$(mc ls --json | json 'map(.repo) | join(",")')" org/beta \
    "the model with the bad blob is removed, not served"
[ ! -e "$blob" ]
ok $? "the corrupt blob left blobs/"
ls "$STORE"/tmp/*.corrupt >/dev/null 2>&1
ok $? "the corrupt blob is kept in tmp/ for a post-mortem"
run_ok "re-import restores it" mc import "$T/a" org/alpha
run_ok "verify passes again" mc verify
is "$(listing)" "$before" "the store lists what it did before"

rm -f "$STORE"/index.db*
run_ok "fsck --repair with the index deleted" mc fsck --repair
grep -q "index_rebuilt" "$T/out"
ok $? "fsck says the index was rebuilt"
is "$(listing)" "$before" "ls shows the same models, revisions and pins"

head -c 8192 /dev/urandom >"$STORE/index.db"
rm -f "$STORE/index.db-wal" "$STORE/index.db-shm"
is "$(listing)" "$before" "a garbage index.db is replaced and rebuilt"
# Never renamed (another process may have it open): the next generation
# is built beside it and named by index.db.gen; the garbage stays.
[ "$(cat "$STORE/index.db.gen")" = 1 ] && [ -s "$STORE/index.db.1" ] &&
    [ -s "$STORE/index.db" ]
ok $? "the garbage index stays in place, a new generation beside it"

m=$(echo "$STORE"/manifests/models--org--alpha/*.json)
chmod u+w "$m"
printf '{"format":1,"type":"model","repo":"org/alpha","source":"x",
"commit":"%s","revisions":[],"files":[{"path":"../../etc/passwd",
"size":1,"sha256":"%s","etag":"%s"}]}' \
    "$(basename "$m" .json)" "$sha" "$sha" >"$m"
run_fails 1 "" "fsck finds a manifest with an escaping path" mc fsck
grep -q "manifest_bad.*\.\." "$T/out"
ok $? "fsck says why the manifest is bad"
run_ok "fsck --repair quarantines it" mc fsck --repair
run_ok "fsck is clean after the repair" mc fsck
is "$(mc ls --json | json 'map(.repo) | join(",")')" org/beta \
    "the model with the bad manifest is no longer listed"
ls "$STORE"/tmp/quarantine.*.manifest >/dev/null 2>&1
ok $? "the bad manifest is kept in tmp/ for a post-mortem"
run_ok "re-import" mc import "$T/a" org/alpha

cp "$m" "$STORE/manifests/models--org--alpha/misnamed.json"
run_fails 1 "" "fsck finds a manifest under the wrong name" mc fsck
grep -q "manifest_bad.*misnamed.json: the file name does not match" "$T/out"
ok $? "fsck says the name does not match"
run_ok "fsck --repair quarantines it" mc fsck --repair

ref="$STORE/hub/models--org--beta/refs/v2"
printf '%s\n' "$(cat "$ref")" >"$ref"
run_fails 1 "" "fsck finds a ref with a newline" mc fsck
grep -q "hub_ref_bad" "$T/out"
ok $? "fsck calls it hub_ref_bad"
run_ok "fsck --repair rewrites it" mc fsck --repair
is "$(stat -c %s "$ref")" 40 "the ref is 40 bytes again"

link=$(find "$STORE/hub/models--org--beta/snapshots" -name notes.txt)
rm "$link"
run_fails 1 "" "fsck finds a half-built snapshot" mc fsck
grep -q "hub_entry_missing" "$T/out"
ok $? "fsck calls it hub_entry_missing"
run_ok "fsck --repair relinks it" mc fsck --repair
[ -L "$link" ] && cmp -s "$link" "$T/b/sub/dir/notes.txt"
ok $? "the link is back and reads the right bytes"

mkdir -p "$STORE/hub/models--org--stray/snapshots/$(printf 'a%.0s' $(seq 1 40))"
run_ok "fsck counts a snapshot no manifest describes as residue" mc fsck
grep -q "hub_snapshot_stray" "$T/out"
ok $? "fsck calls it hub_snapshot_stray"
run_ok "fsck --repair removes it" mc fsck --repair
[ ! -e "$STORE/hub/models--org--stray" ]
ok $? "the stray folder is gone"
mc fsck --json >"$T/f.json"
is "$(json '.issues | length' <"$T/f.json")" 0 \
    "fsck is clean at the end (quarantined evidence is not residue)"
is "$(listing)" "$before" "and the store lists what it did at the start"
done_testing
