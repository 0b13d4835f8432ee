#!/bin/sh
# modelcache pull, the edges t0101 leaves out: a stalled CDN transfer that
# resumes; a listed file the origin answers 404; datasets; tags and full
# commit ids; a relative redirect; 429 with RateLimit on a file's HEAD and
# on the API; --exclude; a range that stalls for good is hedged; a 429
# met by one pull makes another pull on the store wait too; http_proxy.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/repo" edges
mkdir -p "$T/ds/data"
printf 'a,b\n1,2\n' >"$T/ds/data/train.csv"
openssl enc -aes-128-ctr -nosalt -pass pass:shard </dev/zero 2>/dev/null |
    head -c 200000 >"$T/ds/data/shard.bin"
export HF_TOKEN=sekrit

st=$(sha_of "$T/repo/model.safetensors")
wb=$(sha_of "$T/repo/sub/weights.bin")
openssl enc -aes-128-ctr -nosalt -pass pass:big </dev/zero 2>/dev/null |
    head -c $((4 * 1024 * 1024)) >"$T/big.safetensors"

# origin ARGS...: a fresh origin with org/demo (and ARGS), an empty store.
origin() {
	start_origin --repo org/demo="$T/repo" --token sekrit "$@"
	ok $? "the test origin starts ($*)"
	rm -rf "$STORE"
}

# blob SHA256: the path of that blob in the store, if it is there.
blob() {
	find "$STORE/blobs" -type f -name "$1" | head -1
}

# took CMD...: run CMD like run_ok, and set SECS to how long it took.
took() {
	t0=$(date +%s.%N)
	run_ok "$@"
	SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
}

# 1. A CDN transfer that stalls for 2 s mid-body, then carries on: under
# the stall limit (1 KiB/s for 30 s), so the bytes arrive (on that
# connection, or on a hedge if the machine is slow) and are right.
origin --fault "stall:2@/cdn/$st*1"
run_ok "pull through a 2 s stall on a CDN range" \
    mc pull --chunk-size 64KiB org/demo
is "$(stats ".faults[\"stall:2@/cdn/$st*1\"]")" 1 "the stall happened"
run_ok "what it published verifies" mc verify
b=$(blob "$st")
is "$(test -n "$b" && sha_of "$b")" "$st" \
    "the stalled blob has the right SHA-256"

# 2. A listed file that the origin then says is not there.
origin --fault 'status:404@sub/dir/notes.txt'
run_fails 3 "sub/dir/notes.txt" \
    "a listed file answered 404: exit 3, naming the file" mc pull org/demo
grep -q "EntryNotFound" "$T/err" && grep -q "Entry not found" "$T/err"
ok $? "the message carries the origin's X-Error-Code and X-Error-Message"
is "$(mc ls --json | json 'length')" 0 "no snapshot was published"
is "$(find "$STORE/hub" -path '*/refs/*' 2>/dev/null | wc -l)" 0 \
    "no ref was written"
run_ok "fsck is clean after the failed pull" mc fsck

# 3. A dataset, beside a model of the same name with other files.
origin --dataset org/data="$T/ds" --repo org/data="$T/repo"
run_ok "pull a dataset" mc pull hf://datasets/org/data
is "$(mc show --json hf://datasets/org/data | json '.[0].type')" dataset \
    "show says it is a dataset"
is "$(mc show --json hf://datasets/org/data |
    json '.[0].file_list | map(.path) | join(" ")')" \
    "data/shard.bin data/train.csv" "with the dataset's files"
dcommit=$(curl -s -H "Authorization: Bearer sekrit" \
    "$ORIGIN/api/datasets/org/data/revision/main" | json .sha)
dsnap="$STORE/hub/datasets--org--data/snapshots/$dcommit"
cmp -s "$dsnap/data/train.csv" "$T/ds/data/train.csv" &&
    cmp -s "$dsnap/data/shard.bin" "$T/ds/data/shard.bin"
ok $? "the hub view is under hub/datasets--org--data/, with its bytes"
is "$(cat "$STORE/hub/datasets--org--data/refs/main" 2>/dev/null)" \
    "$dcommit" "refs/main of the dataset names its commit"
is "$(find "$STORE/hub" -maxdepth 1 -name 'models--*' | wc -l)" 0 \
    "the model of the same name was not touched"
run_ok "verify the dataset" mc verify

# 4. A tag, then the full commit id.
origin --tag v1=main
commit=$(curl -s -H "Authorization: Bearer sekrit" \
    "$ORIGIN/api/models/org/demo/revision/main" | json .sha)
