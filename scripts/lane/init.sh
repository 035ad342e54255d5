#!/bin/sh
# /init of the qemu lanes' initramfs: mount what the agent and its tests
# expect, run every test binary in its package directory, report on the
# console (ttyS0) between @@lane markers, power off. run.sh fills in the @...@
# placeholders.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp
export TETRAGON_LANE=@LANE@ TETRAGON_LANE_FEATURES=@FEATURES@
export TETRAGON_PREBUILT_DIR=/usr/local/bin
export PATH=$TETRAGON_PREBUILT_DIR:$PATH

mnt() { mount -t "$1" "$1" "$2" || echo "@@lane warning: mounting $1 at $2 failed"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o ptmxmode=0666 devpts /dev/pts
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mnt bpf /sys/fs/bpf
mnt tracefs /sys/kernel/tracing
mnt securityfs /sys/kernel/security
mnt cgroup2 /sys/fs/cgroup
ln -sf /proc/self/fd /dev/fd
# modules of the kernel that tests need loaded (run.sh): overlay
for ko in /lib/lane-modules/*.ko; do
	[ -e "$ko" ] && { insmod "$ko" || echo "@@lane warning: insmod $ko failed"; }
done
hostname lane
ip link set lo up

# The line may hold firmware escape codes: start a fresh one.
echo
echo "@@lane begin $(uname -r) lsm=$(cat /sys/kernel/security/lsm) cpus=$(nproc)"
if [ -x "$TETRAGON_PREBUILT_DIR/tetra" ]; then
	echo "@@lane tetra probe"
	tetra probe
fi
# The extra test flags come as a file, not through sed: a -test.run
# pattern holds '|', which neither sed's replacement nor a shell line takes
# as it is. Unquoted on purpose: one flag per word.
test_args=$(cat /tests/test-args 2>/dev/null)
while read -r pkg rel bin; do
	[ -n "$pkg" ] || continue
	echo "@@lane pkg $pkg"
	cd "/tests/$rel" && "./$bin" -test.v -test.timeout=@PKG_TIMEOUT@ $test_args
	echo "@@lane exit $pkg $?"
	cd /
	# Pins keep programs attached after their test binary exits; they would
	# run during the next package. Name them and start the next one clean.
	left=$(find /sys/fs/bpf -mindepth 1 2>/dev/null)
	if [ -n "$left" ]; then
		echo "@@lane warning: $pkg left BPF pins behind:"
		echo "$left" | head -n 20
		rm -rf /sys/fs/bpf/*
	fi
done </tests/list
echo "@@lane end"
poweroff -f
