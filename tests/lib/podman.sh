# podman.sh: a private, rootful podman for the tests that build and run
# the images of deploy/.  Sourced after tap.sh.  See
# ../shared/reference/containers.md for why each setting is what it is.
#
#   podman_setup      skips the test (TAP "1..0 # SKIP why") unless
#                     MODELCACHE_TEST_CONTAINERS=1, root, podman, runc,
#                     debootstrap, flock and a Debian bookworm mirror in
#                     apt's sources; then gives podman a configuration of
#                     its own under $PODMAN_DIR ($T/podman): runtime runc,
#                     ulimits it may set here, cgroupfs, events to a
#                     file, storage (native overlay), run state, temporary
#                     files and build cache mounts all under $PODMAN_DIR,
#                     none in /var/tmp, no registry.  At exit
#                     podman_cleanup, then tap_cleanup, run; a test that
#                     sets its own EXIT trap calls both.
#   pm ARGS...        podman with that configuration
#   podman_base       the Debian 12 base image, $BASE_IMAGE: a rootfs made
#                     by debootstrap --variant=minbase from the mirror
#                     named in apt's sources (read now, never written
#                     here), with apt's sources and docker-clean as
#                     Debian's own images have them (bookworm, -updates,
#                     -security; downloads deleted), kept as a
#                     tarball in $PODMAN_CACHE ($top_builddir/tests/
#                     containers/), made once per build tree under flock so
#                     that tests run in parallel make it once, and
#                     imported; BASE_S: seconds it took (made or not),
#                     BASE_MADE: 1 when made now
#   podman_build LOG ARGS...
#                     podman build ARGS, never pulling, on the host's
#                     network (for apt in RUN; the default bridge is never
#                     used), in Docker's format (HEALTHCHECK), with layer
#                     caching, BUILD_IMAGE and RUNTIME_IMAGE set to
#                     $BASE_IMAGE; its output in LOG, BUILD_S its seconds
#   podman_images [CONTEXT]
#                     podman_base, then deploy/Dockerfile as $MC_IMAGE and
#                     deploy/Dockerfile.inference as $INF_IMAGE, from
#                     CONTEXT (default: the source tree); the logs in
#                     $PODMAN_DIR/build-*.log; MC_BUILD_S, INF_BUILD_S
#   podman_cleanup    removes every pod, container and volume, resets the
#                     storage, unmounts what is left under $PODMAN_DIR
#                     (KEEP=1 keeps the images: CONTAINERS_CONF and
#                     CONTAINERS_STORAGE_CONF set to the two files in
#                     $T/podman, podman sees them; podman system reset -f
#                     before removing $T); the last test to end removes
#                     the two directories that rootful podman 4.3 makes
#                     whatever its configuration says, when it made them:
#                     /var/lib/containers (its blob-info cache) and
#                     /run/containers (an empty networks/)
#   podman_leftovers  what would outlive the test, one line each: mounts
#                     under $PODMAN_DIR, processes that name it (conmon),
#                     network interfaces that were not there at setup, and
#                     a changed net.ipv4.ip_forward; nothing when clean
#
# Images are named localhost/modelcache/NAME:$MC_TAG, MC_TAG being the
# package's version (configure.ac): podman resolves "modelcache/NAME:TAG"
# to them, so Kubernetes YAML for `podman kube play` may say that, with
# imagePullPolicy: Never or IfNotPresent (a :latest tag, or none, makes
# kube play pull).  Run kube play from another directory than the build
# tree ((cd "$T" && pm kube play ...)): it takes a directory named after
# an image (modelcached, gpt2-server) in the current one for a build
# context, even with --build=false, and the programs there have those
# names ("stat .../modelcached/Containerfile: not a directory").  The
# images' HEALTHCHECK does not reach a played container: probes come from
# the YAML.

PODMAN_CACHE="$top_builddir/tests/containers"
BASE_IMAGE=localhost/modelcache-test/debian:bookworm
MC_TAG=$(sed -n 's/^AC_INIT(\[[^]]*\], \[\([^]]*\)\].*/\1/p' \
    "$top_srcdir/configure.ac")
MC_IMAGE=localhost/modelcache/modelcached:$MC_TAG
INF_IMAGE=localhost/modelcache/gpt2-server:$MC_TAG
PODMAN_DIR=
PODMAN_HOST_DIRS="/var/lib/containers /run/containers"
PATH_SYS=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# podman_skip WHY: the whole test skipped.
podman_skip() {
	echo "1..0 # SKIP $1"
	exit 0
}

