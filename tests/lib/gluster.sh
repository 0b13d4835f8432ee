# gluster.sh: two "nodes" sharing one store through a real network
# filesystem.  Sourced after tap.sh by the t07NN tests; needs root,
# /dev/fuse, CAP_SYS_ADMIN and Debian's glusterfs-server and
# glusterfs-client, and skips the test (TAP "1..0 # SKIP why") without them,
# and unless MODELCACHE_TEST_NODES=1 (./dev test sets it for the plain
# build only: the sanitizer build and distcheck do not run them again).
#
#   gluster_setup   a network namespace of the test ($GL_NS: lo up,
#                   127.0.0.2), one glusterd in it with a state, run and
#                   log directory of the test ($GL), and two one-brick
#                   volumes on 127.0.0.2: "default" (the package's
#                   caching) and "strict" (performance translators off),
#                   each mounted twice with FUSE, once per node:
#                   $GL/default-a, $GL/default-b, $GL/strict-a and
#                   $GL/strict-b.  Then two nodes, a and b: each its own
#                   UTS (hostname node-a, node-b), PID and mount namespace
#                   inside the network namespace, so that two processes of
#                   the test look like two hosts to the store.  Prints the
#                   time it took as a TAP comment; everything is torn down
#                   at exit, whatever happened.
#   on NODE CMD...  runs CMD on node a or b (in the foreground)
#   on_bg NODE CMD...  the same in the background; BG_PID is CMD's pid as
#                   this shell sees it (for kill -9)
#   ns CMD...       runs CMD in the network namespace only (an origin, a
#                   curl to it)
#   start_origin_ns ARGS...  tests/origin/hf_origin.py on the namespace's
#                   loopback (ORIGIN, HF_ENDPOINT); stats reads its /_stats
#   timed NAME CMD...  runs CMD and prints "# NAME: N s" for the report
#
# glusterd and its bricks listen on every interface of their network
# namespace, which is why they get one of their own; `gluster volume create`
# refuses 127.0.0.1 and localhost, hence 127.0.0.2, and "force" for bricks
# on the root filesystem.  glusterd runs in a mount namespace of its own
# where $GL/run is /run and $GL/log is /var/log/glusterfs, so that two
# tests never share its socket, pid files or logs; the gluster CLI enters
# that namespace.  The clients are the glusterfs binary (mount -t
# glusterfs's option parser refuses fopen-keep-cache=false).

GL_VOLUMES="default strict"
# The strict volume: no caching translator, no FUSE attribute, entry or
# negative caching, no page cache kept across opens.
GL_STRICT_OFF="performance.write-behind performance.open-behind
performance.quick-read performance.stat-prefetch performance.io-cache
performance.read-ahead performance.readdir-ahead performance.nl-cache"
GL_STRICT_MOUNT="--attribute-timeout=0 --entry-timeout=0
--negative-timeout=0 --fopen-keep-cache=false"

gl_skip() {
	if [ -n "${GL_PAIR:-}" ]; then
		echo "gluster: skip: $1" >&2
		exit 77
	fi
	echo "1..0 # SKIP $1"
	exit 0
}

gl_now() {
	date +%s.%N
}

gl_since() {
	awk -v a="$1" -v b="$(gl_now)" 'BEGIN { printf "%.1f", b - a }'
}

# timed NAME CMD...: CMD's exit status; its time as a TAP comment.
timed() {
	tm_name=$1
	shift
	tm_t0=$(gl_now)
	tm_rc=0
	"$@" || tm_rc=$?
	echo "# time $tm_name: $(gl_since "$tm_t0") s"
	return $tm_rc
}

gl_cli() {
	nsenter -t "$GL_GLUSTERD" -n -m gluster --mode=script "$@" \
		>>"$GL/cli.out" 2>&1
}

gluster_cleanup() {
	[ -n "${GL_NS:-}" ] || return 0
	# Every process of the namespace was started by this test: the
	# nodes and what runs on them, the origin, the clients, the bricks
	# and glusterd.
	# The mounts go first (lazily: a node may still use them); a FUSE
	# mount whose client is dead can no longer be told from a directory.
	for v in $GL_VOLUMES; do
		for n in a b; do
			umount -l "$GL/$v-$n" 2>/dev/null
		done
	done
	for p in $(ip netns pids "$GL_NS" 2>/dev/null); do
		kill -9 "$p" 2>/dev/null
	done
	ip netns del "$GL_NS" 2>/dev/null
	GL_NS=
}

gluster_exit() {
	gluster_cleanup
	tap_cleanup
}

