#!/bin/sh
# modelcached in operation: checking a configuration (-n), the readiness
# probe, SIGHUP with a good and a broken configuration, SIGTERM, JSON logs
# without the token, bad clients of every kind with bounded memory, and a
# session under valgrind without definite leaks.
. "$top_srcdir/tests/lib/tap.sh"

unset MODELCACHE_MODELS MODELCACHE_MAX_SIZE MODELCACHE_STALE_AFTER \
    MODELCACHE_REFRESH HF_TOKEN_PATH MODELCACHE_MAX_CONNECTIONS \
    MODELCACHE_ALLOW_UIDS MODELCACHE_SOCKET_GROUP
TOKEN=sekrit-token-123
# With AddressSanitizer (./dev test's second build), freed memory waits in
# a quarantine of 256 MiB before reuse: a small one keeps the daemon's
# memory figure about the daemon.  Valgrind cannot run such a build.
SANITIZED=
if grep -q -- '-fsanitize=address' "$top_builddir/Makefile" 2>/dev/null; then
	SANITIZED=1
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
	export ASAN_OPTIONS
fi

# Daemons of our own beside tap.sh's one, killed at exit.
EXTRA_PIDS=
trap 'for p in $EXTRA_PIDS; do kill -9 "$p" 2>/dev/null; done; tap_cleanup' \
    EXIT

# alive PID: the process runs (a zombie waiting to be reaped does not).
alive() {
	kill -0 "$1" 2>/dev/null &&
	    [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}

# gone PID SECONDS: waits (bounded) until the process has exited; its exit
# status in GONE_RC.
gone() {
	GONE_RC=
	i=0
	while alive "$1"; do
		i=$((i + 1))
		[ $i -lt $(($2 * 20)) ] || return 1
		sleep 0.05
	done
	wait "$1"
	GONE_RC=$?
	return 0
}

# until_ok SECONDS CMD...: polls CMD until it succeeds (bounded).
until_ok() {
	uo_n=$(($1 * 20))
	shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt $uo_n ] || return 1
		sleep 0.05
	done
}

# logged TEXT: the daemon's log has a message holding TEXT.
logged() {
	jq -R -r 'fromjson? | .msg // empty' "$T/daemon.log" | grep -q -F -- "$1"
}

# state MODEL: the declared model's state in the daemon's status.
state() {
	mc --json status 2>/dev/null |
	    json ".models[] | select(.model == \"$1\") | .state"
}

rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# --- modelcached -n ------------------------------------------------------------

cat >"$T/good.conf" <<EOF
# a configuration as an operator writes it
store = $T/cstore
socket = "$T/crun/c.sock"   # quoted, with a comment
models = org/demo, org/two
max_size = 1.5GiB
log_format = json
stale_after = 5
refresh = 0
max_connections = 64
EOF
env -u MODELCACHE_STORE -u MODELCACHE_SOCKET "$MCD" -n -c "$T/good.conf" \
    >"$T/out" 2>"$T/err"
is "$?" 0 "modelcached -n with a good file exits 0"
grep -q "configuration ok: store '$T/cstore', socket '$T/crun/c.sock', 2 declared model(s)" \
    "$T/out"
ok $? "and says so, with what it read from the file"
[ ! -e "$T/cstore" ] && [ ! -e "$T/crun" ]
ok $? "and creates neither the store nor the socket"

# check_bad NAME PATTERN DESCRIPTION: the file $T/NAME.conf is refused with
# exit 2 and a message matching PATTERN.
check_bad() {
	"$MCD" -n -c "$T/$1.conf" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -eq 2 ] && grep -q -- "$2" "$T/err"; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "exit $rc (want 2)" "stderr: $(cat "$T/err")"
	fi
}
printf '# fine so far\nstore = %s\ncolour = blue\n' "$T/cstore" \
    >"$T/unknown.conf"
check_bad unknown "unknown.conf: 3: unknown key 'colour'" \
    "an unknown key: exit 2 with its line number"
printf 'store = %s\n\n\nmax_size = lots\n' "$T/cstore" >"$T/badsize.conf"
check_bad badsize "badsize.conf: 4: max_size: invalid size" \
    "a bad size: exit 2 with its line number"
