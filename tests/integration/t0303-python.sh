#!/bin/sh
# The Python client (inference/python, import modelcache) as a user gets
# it: Debian's python3, a venv, `pip install --no-index` from the source
# tree with no network; then against a real daemon and the test origin:
# acquire with progress during a slow pull, every file read through
# Model.path() and Model.dir against the answer's digests and the origin's
# files, the lease in `modelcache status --json` while held and gone after
# release() and after a with block; the error classes NotFound,
# Unauthorized, IntegrityError, Timeout and DaemonUnreachable; and a
# daemon killed in the middle of an acquire: ConnectionLost, saying so, with
# no socket exception behind it.
#
# Nothing waits on a timer for an event: conditions are polled, bounded.
# The slow origin (a slow fault on every CDN GET) only makes a pull last
# long enough (about 4 s) to be seen in flight.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/python.sh"

unset HF_TOKEN HF_TOKEN_PATH MODELCACHE_REFRESH MODELCACHE_MAX_SIZE \
    MODELCACHE_ALLOW_UIDS MODELCACHE_MAX_CONNECTIONS MODELCACHE_MODELS \
    MODELCACHE_SOCKET_GROUP MODELCACHE_STALE_AFTER MODELCACHE_LOG_FORMAT \
    PYTHONPATH PYTHONHOME VIRTUAL_ENV

# Clients started in the background, killed at exit.
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; tap_cleanup' EXIT

# drive.py MODE MODEL [TIMEOUT]: the client as a program would use it,
# printing one JSON object.
#   read     acquire (progress recorded), status --json while held, read
#            every file by Model.path() and by walking Model.dir, release(),
#            status --json again
#   with     the same in a with block: status inside it and after it
#   error    acquire that must fail: the exception's class, its place in
#            the hierarchy, code and message
#   raise    acquire, with nothing caught: Python prints what a server's
#            log would show; each progress event is appended to
#            $PROGRESS_FILE as it comes
cat >"$T/drive.py" <<'EOF'
import hashlib, json, os, subprocess, sys, time
import modelcache

def status():
    out = subprocess.run([os.environ["MC"], "status", "--json"],
                         check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)["leases"]

def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

def walk(top):
    out = []
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            out.append("%s %d %s" % (os.path.relpath(p, top),
                                     os.path.getsize(p), sha(p)))
    return sorted(out)

mode, name = sys.argv[1], sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else None
progress = []
def on_progress(done, total):
    progress.append([done, total, time.monotonic()])
    pf = os.environ.get("PROGRESS_FILE")
    if pf:
        with open(pf, "a") as f:
            f.write("%d %d\n" % (done, total))

if mode == "read":
    m = modelcache.acquire(name, progress=on_progress, timeout=timeout)
    ready_at = time.monotonic()
    r = {"pid": os.getpid(), "lease": m.lease, "commit": m.commit,
         "repo": m.repo, "name": m.name, "stale": m.stale,
         "relative_dir": m.relative_dir, "dir": m.dir,
         "progress": [[d, t] for d, t, _ in progress],
         "progress_before_ready": all(at <= ready_at
                                      for _, _, at in progress),
         "answer_files": sorted("%s %d %s" % (f["path"], f["size"],
                                              f["sha256"]) for f in m.files),
         "read_files": sorted("%s %d %s" % (f["path"],
                                            os.path.getsize(m.path(f["path"])),
                                            sha(m.path(f["path"])))
                              for f in m.files),
         "walked_files": walk(m.dir)}
    r["held"] = status()
    m.release()
    r["after_release"] = status()
    m.release()
    r["released_twice"] = True
elif mode == "with":
    with modelcache.acquire(name) as m:
        r = {"pid": os.getpid(), "lease": m.lease, "held": status(),
             "read_files": sorted("%s %s" % (f["path"], sha(m.path(f["path"])))
                                  for f in m.files)}
    r["after_with"] = status()
elif mode == "error":
    t0 = time.monotonic()
    try:
        m = modelcache.acquire(name, timeout=timeout, progress=on_progress)
        r = {"class": None, "repo": m.repo}
    except modelcache.ModelcacheError as e:
        r = {"class": type(e).__name__, "code": e.code,
             "message": str(e), "is_base": True,
             "cause": repr(e.__cause__), "context_shown":
             e.__context__ is not None and not e.__suppress_context__}
    r["seconds"] = time.monotonic() - t0
elif mode == "raise":
    m = modelcache.acquire(name, progress=on_progress)
    r = {"class": None, "repo": m.repo}
