"""The Redis side of several hosts at 10,000 connections, without 10,000 connections: part 3 of
``python -m benchmarks.hosts`` (run alone: ``python -m benchmarks.hosts --only cost``).

What: 3 hosts' :class:`~shardrunner.cluster.supervisor.hosts.HostAgent` objects in one process,
against a redis-server of their own, each holding its share of a 10,000-connection layout (32
blocks: 11, 11 and 10). Each agent is the supervisor's own (its ``beat()`` is called, unchanged),
on a stand-in supervisor that has no workers: a session book whose every connection's seq moves
every second (the worst case: every session is written at every beat), and a host record with the
connections of ``--workers`` workers, as a real host's would list them. The blocks are claimed
before the clock starts (the beat then finds each host at its target: nothing to claim, nothing to
give), so what is measured is the steady beat: renew the leases, publish the record, read the
hosts and the lease table, write the changed sessions.

The 3 agents beat one after the other every second, so that the CPU of one host's beat
(``time.process_time`` around it) and the bytes Redis read and wrote for it (``INFO stats``
around it) are that host's alone. Redis's CPU (psutil on its pid) is for all 3 hosts.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import msgspec
import psutil
import redis.asyncio as aioredis

from shardrunner.cluster.hosts.placement import targets
from shardrunner.cluster.supervisor.book import SessionBook
from shardrunner.cluster.supervisor.hosts import HostAgent
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey

BLOCKS = 32


class _StandIn:
    """What ``HostAgent.beat`` reads of its supervisor, and nothing more: no slots (so no worker
    is told ``LeaseUntil``), no budgets, no control socket."""

    def __init__(self, name: str, conns: list[ConnKey], workers: int, ttl: float) -> None:
        self.settings = SimpleNamespace(
            host_name=name,
            run_dir=f"/nonexistent/{name}",
            lease_ttl=ttl,
            cluster_name="bench",
            lease_blocks=BLOCKS,
            resume_window=180.0,
            standby=False,
            workers=workers,
            advertise="",
        )
        self.conns = conns
        self.book = SessionBook()
        self.slots: list[Any] = []
        self.stopping = False
        self.budgets = None
        self.grants = None
        self.control = None
        self.state = "running"
        self.reconciler = SimpleNamespace(find=lambda identity: None)
        self.link = SimpleNamespace(send=lambda identity, message: None)
        self.mine: list[ConnKey] = []
        self.workers = workers

    def local_endpoints(self) -> dict[str, Any]:
        per = -(-len(self.mine) // self.workers) if self.mine else 1
        return {
            "workers": [
                {
                    "slot": i,
                    "generation": 1,
                    "endpoint": f"ipc:///nonexistent/run/bus-{i}-1.sock",
                    "conns": [str(c) for c in self.mine[i * per : (i + 1) * per]],
                }
                for i in range(self.workers)
            ]
        }

    def wake(self) -> None:
        pass

    def fail(self, why: str) -> None:
        raise SystemExit(why)


@dataclass
class HostCost:
    calls: int = 0
    cpu: float = 0.0
    bytes_in: int = 0  # what Redis read from this host (its writes)
    bytes_out: int = 0  # what Redis sent it (its reads)
    beats: int = 0
    beat_s: list[float] = field(default_factory=list)


async def _net(client: aioredis.Redis) -> tuple[int, int]:
    info = await client.info("stats")
    return int(info["total_net_input_bytes"]), int(info["total_net_output_bytes"])


def _advance(book: SessionBook, conns: list[ConnKey], keys: list[list[int | str]], tick: int) -> None:
    """Every connection's seq moves on (its worker's report), as if each had one event a second."""
    for i, conn in enumerate(conns):
        book.snapshots[conn] = SessionSnapshot(
            conn=conn,
            session_id=f"{conn.shard:08x}" * 4,
            seq=1000 + tick,
            resume_url="wss://gateway-us-east1-b.discord.gg",
            keys=keys[i],
        )


async def measure(
    url: str, redis_pid: int, *, shards: int, seconds: float, workers: int, keys: int, ttl: float = 10.0
) -> dict[str, Any]:
    """Run 3 hosts' beats for ``seconds`` against ``url``; the costs per host and Redis's CPU."""
    conns = [ConnKey("discord", 0, s, shards) for s in range(shards)]
    names = ["h1", "h2", "h3"]
    sups = [_StandIn(n, conns, workers, ttl) for n in names]
    agents = [HostAgent(cast(Any, s), url) for s in sups]
    layout = agents[0].layout
    rng = random.Random(13)
    # One list of guild ids shared by every session (the bytes and the encoding are the same as
    # with a list each; the memory is not).
    guild_ids: list[int | str] = [rng.randrange(10**17, 10**19) for _ in range(keys)]
    # The claims, as the first beats would make them (placement's targets, lowest blocks first).
    share = targets(len(layout.blocks), [(n, workers) for n in names])
    first = 0
    for agent, sup, name in zip(agents, sups, names, strict=True):
        blocks = list(range(first, first + share[name]))
        first += share[name]
        await agent.beat()  # agrees on the layout, publishes, reads; claims nothing (not settled)
        got = await agent.leases.claim(blocks)
        for block, epoch in got.items():
            agent.held[block] = epoch
            agent.last_epoch[block] = epoch
            for conn in layout.blocks[block]:
                agent.epochs[conn] = epoch
        sup.mine = agent.conns()
    agent_keys = [[guild_ids] * len(sup.mine) for sup in sups]
    probe = aioredis.Redis.from_url(url)
    redis = psutil.Process(redis_pid)
    costs = [HostCost() for _ in agents]
    # What two INFO calls in a row add by themselves (the probe's own request and answer).
    a, b = await _net(probe), await _net(probe)
    base_in, base_out = b[0] - a[0], b[1] - a[1]
    tick = 0
    # Two warm-up beats each (the first full session write, the placement's settle), not counted.
    for _ in range(3):
        tick += 1
        for agent, sup, k in zip(agents, sups, agent_keys, strict=True):
            _advance(sup.book, sup.mine, k, tick)
            await agent.beat()
    redis_cpu0 = sum(redis.cpu_times()[:2])
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        second = time.monotonic()
        tick += 1
        for agent, sup, k, cost in zip(agents, sups, agent_keys, costs, strict=True):
            _advance(sup.book, sup.mine, k, tick)  # the workers' reports: not the beat's work
            calls0, (in0, out0) = agent.coordinator.calls, await _net(probe)
            cpu0, t0 = time.process_time(), time.monotonic()
            await agent.beat()
            cost.cpu += time.process_time() - cpu0
            cost.beat_s.append(time.monotonic() - t0)
            in1, out1 = await _net(probe)
            cost.calls += agent.coordinator.calls - calls0
            cost.bytes_in += in1 - in0 - base_in
            cost.bytes_out += out1 - out0 - base_out
            cost.beats += 1
            if len(agent.held) != share[agent.name] or agent.giving:
                raise SystemExit(f"{agent.name} changed its blocks during the measure: {sorted(agent.held)}")
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - second)))
    took = time.monotonic() - began
    redis_cpu = sum(redis.cpu_times()[:2]) - redis_cpu0
    stored = await probe.hlen(agents[0].coordinator.key("sessions"))
    record = len(msgspec.json.encode(agents[0].info()))
    await probe.aclose()
    for agent in agents:
        await agent.coordinator.close()
    hosts = []
    for agent, sup, cost in zip(agents, sups, costs, strict=True):
        hosts.append(
            {
                "host": agent.name,
                "blocks": len(agent.held),
                "conns": len(sup.mine),
                "beats": cost.beats,
                "calls_per_s": cost.calls / took,
                "calls_per_beat": cost.calls / cost.beats,
                "written_bytes_per_s": cost.bytes_in / took,
                "written_bytes_per_beat": cost.bytes_in / cost.beats,
                "read_bytes_per_s": cost.bytes_out / took,
                "cpu_s_per_s": cost.cpu / took,
                "beat_ms_median": 1000 * sorted(cost.beat_s)[len(cost.beat_s) // 2],
            }
        )
    return {
        "shards": shards,
        "blocks": len(layout.blocks),
        "workers_per_host": workers,
        "keys_per_session": keys,
        "seconds": took,
        "hosts": hosts,
        "redis_cpu_s_per_s": redis_cpu / took,
        "sessions_stored": stored,
        "host_record_bytes": record,
    }
