"""The "Game service" section says which side set the pace of each fan-out."""

from __future__ import annotations

from collections import defaultdict

from bench.render import render_game_service
from bench.summary import Metrics

# The section prints whatever the machine description holds; every field reads "test" here.
MACHINE: defaultdict[str, str] = defaultdict(lambda: "test")


def _section(by_size: dict[int, dict[str, Metrics]]) -> str:
    return render_game_service(
        MACHINE,
        "1 run per size",
        by_size,
        {},
        [],
        "2026-12-04 12:00 UTC",
        [],
    )


def _fanout(server_util: float, loadgen_util: float = 1.0) -> Metrics:
    return {
        "fanout_cpu_ms": 15.0,
        "fanout_server_util": server_util,
        "fanout_loadgen_util_max": loadgen_util,
    }


def test_servers_busy_through_their_fan_outs_are_said_to_set_the_pace() -> None:
    text = _section({1000: {"partyquiz": _fanout(0.97), "raw": _fanout(0.93)}})
    assert "Every server did, at every size." in text
    assert "partly the load generator's" not in text


def test_a_server_that_idled_before_its_last_player_read_is_named_with_its_share() -> None:
    text = _section(
        {
            1000: {"partyquiz": _fanout(0.95), "raw": _fanout(0.52)},
            10000: {"partyquiz": _fanout(0.91), "raw": _fanout(0.9)},
        }
    )
    assert "partly the load generator's: raw floor (asyncio) at 1,000 players (0.52)." in text
    assert "| raw floor (asyncio)    |                                  1.00 |" in text
    assert "|                      0.52 |" in text
    assert "PartyQuiz (websockets) at" not in text
    assert "10,000 players (0.90)" not in text


def test_a_run_without_fan_outs_says_so() -> None:
    assert "No fan-out was measured." in _section({1000: {"partyquiz": {"connected": 10.0}}})