# podman_mirror SUITE: the first URI of apt's sources for SUITE, exactly
# (deb822 .sources files, then sources.list lines); 1 when none.
podman_mirror() {
	for pd_f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$pd_f" ] || continue
		awk -v want="$1" '
		function flush() {
			if (uri != "" && index(" " suites " ", " " want " ")) {
				print uri
				found = 1
			}
			uri = ""
			suites = ""
		}
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); if (found) exit; next }
		tolower($1) == "uris:" { uri = $2 }
		tolower($1) == "suites:" { $1 = ""; suites = $0 }
		END { if (!found) flush() }' "$pd_f" | head -n 1 | grep . &&
			return 0
	done
	for pd_f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$pd_f" ] || continue
		awk -v want="$1" '$1 == "deb" {
			i = 2
			if ($i ~ /^\[/)
				while (i <= NF && $i !~ /\]$/)
					i++
			if ($i ~ /^\[/ || $i ~ /\]$/)
				i++
			if ($(i + 1) == want) { print $i; exit }
		}' "$pd_f" | head -n 1 | grep . && return 0
	done
	return 1
}

podman_setup() {
	[ "${MODELCACHE_TEST_CONTAINERS:-}" = 1 ] ||
		podman_skip "only with MODELCACHE_TEST_CONTAINERS=1"
	[ "$(id -u)" -eq 0 ] || podman_skip "container tests need root"
	for pd_tool in podman runc debootstrap flock; do
		command -v $pd_tool >/dev/null ||
			podman_skip "no $pd_tool (see ./dev's PACKAGES)"
	done
	PODMAN_MIRROR=$(podman_mirror bookworm) ||
		podman_skip "no Debian bookworm mirror in apt's sources"
	PODMAN_SECURITY=$(podman_mirror bookworm-security) || PODMAN_SECURITY=

	PODMAN_DIR=$T/podman
	mkdir -p "$PODMAN_DIR/tmp" "$PODMAN_DIR/networks"
	cat >"$PODMAN_DIR/containers.conf" <<EOF
[containers]
# Root here lacks CAP_SYS_RESOURCE: podman's default nofile limit
# (1048576) cannot be set.
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
log_driver = "k8s-file"

[engine]
# crun 1.8 refuses the hybrid cgroup layout of this machine.
runtime = "runc"
cgroup_manager = "cgroupfs"
# No journald (PID 1 is not systemd).
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
tmp_dir = "$PODMAN_DIR/libpod"
image_copy_tmp_dir = "$PODMAN_DIR/tmp"
static_dir = "$PODMAN_DIR/storage/libpod"
volume_path = "$PODMAN_DIR/storage/volumes"

[network]
network_config_dir = "$PODMAN_DIR/networks"
EOF
	cat >"$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/storage"
runroot = "$PODMAN_DIR/run"
EOF
	# No registry: every image is made here.
	cat >"$PODMAN_DIR/registries.conf" <<EOF
unqualified-search-registries = []
short-name-mode = "disabled"
EOF
	CONTAINERS_CONF=$PODMAN_DIR/containers.conf
	CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
	CONTAINERS_REGISTRIES_CONF=$PODMAN_DIR/registries.conf
	export CONTAINERS_CONF CONTAINERS_STORAGE_CONF \
	    CONTAINERS_REGISTRIES_CONF
	PODMAN_NETS=$(ls /sys/class/net | sort | tr '\n' ' ')
	PODMAN_FORWARD=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)
	# Which of podman's host directories this build tree's tests made,
	# and which tests use podman now (podman_cleanup).
	mkdir -p "$PODMAN_CACHE/users"
	(
		flock -w 60 8 || exit 1
		for pd_d in $PODMAN_HOST_DIRS; do
			[ -e "$pd_d" ] || grep -qx "$pd_d" \
			    "$PODMAN_CACHE/host-dirs" 2>/dev/null ||
				echo "$pd_d" >>"$PODMAN_CACHE/host-dirs"
		done
		: >"$PODMAN_CACHE/users/$$"
	) 8>"$PODMAN_CACHE/.users.lock"
	trap 'podman_cleanup; tap_cleanup' EXIT
}

# pm ARGS...: podman, its temporary files (and buildah's cache mounts,
# which live in TMPDIR) in $PODMAN_DIR/tmp.
pm() {
	TMPDIR="$PODMAN_DIR/tmp" podman "$@"
}

podman_now() {
	date +%s.%N
}

