#!/usr/bin/env bash
# Runs podman with the settings this project's images need on a Debian host, without editing
# any system file: the runc runtime (crun refuses hybrid cgroup layouts), cgroupfs (no systemd
# required), file-based events and lowered default ulimits (the defaults are refused on some
# hosts). The settings live in a containers.conf under the cache directory, which
# CONTAINERS_CONF points at; an explicitly set CONTAINERS_CONF is honoured as is.
# PARTYQUIZ_PODMAN_ROOT moves the image and container storage (and podman's run state) into a
# folder of its own, e.g. to measure a first run without touching the machine's images; an
# explicitly set CONTAINERS_STORAGE_CONF is honoured as is.
set -euo pipefail

cache=${PARTYQUIZ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/partyquiz}/images
conf=$cache/containers.conf

if [ -z "${CONTAINERS_CONF:-}" ]; then
    want='[containers]
default_ulimits = ["nofile=1024:4096", "nproc=1024:2048"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"'
    if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
        mkdir -p "$cache"
        printf '%s\n' "$want" >"$conf.tmp.$$"
        mv "$conf.tmp.$$" "$conf"
    fi
    export CONTAINERS_CONF=$conf
fi

if [ -n "${PARTYQUIZ_PODMAN_ROOT:-}" ] && [ -z "${CONTAINERS_STORAGE_CONF:-}" ]; then
    root=$(realpath -m "$PARTYQUIZ_PODMAN_ROOT")
    storage='[storage]
driver = "overlay"
graphroot = "'$root/storage'"
runroot = "'$root/run'"'
    if [ ! -f "$root/storage.conf" ] || [ "$(cat "$root/storage.conf")" != "$storage" ]; then
        mkdir -p "$root"
        printf '%s\n' "$storage" >"$root/storage.conf.tmp.$$"
        mv "$root/storage.conf.tmp.$$" "$root/storage.conf"
    fi
    export CONTAINERS_STORAGE_CONF=$root/storage.conf
fi

exec podman "$@"
