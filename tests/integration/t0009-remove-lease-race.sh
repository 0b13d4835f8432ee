#!/bin/sh
# Removal and a lease taken in its window (snapshot.c): rm and gc look at
# the leases, unlink the manifest (the commit point), look at the leases
# again, and put the manifest back when a lease appeared.  Each remover is
# stopped (SIGSTOP at a fault point) right after its first look, a server
# leases the model through the daemon meanwhile and is answered, then the
# remover goes on: the model stays whole (manifest, view, index row,
# blobs), fsck is clean, and the server's files are its bytes.  Stopped
# instead just after the unlink, the daemon finds the manifest gone and
# pulls the model again (no byte fetched: the blobs are there), and the
# remover, continued, keeps what that publish wrote.  Once the lease ends,
# rm removes the model.  Without the second look (or without the
# write-back) the first two cases lose the leased model.  Last, rm is
# killed (SIGKILL) just after its commit point while a server it had not
# seen holds the model: the manifest is aside, not gone, and fsck --repair
# and gc put it back rather than clear the leased model as residue.
. "$top_srcdir/tests/lib/tap.sh"

MODELCACHE_STALE_AFTER=30
export MODELCACHE_STALE_AFTER

make_model "$T/a" race
start_origin --repo org/a="$T/a"
ok $? "the test origin starts"
run_ok "pull org/a" mc pull --json org/a
ca=$(json '.commit' <"$T/out")
start_daemon
ok $? "the daemon starts"
MF="$STORE/manifests/models--org--a/$ca.json"
SNAP="$STORE/hub/models--org--a/snapshots/$ca"
HOLDER=
trap 'exec 3>&-; [ -n "$HOLDER" ] && kill $HOLDER 2>/dev/null; tap_cleanup' \
    EXIT

# hold NAME: a server's acquire of org/a, its connection (and so its lease)
# kept open on fd 3 until release.
hold() {
	rm -f "$T/hold.fifo"
	mkfifo "$T/hold.fifo"
	client --hold '{"op":"acquire","model":"org/a"}' <"$T/hold.fifo" \
	    >"$T/$1.out" 2>&1 &
	HOLDER=$!
	exec 3>"$T/hold.fifo"
	wait_for grep -q '"event":"ready"' "$T/$1.out"
}
release() {
	exec 3>&-
	wait "$HOLDER"
	HOLDER=
	wait_for leases_gone
}
leases_gone() {
	[ -z "$(ls -A "$STORE/leases")" ]
}

# intact NAME: the model is whole and the files of the answer in
# $T/NAME.out are there with the digests it gave.
intact() {
	ok "$([ -f "$MF" ]; echo $?)" "$1: the manifest is there"
	is "$(mc ls --json | json 'map(.repo) | join(",")')" "org/a" \
	    "$1: ls lists org/a"
	run_ok "$1: fsck is clean" mc fsck --json
	is "$(json '.issues | length' <"$T/out")" 0 "$1: no issue"
	run_ok "$1: verify is clean" mc verify org/a
	grep '"event":"ready"' "$T/$1.out" >"$T/ready.json"
	dir=$(json '.dir' <"$T/ready.json")
	bad=$(json '.files[] | .path + " " + .sha256' <"$T/ready.json" |
	    while read -r path sha; do
		[ "$(sha_of "$STORE/$dir/$path" 2>/dev/null)" = "$sha" ] ||
		    echo "$path"
	    done)
	is "$bad" "" "$1: every file of the answer is there, its bytes"
	is "$(json '.files | length' <"$T/ready.json")" 5 \
	    "$1: the answer lists the model's five files"
}

# --- rm, stopped after its first look at the leases ---------------------
mc_stopped rm remove-leases-checked rm org/a
ok $? "rm stalls after its first look at the leases (no lease then)"
ok "$([ -f "$MF" ]; echo $?)" "the manifest is still there"
hold rm-hold
ok $? "a server leases org/a through the daemon meanwhile"
kill -CONT "$STOPPED_PID"
wait "$STOPPED_PID"
is "$?" 1 "rm, continued, fails"
grep -q "is in use (leased" "$T/rm.err"
ok $? "saying the model is in use (leased)"
intact rm-hold
release
ok $? "the server ends: its lease is gone"

