#!/usr/bin/env bash
# Exports images to OCI archives, once per image ID, for the real node to import from the file
# (hack/cluster/node/images.sh). build.sh and bootstrap.sh call it right after making an image,
# so nothing needs `podman save` at test time, where it would wait on podman's storage lock for
# as long as any other podman command holds it.
#
#   hack/images/archive.sh IMAGE...          export what is missing or stale
#   hack/images/archive.sh --path IMAGE...   print where each archive is (or would be)
#
# An archive lives at $PARTYQUIZ_CACHE/images/oci/<image with / and : as _>.oci.tar, beside
# <same>.id holding the ID of the image it was exported from.
set -euo pipefail
cd "$(dirname "$0")/../.."

archives=${PARTYQUIZ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/partyquiz}/images/oci
podman=hack/images/podman.sh

path_of() { printf '%s/%s.oci.tar\n' "$archives" "$(printf '%s' "$1" | tr '/:' '__')"; }

if [ "${1:-}" = --path ]; then
    shift
    for ref in "$@"; do path_of "$ref"; done
    exit 0
fi
[ $# -gt 0 ] || { echo "usage: $0 [--path] IMAGE..." >&2; exit 2; }

mkdir -p "$archives"
for ref in "$@"; do
    file=$(path_of "$ref")
    id=$($podman image inspect --format '{{.Id}}' "$ref")
    if [ -s "$file" ] && [ "$(cat "$file.id" 2>/dev/null)" = "$id" ]; then
        continue
    fi
    started=$(date +%s)
    rm -f "$file.tmp.$$"
    # Uncompressed: the export and the import skip gzip, which costs more CPU than the disk saved.
    $podman save --quiet --uncompressed --format oci-archive -o "$file.tmp.$$" "$ref"
    mv "$file.tmp.$$" "$file"
    echo "$id" >"$file.id"
    printf '==> exported %s to %s in %ss\n' "$ref" "$file" "$(($(date +%s) - started))" >&2
done
