#!/bin/bash
# selftest.sh: exercise tests/origin/hf_origin.py with curl; prints TAP.
# Needs python3, curl, cmp, sha256sum, git (hash-object), openssl (TLS part,
# skipped without it).  KEEP=1 keeps the temporary directory.

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ORIGIN="$HERE/hf_origin.py"
T=$(mktemp -d "${TMPDIR:-/tmp}/hf-origin-test.XXXXXX")
n=0 failed=0 PIDS=""

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	[ -n "${KEEP:-}" ] && { echo "# kept $T"; return; }
	rm -rf "$T"
}
trap cleanup EXIT

ok() {	# ok STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else
		echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
is() {	# is GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then ok 0 "$3"; else
		ok 1 "$3"; echo "#   got:  '$1'"; echo "#   want: '$2'"; fi
}
js() {	# js FILE PYEXPR: print PYEXPR with d = the JSON in FILE
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if isinstance(r,str) else json.dumps(r))' "$1" "$2"
}
hdr() {	# hdr FILE NAME: value of header NAME (last one) in a curl -D dump
	tr -d '\r' <"$1" | awk -v h="$(echo "$2" | tr A-Z a-z)" \
		'BEGIN{FS=": "} tolower($1)==h {sub(/^[^:]*: /,""); v=$0} END{print v}'
}
code() { head -1 "$1" | tr -d '\r' | awk '{print $2}'; }

# start NAME ARGS...: start an origin; sets PORT, PID, LOG
start() {
	name=$1; shift
	rm -f "$T/$name.port"
	python3 "$ORIGIN" --port-file "$T/$name.port" "$@" 2>"$T/$name.log" &
	PID=$!; PIDS="$PIDS $PID"; LOG="$T/$name.log"
	for _ in $(seq 100); do [ -s "$T/$name.port" ] && break; sleep 0.05; done
	PORT=$(cat "$T/$name.port" 2>/dev/null)
	B="http://127.0.0.1:$PORT"
}
stop() {	# stop: SIGTERM the current origin, check it exits 0
	kill -TERM "$PID"; wait "$PID"; rc=$?
	is "$rc" 0 "origin exits 0 on SIGTERM"
}

C="curl -s -S --max-time 30"

# ---- fixture -------------------------------------------------------------
R="$T/repo"
mkdir -p "$R/sub/deep" "$R/a b" "$T/ds/data"
printf '{"model_type":"x"}\n' >"$R/config.json"
printf 'Hello, World!' >"$R/sub/hello.txt"
echo deep >"$R/sub/deep/x.txt"
echo '{}' >"$R/a b/c#1.json"
head -c 4096 /dev/urandom >"$R/model.safetensors"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$R/big.dat"
echo "a,b" >"$T/ds/data/train.csv"
BIGSHA=$(sha256sum <"$R/big.dat" | cut -c1-64)
SMALLSHA=$(sha256sum <"$R/model.safetensors" | cut -c1-64)
BIGN=12582912
WANTCOMMIT=$(cd "$R" && find . -type f | sed 's|^\./||' | LC_ALL=C sort |
	while IFS= read -r p; do
		printf '%s %s %s\n' "$p" "$(stat -c %s "$p")" \
			"$(sha256sum <"$p" | cut -c1-64)"
	done | sha1sum | cut -c1-40)

start main --repo org/m="$R" --dataset org/d="$T/ds" --tag v1=main \
	--page-size 2
ok "$([ -n "$PORT" ]; echo $?)" "port file written ($PORT)"

# ---- revision ------------------------------------------------------------
$C -D "$T/h" -o "$T/b" "$B/api/models/org/m/revision/main"
is "$(code "$T/h")" 200 "revision main: 200"
is "$(js "$T/b" 'd["sha"]')" "$WANTCOMMIT" "commit = sha1 of sorted 'path size sha256' lines"
is "$(js "$T/b" '[d["id"],d["private"],d["gated"],d["disabled"]]')" \
	'["org/m", false, false, false]' "revision: id/private/gated/disabled"
is "$(js "$T/b" 'sorted(s["rfilename"] for s in d["siblings"])')" \
	'["a b/c#1.json", "big.dat", "config.json", "model.safetensors", "sub/deep/x.txt", "sub/hello.txt"]' \
	"revision: siblings"
