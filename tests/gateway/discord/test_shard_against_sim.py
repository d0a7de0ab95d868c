"""The Discord shard against the simulator, one test per fault.

Each test checks the simulator's own log: every dispatch of a session delivered exactly once
(replays included), no identify where a resume was possible, no identify-bucket violation.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

from shardrunner.clock import RealClock
from shardrunner.gateway.connection import ConnState, NotReady
from shardrunner.gateway.discord import DiscordShard, ShardFatalError, ShardOptions
from shardrunner.identify.local import LocalIdentifyQueue
from shardrunner.identify.protocol import StartLimit
from shardrunner.protocol.compression import Compression
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.sim.discord.server import Simulator
from tests.conftest import TOKEN, SimFactory, http_json, wait_for
from tests.fakes import GrantAll

pytestmark = pytest.mark.timeout(60)


@dataclass
class Run:
    sim: Simulator
    shards: list[DiscordShard]
    tasks: list[asyncio.Task[None]]
    events: list[Event] = field(default_factory=list)

    def by_session(self) -> dict[str, list[int]]:
        seqs: dict[str, list[int]] = defaultdict(list)
        for e in self.events:
            seqs[e.session].append(e.seq)
        return seqs

    async def fault(self, **spec: Any) -> None:
        status, body, _ = await http_json(self.sim, "POST", "/_sim/fault", spec)
        assert status == 200, body

    async def fault_and_recover(self, **spec: Any) -> None:
        """Inject a fault on shard 0, wait until it resumed or has a new session, and for 30 more events."""
        shard = self.shards[0]
        first, resumes = shard.session_id, shard.counters.resumes
        await self.fault(**spec)
        await wait_for(
            lambda: shard.counters.resumes > resumes or shard.session_id not in (None, first), 15, "recovery"
        )
        await self.received(shard, 30)

    async def received(self, shard: DiscordShard, count: int) -> None:
        start = shard.counters.events_in
        await wait_for(
            lambda: shard.counters.events_in >= start + count, 15, f"{count} more events on {shard}"
        )

    async def settle_and_check(
        self, identifies: int | None = None, resumes: int | None = None, violations: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Stop the stream, wait until every shard has what was sent, check nothing was lost."""
        self.sim.config = self.sim.config.replace(rate=0)
        for shard in self.shards:
            await wait_for(lambda s=shard: s.state is ConnState.READY, 15, f"{shard} ready")
            session = self.sim.sessions[shard.session_id or ""]
            await wait_for(lambda s=shard, ss=session: s.seq == ss.last_seq, 15, f"{shard} caught up")
        stats = self.sim.stats()
        for session_id, seqs in self.by_session().items():
            assert seqs == list(range(1, len(seqs) + 1)), f"session {session_id}: lost or repeated dispatches"
            sim_session = self.sim.sessions[session_id]
            if sim_session.ended is None:
                assert seqs[-1] == sim_session.last_seq
        assert [v["kind"] for v in stats["violations"]] == list(violations), stats["violations"]
        accepted_identifies = [i for i in stats["identifies"] if i["accepted"]]
        accepted_resumes = [r for r in stats["resumes"] if r["accepted"]]
        if identifies is not None:
            assert len(accepted_identifies) == identifies, accepted_identifies
        if resumes is not None:
            assert len(accepted_resumes) == resumes, stats["resumes"]
        return stats

    async def stop(self) -> None:
        for shard in self.shards:
            await shard.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def start(sim_factory: SimFactory) -> Any:
    runs: list[Run] = []

    async def go(
        count: int = 1,
        compression: Compression = Compression.ZLIB_STREAM,
        queue: Any = None,
        seed: int = 7,
        **sim_options: Any,
    ) -> Run:
        sim_options.setdefault("shards", count)
        sim_options.setdefault("rate", 200)
        sim_options.setdefault("guilds_per_shard", 3)
        sim = await sim_factory(**sim_options)
        clock = RealClock(random.Random(seed))
        buckets = sim.config.max_concurrency
        queue = queue or LocalIdentifyQueue(
            [StartLimit("discord.identify", buckets, sim.config.identify_window)],
            lambda c: ("discord.identify", c.shard % buckets),
            clock=clock,
        )
        run = Run(sim, [], [])
        options = ShardOptions(
            token=TOKEN, intents=513, compression=compression, backoff_base=0.05, backoff_cap=0.5
        )
        for i in range(count):
            shard = DiscordShard(
                ConnKey("discord", 0, i, count),
                options,
                run.events.append,
                gateway_url=sim.gateway_url,
                identify_queue=queue,
                clock=clock,
            )
            run.shards.append(shard)
            run.tasks.append(asyncio.ensure_future(shard.run()))
        for shard in run.shards:
            await wait_for(lambda s=shard: s.state is ConnState.READY, 15, f"{shard} ready")
        runs.append(run)
        return run

    yield go
    for run in runs:
        await run.stop()


