#!/bin/sh
# The demo GPT-2 (inference/examples/gpt2/make-model), its numpy reference
# (reference.py) and the FastAPI example (inference/examples/python/app.py),
# with Debian's python3, python3-numpy, python3-regex, python3-fastapi and
# python3-uvicorn: make-model tiny gives byte-identical files from the same
# arguments (fp32 and fp16), a different seed other weights and the same
# tokenizer; the files are the Hugging Face format, checked by a parser of
# this test's own (safetensors header alignment, padding, offsets and
# sizes, the GPT-2 tensor names and shapes with and without the
# "transformer." prefix and with lm_head.weight untied; config.json; the
# vocabulary and merges consistent, and learned: text gets multi-byte
# tokens); reference.py's pre-tokenizer written with str methods agrees
# with the regex module's, its tokenizer round-trips text (non-ASCII,
# whitespace, contractions, <|endoftext|>), its forward pass with a
# key/value cache agrees with the whole recomputed, and generate is
# deterministic; then the app against a real daemon and the test origin
# serving the tiny model: /healthz and /generate (the reference's tokens),
# the lease in `modelcache status --json` while it runs and gone after it
# stops; and under modelcache-preload, MODELCACHE_MODEL_DIR loaded and the
# preload's lease.  Tiny models only: the medium one is for benchmarks.
#
# Nothing waits on a timer for an event: conditions are polled, bounded.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/python.sh"

unset HF_TOKEN HF_TOKEN_PATH MODELCACHE_REFRESH MODELCACHE_MAX_SIZE \
    MODELCACHE_ALLOW_UIDS MODELCACHE_MAX_CONNECTIONS MODELCACHE_MODELS \
    MODELCACHE_SOCKET_GROUP MODELCACHE_STALE_AFTER MODELCACHE_LOG_FORMAT \
    MODELCACHE_MODEL_DIR MODELCACHE_LEASE_FD HF_HUB_CACHE HF_HUB_OFFLINE \
    TRANSFORMERS_OFFLINE MODEL PYTHONHOME VIRTUAL_ENV
# Nothing written into the source tree (distcheck's is read-only); the
# client imported is this tree's.
export PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$top_srcdir/inference/python"

GPT2="$top_srcdir/inference/examples/gpt2"
APPDIR="$top_srcdir/inference/examples/python"
PRELOAD="$top_builddir/modelcache-preload"

# Apps started in the background, killed at exit.
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; tap_cleanup' EXIT

make_model() {
	"$PY3" "$GPT2/make-model" "$@" 2>>"$T/make-model.log"
}
ref() {
	"$PY3" "$GPT2/reference.py" "$@"
}
# same_files DIR1 DIR2: the same names and the same bytes.
same_files() {
	[ "$(ls -A "$1")" = "$(ls -A "$2")" ] || return 1
	for f in "$1"/*; do
		cmp -s "$f" "$2/${f##*/}" || return 1
	done
}
free_port() {
	"$PY3" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

"$PY3" -c 'import numpy, regex, fastapi, uvicorn' 2>"$T/err"
rc=$?
ok $rc "$PY3 has numpy, regex, fastapi and uvicorn"
if [ $rc -ne 0 ]; then
	diag "$(cat "$T/err")" "Debian: python3-numpy python3-regex" \
	    "python3-fastapi python3-uvicorn (./dev installs them)"
	done_testing
fi

# --- make-model: deterministic ---------------------------------------------
make_model --size tiny --out "$T/a"
ok $? "make-model --size tiny"
make_model --size tiny --out "$T/b"
same_files "$T/a" "$T/b"
ok $? "twice: byte-identical files"
is "$(ls "$T/a" | tr '\n' ' ')" \
    "config.json generation_config.json merges.txt model.safetensors vocab.json " \
    "the five files of a Hub GPT-2, nothing else (no temporaries)"
make_model --size tiny --dtype fp16 --out "$T/h1" &&
    make_model --size tiny --dtype fp16 --out "$T/h2"
ok $? "make-model --dtype fp16, twice"
same_files "$T/h1" "$T/h2"
ok $? "fp16: byte-identical files"
make_model --dtype bf16 --out "$T/bf" &&
    make_model --seed 7 --out "$T/s7" &&
    make_model --tensor-prefix none --out "$T/np" &&
    make_model --untied --out "$T/un"
ok $? "make-model --dtype bf16, --seed 7, --tensor-prefix none, --untied"
! cmp -s "$T/a/model.safetensors" "$T/s7/model.safetensors" &&
    cmp -s "$T/a/vocab.json" "$T/s7/vocab.json" &&
    cmp -s "$T/a/merges.txt" "$T/s7/merges.txt"
ok $? "another seed: other weights, the same tokenizer"
run_fails 2 "invalid choice" "an unknown size is refused" \
    "$PY3" "$GPT2/make-model" --size huge --out "$T/x"

# --- the files, read by a parser of this test's own ---------------------------
cat >"$T/check.py" <<'EOF'
import json, math, struct, sys

d, want_dtype, prefix, untied = sys.argv[1], sys.argv[2], sys.argv[3], \
    sys.argv[4] == "untied"
prefix = "" if prefix == "none" else prefix + "."
size = {"F32": 4, "F16": 2, "BF16": 2}
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)

