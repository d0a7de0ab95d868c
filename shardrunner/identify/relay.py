"""The identify queue seen from a worker: every call relayed to the supervisor's queue over a link.

The worker's link (``shardrunner.cluster``) implements :class:`IdentifyLink` by posting its
messages; this module knows nothing of it, so the queue could as well be relayed over anything else.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from shardrunner.protocol.keys import ConnKey


class IdentifyLink(Protocol):
    """Where the relay posts: one request per identify, then when it went out and how it ended."""

    def request(self, conn: ConnKey) -> None: ...

    def sent(self, conn: ConnKey) -> None: ...

    def done(self, conn: ConnKey, *, ready: bool) -> None: ...


class _Request:
    __slots__ = ("granted", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.granted: asyncio.Future[None] = loop.create_future()
        self.waiters = 0


class RelayIdentifyQueue:
    """An :class:`~shardrunner.identify.protocol.IdentifyQueue` whose grants come from elsewhere.

    :meth:`acquire` posts one request and waits for :meth:`granted`, which the worker calls when the
    grant arrives. A request whose waiter gave up stays standing (a restarted connection asks again
    and finds it); a grant that finds nobody waiting is handed back at once, so that its bucket does
    not wait out its hold time.
    """

    def __init__(self, link: IdentifyLink) -> None:
        self._link = link
        self._requests: dict[ConnKey, _Request] = {}

    @property
    def waiting(self) -> int:
        return sum(1 for r in self._requests.values() if r.waiters)

    async def acquire(self, conn: ConnKey) -> None:
        request = self._requests.get(conn)
        if request is None:
            request = self._requests[conn] = _Request(asyncio.get_running_loop())
            self._link.request(conn)
        request.waiters += 1
        try:
            await asyncio.shield(request.granted)
        finally:
            request.waiters -= 1

    def granted(self, conn: ConnKey) -> None:
        """The grant for ``conn`` arrived."""
        request = self._requests.pop(conn, None)
        if request is not None and request.waiters:
            request.granted.set_result(None)
        else:
            self._link.done(conn, ready=False)  # nobody waits for it any more: hand it back

    def sent(self, conn: ConnKey) -> None:
        self._link.sent(conn)

    def release(self, conn: ConnKey, *, ready: bool) -> None:
        self._link.done(conn, ready=ready)
