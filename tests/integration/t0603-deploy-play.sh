#!/bin/sh
# The Kubernetes manifests played by a real engine: podman 4.3's kube play
# (rootful, a configuration of its own: tests/lib/podman.sh) runs the
# podman overlays of deploy/k8s, rendered by kubectl kustomize, with the
# images of deploy/ built here; only with MODELCACHE_TEST_CONTAINERS=1, as
# root.  Two pods (overlays/podman and overlays/podman-2: what two
# replicas are, podman giving replicas of one document one emptyDir) share
# one store volume (the claim of overlays/podman/store), on the host's
# network, the HF-compatible test origin on its loopback serving the tiny
# GPT-2.  The order inside each pod is the handshake itself, podman
# ignoring native sidecars and probes: modelcache-preload waits for the
# socket and the model.  Checked: both pods' gpt2-server answer /generate
# the same; the origin served each blob once, whichever daemon pulled it;
# each daemon holds a lease (a file under the store's leases/); deleting
# one pod releases its lease and the other pod still answers; its sidecar
# killed (-9) is started again by the pod's restartPolicy, and
# modelcache-preload --keep-lease takes the server's lease again from the
# new daemon; a second play on the warm store answers with nothing more
# from the origin.  The
# times from kube play to both answers, cold and warm, are printed.
# Nothing is left running or mounted; no network is changed (host
# networking only).
#
# Nothing waits on a timer for an event: conditions are polled, bounded.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/python.sh"
. "$top_srcdir/tests/lib/podman.sh"

unset MODELCACHE_MODELS MODELCACHE_MAX_SIZE
podman_setup
KUBECTL=${KUBECTL:-kubectl}
for tool in jq curl "$KUBECTL"; do
	command -v "$tool" >/dev/null || podman_skip "no $tool"
done
"$PY3" -c 'import numpy' 2>/dev/null ||
	podman_skip "$PY3 has no numpy (make-model; Debian: python3-numpy)"
export PYTHONDONTWRITEBYTECODE=1

K8S=$top_srcdir/deploy/k8s
MODEL=demo/gpt2-tiny
PODS="gpt2-server-pod-0 gpt2-server-2-pod-0"
PROMPT="The harbor town woke before the sun."

podman_images
rc=$?
ok $rc "the images build (modelcached ${MC_BUILD_S:-?} s, gpt2-server ${INF_BUILD_S:-?} s)"
[ $rc -eq 0 ] || {
	diag "$(tail -n 30 "$PODMAN_DIR"/build-*.log 2>/dev/null)"
	done_testing
}

"$PY3" "$top_srcdir/inference/examples/gpt2/make-model" --size tiny \
    --out "$T/gpt2-tiny" >"$T/make-model.log" 2>&1
