#!/bin/sh
# Leases: a snapshot that a server on another node leases is kept by gc and
# refused by rm while the lease's heartbeat is fresh; once the heartbeat is
# older than the stale limit, gc evicts it and fsck clears the lease.  A
# lease of a dead process on this host counts for nothing at once.
. "$top_srcdir/tests/lib/tap.sh"

# Leases are aged by setting their mtime, never waited on; the limit is
# long enough that a fresh lease stays fresh through a slow command.
MODELCACHE_STALE_AFTER=10
export MODELCACHE_STALE_AFTER

make_model "$T/a" a
make_model "$T/b" b
run_ok "import a" mc import --json "$T/a" org/a
ca=$(json '.commit' <"$T/out")
size_a=$(json '.size' <"$T/out")
run_ok "import b" mc import --json "$T/b" org/b

# lease ID TEXT: a lease file as another participant writes it, whole.
lease() {
	printf '%s' "$2" >"$T/lease.tmp" && mv "$T/lease.tmp" "$STORE/leases/$1"
}
# The lease of a server on node-b: only its heartbeat speaks for it.
L=node-b.4026531836.42.0123456789abcdef
now_ms() {
	echo $(($(date +%s) * 1000))
}
lease "$L" "models--org--a $ca $(now_ms)
"

before=$(store_state)
run_fails 7 "in use (leased)" "gc --dry-run to 0 cannot evict a leased model" \
    mc gc --dry-run --json --max-size 0
is "$(json '.evicted | map(.repo) | join(",")' <"$T/out")" "org/b" \
    "the plan evicts only the model without a lease"
is "$(json '.kept_leased' <"$T/out")" "$size_a" \
    "the plan reports the leased bytes it keeps"
is "$(json '.kept_pinned' <"$T/out")" 0 "and no pinned bytes"
is "$(store_state)" "$before" "--dry-run changes nothing"

touch "$STORE/leases/$L"
run_fails 7 "above .*: the rest is in use (leased)" \
    "gc to 0 evicts all but the leased model" mc gc --max-size 0
grep -q "^kept .* in use (leased)$" "$T/out"
ok $? "gc says what it kept for the lease"
grep -q "^evicted org/b@" "$T/out"
ok $? "gc evicted b"
is "$(mc ls --json | json 'map(.repo) | join(",")')" "org/a" \
    "a, leased, stays"

touch "$STORE/leases/$L"
before=$(store_state)
run_fails 1 "'org/a@$(echo "$ca" | cut -c1-12)' is in use (leased)" \
    "rm refuses a leased model" mc rm org/a
is "$(store_state)" "$before" "rm changed nothing"
run_ok "import b again" mc import "$T/b" org/b
touch "$STORE/leases/$L"
run_fails 1 "in use (leased)" "rm of several models stops at the leased one" \
    mc rm org/b org/a
is "$(mc ls --json | json 'map(.repo) | sort | join(",")')" "org/a,org/b" \
    "rm removed nothing, not even the model without a lease"

touch "$STORE/leases/$L"
run_ok "fsck is clean with a live lease" mc fsck --json
is "$(json '.issues | length' <"$T/out")" 0 "a live lease is no residue"

# The heartbeat stops: older than the stale limit, the lease is dead.  20 s
# is past the 10 s configured and short of the default 30 s: the
# configuration's limit is the one the store judges by.
touch -d '-20 seconds' "$STORE/leases/$L"
run_ok "fsck with a stale lease" mc fsck --json
is "$(json '.issues | map(.kind + " " + .path) | join(",")' <"$T/out")" \
    "lease_stale leases/$L" "fsck reports the stale lease as residue"
is "$(json '.issues[0].residue' <"$T/out")" true "it is residue"
run_ok "gc to 0 evicts a once its lease is stale" mc gc --json --max-size 0
is "$(json '.evicted | map(.repo) | sort | join(",")' <"$T/out")" \
    "org/a,org/b" "gc evicted both"
is "$(json '.kept_leased' <"$T/out")" 0 "and kept nothing for leases"
is "$(mc ls --json | json 'length')" 0 "the store is empty"
run_ok "fsck --repair removes the stale lease" mc fsck --repair --json
is "$(json '.issues | map(.kind + " " + (.repaired | tostring)) | join(",")' \
    <"$T/out")" "lease_stale true" "reported as repaired"
[ ! -e "$STORE/leases/$L" ]
ok $? "the lease file is gone"
run_ok "fsck is clean" mc fsck --json
is "$(json '.issues | length' <"$T/out")" 0 "nothing left to report"

# A lease whose owner ran on this host and in this PID namespace and has
# exited is dead at once, however fresh its heartbeat.
run_ok "import a again" mc import "$T/a" org/a
sh -c 'exit 0' &
dead=$!
wait "$dead"
host=$(uname -n | tr './' '__')
ns=$(stat -L -c %i /proc/self/ns/pid 2>/dev/null || echo 0)
boot=$(cut -c 1-8 /proc/sys/kernel/random/boot_id)
# "<host>.<boot>.<pidns>.<pid>.<start>.<hex>": no process runs as that pid,
# so its start time (any but 0, which means "unknown") does not matter.
D="$host.$boot.$ns.$dead.1.fedcba9876543210"
lease "$D" "models--org--a $ca $(now_ms)
"
run_ok "rm of a model leased by a dead local process" mc rm org/a
run_ok "fsck --repair" mc fsck --repair --json
is "$(json '.issues | map(.kind) | join(",")' <"$T/out")" "lease_stale" \
    "fsck calls the dead process's lease stale"

# A file in leases/ that is no lease protects nothing and is a problem.
printf 'not a lease\n' >"$STORE/leases/junk.0123456789abcdef"
run_fails 1 "" "fsck finds a malformed lease file" mc fsck --json
is "$(json '.issues | map(.kind + " " + .path) | join(",")' <"$T/out")" \
    "lease_bad leases/junk.0123456789abcdef" "and calls it lease_bad"
run_ok "fsck --repair quarantines it" mc fsck --repair
[ ! -e "$STORE/leases/junk.0123456789abcdef" ] &&
    ls "$STORE/tmp" | grep -q '^quarantine\..*\.junk\.0123456789abcdef\.lease$'
ok $? "the file is kept under tmp/ as evidence"
run_ok "fsck is clean after the repair" mc fsck
done_testing
