#!/usr/bin/env bash
# Stops the local control plane by the PIDs in its PID files (never by process name), newest
# component first. State survives for the next `up.sh` unless --purge is given, which then deletes
# the state directory (certs, etcd data, logs, kubeconfig). A real node (the state dir records
# the mode) is stopped by node/down.sh, which also gives back its namespaces and cgroups.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

[ "${RECORDED_MODE:-$NODE_MODE}" = real ] && exec "$HERE/node/down.sh" "$@"

purge=0
case "${1:-}" in
    --purge) purge=1 ;;
    "") ;;
    *) die "usage: $0 [--purge]" ;;
esac

stopped=0
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    if stop_component "${COMPONENTS[i]}"; then stopped=$((stopped + 1)); fi
done
[ $stopped -gt 0 ] || log "control plane was not running"

if [ $purge -eq 1 ] && [ -d "$STATE_DIR" ]; then
    # Only ever delete a directory that up.sh laid out.
    [ -d "$STATE_DIR/pids" ] || die "$STATE_DIR does not look like a control-plane state dir; not deleting it"
    rm -rf "$STATE_DIR"
    log "deleted $STATE_DIR"
fi
