# python.sh: the Python client (inference/python) installed as a user
# installs it, for the tests that drive it.  Sourced after tap.sh.
#
#   PY3              Debian's python3: /usr/bin/python3 when it exists (a
#                    python3 earlier on PATH, pyenv's say, may lack venv)
#   make_venv DIR    a venv in DIR (python3 -m venv, Debian's package
#                    python3-venv) with the client installed by
#                    `pip install --no-index` from the source tree, with no
#                    network: in a network namespace of its own when
#                    unshare can make one (VENV_OFFLINE says how), else
#                    with every proxy variable on a closed port.  Nothing
#                    is written into the source tree (no bytecode, no
#                    build directory).  Sets VENV_PY; pip's output is in
#                    DIR.log.
#   offline CMD...   CMD run as make_venv runs pip

PY3=python3
[ -x /usr/bin/python3 ] && PY3=/usr/bin/python3
PYCLIENT_SRC="$top_srcdir/inference/python"

# offline CMD...: CMD with no network (see make_venv), pip told to use no
# index, no cache and no configuration of the machine's, and Python to
# write no bytecode (into the source tree's in-tree build backend).
offline() {
	if [ -z "${VENV_OFFLINE+set}" ]; then
		if unshare -rn true 2>/dev/null; then
			VENV_OFFLINE="unshare -rn"
		elif unshare -n true 2>/dev/null; then
			VENV_OFFLINE="unshare -n"
		else
			VENV_OFFLINE=
		fi
	fi
	# shellcheck disable=SC2086
	env PYTHONDONTWRITEBYTECODE=1 PIP_CONFIG_FILE=/dev/null \
	    PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
	    PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 \
	    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
	    HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
	    all_proxy=http://127.0.0.1:9 no_proxy= NO_PROXY= \
	    $VENV_OFFLINE "$@"
}

make_venv() {
	VENV_PY="$1/bin/python"
	"$PY3" -m venv "$1" >"$1.log" 2>&1 || return 1
	offline "$VENV_PY" -m pip install --no-index "$PYCLIENT_SRC" \
	    >>"$1.log" 2>&1
}

# tree_state DIR: every path under DIR with its size, sorted; to check
# that an install left the source tree as it was.
tree_state() {
	(cd "$1" && find . -printf '%p %y %s\n' | sort)
}
