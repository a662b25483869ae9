"""The internal API follows the contract the game service codes against."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import sqlalchemy as sa
from tests.integration.web.conftest import MakeWeb, Web, sample_quiz

from partyquiz_core.codes import generate_join_code
from partyquiz_web.models import GameAnswer, GamePlayer


async def _new_game(web: Web) -> tuple[dict[str, str], dict[str, Any]]:
    auth = await web.register_and_login()
    quiz = (await web.client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    game = (await web.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth)).json()
    return auth, game


def _results(ended_at: float, players: int = 3) -> dict[str, Any]:
    return {
        "ended_at": ended_at,
        "players": [
            {"player_id": f"p{i}", "nickname": f"P{i}", "score": 100 * (players - i), "rank": i + 1}
            for i in range(players)
        ],
        "answers": [
            {
                "player_id": f"p{i}",
                "question_index": q,
                "choices": [0],
                "elapsed": 1.5,
                "correct": q != 3,
                "points": 500,
            }
            for i in range(players)
            for q in range(4)
        ],
    }


async def test_game_lookup_returns_the_contract_fields(web: Web) -> None:
    auth, game = await _new_game(web)
    me = (await web.client.get("/api/auth/me", headers=auth)).json()
    response = await web.client.get(
        f"/internal/games/{game['join_code']}", headers=web.service_headers()
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"game_id", "join_code", "status", "quiz", "host_id"}
    assert (body["game_id"], body["status"], body["host_id"]) == (
        game["game_id"],
        "created",
        me["id"],
    )
    assert body["quiz"]["questions"][3]["kind"] == "poll"


async def test_unknown_code_and_unknown_game_are_404(web: Web) -> None:
    service = web.service_headers()
    assert (await web.client.get("/internal/games/ZZZZZZ", headers=service)).status_code == 404
    assert (await web.client.get("/internal/games/!!", headers=service)).status_code == 404
    started = await web.client.post("/internal/games/nope/started", headers=service)
    assert started.status_code == 404
    results = await web.client.post(
        "/internal/games/nope/results", json=_results(0.0), headers=service
    )
    assert results.status_code == 404


async def test_started_marks_running_once(web: Web) -> None:
    auth, game = await _new_game(web)
    service = web.service_headers()
    path = f"/internal/games/{game['game_id']}/started"
    assert (await web.client.post(path, headers=service)).status_code == 204
    first = (await web.client.get(f"/api/games/{game['game_id']}", headers=auth)).json()
    web.clock.now += 30
    assert (await web.client.post(path, headers=service)).status_code == 204
    second = (await web.client.get(f"/api/games/{game['game_id']}", headers=auth)).json()
    assert first["status"] == second["status"] == "running"
    assert first["started_at"] == second["started_at"]


async def test_many_games_are_marked_running_by_one_call(web: Web) -> None:
    auth = await web.register_and_login()
    quiz = (await web.client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    ids = [
        (await web.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth)).json()[
            "game_id"
        ]
        for _ in range(3)
    ]
    service = web.service_headers()

    async def details() -> list[dict[str, Any]]:
        return [
            (await web.client.get(f"/api/games/{game_id}", headers=auth)).json() for game_id in ids
        ]

    path = "/internal/games/started"
    assert (await web.client.post(path, json={"game_ids": ids})).status_code == 401
    first = await web.client.post(path, json={"game_ids": [*ids[:2], "nope"]}, headers=service)
    assert first.status_code == 204  # an unknown game is ignored
    before = await details()
    assert [d["status"] for d in before] == ["running", "running", "created"]
    web.clock.now += 30
    assert (await web.client.post(path, json={"game_ids": ids}, headers=service)).status_code == 204
    after = await details()
    assert [d["status"] for d in after] == ["running"] * 3
    # A repeat changes nothing; the third game starts now.
    assert [d["started_at"] for d in after[:2]] == [d["started_at"] for d in before[:2]]
    assert after[2]["started_at"] != after[0]["started_at"]


async def test_results_are_stored_once_and_a_repeat_changes_nothing(web: Web) -> None:
    auth, game = await _new_game(web)
    service = web.service_headers()
    path = f"/internal/games/{game['game_id']}/results"
    assert (
        await web.client.post(path, json=_results(web.clock.now, 3), headers=service)
    ).status_code == 204
    repeat = await web.client.post(path, json=_results(web.clock.now + 99, 5), headers=service)
    assert repeat.status_code == 204
    detail = (await web.client.get(f"/api/games/{game['game_id']}", headers=auth)).json()
    assert detail["status"] == "ended"
    assert len(detail["players"]) == 3
    async with web.runtime.database.session() as session:
        answers = await session.scalar(sa.select(sa.func.count()).select_from(GameAnswer))
        players = await session.scalar(sa.select(sa.func.count()).select_from(GamePlayer))
    assert (answers, players) == (12, 3)


async def test_typed_texts_and_slider_numbers_are_kept_in_the_results_and_the_csv(
    web: Web,
) -> None:
    auth = await web.register_and_login()
    quiz = {
        "title": "New kinds",
        "questions": [
            {"kind": "type_answer", "text": "Capital?", "accepted": ["Bern"]},
            {
                "kind": "slider",
                "text": "Boiling point?",
                "slider": {"min": 0, "max": 200, "answer": 100, "tolerance": 5, "unit": "°C"},
            },
        ],
    }
    created = (await web.client.post("/api/quizzes", json=quiz, headers=auth)).json()
    game = (
        await web.client.post("/api/games", json={"quiz_id": created["id"]}, headers=auth)
    ).json()
    body = {
        "ended_at": web.clock.now,
        "players": [{"player_id": "p1", "nickname": "Ann", "score": 1300, "rank": 1}],
        "answers": [
            {
                "player_id": "p1",
                "question_index": 0,
                "choices": [],
                "text": "bern",
                "elapsed": 2.0,
                "correct": True,
                "points": 900,
            },
            {
                "player_id": "p1",
                "question_index": 1,
                "choices": [],
                "value": 108.0,
                "elapsed": 3.0,
                "correct": False,
                "points": 400,
            },
        ],
    }
    stored = await web.client.post(
        f"/internal/games/{game['game_id']}/results", json=body, headers=web.service_headers()
    )
    assert stored.status_code == 204, stored.text
    detail = (await web.client.get(f"/api/games/{game['game_id']}", headers=auth)).json()
    given = [(a["text"], a["value"]) for a in detail["players"][0]["answers"]]
    assert given == [("bern", None), (None, 108.0)]
    csv = await web.client.get(f"/api/games/{game['game_id']}/results.csv", headers=auth)
    assert csv.text.splitlines()[1] == "1,Ann,1300,1,bern,900,108 °C,400"


async def test_inconsistent_results_are_refused_and_nothing_is_stored(web: Web) -> None:
    auth, game = await _new_game(web)
    bad = _results(web.clock.now, 2)
    bad["players"].append(dict(bad["players"][0]))
    bad["answers"][0]["question_index"] = 9
    response = await web.client.post(
        f"/internal/games/{game['game_id']}/results", json=bad, headers=web.service_headers()
    )
    assert response.status_code == 422
    assert {e["path"] for e in response.json()["errors"]} == {
        "players.2.player_id",
        "answers.0.question_index",
    }
    detail = (await web.client.get(f"/api/games/{game['game_id']}", headers=auth)).json()
    assert (detail["status"], detail["players"]) == ("created", [])


async def test_an_ended_games_code_can_be_reused_by_a_new_game(
    make_web: MakeWeb, database_url: str
) -> None:
    first = await make_web(database_url, rng=random.Random(42))
    _, old = await _new_game(first)
    assert old["join_code"] == generate_join_code(random.Random(42))
    await first.client.post(
        f"/internal/games/{old['game_id']}/results",
        json=_results(first.clock.now, 1),
        headers=first.service_headers(),
    )
    second = await make_web(database_url, rng=random.Random(42))
    auth = await second.register_and_login("other@example.org")
    quiz = (await second.client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    new = (
        await second.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth)
    ).json()
    assert new["join_code"] == old["join_code"]
    lookup = await second.client.get(
        f"/internal/games/{new['join_code']}", headers=second.service_headers()
    )
    assert lookup.json()["game_id"] == new["game_id"]


async def test_a_code_of_a_game_still_open_is_never_handed_out_twice(
    make_web: MakeWeb, database_url: str
) -> None:
    first = await make_web(database_url, rng=random.Random(7))
    _, old = await _new_game(first)
    second = await make_web(database_url, rng=random.Random(7))
    auth = await second.register_and_login("other@example.org")
    quiz = (await second.client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    new = (
        await second.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth)
    ).json()
    assert new["join_code"] != old["join_code"]
    assert len(new["join_code"]) == 6


async def test_concurrent_result_posts_store_the_results_once(web: Web) -> None:
    _, game = await _new_game(web)
    path = f"/internal/games/{game['game_id']}/results"
    service = web.service_headers()
    responses = await asyncio.gather(
        *(web.client.post(path, json=_results(web.clock.now, 3), headers=service) for _ in range(4))
    )
    assert [r.status_code for r in responses] == [204] * 4
    async with web.runtime.database.session() as session:
        answers = await session.scalar(sa.select(sa.func.count()).select_from(GameAnswer))
        players = await session.scalar(sa.select(sa.func.count()).select_from(GamePlayer))
    assert (answers, players) == (12, 3)


async def test_replicas_racing_for_one_code_both_get_a_game(
    make_web: MakeWeb, database_url: str
) -> None:
    replicas = [await make_web(database_url, rng=random.Random(11)) for _ in range(2)]
    auth = await replicas[0].register_and_login()
    quiz = (await replicas[0].client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    responses = await asyncio.gather(
        *(r.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth) for r in replicas)
    )
    assert [r.status_code for r in responses] == [201, 201]
    codes = {r.json()["join_code"] for r in responses}
    assert len(codes) == 2
    assert generate_join_code(random.Random(11)) in codes
