#!/usr/bin/env bash
# Stops the local control plane by the PIDs in its PID files (never by process name), newest
# component first. State survives for the next `up.sh` unless --purge is given, which then deletes
# the state directory (certs, etcd data, logs, kubeconfig).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

purge=0
case "${1:-}" in
    --purge) purge=1 ;;
    "") ;;
    *) die "usage: $0 [--purge]" ;;
esac

stopped=0
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
    if pid=$(component_pid "$c"); then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$c (pid $pid) ignored SIGTERM for 10s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $c (pid $pid)"
        stopped=$((stopped + 1))
    fi
    rm -f "$(pid_file "$c")"
done
[ $stopped -gt 0 ] || log "control plane was not running"

if [ $purge -eq 1 ] && [ -d "$STATE_DIR" ]; then
    # Only ever delete a directory that up.sh laid out.
    [ -d "$STATE_DIR/pids" ] || die "$STATE_DIR does not look like a control-plane state dir; not deleting it"
    rm -rf "$STATE_DIR"
    log "deleted $STATE_DIR"
fi
