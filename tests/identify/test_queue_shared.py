"""The identify queue's rules, the same for the in-process queue and the Redis one (two hosts
sharing one bot's buckets), on the real clock with short windows."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from tests.identify.queues import hosts, key, run_grants
from tests.redis_server import RedisServer

KINDS = ["local", "redis"]

#: What a grant may be late by on the real clock: the Redis queue's poll, and a busy machine.
SLACK = 0.25


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(kind: str, request: pytest.FixtureRequest) -> RedisServer | None:
    return request.getfixturevalue("redis_server") if kind == "redis" else None


async def test_identify_queue_when_one_bucket_spaces_identifies_by_the_window(
    kind: str, server: RedisServer | None
) -> None:
    async with hosts(kind, server, 1, 0.3, margin=0.02, paused=True) as h:
        order = await run_grants(h, [key(s) for s in (3, 1, 0, 2)], answer_after=0.05, paused=True)
    assert [c.shard for _, c in order] == [0, 1, 2, 3], "shard order across hosts, not arrival"
    times = [t for t, _ in order]
    assert all(b - a >= 0.32 - 0.005 for a, b in itertools.pairwise(times))
    assert all(b - a < 0.32 + SLACK for a, b in itertools.pairwise(times))


async def test_identify_queue_when_max_concurrency_is_4_starts_buckets_in_parallel_and_in_order(
    kind: str, server: RedisServer | None
) -> None:
    async with hosts(kind, server, 4, 0.5, margin=0.0, paused=True) as h:
        order = await run_grants(h, [key(s) for s in reversed(range(8))], answer_after=0.05, paused=True)
    first = {c.shard for t, c in order[:4]}
    assert first == {0, 1, 2, 3}
    assert order[3][0] - order[0][0] < SLACK, "the four buckets at once"
    assert all(t >= order[0][0] + 0.5 - 0.005 for t, _ in order[4:])


async def test_identify_queue_when_ready_is_slow_holds_the_bucket_until_it_comes(
    kind: str, server: RedisServer | None
) -> None:
    async with hosts(kind, server, 1, 0.2, margin=0.0, hold=5.0) as h:
        order = await run_grants(h, [key(0)], answer_after=0.8)
        assert order[0][1] == key(0)
        order = await run_grants(h, [key(1), key(2)], answer_after=0.8)
    assert order[1][0] - order[0][0] >= 0.8 - 0.005, "the next identify waits for READY"


async def test_identify_queue_when_nobody_answers_releases_after_hold(
    kind: str, server: RedisServer | None
) -> None:
    async with hosts(kind, server, 1, 0.2, margin=0.0, hold=0.6) as h:
        order = await run_grants(h, [key(0), key(1)], answer_after=None)
    assert 0.6 - 0.005 <= order[1][0] - order[0][0] < 0.6 + SLACK


async def test_identify_queue_when_a_waiter_is_cancelled_serves_the_next(
    kind: str, server: RedisServer | None
) -> None:
    async with hosts(kind, server, 1, 0.2, margin=0.0) as h:
        await h.of(key(0)).acquire(key(0))
        gives_up = asyncio.ensure_future(h.of(key(1)).acquire(key(1)))
        third = asyncio.ensure_future(h.of(key(2)).acquire(key(2)))
        await asyncio.sleep(0.1)
        gives_up.cancel()
        h.of(key(0)).release(key(0), ready=True)
        await asyncio.wait_for(third, 2.0)
        assert gives_up.cancelled()


async def test_identify_queue_when_a_shard_sends_late_counts_the_window_from_the_send(
    kind: str, server: RedisServer | None
) -> None:
    async with hosts(kind, server, 1, 0.5, margin=0.0, hold=5.0) as h:
        q0, q1 = h.of(key(0)), h.of(key(1))
        await q0.acquire(key(0))
        second = asyncio.ensure_future(q1.acquire(key(1)))
        await asyncio.sleep(0.3)
        q0.sent(key(0))  # the first IDENTIFY only went out 0.3 s after its grant
        sent_at = time.monotonic()
        await h.settle()
        q0.release(key(0), ready=True)
        await asyncio.wait_for(second, 3.0)
        assert time.monotonic() - sent_at >= 0.5 - 0.005, "0.5 s after the send, not after the grant"
