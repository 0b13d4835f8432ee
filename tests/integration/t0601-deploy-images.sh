#!/bin/sh
# The images of deploy/, built and run with a real engine (rootful podman
# with a configuration of its own, tests/lib/podman.sh), on a Debian 12
# base made here with debootstrap; only with MODELCACHE_TEST_CONTAINERS=1,
# as root.  From a copy of the source tree (git's files, or the tree
# without its build trees), it builds deploy/Dockerfile and
# deploy/Dockerfile.inference, whose build stages are the same text and
# share their layers, apt's downloads staying in the cache mounts (the
# inference image builds its example, gpt2-server, in a stage of its own:
# the sidecar's build installs no libmicrohttpd, its image has neither);
# the
# runtime images much smaller than the build stage, with no compiler, no
# headers, no package lists and no model inside, running as uid 65532,
# exec-form CMD, ENTRYPOINT and HEALTHCHECK (modelcache status --ready);
# the programs run in them with no network.  Then what a pod
# does: make-model's tiny GPT-2 baked into an image (deploy/Dockerfile.
# model) and imported into a store directory by running it, twice (the
# same commit, verified); modelcached in its image on that store and a
# socket directory (bind mounts); modelcache status --ready by exec, from a
# second container sharing the socket's directory, and as the health
# check; modelcache-preload in the inference image acquiring the model
# through the daemon, warming it, and exec'ing gpt2-server, which answers
# /generate on the host's loopback; its lease in the daemon's status
# until the server stops; both stop on SIGTERM with status 0.  Last, a
# one-line change to a source file and the sidecar image built again: the
# package layers come from the cache, the change is in the new image.
# Build times, sizes and the layers reused are printed as TAP comments.
# Nothing is left running or mounted, and no network is changed (only
# --network=host and --network=none are used).
#
# Nothing waits on a timer for an event: conditions are polled, bounded.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/python.sh"
. "$top_srcdir/tests/lib/podman.sh"

unset MODELCACHE_MODELS MODELCACHE_MAX_SIZE
podman_setup
for tool in jq curl tar; do
	command -v $tool >/dev/null || podman_skip "no $tool"
done
"$PY3" -c 'import numpy' 2>/dev/null ||
	podman_skip "$PY3 has no numpy (make-model; Debian: python3-numpy)"
export PYTHONDONTWRITEBYTECODE=1

BUILD_STAGE_IMAGE=localhost/modelcache/build:$MC_TAG
MODEL_IMAGE=localhost/modelcache/model-gpt2-tiny:$MC_TAG
MODEL=test/gpt2-tiny
SRC=$T/src
# The containers' user, which owns the store and the socket's directory.
UID_MC=65532

# steps LOG: "cached STEP" or "ran STEP" for each step of a podman build
# but FROM (which has no layer of its own), STEP as "[stage] instruction",
# cut short.
steps() {
	awk '
	function flush() {
		if (step != "")
			print (cached ? "cached " : "ran ") step
		step = ""
	}
	/^(\[[0-9]+\/[0-9]+\] )?STEP [0-9]+\/[0-9]+: / {
		flush()
		stage = ""
		if ($1 ~ /^\[/)
			stage = $1 " "
		sub(/^(\[[0-9]+\/[0-9]+\] )?STEP [0-9]+\/[0-9]+: /, "")
		if ($1 == "FROM")
			next
		gsub(/ +/, " ")
		step = stage substr($0, 1, 60)
		cached = 0
		next
	}
	/^--> Using cache / { cached = 1 }
	END { flush() }' "$1"
}

# size IMAGE: its size in bytes; mib BYTES: in MiB.
size() {
	pm image inspect --format '{{.Size}}' "$1"
}
mib() {
	awk -v n="$1" 'BEGIN { printf "%.1f MiB\n", n / 1048576 }'
}

# inspect IMAGE FORMAT: podman image inspect --format.
inspect() {
	pm image inspect --format "$2" "$1" 2>"$T/inspect.err"
}

# in_image IMAGE PROGRAM ARGS...: PROGRAM run in IMAGE, with no network
# and no health check (podman would ask systemd to schedule it, and say
# that it cannot).
in_image() {
	img=$1 prog=$2
	shift 2
	pm run --rm --network=none --no-healthcheck --entrypoint "$prog" \
	    "$img" "$@" 2>&1
}

# --- the source tree, copied ----------------------------------------------
# The files git knows, and the new ones it does not ignore; without git
# (a release tarball), the tree without its build trees.
mkdir -p "$SRC"
if git -C "$top_srcdir" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$top_srcdir" &&
	    git ls-files -z --cached --others --exclude-standard |
	    tar --null --no-recursion --ignore-failed-read -T - -cf - 2>/dev/null) |
	    tar -C "$SRC" -xf -
