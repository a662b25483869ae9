"""Real partyquiz-web and partyquiz-ws processes on PostgreSQL and Redis: crashes, rollouts
and results that reach the web service's history."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.integration.ws.processes import (
    SECRET,
    Proc,
    create_hosted_game,
    game_detail,
    web_process,
    ws_processes,
)
from tests.unit.ws.harness import Peer, create_game, running_service

from partyquiz_core.quiz import Quiz
from partyquiz_core.scoring import ScoringRules, score_answer, score_missed
from partyquiz_operator import api
from partyquiz_operator.render import workloads
from partyquiz_ws.bots import BotConfig, GameReport, run_bots
from partyquiz_ws.memory_backend import memory_backend

QUIZ: dict[str, Any] = {
    "title": "Crash course",
    "settings": {"get_ready_seconds": 0},
    "questions": [
        {
            "text": "First?",
            "choices": [{"text": "A"}, {"text": "B"}, {"text": "C"}],
            "correct": [0],
            "time_limit_seconds": 60,
            "read_seconds": 0,
        },
        {
            "kind": "multiple",
            "text": "Second?",
            "choices": [{"text": "A"}, {"text": "B"}, {"text": "C"}, {"text": "D"}],
            "correct": [1, 2],
            "time_limit_seconds": 30,
            "read_seconds": 0,
        },
        {
            "kind": "true_false",
            "text": "Third?",
            "choices": [{"text": "True"}, {"text": "False"}],
            "correct": [1],
            "time_limit_seconds": 30,
            "read_seconds": 0,
        },
    ],
}
QUESTIONS = Quiz.model_validate(QUIZ).questions

# The drain is run with what the operator renders for a game pod: its drain setting and a
# grace period after which the kubelet kills the container. SIGTERM arrives after the
# pre-stop pause, so the process must be gone within the rest of the grace period.
OPERATOR_SPEC = api.PartyQuizSpec.model_validate(
    {
        "version": "1.4.0",
        "database": {"managed": {}},
        "redis": {"managed": {}},
        "ws": {"drainSeconds": 10},
    }
)
DRAIN_SECONDS = OPERATOR_SPEC.ws.drain_seconds
EXIT_BUDGET_SECONDS = (
    workloads.ws_termination_grace_seconds(OPERATOR_SPEC) - workloads.WS_PRE_STOP_SECONDS
)


def replay(receipts: dict[int, dict[str, Any]]) -> int:
    """Score a player's receipted answers from scratch with the core rules."""
    score = streak = 0
    for index, question in enumerate(QUESTIONS):
        receipt = receipts.get(index)
        if receipt is None:
            scored = score_missed(question, streak)
        else:
            scored = score_answer(
                question, frozenset(receipt["choices"]), receipt["elapsed"], streak, ScoringRules()
            )
        score += scored.points
        streak = scored.streak
    return score


async def wait_for_history(web: Proc, game: dict[str, Any], players: int) -> dict[str, Any]:
    """Wait until the web service has the finished game's results."""
    deadline = time.monotonic() + 60
    while True:
        detail = await asyncio.to_thread(game_detail, web, game)
        if detail["status"] == "ended" and len(detail["players"]) == players:
            return detail
        if time.monotonic() > deadline:
            raise TimeoutError(f"results never reached the web service: {detail}")
        await asyncio.sleep(0.2)


def check_scores(report: GameReport, detail: dict[str, Any]) -> None:
    stored = {p["player_id"]: p for p in detail["players"]}
    for player in report.players:
        assert player.ended, player
        assert player.score == replay(player.receipts), player.nickname
        assert player.player_id is not None
        assert stored[player.player_id]["score"] == player.score


@pytest.fixture
def web(fresh_postgres_url: str) -> Any:
    with web_process(fresh_postgres_url) as proc:
        yield proc


async def test_a_game_takes_the_players_the_service_allows_and_no_more(web: Proc) -> None:
    game = await asyncio.to_thread(create_hosted_game, web, QUIZ)
    async with running_service(
        jwt_secret=SECRET, web_internal_url=web.http, max_players_per_game=2
    ) as svc:
        host = await Peer.open(svc.url)
        await host.send(type="host", host_token=game["host_token"])
        await host.expect("host_welcome")
        peers = [await Peer.open(svc.url) for _ in range(3)]
        answers = [
            await peer.join(game["join_code"], f"Player {i}") for i, peer in enumerate(peers)
        ]
        assert [a.get("code", a["type"]) for a in answers] == ["welcome", "welcome", "game_full"]
        for peer in (host, *peers):
            await peer.close()


async def test_fifty_bots_on_two_processes_finish_and_results_reach_the_history(
    web: Proc, fresh_redis_url: str
) -> None:
    with ws_processes(2, fresh_redis_url, web.http) as (a, b):
        game = await asyncio.to_thread(create_hosted_game, web, QUIZ)
        report = await run_bots(
            BotConfig(
                ws_urls=[a.ws, b.ws],
                join_code=game["join_code"],
                players=50,
                host_token=game["host_token"],
                min_delay=0.01,
                max_delay=0.4,
                seed=11,
                game_timeout=240,
            )
        )
        assert report.host is not None
        assert report.host.ended
        for player in report.players:
            assert player.questions == [0, 1, 2]
            assert player.final == report.host.podium
        detail = await wait_for_history(web, game, 50)
        check_scores(report, detail)


