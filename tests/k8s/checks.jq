# checks.jq: what tests/integration/t0602-deploy-manifests.sh asserts of
# the rendered manifests of deploy/k8s.  Each check takes the array of a
# rendering's objects (kubectl kustomize's documents, in order) and
# yields true or false:
#
#   jq -e -L tests/k8s 'include "checks"; CHECK' OBJECTS.json

# --- Finding things ---------------------------------------------------

def objects($kind): .[] | select(.kind == $kind);
def deployment: objects("Deployment");
def configmap: objects("ConfigMap");
# Every pod template: Deployments, Jobs, DaemonSets.
def podspecs: .[] | select(.kind == "Deployment" or .kind == "Job" or
    .kind == "DaemonSet") | .spec.template.spec;
def all_containers: (.initContainers // []) + (.containers // []);
def named($n): select(.name == $n);
def env($n): [(.env // [])[] | named($n) | .value][0];
def mount($n): [(.volumeMounts // [])[] | named($n)][0];
def sidecar_in($p): [$p | all_containers[] | named("modelcached")][0];
def server_in($p): [$p.containers[] | named("gpt2-server")][0];
# The first Deployment's pod spec, its daemon and its server.
def pod: [deployment][0].spec.template.spec;
def sidecar: pod as $p | sidecar_in($p);
def server: pod as $p | server_in($p);
def volume($n): [pod.volumes[] | named($n)][0];
# MODELCACHE_MODELS, split as modelcache.conf(5) says.
def models: [configmap][0].data.MODELCACHE_MODELS |
    [splits("[, \t]+") | select(. != "")];
# The value that follows FLAG in an argument list.
def flag($f): . as $a | [range(0; length - 1) | select($a[.] == $f) |
    $a[. + 1]][0];
# A resource quantity in bytes (or cores).
def qty: tostring | capture("^(?<n>[0-9.]+)(?<u>[a-zA-Z]*)$") |
    (.n | tonumber) * ({"": 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9,
    "T": 1e12, "Ki": 1024, "Mi": 1048576, "Gi": 1073741824,
    "Ti": 1099511627776}[.u]);
def every(f): [f] | length > 0 and all;

# --- Every variant ----------------------------------------------------

# The restricted Pod Security Standard, container by container, for
# every pod template but the node-local overlay's preparation DaemonSet
# (checked by prepare_is_minimal).
def restricted_container($p):
    (.securityContext // {}) as $s | ($p.securityContext // {}) as $ps |
    ($s.runAsNonRoot // $ps.runAsNonRoot) == true and
    ($s.runAsUser // $ps.runAsUser // 0) > 0 and
    ($s.allowPrivilegeEscalation == false) and
    ($s.readOnlyRootFilesystem == true) and
    (($s.privileged // false) == false) and
    ($s.capabilities.drop == ["ALL"]) and
    (($s.capabilities.add // []) == []);
def restricted:
    every(.[] | select(.kind == "Deployment" or .kind == "Job") |
        .spec.template.spec as $p |
        ($p.securityContext.seccompProfile.type == "RuntimeDefault") and
        ($p.hostPID // false) == false and ($p.hostIPC // false) == false
        and every($p | all_containers[] | restricted_container($p)));

# Every container asks for CPU and memory and is limited in both.
def resources_set:
    every(podspecs | all_containers[] | .resources |
        (.requests.cpu and .requests.memory and .limits.cpu and
        .limits.memory) and
        (.limits.memory | qty) >= (.requests.memory | qty));

# Every ConfigMap that a pod names is one of this rendering's (its
# generated name, hash included).
def configmap_refs_resolve:
    [configmap.metadata.name] as $names |
    every(podspecs | all_containers[] |
        ((.envFrom // [])[] | .configMapRef.name | select(. != null)),
        ((.env // [])[] | .valueFrom.configMapKeyRef.name |
        select(. != null)) | IN($names[]));

# The images: the project's two, each with a tag.
def images_pinned:
    every(podspecs | all_containers[] | .image |
        test("^modelcache/(modelcached|gpt2-server):[0-9A-Za-z._-]+$") and
        (endswith(":latest") | not));

# --- The Kubernetes variants (rwx, node-local) -------------------------

# modelcached is a native sidecar: the only init container, restartPolicy
# Always, whose startup probe is `modelcache status --ready` with room
# for a long pull; the server is a regular container after it.
def native_sidecar:
    (pod.initContainers | length) == 1 and
    pod.initContainers[0].name == "modelcached" and
    pod.initContainers[0].restartPolicy == "Always" and
    ([pod.containers[] | named("modelcached")] | length) == 0 and
    server != null;
def startup_probe:
    sidecar.startupProbe.exec.command == ["modelcache", "status", "--ready"]
    and (sidecar.startupProbe | .periodSeconds * .failureThreshold) >= 1800
    and sidecar.startupProbe.timeoutSeconds > 10;
# The server's probes ask gpt2-server's /healthz on a port it names.
def server_probes:
    [server.ports[].name] as $ports |
    every(server | .startupProbe, .readinessProbe, .livenessProbe |
        .httpGet.path == "/healthz" and (.httpGet.port | IN($ports[])));
# The server runs under modelcache-preload, on MODEL of the ConfigMap.
def server_preloaded:
    server.command == ["modelcache-preload"] and
    (server.args | flag("--model")) == "$(MODEL)" and
    (server.args | index(["--"])) != null and
    (server | [.env[] | named("MODEL")][0].valueFrom.configMapKeyRef) ==
        {"name": [configmap][0].metadata.name, "key": "MODEL"};
# ... and has it take its lease again when the sidecar restarts: the
# option before the command's "--".
def lease_kept:
    server.args | index(["--keep-lease"]) as $k |
    $k != null and $k < index(["--"]);
# The model the server asks for is one the daemon keeps: the startup
# probe waits for it.
def model_declared: models as $m | [configmap][0].data.MODEL | IN($m[]);
# The daemon reads the ConfigMap (models, quota).
def sidecar_configured:
    (sidecar.envFrom | map(.configMapRef.name)) ==
        [[configmap][0].metadata.name] and
    ([configmap][0].data | has("MODELCACHE_MODELS") and
        has("MODELCACHE_MAX_SIZE")) and
    (models | length) > 0;
# The socket: the pod's one emptyDir, which both containers mount where
# MODELCACHE_SOCKET points.
def socket_shared:
    [pod.volumes[] | select(.emptyDir)] as $e |
    ($e | length) == 1 and $e[0].name as $v |
    every(sidecar, server |
        mount($v).mountPath as $d | env("MODELCACHE_SOCKET") as $s |
        ($s | startswith($d + "/")) and
        ($s | ltrimstr($d + "/") | contains("/") | not));
# The store: read-write in the daemon, read-only in the server, each at
# its MODELCACHE_STORE.
def store_mounts:
    (sidecar | mount("store") | .readOnly // false) == false and
    (server | mount("store") | .readOnly) == true and
    every(sidecar, server | env("MODELCACHE_STORE") == mount("store").mountPath);
# The token: a Secret's file, mounted read-only in the daemon only,
# where HF_TOKEN_PATH points; optional, so that public models need none.
def token_file($p; $c):
    [$p.volumes[] | select(.secret)][0] as $v |
    ($c | mount($v.name)) as $m |
    $v.secret.optional == true and $m.readOnly == true and
    ($c | env("HF_TOKEN_PATH")) as $path |
    any($v.secret.items[]; .key == "token" and
        $path == $m.mountPath + "/" + .path);
def token_in_secret:
    pod as $p | token_file($p; sidecar) and
    (server | ([.volumeMounts[].name] | index(["hf-token"])) == null and
        env("HF_TOKEN_PATH") == null and env("HF_TOKEN") == null);
# The page cache: the server's memory limit holds the warmed model, far
# above the daemon's.
def page_cache_budget:
    (server.resources.limits.memory | qty) >=
        4 * (sidecar.resources.limits.memory | qty) and
    (server.resources.limits.memory | qty) >= 4 * 1073741824;
# A rollout adds a pod before it removes one.
def rollout_keeps_capacity:
    [deployment][0].spec.strategy.rollingUpdate.maxUnavailable == 0;
# The Service reaches the server's port, on the pods' labels.
def service_matches:
    [objects("Service")][0] as $s | [deployment][0] as $d |
    [server.ports[].name] as $ports |
    ($s.spec.selector | to_entries | all(.value ==
        $d.spec.template.metadata.labels[.key])) and
    ($s.spec.ports[0].targetPort | IN($ports[]));

# rwx: the store is a ReadWriteMany claim of this rendering.
def store_rwx:
    [objects("PersistentVolumeClaim")] as $pvcs |
    ($pvcs | length) == 1 and
    volume("store").persistentVolumeClaim.claimName ==
        $pvcs[0].metadata.name and
    ($pvcs[0].spec.accessModes | index(["ReadWriteMany"])) != null;
# node-local: the store is a directory of the node, no claim at all.
def store_node_local:
    volume("store").hostPath.path == "/var/lib/modelcache" and
    volume("store").hostPath.type == "Directory" and
    volume("store").persistentVolumeClaim == null and
    ([objects("PersistentVolumeClaim")] | length) == 0;
# Its DaemonSet: root, but chown and fowner only, on that one directory.
def prepare_is_minimal:
    [objects("DaemonSet")][0].spec.template.spec as $p |
    ($p.containers | length) == 1 and
    ($p.containers[0].securityContext | .allowPrivilegeEscalation == false
        and .readOnlyRootFilesystem == true and .capabilities.drop ==
        ["ALL"] and (.capabilities.add | sort) == ["CHOWN", "FOWNER"]) and
    ($p.volumes | length) == 1 and
    $p.volumes[0].hostPath.path == volume("store").hostPath.path;

# --- The podman variant --------------------------------------------------

def no_init_containers: every(podspecs | (.initContainers // []) | length == 0);
def no_probes:
    every(podspecs | all_containers[] |
        (.startupProbe == null and .readinessProbe == null and
        .livenessProbe == null));
def podman_pod:
    ([deployment][0].spec.replicas // 1) == 1 and
    (pod.restartPolicy | IN("OnFailure", "Never")) and
    pod.hostNetwork == true and
    sidecar != null and server != null;
def pull_never:
    every(podspecs | all_containers[] | .imagePullPolicy |
        IN("Never", "IfNotPresent"));
# podman expands no $(VAR): none is left to expand.
def no_var_refs:
    every(podspecs | all_containers[] | (.command // []) + (.args // []) |
        .[] | contains("$(") | not);
def podman_server_args:
    (server.args | flag("--model")) == [configmap][0].data.MODEL and
    (server.args | flag("--listen") | startswith("127.0.0.1:"));
def no_secrets:
    every(podspecs | .volumes[] | .secret == null) and
    ([objects("Secret")] | length) == 0;
def store_named_volume:
    volume("store").persistentVolumeClaim.claimName == "modelcache-store"
    and ([objects("PersistentVolumeClaim")] | length) == 0;
# The podman store's document: the claim, owned by the pods' user.
def podman_store:
    length == 1 and .[0].kind == "PersistentVolumeClaim" and
    .[0].metadata.name == "modelcache-store" and
    .[0].metadata.annotations["volume.podman.io/uid"] == "65532" and
    .[0].metadata.annotations["volume.podman.io/gid"] == "65532";

# --- The pre-pull Job -------------------------------------------------------

def job: [objects("Job")][0];
def job_pod: job.spec.template.spec;
def prepull_job:
    job_pod as $p | job_pod.containers[0] as $c |
    ($p.restartPolicy == "Never") and
    ($c.envFrom | map(.configMapRef.name)) ==
        [[configmap][0].metadata.name] and
    ($c | mount("store") | .readOnly // false) == false and
    ($c | env("MODELCACHE_STORE")) == ($c | mount("store").mountPath) and
    ([$p.volumes[] | named("store")][0].persistentVolumeClaim.claimName ==
        "modelcache-store") and
    token_file($p; $c) and
    (job.spec.podFailurePolicy.rules | any(.action == "FailJob" and
        (.onExitCodes.values | sort) == [2, 3, 4, 5]));