# podman_since T0: seconds since T0 (podman_now), one decimal.
podman_since() {
	awk -v a="$1" -v b="$(podman_now)" 'BEGIN { printf "%.1f\n", b - a }'
}

# The helpers' variables start with pd_, not to clobber a test's.
podman_base() {
	pd_t0=$(podman_now)
	BASE_MADE=0
	mkdir -p "$PODMAN_CACHE"
	pd_tar=$PODMAN_CACHE/debian-bookworm.tar
	(
		flock -w 900 9 || exit 1
		podman_rootfs "$pd_tar"
	) 9>"$PODMAN_CACHE/.lock" >"$PODMAN_DIR/base.out" 2>&1 || {
		cat "$PODMAN_DIR/base.out" >&2
		tail -n 20 "$PODMAN_CACHE/debootstrap.log" >&2 2>/dev/null
		return 1
	}
	[ -f "$PODMAN_DIR/base.made" ] && BASE_MADE=1
	pm import --change 'CMD ["/bin/bash"]' --change "ENV PATH=$PATH_SYS" \
	    "$pd_tar" "$BASE_IMAGE" >"$PODMAN_DIR/import.out" 2>&1 || {
		cat "$PODMAN_DIR/import.out" >&2
		return 1
	}
	BASE_S=$(podman_since "$pd_t0")
}

# podman_rootfs TAR: TAR made with debootstrap, unless it is there and was
# made from the same mirrors ($TAR.stamp).  Under podman_base's lock.
podman_rootfs() {
	pd_stamp="minbase bookworm $PODMAN_MIRROR ${PODMAN_SECURITY:-none} 2"
	[ -s "$1" ] && [ "$(cat "$1.stamp" 2>/dev/null)" = "$pd_stamp" ] &&
		return 0
	# A rootfs left by a test that was killed goes too.
	rm -rf "$1" "$1.stamp" "$PODMAN_CACHE"/rootfs.*
	pd_root=$PODMAN_CACHE/rootfs.$$
	debootstrap --variant=minbase bookworm "$pd_root" "$PODMAN_MIRROR" \
	    >"$PODMAN_CACHE/debootstrap.log" 2>&1 || {
		rm -rf "$pd_root"
		return 1
	}
	rm -rf "$pd_root"/var/cache/apt/archives/*.deb \
	    "$pd_root"/var/lib/apt/lists/* "$pd_root/etc/apt/sources.list"
	# apt's sources as in Debian's images: the Dockerfiles' pins come
	# from all three suites.
	pd_keys=/usr/share/keyrings/debian-archive-keyring.gpg
	{
		printf 'Types: deb\nURIs: %s\n' "$PODMAN_MIRROR"
		printf 'Suites: bookworm bookworm-updates\nComponents: main\n'
		printf 'Signed-By: %s\n' "$pd_keys"
		[ -z "$PODMAN_SECURITY" ] ||
			printf '\n%s\nURIs: %s\n%s\n%s\nSigned-By: %s\n' \
			    "Types: deb" "$PODMAN_SECURITY" \
			    "Suites: bookworm-security" "Components: main" \
			    "$pd_keys"
	} >"$pd_root/etc/apt/sources.list.d/debian.sources"
	# And apt's hook that deletes the downloads, as debuerreotype writes
	# it for Debian's images (the Dockerfiles' cache mounts meet it).
	pd_rm='rm -f /var/cache/apt/archives/*.deb'
	pd_rm="$pd_rm /var/cache/apt/archives/partial/*.deb"
	pd_rm="$pd_rm /var/cache/apt/*.bin || true"
	{
		echo "DPkg::Post-Invoke { \"$pd_rm\"; };"
		echo "APT::Update::Post-Invoke { \"$pd_rm\"; };"
		echo 'Dir::Cache::pkgcache "";'
		echo 'Dir::Cache::srcpkgcache "";'
	} >"$pd_root/etc/apt/apt.conf.d/docker-clean"
	pd_rc=0
	tar --numeric-owner -C "$pd_root" -cf "$1.tmp" . &&
		mv "$1.tmp" "$1" && echo "$pd_stamp" >"$1.stamp" || pd_rc=1
	rm -rf "$pd_root" "$1.tmp"
	[ $pd_rc -ne 0 ] || : >"$PODMAN_DIR/base.made"
	return $pd_rc
}

podman_build() {
	pd_log=$1
	shift
	pd_t0=$(podman_now)
	pd_rc=0
	pm build --pull=never --network=host --format docker --layers \
	    --build-arg BUILD_IMAGE="$BASE_IMAGE" \
	    --build-arg RUNTIME_IMAGE="$BASE_IMAGE" "$@" >"$pd_log" 2>&1 ||
		pd_rc=$?
	BUILD_S=$(podman_since "$pd_t0")
	return $pd_rc
}

podman_images() {
	pd_ctx=${1:-$top_srcdir}
	[ -n "${BASE_S:-}" ] || podman_base || return 1
	podman_build "$PODMAN_DIR/build-modelcached.log" \
	    -f "$pd_ctx/deploy/Dockerfile" -t "$MC_IMAGE" "$pd_ctx" || return 1
	MC_BUILD_S=$BUILD_S
	podman_build "$PODMAN_DIR/build-gpt2-server.log" -t "$INF_IMAGE" \
	    -f "$pd_ctx/deploy/Dockerfile.inference" "$pd_ctx" || return 1
	INF_BUILD_S=$BUILD_S
}

podman_mounts() {
	[ -n "$PODMAN_DIR" ] || return 0
	awk -v d="$PODMAN_DIR" 'index($5, d) == 1 { print $5 }' \
	    /proc/self/mountinfo
}

podman_cleanup() {
	[ -n "$PODMAN_DIR" ] && [ -f "$PODMAN_DIR/containers.conf" ] || return 0
	# Once: every podman command makes /run/containers/networks again.
	[ -z "${PODMAN_CLEANED:-}" ] || return 0
	PODMAN_CLEANED=1
	{
		pm pod rm -a -f -t 0
		pm rm -a -f -t 0
		pm volume rm -a -f
		[ -n "${KEEP:-}" ] || pm system reset -f
	} >>"$PODMAN_DIR/cleanup.out" 2>&1
	# Deepest first.
	podman_mounts | sort -r | while read -r pd_m; do
		umount "$pd_m" 2>/dev/null || umount -l "$pd_m" 2>/dev/null
	done
	(
		flock -w 60 8 || exit 1
		rm -f "$PODMAN_CACHE/users/$$"
		for pd_u in "$PODMAN_CACHE"/users/*; do
			[ -f "$pd_u" ] || continue
			kill -0 "${pd_u##*/}" 2>/dev/null && exit 0
			rm -f "$pd_u"
		done
		# The last one out: only the files podman is known to make.
		[ -f "$PODMAN_CACHE/host-dirs" ] || exit 0
		while read -r pd_d; do
			rm -f "$pd_d/cache/blob-info-cache-v1.boltdb"
			rmdir "$pd_d/cache" "$pd_d/networks" "$pd_d" 2>/dev/null
			[ ! -e "$pd_d" ] || echo "$pd_d"
		done <"$PODMAN_CACHE/host-dirs" >"$PODMAN_CACHE/host-dirs.new"
		cd "$PODMAN_CACHE" || exit 1
		if [ -s host-dirs.new ]; then
			mv host-dirs.new host-dirs
		else
			rm -f host-dirs.new host-dirs
		fi
	) 8>"$PODMAN_CACHE/.users.lock"
	return 0
}