cfg = json.load(open(d + "/config.json"))
for k, v in {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
             "n_layer": 2, "n_head": 4, "n_embd": 128, "n_positions": 256,
             "n_ctx": 256, "vocab_size": 1000, "layer_norm_epsilon": 1e-5,
             "activation_function": "gelu_new",
             "tie_word_embeddings": not untied, "bos_token_id": 999,
             "eos_token_id": 999}.items():
    check(cfg.get(k) == v, "config.json %s: %r, want %r" % (k, cfg.get(k), v))
gen = json.load(open(d + "/generation_config.json"))
check(gen.get("eos_token_id") == 999 and gen.get("bos_token_id") == 999,
      "generation_config.json: bos/eos")

raw = open(d + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
check(n % 8 == 0, "header length %d not a multiple of 8" % n)
text = raw[8:8 + n].decode("utf-8")
pad = len(text) - len(text.rstrip(" "))
check(text.rstrip(" ").endswith("}") and pad < 8,
      "the header: JSON, then fewer than 8 spaces of padding")
h = json.loads(text, object_pairs_hook=lambda kv: kv)
check(h[0] == ("__metadata__", [("format", "pt")]),
      "__metadata__ first, {format: pt}: %r" % (h[0],))
E, V, P, L = 128, 1000, 256, 2
want = [("wte.weight", [V, E]), ("wpe.weight", [P, E])]
for i in range(L):
    p = "h.%d." % i
    want += [(p + "ln_1.weight", [E]), (p + "ln_1.bias", [E]),
             (p + "attn.c_attn.weight", [E, 3 * E]),
             (p + "attn.c_attn.bias", [3 * E]),
             (p + "attn.c_proj.weight", [E, E]), (p + "attn.c_proj.bias", [E]),
             (p + "ln_2.weight", [E]), (p + "ln_2.bias", [E]),
             (p + "mlp.c_fc.weight", [E, 4 * E]), (p + "mlp.c_fc.bias", [4 * E]),
             (p + "mlp.c_proj.weight", [4 * E, E]), (p + "mlp.c_proj.bias", [E])]
want += [("ln_f.weight", [E]), ("ln_f.bias", [E])]
want = [(prefix + k, s) for k, s in want]
if untied:
    want.append(("lm_head.weight", [V, E]))
got = [(k, dict(v)) for k, v in h[1:]]
check(sorted(k for k, _ in got) == sorted(k for k, _ in want),
      "tensor names: %r" % sorted(k for k, _ in got))
shapes = dict(want)
off = 0
for k, e in got:
    check(e.get("dtype") == want_dtype, "%s: dtype %r" % (k, e.get("dtype")))
    check(e.get("shape") == shapes.get(k), "%s: shape %r" % (k, e.get("shape")))
    b, t = e["data_offsets"]
    check(b == off, "%s: begins at %d, not right after the last (%d)" % (k, b, off))
    check(t - b == math.prod(e["shape"]) * size.get(e["dtype"], 0),
          "%s: %d bytes for its shape" % (k, t - b))
    off = t
check(8 + n + off == len(raw), "tensors end at %d, the file at %d"
      % (8 + n + off, len(raw)))

vocab = json.load(open(d + "/vocab.json"))
lines = open(d + "/merges.txt", encoding="utf-8").read().split("\n")
check(lines[0] == "#version: 0.2" and lines[-1] == "", "merges.txt's frame")
merges = [l.split(" ") for l in lines[1:-1]]
check(len(vocab) == 1000 and len(merges) == 743,
      "%d tokens, %d merges" % (len(vocab), len(merges)))
check(sorted(vocab.values()) == list(range(len(vocab))), "ids not 0..n-1")
inv = sorted(vocab, key=vocab.get)
check(inv[-1] == "<|endoftext|>", "<|endoftext|> not last")
# GPT-2's byte map: printable Latin-1 as itself, the rest from U+0100.
bs = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or b >= 174]
cs = [chr(b) for b in bs] + [chr(256 + i) for i in range(256 - len(bs))]
check(inv[:256] == cs, "the 256 byte tokens, in GPT-2's order")
seen = set(cs)
for i, m in enumerate(merges):
    ok = (len(m) == 2 and m[0] in seen and m[1] in seen and
          m[0] + m[1] not in seen and vocab.get(m[0] + m[1]) == 256 + i)
    check(ok, "merge %d %r: parts made before, a new token, id 256+%d"
          % (i, m, i))
    if not ok:
        break
    seen.add(m[0] + m[1])
