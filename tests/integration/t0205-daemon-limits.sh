#!/bin/sh
# Per-connection limits (max_leases_per_client, max_pulls_per_client) and
# a client who hangs up while it waits.  Checked: the lease over the limit
# is refused with busy naming the key, and a release makes room; a pull
# over the limit is queued (status says so), not refused, and is served
# once the first pull ends; a client killed while its acquire waits on a
# queued pull is noticed at once (no progress is ever written to it), its
# queued pull dropped and its connection freed, so that a later client
# gets the one connection left (max_connections) and the pull.
. "$top_srcdir/tests/lib/tap.sh"

unset MODELCACHE_MODELS MODELCACHE_MAX_SIZE MODELCACHE_INCLUDE \
    MODELCACHE_EXCLUDE MODELCACHE_ALLOW MODELCACHE_MAX_LEASES_PER_CLIENT \
    MODELCACHE_MAX_PULLS_PER_CLIENT MODELCACHE_MAX_CONNECTIONS

make_model "$T/a" a
make_model "$T/b" b
make_model "$T/c" c
make_model "$T/d" d
# The slow ones: org/a's weights come at 60 kB/s (about 5 s), org/c's at
# 3 kB/s (about 100 s: still in the air when the test ends, so that only
# noticing the hangup can free the waiter's connection).
slow_a=$(sha_of "$T/a/model.safetensors")
slow_c=$(sha_of "$T/c/model.safetensors")
start_origin --repo "org/a=$T/a" --repo "org/b=$T/b" --repo "org/c=$T/c" \
    --repo "org/d=$T/d" --fault "slow:60000@$slow_a" \
    --fault "slow:3000@$slow_c"
ok $? "the origin serves org/a and org/c slowly, org/b and org/d at once"
[ "$tap_failed" -eq 0 ] || done_testing

cat >"$T/mc.conf" <<EOF2
max_leases_per_client = 2
max_pulls_per_client = 1
max_connections = 2
EOF2
MODELCACHE_CONFIG=$T/mc.conf start_daemon
ok $? "modelcached starts with 2 leases, 1 pull and 2 connections a client"

# --- leases --------------------------------------------------------------
client '{"op":"acquire","model":"hf://org/b"}' \
    '{"op":"acquire","model":"hf://org/b"}' \
    '{"op":"acquire","model":"hf://org/b"}' >"$T/leases.out"
# answers FILE: the final answers, hello's and progress events left out.
answers() {
	json -c 'select(.protocol == null and .event != "progress") |
	    [.ok, .error.code // .state // .event]' "$1" | tr '\n' ' '
}
is "$(answers "$T/leases.out")" \
    '[true,"ready"] [true,"ready"] [false,"busy"] ' \
    "the third lease on one connection is refused with busy"
jqok "its message says the limit and the key" "$(grep busy "$T/leases.out")" \
    '.error.message | test("2 leases") and test("max_leases_per_client")'
# The id of a lease is this connection's: release the first, acquire again.
cat >"$T/rel.py" <<'EOF2'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
def ask(o):
    f.write(json.dumps(o).encode() + b"\n"); f.flush()
    return json.loads(f.readline())
ask({"op": "hello", "protocol": 1})
a = [ask({"op": "acquire", "model": "hf://org/b"}) for _ in range(3)]
r = ask({"op": "release", "lease": a[0]["lease"]})
b = ask({"op": "acquire", "model": "hf://org/b"})
print(a[2]["error"]["code"], r["ok"], b.get("event"))
EOF2
is "$(python3 "$T/rel.py" "$SOCK")" "busy True ready" \
    "after a release the connection may lease again"

# --- pulls: the second is queued, then served ----------------------------
client '{"op":"acquire","model":"hf://org/a","wait":false}' \
    '{"op":"acquire","model":"hf://org/d"}' >"$T/queue.out" 2>&1 &
qpid=$!
wait_for grep -q "pull 'hf://org/d[^']*' queued" "$T/daemon.log"
ok $? "the second pull of the connection is queued"
mc status --socket "$SOCK" --json >"$T/status.json" 2>&1
jqok "status: org/a pulling, org/d queued" "$(cat "$T/status.json")" \
    '[.pulls[] | {model, state}] | map(select(.model | test("org/[ad]"))) |
     sort_by(.model) | map(.state) == ["pulling", "queued"]'
wait "$qpid"
ok $? "and the client's acquire of org/d is answered ok"
is "$(answers "$T/queue.out")" \
    '[true,"pulling"] [true,"ready"] ' "first pulling, then ready"
a_done=$(grep -n "pull 'hf://org/a[^']*' done" "$T/daemon.log" | cut -d: -f1)
d_start=$(grep -n "pull 'hf://org/d[^']*' started" "$T/daemon.log" |
	cut -d: -f1)
ok "$([ -n "$a_done" ] && [ -n "$d_start" ] && [ "$a_done" -lt "$d_start" ]
	echo $?)" "org/d started only once org/a was done"

# --- a client that hangs up while waiting --------------------------------
# Two connections at most: the holder takes one, the waiter the other.
mkfifo "$T/hold"
client --hold '{"op":"status"}' <"$T/hold" >"$T/holder.out" 2>&1 &
hpid=$!
exec 3>"$T/hold"
wait_for grep -q '"ok"' "$T/holder.out"
ok $? "a holder takes one connection"
python3 - "$SOCK" >"$T/waiter.out" 2>&1 <<'EOF2' &
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
def send(o):
    f.write(json.dumps(o).encode() + b"\n"); f.flush()
send({"op": "hello", "protocol": 1}); print(f.readline().decode(), flush=True)
send({"op": "acquire", "model": "hf://org/c", "wait": False})
print(f.readline().decode(), flush=True)
send({"op": "acquire", "model": "hf://org/b2"})
print("waiting", flush=True)
f.readline()
EOF2
wpid=$!
wait_for grep -q "pull 'hf://org/b2[^']*' queued" "$T/daemon.log"
ok $? "a waiter's second pull is queued behind its slow one"
kill -9 "$wpid"
wait "$wpid" 2>/dev/null
wait_for grep -q "pull 'hf://org/b2[^']*' dropped" "$T/daemon.log"
ok $? "the waiter killed: its queued pull is dropped at once"
client '{"op":"acquire","model":"hf://org/d"}' >"$T/later.out" 2>&1
ok $? "a later client gets the connection it freed, and its model"
exec 3>&-
wait "$hpid"

stop_daemon
ok $? "the daemon stops"
done_testing
