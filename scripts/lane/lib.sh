# Shared helpers of the kernel lanes; sourced by run.sh and install-deps.sh.
# shellcheck shell=bash disable=SC2034 # the variables are used by the sourcing scripts

LANE_CACHE=${LANE_CACHE:-/var/cache/tetragon-lanes}

# Host tools every qemu lane needs, as Debian package names.
LANE_DEB_TOOLS=(qemu-system-x86 busybox-static cpio gzip xz-utils)

# lane_kernel_meta prints the Debian metapackage that tracks a lane's kernel.
# The metapackages follow security updates, so a lane always boots the newest
# kernel of its series that the archive has.
lane_kernel_meta() {
	case "$1" in
	debian-6.1) echo linux-image-amd64 ;;
	debian-6.12) echo linux-image-6.12-amd64 ;;
	*) return 1 ;;
	esac
}

# lane_kernel_package resolves a lane's metapackage to the versioned image
# package it depends on (e.g. linux-image-6.1.0-56-amd64).
lane_kernel_package() {
	local meta pkg
	meta=$(lane_kernel_meta "$1") || { echo "unknown qemu lane $1" >&2; return 1; }
	pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/^ +Depends: linux-image-/ {print $2; exit}')
	if [ -z "$pkg" ]; then
		echo "apt has no $meta (run apt-get update?)" >&2
		return 1
	fi
	echo "$pkg"
}

# lane_fetch_kernel downloads a lane's kernel .deb with apt and unpacks it
# into the cache (never into /boot). It prints the path of the vmlinuz.
# Idempotent: an unpacked kernel is reused.
lane_fetch_kernel() {
	local pkg dir vmlinuz
	pkg=$(lane_kernel_package "$1") || return 1
	dir="$LANE_CACHE/$pkg"
	vmlinuz=$(find "$dir/root/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)
	if [ -n "$vmlinuz" ]; then
		echo "$vmlinuz"
		return 0
	fi
	mkdir -p "$dir"
	# apt drops privileges to _apt for downloads; let it write here.
	chmod 0777 "$dir"
	(cd "$dir" && apt-get download -q "$pkg" >&2) || { echo "apt-get download $pkg failed" >&2; return 1; }
	rm -rf "$dir/root"
	dpkg-deb -x "$dir"/"$pkg"_*.deb "$dir/root" || { echo "unpacking $pkg failed" >&2; return 1; }
	# Modules are not needed (everything the lanes use is built in), nor is
	# the .deb once unpacked.
	rm -rf "$dir/root/lib/modules" "$dir/root/usr/lib/modules" "$dir"/*.deb
	vmlinuz=$(find "$dir/root/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)
	[ -n "$vmlinuz" ] || { echo "$pkg has no boot/vmlinuz-*" >&2; return 1; }
	echo "$vmlinuz"
}

# lane_kernel_module LANE PATH prints the path, in the cache, of the module
# kernel/PATH.ko of a lane's kernel (PATH: lib/crc7, say). lane_fetch_kernel
# drops the modules, so each is taken from the kernel's .deb once; 6.12's
# are xz-compressed and unpacked here, so that the kernel needs no module
# decompression. Debian signs every module of its kernels.
lane_kernel_module() {
	local pkg dir tmp name
	pkg=$(lane_kernel_package "$1") || return 1
	name=$(basename "$2")
	dir="$LANE_CACHE/$pkg/modules"
	if [ ! -f "$dir/$name.ko" ]; then
		tmp=$(mktemp -d)
		chmod 0777 "$tmp"
		(cd "$tmp" && apt-get download -q "$pkg" >&2) || { echo "apt-get download $pkg failed" >&2; rm -rf "$tmp"; return 1; }
		dpkg-deb --fsys-tarfile "$tmp"/"$pkg"_*.deb | tar -x -C "$tmp" --wildcards "*/kernel/$2.ko*" 2>/dev/null
		find "$tmp" -name "$name.ko.xz" -exec xz -d {} \;
		mkdir -p "$dir"
		find "$tmp" -name "$name.ko" -exec cp {} "$dir/" \;
		rm -rf "$tmp"
		[ -f "$dir/$name.ko" ] || { echo "$pkg has no kernel/$2.ko" >&2; return 1; }
	fi
	echo "$dir/$name.ko"
}

# lane_features prints, comma-separated, exactly the pkg/kernelfeatures features the
# lane's kernel is known to have (measured; see scripts/lane/README.md). A
# test that needs one of them fails on the lane instead of skipping.
lane_features() {
	local host=tracepoint,raw_tracepoint,tp_btf,uprobe,send_signal,ringbuf,bpf_loop,link_pinning,btf
	# Debian kernels with lsm=...,bpf; neither has CONFIG_BPF_KPROBE_OVERRIDE
	# (nor CONFIG_FUNCTION_ERROR_INJECTION), so no override_return.
	local debian=kprobe,kretprobe,fentry,fexit,fmod_ret,bpf_lsm,$host
	case "$1" in
	host) echo "$host" ;;
	debian-6.1) echo "$debian" ;; # no CONFIG_FPROBE: no kprobe_multi
	debian-6.12) echo "kprobe_multi,$debian" ;;
	*) return 1 ;;
	esac
}

# The LSM list the qemu lanes boot with: Debian's default list does not
# start the bpf LSM.
LANE_LSM=lockdown,capability,landlock,yama,apparmor,bpf
