#!/bin/sh
# The hub view of an imported model has exactly the layout of the Hugging
# Face cache (shared/reference/hf-hub.md section 3), checked file by file:
# blob names (git SHA-1 for git files, SHA-256 for LFS files), link targets
# at each depth, refs bytes, and nothing else.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/m" layout
mkdir -p "$T/m/a/b/c"
printf 'deep\n' >"$T/m/a/b/c/deep.json"
head -c $((10 * 1024 * 1024)) /dev/zero >"$T/m/big.txt"  # LFS by size

run_ok "import" mc import --revision refs/pr/1 "$T/m" org/layout
commit=$(mc ls --json | json '.[0].commit')
repo="$STORE/hub/models--org--layout"

# The etag the Hub would give each file.
etag() {
	case "$1" in
	*.safetensors | *.bin | big.txt) sha256sum <"$T/m/$1" | cut -c1-64 ;;
	*) git hash-object --no-filters "$T/m/$1" ;;
	esac
}

# What the tree must be: one line per entry, sorted.
(
	cd "$T/m" || exit 1
	echo "blobs d"
	echo "refs d"
	echo "refs/refs d"
	echo "refs/refs/pr d"
	echo "refs/refs/pr/1 f"
	echo "snapshots d"
	echo "snapshots/$commit d"
	find . -type d ! -name . | sed "s|^\./|snapshots/$commit/|; s|\$| d|"
	find . -type f | sed 's|^\./||' | while read -r p; do
		depth=$(echo "$p" | tr -cd / | wc -c)
		up=$(printf '../%.0s' $(seq 1 $((depth + 2))))
		e=$(etag "$p")
		echo "snapshots/$commit/$p l $up""blobs/$e"
		echo "blobs/$e f"
	done
) | sort -u >"$T/want"
(cd "$repo" && find . ! -name . -printf '%P %y %l\n' | sed 's/ $//') |
	sort >"$T/got"
diff -u "$T/want" "$T/got" >"$T/diff"
ok $? "the repo folder holds exactly the expected entries and link targets"
[ -s "$T/diff" ] && diag "$(cat "$T/diff")"

is "$(ls -A "$STORE/hub")" models--org--layout \
    "hub/ holds the repo folder and nothing of modelcache's own"
is "$(od -An -c "$repo/refs/refs/pr/1" | tr -d ' \n')" "$commit" \
    "the ref holds the 40 hex digits"
is "$(stat -c %s "$repo/refs/refs/pr/1")" 40 "the ref has no newline"

bad=0
find "$T/m" -type f | sed "s|^$T/m/||" | while read -r p; do
	cmp -s "$T/m/$p" "$repo/snapshots/$commit/$p" || echo "$p"
done >"$T/badread"
is "$(cat "$T/badread")" "" "every snapshot path reads back the original bytes"

for p in model.safetensors config.json; do
	e=$(etag "$p")
	sha=$(sha256sum <"$T/m/$p" | cut -c1-64)
	sb="$STORE/blobs/sha256/$(echo "$sha" | cut -c1-2)/$sha"
	is "$(stat -c %i "$repo/blobs/$e")" "$(stat -c %i "$sb")" \
	    "hub blob of $p is a hard link of the store blob"
	is "$(stat -c %a "$sb")" 444 "store blob of $p is read-only"
done

run_ok "a second revision name" mc import "$T/m" org/layout
is "$(od -An -c "$repo/refs/main" | tr -d ' \n')" "$commit" \
    "refs/main is written for the new name"

run_ok "a dataset" mc import "$T/m" hf://datasets/org/data
[ -d "$STORE/hub/datasets--org--data/snapshots" ]
ok $? "datasets go to datasets--org--name"
run_ok "a legacy single-part id" mc import "$T/m" gpt2
[ -f "$STORE/hub/models--gpt2/refs/main" ]
ok $? "a single-part id gives models--gpt2"
is "$(find "$STORE/tmp" -mindepth 1 | wc -l)" 0 "nothing is left in tmp/"
done_testing
