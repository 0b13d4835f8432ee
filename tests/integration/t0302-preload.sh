#!/bin/sh
# modelcache-preload (modelcache-preload(1), DESIGN.md section 7) against a
# real modelcached and the test origin on loopback: started before the
# daemon it waits for the socket; it waits through a real pull with
# progress on stderr, warms, and execs a command that sees the exported
# environment, the lease's open socket and every file; the lease keeps gc
# off the model until the command ends; warming is measured with mincore
# after evicting the files with posix_fadvise (checked, not assumed);
# --verify, --lock (its parent, signals passed on, the exit status, a
# lock refused by RLIMIT_MEMLOCK); on a terminal, a progress bar; and each
# failure's exit status and one-line message.
#
# Nothing waits on a timer for an event: conditions are polled, bounded.
# The slow origin only makes pulls last long enough to be seen.
. "$top_srcdir/tests/lib/tap.sh"

unset HF_TOKEN HF_TOKEN_PATH MODELCACHE_REFRESH MODELCACHE_MAX_SIZE \
    MODELCACHE_ALLOW_UIDS MODELCACHE_MAX_CONNECTIONS MODELCACHE_MODELS \
    MODELCACHE_SOCKET_GROUP MODELCACHE_STALE_AFTER MODELCACHE_LOG_FORMAT \
    MODELCACHE_MODEL_DIR MODELCACHE_LEASE_FD HF_HUB_CACHE HF_HUB_OFFLINE \
    TRANSFORMERS_OFFLINE

# Background jobs run "$PRELOAD" itself, not this function, so that $! is
# preload's process (libtool's wrapper execs the program).
PRELOAD="$top_builddir/modelcache-preload"
# AddressSanitizer (./dev test's second build) makes mlock(2) a no-op.
SANITIZED=
if grep -q -- '-fsanitize=address' "$top_builddir/Makefile" 2>/dev/null; then
	SANITIZED=1
fi
preload() {
	"$PRELOAD" "$@"
}

# Background preloads, killed at exit if a test left one behind.
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; tap_cleanup' EXIT

# status_is FILTER: the daemon's status satisfies FILTER (for wait_for).
status_is() {
	client '{"op":"status"}' | tail -n 1 | jqe "$1"
}
# in_err PATTERN: $T/err holds a line matching PATTERN (grep -E).
in_err() {
	grep -Eq -- "$1" "$T/err"
}
# release FIFO: lets a command blocked on FIFO go (bounded: a command that
# never opens it fails the test instead of hanging it).
release() {
	timeout 30 sh -c 'echo go >"$1"' release "$1"
}
# source_files DIR: "path sha256" of each file of DIR, sorted.
source_files() {
	(cd "$1" && find -L . -type f -printf '%P\n' | sort |
	    while read -r p; do
		    echo "$p $(sha_of "$p")"
	    done)
}
# blobs_of DIR: the files the model's paths in DIR resolve to (the hub's
# hard links to the store's blobs).
blobs_of() {
	find -L "$1" -type f -exec readlink -f {} + | sort
}
# is_blob FILE: FILE is a hard link to the store's blob of its bytes.
is_blob() {
	sha=$(sha_of "$1")
	b="$STORE/blobs/sha256/$(echo "$sha" | cut -c1-2)/$sha"
	[ -f "$b" ] && [ "$(stat -c %i "$1")" = "$(stat -c %i "$b")" ]
}