COMMIT=$WANTCOMMIT
$C -o "$T/b" "$B/api/models/org/m/revision/v1"
is "$(js "$T/b" 'd["sha"]')" "$COMMIT" "tag v1 resolves to the same commit"
$C -o "$T/b" "$B/api/models/org/m/revision/$COMMIT"
is "$(js "$T/b" 'd["sha"]')" "$COMMIT" "full commit resolves to itself"
$C -D "$T/h" -o "$T/b" "$B/api/models/org/m/revision/refs%2Fpr%2F1"
is "$(code "$T/h"):$(hdr "$T/h" X-Error-Code):$(hdr "$T/h" X-Error-Message)" \
	"404:RevisionNotFound:Invalid rev id: refs/pr/1" "unknown rev: 404 RevisionNotFound"
$C -D "$T/h" -o "$T/b" "$B/api/models/org/nope/revision/main"
is "$(code "$T/h"):$(hdr "$T/h" X-Error-Code)" "401:RepoNotFound" "unknown repo: 401 RepoNotFound"
case "$(hdr "$T/h" X-Error-Message)" in
"Repository Not Found for url: $B/api/models/org/nope/revision/main"*) ok 0 "RepoNotFound message" ;;
*) ok 1 "RepoNotFound message: $(hdr "$T/h" X-Error-Message)" ;; esac
is "$(js "$T/b" 'list(d)')" '["error"]' "error body is {\"error\": ...}"

# ---- tree, paginated --------------------------------------------------------
url="$B/api/models/org/m/tree/$COMMIT?recursive=true&expand=false"
pages=0
echo '[]' >"$T/all"
while [ -n "$url" ]; do
	$C -D "$T/h" -o "$T/b" "$url" || break
	pages=$((pages + 1))
	python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); assert len(b)<=2; json.dump(a+b, open(sys.argv[1],"w"))' "$T/all" "$T/b"
	url=$(hdr "$T/h" Link | sed -n 's/^<\(.*\)>; rel="next"$/\1/p')
	[ $pages -gt 20 ] && break
done
is "$pages" 5 "tree: 9 entries in 5 pages of 2, Link followed to the end"
is "$(js "$T/all" 'sorted((e["type"],e["path"]) for e in d)')" \
	'[["directory", "a b"], ["directory", "sub"], ["directory", "sub/deep"], ["file", "a b/c#1.json"], ["file", "big.dat"], ["file", "config.json"], ["file", "model.safetensors"], ["file", "sub/deep/x.txt"], ["file", "sub/hello.txt"]]' \
	"tree: every file and directory once"
is "$(js "$T/all" '[e["oid"] for e in d if e["path"]=="sub/hello.txt"][0]')" \
	b45ef6fec89518d314f546fd6c3025367b721684 "tree: oid of a text file is its git blob sha1"
is "$(js "$T/all" '[e["oid"] for e in d if e["path"]=="sub"][0]')" \
	"$(printf sub | sha1sum | cut -c1-40)" "tree: directory oid = sha1(path)"
is "$(js "$T/all" '[e["lfs"] for e in d if e["path"]=="big.dat"][0]')" \
	"{\"oid\": \"$BIGSHA\", \"size\": $BIGN, \"pointerSize\": 133}" "tree: lfs block"
PTR=$(printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n' "$BIGSHA" $BIGN | git hash-object --stdin)
is "$(js "$T/all" '[[e["oid"],e["size"]] for e in d if e["path"]=="big.dat"][0]')" \
	"[\"$PTR\", $BIGN]" "tree: LFS oid is the pointer's git sha1, size the real size"
is "$(js "$T/all" '[len(e) for e in d if e["path"]=="config.json"][0]')" 4 \
	"tree: non-LFS file has no lfs key"
$C -D "$T/h" -o "$T/b" "$B/api/models/org/m/tree/main?recursive=true&expand=false"
case "$(hdr "$T/h" Link)" in
"<$B/api/models/org/m/tree/main?recursive=true&expand=false&cursor=2>; rel=\"next\"") ok 0 "Link header shape" ;;
*) ok 1 "Link header shape: $(hdr "$T/h" Link)" ;; esac
$C -o /dev/null -D "$T/h" -H "Host: example.test:1234" "$B/api/models/org/m/tree/main?recursive=true&expand=false"
case "$(hdr "$T/h" Link)" in "<http://example.test:1234/"*) ok 0 "Link uses the request's Host" ;;
*) ok 1 "Link uses the request's Host: $(hdr "$T/h" Link)" ;; esac
$C -o "$T/b" "$B/api/models/org/m/tree/main/sub?recursive=true&expand=false&cursor=0"
$C -o "$T/b2" "$B/api/models/org/m/tree/main/sub?recursive=true&expand=false&cursor=2"
is "$(js "$T/b" '[e["path"] for e in d]')$(js "$T/b2" '[e["path"] for e in d]')" \
	'["sub/deep", "sub/deep/x.txt"]["sub/hello.txt"]' "tree of a subfolder"

