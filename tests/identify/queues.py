"""Identify queues for the behavioural tests shared by the local and the Redis queue: "hosts" (queue
objects) that share one bot's buckets, on the real clock with short windows."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shardrunner.identify.local import LocalIdentifyQueue
from shardrunner.identify.protocol import StartLimit
from shardrunner.identify.redis_queue import RedisIdentifyQueue
from shardrunner.protocol.keys import ConnKey
from tests.conftest import wait_for
from tests.redis_server import RedisServer

LIMIT = "discord.identify"
_clusters = itertools.count()


def key(shard: int, count: int = 8, generation: int = 0) -> ConnKey:
    return ConnKey("discord", generation, shard, count)


class Hosts:
    """``n`` queues of one bot (one local queue stands for every host); ``of(conn)`` is the queue
    of the host a connection runs on (shard ``s`` on host ``s % n``)."""

    def __init__(self, queues: list[Any]) -> None:
        self.queues = queues

    def of(self, conn: ConnKey) -> Any:
        return self.queues[conn.shard % len(self.queues)]

    async def resume_when_waiting(self, count: int) -> None:
        """Start every host once ``count`` requests stand in line (in Redis, for Redis queues)."""
        first = self.queues[0]
        if isinstance(first, RedisIdentifyQueue):
            client = first.coordinator.client

            async def queued() -> bool:
                names = [first._keys(n)[1] for n in first._buckets]
                return sum([await client.zcard(n) for n in names]) >= count

            await wait_for(queued, 5.0, f"{count} waiters in Redis")
        else:
            await wait_for(lambda: first.waiting >= count, 5.0, f"{count} waiters")
        for q in self.queues:
            q.resume()

    async def settle(self) -> None:
        for q in self.queues:
            if isinstance(q, RedisIdentifyQueue):
                await q.flush()


@asynccontextmanager
async def hosts(
    kind: str,
    server: RedisServer | None,
    buckets: int,
    window: float,
    n: int = 2,
    lead: float = 0.0,
    **options: Any,
) -> AsyncIterator[Hosts]:
    limits = [StartLimit(LIMIT, buckets, window, lead)]

    def bucket_of(c: ConnKey) -> tuple[str, int]:
        return (LIMIT, c.shard % buckets)

    if kind == "local":
        yield Hosts([LocalIdentifyQueue(limits, bucket_of, **options)])
        return
    assert server is not None
    cluster = f"test{next(_clusters)}"
    queues = [
        RedisIdentifyQueue(server.url, cluster, limits, bucket_of, host=f"h{i}", **options) for i in range(n)
    ]
    try:
        yield Hosts(queues)
    finally:
        for q in queues:
            await q.close()


async def run_grants(
    h: Hosts, conns: list[ConnKey], answer_after: float | None, paused: bool = False, timeout: float = 20.0
) -> list[tuple[float, ConnKey]]:
    """Every connection acquires on its host, sends at once, answers READY ``answer_after`` s
    later; the grants, as (seconds since the start, conn)."""
    start = time.monotonic()
    order: list[tuple[float, ConnKey]] = []

    async def one(conn: ConnKey) -> None:
        q = h.of(conn)
        await q.acquire(conn)
        order.append((time.monotonic() - start, conn))
        q.sent(conn)
        if answer_after is not None:
            await asyncio.sleep(answer_after)
            q.release(conn, ready=True)

    tasks = [asyncio.ensure_future(one(c)) for c in conns]
    if paused:
        await h.resume_when_waiting(len(conns))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout)
    await h.settle()
    return order
