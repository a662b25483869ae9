"""``python -m bench``: run the benchmark suite and write the "Game service" section.

Owns the command line, the profiles (``quick`` for a smoke run, ``full`` for the published
figures), where raw results and logs go (a run directory under the cache, outside the repo)
and the final write of docs/benchmarks.md. It never touches other sections of that file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.operator_bench import OPERATOR_RESYNC_SECONDS, run_operator_bench
from bench.procs import BenchError, raise_fd_limit
from bench.quiz import bench_quiz, question_message
from bench.render import render_game_service, render_operator
from bench.report import replace_section
from bench.suite import Plan, log, run_game_service, run_replicas, self_check
from bench.summary import (
    Metrics,
    Verdict,
    aggregate,
    check_operator_targets,
    check_targets,
    split_by_replica,
    summarize_session,
)
from bench.targets import REPO_ROOT, Env

PROFILES = {
    "quick": Plan(
        sizes=(200,),
        runs=1,
        kinds=("partyquiz", "socketio", "ws", "raw"),
        rounds=2,
        warmup=1,
        replica_sizes=(200,),
        operator_counts=(3,),
    ),
    "full": Plan(
        sizes=(1000, 5000, 10000),
        runs=5,
        kinds=("partyquiz", "socketio", "ws", "raw"),
        rounds=5,
        warmup=1,
        replica_sizes=(1000,),
        operator_counts=(10, 100),
    ),
}
KINDS = ("partyquiz", "socketio", "ws", "raw")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cache = Path(os.environ.get("PARTYQUIZ_CACHE") or Path.home() / ".cache" / "partyquiz")
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    p.add_argument("--sizes", type=_ints, help="players per session, e.g. 1000,5000")
    p.add_argument(
        "--replica-sizes", type=_ints, help="players per B4 session (two replicas + Redis)"
    )
    p.add_argument("--runs", type=int, help="interleaved runs per size (medians over them)")
    p.add_argument("--kinds", help=f"comma list of {','.join(KINDS)}")
    p.add_argument(
        "--scenarios",
        default="game,replicas,operator",
        help="comma list of game (B1-B3), replicas (B4), operator (B5)",
    )
    p.add_argument("--node", default=shutil.which("node") or "node")
    p.add_argument("--node-modules", type=Path, default=cache / "bench" / "node_modules")
    p.add_argument("--results-dir", type=Path, default=cache / "bench" / "runs")
    p.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="file whose 'Game service' / 'Operator' sections are rewritten (default with "
        "--profile full: docs/benchmarks.md; a quick run never overwrites published figures "
        "unless this is given)",
    )
    p.add_argument("--no-docs", action="store_true", help="print the sections instead")
    p.add_argument(
        "--py-spy",
        action="store_true",
        help="profile every partyquiz-ws process with py-spy (profile-*.top.txt in the run dir)",
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
    kinds = tuple(k for k in (args.kinds or ",".join(base.kinds)).split(",") if k)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise SystemExit(f"unknown kinds: {', '.join(sorted(unknown))}")
    return Plan(
        sizes=args.sizes or base.sizes,
        runs=args.runs or base.runs,
        kinds=kinds,
        rounds=base.rounds,
        warmup=base.warmup,
        replica_sizes=args.replica_sizes or base.replica_sizes,
        operator_counts=base.operator_counts,
        concurrency=base.concurrency,
        nice=args.nice,
    )


def summarize_runs(
    records: list[dict[str, Any]],
) -> tuple[dict[int, dict[str, Metrics]], dict[int, Metrics]]:
    sessions: dict[tuple[int, str], list[Metrics]] = {}
    replica_sessions: dict[int, list[Metrics]] = {}
    for rec in records:
        if "error" in rec:
            continue
        metrics = summarize_session(rec["raw"])
        if rec["scenario"] == "replicas":
            local, remote = split_by_replica(rec["raw"], 2)
            metrics.update(
                {
                    "local_p50_ms": local["p50_ms"],
                    "remote_p50_ms": remote["p50_ms"],
                    "local_p99_ms": local["p99_ms"],
                    "remote_p99_ms": remote["p99_ms"],
                }
            )
            if local["p50_ms"] is not None and remote["p50_ms"] is not None:
                metrics["added_p50_ms"] = remote["p50_ms"] - local["p50_ms"]
            replica_sessions.setdefault(rec["size"], []).append(metrics)
        else:
            sessions.setdefault((rec["size"], rec["kind"]), []).append(metrics)
    by_size: dict[int, dict[str, Metrics]] = {}
    for (size, kind), runs in sessions.items():
        by_size.setdefault(size, {})[kind] = aggregate(runs)
    replicas = {size: aggregate(runs) for size, runs in replica_sessions.items()}
    return by_size, replicas


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = build_plan(args)
    scenarios = set(args.scenarios.split(","))
    biggest = max([*plan.sizes, *plan.replica_sizes])
    limit = raise_fd_limit(2 * biggest + 1024)
    if limit < biggest + 256:
        raise SystemExit(f"open-file limit {limit} is too low for {biggest} connections")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
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
        node_modules=args.node_modules,
        server_cpu=1,
        loadgen_cpu=0,
        nice=plan.nice,
        py_spy=_py_spy() if args.py_spy else None,
    )
    machine = describe(args.node, args.node_modules)
    records: list[dict[str, Any]] = []
    results_file = run_dir / "results.jsonl"

    def record(rec: dict[str, Any]) -> None:
        records.append(rec)
        with results_file.open("a") as out:
            out.write(json.dumps(rec) + "\n")

    operator_results: list[dict[str, Any]] = []
    try:
        self_check(env)
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    failed_scenarios: list[str] = []
    # Each scenario stands alone: one that cannot run still leaves the others' figures.
    try:
        if "game" in scenarios:
            run_game_service(plan, env, quiz, record)
    except BenchError as exc:
        log(f"B1-B3 FAILED: {exc}")
        failed_scenarios.append("game")
    try:
        if "replicas" in scenarios and "partyquiz" in plan.kinds:
            run_replicas(plan, env, quiz, record)
    except BenchError as exc:
        log(f"B4 FAILED: {exc}")
        failed_scenarios.append("replicas")
    try:
        if "operator" in scenarios:
            operator_results = run_operator_bench(plan.operator_counts, run_dir)
            (run_dir / "operator.json").write_text(json.dumps(operator_results))
    except BenchError as exc:
        log(f"B5 FAILED: {exc}")
        failed_scenarios.append("operator")
    sections: dict[str, str] = {}
    verdicts: list[Verdict] = []
    if records:
        by_size, replicas = summarize_runs(records)
        verdicts = check_targets(by_size, replicas)
        plan_text = (
            f"{plan.runs} interleaved run{'s' if plan.runs > 1 else ''} per size, "
            f"{plan.warmup} warm-up + {plan.rounds} measured fan-outs per run"
        )
        if plan.nice:
            plan_text += (
                f"; servers and load generator at nice {plan.nice} so the other work on "
                "this shared machine does not starve them"
            )
        failures = [
            f"{r['kind']} {r['size']} players run {r['run'] + 1}: "
            f"{r['error'].splitlines()[0][:160]}"
            for r in records
            if "error" in r
        ]
        sections["Game service"] = render_game_service(
            machine, plan_text, by_size, replicas, verdicts, started, failures
        )
    if operator_results:
        verdicts += check_operator_targets(operator_results)
        sections["Operator"] = render_operator(
            started, machine, operator_results, OPERATOR_RESYNC_SECONDS
        )
    for title, body in sections.items():
        (run_dir / f"{title.lower().replace(' ', '-')}.md").write_text(body)
        if args.no_docs:
            print(f"## {title}\n\n{body}")
    docs_path: Path | None = args.docs
    if docs_path is None and args.profile == "full":
        docs_path = REPO_ROOT / "docs" / "benchmarks.md"
    if sections and docs_path is None and not args.no_docs:
        log(f"quick run: sections left in {run_dir} (pass --docs to publish them)")
    if sections and docs_path is not None and not args.no_docs:
        doc = docs_path.read_text() if docs_path.exists() else ""
        for title, body in sections.items():
            doc = replace_section(doc, title, body)
        fd, tmp = tempfile.mkstemp(dir=docs_path.parent, prefix=".benchmarks.")
        with os.fdopen(fd, "w") as out:
            out.write(doc)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the doc is not
        os.replace(tmp, docs_path)
        log(f"wrote the {', '.join(sections)} section(s) of {docs_path}")
    log(f"raw results and logs: {run_dir}")
    for v in verdicts:
        status = "not measured" if v.met is None else ("met" if v.met else "MISSED")
        log(f"{status:>12}  {v.target}: {v.measured}")
    if failed_scenarios:
        log(f"scenarios that could not run: {', '.join(failed_scenarios)} (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