# ---- resolve -----------------------------------------------------------------
$C -I -D "$T/h" -o /dev/null "$B/org/m/resolve/main/sub/hello.txt"
is "$(code "$T/h"):$(hdr "$T/h" ETag):$(hdr "$T/h" Content-Length):$(hdr "$T/h" X-Repo-Commit)" \
	"200:\"b45ef6fec89518d314f546fd6c3025367b721684\":13:$COMMIT" "HEAD resolve text: 200, ETag, length, commit"
$C -D "$T/h" -o "$T/b" "$B/org/m/resolve/main/sub/hello.txt"
is "$(cat "$T/b")" "Hello, World!" "GET resolve text: body"
$C -D "$T/h" -o "$T/b" -H "Range: bytes=7-" "$B/org/m/resolve/main/sub/hello.txt"
is "$(code "$T/h"):$(hdr "$T/h" Content-Range):$(cat "$T/b")" "206:bytes 7-12/13:World!" "Range on resolve text"
$C -D "$T/h" -o "$T/b" "$B/org/m/resolve/v1/a%20b/c%231.json"
is "$(code "$T/h"):$(cat "$T/b")" "200:{}" "percent-encoded path, tag revision"
$C -I -D "$T/h" -o /dev/null "$B/org/m/resolve/main/big.dat"
is "$(code "$T/h"):$(hdr "$T/h" X-Linked-Etag):$(hdr "$T/h" X-Linked-Size):$(hdr "$T/h" Content-Length):$(hdr "$T/h" X-Repo-Commit)" \
	"302:\"$BIGSHA\":$BIGN:0:$COMMIT" "HEAD resolve LFS: 302 with linked etag/size"
case "$(hdr "$T/h" Location)" in
"http://localhost:$PORT/cdn/$BIGSHA?expires="*"&sig="*) ok 0 "LFS Location on the cdn host" ;;
*) ok 1 "LFS Location: $(hdr "$T/h" Location)" ;; esac
$C -D "$T/h" -o "$T/b" "$B/org/m/resolve/main/model.safetensors"
is "$(code "$T/h"):$(stat -c %s "$T/b")" "302:0" "GET resolve LFS: 302, empty body"
$C -L -o "$T/b" "$B/org/m/resolve/$COMMIT/big.dat"
is "$(sha256sum <"$T/b" | cut -c1-64)" "$BIGSHA" "GET -L resolve LFS → cdn on localhost: content ok"
$C -I -D "$T/h" -o /dev/null "$B/org/m/resolve/main/nope.txt"
is "$(code "$T/h"):$(hdr "$T/h" X-Error-Code):$(hdr "$T/h" X-Repo-Commit)" \
	"404:EntryNotFound:$COMMIT" "missing path: 404 EntryNotFound with X-Repo-Commit"
$C -I -D "$T/h" -o /dev/null "$B/org/m/resolve/nobranch/config.json"
is "$(code "$T/h"):$(hdr "$T/h" X-Error-Code)" "404:RevisionNotFound" "resolve at unknown rev"

# ---- cdn -----------------------------------------------------------------------
CDN="http://localhost:$PORT/cdn/$BIGSHA"
$C -I -D "$T/h" -o /dev/null "$CDN"
is "$(code "$T/h"):$(hdr "$T/h" Content-Length)" "200:$BIGN" "HEAD cdn"
$C -D "$T/h" -o "$T/b" -H "Range: bytes=100-199" "$CDN"
is "$(code "$T/h"):$(hdr "$T/h" Content-Range):$(hdr "$T/h" Content-Length)" \
	"206:bytes 100-199/$BIGN:100" "cdn Range A-B: 206"
cmp -s "$T/b" <(tail -c +101 "$R/big.dat" | head -c 100); ok $? "cdn Range A-B: bytes"
$C -D "$T/h" -o "$T/b" -H "Range: bytes=12582900-" "$CDN"
is "$(code "$T/h"):$(hdr "$T/h" Content-Range):$(stat -c %s "$T/b")" \
	"206:bytes 12582900-12582911/$BIGN:12" "cdn Range A-: 206"
