"""Budgets in Redis shared by two hosts, on the real clock with short windows: never more than the
limit in any window counted from the writes, waiters in order across hosts, unstamped tickets
holding their place until their TTL (then counting as written then), cancels giving uses back,
Redis down and back."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from shardrunner.identify.budget import Budget
from shardrunner.identify.coordinator import CoordinatorDown
from shardrunner.identify.redis_budget import RedisBudgetQueue, RedisTicket
from tests.redis_server import RedisServer

JOIN = Budget("twitch.join", 5, 0.5)
_clusters = itertools.count()


@asynccontextmanager
async def two_hosts(
    server: RedisServer, *budgets: Budget, **options: Any
) -> AsyncIterator[list[RedisBudgetQueue]]:
    cluster = f"budget{next(_clusters)}"
    queues = [
        RedisBudgetQueue(server.url, cluster, list(budgets) or [JOIN], host=f"h{i}", margin=0.0, **options)
        for i in range(2)
    ]
    try:
        yield queues
    finally:
        for q in queues:
            await q.close()


async def grant_times(queues: list[RedisBudgetQueue], count: int, key: str = "bot") -> list[float]:
    """``count`` single uses asked at once, alternately on each host; each stamped as granted."""
    times: list[float] = []

    async def one(q: RedisBudgetQueue) -> None:
        ticket = await q.acquire("twitch.join", key)
        times.append(time.monotonic())
        ticket.used()

    await asyncio.wait_for(asyncio.gather(*(one(queues[i % 2]) for i in range(count))), 20.0)
    for q in queues:
        await q.flush()
    return sorted(times)


def most_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


async def test_redis_budget_when_12_uses_are_asked_on_two_hosts_grants_5_per_window_and_never_more(
    redis_server: RedisServer,
) -> None:
    async with two_hosts(redis_server) as queues:
        times = await grant_times(queues, 12)
    assert most_in_any_window(times, 0.5 - 0.01) <= 5
    assert times[5] - times[0] >= 0.5 - 0.01
    assert times[10] - times[0] >= 1.0 - 0.01
    assert times[-1] - times[0] < 1.0 + 0.5, "not much later than the ideal"


async def test_redis_budget_when_waiters_ask_on_two_hosts_serves_them_in_the_order_they_asked(
    redis_server: RedisServer,
) -> None:
    async with two_hosts(redis_server) as (a, b):
        (await a.acquire("twitch.join", "bot", 4)).used()
        later = asyncio.ensure_future(b.acquire("twitch.join", "bot", 3))
        await asyncio.sleep(0.1)  # one poll: b's request reaches Redis first
        small = asyncio.ensure_future(a.acquire("twitch.join", "bot", 1))
        await asyncio.sleep(0.2)
        assert not later.done()
        assert not small.done(), "it fits, but the one before it (on the other host) asked first"
        done, _ = await asyncio.wait({later, small}, timeout=3.0, return_when=asyncio.FIRST_COMPLETED)
        assert later in done
        await asyncio.wait_for(small, 3.0)
        assert await a.in_use("twitch.join", "bot") == 4


async def test_redis_budget_when_a_ticket_is_cancelled_gives_the_use_back_at_once(
    redis_server: RedisServer,
) -> None:
    async with two_hosts(redis_server, Budget("twitch.join", 1, 10.0)) as (a, b):
        first = await a.acquire("twitch.join", "bot")
        second = asyncio.ensure_future(b.acquire("twitch.join", "bot"))
        await asyncio.sleep(0.1)
        assert await b.usage() == [("twitch.join", "bot", 1, 1, 1)], "a's use counts on b"
        first.cancel()
        assert isinstance(await asyncio.wait_for(second, 2.0), RedisTicket)
        assert await a.usage() == [("twitch.join", "bot", 1, 1, 0)]


async def test_redis_budget_when_a_host_dies_holding_a_ticket_counts_it_as_written_at_its_ttl(
    redis_server: RedisServer,
) -> None:
    async with two_hosts(redis_server, Budget("twitch.join", 1, 0.5), ticket_ttl=0.6) as (dead, alive):
        granted = time.monotonic()
        await dead.acquire("twitch.join", "bot")  # never stamped, never cancelled
        await dead.close()
        await asyncio.wait_for(alive.acquire("twitch.join", "bot"), 5.0)
        assert time.monotonic() - granted >= 0.6 + 0.5 - 0.01, "the TTL, then a window"


async def test_redis_budget_when_asked_for_more_than_its_limit_or_an_unknown_one_refuses(
    redis_server: RedisServer,
) -> None:
    async with two_hosts(redis_server) as (a, _):
        with pytest.raises(ValueError, match="6 uses at once cannot fit a limit of 5"):
            await a.acquire("twitch.join", "bot", 6)
        with pytest.raises(KeyError, match=r"unknown budget 'twitch\.login'"):
            await a.acquire("twitch.login", "bot")


async def test_redis_budget_when_redis_is_down_fails_fast_and_waiters_go_on_when_it_is_back(
    redis_server: RedisServer,
) -> None:
    async with two_hosts(redis_server, Budget("twitch.join", 1, 0.3), timeout=0.5) as (a, b):
        (await a.acquire("twitch.join", "bot")).used()
        await a.flush()
        assert await b.in_use("twitch.join", "bot") == 1  # b knows the server's epoch
        redis_server.stop()
        waiter = asyncio.ensure_future(b.acquire("twitch.join", "bot"))
        started = time.monotonic()
        with pytest.raises(CoordinatorDown, match="unreachable"):
            await a.in_use("twitch.join", "bot")
        assert time.monotonic() - started < 1.5
        redis_server.start()
        back = time.monotonic()
        await asyncio.wait_for(waiter, 5.0)
        assert time.monotonic() - back >= 0.3 - 0.01, "forgotten uses count as a full window"
