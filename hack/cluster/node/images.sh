#!/usr/bin/env bash
# Imports images into the running real node's containerd from OCI archives, the only way images
# reach it (no registry; pods use imagePullPolicy Never or IfNotPresent). An image whose name
# already points at the archive's manifest is skipped, so calling this again costs nothing.
#
#   hack/cluster/node/images.sh ARCHIVE.tar...    (archives from hack/images/build.sh,
#                                                  hack/images/bootstrap.sh or build.sh --node)
#   hack/cluster/node/images.sh --tag IMAGE NAME   give an image on the node a second name
#
# Archives are read from the host side and streamed in: never `podman save` here, which waits on
# podman's storage lock for as long as any other podman command holds it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PARTYQUIZ_CLUSTER_NODE=real
# shellcheck source=../lib.sh
source "$HERE/lib.sh"

[ $# -gt 0 ] || die "usage: $0 ARCHIVE.tar... | --tag IMAGE NAME"
component_pid containerd >/dev/null || die "the real node of $STATE_DIR is not running (make cluster-up NODE=real)"

if [ "$1" = --tag ]; then
    [ $# -eq 3 ] || die "usage: $0 --tag IMAGE NAME"
    ctr_node images tag --force "$2" "$3" >/dev/null
    exit 0
fi

# The first manifest's digest and image name, from the archive's index.json.
index_field() { # archive field
    tar -xOf "$1" index.json | tr ',{}' '\n\n\n' | sed -n "s/^\"$2\":\"\(.*\)\"$/\1/p" | head -n 1
}

go_arch() { case "$(uname -m)" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) uname -m ;; esac; }

for archive in "$@"; do
    [ -s "$archive" ] || die "$archive is missing or empty"
    digest=$(index_field "$archive" digest)
    name=$(index_field "$archive" io.containerd.image.name)
    [ -n "$name" ] || name=$(index_field "$archive" org.opencontainers.image.ref.name)
    [[ $name == */* ]] || die "$archive names no full image reference (got '$name')"
    [ -n "$digest" ] || die "$archive has no manifest digest in its index.json"
    current=$(ctr_node images ls -q "name==$name" 2>/dev/null | head -n 1)
    if [ -n "$current" ] && ctr_node images ls "name==$name" | grep -qF "$digest"; then
        continue
    fi
    t0=$EPOCHREALTIME
    ctr_node images import --platform "linux/$(go_arch)" - <"$archive" >/dev/null
    log "imported $name into the node in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s"
done
