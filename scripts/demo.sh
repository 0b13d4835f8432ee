#!/bin/sh
# demo.sh: the main job, which `./dev demo` runs once it has installed the
# packages and built the programs (with --enable-examples: gpt2-server).
#
# A GPT-2 served through modelcache, started twice.  Cold: modelcached
# pulls the model from an origin (a local Hugging Face origin serving a
# model made here, or the Hub with MODEL=hf://...), hashing every byte,
# and modelcache-preload warms it and execs gpt2-server.  Warm: the same
# again, the model in the store.  Each start gets a timeline in seconds
# from the moment modelcache-preload (for the Hub, the pull) starts,
# modelcached running already, as a sidecar does.  Everything it starts
# is stopped at the end, on failure or signal too.
#
# The timeline comes from the programs' own log events: modelcached,
# modelcache-preload and gpt2-server run with MODELCACHE_LOG_FORMAT=json
# and append their lines, one JSON object each with its time ("ts", in
# ms), to one log per start, $run/NAME.log; a step is the first event
# that says it, its time that event's "ts".
#
# It reads (all optional; dev documents them):
#   MODEL        demo/gpt2-tiny (default), demo/gpt2-medium or
#                hf://org/name
#   DEMO_DIR     instead of demo/
#   DEMO_BUILD   where the programs are (default build/)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PY3=python3
[ -x /usr/bin/python3 ] && PY3=/usr/bin/python3
PROMPT="The harbor town woke before the sun."
MAX_TOKENS=24

say() {
	printf '\n== %s\n' "$*"
}

main() {
	case ${MODEL:=demo/gpt2-tiny} in
	demo/gpt2-tiny | demo/gpt2-medium | hf://?*/?*) ;;
	*)
		echo "demo: MODEL='$MODEL': not demo/gpt2-tiny," \
		    "demo/gpt2-medium or hf://org/name" >&2
		exit 2
		;;
	esac
	bin=${DEMO_BUILD:-$top/build}
	dir=${DEMO_DIR:-$top/demo}
	for p in modelcache modelcached modelcache-preload gpt2-server; do
		[ -x "$bin/$p" ] || demo_fail "no $bin/$p: build it first" \
		    "(./dev demo does; gpt2-server needs" \
		    "./configure --enable-examples)"
	done
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	store=$dir/store run=$dir/run
	sock=$run/mc.sock
	# The demo's own settings only, and no byte code in the source tree.
	MODELCACHE_CONFIG=/dev/null PYTHONDONTWRITEBYTECODE=1
	export MODELCACHE_CONFIG PYTHONDONTWRITEBYTECODE
	unset MODELCACHE_STORE MODELCACHE_SOCKET MODELCACHE_MODELS \
	    MODELCACHE_LOG_FORMAT
	SERVER='' DAEMON='' ORIGIN=''
	trap demo_stop EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	rm -rf "$run"
	mkdir -p "$run" "$store"

	case $MODEL in
	hf://*) demo_hub "${MODEL#hf://}" ;;
	*) demo_local "$MODEL" ;;
	esac

	# The first start is cold: no copy from an earlier demo in the store.
	rc=0
	mcs rm "$ref" >/dev/null 2>"$run/rm.err" || rc=$?
	[ $rc -eq 0 ] || [ $rc -eq 3 ] || demo_fail "$(cat "$run/rm.err")"

	say "cold start: modelcached, then" \
	    "modelcache-preload --model $ref -- gpt2-server"
	demo_start cold
	say "timeline of the cold start (seconds from its start)"
	demo_timeline cold
	say "modelcache ls"
	mcs ls
	say "stopping gpt2-server (its lease ends with it) and modelcached"
	demo_stop_servers
	demo_events "$run/cold.log" |
	    grep ' modelcached: \(.*lease(s) ended\|stopped\)$' || true

	say "warm start: modelcached and modelcache-preload again," \
	    "the model in the store"
	demo_start warm
	for i in 1 2; do
		[ "$(jq -c '[.text, .ids]' "$run/cold-$i.json")" = \
		    "$(jq -c '[.text, .ids]' "$run/warm-$i.json")" ] ||
			demo_fail "answer $i differs between cold and warm"
	done
	echo "  the same answers as the cold start"
	demo_stop_servers
	say "cold and warm side by side (seconds from each start)"
	demo_timeline cold warm
	demo_stop
	trap - EXIT HUP INT TERM
	say "done: gpt2-server, modelcached and the origin are stopped"
}

