#!/bin/sh
# gpt2-server (inference/examples/gpt2-server) against the numpy reference
# (inference/examples/gpt2/reference.py), on tiny models from make-model:
# /logits for fixed prompts within 1e-4 of the reference's (fp32, and fp16
# and bf16: the reference widens the same 16-bit weights to the same fp32
# values, so only the order of the sums differs, as with fp32), the same
# token ids for tricky text (spaces, contractions, scripts, marks, digits,
# symbols, <|endoftext|>), also under a vocabulary made so that a
# pre-token boundary put anywhere else than the regex module puts it
# changes the ids, /generate deterministic and equal to the reference's
# greedy ids and text, stopping at the context; tensors named without
# "transformer." and an untied lm_head.weight; the query's decoding and
# each bad parameter's 400; no file opened while serving (strace, and
# /proc/PID/fd), the weights mapped; and each malformed model.safetensors
# (truncated, offsets past the end, header length huge or past the end,
# unknown dtype, shape/size mismatch, overlap, missing tensor, bad JSON,
# a shape the config does not fit, ...) refused at start with one line
# naming the file, exit status 1, no crash.
#
# Nothing waits on a timer for an event: conditions are polled, bounded.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/python.sh"
. "$top_srcdir/tests/lib/gpt2.sh"

# --- fp32, tied, names with "transformer." ---------------------------
M="$T/tiny"
make_model --out "$M" --size tiny
ok $? "make-model tiny (fp32)"
start_server fp32 --model "$M" --threads 2
rc=$?
ok $rc "gpt2-server starts and prints where it listens"
[ $rc -eq 0 ] || diag "$(cat "$T/fp32.err")"
grep -q "loaded '$M'.*F32 (28 tensors in place, 0 widened" "$T/fp32.err"
ok $? "fp32 tensors are read in place from the mapping"

r=$(get /healthz)
jqok "/healthz answers ok and the model" "$r" \
    ".ok == true and .model == \"$M\""

