#!/bin/sh
# deploy/: the Kubernetes manifests.  Every kustomization under
# deploy/k8s renders with this machine's kubectl (kustomize v5 where it
# is kubectl 1.2x; Debian's kubernetes-client is kubectl 1.20, kustomize
# v2.0.3, and the kustomizations are written for both; KUBECTL names
# another).  Every YAML file under deploy/ passes yamllint with
# deploy/.yamllint.  Every object rendered is valid against the
# Kubernetes OpenAPI schemas, strictly (a field the schema does not name
# is an error), by tests/k8s/validate.mjs with the npm package
# kubernetes-models, which npm installs into the build tree.  The
# renderings have the properties the deployment relies on
# (tests/k8s/checks.jq): the native sidecar and its startup probe, the
# socket's emptyDir, the store read-only in the server, the RWX claim or
# the node's directory, the token's Secret file, the restricted security
# context, resources, and, for podman 4.3, no init container, no probe,
# host network, one pod per document.  modelcached -n accepts each
# variant's configuration; the Job's script pulls every declared model.
# And the checks do fail on broken input: the validator rejects a wrong
# type and a misspelt field, yamllint an octal mode and a duplicated key,
# the property checks a store mounted read-write in the server.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/python.sh"

K8S=$top_srcdir/deploy/k8s
KUBECTL=${KUBECTL:-kubectl}
VDIR=$top_builddir/tests/k8s-validator
CHECKS="jq -e -L $top_srcdir/tests/k8s"
unset HF_ENDPOINT MODELCACHE_MODELS

if ! command -v "$KUBECTL" >/dev/null; then
	echo "1..0 # SKIP no kubectl to render kustomizations" \
	    "(Debian: kubernetes-client, which ./dev installs)"
	exit 0
fi
if ! command -v jq >/dev/null; then
	echo "1..0 # SKIP no jq"
	exit 0
fi
diag "$("$KUBECTL" version --client 2>/dev/null | head -n 2)"

# --- Rendering ---------------------------------------------------------

# Every directory with a kustomization, and the name of its rendering.
VARIANTS="config base overlays/rwx overlays/node-local overlays/podman
overlays/podman/store overlays/podman-2 prepull"
found=$(cd "$K8S" && find . -name kustomization.yaml | sed 's|^\./||;
    s|/kustomization.yaml$||' | sort | tr '\n' ' ')
is "$found" "$(printf '%s\n' $VARIANTS | sort | tr '\n' ' ')" \
    "every kustomization under deploy/k8s is rendered and checked here"

# render DIR: kubectl kustomize, into $T/NAME.yaml; then $T/NAME.json,
# the objects as a JSON array (PyYAML), for the checks.
name_of() {
	echo "$1" | tr / -
}
if "$PY3" -c 'import yaml' 2>/dev/null; then
	TOJSON=yes
else
	TOJSON=
fi
for v in $VARIANTS; do
	n=$(name_of "$v")
	rc=0
	"$KUBECTL" kustomize "$K8S/$v" >"$T/$n.yaml" 2>"$T/$n.err" || rc=$?
	ok $rc "kubectl kustomize deploy/k8s/$v"
	[ $rc -eq 0 ] || diag "$(cat "$T/$n.err")"
	[ -n "$TOJSON" ] && "$PY3" -c 'import json, sys, yaml
json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)' \
	    <"$T/$n.yaml" >"$T/$n.json"
done

# --- yamllint ------------------------------------------------------------