else
	tar -C "$top_srcdir" --exclude=./.git --exclude=./build \
	    --exclude='./build-*' --exclude=./_build --exclude=./demo \
	    --exclude=./autom4te.cache -cf - . | tar -C "$SRC" -xf -
fi
[ -f "$SRC/deploy/Dockerfile" ] && [ -f "$SRC/src/store.c" ]
ok $? "a copy of the source tree in \$T/src"

# The two build stages are one text, so that each build reuses the
# other's layers.
stage() {
	sed -n '/^FROM ${BUILD_IMAGE} AS build$/,/^# --- end of build/p' "$1"
}
stage "$SRC/deploy/Dockerfile" >"$T/stage1"
stage "$SRC/deploy/Dockerfile.inference" >"$T/stage2"
[ -s "$T/stage1" ] && cmp -s "$T/stage1" "$T/stage2"
rc=$?
ok $rc "Dockerfile and Dockerfile.inference have the same build stage"
[ $rc -eq 0 ] || diag "$(diff "$T/stage1" "$T/stage2" | head -20)"

# --- the base image ---------------------------------------------------------
podman_base 2>"$T/base.err"
rc=$?
ok $rc "the Debian 12 base image ($BASE_IMAGE)"
# Nothing else can be built.
[ $rc -eq 0 ] || { diag "$(tail -20 "$T/base.err")"; done_testing; }
if [ "$BASE_MADE" = 1 ]; then
	diag "base image: made with debootstrap and imported in $BASE_S s"
else
	diag "base image: imported from the cached rootfs in $BASE_S s"
fi

# --- the sidecar image, cold ------------------------------------------------
podman_build "$T/build-mc.log" -f "$SRC/deploy/Dockerfile" -t "$MC_IMAGE" \
    "$SRC"
rc=$?
ok $rc "deploy/Dockerfile builds ($MC_IMAGE)"
# Every other image needs it.
[ $rc -eq 0 ] || { diag "$(tail -30 "$T/build-mc.log")"; done_testing; }
COLD_S=$BUILD_S
diag "cold build of $MC_IMAGE: $COLD_S s"
steps "$T/build-mc.log" >"$T/steps-mc"
! grep -q '^cached' "$T/steps-mc"
ok $? "the cold build ran every step"
! grep -q 'HEALTHCHECK is not supported' "$T/build-mc.log"
ok $? "no warning that the image format drops HEALTHCHECK"
# buildah keeps cache mounts in TMPDIR/buildah-cache (pm's).
n=$(find "$PODMAN_DIR/tmp" -path '*apt-archives-build*' -name '*.deb' |
    wc -l)
[ "$n" -gt 20 ]
ok $? "the build stage's downloads stay in its cache mount ($n .deb files)"

# --- the inference image: the build stage from the cache -------------------
podman_build "$T/build-inf.log" -f "$SRC/deploy/Dockerfile.inference" \
    -t "$INF_IMAGE" "$SRC"
rc=$?
ok $rc "deploy/Dockerfile.inference builds ($INF_IMAGE)"
[ $rc -eq 0 ] || diag "$(tail -30 "$T/build-inf.log")"
diag "build of $INF_IMAGE after it: $BUILD_S s"
steps "$T/build-inf.log" >"$T/steps-inf"
# Its stages: build (deploy/Dockerfile's), examples, the runtime.
n=$(grep -c '^[a-z]* \[1/3\]' "$T/steps-inf")
is "$(grep -c '^cached \[1/3\]' "$T/steps-inf") of $n" "$n of $n" \
    "every step of its build stage comes from the layer cache"
