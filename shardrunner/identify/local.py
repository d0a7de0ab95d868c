"""The in-process identify queue: who may identify when, for one bot on one host.

Each platform limit (:class:`~shardrunner.identify.protocol.StartLimit`) has its buckets; the
platform says which bucket a connection counts against (Discord: one IDENTIFY per
``shard % max_concurrency`` per 5 seconds, for the whole bot token, whatever the shard set).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from shardrunner.clock import Clock, RealClock
from shardrunner.identify.protocol import BucketOf, StartLimit
from shardrunner.protocol.keys import ConnKey

#: The least margin added to a bucket's window: the gateway measures the window between the
#: IDENTIFYs it *reads*, and a busy gateway (or network) reads one late and the next on time, by
#: more than 10 ms under load (seen in the reshard benchmark against the simulator's short windows).
MIN_MARGIN_S = 0.025


class _Bucket:
    __slots__ = ("held_by", "held_until", "hold", "margin", "next_at", "waiters", "window")

    def __init__(self, window: float, margin: float, hold: float) -> None:
        # ((generation, shard), arrival, conn, future): the lowest shard of the oldest set goes
        # first, so buckets start in shard order.
        self.waiters: list[tuple[tuple[int, int], int, ConnKey, asyncio.Future[None]]] = []
        self.window = window
        self.margin = margin
        self.hold = hold
        self.next_at = 0.0  # earliest next grant: previous grant + window
        self.held_by: ConnKey | None = None
        self.held_until = 0.0  # a grant is held until released, or this deadline


class LocalIdentifyQueue:
    """An in-process identify queue for one bot token.

    A bucket grants the next identify no sooner than its limit's ``window`` (plus a small ``margin``
    for clock and network jitter) after the previous one, and not while the previous connection is
    still identifying, unless it has held its grant for ``hold`` seconds (default: the window)
    without an answer. Waiters of a bucket are served lowest ``(generation, shard)`` first; a queue
    created ``paused`` grants nothing until :meth:`resume`, so that a cluster can collect its
    connections' requests first and start every bucket in shard order, whichever worker happened to
    boot first.
    """

    def __init__(
        self,
        limits: list[StartLimit],
        bucket_of: BucketOf,
        *,
        margin: float | None = None,
        hold: float | None = None,
        clock: Clock | None = None,
        paused: bool = False,
    ) -> None:
        self.limits = {limit.name: limit for limit in limits}
        self._bucket_of = bucket_of
        self._clock = clock or RealClock()
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        for limit in limits:
            if limit.buckets < 1:
                raise ValueError(f"{limit.name}: a limit needs at least one bucket")
            # A little slack for jitter between us and the gateway: 1 % of the window, at least 25 ms.
            slack = (
                margin
                if margin is not None
                else max(limit.window * 0.01, MIN_MARGIN_S)
                if limit.window > 0
                else 0.0
            )
            for index in range(limit.buckets):
                self._buckets[(limit.name, index)] = _Bucket(
                    limit.window, slack, limit.window if hold is None else hold
                )
        self._wakers: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._wake_at: dict[tuple[str, int], float] = {}
        self.paused = paused
        self._arrivals = itertools.count()

    def resume(self) -> None:
        """Start granting (a queue created ``paused`` waits for this)."""
        self.paused = False
        for name in self._buckets:
            self._pump(name)

    @property
    def waiting(self) -> int:
        return sum(1 for b in self._buckets.values() for w in b.waiters if not w[3].done())

    def bucket_of(self, conn: ConnKey) -> tuple[str, int]:
        name = self._bucket_of(conn)
        if name not in self._buckets:
            raise ValueError(f"{conn}: no identify limit has bucket {name}")
        return name

    async def acquire(self, conn: ConnKey) -> None:
        name = self.bucket_of(conn)
        bucket = self._buckets[name]
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(bucket.waiters, ((conn.generation, conn.shard), next(self._arrivals), conn, fut))
        self._pump(name)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and bucket.held_by == conn:
                # Granted, but the connection gave up before identifying: let the next one go.
                self.release(conn, ready=False)
            else:
                bucket.waiters = [w for w in bucket.waiters if w[3] is not fut]
                heapq.heapify(bucket.waiters)
            raise

    def sent(self, conn: ConnKey) -> None:
        """The IDENTIFY of ``conn`` went out now: its bucket's window counts from here.

        A queue in another process than the connection grants before the identify is sent;
        counting the window from the send keeps identifies in order and spaced as the gateway sees
        them, however late the connection's process was scheduled.
        """
        name = self.bucket_of(conn)
        bucket = self._buckets[name]
        bucket.next_at = max(bucket.next_at, self._clock.monotonic() + bucket.window + bucket.margin)
        self._pump(name)

    def release(self, conn: ConnKey, *, ready: bool) -> None:
        name = self.bucket_of(conn)
        bucket = self._buckets[name]
        if bucket.held_by == conn:
            bucket.held_by = None
            self._pump(name)

    def _pump(self, name: tuple[str, int]) -> None:
        bucket = self._buckets[name]
        while bucket.waiters and bucket.waiters[0][3].done():
            heapq.heappop(bucket.waiters)  # cancelled waiters
        if not bucket.waiters or self.paused:
            return
        now = self._clock.monotonic()
        if bucket.held_by is not None and now >= bucket.held_until:
            bucket.held_by = None  # no answer in time: do not block the bucket forever
        ready_at = bucket.next_at if bucket.held_by is None else max(bucket.next_at, bucket.held_until)
        if now >= ready_at and bucket.held_by is None:
            _, _, conn, fut = heapq.heappop(bucket.waiters)
            bucket.held_by = conn
            bucket.held_until = now + bucket.hold
            bucket.next_at = now + bucket.window + bucket.margin
            fut.set_result(None)
            ready_at = bucket.next_at
            if not bucket.waiters:
                return
        waker = self._wakers.get(name)
        if waker is not None and not waker.done():
            if self._wake_at[name] <= ready_at:
                return
            waker.cancel()  # a release moved the next grant earlier
        self._wake_at[name] = ready_at
        self._wakers[name] = asyncio.ensure_future(self._wake(name, ready_at - now))

    async def _wake(self, name: tuple[str, int], delay: float) -> None:
        await self._clock.sleep(delay)
        self._wakers.pop(name, None)
        self._pump(name)
