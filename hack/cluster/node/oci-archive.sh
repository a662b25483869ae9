#!/usr/bin/env bash
# Writes an OCI image archive (the format `ctr images import` reads) holding static binaries on
# an empty root filesystem, without podman or a base image: the pause and CoreDNS images of the
# real node. Same inputs, same bytes (fixed owners, times and order).
#
#   node/oci-archive.sh OUT.tar NAME:TAG UID SRC:DEST [SRC:DEST ...] -- ENTRYPOINT [ARG ...]
set -euo pipefail

[ $# -ge 6 ] || { echo "usage: $0 OUT.tar NAME:TAG UID SRC:DEST... -- ENTRYPOINT..." >&2; exit 2; }
out=$1 ref=$2 user=$3
shift 3
files=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do files+=("$1"); shift; done
[ "${1:-}" = -- ] && [ $# -ge 2 ] || { echo "$0: missing -- ENTRYPOINT" >&2; exit 2; }
shift

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root" "$work/oci/blobs/sha256"
for f in "${files[@]}"; do
    install -D -m 0755 "${f%%:*}" "$work/root${f#*:}"
done

# Stores a file as a blob; prints "<digest> <size>".
blob() {
    local hex size
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    mv "$1" "$work/oci/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}
json_array() {
    local first=1 a
    printf '['
    for a in "$@"; do
        [ $first -eq 1 ] || printf ','
        first=0
        printf '"%s"' "${a//\"/\\\"}"
    done
    printf ']'
}

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
    -C "$work/root" -cf "$work/layer.tar" .
read -r layer layer_size < <(blob "$work/layer.tar")

arch=$(go env GOARCH 2>/dev/null || dpkg --print-architecture)
printf '{"architecture":"%s","os":"linux","config":{"User":"%s","Entrypoint":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$arch" "$user" "$(json_array "$@")" "$layer" >"$work/config.json"
read -r config config_size < <(blob "$work/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest.json"
read -r manifest manifest_size < <(blob "$work/manifest.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$manifest_size" "$ref" "${ref##*:}" >"$work/oci/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
    -C "$work/oci" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