# resident FILE...: the percentage (rounded down) of the bytes of FILEs in
# the page cache, through mincore(2) on a fresh shared mapping of each.
cat >"$T/resident.py" <<'EOF'
import ctypes, mmap, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
page = os.sysconf("SC_PAGE_SIZE")
resident = total = 0
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    total += size
    if size:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            raise OSError(ctypes.get_errno(), "mmap " + path)
        pages = (size + page - 1) // page
        vec = ctypes.create_string_buffer(pages)
        if libc.mincore(addr, size, vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore " + path)
        raw = vec.raw
        for i in range(pages):
            if raw[i] & 1:
                resident += min(page, size - i * page)
        libc.munmap(addr, size)
    os.close(fd)
print(100 * resident // total if total else 100)
EOF
resident() {
	python3 "$T/resident.py" "$@"
}
# evict FILE...: drops FILEs' pages from the page cache.
evict() {
	python3 -c '
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
' "$@"
}

make_model "$T/demo" demo
for m in two three four five; do
	make_model "$T/$m" "$m"
done
REPOS="--repo org/demo=$T/demo --repo org/two=$T/two --repo org/three=$T/three
    --repo org/four=$T/four --repo org/five=$T/five"
# About 3 s a pull: 300000 bytes of model.safetensors at 100000 B/s.
SLOW='slow:100000@/cdn/'

# --- usage -----------------------------------------------------------------
preload --help >"$T/out" 2>"$T/err"
ok $? "--help exits 0"
grep -q '^usage: modelcache-preload .*--model REF -- COMMAND' "$T/out"
ok $? "and prints the usage on stdout"
for o in --socket --store --timeout --concurrency --lock --keep-lease \
    --no-warm --verify --warm-only --version; do
	grep -q -- "$o" "$T/out" || diag "--help lacks $o"
done
is "$(preload --version)" \
    "modelcache-preload $("$MC" --version | sed 's/^modelcache //')" \
    "--version names the program and the package's version"
# usage_fails PATTERN DESCRIPTION ARGS...: exit 2, one line saying PATTERN.
usage_fails() {
	pattern=$1 desc=$2
	shift 2
	run_fails 2 "$pattern" "$desc" "$@"
	is "$(wc -l <"$T/err")" 1 "in one line"
}
usage_fails "--model REF is required" "no --model: exit 2" \
    preload -- true
usage_fails "no command to run" "no command: exit 2" \
    preload --model org/demo
usage_fails "--warm-only runs no command" "--warm-only with a command: 2" \
    preload --model org/demo --warm-only -- true
usage_fails "--warm-only keeps no lease: drop --keep-lease" \
    "--warm-only with --keep-lease: exit 2" \
    preload --model org/demo --warm-only --keep-lease
usage_fails "bad --timeout '0'" "--timeout 0: exit 2" \
    preload --timeout 0 --model org/demo -- true
usage_fails "bad --timeout 'soon'" "--timeout soon: exit 2" \
    preload --timeout soon --model org/demo -- true
usage_fails "bad --concurrency '257'" "--concurrency 257: exit 2" \
    preload --concurrency 257 --model org/demo -- true
run_fails 2 "unrecognized option" "an unknown option: exit 2" \
    preload --fast --model org/demo -- true
usage_fails "bad store '$T/nowhere': No such file" \
    "a --store that does not exist: exit 2" \
    preload --store "$T/nowhere" --model org/demo -- true
: >"$T/afile"
usage_fails "bad store '$T/afile': Not a directory" \
    "a --store that is a file: exit 2" \
    preload --store "$T/afile" --model org/demo -- true
usage_fails "give the store's path" "no store at all: exit 2" \
    env MODELCACHE_STORE= "$PRELOAD" --model org/demo -- true

# --- daemon unreachable ------------------------------------------------------
mkdir -p "$STORE"
run_fails 8 \
    "cannot reach the daemon at '$T/nowhere.sock': no answer before --timeout" \
    "no daemon, --timeout 1: exit 8" \
    preload --socket "$T/nowhere.sock" --timeout 1 --model org/demo \
    --warm-only
in_err "waiting for the daemon at '$T/nowhere.sock'"
ok $? "after saying that it waits"
is "$(grep -c . "$T/err")" 2 "two lines, no more"

# A socket that accepts and never answers: the alarm past --timeout ends
# the wait for the hello.
python3 -c '
import signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(8)
signal.pause()
' "$T/silent.sock" &
silent_pid=$!
BG="$BG $silent_pid"
wait_for test -S "$T/silent.sock"
ok $? "a socket that accepts and never answers"
run_fails 9 "timed out: the daemon gave no answer within --timeout" \
    "preload --timeout 1 on it: exit 9" \
    preload --socket "$T/silent.sock" --timeout 1 --model org/demo \
    --warm-only
kill "$silent_pid"
wait "$silent_pid" 2>/dev/null

# --- started before the daemon, through a pull, exec ------------------------
# shellcheck disable=SC2086
start_origin $REPOS --fault "$SLOW"
ok $? "the test origin starts (slow CDN)"

# cmd.sh: what the exec'd command sees, into $T/cmd.*, then it blocks on
# the fifo $T/go until the test lets it go; it exits 0.
mkfifo "$T/go"
cat >"$T/cmd.sh" <<'EOF'
t=$1
{
	echo "pid=$$"
	echo "MODELCACHE_MODEL_DIR=$MODELCACHE_MODEL_DIR"
	echo "HF_HUB_CACHE=$HF_HUB_CACHE"
	echo "HF_HUB_OFFLINE=$HF_HUB_OFFLINE"
	echo "TRANSFORMERS_OFFLINE=$TRANSFORMERS_OFFLINE"
	echo "MODELCACHE_LEASE_FD=$MODELCACHE_LEASE_FD"
	echo "lease_fd=$(readlink "/proc/$$/fd/$MODELCACHE_LEASE_FD")"
} >"$t/cmd.env"
(cd "$MODELCACHE_MODEL_DIR" && find -L . -type f -printf '%P\n' | sort |
    while read -r p; do
	    echo "$p $(sha256sum <"$p" | cut -c1-64)"
    done) >"$t/cmd.sums" 2>"$t/cmd.sums.err"
: >"$t/cmd.ready"
read -r _ <"$t/go"
EOF

test ! -e "$SOCK"
ok $? "no socket yet"
"$PRELOAD" --model org/demo --timeout 120 -- sh "$T/cmd.sh" "$T" \
    >"$T/a.out" 2>"$T/a.err" &
a_pid=$!
BG="$BG $a_pid"
wait_for grep -q "waiting for the daemon at '$SOCK'" "$T/a.err"
ok $? "preload, started before the daemon, waits for its socket"
kill -0 "$a_pid"
ok $? "and is still there"
start_daemon
ok $? "the daemon starts"
wait_for test -e "$T/cmd.ready"
ok $? "then preload runs the command"
cp "$T/a.err" "$T/err"
[ "$(grep -c '^modelcache-preload: pulling org/demo: [0-9]* of [0-9]* bytes' \
    "$T/err")" -ge 1 ]
ok $? "after progress lines on stderr (not a terminal)"
in_err '^modelcache-preload: org/demo ready: commit [0-9a-f]{12}, 5 files$'
ok $? "a line when the model is ready"
in_err '^modelcache-preload: warmed 5 files, .* in [0-9.]+ s \(.*/s\),'\
' [0-9.]+% resident$'
ok $? "and the warming's report: bytes, seconds, throughput, residency"
[ "$(grep -n waiting "$T/err" | cut -d: -f1)" -lt \
    "$(grep -n 'pulling' "$T/err" | head -n 1 | cut -d: -f1)" ]
ok $? "waiting, then pulling, in that order"

client '{"op":"acquire","model":"hf://org/demo"}' >"$T/ready.out"
ready=$(tail -n 1 "$T/ready.out")
dir=$(printf '%s\n' "$ready" | json .dir)
getenv() {
	sed -n "s/^$1=//p" "$T/cmd.env"
}
is "$(getenv pid)" "$a_pid" "the command is preload's process (exec)"
is "$(getenv MODELCACHE_MODEL_DIR)" "$STORE/$dir" \
    "MODELCACHE_MODEL_DIR: the snapshot, absolute, under the store"
is "$(getenv HF_HUB_CACHE)" "$STORE/hub" "HF_HUB_CACHE: the store's hub/"
is "$(getenv HF_HUB_OFFLINE)" 1 "HF_HUB_OFFLINE=1"
is "$(getenv TRANSFORMERS_OFFLINE)" 1 "TRANSFORMERS_OFFLINE=1"
getenv MODELCACHE_LEASE_FD | grep -Eq '^[0-9]+$'
ok $? "MODELCACHE_LEASE_FD is a descriptor number"
getenv lease_fd | grep -Eq '^socket:\[[0-9]+\]$'
ok $? "open in the command, on a socket ($(getenv lease_fd))"
is "$(cat "$T/cmd.sums")" "$(source_files "$T/demo")" \
    "the command reads every file, each with the origin's bytes"
is "$(cat "$T/cmd.sums")" \
    "$(printf '%s\n' "$ready" |
	json '.files | map("\(.path) \(.sha256)") | sort | .[]')" \
    "and with the ready answer's digests"
wait_for status_is '.leases | length == 1'
status_is ".leases | map(.pid) == [$a_pid]" >/dev/null
ok $? "the daemon lists one lease, held by the command's pid"
run_fails 7 "in use (leased)" \
    "while the command runs, gc to 0 from another process keeps the model" \
    mc gc --max-size 0
is "$(mc ls --json | json 'map(.repo) | join(",")')" "org/demo" \
    "the model is still there"
test -d "$STORE/$dir"
ok $? "with its snapshot"
release "$T/go"
wait "$a_pid"
is $? 0 "the command ends: preload's process exits with its status, 0"
wait_for status_is '.leases | length == 0'
ok $? "the command's end ended the lease"
run_ok "gc to 0 then" mc gc --max-size 0
is "$(mc ls --json | json 'length')" 0 "evicts the model"

# --- residency -----------------------------------------------------------
run_ok "--warm-only --no-warm pulls the model again" \
    preload --model org/demo --warm-only --no-warm
! in_err 'warmed'
ok $? "--no-warm reports no warming"
blobs=$(blobs_of "$STORE/$dir")
n=0
for f in $blobs; do
	is_blob "$f" && n=$((n + 1))
done
is "$n" 5 "the model's 5 files are the store's blobs"
fstype=$(stat -f -c %T "$STORE")
case $fstype in
tmpfs | ramfs)
	ok 0 "# SKIP residency: the store is on $fstype, always resident"
	run_ok "--warm-only warms" \
	    preload --model org/demo --warm-only --concurrency 3
	;;
