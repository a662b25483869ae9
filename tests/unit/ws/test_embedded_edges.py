"""Hostile and unusual clients: bad frames, floods, wrong codes, origins, probes and drain."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tests.unit.ws.harness import Clock, Peer, create_game, running_service
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from partyquiz_ws.memory_backend import memory_backend


async def test_every_malformed_frame_gets_an_error_frame_and_the_connection_stays() -> None:
    async with running_service(hello_max_frames=50) as svc:
        peer = await Peer.open(svc.url)
        frames: list[str | bytes] = [
            "not json",
            "[]",
            "{}",
            '{"type": "nope"}',
            '{"type": "join"}',
            '{"type": "answer", "question_index": -1, "choices": []}',
            '{"type": "ping", "t": "soon"}',
            b"\xff\xfe binary garbage",
            b'{"type": "ping", "t": 1}',
            '{"type": "join", "code": "ABC", "nickname": "x", "device_id": "d", "extra": 1}',
            "x" * 4000,
        ]
        for frame in frames:
            await peer.send_raw(frame)
            error = await peer.expect("error")
            assert error["code"] == "bad_frame", frame
            assert error["message"]
        await peer.send(type="ping", t=1.5)
        pong = await peer.expect("pong")
        assert pong["t"] == 1.5
        await peer.close()


@pytest.mark.parametrize("role", ["host", "resume"])
async def test_an_empty_or_oversized_token_is_an_invalid_token(role: str) -> None:
    async with running_service() as svc:
        peer = await Peer.open(svc.url)
        field = "host_token" if role == "host" else "resume_token"
        for token in ("", "e" * 2049):
            await peer.send(**{"type": role, field: token})
            error = await peer.expect("error")
            assert error["code"] == "token_invalid", token[:8]
        await peer.close()


async def test_a_frame_over_4_kib_gets_an_error_frame_and_the_connection_lives_on() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        _game_id, code = await create_game(backend)
        client = await Peer.open(svc.url)
        await client.send_raw("x" * 5000)
        error = await client.expect("error")
        assert error["code"] == "too_large"
        assert (await client.join(code, "Still here"))["type"] == "welcome"
        await client.close()


async def test_a_frame_over_the_transport_cap_closes_only_that_connection() -> None:
    backend = memory_backend()
    async with running_service(backend) as svc:
        game_id, code = await create_game(backend)
        host = await Peer.hosting(svc.url, game_id, code)
        attacker = await Peer.open(svc.url)
        await attacker.send_raw("x" * 20_000)
        with pytest.raises(ConnectionClosed) as closed:
            await attacker.next()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
        player = await Peer.open(svc.url)
        assert (await player.join(code, "Still fine"))["type"] == "welcome"
        assert (await host.expect("lobby"))["player_count"] == 1
        await host.close()
        await player.close()


async def test_a_flood_gets_one_notice_and_the_connection_closes_if_it_goes_on() -> None:
    async with running_service(
        message_burst=5, message_rate_per_second=0.001, flood_close_frames=40
    ) as svc:
        peer = await Peer.open(svc.url)
        for _ in range(5_000):
            try:
                await peer.send(type="ping")
            except ConnectionClosed:
                break
        replies, code = await peer.until_closed()
        assert code == 4008
        assert [r["type"] for r in replies] == ["pong"] * 5 + ["error"]
        assert replies[-1]["code"] == "rate_limited"


async def test_a_short_burst_over_the_rate_gets_one_notice_and_the_connection_stays() -> None:
    async with running_service(message_burst=5, message_rate_per_second=0.001) as svc:
        peer = await Peer.open(svc.url)
        for _ in range(20):
            await peer.send(type="ping", t=1)
        await peer.send_raw("<not even json>")
        replies = [await peer.next() for _ in range(6)]
        assert [r["type"] for r in replies] == ["pong"] * 5 + ["error"]
        assert replies[-1]["code"] == "rate_limited"
        async with httpx.AsyncClient(base_url=svc.http) as http:
            metrics = (await http.get("/metrics")).text
        assert 'partyquiz_ws_limited_total{limit="flood_notice"} 1.0' in metrics
        assert peer.ws.close_code is None
        await peer.close()


async def test_wrong_join_codes_are_limited_per_address() -> None:
    backend = memory_backend()
    async with running_service(backend, clock=Clock.at_window_start(60), wrong_code_limit=3) as svc:
        _, code = await create_game(backend)
        peer = await Peer.open(svc.url)
        for wrong in ("QQQQQQ", "WWWWWW", "!!"):
            error = await peer.join(wrong, "Guesser")
            assert error["code"] in ("unknown_code", "invalid_join_code")
        assert (await peer.join(code, "Guesser"))["code"] == "too_many_attempts"
        await peer.close()


async def test_a_connection_without_credentials_is_closed() -> None:
    async with running_service(hello_timeout_seconds=0.3) as svc:
        peer = await Peer.open(svc.url)
        with pytest.raises(ConnectionClosed) as closed:
            await peer.next()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4001


@pytest.mark.parametrize(
    "first",
    [
        '{"type": "ping"}',
        "not json",
        '{"type": "answer", "question_index": 0, "choices": [0]}',
        '{"type": "join", "code": "QQQQQQ", "nickname": "Nobody", "device_id": "d"}',
    ],
    ids=["ping", "invalid-json", "refused-answer", "wrong-code"],
)
async def test_a_connection_that_never_gets_a_role_is_closed_whatever_it_sent(first: str) -> None:
    async with running_service(hello_timeout_seconds=0.5) as svc:
        peer = await Peer.open(svc.url)
        await peer.send_raw(first)
        replies, code = await peer.until_closed()
        assert code == 4001
        assert len(replies) <= 1  # its reply (a pong or an error), unless the close came first


async def test_a_connection_without_a_role_may_send_only_a_few_frames() -> None:
    async with running_service(hello_max_frames=3) as svc:
        peer = await Peer.open(svc.url)
        for _ in range(4):
            await peer.send(type="ping")
        replies, code = await peer.until_closed()
        assert [r["type"] for r in replies] == ["pong"] * 3
        assert code == 4001


async def test_an_address_holds_a_limited_number_of_connections() -> None:
    async with running_service(max_connections_per_address=3) as svc:
        crowd = [
            await Peer.open(svc.url, additional_headers={"X-Forwarded-For": "2001:db8:1:2::7"})
            for _ in range(3)
        ]
        # Another address of the same IPv6 /64 counts as the same address.
        neighbour = await Peer.open(
            svc.url, additional_headers={"X-Forwarded-For": "2001:db8:1:2:ffff::1"}
        )
        with pytest.raises(ConnectionClosed) as closed:
            await neighbour.next()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4029
        elsewhere = await Peer.open(svc.url, additional_headers={"X-Forwarded-For": "2001:db8::1"})
        await elsewhere.send(type="ping")
        assert (await elsewhere.expect("pong"))["type"] == "pong"
        await crowd[0].close()
        # A closed connection frees its place.
        again = await Peer.open(svc.url, additional_headers={"X-Forwarded-For": "2001:db8:1:2::8"})
        await again.send(type="ping")
        assert (await again.expect("pong"))["type"] == "pong"
        async with httpx.AsyncClient(base_url=svc.http) as http:
            metrics = (await http.get("/metrics")).text
        assert 'partyquiz_ws_limited_total{limit="connections_per_address"} 1.0' in metrics
        for peer in (*crowd[1:], elsewhere, again):
            await peer.close()


async def test_joins_are_limited_per_address_and_per_game() -> None:
    backend = memory_backend()
    async with running_service(
        backend, clock=Clock.at_window_start(10), join_rate_per_address=2, join_rate_per_game=4
    ) as svc:
        _, code = await create_game(backend)

        async def join_from(address: str, nickname: str) -> dict[str, object]:
            peer = await Peer.open(svc.url, additional_headers={"X-Forwarded-For": address})
            return await peer.join(code, nickname)

        assert (await join_from("203.0.113.1", "One"))["type"] == "welcome"
        assert (await join_from("203.0.113.1", "Two"))["type"] == "welcome"
        assert (await join_from("203.0.113.1", "Three"))["code"] == "too_many_joins"
        assert (await join_from("203.0.113.2", "Four"))["type"] == "welcome"
        assert (await join_from("203.0.113.3", "Five"))["code"] == "too_many_joins"


async def test_foreign_origin_is_refused_in_production() -> None:
    async with running_service(
        environment="production",
        jwt_secret="a-production-grade-secret-of-enough-bytes-0123",
        allowed_origins="https://quiz.example.org",
    ) as svc:
        with pytest.raises(InvalidStatus) as refused:
            await connect(svc.url, origin="https://evil.example.com")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        ok = await connect(svc.url, origin="https://quiz.example.org")  # type: ignore[arg-type]
        await ok.close()


async def test_probes_and_metrics_are_served_on_the_same_port() -> None:
    async with running_service() as svc, httpx.AsyncClient(base_url=svc.http) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        metrics = await http.get("/metrics")
        assert metrics.status_code == 200
        assert "partyquiz_ws_connections " in metrics.text
        assert "partyquiz_ws_broadcast_duration_seconds_bucket" in metrics.text
        assert (await http.get("/nope")).status_code == 404


async def test_drain_turns_readiness_off_and_asks_clients_to_reconnect() -> None:
    async with running_service(drain_seconds=5.0) as svc:
        peer = await Peer.open(svc.url)
        await peer.send(type="ping")
        await peer.expect("pong")
        drained = asyncio.create_task(svc.service.drain())
        with pytest.raises(ConnectionClosed) as closed:
            await peer.next()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1012
        await asyncio.wait_for(drained, 10)
        async with httpx.AsyncClient(base_url=svc.http) as http:
            assert (await http.get("/readyz")).status_code == 503
            assert (await http.get("/healthz")).status_code == 200
        with pytest.raises(InvalidStatus) as refused:
            await connect(svc.url)
        assert refused.value.response.status_code == 503


async def test_wrong_codes_count_per_client_behind_a_trusted_proxy() -> None:
    backend = memory_backend()
    async with running_service(
        backend,
        clock=Clock.at_window_start(60),
        wrong_code_limit=2,
        forwarded_allow_ips="127.0.0.1",
    ) as svc:
        _, code = await create_game(backend)
        guesser = await Peer.open(svc.url, additional_headers={"X-Forwarded-For": "203.0.113.7"})
        for wrong in ("QQQQQQ", "WWWWWW"):
            assert (await guesser.join(wrong, "Guesser"))["code"] == "unknown_code"
        assert (await guesser.join(code, "Guesser"))["code"] == "too_many_attempts"
        # Another phone behind the same proxy is not punished for the guesser.
        other = await Peer.open(svc.url, additional_headers={"X-Forwarded-For": "203.0.113.8"})
        assert (await other.join(code, "Innocent"))["type"] == "welcome"
        await guesser.close()
        await other.close()
