#!/bin/sh
# Where a pull may go, judged by the address it connects to: an origin on
# a public address cannot send a pull to loopback or a private address
# (not by an IP in its redirect, not by a name that resolves there); an
# origin on loopback may redirect to loopback, one on a private address to
# a private address, and anyone to a public address.  The Hub token never
# goes to a plain-http Hub that is not on loopback.
#
# The test runs in a network namespace (and mount namespace) of its own,
# where 192.0.2.1 and 192.0.2.2 (TEST-NET-1: public addresses as far as
# the rule goes) and 10.0.0.1 and 10.0.0.2 (private) are on its loopback
# interface, and /etc/hosts is a file of the test's: nothing outside is
# reached.  Without root or namespaces it is skipped.
if [ -z "${MC_T0110_NETNS:-}" ]; then
	if [ "$(id -u)" -ne 0 ] || ! unshare -n -m true 2>/dev/null; then
		echo "1..0 # SKIP needs root and network namespaces (unshare -n)"
		exit 0
	fi
	MC_T0110_NETNS=1 exec unshare -n -m sh "$0" "$@"
fi
. "$top_srcdir/tests/lib/tap.sh"

ip link set lo up &&
	for a in 192.0.2.1 192.0.2.2 10.0.0.1 10.0.0.2; do
		ip addr add "$a/32" dev lo || exit 1
	done
ok $? "a private network namespace with public and private test addresses"
printf '127.0.0.1 localhost\n127.0.0.1 cdn.test\n192.0.2.1 hub.test\n' \
    >"$T/hosts"
mount --bind "$T/hosts" /etc/hosts
ok $? "names of the test's own: cdn.test is 127.0.0.1, hub.test 192.0.2.1"

make_model "$T/repo" netsafe
st=$(sha_of "$T/repo/model.safetensors")
unset HF_TOKEN

# origin ADDR ARGS...: the test origin listening on every address of the
# namespace, its Hub at http://ADDR:PORT; an empty store.
origin() {
	addr=$1
	shift
	start_origin --repo org/demo="$T/repo" --host 0.0.0.0 "$@"
	ok $? "the test origin starts, its Hub on $addr ($*)"
	ORIGIN="http://$addr:$(cat "$T/origin.port")"
	HF_ENDPOINT=$ORIGIN
	export HF_ENDPOINT
	rm -rf "$STORE"
}

# refused WHAT TARGET: the last pull was refused, exit 4, naming TARGET;
# nothing of the model was published and the CDN was never asked.
refused() {
	rc=$?
	if [ "$rc" -eq 4 ] && grep -q "refused to follow" "$T/err" &&
	    grep -q -- "$2" "$T/err"; then
		ok 0 "$1: refused, exit 4, naming '$2'"
	else
		ok 1 "$1: refused, exit 4, naming '$2'"
		diag "exit $rc" "$(cat "$T/err")"
	fi
	is "$(find "$STORE/blobs" -type f -name "$st" 2>/dev/null | wc -l)" 0 \
	    "$1: the redirected blob is not in the store"
	is "$(mc ls --json | json length)" 0 "$1: no model was published"
	is "$(stats '[.requests | to_entries[] |
	    select(.key | startswith("GET /cdn/")) | .value] | add // 0')" 0 \
	    "$1: no request reached the redirect's target"
}

# 1. A Hub on a public address whose LFS redirect names 127.0.0.1.
origin 192.0.2.1 --cdn-host 127.0.0.1
mc pull org/demo >"$T/out" 2>"$T/err"
refused "a public origin's redirect to 127.0.0.1" "127.0.0.1"

# 2. The same through names: hub.test is public, cdn.test resolves to
# 127.0.0.1.  The URL says nothing; the address connected to does.
origin hub.test --cdn-host cdn.test
ORIGIN=http://127.0.0.1:${ORIGIN##*:} # for the stats only
mc pull org/demo >"$T/out" 2>"$T/err"
refused "a public origin's redirect to a name on loopback" "cdn.test"

# 3. A Hub on a public address whose redirect names a private address.
origin 192.0.2.1 --cdn-host 10.0.0.2
mc pull org/demo >"$T/out" 2>"$T/err"
refused "a public origin's redirect to 10.0.0.2" "10.0.0.2"

# 4. A Hub on a private address may not send a pull to loopback...
origin 10.0.0.1 --cdn-host 127.0.0.1
mc pull org/demo >"$T/out" 2>"$T/err"
refused "a private origin's redirect to loopback" "127.0.0.1"

# 5. ...but may to another private address (its own class).
origin 10.0.0.1 --cdn-host 10.0.0.2
run_ok "a private origin's redirect to another private address is followed" \
    mc pull org/demo
is "$(stats ".bytes_by_sha256[\"$st\"]")" 300000 \
    "the LFS bytes came from the redirect's target"

# 6. A public origin may redirect to another public address.
origin 192.0.2.1 --cdn-host 192.0.2.2
run_ok "a public origin's redirect to a public address is followed" \
    mc pull org/demo
run_ok "what it published verifies" mc verify

# 7. An origin on loopback may redirect to loopback (what every other pull
# test does), and to a name that resolves there.
origin 127.0.0.1 --cdn-host cdn.test
run_ok "a loopback origin's redirect to loopback is followed" mc pull org/demo

# 8. The token and a plain-http Hub: on a public address it is never sent
# (the pull is refused before a byte goes); on loopback it is.
origin 192.0.2.1 --cdn-host 192.0.2.2
HF_TOKEN=sekrit mc pull org/demo >"$T/out" 2>"$T/err"
rc=$?
is "$rc" 4 "a token and an http:// Hub on a public address: exit 4"
grep -q "refused to send the token over plain http" "$T/err"
ok $? "the message says why"
is "$(stats '.auth_seen | length')" 0 "the origin never saw the token"
is "$(stats '[.requests[]] | add // 0')" 0 \
    "nor any request: the refusal comes before the request"