mcs() {
	"$bin/modelcache" --store "$store" "$@"
}

# demo_local demo/gpt2-SIZE: make-model's GPT-2 of that size (random
# weights from a fixed seed: its text is gibberish) in $dir/models, unless
# it is there already, unchanged; then the test origin serving it.
demo_local() {
	ref=$1 size=${1#demo/gpt2-}
	out=$dir/models/gpt2-$size sums=$dir/models/gpt2-$size.sha256
	gen=$top/inference/examples/gpt2
	want="# make-model --size $size $(cat "$gen/make-model" \
	    "$gen/reference.py" | sha256sum | cut -c 1-64)"
	if [ -f "$sums" ] && [ "$(cat "$sums")" = "$want
$(demo_sums "$out")" ]; then
		say "the demo model: $out (made before, unchanged)"
	else
		say "make-model --size $size --out $out"
		rm -rf "$out" "$sums"
		mkdir -p "$dir/models"
		"$PY3" "$gen/make-model" --size "$size" --out "$out" 2>&1 |
		    sed 's/^/  /'
		[ -f "$out/model.safetensors" ] || demo_fail "make-model failed"
		# Written last: a model without it is made again.
		{ echo "$want"; demo_sums "$out"; } >"$sums"
	fi

	say "a local Hugging Face origin serving $ref" \
	    "(tests/origin/hf_origin.py)"
	rm -f "$run/origin.port"
	"$PY3" "$top/tests/origin/hf_origin.py" --repo "$ref=$out" \
	    --port-file "$run/origin.port" --host 127.0.0.1 \
	    --cdn-host localhost 2>"$run/origin.log" &
	ORIGIN=$!
	i=0
	until [ -s "$run/origin.port" ]; do
		kill -0 "$ORIGIN" 2>/dev/null && [ $i -lt 600 ] ||
			demo_fail "the origin did not start" "$run/origin.log"
		i=$((i + 1))
		sleep 0.05
	done
	HF_ENDPOINT=http://127.0.0.1:$(cat "$run/origin.port")
	no_proxy=127.0.0.1,localhost${no_proxy:+,$no_proxy}
	NO_PROXY=$no_proxy
	export HF_ENDPOINT no_proxy NO_PROXY
	echo "  HF_ENDPOINT=$HF_ENDPOINT"
}

# demo_hub org/name: the model from the Hub (or the HF_ENDPOINT given).
# A repository holds more than gpt2-server reads (other formats, ONNX...)
# and modelcached pulls whole repositories, so here the cold start begins
# with `modelcache pull` of the files it reads, and preload asks the
# daemon for that commit, which it answers from the store.
demo_hub() {
	ref=$1
	say "the model: hf://$ref from ${HF_ENDPOINT:-the Hugging Face Hub}"
}

demo_sums() {
	(cd "$1" && LC_ALL=C sha256sum -- *) 2>/dev/null || true
}

# demo_start NAME: modelcached, then modelcache-preload -- gpt2-server,
# until the server listens (URL), then the same /generate twice (the
# answers in $run/NAME-1.json and NAME-2.json), then the timeline.  The
# three programs append their JSON lines to $run/NAME.log.
demo_start() {
	log=$run/$1.log
	: >"$log"
	MODELCACHE_LOG_FORMAT=json "$bin/modelcached" --store "$store" \
	    --socket "$sock" >>"$log" 2>&1 &
	DAEMON=$!
	i=0
	until mcs status --socket "$sock" --ready >/dev/null 2>&1; do
		kill -0 "$DAEMON" 2>/dev/null && [ $i -lt 1000 ] ||
			demo_fail "modelcached did not start" "$log"
		i=$((i + 1))
		sleep 0.02
	done
	bytes0=$(demo_origin_bytes)
	# The start's moment, in the events' unit (ms since the epoch).
	t0=$(date +%s%3N)
	: >"$run/$1.pull"
	model=$ref
	if [ -z "$ORIGIN" ]; then
		[ "$1" = warm ] || demo_hub_pull "$1"
		model=$ref@$(jq -r .commit "$run/pull.json")
	fi
	MODELCACHE_LOG_FORMAT=json "$bin/modelcache-preload" \
	    --store "$store" --socket "$sock" --model "$model" -- \
	    "$bin/gpt2-server" --listen 127.0.0.1:0 >>"$log" 2>&1 &
	SERVER=$!
	shown=0
	until demo_listening >/dev/null; do
		demo_show_new
		kill -0 "$SERVER" 2>/dev/null ||
			demo_fail "preload or gpt2-server ended" "$log"
		sleep 0.01
	done
	URL=http://$(demo_listening)
	for i in 1 2; do
		curl -sS --noproxy '*' --max-time 600 -G "$URL/generate" \
		    --data-urlencode "prompt=$PROMPT" \
		    -d "max_tokens=$MAX_TOKENS" -o "$run/$1-$i.json" ||
			demo_fail "GET /generate failed"
	done
	# The server logs a request once it has answered: its two lines may
	# come after curl has the answers.
	i=0
	until [ "$(grep -c '"msg":"GET /generate ' "$log")" -ge 2 ]; do
		kill -0 "$SERVER" 2>/dev/null && [ $i -lt 1000 ] ||
			demo_fail "gpt2-server did not log its answers" "$log"
		i=$((i + 1))
		sleep 0.01
	done
	demo_show_new | grep -v ' GET /' || true

	say "GET $URL/generate?prompt=...&max_tokens=$MAX_TOKENS, twice"
	for i in 1 2; do
		jq -e '.text | type == "string"' "$run/$1-$i.json" >/dev/null ||
			demo_fail "no text: $(cat "$run/$1-$i.json")"
	done
	printf '  prompt: %s\n  answer: %s\n' "$PROMPT" \
	    "$(jq -r .text "$run/$1-1.json")"
	if [ "$(jq .text "$run/$1-1.json")" = "$(jq .text "$run/$1-2.json")" ]
	then
		echo "  again:  the same text (greedy, so deterministic)"
	else
		printf '  again:  %s\n' "$(jq -r .text "$run/$1-2.json")"
	fi
	demo_record "$1"
}

# demo_listening: the HOST:PORT gpt2-server says it listens on; 1 when it
# has not said so yet.
demo_listening() {
	grep -q '"prog":"gpt2-server".*"msg":"listening on ' "$log" ||
		return 1
	jq -rR 'fromjson? | select(.prog == "gpt2-server") | .msg |
	    select(startswith("listening on ")) | ltrimstr("listening on ")' \
	    "$log" | head -n 1
}

# demo_show_new: the start's events that preload and the server wrote
# since the last call, as lines for people.
demo_show_new() {
	n=$(wc -l <"$log")
	[ "$n" -gt "$shown" ] || return 0
	sed -n "$((shown + 1)),${n}p" "$log" | demo_events |
	    grep -v '^  modelcached: ' || true
	shown=$n
}

# demo_events [LOG]: its events (or standard input's) as "  PROG: MSG"
# ("  listening on ..." bare, as gpt2-server writes it as text); a line
# that is not JSON as it is.
demo_events() {
	jq -rR '. as $l | (try fromjson catch null) |
	    if type != "object" then "  " + $l
	    elif .prog == "gpt2-server" and (.msg | startswith("listening on "))
	    then "  " + .msg
	    else "  \(.prog): \(.msg)" end' ${1:+"$1"}
}

# demo_hub_pull NAME: the files gpt2-server reads, from the Hub (see
# demo_hub); its step in $run/NAME.pull, timed by its end.
demo_hub_pull() {
	echo "  modelcache pull hf://$ref: config.json," \
	    "generation_config.json, vocab.json, merges.txt, model.safetensors"
	mcs pull --json --include config.json \
	    --include generation_config.json --include vocab.json \
	    --include merges.txt --include model.safetensors "hf://$ref" \
	    2>&1 >"$run/pull.json" |
	    jq -rR --unbuffered 'fromjson? | select(.event == "progress") |
		"  modelcache pull: \(.done_bytes) of \(.total_bytes) bytes"'
	jq -e .commit "$run/pull.json" >/dev/null 2>&1 ||
		demo_fail "modelcache pull hf://$ref failed"
	echo "pull $(($(date +%s%3N) - t0)) $(demo_size "$(jq .bytes_origin \
	    "$run/pull.json")") fetched in $(jq '.seconds * 100 | round / 100' \
	    "$run/pull.json") s" >"$run/$1.pull"
}

# demo_steps LOG T0: the steps that the events of LOG show, one a line,
# "STEP MS DETAIL", MS the event's time from T0 (ms since the epoch):
#   pulled MS BYTES SECONDS   modelcached's pull of the model done
#   acquired MS               its acquire answered (from the store)
#   ready MS DETAIL           preload has the lease: "commit ..., N files"
#   warm MS DETAIL            preload warmed it: "SIZE in S s"
#   loaded MS DETAIL          gpt2-server loaded it: "loaded in X ms"
#   server MS                 gpt2-server listens
#   get MS                    gpt2-server answered a /generate (each)
# Only the first event of each step counts, but for get.
demo_steps() {
	jq -rRn --argjson t0 "$2" '
	def ms: (.ts | capture("^(?<s>[^.]+)\\.(?<f>[0-9]+)Z$")) as $c |
	    (($c.s + "Z") | fromdateiso8601) * 1000 + ($c.f | tonumber) - $t0;
	def step(p; re): select(.prog == p and (.msg | test(re)));
	def once(f): first(.[] | f);
	[inputs | fromjson? | select(type == "object" and has("ts"))] |
	(once(step("modelcached"; "^pull .* done: ") |
	    (.msg | capture(", (?<b>[0-9]+) bytes from the origin.*, " +
		"(?<s>[0-9.]+) s$")) as $c |
	    "pulled \(ms) \($c.b) \($c.s)")),
	(once(step("modelcached"; "^acquire .*: ready")) | "acquired \(ms)"),
	(once(step("modelcache-preload"; " ready: ")) |
	    "ready \(ms) \(.msg | sub("^.* ready: "; ""))"),
	(once(step("modelcache-preload"; "^warmed ")) |
	    "warm \(ms) \(.msg | capture(" files, (?<d>.* s) \\(").d)"),
	(once(step("gpt2-server"; "^loaded ")) |
	    "loaded \(ms) loaded in \(.msg | capture(" in (?<t>[0-9.]+ ms):").t)"),
	(once(step("gpt2-server"; "^listening on ")) | "server \(ms)"),
	(.[] | step("gpt2-server"; "^GET /generate ") | "get \(ms)")
	' "$1"
}

# demo_record NAME: the timeline of a start, from its events, in
# $run/NAME.timeline: "STEP MS DETAIL", MS from the start (t0).
demo_record() {
	tl=$run/$1.timeline
	demo_steps "$log" "$t0" >"$run/$1.steps" ||
		demo_fail "cannot read the events of $log" "$log"
	cat "$run/$1.pull" >"$tl"
	fetched=0
	if l=$(grep -m 1 '^pulled ' "$run/$1.steps"); then
		# shellcheck disable=SC2086 # "pulled MS BYTES SECONDS", split
		set -- "$1" $l
		fetched=$4
		echo "pull $3 $(demo_size "$4") fetched in $5 s" >>"$tl"
		set -- "$1"
	elif [ -s "$run/$1.pull" ]; then
		fetched=$(jq .bytes_origin "$run/pull.json")
	elif l=$(grep -m 1 '^acquired ' "$run/$1.steps"); then
		echo "pull ${l#acquired } none: in the store" >>"$tl"
	fi
	grep -E '^(ready|warm) ' "$run/$1.steps" >>"$tl" || true
	if l=$(grep -m 1 '^server ' "$run/$1.steps"); then
		loaded=$(sed -n 's/^loaded [0-9-]* //p' "$run/$1.steps")
		echo "$l $loaded" >>"$tl"
	fi
	gets=$(sed -n 's/^get //p' "$run/$1.steps")
	# shellcheck disable=SC2086 # one time a line, split
	set -- "$1" $gets
	[ $# -ge 3 ] || demo_fail "the server's two answers are not in $log"
	echo "first $2 $(demo_tokens "$run/$1-1.json")" >>"$tl"
	echo "second $3 $(demo_tokens "$run/$1-2.json")" >>"$tl"
	# What came from the origin: its own count with the local one, else
	# what the pulls say.
	if [ -n "$ORIGIN" ]; then
		fetched=$(($(demo_origin_bytes) - bytes0))
	fi
	echo "origin 0 $fetched bytes" >>"$tl"
}

demo_origin_bytes() {
	if [ -n "$ORIGIN" ]; then
		curl -sS --noproxy '*' "$HF_ENDPOINT/_stats" | jq .bytes
	else
		echo 0
	fi
}

demo_tokens() {
	jq -r '"\(.tokens) tokens in \(.ms) ms"' "$1"
}

demo_size() {
	awk -v n="$1" 'BEGIN { if (n >= 2^30) printf "%.2f GiB", n / 2^30
	    else printf "%.1f MiB", n / 2^20 }'
}

# demo_timeline NAME [NAME]: the steps, a column per start.
demo_timeline() {
	printf '  %-16s %-40s %s\n' "" "$1" "${2:-}" | sed 's/ *$//'
	for step in pull ready warm server first second origin; do
		case $step in
		pull) label=pull ;;
		ready) label="verified, ready" ;;
		warm) label="warmed" ;;
		server) label="server ready" ;;
		first) label="first response" ;;
		second) label="second response" ;;
		origin) label="origin served" ;;
		esac
		c2=
		[ $# -lt 2 ] || c2=$(demo_cell "$2" $step)
		printf '  %-16s %-40s %s\n' "$label" "$(demo_cell "$1" $step)" \
		    "$c2" | sed 's/ *$//'
	done
}