gl_mount() {	# gl_mount VOLUME DIR [CLIENT-ARGS...]
	v=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	# shellcheck disable=SC2086
	ns glusterfs --volfile-server=127.0.0.2 --volfile-id="mc-$v" \
		-l "$GL/client-$(basename "$dir").log" "$@" "$dir" || return 1
	i=0
	until mountpoint -q "$dir"; do
		i=$((i + 1))
		[ $i -lt 1000 ] || return 1
		sleep 0.01
	done
	# The client answers once it has its volume graph.
	i=0
	until stat -f "$dir" >/dev/null 2>&1 && ls "$dir" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 1000 ] || return 1
		sleep 0.01
	done
}

# node_start NAME: a holder process (pid 1 of the node's PID namespace)
# whose namespaces `on` enters.
node_start() {
	n=$1
	nsenter --net="/run/netns/$GL_NS" unshare -u -p -f -m --mount-proc \
		sh -c "hostname node-$n && exec sleep 1000000" &
	holder=$!
	i=0
	while :; do
		child=$(awk '{ print $1 }' \
			"/proc/$holder/task/$holder/children" 2>/dev/null)
		[ -n "$child" ] && [ "$(cat "/proc/$child/comm" 2>/dev/null)" = sleep ] && break
		i=$((i + 1))
		[ $i -lt 1000 ] || return 1
		sleep 0.01
	done
	eval "GL_NODE_$n=\$child"
}

on() {
	eval "on_pid=\$GL_NODE_$1"
	shift
	nsenter -t "$on_pid" -n -u -p -m -- "$@"
}

# on_bg NODE CMD...: BG_PID is the pid of CMD (nsenter forks it into the
# node's PID namespace), BG_WRAP the nsenter that waits for it.
on_bg() {
	eval "on_pid=\$GL_NODE_$1"
	shift
	nsenter -t "$on_pid" -n -u -p -m -- "$@" &
	BG_WRAP=$!
	BG_PID=
	i=0
	while [ -z "$BG_PID" ]; do
		BG_PID=$(cat "/proc/$BG_WRAP/task/$BG_WRAP/children" \
			2>/dev/null | awk '{ print $1 }')
		[ -n "$BG_PID" ] && break
		kill -0 "$BG_WRAP" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -lt 1000 ] || return 1
		sleep 0.01
	done
}

ns() {
	nsenter --net="/run/netns/$GL_NS" -- "$@"
}

# gl_check: skips (gl_skip) unless glusterd, FUSE and namespaces are here.
gl_check() {
	[ "$(id -u)" -eq 0 ] || gl_skip "needs root (glusterd, FUSE mounts)"
	[ -c /dev/fuse ] || gl_skip "no /dev/fuse"
	for b in glusterd gluster glusterfs; do
		command -v "$b" >/dev/null 2>&1 ||
			gl_skip "no $b (Debian: glusterfs-server glusterfs-client)"
	done
	command -v ip >/dev/null 2>&1 || gl_skip "no ip (Debian: iproute2)"
	unshare -m -u -p -f true 2>/dev/null ||
		gl_skip "cannot make namespaces (no CAP_SYS_ADMIN)"
	[ -f /etc/glusterfs/glusterd.vol ] ||
		gl_skip "no /etc/glusterfs/glusterd.vol"
}

# gl_start: the network namespace $GL_NS, glusterd in it with its state
# under $GL, and each volume of $GL_VOLUMES mounted twice ($GL/VOL-a,
# $GL/VOL-b).  The caller has set GL, GL_NS and what tears them down.
gl_start() {
	mkdir -p "$GL/state" "$GL/run" "$GL/log"
	ip netns add "$GL_NS" 2>"$GL/netns.err" || {
		GL_NS=
		gl_skip "cannot make a network namespace: $(cat "$GL/netns.err")"
	}
	ip -n "$GL_NS" link set lo up
	ip -n "$GL_NS" addr show lo | grep -q 127.0.0.2 ||
		ip -n "$GL_NS" addr add 127.0.0.2/8 dev lo 2>/dev/null
	sed "s|option working-directory .*|option working-directory $GL/state|" \
		/etc/glusterfs/glusterd.vol >"$GL/glusterd.vol"
	[ -d /var/lib/glusterd/groups ] &&
		cp -r /var/lib/glusterd/groups /var/lib/glusterd/hooks \
			"$GL/state/" 2>/dev/null
	ns unshare -m --propagation private sh -c "
		mount --bind '$GL/log' /var/log/glusterfs &&
		mount --bind '$GL/run' /run && mkdir -p /run/gluster &&
		exec glusterd -f '$GL/glusterd.vol' -p '$GL/glusterd.pid' \
			-l '$GL/glusterd.log'" >"$GL/glusterd.out" 2>&1 || {
		diag "glusterd did not start:" "$(tail -5 "$GL/glusterd.out" \
			"$GL/glusterd.log" 2>/dev/null)"
		return 1
	}
	GL_GLUSTERD=$(cat "$GL/glusterd.pid")
	i=0
	until gl_cli volume list; do
		i=$((i + 1))
		[ $i -lt 1000 ] || { diag "glusterd does not answer"; return 1; }
		sleep 0.01
	done
	for v in $GL_VOLUMES; do
		mkdir -p "$GL/brick-$v"
		gl_cli volume create "mc-$v" "127.0.0.2:$GL/brick-$v" force ||
			{ diag "volume create failed: $(tail -3 "$GL/cli.out")"; return 1; }
		if [ "$v" = strict ]; then
			for o in $GL_STRICT_OFF; do
				gl_cli volume set "mc-$v" "$o" off || return 1
			done
		fi
		gl_cli volume start "mc-$v" ||
			{ diag "volume start failed: $(tail -3 "$GL/cli.out")"; return 1; }
	done
	for n in a b; do
		for v in $GL_VOLUMES; do
			gl_args=
			[ "$v" = strict ] && gl_args=$GL_STRICT_MOUNT
			# shellcheck disable=SC2086
			gl_mount "$v" "$GL/$v-$n" $gl_args || return 1
		done
	done
}

