#!/bin/sh
# A removal that a publish of the same commit overtakes.  The remover
# (rm, gc) stops itself (SIGSTOP) just after its commit point, the
# manifest's unlink, after the refs went, or after the whole view went
# (then the publish builds it afresh); a publish of the same commit
# (an import of the same files: the same commit id) then finds the
# manifest gone, saves it again and completes the view that is still
# there.  The remover goes on (SIGCONT) and takes that view apart.  The
# manifest is the truth: the remover looks for it before each step of the
# view and once more after the view and the row, finds it back, and
# restores both (its blobs stay); rm says
# the snapshot is in use, gc that it kept it.  Without that look, the
# store is left with a manifest whose snapshot is missing: on a network
# filesystem, where the publisher's node keeps its own index row, fsck
# reports hub_snapshot_missing (what the chaos campaign found on
# GlusterFS, t0721).  Then two nodes with their own index: a node's
# index follows a snapshot that the other node removed and published
# again (killed before its view, or with other revisions), as a rebuild
# would.  Runs on the local disk: each interleaving is forced.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/a" a
run_ok "import a" mc import --json "$T/a" org/a
commit=$(json '.commit' <"$T/out")
snap="$STORE/hub/models--org--a/snapshots/$commit"
man="$STORE/manifests/models--org--a/$commit.json"

# whole: the snapshot's directory, each link resolving to its store blob,
# and a ref naming it.
whole() {
	[ -d "$snap" ] && [ -f "$man" ] || return 1
	for f in config.json merges.txt model.safetensors sub/weights.bin \
	    sub/dir/notes.txt; do
		cmp -s "$snap/$f" "$T/a/$f" || return 1
	done
	grep -rqx "$commit" "$STORE/hub/models--org--a/refs"
}

# remove_overtaken POINT WHAT ARGS...: the remover mc ARGS stops at its
# first POINT; an import of the same commit runs; the remover goes on.
remove_overtaken() {
	point=$1 what=$2
	shift 2
	mc_stopped rm "$point" "$@"
	ok $? "$what stops at $point"
	R=$STOPPED_PID
	case $point in
	remove-manifest-done)
		ok "$([ ! -e "$man" ]; echo $?)" "the manifest is gone" ;;
	hub-unref)
		ok "$([ -d "$snap" ] && ! grep -rqx "$commit" \
		    "$STORE/hub/models--org--a/refs"; echo $?)" \
		    "the refs are gone, the snapshot is still there" ;;
	remove-hub-done)
		ok "$([ ! -e "$man" ] && [ ! -e "$snap" ]; echo $?)" \
		    "the manifest and the snapshot are gone" ;;
	esac
	run_ok "an import of the same commit meanwhile" \
	    mc import --json "$T/a" org/a
	is "$(json '.commit' <"$T/out")" "$commit" "it publishes the same commit"
	whole
	ok $? "the import completed the view"
	kill -CONT "$R"
	wait "$R"
	rrc=$?
	whole
	ok $? "after $what goes on, the snapshot is still whole"
	mc fsck --json >"$T/fsck.json"
	is "$(json '.issues | length' <"$T/fsck.json")" 0 \
	    "fsck finds nothing, not even residue"
	[ "$(json '.issues | length' <"$T/fsck.json")" = 0 ] ||
	    diag "$(cat "$T/fsck.json")"
	is "$(mc ls --json | json '.[] | select(.repo == "org/a") | .commit')" \
	    "$commit" "the index lists it"
}

remove_overtaken remove-manifest-done rm rm org/a
is "$rrc" 1 "rm fails"
grep -q "is in use (leased, or published again meanwhile)" "$T/rm.err"
ok $? "rm says the snapshot is in use: published again"
diag "$(cat "$T/rm.out" "$T/rm.err")"