printf 'log_format = xml\n' >"$T/badformat.conf"
check_bad badformat "badformat.conf: 1: log_format: must be text or json" \
    "a bad log format: exit 2 with its line number"
printf '\nstale_after = 0\n' >"$T/badstale.conf"
check_bad badstale "badstale.conf: 2: stale_after: .*out of range" \
    "stale_after 0: exit 2 with its line number"
printf 'models = "org/demo\n' >"$T/quote.conf"
check_bad quote "quote.conf: 1: models: unterminated quote" \
    "an unterminated quote: exit 2 with its line number"
printf 'models = ftp://example/x\n' >"$T/badmodel.conf"
check_bad badmodel "ftp://example/x" "a model the daemon cannot pull: exit 2"
check_bad absent "absent.conf" "a configuration file that is not there: exit 2"
MODELCACHE_MAX_SIZE=12XB "$MCD" -n -c "$T/good.conf" >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "MODELCACHE_MAX_SIZE" "$T/err"
ok $? "a bad MODELCACHE_MAX_SIZE in the environment: exit 2 naming it"
[ "$rc" -eq 2 ] || diag "exit $rc" "$(cat "$T/err")"
"$MCD" -n -c "$T/good.conf" --max-size 1x >"$T/out" 2>"$T/err"
is "$?" 2 "a bad --max-size: exit 2"

# --- status without a daemon -----------------------------------------------

run_fails 6 "cannot reach the daemon" "modelcache status with no daemon: exit 6" \
    mc status
run_fails 6 "" "modelcache status --ready with no daemon: exit 6" \
    mc status --ready

# --- a daemon with a configuration file ----------------------------------------

make_model "$T/repo" demo
make_model "$T/repo2" two
demo_lfs=$(sha256sum <"$T/repo/model.safetensors" | cut -c1-64)
two_lfs=$(sha256sum <"$T/repo2/model.safetensors" | cut -c1-64)
# The first pull of org/demo lasts about two seconds.
start_origin --repo org/demo="$T/repo" --repo org/two="$T/repo2" \
    --token "$TOKEN" --fault "slow:150000@/cdn/$demo_lfs"
ok $? "the test origin starts, wanting the token"
HF_TOKEN=$TOKEN
MODELCACHE_LOG_FORMAT=json
export HF_TOKEN MODELCACHE_LOG_FORMAT

printf 'models = org/demo\n' >"$T/mc.conf"
start_daemon -v -c "$T/mc.conf"
ok $? "the daemon starts with a configuration file declaring org/demo"
mc status --ready >"$T/out" 2>"$T/err"
is "$?" 1 "status --ready exits 1 while the declared model is pulling"
grep -q "model org/demo: pulling" "$T/out"
ok $? "status says the model is pulling"
until_ok 30 mc status --ready
ok $? "status --ready exits 0 once the model is pulled"
is "$(state org/demo)" ready "status says org/demo is ready"
is "$(stats ".bytes_by_sha256[\"$demo_lfs\"]")" 300000 \
    "the declared model came from the origin"

# The warm-up: a client's acquire, before the memory is measured.
client '{"op":"acquire","model":"org/demo"}' >"$T/out" 2>"$T/err"
ok $? "an acquire of the declared model is ready"
rss0=$(rss_kib "$DAEMON_PID")

# --- SIGHUP ------------------------------------------------------------------------

printf 'models = org/demo, org/two\n' >"$T/mc.conf"
kill -HUP "$DAEMON_PID"
two_ready() {
	[ "$(state org/two)" = ready ]
}
until_ok 30 two_ready
ok $? "SIGHUP with a second declared model: it is pulled and ready"
logged "configuration reloaded: 2 declared model(s)"
ok $? "the daemon logs the reload"
is "$(stats ".bytes_by_sha256[\"$two_lfs\"]")" 300000 \
    "the second model came from the origin"

