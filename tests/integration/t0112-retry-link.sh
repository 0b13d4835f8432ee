#!/bin/sh
# What an origin says about time and pages is bounded: a Retry-After or a
# RateLimit reset of any size makes a pull wait at most FETCH_WAIT_MAX_S
# (60 s), and a listing's Link header is read whole, however long, or the
# listing fails: never a model silently shorter than the origin's.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/repo" retrylink
st=$(sha_of "$T/repo/model.safetensors")
unset HF_TOKEN
nfiles=$(find "$T/repo" -type f | wc -l)

origin() {
	start_origin --repo org/demo="$T/repo" "$@"
	ok $? "the test origin starts ($*)"
	rm -rf "$STORE"
}

# 1. A 429 whose Retry-After and RateLimit reset say 10^11 s.  The pause
# every pull on the store takes is noted in tmp/ratelimit.<host> as the
# time it ends: at most 60 s from now, not three thousand years.
origin --fault 'ratelimit:100000000000@/resolve/*1'
mc pull org/demo >"$T/pull.out" 2>&1 &
pid=$!
note() { ls "$STORE"/tmp/ratelimit.* 2>/dev/null | head -1; }
noted() { test -n "$(note)"; }
wait_for noted
ok $? "the 429 is noted for the store"
f=$(note)
wait_for test -s "$f"
until=$(cat "$f")
now=$(date +%s%3N)
left=$((until - now))
[ "$left" -gt 0 ] && [ "$left" -le 60000 ]
ok $? "the pause noted is capped at 60 s (${left} ms left)"
diag "noted: $until, now: $now"
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null

# 2. A listing of one file a page whose Link URLs carry 8,000 more bytes
# (a long cursor): more than the 4 KiB a header was once cut to.  Every
# page is followed: the model has all its files.
origin --page-size 1 --fault 'longlink:8000@/tree/'
run_ok "pull through pages with 8 KB Link headers" mc pull org/demo
[ "$(stats '.faults["longlink:8000@/tree/"]')" -ge $((nfiles - 1)) ]
ok $? "each page but the last had a long Link (one entry a page)"
is "$(mc show --json org/demo | json '.[0].file_list | length')" "$nfiles" \
    "the model has all $nfiles files"
run_ok "and verifies" mc verify

# 3. A next page's URL over the 64 KiB the client follows: the listing
# fails with a clear error, and nothing is published.
origin --page-size 1 --fault 'longlink:70000@/tree/*1'
run_fails 6 "next page link is over" \
    "a 70 KB next link: the pull fails, exit 6, saying so" mc pull org/demo
is "$(mc ls --json | json length)" 0 "no model was published"
is "$(find "$STORE/blobs" -type f 2>/dev/null | wc -l)" 0 "no blob either"

done_testing
