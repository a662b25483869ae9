#!/usr/bin/env bash
# Runs podman with the settings this project's images need on a Debian host, without editing
# any system file: the runc runtime (crun refuses hybrid cgroup layouts), cgroupfs (no systemd
# required), file-based events and lowered default ulimits (the defaults are refused on some
# hosts). The settings live in a containers.conf under the cache directory, which
# CONTAINERS_CONF points at; an explicitly set CONTAINERS_CONF is honoured as is.
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

exec podman "$@"
