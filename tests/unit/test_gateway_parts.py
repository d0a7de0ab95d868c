"""Identify queue, outbound limiter and backoff, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from shardrunner.gateway.backoff import Backoff
from shardrunner.gateway.identify import LocalIdentifyQueue
from shardrunner.gateway.limiter import CommandLimiter
from tests.fakes import FakeClock


async def grants(
    queue: LocalIdentifyQueue, clock: FakeClock, shards: list[int], answer_after: float | None = 0.5
) -> list[tuple[float, int]]:
    """Let every shard acquire in order; each answers READY ``answer_after`` s after its grant."""
    order: list[tuple[float, int]] = []

    async def one(shard: int) -> None:
        await queue.acquire(shard)
        order.append((clock.now, shard))
        if answer_after is not None:
            await clock.sleep(answer_after)
            queue.release(shard, ready=True)

    tasks = [asyncio.ensure_future(one(s)) for s in shards]
    for _ in range(100):
        if all(t.done() for t in tasks):
            break
        await clock.advance(0.25)
    assert all(t.done() for t in tasks)
    return [(round(t - 1000.0, 3), s) for t, s in order]


async def test_identify_queue_when_one_bucket_spaces_identifies_by_the_window() -> None:
    clock = FakeClock()
    queue = LocalIdentifyQueue(1, 5.0, margin=0.05, clock=clock)
    order = await grants(queue, clock, [0, 1, 2, 3])
    assert [s for _, s in order] == [0, 1, 2, 3]
    times = [t for t, _ in order]
    assert all(b - a >= 5.05 for a, b in itertools.pairwise(times))
    assert all(b - a < 5.05 + 0.26 for a, b in itertools.pairwise(times))


async def test_identify_queue_when_max_concurrency_is_4_starts_buckets_in_parallel_and_in_order() -> None:
    clock = FakeClock()
    queue = LocalIdentifyQueue(4, 5.0, margin=0.0, clock=clock)
    order = await grants(queue, clock, list(range(8)))
    first = [s for t, s in order if t < 1]
    second = [s for t, s in order if 5 <= t < 6]
    assert first == [0, 1, 2, 3]
    assert second == [4, 5, 6, 7]


async def test_identify_queue_when_ready_is_slow_holds_the_bucket_until_it_comes() -> None:
    clock = FakeClock()
    queue = LocalIdentifyQueue(1, 5.0, margin=0.0, hold=30.0, clock=clock)
    order = await grants(queue, clock, [0, 1], answer_after=12.0)
    assert order[1][0] >= 12.0, "the next identify waits for READY when it takes longer than the window"


async def test_identify_queue_when_nobody_answers_releases_after_hold() -> None:
    clock = FakeClock()
    queue = LocalIdentifyQueue(1, 5.0, margin=0.0, clock=clock)
    order = await grants(queue, clock, [0, 1], answer_after=None)
    assert 5.0 <= order[1][0] < 5.3


async def test_identify_queue_when_a_waiter_is_cancelled_serves_the_next() -> None:
    clock = FakeClock()
    queue = LocalIdentifyQueue(1, 5.0, margin=0.0, clock=clock)
    await queue.acquire(0)
    waiting = asyncio.ensure_future(queue.acquire(1))
    third = asyncio.ensure_future(queue.acquire(2))
    await clock.settle()
    waiting.cancel()
    queue.release(0, ready=True)
    await clock.advance(5.1)
    assert third.done()
    assert waiting.cancelled()


async def test_limiter_when_commands_fill_the_window_keeps_the_reserve_for_heartbeats() -> None:
    clock = FakeClock()
    limiter = CommandLimiter(clock, limit=120, window=60.0, reserved=3)
    for _ in range(117):
        assert limiter.try_acquire()
    assert not limiter.try_acquire()
    assert limiter.try_acquire(priority=True)
    assert limiter.delay() == pytest.approx(60.0)
    await clock.advance(60.0)
    assert limiter.try_acquire()


async def test_limiter_when_many_wait_serves_them_in_order_within_the_limit() -> None:
    clock = FakeClock()
    limiter = CommandLimiter(clock, limit=10, window=1.0, reserved=2)
    done: list[int] = []

    async def go(i: int) -> None:
        await limiter.acquire()
        done.append(i)

    tasks = [asyncio.ensure_future(go(i)) for i in range(20)]
    await clock.settle()
    assert done == list(range(8))
    await clock.advance(1.0)
    assert done == list(range(16))
    await clock.advance(1.0)
    assert done == list(range(20))
    await asyncio.gather(*tasks)


def test_backoff_when_attempts_grow_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(lambda: 1.0, base=1.0, cap=10.0)
    assert [backoff.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next() == 1.0
    jitter = Backoff(lambda: 0.0, base=1.0, cap=10.0)
    assert jitter.next() == 0.0, "full jitter: a delay may be anything from zero"
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(lambda: 1.0, base=5.0, cap=1.0)


async def test_identify_queue_when_a_shard_sends_late_counts_the_window_from_the_send() -> None:
    clock = FakeClock()
    queue = LocalIdentifyQueue(1, 5.0, margin=0.0, clock=clock)
    await queue.acquire(0)
    second = asyncio.ensure_future(queue.acquire(1))
    await clock.advance(3.0)
    queue.sent(0)  # the first IDENTIFY only went out 3 s after its grant
    await clock.advance(4.9)
    assert not second.done(), "5 s after the send, not after the grant"
    await clock.advance(0.2)
    assert second.done()