run_ok "pull by a tag" mc pull org/demo@v1
is "$(cat "$STORE/hub/models--org--demo/refs/v1" 2>/dev/null)" "$commit" \
    "refs/v1 holds the tag's 40-hex commit"
is "$(mc show --json org/demo | json '.[0].commit + " " +
    (.[0].revisions | join(","))')" "$commit v1" \
    "the snapshot is the commit, under revision v1"
run_ok "verify what the tag pulled" mc verify
rm -rf "$STORE"
curl -s -X POST "$ORIGIN/_reset" >/dev/null
run_ok "pull by the full commit id" mc pull "org/demo@$commit"
is "$(mc show --json org/demo | json '.[0].commit')" "$commit" \
    "the snapshot is that commit"
is "$(stats '.requests | keys | map(select(test("/revision/"))) | length')" \
    0 "a commit id is not resolved with the API"
is "$(find "$STORE/hub/models--org--demo/refs" -type f 2>/dev/null | wc -l)" 0 \
    "no ref is written for a commit id"
run_ok "verify what the commit pulled" mc verify

# 5. A relative Location.  The CDN host name is one nothing listens on, so
# only a Location resolved against the origin reaches the bytes.
origin --relative-redirects --cdn-host 127.0.0.2
case "$(curl -s -o /dev/null -D - -I -H "Authorization: Bearer sekrit" \
    "$ORIGIN/org/demo/resolve/main/model.safetensors" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')" in
"/cdn/$st?"*) ok 0 "the origin redirects with a path-only Location" ;;
*) ok 1 "the origin redirects with a path-only Location" ;;
esac
run_ok "pull through relative redirects" mc pull --chunk-size 64KiB org/demo
is "$(stats ".bytes_by_sha256[\"$st\"]")" 300000 \
    "the LFS bytes came from the origin's own host"
run_ok "and what it published verifies" mc verify

