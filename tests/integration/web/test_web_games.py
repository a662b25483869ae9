"""Game management beyond creation: paging history, a fresh host token, deleting games."""

from __future__ import annotations

import jwt
from tests.integration.web.conftest import SECRET, Web, sample_quiz


async def _quiz(web: Web, auth: dict[str, str]) -> str:
    response = await web.client.post("/api/quizzes", json=sample_quiz(), headers=auth)
    return str(response.json()["id"])


async def test_history_and_quizzes_come_a_page_at_a_time(web: Web) -> None:
    auth = await web.register_and_login()
    quiz_id = await _quiz(web, auth)
    created = []
    for _ in range(3):
        web.clock.now += 1
        game = await web.client.post("/api/games", json={"quiz_id": quiz_id}, headers=auth)
        created.append(game.json()["game_id"])
    first = (await web.client.get("/api/games?limit=2", headers=auth)).json()
    rest = (await web.client.get("/api/games?limit=2&offset=2", headers=auth)).json()
    assert [g["game_id"] for g in first + rest] == list(reversed(created))
    assert (await web.client.get("/api/games?limit=0", headers=auth)).status_code == 422
    quizzes = (await web.client.get("/api/quizzes?limit=1&offset=1", headers=auth)).json()
    assert quizzes == []


async def test_host_gets_a_fresh_token_until_the_game_ends(web: Web) -> None:
    auth = await web.register_and_login()
    game = (
        await web.client.post("/api/games", json={"quiz_id": await _quiz(web, auth)}, headers=auth)
    ).json()
    web.clock.now += 3600
    fresh = await web.client.post(f"/api/games/{game['game_id']}/host-token", headers=auth)
    assert fresh.status_code == 200
    claims = jwt.decode(
        fresh.json()["host_token"],
        SECRET,
        algorithms=["HS256"],
        audience="partyquiz-ws:host",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iat"] == int(web.clock.now)
    assert (claims["game_id"], claims["join_code"]) == (game["game_id"], game["join_code"])
    await web.client.post(
        f"/internal/games/{game['game_id']}/results",
        json={"ended_at": web.clock.now, "players": [], "answers": []},
        headers=web.service_headers(),
    )
    ended = await web.client.post(f"/api/games/{game['game_id']}/host-token", headers=auth)
    assert ended.status_code == 409
    assert ended.json()["code"] == "game_ended"


async def test_a_running_game_cannot_be_deleted_but_others_can(web: Web) -> None:
    auth = await web.register_and_login()
    quiz_id = await _quiz(web, auth)
    running = (await web.client.post("/api/games", json={"quiz_id": quiz_id}, headers=auth)).json()
    waiting = (await web.client.post("/api/games", json={"quiz_id": quiz_id}, headers=auth)).json()
    await web.client.post(
        f"/internal/games/{running['game_id']}/started", headers=web.service_headers()
    )
    refused = await web.client.delete(f"/api/games/{running['game_id']}", headers=auth)
    assert refused.status_code == 409
    assert refused.json()["code"] == "game_running"
    deleted = await web.client.delete(f"/api/games/{waiting['game_id']}", headers=auth)
    assert deleted.status_code == 204
    assert (await web.client.get(f"/api/games/code/{waiting['join_code']}")).status_code == 404
    remaining = (await web.client.get("/api/games", headers=auth)).json()
    assert [g["game_id"] for g in remaining] == [running["game_id"]]
