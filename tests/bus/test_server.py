"""The worker's bus endpoint over a real ZeroMQ socket, without a worker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
import zmq
import zmq.asyncio

from shardrunner.bus import protocol as p
from shardrunner.bus.router import Limits, Router
from shardrunner.bus.server import BusServer
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from tests.conftest import wait_for

CONN = ConnKey("discord", 1, 3, 8)


class Bench:
    """A bus server running in this loop and one member's DEALER socket connected to it."""

    def __init__(self, server: BusServer, member: zmq.asyncio.Socket, commands: list[p.Command]) -> None:
        self.server = server
        self.member = member
        self.commands = commands

    async def receive(self) -> p.BusMessage:
        assert await self.member.poll(5000), "nothing came from the bus server"
        return p.decode(await self.member.recv())


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    ctx = zmq.asyncio.Context()
    commands: list[p.Command] = []

    async def run_command(command: p.Command) -> tuple[str | None, object]:
        commands.append(command)
        return (None, None) if command.conn == CONN else (f"no connection {command.conn}", None)

    server = BusServer(ctx, f"ipc://{tmp_path}/bus.sock", Router(), run_command)
    server.bind()
    task = asyncio.ensure_future(server.run())
    member = ctx.socket(zmq.DEALER)
    member.setsockopt(zmq.LINGER, 0)
    member.connect(server.endpoint)
    try:
        yield Bench(server, member, commands)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        member.close()
        server.close()
        ctx.term()


async def test_bus_server_drain_when_a_member_has_not_acked_times_out_then_succeeds_once_it_has(
    bench: Bench,
) -> None:
    await bench.member.send(p.encode(p.Join("g", "m")))
    await wait_for(lambda: "g" in bench.server.router.groups, 5, "the member's join")
    bench.server.publish(Event(CONN, "s", 1, "MESSAGE_CREATE", 7, b"{}"))
    batch = await bench.receive()
    assert isinstance(batch, p.Batch)
    assert [(e.conn, e.seq) for e in batch.events] == [(CONN, 1)]
    assert not await bench.server.drain(0.1), "unacknowledged: not drained"
    await bench.member.send(p.encode(p.Ack("g", "m", batch.batch)))
    assert await bench.server.drain(5)


async def test_bus_server_when_a_command_comes_runs_it_and_answers_with_its_result(bench: Bench) -> None:
    body = {"op": 3, "d": {"status": "dnd"}}
    await bench.member.send(p.encode(p.Command(1, "discord", body, conn=CONN, key=42)))
    await bench.member.send(p.encode(p.Command(2, "discord", body, conn=ConnKey("discord", 0, 3, 4))))
    results = {
        m.request: m for m in [await bench.receive(), await bench.receive()] if isinstance(m, p.CommandResult)
    }
    assert results[1] == p.CommandResult(1, True, None)
    assert results[2] == p.CommandResult(2, False, "no connection discord:3/4")
    assert [(c.conn, c.key, c.body) for c in bench.commands] == [
        (CONN, 42, body),
        (ConnKey("discord", 0, 3, 4), None, body),
    ]


async def test_bus_server_drain_when_absent_also_waits_for_durable_groups_without_members(
    bench: Bench,
) -> None:
    bench.server.router.declare("away", None)
    bench.server.router.join(b"gone", p.Join("tail", "gone", durable=False), 0)
    bench.server.router.leave("tail", "gone")  # an ephemeral group without members is no more
    bench.server.publish(Event(CONN, "s", 1, "MESSAGE_CREATE", 7, b"{}"))
    assert await bench.server.drain(5), "a handoff does not wait for a group without members"
    assert not await bench.server.drain(0.1, absent=True), "a finish does: its backlog is owed"
    await bench.member.send(p.encode(p.Join("away", "m")))
    batch = await bench.receive()
    assert isinstance(batch, p.Batch)
    assert [(e.conn, e.seq) for e in batch.events] == [(CONN, 1)]
    assert not await bench.server.drain(0.1, absent=True), "sent, not acknowledged"
    await bench.member.send(p.encode(p.Ack("away", "m", batch.batch)))
    assert await bench.server.drain(5, absent=True)