for e in errors[:10]:
    print(e)
sys.exit(1 if errors else 0)
EOF
for spec in "a F32 transformer tied" "h1 F16 transformer tied" \
    "bf BF16 transformer tied" "np F32 none tied" "un F32 transformer untied"; do
	# shellcheck disable=SC2086
	set -- $spec
	"$PY3" "$T/check.py" "$T/$1" "$2" "$3" "$4" >"$T/out" 2>&1
	ok $? "$1: safetensors ($2, prefix $3, $4), config, vocabulary and merges"
	[ -s "$T/out" ] && diag "$(cat "$T/out")"
done

# --- the tokenizer -------------------------------------------------------------
cat >"$T/tok.py" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1])
import reference as R
tok = R.Tokenizer.from_dir(sys.argv[2])
samples = [
    "Hello world, the weather is good today.",
    "The harbor town woke before the sun.",
    "It's what they'd said: we'll see, I've been, you're right, I'm here.",
    "Naïve café, Ærøskøbing, Straße, ĳ ﬁ — «quotes» ‘and’ “these”",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "emoji 🎉🚀 and 👩‍👩‍👧 families, flags 🇫🇷",
    "numbers 3.14159 and 1,000,000 and ½ ² ٣",
    "  leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\n\n\n  indented\n",
    "\u00a0non-breaking\u2003em space\u3000ideographic\x85nel\x1cfs",
    "<|endoftext|>a document<|endoftext|><|endoftext|>next",
    "",
    " ",
    "'s 's' ''s x's 'S 'Re 'll'll",
    "!!!???... --- ___ ~~~ ```code```",
    "Ünïcödé ÀÉÎÕÜ ąęłńśźż čšž",
]
r = {"roundtrip": [], "regex_vs_str": [], "bytes": 0, "tokens": 0}
for s in samples:
    ids = tok.encode(s)
    if tok.decode(ids) != s:
        r["roundtrip"].append([s, ids])
    if R.pretokenize_str(s) != R.pretokenize(s):
        r["regex_vs_str"].append([s, R.pretokenize_str(s), R.pretokenize(s)])
text = samples[0] + " " + samples[1]
r["bytes"] = len(text.encode())
r["tokens"] = len(tok.encode(text))
r["pieces"] = R.pretokenize("Hello world's  end\n\n x 42!?")
r["eot"] = tok.encode("a<|endoftext|>b")
print(json.dumps(r))
EOF
r=$("$PY3" "$T/tok.py" "$GPT2" "$T/a" 2>"$T/err")
ok $? "tokenizer checks run"
[ -s "$T/err" ] && diag "$(cat "$T/err")"
jqok "encode then decode gives the text back (non-ASCII, spaces, eot)" "$r" \
    '.roundtrip == []'
jqok "the str-method pre-tokenizer agrees with the regex module's" "$r" \
    '.regex_vs_str == []'
jqok "GPT-2's pre-tokenizer pattern" "$r" \
    '.pieces == ["Hello", " world", "'"'"'s", " ", " end", "\n\n", " x",
     " 42", "!?"]'
jqok "ordinary text: multi-byte tokens (under half a token a byte)" "$r" \
    '.tokens * 2 < .bytes'
jqok "<|endoftext|> in text is the special token, 999" "$r" \
    '.eot | length == 3 and .[1] == 999'

