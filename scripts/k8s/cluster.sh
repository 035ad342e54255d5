#!/usr/bin/env bash
# cluster.sh up|down|env|images|status: a real single-node Kubernetes cluster on
# this machine, for the Kubernetes e2e suite and for trying the manifests.
#
#   up      builds (once, cached; scripts/k8s/build.sh) and starts etcd,
#           kube-apiserver, kube-controller-manager, kube-scheduler, a second
#           containerd with its CRI plugin, and a kubelet; imports the pause,
#           agent and xwing images; waits until the node is Ready. Idempotent:
#           what already runs is left alone, images are imported again.
#   down    stops everything `up` started (by the pids it recorded), removes the
#           pods' containers and the cluster's state.
#   env     prints `export KUBECONFIG=...`: eval "$(scripts/k8s/cluster.sh env)"
#   images  rebuilds and imports the images only (after an agent change).
#   status  exits 0 when the API server answers and the node is Ready.
#
# Everything listens on loopback (the kubelet too: the API server reaches it by
# the node's name, which /etc/hosts maps to 127.0.0.1). There is no kube-proxy,
# so pods reach the API server through the host network at 127.0.0.1:6443 (the
# test overlay of the manifests sets KUBERNETES_SERVICE_HOST so).
#
# Facts of these machines the choices below rest on:
#   - Docker's own containerd runs with disabled_plugins = ["cri"], so the
#     kubelet gets a second containerd (Debian's, which has CRI compiled in) with
#     its own socket, root and state.
#   - The host is cgroup v1 (with a cgroup2 `unified` mount); kubelets since 1.35
#     refuse cgroup v1 unless KubeletConfiguration says failCgroupV1: false.
#   - No registry is reachable: images are built locally with Docker and imported
#     with `ctr -n k8s.io images import`; pods use imagePullPolicy: Never or a
#     non-latest tag.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
K8S_VERSION=${K8S_VERSION:-v1.37.2}
STATE=${K8S_STATE:-/var/lib/tetragon-k8s}
RUN=${K8S_RUN:-/run/tetragon-k8s}
PKI=$STATE/pki
LOG=$STATE/log
KUBECONFIG_FILE=$STATE/admin.kubeconfig
CTR_SOCK=$RUN/containerd.sock
NODE=$(hostname | tr '[:upper:]' '[:lower:]')
ETCD_PORT=23790
API_PORT=6443
# Images the cluster serves locally; the manifests' test overlay names them.
PAUSE_IMAGE=docker.io/tetragon-test/pause:v1
AGENT_IMAGE=docker.io/tetragon-lite/tetragon:k8s
XWING_IMAGE=docker.io/tetragon-test/xwing:v1
# Where build.sh caches the binaries.
BIN=${K8S_CACHE:-/var/cache/tetragon-k8s}/$K8S_VERSION/bin

log() { echo "cluster.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# ensure_packages installs what a fresh Debian machine lacks: Debian's etcd, the
# CNI plugins, containerd (with docker.io) and bash-static for the xwing image.
ensure_packages() {
	local pkgs=(etcd-server containernetworking-plugins bash-static openssl) missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } ||
			die "apt-get install ${missing[*]} failed"
	fi
	"$repo/scripts/docker/ensure-dockerd.sh"
	command -v containerd >/dev/null || die "containerd missing after installing docker.io"
}

# pki writes a CA, the API server's serving certificate, one admin client
# certificate (system:masters; also used by the controllers, scheduler and
# kubelet: one trust domain on one node) and the service-account key pair.
pki() {
	[ -f "$PKI/.complete" ] && return 0
	rm -rf "$PKI"
	mkdir -p "$PKI"
	(
		cd "$PKI"
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tetragon-k8s-ca" \
			-keyout ca.key -out ca.crt 2>/dev/null
		cat >apiserver.ext <<-EOF
			subjectAltName = DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE,IP:127.0.0.1,IP:10.96.0.1
			extendedKeyUsage = serverAuth
		EOF
		openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
			-extfile apiserver.ext -out apiserver.crt 2>/dev/null
		echo "extendedKeyUsage = clientAuth" >client.ext
		openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=admin" -keyout admin.key -out admin.csr 2>/dev/null
		openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
			-extfile client.ext -out admin.crt 2>/dev/null
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
	)
	touch "$PKI/.complete"
}

write_kubeconfig() {
	cat >"$KUBECONFIG_FILE" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: tetragon-k8s
		  cluster:
		    server: https://127.0.0.1:$API_PORT
		    certificate-authority: $PKI/ca.crt
		users:
		- name: admin
		  user:
		    client-certificate: $PKI/admin.crt
		    client-key: $PKI/admin.key
		contexts:
		- name: tetragon-k8s
		  context: {cluster: tetragon-k8s, user: admin, namespace: default}
		current-context: tetragon-k8s
	EOF
}

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# start NAME CMD...: runs CMD in its own session, logging to $LOG/NAME.log, and
# records its pid. Leaves a running one alone.
start() {
	local name=$1
	shift
	running "$name" && return 0
	setsid nohup "$@" >>"$LOG/$name.log" 2>&1 </dev/null 9>&- &
	echo $! >"$RUN/$name.pid"
}

