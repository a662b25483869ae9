"""The whole path a host takes, on SQLite and PostgreSQL: account, quizzes, a game, results."""

from __future__ import annotations

import csv
import io

import jwt
from tests.integration.web.conftest import SECRET, Web, sample_quiz


async def test_host_builds_a_quiz_runs_a_game_and_reads_the_results(web: Web) -> None:
    auth = await web.register_and_login()
    me = (await web.client.get("/api/auth/me", headers=auth)).json()
    assert me["email"] == "host@example.org"
    assert me["display_name"] == "host"

    created = await web.client.post("/api/quizzes", json=sample_quiz("Basics"), headers=auth)
    assert created.status_code == 201, created.text
    quiz = created.json()
    assert quiz["question_count"] == 4
    assert quiz["quiz"]["questions"][1]["correct"] == [0, 2]

    edited = sample_quiz("Basics, revised")
    edited["questions"] = edited["questions"][:3]
    web.clock.now += 10
    replaced = await web.client.put(f"/api/quizzes/{quiz['id']}", json=edited, headers=auth)
    assert replaced.status_code == 200
    assert (replaced.json()["title"], replaced.json()["question_count"]) == ("Basics, revised", 3)

    copy = (await web.client.post(f"/api/quizzes/{quiz['id']}/duplicate", headers=auth)).json()
    assert copy["title"] == "Copy of Basics, revised"
    listed = (await web.client.get("/api/quizzes", headers=auth)).json()
    assert {q["id"] for q in listed} == {quiz["id"], copy["id"]}

    exported = await web.client.get(f"/api/quizzes/{quiz['id']}/export", headers=auth)
    assert exported.status_code == 200
    assert 'filename="basics-revised.quiz.json"' in exported.headers["content-disposition"]
    imported = await web.client.post("/api/quizzes/import", content=exported.content, headers=auth)
    assert imported.status_code == 201
    assert imported.json()["quiz"] == exported.json()

    deleted = await web.client.delete(f"/api/quizzes/{copy['id']}", headers=auth)
    assert deleted.status_code == 204
    gone = await web.client.get(f"/api/quizzes/{copy['id']}", headers=auth)
    assert gone.status_code == 404

    game = await web.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth)
    assert game.status_code == 201, game.text
    game_body = game.json()
    assert game_body["status"] == "created"
    assert len(game_body["join_code"]) == 6
    claims = jwt.decode(
        game_body["host_token"],
        SECRET,
        algorithms=["HS256"],
        audience="partyquiz-ws:host",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == me["id"]
    assert claims["game_id"] == game_body["game_id"]
    assert claims["join_code"] == game_body["join_code"]

    code = game_body["join_code"]
    looked_up = await web.client.get(f"/api/games/code/{code.lower()}")
    assert looked_up.status_code == 200
    assert looked_up.json()["game_id"] == game_body["game_id"]
    assert looked_up.json()["ws_url"] == "ws://testserver/ws"

    game_id = game_body["game_id"]
    service = web.service_headers()
    assert (
        await web.client.post(f"/internal/games/{game_id}/started", headers=service)
    ).status_code == 204
    results = {
        "ended_at": web.clock.now + 300,
        "players": [
            {"player_id": "p1", "nickname": "Ada", "score": 2900, "rank": 1},
            {"player_id": "p2", "nickname": "+Bob", "score": 950, "rank": 2},
        ],
        "answers": [
            {
                "player_id": "p1",
                "question_index": 0,
                "choices": [0],
                "elapsed": 1.0,
                "correct": True,
                "points": 1000,
            },
            {
                "player_id": "p2",
                "question_index": 0,
                "choices": [0],
                "elapsed": 3.0,
                "correct": True,
                "points": 950,
            },
            {
                "player_id": "p1",
                "question_index": 1,
                "choices": [0, 2],
                "elapsed": 4.0,
                "correct": True,
                "points": 1900,
            },
            {
                "player_id": "p2",
                "question_index": 1,
                "choices": [1],
                "elapsed": 5.0,
                "correct": False,
                "points": 0,
            },
        ],
    }
    stored = await web.client.post(
        f"/internal/games/{game_id}/results", json=results, headers=service
    )
    assert stored.status_code == 204

    history = (await web.client.get("/api/games", headers=auth)).json()
    assert [(g["game_id"], g["status"], g["player_count"]) for g in history] == [
        (game_id, "ended", 2)
    ]
    detail = (await web.client.get(f"/api/games/{game_id}", headers=auth)).json()
    assert detail["quiz_title"] == "Basics, revised"
    assert [p["nickname"] for p in detail["players"]] == ["Ada", "+Bob"]
    assert detail["players"][0]["correct_answers"] == 2
    assert [q["answered_correctly"] for q in detail["questions"]] == [2, 1, 0]
    assert detail["questions"][1]["choice_counts"] == [1, 1, 1]
    assert detail["started_at"] is not None
    assert detail["ended_at"] is not None

    exported_csv = await web.client.get(f"/api/games/{game_id}/results.csv", headers=auth)
    assert exported_csv.headers["content-type"].startswith("text/csv")
    assert exported_csv.content.startswith(b"\xef\xbb\xbf")  # UTF-8 for spreadsheets
    rows = list(csv.reader(io.StringIO(exported_csv.text.removeprefix("\ufeff"))))
    assert rows == [
        [
            "rank",
            "nickname",
            "score",
            "correct_answers",
            *(f"q{i}_{column}" for i in (1, 2, 3) for column in ("answer", "points")),
        ],
        ["1", "Ada", "2900", "2", "Paris", "1000", "2 | 5", "1900", "", ""],
        ["2", "'+Bob", "950", "1", "Paris", "950", "4", "0", "", ""],
    ]


async def test_games_keep_the_quiz_as_it_was_when_created(web: Web) -> None:
    auth = await web.register_and_login()
    quiz = (await web.client.post("/api/quizzes", json=sample_quiz("Before"), headers=auth)).json()
    game = (await web.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth)).json()
    await web.client.put(f"/api/quizzes/{quiz['id']}", json=sample_quiz("After"), headers=auth)
    await web.client.delete(f"/api/quizzes/{quiz['id']}", headers=auth)
    internal = await web.client.get(
        f"/internal/games/{game['join_code']}", headers=web.service_headers()
    )
    assert internal.json()["quiz"]["title"] == "Before"
    history = (await web.client.get("/api/games", headers=auth)).json()
    assert (history[0]["quiz_id"], history[0]["quiz_title"]) == (None, "Before")
