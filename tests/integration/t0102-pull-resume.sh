#!/bin/sh
# A pull killed with SIGKILL half-way through a 1 GiB file resumes: the
# second pull completes, fetching only the ranges the first had saved as
# finished, and the origin served less than 1.5 times the model in all.
# (A range is saved as finished only once its bytes are fsync'd, so what
# is on record lags the ranges done by the time that takes.)  A store on a small tmpfs: the pull fails with "no space",
# leaves no partial data, and the store stays consistent.
. "$top_srcdir/tests/lib/tap.sh"

mkdir -p "$T/repo"
printf '{"model_type":"gpt2"}' >"$T/repo/config.json"
openssl enc -aes-128-ctr -nosalt -pass pass:gib </dev/zero 2>/dev/null |
    head -c $((1024 * 1024 * 1024)) >"$T/repo/model.safetensors"
size=$((1024 * 1024 * 1024 + 21))
start_origin --repo org/big="$T/repo"
ok $? "the test origin starts"

# Stop the first pull when half the 128 ranges of 8 MiB are done: the
# fault point "pull-range-done" is passed once per finished range.
MODELCACHE_CRASH_AT=64 "$MC" pull --chunk-size 8MiB org/big \
    >"$T/out" 2>"$T/err"
is "$?" 137 "the first pull is killed half-way"
is "$(mc ls --json | json 'length')" 0 "nothing is published"
ls "$STORE"/tmp/partial.*.ranges >/dev/null 2>&1
ok $? "the partial file and its saved ranges stay for a resume"
saved=$(tail -n +2 "$STORE"/tmp/partial.*.ranges | wc -l)
[ "$saved" -ge 8 ] && [ "$saved" -le 64 ]
ok $? "part of the ranges are saved ($saved of 128)"
run_ok "fsck finds no problem in what the kill left" mc fsck
first=$(stats '.bytes')

run_ok "the second pull completes" mc pull --chunk-size 8MiB org/big
served=$(stats '.bytes')
[ "$served" -lt $((size * 15 / 10)) ]
ok $? "the origin served less than 1.5x the model in all ($served bytes)"
[ "$((served - first))" -lt $((size - saved * 8 * 1024 * 1024 + 8 * 8 * 1024 * 1024)) ]
ok $? "the second pull fetched only what was missing ($((served - first)) bytes)"
run_ok "the model verifies" mc verify
is "$(find "$STORE/tmp" -mindepth 1)" "" "tmp/ is empty"

# A store too small for the model.
mkdir -p "$T/small"
if mount -t tmpfs -o size=64m tmpfs "$T/small" 2>/dev/null; then
	STORE="$T/small/store"
	MODELCACHE_STORE=$STORE
	run_fails 7 "No space left on device" \
	    "a pull into a 64 MiB volume fails with no space (exit 7)" \
	    mc pull --chunk-size 8MiB org/big
	is "$(find "$STORE/tmp" -mindepth 1 | wc -l)" 0 "no partial data is left"
	is "$(mc ls --json | json 'length')" 0 "nothing is published"
	run_ok "the store stays consistent (fsck)" mc fsck
	umount "$T/small"
else
	ok 0 "# SKIP cannot mount a tmpfs here (needs root)"
fi
done_testing
