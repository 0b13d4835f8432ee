#!/bin/sh
# The allow list (allow in modelcache.conf, MODELCACHE_ALLOW): which
# references a socket client may acquire.  Checked: by default any hf://
# repository and no https:// URL (forbidden, naming the reference and the
# key, logged once a connection); an https:// model listed in the file or
# the environment is served; a declared model (MODELCACHE_MODELS) needs no
# listing; the CLI, the operator's tool, is not restricted.  The https://
# model is pulled by the CLI first (with the test CA), so the daemon
# answers it from the store and needs no network for it.
. "$top_srcdir/tests/lib/tap.sh"

unset MODELCACHE_MODELS MODELCACHE_MAX_SIZE MODELCACHE_INCLUDE \
    MODELCACHE_EXCLUDE MODELCACHE_ALLOW http_proxy https_proxy \
    HTTPS_PROXY all_proxy ALL_PROXY
no_proxy='*'
NO_PROXY='*'
export no_proxy NO_PROXY

make_model "$T/m" m
start_origin --repo "org/m=$T/m"
ok $? "the test origin serves org/m"
doc=$T/doc
mkdir -p "$doc"
printf 'weights over https\n' >"$doc/w.bin"
w=$(sha_of "$doc/w.bin")
start_nginx "$doc"
ok $? "nginx serves w.bin over HTTPS"
[ "$tap_failed" -eq 0 ] || done_testing
URL="$NGINX_HTTPS/w.bin#sha256=$w"

MODELCACHE_ALLOW='hf://nothing/*' mc pull --ca-file "$CA_FILE" "$URL" \
    >"$T/pull.out" 2>&1
ok $? "the CLI pulls the https:// model whatever MODELCACHE_ALLOW says"

# --- defaults ---------------------------------------------------------------
start_daemon
ok $? "modelcached starts with the default allow list"
client '{"op":"acquire","model":"hf://org/m"}' >"$T/hf.out"
ok $? "an hf:// repository is allowed by default"
client "{\"op\":\"acquire\",\"model\":\"$URL\"}" \
    "{\"op\":\"acquire\",\"model\":\"$URL\"}" >"$T/https.out"
is "$(json -c '[.ok, .error.code]' "$T/https.out" | sed -n 2,3p |
	tr '\n' ' ')" '[false,"forbidden"] [false,"forbidden"] ' \
    "an https:// model is forbidden by default"
jqok "the message names the reference and the allow key" \
    "$(sed -n 2p "$T/https.out")" \
    '.error.message | contains("w.bin") and contains("allow")'
is "$(grep -c "refused, not in the allow list" "$T/daemon.log")" 1 \
    "logged once for the connection"
stop_daemon

# --- listed in the file -----------------------------------------------------
printf 'allow = hf://* %s/*\n' "$NGINX_HTTPS" >"$T/mc.conf"
MODELCACHE_CONFIG=$T/mc.conf start_daemon
client "{\"op\":\"acquire\",\"model\":\"$URL\"}" >"$T/https.out"
ok $? "listed in modelcache.conf: the https:// model is served"
is "$(json '.files[0].sha256' "$T/https.out" | tail -n 1)" "$w" \
    "with its digest"
stop_daemon

# --- the environment over the file -----------------------------------------
MODELCACHE_ALLOW="$NGINX_HTTPS/w.bin*" MODELCACHE_CONFIG=$T/mc.conf \
    start_daemon
client "{\"op\":\"acquire\",\"model\":\"$URL\"}" >"$T/https.out"
ok $? "MODELCACHE_ALLOW lists it: served"
client '{"op":"acquire","model":"hf://org/m"}' >"$T/hf.out"
is "$(json -c '[.ok, .error.code]' "$T/hf.out" | tail -n 1)" \
    '[false,"forbidden"]' "and hf:// is no longer listed: forbidden"
stop_daemon

# --- declared models are the operator's ----------------------------------
MODELCACHE_ALLOW='hf://nothing/*' MODELCACHE_MODELS="$URL" start_daemon
client "{\"op\":\"acquire\",\"model\":\"$URL\"}" >"$T/https.out"
ok $? "a declared https:// model is served though not listed"
stop_daemon
ok $? "the daemon stops"
done_testing
