#!/usr/bin/env bash
# Stops a real node and its control plane and gives back everything it took from the host:
# processes (daemons by PID file; containers and shims by this node's cgroup, mount namespace
# and containerd socket), the network namespace with everything in it, the kubelet's cgroups
# in every hierarchy. It touches nothing that is not this run's: another node started from
# another state dir and port base keeps running. Reached through `hack/cluster/down.sh`.
#
# State survives for the next start like a rebooted machine's disk (etcd, images, volumes),
# minus what only lived while it ran; --purge deletes the state dir.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PARTYQUIZ_CLUSTER_NODE=real
# shellcheck source=../lib.sh
source "$HERE/lib.sh"

purge=0
case "${1:-}" in
    --purge) purge=1 ;;
    "") ;;
    *) die "usage: $0 [--purge]" ;;
esac
[ "$(id -u)" -eq 0 ] || die "stopping a real node needs root"

started=$SECONDS
# Sends SIGKILL to every PID on stdin, once per PID. One that is gone already (a container's
# process dies with its parent) is no error.
kill_all() { sort -u | while read -r pid; do [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true; done; }

# Processes in this node's cgroup: containers and anything they started. A container's cgroup
# can go while find walks it (its shim removes it as the container dies): what is gone has no
# processes left to list, so that is no error.
cgroup_pids() {
    local h
    for h in $(cgroup_hierarchies); do
        [ ! -d "$h/$CGROUP_NAME" ] || find "$h/$CGROUP_NAME" -name cgroup.procs -exec cat {} + 2>/dev/null || true
    done
}
# Processes that live in the given namespace (a /proc/<pid>/ns/<kind> link target).
pids_in_namespace() { # kind link-target
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/$1" 2>/dev/null)" = "$2" ] && echo "${p#/proc/}"
    done
    true
}
# containerd's shims of this node: their command line names its socket.
shim_pids() {
    local p
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "-address $CONTAINERD_SOCK " && echo "${p#/proc/}"
    done
    true
}
# Kills what `list` prints until it prints nothing (a dying process may still fork once).
sweep() { # description list-function args...
    local what=$1 round
    shift
    for round in $(seq 50); do
        [ -n "$("$@")" ] || return 0
        "$@" | kill_all
        sleep 0.1
    done
    log "could not stop every $what: $("$@" | tr '\n' ' ')"
}

holder_mnt=""
if pid=$(component_pid node-holder); then holder_mnt=$(readlink "/proc/$pid/ns/mnt"); fi
netns_link=""
if [ -e "/run/netns/$NETNS" ] && [ "$(cat "$NODE_DIR/netns" 2>/dev/null)" = "$NETNS" ]; then
    netns_link="net:[$(stat -L -c %i "/run/netns/$NETNS")]"
fi

# 1. The way in, then the daemons that act on the cluster, then the kubelet.
stopped=0
for ((i = ${#NODE_COMPONENTS[@]} - 1; i >= 2; i--)); do
    if stop_component "${NODE_COMPONENTS[i]}"; then stopped=$((stopped + 1)); fi
done
# 2. Containers: everything in this node's cgroup, then containerd and its shims.
sweep "container process" cgroup_pids
if stop_component containerd; then stopped=$((stopped + 1)); fi
sweep "containerd shim" shim_pids
# 3. Whatever is left in the node's mount namespace, then its holder: the mounts go with it.
[ -z "$holder_mnt" ] || sweep "process in the node's mount namespace" pids_in_namespace mnt "$holder_mnt"
if stop_component node-holder; then stopped=$((stopped + 1)); fi
# 4. The control plane, then anything still in the network namespace, then the namespace.
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    if stop_component "${COMPONENTS[i]}"; then stopped=$((stopped + 1)); fi
done
if [ -n "$netns_link" ]; then
    sweep "process in network namespace $NETNS" pids_in_namespace net "$netns_link"
    ip netns delete "$NETNS"
    log "deleted network namespace $NETNS"
fi
# 5. The kubelet's cgroups, deepest first, in every hierarchy.
for h in $(cgroup_hierarchies); do
    [ -d "$h/$CGROUP_NAME" ] || continue
    find "$h/$CGROUP_NAME" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ ! -d "$h/$CGROUP_NAME" ] || log "could not remove cgroup $h/$CGROUP_NAME: $(find "$h/$CGROUP_NAME" -name cgroup.procs -exec cat {} + | tr '\n' ' ')"
done
# 6. What only lives while the node runs: sockets, runtime state, network namespaces of pods.
rm -rf "$NODE_DIR/containerd/state" "$NODE_DIR/netns" "$APISERVER_SOCK" "$CONTAINERD_SOCK" "$CONTAINERD_SOCK.ttrpc"
[ $stopped -gt 0 ] && log "real node stopped in $((SECONDS - started))s" || log "real node was not running"

if [ $purge -eq 1 ] && [ -d "$STATE_DIR" ]; then
    [ -d "$STATE_DIR/pids" ] || die "$STATE_DIR does not look like a cluster state dir; not deleting it"
    rm -rf "$STATE_DIR"
    log "deleted $STATE_DIR"
fi
