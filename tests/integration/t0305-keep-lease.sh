#!/bin/sh
# A server's lease across the daemon's restarts, as when a pod's sidecar
# container crashes and is started again: modelcache-preload --keep-lease
# (modelcache-preload(1)), then the Python client's acquire(keep=True).  Without the option the lease ends with the daemon
# and a gc evicts the model under the running server (shown first, so that
# the rest shows something); with it, preload stays as the server's
# parent and takes the lease again on the same commit, after a kill -9 and
# after a clean stop, even when the revision it named has moved on at the
# origin meanwhile; gc then keeps the model; the server's end ends the
# lease; signals still reach the server.  The Python client's keeper does
# the same after a kill -9, and ends with release().
#
# Conditions are polled, bounded (wait_for); nothing waits on a timer.
. "$top_srcdir/tests/lib/tap.sh"

unset HF_TOKEN HF_TOKEN_PATH MODELCACHE_REFRESH MODELCACHE_MAX_SIZE \
    MODELCACHE_ALLOW_UIDS MODELCACHE_MAX_CONNECTIONS MODELCACHE_MODELS \
    MODELCACHE_STALE_AFTER MODELCACHE_MODEL_DIR MODELCACHE_LEASE_FD

PRELOAD="$top_builddir/modelcache-preload"
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; tap_cleanup' EXIT

status_is() {
	client '{"op":"status"}' | tail -n 1 | jqe "$1"
}
# serve NAME: the command; its pid into $T/NAME.pid, then it waits on the
# fifo $T/NAME.go and exits 0 (or dies of the signal preload passes on).
serve() {
	rm -f "$T/$1.go" "$T/$1.pid"
	mkfifo "$T/$1.go"
	"$PRELOAD" $KEEP_OPT --model "$MODEL" -- sh -c \
	    'echo $$ >"$1.pid"; read -r _ <"$1.go"' sh "$T/$1" \
	    >"$T/$1.out" 2>"$T/$1.err" &
	P=$!
	BG="$BG $P"
	wait_for test -s "$T/$1.pid"
}
# go NAME: lets the command NAME end (bounded, never hangs the test).
go() {
	timeout 30 sh -c 'echo go >"$1"' go "$T/$1.go"
}
# restart SIGNAL: the daemon stopped with SIGNAL and started again.
restart() {
	stop_daemon "$1" && start_daemon
}

make_model "$T/demo" demo
make_model "$T/demo2" demo2
start_origin --repo "org/demo=$T/demo"
start_daemon
ok $? "the origin and the daemon start"

# --- without --keep-lease: the restart ends the lease --------------------
KEEP_OPT= MODEL=org/demo
serve plain
ok $? "preload runs a command on org/demo"
wait_for status_is '.leases | length == 1'
ok $? "which holds a lease"
restart KILL
ok $? "the daemon is killed (-9) and started again"
kill -0 "$P"
ok $? "the command runs on"
status_is '.leases | length == 0' >/dev/null
ok $? "but no lease holds its model any more"
run_ok "so gc to 0 evicts the model under it" mc gc --max-size 0
is "$(mc ls --json | jq length)" 0 "(the store is empty)"
go plain
wait "$P"
is $? 0 "the command ends"

# --- --keep-lease ------------------------------------------------------------
KEEP_OPT=--keep-lease MODEL=hf://org/demo@main
serve keep
ok $? "preload --keep-lease runs the command"
wait_for status_is '.leases | length == 1'
ok $? "which holds a lease"
commit=$(client '{"op":"status"}' | tail -n 1 | jq -r '.leases[0].commit')
is "$(sed -n 's/^PPid:\t*//p' "/proc/$(cat "$T/keep.pid")/status")" "$P" \
    "preload stays as the command's parent"
status_is ".leases[0].pid == $P" >/dev/null
ok $? "and holds the lease's connection"

restart KILL
ok $? "the daemon is killed (-9) and started again"
wait_for status_is "(.leases | length) == 1 and .leases[0].commit == \"$commit\""
ok $? "preload takes the lease again, on the same commit"
grep -q "the daemon closed the connection, ending the lease on $MODEL" \
    "$T/keep.err"
ok $? "saying that the lease ended"
grep -Eq "lease taken again: hf://org/demo@$commit, commit [0-9a-f]{12}," \
    "$T/keep.err"
ok $? "and that it took it again, on the commit"
run_fails 7 "in use (leased)" "gc to 0 keeps the model" mc gc --max-size 0
is "$(mc ls --json | jq -r 'map(.repo) | join(",")')" "org/demo" \
    "the model is still there"

