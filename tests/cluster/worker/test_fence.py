"""The lease fence with the real bus: a worker (fake platform, fake clock) whose bus is a real
BusServer and Router, and one bot's DEALER socket. Events published after the fence are in no
batch, and the fenced release's session is rewound before the first of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from shardrunner.bus import protocol as p
from shardrunner.bus.router import Router
from shardrunner.bus.server import BusServer
from shardrunner.cluster import messages as m
from shardrunner.cluster.worker.conns import ConnTable
from shardrunner.cluster.worker.core import Worker
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from tests.conftest import wait_for
from tests.fakes import FakeClock, FakePlatform

CONN = ConnKey("discord", 0, 0, 2)
OTHER = ConnKey("discord", 0, 1, 2)


class Rig:
    def __init__(
        self, worker: Worker, clock: FakeClock, platform: FakePlatform, bot: zmq.asyncio.Socket
    ) -> None:
        self.worker, self.clock, self.platform, self.bot = worker, clock, platform, bot

    @property
    def server(self) -> BusServer:
        assert isinstance(self.worker.bus, BusServer)
        return self.worker.bus

    def publish(self, seq: int) -> None:
        fake = self.platform.latest(CONN)
        fake.seq = seq
        self.server.publish(Event(CONN, fake.session_id or "", seq, "MESSAGE_CREATE", 7, b"{}", 3))

    async def batch(self) -> p.Batch:
        assert await self.bot.poll(5000), "no batch came"
        message = p.decode(await self.bot.recv())
        assert isinstance(message, p.Batch)
        return message


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ctx = zmq.asyncio.Context()
    clock, platform = FakeClock(fixed_random=0.5), FakePlatform()

    def make_bus(assign: m.Assign, conns: ConnTable) -> BusServer:
        server = BusServer(ctx, assign.bus_endpoint, Router(), conns.command, monotonic=clock.monotonic)
        server.bind()
        return server

    worker = Worker(1, 1, make_bus=make_bus, load=lambda name: platform, clock=clock)
    bot = ctx.socket(zmq.DEALER)
    bot.setsockopt(zmq.LINGER, 0)
    try:
        yield Rig(worker, clock, platform, bot)
    finally:
        await worker.conns.close_all()
        worker.close()
        await asyncio.sleep(0)  # the bus task's cancellation runs
        bot.close()
        ctx.term()


async def test_fence_when_it_passes_events_after_it_are_in_no_batch_and_the_session_rewinds_before_them(
    rig: Any, tmp_path: Path
) -> None:
    until = rig.clock.now + 5.0
    part = m.PlatformPart("discord", [CONN, OTHER], b"config")
    rig.worker.start(m.Assign([part], bus_endpoint=f"ipc://{tmp_path}/bus.sock", lease_until=until))
    await rig.clock.settle()
    rig.bot.connect(rig.server.endpoint)
    await rig.bot.send(p.encode(p.Join("bots", "m1", durable=True)))
    await wait_for(lambda: "bots" in rig.server.router.groups, 5, "the bot's join")
    for seq in (1, 2, 3):
        rig.publish(seq)
    first = await rig.batch()
    assert [e.seq for e in first.events] == [1, 2, 3]
    assert {e.epoch for e in first.events} == {3}
    await rig.bot.send(p.encode(p.Ack("bots", "m1", first.batch)))
    await wait_for(lambda: not rig.server.router.low_water(), 5, "the ack")
    # Past the fence (the worker's timer has not fired yet): the bus's flush stops on its own.
    rig.clock.now = until + 0.1
    for seq in (4, 5, 6):
        rig.publish(seq)
    rig.server.flush()  # as the publish scheduled it
    member = rig.server.router.groups["bots"].members["m1"]
    assert [e.seq for e, _ in member.waiting] == [4, 5, 6], "held, not sent"
    assert not member.inflight
    said = []
    await rig.clock.advance(0)  # the timer fires: everything released
    while not rig.worker.outbox.empty():
        said.append(rig.worker.outbox.get_nowait())
    (released,) = [x for x in said if isinstance(x, m.Released)]
    assert released.fenced
    seqs = {s.conn: s.seq for s in released.snapshots}
    assert seqs[CONN] == 3, "the next holder resumes before the first event past the fence"
    assert not rig.worker.conns
    # Renewed after all: the held events go out, in the very next batch (none was sent between).
    rig.worker.handle(m.LeaseUntil(rig.clock.now + 10.0))
    second = await rig.batch()
    assert second.batch == first.batch + 1
    assert [e.seq for e in second.events] == [4, 5, 6]
