#!/bin/sh
# include and exclude (MODELCACHE_INCLUDE, MODELCACHE_EXCLUDE): the files
# of a Hugging Face repository that modelcached pulls and that
# `modelcache pull` pulls without --include/--exclude, so that a sidecar
# and a pre-pull Job configured alike fetch the same files and never a
# repository's other formats.  Checked: the daemon's snapshot and answer
# hold exactly the matching files, and the origin served only their
# bytes; the CLI with the same variables makes the same snapshot, and its
# flags override the variables; SIGHUP takes new patterns for later
# pulls; more than 64 patterns are refused with the key named.
. "$top_srcdir/tests/lib/tap.sh"

unset MODELCACHE_MODELS MODELCACHE_MAX_SIZE MODELCACHE_INCLUDE \
    MODELCACHE_EXCLUDE

# A repository as the Hub has them: weights in several formats.
R=$T/repo
mkdir -p "$R/onnx"
printf '{"model_type":"gpt2"}' >"$R/config.json"
printf '{"eos_token_id":0}' >"$R/generation_config.json"
printf 'merges\n' >"$R/merges.txt"
head -c 200000 /dev/urandom >"$R/model.safetensors"
head -c 150000 /dev/urandom >"$R/pytorch_model.bin"
head -c 120000 /dev/urandom >"$R/onnx/model.onnx"
printf '{"onnx":true}' >"$R/onnx/config.json"
WANT="config.json
generation_config.json
merges.txt
model.safetensors"
want_bytes=$(cd "$R" && cat $WANT | wc -c)

start_origin --repo "org/multi=$R"
ok $? "the origin serves a repository with safetensors, bin and onnx"

# paths DIR: the files under DIR, sorted.
paths() {
	(cd "$1" && find . -type f -o -type l | sed 's|^\./||' | LC_ALL=C sort)
}

# --- the daemon ----------------------------------------------------------
cat >"$T/mc.conf" <<EOF2
include = "*.json *.txt,*.safetensors"
exclude = onnx/*
EOF2
MODELCACHE_CONFIG=$T/mc.conf start_daemon
ok $? "modelcached starts with include '*.json *.txt,*.safetensors', exclude 'onnx/*'"
client '{"op":"acquire","model":"hf://org/multi"}' >"$T/acq.out"
ok $? "acquire pulls the model"
ready=$(tail -n 1 "$T/acq.out")
is "$(printf '%s\n' "$ready" | json '.files | map(.path) | sort | .[]')" \
    "$WANT" "the answer lists the matching files only"
dir=$(printf '%s\n' "$ready" | json .dir)
is "$(paths "$STORE/$dir")" "$WANT" "and the snapshot holds them only"
is "$(stats .bytes)" "$want_bytes" \
    "the origin served their $want_bytes bytes, nothing of the others"

# --- SIGHUP takes new patterns -----------------------------------------------
echo "include = *.bin" >"$T/mc.conf"
kill -HUP "$DAEMON_PID"
wait_for grep -q "configuration reloaded" "$T/daemon.log"
ok $? "SIGHUP with include = *.bin: reloaded"
mc rm org/multi >/dev/null
ok $? "the model is removed"
client '{"op":"acquire","model":"hf://org/multi"}' >"$T/acq.out"
is "$(tail -n 1 "$T/acq.out" | json '.files | map(.path) | .[]')" \
    "pytorch_model.bin" "a pull after it takes the new pattern"
stop_daemon
mc rm org/multi >/dev/null

# --- the CLI ----------------------------------------------------------------
MODELCACHE_INCLUDE='*.json *.txt *.safetensors' MODELCACHE_EXCLUDE='onnx/*' \
    mc pull --json hf://org/multi >"$T/pull.json" 2>"$T/pull.err"
ok $? "modelcache pull with the same variables"
commit=$(json .commit "$T/pull.json")
is "$(paths "$STORE/hub/models--org--multi/snapshots/$commit")" "$WANT" \
    "makes the same snapshot"
mc rm org/multi >/dev/null
MODELCACHE_INCLUDE='*.json' mc pull --json --include 'onnx/*' \
    hf://org/multi >"$T/pull.json" 2>"$T/pull.err"
commit=$(json .commit "$T/pull.json")
is "$(paths "$STORE/hub/models--org--multi/snapshots/$commit")" \
    "onnx/config.json
onnx/model.onnx" "--include overrides MODELCACHE_INCLUDE"

# --- bad values ---------------------------------------------------------------
many=$(seq 1 65 | sed 's/^/*.x/' | tr '\n' ' ')
run_fails 2 "MODELCACHE_INCLUDE.*more than 64 patterns" \
    "65 patterns: modelcached -n exits 2 naming the variable" \
    env MODELCACHE_INCLUDE="$many" "$MCD" -n --store "$STORE"
printf 'exclude = %s\n' "$many" >"$T/bad.conf"
run_fails 2 "more than 64 patterns" \
    "and in a file: exit 2 with the line" \
    env MODELCACHE_CONFIG="$T/bad.conf" "$MCD" -n --store "$STORE"
done_testing
