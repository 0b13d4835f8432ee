#!/bin/sh
# modelcached's handshake protocol (DESIGN.md section 5) through its real
# socket: hello and its version check, every malformed request answered
# bad_request on a connection that stays usable, acquire (progress, ready
# with a lease and the files as the origin has them, answered from the store
# when fresh, stale when the origin is gone), release, status, and every
# error code of the closed set that a client can provoke.  internal cannot
# be provoked from outside (it answers an out-of-memory, or a model removed
# between its pull and its lease), so no test asks for it; the one place
# where a client could provoke it, a model larger than the quota on its
# own, must answer no_space (asserted below).
#
# Nothing waits on a timer for an event: conditions are polled, bounded.
# The slow origin (a slow fault on every CDN GET) only makes a pull last
# long enough (about 3 s) to be seen in flight.
. "$top_srcdir/tests/lib/tap.sh"

unset HF_TOKEN HF_TOKEN_PATH MODELCACHE_REFRESH MODELCACHE_MAX_SIZE \
    MODELCACHE_ALLOW_UIDS MODELCACHE_MAX_CONNECTIONS MODELCACHE_MODELS \
    MODELCACHE_SOCKET_GROUP MODELCACHE_STALE_AFTER MODELCACHE_LOG_FORMAT

MCCLIENT="$top_srcdir/tests/lib/mcclient.py"

# conn.py SOCKET [--eof] ITEM...: one connection driven line by line, for
# what mcclient.py cannot say: a hang-up, a line over 1 MiB, a lease taken
# and released on the same connection.  Each ITEM is sent as one line
# (@hello: a hello; @pad:N: a status request N bytes long with its newline;
# @LEASE@ in a line: the lease of the last ready answer), then the answers
# are printed up to the first that is not a progress event.  A hang-up
# prints EOF.  --eof: after the last ITEM, EOF when the daemon hangs up,
# OPEN when it keeps the connection for 10 s.  A send into a closed
# connection is not an error: what the daemon said before is still read.
cat >"$T/conn.py" <<'EOF'
import json, socket, sys