# --- the forward pass and generation -----------------------------------------
cat >"$T/fwd.py" <<'EOF'
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import reference as R
T = sys.argv[2]
m = R.load(T + "/a")
ids = m.tokenizer.encode("Good software is boring in the best way.")
full, _ = m.forward(ids)
lg, past = m.forward(ids[:4])
parts = [lg]
for t in ids[4:]:
    lg, past = m.forward([t], past)
    parts.append(lg)
out = m.generate(ids, 12)
seq, again = list(ids), []
for _ in range(12):
    nxt = int(np.argmax(m.forward(seq)[0][-1]))
    if nxt == m.eos:
        break
    again.append(nxt)
    seq.append(nxt)
l32 = m.logits(ids)
def diff(d):
    return float(np.abs(R.load(T + "/" + d).logits(ids) - l32).max())
print(json.dumps({
    "cache": float(np.abs(np.concatenate(parts) - full).max()),
    "greedy": out == again, "n": len(out),
    "finite": bool(np.isfinite(full).all()), "spread": float(l32.std()),
    "fp16": diff("h1"), "bf16": diff("bf"), "none": diff("np"),
    "untied": diff("un"), "seed": diff("s7")}))
EOF
r=$("$PY3" "$T/fwd.py" "$GPT2" "$T" 2>"$T/err")
ok $? "forward pass checks run"
[ -s "$T/err" ] && diag "$(cat "$T/err")"
jqok "forward with a key/value cache = forward over the whole (1e-5)" "$r" \
    '.cache < 1e-5 and .finite and .spread > 0.01'
jqok "generate = argmax of the whole recomputed at each step" "$r" \
    '.greedy and .n == 12'
jqok "no prefix: the same logits; fp16 within 1e-2, bf16 within 5e-2" "$r" \
    '.none == 0 and .fp16 < 1e-2 and .bf16 < 5e-2'
jqok "untied lm_head and another seed: other logits" "$r" \
    '.untied > 0.05 and .seed > 0.05'

PROMPT="The harbor town woke before the sun."
g1=$(ref generate "$T/a" "$PROMPT" 16 2>"$T/err")
ok $? "reference.py generate"
[ -s "$T/err" ] && diag "$(cat "$T/err")"
g2=$(ref generate "$T/b" "$PROMPT" 16)
is "$g2" "$g1" "generate is deterministic (a second model made alike)"
jqok "generate prints prompt ids, 16 new ids and their text" "$g1" \
    '(.prompt_ids | length > 0) and (.ids | length == 16) and
     (.text | type == "string")'
l=$(ref logits "$T/a" "$PROMPT")
jqok "reference.py logits: 1000 of them, and the argmax" "$l" \
    '(.logits | length == 1000) and
     .argmax == (.logits | indices(max) | .[0])'
ref logits "$T/a" "$PROMPT" --npy "$T/l.npy" >/dev/null &&
    "$PY3" -c 'import numpy, sys; a = numpy.load(sys.argv[1]);
assert a.shape == (1000,) and a.dtype == numpy.float32' "$T/l.npy"
ok $? "reference.py logits --npy: a float32 [1000] array"
# A model whose safetensors lacks ln_f.bias (the header rewritten).
cat >"$T/drop.py" <<'EOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
del h["transformer.ln_f.bias"]
body = json.dumps(h).encode()
body += b" " * (-len(body) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(body)) + body +
                              raw[8 + n:])
EOF
mkdir -p "$T/bad" && cp "$T/a/"*.json "$T/a/merges.txt" "$T/bad/" &&
    "$PY3" "$T/drop.py" "$T/a/model.safetensors" "$T/bad/model.safetensors"
run_fails 1 "reference.py: .*no tensor transformer.ln_f.bias" \
    "reference.py refuses a model without a tensor, naming it" \
    "$PY3" "$GPT2/reference.py" logits "$T/bad" x

# --- the FastAPI app, acquiring through the daemon ------------------------------
start_origin --repo org/gpt2-tiny="$T/a"
ok $? "the test origin serves the tiny model"
start_daemon
ok $? "the daemon starts"