async def test_sigterm_moves_players_to_the_other_replica_with_scores_intact(
    web: Proc, fresh_redis_url: str
) -> None:
    with ws_processes(2, fresh_redis_url, web.http, drain_seconds=str(DRAIN_SECONDS)) as (a, b):
        game = await asyncio.to_thread(create_hosted_game, web, QUIZ)
        second_question = asyncio.Event()

        def on_receipt(_player: int, question: int) -> None:
            if question == 1:
                second_question.set()

        bots = asyncio.create_task(
            run_bots(
                BotConfig(
                    ws_urls=[a.ws, b.ws],
                    join_code=game["join_code"],
                    players=20,
                    host_token=game["host_token"],
                    min_delay=0.2,
                    max_delay=1.5,
                    host_pause=0.3,
                    seed=5,
                    game_timeout=240,
                    on_receipt=on_receipt,
                )
            )
        )
        await asyncio.wait_for(second_question.wait(), 120)
        b.terminate()  # a rolling update takes replica b away mid-question
        report = await bots
        assert await asyncio.to_thread(b.process.wait, EXIT_BUDGET_SECONDS) == 0
        moved = [p for p in report.players if p.index % 2 == 1]
        assert all(p.reconnects >= 1 for p in moved)
        detail = await wait_for_history(web, game, 20)
        check_scores(report, detail)


async def test_killing_the_owner_mid_question_loses_no_receipted_answer(
    web: Proc, fresh_redis_url: str
) -> None:
    with ws_processes(2, fresh_redis_url, web.http) as (a, b):
        game = await asyncio.to_thread(create_hosted_game, web, QUIZ)
        code = game["join_code"]
        host = await Peer.open(a.ws)  # the host's replica creates and owns the game
        await host.send(type="host", host_token=game["host_token"])
        await host.expect("host_welcome")
        peers = [await Peer.open(a.ws if i < 4 else b.ws) for i in range(8)]
        welcomes = [await p.join(code, f"P{i}") for i, p in enumerate(peers)]
        tokens = [w["resume_token"] for w in welcomes]
        receipts: list[dict[int, dict[str, Any]]] = [{} for _ in peers]

        async def answer(i: int, question: int, choices: list[int]) -> None:
            await peers[i].send(type="answer", question_index=question, choices=choices)
            got = await peers[i].expect("answer_receipt", within=20)
            receipts[i][question] = got

        while (await host.expect("lobby"))["player_count"] < 8:
            pass
        await host.send(type="start")
        for p in peers:
            await p.expect("question")
        for i in (0, 1, 4, 5):
            await answer(i, 0, [0])

        a.kill()  # the owner dies mid-question, without any clean-up

        await answer(6, 0, [1])  # accepted once replica b has taken the game over
        for i in range(4):  # a's players come back through b with their resume tokens
            peers[i] = await Peer.open(b.ws)
            await peers[i].send(type="resume", resume_token=tokens[i])
            back = await peers[i].expect("welcome")
            assert back["state"]["my_answer"] == ([0] if i in (0, 1) else None)
        await answer(2, 0, [2])
        host = await Peer.open(b.ws)
        await host.send(type="host", host_token=game["host_token"])
        assert (await host.expect("host_welcome"))["state"]["phase"] == "question"

        await host.send(type="skip")
        for i, p in enumerate(peers):
            result = (await p.expect("personal_result"))["result"]
            assert result["answered"] == (0 in receipts[i])
        for question, choices in ((1, [1, 2]), (2, [1])):
            await host.send(type="next")
            await host.expect("leaderboard")
            await host.send(type="next")
            for p in peers:
                await p.expect("question")
            for i in range(len(peers)):
                await answer(i, question, choices if i % 2 else [0])
            for p in peers:
                await p.expect("personal_result")
        await host.send(type="next")
        await host.expect("leaderboard")
        await host.send(type="next")
        podium = await host.expect("podium")
        await host.send(type="next")
        await host.expect("ended")

        detail = await wait_for_history(web, game, 8)
        stored = {p["player_id"]: p["score"] for p in detail["players"]}
        for i, welcome in enumerate(welcomes):
            expected = replay(
                {
                    q: {"choices": r["choices"], "elapsed": r["elapsed"]}
                    for q, r in receipts[i].items()
                }
            )
            assert stored[welcome["player_id"]] == expected
        assert podium["entries"][0]["score"] == max(stored.values())
        for p in (host, *peers):
            await p.close()