print(json.dumps(r))
EOF
drive() {
	MC="$MC" "$VENV_PY" "$T/drive.py" "$@"
}

status_is() {
	mc status --json | jqe "$1"
}
# source_files DIR: "path size sha256" of each file of DIR, sorted.
source_files() {
	(cd "$1" && find -L . -type f -printf '%P\n' | sort |
	    while read -r p; do
		    echo "$p $(stat -L -c %s "$p") $(sha_of "$p")"
	    done)
}
# lines JSON KEY: the array KEY of JSON, one element a line.
lines() {
	printf '%s\n' "$1" | jq -r ".$2[]"
}

# --- the install -----------------------------------------------------------
[ -x /usr/bin/python3 ] || diag "no /usr/bin/python3: using $PY3"
"$PY3" -c 'import ensurepip, venv' 2>/dev/null
ok $? "$PY3 has venv and ensurepip (Debian: python3-venv)"
before_tree=$(tree_state "$PYCLIENT_SRC")
make_venv "$T/venv"
rc=$?
ok $rc "pip install --no-index of inference/python into a venv, offline"
[ $rc -eq 0 ] || diag "$(tail -n 20 "$T/venv.log")"
diag "offline by: ${VENV_OFFLINE:-proxies on a closed port}"
is "$(tree_state "$PYCLIENT_SRC")" "$before_tree" \
    "the install wrote nothing into the source tree"
where=$("$VENV_PY" -c 'import modelcache; print(modelcache.__file__)' \
    2>&1)
case $where in
"$T/venv/"*) ok 0 "the venv imports modelcache from its site-packages" ;;
*) ok 1 "the venv imports modelcache from its site-packages"; diag "$where" ;;
esac
is "$("$VENV_PY" -m pip show modelcache 2>/dev/null | sed -n 's/^Version: //p')" \
    "$("$VENV_PY" -c 'import modelcache; print(modelcache.__version__)')" \
    "pip knows it, at the package's version"

# --- DaemonUnreachable -----------------------------------------------------
r=$(env MODELCACHE_SOCKET="$T/absent.sock" MC="$MC" "$VENV_PY" "$T/drive.py" \
    error org/demo)
jqok "no socket: DaemonUnreachable naming the socket" "$r" \
    ".class == \"DaemonUnreachable\" and .is_base and
     (.message | contains(\"$T/absent.sock\")) and .context_shown == false"

make_model "$T/demo" demo
make_model "$T/two" two
make_model "$T/three" three
REPOS="--repo org/demo=$T/demo --repo org/two=$T/two --repo org/three=$T/three"
# About 4 s a pull: 370000 bytes of LFS files at 100000 B/s.
SLOW='slow:100000@/cdn/'

# shellcheck disable=SC2086
start_origin $REPOS --fault "$SLOW"
ok $? "the test origin starts (slow CDN)"
start_daemon
ok $? "the daemon starts"

# --- acquire, read, status, release ----------------------------------------
r=$(drive read org/demo)
ok $? "acquire of an absent model, read, release"
jqok "progress was called during the pull, before the answer" "$r" \
    '(.progress | length) >= 1 and .progress_before_ready and
     all(.progress[]; .[1] > 0 and .[0] <= .[1])'
jqok "the model: repo, name as asked, a commit, a lease, not stale" "$r" \
    '.repo == "org/demo" and .name == "org/demo" and
     (.commit | test("^[0-9a-f]{40}$")) and (.lease | length > 0) and
     .stale == false'
commit=$(printf '%s\n' "$r" | json .commit)
jqok "dir: the snapshot under \$MODELCACHE_STORE" "$r" \
    ".relative_dir == \"hub/models--org--demo/snapshots/$commit\" and
     .dir == \"$STORE/hub/models--org--demo/snapshots/$commit\""
src=$(source_files "$T/demo")
is "$(lines "$r" answer_files)" "$src" \
    "the answer's files: the origin's paths, sizes and sha256"
is "$(lines "$r" read_files)" "$src" \
    "every file read by Model.path() has the answer's size and sha256"
is "$(lines "$r" walked_files)" "$src" \
    "Model.dir holds those files and no other"
pid=$(printf '%s\n' "$r" | json .pid)
lease=$(printf '%s\n' "$r" | json .lease)
jqok "modelcache status --json lists the lease while held, with our pid" \
    "$r" ".held == [{lease: \"$lease\", folder: \"models--org--demo\",
     commit: \"$commit\", pid: $pid, uid: $(id -u)}]"
jqok "release() ends it: status lists none" "$r" \
    '.after_release == [] and .released_twice'

r=$(drive with org/demo)
ok $? "acquire in a with block"
jqok "status lists its lease inside the block" "$r" \
    '.held == [{lease: .lease, folder: "models--org--demo",
     commit: .held[0].commit, pid: .pid, uid: .held[0].uid}]'