remove_overtaken hub-unref "gc to 0" gc --max-size 0
grep -q "^kept, leased meanwhile, org/a@" "$T/rm.out"
ok $? "gc says it kept the snapshot"
diag "gc exit $rrc: $(cat "$T/rm.out" "$T/rm.err")"

# After the whole view went, before the index row: the import builds the
# view afresh and writes its row, which the removal then deletes.
remove_overtaken remove-hub-done rm rm org/a
is "$rrc" 1 "rm fails"
grep -q "is in use (leased, or published again meanwhile)" "$T/rm.err"
ok $? "rm says the snapshot is in use: published again"

# The model still works as any other: it can be removed for good.
run_ok "rm of it afterwards" mc rm org/a
ok "$([ ! -e "$snap" ] && [ ! -e "$man" ]; echo $?)" \
    "and then it is gone"
mc fsck --json >"$T/fsck.json"
is "$(json '.problems' <"$T/fsck.json")" 0 "fsck is clean"

# Two nodes with their own index (MODELCACHE_INDEX), as on a network
# filesystem: node a indexed org/c; node b removes it and publishes it
# again, killed between the manifest and the view (residue: the view is
# the next publish's to build).  Node a's index, which never saw the gap,
# finds the manifest changed and its view missing: the older copy's row
# goes, and fsck on a counts residue, not a snapshot missing.
A="env MODELCACHE_INDEX=$T/node-a.db"
B="env MODELCACHE_INDEX=$T/node-b.db"
make_model "$T/c" c
run_ok "node a imports org/c" $A "$MC" import --json "$T/c" org/c
cc=$(json '.commit' <"$T/out")
$A "$MC" ls >/dev/null
run_ok "node b removes it" $B "$MC" rm org/c
MODELCACHE_CRASH_POINT=manifest-saved MODELCACHE_CRASH_AT=1 \
    $B "$MC" import "$T/c" org/c >/dev/null 2>&1
is "$?" 137 "node b's import of it again is killed after its manifest"
ok "$([ -f "$STORE/manifests/models--org--c/$cc.json" ] &&
    [ ! -e "$STORE/hub/models--org--c/snapshots/$cc" ]; echo $?)" \
    "a manifest without its view"
$A "$MC" fsck --json >"$T/fsck.json"
is "$(json '.problems' <"$T/fsck.json")" 0 \
    "fsck on node a: residue, no problem"
[ "$(json '.problems' <"$T/fsck.json")" = 0 ] || diag "$(cat "$T/fsck.json")"
is "$($A "$MC" ls --json | json 'map(.repo) | sort | join(",")')" "" \
    "node a's index no longer lists org/c"
run_ok "node a imports it again" $A "$MC" import "$T/c" org/c
is "$($A "$MC" ls --json | json 'map(.repo) | sort | join(",")')" "org/c" \
    "and lists it"
run_ok "fsck on node a is clean" $A "$MC" fsck

# The same gap, with other revisions: node a pulled org/x as main; node b
# removes it and pulls it again by its commit (no revision name).  Node
# a's index follows the changed manifest: no ref of the older copy stays,
# and it lists what an index rebuilt from the files lists.
make_model "$T/x" x
start_origin --repo org/x="$T/x"
ok $? "the test origin starts"
run_ok "node a pulls org/x" $A "$MC" pull --json org/x
cx=$(json '.commit' <"$T/out")
is "$($A "$MC" ls --json | json '.[] | select(.repo == "org/x") |
    .revisions | join(",")')" main "node a lists it as main"
run_ok "node b removes it" $B "$MC" rm org/x
run_ok "node b pulls it again by its commit" $B "$MC" pull "org/x@$cx"
is "$($A "$MC" ls --json | json '.[] | select(.repo == "org/x") |
    .revisions | join(",")')" "" "node a no longer names it main"
is "$(env MODELCACHE_INDEX="$T/node-c.db" "$MC" ls --json |
    json '.[] | select(.repo == "org/x") | .revisions | join(",")')" "" \
    "as an index rebuilt from the files says"

done_testing