ok $? "make-model: the tiny GPT-2"
SIZE=$(cat "$T"/gpt2-tiny/* | wc -c)
start_origin --repo "$MODEL=$T/gpt2-tiny"
ok $? "the test origin serves it as $MODEL on $ORIGIN"

# --- the manifests, rendered ------------------------------------------------
render() {
	"$KUBECTL" kustomize "$K8S/$1" 2>"$T/kustomize.err" |
	    sed "s|http://127.0.0.1:9\$|$ORIGIN|" >"$T/$2"
}
render overlays/podman/store store.yaml &&
    render overlays/podman pod1.yaml && render overlays/podman-2 pod2.yaml
ok $? "kubectl kustomize renders the store and the two pods"
n=0
for f in pod1.yaml pod2.yaml; do
	c=$(grep -c -- "HF_ENDPOINT: $ORIGIN\$" "$T/$f")
	[ "$c" -eq 1 ] && n=$((n + 1))
done
is "$n" 2 "each pod's ConfigMap names the test origin"

# play FILE...: podman kube play of each, from $T (in a build tree, play
# takes the programs there for build contexts).
play() {
	for f in "$@"; do
		(cd "$T" && pm kube play "$f") >>"$T/play.log" 2>&1 || return 1
	done
}

# listening POD: its server's port in PORT, once it listens.
listening() {
	pm logs "$1-gpt2-server" >"$T/$1.log" 2>&1 || return 1
	PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
	    "$T/$1.log" | tail -n 1)
	[ -n "$PORT" ]
}

# answer POD: /generate from its server, into $T/POD.json.
answer() {
	listening "$1" &&
	    curl -sS --noproxy '*' --max-time 60 -G \
		"http://127.0.0.1:$PORT/generate" --data-urlencode \
		"prompt=$PROMPT" -d max_tokens=8 -o "$T/$1.json" 2>/dev/null &&
	    jqe '.tokens == 8 and (.text | type) == "string"' \
		"$T/$1.json" >/dev/null
}

both_answer() {
	for p in $PODS; do
		answer "$p" || return 1
	done
}

# The store volume's directory on this host.
store_dir() {
	pm volume inspect modelcache-store --format '{{.Mountpoint}}'
}

leases() {
	find "$(store_dir)/leases" -type f | wc -l
}

# delete POD FILE: as Kubernetes deletes a pod: SIGTERM to its
# containers, SIGKILL only after the grace period (podman pod stop -t 30),
# then kube down.  (podman 4.3's kube down alone kills at once: a daemon
# killed so leaves its lease file, which protects nothing once its
# heartbeat is older than stale_after, and which fsck removes.)
delete() {
	pm pod stop -t 30 "$1" >>"$T/play.log" 2>&1 &&
	    (cd "$T" && pm kube down "$2") >>"$T/play.log" 2>&1
}

# show_pods: what the pods' containers say, for a failure.
show_pods() {
	pm ps -a --format '{{.Names}} {{.Status}}' 2>&1
	for p in $PODS; do
		for c in modelcached gpt2-server; do
			echo "--- $p-$c"
			pm logs "$p-$c" 2>&1 | tail -n 15
		done
	done
}

# --- cold: an empty store ------------------------------------------------------
t0=$(podman_now)
play store.yaml pod1.yaml pod2.yaml
rc=$?
ok $rc "podman kube play: the store's claim, then the two pods"
[ $rc -eq 0 ] || diag "$(tail -n 20 "$T/play.log")"
wait_for both_answer
rc=$?
COLD_S=$(podman_since "$t0")
ok $rc "both pods' gpt2-server answer /generate (cold store, $COLD_S s after play)"
[ $rc -eq 0 ] || diag "$(show_pods)"
is "$(jq -c '[.text, .ids]' "$T/gpt2-server-2-pod-0.json" 2>&1)" \
    "$(jq -c '[.text, .ids]' "$T/gpt2-server-pod-0.json" 2>&1)" \
    "the same answer from both"
for p in $PODS; do
	grep -q "^modelcache-preload: $MODEL ready: commit " "$T/$p.log"
	ok $? "$p: modelcache-preload got the model through the handshake"
done
is "$(stats .bytes)" "$SIZE" \
    "the origin served the model's $SIZE bytes once, for two pods"
stats '.bytes_by_sha256 | to_entries[] | "\(.key) \(.value)"' \
    >"$T/by_sha"
bad=0
for f in "$T"/gpt2-tiny/*; do
	grep -qx "$(sha_of "$f") $(wc -c <"$f")" "$T/by_sha" || bad=1
done
ok $bad "each blob came once, whole"
is "$(leases)" 2 "two leases in the store: one per pod's daemon"

# --- one pod deleted ---------------------------------------------------------
delete gpt2-server-2-pod-0 pod2.yaml
ok $? "the second pod deleted (SIGTERM, then kube down)"
one_lease() {
	[ "$(leases)" -eq 1 ]
}
wait_for one_lease
ok $? "its lease is released: one left"
answer gpt2-server-pod-0
ok $? "the first pod still answers"

# --- the sidecar crashes --------------------------------------------------------
# Its daemon killed from the host, as a crash (a kill through podman would
# be a stop by the user, which no restart policy undoes).
C=gpt2-server-pod-0-modelcached
old=$(ls "$(store_dir)/leases")
kill -9 "$(pm inspect --format '{{.State.Pid}}' "$C")"
ok $? "the first pod's modelcached killed (-9)"
# restarted: its container started again, its daemon lists a lease.
restarted() {
	[ "$(pm inspect --format '{{.RestartCount}}' "$C")" -ge 1 ] &&
	    pm exec "$C" modelcache status >"$T/status.txt" 2>&1 &&
	    grep -q '^  lease .*: models--demo--gpt2-tiny@' "$T/status.txt"
}
wait_for restarted
ok $? "the container is started again (OnFailure); its daemon lists a lease"
pm logs gpt2-server-pod-0-gpt2-server 2>&1 |
    grep -q "^modelcache-preload: lease taken again: $MODEL@"
ok $? "the one modelcache-preload --keep-lease took again"
[ "$(leases)" -eq 2 ] && test -f "$(store_dir)/leases/$old"
ok $? "a lease file of the new daemon's, beside the killed one's"
answer gpt2-server-pod-0
ok $? "the server still answers"

# --- warm: the store kept, the pods played again ---------------------------
delete gpt2-server-pod-0 pod1.yaml
ok $? "the first pod deleted"
# The killed daemon's file stays: it protects nothing once its heartbeat
# is older than stale_after, and fsck removes it.
no_lease() {
	[ "$(ls "$(store_dir)/leases")" = "$old" ]
}
wait_for no_lease
ok $? "both pods down: no live lease left, the store volume kept"
rm -f "$T"/gpt2-server*.json
t0=$(podman_now)
play pod1.yaml pod2.yaml
ok $? "podman kube play of the two pods again"
wait_for both_answer
rc=$?
WARM_S=$(podman_since "$t0")
ok $rc "both answer /generate (warm store, $WARM_S s after play)"
[ $rc -eq 0 ] || diag "$(show_pods)"
is "$(stats .bytes)" "$SIZE" "nothing more came from the origin"
echo "# kube play to both answers: cold store $COLD_S s, warm store $WARM_S s"

delete gpt2-server-pod-0 pod1.yaml && delete gpt2-server-2-pod-0 pod2.yaml &&
    pm volume rm modelcache-store >>"$T/play.log" 2>&1
ok $? "torn down: the pods, then the store volume"
stop_origin
podman_cleanup
is "$(podman_leftovers)" "" "nothing left running or mounted, no network changed"
done_testing
