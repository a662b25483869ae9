# shellcheck shell=bash
# Shared configuration of the local cluster: pinned versions, cache and state locations,
# loopback ports, the node mode. Sourced by build.sh, up.sh, down.sh and status.sh; defines,
# never starts anything.
#
# Environment overrides (all optional):
#   PARTYQUIZ_CACHE               cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/partyquiz)
#   PARTYQUIZ_CLUSTER_DIR         state dir: certs, etcd data, logs, PID files, kubeconfig
#                                 (default $PARTYQUIZ_CACHE/cluster/run)
#   PARTYQUIZ_CLUSTER_PORT_BASE   loopback ports are this plus a fixed offset (default 17000):
#                                 apiserver +443, etcd +379/+380, controller-manager +257,
#                                 scheduler +259, kwok +247. A real node also derives its network
#                                 namespace and cgroup names from it (node/lib.sh).
#   PARTYQUIZ_CLUSTER_NODE        kwok (default: a simulated node) or real (kubelet, containerd
#                                 and the rest in a network namespace of their own; node/lib.sh).
#                                 Unset, the mode the state dir was last started in.
#   PARTYQUIZ_K8S_VERSION, PARTYQUIZ_ETCD_VERSION, PARTYQUIZ_KWOK_VERSION, PARTYQUIZ_HELM_VERSION,
#   PARTYQUIZ_CONTAINERD_VERSION, PARTYQUIZ_COREDNS_VERSION, PARTYQUIZ_KUBE_ROUTER_VERSION,
#   PARTYQUIZ_LOCAL_PATH_VERSION

K8S_VERSION=${PARTYQUIZ_K8S_VERSION:-v1.36.3}
ETCD_VERSION=${PARTYQUIZ_ETCD_VERSION:-v3.5.35}
KWOK_VERSION=${PARTYQUIZ_KWOK_VERSION:-v0.8.0}
HELM_VERSION=${PARTYQUIZ_HELM_VERSION:-v3.22.0}
# The real node (kubelet and kube-proxy come from the Kubernetes version above).
CONTAINERD_VERSION=${PARTYQUIZ_CONTAINERD_VERSION:-v2.3.7}
COREDNS_VERSION=${PARTYQUIZ_COREDNS_VERSION:-v1.14.7}
KUBE_ROUTER_VERSION=${PARTYQUIZ_KUBE_ROUTER_VERSION:-v2.1.0}
LOCAL_PATH_VERSION=${PARTYQUIZ_LOCAL_PATH_VERSION:-v0.0.30}

CACHE_ROOT=${PARTYQUIZ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/partyquiz}
CLUSTER_CACHE="$CACHE_ROOT/cluster"
BIN_DIR="$CLUSTER_CACHE/bin"
STATE_DIR=${PARTYQUIZ_CLUSTER_DIR:-$CLUSTER_CACHE/run}

# Below the kernel's ephemeral range (32768+) so outgoing connections never take them.
PORT_BASE=${PARTYQUIZ_CLUSTER_PORT_BASE:-17000}
APISERVER_PORT=$((PORT_BASE + 443))
ETCD_CLIENT_PORT=$((PORT_BASE + 379))
ETCD_PEER_PORT=$((PORT_BASE + 380))
CONTROLLER_MANAGER_PORT=$((PORT_BASE + 257))
SCHEDULER_PORT=$((PORT_BASE + 259))
KWOK_PORT=$((PORT_BASE + 247))

APISERVER_URL="https://127.0.0.1:$APISERVER_PORT"
KUBECONFIG_FILE="$STATE_DIR/kubeconfig"
SERVICE_CIDR=10.96.0.0/16
POD_CIDR=10.244.0.0/16

log() { printf '==> %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# The mode a state dir runs in is recorded by up.sh, so down.sh and status.sh need no flag.
MODE_FILE="$STATE_DIR/node-mode"
RECORDED_MODE=$(cat "$MODE_FILE" 2>/dev/null || true)
NODE_MODE=${PARTYQUIZ_CLUSTER_NODE:-${RECORDED_MODE:-kwok}}
case "$NODE_MODE" in
    kwok | real) ;;
    *) die "PARTYQUIZ_CLUSTER_NODE must be kwok or real, not '$NODE_MODE'" ;;
esac

# Start order; stopped in reverse. A real node runs no kwok: its kubelet registers itself.
if [ "$NODE_MODE" = real ]; then
    NODE_NAME=partyquiz-node
    COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)
else
    NODE_NAME=kwok-node-0
    COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
fi

pid_file() { echo "$STATE_DIR/pids/$1.pid"; }
log_file() { echo "$STATE_DIR/logs/$1.log"; }

