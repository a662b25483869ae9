"""The "Game service" and "Operator" sections of docs/benchmarks.md, from the per-run figures.

Pure: takes the machine description, the plan and the figures and returns Markdown. The
numbers come only from the run; the prose explains how they were taken. Every figure is its
median over runs with the lowest and highest run beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.report import Cell, render_table
from bench.stats import Spread
from bench.summary import (
    GAME_QUESTIONS,
    LATE_SEND_MS,
    Results,
    Verdict,
    ratio_spread,
    spread,
)
from bench.targets import KIND_LABELS

# A server whose core is busy this share of the fan-out window or more was still sending when
# its last player got the frame: the server, not the load generator, set the pace.
SERVER_BOUND_UTIL = 0.9
# Peers the fan-out and answer-path ratios are taken against, in the order shown.
FANOUT_PEERS = ("ws-prebuilt", "cfloor", "ws", "socketio", "centrifugo", "pysocketio")
GAME_KINDS = (
    "partyquiz",
    "ws",
    "ws-prebuilt",
    "socketio",
    "pysocketio",
    "centrifugo",
    "cfloor",
    "raw",
)
REDIS_KINDS = ("partyquiz-redis", "socketio-redis", "ws")


def fmt(s: Spread | None, digits: int = 1, unit: str = "") -> str:
    """``12.3 (11.0 to 14.2)``: the median with the lowest and highest run."""
    if s is None:
        return "—"
    mid = f"{s.median:,.{digits}f}{unit}"
    if s.runs < 2 or s.low == s.high:
        return mid
    return f"{mid} ({s.low:,.{digits}f} to {s.high:,.{digits}f})"


def fmt_ratio(s: Spread | None) -> str:
    return fmt(s, 2, "x")


def _label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def _table(
    results: Results,
    scenario: str,
    kinds: Sequence[str],
    columns: Sequence[tuple[str, str, int]],
    *,
    players_column: str = "players",
) -> str:
    """One row per size and server: each column a figure (header, metric, decimals)."""
    rows: list[list[Cell]] = []
    for size, by_kind in sorted(results.get(scenario, {}).items()):
        for kind in kinds:
            runs = by_kind.get(kind)
            if not runs:
                continue
            players = spread(runs, "players")
            count: Cell = int(players.median) if players else size
            rows.append(
                [count, _label(kind), *(fmt(spread(runs, key), d) for _, key, d in columns)]
            )
    if not rows:
        return "Not measured in this run.\n"
    return render_table([players_column, "server", *(h for h, _, _ in columns)], rows)


def _ratio_table(results: Results, scenario: str, kind: str, peers: Sequence[str], key: str) -> str:
    rows: list[list[Cell]] = []
    shown = [p for p in peers if any(p in k for k in results.get(scenario, {}).values())]
    for size, by_kind in sorted(results.get(scenario, {}).items()):
        runs = by_kind.get(kind, [])
        rows.append(
            [size, *(fmt_ratio(ratio_spread(runs, by_kind.get(p, []), key)) for p in shown)]
        )
    if not rows or not shown:
        return "Not measured in this run.\n"
    return render_table(["players", *(f"vs {_label(p)}" for p in shown)], rows)


def _loadgen_sentence(results: Results) -> str:
    measured = [
        (size, kind, s.median)
        for size, by_kind in sorted(results.get("game", {}).items())
        for kind, runs in by_kind.items()
        if (s := spread(runs, "fanout_server_util")) is not None
    ]
    if not measured:
        return "No fan-out was measured."
    text = (
        f"A server whose core stays busy through the fan-out (at least {SERVER_BOUND_UTIL:.1f} "
        "of it, median over runs) was still sending when its last player received, so the "
        "load generator kept up with it and the latencies are the server's. "
    )
    waited = [
        f"{_label(kind)} at {size:,} players ({util:.2f})"
        for size, kind, util in measured
        if util < SERVER_BOUND_UTIL
    ]
    if waited:
        text += (
            "These servers finished sending before the load generator had read every frame, "
            "so their fan-out latencies are partly the load generator's: "
            + "; ".join(waited)
            + ". "
        )
    else:
        text += "Every server did, at every size. "
    return text + (
        "CPU per fan-out is the servers' own CPU time and does not depend on how fast the "
        "load generator reads."
    )


def _sizing(results: Results) -> list[str]:
    lines = []
    for scenario, kind in (("game", "partyquiz"), ("redis", "partyquiz-redis")):
        for size, by_kind in sorted(results.get(scenario, {}).items()):
            s = spread(by_kind.get(kind, []), "game_cpu_s_per_1000_players")
            if s is not None:
                lines.append(
                    f"- **{_label(kind)}, {size:,} players: {fmt(s, 2)} CPU-seconds per 1,000 "
                    f"players per {GAME_QUESTIONS}-question game.**"
                )
    return lines


def render_game_service(
    machine: Mapping[str, str],
    plan_text: str,
    results: Results,
    verdicts: Sequence[Verdict],
    when: str,
    failures: Sequence[str] = (),
    raw_dir: str = "",
) -> str:
    """Return the body of the "Game service" section."""
    sizing = _sizing(results)
    parts = [
        f"Measured {when} by `make bench` ({plan_text}).",
        "",
        f"Machine: {machine['cores']} cores, {machine['cpu']}, {machine['ram']} RAM, "
        f"Linux {machine['kernel']}; 1-minute load average {machine['load']} at the start and "
        f"{machine.get('load_end', 'unknown')} at the end (the machine is shared: absolute "
        "figures move between runs; ratios are taken between servers of the same interleaved "
        "round).",
        f"PartyQuiz revision {machine.get('revision', 'unknown')}. Versions: Python "
        f"{machine['python']}, websockets {machine['websockets']} on uvloop "
        f"{machine.get('uvloop', '?')}, orjson {machine['orjson']}, "
        f"redis-py {machine.get('redis', '?')} with hiredis {machine.get('hiredis', '?')}, "
        f"Redis {machine.get('redis-server', '?')}; Node {machine['node']}, ws {machine['ws']}, "
        f"socket.io {machine['socket.io']} (engine.io {machine['engine.io']}) with "
        f"@socket.io/redis-adapter {machine.get('@socket.io/redis-adapter', '?')}; "
        f"python-socketio {machine.get('python-socketio', '?')} on uvicorn "
        f"{machine.get('uvicorn', '?')}; Centrifugo {machine.get('centrifugo', '?')}; the C "
        f"floor built with {machine.get('gcc', '?')}.",
        "",
        "How it is measured:",
        "",
        "- The servers under test are pinned to core 1 (`taskset`): one process for the "
        "embedded kinds, both replicas or nodes **and Redis** for the Redis kinds (Redis runs "
        "as the operator runs it, append-only file on). The load generator is pinned to core "
        "0: a conductor that plays the hosts and samples the servers, and two worker "
        "processes that play the players (every other player each), all timing on one "
        "monotonic clock. The workers send from a timer and, while they read a clump of "
        "incoming frames, from their receive path; their young generation is fixed (64 MiB a "
        "semi-space) and their garbage collected before each send window, so a collection "
        "seldom stops one mid-window; the conductor runs niced +10 below the workers, the "
        "workers' V8 helper threads niced +19, and all of them with Linux's shortest "
        "scheduler slice (0.1 ms), so a worker whose send falls due takes the core at once "
        "rather than at the next scheduler tick. "
        "Loopback only; compression off everywhere; WebSocket transport only.",
        "- Every server plays the same quiz with the same JSON messages; the peers keep the "
        "game and the scoring in memory (game.cjs, and its Python copy for python-socketio). "
        "PartyQuiz runs the real `partyquiz-ws`, with its games issued by a real "
        "`partyquiz-web`. Centrifugo holds the connections and a Node backend behind its "
        "connect and RPC proxies plays the game and publishes through its HTTP API; both "
        "processes are counted. Socket.IO on two nodes keeps the game on the host's node and "
        "forwards the other node's joins and answers to it through the Redis adapter. The C "
        "floor completes the handshake and `write()`s one pre-built frame per socket: the "
        "least a server can do per fan-out here.",
        "- Server CPU is what the kernel accounts to the servers' threads "
        "(`/proc/<pid>/task/*/schedstat`): their user time and the system time of their "
        "system calls. On loopback a `write()` also carries the frame through the receiving "
        "side's TCP stack in the writer's context, so part of delivering every frame is "
        "charged to the server that sends it; work the kernel defers to `ksoftirqd` is "
        "charged to no one here. The answer-path table shows the share of system time "
        "(`/proc/<pid>/stat`).",
        "- Each session: a ramp of idle players (B1), warm-up fan-outs (discarded), measured "
        "question fan-outs each followed by reveal and leaderboard (B2), a question every "
        "player but one answers on an open-loop schedule over 1 s (so it stays open and the "
        "CPU from the first answer until every receipt is back is the answer path alone, T2), "
        "then a question every player answers within 1 s (the burst: B3, T1). Receipt "
        "latencies run from each answer's scheduled send time, so a server that falls behind "
        "is charged for the queue. A send more than "
        f"{LATE_SEND_MS:g} ms behind its schedule is counted as late.",
        "- Every figure is the median over runs, with the lowest and highest run in "
        "brackets. Ratios are taken per interleaved round (each run of PartyQuiz against the "
        "peer's run of the same round) and shown the same way. **A target counts as met only "
        "if its worst run meets it.**",
        *(
            [
                f"- Raw figures of every session of this run: [{raw_dir}]({raw_dir}) (one CSV "
                "per scenario)."
            ]
            if raw_dir
            else []
        ),
        "",
        *(
            [
                f"Sessions that failed or could not run, left out of the figures: "
                f"{len(failures)} ({'; '.join(failures)}).",
                "",
            ]
            if failures
            else []
        ),
        "### Targets",
        "",
        render_table(
            ["target", "measured: median (lowest to highest run)", "met"],
            [
                [
                    v.target,
                    v.measured,
                    "not measured" if v.met is None else ("yes" if v.met else "**no**"),
                ]
                for v in verdicts
            ],
        ),
        "### Sizing",
        "",
        "What an operator sizes replicas with: the servers' CPU for a whole game of "
        f"{GAME_QUESTIONS} questions, per 1,000 players (Redis's CPU included in Redis mode). "
        "It is composed from this run's measurements of each session: joining every player, "
        f"then {GAME_QUESTIONS} times a question fan-out, every player's answer (the answer "
        "path, scaled to all players), the reveal with every personal result and the "
        "leaderboard. Time between phases (timers, lease renewals) is not included.",
        "",
        *(sizing or ["Not measured in this run."]),
        "",
        _table(
            results,
            "game",
            GAME_KINDS,
            [
                (
                    f"CPU-s per 1,000 players per {GAME_QUESTIONS}-question game",
                    "game_cpu_s_per_1000_players",
                    2,
                )
            ],
        ),
        _table(
            results,
            "redis",
            REDIS_KINDS,
            [
                (
                    f"CPU-s per 1,000 players per {GAME_QUESTIONS}-question game",
                    "game_cpu_s_per_1000_players",
                    2,
                )
            ],
        ),
        "### B1 connections (idle players)",
        "",
        _table(
            results,
            "game",
            GAME_KINDS,
            [
                ("KiB per connection", "kib_per_connection", 1),
                ("connect p50 ms", "connect_p50_ms", 1),
                ("connect p99 ms", "connect_p99_ms", 1),
                ("join CPU ms per 1,000", "join_cpu_per_1000", 0),
            ],
        ),
        "Memory per connection is the server's RSS after the ramp minus before, divided by "
        "the connections; connect latency runs from opening the TCP connection to the "
        "server's `welcome` (the floors answer the join with a pre-built frame).",
        "",
        "### B2 and T4: question fan-out in one game",
        "",
        _table(
            results,
            "game",
            GAME_KINDS,
            [
                ("CPU ms per fan-out", "fanout_cpu_ms", 1),
                ("host → player p50 ms", "fanout_p50_ms", 1),
                ("p99 ms", "fanout_p99_ms", 1),
                ("last player ms", "fanout_last_ms", 1),
                ("frame bytes", "question_bytes", 0),
            ],
        ),
        "PartyQuiz's CPU per fan-out over each peer's, per round (below 1.00x: PartyQuiz "
        "uses less):",
        "",
        _ratio_table(results, "game", "partyquiz", FANOUT_PEERS, "fanout_cpu_ms"),
        "### T2: the answer path",
        "",
        "CPU of the servers from the first answer of the answer-path question until every "
        "receipt is back (plus 100 ms for trailing work), per 1,000 answers; Redis's own "
        "CPU is included in the Redis kinds and also shown alone.",
        "",
        _table(
            results,
            "game",
            GAME_KINDS,
            [
                ("CPU ms per 1,000 answers", "answer_cpu_ms_per_1000", 0),
                ("system time share", "answer_system_share", 2),
                ("receipt p99 ms", "answer_receipt_p99_ms", 1),
            ],
        ),
        _table(
            results,
            "redis",
            REDIS_KINDS,
            [
                ("CPU ms per 1,000 answers", "answer_cpu_ms_per_1000", 0),
                ("of which Redis", "answer_redis_cpu_ms_per_1000", 0),
                ("Redis commands per answer", "answer_redis_ops_per_answer", 2),
                ("system time share", "answer_system_share", 2),
                ("receipt p99 ms", "answer_receipt_p99_ms", 1),
            ],
        ),
        "PartyQuiz's CPU per 1,000 answers over Node ws's, per round:",
        "",
        _ratio_table(results, "game", "partyquiz", ("ws", "socketio"), "answer_cpu_ms_per_1000"),
        _ratio_table(
            results, "redis", "partyquiz-redis", ("ws", "socketio-redis"), "answer_cpu_ms_per_1000"
        ),
        "### B3 and T1: the answer burst",
        "",
        _table(
            results,
            "game",
            [k for k in GAME_KINDS if k not in ("cfloor", "raw")],
            _burst_columns(),
        ),
        _table(results, "redis", REDIS_KINDS, _burst_columns()),
        '"Deadline" is the last answer\'s scheduled send: the question closes when the last '
        "answer arrives; deadline → leaderboard is the time from the deadline to the last "
        "player's result plus the time from the host's `next` to the last player's "
        "leaderboard, each timed where the players got them (the load generator's own pause "
        "between the two is left out). Lost = "
        "an accepted answer missing from the player's personal result; double-counted = a "
        "score that is not the previous score plus this question's points (both: the worst "
        "run).",
        "",
        "### B4: two replicas sharing one game",
        "",
        _table(
            results,
            "redis",
            ("partyquiz-redis", "socketio-redis"),
            [
                ("host's replica p50 ms", "local_p50_ms", 1),
                ("other replica p50 ms", "remote_p50_ms", 1),
                ("added p50 ms", "added_p50_ms", 1),
                ("PUBLISH per broadcast, worst fan-out", "publish_per_broadcast_max", 0),
            ],
        ),
        "Players alternate between the two replicas (or nodes); the host is on the first. "
        "Added latency = other replica p50 minus host's replica p50 for the question "
        "fan-out. PUBLISH counts come from Redis `INFO commandstats` around each fan-out.",
        "",
        "### T5: scale-out",
        "",
        _table(
            results,
            "scaleout",
            ("partyquiz-redis-1", "partyquiz-redis-2x"),
            [
                ("CPU ms per fan-out", "fanout_cpu_ms", 1),
                ("host → player p50 ms", "fanout_p50_ms", 1),
                ("p99 ms", "fanout_p99_ms", 1),
                ("last player ms", "fanout_last_ms", 1),
            ],
        ),
        "One replica with Redis on the server core against two replicas with twice the "
        "players, the second replica on the other core. This machine has two cores, so the "
        "second replica shares its core with the load generator.",
        "",
        "### T6: many games on one replica",
        "",
        _table(
            results,
            "many",
            ("partyquiz-redis-1",),
            [
                ("games", "games", 0),
                ("answers accepted", "burst_receipts", 0),
                ("receipt p50 ms", "receipt_p50_ms", 1),
                ("receipt p99 ms", "receipt_p99_ms", 1),
                ("Redis commands per answer", "burst_redis_ops_per_answer", 2),
                ("server CPU ms", "burst_server_cpu_ms", 0),
                ("lost", "lost", 0),
            ],
        ),
        "Every game has its host; all games run the same question at once and their players "
        "answer on one open-loop schedule spread over 10 s. Redis commands per answer count "
        "every command Redis ran in that window (`INFO commandstats`), lease renewals and "
        "snapshots of every game included.",
        "",
        "### T7: a replica drains mid-game",
        "",
        _table(
            results,
            "drain",
            ("partyquiz-redis",),
            [
                ("resumed", "drain_resumed", 0),
                ("resume p50 ms", "drain_resume_p50_ms", 0),
                ("last resume ms", "drain_last_resume_ms", 0),
                ("wrong scores", "drain_scores_wrong", 0),
            ],
        ),
        "Two replicas on Redis; the host and every player are on the first, which gets "
        "SIGTERM after a question everyone answered. Its players are closed with 1012 and "
        "reconnect to the other replica with their resume tokens as the pages do (at once, "
        "then the pages' back-off); times run from the signal to each player's `welcome`, "
        "whose score is checked against the one the player had.",
        "",
        "### Load generator check",
        "",
        _table(
            results,
            "game",
            GAME_KINDS,
            [
                ("load generator CPU, max over fan-outs", "fanout_loadgen_util_max", 2),
                ("server CPU during fan-out", "fanout_server_util", 2),
                ("late sends", "late_send_share", 4),
            ],
        ),
        "Shares of one core during the fan-out window (host command until the last player "
        "has the frame); late sends as a share of all answers sent. " + _loadgen_sentence(results),
    ]
    return "\n".join(parts)


def _burst_columns() -> list[tuple[str, str, int]]:
    return [
        ("answers accepted", "burst_receipts", 0),
        ("receipt p50 ms", "receipt_p50_ms", 1),
        ("receipt p99 ms", "receipt_p99_ms", 1),
        ("deadline → last result ms", "deadline_to_last_result_ms", 0),
        ("deadline → leaderboard ms", "deadline_to_leaderboard_ms", 0),
        ("server CPU ms", "burst_server_cpu_ms", 0),
        ("lost", "lost", 0),
        ("double-counted", "double_counted", 0),
    ]


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
    loads = "; ".join(
        f"{int(r['count'])} objects {r['load_start']:.1f} / {r['load_end']:.1f}"
        for r in results
        if r.get("load_start") is not None and r.get("load_end") is not None
    )
    return "\n".join(
        [
            f"Measured {when} by `make bench` on the same machine ({machine['cores']} cores, "
            f"{machine['cpu']}, {machine['ram']} RAM); 1-minute load average at each count's "
            f"apply / after its steady-state count: {loads or 'n/a'}.",
            "",
            "B5 starts a control plane of its own (etcd, kube-apiserver, controller-manager, "
            "scheduler, kwok as the node; hack/cluster on separate ports), installs the chart's "
            "CRD and RBAC, and runs `partyquiz-operator` from this checkout as the chart's "
            f"ServiceAccount with a {resync_seconds:g} s resync. Each count runs in a "
            "namespace of its own, once the previous count's namespace and volumes are gone. "
            "It applies N copies of "
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