printf 'models = org/demo\nmodels_extra = org/three\n' >"$T/mc.conf"
kill -HUP "$DAEMON_PID"
until_ok 10 logged "reload refused, the old configuration stays"
ok $? "SIGHUP with an unknown key: the daemon keeps the old configuration"
logged "mc.conf: 2: unknown key 'models_extra'"
ok $? "and logs why, with the line"
printf 'models = org/demo, ftp://nowhere/x\n' >"$T/mc.conf"
kill -HUP "$DAEMON_PID"
refused_twice() {
	[ "$(jq -R 'fromjson? | .msg // empty' "$T/daemon.log" |
	    grep -c 'reload refused')" -ge 2 ]
}
until_ok 10 refused_twice
ok $? "SIGHUP with a model it cannot pull: the old configuration stays"
mc --json status >"$T/st.json" 2>"$T/err"
ok $? "the daemon still answers status"
is "$(json '[.models[] | .model + "=" + .state] | join(" ")' <"$T/st.json")" \
    "org/demo=ready org/two=ready" "status still lists both models, ready"
kill -0 "$DAEMON_PID"
ok $? "the daemon is still running"

# --- the token stays secret --------------------------------------------------

client '{"op":"acquire","model":"org/absent"}' >"$T/absent.out" 2>&1
is "$?" 1 "an acquire of a repo the origin does not have fails"
json '.error.code' <"$T/absent.out" | tail -n 1 >"$T/code"
grep -q "unauthorized\|not_found" "$T/code"
ok $? "with unauthorized or not_found ($(cat "$T/code"))"
mc status >"$T/st.txt" 2>&1
mc --json status >>"$T/st.txt" 2>&1
grep -q -F "$TOKEN" "$T/st.txt" "$T/absent.out"
is "$?" 1 "the token is not in status or in the answers"

# --- bad clients -------------------------------------------------------------

cat >"$T/bad.py" <<'EOF'
# bad.py SOCKET: bad clients, each on its own connection; a JSON summary.
import json, socket, sys, threading, time

path = sys.argv[1]
out = {}
HELLO = b'{"op":"hello","protocol":1,"client":"bad.py"}\n'


