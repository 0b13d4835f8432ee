# tap.sh: what the integration tests share.  Sourced by each
# tests/integration/tNNNN-*.sh; prints TAP for automake's tap-driver.
#
# Each test runs in its own temporary directory ($T), removed at exit, with
# its own store ($STORE).  Nothing is shared between test scripts.
#
# Origins, each on ephemeral loopback ports and stopped at exit:
#   start_origin ARGS...  the HF-compatible test origin (tests/origin/);
#                         stats JQ reads its byte counters
#   make_ca DIR           a test CA and a server certificate for 127.0.0.1
#                         and localhost, made at test time; sets CA_FILE
#   start_nginx DOCROOT   nginx serving DOCROOT over HTTP and over HTTPS
#                         with HTTP/2; sets NGINX_HTTP, NGINX_HTTPS and
#                         NGINX_LOG; nginx_bytes SUBSTRING sums the body
#                         bytes it served for the URIs holding SUBSTRING
#                         (these three live in nginx.sh, sourced below)
#
# The daemon, on $SOCK (MODELCACHE_SOCKET) and $STORE, killed at exit:
#   start_daemon ARGS...  modelcached, waited for until it answers status
#   stop_daemon [SIGNAL]  stops it; DAEMON_RC is its exit status
#   client ARGS...        tests/lib/mcclient.py: hello, then requests
#
# Checks: is, ok, run_ok, run_fails, jqok (a jq filter over JSON text), jqe;
# sha_of FILE; wait_for CMD (bounded polling, never a fixed sleep);
# stopped PID, mc_stopped (a command stopped at a fault point).

set -u

: "${top_builddir:?run through make check, or set top_builddir}"
: "${top_srcdir:?run through make check, or set top_srcdir}"
MC="$top_builddir/modelcache"
MCD="$top_builddir/modelcached"
T=$(mktemp -d "${TMPDIR:-/tmp}/mc-test.XXXXXX")
STORE="$T/store"
# make_ca, start_nginx, nginx_bytes and the rest: in nginx.sh, under $T.
. "$top_srcdir/tests/lib/nginx.sh"
NGINX_WORK=$T
export MODELCACHE_STORE="$STORE"
SOCK="$T/run/mc.sock"
export MODELCACHE_SOCKET="$SOCK"
unset MODELCACHE_CONFIG MODELCACHE_CRASH_AT MODELCACHE_CRASH_TRACE
tap_n=0
tap_failed=0

tap_cleanup() {
	[ -n "${DAEMON_PID:-}" ] && kill -9 "$DAEMON_PID" 2>/dev/null &&
		wait "$DAEMON_PID" 2>/dev/null
	[ -n "${ORIGIN_PID:-}" ] && kill "$ORIGIN_PID" 2>/dev/null &&
		wait "$ORIGIN_PID" 2>/dev/null
	[ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null &&
		wait "$NGINX_PID" 2>/dev/null
	[ -n "${KEEP:-}" ] && return; chmod -R u+w "$T" 2>/dev/null
	rm -rf "$T"
}
trap tap_cleanup EXIT
# A signal exits through the EXIT trap: no origin outlives its test.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

ok() {	# ok CONDITION-EXIT-CODE DESCRIPTION
	tap_n=$((tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $tap_n - $2"
	else
		echo "not ok $tap_n - $2"
		tap_failed=$((tap_failed + 1))
	fi
}

diag() {
	printf '%s\n' "$@" | sed 's/^/# /'
}

# nginx.sh's failures, as TAP diagnostics.
nginx_diag() {
	diag "$@"
}

# is GOT WANT DESCRIPTION
is() {
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "got:  '$1'" "want: '$2'"
	fi
}

# run_ok DESCRIPTION CMD...: the command must exit 0.
run_ok() {
	desc=$1
	shift
	rc=0
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	ok "$rc" "$desc"
	[ "$rc" -eq 0 ] || diag "exit $rc from: $*" "$(cat "$T/err")"
}

# run_fails CODE PATTERN DESCRIPTION CMD...: exit CODE, stderr ~ PATTERN.
run_fails() {
	code=$1 pattern=$2 desc=$3
	shift 3
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -eq "$code" ] &&
		{ [ -z "$pattern" ] || grep -q -- "$pattern" "$T/err"; }; then
		ok 0 "$desc"
	else
		ok 1 "$desc"
		diag "exit $rc (want $code) from: $*" "stderr: $(cat "$T/err")"
	fi
}

done_testing() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
	exit $?
}

mc() {
	"$MC" "$@"
}

# make_model DIR SEED: a small model with nested paths, LFS-sized and
# git-sized files.  The same seed gives the same bytes.
make_model() {
	mkdir -p "$1/sub/dir"
	printf '{"model_type":"gpt2","seed":"%s"}' "$2" >"$1/config.json"
	printf 'hello %s\n' "$2" >"$1/sub/dir/notes.txt"
	printf 'merges %s\n' "$2" >"$1/merges.txt"
	openssl enc -aes-128-ctr -nosalt -pass "pass:$2" </dev/zero 2>/dev/null |
		head -c 300000 >"$1/model.safetensors"
	openssl enc -aes-128-ctr -nosalt -pass "pass:$2-b" </dev/zero \
		2>/dev/null | head -c 70000 >"$1/sub/weights.bin"
}

# store_state: every path under the store with its type, mode, size, link
# target and content digest, sorted; to check that a store is unchanged.
# The 256 fan-out directories under blobs/sha256 are structure, kept once
# made (removing them would race with a concurrent publish), so skipped.
store_state() {
	[ -d "$STORE" ] || { echo "no store"; return; }
	(cd "$STORE" && find . -path ./tmp -prune -o \
		-path './blobs/sha256/??' -prune -o -printf '%p %y %m %s %l\n' |
		sort &&
		find ./blobs/sha256 -mindepth 2 -printf '%p %y %m %s %l\n' |
		sort &&
		find . -path ./tmp -prune -o -type f -print0 | sort -z |
		xargs -0 -r sha256sum)
}

# json EXPR: jq over stdin, raw output.
json() {
	jq -r "$@"
}

# start_origin ARGS...: the HF-compatible test origin on an ephemeral
# loopback port; sets ORIGIN (its base URL) and HF_ENDPOINT.  Stopped at
# exit.  Waits for its port file, not for a time.  ORIGIN_WRAP, when set,
# prefixes its command (gluster.sh: the network namespace's "ns").
start_origin() {
	stop_origin
	rm -f "$T/origin.port"
	# shellcheck disable=SC2086
	${ORIGIN_WRAP:-} python3 "$top_srcdir/tests/origin/hf_origin.py" --port-file \
		"$T/origin.port" --host 127.0.0.1 --cdn-host localhost "$@" \
		2>>"$T/origin.log" &
	ORIGIN_PID=$!
	i=0
	while [ ! -s "$T/origin.port" ]; do
		kill -0 "$ORIGIN_PID" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -lt 3000 ] || return 1
		sleep 0.01
	done
	ORIGIN="http://127.0.0.1:$(cat "$T/origin.port")"
	HF_ENDPOINT=$ORIGIN
	export HF_ENDPOINT
}

