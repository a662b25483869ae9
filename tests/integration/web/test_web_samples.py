"""The sample library: every host can list the ready-made quizzes and copy one to play."""

from __future__ import annotations

from tests.integration.web.conftest import MakeWeb

from partyquiz_core.quiz import QuestionKind, Quiz
from partyquiz_web.samples import sample_quizzes


async def test_a_new_host_copies_a_sample_quiz_and_can_play_it(
    make_web: MakeWeb, database_url: str
) -> None:
    web = await make_web(database_url)
    auth = await web.register_and_login()
    listed = (await web.client.get("/api/quizzes/samples", headers=auth)).json()
    assert len(listed) >= 3
    assert {s["name"] for s in listed} == set(sample_quizzes())
    first = listed[0]
    copied = await web.client.post(f"/api/quizzes/samples/{first['name']}", headers=auth)
    assert copied.status_code == 201, copied.text
    assert copied.json()["title"] == first["title"]
    assert copied.json()["question_count"] == first["question_count"]
    mine = (await web.client.get("/api/quizzes", headers=auth)).json()
    assert [q["id"] for q in mine] == [copied.json()["id"]]
    game = await web.client.post("/api/games", json={"quiz_id": copied.json()["id"]}, headers=auth)
    assert game.status_code == 201
    # A copy is the host's own: editing it leaves the library as it was.
    quiz = copied.json()["quiz"]
    quiz["title"] = "Mine now"
    edited = await web.client.put(f"/api/quizzes/{copied.json()['id']}", json=quiz, headers=auth)
    assert edited.status_code == 200
    again = (await web.client.get("/api/quizzes/samples", headers=auth)).json()
    assert again[0]["title"] == first["title"]


async def test_unknown_samples_are_404_and_the_library_needs_a_login(
    make_web: MakeWeb, database_url: str
) -> None:
    web = await make_web(database_url)
    assert (await web.client.get("/api/quizzes/samples")).status_code == 401
    auth = await web.register_and_login()
    missing = await web.client.post("/api/quizzes/samples/nope", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_the_samples_are_valid_quizzes_of_every_kind() -> None:
    samples = sample_quizzes()
    assert all(isinstance(q, Quiz) for q in samples.values())
    assert len({q.title for q in samples.values()}) == len(samples)
    kinds = {question.kind for q in samples.values() for question in q.questions}
    assert kinds == set(QuestionKind)
