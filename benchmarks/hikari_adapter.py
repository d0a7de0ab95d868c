"""Measures what the hikari adapter adds per event to hikari's own handling of it.

What: one GatewayBot with a GuildMessageCreateEvent listener, started by
``shardrunner.adapters.hikari.start`` on a client stand-in (two shards, no cluster: the bus is not
what is measured). Blocks of guild MESSAGE_CREATEs (the simulator's entity factory, about 1.7 KB)
go through ``HikariAdapter.feed`` (decode the raw body, pick the shard, ``consume_raw_event``),
alternating with the same number of already decoded bodies given straight to hikari's
``consume_raw_event`` with the same shard: the difference is the adapter's cost. Each block's
listeners run to the end before the next block; the first round is a warm-up; the garbage
collector is off inside the timed loops (its passes scale with what earlier blocks left, not
with either path). Printed: microseconds per event of each path (the median of the rounds), the
JSON decode alone, and events per second through the adapter with the listeners run. Not part of
``python -m benchmarks``: a bot's own cost, not the cluster's.

Run: python -m benchmarks.hikari_adapter [--block 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from typing import Any

import hikari
import msgspec

from shardrunner.adapters import hikari as adapter
from shardrunner.client import ClientEvent
from shardrunner.client.discord import active_set
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.sim.discord.config import SimConfig
from shardrunner.sim.discord.world import World, make_token

SHARDS = 2


class StandIn:
    """What the adapter asks of a client: the shards, and no state, stream or status."""

    def __init__(self) -> None:
        self.conns = [ConnKey("discord", 0, i, SHARDS) for i in range(SHARDS)]
        self.platforms: dict[str, Any] = {}
        self.state_marks: dict[ConnKey, tuple[str, int]] = {}

    @property
    def num_shards(self) -> int:
        return len(active_set(self.conns, self.platforms))

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def next_event(self) -> ClientEvent:
        await asyncio.Event().wait()  # the benchmark feeds the adapter itself
        raise AssertionError("unreachable")

    async def fetch_state(self, platform: str = "discord", timeout: float = 30.0) -> list[ClientEvent]:
        return []


async def run(block: int, rounds: int) -> None:
    world = World(SimConfig(shards=SHARDS, guilds_per_shard=2, max_members=40, seed=3))
    gid = world.guilds_for(0, SHARDS)[0]
    raw = msgspec.json.encode(world.entities.event("MESSAGE_CREATE", world.model(gid)))
    bot = hikari.GatewayBot(
        make_token(world.bot_id), banner=None, logs=None, suppress_optimization_warning=True
    )
    done = 0
    all_done = asyncio.Event()

    async def on_message(_: hikari.GuildMessageCreateEvent) -> None:
        nonlocal done
        done += 1
        if done == block:
            all_done.set()

    bot.subscribe(hikari.GuildMessageCreateEvent, on_message)
    running = await adapter.start(bot, client=StandIn(), status_every=None)  # type: ignore[arg-type]
    shard = bot.shards[0]
    conn = ConnKey("discord", 0, 0, SHARDS)

    async def listeners_done() -> None:
        nonlocal done
        await all_done.wait()
        all_done.clear()
        done = 0

    fed: list[float] = []
    alone: list[float] = []
    through: list[float] = []
    seq = 0
    for r in range(rounds):
        events = [
            ClientEvent(Event(conn, "s", seq + i, "MESSAGE_CREATE", gid, raw), False) for i in range(block)
        ]
        seq += block
        bodies = [msgspec.json.decode(raw) for _ in range(block)]
        gc.disable()
        t0 = time.perf_counter()
        for event in events:
            running.feed(event)
        t1 = time.perf_counter()
        gc.enable()
        await listeners_done()
        t2 = time.perf_counter()
        gc.disable()
        t3 = time.perf_counter()
        for body in bodies:
            bot.event_manager.consume_raw_event("MESSAGE_CREATE", shard, body)
        t4 = time.perf_counter()
        gc.enable()
        await listeners_done()
        if r:
            fed.append((t1 - t0) / block)
            alone.append((t4 - t3) / block)
            through.append(block / (t2 - t0))
    t = time.perf_counter()
    for _ in range(block):
        msgspec.json.decode(raw)
    decode = (time.perf_counter() - t) / block
    await bot.close()
    feed_us, alone_us = statistics.median(fed) * 1e6, statistics.median(alone) * 1e6
    print(f"payload {len(raw)} B, {block} events a block, median of {rounds - 1} rounds")
    print(f"adapter feed:              {feed_us:7.1f} us/event")
    print(f"consume_raw_event alone:   {alone_us:7.1f} us/event")
    added = feed_us - alone_us
    print(f"the adapter adds:          {added:7.1f} us/event (JSON decode alone: {decode * 1e6:.1f} us)")
    print(f"through the adapter, listeners run: {statistics.median(through):,.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(run(args.block, args.rounds))


if __name__ == "__main__":
    main()
