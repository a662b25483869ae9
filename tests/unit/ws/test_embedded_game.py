"""A whole game over real WebSockets against the embedded (single-replica) game service."""

from __future__ import annotations

import httpx
from tests.unit.ws.harness import Peer, create_game, host_token, running_service

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
