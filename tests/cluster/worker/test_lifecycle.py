"""The worker's lifecycle: each connection's notices once on the bus (a pseudo session of their own,
numbered per connection) and to every listener; the table's own (fatal, crashed); a reshard's switch."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest

from shardrunner.bus import protocol as bp
from shardrunner.bus.router import Router
from shardrunner.cluster import messages as m
from shardrunner.cluster.worker.core import Worker
from shardrunner.cluster.worker.lifecycle import LifecycleEvents
from shardrunner.gateway.connection import ConnFatalError
from shardrunner.protocol import lifecycle
from shardrunner.protocol.envelope import Event, SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice
from tests.cluster.worker.test_core import FakeBus, assign
from tests.fakes import FakeClock, FakePlatform

CONNS = [ConnKey("discord", 1, s, 4) for s in range(4)]


class RouterBus(FakeBus):
    """The fake bus with the real router behind it (its holds, its low water)."""

    def __init__(self) -> None:
        super().__init__()
        self.router = Router()  # type: ignore[assignment]

    def publish(self, event: Event) -> None:
        super().publish(event)
        self.router.publish(event)  # type: ignore[attr-defined]


@pytest.fixture
async def rig() -> Any:
    platform, bus, clock = FakePlatform(), RouterBus(), FakeClock(fixed_random=0.5)
    worker = Worker(3, 1, make_bus=lambda a, conns: bus, load=lambda name: platform, clock=clock)
    yield worker, platform, bus, clock
    for key in list(worker.conns):
        await worker.conns.entries[key].conn.close()
    worker.close()


def lifecycle_events(bus: FakeBus) -> list[Event]:
    return [e for e in bus.events if lifecycle.is_lifecycle(e.name)]


async def test_worker_lifecycle_when_connections_notify_each_goes_once_on_the_bus_and_to_listeners(
    rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    worker, platform, bus, clock = rig
    heard: list[Notice] = []

    def broken(notice: Notice) -> None:
        raise RuntimeError("listener bug")

    worker.lifecycle_listeners.extend([broken, heard.append])
    parts = [m.PlatformPart("discord", CONNS, b"c")]
    worker.start(m.Assign(parts=parts, bus_endpoint="ipc://bus.test", epochs=[(CONNS[1], 7)]))
    await clock.settle()
    caplog.set_level(logging.ERROR, "shardrunner.lifecycle")
    for conn in CONNS[:2]:
        platform.latest(conn).notify(Notice(lifecycle.READY, conn, {"session": f"s-{conn.shard}"}))
    platform.latest(CONNS[1]).notify(Notice(lifecycle.DISCONNECTED, CONNS[1], {"code": 4000}))
    assert [n.kind for n in heard] == [lifecycle.READY, lifecycle.READY, lifecycle.DISCONNECTED]
    logged = [r for r in caplog.records if "lifecycle listener" in r.getMessage()]
    assert len(logged) == 1, "a raising listener is logged once, the others are called"
    assert worker.lifecycle.errors == 3
    got = lifecycle_events(bus)
    assert [(e.conn, e.seq, e.name) for e in got] == [
        (CONNS[0], 1, lifecycle.READY),
        (CONNS[1], 1, lifecycle.READY),
        (CONNS[1], 2, lifecycle.DISCONNECTED),
    ], "numbered per connection from 1"
    assert {e.session for e in got} == {worker.lifecycle_events.session}
    assert worker.lifecycle_events.session.startswith(lifecycle.SESSION_PREFIX)
    assert [e.epoch for e in got] == [0, 7, 7], "the epoch of the connection's holder"
    assert all(e.key is None for e in got)
    body = lifecycle.decode(got[2].data)
    assert (body.kind, body.conn, body.shard, body.count, body.generation, body.code) == (
        lifecycle.DISCONNECTED, "discord:1/4@1", 1, 4, 1, 4000,
    )  # fmt: skip
    assert msgspec.json.decode(got[0].data)["session"] == "s-0"


async def test_worker_lifecycle_when_a_connection_is_fatal_or_crashes_the_table_says_so(rig: Any) -> None:
    worker, platform, bus, clock = rig
    worker.start(assign(CONNS))
    await clock.settle()
    platform.latest(CONNS[1]).crash(RuntimeError("boom"))  # never said ready: no disconnect
    await clock.settle()
    assert lifecycle_events(bus) == []
    platform.latest(CONNS[0]).crash(ConnFatalError(CONNS[0], 4014, "enable the intents"))
    platform.latest(CONNS[2]).notify(Notice(lifecycle.READY, CONNS[2]))
    platform.latest(CONNS[2]).crash(RuntimeError("boom"))
    await clock.settle()
    ready, fatal, crashed = lifecycle_events(bus)
    assert (ready.conn, ready.name) == (CONNS[2], lifecycle.READY)
    assert (fatal.conn, fatal.name) == (CONNS[0], lifecycle.FATAL)
    body = lifecycle.decode(fatal.data)
    assert (body.code, body.reason) == (4014, "enable the intents")
    assert (crashed.conn, crashed.name) == (CONNS[2], lifecycle.DISCONNECTED)
    body = lifecycle.decode(crashed.data)
    assert (body.reason, body.resumable) == ("crashed: RuntimeError", True)
    await clock.advance(2)
    rebuilt = platform.latest(CONNS[2])
    assert len(platform.built[CONNS[2]]) == 2
    rebuilt.notify(Notice(lifecycle.RESUMED, CONNS[2]))
    assert lifecycle_events(bus)[-1].name == lifecycle.RESUMED, "the rebuilt one reports to the worker too"


async def test_worker_lifecycle_when_the_switch_sets_its_connections_live_each_says_switched(
    rig: Any,
) -> None:
    worker, _, bus, clock = rig
    held = [(c, bp.Delivery.HOLD) for c in CONNS]
    worker.start(assign(CONNS, delivery=held, delivery_version=1))
    await clock.settle()
    worker.handle(m.SetDelivery(2, [(c, bp.Delivery.DEDUPE) for c in CONNS]))
    assert lifecycle_events(bus) == [], "delivering beside the old set is not the switch yet"
    other = ConnKey("discord", 1, 0, 2)  # not run here
    worker.handle(m.SetDelivery(3, [(c, bp.Delivery.LIVE) for c in [*CONNS, other]], switch=True))
    switched = lifecycle_events(bus)
    assert [(e.conn, e.name) for e in switched] == [(c, lifecycle.SWITCHED) for c in CONNS]
    worker.handle(m.SetDelivery(4, [(CONNS[0], bp.Delivery.LIVE)]))  # an abort's: not a switch
    assert len(lifecycle_events(bus)) == 4


async def test_worker_lifecycle_when_a_lifecycle_event_is_held_the_resume_seq_is_the_platforms(
    rig: Any,
) -> None:
    worker, platform, bus, clock = rig
    conn = CONNS[0]
    worker.start(assign([conn]))
    await clock.settle()
    session = platform.latest(conn).session_id
    router: Router = bus.router
    router.join(b"bot", bp.Join("g", "bot", ["*", lifecycle.WILDCARD]), 0)
    for seq in (41, 42):
        bus.publish(Event(conn, session, seq, "MESSAGE_CREATE", 5, b"{}"))
    first = batches(router)
    platform.latest(conn).notify(Notice(lifecycle.RESUMED, conn, {"session": session}))
    second = batches(router)
    assert [e.name for b in first + second for e in b.events] == ["MESSAGE_CREATE"] * 2 + [lifecycle.RESUMED]
    report = worker.report()
    assert report is not None
    assert report.low_water == [(conn, 41)], "the platform session's, only"
    # The platform's events acknowledged, the lifecycle event still held: nothing to rewind.
    router.ack(bp.Ack("g", "bot", first[0].batch), 0)
    report = worker.report()
    assert report is not None
    assert report.low_water == []
    snapshot = SessionSnapshot(conn=conn, session_id=session or "", seq=42, resume_url="wss://r")
    assert worker._rewind([snapshot]) == [snapshot]
    assert router.low_water() == {(conn, worker.lifecycle_events.session): 1}, "held in its own session"


def batches(router: Router) -> list[bp.Batch]:
    return [b for _, d in router.flush() if isinstance(b := bp.decode(d), bp.Batch)]


def test_lifecycle_events_when_a_notice_has_no_connection_it_does_not_go_on_the_bus() -> None:
    events = LifecycleEvents(wall=lambda: 12.5)
    with pytest.raises(ValueError, match="only a connection's notice"):
        events.event(Notice(lifecycle.WORKER_CRASHED, None, {"slot": 1}))
    event = events.event(Notice(lifecycle.SWITCHED, CONNS[3]))
    assert (event.seq, lifecycle.decode(event.data).at) == (1, 12.5)
