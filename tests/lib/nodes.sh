# nodes.sh: other "hosts" on this machine, for the liveness tests (t07xx).
# Sourced after tap.sh.
#
# A node is a process tree in a UTS and PID namespace of its own
# (unshare -u -p -f -m --mount-proc), so that its owner ids
# ("<host>.<boot>.<pidns>.<pid>.<start>") are another host's to every
# other process on the store: nothing can ask whether its processes live, only their
# heartbeats speak.  Its clock can be set off by an offset with
# libfaketime (Debian package faketime):
#
#   NO_FAKE_STAT=1       stat() shows the mtimes the filesystem stamped,
#                        unshifted (else libfaketime hides the skew)
#   FAKE_UTIME=1         utimensat(NULL) is passed to the kernel, which
#                        stamps the time as the filesystem's clock (a
#                        local disk's, an NFS server's); without it
#                        libfaketime stamps the process's fake time, as a
#                        filesystem whose clients stamp times would
#   DONT_FAKE_MONOTONIC  timers and timeouts run as usual
#
#   nodes_check              skips the whole test (TAP 1..0) with the
#                            reason when root, unshare or libfaketime is
#                            missing, or a faked clock does not differ
#   node OFFSET CMD...       runs CMD on a node whose clock is OFFSET off
#                            ("+120s", "-120s", "+0s"); killed (SIGKILL)
#                            when the unshare that runs it dies
#   node_daemon NAME OFFSET [ARGS...]
#                            modelcached on $STORE as node NAME, socket
#                            $T/NAME/mc.sock, log $T/NAME.log; waits until
#                            it answers; its pid (in our namespace) is in
#                            NODE_PID_<NAME>, the unshare's in
#                            NODE_UPID_<NAME>; stopped at exit
#   node_pid UPID            the pid of the process unshare UPID runs
#   big_model SEED           org/big on the test origin: config.json and a
#                            1 MiB model.safetensors of SEED's bytes; its
#                            digest in $big, its blob's path in $blob
#   stopped_pull POINT N ARGS...
#                            `modelcache pull --json --chunk-size 64KiB
#                            ARGS` on a node of its own (+0s), stopped
#                            (SIGSTOP) at its Nth POINT (MODELCACHE_CRASH_
#                            POINT); waits for the stop; the unshare's pid
#                            in AU, the pull's in A, A's descriptor of
#                            tmp/partial.$big in afd (its inode in a_ino),
#                            its output in $T/a.out and $T/a.err

NODE_FT=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
NODE_UPIDS=

nodes_cleanup() {
	for p in $NODE_UPIDS; do
		kill -CONT "$(node_pid "$p")" 2>/dev/null
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	tap_cleanup
}
trap nodes_cleanup EXIT

nodes_check() {
	why=
	if [ "$(id -u)" -ne 0 ]; then
		why="needs root (unshare of a UTS and a PID namespace)"
	elif ! unshare -u -p -f -m --mount-proc true 2>/dev/null; then
		why="unshare -u -p -f -m --mount-proc fails here"
	elif [ ! -r "$NODE_FT" ]; then
		why="libfaketime is not installed (Debian package faketime)"
	elif ldd "$MC" 2>/dev/null | grep -q 'libasan'; then
		why="AddressSanitizer refuses an LD_PRELOAD of libfaketime"
	else
		now=$(date +%s)
		ahead=$(node +120s date +%s)
		behind=$(node -120s date +%s)
		if [ $((ahead - now)) -lt 100 ] || [ $((now - behind)) -lt 100 ]
		then
			why="a faked clock does not differ ($behind $now $ahead)"
		fi
	fi
	if [ -n "$why" ]; then
		echo "1..0 # SKIP $why"
		exit 0
	fi
}

node() {
	(exec_node "$@")
}

# The node's command replaces this (sub)shell: exec_node in a subshell
# started with & makes $! the unshare's pid.
exec_node() {
	off=$1
	shift
	exec unshare -u -p -f -m --mount-proc --kill-child env \
	    FAKETIME="$off" NO_FAKE_STAT=1 FAKE_UTIME=1 DONT_FAKE_MONOTONIC=1 \
	    LD_PRELOAD="$NODE_FT" "$@"
}

node_pid() {
	ps -o pid= --ppid "$1" | tr -d ' ' | head -n 1
}

node_daemon() {
	name=$1 off=$2
	shift 2
	mkdir -p "$T/$name"
	(exec_node "$off" "$MCD" --store "$STORE" \
	    --socket "$T/$name/mc.sock" "$@" >>"$T/$name.log" 2>&1) &
	upid=$!
	NODE_UPIDS="$NODE_UPIDS $upid"
	eval "NODE_UPID_$name=$upid"
	i=0
	until "$MC" status --socket "$T/$name/mc.sock" >/dev/null 2>&1; do
		kill -0 "$upid" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -lt 1000 ] || return 1
		sleep 0.01
	done
	eval "NODE_PID_$name=$(node_pid "$upid")"
}

big_model() {
	mkdir -p "$T/repo"
	printf '{"model_type":"gpt2"}' >"$T/repo/config.json"
	openssl enc -aes-128-ctr -nosalt -pass "pass:$1" </dev/zero \
	    2>/dev/null | head -c 1048576 >"$T/repo/model.safetensors"
	big=$(sha_of "$T/repo/model.safetensors")
	blob="$STORE/blobs/sha256/$(echo "$big" | cut -c1-2)/$big"
	start_origin --repo org/big="$T/repo"
}

# Whether the pull that unshare $AU runs is stopped; its pid in A.
a_stopped() {
	A=$(node_pid "$(node_pid "$AU")")
	[ -n "$A" ] && stopped "$A"
}

stopped_pull() {
	(export MODELCACHE_CRASH_POINT=$1 MODELCACHE_CRASH_AT=$2 \
	    MODELCACHE_CRASH_SIGNAL=STOP
	shift 2
	# Under a shell: the namespace's init (its pid 1) cannot stop itself.
	exec_node +0s sh -c '"$@"; exit $?' sh "$MC" pull --json \
	    --chunk-size 64KiB "$@" >"$T/a.out" 2>"$T/a.err") &
	AU=$!
	NODE_UPIDS="$NODE_UPIDS $AU"
	wait_for a_stopped || return 1
	afd=
	for f in /proc/"$A"/fd/*; do
		case "$(readlink "$f")" in
		*"tmp/partial.$big") afd=$f ;;
		esac
	done
	a_ino=$(stat -L -c %i "$afd" 2>/dev/null)
}