# start_app LOG CMD...: CMD in the background on a free port (PORT, APP_PID)
# until /healthz answers; 1 if it exits first.
start_app() {
	log=$1
	shift
	PORT=$(free_port)
	PORT=$PORT "$@" --log-level warning >"$log" 2>&1 &
	APP_PID=$!
	BG="$BG $APP_PID"
	n=0
	until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
		kill -0 "$APP_PID" 2>/dev/null || return 1
		n=$((n + 1))
		[ $n -lt 1200 ] || return 1
		sleep 0.05
	done
}
get() {
	curl -s -G "http://127.0.0.1:$PORT$1" "$@"
}

start_app "$T/app.log" env MODEL=org/gpt2-tiny "$APPDIR/run"
rc=$?
ok $rc "the app starts (MODEL=org/gpt2-tiny) and answers /healthz"
[ $rc -eq 0 ] || diag "$(tail -n 30 "$T/app.log")"
h=$(get /healthz)
jqok "/healthz: the model, its lease and the snapshot in the store" "$h" \
    ".ok and .model == \"org/gpt2-tiny\" and (.lease | length > 0) and
     (.dir | startswith(\"$STORE/hub/models--org--gpt2-tiny/snapshots/\"))
     and .n_layer == 2 and .vocab_size == 1000"
dir=$(printf '%s\n' "$h" | json .dir)
same_files "$dir" "$T/a"
ok $? "the snapshot it loaded holds the files made, byte for byte"
s=$(mc status --json)
jqok "modelcache status --json lists the app's lease, with its pid" "$s" \
    ".leases | length == 1 and .[0].folder == \"models--org--gpt2-tiny\" and
     .[0].pid == $APP_PID"

r1=$(get /generate --data-urlencode "prompt=$PROMPT" -d max_tokens=16)
jqok "/generate: the reference's 16 tokens and text, the time taken" "$r1" \
    ".token_ids == $(printf '%s\n' "$g1" | jq -c .ids) and .tokens == 16 and
     .text == $(printf '%s\n' "$g1" | jq .text) and .ms > 0"
r2=$(get /generate --data-urlencode "prompt=$PROMPT" -d max_tokens=16)
is "$(printf '%s\n' "$r2" | jq -c .token_ids)" \
    "$(printf '%s\n' "$r1" | jq -c .token_ids)" "/generate again: the same"
u="Naïve café — 日本語 🎉"
r=$(get /generate --data-urlencode "prompt=$u" -d max_tokens=4)
jqok "/generate of a non-ASCII prompt: its tokens as the reference counts" \
    "$r" ".prompt == \"$u\" and .prompt_tokens ==
     $(ref encode "$T/a" "$u" | jq '.ids | length') and .tokens == 4"
code=$(curl -s -o "$T/out" -w '%{http_code}' -G \
    "http://127.0.0.1:$PORT/generate" -d prompt=x -d max_tokens=1000)
is "$code $(jq -r .detail <"$T/out" | grep -c 'at most 256')" "400 1" \
    "/generate past n_positions: 400, saying why"

kill -TERM "$APP_PID"
wait "$APP_PID"
is "$?" 0 "the app stops on SIGTERM, exit 0"
grep -q "app: released" "$T/app.log"
ok $? "its shutdown hook released the lease"
s=$(mc status --json)
jqok "status --json lists no lease after it stopped" "$s" '.leases == []'

# --- under modelcache-preload -------------------------------------------------
start_app "$T/app2.log" "$PRELOAD" --store "$STORE" --socket "$SOCK" \
    --model org/gpt2-tiny -- "$APPDIR/run"
rc=$?
ok $rc "modelcache-preload -- run: the app starts"
[ $rc -eq 0 ] || diag "$(tail -n 30 "$T/app2.log")"
h=$(get /healthz)
jqok "it loads MODELCACHE_MODEL_DIR and holds no lease of its own" "$h" \
    ".ok and .lease == null and .dir == \"$dir\""
s=$(mc status --json)
jqok "the preload's lease, on the exec'd app's pid" "$s" \
    ".leases | length == 1 and .[0].pid == $APP_PID"
r=$(get /generate --data-urlencode "prompt=$PROMPT" -d max_tokens=16)
is "$(printf '%s\n' "$r" | jq -c .token_ids)" \
    "$(printf '%s\n' "$g1" | jq -c .ids)" "/generate: the same tokens"
kill -TERM "$APP_PID"
wait "$APP_PID"
is "$?" 0 "it stops on SIGTERM, exit 0"
jqok "no lease after it stopped" "$(mc status --json)" '.leases == []'

done_testing
