"""Time as the gateway code sees it, so that tests can drive it with a fake clock."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """Monotonic time, sleeping and randomness: everything in a shard that depends on when or luck."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def random(self) -> float: ...


class RealClock:
    """The event loop's time and ``random``."""

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def random(self) -> float:
        return self._rng.random()


async def wait_with_timeout(clock: Clock, awaitable: Awaitable[T], timeout: float) -> T:
    """``awaitable``'s result, or TimeoutError once ``timeout`` seconds passed on ``clock``."""
    task = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(timeout))
    try:
        done, _ = await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        raise TimeoutError(f"no result within {timeout} s")
    finally:
        for t in (task, timer):
            if not t.done():
                t.cancel()
