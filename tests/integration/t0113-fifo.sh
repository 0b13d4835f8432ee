#!/bin/sh
# A FIFO planted where the store keeps a file (a partial and its saved
# ranges, a claim, a rate-limit note, a ref, a manifest, a blob, a lease)
# never hangs a command or the daemon's loop: opening one for reading
# would wait for a writer that never comes.  Each is refused with a clear
# error or treated as residue.  Every command runs under timeout(1); 124
# would be a hang.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/repo" fifo
st=$(sha_of "$T/repo/model.safetensors")
unset HF_TOKEN
start_origin --repo org/demo="$T/repo"
ok $? "the test origin starts"

# within DESC mc|client ARGS...: modelcache, or the test client of the
# daemon, ends in 60 s (any status but timeout's 124, or 126/127: not run).
within() {
	desc=$1
	case $2 in
	mc) prog=$MC ;;
	client) prog="python3 $top_srcdir/tests/lib/mcclient.py $SOCK" ;;
	esac
	shift 2
	# shellcheck disable=SC2086
	timeout "${MC_T0113_TIMEOUT:-60}" $prog "$@" >"$T/out" 2>"$T/err"
	rc=$?
	[ "$rc" -ne 124 ] && [ "$rc" -ne 126 ] && [ "$rc" -ne 127 ]
	ok $? "$desc: ends (exit $rc)"
	[ "$rc" -eq 0 ] || diag "$(head -c 600 "$T/err")" "$(head -c 600 "$T/out")"
	return "$rc"
}

# 1. Before the first pull: the LFS file's claim, its partial's saved
# ranges (beside a partial of the right size) and the origin's rate-limit
# note are FIFOs.  All are residue: the pull takes them over.
mkdir -p "$STORE/tmp" "$STORE/claims"
mkfifo "$STORE/claims/$st"
truncate -s 300000 "$STORE/tmp/partial.$st"
mkfifo "$STORE/tmp/partial.$st.ranges"
mkfifo "$STORE/tmp/ratelimit.127.0.0.1_${ORIGIN##*:}"
within "a pull among FIFOs in claims/ and tmp/" mc pull org/demo
is "$rc" 0 "it succeeds"
run_ok "what it published verifies" mc verify
b=$(find "$STORE/blobs" -type f -name "$st")
is "$(test -n "$b" && sha_of "$b")" "$st" "the LFS blob is right"
test -p "$STORE/claims/$st"
is "$?" 1 "the FIFO claim is gone"

# 2. A FIFO as the partial itself.
rm -rf "$STORE"
mkdir -p "$STORE/tmp"
mkfifo "$STORE/tmp/partial.$st"
within "a pull whose partial is a FIFO" mc pull org/demo
is "$rc" 0 "it succeeds (the FIFO is residue)"
run_ok "and verifies" mc verify

# 3. The daemon on that store, serving; then a FIFO as the model's ref.
start_daemon
ok $? "the daemon starts"
within "acquire of the present model" client \
    '{"op":"acquire","model":"hf://org/demo"}'
ref="$STORE/hub/models--org--demo/refs/main"
rm -f "$ref"
mkfifo "$ref"
within "acquire through the daemon with a FIFO as refs/main" client \
    '{"op":"acquire","model":"hf://org/demo"}'
within "the daemon still answers status" mc status
is "$rc" 0 "and answers it"
for cmd in "ls" "show org/demo" "fsck" "gc --max-size 10GiB" "verify"; do
	# shellcheck disable=SC2086
	within "modelcache $cmd with a FIFO as refs/main" mc $cmd
done
rm -f "$ref"

# 4. A FIFO as the manifest.
man=$(find "$STORE/manifests" -name '*.json' | head -1)
mv "$man" "$T/manifest.json"
mkfifo "$man"
for cmd in "ls" "fsck" "gc --max-size 10GiB"; do
	# shellcheck disable=SC2086
	within "modelcache $cmd with a FIFO as the manifest" mc $cmd
	[ "$cmd" != fsck ] ||
		grep -q "manifest_bad .*: not a regular file" "$T/out"
	ok $? "and if fsck: it names the manifest as not a regular file"
done
within "acquire with a FIFO as the manifest" client \
    '{"op":"acquire","model":"hf://org/demo"}'
rm -f "$man"
mv "$T/manifest.json" "$man"
run_ok "with the manifest back, fsck --repair mends the store" mc fsck --repair

# 5. A FIFO as a blob: verify says the blob is bad, fsck finds it.
b=$(find "$STORE/blobs" -type f -name "$st")
rm -f "$b"
mkfifo "$b"
within "modelcache verify with a FIFO as a blob" mc verify
[ "$rc" -ne 0 ]
ok $? "verify reports it (exit $rc)"
within "modelcache fsck with a FIFO as a blob" mc fsck

# 6. A FIFO as a lease.
mkfifo "$STORE/leases/other.0123456789abcdef"
for cmd in "status" "gc --max-size 10GiB" "fsck"; do
	# shellcheck disable=SC2086
	within "modelcache $cmd with a FIFO as a lease" mc $cmd
done
within "the daemon, after all that, answers status" mc status
is "$rc" 0 "and answers it"
kill -0 "$DAEMON_PID"
ok $? "the daemon is still running"

done_testing