async def test_bus_server_when_its_fence_has_passed_sends_no_batch_but_answers_commands_until_lifted(
    bench: Bench,
) -> None:
    await bench.member.send(p.encode(p.Join("g", "m")))
    await wait_for(lambda: "g" in bench.server.router.groups, 5, "the member's join")
    bench.server.fence(time.monotonic() - 1.0)
    assert bench.server.fenced()
    bench.server.publish(Event(CONN, "s", 1, "MESSAGE_CREATE", 7, b"{}"))
    await bench.member.send(p.encode(p.Command(9, "discord", {}, conn=CONN)))
    answer = await bench.receive()
    assert answer == p.CommandResult(9, True, None), "the command's answer, and no batch before it"
    assert bench.server.router.low_water() == {(CONN, "s"): 1}, "the event stays held"
    bench.server.fence(time.monotonic() + 60.0)  # renewed: what waited goes out
    batch = await bench.receive()
    assert isinstance(batch, p.Batch)
    assert [e.seq for e in batch.events] == [1]


async def test_bus_server_drain_when_given_conns_waits_only_for_their_events(bench: Bench) -> None:
    await bench.member.send(p.encode(p.Join("g", "m")))
    await wait_for(lambda: "g" in bench.server.router.groups, 5, "the member's join")
    other = ConnKey("discord", 1, 4, 8)
    bench.server.publish(Event(CONN, "s", 1, "MESSAGE_CREATE", 7, b"{}"))
    bench.server.publish(Event(other, "t", 1, "MESSAGE_CREATE", 8, b"{}"))
    batch = await bench.receive()
    assert isinstance(batch, p.Batch)
    assert not await bench.server.drain(0.1, conns={CONN}), "its event is not acknowledged"
    await bench.member.send(p.encode(p.Ack("g", "m", batch.batch)))
    bench.server.publish(Event(other, "t", 2, "MESSAGE_CREATE", 8, b"{}"))  # owed, of another conn
    await wait_for(lambda: not bench.server.router.low_water().get((CONN, "s")), 5, "the ack")
    assert await bench.server.drain(5, conns={CONN})


async def test_bus_server_when_asked_for_state_answers_in_chunks_with_the_marks_on_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shardrunner.bus.server as server_module

    monkeypatch.setattr(server_module, "STATE_CHUNK_BYTES", 10)
    events = [Event(CONN, "s", i, "GUILD_CREATE", i, b"x" * 6) for i in range(1, 6)]
    marks = [p.StateMark(CONN, "s", 9)]
    asked: list[str] = []

    def state(platform: str) -> tuple[list[Event], list[p.StateMark]]:
        asked.append(platform)
        return (events, marks) if platform == "discord" else ([], [])

    async def no_command(command: p.Command) -> tuple[str | None, object]:
        return "no", None

    ctx = zmq.asyncio.Context()
    server = BusServer(ctx, f"ipc://{tmp_path}/state.sock", Router(), no_command, state=state)
    server.bind()
    task = asyncio.ensure_future(server.run())
    member = ctx.socket(zmq.DEALER)
    member.setsockopt(zmq.LINGER, 0)
    member.connect(server.endpoint)
    bench = Bench(server, member, [])
    try:
        await member.send(p.encode(p.StateRequest(7, "discord")))
        parts = [await bench.receive() for _ in range(5)]
        await member.send(p.encode(p.StateRequest(8, "twitch")))
        empty = await bench.receive()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        member.close()
        server.close()
        ctx.term()
    assert all(isinstance(m, p.State) and m.request == 7 for m in parts)
    states = [m for m in parts if isinstance(m, p.State)]
    assert [e.seq for m in states for e in m.events] == [1, 2, 3, 4, 5]
    assert [m.last for m in states] == [False] * 4 + [True]
    assert [m.marks for m in states] == [[]] * 4 + [marks]
    assert empty == p.State(8, [], [], last=True)
    assert asked == ["discord", "twitch"]


