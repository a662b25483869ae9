#!/usr/bin/env bash
# Starts the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kwok with one fake node) on loopback and waits until the node is Ready and the `default`
# ServiceAccount exists. Safe to run twice: a healthy plane is left alone, a crashed component is
# reported with the tail of its log and started again. Binaries come from hack/cluster/build.sh;
# state (certs, etcd data, logs, PID files, kubeconfig) lives in $PARTYQUIZ_CLUSTER_DIR.
#
# With PARTYQUIZ_CLUSTER_NODE=real this hands over to node/up.sh, which runs a real node (and
# this script with --plane-only inside the node's network namespace: no kwok, an apiserver that
# pods reach through the `kubernetes` Service and that reaches the kubelet).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

START_TIMEOUT=${PARTYQUIZ_CLUSTER_START_TIMEOUT:-120}

plane_only=0
case "${1:-}" in
    --plane-only) plane_only=1 ;;
    "") ;;
    *) die "usage: $0" ;;
esac
if [ "$NODE_MODE" = real ] && [ $plane_only -eq 0 ]; then
    exec "$HERE/node/up.sh"
fi
if [ "$(cat "$MODE_FILE" 2>/dev/null || echo "$NODE_MODE")" != "$NODE_MODE" ] && [ -d "$STATE_DIR/etcd" ]; then
    die "$STATE_DIR holds a cluster started with PARTYQUIZ_CLUSTER_NODE=$(cat "$MODE_FILE"); stop it \
and delete its state first (hack/cluster/down.sh --purge) or use another PARTYQUIZ_CLUSTER_DIR"
fi

plane_bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)
[ "$NODE_MODE" = real ] || plane_bins+=(kwok)
for b in "${plane_bins[@]}"; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing; build the binaries first: make cluster-build"
done
command -v openssl >/dev/null 2>&1 || die "openssl is required (apt-get install openssl)"

start=$SECONDS
mkdir -p "$STATE_DIR"
echo "$NODE_MODE" >"$MODE_FILE"
# Two callers at once (two test sessions, say) take turns; the second finds the plane running.
exec 9>"$STATE_DIR/.up.lock"
flock 9

if [ $plane_only -eq 1 ]; then
    all_running=1
    for c in "${COMPONENTS[@]}"; do component_pid "$c" >/dev/null || all_running=0; done
    if [ $all_running -eq 1 ] && kubectl_admin get --raw /readyz >/dev/null 2>&1; then
        log "control plane already running"
        exit 0
    fi
elif plane_healthy; then
    if cmp -s "$HERE/kwok.yaml" "$STATE_DIR/kwok.yaml"; then
        log "control plane already running: $APISERVER_URL (kubeconfig $KUBECONFIG_FILE)"
        exit 0
    fi
    log "hack/cluster/kwok.yaml changed since kwok started; restarting kwok"
    stop_component kwok || true
fi
report_crashed

mkdir -p "$STATE_DIR"/{pki,pids,logs,etcd}
chmod 700 "$STATE_DIR" "$STATE_DIR/pki"

# --- certificates: a cluster CA (apiserver serving cert, admin client cert), a front-proxy CA
# (request-header authentication, which controller-manager and scheduler look up), SA keys.
# Each file is made only when missing, so a state dir keeps its identity across restarts.
if [ ! -f "$PKI/ca.crt" ]; then
    log "creating certificates in $PKI"
    rm -f "$PKI/apiserver.crt" "$PKI/admin.crt"
    issue_ca ca partyquiz-local-ca
fi
# A real node's pods reach the apiserver at the node's address too.
apiserver_sans="IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
[ "$NODE_MODE" = real ] && apiserver_sans+=",IP:$NODE_IP"
[ -f "$PKI/apiserver.crt" ] || issue_cert apiserver ca "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$apiserver_sans"
[ -f "$PKI/admin.crt" ] || issue_cert admin ca "/O=system:masters/CN=partyquiz-admin" "$CLIENT_EXT"
# The apiserver's identity towards a real kubelet (logs, exec, port-forward).
if [ "$NODE_MODE" = real ] && [ ! -f "$PKI/apiserver-kubelet-client.crt" ]; then
    issue_cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" "$CLIENT_EXT"
fi
if [ ! -f "$PKI/front-proxy-ca.crt" ]; then
    rm -f "$PKI/front-proxy-client.crt"
    issue_ca front-proxy-ca partyquiz-local-front-proxy-ca