def conn(timeout=20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(timeout)
    return s


def lines_until_eof(s, limit=10):
    """Reads answer lines until the daemon hangs up: (lines, hung_up)."""
    buf, lines = b"", []
    while len(lines) < limit:
        try:
            b = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return lines, True
        except socket.timeout:
            return lines, False
        if not b:
            return lines, True
        buf += b
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            lines.append(json.loads(line))
    return lines, False


class Reader:
    def __init__(self, s):
        self.f = s.makefile("rb")

    def next(self):
        line = self.f.readline()
        return json.loads(line) if line else None


def hello(s):
    s.sendall(HELLO)
    r = Reader(s)
    a = r.next()
    assert a and a.get("ok"), a
    return r


def code(a):
    return (a or {}).get("error", {}).get("code")


def never_hello():
    s = conn(30)
    t0 = time.monotonic()
    lines, hung = lines_until_eof(s)
    out["never_hello"] = {"codes": [code(a) for a in lines],
                          "hung_up": hung,
                          "seconds": round(time.monotonic() - t0, 1)}


def before_hello():
    s = conn()
    s.sendall(b'{"op":"status"}\n')
    lines, hung = lines_until_eof(s)
    out["before_hello"] = {"codes": [code(a) for a in lines], "hung_up": hung,
                           "msg": [a["error"]["message"] for a in lines
                                   if "error" in a]}


def oversize():
    s = conn()
    r = hello(s)
    big = b'{"op":"status","pad":"' + b"a" * (1024 * 1024 + 1024) + b'"}\n'

    def send():
        try:
            s.sendall(big)
        except OSError:
            pass
    t = threading.Thread(target=send)
    t.start()
    lines, hung = lines_until_eof(s)
    t.join(20)
    out["oversize"] = {"codes": [code(a) for a in lines], "hung_up": hung,
                       "msg": [a["error"]["message"] for a in lines
                               if "error" in a]}


def answers_then_status(name, reqs):
    """Each request gets bad_request; the connection then still works."""
    s = conn()
    r = hello(s)
    codes = []
    for q in reqs:
        s.sendall(q + b"\n")
        codes.append(code(r.next()))
    s.sendall(b'{"op":"status"}\n')
    st = r.next()
    out[name] = {"codes": codes, "after": bool(st and st.get("ok"))}


WRONG_TYPES = [
    b'{"op":"acquire","model":42}',
    b'{"op":"hello","protocol":"1"}',
    b'{"op":"acquire","model":"org/demo","wait":"yes"}',
    b'{"op":"acquire","model":"org/demo","timeout_ms":-5}',
    b'{"op":"release","lease":5}',
    b'{"op":42}',
    b'[1,2]',
    b'"a string"',
    b'{}',
]
MALFORMED = [b'{"op":"acquire",', b'{op:status}', b'\x00\xff\xfe', b'',
             b'{"op":"status"}}', b'{"op":"hello","client":"\xff"}']


def flood_unread():
    """Status requests, never reading the answers, until cut off."""
    s = conn(30)
    hello(s)
    batch = b'{"op":"status"}\n' * 200
    sent, why = 0, "limit"
    t0 = time.monotonic()
    try:
        while sent < 400000:
            s.sendall(batch)
            sent += 200
    except (BrokenPipeError, ConnectionResetError) as e:
        why = type(e).__name__
    except socket.timeout:
        why = "timeout"
    out["flood_unread"] = {"sent": sent, "why": why,
                           "seconds": round(time.monotonic() - t0, 1)}


def churn():
    """500 connections opened and dropped, in batches of 100: silent ones,
    ones that say hello, ones cut mid-line, ones that acquire and go before
    the answer.  After each batch the daemon forgets them all: its count
    of connections falls back to what it was before the batch."""
    w = conn()
    wr = hello(w)

    def status():
        w.sendall(b'{"op":"status"}\n')
        return wr.next()
    back, leases, slowest = [], [], 0.0
    for _ in range(5):
        base = status()["connections"]
        socks = []
        for i in range(100):
            s = conn()
            if i % 4 == 1:
                s.sendall(HELLO)
            elif i % 4 == 2:
                s.sendall(b'{"op":"hello","proto')
            elif i % 4 == 3:
                s.sendall(HELLO + b'{"op":"acquire","model":"org/demo"}\n')
            socks.append(s)
        for s in socks:
            s.close()
        t0 = time.monotonic()
        while True:
            st = status()
            if st["connections"] <= base or time.monotonic() - t0 > 20:
                break
            time.sleep(0.05)
        slowest = max(slowest, time.monotonic() - t0)
        back.append(st["connections"] <= base)
        leases.append(len(st["leases"]))
    out["churn"] = {"back": back, "leases_after": leases,
                    "slowest": round(slowest, 2)}


def flood_bad():
    """2000 bad lines on one connection: 2000 bad_request answers."""
    s = conn()
    r = hello(s)
    kinds = WRONG_TYPES + MALFORMED + [b'{"op":"explode"}']
    lines = [kinds[i % len(kinds)] for i in range(2000)]
    payload = b"".join(l + b"\n" for l in lines)
    t = threading.Thread(target=s.sendall, args=(payload,))
    t.start()
    codes = {}
    for _ in range(2000):
        a = r.next()
        if a is None:
            break
        codes[code(a)] = codes.get(code(a), 0) + 1
    t.join(20)
    s.sendall(b'{"op":"status"}\n')
    st = r.next()
    out["flood_bad"] = {"codes": codes, "after": bool(st and st.get("ok"))}


def run(name, f, *args):
    try:
        f(*args)
    except Exception as e:
        out[name] = {"exception": repr(e)}


th = threading.Thread(target=run, args=("never_hello", never_hello))
th.start()
run("before_hello", before_hello)
run("oversize", oversize)
run("malformed", answers_then_status, "malformed", MALFORMED)
run("wrong_types", answers_then_status, "wrong_types", WRONG_TYPES)
run("unknown_op", answers_then_status, "unknown_op",
    [b'{"op":"explode"}', b'{"op":"HELLO","protocol":1}'])
run("bad_protocol", answers_then_status, "bad_protocol",
    [b'{"op":"hello","protocol":2}'])
run("flood_unread", flood_unread)
run("churn", churn)
run("flood_bad", flood_bad)
th.join(40)
print(json.dumps(out, sort_keys=True))
EOF

timeout 120 python3 "$T/bad.py" "$SOCK" >"$T/bad.json" 2>"$T/bad.err"
ok $? "the bad clients ran to their end"
diag "$(cat "$T/bad.json" "$T/bad.err")"
bad() {
	json "$1" <"$T/bad.json"
}
is "$(bad '.never_hello.codes | join(",")')" timeout \
    "a client that never says hello gets a timeout error"
is "$(bad '.never_hello.hung_up')" true "and is hung up on"
s=$(bad '.never_hello.seconds')
[ "${s%.*}" -ge 9 ] && [ "${s%.*}" -lt 20 ]
ok $? "after the 10 s hello timeout (${s} s)"
is "$(bad '.before_hello.codes | join(",")')" bad_request \
    "a request before hello: bad_request"
is "$(bad '.before_hello.hung_up')" true "and the connection is closed"
is "$(bad '.oversize.codes | join(",")')" bad_request \
    "a line over 1 MiB: bad_request"
bad '.oversize.msg[0]' | grep -q "1 MiB"
ok $? "saying the message is over 1 MiB"
is "$(bad '.oversize.hung_up')" true "and the connection is cut"
is "$(bad '.malformed.codes | unique | join(",")')" bad_request \
    "malformed JSON: bad_request, each"
is "$(bad '.malformed.codes | length')" 6 "all 6 malformed lines answered"
is "$(bad '.malformed.after')" true "the connection then still answers status"
is "$(bad '.wrong_types.codes | unique | join(",")')" bad_request \
    "wrong types: bad_request, each"
is "$(bad '.wrong_types.codes | length')" 9 "all 9 answered"
is "$(bad '.wrong_types.after')" true "the connection then still answers status"
is "$(bad '.unknown_op.codes | join(",")')" bad_request,bad_request \
    "unknown ops: bad_request"
is "$(bad '.bad_protocol.codes | join(",")')" unsupported_protocol \
    "hello with protocol 2: unsupported_protocol"
case $(bad '.flood_unread.why') in
BrokenPipeError | ConnectionResetError) ok 0 "a client that never reads its answers is cut off" ;;
*) ok 1 "a client that never reads its answers is cut off" ;;
esac
logged "does not read its answers: cut off"
ok $? "the daemon logs that it cut the client off"
logged "no hello in time: cut off"
ok $? "the daemon logs the client without hello"
is "$(bad '.churn.back | map(tostring) | join(",")')" true,true,true,true,true \
    "500 connections opened and dropped: after each 100, the daemon counts them gone"
