"""Every error class a client can meet: 401, 403, 404, 409, 413, 422, 429 — never a 500."""

from __future__ import annotations

import orjson
from tests.integration.web.conftest import PASSWORD, MakeWeb, Web, sample_quiz


def _is_error_body(body: dict[str, object]) -> bool:
    return set(body) == {"code", "message", "errors"}


async def test_requests_without_or_with_a_bad_token_get_401(web: Web) -> None:
    missing = await web.client.get("/api/quizzes")
    forged = await web.client.get("/api/quizzes", headers={"Authorization": "Bearer not.a.token"})
    for response in (missing, forged):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "unauthenticated"


async def test_expired_login_token_gets_401(web: Web) -> None:
    auth = await web.register_and_login()
    web.clock.now += web.runtime.settings.access_token_ttl_seconds + 1
    response = await web.client.get("/api/auth/me", headers=auth)
    assert response.status_code == 401
    assert "expired" in response.json()["message"]


async def test_wrong_password_and_unknown_email_look_the_same(web: Web) -> None:
    await web.register_and_login()
    wrong = await web.client.post(
        "/api/auth/login", json={"email": "host@example.org", "password": "nope-nope"}
    )
    unknown = await web.client.post(
        "/api/auth/login", json={"email": "who@example.org", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_internal_api_refuses_a_host_token(web: Web) -> None:
    auth = await web.register_and_login()
    response = await web.client.get("/internal/games/ABCDEF", headers=auth)
    assert response.status_code == 401
    assert (await web.client.get("/internal/games/ABCDEF")).status_code == 401


async def test_closed_registration_gets_403(make_web: MakeWeb, database_url: str) -> None:
    web = await make_web(database_url, allow_registration=False)
    response = await web.client.post(
        "/api/auth/register", json={"email": "a@example.org", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "registration_closed"


async def test_other_hosts_quizzes_and_games_are_404(web: Web) -> None:
    alice = await web.register_and_login("alice@example.org")
    bob = await web.register_and_login("bob@example.org")
    quiz = (await web.client.post("/api/quizzes", json=sample_quiz(), headers=alice)).json()
    game = (await web.client.post("/api/games", json={"quiz_id": quiz["id"]}, headers=alice)).json()
    qid, gid = quiz["id"], game["game_id"]
    attempts = [
        await web.client.get(f"/api/quizzes/{qid}", headers=bob),
        await web.client.put(f"/api/quizzes/{qid}", json=sample_quiz(), headers=bob),
        await web.client.delete(f"/api/quizzes/{qid}", headers=bob),
        await web.client.post(f"/api/quizzes/{qid}/duplicate", headers=bob),
        await web.client.get(f"/api/quizzes/{qid}/export", headers=bob),
        await web.client.post("/api/games", json={"quiz_id": qid}, headers=bob),
        await web.client.get(f"/api/games/{gid}", headers=bob),
        await web.client.get(f"/api/games/{gid}/results.csv", headers=bob),
    ]
    assert [r.status_code for r in attempts] == [404] * len(attempts)
    assert (await web.client.get("/api/quizzes", headers=bob)).json() == []
    assert (await web.client.get("/api/games", headers=bob)).json() == []
    still_there = await web.client.get(f"/api/quizzes/{qid}", headers=alice)
    assert still_there.json()["title"] == "Sample"


async def test_registering_a_taken_email_gets_409(web: Web) -> None:
    await web.register_and_login("Host@Example.org")
    again = await web.client.post(
        "/api/auth/register", json={"email": "host@example.org", "password": PASSWORD}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"


async def test_oversized_bodies_get_413_before_parsing(web: Web) -> None:
    auth = await web.register_and_login()
    limit = web.runtime.settings.max_body_bytes
    declared = await web.client.post(
        "/api/quizzes", content=b"{" + b" " * limit + b"}", headers=auth
    )
    assert declared.status_code == 413
    assert declared.json()["code"] == "payload_too_large"
    assert _is_error_body(declared.json())

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(limit // 4096 + 2):
            yield b" " * 4096

    streamed = await web.client.post("/api/quizzes", content=chunks(), headers=auth)
    assert streamed.status_code == 413
    assert _is_error_body(streamed.json())


async def test_bad_quiz_import_lists_field_paths_with_422(web: Web) -> None:
    auth = await web.register_and_login()
    document = sample_quiz()
    document["questions"][0]["correct"] = [7]
    document["questions"][2]["choices"] = [{"text": "Yes"}, {"text": "No"}, {"text": "Maybe"}]
    document["questions"][3]["time_limit_seconds"] = 1
    document["extra"] = True
    response = await web.client.post(
        "/api/quizzes/import", content=orjson.dumps(document), headers=auth
    )
    assert response.status_code == 422
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {
        "questions.0",
        "questions.2",
        "questions.3.time_limit_seconds",
        "extra",
    }
    assert "between 0 and 2" in errors["questions.0"]
    assert "exactly two choices" in errors["questions.2"]


async def test_import_of_a_file_that_is_not_json_gets_422(web: Web) -> None:
    auth = await web.register_and_login()
    for content in (b"{not json", b"[1, 2]", b""):
        response = await web.client.post("/api/quizzes/import", content=content, headers=auth)
        assert response.status_code == 422
        assert response.json()["errors"][0]["path"] == "(root)"


async def test_invalid_json_bodies_get_422_with_field_paths(web: Web) -> None:
    response = await web.client.post(
        "/api/auth/register", json={"email": "not-an-email", "password": "short"}
    )
    assert response.status_code == 422
    assert {e["path"] for e in response.json()["errors"]} == {"body.email", "body.password"}
    garbage = await web.client.post(
        "/api/auth/login", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 422


async def test_too_many_logins_from_one_ip_get_429(make_web: MakeWeb, database_url: str) -> None:
    web = await make_web(database_url, login_rate_limit=3)
    body = {"email": "x@example.org", "password": "whatever-it-is"}
    statuses = [(await web.client.post("/api/auth/login", json=body)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = await web.client.post("/api/auth/login", json=body)
    assert int(limited.headers["retry-after"]) > 0
    other_ip = await web.client_from("198.51.100.9").post("/api/auth/login", json=body)
    assert other_ip.status_code == 401
    web.clock.now += 60
    assert (await web.client.post("/api/auth/login", json=body)).status_code == 401


async def test_unknown_routes_and_methods_use_the_error_body(web: Web) -> None:
    missing = await web.client.get("/api/nothing-here")
    wrong_method = await web.client.patch("/api/quizzes")
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert _is_error_body(missing.json())
    assert _is_error_body(wrong_method.json())


async def test_text_the_database_cannot_store_gets_422_not_500(web: Web) -> None:
    auth = await web.register_and_login()
    document = sample_quiz("Nul\x00title")
    document["questions"][1]["choices"][2]["text"] = "fi\x00ve"
    created = await web.client.post("/api/quizzes", json=document, headers=auth)
    assert created.status_code == 422
    assert [e["path"] for e in created.json()["errors"]] == [
        "title",
        "questions.1.choices.2.text",
    ]
    register = await web.client.post(
        "/api/auth/register", json={"email": "a\x00@example.org", "password": PASSWORD}
    )
    assert register.status_code == 422
    odd_id = await web.client.get("/api/quizzes/%00", headers=auth)
    assert odd_id.status_code == 404