*)
	# shellcheck disable=SC2086
	evict $blobs
	# shellcheck disable=SC2086
	before=$(resident $blobs)
	[ "$before" -le 10 ]
	ok $? "after posix_fadvise DONTNEED, mostly not resident ($before%)"
	run_ok "--warm-only --no-warm: handshake only" \
	    preload --model org/demo --warm-only --no-warm
	# shellcheck disable=SC2086
	is "$(resident $blobs)" "$before" \
	    "and --no-warm leaves the page cache alone"
	run_ok "--warm-only warms" \
	    preload --model org/demo --warm-only --concurrency 3
	# shellcheck disable=SC2086
	after=$(resident $blobs)
	[ "$after" -ge 99 ]
	ok $? "now the blobs are resident ($after%), by mincore"
	;;
esac
pct=$(sed -n 's/^modelcache-preload: warmed .*, \([0-9.]*\)% resident$/\1/p' \
    "$T/err")
[ -n "$pct" ] && [ "${pct%.*}" -ge 99 ]
ok $? "the report line states the resident fraction: $pct%"
[ ! -s "$T/out" ]
ok $? "and nothing on stdout"
wait_for status_is '.leases | length == 0'
ok $? "--warm-only keeps no lease"

# --- --verify ------------------------------------------------------------
run_ok "--verify on a good model passes" \
    preload --model org/demo --warm-only --verify
