"""Identify queues: who may identify when.

Discord allows one IDENTIFY per bucket (``shard_id % max_concurrency``) per 5 seconds, for the whole
bot token, across every process and host. A shard awaits :meth:`IdentifyQueue.acquire` before it
identifies and reports the outcome with :meth:`IdentifyQueue.release` when READY or op 9 arrives (or
the attempt failed). Behind this interface the cluster plugs a process-wide or a networked queue.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Protocol

from shardrunner.clock import Clock, RealClock
from shardrunner.protocol.discord import IDENTIFY_WINDOW_S


class IdentifyQueue(Protocol):
    """Grants identify permission, one shard at a time per bucket."""

    async def acquire(self, shard_id: int) -> None:
        """Wait until ``shard_id`` may send IDENTIFY now."""

    def release(self, shard_id: int, *, ready: bool) -> None:
        """The identify of ``shard_id`` ended: READY (``ready=True``), op 9 or a lost connection."""


class _Bucket:
    __slots__ = ("held_by", "held_until", "next_at", "waiters")

    def __init__(self) -> None:
        # (shard id, arrival, future): the lowest shard id goes first, so buckets start in order.
        self.waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self.next_at = 0.0  # earliest next grant: previous grant + window
        self.held_by: int | None = None
        self.held_until = 0.0  # a grant is held until released, or this deadline


class LocalIdentifyQueue:
    """An in-process identify queue for one bot token.

    A bucket grants the next identify no sooner than ``window`` (plus a small ``margin`` for clock
    and network jitter) after the previous one, and not while the previous shard is still
    identifying, unless that shard has held its grant for ``hold`` seconds without an answer.
    Waiters of a bucket are served lowest shard id first; a queue created ``paused`` grants nothing
    until :meth:`resume`, so that a cluster can collect its shards' requests first and start every
    bucket in shard order, whichever worker happened to boot first.
    """

    def __init__(
        self,
        max_concurrency: int = 1,
        window: float = IDENTIFY_WINDOW_S,
        *,
        margin: float | None = None,
        hold: float | None = None,
        clock: Clock | None = None,
        paused: bool = False,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self.window = window
        # A little slack for jitter between us and the gateway: 1 % of the window, at least 10 ms.
        self.margin = (max(window * 0.01, 0.01) if window > 0 else 0.0) if margin is None else margin
        self.hold = window if hold is None else hold
        self._clock = clock or RealClock()
        self._buckets = [_Bucket() for _ in range(max_concurrency)]
        self._wakers: list[asyncio.Task[None] | None] = [None] * max_concurrency
        self._wake_at = [0.0] * max_concurrency
        self.paused = paused
        self._arrivals = itertools.count()

    def resume(self) -> None:
        """Start granting (a queue created ``paused`` waits for this)."""
        self.paused = False
        for index in range(self.max_concurrency):
            self._pump(index)

    @property
    def waiting(self) -> int:
        return sum(1 for b in self._buckets for w in b.waiters if not w[2].done())

    def bucket_of(self, shard_id: int) -> int:
        return shard_id % self.max_concurrency

    async def acquire(self, shard_id: int) -> None:
        index = self.bucket_of(shard_id)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._buckets[index].waiters, (shard_id, next(self._arrivals), fut))
        self._pump(index)
        try:
            await fut
        except asyncio.CancelledError:
            bucket = self._buckets[index]
            if fut.done() and not fut.cancelled() and bucket.held_by == shard_id:
                # Granted, but the shard gave up before identifying: let the next one go.
                self.release(shard_id, ready=False)
            else:
                bucket.waiters = [w for w in bucket.waiters if w[2] is not fut]
                heapq.heapify(bucket.waiters)
            raise

    def sent(self, shard_id: int) -> None:
        """The IDENTIFY of ``shard_id`` went out now: its bucket's window counts from here.

        A queue in another process than the shard grants before the identify is sent; counting the
        window from the send keeps identifies in order and spaced as the gateway sees them, however
        late the shard's process was scheduled.
        """
        index = self.bucket_of(shard_id)
        bucket = self._buckets[index]
        bucket.next_at = max(bucket.next_at, self._clock.monotonic() + self.window + self.margin)
        self._pump(index)

    def release(self, shard_id: int, *, ready: bool) -> None:
        index = self.bucket_of(shard_id)
        bucket = self._buckets[index]
        if bucket.held_by == shard_id:
            bucket.held_by = None
            self._pump(index)

    def _pump(self, index: int) -> None:
        bucket = self._buckets[index]
        while bucket.waiters and bucket.waiters[0][2].done():
            heapq.heappop(bucket.waiters)  # cancelled waiters
        if not bucket.waiters or self.paused:
            return
        now = self._clock.monotonic()
        if bucket.held_by is not None and now >= bucket.held_until:
            bucket.held_by = None  # no answer in time: do not block the bucket forever
        ready_at = bucket.next_at if bucket.held_by is None else max(bucket.next_at, bucket.held_until)
        if now >= ready_at and bucket.held_by is None:
            shard_id, _, fut = heapq.heappop(bucket.waiters)
            bucket.held_by = shard_id
            bucket.held_until = now + self.hold
            bucket.next_at = now + self.window + self.margin
            fut.set_result(None)
            ready_at = bucket.next_at
            if not bucket.waiters:
                return
        waker = self._wakers[index]
        if waker is not None and not waker.done():
            if self._wake_at[index] <= ready_at:
                return
            waker.cancel()  # a release moved the next grant earlier
        self._wake_at[index] = ready_at
        self._wakers[index] = asyncio.ensure_future(self._wake(index, ready_at - now))

    async def _wake(self, index: int, delay: float) -> None:
        await self._clock.sleep(delay)
        self._wakers[index] = None
        self._pump(index)
