#!/bin/sh
# The daemon's loop never waits on the index.  Another process holds the
# index's write lock (sqlite3 in BEGIN EXCLUSIVE) while the daemon, with
# index_busy_timeout 30 s (stale_after 120 s), has a pull whose publish
# must write its index row.  Until the lock goes: status answers, a second
# client's hello answers, an acquire of a model already in the store
# (located by its ref file) is answered ready with its lease, and an
# acquire by commit prefix (which only the index resolves) waits without
# holding anyone else up, or past its timeout_ms.  Once the lock goes, the
# pull's acquire and the prefix's are answered ready, the index lists both
# models, fsck is clean.
# Every answer that must come while the lock is held is waited for at most
# 10 s, a third of the busy timeout: on a daemon whose loop calls SQLite
# (before the index's queue) none came until the busy timeout ran out.
# The lock holder shows at the end that its transaction was never let go.
. "$top_srcdir/tests/lib/tap.sh"

command -v sqlite3 >/dev/null 2>&1 || {
	echo "1..0 # SKIP no sqlite3 command (Debian package sqlite3)"
	exit 0
}
unset MODELCACHE_MODELS MODELCACHE_MAX_SIZE MODELCACHE_INCLUDE \
    MODELCACHE_EXCLUDE
MODELCACHE_STALE_AFTER=120
MODELCACHE_INDEX_BUSY_TIMEOUT=30
export MODELCACHE_STALE_AFTER MODELCACHE_INDEX_BUSY_TIMEOUT

# last_is FILE DESCRIPTION FILTER: the last line of FILE is an answer that
# the jq filter holds for (jq 1.6's -e takes no input at all for true).
last_is() {
	last=$(tail -n 1 "$1")
	if [ -z "$last" ]; then
		ok 1 "$2"
		diag "no answer in $1"
	else
		jqok "$2" "$last" "$3"
	fi
}

make_model "$T/demo" demo
make_model "$T/two" two
start_origin --repo org/demo="$T/demo" --repo org/two="$T/two"
ok $? "the test origin starts"
mc pull hf://org/demo >"$T/pull.out" 2>&1
ok $? "org/demo is in the store" || diag "$(cat "$T/pull.out")"
commit=$(cat "$STORE/hub/models--org--demo/refs/main")
start_daemon -v
ok $? "modelcached starts (index_busy_timeout 30 s, stale_after 120 s)"

# Another process takes the index's write lock and keeps it (.bail: no
# "locked" unless it has it).
mkfifo "$T/sql"
sqlite3 "$STORE/index.db" <"$T/sql" >"$T/sql.out" 2>&1 &
SQL=$!
exec 7>"$T/sql"
printf '.bail on\nBEGIN EXCLUSIVE;\nSELECT %s;\n' "'locked'" >&7
wait_for grep -q locked "$T/sql.out"
ok $? "another process holds the index's write lock"

# A pull whose publish ends in an index write (the manifest and the hub
# view first, refs last, then the index row).
client '{"op":"acquire","model":"hf://org/two"}' >"$T/two.out" 2>&1 &
TWO=$!
wait_for test -e "$STORE/hub/models--org--two/refs/main"
ok $? "the daemon published org/two's files and waits to index them"

# Bounded, well under the busy timeout: a loop stuck in SQLite misses it.
timeout 10 "$MC" status --json >"$T/status.out" 2>&1
ok $? "status answers while the lock is held" || diag "$(cat "$T/status.out")"
is "$(json '[.pulls[].model | select(startswith("hf://org/two"))] |
    length' <"$T/status.out")" 1 "and shows the pull in the air"
timeout 10 python3 "$top_srcdir/tests/lib/mcclient.py" "$SOCK" \
    >"$T/hello.out" 2>&1
ok $? "a second client's hello answers" || diag "$(cat "$T/hello.out")"
last_is "$T/hello.out" "with the server's name" \
    '.ok and (.server | startswith("modelcached/"))'
timeout 10 python3 "$top_srcdir/tests/lib/mcclient.py" "$SOCK" \
    '{"op":"acquire","model":"hf://org/demo"}' >"$T/demo.out" 2>&1
ok $? "an acquire of org/demo, in the store, answers" ||
    diag "$(cat "$T/demo.out")"
last_is "$T/demo.out" "ready, with a lease, from the files" \
    ".ok and .event == \"ready\" and .commit == \"$commit\" and
     (.lease | length) > 0 and (.files | length) == 5"

# A commit prefix only the index resolves (no wait: answered from the
# store, the origin asked behind the answer): its acquire waits for the
# index's queue, and the loop serves others meanwhile.
prefix=$(echo "$commit" | cut -c1-10)
req="{\"op\":\"acquire\",\"model\":\"hf://org/demo@$prefix\""
client "$req,\"wait\":false}" >"$T/prefix.out" 2>&1 &
PREFIX=$!
wait_for grep -q "org/demo@$prefix.*waiting for the index" "$T/daemon.log"
ok $? "the prefix's acquire waits for the index"
timeout 10 "$MC" status --json >"$T/status2.out" 2>&1
ok $? "status still answers with that acquire waiting"
# Answers carry "ok"; progress events do not.  Only hello is answered.
is "$(grep -c '"ok"' "$T/two.out")" 1 "the pull's acquire is unanswered"
is "$(grep -c '"ok"' "$T/prefix.out")" 1 "so is the prefix's"
# An acquire's timeout_ms holds while it waits for the index too.
timeout 10 python3 "$top_srcdir/tests/lib/mcclient.py" "$SOCK" \
    "$req,\"wait\":false,\"timeout_ms\":300}" >"$T/late.out" 2>&1
last_is "$T/late.out" "a prefix's acquire with timeout_ms 300: timeout" \
    '.ok == false and .error.code == "timeout"'
ok "$(kill -0 "$SQL"; echo $?)" "(the lock holder is still there)"

# The lock holder's transaction was never let go: BEGIN inside it fails.
printf '.bail off\nBEGIN;\nSELECT %s;\n' "'asked'" >&7
wait_for grep -q asked "$T/sql.out"
grep -q "cannot start a transaction within a transaction" "$T/sql.out"
ok $? "the lock was held all along" || diag "$(cat "$T/sql.out")"
echo "COMMIT;" >&7
exec 7>&-
wait "$SQL"

wait "$TWO"
ok $? "once the lock is gone, the pull's acquire is answered"
last_is "$T/two.out" "ready" \
    '.ok and .event == "ready" and (.files | length) == 5'
wait "$PREFIX"
ok $? "and the prefix's" || diag "$(cat "$T/prefix.out")"
last_is "$T/prefix.out" "ready, on the same commit" \
    ".ok and .event == \"ready\" and .commit == \"$commit\""
grep -q "published, but another process held the index" "$T/daemon.log"
ok "$([ $? -ne 0 ]; echo $?)" "the index row was written, not given up"
is "$(mc ls --json | json 'map(.repo) | sort | join(",")')" \
    "org/demo,org/two" "the index lists both models"
stop_daemon
is "$DAEMON_RC" 0 "the daemon stops cleanly"
run_ok "fsck is clean" mc fsck

done_testing
