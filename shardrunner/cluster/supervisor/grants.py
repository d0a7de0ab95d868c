"""Identify grants: the workers' requests against the cluster's one identify queue, by ConnKey.

A connection asks once per attempt; a request that is already waiting for the same worker is not
queued twice. When a grant comes and its asker is gone (or unreachable), the grant is released at
once so the next connection goes. The queue starts paused and opens when every connection that must
identify has asked (or after :data:`IDENTIFY_GATE_S`), so buckets start in shard order whichever
worker booted first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

from shardrunner.clock import Clock, RealClock
from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.waits import WaitHistogram
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.supervisor")

#: The first identifies wait at most this long for every connection to ask, to start in shard order.
IDENTIFY_GATE_S: Final = 5.0


#: A grant whose hold ran out before it could be sent on (the supervisor stalled) is asked for again,
#: at most this many times in a row.
STALE_RETRIES: Final = 3


class GatedQueue(Protocol):
    """The identify queue as the grants use it: the local one, or Redis's (which also says
    whether a grant is still within its hold: ``fresh``)."""

    @property
    def paused(self) -> bool: ...
    @property
    def waiting(self) -> int: ...
    def resume(self) -> None: ...
    async def near(self, conn: ConnKey) -> None: ...
    async def acquire(self, conn: ConnKey) -> None: ...
    def sent(self, conn: ConnKey) -> None: ...
    def release(self, conn: ConnKey, *, ready: bool) -> None: ...


class IdentifyGrants:
    """The pending grants of a cluster, keyed by ConnKey."""

    def __init__(
        self,
        queue: GatedQueue,
        send: Callable[[bytes, m.Message], bool],
        *,
        first_identifies: int,
        opened_at: float,
        ready: Callable[[], bool] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.queue = queue
        self._clock = clock or RealClock()
        #: Per platform, how long its granted identifies waited (from the request to the grant).
        self.waits: dict[str, WaitHistogram] = {}
        #: Several hosts: the gate waits for this too (every block has a holder), and opens only
        #: once :meth:`expect` armed it.
        self._ready = ready
        self._armed = ready is None
        self._send = send
        #: conn -> the identity of the worker whose request waits in the queue.
        self.pending: dict[ConnKey, bytes] = {}
        self._first = first_identifies
        self._opened_at = opened_at
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The task of each pending request, and the requests from connected connections.
        self._by_conn: dict[ConnKey, asyncio.Task[Any]] = {}
        self._present: set[ConnKey] = set()

    def open_gate(self, now: float) -> None:
        if not self.queue.paused or not self._armed:
            return
        ready = self._ready is None or self._ready()
        if (ready and self.queue.waiting >= self._first) or now - self._opened_at > IDENTIFY_GATE_S:
            self.queue.resume()

    def expect(self, identifies: int, now: float) -> None:
        """Several hosts: this host's first claims need ``identifies`` identifies; the gate opens once
        they all asked and every host's are in line (or after :data:`IDENTIFY_GATE_S`)."""
        if self.queue.paused and not self._armed:
            self._armed = True
            self._first = identifies
            self._opened_at = now

    def request(self, identity: bytes, conn: ConnKey, *, near: bool = False) -> None:
        """``conn`` of worker ``identity`` asks to identify: ``near`` (not connected yet) stands in
        line and is told when its turn is near; else (connected) it waits for its grant."""
        if self.pending.get(conn) == identity:
            if near or conn in self._present:
                return  # asked already
        else:
            self._cancel(conn)  # another worker's request: no longer its
        self.pending[conn] = identity
        if not near:
            self._present.add(conn)
        task = asyncio.ensure_future(self._near(identity, conn) if near else self._grant(identity, conn))
        self._by_conn[conn] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _cancel(self, conn: ConnKey) -> None:
        self._present.discard(conn)
        task = self._by_conn.pop(conn, None)
        if task is not None:
            task.cancel()

    async def _near(self, identity: bytes, conn: ConnKey) -> None:
        await self.queue.near(conn)
        if self.pending.get(conn) == identity:
            self._send(identity, m.IdentifyNear(conn))

    async def _grant(self, identity: bytes, conn: ConnKey) -> None:
        fresh = getattr(self.queue, "fresh", None)
        asked_at = self._clock.monotonic()
        for _ in range(STALE_RETRIES):
            await self.queue.acquire(conn)
            if fresh is None or fresh(conn):
                break
            # Its hold ran out before it came back here (this host stalled): identifying on it
            # could break the bucket's window; give it back and wait in line again.
            log.warning("%s: an identify grant came back too late to use; asking again", conn)
            self.queue.release(conn, ready=False)
        asker = self.pending.get(conn)
        if asker == identity:
            del self.pending[conn]
            self._present.discard(conn)
            self._by_conn.pop(conn, None)
        if asker != identity or not self._send(identity, m.IdentifyGrant(conn)):
            self.queue.release(conn, ready=False)  # the asker is gone: let the next one go
            return
        waits = self.waits.get(conn.platform) or self.waits.setdefault(conn.platform, WaitHistogram())
        waits.observe(self._clock.monotonic() - asked_at)

    def sent(self, conn: ConnKey) -> None:
        self.queue.sent(conn)

    def done(self, conn: ConnKey, *, ready: bool) -> None:
        """The identify of ``conn`` ended, or ``conn`` left the line without a grant."""
        if self.pending.pop(conn, None) is not None:
            self._cancel(conn)
        self.queue.release(conn, ready=ready)

    def forget(self, identity: bytes) -> None:
        """A worker is gone: its waiting requests are granted to nobody."""
        for conn, who in list(self.pending.items()):
            if who == identity:
                del self.pending[conn]
                self._cancel(conn)
                self.queue.release(conn, ready=False)  # out of the line

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