$C -D "$T/h" -o "$T/b" -H "Range: bytes=$BIGN-" "$CDN"
is "$(code "$T/h"):$(hdr "$T/h" Content-Range)" "416:bytes */$BIGN" "cdn unsatisfiable Range: 416"
$C -D "$T/h" -o /dev/null --compressed "$CDN"
is "$(hdr "$T/h" Content-Encoding):$(hdr "$T/h" Content-Length)" ":$BIGN" "never compressed"
$C -D "$T/h" -o /dev/null "http://localhost:$PORT/cdn/$(printf %064d 0)"
is "$(code "$T/h")" 404 "unknown cdn object: 404"

# ---- datasets ------------------------------------------------------------------
$C -o "$T/b" "$B/api/datasets/org/d/revision/main"
is "$(js "$T/b" '[d["id"], [s["rfilename"] for s in d["siblings"]]]')" \
	'["org/d", ["data/train.csv"]]' "dataset revision"
$C -o "$T/b" "$B/datasets/org/d/resolve/main/data/train.csv"
is "$(cat "$T/b")" "a,b" "dataset resolve"
$C -D "$T/h" -o /dev/null "$B/api/models/org/d/revision/main"
is "$(code "$T/h")" 401 "a dataset is not a model"

# ---- keep-alive ----------------------------------------------------------------
$C -v -o /dev/null -o /dev/null -o /dev/null "$B/org/m/resolve/main/config.json" \
	"$B/org/m/resolve/main/sub/hello.txt" "$B/api/models/org/m/revision/main" 2>"$T/v"
is "$(grep -c 'Re-using existing connection' "$T/v")" 2 "keep-alive: one connection for 3 requests"

# ---- stats ---------------------------------------------------------------------
$C -X POST -o /dev/null "$B/_reset"
$C -o /dev/null "$CDN"
$C -o /dev/null -H "Range: bytes=0-999" "$CDN"
$C -o /dev/null "$B/org/m/resolve/main/sub/hello.txt"
$C -I -o /dev/null "$B/org/m/resolve/main/sub/hello.txt"
$C -o "$T/b" "$B/_stats"
is "$(js "$T/b" 'd["bytes"]')" $((BIGN + 1000 + 13)) "stats: bytes"
is "$(js "$T/b" 'd["bytes_by_sha256"]["'$BIGSHA'"]')" $((BIGN + 1000)) "stats: bytes_by_sha256"
is "$(js "$T/b" 'd["requests"]')" \
	"{\"GET /cdn/$BIGSHA\": 2, \"GET /org/m/resolve/main/sub/hello.txt\": 1, \"HEAD /org/m/resolve/main/sub/hello.txt\": 1}" \
	"stats: requests by method and path (control endpoints not counted)"

# ---- concurrency and aborted clients -------------------------------------------
part=$((BIGN / 16))
pids=""
for i in $(seq 0 15); do
	$C -o "$T/part.$i" -H "Range: bytes=$((i * part))-$((i * part + part - 1))" "$CDN" &
	pids="$pids $!"
done
for p in $pids; do wait "$p"; done
for i in $(seq 0 15); do cat "$T/part.$i"; done | sha256sum | cut -c1-64 >"$T/sum"
is "$(cat "$T/sum")" "$BIGSHA" "16 parallel ranged GETs reassemble the 12 MiB file"
pids=""
for i in $(seq 1 48); do
	$C -L -o "$T/full.$i" "$B/org/m/resolve/main/big.dat" & pids="$pids $!"
done
bad=0
for p in $pids; do wait "$p" || bad=$((bad + 1)); done
for i in $(seq 1 48); do cmp -s "$T/full.$i" "$R/big.dat" || bad=$((bad + 1)); done
rm -f "$T"/full.*
is "$bad" 0 "48 parallel resolve+redirect downloads of 12 MiB"
pids=""
for i in $(seq 1 8); do
	(curl -s -N "$CDN" 2>/dev/null | head -c 1000 >/dev/null) & pids="$pids $!"
	curl -s --limit-rate 100k --max-time 0.5 -o /dev/null "$CDN" & pids="$pids $!"
done
for p in $pids; do wait "$p"; done
sleep 0.3
$C -o "$T/b" "$B/org/m/resolve/main/sub/hello.txt"
is "$(cat "$T/b")" "Hello, World!" "server alive after 16 clients aborted mid-body"

