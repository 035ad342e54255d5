#!/bin/sh
# ensure-dockerd.sh: make a usable Docker engine available on this machine, for the
# container-metadata tests and the e2e suite.
#
#  1. installs Debian's docker.io (and busybox-static) when dockerd is missing, and
#     with WITH_COMPOSE=1 Debian's docker-compose when neither `docker compose`
#     nor `docker-compose` works;
#  2. starts dockerd in the background when nothing answers on the socket (these
#     machines have no systemd), logging to $DOCKERD_LOG, and waits until
#     `docker info` works, for at most $DOCKERD_WAIT seconds;
#  3. imports the tiny base image $TEST_IMAGE from a busybox-static rootfs when it
#     is absent or older than this script's layout of it (there is no registry to
#     pull from).
#
# Idempotent and safe to run concurrently (serialised with flock). Exits non-zero,
# with the reason on stderr, when any step fails.
set -eu

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
DOCKERD_WAIT=${DOCKERD_WAIT:-60}
TEST_IMAGE=${TEST_IMAGE:-tetragon-test/busybox:latest}
LOCK=${ENSURE_DOCKERD_LOCK:-/run/tetragon-ensure-dockerd.lock}

log() { echo "ensure-dockerd: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (installs packages and starts dockerd)"

# Serialise concurrent runs so two test binaries never start two daemons. The lock
# lives on fd 9, which dockerd must not inherit (it would hold the lock forever).
exec 9>"$LOCK"
if command -v flock >/dev/null 2>&1; then
	flock -w 300 9 || die "timed out waiting for $LOCK"
fi

apt_install() {
	log "installing $*"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; then
		apt-get update >/dev/null 2>&1 || die "apt-get update failed"
		apt-get install -y --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
	fi
}

pkgs=""
command -v dockerd >/dev/null 2>&1 || pkgs="docker.io"
# busybox-static provides /bin/busybox, a static binary that runs alone in a rootfs.
busybox_static() { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }
busybox_static || pkgs="$pkgs busybox-static"
compose_ok() { docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1; }
if [ "${WITH_COMPOSE:-}" = 1 ] && ! compose_ok; then
	pkgs="$pkgs docker-compose"
fi
# Word splitting of $pkgs is wanted: it lists packages.
# shellcheck disable=SC2086
[ -z "$pkgs" ] || apt_install $pkgs
command -v docker >/dev/null 2>&1 || die "docker client missing after installing docker.io"
if [ "${WITH_COMPOSE:-}" = 1 ]; then
	compose_ok || die "neither 'docker compose' nor 'docker-compose' works after installing docker-compose"
fi

daemon_ok() { timeout 10 docker info >/dev/null 2>&1; }

if ! daemon_ok; then
	if pid=$(pgrep -x dockerd 2>/dev/null); then
		# A daemon that is still starting up: give it the same bounded wait.
		log "dockerd (pid $pid) is running but not answering yet; waiting"
	else
		log "starting dockerd (log: $DOCKERD_LOG)"
		mkdir -p "$(dirname "$DOCKERD_LOG")"
		# setsid + nohup: the daemon must outlive this script and the test binary
		# that ran it, and must not get their SIGHUP/SIGINT.
		setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
	fi
	i=0
	until daemon_ok; do
		i=$((i + 1))
		if [ "$i" -ge "$DOCKERD_WAIT" ]; then
			log "dockerd did not answer within ${DOCKERD_WAIT}s; last lines of $DOCKERD_LOG:"
			tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
			exit 1
		fi
		sleep 1
	done
	log "dockerd is up"
fi

# Bump when the rootfs below changes: an image with another (or no) layout label
# is imported again. 2: /etc/shadow, which the file-monitoring scenario reads.
LAYOUT=2
layout=$(docker image inspect -f '{{index .Config.Labels "org.tetragon-lite.test-image"}}' "$TEST_IMAGE" 2>/dev/null || true)
if [ "$layout" != "$LAYOUT" ]; then
	old=$(docker image inspect -f '{{.Id}}' "$TEST_IMAGE" 2>/dev/null || true)
	log "importing $TEST_IMAGE from busybox-static (layout $LAYOUT)"
	rootfs=$(mktemp -d)
	trap 'rm -rf "$rootfs"' EXIT
	mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
	chmod 1777 "$rootfs/tmp"
	cp /bin/busybox "$rootfs/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
	done
	ln -s bin "$rootfs/sbin"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\nshadow:x:42:\n' >"$rootfs/etc/group"
	printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' >"$rootfs/etc/shadow"
	chmod 640 "$rootfs/etc/shadow"
	chgrp 42 "$rootfs/etc/shadow"
	tar -C "$rootfs" --numeric-owner -cf - . | docker import \
		--change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["/bin/sh"]' \
		--change "LABEL org.tetragon-lite.test-image=$LAYOUT" \
		- "$TEST_IMAGE" >/dev/null || die "docker import of $TEST_IMAGE failed"
	# The replaced image, unless a container still uses it.
	[ -z "$old" ] || docker image rm "$old" >/dev/null 2>&1 || true
fi
