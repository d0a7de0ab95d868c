"""Sliding-window budgets on a fake clock: never more than the limit in any window counted from
the writes, waiters in order, unstamped tickets holding their place, cancels giving uses back."""

from __future__ import annotations

import asyncio

import pytest

from shardrunner.identify.budget import Budget, BudgetQueue, Ticket
from tests.fakes import FakeClock

JOIN = Budget("twitch.join", 20, 10.0)


def queue(clock: FakeClock, *budgets: Budget) -> BudgetQueue:
    return BudgetQueue(list(budgets) or [JOIN], margin=0.0, clock=clock)


async def grant_times(clock: FakeClock, q: BudgetQueue, count: int, key: str = "bot") -> list[float]:
    """Ask for ``count`` single uses at once; stamp each as it is granted; the grant times."""
    times: list[float] = []

    async def one() -> None:
        ticket = await q.acquire("twitch.join", key)
        times.append(clock.monotonic())
        ticket.used()

    tasks = [asyncio.ensure_future(one()) for _ in range(count)]
    for _ in range(400):
        if all(t.done() for t in tasks):
            break
        await clock.advance(0.25)
    assert all(t.done() for t in tasks), f"{sum(t.done() for t in tasks)}/{count} granted"
    return times


def most_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


async def test_budget_when_45_uses_are_asked_grants_20_per_window_and_never_more() -> None:
    clock = FakeClock()
    q = queue(clock)
    times = await grant_times(clock, q, 45)
    assert sum(1 for t in times if t == times[0]) == 20, "the first 20 at once"
    assert most_in_any_window(times, 10.0) == 20
    assert times[20] - times[0] >= 10.0
    assert times[40] - times[0] >= 20.0


async def test_budget_when_keys_differ_counts_each_apart() -> None:
    clock = FakeClock()
    q = queue(clock)
    a, b = await asyncio.gather(grant_times(clock, q, 20, "a"), grant_times(clock, q, 20, "b"))
    assert max(a + b) - min(a + b) < 1.0, "two accounts' budgets do not wait for each other"


async def test_budget_when_a_ticket_is_not_stamped_holds_its_use_until_it_is() -> None:
    clock = FakeClock()
    q = queue(clock, Budget("twitch.join", 1, 10.0))
    first = await q.acquire("twitch.join", "bot")
    second = asyncio.ensure_future(q.acquire("twitch.join", "bot"))
    await clock.advance(30.0)
    assert not second.done(), "the first use is not written yet: it still counts"
    first.used()
    await clock.advance(9.75)
    assert not second.done()
    await clock.advance(0.5)
    assert second.done(), "10 s after the write"


async def test_budget_when_a_ticket_is_cancelled_gives_the_use_back_at_once() -> None:
    clock = FakeClock()
    q = queue(clock, Budget("twitch.join", 1, 10.0))
    first = await q.acquire("twitch.join", "bot")
    second = asyncio.ensure_future(q.acquire("twitch.join", "bot"))
    await clock.advance(0.25)
    first.cancel()
    await clock.advance(0.25)
    assert second.done()
    assert isinstance(second.result(), Ticket)


async def test_budget_when_waiters_ask_for_several_serves_them_in_order() -> None:
    clock = FakeClock()
    q = queue(clock)
    big = asyncio.ensure_future(q.acquire("twitch.join", "bot", 15))
    await clock.settle()
    big.result().used()
    later = asyncio.ensure_future(q.acquire("twitch.join", "bot", 10))
    small = asyncio.ensure_future(q.acquire("twitch.join", "bot", 1))
    await clock.advance(1.0)
    assert not later.done()
    assert not small.done(), "it fits, but the one before it asked first"
    assert q.pending("twitch.join", "bot") == 11
    await clock.advance(9.5)
    assert later.done()
    assert small.done()
    assert q.in_use("twitch.join", "bot") == 11


async def test_budget_when_a_waiter_gives_up_the_next_one_is_served() -> None:
    clock = FakeClock()
    q = queue(clock, Budget("twitch.join", 1, 10.0))
    (await q.acquire("twitch.join", "bot")).used()
    gives_up = asyncio.ensure_future(q.acquire("twitch.join", "bot"))
    waits = asyncio.ensure_future(q.acquire("twitch.join", "bot"))
    await clock.advance(1.0)
    gives_up.cancel()
    await clock.advance(9.25)
    assert waits.done()
    assert q.pending("twitch.join", "bot") == 0


async def test_budget_when_asked_for_more_than_its_limit_or_an_unknown_one_refuses() -> None:
    q = queue(FakeClock())
    with pytest.raises(ValueError, match="21 uses at once cannot fit a limit of 20"):
        await q.acquire("twitch.join", "bot", 21)
    with pytest.raises(KeyError, match=r"unknown budget 'twitch\.login'"):
        await q.acquire("twitch.login", "bot")
    with pytest.raises(ValueError, match="a limit of at least 1"):
        Budget("x", 0, 1.0)


async def test_budget_queue_usage_when_asked_lists_keys_with_uses_or_waiters() -> None:
    clock = FakeClock()
    q = queue(clock)
    first = await q.acquire("twitch.join", "bot", 20)
    waiter = asyncio.ensure_future(q.acquire("twitch.join", "bot", 5))
    await clock.settle()
    assert q.usage() == [("twitch.join", "bot", 20, 20, 5)]
    first.used()
    waiter.cancel()
    await clock.settle()
    await clock.advance(11)
    assert q.usage() == []
    q.close()