stop_origin() {
	if [ -n "${ORIGIN_PID:-}" ]; then
		kill "$ORIGIN_PID" 2>/dev/null
		# Bounded: an origin that does not stop is killed, never waited
		# on for ever.
		i=0
		while kill -0 "$ORIGIN_PID" 2>/dev/null && [ $i -lt 500 ]; do
			i=$((i + 1))
			sleep 0.01
		done
		kill -9 "$ORIGIN_PID" 2>/dev/null
		wait "$ORIGIN_PID" 2>/dev/null
	fi
	ORIGIN_PID=
}

# stats JQ: a figure from the origin's counters.
stats() {
	curl -s "$ORIGIN/_stats" | jq -r "$1"
}

# start_daemon ARGS...: modelcached on $SOCK and $STORE (log in
# $T/daemon.log), with ARGS; waits until it answers status.  DAEMON_PID.
start_daemon() {
	"$MCD" --store "$STORE" --socket "$SOCK" "$@" >>"$T/daemon.log" 2>&1 &
	DAEMON_PID=$!
	i=0
	until "$MC" status --socket "$SOCK" >/dev/null 2>&1; do
		kill -0 "$DAEMON_PID" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -lt 1000 ] || return 1
		sleep 0.01
	done
}

# stop_daemon [SIGNAL]: stops it (TERM by default) and sets DAEMON_RC.
stop_daemon() {
	DAEMON_RC=
	[ -n "${DAEMON_PID:-}" ] || return 0
	kill "-${1:-TERM}" "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID"
	DAEMON_RC=$?
	DAEMON_PID=
}

# client ARGS...: tests/lib/mcclient.py on $SOCK (see its usage).
client() {
	python3 "$top_srcdir/tests/lib/mcclient.py" "$SOCK" "$@"
}

# sha_of FILE: its SHA-256, 64 hex digits.
sha_of() {
	sha256sum <"$1" | cut -c1-64
}

# stopped PID: whether process PID is stopped (SIGSTOP).
stopped() {
	[ "$(ps -o stat= -p "$1" | cut -c1)" = T ]
}

# mc_stopped NAME POINT ARGS...: mc ARGS in the background, stopping itself
# (SIGSTOP) at its first fault point POINT, its output in $T/NAME.out and
# $T/NAME.err; returns once it stopped, its pid in STOPPED_PID.
mc_stopped() {
	ms_name=$1 ms_point=$2
	shift 2
	(export MODELCACHE_CRASH_POINT="$ms_point" MODELCACHE_CRASH_AT=1 \
	    MODELCACHE_CRASH_SIGNAL=STOP
	exec "$MC" "$@" >"$T/$ms_name.out" 2>"$T/$ms_name.err") &
	STOPPED_PID=$!
	wait_for stopped "$STOPPED_PID"
}

# wait_for CMD...: until CMD succeeds, polled for at most 60 s.
wait_for() {
	n=0
	until "$@" >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -lt 1200 ] || return 1
		sleep 0.05
	done
}

# jqe FILTER [FILE]: jq -e over one JSON text (stdin or FILE); no text at
# all fails, where jq 1.6's -e exits 0.
jqe() {
	jqe_f=$1
	shift
	jq -e -n "input | ($jqe_f)" "$@"
}

# jqok DESCRIPTION JSON FILTER: the filter holds (jq -e) for the text.
# Empty text fails: jq 1.6's -e exits 0 when it reads nothing.
jqok() {
	if [ -n "$(printf '%s' "$2" | tr -d ' \t\n')" ] &&
		printf '%s\n' "$2" | jq -e "$3" >/dev/null 2>&1; then
		ok 0 "$1"
	else
		ok 1 "$1"
		diag "got:  $(printf '%s' "$2" | head -c 2000)" "want: $3"
	fi
}
