"""The connect gate: at most so many handshakes in flight in one process, resumes first.

Ten thousand shards that reconnect at once (every connection dropped, a worker's shards adopted
elsewhere) would otherwise open ten thousand TCP and TLS handshakes in the same instant: on a busy
machine many time out and retry, which only adds to the herd. The gate lets ``limit`` connections
handshake at a time (from the connect to HELLO); the others wait their turn, resumes before fresh
connects (a resume costs the platform's start limits nothing, and its session's events are
waiting), each kind first come, first served.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class ConnectGate:
    """At most ``limit`` handshakes at once: :meth:`enter` before connecting, :meth:`leave` once the
    handshake is over (HELLO, or the connect failed). ``limit`` may change while running (:meth:`resize`)."""

    __slots__ = ("_arrivals", "_waiters", "in_flight", "limit", "most")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the connect gate needs a limit of at least 1")
        self.limit = limit
        self.in_flight = 0
        #: The most handshakes in flight at once so far.
        self.most = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, fut in self._waiters if not fut.done())

    async def enter(self, *, resume: bool) -> None:
        """Wait for a handshake slot (a resume goes before every fresh connect waiting)."""
        if self.in_flight < self.limit and not self._waiters:
            self._take()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (0 if resume else 1, next(self._arrivals), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.leave()  # given the slot as it gave up: pass it on
            raise

    def leave(self) -> None:
        """A handshake is over: the next waiter goes."""
        self.in_flight -= 1
        self._pass_on()

    def resize(self, limit: int) -> None:
        """A new ``limit`` (waiters go at once if it grew)."""
        if limit < 1:
            raise ValueError("the connect gate needs a limit of at least 1")
        self.limit = limit
        self._pass_on()

    def _take(self) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)

    def _pass_on(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                self._take()
                fut.set_result(None)
