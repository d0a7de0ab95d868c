"""Helpers of the Twitch connection tests: waiting on a condition with a deadline, the account
budgets (with a count of what each connection asked for), and the simulator's view of one account."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from shardrunner.identify.budget import Budget, BudgetQueue, Ticket
from shardrunner.protocol.twitch import TwitchLimits
from shardrunner.sim.twitch.server import TwitchSimulator


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)


class CountingBudgets:
    """A BudgetQueue of Twitch's login and JOIN budgets that counts the uses asked, per budget."""

    def __init__(self, join: tuple[int, float] = (20, 10.0), login: tuple[int, float] = (20, 10.0)) -> None:
        self.queue = BudgetQueue([Budget("twitch.join", *join), Budget("twitch.login", *login)])
        self.asked: Counter[str] = Counter()

    async def acquire(self, name: str, key: str, n: int = 1) -> Ticket:
        self.asked[name] += n
        return await self.queue.acquire(name, key, n)

    def close(self) -> None:
        self.queue.close()


def limit_account(sim: TwitchSimulator, login: str, **limits: Any) -> TwitchLimits:
    """Give ``login``'s account in the simulator these limits (short windows keep the tests short);
    the same limits are what the connection is told."""
    chosen = TwitchLimits(**limits)
    sim.account(login).configure(chosen)
    return chosen


def accepted(sim: TwitchSimulator, login: str) -> list[dict[str, Any]]:
    return [m for m in sim.stats.messages if m["account"] == login and m["accepted"]]


def violations(sim: TwitchSimulator) -> list[dict[str, Any]]:
    return list(sim.stats.violations)
