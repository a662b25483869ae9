"""From raw load-generator results to the figures the report shows.

Pure: one session's raw JSON becomes a flat dict of metrics; sessions of the same server and
size become medians over runs (worst case for correctness counters); targets are checked
against those medians. Unit-tested in tests/unit/bench; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.stats import median, percentile, ratio

Metrics = dict[str, float | None]

# Correctness counters report the worst run, not the median: one lost answer is one too many.
# So does the ``_max`` twin of the burst's leaderboard time, to show how far runs spread.
WORST_CASE = frozenset(
    {
        "deadline_to_leaderboard_max_ms",
        "lost",
        "double_counted",
        "missing_results",
        "failed",
        "answer_errors",
        "incomplete_fanouts",
        "publish_per_broadcast_max",
    }
)


def _pct(values: Sequence[float], q: float) -> float | None:
    return percentile(values, q) if values else None


def _med(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def _received(latencies: Sequence[float | None]) -> list[float]:
    return [x for x in latencies if x is not None and x >= 0]


def summarize_session(raw: Mapping[str, Any]) -> Metrics:
    """Flatten one load-generator result into named metrics (None where not measured)."""
    if raw.get("aborted"):
        raise ValueError(f"the load generator aborted: {raw['aborted']}")
    connected = float(raw["connected"])
    ramp = raw["ramp"]
    rss_delta = ramp["rss_after_kib"] - ramp["rss_before_kib"]
    connects = ramp["connect_latencies_ms"]
    m: Metrics = {
        "connected": connected,
        "failed": float(raw["failed"]),
        "kib_per_connection": rss_delta / connected if connected else None,
        "connect_p50_ms": _pct(connects, 50),
        "connect_p99_ms": _pct(connects, 99),
        "ramp_loadgen_util": ramp["loadgen_util"],
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
    burst = raw.get("burst")
    if burst:
        receipts = burst["receipt_latencies_ms"]
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
                "deadline_to_leaderboard_max_ms": burst["deadline_to_last_leaderboard_ms"],
                "burst_server_cpu_ms": burst["server_cpu_ms"],
                "burst_loadgen_util": burst["loadgen_util"],
            }
        )
    return m


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


def aggregate(sessions: Iterable[Metrics]) -> Metrics:
    """Combine runs of one server at one size: medians, worst case for correctness counters."""
    runs = list(sessions)
    keys = sorted({k for s in runs for k in s})
    out: Metrics = {"runs": float(len(runs))}
    for key in keys:
        values = [s[key] for s in runs if s.get(key) is not None]
        if not values:
            out[key] = None
        elif key in WORST_CASE:
            out[key] = max(v for v in values if v is not None)
        else:
            out[key] = _med(values)
    return out


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "not measured" if value is None else f"{value:.{digits}f}{unit}"


def check_targets(
    by_size: Mapping[int, Mapping[str, Metrics]], replicas: Mapping[int, Metrics] | None = None
) -> list[Verdict]:
    """Compare medians with issue 10's targets; ``by_size[players][kind]`` are aggregates."""
    verdicts: list[Verdict] = []

    def get(size: int, kind: str, key: str) -> float | None:
        return by_size.get(size, {}).get(kind, {}).get(key)

    for size in sorted(by_size):
        pq_cpu = get(size, "partyquiz", "fanout_cpu_ms")
        sio = ratio(pq_cpu, get(size, "socketio", "fanout_cpu_ms"))
        verdicts.append(
            Verdict(
                f"B2 {size:,} players: CPU per fan-out ≤ 1.0x Node Socket.IO",
                _fmt(sio, "x"),
                None if sio is None else sio <= 1.0,
            )
        )
        floor = ratio(pq_cpu, get(size, "raw", "fanout_cpu_ms"))
        verdicts.append(
            Verdict(
                f"B2 {size:,} players: CPU per fan-out ≤ 1.5x raw floor",
                _fmt(floor, "x"),
                None if floor is None else floor <= 1.5,
            )
        )
        kib = get(size, "partyquiz", "kib_per_connection")
        verdicts.append(
            Verdict(
                f"B1 {size:,} players: ≤ 16 KiB per idle connection",
                _fmt(kib, " KiB", 1),
                None if kib is None else kib <= 16.0,
            )
        )
        lost = get(size, "partyquiz", "lost")
        doubled = get(size, "partyquiz", "double_counted")
        if lost is not None and doubled is not None:
            answers = get(size, "partyquiz", "burst_receipts")
            verdicts.append(
                Verdict(
                    f"B3 {size:,} answers in 1 s: none lost or double-counted",
                    f"{answers or 0:,.0f} accepted, {lost:.0f} lost, {doubled:.0f} double-counted",
                    lost == 0
                    and doubled == 0
                    and answers == get(size, "partyquiz", "burst_players"),
                )
            )
        lb = get(size, "partyquiz", "deadline_to_leaderboard_ms")
        verdicts.append(
            Verdict(
                f"B3 {size:,} players: leaderboard at last player ≤ 500 ms",
                _fmt(lb, " ms", 0),
                None if lb is None else lb <= 500,
            )
        )
    if 10_000 in by_size:
        p99 = get(10_000, "partyquiz", "fanout_p99_ms")
        verdicts.append(
            Verdict(
                "B2 10,000 players: host → last player p99 ≤ 300 ms",
                _fmt(p99, " ms", 0),
                None if p99 is None else p99 <= 300,
            )
        )
    for size, m in sorted((replicas or {}).items()):
        pub = m.get("publish_per_broadcast_max")
        verdicts.append(
            Verdict(
                f"B4 {size:,} players: exactly 1 PUBLISH per broadcast",
                _fmt(pub, "", 0),
                None if pub is None else pub == 1,
            )
        )
        added = m.get("added_p50_ms")
        verdicts.append(
            Verdict(
                f"B4 {size:,} players: remote replica adds ≤ 5 ms p50",
                _fmt(added, " ms", 1),
                None if added is None else added <= 5,
            )
        )
    return verdicts


def check_operator_targets(results: Iterable[Mapping[str, Any]]) -> list[Verdict]:
    """B5: steady-state resyncs write nothing; apply -> Ready p50 within 2 s (pod starts aside)."""
    verdicts: list[Verdict] = []
    for r in results:
        n = int(r["count"])
        writes = r.get("resync_writes")
        verdicts.append(
            Verdict(
                f"B5 {n} objects: steady-state resync writes nothing",
                _fmt(writes, " writes", 0),
                None if writes is None else writes == 0,
            )
        )
        own, total = r.get("operator_p50_s"), r.get("ready_p50_s")
        verdicts.append(
            Verdict(
                f"B5 {n} objects: apply → Ready p50 ≤ 2 s excluding pod start "
                f"(total with pod starts {_fmt(total, ' s', 1)})",
                _fmt(own, " s", 2),
                None if own is None else own <= 2.0,
            )
        )
    return verdicts