origin hub.test --cdn-host 192.0.2.2
ORIGIN=http://127.0.0.1:${ORIGIN##*:}
HF_TOKEN=sekrit mc pull org/demo >"$T/out" 2>"$T/err"
is "$?" 4 "the same through a name that resolves to a public address"
is "$(stats '.auth_seen | length')" 0 "and the origin never saw the token"
origin 127.0.0.1
run_ok "a token to an http:// Hub on loopback is sent" \
    env HF_TOKEN=sekrit "$MC" pull org/demo
is "$(stats '.auth_seen["127.0.0.1"] // 0 | . > 0')" true \
    "the loopback origin saw the token"
is "$(stats '.auth_seen.localhost // 0')" 0 \
    "but its CDN host never did"

# 9. An https:// origin, the same: a file URL on hub.test (public) whose
# HEAD redirects to cdn.test (loopback) is refused; TLS is verified with a
# certificate of the test's for those names.
make_ca "$T/ca"
ok $? "a test CA"
sed 's/^subjectAltName = .*/subjectAltName = DNS:hub.test, DNS:cdn.test, IP:127.0.0.1, DNS:localhost/' \
    "$T/ca/server.ext" >"$T/ca/names.ext"
openssl x509 -req -in "$T/ca/server.csr" -CA "$T/ca/ca.crt" \
    -CAkey "$T/ca/ca.key" -set_serial "0x$(openssl rand -hex 8)" -days 2 \
    -extfile "$T/ca/names.ext" -out "$T/ca/names.crt" 2>>"$T/ca/openssl.log"
ok $? "and a certificate for hub.test and cdn.test"
origin hub.test --cdn-host cdn.test --tls-cert "$T/ca/names.crt" \
    --tls-key "$T/ca/server.key"
ORIGIN=https://127.0.0.1:${ORIGIN##*:}
stats() { curl -s --cacert "$T/ca/ca.crt" "$ORIGIN/_stats" | jq -r "$1"; }
url="https://hub.test:${ORIGIN##*:}/org/demo/resolve/main/model.safetensors"
mc pull --ca-file "$T/ca/ca.crt" "$url#sha256=$st" >"$T/out" 2>"$T/err"
refused "an https:// origin's redirect to a name on loopback" "cdn.test"
origin cdn.test --cdn-host cdn.test --tls-cert "$T/ca/names.crt" \
    --tls-key "$T/ca/server.key"
url="https://cdn.test:${ORIGIN##*:}/org/demo/resolve/main/model.safetensors"
run_ok "the same URL on loopback, redirected to loopback, is followed" \
    mc pull --ca-file "$T/ca/ca.crt" "$url#sha256=$st"

# 10. The token after a redirect: a Hub on https://hub.test whose API
# answers 307 to the same path over plain http on hub.test (a public
# address; a second origin listens there).  With a token the pull stops
# before anything is asked over http; without one it goes through.
python3 "$top_srcdir/tests/origin/hf_origin.py" --port-file "$T/plain.port" \
    --host 0.0.0.0 --repo org/demo="$T/repo" 2>>"$T/origin.log" &
PLAIN_PID=$!
trap 'kill "$PLAIN_PID" 2>/dev/null; tap_cleanup' EXIT
wait_for test -s "$T/plain.port"
ok $? "a second origin, plain http"
plain="http://127.0.0.1:$(cat "$T/plain.port")"
origin hub.test --cdn-host hub.test --tls-cert "$T/ca/names.crt" \
    --tls-key "$T/ca/server.key" --fault "tohttp:$(cat "$T/plain.port")@/api/"
HF_ENDPOINT="https://hub.test:${ORIGIN##*:}"
ORIGIN=https://127.0.0.1:${ORIGIN##*:}
HF_TOKEN=sekrit mc pull --ca-file "$T/ca/ca.crt" org/demo >"$T/out" 2>"$T/err"
rc=$?
is "$rc" 4 "a token, and an https Hub that redirects to http: exit 4"
grep -q "refused to send the token over plain http to 'http://hub.test" \
    "$T/err"
ok $? "the message says why, naming the http URL"
is "$(curl -s "$plain/_stats" | jq '.auth_seen | length')" 0 \
    "the http origin never saw the token"
is "$(curl -s "$plain/_stats" | jq '[.requests[]] | add // 0')" 0 \
    "nor any request"
is "$(stats '.auth_seen["hub.test"] // 0 | . > 0')" true \
    "while the https Hub did see it"
run_ok "without a token, the same pull follows the redirect to http" \
    mc pull --ca-file "$T/ca/ca.crt" org/demo
[ "$(curl -s "$plain/_stats" | jq '[.requests[]] | add // 0')" -gt 0 ]
ok $? "and the http origin answered the API"
stats() { curl -s "$ORIGIN/_stats" | jq -r "$1"; } # tap.sh's again

# 11. The daemon applies the same rules: an acquire whose redirect would
# reach loopback from a public Hub fails with forbidden, and the daemon
# keeps serving.
origin 192.0.2.1 --cdn-host 127.0.0.1
start_daemon
ok $? "the daemon starts"
out=$(client '{"op":"acquire","model":"hf://org/demo"}' 2>&1)
jqok "its acquire is refused as forbidden, naming the target" "$out" \
    'select(.error != null) | .error.code == "forbidden" and
    (.error.message | test("127.0.0.1"))'
run_ok "the daemon still answers" mc status

done_testing
