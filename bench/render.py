"""The "Game service" section of docs/benchmarks.md, from aggregated figures.

Pure: takes the machine description, the plan and the medians and returns Markdown. The
numbers come only from the run; the prose explains how they were taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.report import Cell, format_ratio, render_table
from bench.stats import ratio
from bench.summary import Metrics, Verdict
from bench.targets import KIND_LABELS

PEERS = ("socketio", "ws", "raw")
COUNTS = frozenset({"connected", "burst_receipts", "lost", "double_counted", "question_bytes"})
# Shares of a core, read against SERVER_BOUND_UTIL: one decimal would hide which side of it.
SHARES = frozenset({"fanout_loadgen_util_max", "fanout_server_util"})


def _cell(m: Mapping[str, float | None], key: str) -> Cell:
    value = m.get(key)
    if value is not None and key in COUNTS:
        return round(value)
    return value


def _row(kind: str, m: Mapping[str, float | None], keys: Sequence[str]) -> list[Cell]:
    return [KIND_LABELS.get(kind, kind), *(_cell(m, k) for k in keys)]


def _table(
    by_size: Mapping[int, Mapping[str, Metrics]],
    kinds: Sequence[str],
    headers: Sequence[str],
    keys: Sequence[str],
    *,
    only: Sequence[str] | None = None,
) -> str:
    rows: list[list[Cell]] = []
    for size in sorted(by_size):
        for kind in kinds:
            if only is not None and kind not in only:
                continue
            m = by_size[size].get(kind)
            if m is not None:
                rows.append([size, *_row(kind, m, keys)])
    digits = [1, 1, *(2 if key in SHARES else 1 for key in keys)]
    return render_table(["players", "server", *headers], rows, digits)


def _ratios(by_size: Mapping[int, Mapping[str, Metrics]], key: str) -> str:
    rows: list[list[Cell]] = []
    for size in sorted(by_size):
        pq = by_size[size].get("partyquiz", {}).get(key)
        rows.append(
            [size, *(format_ratio(ratio(pq, by_size[size].get(p, {}).get(key))) for p in PEERS)]
        )
    return render_table(["players", "vs Node Socket.IO", "vs Node ws", "vs raw floor"], rows)


# A server whose core is busy this share of the fan-out window or more was still sending when
# its last player got the frame: the server, not the load generator, set the pace.
SERVER_BOUND_UTIL = 0.9


def _loadgen_sentence(by_size: Mapping[int, Mapping[str, Metrics]]) -> str:
    text = (
        "Both as a fraction of one core during the fan-out window (host command until the last "
        "player has the frame). "
    )
    measured = [
        (size, kind, util)
        for size in sorted(by_size)
        for kind, m in by_size[size].items()
        if (util := m.get("fanout_server_util")) is not None
    ]
    if not measured:
        return text + "No fan-out was measured."
    text += (
        f"A server whose core stays busy through the window (at least {SERVER_BOUND_UTIL:.1f}) "
        "was still sending when its last player received, so the load generator kept up with "
        "it and the latencies are the server's. "
    )
    waited = [
        f"{KIND_LABELS.get(kind, kind)} at {size:,} players ({util:.2f})"
        for size, kind, util in measured
        if util < SERVER_BOUND_UTIL
    ]
    if waited:
        text += (
            "These servers finished sending before the load generator had read every frame, "
            "so their latencies at that size are partly the load generator's: "
            + "; ".join(waited)
            + ". "
        )
    else:
        text += "Every server did, at every size. "
    return text + (
        "CPU per fan-out is the server's own CPU time and does not depend on how fast the "
        "load generator reads."
    )


def render_game_service(
    machine: Mapping[str, str],
    plan_text: str,
    by_size: Mapping[int, Mapping[str, Metrics]],
    replicas: Mapping[int, Metrics],
    verdicts: Sequence[Verdict],
    when: str,
    failures: Sequence[str] = (),
) -> str:
    """Return the body of the "Game service" section."""
    kinds = [
        k for k in ("partyquiz", "socketio", "ws", "raw") if any(k in v for v in by_size.values())
    ]
    parts = [
        f"Measured {when} by `make bench` ({plan_text}).",
        "",
        f"Machine: {machine['cores']} cores, {machine['cpu']}, {machine['ram']} RAM, "
        f"Linux {machine['kernel']}; load average at the start {machine['load']} (the machine "
        "is shared, so absolute figures move between runs; the ratios, taken from "
        "interleaved runs, are what to read).",
        f"PartyQuiz revision {machine.get('revision', 'unknown')}. "
        f"Versions: Python {machine['python']}, websockets {machine['websockets']}, orjson "
        f"{machine['orjson']}; Node {machine['node']}, socket.io {machine['socket.io']} "
        f"(engine.io {machine['engine.io']}), ws {machine['ws']}.",
        "",
        "How it is measured:",
        "",
        "- Server pinned to core 1, the load generator (one Node process playing the host and "
        "every player) to core 0 (`taskset`). Loopback only; compression off everywhere; "
        "WebSocket transport only (Socket.IO via Engine.IO v4 framing).",
        "- Every server plays the same quiz with the same JSON messages (PartyQuiz's "
        "`question`, `answer_receipt`, `personal_result`, `leaderboard` shapes); the peers keep "
        "the game and the scoring in memory. PartyQuiz runs `partyquiz-ws` in its embedded mode "
        "for B1-B3, with the game issued by a real `partyquiz-web`.",
        "- CPU per fan-out is the server process's CPU time from `/proc/<pid>/task/*/schedstat` "
        "from the host's command until 100 ms after the last player received the frame (not "
        "wall time). Latencies are taken on the load generator's monotonic clock.",
        "- Each session: ramp of idle players (B1), warm-up fan-outs (discarded), measured "
        "question fan-outs each followed by reveal and leaderboard (B2), then one question "
        "that every player answers on an open-loop schedule spread over 1 s (B3). Figures are "
        "medians over interleaved runs (A B C D A B C D ...); correctness counters show the "
        "worst run.",
        "",
        *(
            [
                f"Sessions that failed and are left out of the medians: {len(failures)} "
                f"({'; '.join(failures)}).",
                "",
            ]
            if failures
            else []
        ),
        "### Targets",
        "",
        render_table(
            ["target", "measured", "met"],
            [
                [
                    v.target,
                    v.measured,
                    "not measured" if v.met is None else ("yes" if v.met else "**no**"),
                ]
                for v in verdicts
            ],
        ),
        "### B1 connections (idle players)",
        "",
        _table(
            by_size,
            kinds,
            ["connected", "KiB per connection", "connect p50 ms", "connect p99 ms"],
            ["connected", "kib_per_connection", "connect_p50_ms", "connect_p99_ms"],
        ),
        "Memory per connection is the server's RSS after the ramp minus before, divided by "
        "the connections; connect latency runs from opening the TCP connection to the "
        "server's `welcome` (the raw floor answers the join with a pre-built frame).",
        "",
        "### B2 question fan-out (one game)",
        "",
        _table(
            by_size,
            kinds,
            [
                "CPU ms per fan-out",
                "frames per CPU-second",
                "host → player p50 ms",
                "p99 ms",
                "last player ms",
                "question frame bytes",
            ],
            [
                "fanout_cpu_ms",
                "frames_per_cpu_s",
                "fanout_p50_ms",
                "fanout_p99_ms",
                "fanout_last_ms",
                "question_bytes",
            ],
        ),
        "PartyQuiz CPU per fan-out relative to each peer (below 1.00x: PartyQuiz uses less):",
        "",
        _ratios(by_size, "fanout_cpu_ms"),
        "### B3 answer burst",
        "",
        _table(
            by_size,
            kinds,
            [
                "answers accepted",
                "receipt p50 ms",
                "receipt p99 ms",
                "lost",
                "double-counted",
                "deadline → last result ms",
                "deadline → leaderboard ms",
                "leaderboard, slowest run ms",
            ],
            [
                "burst_receipts",
                "receipt_p50_ms",
                "receipt_p99_ms",
                "lost",
                "double_counted",
                "deadline_to_last_result_ms",
                "deadline_to_leaderboard_ms",
                "deadline_to_leaderboard_max_ms",
            ],
            only=("partyquiz", "socketio", "ws"),
        ),
        "Receipt latency runs from each answer's scheduled send time (open loop), so a server "
        'that falls behind is charged for the queue. "Deadline" is the end of the 1 s answer '
        "window: the question closes when the last answer arrives; the leaderboard time "
        "includes the host's `next` round trip; it is the median over runs, and the slowest run "
        "is beside it because runs spread widely here, mostly by how many answers are still "
        "queued when the window ends. Lost = an accepted answer missing from the "
        "player's personal result; double-counted = a score that is not the previous score "
        "plus this question's points. After the deadline every server writes to every "
        "connection at least twice (PartyQuiz: the reveal with the player's own result in one "
        "write, then the leaderboard; the Node peers: reveal, result and leaderboard in three), "
        "each a system call of about 15 us here, so at 10,000 players about 0.3 s of the time "
        "to the leaderboard is those writes; the rest is answers still queued at the deadline, "
        "scoring and ranking every player, and the load generator reading 20,000 messages "
        "before it sends `next`.",
        "",
    ]
    if replicas:
        rows: list[list[Cell]] = [
            [
                size,
                m.get("local_p50_ms"),
                m.get("remote_p50_ms"),
                m.get("added_p50_ms"),
                m.get("local_p99_ms"),
                m.get("remote_p99_ms"),
                m.get("publish_per_broadcast"),
                m.get("publish_per_broadcast_max"),
            ]
            for size, m in sorted(replicas.items())
        ]
        parts += [
            "### B4 two replicas sharing one game through Redis",
            "",
            render_table(
                [
                    "players",
                    "host's replica p50 ms",
                    "other replica p50 ms",
                    "added p50 ms",
                    "host's replica p99 ms",
                    "other replica p99 ms",
                    "PUBLISH per broadcast (median)",
                    "PUBLISH per broadcast (max)",
                ],
                rows,
            ),
            "Players alternate between the two replicas (both on the server core, Redis too); the "
            "host is on the first. Added latency = other replica p50 minus host's replica p50 "
            "for the question fan-out; negative means the other replica was faster. PUBLISH "
            "counts come from Redis `INFO commandstats` (PUBLISH + SPUBLISH "
            "calls) around each question fan-out.",
            "",
        ]
    parts += [
        "### Load generator check",
        "",
        _table(
            by_size,
            kinds,
            ["load generator CPU, max over fan-outs", "server CPU during fan-out"],
            ["fanout_loadgen_util_max", "fanout_server_util"],
        ),
        _loadgen_sentence(by_size),
    ]
    return "\n".join(parts)


def render_operator(
    when: str,
    machine: Mapping[str, str],
    results: Sequence[Mapping[str, Any]],
    resync_seconds: float,
) -> str:
    """Return the body of the "Operator" section (B5)."""
    rows: list[list[Cell]] = [
        [
            int(r["count"]),
            int(r["ready"]),
            r.get("apply_call_s"),
            r.get("ready_p50_s"),
            r.get("ready_p99_s"),
            r.get("operator_p50_s"),
            r.get("operator_p99_s"),
            r.get("kubernetes_p50_s"),
            int(r["resync_passes"]),
            int(r["resync_writes"]),
            r["kib_per_object"],
        ]
        for r in results
    ]
    table = render_table(
        [
            "PartyQuiz objects",
            "Ready",
            "kubectl apply s",
            "apply → Ready p50 s",
            "p99 s",
            "operator's part (excluding pod start) p50 s",
            "p99 s",
            "waiting for Kubernetes p50 s",
            "resync passes watched",
            "API writes during them",
            "operator KiB per object",
        ],
        rows,
    )
    labels = list(next((r["steps_p50_s"] for r in results if r.get("steps_p50_s")), {}))
    step_rows: list[list[Cell]] = [
        [int(r["count"]), *(r.get("steps_p50_s", {}).get(label) for label in labels)]
        for r in results
    ]
    steps = render_table(["PartyQuiz objects", *(f"{label} p50 s" for label in labels)], step_rows)
    pod_starts = ", ".join(
        f"{r['pod_start_p50_s']:.2f} s ({int(r['count'])} objects)"
        for r in results
        if r.get("pod_start_p50_s") is not None
    )
    return "\n".join(
        [
            f"Measured {when} by `make bench` on the same machine ({machine['cores']} cores, "
            f"{machine['cpu']}, {machine['ram']} RAM).",
            "",
            "B5 starts a control plane of its own (etcd, kube-apiserver, controller-manager, "
            "scheduler, kwok as the node; hack/cluster on separate ports), installs the chart's "
            "CRD and RBAC, and runs `partyquiz-operator` from this checkout as the chart's "
            f"ServiceAccount with a {resync_seconds:g} s resync. It applies N copies of "
            "examples/minimal.yaml in one `kubectl apply` (PersistentVolumes are pre-bound, "
            "the plane has no provisioner) and watches the PartyQuiz objects, StatefulSets, "
            "Jobs, Deployments and Pods of the namespace through API watches opened before the "
            "apply, timing every change on arrival (monotonic clock, sub-millisecond). "
            "apply → Ready runs from the start of the single `kubectl apply` until the object's "
            "`status.phase` is Ready for its generation. API writes are the operator's own "
            "`partyquiz_operator_kube_api_requests_total` for apply/create/patch/update/delete "
            "while every object is resynced at least twice in steady state. Memory is the "
            "operator's RSS growth divided by the objects.",
            "",
            "Each object's path to Ready is a chain of eight steps; the table below gives each "
            "step's median. The first is `kubectl apply` creating the object (one apply creates "
            "the N objects one after another). The operator's part is the sum of its four "
            "steps: PartyQuiz created → both StatefulSets created; PostgreSQL ready → migration "
            "Job created; Job complete → both Deployments created; Deployments available → "
            "status Ready. Each starts when the "
            "state the operator waits for appears in the API and ends when its next objects "
            "(or the status) appear, so it holds the operator's watch latency, queueing and "
            "reconcile passes; with N objects applied at once it includes waiting behind the "
            "other objects' passes, so it grows with N. The rest is waiting for Kubernetes: "
            "StatefulSet, Job and "
            "Deployment created → their pods Ready (or the Job complete) and that reflected in "
            "the object's status, i.e. controller-manager, scheduler and kwok, which on this "
            "2-core machine serve every pod of every object and share the cores with the API "
            "server and the operator. That is the pod-start time the target leaves out (one "
            f"pod alone, creation → Ready, has a median of {pod_starts or 'n/a'}). Step "
            "medians need not add up to the medians of the sums.",
            "",
            table,
            "",
            steps,
        ]
    )
