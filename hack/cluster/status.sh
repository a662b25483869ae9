#!/usr/bin/env bash
# Reports on the local control plane. Exit status: 0 healthy (every component alive, apiserver
# ready, node Ready), 1 some component running but not healthy, 3 nothing running. A real node's
# processes are listed too.
# A crashed component is shown with the tail of its log.
#   hack/cluster/status.sh          human-readable status
#   hack/cluster/status.sh --env    KEY=VALUE lines (versions, paths, URL) for tools and tests
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

case "${1:-}" in
    --env)
        if [ "${RECORDED_MODE:-$NODE_MODE}" = real ] && [ "$NODE_MODE" != real ]; then
            PARTYQUIZ_CLUSTER_NODE=real exec "$0" "$@"
        fi
        print_env
        exit 0
        ;;
    "") ;;
    *) die "usage: $0 [--env]" ;;
esac

# A state dir started with a real node reports on it whatever PARTYQUIZ_CLUSTER_NODE says.
if [ "${RECORDED_MODE:-$NODE_MODE}" = real ] && [ "$NODE_MODE" != real ]; then
    PARTYQUIZ_CLUSTER_NODE=real exec "$0" "$@"
fi
all=("${COMPONENTS[@]}")
[ "$NODE_MODE" = real ] && all+=("${NODE_COMPONENTS[@]}")

running=0
for c in "${all[@]}"; do
    if pid=$(component_pid "$c"); then
        running=$((running + 1))
        printf '  %-24s running (pid %s)\n' "$c" "$pid"
    elif [ -f "$(pid_file "$c")" ]; then
        printf '  %-24s CRASHED\n' "$c"
    else
        printf '  %-24s stopped\n' "$c"
    fi
done
report_crashed keep
if plane_healthy; then
    printf 'healthy: %s (Kubernetes %s), KUBECONFIG=%s\n' "$APISERVER_URL" "$K8S_VERSION" "$KUBECONFIG_FILE"
    exit 0
fi
if [ $running -eq 0 ]; then
    printf 'not running (state in %s)\n' "$STATE_DIR"
    exit 3
fi
printf 'not healthy (state in %s)\n' "$STATE_DIR"
exit 1
