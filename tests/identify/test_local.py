"""The local identify queue, on a fake clock: Discord's buckets, keyed by connection."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from shardrunner.identify.local import LocalIdentifyQueue
from shardrunner.identify.protocol import StartLimit
from shardrunner.protocol.keys import ConnKey
from tests.fakes import FakeClock


def discord_queue(max_concurrency: int, window: float, **options: Any) -> LocalIdentifyQueue:
    """A queue with Discord's limit: ``max_concurrency`` buckets, by ``shard % max_concurrency``."""
    return LocalIdentifyQueue(
        [StartLimit("discord.identify", max_concurrency, window)],
        lambda c: ("discord.identify", c.shard % max_concurrency),
        **options,
    )


def key(shard: int, count: int = 8, generation: int = 0) -> ConnKey:
    return ConnKey("discord", generation, shard, count)


async def grants(
    queue: LocalIdentifyQueue,
    clock: FakeClock,
    shards: list[int] | list[ConnKey],
    answer_after: float | None = 0.5,
) -> list[tuple[float, Any]]:
    """Let every shard acquire in order; each answers READY ``answer_after`` s after its grant.

    Shards given as ints are shards of one set of 8; the order lists them as given."""
    order: list[tuple[float, Any]] = []

    async def one(shard: int | ConnKey) -> None:
        conn = shard if isinstance(shard, ConnKey) else key(shard)
        await queue.acquire(conn)
        order.append((clock.now, shard))
        if answer_after is not None:
            await clock.sleep(answer_after)
            queue.release(conn, ready=True)

    tasks = [asyncio.ensure_future(one(s)) for s in shards]
    if queue.paused:  # every request is in: start the buckets
        await clock.settle()
        queue.resume()
    for _ in range(400):
        if all(t.done() for t in tasks):
            break
        await clock.advance(0.25)
    assert all(t.done() for t in tasks)
    return [(round(t - 1000.0, 3), s) for t, s in order]


async def test_identify_queue_when_one_bucket_spaces_identifies_by_the_window() -> None:
    clock = FakeClock()
    queue = discord_queue(1, 5.0, margin=0.05, clock=clock)
    order = await grants(queue, clock, [0, 1, 2, 3])
    assert [s for _, s in order] == [0, 1, 2, 3]
    times = [t for t, _ in order]
    assert all(b - a >= 5.05 for a, b in itertools.pairwise(times))
    assert all(b - a < 5.05 + 0.26 for a, b in itertools.pairwise(times))


async def test_identify_queue_when_max_concurrency_is_4_starts_buckets_in_parallel_and_in_order() -> None:
    clock = FakeClock()
    queue = discord_queue(4, 5.0, margin=0.0, clock=clock)
    order = await grants(queue, clock, list(range(8)))
    first = [s for t, s in order if t < 1]
    second = [s for t, s in order if 5 <= t < 6]
    assert first == [0, 1, 2, 3]
    assert second == [4, 5, 6, 7]


async def test_identify_queue_when_ready_is_slow_holds_the_bucket_until_it_comes() -> None:
    clock = FakeClock()
    queue = discord_queue(1, 5.0, margin=0.0, hold=30.0, clock=clock)
    order = await grants(queue, clock, [0, 1], answer_after=12.0)
    assert order[1][0] >= 12.0, "the next identify waits for READY when it takes longer than the window"


async def test_identify_queue_when_nobody_answers_releases_after_hold() -> None:
    clock = FakeClock()
    queue = discord_queue(1, 5.0, margin=0.0, clock=clock)
    await queue.acquire(key(0))
    queue.sent(key(0))
    second = asyncio.ensure_future(queue.acquire(key(1)))
    await clock.advance(4.9)
    assert not second.done()
    await clock.advance(0.3)
    assert second.done(), "sent, and no answer within the hold: the next goes"


async def test_identify_queue_when_a_grant_is_not_reported_sent_holds_it_longer() -> None:
    clock = FakeClock()
    queue = discord_queue(1, 5.0, margin=0.0, clock=clock)
    await queue.acquire(key(0))
    second = asyncio.ensure_future(queue.acquire(key(1)))
    await clock.advance(5.5)
    assert not second.done(), "its IDENTIFY may still be on its way: the next waits"
    queue.sent(key(0))  # the report of its send came late
    await clock.advance(4.9)
    assert not second.done()
    await clock.advance(0.2)
    assert second.done(), "a window after the report of the send"


async def test_identify_queue_when_a_waiter_is_cancelled_serves_the_next() -> None:
    clock = FakeClock()
    queue = discord_queue(1, 5.0, margin=0.0, clock=clock)
    await queue.acquire(key(0))
    waiting = asyncio.ensure_future(queue.acquire(key(1)))
    third = asyncio.ensure_future(queue.acquire(key(2)))
    await clock.settle()
    waiting.cancel()
    queue.release(key(0), ready=True)
    await clock.advance(5.1)
    assert third.done()
    assert waiting.cancelled()


async def test_identify_queue_when_a_shard_sends_late_counts_the_window_from_the_send() -> None:
    clock = FakeClock()
    queue = discord_queue(1, 5.0, margin=0.0, clock=clock)
    await queue.acquire(key(0))
    second = asyncio.ensure_future(queue.acquire(key(1)))
    await clock.advance(3.0)
    queue.sent(key(0))  # the first IDENTIFY only went out 3 s after its grant
    await clock.advance(4.9)
    assert not second.done(), "5 s after the send, not after the grant"
    await clock.advance(0.2)
    assert second.done()


