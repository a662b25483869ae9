# shellcheck shell=bash
# Shared configuration of the local control plane: pinned versions, cache and state locations,
# loopback ports. Sourced by build.sh, up.sh, down.sh and status.sh; defines, never starts anything.
#
# Environment overrides (all optional):
#   PARTYQUIZ_CACHE               cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/partyquiz)
#   PARTYQUIZ_CLUSTER_DIR         state dir: certs, etcd data, logs, PID files, kubeconfig
#                                 (default $PARTYQUIZ_CACHE/cluster/run)
#   PARTYQUIZ_CLUSTER_PORT_BASE   loopback ports are this plus a fixed offset (default 17000):
#                                 apiserver +443, etcd +379/+380, controller-manager +257,
#                                 scheduler +259, kwok +247
#   PARTYQUIZ_K8S_VERSION, PARTYQUIZ_ETCD_VERSION, PARTYQUIZ_KWOK_VERSION, PARTYQUIZ_HELM_VERSION

K8S_VERSION=${PARTYQUIZ_K8S_VERSION:-v1.36.3}
ETCD_VERSION=${PARTYQUIZ_ETCD_VERSION:-v3.5.35}
KWOK_VERSION=${PARTYQUIZ_KWOK_VERSION:-v0.8.0}
HELM_VERSION=${PARTYQUIZ_HELM_VERSION:-v3.22.0}

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
NODE_NAME=kwok-node-0
SERVICE_CIDR=10.96.0.0/16
POD_CIDR=10.244.0.0/16

# Start order; stopped in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

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
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1" || return 1
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

kubectl_admin() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=10s "$@"; }

# Healthy means: every component alive, apiserver ready, the fake node Ready.
plane_healthy() {
    local c
    for c in "${COMPONENTS[@]}"; do component_pid "$c" >/dev/null || return 1; done
    [ -f "$KUBECONFIG_FILE" ] || return 1
    kubectl_admin get --raw /readyz >/dev/null 2>&1 || return 1
    [ "$(kubectl_admin get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

print_env() {
    printf '%s\n' \
        "K8S_VERSION=$K8S_VERSION" "ETCD_VERSION=$ETCD_VERSION" "KWOK_VERSION=$KWOK_VERSION" \
        "HELM_VERSION=$HELM_VERSION" "BIN_DIR=$BIN_DIR" "STATE_DIR=$STATE_DIR" \
        "KUBECONFIG=$KUBECONFIG_FILE" "APISERVER_URL=$APISERVER_URL" "NODE_NAME=$NODE_NAME"
}

# Reports every component whose PID file names a process that is gone, with its log's tail,
# and forgets the stale PID file unless called with "keep".
report_crashed() {
    local c keep=${1:-}
    for c in "${COMPONENTS[@]}"; do
        [ -f "$(pid_file "$c")" ] || continue
        component_pid "$c" >/dev/null && continue
        printf '%s (pid %s) is not running; last lines of %s:\n' \
            "$c" "$(cat "$(pid_file "$c")")" "$(log_file "$c")" >&2
        tail -n 25 "$(log_file "$c")" 2>/dev/null | sed 's/^/    /' >&2
        [ "$keep" = keep ] || rm -f "$(pid_file "$c")"
    done
}
