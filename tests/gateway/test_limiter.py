"""The outbound command limiter, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from shardrunner.gateway.limiter import CommandLimiter
from tests.fakes import FakeClock


async def test_limiter_when_commands_fill_the_window_keeps_the_reserve_for_heartbeats() -> None:
    clock = FakeClock()
    limiter = CommandLimiter(clock, limit=120, window=60.0, reserved=3)
    for _ in range(117):
        assert limiter.try_acquire()
    assert not limiter.try_acquire()
    assert limiter.try_acquire(priority=True)
    assert limiter.delay() == pytest.approx(60.0)
    await clock.advance(60.0)
    assert limiter.try_acquire()


async def test_limiter_when_many_wait_serves_them_in_order_within_the_limit() -> None:
    clock = FakeClock()
    limiter = CommandLimiter(clock, limit=10, window=1.0, reserved=2)
    done: list[int] = []

    async def go(i: int) -> None:
        await limiter.acquire()
        done.append(i)

    tasks = [asyncio.ensure_future(go(i)) for i in range(20)]
    await clock.settle()
    assert done == list(range(8))
    await clock.advance(1.0)
    assert done == list(range(16))
    await clock.advance(1.0)
    assert done == list(range(20))
    await asyncio.gather(*tasks)
