#!/bin/sh
# hf:// and https:// models never resolve to each other's folders.  An
# https:// URL is named "<host>/<file>" by default, which is also a valid
# Hub repository id: here the test origin serves a Hub repository named
# 127.0.0.1/w.bin, and nginx serves https://127.0.0.1:PORT/w.bin.
# Checked: with the https:// model in the store, an acquire of the hf://
# repository is never answered with its files (the pull is refused,
# naming the other source); with the hf:// repository in the store, an
# https:// pull of the same name is refused and leaves its refs as they
# were, and the daemon never answers the https:// reference with the
# Hub's snapshot even when it holds a file of that digest, nor the URL
# with another digest with the stored file.
. "$top_srcdir/tests/lib/tap.sh"

unset MODELCACHE_MODELS MODELCACHE_MAX_SIZE MODELCACHE_INCLUDE \
    MODELCACHE_EXCLUDE http_proxy https_proxy HTTPS_PROXY all_proxy \
    ALL_PROXY
no_proxy='*'
NO_PROXY='*'
export no_proxy NO_PROXY

doc=$T/doc
mkdir -p "$doc" "$T/hub"
printf 'weights over https\n' >"$doc/w.bin"
w=$(sha_of "$doc/w.bin")
# The Hub repository holds the same file, and another.
cp "$doc/w.bin" "$T/hub/w.bin"
printf '{"model_type":"hub"}' >"$T/hub/config.json"
start_origin --repo "127.0.0.1/w.bin=$T/hub"
ok $? "the test origin serves the Hub repository 127.0.0.1/w.bin"
start_nginx "$doc"
ok $? "nginx serves https://127.0.0.1/w.bin"
[ "$tap_failed" -eq 0 ] || done_testing
URL="$NGINX_HTTPS/w.bin#sha256=$w"
FOLDER=models--127.0.0.1--w.bin

# --- the https:// model first ---------------------------------------------
mc pull --ca-file "$CA_FILE" "$URL" >"$T/pull.out" 2>&1
ok $? "the CLI pulls the https:// model, named 127.0.0.1/w.bin"
MODELCACHE_ALLOW="hf://* $NGINX_HTTPS/*" start_daemon
client '{"op":"acquire","model":"hf://127.0.0.1/w.bin"}' >"$T/hf.out"
jqok "an acquire of the hf:// repository is not answered with it" \
    "$(tail -n 1 "$T/hf.out")" \
    '.ok == false and .error.code == "forbidden" and
     (.error.message | contains("https://"))'
client "{\"op\":\"acquire\",\"model\":\"$URL\"}" >"$T/https.out"
jqok "the https:// reference is still served its own model" \
    "$(tail -n 1 "$T/https.out")" '.ok and (.files | length) == 1'
# The stored file's digest is what answers a URL: another is not it.
wrong=$(printf 'something else' | sha256sum | cut -c1-64)
client "{\"op\":\"acquire\",\"model\":\"$NGINX_HTTPS/w.bin#sha256=$wrong\"}" \
    >"$T/wrong.out"
jqok "the same URL with another digest is not answered with the stored file" \
    "$(tail -n 1 "$T/wrong.out")" '.ok == false'
stop_daemon

# --- the Hub repository first ----------------------------------------------
mc rm 127.0.0.1/w.bin >/dev/null 2>&1
mc pull hf://127.0.0.1/w.bin >"$T/pull.out" 2>&1
ok $? "the CLI pulls the Hub repository 127.0.0.1/w.bin"
ref=$(cat "$STORE/hub/$FOLDER/refs/main")
mc pull --ca-file "$CA_FILE" "$URL" >"$T/pull2.out" 2>&1
rc=$?
ok "$([ $rc -ne 0 ] && grep -q "never share a folder" "$T/pull2.out"
	echo $?)" "an https:// pull of the same name is refused, saying why"
is "$(cat "$STORE/hub/$FOLDER/refs/main")" "$ref" \
    "and the repository's ref is as it was"
MODELCACHE_ALLOW="hf://* $NGINX_HTTPS/*" start_daemon
client "{\"op\":\"acquire\",\"model\":\"$URL\"}" >"$T/https.out"
jqok "the daemon never answers the https:// reference with the Hub's files" \
    "$(tail -n 1 "$T/https.out")" '.ok == false'
client '{"op":"acquire","model":"hf://127.0.0.1/w.bin"}' >"$T/hf.out"
jqok "the hf:// repository is served its own files" \
    "$(tail -n 1 "$T/hf.out")" '.ok and (.files | length) == 2'
stop_daemon
ok $? "the daemon stops"
done_testing
