"""Several hosts with real processes: `shardrunner start` supervisors, each with its own run dir and
workers, one real redis-server between them, the simulator, and bot processes on two hosts. Events
are counted by (session, seq) against the simulator's sessions; identifies and resumes by its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest
import redis.asyncio as aioredis

from shardrunner.sim.discord.server import Simulator
from tests.cluster.conftest import Cluster, accepted
from tests.cluster.test_bus_processes import assert_complete, quiesce
from tests.conftest import SimFactory, http_json, wait_for
from tests.redis_server import RedisServer

pytestmark = pytest.mark.timeout(180)
SHARDS = 6
TTL = 3.0

MakeHost = Callable[..., Cluster]


@pytest.fixture
async def sim(sim_factory: SimFactory) -> Simulator:
    # Heartbeats every 10 s (Discord's are 41 s): a host paused for a few seconds keeps its
    # sessions resumable, as it would on Discord; a shorter interval would have them time out (4009).
    return await sim_factory(
        shards=SHARDS, guilds_per_shard=2, rate=50, identify_window=0.25, heartbeat_interval_ms=10_000
    )


@pytest.fixture
async def hosts(
    sim: Simulator, redis_server: RedisServer, tmp_path: Path, bots: Any
) -> AsyncIterator[MakeHost]:
    # After ``bots`` (torn down last): the hosts stop while their bots still acknowledge.
    made: list[Cluster] = []

    def start(name: str, *args: str) -> Cluster:
        host = Cluster(
            sim,
            tmp_path / name,
            "--coordinator", redis_server.url, "--host-name", name, "--workers", "1",
            "--lease-ttl", str(TTL), *args,
        )  # fmt: skip
        made.append(host)
        return host

    yield start
    await asyncio.gather(*(h.stop(grace=20) for h in made))


async def held(host: Cluster) -> list[int]:
    """The blocks ``host`` holds, from its status (none while it does not answer)."""
    try:
        status = await host.status()
    except Exception:
        return []
    return list((status.get("hosts") or {}).get("held") or [])


async def every_block_held_once(*hosts: Cluster) -> bool:
    blocks = [b for h in hosts for b in await held(h)]
    return sorted(blocks) == list(range(SHARDS))


def kill_host(host: Cluster) -> None:
    """kill -9 of the whole host: its supervisor and every worker."""
    workers = host.workers()
    for proc in [host.supervisor, *workers]:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)


def attached(sim: Simulator) -> int:
    """Connections of the simulator that run a session now."""
    return sum(1 for c in list(sim.connections) if c.session is not None and not c.closing)


def live_sessions(sim: Simulator) -> int:
    return sum(1 for s in sim.sessions.values() if s.ended is None)


async def handed_over(sim: Simulator, redis_server: RedisServer) -> bool:
    """Every live session of the simulator is written in the coordinator, for the next holder."""
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        stored = set()
        async for key in client.scan_iter("*:sessions"):
            for value in (await client.hgetall(key)).values():
                stored.add(msgspec.json.decode(value)["snapshot"]["session_id"])
    finally:
        await client.aclose()
    return {s.id for s in sim.sessions.values() if s.ended is None} <= stored


async def test_hosts_when_started_together_keep_identify_order_survive_a_kill_and_take_a_new_host(
    sim: Simulator, hosts: MakeHost, bots: Any, redis_server: RedisServer
) -> None:
    h1, h2, h3 = hosts("h1"), hosts("h2"), hosts("h3")
    standby = hosts("s", "--standby")
    await wait_for(lambda: every_block_held_once(h1, h2, h3), 60, "every block held once by the 3 hosts")
    await wait_for(lambda: len(accepted(sim, "identifies")) == SHARDS, 30, "every shard identified")
    assert await held(standby) == []
    stats = sim.stats()
    assert stats["violations"] == [], "no identify broke the bucket's window"
    order = [i["shard"][0] for i in sorted(accepted(sim, "identifies"), key=lambda i: i["time"])]
    assert order == list(range(SHARDS)), "one bucket, in shard order across the 3 hosts"

    # Bots on three hosts, one group: each consumes from every host's workers.
    first, second, third = bots(h1.run_dir), bots(standby.run_dir), bots(h3.run_dir)
    await wait_for(lambda: min(len(b.events) for b in (first, second, third)) >= 50, 30, "events in the bots")

    # Its sessions are in Redis first (a session whose READY came in the last second is not yet).
    await wait_for(lambda: handed_over(sim, redis_server), 10, "every session written in Redis")
    lost = await held(h2)
    assert lost
    kill_host(h2)
    await wait_for(
        lambda: every_block_held_once(h1, h3, standby), TTL + 15, "the standby to take the dead host's blocks"
    )
    assert sorted(await held(standby)) == sorted(lost), "the standby took them, not the live hosts"
    await wait_for(lambda: len(accepted(sim, "resumes")) >= len(lost), 20, "the taken sessions resumed")
    assert len(accepted(sim, "identifies")) == SHARDS, "a takeover resumes: no identify"

    # A fourth host: connections move over, one block at a time, each resumed.
    h4 = hosts("h4")
    await wait_for(lambda: held(h4), 40, "the new host to take a block")
    await wait_for(lambda: every_block_held_once(h1, h3, standby, h4), 40, "a balanced cluster")
    await wait_for(lambda: live_sessions(sim) == SHARDS, 20, "every session live")
    assert len(accepted(sim, "identifies")) == SHARDS
    live = await quiesce(sim, first, second, third)
    assert_complete(live, first, second, third)


async def test_hosts_when_one_pauses_past_its_lease_or_redis_restarts_lose_nothing(
    sim: Simulator, hosts: MakeHost, bots: Any, redis_server: RedisServer
) -> None:
    h1, h2, standby = hosts("h1"), hosts("h2"), hosts("s", "--standby")
    await wait_for(lambda: every_block_held_once(h1, h2), 60, "every block held by the 2 hosts")
    await wait_for(lambda: len(accepted(sim, "identifies")) == SHARDS, 30, "every shard identified")
    bot = bots(standby.run_dir)
    await wait_for(lambda: len(bot.events) >= 200, 30, "events in the bot")

    # h1 stops dead (SIGSTOP: supervisor and workers) past its lease: the standby takes its blocks;
    # woken, h1 finds them taken and gives them up, delivering nothing stale. Its sessions are in
    # Redis first (a host written every second): one that became ready in the second before the
    # pause is not, and its taker identifies (docs/hosts.md, limits).
    await wait_for(lambda: handed_over(sim, redis_server), 10, "every session written in Redis")
    paused = await held(h1)
    procs = [h1.supervisor, *h1.workers()]
    for p in procs:
        p.suspend()
    try:
        await wait_for(
            lambda: every_block_held_once(h2, standby),
            TTL + 15,
            "the standby to take the paused host's blocks",
        )
    finally:
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.resume()
    assert sorted(await held(standby)) == sorted(paused)
    await wait_for(lambda: every_block_held_once(h1, h2, standby), 30, "every block held once after the wake")
    assert len(accepted(sim, "identifies")) == SHARDS

    # Redis dies (and comes back empty). Within the lease, connections run on and deliver; a shard
    # whose session Discord ends meanwhile must identify, and waits for Redis to do so. Past the
    # lease, every host stops its connections, resumable; once Redis is back they resume (the leases
    # taken back), the identify goes, and nothing is lost.
    before = len(bot.events)
    await asyncio.to_thread(redis_server.stop)
    await wait_for(lambda: len(bot.events) >= before + 100, 20, "events while Redis is down")
    fault = {"kind": "invalid_session", "shard": 0, "resumable": False}
    status, _, text = await http_json(sim, "POST", "/_sim/fault", fault)
    assert status == 200, text
    await wait_for(lambda: len(bot.events) >= before + 200, 20, "more events while Redis is down")
    assert len(accepted(sim, "identifies")) == SHARDS, "no identify without the shared queue"
    await wait_for(
        lambda: attached(sim) == 0, 3 * TTL, "every host to stop its connections at its lease's end"
    )
    await asyncio.to_thread(redis_server.start)
    await wait_for(
        lambda: len(accepted(sim, "identifies")) == SHARDS + 1, 30, "the identify once Redis is back"
    )
    await wait_for(lambda: every_block_held_once(h1, h2, standby), 30, "every lease back in the new Redis")
    for host in (h1, h2, standby):
        assert host.proc.poll() is None, "no host crashed"
    assert len(accepted(sim, "identifies")) == SHARDS + 1
    await wait_for(lambda: live_sessions(sim) == SHARDS, 20, "every session live")
    live = await quiesce(sim, bot)
    assert_complete(live, bot)
