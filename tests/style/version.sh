#!/bin/sh
# The version is written once, in configure.ac's AC_INIT, and every copy
# agrees with it: what scripts/sync-version writes (the Python package's
# __version__, the images' tags in deploy/k8s, Dockerfile.model's default
# image), the Python build backend's version, and config.h's.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/python.sh"

v=$(sed -n 's/^AC_INIT(\[[^]]*\], \[\([^]]*\)\].*/\1/p' \
    "$top_srcdir/configure.ac")
[ -n "$v" ]
ok $? "configure.ac's AC_INIT says the version: $v"

out=$(sh "$top_srcdir/scripts/sync-version" --check 2>&1)
rc=$?
ok $rc "scripts/sync-version --check: every copy says $v"
[ $rc -eq 0 ] || diag "$out"

is "$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' \
    "$top_builddir/config.h")" "$v" "config.h's PACKAGE_VERSION"

is "$(cd "$top_srcdir/inference/python" && PYTHONDONTWRITEBYTECODE=1 \
    "$PY3" -c 'import sys; sys.path.insert(0, "_build")
import backend; print(backend.VERSION)' 2>&1)" "$v" \
    "the Python package's build backend builds version $v"
grep -q '^dynamic = \["version"\]$' \
    "$top_srcdir/inference/python/pyproject.toml"
ok $? "pyproject.toml takes the version from the package (dynamic)"

n=$(grep -c "newTag: \"$v\"" "$top_srcdir"/deploy/k8s/*/kustomization.yaml \
    "$top_srcdir"/deploy/k8s/*/*/kustomization.yaml | awk -F: '{ n += $2 }
    END { print n }')
[ "$n" -gt 0 ]
ok $? "the manifests tag the images $v ($n tags)"

done_testing