if command -v yamllint >/dev/null; then
	run_ok "yamllint --strict: every YAML file under deploy/" \
	    yamllint --strict -c "$top_srcdir/deploy/.yamllint" \
	    "$top_srcdir/deploy"
	[ -s "$T/out" ] && diag "$(cat "$T/out")"
	# The same configuration rejects what it is there to reject.
	mkdir "$T/bad"
	sed 's/defaultMode: 288 .*/defaultMode: 0440/;
	    s/^  replicas: 2$/  replicas: 2\n  replicas: 3/' \
	    "$K8S/base/deployment.yaml" >"$T/bad/deployment.yaml"
	rc=0
	yamllint --strict -c "$top_srcdir/deploy/.yamllint" "$T/bad" \
	    >"$T/lint" 2>&1 || rc=$?
	[ $rc -ne 0 ] && grep -q 'octal' "$T/lint" &&
	    grep -q 'duplication of key "replicas"' "$T/lint"
	ok $? "yamllint rejects an implicit octal mode and a duplicated key"
else
	echo "ok $((tap_n + 1)) # SKIP no yamllint (Debian: yamllint," \
	    "which ./dev installs)"
	echo "ok $((tap_n + 2)) # SKIP no yamllint"
	tap_n=$((tap_n + 2))
fi

# --- The Kubernetes schemas ------------------------------------------------

# The validator's packages, from tests/k8s/package-lock.json, installed
# into the build tree (never the source tree) when the lock changed.
install_validator() {
	command -v node >/dev/null && command -v npm >/dev/null || {
		SKIP_SCHEMA="no node and npm (Debian: nodejs npm)"
		return
	}
	mkdir -p "$VDIR"
	if ! cmp -s "$top_srcdir/tests/k8s/package-lock.json" \
	    "$VDIR/package-lock.json" ||
	    [ ! -f "$VDIR/node_modules/kubernetes-models/package.json" ]; then
		cp "$top_srcdir/tests/k8s/package.json" \
		    "$top_srcdir/tests/k8s/package-lock.json" "$VDIR/"
		chmod u+w "$VDIR/package.json" "$VDIR/package-lock.json"
		rc=0
		(cd "$VDIR" && npm ci --no-audit --no-fund \
		    --loglevel=error) >"$T/npm.log" 2>&1 || rc=$?
		if [ $rc -ne 0 ]; then
			rm -f "$VDIR/package-lock.json"
			# No way to the registry: nothing to install from.
			# Any other failure is one.
			if grep -Eq 'E(NOTFOUND|CONNREFUSED|CONNRESET|TIMEDOUT|AI_AGAIN|NETUNREACH|HOSTUNREACH)' \
			    "$T/npm.log"; then
				SKIP_SCHEMA="npm cannot reach its registry"
			else
				SKIP_SCHEMA="npm ci failed"
				ok 1 "npm ci installs tests/k8s/package-lock.json"
			fi
			diag "$(tail -n 20 "$T/npm.log")"
			return
		fi
	fi
	SKIP_SCHEMA=
}
install_validator
validate() {
	node "$top_srcdir/tests/k8s/validate.mjs" --modules \
	    "$VDIR/node_modules" "$@"
}
if [ -z "$SKIP_SCHEMA" ]; then
	diag "node $(node --version), kubernetes-models $(jq -r .version \
	    "$VDIR/node_modules/kubernetes-models/package.json")"
	for v in $VARIANTS; do
		n=$(name_of "$v")
		run_ok "deploy/k8s/$v: every object valid against the schemas" \
		    validate "$T/$n.yaml"
		grep -v '^ok ' "$T/out" | head -n 20 | while IFS= read -r l; do
			diag "$l"
		done
		# An empty rendering would pass vacuously.
		[ "$(grep -c '^ok ' "$T/out")" -gt 0 ]
		ok $? "deploy/k8s/$v: $(grep -c '^ok ' "$T/out") object(s)" \
		    "checked"
	done
	# The validator rejects what a cluster would reject: a wrong type,
	# and (strictly) a field the schema does not name.
	sed 's/^  replicas: 2$/  replicas: two/' "$T/overlays-rwx.yaml" \
	    >"$T/bad-type.yaml"
	rc=0
	validate "$T/bad-type.yaml" >"$T/v" 2>&1 || rc=$?
	[ $rc -eq 1 ] && grep -q \
	    '^invalid Deployment/gpt2-server: /spec/replicas must be of type integer' \
	    "$T/v"
	ok $? "the validator rejects a Deployment whose replicas is a string"
	[ $rc -eq 1 ] || diag "exit $rc" "$(cat "$T/v")"
	sed 's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/' \
	    "$T/overlays-rwx.yaml" >"$T/bad-field.yaml"
	rc=0
	validate "$T/bad-field.yaml" >"$T/v" 2>&1 || rc=$?
	[ $rc -eq 1 ] && grep -q \
	    'securityContext/readOnlyRootFileSystem is not a field' "$T/v"
	ok $? "the validator rejects a misspelt field (readOnlyRootFileSystem)"
	[ $rc -eq 1 ] || diag "exit $rc" "$(cat "$T/v")"
	printf 'apiVersion: v1\nkind: Frobnicator\nmetadata: {name: x}\n' \
	    >"$T/bad-kind.yaml"
	rc=0
	validate "$T/bad-kind.yaml" >"$T/v" 2>&1 || rc=$?
	[ $rc -eq 2 ] && grep -q 'no schema for v1 Frobnicator' "$T/v"
	ok $? "the validator refuses a kind it has no schema for"
