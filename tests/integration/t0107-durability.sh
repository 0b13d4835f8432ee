#!/bin/sh
# The order of a pull's durable steps, read from strace: each saved range
# state (tmp/partial.<sha>.ranges) is renamed into place only after an
# fdatasync of the partial file whose ranges it lists, so that a crash
# never leaves finished ranges on record whose bytes were not on disk; and
# a snapshot renamed into hub/<repo>/snapshots/ is followed by an fsync of
# that directory before its ref names it.  Skipped without strace.
. "$top_srcdir/tests/lib/tap.sh"

if ! command -v strace >/dev/null 2>&1 ||
    ! strace -f -qq -e trace=none true >/dev/null 2>&1; then
	echo "1..0 # SKIP strace is missing or cannot trace here"
	exit 0
fi

make_model "$T/repo" durable
openssl enc -aes-128-ctr -nosalt -pass pass:durable </dev/zero 2>/dev/null |
    head -c $((3 * 1024 * 1024)) >"$T/repo/big.safetensors"
start_origin --repo org/m="$T/repo"
ok $? "the test origin starts"

# LeakSanitizer cannot work under ptrace (a sanitizer build): leaks are
# looked for by the other tests.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS
run_ok "a pull in ranges of 256 KiB, under strace" \
    strace -f -y -qq -o "$T/trace" \
    -e trace=fsync,fdatasync,rename,renameat,renameat2 \
    "$MC" pull --chunk-size 256KiB org/m
run_ok "what it pulled verifies" mc verify org/m

# The checks, over strace's lines in the order it wrote them; a call's
# first line (or its "unfinished" half) is where it starts.
python3 - "$T/trace" >"$T/order" <<'EOF'
import re, sys
synced, ranges, bad = {}, 0, []
snap_renamed = snap_synced = ref_ok = False
for line in open(sys.argv[1]):
    if "resumed>" in line:
        continue
    m = re.search(r'fdatasync\(\d+<[^>]*/tmp/partial\.([0-9a-f]{64})>', line)
    if m:
        synced[m.group(1)] = True
        continue
    m = re.search(r'rename\w*\(.*"tmp/partial\.([0-9a-f]{64})\.ranges"', line)
    if m:
        ranges += 1
        if not synced.get(m.group(1)):
            bad.append(line.strip())
        synced[m.group(1)] = False
        continue
    if re.search(r'rename\w*\(.*"hub/models--org--m/snapshots/[0-9a-f]{40}"',
                 line):
        snap_renamed = True
    elif snap_renamed and re.search(
            r'fsync\(\d+<[^>]*/hub/models--org--m/snapshots>', line):
        snap_synced = True
    elif re.search(r'rename\w*\(.*"hub/models--org--m/refs/main"', line):
        ref_ok = snap_renamed and snap_synced
print("ranges %d" % ranges)
print("unsynced %d" % len(bad))
for b in bad[:3]:
    print("# " + b)
print("snapshot %s" % ("synced before its ref" if ref_ok else "not synced"))
EOF
ranges=$(sed -n 's/^ranges //p' "$T/order")
[ "${ranges:-0}" -ge 2 ]
ok $? "range state was saved as the ranges came ($ranges times)"
is "$(grep '^unsynced\|^#' "$T/order")" "unsynced 0" \
    "each saved range state came after an fdatasync of its partial file"
is "$(sed -n 's/^snapshot //p' "$T/order")" "synced before its ref" \
    "the snapshot's directory was fsync'd after the rename, before the ref"
done_testing