check logits "$M" 1e-4 "$P1" "$P2" "$P3"
check logits "$M" 1e-4 ""
# Text whose pre-tokens matter: spaces, contractions, scripts, digits,
# symbols, the special token.
set -- "a   b

 c" "I'm sure they'll say we've done 'em" "日本語のテキスト、そして中文。" \
    "emoji 👍🏽 and symbols ±×÷ → ∑ ǅ ʰ ٣" "digits 12345 and ６７ and ½ ² Ⅻ" \
    "$(printf 'tabs\tand\r\nCRLF \302\240nbsp\342\200\203em  ')" \
    "<|endoftext|><|endoftext|>a" "'''s ' s' 'LL 'll" \
    "Ünïcödé wörds, Ελληνικά, русский, עברית, हिन्दी" "x\$(2+2)=4;  y" \
    "$(printf '(\357\274\226\357\274\227)\342\205\253.\331\243!\343\200\200\343\200\200end')"
check ids "$M" - "$@"
stop_server
# The same with a vocabulary where each of their pre-tokens (as the regex
# module splits them) is one token, and where a last merge would join it
# to the next one, so that a boundary missed or put anywhere else gives
# other ids: the tiny model's weights, this tokenizer.
cp -r "$M" "$T/tok"
"$PY3" - "$GPT2" "$T/tok" "$@" <<'EOF'
import json, os, sys
sys.path.insert(0, sys.argv[1])
import reference as R
d = sys.argv[2]
enc = R.bytes_to_unicode()
vocab = {enc[b]: b for b in range(256)}
merges = []
def merge(a, b):
    if a + b not in vocab:
        merges.append((a, b))
        vocab[a + b] = len(vocab)
texts = [[[enc[b] for b in piece.encode()] for piece in R.pretokenize(chunk)]
         for text in sys.argv[3:] for chunk in text.split(R.EOT)]
# BPE learned on the pre-tokens until each is one token (the most frequent
# pair first, ties to the smaller): encoding one replays its learning.
words = {tuple(w) for t in texts for w in t}
words = [list(w) for w in sorted(words)]
while True:
    pairs = {}
    for w in words:
        for p in zip(w, w[1:]):
            pairs[p] = pairs.get(p, 0) + 1
    if not pairs:
        break
    best = min(pairs, key=lambda p: (-pairs[p], p))
    merge(*best)
    for w in words:
        i = 0
        while i + 1 < len(w):
            if (w[i], w[i + 1]) == best:
                w[i:i + 2] = [w[i] + w[i + 1]]
            i += 1
# Then, last, each pre-token joined to the next.
for t in texts:
    for x, y in zip(t, t[1:]):
        merge("".join(x), "".join(y))
assert len(vocab) < 999, len(vocab)
vocab[R.EOT] = 999
json.dump(vocab, open(os.path.join(d, "vocab.json"), "w"))
with open(os.path.join(d, "merges.txt"), "w") as f:
    f.write("#version: 0.2\n")
    for a, b in merges:
        f.write(a + " " + b + "\n")
EOF
ok $? "a tokenizer with one token for each pre-token of that text"
start_server tok --model "$T/tok"
ok $? "gpt2-server loads it"
check ids "$T/tok" - "$@"
stop_server
start_server fp32b --model "$M" --threads 2
ok $? "gpt2-server starts again on the fp32 model"
check generate "$M" 24 "$P1" "$P2"

r1=$(get "/generate?prompt=The+harbor&max_tokens=30")
r2=$(get "/generate?prompt=The%20harbor&max_tokens=30")
jqok "/generate gives JSON with text, tokens and ms" "$r1" \
    '(.text | type) == "string" and .tokens == 30 and (.ms | type) == "number"'
is "$(printf '%s' "$r1" | jq -c '[.text, .ids]')" \
    "$(printf '%s' "$r2" | jq -c '[.text, .ids]')" \
    "/generate twice (+ and %20 for the space) gives the same text and ids"

# Two at once: they take turns, each gets the same answer.
get "/generate?prompt=Nobody&max_tokens=40" >"$T/a1" &
a1=$!
curl -sS -g "$URL/generate?prompt=Nobody&max_tokens=40" >"$T/a2" 2>&1
wait $a1
is "$(jq -c .ids "$T/a1")" "$(jq -c .ids "$T/a2")" \
    "two concurrent /generate get the same ids"

# The context bounds generation: 256 positions in the tiny model.
r=$(get "/generate?prompt=The&max_tokens=1024")
jqok "max_tokens past the context stops at the context (or eos)" "$r" \
    '(.stop == "context" and .tokens + .prompt_tokens == 256) or .stop == "eos"'

# The query's decoding: %26 is '&' in the prompt, not a separator.
r=$(get "/logits?prompt=a%26b%3Dc%2Bd")
want=$("$PY3" "$GPT2/reference.py" encode "$M" "a&b=c+d" | jq -c .ids)
is "$(printf '%s' "$r" | jq -c .ids)" "$want" \
    "%26 %3D %2B decode to & = + inside the prompt"

# Bad requests: a 400 (404, 405) with a JSON error, and the server lives.
for case in \
    "400 /generate?max_tokens=4" \
    "400 /generate?prompt=a&max_tokens=abc" \
    "400 /generate?prompt=a&max_tokens=-1" \
    "400 /generate?prompt=a&max_tokens=1025" \
    "400 /generate?prompt=a&max_tokens=99999999999999999999" \
    "400 /generate?prompt=a&prompt=b" \
    "400 /generate?prompt=a&temperature=1" \
    "400 /logits?prompt=a&max_tokens=3" \
    "404 /nothing" \
    "404 /generate/x?prompt=a"; do
	code=${case%% *} path=${case#* }
	r=$(get "$path")
	is "$(cat "$T/code") $(printf '%s' "$r" | jq -r '.error | type')" \
	    "$code string" "GET $path: $code with a JSON error"
done
r=$(get "/generate?prompt=a" -X POST)
is "$(cat "$T/code")" 405 "POST: 405"
long=$("$PY3" -c 'print("x" * 9000)')
r=$(get "/logits?prompt=$long")
is "$(cat "$T/code")" 400 "a prompt over 8192 bytes: 400"
# A prompt longer than the context: 400, not a crash.
long=$("$PY3" -c 'print("a." * 300)')
r=$(get "/logits?prompt=$long")
is "$(cat "$T/code")" 400 "a prompt of more tokens than the context: 400"
r=$(get /healthz)
jqok "the server still answers after the bad requests" "$r" '.ok == true'

# The weights are mapped, and no descriptor into the model stays open.
grep -q "$M/model.safetensors" "/proc/$SERVER_PID/maps"
ok $? "model.safetensors is mapped"
fds=$(ls -l "/proc/$SERVER_PID/fd" 2>/dev/null | grep -c "$M/" || true)
is "$fds" 0 "no descriptor into the model directory is open"
stop_server
is "$SERVER_RC" 0 "SIGTERM stops the server, exit 0"

# --- no file opened while serving (strace) ----------------------------
# The whole run under strace: every open after the first accepted
# connection and before the SIGTERM is a request's.  strace -o FILE CMD
# blocks fatal signals (-I3), so the SIGTERM goes to the server itself,
# the first process in the log.
if strace -f -o /dev/null true 2>/dev/null; then
	# LeakSanitizer cannot work under ptrace (the sanitizer build).
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	    strace -f -qq -o "$T/strace.log" \
	    -e trace=open,openat,openat2,accept,accept4 \
	    "$SERVER" --listen 127.0.0.1:0 --model "$M" 2>"$T/strace.err" &
	STRACE_PID=$!
	BG="$BG $STRACE_PID"
	wait_listening "$T/strace.err" "$STRACE_PID"
	ok $? "gpt2-server starts under strace"
	r=$(get /generate -G --data-urlencode "prompt=$P1" -d max_tokens=32)
	jqok "/generate under strace" "$r" '.tokens == 32'
	r=$(get /logits -G --data-urlencode "prompt=$P3")
	jqok "/logits under strace" "$r" '.logits | length == 1000'
	r=$(get /healthz)
	jqok "/healthz under strace" "$r" '.ok == true'
	kill -TERM "$(awk '{ print $1; exit }' "$T/strace.log")"
	wait "$STRACE_PID"
	is "$?" 0 "it stops on SIGTERM"
	grep -q 'open.*model\.safetensors' "$T/strace.log"
	ok $? "strace saw the start open model.safetensors"
	awk '/accept/ { on = 1 } /SIGTERM/ { on = 0 }
	    on && /open/ { print; bad = 1 } END { exit bad }' \
	    "$T/strace.log" >"$T/opens"
	ok $? "no open or openat while serving /generate, /logits, /healthz"
	[ -s "$T/opens" ] && diag "$(head -10 "$T/opens")"
	n=$(grep -c 'accept' "$T/strace.log")
	[ "$n" -ge 3 ]
	ok $? "strace saw the requests' connections ($n accepts)"
else
	ok 0 "# SKIP strace cannot trace here"
fi

# --- other shapes of file: prefix, untied, fp16, bf16 -----------------
for spec in "none:--tensor-prefix none" "untied:--untied" \
    "fp16:--dtype fp16" "bf16:--dtype bf16 --tensor-prefix none --untied"; do
	name=${spec%%:*} args=${spec#*:}
	# shellcheck disable=SC2086
	make_model --out "$T/$name" --size tiny $args
	start_server "$name" --model "$T/$name"
	rc=$?
	ok $rc "$name: gpt2-server loads make-model tiny $args"
	[ $rc -eq 0 ] || diag "$(cat "$T/$name.err")"
	check logits "$T/$name" 1e-4 "$P1" "$P2" "$P3"
	check generate "$T/$name" 16 "$P2"
	stop_server
done
grep -q "F16 (0 tensors in place, 28 widened" "$T/fp16.err"
ok $? "fp16 tensors are widened to fp32 at load"
grep -q "BF16 (0 tensors in place, 29 widened" "$T/bf16.err"
ok $? "bf16 tensors (and the untied lm_head) are widened at load"

# --- malformed files: refused at start --------------------------------
# mangle KIND DIR: a copy of the tiny model with model.safetensors (or
# config.json) spoiled as KIND says, by rewriting its header.
cat >"$T/mangle.py" <<'EOF'
import json, os, shutil, struct, sys
kind, src, dst = sys.argv[1:4]
shutil.copytree(src, dst)
path = os.path.join(dst, "model.safetensors")
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
data = raw[8 + n:]
P = "transformer."

def write(h, data, length=None):
    body = json.dumps(h, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(body) if length is None else length))
        f.write(body)
        f.write(data)

if kind == "truncated":
    open(path, "wb").write(raw[:len(raw) // 2])
elif kind == "short":
    open(path, "wb").write(raw[:5])
elif kind == "empty":
    open(path, "wb").close()
elif kind == "huge-header":
    open(path, "wb").write(struct.pack("<Q", 1 << 62) + raw[8:])
elif kind == "header-past-end":
    open(path, "wb").write(struct.pack("<Q", len(raw)) + raw[8:])
elif kind == "offsets-past-end":
    e = h[P + "ln_f.bias"]
    e["data_offsets"] = [len(data), len(data) + 512]
    write(h, data)
elif kind == "unknown-dtype":
    h[P + "h.0.ln_1.weight"]["dtype"] = "F42"
    write(h, data)
elif kind == "shape-size":
    h[P + "h.0.attn.c_attn.weight"]["shape"] = [128, 385]
    write(h, data)
elif kind == "overlap":
    h[P + "h.0.ln_1.bias"]["data_offsets"] = \
        h[P + "h.0.ln_1.weight"]["data_offsets"]
    write(h, data)
elif kind == "missing":
    del h[P + "h.1.mlp.c_proj.bias"]
    write(h, data)
elif kind == "not-json":
    open(path, "wb").write(raw[:8] + b"{" + b"x" * (n - 1) + raw[8 + n:])
elif kind == "not-object":
    body = b"[1,2]" + b" " * (n - 5)
    open(path, "wb").write(raw[:8] + body + raw[8 + n:])
elif kind == "int-dtype":
    h[P + "h.0.ln_2.bias"]["dtype"] = "I32"
    write(h, data)
elif kind == "config-shape":
    c = json.load(open(os.path.join(dst, "config.json")))
    c["n_positions"] = c["n_ctx"] = 128
    json.dump(c, open(os.path.join(dst, "config.json"), "w"))
elif kind == "negative":
    h[P + "wpe.weight"]["shape"] = [-256, 128]
    write(h, data)
else:
    sys.exit("unknown kind " + kind)
EOF
for case in \
    "truncated:past the end" \
    "short:shorter than the 8-byte header length" \
    "empty:shorter than the 8-byte header length" \
    "huge-header:header length 4611686018427387904 is over the limit" \
    "header-past-end:runs past the end of the file" \
    "offsets-past-end:past the end of the data area" \
    "unknown-dtype:unknown dtype 'F42'" \
    "shape-size:shape and dtype F32 make 197120 bytes" \
    "overlap:overlap" \
    "missing:no tensor 'transformer.h.1.mlp.c_proj.bias'" \
    "not-json:header is not valid JSON" \
    "not-object:header does not start with a JSON object" \
    "int-dtype:is I32, not F32, F16 or BF16" \
    "config-shape:has shape \[256, 128\], the config needs \[128, 128\]" \
    "negative:shape\[0\] is not a non-negative integer"; do
	kind=${case%%:*} pattern=${case#*:}
	"$PY3" "$T/mangle.py" "$kind" "$M" "$T/bad-$kind"
	rc=0
	timeout 30 "$SERVER" --listen 127.0.0.1:0 --model "$T/bad-$kind" \
	    >"$T/out" 2>"$T/err" || rc=$?
	lines=$(wc -l <"$T/err")
	if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] &&
	    grep -q "^gpt2-server: .*'$T/bad-$kind/[a-z.]*'.*$pattern" \
		"$T/err"; then
		ok 0 "$kind: refused at start, one line naming the file"
	else
		ok 1 "$kind: refused at start, one line naming the file"
		diag "exit $rc, $lines lines (want 1, 1 line ~ $pattern)" \
		    "$(head -5 "$T/err")"
	fi
done

run_fails 2 "no model" "no --model and no MODELCACHE_MODEL_DIR: usage" \
    "$SERVER" --listen 127.0.0.1:0
run_fails 2 "not HOST:PORT" "--listen without a port: usage" \
    "$SERVER" --model "$M" --listen 127.0.0.1
run_fails 1 "cannot open" \
    "a model directory that is not there (MODELCACHE_MODEL_DIR): exit 1" \
    env MODELCACHE_MODEL_DIR="$T/nowhere" "$SERVER" --listen 127.0.0.1:0

done_testing