async def test_results_wait_while_web_is_down_and_arrive_when_it_is_back(
    fresh_postgres_url: str,
) -> None:
    with web_process(fresh_postgres_url) as first_web:
        game = await asyncio.to_thread(create_hosted_game, first_web, QUIZ)
        port = first_web.port
    backend = memory_backend()
    await create_game(
        backend, Quiz.model_validate(QUIZ), game["join_code"], game_id=game["game_id"]
    )
    async with running_service(
        backend,
        jwt_secret=SECRET,
        web_internal_url=f"http://127.0.0.1:{port}",
        results_retry_max_seconds=0.5,
        message_burst=1000,
    ) as svc:
        report = await run_bots(
            BotConfig(
                ws_urls=[svc.url],
                join_code=game["join_code"],
                players=5,
                host_token=game["host_token"],
                min_delay=0.01,
                max_delay=0.1,
                game_timeout=120,
            )
        )
        assert all(p.ended for p in report.players)
        assert await backend.outbox.pending() == [game["game_id"]]  # web is down: kept
        with web_process(fresh_postgres_url, port=port) as web:
            detail = await wait_for_history(web, game, 5)
            check_scores(report, detail)
        assert await backend.outbox.pending() == []


async def test_the_question_timer_fires_on_the_replica_that_took_over(
    web: Proc, fresh_redis_url: str
) -> None:
    quick = {
        "title": "Quick",
        "settings": {"get_ready_seconds": 0},
        "questions": [
            {
                "text": "Fast?",
                "choices": [{"text": "Yes"}, {"text": "No"}],
                "correct": [0],
                "time_limit_seconds": 5,
                "read_seconds": 0,
            }
        ],
    }
    with ws_processes(2, fresh_redis_url, web.http) as (a, b):
        game = await asyncio.to_thread(create_hosted_game, web, quick)
        host = await Peer.open(a.ws)
        await host.send(type="host", host_token=game["host_token"])
        await host.expect("host_welcome")
        players = [await Peer.open(b.ws) for _ in range(2)]
        for i, player in enumerate(players):
            assert (await player.join(game["join_code"], f"T{i}"))["type"] == "welcome"
        while (await host.expect("lobby"))["player_count"] < 2:
            pass
        await host.send(type="start")
        question = await players[0].expect("question")
        await players[0].send(type="answer", question_index=0, choices=[0])
        await players[0].expect("answer_receipt")
        a.kill()  # the owner dies; nobody sends skip: only the timer can close the question
        for player in players:
            reveal = await player.expect("reveal", within=30)
            assert reveal["answered"] == 1
        mine = await players[0].expect("personal_result")
        assert mine["result"]["correct"] is True
        assert question["deadline"] - question["server_now"] == pytest.approx(5, abs=0.1)
        for player in players:
            await player.close()


async def test_a_failed_replicas_player_gets_its_lost_time_back_not_a_late_answer(
    web: Proc, fresh_redis_url: str
) -> None:
    quiz = {
        "title": "Quick",
        "settings": {"get_ready_seconds": 0},
        "questions": [
            {
                "text": "Fast?",
                "choices": [{"text": "A"}, {"text": "B"}],
                "correct": [0],
                "time_limit_seconds": 5,
                "read_seconds": 0,
            }
        ],
    }
    redis = aioredis.Redis.from_url(fresh_redis_url)
    with ws_processes(2, fresh_redis_url, web.http) as (a, b):
        game = await asyncio.to_thread(create_hosted_game, web, quiz)
        host = await Peer.open(a.ws)  # a creates and owns the game
        await host.send(type="host", host_token=game["host_token"])
        await host.expect("host_welcome")
        stranded, other = await Peer.open(b.ws), await Peer.open(a.ws)
        welcome = await stranded.join(game["join_code"], "Stranded")
        await other.join(game["join_code"], "Other")
        await host.send(type="start")
        question = await stranded.expect("question")
        b.kill()  # the replica holding the player dies without a word

        # The game service's own heartbeat, not the client, tells when b failed.
        while True:
            seen = await redis.get("pq:replica:ws-1")
            if seen is not None and time.time() - float(seen) >= 2.0:
                break
            await asyncio.sleep(0.05)
        back = await Peer.open(a.ws)
        await back.send(type="resume", resume_token=welcome["resume_token"])
        state = (await back.expect("welcome"))["state"]
        assert state["phase"] == "question"
        assert state["deadline"] > question["deadline"]  # its own, later deadline

        await asyncio.sleep(max(0.0, question["deadline"] + 0.5 - time.time()))
        await other.send(type="answer", question_index=0, choices=[0])
        assert (await other.expect("error"))["code"] == "late"
        await back.send(type="answer", question_index=0, choices=[0])
        receipt = await back.expect("answer_receipt")
        # Answered 0.5 s after the deadline, but the 2 s or more from b's failure to the
        # resume are not counted.
        assert receipt["elapsed"] < 5.5 - 1.5
        result = (await back.expect("personal_result"))["result"]
        assert (result["correct"], result["points"] > 500) == (True, True)
        for peer in (host, other, back, stranded):
            await peer.close()
    await redis.aclose()