[ "$n" -gt 5 ]
ok $? "its build stage is the first of three ($n steps)"

# The example, gpt2-server, and the one package only it needs are the
# inference image's: the sidecar's build installs no libmicrohttpd and
# builds no example.
! grep -q 'libmicrohttpd' "$T/build-mc.log" &&
    grep -q 'Setting up libmicrohttpd-dev' "$T/build-inf.log"
ok $? "libmicrohttpd is installed in the inference image's build only"
! grep -qi 'examples' "$T/steps-mc" && grep -qi 'examples' "$T/steps-inf"
ok $? "the sidecar's build has no examples stage, the inference's has"

# The build stage alone, for its size: all from the cache.
podman_build "$T/build-stage.log" --target build \
    -f "$SRC/deploy/Dockerfile" -t "$BUILD_STAGE_IMAGE" "$SRC"
ok $? "the build stage, tagged (from the cache in $BUILD_S s)"
s_build=$(size "$BUILD_STAGE_IMAGE")
s_mc=$(size "$MC_IMAGE")
s_inf=$(size "$INF_IMAGE")
s_base=$(size "$BASE_IMAGE")
diag "sizes: base $(mib "$s_base"), build stage $(mib "$s_build")," \
    "$MC_IMAGE $(mib "$s_mc"), $INF_IMAGE $(mib "$s_inf")"
[ "$s_mc" -gt 0 ] && [ $((s_mc * 3)) -lt "$s_build" ] &&
    [ $((s_inf * 3)) -lt "$s_build" ]
ok $? "each runtime image is under a third of the build stage"
# What the runtime stages add to the base: the libraries and programs.
[ $((s_mc - s_base)) -lt $((40 * 1048576)) ] &&
    [ $((s_inf - s_base)) -lt $((40 * 1048576)) ]
ok $? "each runtime image adds under 40 MiB to the base"

for img in "$MC_IMAGE" "$INF_IMAGE"; do
	out=$(in_image "$img" /bin/sh -c 'for f in /usr/bin/cc /usr/bin/gcc \
	    /usr/bin/make /usr/include/stdio.h /var/lib/apt/lists/*_Packages \
	    /var/cache/apt/archives/*.deb; do [ ! -e "$f" ] || echo "$f"; done')
	is "$out" "" \
	    "$img: no compiler, no headers, no package lists or downloads"
	in_image "$img" ls /etc/apt/apt.conf.d/docker-clean >/dev/null
	ok $? "$img: Debian's docker-clean is still there"
done

# --- the images' configuration -----------------------------------------------
is "$(inspect "$MC_IMAGE" '{{.Config.User}}')" "$UID_MC:$UID_MC" \
    "$MC_IMAGE: USER is $UID_MC:$UID_MC"
is "$(inspect "$INF_IMAGE" '{{.Config.User}}')" "$UID_MC:$UID_MC" \
    "$INF_IMAGE: USER is $UID_MC:$UID_MC"
is "$(in_image "$MC_IMAGE" id -u) $(in_image "$INF_IMAGE" id -u)" \
    "$UID_MC $UID_MC" "both run as uid $UID_MC, not root"
hc=$(inspect "$MC_IMAGE" '{{json .Config.Healthcheck}}')
jqok "$MC_IMAGE: HEALTHCHECK in exec form: modelcache status --ready" "$hc" \
    '.Test == ["CMD", "modelcache", "status", "--ready"]'
is "$(inspect "$MC_IMAGE" '{{json .Config.Cmd}} {{json .Config.Entrypoint}}')" \
    '["modelcached"] null' "$MC_IMAGE: CMD [\"modelcached\"], exec form"
ec=$(inspect "$INF_IMAGE" \
    '{"e":{{json .Config.Entrypoint}},"c":{{json .Config.Cmd}}}')
jqok "$INF_IMAGE: ENTRYPOINT modelcache-preload, exec form; CMD its arguments" \
    "$ec" \
    '.e == ["modelcache-preload"] and .c[0] == "--keep-lease" and
    .c[1] == "--model" and (.c | index("--")) == 3 and .c[4] == "gpt2-server"'