@pytest.mark.parametrize("compression", list(Compression))
async def test_shard_when_connected_receives_every_dispatch_in_each_compression(
    start: Any, compression: Compression
) -> None:
    run = await start(2, compression, heartbeat_interval_ms=300, max_concurrency=2)
    await run.received(run.shards[1], 100)
    stats = await run.settle_and_check(identifies=2, resumes=0)
    assert {e.name for e in run.events} >= {"READY", "GUILD_CREATE", "MESSAGE_CREATE"}
    assert all(s.counters.key_count == 3 for s in run.shards)
    assert all(s.counters.heartbeat_latency is not None for s in run.shards)
    guild_events = [e for e in run.events if e.key is not None and e.name != "GUILD_CREATE"]
    assert all((e.key >> 22) % 2 == e.conn.shard for e in guild_events)  # type: ignore[operator]
    assert [i["bucket"] for i in stats["identifies"]] == [0, 1]


async def test_shard_when_gateway_sends_op7_resumes_without_loss(start: Any) -> None:
    run = await start()
    await run.received(run.shards[0], 50)
    await run.fault(kind="reconnect")
    await wait_for(lambda: run.shards[0].counters.resumes == 1, 10, "resume")
    await run.received(run.shards[0], 50)
    await run.settle_and_check(identifies=1, resumes=1)


async def test_shard_when_resumed_hands_on_resumed_with_its_own_seq_and_counts_no_gap_or_duplicate(
    start: Any,
) -> None:
    run = await start()
    shard = run.shards[0]
    await run.received(shard, 50)
    await run.fault(kind="reconnect")
    await wait_for(lambda: shard.counters.resumes == 1, 10, "resume")
    await run.received(shard, 30)
    stats = await run.settle_and_check(identifies=1, resumes=1)
    (i,) = [i for i, e in enumerate(run.events) if e.name == "RESUMED"]
    resumed = run.events[i]
    (resume,) = stats["resumes"]
    # The seq after the last replayed dispatch, as on Discord; the stream goes on after it.
    assert resumed.seq == resume["seq"] + resume["replayed"] + 1
    assert run.events[i - 1].seq == resumed.seq - 1
    assert run.events[i + 1].seq == resumed.seq + 1
    assert (resumed.conn, resumed.session, resumed.key) == (shard.conn, shard.session_id, None)
    assert (shard.counters.gaps, shard.counters.duplicates) == (0, 0)


@pytest.mark.parametrize("resumable", [True, False])
async def test_shard_when_gateway_sends_op9_resumes_or_identifies(start: Any, resumable: bool) -> None:
    run = await start()
    await run.received(run.shards[0], 30)
    await run.fault_and_recover(kind="invalid_session", resumable=resumable)
    await run.settle_and_check(identifies=1 if resumable else 2, resumes=1 if resumable else 0)


async def test_shard_when_tcp_drops_resumes_without_loss(start: Any) -> None:
    run = await start()
    await run.received(run.shards[0], 50)
    await run.fault(kind="drop")
    await wait_for(lambda: run.shards[0].counters.resumes == 1, 10, "resume")
    await run.received(run.shards[0], 50)
    await run.settle_and_check(identifies=1, resumes=1)


@pytest.mark.parametrize(
    ("code", "identifies", "resumes"), [(4000, 1, 1), (4008, 1, 1), (4009, 2, 0), (4007, 2, 0)]
)
async def test_shard_when_gateway_closes_follows_the_close_code_table(
    start: Any, code: int, identifies: int, resumes: int
) -> None:
    run = await start()
    await run.received(run.shards[0], 30)
    await run.fault_and_recover(kind="close", code=code)
    await run.settle_and_check(identifies=identifies, resumes=resumes)


async def test_shard_when_gateway_closes_with_fatal_code_stops_and_never_reconnects(start: Any) -> None:
    run = await start()
    await run.fault(kind="close", code=4004)
    with pytest.raises(ShardFatalError, match="Discord rejected the token"):
        await asyncio.wait_for(run.tasks[0], 10)
    assert run.shards[0].state is ConnState.FATAL
    stats = run.sim.stats()
    assert len(stats["identifies"]) == 1
    assert stats["resumes"] == []


async def test_shard_when_token_is_wrong_fails_at_once_with_advice(
    start: Any, sim_factory: SimFactory
) -> None:
    sim = await sim_factory()
    shard = DiscordShard(
        ConnKey("discord", 0, 0, 1),
        ShardOptions(token="bad-token", intents=1),
        lambda e: None,
        gateway_url=sim.gateway_url,
    )
    with pytest.raises(ShardFatalError, match="4004") as info:
        await asyncio.wait_for(shard.run(), 10)
    assert "bad-token" not in str(info.value)
    assert len(sim.stats()["identifies"]) == 1