async def test_bus_server_when_a_stuck_bot_meets_a_flooded_shard_stays_within_its_bounds_and_tells_the_gap(
    tmp_path: Path,
) -> None:
    """20x the queue offered, one shard at 20x the other's rate, to a member that joined and then
    neither reads nor acknowledges: the router's accounting and the process's RSS stay under what
    the bounds allow, and once the bot reads again it gets every event but the dropped ones, which
    its gaps name exactly (the group's ``dropped`` counts them)."""
    size, limits = 8192, Limits(max_events=2000, max_bytes=4 << 20, max_inflight_bytes=2 << 20)
    offered = 20 * limits.max_events
    flooded, quiet = ConnKey("discord", 0, 0, 2), ConnKey("discord", 0, 1, 2)

    async def no_command(command: p.Command) -> tuple[str | None, object]:
        return "no", None

    ctx = zmq.asyncio.Context()
    router = Router(limits)
    server = BusServer(ctx, f"ipc://{tmp_path}/flood.sock", router, no_command)
    server.bind()
    task = asyncio.ensure_future(server.run())
    member = ctx.socket(zmq.DEALER)
    member.setsockopt(zmq.LINGER, 0)
    member.connect(server.endpoint)
    rss = psutil.Process().memory_info
    try:
        await member.send(p.encode(p.Join("g", "m")))
        await wait_for(lambda: "g" in router.groups, 5, "the member's join")
        group = router.groups["g"]
        # What the bounds allow: the queue's bytes, the bytes window (held by the router, copied
        # once into ZeroMQ's queue and once more into this process's DEALER), and each held
        # event's object (under 1 KiB), plus 24 MiB for the allocator's slack.
        ceiling = limits.max_bytes + 3 * limits.max_inflight_bytes + limits.max_events * 1024 + (24 << 20)
        before, peak = rss().rss, 0
        seqs = {flooded: 0, quiet: 0}
        for n in range(offered):
            conn = quiet if n % 21 == 20 else flooded
            seqs[conn] += 1
            server.publish(Event(conn, "s", seqs[conn], "MESSAGE_CREATE", n % 50, bytes(size)))
            if n % 500 == 499:
                await asyncio.sleep(0)  # a turn of the loop: the flush, the socket
                assert group.held_events <= limits.max_events
                assert group.held_bytes <= limits.max_bytes
                assert group.members["m"].inflight_bytes <= limits.max_inflight_bytes
                peak = max(peak, rss().rss - before)
        assert peak < ceiling, f"RSS grew {peak >> 20} MiB; the bounds allow {ceiling >> 20} MiB"
        assert offered * size > 8 * ceiling, "the test offers far more than the bounds allow"
        stats = router.group_stats()[0]
        assert stats.dropped == group.dropped_total > offered - limits.max_events
        # The bot reads again: it acknowledges every batch, collects its gaps.
        got: dict[ConnKey, set[int]] = {flooded: set(), quiet: set()}
        gaps: dict[ConnKey, set[int]] = {flooded: set(), quiet: set()}
        told = 0
        deadline = time.monotonic() + 10
        # Until nothing is owed and every drop was told (the last gap within a second: GAP_EVERY_S).
        while await member.poll(100) or group.owes() or told < group.dropped_total:
            assert time.monotonic() < deadline, f"still owed after 10 s: {group.owes()}"
            if not await member.poll(0):
                continue
            message = p.decode(await member.recv())
            if isinstance(message, p.Batch):
                for e in message.events:
                    got[e.conn].add(e.seq)
                await member.send(p.encode(p.Ack("g", "m", message.batch)))
            elif isinstance(message, p.Gap):
                assert message.session == "s"
                told += message.count
                for a, b in message.ranges:
                    gaps[message.conn].update(range(a, b + 1))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        member.close()
        server.close()
        ctx.term()
    for conn, last in seqs.items():
        assert not got[conn] & gaps[conn], f"{conn}: a seq both delivered and reported lost"
        assert got[conn] | gaps[conn] == set(range(1, last + 1)), f"{conn}: a seq unaccounted for"
    assert told == stats.dropped == sum(map(len, gaps.values()))
    assert gaps[quiet], "the quiet shard's old events are dropped too: the bound is the group's"
