"""The identify queue seen from a worker: every call relayed to the supervisor's queue over a link.

The worker's link (``shardrunner.cluster``) implements :class:`IdentifyLink` by posting its
messages; this module knows nothing of it, so the queue could as well be relayed over anything else.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from shardrunner.protocol.keys import ConnKey


class IdentifyLink(Protocol):
    """Where the relay posts: a request per identify (first ``near``: not connected yet, then
    connected), then when it went out and how it ended (or that it left the line)."""

    def request(self, conn: ConnKey, *, near: bool = False) -> None: ...

    def sent(self, conn: ConnKey) -> None: ...

    def done(self, conn: ConnKey, *, ready: bool) -> None: ...


class _Request:
    __slots__ = ("granted", "near", "present", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.near: asyncio.Future[None] = loop.create_future()
        self.granted: asyncio.Future[None] = loop.create_future()
        self.present = False  # asked as connected
        self.waiters = 0


class RelayIdentifyQueue:
    """An :class:`~shardrunner.identify.protocol.IdentifyQueue` whose grants come from elsewhere.

    :meth:`near` posts a request ``near`` and waits for :meth:`nearby`; :meth:`acquire` posts one
    request (the connection is connected) and waits for :meth:`granted`, which the worker calls
    when the grant arrives. A request whose waiter gave up stays standing (a restarted connection
    asks again and finds it) until :meth:`release`; a grant that finds nobody waiting is handed back
    at once, so that its bucket does not wait out its hold time.
    """

    def __init__(self, link: IdentifyLink) -> None:
        self._link = link
        self._requests: dict[ConnKey, _Request] = {}

    @property
    def waiting(self) -> int:
        return sum(1 for r in self._requests.values() if r.waiters)

    async def near(self, conn: ConnKey) -> None:
        request = self._requests.get(conn)
        if request is None:
            request = self._requests[conn] = _Request(asyncio.get_running_loop())
            self._link.request(conn, near=True)
        await asyncio.shield(request.near)

    def nearby(self, conn: ConnKey) -> None:
        """The supervisor says the turn of ``conn`` is near."""
        request = self._requests.get(conn)
        if request is not None and not request.near.done():
            request.near.set_result(None)

    async def acquire(self, conn: ConnKey) -> None:
        request = self._requests.get(conn)
        if request is None:
            request = self._requests[conn] = _Request(asyncio.get_running_loop())
        if not request.present:
            request.present = True
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
        request = self._requests.pop(conn, None)
        if request is not None:  # it leaves the line
            for fut in (request.near, request.granted):
                if not fut.done():
                    fut.cancel()
        self._link.done(conn, ready=ready)


class BudgetLink(Protocol):
    """Where the budget relay posts: a request, then whether its uses were written or given back."""

    def request(self, request: int, name: str, key: str, n: int) -> None: ...

    def used(self, request: int) -> None: ...

    def cancel(self, request: int) -> None: ...


class RelayTicket:
    """Granted uses of a budget held by the supervisor: :meth:`used` or :meth:`cancel` tell it."""

    __slots__ = ("_done", "_link", "request")

    def __init__(self, link: BudgetLink, request: int) -> None:
        self._link = link
        self.request = request
        self._done = False

    def used(self) -> None:
        if not self._done:
            self._done = True
            self._link.used(self.request)

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            self._link.cancel(self.request)


class RelayBudgets:
    """Budgets (:mod:`shardrunner.identify.budget`) whose queue is the supervisor's: every
    account's budget is one for the whole cluster, whichever worker its connections run in.

    :meth:`acquire` posts a request and waits for :meth:`granted`; a waiter that gives up cancels
    its request (and a grant that then arrives is handed back).
    """

    def __init__(self, link: BudgetLink) -> None:
        self._link = link
        self._next = 0
        self._waiting: dict[int, asyncio.Future[RelayTicket]] = {}

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def acquire(self, name: str, key: str, n: int = 1) -> RelayTicket:
        self._next += 1
        request = self._next
        fut: asyncio.Future[RelayTicket] = asyncio.get_running_loop().create_future()
        self._waiting[request] = fut
        self._link.request(request, name, key, n)
        try:
            return await fut
        except asyncio.CancelledError:
            self._waiting.pop(request, None)
            if fut.done() and not fut.cancelled():
                fut.result().cancel()
            else:
                self._link.cancel(request)
            raise

    def granted(self, request: int, refused: str | None = None) -> None:
        """The grant of ``request`` arrived (or its refusal: the waiter gets a ValueError)."""
        fut = self._waiting.pop(request, None)
        if refused is not None:
            if fut is not None and not fut.done():
                fut.set_exception(ValueError(refused))
        elif fut is None or fut.done():
            self._link.cancel(request)  # nobody waits for it any more: hand it back
        else:
            fut.set_result(RelayTicket(self._link, request))