else
	for v in $VARIANTS; do
		echo "ok $((tap_n + 1)) # SKIP schemas of deploy/k8s/$v:" \
		    "$SKIP_SCHEMA"
		tap_n=$((tap_n + 1))
	done
fi

# --- The properties -------------------------------------------------------

if [ -z "$TOJSON" ]; then
	echo "ok $((tap_n + 1)) # SKIP the property checks: $PY3 has no" \
	    "yaml module (Debian: python3-yaml)"
	tap_n=$((tap_n + 1))
	done_testing
fi

# prop VARIANT CHECK DESCRIPTION: the check of checks.jq holds.
prop() {
	$CHECKS "include \"checks\"; $2" "$T/$(name_of "$1").json" \
	    >/dev/null 2>"$T/jq.err"
	ok $? "$1: $3"
	[ -s "$T/jq.err" ] && diag "$(cat "$T/jq.err")"
}

for v in overlays/rwx overlays/node-local; do
	prop $v native_sidecar \
	    "modelcached is a native sidecar (init container, restartPolicy Always)"
	prop $v startup_probe \
	    "its startupProbe runs modelcache status --ready, for up to 1 h"
	prop $v server_preloaded \
	    "gpt2-server runs under modelcache-preload --model \$(MODEL)"
	prop $v lease_kept \
	    "which takes the lease again after a sidecar restart (--keep-lease)"
	prop $v model_declared "MODEL is one of MODELCACHE_MODELS"
	prop $v sidecar_configured \
	    "modelcached takes models and quota from the ConfigMap"
	prop $v socket_shared \
	    "the socket is in the emptyDir that both containers mount"
	prop $v store_mounts \
	    "the store: read-write in modelcached, read-only in gpt2-server"
	prop $v token_in_secret \
	    "HF_TOKEN_PATH is a file of the optional Secret, daemon only"
	prop $v server_probes "gpt2-server's probes ask /healthz on its port"
	prop $v page_cache_budget \
	    "gpt2-server's memory limit holds the page cache it warms"
	prop $v rollout_keeps_capacity "a rollout never removes a pod first"
	prop $v service_matches "the Service selects the pods, on their port"
done
prop overlays/rwx store_rwx "the store is a ReadWriteMany claim"
prop overlays/node-local store_node_local \
    "the store is the node's /var/lib/modelcache, no claim"
prop overlays/node-local prepare_is_minimal \
    "the preparing DaemonSet adds only CHOWN and FOWNER"
