"""The in-process identify queue: who may identify when, for one bot on one host.

Each platform limit (:class:`~shardrunner.identify.protocol.StartLimit`) has its buckets; the
platform says which bucket a connection counts against (Discord: one IDENTIFY per
``shard % max_concurrency`` per 5 seconds, for the whole bot token, whatever the shard set).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math

from shardrunner.clock import Clock, RealClock
from shardrunner.identify.protocol import BucketOf, StartLimit
from shardrunner.protocol.keys import ConnKey

#: The least margin added to a bucket's window: the gateway measures the window between the
#: IDENTIFYs it *reads*, and a busy gateway (or network) reads one late and the next on time, by
#: more than 10 ms under load (seen in the reshard benchmark against the simulator's short windows).
MIN_MARGIN_S = 0.025

#: A grant not yet reported sent is held this much longer than ``hold``: its IDENTIFY may be on
#: its way (a busy worker sends it, and says so, late), and granting the next one meanwhile could
#: put two of a bucket's identifies less than a window apart.
UNSENT_GRACE_S = 2.0


class _Waiter:
    """One connection in line: ``near`` is set when its turn is near (it may connect now),
    ``granted`` when it may identify; only a ``present`` waiter (in :meth:`acquire`) is granted."""

    __slots__ = ("conn", "granted", "near", "order", "present")

    def __init__(self, conn: ConnKey, order: tuple[int, int, int], loop: asyncio.AbstractEventLoop) -> None:
        self.conn = conn
        self.order = order
        self.near: asyncio.Future[None] = loop.create_future()
        self.granted: asyncio.Future[None] = loop.create_future()
        self.present = False


class _Bucket:
    __slots__ = ("held_by", "held_until", "hold", "margin", "next_at", "waiters", "window")

    def __init__(self, window: float, margin: float, hold: float) -> None:
        # In line by (generation, shard, arrival): the lowest shard of the oldest set goes first, so
        # buckets start in shard order.
        self.waiters: list[_Waiter] = []
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
    without an answer after its send (:data:`UNSENT_GRACE_S` more before it). Waiters of a bucket
    are served lowest ``(generation, shard)`` first; a queue created ``paused`` grants nothing
    until :meth:`resume`, so that a cluster can collect its connections' requests first and start
    every bucket in shard order, whichever worker happened to boot first.

    A connection that is not connected yet waits in line with :meth:`near`: it returns once the
    connection's grant is due within the limit's ``lead`` seconds (its place in line times the
    window, from the bucket's next grant), so that it connects then and its handshake overlaps
    the wait; it then calls :meth:`acquire`. Only connections in :meth:`acquire` are granted: when
    the head of the line is still connecting at the window's end, the next one that is connected
    goes (and the head keeps its place), so a slow or failed handshake never holds up the bucket.
    A connection in line that will not acquire (its connect failed) leaves it with :meth:`release`.
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
        self._leads: dict[tuple[str, int], float] = {}
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
                self._leads[(limit.name, index)] = limit.lead
        #: Each connection in line (from near() or acquire() until granted or released).
        self._line: dict[ConnKey, _Waiter] = {}
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
        return len(self._line)

    def bucket_of(self, conn: ConnKey) -> tuple[str, int]:
        name = self._bucket_of(conn)
        if name not in self._buckets:
            raise ValueError(f"{conn}: no identify limit has bucket {name}")
        return name

    def _enter(self, conn: ConnKey) -> tuple[tuple[str, int], _Waiter]:
        name = self.bucket_of(conn)
        waiter = self._line.get(conn)
        if waiter is None:
            order = (conn.generation, conn.shard, next(self._arrivals))
            waiter = self._line[conn] = _Waiter(conn, order, asyncio.get_running_loop())
            bisect.insort(self._buckets[name].waiters, waiter, key=_order)
        return name, waiter

    async def near(self, conn: ConnKey) -> None:
        """Stand in line; return when the turn of ``conn`` is near (connect now, then acquire).
        Cancelled, it leaves the line."""
        name, waiter = self._enter(conn)
        self._pump(name)
        try:
            await asyncio.shield(waiter.near)
        except asyncio.CancelledError:
            if not waiter.present:
                self._leave(name, waiter)
            raise

    async def acquire(self, conn: ConnKey) -> None:
        name, waiter = self._enter(conn)
        waiter.present = True
        self._pump(name)
        bucket = self._buckets[name]
        try:
            await asyncio.shield(waiter.granted)
        except asyncio.CancelledError:
            if waiter.granted.done() and bucket.held_by == conn:
                # Granted, but the connection gave up before identifying: let the next one go.
                self.release(conn, ready=False)
            else:
                self._leave(name, waiter)
            raise

    def _leave(self, name: tuple[str, int], waiter: _Waiter) -> None:
        if self._line.get(waiter.conn) is waiter:
            del self._line[waiter.conn]
            bucket = self._buckets[name]
            bucket.waiters.remove(waiter)
            for fut in (waiter.near, waiter.granted):
                if not fut.done():
                    fut.cancel()
            self._pump(name)

    def sent(self, conn: ConnKey) -> None:
        """The IDENTIFY of ``conn`` went out now: its bucket's window counts from here.

        A queue in another process than the connection grants before the identify is sent;
        counting the window from the send keeps identifies in order and spaced as the gateway sees
        them, however late the connection's process was scheduled.
        """
        name = self.bucket_of(conn)
        bucket = self._buckets[name]
        now = self._clock.monotonic()
        bucket.next_at = max(bucket.next_at, now + bucket.window + bucket.margin)
        if bucket.held_by == conn:
            bucket.held_until = min(bucket.held_until, now + bucket.hold)
        self._pump(name)

    def release(self, conn: ConnKey, *, ready: bool) -> None:
        """The identify of ``conn`` ended; or ``conn``, in line and not granted, leaves the line."""
        name = self.bucket_of(conn)
        bucket = self._buckets[name]
        waiter = self._line.get(conn)
        if waiter is not None:
            self._leave(name, waiter)
        if bucket.held_by == conn:
            bucket.held_by = None
            self._pump(name)

    def _pump(self, name: tuple[str, int]) -> None:
        bucket = self._buckets[name]
        if not bucket.waiters or self.paused:
            return
        now = self._clock.monotonic()
        if bucket.held_by is not None and now >= bucket.held_until:
            bucket.held_by = None  # no answer in time: do not block the bucket forever
        ready_at = bucket.next_at if bucket.held_by is None else max(bucket.next_at, bucket.held_until)
        if now >= ready_at and bucket.held_by is None:
            waiter = next((w for w in bucket.waiters if w.present), None)
            if waiter is not None:
                bucket.waiters.remove(waiter)
                del self._line[waiter.conn]
                bucket.held_by = waiter.conn
                bucket.held_until = now + bucket.hold + UNSENT_GRACE_S
                bucket.next_at = now + bucket.window + bucket.margin
                if not waiter.near.done():
                    waiter.near.set_result(None)
                waiter.granted.set_result(None)
                ready_at = max(bucket.next_at, bucket.held_until)
        # Tell the first in line that their turn is near: the i-th is due about i windows after
        # the next grant.
        lead = self._leads[name]
        step = bucket.window + bucket.margin
        wake_at = ready_at if any(w.present for w in bucket.waiters) else math.inf
        for i, waiter in enumerate(bucket.waiters):
            due = max(ready_at, now) + i * step
            if due - lead > now:
                # Past the grant time (the head still connecting), who is near changes only with
                # a grant or a leave, which pump anyway: no timer that would slide with the clock.
                if ready_at > now:
                    wake_at = min(wake_at, due - lead)
                break
            if not waiter.near.done():
                waiter.near.set_result(None)
        if wake_at == math.inf:
            return
        waker = self._wakers.get(name)
        if waker is not None and not waker.done():
            if self._wake_at[name] <= wake_at:
                return
            waker.cancel()  # a release moved the next grant earlier
        self._wake_at[name] = wake_at
        self._wakers[name] = asyncio.ensure_future(self._wake(name, wake_at - now))

    async def _wake(self, name: tuple[str, int], delay: float) -> None:
        await self._clock.sleep(delay)
        self._wakers.pop(name, None)
        self._pump(name)


def _order(waiter: _Waiter) -> tuple[int, int, int]:
    return waiter.order