gluster_setup() {
	[ "${MODELCACHE_TEST_NODES:-}" = 1 ] ||
		gl_skip "the two-node tests run with MODELCACHE_TEST_NODES=1"
	gl_check
	gl_t0=$(gl_now)
	GL="$T/gluster"
	GL_NS="mc-t$$"
	trap gluster_exit EXIT
	gl_start || return 1
	# The nodes come last: their mount namespaces copy the mounts above.
	node_start a || return 1
	node_start b || return 1
	echo "# time gluster setup: $(gl_since "$gl_t0") s"
}

# gluster_pair DIR: for tests/chaos/campaign --gluster (no TAP, no
# MODELCACHE_TEST_NODES): glusterd and one volume, $GL_PAIR_VOLUME
# ("default", the default, or "strict"), under DIR/gluster, in a network
# namespace of its own, the volume mounted twice with FUSE; prints the two
# mount points, one a line, and nothing else on standard output.  The
# mounts are in the caller's mount namespace and the clients and bricks
# talk over the namespace's loopback, so that processes of the caller's
# network namespace (an origin on 127.0.0.1) use the store; the campaign
# gives its node b a UTS and PID namespace of its own.  Exits 77 (skip)
# where glusterd, FUSE or namespaces are missing; on any other failure
# tears down what it made and returns 1.  gluster_unpair DIR tears it all
# down, whatever state the setup reached.
gluster_pair() {
	GL_PAIR=1
	command -v diag >/dev/null 2>&1 || diag() {
		printf '# %s\n' "$@" >&2
	}
	GL_VOLUMES=${GL_PAIR_VOLUME:-default}
	case "$GL_VOLUMES" in
	default | strict) ;;
	*) echo "gluster: GL_PAIR_VOLUME is default or strict" >&2; return 1 ;;
	esac
	gl_check
	GL="$1/gluster"
	GL_NS="mc-c$$"
	mkdir -p "$GL" || return 1
	printf 'GL_NS=%s\nGL_VOLUMES=%s\n' "$GL_NS" "$GL_VOLUMES" >"$GL/pair.env"
	if ! gl_start >>"$GL/pair.log" 2>&1; then
		cat "$GL/pair.log" >&2
		gluster_cleanup
		return 1
	fi
	echo "$GL/$GL_VOLUMES-a"
	echo "$GL/$GL_VOLUMES-b"
}

gluster_unpair() {
	GL="$1/gluster"
	[ -f "$GL/pair.env" ] || return 0
	. "$GL/pair.env"
	gluster_cleanup
}

# start_origin_ns ARGS...: the HF test origin on the namespace's loopback.
start_origin_ns() {
	ORIGIN_WRAP=ns
	start_origin "$@"
	set -- $?
	ORIGIN_WRAP=
	return "$1"
}

# stats JQ: the origin's counters, asked from inside the namespace.
stats() {
	ns curl -s "$ORIGIN/_stats" | jq -r "$1"
}

# node_daemon NODE STORE SOCKET [ARGS...]: modelcached on NODE (log in
# $T/daemon-NODE.log), waited for until it answers; GL_DAEMON_<NODE> is
# its pid.
node_daemon() {
	nd_n=$1 nd_store=$2 nd_sock=$3
	shift 3
	on_bg "$nd_n" "$MCD" -v --store "$nd_store" --socket "$nd_sock" \
	    "$@" >>"$T/daemon-$nd_n.log" 2>&1 || return 1
	eval "GL_DAEMON_$nd_n=\$BG_PID"
	wait_for "$MC" status --socket "$nd_sock"
}

# node_mc NODE STORE ARGS...: modelcache on NODE, on STORE.
node_mc() {
	nm_n=$1 nm_store=$2
	shift 2
	on "$nm_n" env MODELCACHE_STORE="$nm_store" "$MC" "$@"
}
