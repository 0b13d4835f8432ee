#!/bin/sh
# Bad input: every rejected name and path class gets a clear message and a
# non-zero exit, and leaves the store exactly as it was.
. "$top_srcdir/tests/lib/tap.sh"

make_model "$T/good" good
run_ok "a store with one model" mc import "$T/good" org/good
before=$(store_state)

# unchanged DESCRIPTION: the store must be byte for byte what it was.
unchanged() {
	is "$(store_state)" "$before" "$1 leaves the store unchanged"
}

# bad_name NAME PATTERN DESCRIPTION
bad_name() {
	run_fails 2 "$2" "import refuses $3" mc import "$T/good" "$1"
	unchanged "a refused name ($3)"
}

bad_name '../x' "bad model name" "a name with .."
bad_name 'a/b/c' "bad model name" "a name with three parts"
bad_name 'a--b/c' "bad model name" "a name with --"
bad_name '-a/b' "bad model name" "a name starting with -"
bad_name 'a/b.git' "bad model name" "a name ending in .git"
bad_name '' "bad model name" "an empty name"
bad_name "a/$(printf 'x%.0s' $(seq 1 97))" "bad model name" "a 97-byte part"
bad_name 'a b/c' "bad model name" "a name with a space"
bad_name "$(printf 'a/b\001')" "bad model name" "a name with a control byte"
bad_name 'a/b@x..y' "bad model name" "a revision with .."
bad_name 'a/b@x y' "bad model name" "a revision with a space"
bad_name 'a/b@x.lock' "bad model name" "a revision ending in .lock"
bad_name 'a/b@x//y' "bad model name" "a revision with //"
bad_name 'a/b@x~1' "bad model name" "a revision with ~"
bad_name "a/b@$(printf 'r%.0s' $(seq 1 256))" "bad model name" \
    "a 256-byte revision"
bad_name 'https://host/x#sha256=00' "bad model name" "a URL as a name"

run_fails 2 "bad revision" "import refuses a bad --revision" \
    mc import --revision 'main/' "$T/good" org/x
unchanged "a bad --revision"
run_fails 2 "derived from its files" "import refuses a commit as revision" \
    mc import --revision "$(printf 'a%.0s' $(seq 1 40))" "$T/good" org/x
unchanged "a commit id as revision"

# bad_dir DIR CODE PATTERN DESCRIPTION
bad_dir() {
	run_fails "$2" "$3" "import refuses $4" mc import "$1" org/x
	unchanged "a refused directory ($4)"
}

bad_dir "$T/absent" 3 "cannot open" "a missing directory"
bad_dir "$T/good/config.json" 3 "not a directory" "a file as directory"
mkdir "$T/empty"
bad_dir "$T/empty" 3 "holds no files" "an empty directory"

mkdir "$T/backslash" && echo x >"$T/backslash/a\\b"
bad_dir "$T/backslash" 2 "backslash" "a file name with a backslash"
mkdir "$T/ctrl" && echo x >"$T/ctrl/$(printf 'a\001b')"
bad_dir "$T/ctrl" 2 "control character" "a file name with a control byte"
mkdir "$T/newline" && echo x >"$T/newline/$(printf 'a\nb')"
bad_dir "$T/newline" 2 "control character" "a file name with a newline"
deep="$T/long"
for i in $(seq 1 9); do deep="$deep/$(printf 'd%.0s' $(seq 1 120))"; done
mkdir -p "$deep" && echo x >"$deep/f"
bad_dir "$T/long" 2 "too long" "a path over 1024 bytes"

mkdir "$T/escape" && echo x >"$T/escape/ok.json"
ln -s "$T/good/config.json" "$T/escape/leak.json"
bad_dir "$T/escape" 2 "leads outside the directory" \
    "a symlink leaving the directory"
mkdir "$T/dotdot" && ln -s ../good/config.json "$T/dotdot/rel.json"
bad_dir "$T/dotdot" 2 "leads outside the directory" \
    "a relative symlink climbing out"
mkdir "$T/dangling" && ln -s nowhere "$T/dangling/x.json"
bad_dir "$T/dangling" 2 "dangling" "a dangling symlink"
mkdir -p "$T/linkdir/real" && echo x >"$T/linkdir/real/f" &&
    ln -s real "$T/linkdir/alias"
bad_dir "$T/linkdir" 2 "regular file" "a symlink to a directory"
mkdir "$T/fifo" && mkfifo "$T/fifo/pipe"
bad_dir "$T/fifo" 2 "not a regular file" "a fifo"

mkdir "$T/inside" && echo data >"$T/inside/real.json" &&
    ln -s real.json "$T/inside/alias.json"
run_ok "a symlink to a file inside the directory is followed" \
    mc import "$T/inside" org/inside
is "$(mc show --json org/inside | json '.[0].file_list | length')" 2 \
    "both the file and its alias are imported"
run_ok "rm it again" mc rm org/inside
is "$(store_state | grep -v 'index\.db')" \
    "$(echo "$before" | grep -v 'index\.db')" "rm restores the store's files"
before=$(store_state)

run_fails 3 "not in the store" "show of an absent model" mc show org/absent
unchanged "show of an absent model"
run_fails 3 "not in the store" "rm of an absent model" mc rm org/absent
unchanged "rm of an absent model"
run_fails 3 "not in the store" "rm of an absent revision" mc rm org/good@v9
unchanged "rm of an absent revision"
run_fails 2 "bad model name" "pin of a bad name" mc pin '../../etc'
unchanged "pin of a bad name"
run_fails 2 "bad size" "gc with a bad size" mc gc --max-size 10X
unchanged "gc with a bad size"
run_fails 2 "max-size" "gc without a size" mc gc
run_fails 2 "unknown command" "an unknown command" mc frobnicate
run_fails 2 "usage" "import without a name" mc import "$T/good"
run_fails 3 "no store" "ls of a missing store" \
    mc --store "$T/nostore" ls
[ ! -e "$T/nostore" ]
ok $? "a read-only command does not create a store"
done_testing
