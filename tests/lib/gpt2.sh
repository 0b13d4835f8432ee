# gpt2.sh: gpt2-server under test, and its answers checked against the
# numpy reference (inference/examples/gpt2/reference.py) by gpt2check.py.
# Sourced after tap.sh and python.sh.  Skips the test when gpt2-server is
# not built (an example: configure --enable-examples) or Python has no
# numpy.
#
#   make_model ARGS...        inference/examples/gpt2/make-model ARGS
#   start_server NAME ARGS... gpt2-server --listen 127.0.0.1:0 ARGS, its
#                             stderr in $T/NAME.err, until it listens;
#                             sets SERVER_PID and URL
#   stop_server               SIGTERM; SERVER_RC its exit status
#   get PATH [CURL-ARGS...]   the body of URL/PATH; the code in $T/code
#   check MODE DIR ARG PROMPT...  gpt2check.py's lines as TAP points
#   P1 P2 P3                  the fixed prompts of the logits checks:
#                             prose, punctuation and contractions, and
#                             tabs, accents, a newline and <|endoftext|>
#
# Every server started is killed at exit.  Nothing waits on a timer for
# an event: conditions are polled, bounded.

unset MODELCACHE_MODEL_DIR
SERVER="$top_builddir/gpt2-server"
GPT2="$top_srcdir/inference/examples/gpt2"
export PYTHONDONTWRITEBYTECODE=1

if [ ! -x "$SERVER" ]; then
	echo "1..0 # SKIP gpt2-server is an example: configure --enable-examples"
	exit 0
fi
if ! "$PY3" -c 'import numpy' 2>/dev/null; then
	echo "1..0 # SKIP $PY3 has no numpy (Debian: python3-numpy)"
	exit 0
fi

P1="The harbor town woke before the sun."
P2="A shared store keeps one copy, verified once; it's 2024, isn't it?"
P3=$(printf '  Weights:\tcaf\303\251, na\303\257ve\nand 42 servers <|endoftext|> x')

BG=
trap 'for p in $BG; do kill -9 "$p" 2>/dev/null; done; tap_cleanup' EXIT

make_model() {
	"$PY3" "$GPT2/make-model" "$@" >>"$T/make-model.log" 2>&1
}

start_server() {
	name=$1
	shift
	"$SERVER" --listen 127.0.0.1:0 "$@" 2>"$T/$name.err" &
	SERVER_PID=$!
	BG="$BG $SERVER_PID"
	wait_listening "$T/$name.err" "$SERVER_PID"
}

# wait_listening ERRFILE PID: polled, at most 30 s.
wait_listening() {
	n=0
	until grep -q '^listening on ' "$1" 2>/dev/null; do
		kill -0 "$2" 2>/dev/null || return 1
		n=$((n + 1))
		[ $n -lt 3000 ] || return 1
		sleep 0.01
	done
	URL="http://$(sed -n 's/^listening on //p' "$1" | head -1)"
}

stop_server() {
	kill -TERM "$SERVER_PID" 2>/dev/null
	wait "$SERVER_PID"
	SERVER_RC=$?
}

get() {
	p=$1
	shift
	curl -sS -g -o "$T/body" -w '%{http_code}' "$@" "$URL$p" >"$T/code" \
	    2>"$T/curl.err"
	cat "$T/body"
}

check() {
	mode=$1 dir=$2 arg=$3
	shift 3
	rc=0
	"$PY3" "$top_srcdir/tests/lib/gpt2check.py" "$GPT2" "$mode" "$dir" \
	    "$URL" "$arg" "$@" >"$T/check.out" 2>"$T/check.err" || rc=$?
	if [ "$rc" -ne 0 ] || [ ! -s "$T/check.out" ]; then
		ok 1 "gpt2check.py $mode on $(basename "$dir")"
		diag "exit $rc" "$(tail -20 "$T/check.err")"
		return
	fi
	while IFS= read -r line; do
		case $line in
		"#"*) echo "$line" ;;
		*) ok "${line%% *}" "$(basename "$dir"): ${line#* }" ;;
		esac
	done <"$T/check.out"
}
