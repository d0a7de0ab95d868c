"""The outbound limit of one gateway connection: N commands per window, with room kept for heartbeats.

Discord disconnects a connection that sends more than 120 payloads in 60 s (close 4008), heartbeats
included. A burst of commands must therefore never take the slots the next heartbeats need, or the
connection would die as a zombie or be rate-limited: commands may use ``limit - reserved`` slots,
heartbeats all of them.
"""

from __future__ import annotations

import asyncio

from shardrunner.clock import Clock


class CommandLimiter:
    """A sliding-window log of send times; commands wait in FIFO order for a free slot."""

    __slots__ = ("_clock", "_lock", "_sent", "limit", "reserved", "window")

    def __init__(self, clock: Clock, limit: int = 120, window: float = 60.0, reserved: int = 3) -> None:
        if not 0 <= reserved < limit:
            raise ValueError("reserved slots must be fewer than the limit")
        self._clock = clock
        self.limit = limit
        self.window = window
        self.reserved = reserved
        # A list, not a deque: an empty deque is 760 bytes, an empty list 56, and the log holds a
        # few entries a minute on an idle shard (docs/performance.md, decision 12).
        self._sent: list[float] = []
        self._lock = asyncio.Lock()

    def reset(self) -> None:
        """A new connection starts with an empty window."""
        self._sent.clear()

    def _purge(self, now: float) -> None:
        sent = self._sent
        old = 0
        while old < len(sent) and now - sent[old] >= self.window:
            old += 1
        if old:
            del sent[:old]  # send times are in order: the oldest go in one step

    def delay(self, priority: bool = False) -> float:
        """Seconds until a send of this kind is allowed (0: now)."""
        now = self._clock.monotonic()
        self._purge(now)
        allowed = self.limit if priority else self.limit - self.reserved
        excess = len(self._sent) - allowed
        if excess < 0:
            return 0.0
        return self._sent[excess] + self.window - now

    def record(self) -> None:
        """Count one payload as sent now."""
        self._sent.append(self._clock.monotonic())

    def try_acquire(self, priority: bool = False) -> bool:
        """Take a slot now if there is one (heartbeats use this: they never wait)."""
        if self.delay(priority) > 0:
            return False
        self.record()
        return True

    async def acquire(self) -> None:
        """Wait for a command slot, in the order callers arrived."""
        async with self._lock:
            while (wait := self.delay()) > 0:
                await self._clock.sleep(wait)
            self.record()

    @property
    def used(self) -> int:
        self._purge(self._clock.monotonic())
        return len(self._sent)
