"""The shard's receive side beyond the dispatch path of test_shard.py: the routing keys a session's
READY announced and that have not come yet (``keys_pending``: a reshard's new set switches at 0)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from shardrunner.gateway.connection import ConnState
from shardrunner.gateway.discord import DiscordShard, ShardOptions
from shardrunner.protocol.compression import Compression
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from tests.fakes import FakeClock, FakeConnection, FakeTransport, GrantAll

CONN = ConnKey("discord", 1, 0, 8)


@dataclass
class Rig:
    shard: DiscordShard
    clock: FakeClock
    transport: FakeTransport
    events: list[Event]

    async def connection(self, n: int) -> FakeConnection:
        """Wait (in virtual time) until the n-th connection (1-based) is open."""
        for _ in range(200):
            if len(self.transport.connections) >= n:
                return self.transport.connections[n - 1]
            await self.clock.advance(0.5)
        raise AssertionError(f"no connection #{n}")

    @property
    def pending(self) -> int:
        return self.shard.counters.keys_pending


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock, transport, events = FakeClock(fixed_random=0.5), FakeTransport(), []
    shard = DiscordShard(
        CONN,
        ShardOptions(token="MTEwMA.x.y", intents=513, compression=Compression.NONE),
        events.append,
        gateway_url="ws://gateway.test",
        identify_queue=GrantAll(),
        transport=transport,
        clock=clock,
    )
    task = asyncio.ensure_future(shard.run())
    yield Rig(shard, clock, transport, events)
    if not task.done():
        await shard.close()
        await clock.advance(1)
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_keys_pending_when_ready_lists_guilds_counts_down_as_their_create_or_delete_comes(
    rig: Rig,
) -> None:
    conn = await rig.connection(1)
    conn.hello()
    await rig.clock.settle()
    assert rig.pending == 0
    conn.ready(guilds=[1 << 22, 2 << 22, 3 << 22, 4 << 22])
    await rig.clock.settle()
    assert rig.shard.state is ConnState.READY
    assert rig.pending == 4, "READY's guilds are all pending"
    conn.dispatch(2, "GUILD_CREATE", {"id": str(1 << 22), "name": "a"})
    conn.dispatch(3, "GUILD_UPDATE", {"id": str(2 << 22), "name": "b"})  # not what READY promised
    conn.dispatch(4, "MESSAGE_CREATE", {"id": "5", "guild_id": str(2 << 22)})
    conn.dispatch(5, "GUILD_CREATE", {"id": str(9 << 22), "name": "joined"})  # a new guild: not pending
    conn.dispatch(6, "GUILD_CREATE", {"id": str(1 << 22), "name": "a"})  # again: nothing changes
    assert rig.pending == 3
    conn.dispatch(7, "GUILD_DELETE", {"id": str(2 << 22), "unavailable": True})  # an outage: it won't come
    conn.dispatch(8, "GUILD_DELETE", {"id": str(3 << 22)})  # left meanwhile
    assert rig.pending == 1
    conn.dispatch(9, "GUILD_CREATE", {"id": str(4 << 22), "name": "d"})
    assert rig.pending == 0
    assert rig.shard.counters.key_count == 4, "the keys follow as before (1, 2, 4 and 9)"
    assert [e.seq for e in rig.events] == list(range(1, 10)), "every event still handed on"


async def test_keys_pending_when_the_session_resumes_keeps_counting_and_a_new_ready_starts_afresh(
    rig: Rig,
) -> None:
    conn = await rig.connection(1)
    conn.hello()
    await rig.clock.settle()
    conn.ready(guilds=[1, 2, 3])
    conn.dispatch(2, "GUILD_CREATE", {"id": "1"})
    await rig.clock.settle()
    conn.server_close(None)  # lost: the shard resumes
    conn2 = await rig.connection(2)
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == 6
    conn2.deliver({"op": 0, "s": 3, "t": "RESUMED", "d": {}})
    await rig.clock.settle()
    assert rig.shard.counters.resumes == 1
    assert rig.pending == 2, "RESUMED does not change what is pending"
    conn2.dispatch(4, "GUILD_CREATE", {"id": "2"})
    assert rig.pending == 1
    conn2.deliver({"op": 9, "s": None, "t": None, "d": False})  # the session is gone: identify anew
    conn3 = await rig.connection(3)
    conn3.hello()
    await rig.clock.advance(6)
    conn3.ready(session_id="sess-2", guilds=[5, 6])
    await rig.clock.settle()
    assert rig.shard.session_id == "sess-2"
    assert rig.pending == 2, "a new session's READY: its own guilds"