# ---- absolute form: the origin as a forward proxy ------------------------------
# Host names under .invalid resolve nowhere: only a request sent to the
# proxy in absolute form (GET http://hub.invalid:PORT/... HTTP/1.1) reaches
# them.  --noproxy '' keeps a no_proxy in the environment out of it.
P() { curl -s -S --max-time 30 --noproxy '' -x "$B" "$@"; }
H="http://hub.invalid:$PORT"
$C -X POST -o /dev/null "$B/_reset"
P -D "$T/h" -o "$T/b" "$H/api/models/org/m/revision/main"
is "$(code "$T/h"):$(js "$T/b" 'd["sha"]')" "200:$COMMIT" \
	"absolute form: the API answers through the proxy"
# RFC 9112 3.2.2: the target's authority, not the Host header, is the host.
P -D "$T/h" -o /dev/null -H "Host: elsewhere.test" "$H/api/models/org/m/tree/main?recursive=true&expand=false"
case "$(hdr "$T/h" Link)" in "<$H/api/models/org/m/tree/main?"*"cursor=2>; rel=\"next\"") ok 0 "absolute form: Link names the target's host, not Host's" ;;
*) ok 1 "absolute form: Link names the target's host, not Host's: $(hdr "$T/h" Link)" ;; esac
P -I -D "$T/h" -o /dev/null "$H/org/m/resolve/main/big.dat"
case "$(code "$T/h"):$(hdr "$T/h" Location)" in
"302:http://localhost:$PORT/cdn/$BIGSHA?expires="*) ok 0 "absolute form: the LFS redirect still names --cdn-host" ;;
*) ok 1 "absolute form: LFS redirect $(code "$T/h") $(hdr "$T/h" Location)" ;; esac
P -L -o "$T/b" "$H/org/m/resolve/main/big.dat"
is "$(cmp -s "$T/b" "$R/big.dat"; echo $?)" 0 "absolute form: resolve and redirect through the proxy, content ok"
P -D "$T/h" -o /dev/null "$H/api/models/org/nope/revision/main"
is "$(code "$T/h"):$(hdr "$T/h" X-Error-Message)" \
	"401:Repository Not Found for url: $H/api/models/org/nope/revision/main." \
	"absolute form: error messages name the URL asked for"
$C -o /dev/null "$B/org/m/resolve/main/sub/hello.txt"
$C -o "$T/b" "$B/_stats"
is "$(js "$T/b" '[d["proxied"], d["proxied_hosts"]]')" \
	'[6, {"hub.invalid": 5, "localhost": 1}]' \
	"stats: proxied requests, per host (origin-form ones not counted)"
is "$(js "$T/b" 'sorted(k for k in d["requests"] if "://" in k)')" '[]' \
	"stats: proxied requests are counted by their path"
is "$(js "$T/b" 'd["requests"]["GET /api/models/org/m/revision/main"]')" 1 \
	"stats: ... the API call under its path"
ok "$(grep -qi traceback "$LOG"; [ $? -ne 0 ]; echo $?)" "no traceback in the log"
stop

# ---- faults ----------------------------------------------------------------------
SMALLCDN_PATH="/cdn/$SMALLSHA"
start faults --repo org/m="$R" \
	--fault "status:500@/api/*1" \
	--fault "ratelimit:7@/sub/hello.txt*1" \
	--fault "status:503@config.json*2" \
	--fault "truncate:1000@$BIGSHA*1" \
	--fault "corrupt@$BIGSHA*1" \
	--fault "norange@$BIGSHA*1" \
	--fault "badrange@$BIGSHA*1" \
	--fault "stall:2@$BIGSHA*1" \
	--fault "slow:4096@$SMALLSHA*1"
CDN="http://localhost:$PORT/cdn/$BIGSHA"
$C -D "$T/h" -o "$T/b" "$B/api/models/org/m/revision/main"
is "$(code "$T/h"):$(js "$T/b" 'list(d)')" '500:["error"]' "status:500@/api/ on an API call"
$C -D "$T/h" -o "$T/b" "$B/api/models/org/m/revision/main"
is "$(code "$T/h")" 200 "  ... *1: the next call is fine"
$C -I -D "$T/h" -o /dev/null "$B/org/m/resolve/main/sub/hello.txt"
is "$(code "$T/h"):$(hdr "$T/h" Retry-After):$(hdr "$T/h" RateLimit):$(hdr "$T/h" RateLimit-Policy)" \
	'429:7:"resolvers";r=0;t=7:"fixed window";"resolvers";q=3000;w=300' "ratelimit:7 (a HEAD, matched by @)"