fi
[ -f "$PKI/front-proxy-client.crt" ] || issue_cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" "$CLIENT_EXT"
if [ ! -f "$PKI/sa.pub" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi

write_kubeconfig "$KUBECONFIG_FILE" partyquiz-admin admin
[ "$NODE_MODE" = real ] || cp "$HERE/kwok.yaml" "$STATE_DIR/kwok.yaml"

# --- processes --------------------------------------------------------------------------------
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_component() { # name port args...
    local name=$1 port=$2 bin pid
    shift 2
    if pid=$(component_pid "$name"); then
        log "$name already running (pid $pid)"
        return
    fi
    port_busy "$port" && die "port 127.0.0.1:$port for $name is taken by another process; \
pick other ports with PARTYQUIZ_CLUSTER_PORT_BASE (now $PORT_BASE)"
    bin=$(readlink -f "$BIN_DIR/$name")
    printf '\n=== %s starting %s\n' "$(date -u +%FT%TZ)" "$bin" >>"$(log_file "$name")"
    # setsid: the plane outlives the shell, make or pytest that started it.
    setsid "$bin" "$@" </dev/null >>"$(log_file "$name")" 2>&1 9>&- &
    echo $! >"$(pid_file "$name")"
    log "$name started (pid $!, log $(log_file "$name"))"
}

AWAITED=("${COMPONENTS[@]}")

etcd_healthy() { "$BIN_DIR/etcdctl" --endpoints="http://127.0.0.1:$ETCD_CLIENT_PORT" --command-timeout=2s endpoint health; }

# etcd serves plain HTTP, bound to loopback only; --unsafe-no-fsync because this data is disposable
# and fsync latency on a shared disk slows every API write.
start_component etcd "$ETCD_CLIENT_PORT" \
    --name=partyquiz --data-dir="$STATE_DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="partyquiz=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level=warn
await etcd 30 etcd_healthy

if [ "$NODE_MODE" = real ]; then
    # Inside the node's network namespace: listening on every address there lets pods reach it
    # at the node's address, which the `kubernetes` Service's endpoints (kept by the apiserver's
    # own lease reconciler) point at. The kubelet is reached at its InternalIP, with a client
    # certificate, and its serving certificate is checked against the cluster CA.
    apiserver_mode_args=(
        --bind-address=0.0.0.0 --advertise-address="$NODE_IP"
        --kubelet-preferred-address-types=InternalIP
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt"
        --kubelet-client-key="$PKI/apiserver-kubelet-client.key"
        --kubelet-certificate-authority="$PKI/ca.crt"
        --enable-admission-plugins=NodeRestriction
    )
else
    apiserver_mode_args=(--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none)
fi
start_component kube-apiserver "$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    "${apiserver_mode_args[@]}" --secure-port="$APISERVER_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
    --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --allow-privileged=true \
    --profiling=false
await "kube-apiserver /readyz" 60 kubectl_admin get --raw /readyz

start_component kube-controller-manager "$CONTROLLER_MANAGER_PORT" \
    --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$CONTROLLER_MANAGER_PORT" \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --cluster-name=partyquiz-local \
    --profiling=false

start_component kube-scheduler "$SCHEDULER_PORT" \
    --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" \
    --profiling=false

if [ $plane_only -eq 1 ]; then
    await "ServiceAccount default/default" "$START_TIMEOUT" kubectl_admin get serviceaccount default -n default
    log "control plane up in $((SECONDS - start))s (Kubernetes $K8S_VERSION)"
    exit 0
fi

# The fake node: kwok manages nodes carrying this annotation.
kubectl_admin apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $NODE_NAME
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
spec:
  podCIDR: $POD_CIDR
NODE

# Claims of this class are provisioned by kwok (see kwok.yaml); deliberately not the default class.
kubectl_admin apply -f - >/dev/null <<STORAGECLASS
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
provisioner: kwok.partyquiz.dev/volume
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
STORAGECLASS

start_component kwok "$KWOK_PORT" \
    --kubeconfig="$KUBECONFIG_FILE" --config="$STATE_DIR/kwok.yaml" \
    --server-address="127.0.0.1:$KWOK_PORT"

node_ready() {
    [ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
await "node $NODE_NAME Ready" "$START_TIMEOUT" node_ready
await "ServiceAccount default/default" "$START_TIMEOUT" kubectl_admin get serviceaccount default -n default

log "control plane up in $((SECONDS - start))s: $APISERVER_URL, Kubernetes $K8S_VERSION"
log "use it with: export KUBECONFIG=$KUBECONFIG_FILE   (kubectl: $BIN_DIR/kubectl)"