env=$(inspect "$INF_IMAGE" '{{json .Config.Env}}')
jqok "$INF_IMAGE: MODELCACHE_STORE=/models, the socket in /run/modelcache" \
    "$env" 'index("MODELCACHE_STORE=/models") != null and
    index("MODELCACHE_SOCKET=/run/modelcache/modelcache.sock") != null'
hc=$(inspect "$INF_IMAGE" '{{json .Config.Healthcheck}}')
jqok "$INF_IMAGE: no HEALTHCHECK" "$hc" '. == null'

# As root, to see every directory.
found=$(pm run --rm --network=none --user 0 --entrypoint find \
    "$INF_IMAGE" / -xdev \( -name '*.safetensors' -o -name '*.gguf' -o \
    -name '*.pt' -o -name '*.pth' -o -name '*.ckpt' -o -name '*.onnx' -o \
    -name 'pytorch_model*.bin' -o -name 'vocab.json' -o \
    -name 'merges.txt' -o -name 'tokenizer.json' \) -print 2>&1)
is "$found" "" "$INF_IMAGE: no model files inside"

in_image "$MC_IMAGE" /bin/sh -c 'command -v gpt2-server; ls \
    /usr/lib/*/libmicrohttpd* /usr/local/lib/libmicrohttpd*' >"$T/mhd" 2>&1
is "$(grep -v 'No such file' "$T/mhd")" "" \
    "$MC_IMAGE: no gpt2-server, no libmicrohttpd"
v=$(in_image "$MC_IMAGE" modelcached --version)
is "$v" "modelcached $MC_TAG" "modelcached --version in the image"
in_image "$MC_IMAGE" modelcache --help >"$T/help" 2>&1
grep -q '^usage: modelcache ' "$T/help"
ok $? "modelcache --help in the image"
is "$(in_image "$INF_IMAGE" modelcache-preload --version) $(in_image \
    "$INF_IMAGE" gpt2-server --version)" \
    "modelcache-preload $MC_TAG gpt2-server $MC_TAG" \
    "modelcache-preload and gpt2-server --version in the inference image"

# --- a model baked into an image, imported by running it ---------------------
"$PY3" "$top_srcdir/inference/examples/gpt2/make-model" --size tiny \
    --out "$T/model" >"$T/make-model.log" 2>&1
ok $? "make-model --size tiny"
# Readable by their owner only: the image gives them to its user.
chmod 0600 "$T/model"/*
podman_build "$T/build-model.log" -f "$SRC/deploy/Dockerfile.model" \
    --build-arg MODELCACHE_IMAGE="$MC_IMAGE" -t "$MODEL_IMAGE" "$T/model"
rc=$?
ok $rc "deploy/Dockerfile.model bakes it into $MODEL_IMAGE ($BUILD_S s)"
[ $rc -eq 0 ] || diag "$(tail -20 "$T/build-model.log")"
diag "$MODEL_IMAGE: $(mib $(($(size "$MODEL_IMAGE") - s_mc))) over $MC_IMAGE"
is "$(inspect "$MODEL_IMAGE" \
    '{{json .Config.Entrypoint}} {{json .Config.Healthcheck}}')" \
    '["modelcache","import","/opt/model"] {"Test":["NONE"]}' \
    "$MODEL_IMAGE: ENTRYPOINT modelcache import /opt/model, HEALTHCHECK NONE"

STORE_DIR=$T/volume-store
SOCK_DIR=$T/volume-run
mkdir -p "$STORE_DIR" "$SOCK_DIR"
chown "$UID_MC:$UID_MC" "$STORE_DIR" "$SOCK_DIR"
chmod 0750 "$SOCK_DIR"
for i in 1 2; do
	pm run --rm --network=none -v "$STORE_DIR:/var/lib/modelcache" \
	    "$MODEL_IMAGE" "$MODEL" >"$T/import$i.out" 2>"$T/import$i.err"
	rc=$?
	ok $rc "the init step: $MODEL_IMAGE imports $MODEL into the store ($i)"
	[ $rc -eq 0 ] || diag "$(cat "$T/import$i.err")"
done
diag "$(head -n 1 "$T/import1.out")"
mcs() {	# modelcache in its image on the store
	pm run --rm --network=none --no-healthcheck \
	    -v "$STORE_DIR:/var/lib/modelcache" "$MC_IMAGE" modelcache "$@"
}
mcs ls --json >"$T/ls.json" 2>"$T/ls.err"
jqok "modelcache ls in the image: one snapshot of $MODEL, 5 files, main" \
    "$(cat "$T/ls.json")" "map(select(.repo == \"$MODEL\")) |
    length == 1 and .[0].files == 5 and .[0].revisions == [\"main\"]"
COMMIT=$(jq -r ".[] | select(.repo == \"$MODEL\") | .commit" "$T/ls.json")
[ ${#COMMIT} -eq 40 ]
rc=$?
ok $rc "its commit: $(echo "$COMMIT" | cut -c1-12)"
[ $rc -eq 0 ] || diag "$(cat "$T/ls.json" "$T/ls.err" | head -20)"
run_ok "modelcache verify in the image: every byte checks" mcs verify "$MODEL"
# The snapshot holds make-model's very files.
snap=$(find "$STORE_DIR/hub" -path "*/snapshots/$COMMIT" -type d | head -n 1)
bad=0
for f in "$T/model"/*; do
	[ "$(sha_of "$f")" = "$(sha_of "$snap/${f##*/}")" ] || bad=1
