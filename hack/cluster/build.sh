#!/usr/bin/env bash
# Builds the pinned binaries of the local Kubernetes control plane into a cache outside the
# repository and does nothing when they are already there.
#
#   hack/cluster/build.sh            build whatever is missing, print what and how long
#   hack/cluster/build.sh --node     also the real node: kubelet, kube-proxy, containerd (with its
#                                    runc shim and ctr), CoreDNS, kube-router (network policies),
#                                    local-path-provisioner, and the pause and CoreDNS images as
#                                    OCI archives (see node/lib.sh)
#   hack/cluster/build.sh --print-bin-dir   print the directory holding the current binaries
#
# Layout: $PARTYQUIZ_CACHE/cluster/<component>-<version>/<binaries> plus a `.built` stamp, and
# $PARTYQUIZ_CACHE/cluster/bin/ with links to the pinned versions. Go's module and build caches
# stay where Go puts them (GOMODCACHE/GOCACHE), never in the checkout.
#
# Versions are pinned in lib.sh; each can be overridden from the environment (for the documented
# fallbacks: PARTYQUIZ_K8S_VERSION=v1.35.4, then v1.34.4).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
SRC_DIR="$CLUSTER_CACHE/src"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=mod
GO_PARALLEL=${PARTYQUIZ_GO_PARALLEL:-2}

with_node=0
case "${1:-}" in
    --print-bin-dir) echo "$BIN_DIR"; exit 0 ;;
    --node) with_node=1; shift ;;
esac
[ $# -eq 0 ] || die "usage: $0 [--node | --print-bin-dir]"

command -v go >/dev/null 2>&1 || die "Go >= 1.26 must be on PATH (GOTOOLCHAIN=local: no toolchain is downloaded)"
GO_VERSION=$(go env GOVERSION)
PLATFORM="$(go env GOOS)/$(go env GOARCH)"

# The stamp names what a directory holds; a new Go alone does not force an 18-minute rebuild
# (the Go that built it is recorded beside it, in .go-version).
stamp_text() { printf '%s\n' "component=$1" "version=$2" "platform=$PLATFORM"; }

is_built() { # component version binaries...
    local dir="$CLUSTER_CACHE/$1-$2" bin
    [ -f "$dir/.built" ] && [ "$(cat "$dir/.built")" = "$(stamp_text "$1" "$2")" ] || return 1
    shift 2
    for bin in "$@"; do [ -x "$dir/$bin" ] || [ -s "$dir/$bin" ] || return 1; done
}

# Build into a scratch directory and move it into place only when complete, so an interrupted
# build never leaves a half-populated version directory behind.
finish() { # component version scratch
    local dir="$CLUSTER_CACHE/$1-$2"
    echo "$GO_VERSION" >"$3/.go-version"
    stamp_text "$1" "$2" >"$3/.built"
    rm -rf "$dir"
    mv "$3" "$dir"
}

# Runs a command, showing its output only if it fails (go get lists every module it downloads).
quiet() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        return 1
    fi
}

wrapper_module() { # dir module-name
    rm -rf "$1"
    mkdir -p "$1"
    printf 'module %s\n\ngo 1.26.0\n' "$2" >"$1/go.mod"
}