async def test_shard_when_heartbeats_are_not_acknowledged_detects_zombie_and_resumes(start: Any) -> None:
    run = await start(heartbeat_interval_ms=200)
    await run.received(run.shards[0], 20)
    await run.fault(kind="zombie")
    await wait_for(lambda: run.shards[0].counters.resumes == 1, 10, "resume after zombie")
    await run.received(run.shards[0], 20)
    await run.settle_and_check(identifies=1, resumes=1)
    closes = [c for c in run.sim.stats()["closes"] if c["by"] == "client"]
    assert closes
    assert all(c["code"] not in (1000, 1001) for c in closes)


async def test_shard_when_gateway_stalls_detects_it_and_resumes(start: Any) -> None:
    run = await start(heartbeat_interval_ms=200)
    await run.received(run.shards[0], 20)
    await run.fault(kind="stall", duration=3)
    await wait_for(lambda: run.shards[0].counters.resumes == 1, 10, "resume after stall")
    await run.received(run.shards[0], 20)
    await run.settle_and_check(identifies=1, resumes=1)


async def test_shard_when_resume_url_is_down_falls_back_to_the_gateway_url(start: Any) -> None:
    run = await start(resume_gateway_url="ws://127.0.0.1:9")  # nothing listens on the discard port
    await run.received(run.shards[0], 30)
    await run.fault(kind="drop")
    await wait_for(lambda: run.shards[0].counters.resumes == 1, 10, "resume through the gateway URL")
    await run.received(run.shards[0], 30)
    await run.settle_and_check(identifies=1, resumes=1)


async def test_shard_when_stream_is_garbage_reconnects_and_resumes(start: Any) -> None:
    run = await start()
    await run.received(run.shards[0], 30)
    await run.fault(kind="garbage")
    await wait_for(lambda: run.shards[0].counters.resumes == 1, 10, "resume after garbage")
    await run.received(run.shards[0], 30)
    await run.settle_and_check(identifies=1, resumes=1)


async def test_shards_when_sharing_a_queue_never_identify_too_fast(start: Any) -> None:
    run = await start(4, identify_window=0.3, max_concurrency=1, guilds_per_shard=1)
    stats = await run.settle_and_check(identifies=4, resumes=0)
    times = sorted(i["time"] for i in stats["identifies"])
    assert all(b - a >= 0.3 for a, b in itertools.pairwise(times))
    assert [i["shard"][0] for i in stats["identifies"]] == [0, 1, 2, 3]


async def test_shard_when_identifying_in_a_busy_bucket_gets_op9_and_identifies_later(
    start: Any, sim_factory: SimFactory
) -> None:
    # A queue that lets everyone through at once: the gateway answers the second identify with op 9.
    run = await start(2, queue=GrantAll(), identify_window=0.5, max_concurrency=1, guilds_per_shard=1)
    stats = await run.settle_and_check(identifies=2, violations=("identify_rate",))
    rejected = [i for i in stats["identifies"] if not i["accepted"]]
    assert rejected
    assert rejected[0]["reason"] == "identify rate limit"


async def test_shard_when_commands_burst_stays_under_the_gateway_limit(start: Any) -> None:
    run = await start(rate=0)
    shard = run.shards[0]
    senders = [
        asyncio.ensure_future(shard.update_presence({"status": "online", "n": i}, timeout=1))
        for i in range(130)
    ]
    await wait_for(lambda: len(run.sim.stats()["commands"]) >= 100, 10, "commands")
    results = await asyncio.gather(*senders, return_exceptions=True)
    sent = sum(r is None for r in results)
    refused = [r for r in results if r is not None]
    assert all(isinstance(r, NotReady) and "outbound limit" in str(r) for r in refused)
    assert 100 <= sent <= 117, "the limiter keeps room for heartbeats"
    assert len(run.sim.stats()["commands"]) == sent
    assert shard.state is ConnState.READY
    assert not any(c["code"] == 4008 for c in run.sim.stats()["closes"])


async def test_shard_when_handed_off_resumes_in_a_new_shard_without_loss(start: Any) -> None:
    run = await start()
    old = run.shards[0]
    await run.received(old, 40)
    snapshot = await old.close(handoff=True)
    assert snapshot is not None
    await asyncio.wait_for(run.tasks[0], 5)
    new = DiscordShard(
        old.conn, old.options, run.events.append, gateway_url=run.sim.gateway_url,
        identify_queue=GrantAll(), snapshot=snapshot,
    )  # fmt: skip
    run.shards[0] = new
    run.tasks[0] = asyncio.ensure_future(new.run())
    await wait_for(lambda: new.counters.resumes == 1, 10, "resume in the new shard")
    await run.received(new, 40)
    await run.settle_and_check(identifies=1, resumes=1)
    assert new.counters.identifies == 0
