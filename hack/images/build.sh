#!/usr/bin/env bash
# Builds PartyQuiz's container images with podman and prints their sizes.
#   hack/images/build.sh [web] [ws] [operator]        (no argument: all three)
#   hack/images/build.sh test-postgres test-redis test-caddy
#   hack/images/build.sh test-web-upgrade test-web-never-ready   (after web)
# The test-* images are stand-ins for the official postgres, redis and caddy images, built from
# Debian's packages (hack/images/test/, context that folder only) for machines without a
# registry; docs/operator.md says which part of the official images' interface they provide.
# test-web-upgrade and test-web-never-ready are built on this run's web image (build arguments
# BASE_REPO, BASE_TAG) for the real-node tier's upgrade and rollback tests.
# Tags: ${PARTYQUIZ_IMAGE_REPO:-localhost}/partyquiz-<name>:${PARTYQUIZ_IMAGE_TAG:-<version>},
# plus :latest. The host's CA bundle (PARTYQUIZ_BUILD_CA_FILE, default
# /etc/ssl/certs/ca-certificates.crt) is handed to the build as the read-only build secret
# `build-ca`, so PyPI works behind a TLS-inspecting proxy; a secret mount leaves nothing in any
# layer (a --volume would leave its mount point behind in every stage). Labels carry the
# version, the git revision (-dirty when image inputs have local changes) and the origin
# remote's URL (PARTYQUIZ_IMAGE_SOURCE overrides it). Full build logs are kept in the cache
# directory; PARTYQUIZ_IMAGES_VERBOSE=1 streams them. Each image is also exported to an OCI
# archive (hack/images/archive.sh), which is what the real node imports.
set -euo pipefail
cd "$(dirname "$0")/../.."

podman=hack/images/podman.sh
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(web ws operator)
for name in "${names[@]}"; do
    case "$name" in
        web | ws | operator | test-postgres | test-redis | test-caddy | test-web-upgrade \
            | test-web-never-ready) ;;
        *) echo "usage: $0 [web] [ws] [operator] [test-postgres] [test-redis] [test-caddy]" \
                "[test-web-upgrade] [test-web-never-ready]" >&2
           exit 2 ;;
    esac
done

hack/images/bootstrap.sh

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
repo=${PARTYQUIZ_IMAGE_REPO:-localhost}
tag=${PARTYQUIZ_IMAGE_TAG:-$version}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] \
    && [ -n "$(git status --porcelain -- pyproject.toml uv.lock README.md services operator \
        Dockerfile.web Dockerfile.ws Dockerfile.operator .dockerignore hack/images/check_pictures.py)" ]; then
    revision="$revision-dirty"
fi
source_url=${PARTYQUIZ_IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || true)}

build_args=(
    --build-arg "VERSION=$version"
    --build-arg "REVISION=$revision"
    --build-arg "SOURCE=$source_url"
)
ca_file=${PARTYQUIZ_BUILD_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}
if [ -s "$ca_file" ]; then
    build_args+=(--secret "id=build-ca,src=$ca_file")
fi

logs=${PARTYQUIZ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/partyquiz}/images/logs
mkdir -p "$logs"

for name in "${names[@]}"; do
    image=$repo/partyquiz-$name
    case "$name" in
        test-*) dockerfile=hack/images/test/Dockerfile.${name#test-}; context=hack/images/test
                args=(--build-arg "BASE_REPO=$repo" --build-arg "BASE_TAG=$tag") ;;
        *) dockerfile=Dockerfile.$name; context=.; args=("${build_args[@]}") ;;
    esac
    printf '==> building %s:%s (%s)\n' "$image" "$tag" "$dockerfile" >&2
    started=$(date +%s)
    previous=$($podman image inspect --format '{{.Id}}' "$image:$tag" 2>/dev/null || true)
    log=$logs/build-$name.log
    # Docker format keeps HEALTHCHECK (the OCI image format has no field for it). Host
    # networking needs no bridge or NAT on the build machine; nothing in a build listens.
    if ! $podman build --format docker --layers --pull=never --network host \
        --ulimit nofile=1024:4096 --ulimit nproc=1024:2048 \
        ${args[@]+"${args[@]}"} \
        --file "$dockerfile" --tag "$image:$tag" --tag "$image:latest" "$context" \
        2>&1 | tee "$log" | if [ "${PARTYQUIZ_IMAGES_VERBOSE:-0}" = 1 ]; then cat; else
            grep --line-buffered -E '^(\[[0-9]+/[0-9]+\] )?STEP|^Error' | cut -c1-110; fi
    then
        tail -n 40 "$log" >&2
        echo "building $image failed; full log: $log" >&2
        exit 1
    fi
    printf '==> built %s:%s in %ss (log: %s)\n' "$image" "$tag" "$(($(date +%s) - started))" \
        "$log" >&2
    # The image this build replaced is removed once nothing uses it; the builder stages stay
    # as the layer cache of the next build.
    if [ -n "$previous" ] && [ "$previous" != "$($podman image inspect --format '{{.Id}}' \
        "$image:$tag")" ]; then
        $podman rmi "$previous" >/dev/null 2>&1 || true
    fi
    # The real node imports images from OCI archives (see archive.sh); a no-op when unchanged.
    hack/images/archive.sh "$image:$tag"
done

printf '\n%-52s %10s\n' IMAGE SIZE
for name in "${names[@]}"; do
    image=$repo/partyquiz-$name:$tag
    bytes=$($podman image inspect --format '{{.Size}}' "$image")
    printf '%-52s %7.1f MB\n' "$image" "$(awk -v b="$bytes" 'BEGIN { print b / 1000000 }')"
done
