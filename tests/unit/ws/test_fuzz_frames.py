"""Random and malformed frames at a live game service: each gets one reply, nothing breaks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.ws.harness import WAIT, ServiceThread, create_game, host_token
from websockets.sync.client import ClientConnection, connect

MESSAGE_TYPES = [
    "join",
    "resume",
    "host",
    "answer",
    "start",
    "next",
    "skip",
    "pause",
    "resume_game",
    "lock",
    "unlock",
    "kick",
    "end",
    "ping",
    "welcome",
    "error",
    "",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
typed_objects = st.builds(
    lambda t, extra: json.dumps({"type": t, **extra}),
    st.sampled_from(MESSAGE_TYPES),
    st.dictionaries(
        st.sampled_from(
            [
                "code",
                "nickname",
                "device_id",
                "question_index",
                "choices",
                "host_token",
                "resume_token",
                "player_id",
                "t",
                "x",
            ]
        ),
        json_values,
        max_size=4,
    ),
)
frames = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    json_values.map(json.dumps),
    typed_objects,
)


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceThread]:
    with ServiceThread(
        message_burst=100_000,
        message_rate_per_second=100_000.0,
        hello_max_frames=100_000,
        join_rate_per_address=100_000,
    ) as svc:
        yield svc


def _open(service: ServiceThread) -> ClientConnection:
    assert service.running is not None
    return connect(service.running.url, compression=None)


@dataclass
class LiveGame:
    host: ClientConnection
    player: ClientConnection


@pytest.fixture(scope="module")
def live_game(service: ServiceThread) -> Iterator[LiveGame]:
    """A game with a host and a player, open while the fuzzing runs."""
    game_id, code = service.call(create_game(service.backend, join_code="FZZFZZ"))
    with _open(service) as host, _open(service) as player:
        host.send(json.dumps({"type": "host", "host_token": host_token(game_id, code)}))
        assert orjson.loads(host.recv(timeout=WAIT))["type"] == "host_welcome"
        player.send(
            json.dumps(
                {"type": "join", "code": code, "nickname": "Bystander", "device_id": "dev-1"}
            )
        )
        assert orjson.loads(player.recv(timeout=WAIT))["type"] == "welcome"
        yield LiveGame(host, player)


@settings(max_examples=120)
@given(batch=st.lists(frames, min_size=1, max_size=30))
def test_every_frame_gets_exactly_one_reply(
    service: ServiceThread, live_game: LiveGame, batch: list[str | bytes]
) -> None:
    with _open(service) as ws:
        for frame in batch:
            ws.send(frame)
            reply = orjson.loads(ws.recv(timeout=WAIT))
            assert reply["type"] in ("error", "pong", "welcome", "host_welcome")
            if reply["type"] == "error":
                assert isinstance(reply["code"], str)
                assert reply["code"]


def test_the_game_that_was_open_during_the_fuzzing_plays_on(live_game: LiveGame) -> None:
    host, player = live_game.host, live_game.player
    host.send('{"type": "start"}')
    while orjson.loads(player.recv(timeout=WAIT))["type"] != "question":
        pass
    player.send('{"type": "answer", "question_index": 0, "choices": [0]}')
    frames = [player.recv(timeout=WAIT) for _ in range(3)]
    assert all(isinstance(frame, str) for frame in frames)  # text frames, as browsers expect
    seen = [orjson.loads(frame)["type"] for frame in frames]
    assert "answer_receipt" in seen
    assert "personal_result" in seen
