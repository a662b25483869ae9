"""The bot client plays whole games against a live (embedded) game service."""

from __future__ import annotations

from tests.unit.ws.harness import QUIZ, create_game, host_token, running_service

from partyquiz_ws.bots import BotConfig, main, run_bots
from partyquiz_ws.memory_backend import memory_backend


async def test_bots_play_a_whole_game_and_all_see_the_same_standings() -> None:
    backend = memory_backend()
    # The bots all come from one address.
    async with running_service(backend, message_burst=1000, join_rate_per_address=1000) as svc:
        game_id, code = await create_game(backend)
        config = BotConfig(
            ws_urls=[svc.url],
            join_code=code,
            players=30,
            host_token=host_token(game_id, code),
            min_delay=0.01,
            max_delay=0.2,
            seed=7,
            game_timeout=120,
        )
        report = await run_bots(config)
    assert report.host is not None
    assert report.host.ended
    every_question = list(range(len(QUIZ.questions)))
    for player in report.players:
        assert player.error is None
        assert player.ended
        assert player.questions == every_question
        assert sorted(player.receipts) == every_question
        assert player.final == report.players[0].final
    assert report.host.podium == report.players[0].final
    summary = report.summary()
    assert summary["joined"] == 30
    assert summary["answers_accepted"] == 30 * len(QUIZ.questions)


def test_bots_cli_refuses_a_game_without_players() -> None:
    assert main(["--players", "0"]) == 2