$C -o /dev/null -o /dev/null -o /dev/null -w "%{http_code} " "$B/org/m/resolve/main/config.json" \
	"$B/org/m/resolve/main/config.json" "$B/org/m/resolve/main/config.json" >"$T/b"
is "$(cat "$T/b")" "503 503 200 " "status:503*2 then 200"
$C -o /dev/null -w '%{http_code}' "$B/org/m/resolve/main/big.dat" >"$T/b"
is "$(cat "$T/b")" 302 "body faults do not fire on the 302"
curl -s --max-time 10 -D "$T/h" -o "$T/b" "$CDN"; rc=$?
is "$rc:$(hdr "$T/h" Content-Length):$(stat -c %s "$T/b")" "18:$BIGN:1000" \
	"truncate:1000: full Content-Length, 1000 bytes, then close (curl 18)"
$C -o "$T/b" "$CDN"
is "$(stat -c %s "$T/b"):$(cmp -l "$T/b" "$R/big.dat" | wc -l)" "$BIGN:1" "corrupt: right length, one byte flipped"
$C -D "$T/h" -o "$T/b" -H "Range: bytes=8192-16383" "$CDN"
is "$(code "$T/h"):$(stat -c %s "$T/b")" "200:$BIGN" "norange: 200 with the full body"
$C -D "$T/h" -o "$T/b" -H "Range: bytes=8192-16383" "$CDN"
is "$(code "$T/h"):$(hdr "$T/h" Content-Range)" "206:bytes 4096-12287/$BIGN" "badrange: start off by 4096"
cmp -s "$T/b" <(tail -c +4097 "$R/big.dat" | head -c 8192); ok $? "badrange: body matches its Content-Range"
s0=$(date +%s.%N)
$C -o "$T/b" "$CDN"
s1=$(date +%s.%N)
is "$(cmp -s "$T/b" "$R/big.dat"; echo $?):$(python3 -c "print($s1-$s0 >= 1.9)")" "0:True" "stall:2: pauses, then completes"
s0=$(date +%s.%N)
$C -o "$T/b" "http://localhost:$PORT$SMALLCDN_PATH"
s1=$(date +%s.%N)
is "$(cmp -s "$T/b" "$R/model.safetensors"; echo $?):$(python3 -c "print(0.8 <= $s1-$s0 < 3)")" "0:True" "slow:4096 on 4 KiB takes about 1 s"
$C -o "$T/b" -w '%{http_code}' "$CDN" >"$T/c"
is "$(cat "$T/c"):$(cmp -s "$T/b" "$R/big.dat"; echo $?)" "200:0" "all counts spent: clean download"
is "$(grep -c '^hf_origin: fault ' "$LOG")" 10 "each faulted response logged once"
$C -o "$T/b" "$B/_stats"
is "$(js "$T/b" 'sorted(d["faults"].values())')" "[1, 1, 1, 1, 1, 1, 1, 1, 2]" "stats: per-spec fault counters"
stop

# ---- hostile faults: bodies that are not what was asked for ---------------------
start hostile --repo org/m="$R" \
	--fault "extra:1000@$BIGSHA*1" \
	--fault "extraclose:1000@$BIGSHA*1" \
	--fault "short:1000@$BIGSHA*1" \
	--fault "longrange:100@$BIGSHA*1" \
	--fault "mutate@$BIGSHA*2" \
	--fault "endless:100000@$SMALLSHA*1"
CDN="http://localhost:$PORT/cdn/$BIGSHA"
SMALLCDN="http://localhost:$PORT/cdn/$SMALLSHA"
$C -I -D "$T/h" -o /dev/null "$CDN"
is "$(code "$T/h"):$(hdr "$T/h" Content-Length)" "200:$BIGN" "hostile faults never fire on a HEAD: it tells the truth"
$C -D "$T/h" -o "$T/b" "$CDN"
is "$(code "$T/h"):$(hdr "$T/h" Content-Length):$(stat -c %s "$T/b")" "200:$((BIGN + 1000)):$((BIGN + 1000))" \
	"extra:1000: the file and 1000 bytes more, Content-Length counting them"
cmp -s "$T/b" "$R/big.dat"; is "$?" 1 "  ... the body is not the file"
cmp -s <(head -c $BIGN "$T/b") "$R/big.dat"; ok $? "  ... but starts with it"
$C -D "$T/h" -o "$T/b" "$CDN"
is "$(code "$T/h"):$(hdr "$T/h" Content-Length):$(hdr "$T/h" Connection):$(stat -c %s "$T/b")" \
	"200::close:$((BIGN + 1000))" "extraclose:1000: no Content-Length, the junk ends with the connection"
