"""The worker's side of leases: Adopt adds connections, Release takes some back, the lease fence
stops the bus and releases everything; with the fake platform, bus and clock of test_core."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from shardrunner.bus import protocol as bp
from shardrunner.cluster import messages as m
from shardrunner.cluster.worker.core import Worker
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from tests.cluster.worker.test_core import NEW, OLD, FakeBus, assign, rig, said
from tests.fakes import FakeClock, FakePlatform

__all__ = ["rig"]  # the fixture, shared with test_core


def adopt(conns: list[ConnKey], snapshots: list[SessionSnapshot] | None = None, epoch: int = 0) -> m.Adopt:
    part = m.PlatformPart("discord", conns, b"adopted config")
    return m.Adopt([part], snapshots or [], [(c, epoch) for c in conns] if epoch else [])


def session(conn: ConnKey) -> str:
    return f"session-{conn}"  # the fake connection's


async def test_worker_when_adopting_adds_the_connections_and_leaves_the_running_ones_alone(rig: Any) -> None:
    worker, platform, _, clock = rig
    worker.start(
        m.Assign(parts=[m.PlatformPart("discord", OLD, b"a")], bus_endpoint="ipc://x", epochs=[(OLD[0], 3)])
    )
    await clock.settle()
    running = {c: platform.latest(c) for c in OLD}
    snap = SessionSnapshot(conn=NEW[0], session_id="s-new-0", seq=41, resume_url="wss://r")
    worker.handle(adopt(NEW[:3], [snap], epoch=9))
    worker.handle(adopt([OLD[1]], epoch=4))  # runs already: not rebuilt, not disturbed
    await clock.settle()
    assert sorted(worker.conns) == sorted(OLD + NEW[:3])
    assert all(platform.latest(c) is fake and fake.closed_with == [] for c, fake in running.items())
    assert len(platform.built[OLD[1]]) == 1
    assert platform.latest(NEW[0]).resumed_from == snap
    assert platform.latest(NEW[1]).resumed_from is None
    epochs = {c: worker.conns.entries[c].conn.epoch for c in worker.conns}
    assert epochs == {OLD[0]: 3, OLD[1]: 0, OLD[2]: 0, OLD[3]: 0, NEW[0]: 9, NEW[1]: 9, NEW[2]: 9}
    assert platform.configs[-1] == b"adopted config"
    report = worker.report()
    assert report is not None
    assert sorted(r.conn for r in report.conns) == sorted(OLD + NEW[:3])


async def test_worker_when_an_empty_assignment_comes_starts_the_bus_hot_for_a_standby() -> None:
    bus, platform, clock = FakeBus(), FakePlatform(), FakeClock()
    worker = Worker(1, 1, make_bus=lambda a, conns: bus, load=lambda name: platform, clock=clock)
    try:
        worker.handle(m.Assign(parts=[], bus_endpoint="ipc://standby"))
        assert worker.bus is bus, "the bus is up with no connection"
        worker.handle(adopt(OLD))
        await clock.settle()
        assert sorted(worker.conns) == OLD
    finally:
        await worker.conns.close_all()
        worker.close()


async def test_worker_when_adopting_backup_readers_marks_them_for_the_dedupe() -> None:
    # Found by the chaos soak: on several hosts a Twitch backup reader's connection came in an
    # Adopt without its mode, delivered live, and every bot got each chat line twice.
    bus, platform, clock = FakeBus(), FakePlatform(), FakeClock()
    worker = Worker(1, 1, make_bus=lambda a, conns: bus, load=lambda name: platform, clock=clock)
    try:
        worker.handle(m.Assign(parts=[], bus_endpoint="ipc://standby"))
        marked = adopt(OLD)
        marked.delivery = [(OLD[1], bp.Delivery.DEDUPE)]
        worker.handle(marked)
        await clock.settle()
        assert bus.router.modes == {OLD[1]: bp.Delivery.DEDUPE}
        assert worker.delivery == {OLD[1]: bp.Delivery.DEDUPE}
        worker.handle(adopt([OLD[1]]))  # adopted again without a mode: live
        assert bus.router.modes == {}
    finally:
        await worker.conns.close_all()
        worker.close()


async def test_worker_when_releasing_closes_only_those_drains_for_them_and_answers_rewound_sessions(
    rig: Any,
) -> None:
    worker, platform, bus, clock = rig
    worker.start(assign(OLD, NEW))
    await clock.settle()
    platform.latest(NEW[0]).seq, platform.latest(NEW[1]).seq = 50, 60
    bus.router.held = {(NEW[0], session(NEW[0])): 45, (OLD[0], session(OLD[0])): 2}
    said(worker)
    worker.handle(m.Release([NEW[0], NEW[1], ConnKey("discord", 1, 0, 2)]))  # the last: not here
    await clock.settle()
    (released,) = said(worker)
    assert isinstance(released, m.Released)
    assert not released.fenced
    assert {s.conn: s.seq for s in released.snapshots} == {NEW[0]: 44, NEW[1]: 60}, "rewound to the low water"
    assert bus.drained == [(3.0, False)]
    assert bus.drained_conns == [{NEW[0], NEW[1]}], "the drain waits for their events only"
    assert platform.latest(NEW[0]).closed_with == [True], "closed resumably"
    others = [c for c in OLD + NEW if c not in NEW[:2]]
    assert all(platform.latest(c).closed_with == [] for c in others), "the others are not disturbed"
    assert sorted(worker.conns) == sorted(others)
    worker.handle(m.Release([NEW[0]]))  # not run any more: answered at once, with nothing
    assert said(worker) == [m.Released([])]
    await clock.advance(120)
    assert len(platform.built[NEW[0]]) == 1, "a released connection is never restarted"


async def test_worker_when_an_adoption_comes_during_a_release_starts_it_after_the_release(rig: Any) -> None:
    worker, platform, _, clock = rig
    worker.start(assign(OLD))
    await clock.settle()
    gate = asyncio.Event()
    platform.latest(OLD[0]).close_gate = gate
    said(worker)
    worker.handle(m.Release([OLD[0]]))
    await clock.settle()
    worker.handle(adopt([OLD[0]], epoch=2))  # the same connection, taken again at a new epoch
    await clock.settle()
    assert len(platform.built[OLD[0]]) == 1, "nothing adopted while the release closes"
    gate.set()
    await clock.settle()
    (released,) = said(worker)
    assert isinstance(released, m.Released)
    assert len(platform.built[OLD[0]]) == 2
    assert worker.conns.entries[OLD[0]].conn.epoch == 2


async def test_worker_when_a_release_comes_during_a_handoff_answers_at_once_with_nothing(rig: Any) -> None:
    worker, platform, _, clock = rig
    worker.start(assign(OLD))
    await clock.settle()
    gate = asyncio.Event()
    platform.latest(OLD[0]).close_gate = gate
    said(worker)
    handing = worker.handoff(exit=False)
    await clock.settle()
    worker.handle(m.Release([OLD[1]]))
    assert said(worker) == [m.Released([])], "its session goes with the handoff"
    gate.set()
    await asyncio.wait_for(handing, 1)
    (handed,) = said(worker)
    assert isinstance(handed, m.HandedOff)
    assert len(handed.snapshots) == 4


async def test_worker_when_its_lease_fence_passes_releases_everything_unasked_and_a_renewal_lifts_it(
    rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    worker, platform, bus, clock = rig
    caplog.set_level(logging.WARNING, "shardrunner.worker")
    until = clock.now + 5.0
    worker.start(m.Assign(parts=assign(OLD).parts, bus_endpoint="ipc://x", lease_until=until))
    await clock.settle()
    assert bus.fences == [0.0, until], "the bus knows the fence from the start"
    platform.latest(OLD[2]).seq = 30
    bus.router.held = {(OLD[2], session(OLD[2])): 21}
    said(worker)
    worker.handle(m.LeaseUntil(until + 2.0))  # renewed
    await clock.advance(6.0)
    assert said(worker) == [], "the renewal moved the fence"
    assert len(worker.conns) == 4
    await clock.advance(1.5)
    (released,) = said(worker)
    assert released == m.Released(released.snapshots, fenced=True)
    assert {s.conn: s.seq for s in released.snapshots} == {OLD[0]: 0, OLD[1]: 0, OLD[2]: 20, OLD[3]: 0}
    assert bus.drained == [], "fenced, the bus sends nothing more: no drain"
    assert not worker.conns
    assert all(platform.latest(c).closed_with == [True] for c in OLD)
    assert worker.fenced
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "worker 2: its lease ran out (the supervisor could not renew it): closing its connections "
        "resumably, without delivering what came after"
    ]
    # The supervisor renewed after all: the fence lifts, and it adopts again.
    worker.handle(m.LeaseUntil(clock.now + 10.0))
    assert not worker.fenced
    assert bus.fences[-1] == clock.now + 10.0
    worker.handle(adopt(OLD, released.snapshots, epoch=5))
    await clock.settle()
    assert sorted(worker.conns) == OLD
    assert said(worker) == []


async def test_worker_when_adopting_past_its_fence_releases_them_again_at_once(rig: Any) -> None:
    worker, _, _, clock = rig
    worker.start(m.Assign(parts=[], bus_endpoint="ipc://x", lease_until=clock.now + 1.0))
    await clock.advance(2.0)
    assert said(worker) == [m.Released([], fenced=True)], "answered even with nothing to close"
    worker.handle(adopt(NEW[:2]))
    await clock.settle()
    (released,) = said(worker)
    assert isinstance(released, m.Released)
    assert released.fenced
    assert sorted(s.conn for s in released.snapshots) == NEW[:2]
    assert not worker.conns


async def test_conns_when_a_connection_restarts_after_a_crash_keeps_its_epoch(rig: Any) -> None:
    worker, platform, _, clock = rig
    worker.start(m.Assign(parts=assign(OLD).parts, bus_endpoint="ipc://x", epochs=[(OLD[1], 12)]))
    await clock.settle()
    crashed = platform.latest(OLD[1])
    assert crashed.epoch == 12
    crashed.crash(RuntimeError("boom"))
    await clock.advance(5.0)
    fresh = platform.latest(OLD[1])
    assert fresh is not crashed
    assert fresh.epoch == 12