in_err 'resident, every file verified$'
ok $? "and says so"
blob=$(readlink -f "$STORE/$dir/model.safetensors")
mode=$(stat -c %a "$blob")
size=$(stat -c %s "$blob")
chmod u+w "$blob"
python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1000)
    b = f.read(1)
    f.seek(1000)
    f.write(bytes([b[0] ^ 0xff]))
' "$blob"
chmod "$mode" "$blob"
is "$(stat -c %s "$blob")" "$size" "one byte of a blob flipped, same size"
run_fails 5 "'$STORE/$dir/model.safetensors' does not match its digest" \
    "--verify: exit 5 naming the file" \
    preload --model org/demo --verify -- touch "$T/ran"
test ! -e "$T/ran"
ok $? "and the command is not run"
is "$(grep -c 'does not match' "$T/err")" 1 "only that file is named"
run_ok "without --verify the same bytes are only warmed" \
    preload --model org/demo --warm-only
chmod u+w "$blob"
cat "$T/demo/model.safetensors" >"$blob"
chmod "$mode" "$blob"
run_ok "--verify passes again once the blob is repaired" \
    preload --model org/demo --warm-only --verify

# --- --lock --------------------------------------------------------------
cat >"$T/lock.sh" <<'EOF'
t=$1
{
	echo "ppid=$PPID"
	sed -n 's/^VmLck:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$PPID/status"
	echo "fd=$(readlink "/proc/$$/fd/$MODELCACHE_LEASE_FD")"
} >"$t/lock.out"
exit 42
EOF
total_kb=$(($(find -L "$STORE/$dir" -type f -printf '%s\n' |
    awk '{ s += $1 } END { print s }') / 1024))
