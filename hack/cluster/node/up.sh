#!/usr/bin/env bash
# Starts a real single-node cluster: the control plane plus a kubelet that runs pods with
# containerd and runc, the bridge CNI, kube-proxy, CoreDNS, kube-router's network-policy
# controller and local-path-provisioner (the default StorageClass). Reached through
# `hack/cluster/up.sh` with PARTYQUIZ_CLUSTER_NODE=real (`make cluster-up NODE=real`).
#
# Everything node-side lives in a network namespace and a private mount namespace of its own
# (names in node/lib.sh). The host gets one loopback port for the apiserver and keeps its
# routes, firewall and sysctls: kubelet's kernel tunables are read-only stand-ins inside the
# node's mount namespace, and the paths node components hard-code (/run, /var/lib, /var/log)
# are tmpfs there. Safe to run twice; a partly running node is torn down and started afresh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PARTYQUIZ_CLUSTER_NODE=real
# shellcheck source=../lib.sh
source "$HERE/lib.sh"

START_TIMEOUT=${PARTYQUIZ_CLUSTER_START_TIMEOUT:-120}
start=$SECONDS

# --- preflight: say exactly what is missing before touching anything -------------------------
[ "$(id -u)" -eq 0 ] || die "a real node needs root (network namespaces, mounts, cgroups)"
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy \
    containerd containerd-shim-runc-v2 ctr kube-router local-path-provisioner; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing; build it first: make cluster-build NODE=real"
done
for f in "$PAUSE_ARCHIVE" "$COREDNS_ARCHIVE"; do
    [ -s "$f" ] || die "$f is missing; build it first: make cluster-build NODE=real"
done
[ -s "$HELPER_ARCHIVE" ] || die "$HELPER_ARCHIVE is missing; make it with hack/images/bootstrap.sh"
for t in ip nsenter unshare setsid socat iptables ipset openssl mount; do
    command -v "$t" >/dev/null 2>&1 || die "$t is missing; install it with hack/bootstrap.sh test"
done
[ -x /usr/sbin/runc ] || die "/usr/sbin/runc is missing (Debian package runc)"
for p in bridge host-local loopback; do
    [ -x "/usr/lib/cni/$p" ] || die "/usr/lib/cni/$p is missing (Debian package containernetworking-plugins)"
