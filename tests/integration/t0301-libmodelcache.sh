#!/bin/sh
# libmodelcache, the C client (libmodelcache(3)), as a program outside the
# tree uses it: the project installed into a temporary DESTDIR, programs
# compiled with pkg-config's flags against the installed header and the
# shared or the static library, run against a real modelcached and the test
# origin.
#
# tests/inference/example.c is the page's EXAMPLES program, checked here to
# be the same text, so that the two cannot drift apart; it acquires a model
# and prints it.  tests/inference/api.c drives the rest of the API, one
# check a run: the progress callback, the timeout, two threads on one
# client, release, the descriptor, bad arguments, and the errno of every
# error code the daemon can be made to answer (internal and
# unsupported_protocol cannot be provoked through the library).
#
# Nothing waits on a timer for an event: conditions are polled, bounded.
# The slow origin (a slow fault on every CDN GET) only makes a pull last
# long enough (about 3 s) for progress events and a timeout.
. "$top_srcdir/tests/lib/tap.sh"

unset HF_TOKEN HF_TOKEN_PATH MODELCACHE_REFRESH MODELCACHE_MAX_SIZE \
    MODELCACHE_ALLOW_UIDS MODELCACHE_MAX_CONNECTIONS MODELCACHE_MODELS \
    MODELCACHE_SOCKET_GROUP MODELCACHE_STALE_AFTER MODELCACHE_LOG_FORMAT

PAGE="$top_srcdir/man/libmodelcache.3"
EXAMPLE="$top_srcdir/tests/inference/example.c"
API_SRC="$top_srcdir/tests/inference/api.c"

# --- the page's example is example.c ----------------------------------------
# The first literal display of EXAMPLES, its mdoc escapes undone: \e is a
# backslash, \& before a leading dot or quote is nothing.
awk '/^\.Sh / { ex = ($2 == "EXAMPLES") }
    ex && !seen && /^\.Bd -literal/ { lit = 1; seen = 1; next }
    lit && /^\.Ed/ { lit = 0; next }
    lit { print }' "$PAGE" | sed -e 's/^\\&//' -e 's/\\e/\\/g' \
    >"$T/page-example.c"
test -s "$T/page-example.c"
ok $? "libmodelcache.3 has a program in EXAMPLES"
if cmp -s "$T/page-example.c" "$EXAMPLE"; then
	ok 0 "the page's EXAMPLES program is tests/inference/example.c"
else
	ok 1 "the page's EXAMPLES program is tests/inference/example.c"
	diag "$(diff -u "$EXAMPLE" "$T/page-example.c" | head -40)"
fi

# --- make install -----------------------------------------------------------
# Into a DESTDIR under $T, from the build tree, with none of the outer
# make's flags (make check's jobserver, a TESTS= of its command line).
DEST="$T/dest"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u TESTS \
    make -C "$top_builddir" install DESTDIR="$DEST" >"$T/install.log" 2>&1
rc=$?
ok $rc "make install into a temporary DESTDIR"
[ $rc -eq 0 ] || diag "$(tail -20 "$T/install.log")"
pc=$(find "$DEST" -path '*/pkgconfig/modelcache.pc' | head -n 1)
test -n "$pc"
ok $? "modelcache.pc is installed"
PCDIR=$(dirname "${pc:-/nonexistent/x}")
# pkg-config as a program outside the tree uses it, with the paths the
# installed file names moved under DESTDIR.
pcv() {
	PKG_CONFIG_PATH="$PCDIR" pkg-config --variable="$1" modelcache
}
LIBDIR=$(pcv libdir)
INCDIR=$(pcv includedir)
pkgcf() {
	PKG_CONFIG_PATH="$PCDIR" pkg-config \
	    --define-variable=libdir="$DEST$LIBDIR" \
	    --define-variable=includedir="$DEST$INCDIR" "$@" modelcache
}
is "$LIBDIR" "$(cd "$PCDIR/.." && pwd | sed "s|^$DEST||")" \
    "modelcache.pc names the directory it is installed under as libdir"
