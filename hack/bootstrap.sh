#!/usr/bin/env bash
# Installs what a PartyQuiz target needs on a fresh Debian machine, and nothing twice.
#   hack/bootstrap.sh python   uv + the locked Python dependencies
#   hack/bootstrap.sh demo     uv + only what `make demo` runs (web and game service)
#   hack/bootstrap.sh bench    uv + the locked Python dependencies + what `make bench` needs from
#                              Debian (nodejs, npm, redis-server, gcc for the C floor)
#   hack/bootstrap.sh test-host  uv + the locked Python dependencies + Debian's postgresql,
#                              redis-server, chromium, prometheus and what a real node needs from
#                              Debian (runc, CNI plugins, iptables, ipset, conntrack, socat,
#                              nftables), node and npm with the bench's npm packages; no builds
#                              (hack/test_all.py runs those beside the tests that need none of
#                              them)
#   hack/bootstrap.sh test     test-host + the local cluster's binaries, real node included
#                              (built into a cache), podman and the images' base
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-python}
export PATH="$HOME/.local/bin:$PATH"

log() { printf '==> %s\n' "$*" >&2; }

ensure_uv() {
    command -v uv >/dev/null 2>&1 && return
    log "installing uv from PyPI"
    python3 -m pip install --quiet --user uv 2>/dev/null \
        || python3 -m pip install --quiet --user --break-system-packages uv
}

ensure_python_deps() {
    uv sync --frozen --all-extras --quiet
}

apt_updated=0
ensure_debs() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ $apt_updated -eq 0 ]; then
        log "apt-get update"
        $sudo apt-get update -qq
        apt_updated=1
    fi
    log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# Debian's packages for the commands not found, each spec "command package...": by command,
# since node, npm and the like may come from elsewhere than Debian (NodeSource, nvm).
ensure_commands() {
    local debs=() spec parts
    for spec in "$@"; do
        read -r -a parts <<<"$spec"
        command -v "${parts[0]}" >/dev/null 2>&1 || debs+=("${parts[@]:1}")
    done
    [ ${#debs[@]} -eq 0 ] || ensure_debs "${debs[@]}"
}

ensure_uv
if [ "$what" = demo ]; then
    # The services alone: no dev tools, no operator, no browser driver. --inexact keeps what a
    # contributor's environment already has.
    uv sync --frozen --no-dev --extra web --extra ws --inexact --quiet
    exit 0
fi
ensure_python_deps
case "$what" in
    python) ;;
    bench)
        ensure_commands "node nodejs" "npm npm" "redis-server redis-server" \
            "taskset util-linux" "gcc gcc libc6-dev"
        ;;
    test-host | test)
        ensure_debs postgresql redis-server chromium fonts-dejavu-core prometheus
        ensure_debs runc containernetworking-plugins iptables ipset conntrack socat nftables
        # The load generator's tests (tests/unit/bench) run it with the bench's pinned npm packages.
        ensure_commands "node nodejs" "npm npm"
        bench/install.sh --node-packages "${PARTYQUIZ_CACHE:-$HOME/.cache/partyquiz}/bench"
        [ "$what" = test ] || exit 0
        if [ -x hack/cluster/build.sh ]; then hack/cluster/build.sh --node; fi
        if [ -x hack/images/bootstrap.sh ]; then hack/images/bootstrap.sh; fi
        ;;
    *) echo "usage: $0 python|demo|bench|test-host|test" >&2; exit 2 ;;
esac