"$PRELOAD" --model org/demo --lock -- sh "$T/lock.sh" "$T" >"$T/out" \
    2>"$T/err" &
l_pid=$!
wait "$l_pid"
rc=$?
if [ "$rc" -eq 1 ] && in_err 'cannot lock .* RLIMIT_MEMLOCK is'; then
	ok 0 "# SKIP --lock: mlock refused here ($(cat "$T/err"))"
else
	is "$rc" 42 "--lock: preload exits with the command's status"
	is "$(sed -n 's/^ppid=//p' "$T/lock.out")" "$l_pid" \
	    "the command is preload's child"
	locked=$(sed -n 2p "$T/lock.out")
	if [ -n "$SANITIZED" ]; then
		ok 0 "# SKIP VmLck: AddressSanitizer makes mlock a no-op"
	else
		[ "${locked:-0}" -ge "$total_kb" ]
		ok $? "which holds the model locked: VmLck ${locked:-0} kB >= $total_kb kB"
	fi
	grep -Eq '^fd=socket:\[[0-9]+\]$' "$T/lock.out"
	ok $? "the command has the lease's socket"
	in_err 'resident, locked$'
	ok $? "the report says locked"
fi

# Signals to the parent reach the command (a container's runtime signals
# only its PID 1).
cat >"$T/sig.sh" <<'EOF'
echo $$ >"$1/sig.pid"
exec sleep 600
EOF
"$PRELOAD" --model org/demo --lock -- sh "$T/sig.sh" "$T" >"$T/out" \
    2>"$T/err" &
s_pid=$!
BG="$BG $s_pid"
wait_for test -s "$T/sig.pid"
ok $? "--lock: the command starts"
wait_for sh -c "readlink /proc/$(cat "$T/sig.pid")/exe | grep -q sleep"
kill -TERM "$s_pid"
wait "$s_pid"
is $? 143 "SIGTERM to preload reaches the command: 128 + 15"
! kill -0 "$(cat "$T/sig.pid")" 2>/dev/null
ok $? "and the command is gone"

if [ -n "$SANITIZED" ]; then
	ok 0 "# SKIP a refused lock: AddressSanitizer makes mlock a no-op"
