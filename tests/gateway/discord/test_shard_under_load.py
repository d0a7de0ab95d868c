"""Heartbeats under load: two shards on real sockets, one flooded at 20x the other's rate, both
publishing into a bus whose only member is stuck (joined, never reads, never acknowledges). Every
heartbeat goes out within its interval plus a small slack, every one is acknowledged in time (no
zombie reconnect), and the bus stays within its bounds meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from shardrunner.bus import protocol as p
from shardrunner.bus.router import Limits, Router
from shardrunner.bus.server import BusServer
from shardrunner.clock import RealClock
from shardrunner.gateway.connection import ConnState
from shardrunner.gateway.discord import DiscordShard, ShardOptions
from shardrunner.protocol.compression import Compression
from shardrunner.protocol.keys import ConnKey
from tests.conftest import TOKEN, SimFactory, wait_for
from tests.fakes import GrantAll

pytestmark = pytest.mark.timeout(60)

INTERVAL_MS = 800
#: A heartbeat may leave this much after its interval (the event loop's turn on a loaded machine: up
#: to 0.15 s seen at a load of 10 on 2 cores, the simulators in the same process), still well
#: before the gateway's deadline (interval x 1.5, 1.2 s).
SLACK_S = 0.3


async def test_shard_when_flooded_beside_a_stuck_bot_sends_every_heartbeat_on_time(
    sim_factory: SimFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One simulator per shard, so one shard can be flooded: 2,000 dispatches/s against 100.
    sims = [
        await sim_factory(shards=2, rate=rate, guilds_per_shard=3, heartbeat_interval_ms=INTERVAL_MS)
        for rate in (2_000, 100)
    ]

    async def no_command(command: p.Command) -> tuple[str | None, object]:
        return "no", None

    ctx = zmq.asyncio.Context()
    limits = Limits(max_events=5_000, max_bytes=4 << 20, max_inflight_bytes=1 << 20)
    router = Router(limits)
    bus = BusServer(ctx, f"ipc://{tmp_path}/bus.sock", router, no_command)
    bus.bind()
    bus_task = asyncio.ensure_future(bus.run())
    stuck = ctx.socket(zmq.DEALER)
    stuck.setsockopt(zmq.LINGER, 0)
    stuck.connect(bus.endpoint)
    await stuck.send(p.encode(p.Join("g", "stuck")))
    await wait_for(lambda: "g" in router.groups, 5, "the stuck member's join")

    beats: dict[int, list[float]] = {0: [], 1: []}
    beat = DiscordShard._beat

    def recorded(self: DiscordShard, conn: Any) -> None:  # the shard has slots: patched on the class
        beats[self.conn.shard].append(time.monotonic())
        beat(self, conn)

    monkeypatch.setattr(DiscordShard, "_beat", recorded)
    options = ShardOptions(token=TOKEN, intents=513, compression=Compression.NONE)
    clock = RealClock(random.Random(3))
    shards = []
    for i, sim in enumerate(sims):
        shard = DiscordShard(
            ConnKey("discord", 0, i, 2), options, bus.publish, gateway_url=sim.gateway_url,
            identify_queue=GrantAll(), clock=clock,
        )  # fmt: skip
        shards.append(shard)
    tasks = [asyncio.ensure_future(s.run()) for s in shards]
    try:
        for shard in shards:
            await wait_for(lambda s=shard: s.state is ConnState.READY, 15, f"{shard} ready")
        await wait_for(lambda: len(beats[0]) >= 6 and len(beats[1]) >= 6, 20, "six heartbeats each")
        group = router.groups["g"]
        assert group.dropped_total > 0, "the flood went past the stuck bot's bounds"
        assert group.held_events <= limits.max_events
        assert group.members["stuck"].inflight_bytes <= limits.max_inflight_bytes
        assert shards[0].counters.events_in > 10 * shards[1].counters.events_in > 0
    finally:
        for shard in shards:
            await shard.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        bus_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bus_task
        stuck.close()
        bus.close()
        ctx.term()
    interval = INTERVAL_MS / 1000
    for i, times in beats.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) <= interval + SLACK_S, f"shard {i}: a heartbeat {max(gaps) - interval:.3f} s late"
        assert shards[i].counters.reconnects == 0, f"shard {i} reconnected (a zombie: a late ACK)"
    for sim in sims:
        assert [v for v in sim.stats()["violations"] if v["kind"] == "heartbeat_timeout"] == []