for v in overlays/rwx overlays/node-local overlays/podman overlays/podman-2 \
    prepull; do
	prop $v restricted \
	    "non-root, read-only root, no escalation, capabilities dropped"
	prop $v resources_set "every container has requests and limits"
	prop $v configmap_refs_resolve \
	    "every ConfigMap named is rendered with it (hashed name)"
	prop $v images_pinned "images are the project's, with a tag"
done
for v in overlays/podman overlays/podman-2; do
	prop $v no_init_containers "no init container (podman 4.3)"
	prop $v no_probes "no probe on any container (podman 4.3)"
	prop $v podman_pod \
	    "one pod, restartPolicy OnFailure, host network, both containers"
	prop $v pull_never "images never pulled"
	prop $v no_var_refs "no \$(VAR) left in command or args"
	prop $v lease_kept "modelcache-preload --keep-lease"
	prop $v podman_server_args \
	    "--model is MODEL, the server on the loopback"
	prop $v model_declared "MODEL is one of MODELCACHE_MODELS"
	prop $v no_secrets "no Secret volume"
	prop $v store_named_volume \
	    "the store is the named volume modelcache-store, no claim"
	prop $v socket_shared \
	    "the socket is in the emptyDir that both containers mount"
	prop $v store_mounts \
	    "the store: read-write in modelcached, read-only in gpt2-server"
done
prop overlays/podman/store podman_store \
    "the claim alone, owned by uid and gid 65532"
prop prepull prepull_job \
    "the Job pulls into modelcache-store with the ConfigMap and the token"

# The moved sidecar is the base's, less what podman 4.3 cannot take.
jq -S '[.[] | select(.kind == "Deployment")][0].spec.template.spec |
    .initContainers[0] | del(.restartPolicy, .startupProbe, .livenessProbe,
    .imagePullPolicy, .envFrom) | .volumeMounts |= map(select(.name !=
    "hf-token"))' "$T/overlays-rwx.json" >"$T/sidecar.rwx"
jq -S '[.[] | select(.kind == "Deployment")][0].spec.template.spec |
    .containers[] | select(.name == "modelcached") | del(.imagePullPolicy,
    .envFrom)' "$T/overlays-podman.json" >"$T/sidecar.podman"
cmp -s "$T/sidecar.rwx" "$T/sidecar.podman"
ok $? "podman: modelcached is the base's sidecar, as a regular container"

# The second podman pod differs where podman needs it to, shares the store.
a=$(jq -c '[.[] | select(.kind == "Deployment")][0] | [.metadata.name,
    (.spec.template.spec.volumes[] | select(.emptyDir) | .name),
    (.spec.template.spec.volumes[] | select(.name == "store") |
    .persistentVolumeClaim.claimName)]' "$T/overlays-podman.json")
b=$(jq -c '[.[] | select(.kind == "Deployment")][0] | [.metadata.name,
    (.spec.template.spec.volumes[] | select(.emptyDir) | .name),
    (.spec.template.spec.volumes[] | select(.name == "store") |
    .persistentVolumeClaim.claimName)]' "$T/overlays-podman-2.json")
is "$a $b" '["gpt2-server","modelcache-run","modelcache-store"]'\
' ["gpt2-server-2","modelcache-run-2","modelcache-store"]' \
    "podman-2: another Deployment and emptyDir, the same store"

# The Job and the Deployment share one configuration: the same ConfigMap,
# its hashed name included.
is "$(jq -c '[.[] | select(.kind == "ConfigMap")]' "$T/prepull.json")" \
    "$(jq -c '[.[] | select(.kind == "ConfigMap")]' "$T/overlays-rwx.json")" \
    "the Job's ConfigMap is the Deployment's, hashed name and all"

# The podman documents: the origin's placeholder once, which sed
# replaces (deploy/README.md), or a kustomization over the overlay.
for v in overlays/podman overlays/podman-2; do
	n=$(name_of $v)
	is "$(grep -c 'http://127\.0\.0\.1:9$' "$T/$n.yaml")" 1 \
	    "$v: the HF_ENDPOINT placeholder, once"
