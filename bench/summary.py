"""From raw load-generator results to the figures the report shows, and the targets' verdicts.

Pure: one session's raw JSON becomes a flat dict of metrics; the sessions of a server at one
size are kept per run, so every figure is shown as its median beside the best and worst run,
every ratio is taken between servers of the same interleaved round, and a target counts as met
only when its WORST run meets it. Unit-tested in tests/unit/bench; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.stats import Spread, median, paired_ratios, percentile, ratio, spread_of

Metrics = dict[str, float | None]
# scenario -> size -> kind -> one Metrics per successful run (each holds its "run" index)
Results = dict[str, dict[int, dict[str, list[Metrics]]]]

# Questions in the game an operator sizes replicas for (T3).
GAME_QUESTIONS = 20
# A send more than this behind its schedule is late: the load generator, not the server, set
# the pace of that answer.
LATE_SEND_MS = 5.0
LATE_SEND_LIMIT = 0.01


def _pct(values: Sequence[float], q: float) -> float | None:
    return percentile(values, q) if values else None


def _med(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def _received(latencies: Sequence[float | None]) -> list[float]:
    return [x for x in latencies if x is not None and x >= 0]


def _redis_cpu_ms(phase: Mapping[str, Any], raw: Mapping[str, Any]) -> float | None:
    pid = raw.get("redis_pid")
    pids = raw.get("server_pids") or []
    by_pid = phase.get("server_cpu_ms_by_pid")
    if pid is None or pid not in pids or not by_pid:
        return None
    return float(by_pid[pids.index(pid)])


def _system_share(phase: Mapping[str, Any]) -> float | None:
    user, system = phase.get("server_user_ticks"), phase.get("server_system_ticks")
    if user is None or system is None or user + system == 0:
        return None
    return float(system) / float(user + system)


def summarize_session(raw: Mapping[str, Any]) -> Metrics:
    """Flatten one load-generator result into named metrics (None where not measured)."""
    if raw.get("aborted"):
        raise ValueError(f"the load generator aborted: {raw['aborted']}")
    connected = float(raw["connected"])
    ramp = raw["ramp"]
    rss_delta = ramp["rss_after_kib"] - ramp["rss_before_kib"]
    connects = ramp["connect_latencies_ms"]
    m: Metrics = {
        "players": float(raw.get("players", connected)),
        "connected": connected,
        "failed": float(raw["failed"]),
        "kib_per_connection": rss_delta / connected if connected else None,
        "connect_p50_ms": _pct(connects, 50),
        "connect_p99_ms": _pct(connects, 99),
        "ramp_loadgen_util": ramp["loadgen_util"],
        "join_cpu_ms": ramp.get("server_cpu_ms"),
        "join_cpu_per_1000": None
        if ramp.get("server_cpu_ms") is None or not connected
        else ramp["server_cpu_ms"] / connected * 1000,
        "games": float(raw.get("games") or 1),
        "question_bytes": raw.get("question_bytes"),
    }
    measured = [f for f in raw["fanouts"] if not f.get("warmup")]
    per_fanout: list[dict[str, float | None]] = []
    for f in measured:
        got = _received(f["latencies_ms"])
        cpu_ms = f["server_cpu_ms"]
        per_fanout.append(
            {
                "cpu_ms": cpu_ms,
                "frames_per_cpu_s": ratio(float(f["received"]), cpu_ms / 1000.0),
                "p50": _pct(got, 50),
                "p99": _pct(got, 99),
                "last": max(got) if got else None,
                "loadgen_util": f["loadgen_util"],
                "server_util": f["server_util"],
                "publish": f.get("publish_calls"),
            }
        )
    m["fanout_cpu_ms"] = _med(f["cpu_ms"] for f in per_fanout)
    m["frames_per_cpu_s"] = _med(f["frames_per_cpu_s"] for f in per_fanout)
    m["fanout_p50_ms"] = _med(f["p50"] for f in per_fanout)
    m["fanout_p99_ms"] = _med(f["p99"] for f in per_fanout)
    m["fanout_last_ms"] = _med(f["last"] for f in per_fanout)
    m["fanout_loadgen_util_max"] = max(
        (f["loadgen_util"] for f in per_fanout if f["loadgen_util"] is not None), default=None
    )
    m["fanout_server_util"] = _med(f["server_util"] for f in per_fanout)
    m["incomplete_fanouts"] = float(sum(1 for f in measured if not f["complete"]))
    publishes = [f["publish"] for f in per_fanout if f["publish"] is not None]
    m["publish_per_broadcast"] = _med(publishes) if publishes else None
    m["publish_per_broadcast_max"] = max(publishes) if publishes else None
    sent = late = 0
    answer_path = raw.get("answer_path")
    if answer_path and answer_path["sent"]:
        n = float(answer_path["sent"])
        sent += answer_path["sent"]
        late += answer_path["late_sends"]
        redis_cpu = _redis_cpu_ms(answer_path, raw)
        ops = answer_path.get("redis_ops")
        m.update(
            {
                "answer_cpu_ms_per_1000": answer_path["server_cpu_ms"] / n * 1000,
                "answer_redis_cpu_ms_per_1000": None if redis_cpu is None else redis_cpu / n * 1000,
                "answer_redis_ops_per_answer": None if ops is None else ops / n,
                "answer_system_share": _system_share(answer_path),
                "answer_receipt_p99_ms": _pct(answer_path["receipt_latencies_ms"], 99),
                "answer_errors_path": float(answer_path["answer_errors"]),
            }
        )
    burst = raw.get("burst")
    if burst:
        sent += burst["sent"]
        late += burst["late_sends"]
        receipts = burst["receipt_latencies_ms"]
        ops = burst.get("redis_ops")
        m.update(
            {
                "burst_players": float(burst["players"]),
                "burst_receipts": float(burst["receipts"]),
                "receipt_p50_ms": _pct(receipts, 50),
                "receipt_p99_ms": _pct(receipts, 99),
                "lost": float(burst["lost"]),
                "double_counted": float(burst["double_counted"]),
                "missing_results": float(burst["missing_results"]),
                "answer_errors": float(burst["answer_errors"]),
                "deadline_to_last_result_ms": burst["deadline_to_last_result_ms"],
                "deadline_to_leaderboard_ms": burst["deadline_to_last_leaderboard_ms"],
                # As the conductor heard of it: its pause and IPC included (older runs' figure).
                "conductor_deadline_to_leaderboard_ms": burst.get(
                    "conductor_deadline_to_leaderboard_ms"
                ),
                "burst_server_cpu_ms": burst["server_cpu_ms"],
                "burst_loadgen_util": burst["loadgen_util"],
                "burst_redis_ops_per_answer": None
                if ops is None or not burst["sent"]
                else ops / burst["sent"],
            }
        )
    m["sends"] = float(sent) if sent else None
    m["late_send_share"] = late / sent if sent else None
    m["game_cpu_s_per_1000_players"] = game_cost(raw)
    drain = raw.get("drain")
    if drain:
        m.update(
            {
                "drain_players": float(drain["players"]),
                "drain_resumed": float(drain["resumed"]),
                "drain_missing": float(drain["missing"]),
                "drain_scores_wrong": float(drain["scores_wrong"]),
                "drain_last_resume_ms": drain["last_resume_ms"],
                "drain_resume_p50_ms": _pct(drain["resume_latencies_ms"], 50),
            }
        )
    return m


def game_cost(raw: Mapping[str, Any]) -> float | None:
    """Server CPU-seconds per 1,000 players for a game of ``GAME_QUESTIONS`` questions.

    Composed from this session's own measurements: joining every player, then per question
    one question fan-out (the median measured), every player's answer (the answer path,
    scaled from the players who answered to all of them), the reveal with everyone's
    result and the leaderboard that follow it. Idle time between phases is not included.
    """
    path = raw.get("answer_path")
    close = raw.get("answer_path_close")
    join = raw["ramp"].get("server_cpu_ms")
    fanouts = [f["server_cpu_ms"] for f in raw["fanouts"] if not f.get("warmup")]
    players = float(raw.get("connected") or 0)
    if not path or not path["sent"] or not close or join is None or not fanouts or not players:
        return None
    answers = path["server_cpu_ms"] * players / path["sent"]
    question = median(fanouts) + answers
    question += close["reveal"]["server_cpu_ms"] + close["leaderboard"]["server_cpu_ms"]
    total_ms = join + GAME_QUESTIONS * question
    return total_ms / players  # ms per player = CPU-seconds per 1,000 players


def split_by_replica(raw: Mapping[str, Any], replicas: int) -> list[Metrics]:
    """Per replica (players alternate between them): question fan-out latency p50/p99."""
    measured = [f for f in raw["fanouts"] if not f.get("warmup")]
    out: list[Metrics] = []
    for r in range(replicas):
        p50s: list[float | None] = []
        p99s: list[float | None] = []
        for f in measured:
            got = _received(f["latencies_ms"][r::replicas])
            p50s.append(_pct(got, 50))
            p99s.append(_pct(got, 99))
        out.append({"p50_ms": _med(p50s), "p99_ms": _med(p99s)})
    return out


def summarize_records(records: Iterable[Mapping[str, Any]]) -> Results:
    """Group sessions by scenario, size and server; failed sessions are left out."""
    results: Results = {}
    for rec in records:
        if "error" in rec or "raw" not in rec:
            continue
        metrics = summarize_session(rec["raw"])
        metrics["run"] = float(rec["run"])
        if rec["kind"] in ("partyquiz-redis", "socketio-redis") and not rec["raw"].get("drain"):
            local, remote = split_by_replica(rec["raw"], 2)
            metrics["local_p50_ms"] = local["p50_ms"]
            metrics["remote_p50_ms"] = remote["p50_ms"]
            metrics["added_p50_ms"] = (
                None
                if local["p50_ms"] is None or remote["p50_ms"] is None
                else remote["p50_ms"] - local["p50_ms"]
            )
        by_kind = results.setdefault(rec["scenario"], {}).setdefault(int(rec["size"]), {})
        by_kind.setdefault(rec["kind"], []).append(metrics)
    return results


def spread(runs: Sequence[Metrics], key: str) -> Spread | None:
    """A figure of one server at one size over its runs."""
    return spread_of(r.get(key) for r in runs)


def ratio_spread(runs: Sequence[Metrics], peer_runs: Sequence[Metrics], key: str) -> Spread | None:
    """``key`` of a server over the same of a peer, per interleaved round."""
    mine = {int(r["run"] or 0): r.get(key) for r in runs}
    theirs = {int(r["run"] or 0): r.get(key) for r in peer_runs}
    return spread_of(paired_ratios(mine, theirs))


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured


def format_spread(s: Spread | None, unit: str = "", digits: int = 0) -> str:
    """``12 ms (10 to 15 over 5 runs)``; one run shows the value alone."""
    if s is None:
        return "not measured"
    mid = f"{s.median:,.{digits}f}{unit}"
    if s.runs < 2:
        return f"{mid} (1 run)"
    bound = unit if unit == "x" else ""  # a ratio reads 0.80x to 1.10x; 40 to 130 ms
    low, high = f"{s.low:,.{digits}f}{bound}", f"{s.high:,.{digits}f}{bound}"
    return f"{mid} ({low} to {high} over {s.runs} runs)"


def _worst_at_most(target: str, s: Spread | None, limit: float, unit: str, digits: int) -> Verdict:
    return Verdict(target, format_spread(s, unit, digits), None if s is None else s.high <= limit)


class TargetCheck:
    """Builds the verdicts of one report from the per-run figures."""

    def __init__(self, results: Results) -> None:
        self.results = results
        self.verdicts: list[Verdict] = []

    def runs(self, scenario: str, size: int, kind: str) -> list[Metrics]:
        return self.results.get(scenario, {}).get(size, {}).get(kind, [])

    def sizes(self, scenario: str) -> list[int]:
        return sorted(self.results.get(scenario, {}))

    def at_most(
        self,
        target: str,
        scenario: str,
        size: int,
        kind: str,
        key: str,
        limit: float,
        unit: str = "",
        digits: int = 0,
    ) -> None:
        runs = self.runs(scenario, size, kind)
        if runs:
            self.verdicts.append(_worst_at_most(target, spread(runs, key), limit, unit, digits))

    def ratio_at_most(
        self,
        target: str,
        scenario: str,
        size: int,
        kind: str,
        peer: str,
        key: str,
        limit: float,
    ) -> None:
        runs, peer_runs = self.runs(scenario, size, kind), self.runs(scenario, size, peer)
        if runs:
            s = ratio_spread(runs, peer_runs, key) if peer_runs else None
            self.verdicts.append(_worst_at_most(target, s, limit, "x", 2))

    def all_zero(
        self,
        target: str,
        scenario: str,
        size: int,
        kind: str,
        describe: Callable[[Metrics], str],
        trouble: Callable[[Metrics], float] | None = None,
    ) -> None:
        """A correctness target: met when no run lost, doubled or missed anything."""
        runs = self.runs(scenario, size, kind)
        if not runs:
            return
        count = trouble or _trouble
        worst = max(runs, key=count)
        self.verdicts.append(
            Verdict(target, f"worst of {len(runs)} runs: {describe(worst)}", count(worst) == 0)
        )


def _trouble(m: Metrics) -> float:
    """Answers lost, doubled or unanswered in one run; 0 when the burst was clean."""
    lost = (m.get("lost") or 0) + (m.get("double_counted") or 0) + (m.get("missing_results") or 0)
    players, receipts = m.get("burst_players"), m.get("burst_receipts")
    unanswered = 0.0 if players is None or receipts is None else max(0.0, players - receipts)
    return lost + unanswered + (m.get("answer_errors") or 0)


def _answers(m: Metrics) -> str:
    return (
        f"{m.get('burst_receipts') or 0:,.0f} of {m.get('burst_players') or 0:,.0f} accepted, "
        f"{m.get('lost') or 0:.0f} lost, {m.get('double_counted') or 0:.0f} double-counted"
    )


def check_targets(results: Results) -> list[Verdict]:
    """Every target of the report, each met only if its worst run meets it."""
    c = TargetCheck(results)
    for size in c.sizes("redis"):
        n = f"{size:,}"
        c.at_most(
            f"T1 {n} answers in 1 s, 2 replicas + Redis: receipt p99 ≤ 100 ms",
            "redis",
            size,
            "partyquiz-redis",
            "receipt_p99_ms",
            100,
            " ms",
        )
        c.at_most(
            f"T1 {n} players, 2 replicas + Redis: deadline → leaderboard at the last player "
            "≤ 500 ms",
            "redis",
            size,
            "partyquiz-redis",
            "deadline_to_leaderboard_ms",
            500,
            " ms",
        )
        c.all_zero(
            f"T1 {n} answers, 2 replicas + Redis: none lost or double-counted",
            "redis",
            size,
            "partyquiz-redis",
            _answers,
        )
    for size in c.sizes("game"):
        n = f"{size:,}"
        c.ratio_at_most(
            f"T2 {n} players, embedded: CPU per 1,000 answers ≤ 1.0x Node ws",
            "game",
            size,
            "partyquiz",
            "ws",
            "answer_cpu_ms_per_1000",
            1.0,
        )
    for size in c.sizes("redis"):
        n = f"{size:,}"
        c.ratio_at_most(
            f"T2 {n} players, 2 replicas + Redis (Redis's CPU included): CPU per 1,000 answers "
            "≤ 2.0x Node ws",
            "redis",
            size,
            "partyquiz-redis",
            "ws",
            "answer_cpu_ms_per_1000",
            2.0,
        )
    for size in c.sizes("game"):
        n = f"{size:,}"
        c.ratio_at_most(
            f"T3 {n} players, embedded: CPU per 1,000 players per {GAME_QUESTIONS}-question game "
            "≤ 1.0x Node ws",
            "game",
            size,
            "partyquiz",
            "ws",
            "game_cpu_s_per_1000_players",
            1.0,
        )
    for size in c.sizes("redis"):
        n = f"{size:,}"
        c.ratio_at_most(
            f"T3 {n} players, 2 replicas + Redis: CPU per 1,000 players per {GAME_QUESTIONS}-"
            "question game ≤ 2.0x Node ws",
            "redis",
            size,
            "partyquiz-redis",
            "ws",
            "game_cpu_s_per_1000_players",
            2.0,
        )
    for size in c.sizes("game"):
        n = f"{size:,}"
        c.ratio_at_most(
            f"T4 {n} players: CPU per fan-out ≤ 1.0x Node ws with a pre-built frame",
            "game",
            size,
            "partyquiz",
            "ws-prebuilt",
            "fanout_cpu_ms",
            1.0,
        )
        c.ratio_at_most(
            f"T4 {n} players: CPU per fan-out ≤ 1.25x the C write() floor",
            "game",
            size,
            "partyquiz",
            "cfloor",
            "fanout_cpu_ms",
            1.25,
        )
    for size in c.sizes("scaleout"):
        c.ratio_at_most(
            f"T5 {2 * size:,} players on 2 replicas: question fan-out p99 ≤ 1.0x {size:,} "
            "players on 1 replica",
            "scaleout",
            size,
            "partyquiz-redis-2x",
            "partyquiz-redis-1",
            "fanout_p99_ms",
            1.0,
        )
    for size in c.sizes("many"):
        c.at_most(
            f"T6 {size:,} players in many games on 1 replica + Redis: receipt p99 ≤ 100 ms",
            "many",
            size,
            "partyquiz-redis-1",
            "receipt_p99_ms",
            100,
            " ms",
        )
    for size in c.sizes("drain"):
        n = f"{size:,}"
        c.at_most(
            f"T7 a replica with {n} players drains: the last player resumed within 10 s",
            "drain",
            size,
            "partyquiz-redis",
            "drain_last_resume_ms",
            10_000,
            " ms",
        )
        c.all_zero(
            f"T7 a replica with {n} players drains: every player resumed, scores intact",
            "drain",
            size,
            "partyquiz-redis",
            _resumes,
            _drain_trouble,
        )
    for size in c.sizes("game"):
        n = f"{size:,}"
        c.at_most(
            f"B1 {n} players: ≤ 16 KiB per idle connection",
            "game",
            size,
            "partyquiz",
            "kib_per_connection",
            16,
            " KiB",
            1,
        )
        c.all_zero(
            f"B3 {n} answers in 1 s, embedded: none lost or double-counted",
            "game",
            size,
            "partyquiz",
            _answers,
        )
        c.at_most(
            f"B3 {n} players, embedded: deadline → leaderboard at the last player ≤ 500 ms",
            "game",
            size,
            "partyquiz",
            "deadline_to_leaderboard_ms",
            500,
            " ms",
        )
        c.ratio_at_most(
            f"B2 {n} players: CPU per fan-out ≤ 1.0x Node Socket.IO",
            "game",
            size,
            "partyquiz",
            "socketio",
            "fanout_cpu_ms",
            1.0,
        )
    if 10_000 in c.sizes("game"):
        c.at_most(
            "B2 10,000 players: host → player p99 ≤ 300 ms",
            "game",
            10_000,
            "partyquiz",
            "fanout_p99_ms",
            300,
            " ms",
        )
    for size in c.sizes("redis"):
        n = f"{size:,}"
        c.at_most(
            f"B4 {n} players: exactly 1 PUBLISH per broadcast",
            "redis",
            size,
            "partyquiz-redis",
            "publish_per_broadcast_max",
            1,
        )
        c.at_most(
            f"B4 {n} players: the other replica adds ≤ 5 ms p50",
            "redis",
            size,
            "partyquiz-redis",
            "added_p50_ms",
            5,
            " ms",
            1,
        )
    late = [
        m.get("late_send_share")
        for sizes in results.values()
        for kinds in sizes.values()
        for runs in kinds.values()
        for m in runs
    ]
    s = spread_of(late)
    if s is not None:
        c.verdicts.append(
            Verdict(
                f"Load generator: sends > {LATE_SEND_MS:g} ms behind schedule < 1 % in every "
                "session",
                f"worst session {s.high:.2%} (median {s.median:.2%}, {s.runs} sessions)",
                s.high < LATE_SEND_LIMIT,
            )
        )
    return c.verdicts


def _resumes(m: Metrics) -> str:
    return (
        f"{m.get('drain_resumed') or 0:,.0f} of {m.get('drain_players') or 0:,.0f} resumed, "
        f"{m.get('drain_scores_wrong') or 0:.0f} with a wrong score"
    )


def _drain_trouble(m: Metrics) -> float:
    return (m.get("drain_missing") or 0) + (m.get("drain_scores_wrong") or 0)


def check_operator_targets(results: Iterable[Mapping[str, Any]]) -> list[Verdict]:
    """B5: steady-state resyncs write nothing; apply -> Ready p50 within 2 s (pod starts aside)."""
    verdicts: list[Verdict] = []
    for r in results:
        n = int(r["count"])
        writes = r.get("resync_writes")
        verdicts.append(
            Verdict(
                f"B5 {n} objects: steady-state resync writes nothing",
                "not measured" if writes is None else f"{writes:.0f} writes",
                None if writes is None else writes == 0,
            )
        )
        own, total = r.get("operator_p50_s"), r.get("ready_p50_s")
        total_text = "not measured" if total is None else f"{total:.1f} s"
        verdicts.append(
            Verdict(
                f"B5 {n} objects: apply → Ready p50 ≤ 2 s excluding pod start "
                f"(total with pod starts {total_text})",
                "not measured" if own is None else f"{own:.2f} s",
                None if own is None else own <= 2.0,
            )
        )
    return verdicts