done
case "$STATE_DIR/" in
    /run/* | /var/run/* | /var/lib/* | /var/log/*)
        die "PARTYQUIZ_CLUSTER_DIR=$STATE_DIR: the node mounts tmpfs over /run, /var/lib and /var/log; put the state elsewhere" ;;
esac
# Unix socket paths are limited to 107 bytes.
[ ${#CONTAINERD_SOCK} -le 100 ] || die "PARTYQUIZ_CLUSTER_DIR=$STATE_DIR is too long for the node's sockets; use a shorter path"

mkdir -p "$STATE_DIR"
recorded=$(cat "$MODE_FILE" 2>/dev/null || echo real)
if [ "$recorded" != real ] && [ -d "$STATE_DIR/etcd" ]; then
    die "$STATE_DIR holds a cluster started with PARTYQUIZ_CLUSTER_NODE=$recorded; stop it and \
delete its state first (hack/cluster/down.sh --purge) or use another PARTYQUIZ_CLUSTER_DIR"
fi
exec 8>"$STATE_DIR/.node.lock"
flock 8

if plane_healthy; then
    log "real node already running: $APISERVER_URL (kubeconfig $KUBECONFIG_FILE)"
    exit 0
fi
if [ -e "/run/netns/$NETNS" ] && [ "$(cat "$NODE_DIR/netns" 2>/dev/null)" != "$NETNS" ]; then
    die "network namespace $NETNS exists but is not this run's ($STATE_DIR); another run uses \
PARTYQUIZ_CLUSTER_PORT_BASE=$PORT_BASE, so pick another one"
fi
if [ -e "/run/netns/$NETNS" ] || [ -d "$NODE_DIR/pids" ] || ls "$STATE_DIR"/pids/*.pid >/dev/null 2>&1; then
    log "a previous node of this state dir is partly running or was not cleaned up; stopping it first"
    report_crashed keep
    "$HERE/down.sh"
fi
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_busy "$APISERVER_PORT" && die "port 127.0.0.1:$APISERVER_PORT is taken by another process; \
pick other ports with PARTYQUIZ_CLUSTER_PORT_BASE (now $PORT_BASE)"

echo real >"$MODE_FILE"
mkdir -p "$STATE_DIR"/{pids,logs,pki} "$NODE_DIR"/{containerd,cni/net.d,cni/ipam,kubelet,pod-logs,sysctl,volumes,local-path}
chmod 700 "$STATE_DIR" "$STATE_DIR/pki"
echo "$NETNS" >"$NODE_DIR/netns"

AWAITED=("${NODE_COMPONENTS[@]}")
# Starts a node process detached, logging to logs/<name>.log. `where` is how to enter the node:
# host, netns (network namespace only) or node (network and private mount namespace).
start_node_process() { # name where command...
    local name=$1 where=$2
    shift 2
    printf '\n=== %s starting %s\n' "$(date -u +%FT%TZ)" "$1" >>"$(log_file "$name")"
    case "$where" in
        host) setsid "$@" </dev/null >>"$(log_file "$name")" 2>&1 8>&- 9>&- & ;;
        netns) setsid nsenter --net="/run/netns/$NETNS" -- "$@" </dev/null >>"$(log_file "$name")" 2>&1 8>&- 9>&- & ;;
        node) setsid nsenter -t "$(component_pid node-holder)" -m -n -- "$@" </dev/null >>"$(log_file "$name")" 2>&1 8>&- 9>&- & ;;
    esac
    echo $! >"$(pid_file "$name")"
}
kubectl_node() { in_netns "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=10s "$@"; }

# --- 1. network namespace: the node's address on a veth pair whose both ends stay inside -------
log "network namespace $NETNS (node $NODE_IP)"
ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
ip -n "$NETNS" link add eth0 type veth peer name eth0-peer
ip -n "$NETNS" addr add "$NODE_IP/24" dev eth0
ip -n "$NETNS" link set eth0 up
ip -n "$NETNS" link set eth0-peer up
# Service addresses must be routable for kube-proxy's DNAT to see connections from the node.
ip -n "$NETNS" route add default dev eth0
# Per network namespace, so the host's values stay as they are.
in_netns sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward && echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables'

# --- 2. private mount namespace, held open by a sleeping process --------------------------------
start_node_process node-holder netns unshare --mount --propagation private -- sleep infinity
holder_ready() {
    local pid
    pid=$(component_pid node-holder) && [ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ]
}
await "the node's mount namespace" 10 holder_ready
# kubelet sets these six host-wide values unless they already hold what it wants; inside the
# node's mount namespace it reads read-only stand-ins holding exactly that and writes nothing.
declare -A tunables=([vm/overcommit_memory]=1 [vm/panic_on_oom]=0 [kernel/panic]=10
    [kernel/panic_on_oops]=1 [kernel/keys/root_maxkeys]=1000000 [kernel/keys/root_maxbytes]=25000000)
mounts="set -e
for d in /run /var/lib /var/log; do mount -t tmpfs -o mode=0755,size=256m partyquiz-node \$d; done"
for t in "${!tunables[@]}"; do
    echo "${tunables[$t]}" >"$NODE_DIR/sysctl/${t//\//.}"
    mounts+="
mount --bind '$NODE_DIR/sysctl/${t//\//.}' /proc/sys/$t
mount -o remount,bind,ro /proc/sys/$t"
done
in_node sh -c "$mounts"

# --- 3. cgroups: kubelet's root, one per run, in every hierarchy (v1 hierarchies are global) ---
for h in $(cgroup_hierarchies); do
    mkdir -p "$h/$CGROUP_NAME"
    if [ -f "$h/cpuset.cpus" ]; then
        cat "$h/cpuset.cpus" >"$h/$CGROUP_NAME/cpuset.cpus"
        cat "$h/cpuset.mems" >"$h/$CGROUP_NAME/cpuset.mems"
    fi
done

# --- 4. containerd ---------------------------------------------------------------------------
cat >"$NODE_DIR/containerd.toml" <<TOML
version = 3
root = '$NODE_DIR/containerd/root'
state = '$NODE_DIR/containerd/state'
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.blockfile', 'io.containerd.snapshotter.v1.erofs']

[grpc]
  address = '$CONTAINERD_SOCK'
[ttrpc]
  address = '$CONTAINERD_SOCK.ttrpc'

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = '$NODE_DIR/containerd/opt'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '$PAUSE_IMAGE'
  [plugins.'io.containerd.cri.v1.runtime']
    # Without CAP_SYS_RESOURCE runc cannot give sandboxes the negative oom_score_adj CRI asks
    # for; containerd then clamps it to its own.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '/usr/sbin/runc'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '$NODE_DIR/cni/net.d'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
TOML
cat >"$NODE_DIR/cni/net.d/10-partyquiz.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "partyquiz",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$NODE_DIR/cni/ipam"}}
  ]
}
JSON
log "containerd $CONTAINERD_VERSION"
start_node_process containerd node "$BIN_DIR/containerd" --config "$NODE_DIR/containerd.toml"
await "containerd's socket" 30 ctr_node version

# --- 5. images every node needs ----------------------------------------------------------------
"$HERE/node/images.sh" "$PAUSE_ARCHIVE" "$COREDNS_ARCHIVE" "$HELPER_ARCHIVE"

# --- 6. control plane, inside the namespace -----------------------------------------------------
# It listens on the namespace's loopback and node address; the host reaches it through the bridge
# started last.
in_netns env PARTYQUIZ_CLUSTER_NODE=real "$HERE/up.sh" --plane-only 8>&-

# --- 7. node identities: client certificates signed by the cluster CA ---------------------------
node_cert() { # name subject
    [ -f "$PKI/$1.crt" ] || issue_cert "$1" ca "$2" "$CLIENT_EXT"
    write_kubeconfig "$NODE_DIR/$1.kubeconfig" "$1" "$1" "https://127.0.0.1:$APISERVER_PORT"
}
node_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
node_cert kube-proxy "/CN=system:kube-proxy"
node_cert kube-router "/CN=system:kube-router"
node_cert local-path-provisioner "/CN=system:local-path-provisioner"
[ -f "$PKI/kubelet-serving.crt" ] || issue_cert kubelet-serving ca "/O=system:nodes/CN=system:node:$NODE_NAME" \
    "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"

# --- 8. kubelet --------------------------------------------------------------------------------
echo "# no upstream resolver: the node's network namespace reaches nothing outside" >"$NODE_DIR/resolv.conf"
cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hosts are refused by default since 1.35.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_NAME
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$CLUSTER_DNS]
resolvConf: $NODE_DIR/resolv.conf
podLogsDir: $NODE_DIR/pod-logs
volumePluginDir: $NODE_DIR/kubelet/volume-plugins
failSwapOn: false
protectKernelDefaults: false
# A negative score needs CAP_SYS_RESOURCE.
oomScoreAdj: 0
# Images come from local archives and cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%", imagefs.inodesFree: "1%"}
maxPods: 110
YAML
log "kubelet $K8S_VERSION (node $NODE_NAME, cgroup root /$CGROUP_NAME)"
start_node_process kubelet node "$BIN_DIR/kubelet" --config="$NODE_DIR/kubelet.yaml" \
    --kubeconfig="$NODE_DIR/kubelet.kubeconfig" --root-dir="$NODE_DIR/kubelet" \
    --cert-dir="$NODE_DIR/kubelet/pki" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"

# --- 9. kube-proxy (iptables inside the namespace; no global conntrack sysctls) -------------
cat >"$NODE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_DIR/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, udpTimeout: 0s, udpStreamTimeout: 0s}
YAML
start_node_process kube-proxy node "$BIN_DIR/kube-proxy" --config="$NODE_DIR/kube-proxy.yaml"

# --- 10. cluster add-ons: RBAC of the node daemons, CoreDNS, the default StorageClass ----------
sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" -e "s|@CLUSTER_DNS@|$CLUSTER_DNS|g" \
    -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g" -e "s|@HELPER_IMAGE@|$HELPER_IMAGE|g" \
    -e "s|@STORAGE_CLASS@|$STORAGE_CLASS|g" -e "s|@NAMESPACE@|$SYSTEM_NAMESPACE|g" \
    "$HERE/node/addons.yaml" >"$NODE_DIR/addons.yaml"
kubectl_node apply --server-side --force-conflicts -f "$NODE_DIR/addons.yaml" >/dev/null

# --- 11. kube-router's network-policy controller, local-path-provisioner -----------------------
start_node_process kube-router node "$BIN_DIR/kube-router" --run-firewall=true --run-router=false \
    --run-service-proxy=false --enable-cni=false --kubeconfig="$NODE_DIR/kube-router.kubeconfig" \
    --hostname-override="$NODE_NAME" --service-cluster-ip-range="$SERVICE_CIDR" \
    --enable-ipv4=true --enable-ipv6=false --metrics-port=0 --health-port=20244
printf '{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["%s"]}]}\n' \
    "$NODE_DIR/volumes" >"$NODE_DIR/local-path/config.json"
kubectl_node -n "$SYSTEM_NAMESPACE" get configmap local-path-config -o 'jsonpath={.data.helperPod\.yaml}' \
    >"$NODE_DIR/local-path/helperPod.yaml"
start_node_process local-path-provisioner node "$BIN_DIR/local-path-provisioner" start \
    --kubeconfig="$NODE_DIR/local-path-provisioner.kubeconfig" \
    --config="$NODE_DIR/local-path/config.json" --helper-pod-file="$NODE_DIR/local-path/helperPod.yaml" \
    --namespace="$SYSTEM_NAMESPACE" --service-account-name=local-path-helper \
    --helper-image="$HELPER_IMAGE" --provisioner-name=rancher.io/local-path \
    --configmap-name=local-path-config

node_ready() {
    [ "$(kubectl_node get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
await "node $NODE_NAME Ready" "$START_TIMEOUT" node_ready
coredns_ready() {
    [ "$(kubectl_node -n "$SYSTEM_NAMESPACE" get deployment coredns -o jsonpath='{.status.readyReplicas}')" = 1 ]
}
await "CoreDNS Ready" "$START_TIMEOUT" coredns_ready

# --- 12. the host's only way in: 127.0.0.1:<apiserver port> -> unix socket -> the namespace ----
start_node_process apiserver-bridge-netns netns socat \
    "UNIX-LISTEN:$APISERVER_SOCK,fork,unlink-early,mode=600" "TCP:127.0.0.1:$APISERVER_PORT"
await "the apiserver bridge's socket" 10 test -S "$APISERVER_SOCK"
start_node_process apiserver-bridge-host host socat \
    "TCP-LISTEN:$APISERVER_PORT,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$APISERVER_SOCK"
await "the apiserver through 127.0.0.1:$APISERVER_PORT" 10 kubectl_admin get --raw /readyz

log "real node up in $((SECONDS - start))s: $APISERVER_URL, Kubernetes $K8S_VERSION, node $NODE_NAME"
log "use it with: export KUBECONFIG=$KUBECONFIG_FILE   (kubectl: $BIN_DIR/kubectl)"
