#!/usr/bin/env bash
# Installs what `make bench` needs into a cache directory outside the repo, and nothing twice:
# Debian's nodejs, npm, redis-server and gcc (through hack/bootstrap.sh), the peers' pinned npm
# packages (bench/peers/package-lock.json), the python-socketio peer's pinned environment
# (bench/peers/pysocketio-requirements.txt), the C floor compiled with this machine's gcc, and
# Centrifugo built from Go modules at a pinned version. They are benchmark peers only, never a
# dependency of the product. A peer that cannot be installed is reported and left out; the
# suite says so beside its figures.
#   bench/install.sh <cache-dir>
#   bench/install.sh --node-packages <cache-dir>   the npm packages alone (the load generator's
#                                                  tests need them; `make test` installs them)
set -euo pipefail
cd "$(dirname "$0")/.."
node_only=0
if [ "${1:-}" = --node-packages ]; then node_only=1; shift; fi
dest=${1:?usage: bench/install.sh [--node-packages] <cache-dir>}
CENTRIFUGO_VERSION=v6.9.1

[ $node_only -eq 1 ] || hack/bootstrap.sh bench
mkdir -p "$dest"
# One install at a time: several checkouts share this cache.
exec 9>"$dest/.install.lock"
flock 9

if ! cmp -s bench/peers/package-lock.json "$dest/package-lock.json" \
        || [ ! -f "$dest/node_modules/@socket.io/redis-adapter/package.json" ]; then
    echo "==> installing the benchmark peers' npm packages into $dest" >&2
    cp bench/peers/package.json bench/peers/package-lock.json "$dest/"
    (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
fi
[ $node_only -eq 0 ] || exit 0

floor_hash=$(sha256sum bench/peers/c_floor.c | cut -c1-12)
if [ ! -x "$dest/c_floor-$floor_hash/c_floor" ]; then
    echo "==> compiling the C floor with $(gcc --version | head -1)" >&2
    mkdir -p "$dest/c_floor-$floor_hash"
    gcc -O2 -Wall -o "$dest/c_floor-$floor_hash/c_floor.tmp" bench/peers/c_floor.c
    mv "$dest/c_floor-$floor_hash/c_floor.tmp" "$dest/c_floor-$floor_hash/c_floor"
fi
ln -sfn "c_floor-$floor_hash/c_floor" "$dest/c_floor"

py_hash=$(sha256sum bench/peers/pysocketio-requirements.txt | cut -c1-12)
if [ ! -f "$dest/pysocketio-$py_hash/.complete" ]; then
    echo "==> installing python-socketio into $dest/pysocketio-$py_hash" >&2
    rm -rf "$dest/pysocketio-$py_hash"
    uv venv --quiet --python 3.11 "$dest/pysocketio-$py_hash"
    VIRTUAL_ENV="$dest/pysocketio-$py_hash" uv pip install --quiet \
        -r bench/peers/pysocketio-requirements.txt
    touch "$dest/pysocketio-$py_hash/.complete"
fi
ln -sfn "pysocketio-$py_hash" "$dest/pysocketio"

centrifugo="$dest/centrifugo-$CENTRIFUGO_VERSION/bin/centrifugo"
# Built with its release's version stamped in (as its own releases do), so the report names it;
# a binary that does not report the pinned version (built without the stamp) is built again.
if [ ! -x "$centrifugo" ] || ! "$centrifugo" version 2>/dev/null | grep -qF "v${CENTRIFUGO_VERSION#v} "; then
    go=$(command -v go || echo /usr/local/go/bin/go)
    if [ -x "$go" ]; then
        echo "==> building Centrifugo $CENTRIFUGO_VERSION from Go modules (a few minutes cold)" >&2
        if ! GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$dest/centrifugo-$CENTRIFUGO_VERSION/bin" \
                "$go" install -trimpath \
                -ldflags "-s -w -X github.com/centrifugal/centrifugo/v6/internal/build.Version=${CENTRIFUGO_VERSION#v}" \
                "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION" >&2; then
            echo "==> Centrifugo could not be built; its figures will be missing" >&2
        fi
    else
        echo "==> no Go toolchain: Centrifugo is left out of the figures" >&2
    fi
fi
if [ -x "$centrifugo" ]; then ln -sfn "centrifugo-$CENTRIFUGO_VERSION/bin/centrifugo" "$dest/centrifugo"; fi
