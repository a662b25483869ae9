"""Answers, nicknames, host-only actions, resume and kick over real WebSockets (embedded)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.unit.ws.harness import (
    Clock,
    Peer,
    create_game,
    host_token,
    running_service,
)
from websockets.exceptions import ConnectionClosed

from partyquiz_ws.memory_backend import memory_backend


async def test_late_duplicate_and_invalid_answers_are_refused_with_a_reason() -> None:
    backend, clock = memory_backend(), Clock()
    # A long tick grace keeps the question open past its deadline, so "late" is observable.
    async with running_service(backend, clock=clock, tick_grace_seconds=5.0) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        alice, bob, carol = [await Peer.open(svc.url) for _ in range(3)]
        for peer, name in ((alice, "Alice"), (bob, "Bob"), (carol, "Carol")):
            assert (await peer.join(code, name))["type"] == "welcome"
        await host.send(type="start")
        await carol.expect("question")

        await alice.send(type="answer", question_index=0, choices=[7])
        assert (await alice.expect("error"))["code"] == "invalid_choice"
        await alice.send(type="answer", question_index=3, choices=[0])
        assert (await alice.expect("error"))["code"] == "wrong_question"
        await alice.send(type="answer", question_index=0, choices=[0])
        await alice.expect("answer_receipt")
        await alice.send(type="answer", question_index=0, choices=[1])
        assert (await alice.expect("error"))["code"] == "duplicate"

        clock.advance(21)  # past the 20 s deadline, inside the tick grace
        await bob.send(type="answer", question_index=0, choices=[0])
        assert (await bob.expect("error"))["code"] == "late"
        reveal = await carol.expect("reveal")
        assert reveal["answered"] == 1
        for peer in (host, alice, bob, carol):
            await peer.close()


async def test_nicknames_are_trimmed_unique_and_free_of_control_characters() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        peers = [await Peer.open(svc.url) for _ in range(5)]
        first = await peers[0].join(code.lower(), "  Bob  ")
        assert first["nickname"] == "Bob"
        assert (await peers[1].join(code, "bob"))["code"] == "nickname_taken"
        assert (await peers[2].join(code, "Bo\x07b"))["code"] == "invalid_nickname"
        assert (await peers[3].join(code, "x" * 21))["code"] == "invalid_nickname"
        assert (await peers[4].join(code, "   "))["code"] == "invalid_nickname"
        # A refused join leaves the connection usable for another try.
        assert (await peers[1].join(code, "Bobby"))["type"] == "welcome"
        for peer in (host, *peers):
            await peer.close()


async def test_emoji_names_join_and_look_alikes_and_listed_words_are_refused(
    tmp_path: Path,
) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# refused here\nbadword\n")
    backend = memory_backend()
    async with running_service(
        backend, nickname_blocklist="rude*", nickname_blocklist_file=str(words)
    ) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        peers = [await Peer.open(svc.url) for _ in range(6)]
        coder = await peers[0].join(code, "\U0001f469\u200d\U0001f4bb")
        assert coder["nickname"] == "\U0001f469\u200d\U0001f4bb"
        assert (await peers[1].join(code, "\uff21lice"))["nickname"] == "Alice"
        assert (await peers[2].join(code, "\u0410lice"))["code"] == "nickname_taken"
        assert (await peers[3].join(code, "Bad Word"))["code"] == "nickname_refused"
        assert (await peers[4].join(code, "rudeboy"))["code"] == "nickname_refused"
        assert (await peers[5].join(code, "\u3164"))["code"] == "invalid_nickname"
        for peer in (host, *peers):
            await peer.close()


async def test_only_the_host_controls_the_game_and_only_players_answer() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        player = await Peer.open(svc.url)
        await player.join(code, "Eve")
        for command in ("start", "next", "skip", "end", "lock"):
            await player.send(type=command)
            assert (await player.expect("error"))["code"] == "host_only"
        await player.send(type="kick", player_id="x")
        assert (await player.expect("error"))["code"] == "host_only"
        await host.send(type="answer", question_index=0, choices=[0])
        assert (await host.expect("error"))["code"] == "players_only"
        await host.send(type="next")
        assert (await host.expect("error"))["code"] == "illegal_transition"
        stranger = await Peer.open(svc.url)
        await stranger.send(type="start")
        assert (await stranger.expect("error"))["code"] == "not_joined"
        await stranger.send(type="host", host_token=host_token(game_id, code, secret="x" * 40))
        assert (await stranger.expect("error"))["code"] == "token_invalid"
        for peer in (host, player, stranger):
            await peer.close()


async def test_resumed_player_keeps_identity_score_and_streak_and_can_still_answer() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        player, other = await Peer.open(svc.url), await Peer.open(svc.url)
        welcome = await player.join(code, "Ada")
        await other.join(code, "Bea")
        await host.send(type="start")
        await player.expect("question")
        await player.send(type="answer", question_index=0, choices=[0])
        await player.expect("answer_receipt")
        await host.send(type="skip")
        result = (await player.expect("personal_result"))["result"]
        assert result["streak"] == 1
        await host.send(type="next")
        await host.expect("leaderboard")
        await host.send(type="next")
        await host.expect("question")
        await player.close()  # the phone drops mid-question

        again = await Peer.open(svc.url)
        await again.send(type="resume", resume_token=welcome["resume_token"])
        back = await again.expect("welcome")
        assert back["player_id"] == welcome["player_id"]
        me = back["state"]["me"]
        assert (me["score"], me["streak"]) == (result["score"], 1)
        assert back["state"]["phase"] == "question"
        assert back["state"]["question"]["index"] == 1
        assert back["state"]["deadline"] > back["state"]["server_now"]
        await again.send(type="answer", question_index=1, choices=[1])
        assert (await again.expect("answer_receipt"))["question_index"] == 1
        await host.send(type="skip")
        final = (await again.expect("personal_result"))["result"]
        assert final["streak"] == 2
        assert final["score"] > result["score"]
        for peer in (host, other, again):
            await peer.close()


async def test_kicked_device_is_closed_and_cannot_come_back() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        device = uuid.uuid4().hex
        victim = await Peer.open(svc.url)
        welcome = await victim.join(code, "Mallory", device_id=device)
        await host.expect("lobby")
        await host.send(type="kick", player_id=welcome["player_id"])
        assert (await victim.expect("kicked"))["type"] == "kicked"
        with pytest.raises(ConnectionClosed) as closed:
            await victim.next()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4003

        retry = await Peer.open(svc.url)
        assert (await retry.join(code, "Mallory2", device_id=device))["code"] == "banned"
        await retry.close()
        resume = await Peer.open(svc.url)
        await resume.send(type="resume", resume_token=welcome["resume_token"])
        assert (await resume.expect("error"))["code"] == "banned"
        for peer in (host, resume):
            await peer.close()


@pytest.mark.parametrize("bans_address", [True, False])
async def test_a_kick_bans_the_device_nickname_and_address_not_just_the_device_id(
    bans_address: bool,
) -> None:
    backend = memory_backend()
    async with running_service(backend, kick_bans_address=bans_address) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)

        async def join_from(address: str, nickname: str, device: str) -> dict[str, object]:
            peer = await Peer.open(svc.url, additional_headers={"X-Forwarded-For": address})
            return await peer.join(code, nickname, device_id=device)

        victim = await join_from("198.51.100.7", "Mallory", "device-1")
        await host.send(type="kick", player_id=victim["player_id"])
        while not (await host.expect("lobby"))["left"]:
            pass  # the lobby updates of the join come first
        # A new device id, from the same address: refused only while addresses are banned.
        fresh = await join_from("198.51.100.7", "Someone", "device-2")
        assert fresh["type"] == ("error" if bans_address else "welcome")
        if bans_address:
            assert fresh["code"] == "banned"
        # The nickname, or a look-alike of it, from anywhere.
        assert (await join_from("192.0.2.1", "MALL0RY", "device-3"))["code"] == "banned"
        # The device id from anywhere.
        assert (await join_from("192.0.2.2", "Trudy", "device-1"))["code"] == "banned"
        # Someone else entirely is welcome.
        assert (await join_from("192.0.2.3", "Walter", "device-4"))["type"] == "welcome"
        await host.close()


async def test_pause_resume_and_locking_are_host_controls_everyone_sees() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        player = await Peer.open(svc.url)
        await player.join(code, "Pat")
        await host.send(type="lock")
        assert (await player.expect("lobby"))["joining_locked"] is True
        late = await Peer.open(svc.url)
        assert (await late.join(code, "Late"))["code"] == "joining_locked"
        await host.send(type="unlock")
        await player.expect("lobby")
        assert (await late.join(code, "Late"))["type"] == "welcome"

        await host.send(type="start")
        question = await player.expect("question")
        await host.send(type="pause")
        paused = await player.expect("paused")
        assert 0 < paused["remaining"] <= question["time_limit"]
        await player.send(type="answer", question_index=0, choices=[0])
        assert (await player.expect("error"))["code"] == "paused"
        await host.send(type="resume_game")
        resumed = await player.expect("resumed")
        assert resumed["deadline"] > resumed["server_now"]
        await player.send(type="answer", question_index=0, choices=[0])
        await player.expect("answer_receipt")
        # Nothing a player received before the reveal names the correct choice.
        for message in player.received:
            assert "correct" not in message
            assert (message.get("state") or {}).get("reveal") is None
        await host.send(type="skip")
        assert (await player.expect("reveal"))["correct"] == [0]
        for peer in (host, player, late):
            await peer.close()


async def test_a_phone_that_types_the_code_and_its_name_again_comes_back_as_itself() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        first, other = await Peer.open(svc.url), await Peer.open(svc.url)
        joined = await first.join(code, "Alice", device_id="phone-1")
        await other.join(code, "Bob")
        await host.send(type="start")
        await first.expect("question")
        await first.send(type="answer", question_index=0, choices=[0])
        await first.expect("answer_receipt")
        await first.close()

        again = await Peer.open(svc.url)
        back = await again.join(code.lower(), "alice", device_id="phone-1")
        assert back["type"] == "welcome"
        assert back["player_id"] == joined["player_id"]
        assert back["state"]["my_answer"] == [0]
        stranger = await Peer.open(svc.url)
        assert (await stranger.join(code, "Alice", device_id="phone-2"))["code"] == (
            "nickname_taken"
        )
        # The one who came back plays on with the connection it came back on.
        await host.send(type="skip")
        result = await again.expect("personal_result")
        assert result["result"]["correct"] is True
        for peer in (host, again, stranger, other):
            await peer.close()


async def test_a_double_pressed_next_moves_on_once_and_says_why_the_second_did_not() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        player = await Peer.open(svc.url)
        await player.join(code, "Alice")
        await host.send(type="start")
        await host.expect("question")
        await host.send(type="skip")
        reveal = await host.expect("reveal")
        await host.send(type="next", version=reveal["version"])
        await host.send(type="next", version=reveal["version"])
        # The refusal goes to the sender alone and may overtake the broadcast.
        first, second = (
            await host.expect("leaderboard", "error"),
            await host.expect("leaderboard", "error"),
        )
        refusal = first if first["type"] == "error" else second
        assert {first["type"], second["type"]} == {"leaderboard", "error"}
        assert refusal["code"] == "stale_command"
        assert (await player.expect("leaderboard"))["type"] == "leaderboard"
        await host.send(type="lock")
        await host.send(type="lock")
        locked = await host.expect("lobby")
        assert locked["joining_locked"] is True
        await host.send(type="ping")
        assert (await host.expect("pong"))["type"] == "pong"  # the second lock said nothing
        for peer in (host, player):
            await peer.close()


async def test_a_host_token_is_checked_against_the_game_on_every_connection() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend, join_code="ABCDEF")
        other_id, _ = await create_game(backend, join_code="BCDEFG")
        mismatched = await Peer.open(svc.url)
        # Signed for the other game, with this game's code: the code is not that game's.
        await mismatched.send(type="host", host_token=host_token(other_id, code))
        assert (await mismatched.expect("error"))["code"] == "forbidden"
        host = await Peer.hosting(svc.url, game_id, code)
        player = await Peer.open(svc.url)
        await player.join(code, "Ada")
        await host.send(type="end")
        await player.expect("ended")
        again = await Peer.open(svc.url)
        await again.send(type="host", host_token=host_token(game_id, code))
        assert (await again.expect("error", "host_welcome"))["code"] == "game_ended"
        for peer in (mismatched, host, player, again):
            await peer.close()


async def test_ending_during_a_question_shows_its_reveal_and_each_result_before_the_end() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        player, idle = await Peer.open(svc.url), await Peer.open(svc.url)
        await player.join(code, "Ada")
        await idle.join(code, "Idle")  # does not answer: the question stays open
        await host.send(type="start")
        await player.expect("question")
        await player.send(type="answer", question_index=0, choices=[0])
        await player.expect("answer_receipt")
        await host.send(type="end")
        await player.expect("ended")
        seen = [m["type"] for m in player.received]
        assert seen[-4:] == ["answer_receipt", "reveal", "personal_result", "ended"]
        result = player.received[-2]["result"]
        assert result["answered"] is True
        assert result["score"] > 0
        for peer in (host, player, idle):
            await peer.close()


async def test_a_resumed_identity_takes_over_and_the_older_connection_is_closed() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        first = await Peer.open(svc.url)
        welcome = await first.join(code, "Ada")
        second = await Peer.open(svc.url)
        await second.send(type="resume", resume_token=welcome["resume_token"])
        assert (await second.expect("welcome"))["player_id"] == welcome["player_id"]
        _, code_seen = await first.until_closed()
        assert code_seen == 4009
        await host.send(type="start")
        await second.expect("question")
        await second.send(type="answer", question_index=0, choices=[0])
        assert (await second.expect("answer_receipt"))["question_index"] == 0
        for peer in (host, second):
            await peer.close()


async def test_a_resume_token_stops_working_ten_minutes_after_its_game_ended() -> None:
    backend, clock = memory_backend(), Clock()
    async with running_service(backend, clock=clock) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        player = await Peer.open(svc.url)
        welcome = await player.join(code, "Ada")
        await host.send(type="end")
        await player.expect("ended")
        soon = await Peer.open(svc.url)
        await soon.send(type="resume", resume_token=welcome["resume_token"])
        assert (await soon.expect("welcome"))["state"]["phase"] == "ended"
        clock.advance(601)
        late = await Peer.open(svc.url)
        await late.send(type="resume", resume_token=welcome["resume_token"])
        assert (await late.expect("error", "welcome"))["code"] == "token_expired"
        for peer in (host, soon, late):
            await peer.close()
