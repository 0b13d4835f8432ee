#!/bin/sh
# A pull that reuses a blob while another process holds the blob's claim,
# and a removal of the model that brought the blob.  Models a and b share
# model.safetensors (blob X).  The pull of b finds X in blobs/ with its
# claim held by someone else, reuses it without holding the claim, and
# stops itself (SIGSTOP) at "pull-settled", once every file is settled and
# before its manifest is saved.  Meanwhile `rm org/a` drops X, which no
# saved manifest names.  Two holders of X's claim:
#   1. the remover itself: rm stops at "remove-blobs-claimed" (X's claim
#      taken, the manifests not read yet) while b is pulled;
#   2. the publisher of a: the pull of a stops at "pull-settled" (X
#      published, its claim held and noted, a's manifest not saved); b is
#      pulled; a goes on and completes; then rm org/a.
# Then b goes on.  Before its manifest it takes X's claim again, finds X
# gone, and fetches it once more: b's manifest names only blobs that are
# there, fsck and verify are clean, and the origin served X exactly once
# more.  Without that (pull.c, reclaim()), b's manifest names a missing
# blob (fsck: blob_missing).
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/a" a
make_model "$T/b" b
cp "$T/a/model.safetensors" "$T/b/model.safetensors"
x=$(sha_of "$T/a/model.safetensors")
xsize=$(stat -c %s "$T/a/model.safetensors")
start_origin --repo org/a="$T/a" --repo org/b="$T/b"
ok $? "the test origin starts"

# served: the bytes of X the origin sent so far.
served() {
	stats ".bytes_by_sha256[\"$x\"] // 0"
}

# check WHAT: b whole, its blobs there, the store clean, X served once more.
check() {
	is "$(served)" $((before + xsize)) \
	    "$1: the origin served X once more, to b"
	is "$(json '.files | length' "$STORE"/manifests/models--org--b/*.json)" \
	    5 "$1: b's manifest names its 5 files"
	missing=0
	for s in $(json '.files[].sha256' \
	    "$STORE"/manifests/models--org--b/*.json); do
		f="$STORE/blobs/sha256/$(echo "$s" | cut -c1-2)/$s"
		[ -f "$f" ] || missing=$((missing + 1))
	done
	is "$missing" 0 "$1: b's manifest names only blobs that are there"
	mc fsck --json >"$T/fsck.json"
	is "$(json '.issues | length' <"$T/fsck.json")" 0 "$1: fsck is clean"
	[ "$(json '.issues | length' <"$T/fsck.json")" = 0 ] ||
	    diag "$(cat "$T/fsck.json")"
	run_ok "$1: verify is clean" mc verify
	cmp -s "$STORE"/hub/models--org--b/snapshots/*/model.safetensors \
	    "$T/b/model.safetensors"
	ok $? "$1: b's model.safetensors reads whole"
}

# 1. The remover holds X's claim while b reuses X.
run_ok "pull a" mc pull org/a
before=$(served)
mc_stopped rm remove-blobs-claimed rm org/a
ok $? "rm a stops with X's claim held"
R=$STOPPED_PID
mc_stopped b pull-settled pull --json org/b
ok $? "pull b reuses X and stops before its manifest"
B=$STOPPED_PID
kill -CONT "$R"
wait "$R"
ok $? "rm a goes on and completes"
ok "$([ ! -e "$STORE/blobs/sha256/$(echo "$x" | cut -c1-2)/$x" ]; echo $?)" \
    "X is gone: no saved manifest named it"
kill -CONT "$B"
wait "$B"
ok $? "pull b goes on and completes"
check "remover"

# 2. The publisher of a holds X's claim while b reuses X.
run_ok "rm b" mc rm org/b
mc gc >/dev/null 2>&1
before=$(served)
mc_stopped a pull-settled pull org/a
ok $? "pull a publishes X and stops before its manifest"
A=$STOPPED_PID
mc_stopped b pull-settled pull --json org/b
ok $? "pull b reuses X and stops before its manifest"
B=$STOPPED_PID
kill -CONT "$A"
wait "$A"
ok $? "pull a goes on and completes"
before=$(served)
run_ok "rm a" mc rm org/a
ok "$([ ! -e "$STORE/blobs/sha256/$(echo "$x" | cut -c1-2)/$x" ]; echo $?)" \
    "X is gone: no saved manifest named it"
kill -CONT "$B"
wait "$B"
ok $? "pull b goes on and completes"
check "publisher"
done_testing
