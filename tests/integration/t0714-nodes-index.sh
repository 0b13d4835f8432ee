#!/bin/sh
# Two nodes, one GlusterFS volume, each with its own index: node b's ls,
# show and status answer correctly while node a imports and removes
# models, with no error, no lost row, and no stale answer once a's change
# is in the files.  On the default-caching and the strict volume.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/gluster.sh"

gluster_setup
ok $? "glusterd, two volumes, four mounts and two nodes are up"
for i in 1 2 3 4 5 6; do make_model "$T/m$i" "index$i"; done

lists() {	# lists NODE STORE: the repos NODE's index lists
	node_mc "$1" "$2" ls --json | json 'map(.repo) | sort | join(",")'
}

for mode in default strict; do
	t0=$(gl_now)
	SA="$GL/$mode-a/idx" SB="$GL/$mode-b/idx"
	node_daemon b "$SB" "$T/b-$mode.sock"
	ok $? "$mode: a daemon on node b"
	# In lock step: each change of a is seen by b's next command.
	want=
	bad=0
	for i in 1 2 3; do
		node_mc a "$SA" import "$T/m$i" "org/m$i" >/dev/null 2>&1 ||
		    bad=1
		want="${want:+$want,}org/m$i"
		got=$(lists b "$SB")
		[ "$got" = "$want" ] || { bad=1; diag "after import $i: $got"; }
		n=$(node_mc b "$SB" show --json "org/m$i" | json '.[0].files')
		[ "$n" = 5 ] || { bad=1; diag "show org/m$i on b: $n"; }
	done
	node_mc a "$SA" rm org/m2 >/dev/null 2>&1 || bad=1
	got=$(lists b "$SB")
	[ "$got" = "org/m1,org/m3" ] || { bad=1; diag "after rm: $got"; }
	node_mc b "$SB" show org/m2 >/dev/null 2>&1 && bad=1
	is "$bad" 0 "$mode: b's ls and show follow each import and rm of a"

	# Concurrently: a imports and removes while b asks, over and over.
	(
		for r in 1 2 3; do
			for i in 4 5 6; do
				node_mc a "$SA" import "$T/m$i" "org/m$i" ||
				    exit 1
			done
			for i in 4 5; do
				node_mc a "$SA" rm "org/m$i" || exit 1
			done
		done
	) >"$T/a-$mode.log" 2>&1 &
	writer=$!
	errs=0 asks=0
	while kill -0 "$writer" 2>/dev/null; do
		asks=$((asks + 1))
		node_mc b "$SB" ls --json >"$T/ls.json" 2>>"$T/b-$mode.err" ||
		    errs=$((errs + 1))
		# Models a never touches again are always listed.
		json 'map(.repo) | index("org/m1") != null and
		    index("org/m3") != null' <"$T/ls.json" | grep -q true ||
		    errs=$((errs + 1))
		node_mc b "$SB" show org/m1 >/dev/null 2>>"$T/b-$mode.err" ||
		    errs=$((errs + 1))
		"$MC" status --socket "$T/b-$mode.sock" >/dev/null \
		    2>>"$T/b-$mode.err" || errs=$((errs + 1))
	done
	wait "$writer"
	rc=$?
	ok "$rc" "$mode: node a imports and removes nine times"
	[ "$rc" -eq 0 ] || diag "$(tail -5 "$T/a-$mode.log")"
	is "$errs" 0 "$mode: node b's $asks rounds of ls, show and status"
	[ "$errs" -eq 0 ] || diag "$(sort "$T/b-$mode.err" | uniq -c | head)"
	is "$(lists b "$SB")" "org/m1,org/m3,org/m6" \
	    "$mode: b's index ends with exactly what the files hold"
	is "$(lists a "$SA")" "org/m1,org/m3,org/m6" "$mode: and so does a's"
	run_ok "$mode: fsck on node b" node_mc b "$SB" fsck
	eval "kill \$GL_DAEMON_b"
	echo "# time $mode: $(gl_since "$t0") s"
done
done_testing
