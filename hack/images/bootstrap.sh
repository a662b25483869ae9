#!/usr/bin/env bash
# Makes this machine able to build and run PartyQuiz's images, and does nothing when it already
# can: installs podman, buildah, runc and mmdebstrap from Debian when missing, and creates the
# base image the Dockerfiles name (debian:bookworm-slim) from a minbase bootstrap when no
# registry is reachable, and exports it to an OCI archive (archive.sh) for the real node. With
# --smoke it also installs the PostgreSQL and Redis servers the smoke tests start (throwaway
# instances; no system service is used). The rootfs tarball is cached outside the repository;
# delete it (or set PARTYQUIZ_BASE_REFRESH=1) to rebuild the base with current Debian packages.
set -euo pipefail
cd "$(dirname "$0")/../.."

cache=${PARTYQUIZ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/partyquiz}/images
tarball=$cache/debian-bookworm-slim.tar
base=localhost/debian:bookworm-slim
aliases=(docker.io/library/debian:bookworm-slim)
podman=hack/images/podman.sh

log() { printf '==> %s\n' "$*" >&2; }

ensure_debs() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# The same trimming Docker's official slim images apply: no manuals, docs or translations, in
# the base and in everything later installed on top of it.
slim_opts=(
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-include=/usr/share/locale/locale.alias'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
    --dpkgopt='path-exclude=/usr/share/groff/*'
)
# Merged /usr made by mmdebstrap's hook rather than Debian's usrmerge package, which would pull
# perl into the base (debuerreotype, which builds the official images, does the same).
hooks=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
mirrors=(
    "deb http://deb.debian.org/debian bookworm main"
    "deb http://deb.debian.org/debian bookworm-updates main"
    "deb http://deb.debian.org/debian-security bookworm-security main"
)

ensure_base_image() {
    if [ "${PARTYQUIZ_BASE_REFRESH:-0}" != 1 ] && $podman image exists "$base"; then
        local alias
        for alias in "${aliases[@]}"; do
            $podman image exists "$alias" || $podman tag "$base" "$alias"
        done
        return
    fi
    mkdir -p "$cache"
    if [ "${PARTYQUIZ_BASE_REFRESH:-0}" = 1 ] || [ ! -s "$tarball" ]; then
        log "bootstrapping Debian bookworm (minbase) into $tarball"
        if ! mmdebstrap --variant=minbase --format=tar "${slim_opts[@]}" "${hooks[@]}" \
            bookworm "$tarball.partial" "${mirrors[@]}" >"$cache/mmdebstrap.log" 2>&1; then
            tail -n 30 "$cache/mmdebstrap.log" >&2
            rm -f "$tarball.partial"
            echo "mmdebstrap failed; full log: $cache/mmdebstrap.log" >&2
            exit 1
        fi
        mv "$tarball.partial" "$tarball"
    fi
    local previous
    previous=$($podman image inspect --format '{{.Id}}' "$base" 2>/dev/null || true)
    log "importing $tarball as $base"
    $podman import --quiet --change 'CMD ["bash"]' \
        --message "debian bookworm minbase, slimmed (mmdebstrap)" "$tarball" "$base" >/dev/null
    $podman tag "$base" "${aliases[@]}"
    # The replaced base is only kept while images built on it still exist.
    if [ -n "$previous" ] && [ "$previous" != "$($podman image inspect --format '{{.Id}}' "$base")" ]
    then
        $podman rmi "$previous" >/dev/null 2>&1 || true
    fi
}

case "${1:-}" in
    "") ;;
    --smoke) ensure_debs postgresql redis-server ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac
# The dnsname CNI plugin gives containers on a podman network (compose.yaml's) names in DNS.
ensure_debs podman buildah runc mmdebstrap golang-github-containernetworking-plugin-dnsname
ensure_base_image
# The real node's volume helper pods run the base image, imported from this archive.
hack/images/archive.sh "$base"
