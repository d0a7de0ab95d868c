"""What only the Redis identify queue does: fencing tokens, session_start_limit shared by hosts,
a Redis that goes down and comes back (and one that forgot everything)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from shardrunner.identify.coordinator import CoordinatorDown, redact
from shardrunner.identify.redis_queue import RedisIdentifyQueue, StaleGrant
from tests.conftest import wait_for
from tests.identify.queues import hosts, key
from tests.redis_server import RedisServer


async def test_redis_queue_when_a_host_stalls_past_its_hold_its_stamp_is_refused(
    redis_server: RedisServer,
) -> None:
    async with hosts("redis", redis_server, 1, 0.1, margin=0.0, hold=0.3) as h:
        stalled, other = h.queues
        grant = await stalled.grant(key(0))
        assert grant.token == "1"
        second = await asyncio.wait_for(other.grant(key(1)), 2.0)  # the hold ran out: the next goes
        assert second.token == "2"
        with pytest.raises(StaleGrant, match="superseded"):
            await stalled.stamp(key(0))
        assert not stalled.fresh(key(0)), "by the local clock already"
        assert other.fresh(key(1))
        await other.stamp(key(1))  # the live grant goes through


async def test_redis_queue_session_start_limit_when_shared_counts_every_host_and_gives_unsent_back(
    redis_server: RedisServer,
) -> None:
    async with hosts("redis", redis_server, 2, 0.05, margin=0.0) as h:
        a, b = h.queues
        assert await a.start_limit() is None
        await a.set_start_limit(total=1000, remaining=3, reset_after=60.0)
        await a.acquire(key(0))
        a.sent(key(0))
        await b.acquire(key(1))
        b.sent(key(1))
        await h.settle()
        await a.acquire(key(2))
        a.release(key(2), ready=False)  # granted, never sent: the start is given back
        await h.settle()
        state = await b.start_limit()
        assert state is not None
        assert (state.remaining, state.total) == (1, 1000)
        assert 59.0 < state.reset_after <= 60.0
        await b.set_start_limit(total=1000, remaining=5, reset_after=60.0)  # an older reading
        assert (await a.start_limit()).remaining == 1  # type: ignore[union-attr]
        await a.acquire(key(4))
        a.sent(key(4))
        await h.settle()
        a.release(key(4), ready=True)
        starved = asyncio.ensure_future(b.acquire(key(3)))
        await asyncio.sleep(0.3)
        assert not starved.done(), "no session start left: the grant waits for the reset"
        starved.cancel()


async def test_redis_queue_when_redis_is_down_fails_fast_then_waiters_go_on_when_it_is_back(
    redis_server: RedisServer,
) -> None:
    async with hosts("redis", redis_server, 1, 0.2, margin=0.0, timeout=0.5) as h:
        a, b = h.queues
        await a.acquire(key(0))
        a.sent(key(0))
        a.release(key(0), ready=True)
        await h.settle()
        redis_server.stop()
        waiter = asyncio.ensure_future(b.acquire(key(1)))
        started = time.monotonic()
        with pytest.raises(
            CoordinatorDown, match=rf"the coordinator at redis://127\.0\.0\.1:{redis_server.port}"
        ):
            await a.start_limit()
        assert time.monotonic() - started < 1.5, "fails fast"
        await asyncio.sleep(0.3)
        assert not waiter.done()
        assert b.down is not None
        redis_server.start()
        await asyncio.wait_for(waiter, 5.0)
        assert b.down is None


async def test_redis_queue_when_a_host_dies_waiting_its_waiters_are_dropped_after_their_ttl(
    redis_server: RedisServer,
) -> None:
    async with hosts("redis", redis_server, 1, 0.1, margin=0.0, waiter_ttl=0.5, paused=True) as h:
        dead, alive = h.queues
        first = asyncio.ensure_future(dead.acquire(key(0)))  # first in line, then its host dies
        second = asyncio.ensure_future(alive.acquire(key(1)))
        client = alive.coordinator.client
        line = alive._keys(("discord.identify", 0))[1]
        await wait_for(lambda: _count(client, line, 2), 3.0, "both in line")
        await dead.close()  # still paused: it never took its grant
        died = time.monotonic()
        alive.resume()
        await asyncio.sleep(0.2)
        assert not second.done(), "the dead host's waiter is first in line until its TTL"
        await asyncio.wait_for(second, 3.0)
        assert first.cancelled()
        assert time.monotonic() - died < 0.5 + 0.3, "dropped once its host stopped asking"


async def test_redis_queue_when_redis_forgot_everything_waits_a_window_before_the_next_grant(
    redis_server: RedisServer,
) -> None:
    async with hosts("redis", redis_server, 1, 1.0, margin=0.0, n=1) as h:
        (q,) = h.queues
        await q.acquire(key(0))
        q.sent(key(0))
        q.release(key(0), ready=True)
        await h.settle()
        redis_server.stop()
        redis_server.start()
        back = time.monotonic()
        await asyncio.wait_for(q.acquire(key(1)), 5.0)
        assert time.monotonic() - back >= 1.0 - 0.01, "a window of blackout after the loss"


def test_coordinator_when_the_url_has_a_password_never_shows_it() -> None:
    assert redact("redis://bot:s3cret@db.example:6380/2") == "redis://bot:***@db.example:6380/2"
    assert redact("rediss://:s3cret@db.example/0") == "rediss://:***@db.example/0"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact("redis://u:p@ss:w@[::1]:6379/0") == "redis://u:***@[::1]:6379/0"
    assert redact("redis://s3cret@db.example/0") == "redis://***@db.example/0"
    assert redact("unix:///run/r.sock?db=1&password=s3cret") == "unix:///run/r.sock?db=1&password=***"
    assert redact("redis://:s3cret@[::1/0") == "redis://***@[::1/0"  # no parse: no password either
    assert redact("redis://:s3cret@h:notaport/0") == "redis://:***@h:notaport/0"
    q = RedisIdentifyQueue("redis://bot:s3cret@127.0.0.1:1/0", "x", [], lambda c: ("x", 0))
    assert "s3cret" not in q.coordinator.url


async def _count(client: Any, line: str, n: int) -> bool:
    return int(await client.zcard(line)) >= n


async def test_redis_queue_near_when_the_next_turn_is_within_the_lead_tells_its_host_before_the_grant(
    redis_server: RedisServer,
) -> None:
    async with hosts("redis", redis_server, 1, 0.6, lead=0.3, margin=0.0) as h:
        a, b = h.queues
        await asyncio.wait_for(a.near(key(0)), 2.0)  # first in line: due now
        second = asyncio.ensure_future(b.near(key(1)))
        await a.acquire(key(0))
        granted_at = time.monotonic()
        a.sent(key(0))
        await asyncio.sleep(0.1)
        assert not second.done(), "its grant is due a window after the first, beyond the lead"
        await asyncio.wait_for(second, 2.0)
        told_at = time.monotonic()
        assert told_at - granted_at >= 0.6 - 0.3 - 0.05, "told about a lead before its grant"
        await asyncio.wait_for(b.acquire(key(1)), 2.0)
        assert time.monotonic() - granted_at >= 0.6, "granted only as the window allows"
        assert time.monotonic() > told_at


async def test_redis_queue_near_when_the_head_is_still_connecting_grants_the_next_connected_one(
    redis_server: RedisServer,
) -> None:
    async with hosts("redis", redis_server, 1, 0.3, lead=1.0, margin=0.0) as h:
        a, b = h.queues
        await asyncio.wait_for(a.near(key(0)), 2.0)
        await asyncio.wait_for(b.acquire(key(1)), 2.0)  # connected: it goes while the head connects
        assert not a.grants
        b.sent(key(1))
        b.release(key(1), ready=True)
        await asyncio.wait_for(a.acquire(key(0)), 2.0)  # the head kept its place
        assert key(0) in a.grants
        third = asyncio.ensure_future(b.near(key(2)))
        await asyncio.wait_for(third, 2.0)
        b.release(key(2), ready=False)  # its connect failed: out of the line
        await h.settle()
        client = a.coordinator.client
        assert await client.zcard(a._keys(("discord.identify", 0))[1]) == 0
        assert await client.scard(a._keys(("discord.identify", 0))[3]) == 0