# wait_for WHAT SECONDS CMD...: polls CMD once a second; on timeout prints the
# log of WHAT and fails.
wait_for() {
	local what=$1 secs=$2 i=0
	shift 2
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -ge "$secs" ]; then
			log "$what not ready after ${secs}s; last lines of $LOG/$what.log:"
			tail -n 30 "$LOG/$what.log" >&2 || true
			exit 1
		fi
		running "$what" || {
			log "$what exited; last lines of $LOG/$what.log:"
			tail -n 30 "$LOG/$what.log" >&2 || true
			exit 1
		}
		sleep 1
	done
}

kubectl_() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

start_containerd() {
	mkdir -p "$STATE/containerd" "$STATE/cni/net.d" "$RUN/containerd-state"
	cat >"$STATE/containerd/config.toml" <<-EOF
		version = 2
		root = "$STATE/containerd/root"
		state = "$RUN/containerd-state"
		[grpc]
		  address = "$CTR_SOCK"
		[ttrpc]
		  address = "$RUN/containerd.sock.ttrpc"
		[debug]
		  address = ""
		[metrics]
		  address = ""
		[plugins]
		  [plugins."io.containerd.internal.v1.opt"]
		    path = "$STATE/containerd/opt"
		  [plugins."io.containerd.grpc.v1.cri"]
		    sandbox_image = "$PAUSE_IMAGE"
		    # The sandbox asks for oom_score_adj -998 (and guaranteed pods'
		    # containers -997): lowering it needs CAP_SYS_RESOURCE, which these
		    # machines withhold, and runc fails ("can't get final child's PID
		    # from pipe"). Keep it no lower than containerd's own.
		    restrict_oom_score_adj = true
		    [plugins."io.containerd.grpc.v1.cri".containerd]
		      snapshotter = "overlayfs"
		      default_runtime_name = "runc"
		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		        runtime_type = "io.containerd.runc.v2"
		        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
		          SystemdCgroup = false
		    [plugins."io.containerd.grpc.v1.cri".cni]
		      bin_dir = "/usr/lib/cni"
		      conf_dir = "$STATE/cni/net.d"
	EOF
	# A bridge on its own subnet; no masquerading: pods need no outside world.
	cat >"$STATE/cni/net.d/10-tetragon-k8s.conflist" <<-EOF
		{
		  "cniVersion": "0.4.0",
		  "name": "tetragon-k8s",
		  "plugins": [
		    {
		      "type": "bridge",
		      "bridge": "tk8s0",
		      "isGateway": true,
		      "ipMasq": false,
		      "ipam": {
		        "type": "host-local",
		        "ranges": [[{"subnet": "10.244.0.0/24"}]],
		        "routes": [{"dst": "0.0.0.0/0"}],
		        "dataDir": "$STATE/cni/ipam"
		      }
		    },
		    {"type": "portmap", "capabilities": {"portMappings": true}}
		  ]
		}
	EOF
	start containerd containerd --config "$STATE/containerd/config.toml"
	wait_for containerd 60 ctr -a "$CTR_SOCK" version
}