# 6. 429 with RateLimit (r=0;t=SECS) and Retry-After: on a file's HEAD,
# and on the API.  The pause is at least what the headers say.
origin --fault 'ratelimit:1@/resolve/*1'
took "pull waits out a 429 on a file's HEAD" mc pull org/demo
is "$(stats '.faults["ratelimit:1@/resolve/*1"]')" 1 "the 429 was sent"
awk -v s="$SECS" 'BEGIN { exit !(s >= 1) }'
ok $? "and the pull paused for it ($SECS s)"
run_ok "and verifies" mc verify
origin --fault 'ratelimit:1@/api/*1'
took "pull waits out a 429 on the API" mc pull org/demo
is "$(stats '.faults["ratelimit:1@/api/*1"]')" 1 "the 429 was sent"
awk -v s="$SECS" 'BEGIN { exit !(s >= 1) }'
ok $? "and the pull paused for it ($SECS s)"
run_ok "and verifies" mc verify

# 7. --exclude.
origin
run_ok "pull with --exclude '*.bin'" mc pull --exclude '*.bin' org/demo
is "$(mc show --json org/demo | json '.[0].file_list | map(.path) |
    join(" ")')" "config.json merges.txt model.safetensors sub/dir/notes.txt" \
    "every file but the .bin is in the snapshot"
is "$(find "$STORE/hub" -name '*.bin' | wc -l)" 0 \
    "no .bin file is in the hub view"
is "$(stats ".bytes_by_sha256[\"$wb\"] // 0")" 0 \
    "the .bin file was never fetched"
run_ok "verify the filtered pull" mc verify

# 8. A range that stalls for a minute: once every other range is in, it is
# asked again on a fresh connection (a hedge), long before the 30 s stall
# limit would give up on it.
big=$(sha_of "$T/big.safetensors")
cp "$T/big.safetensors" "$T/repo/sub/big.safetensors"
origin --fault "stall:60@/cdn/$big*1"
run_ok "pull through a range that stalls for good" \
    mc pull --json --chunk-size 1MiB org/demo
[ "$(json '.hedged_ranges' <"$T/out")" -ge 1 ]
ok $? "the stalled range was hedged"
is "$(stats ".faults[\"stall:60@/cdn/$big*1\"]")" 1 "the stall happened"
b=$(blob "$big")
is "$(test -n "$b" && sha_of "$b")" "$big" "the hedged blob is right"
[ "$(stats ".bytes_by_sha256[\"$big\"]")" -lt $((2 * 4 * 1024 * 1024)) ]
ok $? "the hedge asked only for what was missing"
run_ok "and verifies" mc verify

# 9. A 429 met by one pull is noted in the store: another pull, of another
# model from the same host, waits for it instead of asking at once.
mkdir -p "$T/other"
printf '{"other":1}' >"$T/other/config.json"
origin --repo org/other="$T/other" --fault 'ratelimit:6@/resolve/*1'
mc pull org/demo >"$T/first.out" 2>&1 &
first=$!
i=0
while [ -z "$(find "$STORE/tmp" -name 'ratelimit.*' 2>/dev/null)" ] &&
    [ $i -lt 1000 ] && kill -0 "$first" 2>/dev/null; do
	i=$((i + 1))
	sleep 0.01
done
ok "$([ -n "$(find "$STORE/tmp" -name 'ratelimit.*')" ]; echo $?)" \
    "the first pull noted the 429 in the store"
run_ok "a second pull on the store" mc pull --json org/other
[ "$(json '.rate_limited_ms' <"$T/out")" -gt 0 ]
ok $? "waited for the rate limit the first one met"
is "$(stats '.faults["ratelimit:6@/resolve/*1"]')" 1 \
    "and got no 429 of its own"
wait "$first"
ok $? "the first pull succeeds after its wait"
run_ok "fsck is clean with the note in tmp/" mc fsck

# 10. The standard proxy variables, which libcurl reads.  The Hub and the
# CDN are on host names that resolve nowhere (.invalid): only through the
# proxy that http_proxy names (the origin, which serves requests in
# absolute form as a forward proxy would) does the pull reach them.  The
# variables are set in the pull's environment only (env), and every other
# proxy variable is taken out of it, so none reaches a later command.
# The Hub is plain http on a host that is not loopback, so the token is
# never sent there (t0111): this origin needs none, and the pull has none.
start_origin --repo org/demo="$T/repo" --cdn-host cdn.invalid
ok $? "the test origin starts (no token, --cdn-host cdn.invalid)"
rm -rf "$STORE"
hub="http://hub.invalid:${ORIGIN##*:}"
no_proxies() {	# no_proxies CMD...: CMD without any proxy variable
	env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY \
	    -u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY -u HF_TOKEN "$@"
}
run_ok "pull through http_proxy, the Hub and CDN hosts unresolvable" \
    no_proxies http_proxy="$ORIGIN" HF_ENDPOINT="$hub" "$MC" pull org/demo
run_ok "what came through the proxy verifies" mc verify
[ "$(stats '.proxied')" -gt 0 ]
ok $? "the origin served the pull as a proxy"
[ "$(stats '.proxied_hosts["hub.invalid"] // 0')" -gt 0 ]
ok $? "with requests for the Hub's host"
[ "$(stats '.proxied_hosts["cdn.invalid"] // 0')" -gt 0 ]
ok $? "and for the CDN's host"
is "$(stats '.proxied')" "$(stats '[.requests[]] | add')" \
    "every request of the pull came through the proxy"
before=$(store_state)
asked=$(stats '[.requests[]] | add')
run_fails 6 "hub.invalid" \
    "without http_proxy the same pull cannot resolve: exit 6" no_proxies \
    HF_ENDPOINT="$hub" "$MC" pull org/demo
is "$(stats '[.requests[]] | add')" "$asked" "and it asked the origin nothing"
is "$(store_state)" "$before" "and left the store unchanged"

# 11. A pull waiting for a blob another process fetches follows that
# process's progress (the finished ranges it records beside its partial).
origin --fault "slow:300000@/cdn/$big*3"
mc pull --chunk-size 1MiB org/demo >"$T/fetcher.out" 2>&1 &
fetcher=$!
i=0
while ! [ "$(cat "$STORE/tmp/partial.$big.ranges" 2>/dev/null |
    wc -l)" -ge 2 ] &&
    [ $i -lt 1000 ] && kill -0 "$fetcher" 2>/dev/null; do
	i=$((i + 1))
	sleep 0.01
done
run_ok "a second pull of the model while the first fetches it" \
    mc pull --json --chunk-size 1MiB org/demo
waiting=$(json -c "select(.event == \"progress\") | .active[] |
    select(.path == \"sub/big.safetensors\" and .state == \"waiting\") |
    .done_bytes" <"$T/err" | sort -n | tail -1)
[ "${waiting:-0}" -ge $((1024 * 1024)) ]
ok $? "its progress showed the other's finished ranges (${waiting:-none})"
is "$(json '[.bytes_origin, .bytes_reused == .bytes_total] | join(" ")' \
    <"$T/out")" "0 true" "and it fetched nothing, reusing what the other did"
wait "$fetcher"
ok $? "the first pull succeeds"
done_testing
