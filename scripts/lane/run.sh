#!/usr/bin/env bash
# run.sh runs the Go tests on one kernel lane and ends with one line
#   lane <name>: N passed, M failed, K skipped
# Its exit status is the tests' status.
#
#   scripts/lane/run.sh host        [packages...]   # this machine's kernel
#   scripts/lane/run.sh debian-6.1  [packages...]   # Debian 6.1 under qemu (TCG)
#   scripts/lane/run.sh debian-6.12 [packages...]   # Debian 6.12 under qemu (TCG)
#
# Packages default to ./... . Must run as root. Environment knobs:
#   LANE_TIMEOUT      guest wall-clock limit in seconds (default 2400: a busy host slows TCG; a quiet run takes ~1,050)
#   LANE_PKG_TIMEOUT  go test -test.timeout per package in the guest (default 20m; pkg/hooks takes ~5 min on a quiet host)
#   LANE_MEM, LANE_SMP  guest memory and CPUs (default 4G, 2: the initramfs
#                     holds every test binary, ~1 GiB unpacked, in the guest's RAM)
#   LANE_ACCEL        qemu -accel (default tcg,thread=single; never kvm)
#   LANE_CACHE        kernel cache and last logs (default /var/cache/tetragon-lanes)
#   LANE_TEST_ARGS    extra flags for every test binary in the guest (e.g. -test.run=X)
#   LANE_LOGLEVEL     guest kernel console loglevel (default 4: errors and worse)
#   LANE_KEEP=1       keep the work directory (initramfs tree) for inspection
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
	exit 2
}