done
# (kustomize takes a base by a relative path only.)
mkdir "$T/wrap"
cat >"$T/wrap/kustomization.yaml" <<EOF
bases:
  - $(realpath --relative-to="$T/wrap" "$K8S/overlays/podman")
configMapGenerator:
  - name: modelcache-config
    behavior: merge
    literals:
      - HF_ENDPOINT=http://127.0.0.1:41234
EOF
rc=0
"$KUBECTL" kustomize "$T/wrap" >"$T/wrap.yaml" 2>"$T/wrap.err" || rc=$?
"$PY3" -c 'import json, sys, yaml
json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)' \
    <"$T/wrap.yaml" >"$T/wrap.json" 2>/dev/null
[ $rc -eq 0 ] && jq -e '[.[] | select(.kind == "ConfigMap")] | length == 1
    and .[0].data.HF_ENDPOINT == "http://127.0.0.1:41234" and
    .[0].data.MODEL == "demo/gpt2-tiny"' "$T/wrap.json" >/dev/null &&
    $CHECKS 'include "checks"; configmap_refs_resolve' "$T/wrap.json" \
    >/dev/null
ok $? "a kustomization over overlays/podman sets HF_ENDPOINT"
[ $rc -eq 0 ] || diag "$(cat "$T/wrap.err")"

