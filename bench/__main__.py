"""``python -m bench``: run the benchmark suite and write the "Game service" section.

Owns the command line, the profiles (``quick`` for a smoke run, ``full`` for the published
figures), where raw results and logs go (a run directory under the cache, outside the repo),
the raw figures kept in the repo (one small CSV per scenario beside docs/benchmarks.md) and the
final write of docs/benchmarks.md. It never touches other sections of that file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.operator_bench import OPERATOR_RESYNC_SECONDS, run_operator_bench
from bench.operator_failfast import (
    RunFigures,
    check_failfast_targets,
    render_failfast,
    run_failfast_bench,
)
from bench.procs import BenchError, raise_fd_limit
from bench.quiz import bench_quiz, question_message
from bench.render import render_game_service, render_operator
from bench.report import csv_text, replace_section, session_rows
from bench.suite import WORKERS, Plan, Scenario, Targets, log, run_scenario, self_check
from bench.summary import Verdict, check_operator_targets, check_targets, summarize_records
from bench.targets import KINDS, REPO_ROOT, Env

GAME = ("partyquiz", "ws", "ws-prebuilt", "socketio", "pysocketio", "centrifugo", "cfloor")
REDIS = ("partyquiz-redis", "socketio-redis", "ws")


def _scenarios(
    sizes: dict[str, tuple[int, ...]], runs: int, many: int, rounds: int
) -> tuple[Scenario, ...]:
    return (
        Scenario("game", sizes["game"], GAME, runs, rounds, 1),
        Scenario("redis", sizes["redis"], REDIS, runs, rounds, 1),
        Scenario(
            "scaleout",
            sizes["scaleout"],
            ("partyquiz-redis-1", "partyquiz-redis-2x"),
            max(1, runs - 2),
            rounds,
            1,
            answer_path=False,
            burst=False,
        ),
        Scenario(
            "many",
            sizes["many"],
            ("partyquiz-redis-1",),
            max(1, runs - 2),
            0,
            0,
            answer_path=False,
            burst_window_s=10.0,
            games=many,
        ),
        Scenario(
            "drain",
            sizes["drain"],
            ("partyquiz-redis",),
            max(1, runs - 2),
            0,
            0,
            answer_path=False,
            drain=True,
        ),
    )


PROFILES = {
    "quick": Plan(
        _scenarios(
            {"game": (200,), "redis": (200,), "scaleout": (200,), "many": (200,), "drain": (200,)},
            runs=1,
            many=10,
            rounds=2,
        ),
        operator_counts=(3,),
        failfast_runs=5,
    ),
    "full": Plan(
        _scenarios(
            {
                "game": (1000, 5000, 10000),
                "redis": (10000,),
                "scaleout": (10000,),
                "many": (10000,),
                "drain": (5000,),
            },
            runs=5,
            many=500,
            rounds=3,
        ),
        operator_counts=(10, 100),
        failfast_runs=10,
    ),
}
SCENARIOS = ("game", "redis", "scaleout", "many", "drain", "operator", "failfast")
# A full run rewrites the published figures only when the machine was this quiet (1-minute
# load average) as it started; otherwise they stay in the run directory (see --docs).
PUBLISH_MAX_LOAD = 1.5


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cache = Path(os.environ.get("PARTYQUIZ_CACHE") or Path.home() / ".cache" / "partyquiz")
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    p.add_argument("--sizes", type=_ints, help="players per session for every scenario run")
    p.add_argument("--runs", type=int, help="interleaved runs per size (medians over them)")
    p.add_argument("--kinds", help=f"comma list, a subset of {','.join(KINDS)}")
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma list of {', '.join(SCENARIOS)}",
    )
    p.add_argument("--workers", type=int, default=WORKERS, help="load-generator worker processes")
    p.add_argument("--node", default=shutil.which("node") or "node")
    p.add_argument(
        "--peers-dir",
        type=Path,
        default=cache / "bench",
        help="where bench/install.sh put the peers",
    )
    p.add_argument("--results-dir", type=Path, default=cache / "bench" / "runs")
    p.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="file whose 'Game service' / 'Operator' sections are rewritten (default with "
        "--profile full on a quiet machine: docs/benchmarks.md; a quick run never overwrites "
        "published figures unless this is given)",
    )
    p.add_argument("--no-docs", action="store_true", help="print the sections instead")
    p.add_argument(
        "--py-spy",
        action="store_true",
        help="profile every partyquiz-ws process with py-spy during the answer phases "
        "(<session>-profile-<pid>-<phase>.top.txt in the run dir)",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="nice value for servers and load generator (negative needs root)",
    )
    return p.parse_args(argv)


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed (it is in the dev dependency group)")
    return found


def build_plan(args: argparse.Namespace) -> Plan:
    base = PROFILES[args.profile]
    wanted = set(args.scenarios.split(","))
    unknown = wanted - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    kinds = set(args.kinds.split(",")) if args.kinds else None
    if kinds is not None and kinds - set(KINDS):
        raise SystemExit(f"unknown kinds: {', '.join(sorted(kinds - set(KINDS)))}")
    scenarios = []
    for s in base.scenarios:
        if s.name not in wanted:
            continue
        chosen = tuple(k for k in s.kinds if kinds is None or k in kinds)
        if not chosen:
            continue
        scenarios.append(
            replace(s, kinds=chosen, sizes=args.sizes or s.sizes, runs=args.runs or s.runs)
        )
    return replace(
        base,
        scenarios=tuple(scenarios),
        operator_counts=base.operator_counts if "operator" in wanted else (),
        failfast_runs=max(5, args.runs or base.failfast_runs) if "failfast" in wanted else 0,
        nice=args.nice,
        workers=args.workers,
    )


def _plan_text(plan: Plan) -> str:
    parts = []
    for s in plan.scenarios:
        sizes = "/".join(f"{n:,}" for n in s.sizes)
        parts.append(f"{s.name}: {sizes} players, {s.runs} interleaved run{'s' * (s.runs > 1)}")
    text = "; ".join(parts)
    if plan.nice:
        text += f"; servers and load generator at nice {plan.nice}"
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = build_plan(args)
    # The most connections one process holds: a server process never more than a session's
    # size (the scale-out's doubled players are spread over its two replicas), a load-generator
    # worker its share of the players.
    biggest = max(
        (
            max(n, -(-s.players(k, n) // plan.workers))
            for s in plan.scenarios
            for k in s.kinds
            for n in s.sizes
        ),
        default=0,
    )
    limit = raise_fd_limit(3 * biggest + 2048)
    if limit < biggest + 1024:
        raise SystemExit(
            f"open-file limit {limit} is too low for {biggest} connections in one process"
        )
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_at_start = os.getloadavg()[0]
    run_dir = args.results_dir / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    run_dir.mkdir(parents=True, exist_ok=True)
    quiz = bench_quiz(plan.questions)
    quiz_path = run_dir / "quiz.json"
    quiz_path.write_text(json.dumps(quiz))
    payload_path = run_dir / "question.json"
    payload_path.write_bytes(question_message(quiz, 0, time.time()))
    env = Env(
        log_dir=run_dir,
        quiz_path=quiz_path,
        payload_path=payload_path,
        node=args.node,
        peers_dir=args.peers_dir,
        server_cpu=1,
        loadgen_cpu=0,
        nice=plan.nice,
        py_spy=_py_spy() if args.py_spy else None,
    )
    machine = describe(args.node, args.peers_dir)
    records: list[dict[str, Any]] = []
    results_file = run_dir / "results.jsonl"

    def record(rec: dict[str, Any]) -> None:
        rec["load"] = round(os.getloadavg()[0], 2)
        records.append(rec)
        with results_file.open("a") as out:
            out.write(json.dumps(rec) + "\n")

    try:
        self_check(env)
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    failed_scenarios: list[str] = []
    targets = Targets(env, quiz)
    try:
        for scenario in plan.scenarios:
            # Each scenario stands alone: one that cannot run still leaves the others' figures.
            try:
                run_scenario(plan, scenario, env, targets, quiz, record)
            except BenchError as exc:
                log(f"{scenario.name} FAILED: {exc}")
                failed_scenarios.append(scenario.name)
    finally:
        targets.close()
    operator_results: list[dict[str, Any]] = []
    try:
        if plan.operator_counts:
            operator_results = run_operator_bench(plan.operator_counts, run_dir)
            (run_dir / "operator.json").write_text(json.dumps(operator_results))
    except BenchError as exc:
        log(f"B5 FAILED: {exc}")
        failed_scenarios.append("operator")
    failfast_results: list[RunFigures] = []
    failfast_load = os.getloadavg()[0]
    try:
        if plan.failfast_runs:
            failfast_results = run_failfast_bench(plan.failfast_runs, run_dir)
            (run_dir / "failfast.json").write_text(
                json.dumps([asdict(r) for r in failfast_results])
            )
    except BenchError as exc:
        log(f"B6 FAILED: {exc}")
        failed_scenarios.append("failfast")
    machine["load_end"] = f"{os.getloadavg()[0]:.2f}"
    sections: dict[str, str] = {}
    verdicts: list[Verdict] = []
    docs_path: Path | None = args.docs
    if docs_path is None and args.profile == "full":
        if load_at_start < PUBLISH_MAX_LOAD:
            docs_path = REPO_ROOT / "docs" / "benchmarks.md"
        else:
            log(
                f"the 1-minute load average was {load_at_start:.2f} at the start (publishing "
                f"needs < {PUBLISH_MAX_LOAD}): docs left as they are; pass --docs to publish"
            )
    raw_dir = None if docs_path is None else docs_path.parent / "benchmarks"
    if records:
        results = summarize_records(records)
        verdicts = check_targets(results)
        failures = [
            f"{r['scenario']} {KINDS[r['kind']].label} {r.get('players', r['size'])} players "
            f"run {r['run'] + 1}: {r['error'].splitlines()[0][:160]}"
            for r in records
            if "error" in r
        ]
        sections["Game service"] = render_game_service(
            machine,
            _plan_text(plan),
            results,
            verdicts,
            started,
            failures,
            raw_dir="benchmarks/" if raw_dir is not None else "",
        )
    if operator_results:
        verdicts += check_operator_targets(operator_results)
        sections["Operator"] = render_operator(
            started, machine, operator_results, OPERATOR_RESYNC_SECONDS
        )
    if failfast_results:
        verdicts += check_failfast_targets(failfast_results)
        sections["Operator fail-fast"] = render_failfast(
            started, machine, failfast_results, (failfast_load, os.getloadavg()[0])
        )
    tables = session_rows(records)
    for scenario, (headers, rows) in tables.items():
        (run_dir / f"{scenario}.csv").write_text(csv_text(headers, rows))
    for title, body in sections.items():
        (run_dir / f"{title.lower().replace(' ', '-')}.md").write_text(body)
        if args.no_docs:
            print(f"## {title}\n\n{body}")
    if sections and docs_path is None and not args.no_docs:
        log(f"sections left in {run_dir} (pass --docs to publish them)")
    if sections and docs_path is not None and not args.no_docs:
        doc = docs_path.read_text() if docs_path.exists() else ""
        for title, body in sections.items():
            doc = replace_section(doc, title, body)
        _write(docs_path, doc)
        if raw_dir is not None:
            raw_dir.mkdir(exist_ok=True)
            for scenario, (headers, rows) in tables.items():
                _write(raw_dir / f"{scenario}.csv", csv_text(headers, rows))
        log(f"wrote the {', '.join(sections)} section(s) of {docs_path}")
    log(f"raw results and logs: {run_dir}")
    for v in verdicts:
        status = "not measured" if v.met is None else ("met" if v.met else "MISSED")
        log(f"{status:>12}  {v.target}: {v.measured}")
    if failed_scenarios:
        log(f"scenarios that could not run: {', '.join(failed_scenarios)} (see above)")
        return 1
    return 0


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically, readable by everyone like the rest of the checkout."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the doc is not
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
