"""Budget grants: the workers' requests against the cluster's budgets (Twitch's JOIN and login
limits per account), held by the supervisor so that a budget counts every worker's uses.

A worker asks (``BudgetRequest``); the grant (``BudgetGrant``) comes when the uses fit; the worker
says when it wrote them (``BudgetUsed``: the window counts from there) or that it will not
(``BudgetCancel``). A worker that goes away with granted uses it had not reported is taken to have
written them as it went, so the budget never counts fewer uses than the server saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from shardrunner.cluster import messages as m
from shardrunner.identify.budget import Budget, UseTicket

log = logging.getLogger("shardrunner.supervisor")


class BudgetSource(Protocol):
    """Where the grants take uses: a :class:`BudgetQueue`, or Redis's (several hosts)."""

    @property
    def budgets(self) -> dict[str, Budget]: ...
    async def acquire(self, name: str, key: str, n: int = 1) -> UseTicket: ...


class BudgetGrants:
    """Every worker's pending and granted budget uses, by (worker identity, request number)."""

    def __init__(self, queue: BudgetSource, send: Callable[[bytes, m.Message], bool]) -> None:
        self.queue = queue
        self._send = send
        self._asking: dict[tuple[bytes, int], asyncio.Task[None]] = {}
        self.granted: dict[tuple[bytes, int], UseTicket] = {}

    def request(self, identity: bytes, message: m.BudgetRequest) -> None:
        key = (identity, message.request)
        if key in self._asking or key in self.granted:
            return
        if message.name not in self.queue.budgets:
            log.warning("a worker asked for an unknown budget %r", message.name)
            self._send(identity, m.BudgetGrant(message.request, refused=f"unknown budget {message.name!r}"))
            return
        self._asking[key] = asyncio.ensure_future(self._grant(key, message))

    async def _grant(self, key: tuple[bytes, int], message: m.BudgetRequest) -> None:
        try:
            ticket = await self.queue.acquire(message.name, message.key, message.n)
        except ValueError as exc:
            self._asking.pop(key, None)
            self._send(key[0], m.BudgetGrant(message.request, refused=str(exc)))
            return
        self._asking.pop(key, None)
        if self._send(key[0], m.BudgetGrant(message.request)):
            self.granted[key] = ticket
        else:
            ticket.cancel()  # the asker is gone

    def used(self, identity: bytes, request: int) -> None:
        ticket = self.granted.pop((identity, request), None)
        if ticket is not None:
            ticket.used()

    def cancel(self, identity: bytes, request: int) -> None:
        task = self._asking.pop((identity, request), None)
        if task is not None:
            task.cancel()
        ticket = self.granted.pop((identity, request), None)
        if ticket is not None:
            ticket.cancel()

    def forget(self, identity: bytes) -> None:
        """A worker is gone: what it waited for goes to nobody; what it held counts as written now."""
        for key in [k for k in self._asking if k[0] == identity]:
            self._asking.pop(key).cancel()
        for key in [k for k in self.granted if k[0] == identity]:
            self.granted.pop(key).used()

    def close(self) -> None:
        for task in self._asking.values():
            task.cancel()
        close = getattr(self.queue, "close", None)
        if close is not None and not asyncio.iscoroutinefunction(close):
            with contextlib.suppress(Exception):
                close()  # the local queue; Redis's is closed (awaited) by the supervisor