elif [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null ||
    ! command -v prlimit >/dev/null; then
	ok 0 "# SKIP the RLIMIT_MEMLOCK message needs root, setpriv and prlimit"
else
	run_fails 1 \
	    "cannot lock '.*' in memory: .* (RLIMIT_MEMLOCK is 64.0 KiB, the model" \
	    "--lock without CAP_IPC_LOCK, memlock 64 KiB: exit 1, saying why" \
	    setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock \
	    prlimit --memlock=65536:65536 "$PRELOAD" --model org/demo --lock \
	    -- touch "$T/ran"
	test ! -e "$T/ran"
	ok $? "and the command is not run"
fi

# --- the command -----------------------------------------------------------
run_fails 127 "cannot run '$T/no-such-command': No such file or directory" \
    "a command that does not exist: exit 127" \
    preload --model org/demo -- "$T/no-such-command"
run_fails 127 "cannot run 'no-such-command-mc': No such file or directory" \
    "one not on PATH: exit 127" \
    preload --model org/demo -- no-such-command-mc
run_fails 127 "cannot run '$T/no-such-command'" "so with --lock" \
    preload --model org/demo --lock -- "$T/no-such-command"
: >"$T/not-executable"
chmod 644 "$T/not-executable"
run_fails 126 "cannot run '$T/not-executable': Permission denied" \
    "one that cannot be executed: exit 126" \
    preload --model org/demo -- "$T/not-executable"

# --- not found, bad reference ---------------------------------------------
run_fails 3 "cannot acquire 'org/demo@nope': not found" \
    "an unknown revision: exit 3" \
    preload --model org/demo@nope --warm-only
run_fails 2 "cannot acquire 'no such:ref': bad model reference" \
    "a malformed reference: exit 2" \
    preload --model 'no such:ref' --warm-only

# --- a progress bar on a terminal -------------------------------------------
if ! command -v script >/dev/null; then
	ok 0 "# SKIP the progress bar needs script(1)"
else
	script -qefc "$PRELOAD --model org/three --warm-only" /dev/null \
	    </dev/null >"$T/tty.out" 2>&1
	ok $? "through a terminal, preload pulls org/three"
	grep -q "$(printf '\r')modelcache-preload: org/three \[#\{30\}\] 100% " \
	    "$T/tty.out"
	ok $? "with a progress bar redrawn in place, full at the end"
	! grep -q 'pulling org/three:' "$T/tty.out"
	ok $? "and no plain progress lines"
fi

# --- timeout ---------------------------------------------------------------
stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS --fault 'slow:1000@/cdn/'
ok $? "the origin starts, very slow (300 s a pull)"
start_daemon
ok $? "the daemon starts"
run_fails 9 "cannot acquire 'org/two': timed out after 1 s (--timeout)" \
    "--timeout 1 with a very slow pull: exit 9" \
    preload --model org/two --timeout 1 --warm-only
[ "$(grep -c . "$T/err")" -ge 1 ] && ! grep -v '^modelcache-preload: ' \
    "$T/err" | grep -q .
ok $? "its lines all start with the program's name"

# --- unauthorized ----------------------------------------------------------
stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS --token sekrit
ok $? "the origin starts, wanting a token"
start_daemon
ok $? "the daemon starts without one"
run_fails 4 "cannot acquire 'org/four': unauthorized" \
    "no token: exit 4" preload --model org/four --warm-only

# --- integrity -------------------------------------------------------------
stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS --fault 'corrupt@/cdn/'
ok $? "the origin starts, corrupting every CDN answer"
start_daemon
ok $? "the daemon starts"
run_fails 5 "cannot acquire 'org/four': integrity failure" \
    "wrong bytes every time: exit 5" preload --model org/four --warm-only

# --- origin unavailable, no space --------------------------------------------
stop_origin
run_fails 6 "cannot acquire 'org/five': the origin is unavailable" \
    "the origin gone, the model absent: exit 6" \
    preload --model org/five --warm-only
stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS
ok $? "the origin starts"
start_daemon --max-size 100000
ok $? "the daemon starts with --max-size 100000"
run_fails 7 "cannot acquire 'org/five': no space" \
    "a model larger than the quota: exit 7" \
    preload --model org/five --warm-only

stop_daemon
is "$DAEMON_RC" 0 "the daemon stops cleanly"
done_testing
