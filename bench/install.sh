#!/usr/bin/env bash
# Installs what `make bench` needs and nothing twice: Debian's nodejs, npm and redis-server when
# missing, and the peers' pinned npm packages (bench/peers/package-lock.json) into a cache
# directory outside the repo. They are benchmark peers only, never a dependency of the product.
#   bench/install.sh <cache-dir>
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:?usage: bench/install.sh <cache-dir>}

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "==> installing Debian packages: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

mkdir -p "$dest"
if ! cmp -s bench/peers/package-lock.json "$dest/package-lock.json" \
        || [ ! -f "$dest/node_modules/socket.io/package.json" ]; then
    echo "==> installing the benchmark peers' npm packages into $dest" >&2
    cp bench/peers/package.json bench/peers/package-lock.json "$dest/"
    (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
fi