cmp -s "$DEST$INCDIR/modelcache.h" "$top_srcdir/inference/modelcache.h"
ok $? "modelcache.h is installed in its includedir"
test -f "$DEST$LIBDIR/libmodelcache.a"
ok $? "the static library is installed"
test -L "$DEST$LIBDIR/libmodelcache.so" &&
    test -f "$DEST$LIBDIR/libmodelcache.so.0"
ok $? "the shared library is installed, with its links"
test -n "$(find "$DEST" -path '*/man3/libmodelcache.3')"
ok $? "libmodelcache.3 is installed"
is "$(PKG_CONFIG_PATH="$PCDIR" pkg-config --modversion modelcache)" \
    "$("$MCD" --version | sed 's/^modelcached //')" \
    "pkg-config's version is the daemon's"

# Only mc_* is exported, and every function of the header is.
nm -D --defined-only "$DEST$LIBDIR/libmodelcache.so" | awk '{ print $3 }' |
    sort >"$T/exports"
is "$(grep -v '^mc_' "$T/exports" | tr '\n' ' ')" "" \
    "the shared library exports nothing but mc_*"
grep -o '\bmc_[a-z_]*(' "$DEST$INCDIR/modelcache.h" | tr -d '(' | sort -u \
    >"$T/declared"
is "$(cat "$T/exports")" "$(cat "$T/declared")" \
    "it exports every function modelcache.h declares"

# --- compile ----------------------------------------------------------------
# With the build's compiler and sanitizer flags (a library built with ASan
# needs its runtime first in the program), and warnings as errors.
mkvar() {
	sed -n "s/^$1 = //p" "$top_builddir/Makefile"
}
CC=$(mkvar CC)
SAN="$(mkvar SAN_CFLAGS) $(mkvar SAN_LDFLAGS)"
WARN="-Wall -Wextra -Werror"
export LD_LIBRARY_PATH="$DEST$LIBDIR"

# shellcheck disable=SC2046,SC2086
$CC -std=c99 -pedantic $WARN $SAN -o "$T/example" "$EXAMPLE" \
    $(pkgcf --cflags --libs) 2>"$T/cc.err"
rc=$?
ok $rc "example.c compiles (C99) with pkg-config --cflags --libs"
[ $rc -eq 0 ] || diag "$(cat "$T/cc.err")"
ldd "$T/example" 2>&1 | grep -q "libmodelcache.so.0 => $DEST$LIBDIR/"
ok $? "it runs with the installed shared library"

# The static library by its file name, with what --static adds for it.
# shellcheck disable=SC2046,SC2086
$CC -std=c99 -pedantic $WARN $SAN -o "$T/example-static" "$EXAMPLE" \
    $(pkgcf --static --cflags --libs |
    sed 's/-lmodelcache\([^a-z_]\|$\)/-l:libmodelcache.a\1/') 2>"$T/cc.err"
rc=$?
ok $rc "example.c compiles against libmodelcache.a with pkg-config --static"
[ $rc -eq 0 ] || diag "$(cat "$T/cc.err")"
readelf -d "$T/example-static" 2>/dev/null | grep -q 'NEEDED.*libmodelcache'
ok $((!$?)) "and needs no shared libmodelcache"

# shellcheck disable=SC2046,SC2086
$CC -std=c11 $WARN $SAN -pthread -o "$T/api" "$API_SRC" \
    $(pkgcf --cflags --libs) 2>"$T/cc.err"
rc=$?
ok $rc "api.c compiles with pkg-config --cflags --libs"
[ $rc -eq 0 ] || diag "$(cat "$T/cc.err")"
api() {
	"$T/api" "$@"
}