# images builds the agent image (scripts/docker/build-image.sh), a pause image
# and the xwing image with Docker, and imports them into the cluster's
# containerd.
images() {
	local rootfs applet
	IMAGE=${AGENT_IMAGE#docker.io/} "$repo/scripts/docker/build-image.sh" >/dev/null
	# pause: the sandbox's first process only has to stay alive; the busybox
	# test image (ensure-dockerd.sh) has sleep.
	printf 'FROM tetragon-test/busybox:latest\nENTRYPOINT ["/bin/sleep", "2147483647"]\n' | DOCKER_BUILDKIT=0 docker build -q \
		--label org.tetragon-lite.k8s=pause -t "${PAUSE_IMAGE#docker.io/}" - >/dev/null
	# xwing, the seed's pod: /bin/bash (bash-static) and a /bin/cat that is
	# a file of its own (busybox picks its applet by argv[0]), so that events
	# show /bin/cat as the seed does, not the busybox a symlink resolves to.
	rootfs=$(mktemp -d)
	mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
	chmod 1777 "$rootfs/tmp"
	cp /bin/busybox "$rootfs/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
	done
	rm -f "$rootfs/bin/cat" "$rootfs/bin/bash"
	cp /bin/busybox "$rootfs/bin/cat"
	cp /bin/bash-static "$rootfs/bin/bash"
	printf 'root:x:0:0:root:/root:/bin/bash\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nshadow:x:42:\n' >"$rootfs/etc/group"
	printf 'root:*:19000:0:99999:7:::\n' >"$rootfs/etc/shadow"
	chmod 640 "$rootfs/etc/shadow"
	tar -C "$rootfs" --numeric-owner -cf - . | docker import \
		--change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["/bin/sleep", "2147483647"]' - "${XWING_IMAGE#docker.io/}" >/dev/null
	rm -rf "$rootfs"
	docker save "${PAUSE_IMAGE#docker.io/}" "${AGENT_IMAGE#docker.io/}" "${XWING_IMAGE#docker.io/}" |
		ctr -a "$CTR_SOCK" -n k8s.io images import - >/dev/null
	log "imported $PAUSE_IMAGE $AGENT_IMAGE $XWING_IMAGE"
}

up() {
	need_root
	ensure_packages
	BIN=$("$repo/scripts/k8s/build.sh")
	mkdir -p "$STATE" "$RUN" "$LOG"
	# The agent's pins outlive its pod only on the node's own bpffs.
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	pki
	write_kubeconfig

	start etcd etcd --name tetragon-k8s --data-dir "$STATE/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
		--initial-cluster tetragon-k8s=http://127.0.0.1:23800
	wait_for etcd 60 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

	start kube-apiserver "$BIN/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address 127.0.0.1 --secure-port "$API_PORT" \
		--client-ca-file "$PKI/ca.crt" \
		--tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
		--kubelet-client-certificate "$PKI/admin.crt" --kubelet-client-key "$PKI/admin.key" \
		--kubelet-preferred-address-types Hostname \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
		--service-cluster-ip-range 10.96.0.0/16 \
		--authorization-mode RBAC --allow-privileged=true
	wait_for kube-apiserver 120 kubectl_ get --raw /readyz

	start kube-controller-manager "$BIN/kube-controller-manager" \
		--kubeconfig "$KUBECONFIG_FILE" --leader-elect=false \
		--bind-address 127.0.0.1 \
		--service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
		--use-service-account-credentials=false
	start kube-scheduler "$BIN/kube-scheduler" \
		--kubeconfig "$KUBECONFIG_FILE" --leader-elect=false --bind-address 127.0.0.1

	start_containerd
	images

	cat >"$STATE/kubelet.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		# The host is cgroup v1; without this the kubelet refuses to start.
		failCgroupV1: false
		cgroupDriver: cgroupfs
		containerRuntimeEndpoint: unix://$CTR_SOCK
		address: 127.0.0.1
		healthzBindAddress: 127.0.0.1
		authentication:
		  anonymous: {enabled: false}
		  webhook: {enabled: false}
		  x509: {clientCAFile: $PKI/ca.crt}
		authorization: {mode: AlwaysAllow}
		# Other tests share this disk: evict only when it is really full.
		evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
		imageGCHighThresholdPercent: 100
		failSwapOn: false
		serializeImagePulls: false
	EOF
	start kubelet "$BIN/kubelet" --config "$STATE/kubelet.yaml" \
		--kubeconfig "$KUBECONFIG_FILE" --root-dir "$STATE/kubelet" \
		--hostname-override "$NODE"
	wait_for kubelet 120 kubectl_ wait --for=condition=Ready "node/$NODE" --timeout=1s
	log "node $NODE is Ready"
	env_
}

env_() {
	echo "export KUBECONFIG=$KUBECONFIG_FILE"
	echo "export PATH=$BIN:\$PATH"
}

stop() {
	local name=$1 pid i
	running "$name" || { rm -f "$RUN/$name.pid"; return 0; }
	pid=$(cat "$RUN/$name.pid")
	kill "$pid" 2>/dev/null || true
	for i in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$RUN/$name.pid"
}

down() {
	need_root
	stop kubelet
	# The pods' containers and shims outlive the kubelet: stop them through the
	# cluster's containerd before it goes.
	if running containerd; then
		local t
		for t in $(ctr -a "$CTR_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr -a "$CTR_SOCK" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
		done
		sleep 2
		for t in $(ctr -a "$CTR_SOCK" -n k8s.io containers ls -q 2>/dev/null); do
			ctr -a "$CTR_SOCK" -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true
			ctr -a "$CTR_SOCK" -n k8s.io containers delete "$t" >/dev/null 2>&1 || true
		done
	fi
	stop kube-scheduler
	stop kube-controller-manager
	stop kube-apiserver
	stop etcd
	stop containerd
	# Mounts the kubelet and containerd left (volumes, rootfs, shm).
	grep -oE " ($STATE|$RUN)/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	ip link del tk8s0 2>/dev/null || true
	rm -rf "$STATE/etcd" "$STATE/kubelet" "$STATE/containerd" "$STATE/cni" "$RUN"
	log "stopped; state removed (certificates and logs kept in $STATE)"
}

status() {
	kubectl_ get --raw /readyz >/dev/null 2>&1 &&
		kubectl_ wait --for=condition=Ready "node/$NODE" --timeout=1s >/dev/null 2>&1
}

case ${1:-} in
up) up ;;
down) down ;;
env) env_ ;;
images)
	need_root
	running containerd || die "the cluster's containerd is not running: run up first"
	images
	;;
status) status ;;
*) die "usage: $0 up|down|env|images|status" ;;
esac
