#!/bin/sh
# A blob already under blobs/ whose size is not the one its model's
# manifest and origin say (what a pull through a lying origin used to
# publish: the blob and its hub link one inode, junk appended) is not
# trusted: a pull of the model, or an acquire through the daemon, sets it
# aside under tmp/quarantine.*.corrupt (kept, never deleted) and fetches it
# anew, for an LFS file and a small git file; the model is then whole,
# verifies, and is acquirable.  A partial file that a crash in a publish
# left as a second name of another file is never written to.  Only
# loopback.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/repo" badblob
start_origin --repo org/m="$T/repo"
ok $? "the test origin starts"
lfs=$(sha_of "$T/repo/model.safetensors")
cfg=$(sha_of "$T/repo/config.json")
run_ok "pull the model" mc pull org/m

blob() {
	echo "$STORE/blobs/sha256/$(echo "$1" | cut -c1-2)/$1"
}
# spoil SHA: junk appended to the blob's own inode, as the unfixed pull
# left it (the hub view's hard link shows the same bytes).
spoil() {
	chmod u+w "$(blob "$1")" &&
	    head -c 1000 /dev/urandom >>"$(blob "$1")" &&
	    chmod 0444 "$(blob "$1")"
}
bad_blobs() {
	find "$STORE/blobs/sha256" -type f | while read -r f; do
		[ "$(sha_of "$f")" = "${f##*/}" ] || echo "${f##*/} $(stat -c %s "$f")"
	done
}
quarantined() {
	find "$STORE/tmp" -name "quarantine.*.$1.corrupt" | wc -l
}
snapshot_is_source() {
	for f in model.safetensors config.json sub/weights.bin; do
		cmp -s "$STORE"/hub/models--org--m/snapshots/*/"$f" \
		    "$T/repo/$f" || return 1
	done
}

spoil "$lfs" && spoil "$cfg"
ok $? "two blobs of the model get 1000 bytes more"
run_fails 5 "" "verify sees them" mc verify org/m

run_ok "a pull of the model again" mc pull org/m
is "$(bad_blobs)" "" "every blob under blobs/ is its name's bytes again"
is "$(quarantined "$lfs"):$(quarantined "$cfg")" "1:1" \
    "the two bad blobs are kept aside in tmp/ as quarantine.*.corrupt"
is "$(stat -c %s "$STORE"/tmp/quarantine.*."$lfs".corrupt)" 301000 \
    "with the bytes they had"
snapshot_is_source
ok $? "the hub view shows the right bytes"
run_ok "the model verifies" mc verify org/m
run_ok "fsck is clean (quarantined evidence is not residue)" mc fsck

# The daemon: a model whose blob has the wrong size is pulled again, not
# refused for ever.
spoil "$lfs"
ok $? "the LFS blob is spoilt again"
start_daemon
ok $? "the daemon starts"
client '{"op":"acquire","model":"hf://org/m"}' >"$T/acq.out"
ok $? "acquire of the model ends ok"
jqok "ready" "$(tail -n 1 "$T/acq.out")" '.ok == true and .event == "ready"'
is "$(bad_blobs)" "" "every blob under blobs/ is its name's bytes"
is "$(quarantined "$lfs")" 2 "the bad blob is set aside again"
snapshot_is_source
ok $? "the snapshot the daemon answered has the right bytes"
client '{"op":"acquire","model":"hf://org/m"}' >"$T/acq.out"
jqok "and a second acquire is ready at once" "$(tail -n 1 "$T/acq.out")" \
    '.ok == true and .event == "ready"'
stop_daemon
run_ok "the model verifies" mc verify org/m

# A crash inside a publish can leave the partial file made 0444 and still
# a second name of the blob it became.  Here it names another file: the
# next pull of that blob must not write into it.
rm -rf "$STORE"
mkdir -p "$STORE/tmp"
cp "$T/repo/sub/weights.bin" "$T/other"
chmod 0444 "$T/other"
ln "$T/other" "$STORE/tmp/partial.$lfs"
before=$(sha_of "$T/other")
run_ok "a pull with such a partial left in tmp/" mc pull org/m
is "$(sha_of "$T/other")" "$before" "the file the partial named is untouched"
is "$(bad_blobs)" "" "every blob under blobs/ is its name's bytes"
run_ok "the model verifies" mc verify org/m
done_testing