done
ok $bad "the store's snapshot holds the baked files, byte for byte"
is "$(find "$STORE_DIR" ! -user "$UID_MC" | wc -l)" 0 \
    "everything in the store is uid $UID_MC's (the init step's user)"

# --- the sidecar serving the store -------------------------------------------
pm run -d --name mcd --network=none \
    -v "$STORE_DIR:/var/lib/modelcache" -v "$SOCK_DIR:/run/modelcache" \
    "$MC_IMAGE" >"$T/mcd.id" 2>"$T/mcd.err"
rc=$?
ok $rc "modelcached starts in its image (store and socket: bind mounts)"
[ $rc -eq 0 ] || diag "$(cat "$T/mcd.err")"
wait_for pm exec mcd modelcache status --ready
rc=$?
ok $rc "podman exec: modelcache status --ready"
[ $rc -eq 0 ] || diag "$(pm logs mcd 2>&1 | tail -20)"
[ -S "$SOCK_DIR/modelcache.sock" ]
ok $? "the socket is in the shared directory"
pm run --rm --network=none --no-healthcheck \
    -v "$SOCK_DIR:/run/modelcache" "$MC_IMAGE" modelcache status --ready \
    >"$T/status.out" 2>&1
rc=$?
ok $rc "a second container sharing the socket's directory: status --ready"
[ $rc -eq 0 ] || diag "$(cat "$T/status.out")"
grep -q 'modelcached/.* ready$' "$T/status.out"
ok $? "it says ready"
pm healthcheck run mcd >"$T/health.out" 2>&1
rc=$?
ok $rc "podman healthcheck run: the image's HEALTHCHECK passes"
[ $rc -eq 0 ] || diag "$(cat "$T/health.out")"
is "$(pm inspect --format '{{.State.Health.Status}}' mcd 2>/dev/null)" \
    healthy "the container is healthy"

# --- the inference image: preload, handshake, gpt2-server ---------------------
pm run -d --name inf --network=host \
    -v "$STORE_DIR:/models:ro" -v "$SOCK_DIR:/run/modelcache" \
    "$INF_IMAGE" --keep-lease --model "$MODEL" -- \
    gpt2-server --listen 127.0.0.1:0 --threads 2 >"$T/inf.id" 2>"$T/inf.err"
rc=$?
ok $rc "the inference image starts: modelcache-preload --keep-lease -- gpt2-server"
[ $rc -eq 0 ] || diag "$(cat "$T/inf.err")"
listening() {
	pm logs inf >"$T/inf.log" 2>&1
	grep -q '^listening on ' "$T/inf.log"
}
wait_for listening
rc=$?
ok $rc "gpt2-server says where it listens"
[ $rc -eq 0 ] || diag "$(tail -20 "$T/inf.log")"
URL=http://$(sed -n 's/^listening on //p' "$T/inf.log" | head -n 1)
grep -q "^modelcache-preload: $MODEL ready: commit $(echo "$COMMIT" |
    cut -c1-12)" "$T/inf.log"