# demo_cell NAME STEP: "+S.MMM s  DETAIL", or "?" for a step not seen.
demo_cell() {
	line=$(grep "^$2 " "$run/$1.timeline" | head -n 1) || true
	if [ -z "$line" ]; then
		echo "?"
		return
	fi
	line=${line#* }
	ms=${line%% *}
	case $2 in
	origin) echo "${line#* }" ;;
	*)
		line=${line#"$ms"}
		printf '+%d.%03d s  %s\n' $((ms / 1000)) $((ms % 1000)) \
		    "${line# }"
		;;
	esac
}

# The server first (its lease ends with it), then the daemon.
demo_stop_servers() {
	for p in $SERVER $DAEMON; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	SERVER='' DAEMON=''
}

demo_stop() {
	demo_stop_servers
	if [ -n "$ORIGIN" ]; then
		kill -TERM "$ORIGIN" 2>/dev/null || true
		wait "$ORIGIN" 2>/dev/null || true
	fi
	ORIGIN=
}

# demo_fail MESSAGE... [-- LOG...]: the message, the end of each log (its
# events as lines for people), exit 1.  A last argument that is a file
# is a log.
demo_fail() {
	msg=
	for a in "$@"; do
		[ -f "$a" ] && break
		msg="$msg${msg:+ }$a"
		shift
	done
	echo "demo: $msg" >&2
	for f in "$@"; do
		echo "--- $f" >&2
		tail -n 20 "$f" | demo_events | sed 's/^  //' >&2
	done
	exit 1
}

main