$C -D "$T/h" -o "$T/b" -H "Range: bytes=0-9999" "$CDN"
is "$(code "$T/h"):$(hdr "$T/h" Content-Range):$(hdr "$T/h" Content-Length):$(stat -c %s "$T/b")" \
	"206:bytes 0-999/$BIGN:1000:1000" "short:1000: a range of 10000 answered with 1000 bytes, saying so"
$C -D "$T/h" -o "$T/b" -H "Range: bytes=100-199" "$CDN"
is "$(code "$T/h"):$(hdr "$T/h" Content-Range):$(stat -c %s "$T/b")" \
	"206:bytes 100-299/$BIGN:200" "longrange:100: the Content-Range runs 100 bytes past the end asked for"
cmp -s "$T/b" <(tail -c +101 "$R/big.dat" | head -c 200); ok $? "  ... with the bytes it names"
$C -o "$T/m1" "$CDN"
$C -o "$T/m2" "$CDN"
$C -o "$T/m3" "$CDN"
is "$(stat -c %s "$T/m1"):$(stat -c %s "$T/m2")" "$BIGN:$BIGN" "mutate: the right length"
is "$(cmp -s "$T/m1" "$R/big.dat"; echo $?):$(cmp -s "$T/m2" "$R/big.dat"; echo $?):$(cmp -s "$T/m1" "$T/m2"; echo $?)" \
	"1:1:1" "mutate: the bytes differ from the file, and between two requests"
cmp -s "$T/m3" "$R/big.dat"; ok $? "mutate*2: the third request gets the file"
rm -f "$T"/m?
curl -s --max-time 2 -D "$T/h" -o "$T/b" "$SMALLCDN"; rc=$?
is "$rc:$(hdr "$T/h" Content-Length):$(hdr "$T/h" Connection)" "28::close" \
	"endless: no length, and the body does not end (curl gives up, 28)"
[ "$(stat -c %s "$T/b")" -gt 4096 ]; ok $? "endless: more bytes than the file has ($(stat -c %s "$T/b"))"
cmp -s <(head -c 4096 "$T/b") "$R/model.safetensors"; ok $? "  ... after the file's own"
$C -o "$T/b" "$CDN"
cmp -s "$T/b" "$R/big.dat"; ok $? "hostile counts spent: a clean download"
$C -o "$T/b" "$B/_stats"
is "$(js "$T/b" 'sorted(d["faults"].values())')" "[1, 1, 1, 1, 1, 2]" "stats: each hostile fault fired its count"
ok "$(grep -qi traceback "$LOG"; [ $? -ne 0 ]; echo $?)" "no traceback in the log"
stop

start stall --repo org/m="$R" --fault "stall:30"
curl -s --max-time 1 -o /dev/null "http://localhost:$PORT/cdn/$BIGSHA"
is "$?" 28 "stall:30 with a client that gives up (curl 28)"
$C -o "$T/b" -w '%{http_code}' "$B/api/models/org/m/revision/main" >"$T/c"
is "$(cat "$T/c")" 200 "server still answers during/after the abandoned stall"
s0=$(date +%s)
stop
ok "$([ $(($(date +%s) - s0)) -le 3 ]; echo $?)" "SIGTERM exits promptly with a stalled handler"

# ---- relative redirects, 404 faults ---------------------------------------------
start rel --repo org/m="$R" --relative-redirects --fault "status:404@config.json"
$C -I -D "$T/h" -o /dev/null "$B/org/m/resolve/main/big.dat"
case "$(code "$T/h"):$(hdr "$T/h" Location)" in
"302:/cdn/$BIGSHA?expires="*"&sig="*) ok 0 "--relative-redirects: Location is a path" ;;
*) ok 1 "--relative-redirects: Location $(hdr "$T/h" Location)" ;; esac
$C -L -o "$T/b" "$B/org/m/resolve/main/big.dat"
is "$(cmp -s "$T/b" "$R/big.dat"; echo $?)" 0 "--relative-redirects: served by the same server"
$C -I -D "$T/h" -o /dev/null "$B/org/m/resolve/main/config.json"
is "$(code "$T/h"):$(hdr "$T/h" X-Error-Code):$(hdr "$T/h" X-Error-Message)" \
	"404:EntryNotFound:Entry not found" "status:404: EntryNotFound and its message"
