"""Quizzes with pictures against real databases: a picture must have been uploaded, the
refusal names the question, and the game service is handed the pictures with the quiz."""

from __future__ import annotations

from typing import Any

from tests.integration.web.conftest import Web, sample_quiz
from tests.integration.web.test_web_images import png


async def upload(web: Web, auth: dict[str, str], colour: tuple[int, int, int]) -> str:
    response = await web.client.post("/api/images", content=png(colour=colour), headers=auth)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


def with_pictures(cover: str | None, *images: str | None) -> dict[str, Any]:
    quiz = sample_quiz("Pictures")
    if cover is not None:
        quiz["cover"] = cover
    for question, image in zip(quiz["questions"], images, strict=False):
        if image is not None:
            question["image"] = image
    return quiz


async def test_a_quiz_shows_uploaded_pictures_on_questions_and_as_its_cover(web: Web) -> None:
    auth = await web.register_and_login()
    cover, first = await upload(web, auth, (200, 0, 0)), await upload(web, auth, (0, 200, 0))
    quiz = with_pictures(cover, first, None, f"/images/{first}")  # by digest or by address
    quiz["settings"]["images_on_phones"] = True
    created = await web.client.post("/api/quizzes", json=quiz, headers=auth)
    assert created.status_code == 201, created.text
    stored = (await web.client.get(f"/api/quizzes/{created.json()['id']}", headers=auth)).json()
    assert stored["quiz"]["cover"] == cover
    assert [q.get("image") for q in stored["quiz"]["questions"]] == [first, None, first, None]
    assert stored["quiz"]["settings"]["images_on_phones"] is True

    game = await web.client.post("/api/games", json={"quiz_id": created.json()["id"]}, headers=auth)
    handed = await web.client.get(
        f"/internal/games/{game.json()['join_code']}", headers=web.service_headers()
    )
    assert handed.json()["quiz"]["questions"][0]["image"] == first
    assert handed.json()["quiz"]["cover"] == cover


async def test_a_picture_never_uploaded_is_refused_naming_the_question(web: Web) -> None:
    auth = await web.register_and_login()
    known = await upload(web, auth, (0, 0, 200))
    unknown = "e" * 64
    quiz = with_pictures(unknown, known, None, unknown)
    for send in (
        web.client.post("/api/quizzes", json=quiz, headers=auth),
        web.client.post("/api/quizzes/import", json=quiz, headers=auth),
    ):
        response = await send
        assert response.status_code == 422, response.text
        errors = [(e["path"], e["message"]) for e in response.json()["errors"]]
        assert errors == [
            ("cover", f"the cover names no uploaded image ({unknown}); upload it first"),
            (
                "questions.2.image",
                f"question 3's picture names no uploaded image ({unknown}); upload it first",
            ),
        ]
    assert (await web.client.get("/api/quizzes", headers=auth)).json() == []

    created = await web.client.post("/api/quizzes", json=sample_quiz(), headers=auth)
    replaced = await web.client.put(
        f"/api/quizzes/{created.json()['id']}", json=with_pictures(None, unknown), headers=auth
    )
    assert replaced.status_code == 422
    assert replaced.json()["errors"][0]["path"] == "questions.0.image"
    kept = await web.client.get(f"/api/quizzes/{created.json()['id']}", headers=auth)
    assert "image" not in kept.json()["quiz"]["questions"][0]


async def test_a_picture_named_by_something_else_than_its_digest_is_refused(web: Web) -> None:
    auth = await web.register_and_login()
    quiz = with_pictures(None, None, "https://example.com/cat.png")
    response = await web.client.post("/api/quizzes", json=quiz, headers=auth)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["path"] == "body.questions.1.image"
    assert "SHA-256" in error["message"]