[ $# -ge 1 ] || usage
lane=$1
shift
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
features=$(lane_features "$lane") || { echo "unknown lane: $lane" >&2; usage; }
[ "$(id -u)" = 0 ] || { echo "lanes run as root (tests load BPF programs)" >&2; exit 2; }

export PATH=$PATH:/usr/local/go/bin
cd "$repo" || exit 2
mkdir -p "$LANE_CACHE/logs"
# one log per run, so that two runs of a lane at once keep their own;
# <lane>.log points at the newest, and the 10 newest of a lane are kept
log=$LANE_CACHE/logs/$lane-$(date +%Y%m%d-%H%M%S)-$$.log
: >"$log"
ln -sfn "$(basename "$log")" "$LANE_CACHE/logs/$lane.log"
ls -1t "$LANE_CACHE/logs/$lane"-*.log 2>/dev/null | tail -n +11 | xargs -r rm -f
work=$(mktemp -d /tmp/tetragon-lane-"$lane".XXXXXX)
cleanup() {
	if [ "${LANE_KEEP:-}" = 1 ]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
started=$(date +%s)

elapsed() { echo "$(($(date +%s) - started))s"; }

# The summarizer runs on the host for every lane.
if ! go build -o "$work/summary" ./scripts/lane/summary; then
	echo "lane $lane: 0 passed, 1 failed, 0 skipped"
	exit 1
fi

run_host() {
	echo "== lane host: kernel $(uname -r), features $features"
	if CGO_ENABLED=0 go build -o "$work/tetra" ./cmd/tetra 2>"$work/tetra-build.log"; then
		echo "== tetra probe"
		"$work/tetra" probe || echo "(tetra probe failed)"
	else
		echo "== cmd/tetra does not build, no probe table:"
		sed 's/^/   /' "$work/tetra-build.log"
	fi
	echo "== go test -p 1 -v -count=1 -timeout 30m ${pkgs[*]}"
	# -p 1: the privileged suites watch the whole host (every exec goes
	# through every agent's process cache and export file), so one
	# package's workload must not run during another's assertions, as
	# they do in the qemu lanes. 30m: the appliance suite builds the image
	# first, minutes on a cold cache.
	TETRAGON_LANE=host TETRAGON_LANE_FEATURES=$features \
		go test -p 1 -v -count=1 -timeout 30m "${pkgs[@]}" 2>&1 | tee "$log"
	echo "== lane host took $(elapsed); log: $log"
	"$work/summary" -lane host "$log"
}

# build_initramfs packs busybox, the test binaries with their testdata, and
# tetra into $work/initrd.gz; packages whose tests do not build are written
# to $work/prelude as buildfail markers for the summarizer.
build_initramfs() {
	local root=$work/root module rel bin pkg list=()
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,tests}
	mknod -m 600 "$root/dev/console" c 5 1
	mknod -m 666 "$root/dev/null" c 1 3
	cp /bin/busybox "$root/bin/busybox"
	local applet
	for applet in $("$root/bin/busybox" --list-full); do
		[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
	done
	# What workloads in tests expect of a minimal system.
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	printf 'root:*:19000:0:99999:7:::\n' >"$root/etc/shadow"
	chmod 640 "$root/etc/shadow"
	echo lane >"$root/etc/hostname"
	printf '127.0.0.1 localhost lane\n::1 localhost\n' >"$root/etc/hosts"

	module=$(go list -m)
	: >"$work/prelude"
	while read -r pkg; do
		[ -n "$pkg" ] || continue
		rel=${pkg#"$module"}
		rel=${rel#/}
		[ -n "$rel" ] || rel=.
		bin=$root/tests/$rel/$(basename "$pkg").test
		mkdir -p "$(dirname "$bin")"
		echo "   building $pkg"
		if ! CGO_ENABLED=0 go test -c -o "$bin" "$pkg" 2>&1 | sed 's/^/     /'; then
			echo "@@lane buildfail $pkg" >>"$work/prelude"
			continue
		fi
		if [ ! -x "$bin" ]; then
			echo "@@lane buildfail $pkg" >>"$work/prelude"
			continue
		fi
		[ -d "$rel/testdata" ] && cp -r "$rel/testdata" "$root/tests/$rel/"
		# the guest has no compiler: a test's C programs (testdata/*/NAME.c)
		# are built here, static, as testdata/*/NAME
		for c in "$rel"/testdata/*/*.c; do
			[ -f "$c" ] || continue
			if ! clang-19 -O1 -static -o "$root/tests/${c%.c}" "$c" 2>&1 | sed 's/^/     /'; then
				echo "@@lane buildfail $pkg" >>"$work/prelude"
			fi
		done
		list+=("$pkg $rel $(basename "$bin")")
	done < <(go list -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' "${pkgs[@]}")
	# Tests may read the shipped policies, and the shared fixtures of
	# test/testdata (files of Tetragon's as published), relative to their
	# package.
	[ -d policies ] && cp -r policies "$root/tests/"
	[ -d test/testdata ] && mkdir -p "$root/tests/test" && cp -r test/testdata "$root/tests/test/"
	printf '%s\n' "${list[@]}" >"$root/tests/list"
	# Modules of the lane's kernel: crc7 for the tests of the module hooks
	# (pkg/hooks TestModuleHooks), at the path they look in; overlay, which
	# /init loads, for the tests on an overlay (a container's root).
	if [ "$lane" != host ]; then
		local ko
		if ko=$(lane_kernel_module "$lane" lib/crc7); then
			mkdir -p "$root/lib/test-modules" && cp "$ko" "$root/lib/test-modules/"
		else
			echo "   no test module: the module hook tests will fail"
		fi
		if ko=$(lane_kernel_module "$lane" fs/overlayfs/overlay); then
			mkdir -p "$root/lib/lane-modules" && cp "$ko" "$root/lib/lane-modules/"
		else
			echo "   no overlay module: the overlay tests will skip"
		fi
	fi

	# The guest has no Go toolchain: the commands come prebuilt, on PATH
	# and in $TETRAGON_PREBUILT_DIR, for tests that run them.
	local cmd
	for cmd in cmd/*/; do
		cmd=$(basename "$cmd")
		if CGO_ENABLED=0 go build -o "$root/usr/local/bin/$cmd" "./cmd/$cmd" 2>"$work/$cmd-build.log"; then
			echo "   built $cmd"
		else
			echo "   cmd/$cmd does not build:"
			sed 's/^/     /' "$work/$cmd-build.log"
		fi
	done

	sed -e "s|@FEATURES@|$features|" -e "s|@LANE@|$lane|" \
		-e "s|@PKG_TIMEOUT@|${LANE_PKG_TIMEOUT:-20m}|" "$here/init.sh" >"$root/init"
	printf '%s\n' "${LANE_TEST_ARGS:-}" >"$root/tests/test-args"
	chmod 755 "$root/init"
	(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$work/initrd.gz"
	echo "   initramfs $(du -h "$work/initrd.gz" | cut -f1) ($(du -sh "$root" | cut -f1) unpacked)"
}

run_qemu() {
	local vmlinuz status infra=()
	if ! command -v qemu-system-x86_64 >/dev/null || ! command -v cpio >/dev/null || [ ! -x /bin/busybox ]; then
		"$here/install-deps.sh" "$lane" || exit 2
	fi
	vmlinuz=$(lane_fetch_kernel "$lane") || { "$here/install-deps.sh" "$lane" && vmlinuz=$(lane_fetch_kernel "$lane"); } || exit 2
	echo "== lane $lane: kernel $vmlinuz, features $features"
	echo "== building the initramfs"
	build_initramfs
	echo "== booting (TCG; timeout ${LANE_TIMEOUT:-2400}s) after $(elapsed)"
	cp "$work/prelude" "$log"
	# KVM guests hang on these machines: TCG only, never -enable-kvm. And
	# single-threaded TCG: with one host thread per vCPU, patching the
	# sys_enter static key while the other vCPU runs syscalls left both
	# vCPUs spinning in syscall_trace_enter (soft lockups) -- see README.md.
	timeout "${LANE_TIMEOUT:-2400}" qemu-system-x86_64 \
		-machine q35 -accel "${LANE_ACCEL:-tcg,thread=single}" -cpu max -m "${LANE_MEM:-4G}" -smp "${LANE_SMP:-2}" \
		-nographic -no-reboot \
		-kernel "$vmlinuz" -initrd "$work/initrd.gz" \
		-append "console=ttyS0 panic=-1 loglevel=${LANE_LOGLEVEL:-4} random.trust_cpu=on lsm=$LANE_LSM" \
		</dev/null 2>&1 | tee -a "$log"
	status=${PIPESTATUS[0]}
	case $status in
	0) ;;
	124) infra+=(-infra-error "the guest did not power off within ${LANE_TIMEOUT:-2400}s") ;;
	*) infra+=(-infra-error "qemu exited with status $status") ;;
	esac
	echo "== lane $lane took $(elapsed); console log: $log"
	"$work/summary" -lane "$lane" -console "${infra[@]}" "$log" >"$work/verdict"
	local rc=$?
	if [ $rc -ne 0 ] && grep -q '^lane failures:' "$work/verdict"; then
		echo "== the lane itself failed; last 60 console lines:"
		tail -n 60 "$log" | tr -d '\r'
	fi
	cat "$work/verdict"
	return $rc
}

case $lane in
host) run_host ;;
*) run_qemu ;;
esac