stop

# ---- auth ----------------------------------------------------------------------
start auth --repo org/m="$R" --repo org/g="$R" --repo org/h="$R" \
	--token sekrit --gated org/g=auto --gated org/h=manual
GOOD="Authorization: Bearer sekrit"
$C -D "$T/h" -o /dev/null "$B/api/models/org/m/revision/main"
is "$(code "$T/h"):$(hdr "$T/h" X-Error-Code)" "401:RepoNotFound" "token set, no auth: private repo looks missing"
$C -D "$T/h" -o /dev/null -H "$GOOD" "$B/api/models/org/m/revision/main"
is "$(code "$T/h")" 200 "right token: 200"
$C -I -D "$T/h" -o /dev/null -H "Authorization: Bearer wrong" "$B/org/m/resolve/main/config.json"
is "$(code "$T/h"):$(hdr "$T/h" X-Error-Message)" \
	"401:Invalid credentials in Authorization header" "wrong token: 401 invalid credentials"
$C -D "$T/h" -o "$T/b" "$B/api/models/org/g/revision/main"
is "$(code "$T/h"):$(js "$T/b" 'd["gated"]')" "200:auto" "gated: metadata public"
$C -D "$T/h" -o /dev/null "$B/api/models/org/g/tree/main?recursive=true&expand=false"
is "$(code "$T/h")" 200 "gated: tree public"
$C -I -D "$T/h" -o /dev/null "$B/org/g/resolve/main/config.json"
is "$(code "$T/h"):$(hdr "$T/h" X-Error-Code):$(hdr "$T/h" X-Error-Message)" \
	"401:GatedRepo:Access to model org/g is restricted. You must have access to it and be authenticated to access it. Please log in." \
	"gated, no auth: 401 GatedRepo"
$C -I -D "$T/h" -o /dev/null -H "$GOOD" "$B/org/g/resolve/main/big.dat"
is "$(code "$T/h")" 302 "gated auto with token: resolves"
$C -I -D "$T/h" -o /dev/null -H "$GOOD" "$B/org/h/resolve/main/config.json"
is "$(code "$T/h"):$(hdr "$T/h" X-Error-Code):$(hdr "$T/h" X-Error-Message)" \
	"403:GatedRepo:Access to model org/h is restricted and you are not in the authorized list." \
	"gated manual with token: 403 GatedRepo"
$C -X POST -o /dev/null "$B/_reset"
$C -L -o "$T/b" -H "$GOOD" "$B/org/m/resolve/main/big.dat"
is "$(cmp -s "$T/b" "$R/big.dat"; echo $?)" 0 "cdn needs no auth (curl drops it on the host change)"
$C -o /dev/null -H "$GOOD" "http://localhost:$PORT/cdn/$BIGSHA"
$C -o "$T/b" "$B/_stats"
is "$(js "$T/b" 'd["auth_seen"]')" '{"127.0.0.1": 1, "localhost": 1}' "stats: auth_seen per host name"
stop

# ---- TLS -------------------------------------------------------------------------
if command -v openssl >/dev/null; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
	start tls --repo org/m="$R" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
	$C --cacert "$T/cert.pem" -L -D "$T/h" -o "$T/b" "https://127.0.0.1:$PORT/org/m/resolve/main/big.dat"
	is "$(cmp -s "$T/b" "$R/big.dat"; echo $?):$(grep -c '^Location: https://localhost' "$T/h")" "0:1" \
		"TLS: resolve → https cdn redirect, content ok"
	pids=""
	for i in $(seq 1 8); do
		$C --cacert "$T/cert.pem" -o "$T/tls.$i" -H "Range: bytes=0-1048575" "https://localhost:$PORT/cdn/$BIGSHA" & pids="$pids $!"
	done
	bad=0; for p in $pids; do wait "$p" || bad=$((bad + 1)); done
	is "$bad:$(stat -c %s "$T/tls.8")" "0:1048576" "TLS: 8 parallel ranged GETs"
	curl -s -k --max-time 0.3 --limit-rate 50k -o /dev/null "https://localhost:$PORT/cdn/$BIGSHA"
	$C --cacert "$T/cert.pem" -o "$T/b" "https://127.0.0.1:$PORT/org/m/resolve/main/sub/hello.txt"
	is "$(cat "$T/b")" "Hello, World!" "TLS: alive after an aborted client"
	stop
else
	echo "# openssl missing: TLS tests skipped"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
