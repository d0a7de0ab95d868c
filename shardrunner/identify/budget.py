"""Sliding-window budgets: at most ``limit`` uses in any ``window`` seconds, per key.

Discord's identify limit is one start per bucket per window (:mod:`.local`). Twitch's limits are
budgets: 20 JOINs per 10 s per account, 20 logins per 10 s, counted across every connection and
worker of the account. A use is granted by :meth:`BudgetQueue.acquire`, which returns a
:class:`Ticket`. The caller stamps the ticket in the same step as it writes what the budget
counts (:meth:`Ticket.used`), so the window counts from the write, as the server measures it. It
cancels the ticket when nothing was written.

A granted ticket not yet stamped holds its place with no end, so the budget is never exceeded,
however late the write. Waiters on one key are served in the order they asked. A request for more
uses than the limit is refused at once (ValueError): it could never be granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from shardrunner.clock import Clock, RealClock, wait_with_timeout


def margin_for(window: float) -> float:
    """Seconds added to every use's window of ``window`` seconds: the server counts the writes when
    it reads them, and reads some later than others (a busy server, a queue on the path), so that an
    early write read late and a later write read at once would look closer than they were. 5% of
    the window, at least 0.1 s and at most 0.5 s (Twitch's JOIN window of 10 s: 0.5 s; a channel's
    1 s interval: 0.1 s). Measured: 25 ms was not enough for 40 connections joining at once."""
    return min(0.5, max(0.1, 0.05 * window))


@dataclass(frozen=True, slots=True)
class Budget:
    """At most ``limit`` uses in any ``window`` seconds, for each key (Twitch: per account)."""

    name: str
    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window < 0:
            raise ValueError(f"{self.name}: a budget needs a limit of at least 1 and a window of at least 0")


class Ticket:
    """``n`` granted uses of one budget's key: stamp them with :meth:`used`, or :meth:`cancel`."""

    __slots__ = ("_ledger", "ends", "n")

    def __init__(self, ledger: _Ledger, n: int) -> None:
        self._ledger = ledger
        self.n = n
        #: When the uses stop counting (infinite until stamped; the past once cancelled).
        self.ends = math.inf

    def used(self, now: float | None = None) -> None:
        """The uses were written now: they count for the budget's window from here."""
        ledger = self._ledger
        at = ledger.clock.monotonic() if now is None else now
        self.ends = at + ledger.window + ledger.margin
        ledger.changed()

    def cancel(self) -> None:
        """Nothing was written: the uses are given back."""
        self.ends = -math.inf
        self._ledger.changed()


class UseTicket(Protocol):
    """What a caller does with granted uses (a :class:`Ticket`, or the relay's)."""

    def used(self) -> None: ...
    def cancel(self) -> None: ...


class Budgets(Protocol):
    """Where connections take their uses: a :class:`BudgetQueue`, or a worker's relay to the
    supervisor's (:class:`~shardrunner.identify.relay.RelayBudgets`)."""

    async def acquire(self, name: str, key: str, n: int = 1) -> UseTicket: ...


class _Ledger:
    """The tickets and waiters of one (budget, key)."""

    __slots__ = ("clock", "limit", "margin", "tickets", "waiters", "wake", "window")

    def __init__(self, budget: Budget, margin: float, clock: Clock) -> None:
        self.limit = budget.limit
        self.window = budget.window
        self.margin = margin
        self.clock = clock
        self.tickets: list[Ticket] = []
        #: (n, future), in the order asked.
        self.waiters: deque[tuple[int, asyncio.Future[Ticket]]] = deque()
        self.wake = asyncio.Event()

    def in_use(self, now: float) -> int:
        self.tickets = [t for t in self.tickets if t.ends > now]
        return sum(t.n for t in self.tickets)

    def next_free(self, now: float) -> float:
        """When the oldest use ends (inf when one is not stamped yet)."""
        ends = [t.ends for t in self.tickets if t.ends > now]
        return min(ends, default=now)

    def changed(self) -> None:
        self.wake.set()


class BudgetQueue:
    """Grants the uses of per-key budgets, in request order per key (in-process; for one host)."""

    def __init__(
        self, budgets: list[Budget], *, margin: float | None = None, clock: Clock | None = None
    ) -> None:
        self.budgets = {b.name: b for b in budgets}
        self._margin = margin
        self._clock = clock or RealClock()
        self._ledgers: dict[tuple[str, str], _Ledger] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    def _ledger(self, name: str, key: str) -> _Ledger:
        ledger = self._ledgers.get((name, key))
        if ledger is None:
            budget = self.budgets.get(name)
            if budget is None:
                raise KeyError(f"unknown budget {name!r}; known: {', '.join(sorted(self.budgets))}")
            margin = margin_for(budget.window) if self._margin is None else self._margin
            ledger = self._ledgers[(name, key)] = _Ledger(budget, margin, self._clock)
        return ledger

    async def acquire(self, name: str, key: str, n: int = 1) -> Ticket:
        """Wait until ``n`` uses of budget ``name`` for ``key`` fit, and take them."""
        ledger = self._ledger(name, key)
        if n < 1 or n > ledger.limit:
            raise ValueError(f"{name}: {n} uses at once cannot fit a limit of {ledger.limit}")
        fut: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        ledger.waiters.append((n, fut))
        self._serve(name, key)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                fut.result().cancel()  # granted as the caller gave up: give the uses back
            else:
                with contextlib.suppress(ValueError):
                    ledger.waiters.remove((n, fut))
            raise

    def pending(self, name: str, key: str) -> int:
        """Uses asked for and not granted yet."""
        ledger = self._ledgers.get((name, key))
        return 0 if ledger is None else sum(n for n, _ in ledger.waiters)

    def in_use(self, name: str, key: str) -> int:
        """Uses counting against the budget now (stamped within the window, or not stamped yet)."""
        ledger = self._ledgers.get((name, key))
        return 0 if ledger is None else ledger.in_use(self._clock.monotonic())

    def _serve(self, name: str, key: str) -> None:
        task = self._tasks.get((name, key))
        if task is None or task.done():
            self._tasks[(name, key)] = asyncio.ensure_future(self._run(name, key))

    async def _run(self, name: str, key: str) -> None:
        ledger = self._ledgers[(name, key)]
        while ledger.waiters:
            now = self._clock.monotonic()
            n, fut = ledger.waiters[0]
            if fut.done():
                ledger.waiters.popleft()
                continue
            if ledger.in_use(now) + n <= ledger.limit:
                ledger.waiters.popleft()
                ticket = Ticket(ledger, n)
                ledger.tickets.append(ticket)
                fut.set_result(ticket)
                continue
            # Wait for the oldest use to end, or for a stamp or a cancel to change the picture.
            ledger.wake.clear()
            until = ledger.next_free(now)
            timeout = None if math.isinf(until) else max(0.0, until - now)
            with contextlib.suppress(TimeoutError):
                if timeout is None:
                    await ledger.wake.wait()
                else:
                    await wait_with_timeout(self._clock, ledger.wake.wait(), timeout)

    def usage(self) -> list[tuple[str, str, int, int, int]]:
        """``(budget, key, in use, limit, waiting)`` of every key that has uses or waiters now."""
        now = self._clock.monotonic()
        out = []
        for (name, key), ledger in sorted(self._ledgers.items()):
            used, waiting = ledger.in_use(now), sum(n for n, _ in ledger.waiters)
            if used or waiting:
                out.append((name, key, used, ledger.limit, waiting))
        return out

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for ledger in self._ledgers.values():
            for _, fut in ledger.waiters:
                if not fut.done():
                    fut.cancel()