# --- helpers ----------------------------------------------------------------
# status_is FILTER: the daemon's status satisfies FILTER.
status_is() {
	client '{"op":"status"}' | tail -n 1 | jqe "$1"
}
# source_files DIR: "path size sha256" of each file of DIR, sorted.
source_files() {
	(cd "$1" && find -L . -type f -printf '%P\n' | sort |
	    while read -r p; do
		    echo "$p $(stat -L -c %s "$p") $(sha_of "$p")"
	    done)
}
# Holders: mcclient.py --hold in the background, its stdin a fifo kept
# open by a sleep of ours; ending the sleep ends the client.
HOLDERS=
trap 'for p in $HOLDERS; do kill "$p" 2>/dev/null; done; tap_cleanup' EXIT
hold() {
	rm -f "$T/$1.fifo"
	mkfifo "$T/$1.fifo"
	python3 "$top_srcdir/tests/lib/mcclient.py" "$SOCK" --hold \
	    <"$T/$1.fifo" >"$T/$1.out" 2>&1 &
	HOLDERS="$HOLDERS $!"
	eval "${1}_pid=$!"
	sleep 3600 >"$T/$1.fifo" &
	HOLDERS="$HOLDERS $!"
	eval "${1}_sleep=$!"
}
unhold() {
	eval "kill \$${1}_sleep; wait \$${1}_sleep 2>/dev/null; wait \$${1}_pid"
}
# api_ok DESCRIPTION CHECK ARGS...: api CHECK ARGS exits 0.
api_ok() {
	d=$1
	shift
	run_ok "$d" api "$@"
}

for m in demo two three four five six; do
	make_model "$T/$m" "$m"
done
REPOS=
for m in demo two three four five six; do
	REPOS="$REPOS --repo org/$m=$T/$m"
done
# About 3 s a pull: 300000 bytes of model.safetensors at 100000 B/s.
SLOW='slow:100000@/cdn/'

# shellcheck disable=SC2086
start_origin $REPOS --fault "$SLOW"
ok $? "the test origin starts (slow CDN)"
start_daemon
ok $? "the daemon starts"

# --- the example --------------------------------------------------------------
"$T/example" hf://org/demo >"$T/ex.out" 2>"$T/ex.err"
rc=$?
ok $rc "the example acquires an absent model"
[ $rc -eq 0 ] || diag "$(cat "$T/ex.err")"
grep -q '^hf://org/demo: [0-9]* of [1-9][0-9]* bytes$' "$T/ex.err"
ok $? "with its progress on stderr"
dir=$(sed -n '1s/ .*//p' "$T/ex.out")
commit=$(sed -n '1s/.* //p' "$T/ex.out")
is "$dir" "hub/models--org--demo/snapshots/$commit" \
    "it prints the snapshot's directory, relative to the store"
echo "$commit" | grep -q '^[0-9a-f]\{40\}$'
ok $? "and its commit"
is "$(sed 1d "$T/ex.out")" "$(source_files "$T/demo")" \
    "and each file: the origin's paths, sizes and sha256"
is "$(source_files "$STORE/$dir")" "$(source_files "$T/demo")" \
    "the files are there under the store"
wait_for status_is '.leases | length == 0'
ok $? "the example's lease is gone after it"

"$T/example-static" org/demo >"$T/exs.out" 2>"$T/exs.err"
ok $? "the static example acquires the model, present now"
is "$(cat "$T/exs.out")" "$(cat "$T/ex.out")" "and prints the same"
test ! -s "$T/exs.err"
ok $? "with no progress (nothing to pull)"

run_fails 1 \
    "^cannot acquire 'hf://org/demo@nope': No such file or directory: ." \
    "an absent revision: the daemon's error, exit 1" "$T/example" \
    hf://org/demo@nope
run_fails 1 "^cannot acquire 'org/nosuch': Permission denied: ." \
    "an absent model (the Hub answers 401): the daemon's error, exit 1" \
    "$T/example" org/nosuch
run_fails 2 "^usage:" "no model: usage, exit 2" "$T/example"
MODELCACHE_SOCKET="$T/nowhere.sock"
export MODELCACHE_SOCKET
run_fails 1 "^cannot connect to modelcached: No such file or directory$" \
    "MODELCACHE_SOCKET naming no file: ENOENT, exit 1" "$T/example" org/demo
python3 -c 'import socket, sys
socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/dead.sock"
MODELCACHE_SOCKET="$T/dead.sock"
run_fails 1 "^cannot connect to modelcached: Connection refused$" \
    "MODELCACHE_SOCKET naming a socket nobody listens on: ECONNREFUSED" \
    "$T/example" org/demo
