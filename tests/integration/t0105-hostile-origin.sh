#!/bin/sh
# modelcache pull from an origin that lies: bodies longer than asked for
# (with a Content-Length that counts the junk, and with none and
# Connection: close), shorter, a Content-Range past the end asked for or
# moved, 200 with the whole file to a range, bytes that change between two
# requests, a body that never ends.  For hf:// (LFS files through the CDN
# redirect, whole and in ranges, and small git files) and https:// (a TLS
# origin, the case that was seen: HEAD says 1,000,000 bytes, GET sends
# more).  Each time: the pull succeeds with the right bytes or fails with a
# clear error and its exit status, every blob under blobs/ has exactly the
# bytes its name says, and a model pulled before is untouched.  Only
# loopback.
. "$top_srcdir/tests/lib/tap.sh"

unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY \
    CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR
no_proxy='*'
NO_PROXY='*'
export no_proxy NO_PROXY

make_model "$T/repo" hostile
make_model "$T/keep" kept
mkdir -p "$T/web"
openssl enc -aes-128-ctr -nosalt -pass pass:good </dev/zero 2>/dev/null |
    head -c 1000000 >"$T/web/good.bin"
lfs=$(sha_of "$T/repo/model.safetensors")
good=$(sha_of "$T/web/good.bin")
git=config.json
make_ca "$T/ca"
ok $? "a test CA for the TLS origin"

# A store with a model in it, copied for each case (cp -a keeps the hub's
# hard links): what was there before must stay.
BASE="$T/base"
start_origin --repo org/keep="$T/keep"
MODELCACHE_STORE=$BASE mc pull org/keep >/dev/null 2>&1
ok $? "a model is pulled into the store before"
kept() {
	(cd "$1/hub/models--org--keep" && find . -type f -o -type l |
	    sort | xargs sha256sum)
}
KEPT=$(kept "$BASE")

# bad_blobs: each file under blobs/ whose SHA-256 is not its name.
bad_blobs() {
	find "$STORE/blobs/sha256" -type f | while read -r f; do
		[ "$(sha_of "$f")" = "${f##*/}" ] || echo "${f##*/} $(stat -c %s "$f")"
	done
}

# origin [--tls] FAULT: the origin with that fault on every request it
# fits, and a fresh copy of the store.
origin() {
	if [ "$1" = --tls ]; then
		shift
		start_origin --repo org/m="$T/repo" --repo org/keep="$T/keep" \
		    --repo org/web="$T/web" --tls-cert "$TLS_CERT" \
		    --tls-key "$TLS_KEY" --fault "$1"
		ORIGIN="https://127.0.0.1:$(cat "$T/origin.port")"
	else
		start_origin --repo org/m="$T/repo" --repo org/keep="$T/keep" \
		    --fault "$1"
	fi
	rm -rf "$STORE"
	cp -a "$BASE" "$STORE"
}

# invariants WHAT: every blob is right, the model from before is whole.
invariants() {
	is "$(bad_blobs)" "" "$1: every blob under blobs/ is its name's bytes"
	is "$(kept "$STORE")" "$KEPT" "$1: the model pulled before is untouched"
}

# hostile EXIT PATTERN FAULT MODE: a pull through FAULT (MODE: whole, the
# LFS files in one GET; ranged, in ranges of 64 KiB; https, the 1,000,000
# bytes of good.bin over TLS, whole; https-ranged, in ranges of 256 KiB)
# exits EXIT, its stderr matching PATTERN; then the invariants.  A pull
# that does not end within 120 s is stopped (exit 124).
hostile() {
	want=$1 pattern=$2 fault=$3 mode=$4
	case $mode in
	https*)
		origin --tls "$fault"
		chunk=32MiB
		[ "$mode" = https-ranged ] && chunk=256KiB
		set -- --ca-file "$CA_FILE" --chunk-size "$chunk" --name org/web \
		    "$ORIGIN/cdn/$good#sha256=$good"
		model=org/web
		;;
	*)
		origin "$fault"
		chunk=32MiB
		[ "$mode" = ranged ] && chunk=64KiB
		set -- --chunk-size "$chunk" org/m
		model=org/m
		;;
	esac
	what="$fault ($mode)"
	timeout 120 "$MC" pull "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -eq "$want" ] &&
	    { [ -z "$pattern" ] || grep -q -- "$pattern" "$T/err"; }; then
		ok 0 "$what: exit $want"
	else
		ok 1 "$what: exit $want"
		diag "exit $rc (want $want)" "stderr: $(cat "$T/err")"
	fi
	invariants "$what"
	if [ "$want" -eq 0 ]; then
		run_ok "$what: the model pulled verifies" mc verify "$model"
	else
		run_fails 3 "" "$what: no snapshot of it is published" \
		    mc show "$model"
	fi
}