s=$(bad '.churn.slowest')
[ "${s%.*}" -lt 5 ]
ok $? "within moments ($s s for the slowest batch)"
is "$(bad '.churn.leases_after | join(",")')" 0,0,0,0,0 \
    "and no lease of the acquires that went away stays"
logged "connections: refused"
is "$?" 1 "none of them was refused as one too many"
is "$(bad '.flood_bad.codes.bad_request')" 2000 \
    "2000 bad lines: 2000 bad_request answers"
is "$(bad '.flood_bad.after')" true "and the connection still answers status"

client '{"op":"acquire","model":"org/demo"}' >"$T/out" 2>"$T/err"
ok $? "after all that, a normal acquire is ready"
is "$(tail -n 1 "$T/out" | json '.files | length')" 5 "with the model's 5 files"
rss1=$(rss_kib "$DAEMON_PID")
diag "VmRSS: $rss0 KiB after the warm-up, $rss1 KiB after the bad clients"
[ $((rss1 - rss0)) -lt $((32 * 1024)) ]
ok $? "memory grew by less than 32 MiB ($((rss1 - rss0)) KiB)"

# --- SIGTERM -------------------------------------------------------------------

t0=$(date +%s%3N)
kill -TERM "$DAEMON_PID"
gone "$DAEMON_PID" 10
ok $? "SIGTERM while idle: the daemon exits"
took=$(($(date +%s%3N) - t0))
DAEMON_PID=
is "$GONE_RC" 0 "with status 0"
[ "$took" -lt 3000 ]
ok $? "promptly ($took ms)"
[ ! -e "$SOCK" ]
ok $? "the socket file is removed"