is "$(lines "$r" read_files)" "$(printf '%s\n' "$src" | awk '{print $1, $3}')" \
    "the files read inside it are the origin's"
jqok "leaving the block releases it" "$r" '.after_with == []'

# --- errors ------------------------------------------------------------------
r=$(drive error org/demo@nope)
jqok "an unknown revision: NotFound (code not_found), with a message" "$r" \
    '.class == "NotFound" and .code == "not_found" and .is_base and
     (.message | length > 0)'

r=$(drive error org/three 0.5)
jqok "timeout=0.5 on a slow pull: Timeout (code timeout)" "$r" \
    '.class == "Timeout" and .code == "timeout" and .is_base'
# The daemon's timer runs on its loop's clock (milliseconds, taken once a
# turn), so it may fire a hair before the client's own half second.
jqok "answered by the daemon after about half a second" "$r" \
    '.seconds >= 0.4 and .seconds < 10.5'
status_is '.pulls | map(.model) | any(test("org/three"))' >/dev/null
ok $? "the pull goes on without the client"
wait_for status_is '.pulls | length == 0'
ok $? "and ends"

# --- the daemon killed in the middle ---------------------------------------
: >"$T/progress"
PROGRESS_FILE="$T/progress" MC="$MC" "$VENV_PY" "$T/drive.py" raise \
    org/two >"$T/kill.out" 2>"$T/kill.err" &
kill_client=$!
BG="$BG $kill_client"
wait_for test -s "$T/progress"
ok $? "an acquire of a slow pull gets progress"
status_is '.pulls | map(.clients) | add == 1' >/dev/null
ok $? "and waits for the pull"
stop_daemon KILL
is "$DAEMON_RC" 137 "the daemon is killed (SIGKILL)"
wait "$kill_client"
is "$?" 1 "the client's acquire fails"
last=$(tail -n 1 "$T/kill.err")
case $last in
modelcache.ConnectionLost:*"went away"*) ok 0 \
    "with modelcache.ConnectionLost: the daemon went away" ;;
*) ok 1 "with modelcache.ConnectionLost: the daemon went away"
   diag "$(cat "$T/kill.err")" ;;
esac
diag "$last"
! grep -q -e 'During handling of the above exception' \
    -e 'direct cause of the following' "$T/kill.err"
ok $? "and no socket exception behind it in the traceback"
! grep -q -e 'ConnectionResetError' -e 'BrokenPipeError' \
    -e 'JSONDecodeError' "$T/kill.err"
ok $? "none named at all"
r=$(MC="$MC" "$VENV_PY" -c '
import json, modelcache
try:
    modelcache.acquire("org/two")
except modelcache.ModelcacheError as e:
    print(json.dumps({"class": type(e).__name__, "code": e.code,
                      "message": str(e)}))
')
jqok "with the daemon gone, its stale socket: DaemonUnreachable" "$r" \
    '.class == "DaemonUnreachable" and (.message | test("refused"))'
start_daemon
ok $? "the daemon starts again"
r=$(drive read org/two)
jqok "and the acquire, done again, gets the model" "$r" \
    '.repo == "org/two" and .after_release == []'
is "$(lines "$r" read_files)" "$(source_files "$T/two")" \
    "with the origin's files"

# --- Unauthorized ------------------------------------------------------------
stop_daemon
rm -rf "$STORE"
# shellcheck disable=SC2086
start_origin $REPOS --token sekrit
ok $? "the origin starts, wanting a token"
start_daemon
ok $? "the daemon starts without a token"
r=$(drive error org/demo)
jqok "no token: Unauthorized (code unauthorized), with the origin's words" \
    "$r" '.class == "Unauthorized" and .code == "unauthorized" and .is_base and
    (.message | length > 0)'

# --- IntegrityError ----------------------------------------------------------
stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS --fault 'corrupt@/cdn/'
ok $? "the origin starts, corrupting every CDN answer"
start_daemon
ok $? "the daemon starts"
r=$(drive error org/demo)
jqok "wrong bytes every time: IntegrityError (code integrity)" "$r" \
    '.class == "IntegrityError" and .code == "integrity" and .is_base and
     (.message | length > 0)'
is "$(mc ls --json | json 'length')" 0 "nothing was published"

stop_daemon
is "$DAEMON_RC" 0 "the daemon stops cleanly"
done_testing