podman_leftovers() {
	podman_mounts | sed 's/^/mount: /'
	# Matched in the shell: a grep for it would find itself.
	for pd_p in /proc/[0-9]*; do
		pd_c=$({ tr '\0' ' ' <"$pd_p/cmdline"; } 2>/dev/null) ||
			continue
		case $pd_c in
		*"$PODMAN_DIR"*)
			echo "process ${pd_p#/proc/}: $pd_c" | cut -c 1-160 ;;
		esac
	done
	pd_nets=$(ls /sys/class/net | sort | tr '\n' ' ')
	[ "$pd_nets" = "$PODMAN_NETS" ] ||
		echo "network interfaces: before '$PODMAN_NETS', now '$pd_nets'"
	pd_f=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)
	[ "$pd_f" = "$PODMAN_FORWARD" ] ||
		echo "net.ipv4.ip_forward: before $PODMAN_FORWARD, now $pd_f"
	# podman's host directories, when no other test uses podman.
	ls "$PODMAN_CACHE/users" 2>/dev/null | grep -q . && return 0
	for pd_d in $PODMAN_HOST_DIRS; do
		[ ! -e "$pd_d" ] ||
		    ! grep -qx "$pd_d" "$PODMAN_CACHE/host-dirs" 2>/dev/null ||
			echo "left: $pd_d"
	done
	return 0
}
