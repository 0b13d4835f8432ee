#!/bin/sh
# README.md's "Using modelcache from your inference server", run as it
# stands: each snippet is the fenced block after a marker line
# "<!-- snippet: NAME -->" (preload, c, c-build, python-install, python),
# extracted and run against a real daemon and the test origin.  Only what
# the snippets read from the environment is adapted: MODEL (a model of the
# origin's), MODELCACHE_STORE and MODELCACHE_SOCKET (this test's), PATH
# (the built programs, a venv), and where `cc` finds libmodelcache
# (pkg-config's path to a modelcache.pc for the build tree); `your.server`
# is a stand-in module that loads a model by reading and hashing every file
# and tells what it saw.  Each snippet must succeed and read the model, each
# file as the origin has it, under a lease.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/python.sh"

unset HF_TOKEN HF_TOKEN_PATH MODELCACHE_REFRESH MODELCACHE_MAX_SIZE \
    MODELCACHE_ALLOW_UIDS MODELCACHE_MAX_CONNECTIONS MODELCACHE_MODELS \
    MODELCACHE_SOCKET_GROUP MODELCACHE_STALE_AFTER MODELCACHE_LOG_FORMAT \
    PYTHONPATH PYTHONHOME VIRTUAL_ENV MODEL PKG_CONFIG_PATH

README="$top_srcdir/README.md"

# snippet NAME: the fenced block after "<!-- snippet: NAME -->".
snippet() {
	awk -v name="$1" '
	    $0 == "<!-- snippet: " name " -->" { want = 1; next }
	    want && /^```/ { if (inside) exit; inside = 1; next }
	    inside { print }
	' "$README"
}
# has_snippet NAME INFO: the README has it, in a fence with that info string.
has_snippet() {
	awk -v name="$1" -v info="$2" '
	    $0 == "<!-- snippet: " name " -->" { getline; found = ($0 == "```" info) }
	    END { exit !found }
	' "$README" && [ -n "$(snippet "$1")" ]
}

status_is() {
	mc status --json | jqe "$1"
}
# source_files DIR: "path sha256" of each file of DIR, sorted.
source_files() {
	(cd "$1" && find -L . -type f -printf '%P\n' | sort |
	    while read -r p; do
		    echo "$p $(sha_of "$p")"
	    done)
}

for s in preload:sh c:c c-build:sh python-install:sh python:python; do
	has_snippet "${s%%:*}" "${s#*:}"
	ok $? "README.md has the snippet ${s%%:*}, a \`\`\`${s#*:} block"
	snippet "${s%%:*}" >"$T/snippet.${s%%:*}"
done
# The C snippet is libmodelcache(3)'s example, which t0301 runs.
if cmp -s "$T/snippet.c" "$top_srcdir/tests/inference/example.c"; then
	ok 0 "the C snippet is tests/inference/example.c"
else
	ok 1 "the C snippet is tests/inference/example.c"
	diag "$(diff -u "$top_srcdir/tests/inference/example.c" \
	    "$T/snippet.c" | head -40)"
fi

# The reader's server: load(dir) reads every file, as a loader would, and
# prints what it saw and the leases the daemon holds meanwhile; run as a
# program (python3 -m your.server), it loads $MODELCACHE_MODEL_DIR.
mkdir -p "$T/pkg/your"
: >"$T/pkg/your/__init__.py"
cat >"$T/pkg/your/server.py" <<'EOF'
import hashlib, json, os, subprocess

def load(model_dir):
    files = []
    for d, _, names in os.walk(model_dir):
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            files.append("%s %s" % (os.path.relpath(os.path.join(d, n),
                                                    model_dir), digest))
    out = subprocess.run([os.environ["MC"], "status", "--json"], check=True,
                         stdout=subprocess.PIPE).stdout
    print(json.dumps({
        "dir": model_dir, "pid": os.getpid(), "files": sorted(files),
        "leases": json.loads(out)["leases"],
        "env": {k: os.environ.get(k) for k in (
            "MODELCACHE_MODEL_DIR", "HF_HUB_CACHE", "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE", "MODELCACHE_LEASE_FD")},
    }), flush=True)
    return files

if __name__ == "__main__":
    load(os.environ["MODELCACHE_MODEL_DIR"])
EOF
export MC

make_model "$T/demo" demo
make_model "$T/two" two
make_model "$T/three" three
start_origin --repo org/demo="$T/demo" --repo org/two="$T/two" \
    --repo org/three="$T/three"
ok $? "the test origin starts"
start_daemon
ok $? "the daemon starts"

# loaded NAME OUT SOURCE: the stand-in server's report in OUT read the
# model as SOURCE has it from the snapshot under the store, under a lease
# held by the server's own process (preload's, which execs it).
loaded() {
	r=$(grep '^{' "$2" | tail -n 1)
	is "$(printf '%s\n' "$r" | jq -r '.files[]' 2>/dev/null)" \
	    "$(source_files "$3")" "$1: every file read is the origin's"
	jqok "$1: from the snapshot under the store" "$r" \
	    ".dir | startswith(\"$STORE/hub/models--org--\")"
	jqok "$1: while a lease is held by the server's process" "$r" \
	    ". as \$r | .leases | map(.pid) == [\$r.pid]"
}

