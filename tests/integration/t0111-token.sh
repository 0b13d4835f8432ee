#!/bin/sh
# The Hub token: read from HF_TOKEN or the file HF_TOKEN_PATH names,
# trimmed alike; and a process that holds one cannot dump core (it is not
# dumpable, so /proc/<pid> belongs to root, whatever user it runs as),
# while one that holds none is dumpable.  Where the token may go is
# t0110's (the address rules need a network namespace).
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/repo" token
unset HF_TOKEN HF_TOKEN_PATH

origin() {
	start_origin --repo org/demo="$T/repo" --token sekrit "$@"
	ok $? "the test origin starts, wanting the token ($*)"
	rm -rf "$STORE"
}

# 1. A token file with whitespace around the token, as editors and
# Secrets leave it, and HF_TOKEN with the same: both work.
origin
printf '\n  sekrit \n\n' >"$T/token"
run_ok "a token file with whitespace around the token works" \
    env HF_TOKEN_PATH="$T/token" "$MC" pull org/demo
rm -rf "$STORE"
run_ok "HF_TOKEN with whitespace around it works" \
    env HF_TOKEN=' sekrit
' "$MC" pull org/demo
mkfifo "$T/fifo"
rm -rf "$STORE"
run_fails 4 "" "a FIFO as the token file: no token (401, exit 4), no hang" \
    timeout 30 env HF_TOKEN_PATH="$T/fifo" "$MC" pull org/demo

# owner PID: the uid /proc/PID/status belongs to (root's when the
# process is not dumpable; the directory itself may show a stale owner).
owner() {
	stat -c %u "/proc/$1/status"
}

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
	ok 0 "# SKIP dumpability needs root and setpriv (run as another user)"
	done_testing
fi

# The daemon and the CLI run as nobody (65534) in a directory it may use.
nb="$T/nobody"
mkdir -p "$nb"
chmod 755 "$T"
chmod 777 "$nb"
# (A variable, not a function: a function run with & is a subshell of
# root's, and $! would be that subshell.)
as_nobody="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all"

# 2. The daemon without a token is dumpable (/proc/<pid> is nobody's)...
$as_nobody "$MCD" --store "$nb/s1" --socket "$nb/d1.sock" \
    >>"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_for "$MC" status --socket "$nb/d1.sock"
ok $? "a daemon without a token starts as nobody"
is "$(owner "$DAEMON_PID")" 65534 "it is dumpable: /proc/<pid> is nobody's"
stop_daemon

# 3. ...and with one, from HF_TOKEN or from a token file, it is not.
cp "$T/token" "$nb/token"
chmod 644 "$nb/token"
$as_nobody env HF_TOKEN_PATH="$nb/token" "$MCD" --store "$nb/s2" \
    --socket "$nb/d2.sock" >>"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_for "$MC" status --socket "$nb/d2.sock"
ok $? "a daemon with a token file starts as nobody"
is "$(owner "$DAEMON_PID")" 0 "it is not dumpable: /proc/<pid> is root's"
grep -q '^CapEff:' "/proc/$DAEMON_PID/status"
ok $? "and its status still reads (for root)"
stop_daemon
$as_nobody env HF_TOKEN=sekrit "$MCD" --store "$nb/s3" \
    --socket "$nb/d3.sock" >>"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
wait_for "$MC" status --socket "$nb/d3.sock"
ok $? "a daemon with HF_TOKEN starts as nobody"
is "$(owner "$DAEMON_PID")" 0 "it is not dumpable either"
stop_daemon

# 4. The CLI holding a token, in the middle of a pull (a CDN transfer that
# stalls), is not dumpable either.
st=$(sha_of "$T/repo/model.safetensors")
origin --fault "stall:30@/cdn/$st*1"
$as_nobody env HF_TOKEN=sekrit MODELCACHE_STORE="$nb/s4" "$MC" pull org/demo \
    >"$T/pull.out" 2>&1 &
pid=$!
stalled() { [ "$(stats ".faults[\"stall:30@/cdn/$st*1\"]")" = 1 ]; }
wait_for stalled
ok $? "the pull as nobody reaches its stalled transfer"
is "$(owner "$pid")" 0 "a pull holding a token is not dumpable"
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null

done_testing
