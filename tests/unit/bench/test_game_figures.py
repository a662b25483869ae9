"""The "Game service" section: figures with their spread, sizing, and who set the pace."""

from __future__ import annotations

from collections import defaultdict

from bench.render import fmt, render_game_service
from bench.stats import Spread
from bench.summary import Metrics, Results

# The section prints whatever the machine description holds; every field reads "test" here.
MACHINE: defaultdict[str, str] = defaultdict(lambda: "test")


def _section(results: Results) -> str:
    return render_game_service(MACHINE, "1 run per size", results, [], "2026-12-04 12:00 UTC")


def _fanout(server_util: float, loadgen_util: float = 1.0) -> list[Metrics]:
    return [
        {
            "run": 0.0,
            "fanout_cpu_ms": 15.0,
            "fanout_server_util": server_util,
            "fanout_loadgen_util_max": loadgen_util,
        }
    ]


def test_a_figure_reads_as_its_median_with_the_lowest_and_highest_run() -> None:
    assert fmt(Spread(12.34, 11.0, 14.25, 5)) == "12.3 (11.0 to 14.2)"
    assert fmt(Spread(12.34, 12.34, 12.34, 1)) == "12.3"
    assert fmt(None) == "—"


def test_servers_busy_through_their_fan_outs_are_said_to_set_the_pace() -> None:
    text = _section({"game": {1000: {"partyquiz": _fanout(0.97), "cfloor": _fanout(0.93)}}})
    assert "Every server did, at every size." in text
    assert "partly the load generator's" not in text


def test_a_server_that_idled_before_its_last_player_read_is_named_with_its_share() -> None:
    text = _section(
        {
            "game": {
                1000: {"partyquiz": _fanout(0.95), "cfloor": _fanout(0.52)},
                10000: {"partyquiz": _fanout(0.91), "cfloor": _fanout(0.9)},
            }
        }
    )
    assert "partly the load generator's: C write() floor at 1,000 players (0.52)." in text
    assert "PartyQuiz, embedded at" not in text
    assert "10,000 players (0.90)" not in text


def test_the_sizing_number_is_printed_for_each_mode() -> None:
    runs: list[Metrics] = [
        {"run": 0.0, "game_cpu_s_per_1000_players": 3.0},
        {"run": 1.0, "game_cpu_s_per_1000_players": 4.0},
        {"run": 2.0, "game_cpu_s_per_1000_players": 3.5},
    ]
    text = _section({"game": {10_000: {"partyquiz": runs}}})
    assert (
        "- **PartyQuiz, embedded, 10,000 players: 3.50 (3.00 to 4.00) CPU-seconds per 1,000 "
        "players per 20-question game.**"
    ) in text


def test_a_scenario_that_did_not_run_says_so() -> None:
    text = _section({"game": {1000: {"partyquiz": _fanout(0.95)}}})
    drain = text.split("### T7: a replica drains mid-game")[1]
    assert drain.lstrip().startswith("Not measured in this run.")