# A zombie has exited; its parent (init, for these detached processes) just has not reaped it yet.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# Prints the PID of a component if its PID file names a live process that is still that component.
component_pid() {
    local f pid
    f=$(pid_file "$1")
    [ -f "$f" ] || return 1
    pid=$(cat "$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    # Guard against PID reuse: the process must run the binary we started.
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$(component_pattern "$1")" || return 1
    echo "$pid"
}

# Stops one component by the PID in its PID file: SIGTERM, then SIGKILL after 10 s.
stop_component() {
    local pid
    if pid=$(component_pid "$1"); then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            log "$1 (pid $pid) ignored SIGTERM for 10s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $1 (pid $pid)"
    fi
    rm -f "$(pid_file "$1")"
    [ -n "${pid:-}" ]
}

# --- certificates and kubeconfigs (openssl; the CA lives in the state dir) --------------------
PKI="$STATE_DIR/pki"
CLIENT_EXT="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

issue_cert() { # name ca subject extensions
    openssl genrsa -out "$PKI/$1.key" 2048 2>/dev/null
    openssl req -new -key "$PKI/$1.key" -subj "$3" -out "$PKI/$1.csr" 2>/dev/null
    printf '%s\n' "$4" >"$PKI/$1.ext"
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.crt" -CAkey "$PKI/$2.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$PKI/$1.ext" -out "$PKI/$1.crt" 2>/dev/null
    rm -f "$PKI/$1.csr" "$PKI/$1.ext"
}
issue_ca() { # name common-name
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.crt" -days 3650 \
        -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

# Writes a kubeconfig (mode 600) for the client certificate $PKI/<cert>.{crt,key}.
write_kubeconfig() { # path user cert [server]
    local b64ca b64crt b64key
    b64ca=$(base64 -w0 <"$PKI/ca.crt")
    b64crt=$(base64 -w0 <"$PKI/$3.crt")
    b64key=$(base64 -w0 <"$PKI/$3.key")
    (umask 077 && cat >"$1.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: partyquiz-local
  cluster:
    server: ${4:-$APISERVER_URL}
    certificate-authority-data: $b64ca
users:
- name: $2
  user:
    client-certificate-data: $b64crt
    client-key-data: $b64key
contexts:
- name: partyquiz-local
  context:
    cluster: partyquiz-local
    user: $2
current-context: partyquiz-local
KUBECONFIG
    )
    chmod 600 "$1.tmp"
    mv "$1.tmp" "$1"
}

kubectl_admin() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=10s "$@"; }

# Healthy means: every component alive (a real node's too), apiserver ready, the node Ready.
plane_healthy() {
    local c
    for c in "${COMPONENTS[@]}"; do component_pid "$c" >/dev/null || return 1; done
    if [ "$NODE_MODE" = real ]; then node_processes_alive || return 1; fi
    [ -f "$KUBECONFIG_FILE" ] || return 1
    kubectl_admin get --raw /readyz >/dev/null 2>&1 || return 1
    [ "$(kubectl_admin get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

print_env() {
    printf '%s\n' \
        "K8S_VERSION=$K8S_VERSION" "ETCD_VERSION=$ETCD_VERSION" "KWOK_VERSION=$KWOK_VERSION" \
        "HELM_VERSION=$HELM_VERSION" "BIN_DIR=$BIN_DIR" "STATE_DIR=$STATE_DIR" \
        "KUBECONFIG=$KUBECONFIG_FILE" "APISERVER_URL=$APISERVER_URL" "NODE_NAME=$NODE_NAME" \
        "NODE_MODE=$NODE_MODE"
    [ "$NODE_MODE" = real ] && print_node_env
    return 0
}

# True when a component was started (its PID file exists) and its process is gone. Unlike
# component_pid it trusts the PID alone: a process just forked has not reached its binary yet
# (its command line is still the starting shell's), and a startup poll on a loaded machine must
# not take that moment for a crash.
component_exited() {
    local f pid
    f=$(pid_file "$1")
    [ -f "$f" ] || return 1
    pid=$(cat "$f")
    ! [[ $pid =~ ^[0-9]+$ ]] || ! alive "$pid"
}

# Reports every listed component whose process has exited, with its log's tail, and forgets
# its stale PID file unless the first argument is "keep".
report_exited() { # keep|forget component...
    local c keep=$1
    shift
    for c in "$@"; do
        component_exited "$c" || continue
        printf '%s (pid %s) is not running; last lines of %s:\n' \
            "$c" "$(cat "$(pid_file "$c")")" "$(log_file "$c")" >&2
        tail -n 25 "$(log_file "$c")" 2>/dev/null | sed 's/^/    /' >&2
        [ "$keep" = keep ] || rm -f "$(pid_file "$c")"
    done
}
report_crashed() { report_exited "${1:-forget}" "${COMPONENTS[@]}"; }

# Polls `check` until it succeeds; fails early, with the log tails, when one of the components
# in the array AWAITED (the plane's or the node's; set by the caller) exits, and after `timeout`.
await() { # description timeout check...
    local what=$1 timeout=$2 deadline c
    shift 2
    deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        for c in "${AWAITED[@]}"; do
            if component_exited "$c"; then
                report_exited keep "${AWAITED[@]}"
                die "$c exited while waiting for $what"
            fi
        done
        if [ $SECONDS -ge "$deadline" ]; then
            report_exited keep "${AWAITED[@]}"
            die "timed out after ${timeout}s waiting for $what; logs in $STATE_DIR/logs"
        fi
        sleep 0.2
    done
}

# shellcheck source=node/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/node/lib.sh"
