# shellcheck shell=bash
# The real node's names, places and process bookkeeping; sourced by ../lib.sh after it has set
# STATE_DIR and PORT_BASE. Defines, never starts anything (node/up.sh and node/down.sh do).
#
# Everything a node touches outside its state dir is named after the run, so several runs on
# one machine (different PARTYQUIZ_CLUSTER_DIR and PARTYQUIZ_CLUSTER_PORT_BASE) never meet:
#   network namespace  partyquiz-<port base>     (the node, its pods and the control plane)
#   cgroup             /partyquiz-<port base>    (kubelet's cgroupRoot, in every v1 hierarchy)
#   host port          127.0.0.1:<apiserver port> (the only thing on the host's network)
# Addresses inside the namespace (node 10.200.0.2/24, pods 10.244.0.0/24, Services
# 10.96.0.0/16, DNS 10.96.0.10) exist only there, so every run uses the same ones.

NETNS=partyquiz-$PORT_BASE
CGROUP_NAME=partyquiz-$PORT_BASE
NODE_DIR="$STATE_DIR/node"
NODE_IP=10.200.0.2
POD_SUBNET=10.244.0.0/24
POD_GATEWAY=10.244.0.1
CLUSTER_DNS=10.96.0.10
CLUSTER_DOMAIN=cluster.local
CONTAINERD_SOCK="$NODE_DIR/containerd/containerd.sock"
APISERVER_SOCK="$NODE_DIR/apiserver.sock"
STORAGE_CLASS=standard
SYSTEM_NAMESPACE=kube-system

# Content of the pause image's source decides its version, so an edit rebuilds it.
PAUSE_VERSION=$(cat "$(dirname "${BASH_SOURCE[0]}")"/pause/{main.go,go.mod} | sha256sum | cut -c1-12)

# Node-side processes in start order (stopped in reverse). The holder keeps the node's private
# mount namespace alive; the two bridges carry the host's loopback port to the apiserver.
NODE_COMPONENTS=(node-holder containerd kubelet kube-proxy kube-router local-path-provisioner
    apiserver-bridge-netns apiserver-bridge-host)

# Images every node needs, as OCI archives (made by build.sh --node and hack/images/bootstrap.sh).
node_image() { echo "localhost/partyquiz-node/$1:$2"; }
PAUSE_IMAGE=$(node_image pause "$PAUSE_VERSION")
COREDNS_IMAGE=$(node_image coredns "$COREDNS_VERSION")
PAUSE_ARCHIVE="$CLUSTER_CACHE/pause-$PAUSE_VERSION/pause.oci.tar"
COREDNS_ARCHIVE="$CLUSTER_CACHE/coredns-$COREDNS_VERSION/coredns.oci.tar"
# local-path-provisioner's helper pods (mkdir/rm of a volume's directory) need a shell: the
# Debian base every PartyQuiz image is built on, exported once by hack/images/bootstrap.sh.
HELPER_IMAGE=localhost/debian:bookworm-slim
HELPER_ARCHIVE="$CACHE_ROOT/images/oci/localhost_debian_bookworm-slim.oci.tar"

# The text a component's command line must contain, so a recycled PID is never mistaken for it.
component_pattern() {
    case "$1" in
        node-holder) echo "sleep infinity" ;;
        apiserver-bridge-*) echo "$APISERVER_SOCK" ;;
        *) echo "$1" ;;
    esac
}

node_processes_alive() {
    local c
    for c in "${NODE_COMPONENTS[@]}"; do component_pid "$c" >/dev/null || return 1; done
}

# Runs a command inside the node's network and mount namespaces. nsenter moves into the
# holder's working directory, so commands and paths must be absolute.
in_node() {
    local holder
    holder=$(component_pid node-holder) || die "the node's namespace holder is not running"
    nsenter -t "$holder" -m -n -- "$@"
}

# Runs a command in the node's network namespace only (the host's mount namespace).
in_netns() { nsenter --net="/run/netns/$NETNS" -- "$@"; }

# ctr against the node's containerd. Its stderr is shown only when it fails: every call would
# otherwise repeat containerd's notice that cgroup v1 support is deprecated.
ctr_node() {
    local err status=0
    err=$(in_node "$BIN_DIR/ctr" --address "$CONTAINERD_SOCK" --namespace k8s.io "$@" 2>&1 >&3) || status=$?
    [ $status -eq 0 ] || printf '%s\n' "$err" >&2
    return $status
} 3>&1

# Every cgroup v1 hierarchy (and the v2 one of a hybrid host) this node's cgroup lives in.
cgroup_hierarchies() {
    local h
    for h in /sys/fs/cgroup/*/; do
        case "$(stat -f -c %T "$h" 2>/dev/null)" in
            cgroupfs | cgroup2fs) echo "${h%/}" ;;
        esac
    done
}

print_node_env() {
    printf '%s\n' "NETNS=$NETNS" "CGROUP_ROOT=/$CGROUP_NAME" "NODE_DIR=$NODE_DIR" \
        "NODE_IP=$NODE_IP" "CLUSTER_DNS=$CLUSTER_DNS" "STORAGE_CLASS=$STORAGE_CLASS" \
        "CONTAINERD_SOCK=$CONTAINERD_SOCK"
}