# deploy/README.md's overlay of its own ("Deploying on a cluster"), as it
# stands there, over overlays/rwx: it renders, it is valid, and it names
# the storage class, the registry and the model it says.
mkdir "$T/my-cluster"
for f in kustomization store-class; do
	awk -v f="# my-cluster/$f.yaml" '
	    /^```/ { if (on) exit; next }
	    $0 == f { on = 1 }
	    on { print }' "$top_srcdir/deploy/README.md" \
	    >"$T/my-cluster/$f.yaml"
done
sed -i "s|\.\./deploy/k8s/overlays/rwx|$(realpath \
    --relative-to="$T/my-cluster" "$K8S/overlays/rwx")|" \
    "$T/my-cluster/kustomization.yaml"
rc=0
"$KUBECTL" kustomize "$T/my-cluster" >"$T/my.yaml" 2>"$T/my.err" || rc=$?
"$PY3" -c 'import json, sys, yaml
json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)' \
    <"$T/my.yaml" >"$T/my.json" 2>/dev/null
[ $rc -eq 0 ] && jq -e '
    ([.[] | select(.kind == "PersistentVolumeClaim")][0].spec |
    .storageClassName == "efs-sc" and .accessModes == ["ReadWriteMany"])
    and ([.[] | select(.kind == "Deployment")][0].metadata.namespace ==
    "llm") and ([.[] | select(.kind == "Deployment")][0].spec.template.spec
    | [.initContainers[], .containers[] | .image] | all(startswith(
    "registry.example.com/modelcache/")))' "$T/my.json" >/dev/null &&
    $CHECKS 'include "checks"; native_sidecar and store_rwx and
    model_declared and configmap_refs_resolve' "$T/my.json" >/dev/null &&
    { [ -n "$SKIP_SCHEMA" ] || validate "$T/my.yaml" >"$T/v" 2>&1; }
ok $? "deploy/README.md's own overlay renders, valid, as it says"
[ $rc -eq 0 ] || diag "$(cat "$T/my.err")"

# --- The programs accept what the manifests give them -----------------------

# sidecar_env JSON: the daemon's environment, NAME=VALUE lines: the
# ConfigMap's data, then its own env (which Kubernetes applies after).
sidecar_env() {
	jq -r '([.[] | select(.kind == "ConfigMap")][0].data | to_entries[] |
	    "\(.key)=\(.value)"), ([.[] | select(.kind == "Deployment")][0] |
	    .spec.template.spec | ((.initContainers // []) + .containers)[] |
	    select(.name == "modelcached") | .env[] | "\(.name)=\(.value)")' "$1"
}
for v in overlays/rwx overlays/node-local overlays/podman; do
	n=$(name_of $v)
	sidecar_env "$T/$n.json" >"$T/$n.env"
	cmd=$(jq -r '[.[] | select(.kind == "Deployment")][0] |
	    .spec.template.spec | ((.initContainers // []) + .containers)[] |
	    select(.name == "modelcached") | (.command + (.args // [])) |
	    join(" ")' "$T/$n.json")
	want=$(jq -r '[.[] | select(.kind == "ConfigMap")][0].data.MODELCACHE_MODELS' \
	    "$T/$n.json" | tr ', ' '\n\n' | grep -c .)
	set --
	while IFS= read -r kv; do
		set -- "$@" "$kv"
	done <"$T/$n.env"
	rc=0
	env -i MODELCACHE_CONFIG=/dev/null "$@" "$MCD" -n >"$T/n.out" \
	    2>&1 || rc=$?
	[ "$cmd" = modelcached ] && [ $rc -eq 0 ] &&
	    grep -q "^configuration ok: store '/models', socket '/run/modelcache/modelcache.sock', $want declared model(s)$" \
	    "$T/n.out"
	ok $? "$v: modelcached -n accepts the sidecar's configuration"
	[ $rc -eq 0 ] || diag "$(cat "$T/n.out")"
done

# The Job's script, with a modelcache that prints its arguments: one
# pull of every model, whatever separates them.
mkdir "$T/stub"
printf '#!/bin/sh\nprintf "%%s\\n" "$@"\n' >"$T/stub/modelcache"
chmod +x "$T/stub/modelcache"
script=$(jq -r '[.[] | select(.kind == "Job")][0].spec.template.spec |
    .containers[0] | select(.command == ["/bin/sh", "-c"]) | .args[0]' \
    "$T/prepull.json")
got=$(env -i PATH="$T/stub:/usr/bin:/bin" \
    MODELCACHE_MODELS='hf://a/b@main, c/d,e/f@v1  g/*' sh -c "$script" \
    2>/dev/null | tr '\n' ' ')
is "$got" "modelcache pull hf://a/b@main c/d e/f@v1 g/* pull hf://a/b@main c/d e/f@v1 g/* " \
    "the Job's script pulls every model of MODELCACHE_MODELS"

# --- The checks fail on broken manifests -----------------------------------

# A store mounted read-write in the server, a sidecar made a regular
# container, a probe left in the podman pod: each check notices.
jq '[.[] | if .kind == "Deployment" then
    .spec.template.spec.containers[0].volumeMounts[0].readOnly = false
    else . end]' "$T/overlays-rwx.json" >"$T/broken-ro.json"
jq '[.[] | if .kind == "Deployment" then .spec.template.spec |=
    (.containers = .initContainers + .containers | del(.initContainers))
    else . end]' "$T/overlays-rwx.json" >"$T/broken-sidecar.json"
jq '[.[] | if .kind == "Deployment" then
    .spec.template.spec.containers[0].livenessProbe = {"exec":
    {"command": ["true"]}} else . end]' "$T/overlays-podman.json" \
    >"$T/broken-probe.json"
jq '[.[] | if .kind == "Deployment" then
    .spec.template.spec.containers[0].args -= ["--keep-lease"]
    else . end]' "$T/overlays-rwx.json" >"$T/broken-keep.json"
fails=
for c in "broken-ro store_mounts" "broken-sidecar native_sidecar" \
    "broken-probe no_probes" "broken-keep lease_kept"; do
	if $CHECKS "include \"checks\"; ${c#* }" "$T/${c%% *}.json" \
	    >/dev/null 2>&1; then
		fails="$fails ${c#* }"
	fi
done
is "${fails:-none}" none \
    "the checks fail on a read-write store, a plain sidecar, a probe, no --keep-lease"

done_testing
