#!/usr/bin/env bash
# install-deps.sh installs what the kernel lanes need: qemu, busybox-static,
# cpio, and the Debian kernels the qemu lanes boot (downloaded into
# $LANE_CACHE, not installed). Safe to run again: it only does what is missing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

missing=()
for p in "${LANE_DEB_TOOLS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# The package lists may be absent (fresh image) or stale (kernel updates).
updated=
apt_update() {
	if [ -z "$updated" ]; then
		apt-get update -q
		updated=1
	fi
}

if [ ${#missing[@]} -gt 0 ]; then
	apt-cache show "${missing[@]}" >/dev/null 2>&1 || apt_update
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || lanes=(debian-6.1 debian-6.12)
for lane in "${lanes[@]}"; do
	if ! lane_kernel_package "$lane" >/dev/null 2>&1; then
		apt_update
	fi
	vmlinuz=$(lane_fetch_kernel "$lane")
	echo "lane $lane: kernel $vmlinuz"
done
