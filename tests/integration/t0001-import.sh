#!/bin/sh
# Import → ls/show → verify → rm round trip, revisions, pins and du.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/m1" one
make_model "$T/m2" two
cp "$T/m1/sub/weights.bin" "$T/m2/sub/weights.bin"	# shared by both

run_ok "import a directory" mc import "$T/m1" org/name
grep -q "imported org/name@main: 5 files" "$T/out"
ok $? "import reports the model and its file count"

mc ls --json >"$T/ls.json"
is "$(json 'length' <"$T/ls.json")" 1 "ls lists one snapshot"
is "$(json '.[0].repo' <"$T/ls.json")" org/name "ls names the repo"
is "$(json '.[0].revisions | join(",")' <"$T/ls.json")" main \
    "the snapshot carries revision main"
is "$(json '.[0].files' <"$T/ls.json")" 5 "ls counts the files"
want=$(find "$T/m1" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
is "$(json '.[0].size' <"$T/ls.json")" "$want" "ls sums the file sizes"
commit=$(json '.[0].commit' <"$T/ls.json")
echo "$commit" | grep -Eq '^[0-9a-f]{40}$'
ok $? "the commit is 40 hex digits"
is "$(json '.[0].source' <"$T/ls.json")" "file://$(realpath "$T/m1")" \
    "the source records the directory"

mc ls >"$T/ls.txt"
grep -q "^org/name  *main  *${commit%"${commit#????????????}"}" "$T/ls.txt"
ok $? "ls prints a human table row"

mc show --json org/name >"$T/show.json"
is "$(json '.[0].file_list | map(.path) | join(" ")' <"$T/show.json")" \
    "config.json merges.txt model.safetensors sub/dir/notes.txt sub/weights.bin" \
    "show lists every file in path order"
is "$(json '.[0].file_list[] | select(.path=="model.safetensors") | .sha256' \
    <"$T/show.json")" "$(sha256sum <"$T/m1/model.safetensors" | cut -c1-64)" \
    "show gives each file's sha256"
run_ok "show by revision name" mc show org/name@main
run_ok "show by commit prefix" mc show "org/name@$(echo "$commit" | cut -c1-10)"
run_ok "show with hf:// prefix" mc show hf://org/name@main

run_ok "verify passes on a fresh import" mc verify
grep -q "verified 5 files.*: 0 bad" "$T/out"
ok $? "verify reports the files it hashed"

run_ok "importing the same files again" mc import "$T/m1" org/name
is "$(mc ls --json | json 'length')" 1 "the same files give the same commit"

run_ok "import another revision name" mc import --revision v1 "$T/m1" org/name
is "$(mc ls --json | json '.[0].revisions | join(",")')" "main,v1" \
    "both revision names point to the commit"

run_ok "import new content under main" mc import "$T/m2" org/name
mc ls --json >"$T/ls2.json"
is "$(json 'length' <"$T/ls2.json")" 2 "two snapshots now"
is "$(json ".[] | select(.commit==\"$commit\") | .revisions | join(\",\")" \
    <"$T/ls2.json")" v1 "main moved away from the old commit"
is "$(cat "$STORE/hub/models--org--name/refs/main")" \
    "$(json '.[] | select(.revisions==["main"]) | .commit' <"$T/ls2.json")" \
    "refs/main names the new commit"
is "$(mc show --json org/name@v1 | json '.[0].commit')" "$commit" \
    "v1 still resolves to the old commit"

run_ok "pin a model" mc pin org/name@v1
is "$(mc ls --json | json ".[] | select(.commit==\"$commit\") | .pinned")" \
    true "ls shows the pin"
run_ok "unpin it" mc unpin org/name@v1
is "$(mc ls --json | json ".[] | select(.commit==\"$commit\") | .pinned")" \
    false "ls shows the unpin"

mc du --json >"$T/du.json"
logical=$(json '.logical' <"$T/du.json")
size=$(json '.size' <"$T/du.json")
is "$logical" "$(json '[.models[].size] | add' <"$T/du.json")" \
    "du's logical size sums the snapshots"
is "$size" "$((logical - $(stat -c %s "$T/m1/sub/weights.bin")))" \
    "du counts a blob shared by two revisions once"

run_ok "rm one revision" mc rm org/name@v1
is "$(mc ls --json | json 'length')" 1 "one snapshot left"
[ ! -e "$STORE/hub/models--org--name/snapshots/$commit" ]
ok $? "its snapshot left the hub view"
[ ! -e "$STORE/hub/models--org--name/refs/v1" ]
ok $? "its ref left the hub view"
blob=$(sha256sum <"$T/m1/model.safetensors" | cut -c1-64)
[ ! -e "$STORE/blobs/sha256/$(echo "$blob" | cut -c1-2)/$blob" ]
ok $? "blobs only it used are deleted"
shared=$(sha256sum <"$T/m1/sub/weights.bin" | cut -c1-64)
[ -e "$STORE/blobs/sha256/$(echo "$shared" | cut -c1-2)/$shared" ]
ok $? "a blob the remaining revision uses is kept"

run_ok "rm the last revision" mc rm org/name
is "$(mc ls --json | json 'length')" 0 "the store is empty"
[ ! -e "$STORE/hub/models--org--name" ]
ok $? "the repo folder left the hub view"
is "$(find "$STORE/blobs" -type f | wc -l)" 0 "no blob is left"
is "$(find "$STORE/manifests" -type f | wc -l)" 0 "no manifest is left"
run_ok "fsck is clean after the round trip" mc fsck
done_testing