# --- the wrapper -----------------------------------------------------------
env MODEL=org/demo PATH="$top_builddir:$PATH" PYTHONPATH="$T/pkg" \
    sh -e "$T/snippet.preload" >"$T/preload.out" 2>"$T/preload.err"
rc=$?
ok $rc "the preload snippet runs the server"
[ $rc -eq 0 ] || diag "$(cat "$T/preload.err")"
loaded preload "$T/preload.out" "$T/demo"
jqok "preload: the server is told where, offline, and the lease's fd" \
    "$(tail -n 1 "$T/preload.out")" \
    '.env.MODELCACHE_MODEL_DIR == .dir and
     .env.HF_HUB_CACHE == "'"$STORE"'/hub" and .env.HF_HUB_OFFLINE == "1" and
     .env.TRANSFORMERS_OFFLINE == "1" and
     (.env.MODELCACHE_LEASE_FD | test("^[0-9]+$"))'
grep -q "org/demo ready" "$T/preload.err"
ok $? "preload: says on stderr that the model is ready"
wait_for status_is '.leases == []'
ok $? "preload: the lease ends with the server"

# --- the C library -----------------------------------------------------------
# libmodelcache as pkg-config would find it installed, from the build tree
# (with the sanitizers' link flags of a sanitizer build).
san=$(sed -n 's/^SAN_LDFLAGS = //p' "$top_builddir/Makefile" 2>/dev/null)
abs_srcdir=$(cd "$top_srcdir" && pwd)
abs_builddir=$(cd "$top_builddir" && pwd)
mkdir -p "$T/pc" "$T/c"
cat >"$T/pc/modelcache.pc" <<EOF
Name: modelcache
Description: libmodelcache in the build tree
Version: 0
Libs: -L$abs_builddir/.libs -lmodelcache $san
Cflags: -I$abs_srcdir/inference
EOF
cp "$T/snippet.c" "$T/c/example.c"
(cd "$T/c" && env MODEL=org/two PKG_CONFIG_PATH="$T/pc" \
    LD_LIBRARY_PATH="$abs_builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    sh -e "$T/snippet.c-build" >"$T/c.out" 2>"$T/c.err")
rc=$?
ok $rc "the C snippet builds and runs"
[ $rc -eq 0 ] || diag "$(cat "$T/c.err")"
set -- $(head -n 1 "$T/c.out")
cdir=${1:-none} ccommit=${2:-none}
is "$cdir" "hub/models--org--two/snapshots/$ccommit" \
    "c: it names the snapshot of org/two, relative to the store"
bad=0
while read -r path size digest; do
	p="$STORE/$cdir/$path"
	[ "$(stat -L -c %s "$p" 2>/dev/null) $(sha_of "$p" 2>/dev/null)" = \
	    "$size $digest" ] || { bad=1; diag "$p: not $size $digest"; }
done <<EOF
$(sed 1d "$T/c.out")
EOF
[ $bad -eq 0 ] && [ "$(wc -l <"$T/c.out")" -gt 1 ]
ok $? "c: each file it names, read under the store, has its size and digest"
is "$(sed 1d "$T/c.out" | awk '{ print $1, $3 }' | sort)" \
    "$(source_files "$T/two")" "c: the files are the origin's"
wait_for status_is '.leases == []'
ok $? "c: released"

# --- Python --------------------------------------------------------------------
"$PY3" -m venv "$T/venv" >"$T/venv.log" 2>&1
ok $? "a venv of $PY3 (python3-venv)"
before_tree=$(tree_state "$top_srcdir/inference/python")
(cd "$top_srcdir" && PATH="$T/venv/bin:$PATH" offline \
    sh -e "$T/snippet.python-install" >>"$T/venv.log" 2>&1)
rc=$?
ok $rc "the install snippet, run in the source tree, with no network"
[ $rc -eq 0 ] || diag "$(tail -n 20 "$T/venv.log")"
is "$(tree_state "$top_srcdir/inference/python")" "$before_tree" \
    "and writes nothing there"
env MODEL=org/three PYTHONPATH="$T/pkg" "$T/venv/bin/python" \
    "$T/snippet.python" >"$T/python.out" 2>"$T/python.err"
rc=$?
ok $rc "the Python snippet loads the model"
[ $rc -eq 0 ] || diag "$(cat "$T/python.err")"
loaded python "$T/python.out" "$T/three"
is "$(mc status --json | json '.leases | length')" 0 \
    "python: the lease ended with the block"

stop_daemon
is "$DAEMON_RC" 0 "the daemon stops cleanly"
done_testing