# --- the log -------------------------------------------------------------------

n=$(grep -c . "$T/daemon.log")
[ "$n" -gt 100 ]
ok $? "the daemon logged ($n lines)"
jq -R -r '. as $l | try (fromjson | if (.ts | type) == "string" and
    (.level | type) == "string" and (.msg | type) == "string" then empty
    else "no ts/level/msg: " + $l end) catch "not JSON: " + $l' \
    "$T/daemon.log" >"$T/badlog" 2>&1
is "$(grep -c . "$T/badlog")" 0 "every log line is JSON with ts, level and msg"
[ -s "$T/badlog" ] && diag "$(head -n 5 "$T/badlog")"
grep -q -F "$TOKEN" "$T/daemon.log"
is "$?" 1 "the token never appears in the log"

# --- valgrind ------------------------------------------------------------------

cat >"$T/session.py" <<'EOF'
# session.py SOCKET MODEL: hello, acquire, release, status; prints the codes.
import json, socket, sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(60)
f = s.makefile("rwb")


def ask(obj):
    f.write((json.dumps(obj) + "\n").encode())
    f.flush()
    while True:
        a = json.loads(f.readline())
        if a.get("event") != "progress":
            return a


out = [ask({"op": "hello", "protocol": 1})]
out.append(ask({"op": "acquire", "model": sys.argv[2]}))
out.append(ask({"op": "release", "lease": out[-1].get("lease", "")}))
out.append(ask({"op": "status"}))
print(" ".join("%s:%s" % (a.get("ok"), a.get("event", "")) for a in out))
EOF

if [ -n "$SANITIZED" ]; then
	vg_skip="the daemon is built with AddressSanitizer"
elif ! command -v valgrind >/dev/null 2>&1; then
	vg_skip="valgrind is not installed"
else
	vg_skip=
fi
if [ -z "$vg_skip" ]; then
	VSOCK="$T/run/vg.sock"
	valgrind --leak-check=full --errors-for-leak-kinds=definite \
	    --error-exitcode=99 --log-file="$T/valgrind.log" \
	    "$MCD" -v -c /dev/null --store "$STORE" --socket "$VSOCK" \
	    >"$T/vg-daemon.log" 2>&1 &
	VG=$!
	EXTRA_PIDS="$EXTRA_PIDS $VG"
	until_ok 120 mc status --socket "$VSOCK"
	ok $? "the daemon starts under valgrind"
	timeout 120 python3 "$T/session.py" "$VSOCK" org/demo >"$T/out" 2>"$T/err"
	is "$(cat "$T/out")" "True: True:ready True: True:" \
	    "under valgrind: hello, acquire (present), release, status"
	kill -TERM "$VG"
	gone "$VG" 120
	ok $? "it stops on SIGTERM"
	is "$GONE_RC" 0 "valgrind: exit status 0 (no errors, no definite leaks)"
	grep -q "ERROR SUMMARY: 0 errors" "$T/valgrind.log"
	ok $? "valgrind's summary: 0 errors"
	grep "definitely lost:" "$T/valgrind.log" | grep -v -q " 0 bytes in 0 blocks"
	is "$?" 1 "valgrind: nothing definitely lost"
	[ "$GONE_RC" = 0 ] || diag "$(grep -A12 'definitely lost in\|Invalid\|uninitialised' "$T/valgrind.log" | head -n 60)"
else
	for d in "the daemon starts under valgrind" \
	    "under valgrind: hello, acquire (present), release, status" \
	    "it stops on SIGTERM" "valgrind: exit status 0" \
	    "valgrind's summary: 0 errors" "valgrind: nothing definitely lost"; do
		ok 0 "$d # SKIP $vg_skip"
	done
fi
done_testing