too_long="the origin \(announced\|sent more\|answered\)"

# hf://, the LFS file through its CDN redirect: whole, then in ranges.
hostile 5 "cannot fetch 'model.safetensors': asked for 300000 bytes, the origin announced 301000 (Content-Length) (3 times)" \
    "extra:1000@$lfs" whole
hostile 5 "cannot fetch 'model.safetensors': .*$too_long" "extra:1000@$lfs" ranged
hostile 5 "cannot fetch 'model.safetensors': asked for 300000 bytes, the origin sent more" \
    "extraclose:1000@$lfs" whole
hostile 5 "cannot fetch 'model.safetensors': .*$too_long" "extraclose:1000@$lfs" ranged
hostile 6 "cannot fetch 'model.safetensors': .*announced 1000 (Content-Length)" \
    "short:1000@$lfs" whole
hostile 6 "cannot fetch 'model.safetensors': asked for bytes .*, the origin answered 'bytes" \
    "short:1000@$lfs" ranged
hostile 5 "cannot fetch 'model.safetensors': asked for bytes .*, the origin answered 'bytes" \
    "longrange:100@$lfs" ranged
hostile 0 "" "badrange@$lfs" ranged
hostile 0 "" "norange@$lfs" ranged
hostile 5 "'model.safetensors': the bytes do not match" "mutate@$lfs" whole
hostile 0 "" "mutate@$lfs*1" ranged
hostile 5 "cannot fetch 'model.safetensors': .*$too_long" "endless:262144@$lfs" whole
hostile 5 "cannot fetch 'model.safetensors': .*$too_long" "endless:262144@$lfs" ranged

# hf://, a small git file, fetched from the Hub itself.
hostile 5 "cannot fetch 'config.json': .*$too_long" "extra:1000@$git" whole
hostile 5 "cannot fetch 'config.json': .*$too_long" "extraclose:1000@$git" whole
hostile 6 "cannot fetch 'config.json': .*announced 10 (Content-Length)" \
    "short:10@$git" whole
hostile 5 "'config.json': the bytes do not match" "mutate@$git" whole
hostile 5 "cannot fetch 'config.json': .*$too_long" "endless:4096@$git" whole

# https://, over TLS: HEAD says 1,000,000 bytes, GET sends 2,000,000.
hostile 5 "cannot fetch '$good': asked for 1000000 bytes, the origin announced 2000000 (Content-Length)" \
    "extra:1000000@$good" https
hostile 5 "cannot fetch '$good': asked for 1000000 bytes, the origin sent more" \
    "extraclose:1000000@$good" https
hostile 5 "cannot fetch '$good': .*$too_long" "extra:1000000@$good" https-ranged
hostile 5 "cannot fetch '$good': .*$too_long" "longrange:1000@$good" https-ranged
hostile 6 "cannot fetch '$good': .*announced 1000 (Content-Length)" \
    "short:1000@$good" https
hostile 5 "'$good': the bytes do not match" "mutate@$good" https
hostile 0 "" "mutate@$good*1" https-ranged
hostile 5 "cannot fetch '$good': .*$too_long" "endless:262144@$good" https
hostile 0 "" "norange@$good" https-ranged
hostile 0 "" "badrange@$good" https-ranged

# The faults spent, the same store pulls the model whole.
origin "extra:1000@$lfs*1"
run_ok "a pull through one extra-long answer retries it" mc pull org/m
invariants "after one extra-long answer"
run_ok "and the model verifies" mc verify org/m
run_ok "fsck is clean" mc fsck
done_testing