# main moves on at the origin while the daemon is away: the lease taken
# again is still on the commit the server runs.
stop_daemon TERM
ok $? "the daemon stops cleanly ($DAEMON_RC)"
start_origin --repo "org/demo=$T/demo2"
MODELCACHE_REFRESH=0 start_daemon
ok $? "the origin now serves another main; the daemon starts again"
wait_for status_is "(.leases | length) == 1 and .leases[0].commit == \"$commit\""
ok $? "preload takes the lease again, on the commit the server runs"
new=$(client '{"op":"acquire","model":"hf://org/demo@main"}' | tail -n 1 |
    jq -r .commit)
[ -n "$new" ] && [ "$new" != "$commit" ]
ok $? "while main is another commit now ($new)"
is "$(grep -c 'lease taken again' "$T/keep.err")" 2 \
    "one line for each time it took the lease again"

# A daemon that fails at each start: on its socket, something that closes
# every connection at once, three times; preload tries on, says so once.
stop_daemon TERM
timeout 60 python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
for _ in range(3):
    s.accept()[0].close()
os.unlink(sys.argv[1])
' "$SOCK"
ok $? "preload tries three times on a socket that closes each connection"
is "$(awk '/the daemon closed the connection/ { n = 0 }
    /cannot take the lease again yet \(connect: / { n++ } END { print n }' \
    "$T/keep.err")" 1 "and says once that it cannot take the lease yet"
kill -0 "$P"
ok $? "the command runs on"
start_daemon
wait_for status_is "(.leases | length) == 1 and .leases[0].commit == \"$commit\""
ok $? "the daemon back, the lease is taken again"

go keep
wait "$P"
is $? 0 "the command ends: preload exits with its status"
wait_for status_is '.leases | length == 0'
ok $? "and the lease ends with it"
run_ok "gc to 0 then evicts both commits" mc gc --max-size 0

# Signals still reach the command through the keeping parent.
KEEP_OPT=--keep-lease MODEL=org/demo
serve sig
ok $? "preload --keep-lease on the bare org/demo"
wait_for status_is '.leases | length == 1'
kill -TERM "$P"
wait "$P"
is $? 143 "SIGTERM to preload reaches the command: 128 + 15"
! kill -0 "$(cat "$T/sig.pid")" 2>/dev/null
ok $? "and the command is gone"
wait_for status_is '.leases | length == 0'
ok $? "and the lease with it"

# --- the Python client: acquire(keep=True) -----------------------------------
# keep.py MODEL DIR: acquires with keep=True, logging to stderr; writes
# DIR/py.commit, then does what each line of the fifo DIR/py.cmd says:
# "release" (then waits for the keeper thread to end, at most 30 s, and
# writes DIR/py.released with the threads left), "exit".
cat >"$T/keep.py" <<'EOF'
import logging, sys, threading, time
import modelcache

logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                    format="%(name)s: %(message)s")
model, d = sys.argv[1], sys.argv[2]
m = modelcache.acquire(model, keep=True)
open(d + "/py.commit", "w").write(m.commit)
while True:
    with open(d + "/py.cmd") as f:
        cmd = f.readline().strip()
    if cmd == "release":
        m.release()
        end = time.monotonic() + 30
        while threading.active_count() > 1 and time.monotonic() < end:
            time.sleep(0.05)
        open(d + "/py.released", "w").write(str(threading.active_count()))
    elif cmd == "exit":
        break
EOF
# py CMD: a line to keep.py (bounded).
py() {
	timeout 30 sh -c 'echo "$1" >"$2"' py "$1" "$T/py.cmd"
}
mkfifo "$T/py.cmd"
PYTHONPATH="$top_srcdir/inference/python" python3 "$T/keep.py" \
    hf://org/demo@main "$T" >"$T/py.out" 2>"$T/py.err" &
P=$!
BG="$BG $P"
wait_for test -s "$T/py.commit"
ok $? "Python: acquire(keep=True) of hf://org/demo@main"
pycommit=$(cat "$T/py.commit")
held="(.leases | length) == 1 and .leases[0].commit == \"$pycommit\""
wait_for status_is "$held"
ok $? "which holds a lease"
restart KILL
ok $? "the daemon is killed (-9) and started again"
wait_for status_is "$held"
ok $? "the keeper thread takes the lease again, on the same commit"
grep -q "^modelcache: lease taken again: hf://org/demo@$pycommit, " \
    "$T/py.err"
ok $? "logging it to the modelcache logger"
run_fails 7 "in use (leased)" "gc to 0 keeps the model" mc gc --max-size 0
py release
wait_for test -s "$T/py.released"
is "$(cat "$T/py.released")" 1 "release(): the keeper thread ends"
wait_for status_is '(.leases | length) == 0'
ok $? "and the lease with it"
py exit
wait "$P"
is $? 0 "the program exits 0"

done_testing
