"""Time as the gateway code sees it, so that tests can drive it with a fake clock."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

T = TypeVar("T")

#: The randomness of every :class:`RealClock` made without its own: one Mersenne Twister's state is
#: 2.5 KiB, a shard's largest object after the transport's (docs/performance.md, decision 12).
_SHARED_RNG = random.Random()


class Timer(Protocol):
    """A callback scheduled by :meth:`Clock.call_later`."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time, sleeping and randomness: everything in a shard that depends on when or luck."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback()`` once, ``seconds`` from now: cheaper than a task that sleeps."""

    def random(self) -> float: ...


class RealClock:
    """The event loop's time and ``random``."""

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or _SHARED_RNG

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)

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


class Flag:
    """An ``asyncio.Event`` that costs nothing until something waits on it.

    ``asyncio.Event`` makes a deque (760 bytes) and an instance dict up front; a shard held two
    and the worker one more per connection, almost always unawaited (docs/performance.md,
    decision 12). Waiters are futures of the running loop, woken in order by :meth:`set`.
    """

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> None:
        if self._value:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        try:
            await fut
        finally:
            waiters = self._waiters
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
