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
from typing import Any, Final

from shardrunner.cluster import messages as m
from shardrunner.identify.local import LocalIdentifyQueue
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.supervisor")

#: The first identifies wait at most this long for every connection to ask, to start in shard order.
IDENTIFY_GATE_S: Final = 5.0


class IdentifyGrants:
    """The pending grants of a cluster, keyed by ConnKey."""

    def __init__(
        self,
        queue: LocalIdentifyQueue,
        send: Callable[[bytes, m.Message], bool],
        *,
        first_identifies: int,
        opened_at: float,
    ) -> None:
        self.queue = queue
        self._send = send
        #: conn -> the identity of the worker whose request waits in the queue.
        self.pending: dict[ConnKey, bytes] = {}
        self._first = first_identifies
        self._opened_at = opened_at
        self._tasks: set[asyncio.Task[Any]] = set()

    def open_gate(self, now: float) -> None:
        if self.queue.paused and (
            self.queue.waiting >= self._first or now - self._opened_at > IDENTIFY_GATE_S
        ):
            self.queue.resume()

    def request(self, identity: bytes, conn: ConnKey) -> None:
        if self.pending.get(conn) == identity:
            return
        self.pending[conn] = identity
        task = asyncio.ensure_future(self._grant(identity, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _grant(self, identity: bytes, conn: ConnKey) -> None:
        await self.queue.acquire(conn)
        asker = self.pending.get(conn)
        if asker == identity:
            del self.pending[conn]
        if asker != identity or not self._send(identity, m.IdentifyGrant(conn)):
            self.queue.release(conn, ready=False)  # the asker is gone: let the next one go

    def sent(self, conn: ConnKey) -> None:
        self.queue.sent(conn)

    def done(self, conn: ConnKey, *, ready: bool) -> None:
        self.queue.release(conn, ready=ready)

    def forget(self, identity: bytes) -> None:
        """A worker is gone: its waiting requests are granted to nobody."""
        for conn, who in list(self.pending.items()):
            if who == identity:
                del self.pending[conn]

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
