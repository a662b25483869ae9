"""Players look up join codes: where to connect, rate limited, counted by result."""

from __future__ import annotations

import io

import segno
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.web.conftest import MakeWeb, Web, sample_quiz


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def _join_attempts(web: Web) -> dict[str, float]:
    text = (await web.client.get("/metrics")).text
    samples = _samples(text, "partyquiz_web_join_attempts_total")
    return {dict(labels)["result"]: value for labels, value in samples.items()}


async def test_lookup_results_are_counted_from_zero(make_web: MakeWeb, database_url: str) -> None:
    web = await make_web(
        database_url, code_lookup_rate_limit=4, public_ws_url="wss://quiz.example.org/ws"
    )
    assert await _join_attempts(web) == {
        "found": 0,
        "not_found": 0,
        "rate_limited": 0,
        "invalid": 0,
    }
    auth = await web.register_and_login()
    quiz = (await web.client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    game = (await web.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth)).json()
    spaced = f"{game['join_code'][:3]} {game['join_code'][3:]}".lower()
    found = await web.client.get(f"/api/games/code/{spaced}")
    assert found.json() == {
        "game_id": game["game_id"],
        "join_code": game["join_code"],
        "status": "created",
        "ws_url": "wss://quiz.example.org/ws",
    }
    assert (await web.client.get("/api/games/code/ZZZZZZ")).status_code == 404
    assert (await web.client.get("/api/games/code/0O0")).status_code == 422
    assert (await web.client.get("/api/games/code/ZZZZZZ")).status_code == 404
    limited = await web.client.get(f"/api/games/code/{game['join_code']}")
    assert limited.status_code == 429
    assert await _join_attempts(web) == {
        "found": 1,
        "not_found": 2,
        "rate_limited": 1,
        "invalid": 1,
    }


async def test_development_points_players_at_the_local_game_service(
    make_web: MakeWeb, database_url: str
) -> None:
    web = await make_web(database_url, environment="development")
    auth = await web.register_and_login()
    quiz = (await web.client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    game = (await web.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth)).json()
    assert game["ws_url"] == "ws://localhost:8001/ws"


async def test_lookup_limit_holds_across_replicas_sharing_redis(
    make_web: MakeWeb, database_url: str, fresh_redis_url: str
) -> None:
    replicas = [
        await make_web(database_url, redis_url=fresh_redis_url, code_lookup_rate_limit=3)
        for _ in range(2)
    ]
    statuses = [
        (await replicas[i % 2].client.get("/api/games/code/ZZZZZZ")).status_code for i in range(4)
    ]
    assert statuses == [404, 404, 404, 429]
    from_elsewhere = replicas[0].client_from("198.51.100.20")
    assert (await from_elsewhere.get("/api/games/code/ZZZZZZ")).status_code == 404


async def test_join_links_and_qr_codes_use_the_address_players_use(
    make_web: MakeWeb, database_url: str
) -> None:
    # The host's browser is on this machine (testserver); phones use the LAN address.
    web = await make_web(database_url, public_url="http://192.0.2.10:8000/")
    auth = await web.register_and_login()
    quiz = (await web.client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    game = (await web.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth)).json()
    code = game["join_code"]
    assert game["join_url"] == f"http://192.0.2.10:8000/join/{code}"
    assert game["ws_url"] == "ws://192.0.2.10:8000/ws"
    again = await web.client.post(f"/api/games/{game['game_id']}/host-token", headers=auth)
    assert again.json()["join_url"] == game["join_url"]
    qr = await web.client.get(f"/qr/{code}.svg")
    assert qr.content == _qr_of(f"http://192.0.2.10:8000/join/{code}", code)
    assert qr.content != _qr_of(f"http://testserver/join/{code}", code)


async def test_without_a_public_address_join_links_use_the_hosts_own(
    make_web: MakeWeb, database_url: str
) -> None:
    web = await make_web(database_url)
    auth = await web.register_and_login()
    quiz = (await web.client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    game = (await web.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=auth)).json()
    assert game["join_url"] == f"http://testserver/join/{game['join_code']}"


def _qr_of(url: str, code: str) -> bytes:
    """The SVG the QR route gives for ``url`` (same encoder, same options)."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        buffer,
        kind="svg",
        scale=1,
        border=4,
        xmldecl=False,
        omitsize=True,
        title=f"QR code: join PartyQuiz game {code}",
        dark="#000000",
        light="#ffffff",
    )
    return buffer.getvalue()