api_ok "mc_connect there: -ECONNREFUSED" connect ECONNREFUSED
MODELCACHE_SOCKET="$SOCK"

# --- the API ------------------------------------------------------------------
api_ok "mc_acquire calls the progress callback during a slow pull" \
    progress hf://org/two
diag "$(cat "$T/out")"
api_ok "mc_acquire, timeout_ms 200, slow pull: -ETIMEDOUT, then it works" \
    timeout hf://org/three 200
api_ok "two threads acquire on one client at once: serialised, both succeed" \
    threads hf://org/four hf://org/five
diag "$(cat "$T/out")"
api_ok "mc_release, then again: -ENOENT with the daemon's message" \
    release org/demo
api_ok "mc_status: the daemon's status, listing the lease, then not" \
    status org/demo
api_ok "mc_fd is a close-on-exec socket" fd
api_ok "NULL and non-UTF-8 arguments: -EINVAL; NULL frees nothing" \
    args org/demo
wait_for status_is '.leases | length == 0'
ok $? "no lease outlives the programs that took them"

# acquire_errno MODEL ERRNO DESCRIPTION
acquire_errno() {
	run_ok "$3" api acquire "$1" "$2"
	[ -s "$T/out" ] && diag "$(cat "$T/out")"
}
acquire_errno hf://org/demo@nope ENOENT "not_found: -ENOENT"
acquire_errno "no such:ref" EINVAL "bad_request: -EINVAL"

# shutting_down: an acquire waiting for its pull when the daemon stops.
"$T/api" acquire hf://org/six ESHUTDOWN >"$T/sd.out" 2>&1 &
sd_pid=$!
wait_for status_is '.pulls | map(.clients) | add == 1'
ok $? "an acquire waits for its (slow) pull"
stop_daemon
wait "$sd_pid"
rc=$?
ok $rc "the daemon stops under it: -ESHUTDOWN"
[ $rc -eq 0 ] || diag "$(cat "$T/sd.out")"

# busy: the daemon turns the connection away before hello.
MODELCACHE_MAX_CONNECTIONS=1
export MODELCACHE_MAX_CONNECTIONS
start_daemon
ok $? "the daemon starts with max_connections 1"
unset MODELCACHE_MAX_CONNECTIONS
hold b1
wait_for jq -e -s 'any(.[]; .protocol == 1)' "$T/b1.out"
ok $? "a connection is held"
api_ok "mc_connect to a full daemon: -EBUSY" connect EBUSY
unhold b1
stop_daemon

# unauthorized, forbidden, integrity, origin_unavailable, no_space: from the
# origin and the quota, on an empty store.
rm -rf "$STORE"
# shellcheck disable=SC2086
start_origin $REPOS --token sekrit
ok $? "the origin starts, wanting a token"
start_daemon
ok $? "the daemon starts without a token"
acquire_errno hf://org/demo EACCES "unauthorized: -EACCES"

stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS --token sekrit --gated manual
ok $? "the origin starts, gated by hand"
HF_TOKEN=sekrit
export HF_TOKEN
start_daemon
ok $? "the daemon starts with a token"
unset HF_TOKEN
acquire_errno hf://org/demo EPERM "forbidden: -EPERM"

stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS --fault 'corrupt@/cdn/'
ok $? "the origin starts, corrupting every CDN answer"
start_daemon
ok $? "the daemon starts"
acquire_errno hf://org/demo EBADMSG "integrity: -EBADMSG"
stop_origin
acquire_errno hf://org/demo EHOSTUNREACH \
    "origin_unavailable (the origin stopped): -EHOSTUNREACH"

stop_daemon
# shellcheck disable=SC2086
start_origin $REPOS
ok $? "the origin starts"
start_daemon --max-size 100000
ok $? "the daemon starts with --max-size 100000"
acquire_errno hf://org/three ENOSPC "no_space (a model over the quota): -ENOSPC"

stop_daemon
is "$DAEMON_RC" 0 "the daemon stops cleanly"
done_testing
