"""Question pictures reach the host's screens on every replica, and players' phones only when
the quiz shows pictures there (two replicas on one real Redis)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.ws.test_redis_replicas import two_replicas
from tests.unit.ws.harness import Peer, create_game, host_token

from partyquiz_core.quiz import Quiz

PIC = "d" * 64


def picture_quiz(*, on_phones: bool) -> Quiz:
    return Quiz.model_validate(
        {
            "title": "Pictures",
            "cover": PIC,
            "settings": {"get_ready_seconds": 0, "images_on_phones": on_phones},
            "questions": [
                {
                    "text": "Which city?",
                    "choices": [{"text": "Paris"}, {"text": "Rome"}],
                    "correct": [0],
                    "image": PIC,
                    "read_seconds": 0,
                }
            ],
        }
    )


@pytest.mark.parametrize("on_phones", [False, True], ids=["hidden-on-phones", "on-phones"])
async def test_a_questions_picture_goes_to_screens_and_to_phones_only_if_the_quiz_says_so(
    fresh_redis_url: str, on_phones: bool
) -> None:
    async with two_replicas(fresh_redis_url) as (first, a, b):
        game_id, code = await create_game(first, quiz=picture_quiz(on_phones=on_phones))
        token = host_token(game_id, code)
        screen, remote = await Peer.open(a.url), await Peer.open(b.url)
        welcomes: list[dict[str, Any]] = []
        for host in (screen, remote):
            await host.send(type="host", host_token=token)
            welcomes.append(await host.expect("host_welcome"))
        assert [w["state"]["cover"] for w in welcomes] == [f"/images/{PIC}"] * 2
        near, far = await Peer.open(a.url), await Peer.open(b.url)
        joined = [await near.join(code, "Near"), await far.join(code, "Far")]
        assert [w["state"].get("cover") for w in joined] == [
            f"/images/{PIC}" if on_phones else None
        ] * 2

        await screen.send(type="start")
        on_screens = [await host.expect("question") for host in (screen, remote)]
        on_phones_seen = [await phone.expect("question") for phone in (near, far)]
        assert [q["image"] for q in on_screens] == [f"/images/{PIC}"] * 2
        assert [q.get("image") for q in on_phones_seen] == [
            f"/images/{PIC}" if on_phones else None
        ] * 2
        # Otherwise the very same question, once each.
        for seen in on_phones_seen:
            assert {k: v for k, v in on_screens[0].items() if k != "image"} == {
                k: v for k, v in seen.items() if k != "image"
            }

        # A phone that reconnects gets the same view of the question as before.
        again = await Peer.open(b.url)
        await again.send(type="resume", resume_token=joined[1]["resume_token"])
        resumed = await again.expect("welcome")
        assert resumed["state"]["question"].get("image") == on_phones_seen[1].get("image")
        for peer in (screen, remote, near, far, again):
            await peer.close()
