#!/bin/sh
# modelcache pull of https:// URLs served by nginx over HTTP/2, with a test
# CA: the files, checked against their #sha256= digests, make one model that
# verifies; the large file comes in ranges and each byte once, even for two
# pulls at once; an untrusted certificate, wrong bytes, a 404, a URL without
# a digest and an http:// URL fail with their exit codes, the store as it
# was.  Only loopback.
. "$top_srcdir/tests/lib/tap.sh"

unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY \
    CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR
no_proxy='*'
NO_PROXY='*'
export no_proxy NO_PROXY

doc="$T/doc"
mkdir -p "$doc/a" "$doc/b/c"
big_size=$((24 * 1024 * 1024))
openssl enc -aes-128-ctr -nosalt -pass pass:https-big </dev/zero 2>/dev/null |
    head -c "$big_size" >"$doc/a/big.safetensors"
printf '{"model_type":"gpt2","via":"https"}' >"$doc/config.json"
printf '{"vocab":{"a":0,"b":1}}\n' >"$doc/b/c/tokenizer.json"
printf 'bytes pulled with a wrong digest\n' >"$doc/other.bin"
printf 'bytes pulled from an untrusted origin\n' >"$doc/untrusted.bin"
printf 'bytes taken on first use\n' >"$doc/tofu.txt"

big=$(sha_of "$doc/a/big.safetensors")
cfg=$(sha_of "$doc/config.json")
tok=$(sha_of "$doc/b/c/tokenizer.json")
wrong=$(printf 'something else' | sha256sum | cut -c1-64)

start_nginx "$doc"
ok $? "nginx serves the files over HTTPS"
[ "$tap_failed" -eq 0 ] || done_testing

pull_web() {
	mc pull --ca-file "$CA_FILE" --chunk-size 4MiB --name org/web \
	    "$NGINX_HTTPS/a/big.safetensors#sha256=$big" \
	    "$NGINX_HTTPS/config.json#sha256=$cfg" \
	    "$NGINX_HTTPS/b/c/tokenizer.json#sha256=$tok"
}

run_ok "pull three https URLs as one model" pull_web
grep -q "pulled org/web.*: 3 files, " "$T/out"
ok $? "pull reports the model and its three files"
run_ok "verify the pulled model" mc verify
files() {
	mc show --json "$1" | json '.[0].file_list | map([.path, .size,
	    .sha256] | join(" ")) | sort | join("\n")'
}
want=$(for f in a/big.safetensors config.json b/c/tokenizer.json; do
	echo "${f##*/} $(stat -c %s "$doc/$f") $(sha_of "$doc/$f")"
done | sort)
is "$(files org/web)" "$want" \
    "files named by the URLs' last components, with their sizes and digests"
is "$(mc show --json org/web | json '.[0].trust')" verified \
    "every URL had a digest: trust is verified"
run_ok "fsck is clean" mc fsck
is "$(cd "$STORE"/hub/models--org--web/snapshots/* 2>/dev/null &&
    find . -mindepth 1 -printf '%P\n' | sort | tr '\n' ' ')" \
    "big.safetensors config.json tokenizer.json " \
    "the hub view has the three files"
cmp -s "$STORE"/hub/models--org--web/snapshots/*/big.safetensors \
    "$doc/a/big.safetensors"
ok $? "the hub view's big.safetensors has the served bytes"

is "$(nginx_bytes /a/big.safetensors)" "$big_size" \
    "nginx served the big file's bytes once"
ranged=$(grep -c '^HTTP/2\.0 GET /a/big\.safetensors 206 [0-9]* "bytes=[0-9]' \
    "$NGINX_LOG")
[ "$ranged" -ge 2 ]
ok $? "the big file came in ranges over HTTP/2 ($ranged ranged GETs)"
is "$(grep ' /a/big\.safetensors ' "$NGINX_LOG" | grep -vc '^HTTP/2\.0 ')" 0 \
    "and only over HTTP/2"

served=$(nginx_bytes /)
run_ok "pulling the same URLs again" pull_web
grep -q " 0 B from the origin" "$T/out"
ok $? "reports nothing taken from the origin"
is "$(nginx_bytes /)" "$served" "and nginx served nothing more"

untrusted=$(sha_of "$doc/untrusted.bin")
before=$(store_state)
run_fails 6 "[Cc]ertificate\\|CERTIFICATE" \
    "a certificate from an untrusted CA: exit 6, naming the certificate" \
    mc pull --name org/untrusted "$NGINX_HTTPS/untrusted.bin#sha256=$untrusted"
is "$(store_state)" "$before" "the store is unchanged"

other=$(sha_of "$doc/other.bin")
models=$(mc ls --json | json 'length')
run_fails 5 "" "bytes that do not match the URL's digest: exit 5" \
    mc pull --ca-file "$CA_FILE" --name org/bad \
    "$NGINX_HTTPS/other.bin#sha256=$wrong"
is "$(find "$STORE/blobs" -name "$other" -o -name "$wrong" | wc -l)" 0 \
    "the wrong bytes were never published"
is "$(mc ls --json | json 'length')" "$models" "no model was published"

run_fails 3 "" "a URL the origin does not have: exit 3" \
    mc pull --ca-file "$CA_FILE" --name org/missing \
    "$NGINX_HTTPS/absent.bin#sha256=$wrong"

before=$(store_state)
run_fails 2 "trust-on-first-use" \
    "a URL without a digest: exit 2, naming --trust-on-first-use" \
    mc pull --ca-file "$CA_FILE" --name org/tofu "$NGINX_HTTPS/tofu.txt"
is "$(store_state)" "$before" "the store is unchanged"
is "$(nginx_bytes /tofu.txt)" 0 "and nothing was fetched"
run_ok "--trust-on-first-use takes it" mc pull --ca-file "$CA_FILE" \
    --trust-on-first-use --name org/tofu "$NGINX_HTTPS/tofu.txt"
is "$(mc show --json org/tofu | json '.[0].trust')" tofu \
    "and records the model's trust as tofu"
is "$(mc show --json org/tofu | json '.[0].file_list | map(.path + " " +
    .sha256) | join(",")')" "tofu.txt $(sha_of "$doc/tofu.txt")" \
    "with the digest of the bytes served"

before=$(store_state)
run_fails 2 "" "an http:// URL: exit 2" \
    mc pull --name org/plain "$NGINX_HTTP/config.json#sha256=$cfg"
is "$(store_state)" "$before" "the store is unchanged"
nginx_sync
is "$(grep -c '^HTTP/1\.1 GET /config\.json ' "$NGINX_LOG")" 0 \
    "and nothing was fetched over plain HTTP"

# Two pulls of the same URL at once into an empty store: one fetches, the
# other waits for it.
rm -rf "$STORE"
served=$(nginx_bytes /a/big.safetensors)
for n in one two; do
	mc pull --ca-file "$CA_FILE" --chunk-size 4MiB --name "org/$n" \
	    "$NGINX_HTTPS/a/big.safetensors#sha256=$big" >"$T/$n.out" 2>&1 &
	eval "pid_$n=\$!"
done
failed=0
# shellcheck disable=SC2154
for p in "$pid_one" "$pid_two"; do wait "$p" || failed=$((failed + 1)); done
is "$failed" 0 "two pulls of one URL at once both succeed"
[ "$failed" -eq 0 ] || diag "$(cat "$T/one.out" "$T/two.out")"
is "$(nginx_bytes /a/big.safetensors)" "$((served + big_size))" \
    "nginx served the big file's bytes once for both"
run_ok "verify both models" mc verify
run_ok "fsck is clean after them" mc fsck
done_testing
