"""Quizzes a newer version stored are read by this one (fields it does not know are ignored),
while a quiz sent to the API with an unknown field is still refused with its path."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from tests.integration.web.conftest import Web, sample_quiz

from partyquiz_web.models import Game, QuizRecord


def _from_a_newer_version(content: dict[str, Any]) -> dict[str, Any]:
    content = {**content, "future_cover": {"id": "abc"}}
    content["settings"] = {**content.get("settings", {}), "future_music": "loud"}
    content["questions"] = [
        {
            **q,
            "future_hint": "look closely",
            "choices": [{**c, "future_colour": "red"} for c in q["choices"]],
        }
        for q in content["questions"]
    ]
    return content


async def _rewrite(web: Web, model: type[QuizRecord] | type[Game], row_id: str) -> None:
    async with web.runtime.database.session() as session:
        if model is QuizRecord:
            record = await session.get(QuizRecord, row_id)
            assert record is not None
            await session.execute(
                sa.update(QuizRecord)
                .where(QuizRecord.id == row_id)
                .values(content=_from_a_newer_version(record.content))
            )
        else:
            game = await session.get(Game, row_id)
            assert game is not None
            await session.execute(
                sa.update(Game)
                .where(Game.id == row_id)
                .values(quiz_snapshot=_from_a_newer_version(game.quiz_snapshot))
            )
        await session.commit()


async def test_a_quiz_stored_by_a_newer_version_is_shown_exported_copied_and_played(
    web: Web,
) -> None:
    auth = await web.register_and_login()
    created = (await web.client.post("/api/quizzes", json=sample_quiz(), headers=auth)).json()
    quiz_id = created["id"]
    await _rewrite(web, QuizRecord, quiz_id)

    shown = await web.client.get(f"/api/quizzes/{quiz_id}", headers=auth)
    assert shown.status_code == 200, shown.text
    assert shown.json()["quiz"] == created["quiz"]
    exported = await web.client.get(f"/api/quizzes/{quiz_id}/export", headers=auth)
    assert exported.status_code == 200
    assert exported.json() == created["quiz"]
    copied = await web.client.post(f"/api/quizzes/{quiz_id}/duplicate", headers=auth)
    assert copied.status_code == 201, copied.text
    assert copied.json()["quiz"]["questions"] == created["quiz"]["questions"]

    game = await web.client.post("/api/games", json={"quiz_id": quiz_id}, headers=auth)
    assert game.status_code == 201, game.text
    await _rewrite(web, Game, game.json()["game_id"])
    served = await web.client.get(
        f"/internal/games/{game.json()['join_code']}", headers=web.service_headers()
    )
    assert served.status_code == 200, served.text
    assert served.json()["quiz"] == created["quiz"]
    detail = await web.client.get(f"/api/games/{game.json()['game_id']}", headers=auth)
    assert detail.status_code == 200, detail.text


async def test_a_quiz_sent_with_an_unknown_field_is_refused_with_its_path(web: Web) -> None:
    auth = await web.register_and_login()
    sent = sample_quiz()
    sent["questions"][1]["hint"] = "a typo for something"
    response = await web.client.post("/api/quizzes", json=sent, headers=auth)
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == ["body.questions.1.hint"]
    imported = await web.client.post(
        "/api/quizzes/import",
        content=json.dumps(_from_a_newer_version(sample_quiz())),
        headers=auth,
    )
    assert imported.status_code == 422
    assert "future_cover" in {e["path"] for e in imported.json()["errors"]}