# --- gc, likewise ---------------------------------------------------------
mc_stopped gc remove-leases-checked gc --json --max-size 0
ok $? "gc --max-size 0 stalls after its first look at the leases"
hold gc-hold
ok $? "a server leases org/a meanwhile"
kill -CONT "$STOPPED_PID"
wait "$STOPPED_PID"
is "$?" 7 "gc, continued, ends with no space (exit 7): the store stays above 0"
grep -q "above 0 B: the rest is in use (leased)" "$T/gc.err"
ok $? "saying the rest is in use (leased)"
is "$(json '.leased_meanwhile | map(.repo) | join(",")' <"$T/gc.out")" \
    "org/a" "gc reports org/a as leased meanwhile"
is "$(json '.evicted | length' <"$T/gc.out")" 0 "and evicted nothing"
intact gc-hold
release
ok $? "the server ends"

# --- rm, stopped after it unlinked the manifest -----------------------------
before=$(stats '.bytes')
asked=$(stats '[.requests[]] | add')
mc_stopped rm2 remove-manifest-done rm org/a
ok $? "rm stalls after unlinking the manifest"
ok "$([ ! -f "$MF" ]; echo $?)" "the manifest is gone"
hold rm2-hold
ok $? "a server's acquire is answered meanwhile"
[ "$(stats '[.requests[]] | add')" -gt "$asked" ]
ok $? "after a pull: the daemon did not answer from the half-removed model"
is "$(stats '.bytes')" "$before" "that pull fetched no byte: the blobs are there"
kill -CONT "$STOPPED_PID"
wait "$STOPPED_PID"
is "$?" 1 "rm, continued, fails"
grep -q "is in use (leased" "$T/rm2.err"
ok $? "saying the model is in use (leased)"
intact rm2-hold
release
ok $? "the server ends"

# --- once no lease holds it, it goes ----------------------------------------
run_ok "rm without a lease removes org/a" mc rm org/a
is "$(mc ls --json | json 'length')" 0 "the store lists nothing"
ok "$([ ! -e "$MF" ] && [ ! -e "$SNAP" ]; echo $?)" \
    "its manifest and snapshot are gone"
is "$(find "$STORE/blobs" -type f | wc -l)" 0 "and its blobs"
run_ok "fsck is clean" mc fsck

# --- rm killed after its commit point, a server leased meanwhile ------------
# Stalled after its first look (no lease then), a server leases org/a and
# is answered from the manifest; continued, rm renames the manifest aside
# and is killed before its second look would have put it back.
run_ok "org/a is pulled again" mc pull org/a
MODELCACHE_CRASH_THEN=remove-manifest-done
export MODELCACHE_CRASH_THEN
mc_stopped rm3 remove-leases-checked rm org/a
ok $? "rm stalls after its first look at the leases"
unset MODELCACHE_CRASH_THEN
hold rm3-hold
ok $? "a server leases org/a meanwhile, answered from the manifest"
kill -CONT "$STOPPED_PID"
wait "$STOPPED_PID"
is "$?" 137 "rm, continued, is killed (SIGKILL) after its commit point"
ok "$([ ! -e "$MF" ]; echo $?)" "the manifest is not in its place"
run_ok "fsck --repair" mc fsck --repair --json
is "$(json '[.issues[] | select(.kind == "manifest_removing" and .repaired)]
    | length' <"$T/out")" 1 "it finds the manifest set aside and puts it back"
run_fails 7 "in use (leased)" "gc --max-size 0 keeps the leased model" \
    mc gc --max-size 0
intact rm3-hold
release
ok $? "the server ends"
run_ok "gc --max-size 0, the lease gone" mc gc --max-size 0
is "$(mc ls --json | json 'length')" 0 "gc removed org/a"
is "$(find "$STORE/blobs" "$STORE/manifests" -type f | wc -l)" 0 \
    "with its blobs and manifest"
run_ok "fsck is clean" mc fsck --json
is "$(json '.issues | length' <"$T/out")" 0 "no issue"
done_testing
