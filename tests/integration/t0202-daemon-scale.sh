#!/bin/sh
# modelcached at scale and across processes: 200 clients acquiring one
# absent model at once share one pull that fetches each blob once and all
# get the same answer; two daemons on one store fetch each blob once; a
# daemon killed with SIGKILL in the middle of a pull is taken over by
# another on the same store, or by itself restarted, which fetch only the
# ranges still missing; a client that reconnects then gets ready.
. "$top_srcdir/tests/lib/tap.sh"

unset MODELCACHE_MODELS MODELCACHE_MAX_SIZE MODELCACHE_LOG_FORMAT HF_TOKEN \
    HF_TOKEN_PATH
# A claim or lease of a dead process on this host is taken over at once;
# 2 s bounds the rest.
MODELCACHE_STALE_AFTER=2
export MODELCACHE_STALE_AFTER

# Daemons of our own beside tap.sh's one, killed at exit.
EXTRA_PIDS=
trap 'for p in $EXTRA_PIDS; do kill -9 "$p" 2>/dev/null; done; tap_cleanup' \
    EXIT

# spawn SOCKET LOG ARGS...: one more modelcached on $STORE, waited for until
# it answers status; its pid in SPAWNED.
spawn() {
	sp_sock=$1 sp_log=$2
	shift 2
	"$MCD" -v --store "$STORE" --socket "$sp_sock" "$@" >>"$sp_log" 2>&1 &
	SPAWNED=$!
	EXTRA_PIDS="$EXTRA_PIDS $SPAWNED"
	i=0
	until "$MC" status --socket "$sp_sock" >/dev/null 2>&1; do
		alive "$SPAWNED" || return 1
		i=$((i + 1))
		[ $i -lt 1000 ] || return 1
		sleep 0.01
	done
}

# wait_ready SOCKET SECONDS: polls status --ready until it says yes.
wait_ready() {
	i=0
	until "$MC" status --ready --socket "$1" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt $(($2 * 20)) ] || return 1
		sleep 0.05
	done
}