async def test_identify_queue_when_discord_sets_of_4_and_8_share_the_buckets_spaces_them_together() -> None:
    clock = FakeClock()
    queue = discord_queue(2, 5.0, margin=0.0, clock=clock, paused=True)
    old = [key(s, 4) for s in range(4)]
    new = [key(s, 8, generation=1) for s in range(8)]
    order = await grants(queue, clock, [*new, *old])
    # The token's buckets are shared: shard 0 of either set counts against bucket 0. The older set
    # goes first in each bucket, then the new set, shard by shard.
    by_bucket: dict[int, list[tuple[float, ConnKey]]] = {0: [], 1: []}
    for at, conn in order:
        by_bucket[conn.shard % 2].append((at, conn))
    for bucket, grants_ in by_bucket.items():
        assert len(grants_) == 6
        times = [t for t, _ in grants_]
        assert all(b - a >= 5.0 for a, b in itertools.pairwise(times)), f"bucket {bucket} too fast"
        conns = [c for _, c in grants_]
        assert conns == sorted(conns, key=lambda c: (c.generation, c.shard))
    assert {c for _, c in order} == {*old, *new}, "two sets, no collision: every connection granted once"
    assert len(order) == 12


def led_queue(clock: FakeClock, *, lead: float, paused: bool = False) -> LocalIdentifyQueue:
    """One bucket of 5 s, no margin, with a lead."""
    return LocalIdentifyQueue(
        [StartLimit("discord.identify", 1, 5.0, lead)],
        lambda c: ("discord.identify", 0),
        margin=0.0,
        clock=clock,
        paused=paused,
    )


async def test_near_when_the_turn_is_within_the_lead_tells_each_in_line_a_lead_before_its_grant() -> None:
    clock = FakeClock()
    queue = led_queue(clock, lead=1.0, paused=True)
    nears = [asyncio.ensure_future(queue.near(key(s))) for s in (2, 0, 1)]
    await clock.settle()
    assert queue.waiting == 3
    assert not any(n.done() for n in nears), "paused: nobody is told"
    queue.resume()
    await clock.settle()
    assert [n.done() for n in nears] == [False, True, False], "shard 0 is first in line: due now"
    await queue.acquire(key(0))  # connected: granted at once
    queue.sent(key(0))
    await clock.advance(3.9)
    assert not nears[2].done()
    await clock.advance(0.2)  # 4.1 s: shard 1's grant is due at 5 s, within the lead
    assert nears[2].done()
    assert not nears[0].done()
    second = asyncio.ensure_future(queue.acquire(key(1)))
    await clock.advance(0.8)
    assert not second.done(), "connected early, it still waits for the window"
    await clock.advance(0.2)
    assert second.done(), "granted as the window ends: the handshake cost the bucket nothing"


async def test_near_when_the_head_is_still_connecting_grants_the_next_connected_one() -> None:
    clock = FakeClock()
    queue = led_queue(clock, lead=6.0)
    await queue.acquire(key(5))
    queue.sent(key(5))
    head = asyncio.ensure_future(queue.near(key(0)))
    ready = asyncio.ensure_future(queue.acquire(key(1)))
    await clock.settle()
    assert head.done(), "within the lead"
    await clock.advance(5.1)
    assert ready.done(), "the head is not connected at the window's end: the next connected one goes"
    queue.sent(key(1))
    late = asyncio.ensure_future(queue.acquire(key(0)))
    await clock.advance(4.8)
    assert not late.done()
    await clock.advance(0.3)
    assert late.done(), "the head kept its place: granted at the next window"


async def test_near_when_the_connect_fails_the_release_gives_its_place_to_the_next() -> None:
    clock = FakeClock()
    queue = led_queue(clock, lead=0.5)
    await queue.acquire(key(9))
    queue.sent(key(9))
    first = asyncio.ensure_future(queue.near(key(0)))
    second = asyncio.ensure_future(queue.near(key(1)))
    await clock.advance(4.6)
    assert first.done()
    assert not second.done()
    queue.release(key(0), ready=False)  # its connect failed
    await clock.settle()
    assert second.done(), "next in line now, and its turn is near"
    assert queue.waiting == 1
    cancelled = asyncio.ensure_future(queue.near(key(2)))
    await clock.settle()
    cancelled.cancel()
    await clock.settle()
    assert queue.waiting == 1, "a near() cancelled leaves the line"


async def test_near_when_the_grant_is_due_and_the_head_still_connects_sets_no_timer() -> None:
    clock = FakeClock()
    queue = led_queue(clock, lead=1.0)
    head = asyncio.ensure_future(queue.near(key(0)))
    later = [asyncio.ensure_future(queue.near(key(s))) for s in (1, 2, 3)]
    await clock.settle()
    assert head.done()
    assert not later[-1].done(), "15 s away: beyond the lead"
    assert all(t.done() for t in queue._wakers.values()), "nothing changes until a grant or a leave"
    sleeps = len(clock.sleeps)
    await clock.advance(3.0)
    assert len(clock.sleeps) == sleeps, "no timer fired meanwhile"
    await queue.acquire(key(0))
    queue.sent(key(0))
    await clock.advance(4.1)
    assert later[0].done(), "the next is near a lead before its grant"
    for t in [head, *later]:
        t.cancel()
