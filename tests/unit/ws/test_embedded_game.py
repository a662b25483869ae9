"""A whole game over real WebSockets against the embedded (single-replica) game service."""

from __future__ import annotations

import httpx
import orjson
from tests.unit.ws.harness import Peer, create_game, host_token, running_service

from partyquiz_core.quiz import Quiz
from partyquiz_ws.memory_backend import memory_backend


async def test_full_game_flow_reaches_every_player_and_keeps_results() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.open(svc.url)
        await host.send(type="host", host_token=host_token(game_id, code))
        hello = await host.expect("host_welcome")
        assert hello["state"]["phase"] == "lobby"

        players = [await Peer.open(svc.url) for _ in range(3)]
        welcomes = [await p.join(code, f"Player {i}") for i, p in enumerate(players)]
        assert [w["type"] for w in welcomes] == ["welcome"] * 3
        assert all(w["resume_token"] for w in welcomes)
        lobby = await host.expect("lobby")
        assert lobby["joined"]

        await host.send(type="start")
        for p in players:
            question = await p.expect("question")
            assert question["index"] == 0
            assert "correct" not in question
        await players[0].send(type="answer", question_index=0, choices=[0])
        receipt = await players[0].expect("answer_receipt")
        assert receipt["question_index"] == 0
        assert receipt["elapsed"] >= 0
        await players[1].send(type="answer", question_index=0, choices=[1])
        await players[1].expect("answer_receipt")
        count = await host.expect("answer_count")
        assert count["total"] == 3

        await host.send(type="skip")
        reveal = await host.expect("reveal")
        assert reveal["correct"] == [0]
        assert reveal["results"] == {}
        mine = await players[0].expect("personal_result")
        assert mine["result"]["correct"] is True
        assert mine["result"]["points"] > 0
        wrong = await players[1].expect("personal_result")
        assert wrong["result"]["correct"] is False
        assert wrong["result"]["points"] == 0

        await host.send(type="next")
        board = await players[2].expect("leaderboard")
        assert board["entries"][0]["player_id"] == welcomes[0]["player_id"]

        await host.send(type="end")
        for p in [host, *players]:
            ended = await p.expect("ended")
            assert ended["reason"] == "ended_by_host"

        # The web service is down in this test: the results wait in the outbox.
        pending = await backend.outbox.pending()
        assert pending == [game_id]

        async with httpx.AsyncClient() as http:
            metrics = (await http.get(svc.http + "/metrics")).text
        assert 'partyquiz_ws_answers_total{result="accepted"} 2.0' in metrics
        assert game_id not in metrics
        for p in [host, *players]:
            await p.close()


async def test_typed_slider_and_ordering_answers_travel_and_nothing_right_comes_early() -> None:
    quiz = Quiz.model_validate(
        {
            "title": "New kinds",
            "settings": {"get_ready_seconds": 0},
            "questions": [
                {
                    "kind": "type_answer",
                    "text": "Capital?",
                    "accepted": ["Bern"],
                    "read_seconds": 0,
                },
                {
                    "kind": "slider",
                    "text": "Year?",
                    "slider": {"min": 1850, "max": 1950, "answer": 1889, "tolerance": 2},
                    "read_seconds": 0,
                },
                {
                    "kind": "ordering",
                    "text": "Smallest first",
                    "choices": [{"text": "Ant"}, {"text": "Cat"}, {"text": "Horse"}],
                    "read_seconds": 0,
                },
            ],
        }
    )
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend, quiz)
        host = await Peer.hosting(svc.url, game_id, code)
        ann, bob = await Peer.open(svc.url), await Peer.open(svc.url)
        await ann.join(code, "Ann")
        await bob.join(code, "Bob")
        await host.send(type="start")

        await ann.expect("question")
        await ann.send(type="answer", question_index=0, text=" bern ")
        receipt = await ann.expect("answer_receipt")
        assert (receipt["choices"], receipt["text"]) == ([], "bern")
        await bob.send(type="answer", question_index=0, choices=[0])
        assert (await bob.expect("error"))["code"] == "invalid_choice"
        await bob.send(type="answer", question_index=0, text="Zurich")
        await bob.expect("answer_receipt")
        reveal = await ann.expect("reveal")
        assert (reveal["accepted"], reveal["distribution"]) == (["Bern"], [1, 0, 1])
        assert (await ann.expect("personal_result"))["result"]["correct"] is True

        await host.send(type="next")
        await host.send(type="next")
        question = await bob.expect("question")
        assert question["slider"] == {"min": 1850, "max": 1950, "step": 1, "unit": ""}
        await ann.send(type="answer", question_index=1, value=1890)
        assert (await ann.expect("answer_receipt"))["value"] == 1890
        await bob.send(type="answer", question_index=1, value=1900.4)
        assert (await bob.expect("answer_receipt"))["value"] == 1900
        reveal = await bob.expect("reveal")
        assert (reveal["correct_value"], reveal["tolerance"]) == (1889, 2)
        partly = (await bob.expect("personal_result"))["result"]
        assert (partly["correct"], partly["points"] > 0) == (False, True)

        await host.send(type="next")
        await host.send(type="next")
        question = await ann.expect("question")
        assert question["choices"] != ["Ant", "Cat", "Horse"]
        right = [question["choices"].index(item) for item in ("Ant", "Cat", "Horse")]
        await ann.send(type="answer", question_index=2, choices=right)
        assert (await ann.expect("answer_receipt"))["choices"] == right
        await bob.send(type="answer", question_index=2, choices=right[::-1])
        await bob.expect("answer_receipt")
        reveal = await ann.expect("reveal")
        assert reveal["correct"] == right

        # Before each reveal, nothing a player received said what was right.
        for peer in (ann, bob):
            shown_early = [m for m in peer.received if m["type"] in ("question", "answer_receipt")]
            text = orjson.dumps(shown_early).decode()
            assert '"accepted"' not in text
            assert "1889" not in text
            assert '"correct' not in text
        for peer in (host, ann, bob):
            await peer.close()