# alive PID: the process runs (a zombie waiting to be reaped does not).
alive() {
	kill -0 "$1" 2>/dev/null &&
	    [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}

# gone PID SECONDS: waits (bounded) until the process has exited.
gone() {
	i=0
	while alive "$1"; do
		i=$((i + 1))
		[ $i -lt $(($2 * 20)) ] || return 1
		sleep 0.05
	done
	wait "$1" 2>/dev/null
	return 0
}

# saved_ranges SHA256: how many ranges the partial file has saved.
saved_ranges() {
	f="$STORE/tmp/partial.$1.ranges"
	[ -f "$f" ] || { echo 0; return; }
	tail -n +2 "$f" | grep -c .
}

# mid_pull SHA256 FAULT SECONDS: polls until two of the big file's ranges
# are saved and the one that stalls has been given its stalled half: the
# moment to kill the puller.
mid_pull() {
	i=0
	until [ "$(saved_ranges "$1")" -ge 2 ] &&
	    [ "$(stats ".faults[\"$2\"]")" -ge 1 ]; do
		i=$((i + 1))
		[ $i -lt $(($3 * 50)) ] || return 1
		sleep 0.02
	done
}

sum_sizes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }'; }
MiB=$((1024 * 1024))

make_model "$T/repo" scale
openssl enc -aes-128-ctr -nosalt -pass pass:scale </dev/zero 2>/dev/null |
    head -c $((12 * MiB)) >"$T/repo/sub/big.safetensors"
big=$(sha_of "$T/repo/sub/big.safetensors")
total=$(sum_sizes "$T/repo")

# --- 200 clients, one absent model -----------------------------------------

cat >"$T/crowd.py" <<'EOF'
# crowd.py SOCKET MODEL N: N clients connect and say hello, then all ask for
# MODEL at once; meanwhile one more connection follows the pull in status.
# Prints a JSON summary.
import json, socket, sys, threading, time

path, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
barrier = threading.Barrier(n + 1, timeout=60)
results = [None] * n

def connect():
    for _ in range(600):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.settimeout(60)
            return s
        except (BlockingIOError, InterruptedError, ConnectionRefusedError):
            s.close()
            time.sleep(0.01)
    raise RuntimeError("cannot connect")

def request(f, obj):
    f.write((json.dumps(obj) + "\n").encode())
    f.flush()
    while True:
        line = f.readline()
        if not line:
            raise RuntimeError("hung up")
        a = json.loads(line)
        if a.get("event") != "progress":
            return a

def one(i):
    try:
        s = connect()
        f = s.makefile("rwb")
        h = request(f, {"op": "hello", "protocol": 1, "client": "crowd/%d" % i})
        barrier.wait()
        if not h.get("ok"):
            results[i] = {"error": h}
            return
        a = request(f, {"op": "acquire", "model": model})
        results[i] = a
        s.close()
    except Exception as e:
        results[i] = {"error": repr(e)}
        try:
            barrier.abort()
        except Exception:
            pass

threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
most = 0
t0 = time.monotonic()
try:
    barrier.wait()
    s = connect()
    f = s.makefile("rwb")
    request(f, {"op": "hello", "protocol": 1})
    while time.monotonic() - t0 < 60:
        st = request(f, {"op": "status"})
        for p in st.get("pulls", []):
            most = max(most, p.get("clients", 0))
        if not st.get("pulls") and all(r is not None for r in results):
            break
        time.sleep(0.02)
    s.close()
except Exception as e:
    sys.stderr.write("crowd: status: %r\n" % e)
for t in threads:
    t.join(60)
ready = [r for r in results if r and r.get("ok") and r.get("event") == "ready"]
print(json.dumps({
    "ready": len(ready),
    "most_waiting": most,
    "distinct_files": len({json.dumps(r["files"], sort_keys=True) for r in ready}),
    "distinct_commits": len({r["commit"] for r in ready}),
    "distinct_leases": len({r["lease"] for r in ready}),
    "nfiles": len(ready[0]["files"]) if ready else 0,
    "seconds": round(time.monotonic() - t0, 2),
    "not_ready": [r for r in results if r not in ready][:5],
}))
EOF

start_origin --repo org/demo="$T/repo" --fault "slow:4000000@/cdn/$big"
ok $? "the test origin starts, serving the big file at 4 MB/s"
start_daemon -v
ok $? "the daemon starts on an empty store"
start=$(date +%s)
timeout 120 python3 "$T/crowd.py" "$SOCK" hf://org/demo@main 200 \
    >"$T/crowd.json" 2>"$T/crowd.err"
ok $? "the crowd driver ran to its end"
elapsed=$(($(date +%s) - start))
diag "$(cat "$T/crowd.json" "$T/crowd.err")"
is "$(json '.ready' <"$T/crowd.json")" 200 "all 200 clients got ready"
is "$(json '.most_waiting' <"$T/crowd.json")" 200 \
    "all 200 waited on one pull at the same time"
is "$(json '.distinct_files' <"$T/crowd.json")" 1 \
    "all 200 got the same files array"
is "$(json '.nfiles' <"$T/crowd.json")" 6 "and it lists the model's 6 files"
is "$(json '.distinct_commits' <"$T/crowd.json")" 1 "and the same commit"
is "$(json '.distinct_leases' <"$T/crowd.json")" 200 "each with a lease of its own"
is "$(stats ".bytes_by_sha256[\"$big\"]")" $((12 * MiB)) \
    "the origin served the big file exactly once"
is "$(stats '.bytes')" "$total" "the origin served every blob exactly once"
[ "$elapsed" -lt 40 ]
ok $? "200 clients took well under a minute (${elapsed} s)"
run_ok "the pulled model verifies" mc verify
stop_daemon
is "$DAEMON_RC" 0 "the daemon stops with status 0"

# --- two daemons, one store ------------------------------------------------

STORE="$T/store2"
MODELCACHE_STORE=$STORE
start_origin --repo org/demo="$T/repo" --fault "slow:4000000@/cdn/$big"
spawn "$T/run/a.sock" "$T/a.log" --models org/demo
ok $? "daemon A starts with --models org/demo"
A=$SPAWNED
spawn "$T/run/b.sock" "$T/b.log" --models org/demo
ok $? "daemon B starts on the same store with the same model"
B=$SPAWNED
wait_ready "$T/run/a.sock" 60
ok $? "A says the model is ready"
wait_ready "$T/run/b.sock" 60
ok $? "B says the model is ready"
is "$(stats ".bytes_by_sha256[\"$big\"]")" $((12 * MiB)) \
    "two daemons: the origin served the big file once"
is "$(stats '.bytes')" "$total" "two daemons: every blob was served once"
run_ok "the store verifies" mc verify
kill -TERM "$A" "$B"
gone "$A" 15 && gone "$B" 15
ok $? "both stop on SIGTERM"

# --- kill -9 mid-pull; another daemon on the store takes over -----------------

mkdir -p "$T/bigrepo"
printf '{"model_type":"big"}' >"$T/bigrepo/config.json"
openssl enc -aes-128-ctr -nosalt -pass pass:takeover </dev/zero 2>/dev/null |
    head -c $((96 * MiB)) >"$T/bigrepo/model.safetensors"
bigsha=$(sha_of "$T/bigrepo/model.safetensors")
bigtotal=$(sum_sizes "$T/bigrepo")
STORE="$T/store3"
MODELCACHE_STORE=$STORE
# The first range request sends half its 32 MiB and stalls; the other two
# ranges finish and are saved.
STALL='stall:60@/cdn/*1'
start_origin --repo org/big="$T/bigrepo" --fault "$STALL"
spawn "$T/run/a.sock" "$T/a.log" --models org/big
ok $? "daemon A starts pulling a 96 MiB model"
A=$SPAWNED
mid_pull "$bigsha" "$STALL" 30
ok $? "A is mid-pull: 2 of 3 ranges saved, the third stalled"
kill -9 "$A"
gone "$A" 10
ok $? "A is killed with SIGKILL"
diag "A left $(saved_ranges "$bigsha") ranges, the origin served $(stats .bytes) bytes"
is "$(mc ls --json | json 'length')" 0 "nothing is published yet"
# A dead process on this host is known dead at once; make A's claim look
# like a daemon's on another node, its heartbeat fresh, so that only the
# stale limit lets B take it.
claim="$STORE/claims/$bigsha"
[ -f "$claim" ]
ok $? "A's claim on the big blob stays"
t0=$(date +%s%3N)
printf 'node-b.4026531836.42 %s\n' "$(cut -d' ' -f2- <"$claim")" \
    >"$T/claim.tmp" && mv "$T/claim.tmp" "$claim"
spawn "$T/run/b.sock" "$T/b.log" --models org/big
ok $? "daemon B starts on the same store with the same model"
B=$SPAWNED
wait_ready "$T/run/b.sock" 60
ok $? "B takes the pull over and completes it"
took=$(($(date +%s%3N) - t0))
# (File times come from the kernel's coarse clock, a few ms behind t0.)
[ "$took" -ge 1900 ]
ok $? "B waited for the stale limit (2 s) before taking over ($took ms)"
run_ok "mc verify after the takeover" mc verify
served=$(stats '.bytes')
[ "$served" -lt $((bigtotal * 12 / 10)) ]
ok $? "the origin served less than 1.2x the model ($served of $bigtotal bytes)"
grep -q "pull 'hf://org/big@main' done" "$T/b.log"
ok $? "B's log says it finished the pull"
kill -TERM "$B"
gone "$B" 15
ok $? "B stops on SIGTERM"

# --- kill -9 mid-pull; the daemon restarted resumes, a client reconnects ------

openssl enc -aes-128-ctr -nosalt -pass pass:restart </dev/zero 2>/dev/null |
    head -c $((96 * MiB)) >"$T/bigrepo/model.safetensors"
bigsha=$(sha_of "$T/bigrepo/model.safetensors")
STORE="$T/store4"
MODELCACHE_STORE=$STORE
start_origin --repo org/big2="$T/bigrepo" --fault "$STALL"
start_daemon -v
ok $? "the daemon starts with nothing declared"
client '{"op":"acquire","model":"org/big2"}' >"$T/c1.out" 2>"$T/c1.err" &
C1=$!
mid_pull "$bigsha" "$STALL" 30
ok $? "a client's acquire has the pull mid-way: 2 of 3 ranges saved"
kill -9 "$DAEMON_PID"
gone "$DAEMON_PID" 10
ok $? "the daemon is killed with SIGKILL"
DAEMON_PID=
gone "$C1" 10
wait "$C1"
c1=$?
is "$c1" 2 "the waiting client sees the daemon hang up"
grep -q "hung up" "$T/c1.err"
ok $? "and says so"
start_daemon -v
ok $? "the daemon restarts on the socket the dead one left"
timeout 60 python3 "$top_srcdir/tests/lib/mcclient.py" "$SOCK" \
    '{"op":"acquire","model":"org/big2"}' >"$T/c2.out" 2>"$T/c2.err"
ok $? "the client reconnects and its acquire gets ready"
is "$(tail -n 1 "$T/c2.out" | json '.event')" ready "the last answer is ready"
is "$(tail -n 1 "$T/c2.out" | json '.files | map(select(.path ==
    "model.safetensors")) | .[0].sha256')" "$bigsha" \
    "with the big file's digest"
served=$(stats '.bytes')
[ "$served" -lt $((bigtotal * 12 / 10)) ]
ok $? "the pull resumed: the origin served less than 1.2x the model ($served of $bigtotal bytes)"
run_ok "mc verify after the restart" mc verify
stop_daemon
is "$DAEMON_RC" 0 "the restarted daemon stops with status 0"
done_testing