def main(args):
    path = args.pop(0)
    eof = args[:1] == ["--eof"]
    if eof:
        args.pop(0)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    f = s.makefile("rb")
    lease = None

    def read():
        try:
            raw = f.readline()
        except ConnectionResetError:
            raw = b""
        return raw

    for item in args:
        if item == "@hello":
            line = '{"op":"hello","protocol":1,"client":"t0201/1"}'
        elif item.startswith("@pad:"):
            n = int(item[5:])
            head, tail = '{"op":"status","pad":"', '"}'
            line = head + "x" * (n - 1 - len(head) - len(tail)) + tail
        else:
            line = item
        if lease is not None:
            line = line.replace("@LEASE@", lease)
        try:
            s.sendall(line.encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        while True:
            try:
                raw = read()
            except socket.timeout:
                print("TIMEOUT", flush=True)
                return 3
            if not raw:
                print("EOF", flush=True)
                return 0
            text = raw.decode().rstrip("\n")
            print(text, flush=True)
            answer = json.loads(text)
            if answer.get("event") == "ready":
                lease = answer.get("lease")
            if answer.get("event") != "progress":
                break
    if eof:
        s.settimeout(10)
        try:
            raw = read()
        except socket.timeout:
            print("OPEN", flush=True)
            return 0
        print("EOF" if not raw else "MORE " + raw.decode().rstrip("\n"),
              flush=True)
    return 0

sys.exit(main(sys.argv[1:]))
EOF
chmod 644 "$T/conn.py"
conn() {
	python3 "$T/conn.py" "$SOCK" "$@"
}

# Holders: mcclient.py --hold in the background, its stdin a fifo kept open
# by a sleep of ours; ending the sleep ends the client (and its leases).
HOLDERS=
trap 'for p in $HOLDERS; do kill "$p" 2>/dev/null; done; tap_cleanup' EXIT
# hold NAME REQUEST...: sets NAME_pid (the client: the daemon's peer pid)
# and NAME_sleep; its answers go to $T/NAME.out.
hold() {
	name=$1
	shift
	rm -f "$T/$name.fifo"
	mkfifo "$T/$name.fifo"
	python3 "$MCCLIENT" "$SOCK" --hold "$@" <"$T/$name.fifo" \
	    >"$T/$name.out" 2>"$T/$name.err" &
	eval "${name}_pid=$!"
	HOLDERS="$HOLDERS $!"
	sleep 3600 >"$T/$name.fifo" &
	eval "${name}_sleep=$!"
	HOLDERS="$HOLDERS $!"
}
# unhold NAME: ends the holder and waits for it.
unhold() {
	eval "kill \$${1}_sleep; wait \$${1}_sleep 2>/dev/null; wait \$${1}_pid"
}

# has FILE JQ: some line of FILE (JSON lines) satisfies JQ.
has() {
	jq -e -s "any(.[]; $2)" "$1" >/dev/null 2>&1
}
# line N FILE: its Nth line ('$': the last).
line() {
	sed -n "${1}p" "$2"
}
# status_is FILTER: the daemon's status satisfies FILTER (for wait_for).
status_is() {
	client '{"op":"status"}' | tail -n 1 | jqe "$1"
}
# events FILE KIND: how many lines of FILE are events of KIND.
events() {
	jq -s "map(select(.event == \"$2\")) | length" "$1"
}
# requests: how many requests the origin has counted.
requests() {
	stats '[.requests[]] | add // 0'
}
# daemon_log PATTERN: the daemon has logged PATTERN.
daemon_log() {
	grep -q -- "$1" "$T/daemon.log"
}

# source_files DIR: "path size sha256" of each file of DIR, sorted.
source_files() {
	(cd "$1" && find -L . -type f -printf '%P\n' | sort |
	    while read -r p; do
		    echo "$p $(stat -L -c %s "$p") $(sha_of "$p")"
	    done)
}

make_model "$T/demo" demo
make_model "$T/two" two
make_model "$T/three" three
REPOS="--repo org/demo=$T/demo --repo org/two=$T/two --repo org/three=$T/three"
# About 3 s a pull: 300000 bytes of model.safetensors at 100000 B/s.
SLOW='slow:100000@/cdn/'

# shellcheck disable=SC2086
start_origin $REPOS --fault "$SLOW"
ok $? "the test origin starts (slow CDN)"
start_daemon
ok $? "the daemon starts"

# --- the socket ----------------------------------------------------------
is "$(stat -c %a "$SOCK")" 660 "the socket is mode 0660"
is "$(stat -c %a "$(dirname "$SOCK")")" 750 \
    "the socket's directory, made by the daemon, is mode 0750"

# --- hello ---------------------------------------------------------------
version=$("$MCD" --version | sed 's/^modelcached //')
client >"$T/hello.out"
ok $? "hello is answered ok"
jqok "hello: protocol 1, server modelcached/$version" \
    "$(line 1 "$T/hello.out")" \
    ".ok == true and .protocol == 1 and .server == \"modelcached/$version\""

client --no-hello '{"op":"hello","protocol":2}' \
    '{"op":"hello","protocol":1}' '{"op":"status"}' >"$T/out"
jqok "protocol 2: unsupported_protocol" "$(line 1 "$T/out")" \
    '.ok == false and .error.code == "unsupported_protocol" and
     (.error.message | type) == "string"'
jqok "a hello with protocol 1 after it is answered ok" "$(line 2 "$T/out")" \
    '.ok == true and .protocol == 1'
jqok "and the connection serves status" "$(line 3 "$T/out")" \
    '.ok == true and (.server | startswith("modelcached/"))'

client --no-hello '{"op":"hello","protocol":0}' '{"op":"hello","protocol":1}' \
    >"$T/out"
jqok "protocol 0 is no version at all: bad_request" "$(line 1 "$T/out")" \
    '.ok == false and .error.code == "bad_request"'
jqok "and the connection stays usable" "$(line 2 "$T/out")" '.ok == true'

conn --eof '{"op":"status"}' >"$T/out"
jqok "a request before hello: bad_request 'say hello first'" \
    "$(line 1 "$T/out")" \
    '.ok == false and .error.code == "bad_request" and
     .error.message == "say hello first"'
is "$(line 2 "$T/out")" EOF "and the daemon hangs up"

# --- bad_request ---------------------------------------------------------
# bad LINE DESCRIPTION MESSAGE-REGEX: bad_request, then status on the same
# connection.
bad() {
	client --raw "$1" '{"op":"status"}' >"$T/out"
	jqok "bad_request for $2" "$(line 2 "$T/out")" \
	    ".ok == false and .error.code == \"bad_request\" and
	     (.error.message | test(\"$3\"))"
	jqok "the connection still answers status after $2" \
	    "$(line 3 "$T/out")" '.ok == true and has("leases")'
}
bad '{"op":"status"' "malformed JSON" "malformed JSON"
bad '[1,2]' "a non-object" "JSON object"
bad '"status"' "a string" "JSON object"
bad '{"model":"hf://org/demo"}' "a missing op" "'op' is missing"
bad '{"op":7}' "an op that is not a string" "'op' must be a string"
bad '{"op":"fly"}' "an unknown op" "unknown op 'fly'"
bad '{"op":"acquire"}' "acquire without model" "'model' is missing"
bad '{"op":"acquire","model":5}' "a model that is not a string" \
    "'model' must be a string"
bad '{"op":"acquire","model":""}' "an empty model" "'model' is empty"
bad '{"op":"acquire","model":"hf://org/demo","wait":"yes"}' \
    "wait not a boolean" "'wait' must be true or false"
bad '{"op":"acquire","model":"hf://org/demo","timeout_ms":-1}' \
    "a negative timeout_ms" "'timeout_ms' must be a non-negative integer"
bad '{"op":"acquire","model":"hf://org/demo","timeout_ms":1.5}' \
    "a timeout_ms that is not an integer" "'timeout_ms'"
bad '{"op":"acquire","model":"no such:ref"}' "a model that is no reference" \
    "bad model"
bad '{"op":"release"}' "release without lease" "'lease' is missing"
bad '{"op":"release","lease":1}' "a lease that is not a string" \
    "'lease' must be a string"
bad '{"op":"status","op":"hello"}' "a duplicate key" "malformed JSON"
is "$(mc ls --json | json 'length')" 0 \
    "none of the bad acquires pulled anything"

# The limit is 1 MiB with the newline.
conn @hello @pad:1048576 '{"op":"status"}' >"$T/out"
jqok "a line of exactly 1 MiB with its newline is served" \
    "$(line 2 "$T/out")" '.ok == true and has("leases")'
jqok "and the connection goes on" "$(line 3 "$T/out")" '.ok == true'
conn --eof @hello @pad:1048577 >"$T/out"
jqok "a line over 1 MiB: bad_request" "$(line 2 "$T/out")" \
    '.ok == false and .error.code == "bad_request" and
     (.error.message | test("1 MiB"))'
is "$(line 3 "$T/out")" EOF "and the daemon hangs up"

# --- acquire of an absent model ------------------------------------------
client '{"op":"acquire","model":"hf://org/demo"}' >"$T/acq.out"
ok $? "acquire of an absent model ends ok"
ready=$(line '$' "$T/acq.out")
[ "$(events "$T/acq.out" progress)" -ge 1 ]
ok $? "progress events come before the answer"
has "$T/acq.out" '.event == "progress" and .model == "hf://org/demo" and
    .total_bytes > 0 and .done_bytes <= .total_bytes'
ok $? "a progress event names the model and counts bytes"
jqok "then ready, with the model, repo, commit, lease and not stale" \
    "$ready" '.ok == true and .event == "ready" and
    .model == "hf://org/demo" and .repo == "org/demo" and
    (.commit | test("^[0-9a-f]{40}$")) and (.lease | length > 0) and
    .stale == false'
commit=$(printf '%s\n' "$ready" | json .commit)
dir=$(printf '%s\n' "$ready" | json .dir)
is "$dir" "hub/models--org--demo/snapshots/$commit" \
    "dir is the snapshot, relative to the store"
is "$(printf '%s\n' "$ready" | json '.files | map("\(.path) \(.size) \(.sha256)") | sort | join("\n")')" \
    "$(source_files "$T/demo")" \
    "files: the source's paths, sizes and sha256"
test -d "$STORE/$dir"
ok $? "the dir is there under the store"
is "$(source_files "$STORE/$dir")" "$(source_files "$T/demo")" \
    "every file there is the source's"
is "$(stats '.bytes')" "$(find "$T/demo" -type f -printf '%s\n' |
    awk '{ s += $1 } END { print s }')" "each file came once from the origin"
wait_for status_is '.leases | length == 0'
ok $? "the lease ended with its connection"

# --- acquire of a present model ------------------------------------------
before=$(requests)
client '{"op":"acquire","model":"hf://org/demo"}' >"$T/out"
ok $? "acquire of a present model ends ok"
jqok "ready at once, same commit, not stale" "$(line 2 "$T/out")" \
    ".ok == true and .event == \"ready\" and .commit == \"$commit\" and
     .dir == \"$dir\" and .stale == false"
is "$(events "$T/out" progress)" 0 "with no progress event"
is "$(requests)" "$before" "and no request to the origin (the ref is fresh)"

# --- release -------------------------------------------------------------
conn @hello '{"op":"acquire","model":"hf://org/demo"}' \
    '{"op":"release","lease":"@LEASE@"}' '{"op":"status"}' \
    '{"op":"release","lease":"@LEASE@"}' >"$T/out"
jqok "an acquire on the connection" "$(line 2 "$T/out")" \
    '.ok == true and .event == "ready"'
jqok "release of its lease: ok" "$(line 3 "$T/out")" \
    '.ok == true and (has("error") | not)'
jqok "status no longer lists it" "$(line 4 "$T/out")" \
    '.ok == true and (.leases | length == 0)'
jqok "releasing it again: not_found" "$(line 5 "$T/out")" \
    '.ok == false and .error.code == "not_found"'

# --- status, a lease held by another connection ----------------------------
hold h1 '{"op":"acquire","model":"hf://org/demo"}'
wait_for has "$T/h1.out" '.event == "ready"'
ok $? "a holder acquires the model and keeps its connection"
lease1=$(line '$' "$T/h1.out" | json .lease)
client '{"op":"status"}' >"$T/out"
st=$(line 2 "$T/out")
jqok "status: server, store, uptime_s, ready, connections, models, pulls, leases" \
    "$st" ".ok == true and (.server | startswith(\"modelcached/\")) and
    .store == \"$STORE\" and (.uptime_s | type) == \"number\" and
    .uptime_s >= 0 and .ready == true and .connections == 2 and
    .models == [] and .pulls == [] and (.leases | type) == \"array\""
jqok "the holder's lease is listed, with its pid" "$st" \
    ".leases == [{lease: \"$lease1\", folder: \"models--org--demo\",
     commit: \"$commit\", pid: $h1_pid, uid: $(id -u)}]"
client "{\"op\":\"release\",\"lease\":\"$lease1\"}" >"$T/out"
jqok "releasing another connection's lease: not_found" "$(line 2 "$T/out")" \
    '.ok == false and .error.code == "not_found"'
status_is ".leases | map(.lease) == [\"$lease1\"]" >/dev/null
ok $? "and that lease is still held"

# --- leases against gc ---------------------------------------------------
run_fails 7 "in use (leased)" "gc to 0 from another process keeps the leased model" \
    mc gc --max-size 0
is "$(mc ls --json | json 'map(.repo) | join(",")')" "org/demo" \
    "the leased model is still there"
test -d "$STORE/$dir"
ok $? "with its snapshot"
unhold h1
ok $? "the holder ends"
wait_for status_is '.leases | length == 0'
ok $? "its lease ends with its connection"
run_ok "gc to 0 after that" mc gc --max-size 0
is "$(mc ls --json | json 'length')" 0 "evicts the model"

# --- wait:false ----------------------------------------------------------
client '{"op":"acquire","model":"hf://org/two","wait":false}' >"$T/out"
ok $? "acquire with wait:false of an absent model ends ok"
jqok "answered state pulling at once" "$(line 2 "$T/out")" \
    '.ok == true and .event == "state" and .state == "pulling" and
     .model == "hf://org/two" and (.done_bytes | type) == "number" and
     (.total_bytes | type) == "number"'
is "$(wc -l <"$T/out")" 2 "with nothing else"
status_is '.pulls | map(.model) | any(test("org/two"))' >/dev/null
ok $? "status lists the pull in flight"
client '{"op":"acquire","model":"hf://org/two"}' >"$T/out"
ok $? "a later acquire"
jqok "gets ready" "$(line '$' "$T/out")" \
    '.ok == true and .event == "ready" and .repo == "org/two" and
     .stale == false'

# --- timeout -------------------------------------------------------------
client '{"op":"acquire","model":"hf://org/three","timeout_ms":200}' \
    '{"op":"status"}' >"$T/out"
jqok "acquire with timeout_ms 200 of a slow pull: timeout" \
    "$(jq -c 'select(.event != "progress")' "$T/out" | sed -n 2p)" \
    '.ok == false and .error.code == "timeout"'
jqok "the connection then answers status, the pull still in flight" \
    "$(line '$' "$T/out")" \
    '.ok == true and (.pulls | map(.model) | any(test("org/three")))'
wait_for status_is '.pulls | length == 0'
ok $? "the pull ends"
is "$(mc ls --json | json 'map(.repo) | sort | join(",")')" "org/three,org/two" \
    "and publishes the model"
before=$(requests)
client '{"op":"acquire","model":"hf://org/three"}' >"$T/out"
jqok "a later acquire is ready" "$(line '$' "$T/out")" \
    '.ok == true and .event == "ready" and .repo == "org/three"'
is "$(requests)" "$before" "from the store"

# --- not_found -----------------------------------------------------------
client '{"op":"acquire","model":"hf://org/demo@nope"}' >"$T/out"
jqok "an unknown revision: not_found" "$(line '$' "$T/out")" \
    '.ok == false and .error.code == "not_found"'

# --- shutting_down -------------------------------------------------------
python3 "$MCCLIENT" "$SOCK" '{"op":"acquire","model":"hf://org/demo"}' \
    >"$T/sd.out" 2>"$T/sd.err" &
sd_pid=$!
wait_for status_is '.pulls | map(.clients) | add == 1'
ok $? "an acquire waits for its (slow) pull"
stop_daemon
is "$DAEMON_RC" 0 "SIGTERM: the daemon exits 0"
wait "$sd_pid"
is "$?" 1 "the waiting client's acquire fails"
jqok "with shutting_down" "$(line '$' "$T/sd.out")" \
    '.ok == false and .error.code == "shutting_down"'
test ! -e "$SOCK"
ok $? "the socket is gone"

# --- busy ----------------------------------------------------------------
MODELCACHE_MAX_CONNECTIONS=2
export MODELCACHE_MAX_CONNECTIONS
start_daemon
ok $? "the daemon starts with max_connections 2"
unset MODELCACHE_MAX_CONNECTIONS
hold b1
hold b2
wait_for has "$T/b1.out" '.protocol == 1'
ok $? "a first connection is held"
wait_for has "$T/b2.out" '.protocol == 1'
ok $? "a second connection is held"
conn --eof @hello >"$T/out"
jqok "a third: busy" "$(line 1 "$T/out")" \
    '.ok == false and .error.code == "busy"'
is "$(line 2 "$T/out")" EOF "and the daemon hangs up"
unhold b1
wait_for status_is '.connections == 2'
ok $? "once one goes, a connection is served again"
unhold b2

# --- origin errors -------------------------------------------------------
# acquire_error MODEL CODE DESCRIPTION
acquire_error() {
	client "{\"op\":\"acquire\",\"model\":\"$1\"}" >"$T/out"
	jqok "$3" "$(line '$' "$T/out")" \
	    ".ok == false and .error.code == \"$2\" and
	     (.error.message | length > 0)"
}
stop_daemon
rm -rf "$STORE"
# shellcheck disable=SC2086
start_origin $REPOS --token sekrit
ok $? "the origin starts, wanting a token"
start_daemon
ok $? "the daemon starts without a token"
acquire_error hf://org/demo unauthorized "no token: unauthorized"
acquire_error hf://org/absent unauthorized \
    "an unknown repo (the Hub answers 401): unauthorized"

stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS --token sekrit --gated manual
ok $? "the origin starts, gated by hand"
HF_TOKEN=sekrit
export HF_TOKEN
start_daemon
ok $? "the daemon starts with a token"
unset HF_TOKEN
acquire_error hf://org/demo forbidden "access not granted: forbidden"

stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS --fault 'corrupt@/cdn/'
ok $? "the origin starts, corrupting every CDN answer"
start_daemon
ok $? "the daemon starts"
acquire_error hf://org/demo integrity "wrong bytes every time: integrity"
is "$(mc ls --json | json 'length')" 0 "nothing was published"
is "$(find "$STORE/blobs" -type f -name "$(sha_of "$T/demo/model.safetensors")" |
    wc -l)" 0 "and the wrong bytes never became a blob"

# --- origin_unavailable, and stale -----------------------------------------
stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS
ok $? "the origin starts"
MODELCACHE_REFRESH=0
export MODELCACHE_REFRESH
start_daemon
ok $? "the daemon starts with refresh 0"
unset MODELCACHE_REFRESH
client '{"op":"acquire","model":"hf://org/demo"}' >"$T/out"
jqok "acquire pulls the model" "$(line '$' "$T/out")" \
    '.ok == true and .event == "ready" and .stale == false'
before=$(requests)
client '{"op":"acquire","model":"hf://org/demo"}' >"$T/out"
jqok "acquire of it again is ready" "$(line '$' "$T/out")" \
    ".ok == true and .event == \"ready\" and .commit == \"$commit\" and
     .stale == false"
[ "$(requests)" -gt "$before" ]
ok $? "after asking the origin (refresh 0)"
stop_origin
client '{"op":"acquire","model":"hf://org/demo"}' >"$T/out"
jqok "origin gone, model present: ready, stale" "$(line '$' "$T/out")" \
    ".ok == true and .event == \"ready\" and .commit == \"$commit\" and
     .dir == \"$dir\" and .stale == true"
acquire_error hf://org/two origin_unavailable \
    "origin gone, model absent: origin_unavailable"

# --- no_space --------------------------------------------------------------
stop_daemon
rm -rf "$STORE"
# shellcheck disable=SC2086
start_origin $REPOS
ok $? "the origin starts"
start_daemon --max-size 100000
ok $? "the daemon starts with --max-size 100000"
# Nothing else in the store: the quota cannot be met while the model is
# there, so the quota pass after its pull must not take it from under the
# acquire.
acquire_error hf://org/three no_space \
    "a model larger than the quota on its own: no_space"
run_ok "org/demo is pulled into the store" mc pull org/demo
hold q1 '{"op":"acquire","model":"hf://org/demo"}'
wait_for has "$T/q1.out" '.event == "ready"'
ok $? "a client holds org/demo, larger than the quota"
acquire_error hf://org/two no_space \
    "a pull past the quota that leased models keep: no_space"
is "$(mc ls --json | json 'map(.repo) | join(",")' | grep -c org/demo)" 1 \
    "the leased model stays"
unhold q1

# --- allow_uids, as another uid --------------------------------------------
# The daemon always lets in its own uid, root here, so the refused peer is
# another uid: nobody, through a socket group it belongs to.
other_gid=65534
group=$(getent group "$other_gid" | cut -d: -f1)
if [ "$(id -u)" -ne 0 ] || [ -z "$group" ] || ! command -v setpriv \
    >/dev/null || [ ! -x /usr/bin/python3 ]; then
	ok 0 "# SKIP allow_uids needs root, setpriv and a group $other_gid"
else
	as_other() {
		setpriv --reuid=65534 --regid="$other_gid" --clear-groups \
		    /usr/bin/python3 "$T/conn.py" "$SOCK" "$@"
	}
	stop_daemon
	rm -rf "$(dirname "$SOCK")"
	chmod 711 "$T"
	MODELCACHE_SOCKET_GROUP=$group MODELCACHE_ALLOW_UIDS=12345
	export MODELCACHE_SOCKET_GROUP MODELCACHE_ALLOW_UIDS
	start_daemon
	ok $? "the daemon starts with socket_group $group, allow_uids 12345"
	is "$(stat -c '%a %g' "$SOCK")" "660 $other_gid" \
	    "the socket is 0660 in the socket group"
	is "$(stat -c '%a %g' "$(dirname "$SOCK")")" "750 $other_gid" \
	    "its directory, made by the daemon, 0750 in the group"
	as_other --eof @hello >"$T/out"
	jqok "uid 65534, not allowed: forbidden" "$(line 1 "$T/out")" \
	    '.ok == false and .error.code == "forbidden"'
	is "$(line 2 "$T/out")" EOF "and the daemon hangs up"
	daemon_log "uid 65534 is not allowed"
	ok $? "the daemon logs the refused uid"
	client >"$T/out"
	ok $? "the daemon's own uid is let in"
	stop_daemon
	MODELCACHE_ALLOW_UIDS=12345,65534
	start_daemon
	ok $? "the daemon starts with allow_uids 12345,65534"
	unset MODELCACHE_SOCKET_GROUP MODELCACHE_ALLOW_UIDS
	as_other @hello '{"op":"status"}' >"$T/out"
	jqok "uid 65534, allowed: hello ok" "$(line 1 "$T/out")" \
	    '.ok == true and .protocol == 1'
	jqok "and status" "$(line 2 "$T/out")" '.ok == true'
	chmod 700 "$T"
fi

stop_daemon
is "$DAEMON_RC" 0 "the daemon stops cleanly"
done_testing