# Prepares a wrapper module in $1 that requires k8s.io/kubernetes at the pinned tag and fetches
# the given packages. k8s.io/kubernetes maps its staging modules with relative replaces, which
# only work inside its own tree; each one is mapped to its published v0.<minor>.<patch> tag
# instead. The list of staging modules changes between releases, so it is read from the tagged
# go.mod.
kubernetes_wrapper() { # dir packages...
    local src=$1 v=$K8S_VERSION major gomod replaces m
    shift
    major=${v#v}; major=${major%%.*}
    wrapper_module "$src" partyquiz.local/cluster-build/kubernetes
    gomod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
    [ -f "$gomod" ] || die "could not fetch k8s.io/kubernetes@$v go.mod"
    local staging_version="v0.${v#v"$major".}"
    replaces=$(sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/k8s\.io/[a-z0-9-]*\s*$#\1#p' "$gomod")
    [ -n "$replaces" ] || die "no staging replaces found in $gomod"
    {
        printf '\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$v"
        for m in $replaces; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"; done
        printf ')\n'
    } >>"$src/go.mod"
    (cd "$src" && quiet go get "${@/%/@$v}")
}

# Without these the binaries report v0.0.0 and kubectl warns about version skew.
kubernetes_ldflags() {
    local v=$K8S_VERSION major minor ld="-s -w" p
    major=${v#v}; major=${major%%.*}
    minor=${v#v"$major".}; minor=${minor%%.*}
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ld+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
        ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    echo "$ld"
}

build_kubernetes_packages() { # component packages...
    local component=$1 v=$K8S_VERSION src out
    shift
    src="$SRC_DIR/$component-$v"
    out="$CLUSTER_CACHE/.$component-$v.tmp"
    rm -rf "$out"; mkdir -p "$out"
    kubernetes_wrapper "$src" "$@"
    (cd "$src" && go build -p "$GO_PARALLEL" -trimpath -ldflags "$(kubernetes_ldflags)" -o "$out/" "$@")
    finish "$component" "$v" "$out"
}

build_kubernetes() {
    build_kubernetes_packages kubernetes k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubectl
}

# The node's kubelet and kube-proxy, from the same tag, in a wrapper of their own so the
# control plane's cache entry stays valid; Go's build cache shares everything they have in common.
build_kubernetes_node() {
    build_kubernetes_packages kubernetes-node k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kube-proxy
}

build_etcd() {
    local v=$ETCD_VERSION src out
    src="$SRC_DIR/etcd-$v"
    out="$CLUSTER_CACHE/.etcd-$v.tmp"
    rm -rf "$out"; mkdir -p "$out"
    wrapper_module "$src" partyquiz.local/cluster-build/etcd
    (cd "$src" && quiet go get "go.etcd.io/etcd/server/v3@$v" "go.etcd.io/etcd/etcdctl/v3@$v")
    (cd "$src" && go build -p "$GO_PARALLEL" -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 \
        && go build -p "$GO_PARALLEL" -trimpath -ldflags "-s -w" -o "$out/etcdctl" go.etcd.io/etcd/etcdctl/v3)
    finish etcd "$v" "$out"
}

build_kwok() {
    local v=$KWOK_VERSION out="$CLUSTER_CACHE/.kwok-$KWOK_VERSION.tmp"
    rm -rf "$out"; mkdir -p "$out"
    GOBIN="$out" quiet go install -p "$GO_PARALLEL" -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$v"
    finish kwok "$v" "$out"
}

build_helm() {
    local v=$HELM_VERSION out="$CLUSTER_CACHE/.helm-$HELM_VERSION.tmp"
    rm -rf "$out"; mkdir -p "$out"
    GOBIN="$out" quiet go install -p "$GO_PARALLEL" -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
        "helm.sh/helm/v3/cmd/helm@$v"
    finish helm "$v" "$out"
}

build_containerd() {
    local v=$CONTAINERD_VERSION out="$CLUSTER_CACHE/.containerd-$CONTAINERD_VERSION.tmp" m=github.com/containerd/containerd/v2
    rm -rf "$out"; mkdir -p "$out"
    GOBIN="$out" quiet go install -p "$GO_PARALLEL" -trimpath \
        -ldflags "-s -w -X $m/version.Version=$v -X $m/version.Revision=$v" \
        "$m/cmd/containerd@$v" "$m/cmd/containerd-shim-runc-v2@$v" "$m/cmd/ctr@$v"
    finish containerd "$v" "$out"
}

# CoreDNS runs as a pod, so beside the binary it gets an image: FROM scratch, the binary alone,
# a non-root user (restricted Pod Security Standard), written straight to an OCI archive.
build_coredns() {
    local v=$COREDNS_VERSION out="$CLUSTER_CACHE/.coredns-$COREDNS_VERSION.tmp"
    rm -rf "$out"; mkdir -p "$out"
    GOBIN="$out" quiet go install -p "$GO_PARALLEL" -trimpath \
        -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$v" "github.com/coredns/coredns@$v"
    "$HERE/node/oci-archive.sh" "$out/coredns.oci.tar" "$(node_image coredns "$v")" 65532 \
        "$out/coredns:/coredns" -- /coredns
    finish coredns "$v" "$out"
}

# Only its network-policy controller runs (--run-firewall); routing stays with the bridge CNI
# and Services with kube-proxy.
build_kube_router() {
    local v=$KUBE_ROUTER_VERSION out="$CLUSTER_CACHE/.kube-router-$KUBE_ROUTER_VERSION.tmp"
    local m=github.com/cloudnativelabs/kube-router/v2
    rm -rf "$out"; mkdir -p "$out"
    GOBIN="$out" quiet go install -p "$GO_PARALLEL" -trimpath \
        -ldflags "-s -w -X $m/pkg/version.Version=$v -X $m/pkg/version.BuildDate=1970-01-01T00:00:00Z" \
        "$m/cmd/kube-router@$v"
    finish kube-router "$v" "$out"
}

build_local_path() {
    local v=$LOCAL_PATH_VERSION out="$CLUSTER_CACHE/.local-path-provisioner-$LOCAL_PATH_VERSION.tmp"
    rm -rf "$out"; mkdir -p "$out"
    GOBIN="$out" quiet go install -p "$GO_PARALLEL" -trimpath \
        -ldflags "-s -w -X main.VERSION=$v" "github.com/rancher/local-path-provisioner@$v"
    finish local-path-provisioner "$v" "$out"
}

# The pod sandbox ("pause") process and its image; no registry serves registry.k8s.io/pause here.
build_pause() {
    local v=$PAUSE_VERSION out="$CLUSTER_CACHE/.pause-$PAUSE_VERSION.tmp"
    rm -rf "$out"; mkdir -p "$out"
    (cd "$HERE/node/pause" && go build -trimpath -ldflags "-s -w" -o "$out/pause" .)
    "$HERE/node/oci-archive.sh" "$out/pause.oci.tar" "$(node_image pause "$v")" 65535 \
        "$out/pause:/pause" -- /pause
    finish pause "$v" "$out"
}

# component version builder binaries...
BUILDS=(
    "kubernetes $K8S_VERSION build_kubernetes kube-apiserver kube-controller-manager kube-scheduler kubectl"
    "etcd $ETCD_VERSION build_etcd etcd etcdctl"
    "kwok $KWOK_VERSION build_kwok kwok"
    "helm $HELM_VERSION build_helm helm"
)
if [ $with_node -eq 1 ]; then
    BUILDS+=(
        "kubernetes-node $K8S_VERSION build_kubernetes_node kubelet kube-proxy"
        "containerd $CONTAINERD_VERSION build_containerd containerd containerd-shim-runc-v2 ctr"
        "coredns $COREDNS_VERSION build_coredns coredns coredns.oci.tar"
        "kube-router $KUBE_ROUTER_VERSION build_kube_router kube-router"
        "local-path-provisioner $LOCAL_PATH_VERSION build_local_path local-path-provisioner"
        "pause $PAUSE_VERSION build_pause pause pause.oci.tar"
    )
fi

link_bins() {
    mkdir -p "$BIN_DIR"
    local line name version builder bins b
    for line in "${BUILDS[@]}"; do
        read -r name version builder bins <<<"$line"
        for b in $bins; do
            # Image archives stay in their version directory; node/lib.sh knows where.
            [[ $b == *.oci.tar ]] || ln -sfn "../$name-$version/$b" "$BIN_DIR/$b"
        done
    done
}

all_built() {
    local line name version builder bins
    for line in "${BUILDS[@]}"; do
        read -r name version builder bins <<<"$line"
        # shellcheck disable=SC2086
        is_built "$name" "$version" $bins || return 1
    done
}

start=$SECONDS
what="kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, helm $HELM_VERSION"
[ $with_node -eq 0 ] || what+="; node: containerd $CONTAINERD_VERSION, coredns $COREDNS_VERSION, kube-router $KUBE_ROUTER_VERSION, local-path-provisioner $LOCAL_PATH_VERSION, pause $PAUSE_VERSION"
if all_built; then
    link_bins
    log "cluster binaries up to date in $BIN_DIR ($what); nothing to build"
    exit 0
fi

minor=${GO_VERSION#go1.}; minor=${minor%%.*}
[[ $minor =~ ^[0-9]+$ ]] && [ "$minor" -ge 26 ] \
    || die "$GO_VERSION is too old: kubernetes $K8S_VERSION, kwok, helm and containerd need Go >= 1.26"

mkdir -p "$CLUSTER_CACHE"
# One build at a time per cache: a second caller waits, then finds everything built.
exec 9>"$CLUSTER_CACHE/.build.lock"
if ! flock -n 9; then
    log "another build is running on $CLUSTER_CACHE; waiting for it"
    flock 9
fi

for line in "${BUILDS[@]}"; do
    read -r name version builder bins <<<"$line"
    # shellcheck disable=SC2086
    if is_built "$name" "$version" $bins; then
        log "$name $version: cached"
        continue
    fi
    log "$name $version: building ($bins) with $GO_VERSION"
    t0=$SECONDS
    "$builder"
    log "$name $version: built in $((SECONDS - t0))s"
done
link_bins
log "cluster binaries ready in $BIN_DIR after $((SECONDS - start))s ($what)"
