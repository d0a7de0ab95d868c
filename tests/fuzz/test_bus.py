"""Bad input on a worker's bus: a rogue or buggy bot beside a good one (docs/delivery.md, bad input).

Whatever the rogue sends (garbage, messages of the wrong shape, impossible acks, another member's
acks and leaves, a state request storm), the worker's loop goes on, the refusal is counted, and the
good member gets every event once. The property tests drive the server's message handling without
sockets; the last tests run a real BusServer on an ipc path with rogue DEALERs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq
import zmq.asyncio
from hypothesis import given
from hypothesis import strategies as st

from shardrunner.bus import checks
from shardrunner.bus import protocol as p
from shardrunner.bus.groups import Limits
from shardrunner.bus.router import Router
from shardrunner.bus.server import BusServer
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from tests.conftest import wait_for
from tests.fuzz.corpus import corpus

CONN = ConnKey("discord", 0, 0, 1)
GOOD, ROGUE = b"\x00good", b"\x00rogue"


async def _no_command(command: p.Command) -> tuple[str | None, Any]:
    return "no connection here", None


def _no_state(platform: str) -> tuple[list[Event], list[p.StateMark]]:
    return [Event(CONN, "s", 1, "GUILD_CREATE", 1, b"{}")], [p.StateMark(CONN, "s", 1)]


class Offline:
    """A BusServer whose messages are handed in and whose output is taken from its router (its
    sockets exist but are never bound): one good member of group ``g``, a rogue beside it."""

    def __init__(self, ctx: zmq.asyncio.Context) -> None:
        self.server = BusServer(ctx, "inproc://unused", Router(), _no_command, state=_no_state)
        self.server.close()  # never bound: what it sends stays in the router's outbox for pump()
        self.server.flush = lambda: None  # type: ignore[method-assign]
        self.router = self.server.router
        self.now = 1000.0
        self.seq = 0
        self.published: list[int] = []
        self.received: list[int] = []
        self.to_rogue: list[p.BusMessage] = []
        self.send(GOOD, p.encode(p.Join("g", "good")))

    def send(self, identity: bytes, data: bytes) -> None:
        self.server._on_message(identity, data, self.now)

    def publish(self, n: int) -> None:
        for _ in range(n):
            self.seq += 1
            self.server.router.publish(Event(CONN, "s", self.seq, "MESSAGE_CREATE", self.seq % 7, b"{}"))
            self.published.append(self.seq)

    def pump(self) -> None:
        """Take what the server sends; the good member acknowledges every batch it gets."""
        for _ in range(1000):
            out = self.router.flush()
            if not out:
                return
            for identity, data in out:
                message = p.decode(data)
                if identity == GOOD and isinstance(message, p.Batch):
                    self.received.extend(e.seq for e in message.events)
                    self.send(GOOD, p.encode(p.Ack("g", "good", message.batch)))
                elif identity == ROGUE:
                    self.to_rogue.append(message)
        raise AssertionError("the server kept sending")


@pytest.fixture(scope="module")
def ctx() -> Any:
    context = zmq.asyncio.Context()
    yield context
    context.destroy(linger=0)  # the offline servers' sockets too


names = st.sampled_from(["g", "good", "rogue", "other", ""]) | st.text(max_size=8)
others = names.filter(lambda g: g != "g")
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
#: Messages of the right shape a rogue may send, with any field values; never a join of group "g"
#: (a member of the group takes its share of the keys, rightly).
structured = st.one_of(
    st.builds(p.Ack, names, names, ints),
    st.builds(p.Leave, names, names),
    st.builds(p.Join, others, names, st.none() | st.lists(names, max_size=3)),
    st.builds(p.Alive, names, st.lists(st.builds(p.Join, others, names), max_size=2)),
    st.builds(p.StateRequest, ints, names),
    st.builds(p.Batch, names, ints, st.just([])),
    st.builds(p.Gap, names, st.just(CONN), names, ints, st.just([])),
    st.builds(p.CommandResult, ints, st.booleans()),
    st.builds(p.State, ints, st.just([])),
    st.builds(p.Rejected, names),
).map(p.encode)
#: Any msgpack document: the right encoding of the wrong shapes.
documents = st.recursive(
    st.none() | st.booleans() | ints | st.floats() | st.text(max_size=10) | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
tagged = st.dictionaries(st.sampled_from(["type", "group", "member", "batch", "request"]), documents).map(
    lambda d: msgspec.msgpack.encode({"type": "ack", **d})
)
garbage = st.one_of(structured, documents.map(msgspec.msgpack.encode), tagged, st.binary(max_size=64))


@given(rounds=st.lists(st.tuples(st.integers(0, 5), st.lists(garbage, max_size=4)), min_size=1, max_size=6))
def test_bus_when_a_rogue_sends_anything_the_good_member_gets_every_event_once(
    ctx: zmq.asyncio.Context, rounds: list[tuple[int, list[bytes]]]
) -> None:
    bench = Offline(ctx)

    async def run() -> None:  # in a loop: a command the rogue sends runs in a task
        for events, messages in rounds:
            bench.publish(events)
            for data in messages:
                bench.send(ROGUE, data)
            bench.pump()

    asyncio.run(run())
    assert sorted(bench.received) == bench.published, "every event, once, to the good member"
    assert len(bench.received) == len(set(bench.received))
    assert bench.router.rejected >= sum(isinstance(m, p.Rejected) for m in bench.to_rogue)


async def test_bus_when_the_corpus_is_replayed_each_input_is_refused_or_handled_and_the_good_member_goes_on(
    ctx: zmq.asyncio.Context,
) -> None:
    for name, data in corpus("bus"):
        bench = Offline(ctx)
        bench.publish(3)
        bench.send(ROGUE, data)
        bench.publish(2)
        await asyncio.sleep(0)  # a command's task answers
        bench.pump()
        assert bench.received == [1, 2, 3, 4, 5], name
        refused = [m for m in bench.to_rogue if isinstance(m, p.Rejected)]
        assert len(refused) == bench.router.rejected, name
        assert name.startswith("ok-") == (not refused), (name, refused)


def test_bus_when_a_rogue_acks_for_the_good_member_its_events_are_not_released(ctx: Any) -> None:
    bench = Offline(ctx)
    bench.publish(3)
    out = bench.router.flush()  # sent to the good member, not acknowledged yet
    [batch] = [p.decode(d) for i, d in out if i == GOOD]
    assert isinstance(batch, p.Batch)
    for ack in (p.Ack("g", "good", batch.batch), p.Ack("g", "good", 10**6), p.Leave("g", "good")):
        bench.send(ROGUE, p.encode(ack))
        bench.now += 2
    member = bench.router.groups["g"].members["good"]
    assert member.inflight_events == 3, "another connection's ack and leave are refused"
    assert bench.router.rejected == 3
    # The member's own ack beyond what it was sent is refused too, then a right one is taken.
    bench.send(GOOD, p.encode(p.Ack("g", "good", batch.batch + 1)))
    assert member.inflight_events == 3
    bench.send(GOOD, p.encode(p.Ack("g", "good", batch.batch)))
    assert member.inflight_events == 0
    bench.send(GOOD, p.encode(p.Ack("g", "good", batch.batch - 1)))
    assert bench.router.rejected == 5, "beyond the last batch sent, then backwards"


def test_bus_when_a_rogue_storms_state_requests_answers_a_burst_then_refuses(ctx: Any) -> None:
    bench = Offline(ctx)
    for i in range(100):
        bench.send(ROGUE, p.encode(p.StateRequest(i, "discord")))
    bench.pump()
    answers = [m for m in bench.to_rogue if isinstance(m, p.State)]
    assert len(answers) == checks.STATE_BURST
    assert bench.router.rejected == 100 - checks.STATE_BURST
    assert [m for m in bench.to_rogue if isinstance(m, p.Rejected)] == [p.Rejected(checks.state_refusal())]
    bench.now += 1 / checks.STATE_PER_S
    bench.send(ROGUE, p.encode(p.StateRequest(100, "discord")))
    bench.pump()
    assert [m.request for m in bench.to_rogue if isinstance(m, p.State)][-1] == 100, "the budget comes back"


def test_bus_when_commands_ask_for_impossible_timeouts_answers_them_refused(ctx: zmq.asyncio.Context) -> None:
    bench = Offline(ctx)
    for i, timeout in enumerate([math.nan, math.inf, -1.0, 0.0, 1e9]):
        bench.send(ROGUE, p.encode(p.Command(i, "discord", {}, timeout=timeout)))
        bench.now += 2
    bench.pump()
    results = [m for m in bench.to_rogue if isinstance(m, p.CommandResult)]
    assert [(r.request, r.ok) for r in results] == [(i, False) for i in range(5)]
    assert bench.router.rejected == 5


def test_bus_when_joins_would_make_too_many_groups_refuses_the_next_one(ctx: zmq.asyncio.Context) -> None:
    bench = Offline(ctx)
    for i in range(checks.MAX_GROUPS + 10):
        bench.send(ROGUE, p.encode(p.Join(f"group-{i}", "rogue")))
    assert len(bench.router.groups) == checks.MAX_GROUPS
    assert bench.router.rejected == 11
    bench.send(GOOD, p.encode(p.Join("g", "good")))  # a known group still takes joins
    assert bench.router.rejected == 11


# -- over real sockets ---------------------------------------------------------------------------


class Live:
    def __init__(self, ctx: zmq.asyncio.Context, server: BusServer) -> None:
        self.ctx = ctx
        self.server = server
        self.sockets: list[zmq.asyncio.Socket] = []

    def dealer(self) -> zmq.asyncio.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.server.endpoint)
        self.sockets.append(sock)
        return sock


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    ctx = zmq.asyncio.Context()
    router = Router(Limits(max_inflight=20, batch_size=10))
    server = BusServer(ctx, f"ipc://{tmp_path}/bus.sock", router, _no_command, state=_no_state)
    server.bind()
    task = asyncio.ensure_future(server.run())
    bench = Live(ctx, server)
    try:
        yield bench
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for sock in bench.sockets:
            sock.close()
        server.close()
        ctx.term()


async def _consume(sock: zmq.asyncio.Socket, want: int, seen: list[int]) -> None:
    while len(seen) < want:
        assert await sock.poll(5000), f"the good member got {len(seen)} of {want} events"
        message = p.decode(await sock.recv())
        if isinstance(message, p.Batch):
            seen.extend(e.seq for e in message.events)
            await sock.send(p.encode(p.Ack("g", "good", message.batch)))


async def test_bus_over_sockets_when_rogues_send_garbage_or_never_read_the_good_member_gets_everything(
    live: Live,
) -> None:
    server = live.server
    good = live.dealer()
    await good.send(p.encode(p.Join("g", "good")))
    # A bot that joins and never reads: its events are held up to the group's bound, then dropped.
    deaf = live.dealer()
    await deaf.send(p.encode(p.Join("deaf", "deaf", max_events=50)))
    await wait_for(lambda: {"g", "deaf"} <= set(server.router.groups), 5, "both joins")
    rogue = live.dealer()
    await rogue.send_multipart([b"one", b"two"])  # two frames
    await rogue.send(b"\xc1garbage")
    await rogue.send(p.encode(p.Batch("g", 1, [])))
    assert await rogue.poll(5000), "the rogue is told"
    assert isinstance(p.decode(await rogue.recv()), p.Rejected)
    big = live.dealer()
    await big.send(b"\x00" * (checks.MAX_MESSAGE_BYTES + 1))  # ZeroMQ closes its connection unread
    storm = live.dealer()
    for i in range(200):
        await storm.send(p.encode(p.StateRequest(i, "discord")))

    seen: list[int] = []
    for seq in range(1, 1001):
        server.publish(Event(CONN, "s", seq, "MESSAGE_CREATE", seq % 5, b"{}"))
        if seq % 100 == 0:
            await _consume(good, seq, seen)
    assert seen == list(range(1, 1001))
    await wait_for(lambda: server.router.rejected >= 3 + 200 - checks.STATE_BURST, 5, "the refusals counted")
    deaf_group = server.router.groups["deaf"]
    assert deaf_group.held_events <= 50, "held up to its bound"
    assert deaf_group.dropped_total >= 1000 - 50 - 20, "the rest dropped (a gap for when it reads)"
    # The loop still serves: a new member joins and gets the next event.
    late = live.dealer()
    await late.send(p.encode(p.Join("late", "late")))
    await wait_for(lambda: "late" in server.router.groups, 5, "a join after all that")
    server.publish(Event(CONN, "s", 1001, "MESSAGE_CREATE", 1, b"{}"))
    assert await late.poll(5000)
    message = p.decode(await late.recv())
    assert isinstance(message, p.Batch)
    assert [e.seq for e in message.events] == [1001]
