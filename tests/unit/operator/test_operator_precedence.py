"""Precedence across passes: writes that start pods go out before writes that start none."""

from __future__ import annotations

import asyncio

from partyquiz_operator.passes import Precedence


async def settle_loop() -> None:
    """Let every task that can run on the event loop run until it waits."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_write_that_starts_no_pod_waits_until_the_pod_starting_waves_are_answered() -> None:
    precedence = Precedence()
    sent: list[str] = []

    async def service() -> None:
        async with precedence.behind():
            sent.append("Service")

    async with precedence.urgent():
        async with precedence.urgent():
            task = asyncio.create_task(service())
            await settle_loop()
        assert sent == [], "one pod-starting wave is still being answered"
    await task
    assert sent == ["Service"]


async def test_pod_starting_waves_in_flight_delay_other_writes_but_never_stop_them() -> None:
    precedence = Precedence(wait=0.0)
    sent: list[str] = []
    async with precedence.urgent():
        async with precedence.behind():
            sent.append("Service")
        assert sent == ["Service"], "it went out although the wave is still being answered"


async def test_at_most_so_many_writes_that_start_no_pod_are_out_at_once() -> None:
    precedence = Precedence(at_once=2)
    out: list[int] = []
    answered = asyncio.Event()

    async def write(n: int) -> None:
        async with precedence.behind():
            out.append(n)
            await answered.wait()

    tasks = [asyncio.create_task(write(n)) for n in range(3)]
    await settle_loop()
    assert out == [0, 1]
    answered.set()
    await asyncio.gather(*tasks)
    assert out == [0, 1, 2]