rc=$?
ok $rc "modelcache-preload: the handshake answered the imported commit"
[ $rc -eq 0 ] || diag "$(head -20 "$T/inf.log")"
grep -q '^modelcache-preload: warmed 5 files' "$T/inf.log"
ok $? "modelcache-preload warmed the model's 5 files"
r=$(curl -sS --noproxy '*' --max-time 60 "$URL/healthz" 2>&1)
jqok "/healthz: the model from the store's mount" "$r" \
    ".ok == true and .model ==
    \"/models/hub/models--test--gpt2-tiny/snapshots/$COMMIT\""
r=$(curl -sS --noproxy '*' --max-time 120 -G "$URL/generate" \
    --data-urlencode "prompt=The harbor town woke before the sun." \
    -d max_tokens=8 2>&1)
jqok "GET /generate on the host's loopback: 8 tokens of text" "$r" \
    '.tokens == 8 and (.text | type) == "string"'
st=$(pm exec mcd modelcache status --json 2>&1)
jqok "the daemon holds the server's lease on that commit" "$st" \
    "[.leases[] | select(.commit == \"$COMMIT\")] | length == 1"

pm stop -t 30 inf >/dev/null 2>&1
is "$(pm wait inf 2>&1)" 0 \
    "SIGTERM: preload (the container's PID 1) passes it on; gpt2-server exits 0, so does it"
no_leases() {
	pm exec mcd modelcache status --json | jqe '.leases | length == 0'
}
wait_for no_leases
ok $? "its lease ended with it"
pm stop -t 30 mcd >/dev/null 2>&1
is "$(pm wait mcd 2>&1)" 0 "SIGTERM: modelcached exits 0"
[ ! -e "$SOCK_DIR/modelcache.sock" ]
ok $? "and removes its socket"
pm rm inf mcd >/dev/null 2>&1

# --- a one-line change, and the sidecar image again ---------------------------
MC_C=$SRC/sidecar/cli/modelcache.c
cp "$MC_C" "$T/modelcache.c.orig"
sed -i \
    's/ options; see modelcache(1)\./ options; see modelcache(1) (rebuilt)./' \
    "$MC_C"
is "$(diff "$T/modelcache.c.orig" "$MC_C" | grep -c '^>')" \
    1 "one line of sidecar/cli/modelcache.c changed, in the copy"
podman_build "$T/rebuild-mc.log" -f "$SRC/deploy/Dockerfile" -t "$MC_IMAGE" \
    "$SRC"
rc=$?
ok $rc "deploy/Dockerfile builds again"
[ $rc -eq 0 ] || diag "$(tail -30 "$T/rebuild-mc.log")"
REBUILD_S=$BUILD_S
diag "rebuild after a one-line change: $REBUILD_S s (cold: $COLD_S s)"
steps "$T/rebuild-mc.log" >"$T/steps-re"
diag "layers reused:" "$(sed -n 's/^cached /  /p' "$T/steps-re")" \
    "layers rebuilt:" "$(sed -n 's/^ran /  /p' "$T/steps-re")"
cached_all() {	# cached_all PATTERN: every step matching it cached
	n=$(grep -c -- "$1" "$T/steps-re")
	[ "$n" -gt 0 ] && [ "$(grep -- "$1" "$T/steps-re" | grep -c '^cached')" \
	    -eq "$n" ]
}
cached_all 'RUN --mount=type=cache'
ok $? "the apt layers (both stages) come from the cache"
cached_all 'autoreconf'
ok $? "autoreconf's layer comes from the cache"
cached_all 'RUN groupadd'
ok $? "the runtime user's layer comes from the cache"
grep -q '^ran \[1/2\] COPY sidecar/' "$T/steps-re" &&
    grep -q '^ran \[1/2\] RUN mkdir build' "$T/steps-re"
ok $? "the sources' layer and make ran again"
in_image "$MC_IMAGE" modelcache --help >"$T/help2" 2>&1
grep -q 'see modelcache(1) (rebuilt)\.$' "$T/help2"
ok $? "the new image has the change"

# --- nothing left ---------------------------------------------------------
podman_cleanup
left=$(podman_leftovers)
is "$left" "" "nothing left running or mounted, no network changed"

done_testing
