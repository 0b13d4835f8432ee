#!/bin/sh
# modelcache pull from the HF-compatible test origin: the same store and
# hub view as an import; faults recovered or failed with the right exit
# code, never a wrong or partial file published; the token never reaches
# the CDN host; ten pulls at once fetch each blob once.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/repo" pulled
openssl enc -aes-128-ctr -nosalt -pass pass:big </dev/zero 2>/dev/null |
    head -c $((12 * 1024 * 1024)) >"$T/repo/sub/big.safetensors"
start_origin --repo org/demo="$T/repo" --page-size 2 --token sekrit
ok $? "the test origin starts"
export HF_TOKEN=sekrit

run_ok "pull a repo with nested paths" mc pull --chunk-size 1MiB org/demo
grep -q "pulled org/demo@main" "$T/out"
ok $? "pull reports what it pulled"
run_ok "verify the pulled model" mc verify
run_ok "fsck is clean" mc fsck
run_ok "pulling a model already present" mc pull org/demo
grep -q " 0 B from the origin" "$T/out"
ok $? "takes nothing from the origin"

# The same files imported under another name give the same files and view.
run_ok "import the same directory" mc import "$T/repo" org/imported
files() {
	mc show --json "$1" | json '.[0].file_list | map([.path, .size,
	    .sha256, .etag] | join(" ")) | join("\\n")'
}
is "$(files org/demo)" "$(files org/imported)" \
    "pull and import record the same paths, sizes, digests and etags"
view() {
	(cd "$STORE/hub/$1/snapshots/"* && find . -printf '%P %y %l\n' | sort)
}
is "$(view models--org--demo)" "$(view models--org--imported)" \
    "pull and import build the same snapshot tree and links"
is "$(stats '.auth_seen.localhost // 0')" 0 "the token never reached the CDN host"
[ "$(stats '.auth_seen["127.0.0.1"] // 0')" -gt 0 ]
ok $? "the token reached the origin host"

big=$(sha_of "$T/repo/sub/big.safetensors")

# fault KIND DESCRIPTION: re-pull everything through one fault.
repull() {
	rm -rf "$STORE"
	curl -s -X POST "$ORIGIN/_reset" >/dev/null
}

for fault in 'truncate:100000*2' 'status:500*3' 'norange*1' 'badrange*1' \
    'status:503*2' 'corrupt@/cdn/*1' 'status:403@/cdn/*1' \
    'status:503@/api/*2'; do
	start_origin --repo org/demo="$T/repo" --token sekrit --fault "$fault"
	repull
	run_ok "pull recovers from $fault" mc pull --chunk-size 1MiB org/demo
	run_ok "and what it published verifies ($fault)" mc verify
done

start_origin --repo org/demo="$T/repo" --token sekrit \
    --fault 'ratelimit:1*1'
repull
run_ok "pull waits out a 429 with Retry-After" mc pull org/demo
run_ok "and verifies" mc verify

start_origin --repo org/demo="$T/repo" --token sekrit --fault 'corrupt@/cdn/'
repull
run_fails 5 "do not match" "wrong bytes every time: integrity error, exit 5" \
    mc pull --chunk-size 4MiB org/demo
is "$(find "$STORE/blobs" -type f -name "$big" | wc -l)" 0 \
    "the wrong bytes were never published"
is "$(mc ls --json | json 'length')" 0 "no snapshot was published"

start_origin --repo org/demo="$T/repo" --token sekrit --gated manual
repull
run_fails 4 "not granted\\|authorized list" \
    "a gated repo without access: exit 4 with the origin's message" \
    mc pull org/demo
HF_TOKEN=wrong run_fails 4 "Invalid credentials\\|needs a token" \
    "a wrong token: exit 4" mc pull org/demo
run_fails 3 "no revision 'nope'" "an unknown revision: exit 3" \
    mc pull org/demo@nope
run_fails 4 "does not exist or needs a token" "an unknown repo: exit 4" \
    mc pull org/absent

start_origin --repo org/demo="$T/repo" --token sekrit
repull
run_ok "--include keeps the matching files" \
    mc pull --include '*.json' --include '*.txt' org/demo
is "$(mc show --json org/demo | json '.[0].file_list | map(.path) | join(" ")')" \
    "config.json merges.txt sub/dir/notes.txt" "only those files are pulled"
run_ok "a second filtered pull of the same commit" \
    mc pull --include '*.safetensors' org/demo
is "$(mc show --json org/demo | json '.[0].file_list | length')" 5 \
    "adds its files to the snapshot, keeping the first ones"
run_ok "fsck is clean after the two filtered pulls" mc fsck

repull
pids=
for i in $(seq 1 10); do
	mc pull --chunk-size 1MiB org/demo >"$T/p$i.out" 2>&1 &
	pids="$pids $!"
done
failed=0
for p in $pids; do wait "$p" || failed=$((failed + 1)); done
is "$failed" 0 "ten pulls of one model at once all succeed"
is "$(stats ".bytes_by_sha256[\"$big\"]")" $((12 * 1024 * 1024)) \
    "the large blob was served exactly once"
is "$(stats '.bytes')" "$(find "$T/repo" -type f -printf '%s\n' |
    awk '{ s += $1 } END { print s }')" "every blob was served exactly once"
run_ok "fsck is clean after them" mc fsck

# The token from the file HF_TOKEN_PATH names, when HF_TOKEN is unset.
printf 'sekrit\n' >"$T/token"
repull
run_fails 4 "needs a token" "no token at all: exit 4" \
    env -u HF_TOKEN "$MC" pull org/demo
run_ok "the token read from HF_TOKEN_PATH" \
    env -u HF_TOKEN HF_TOKEN_PATH="$T/token" "$MC" pull org/demo
done_testing
