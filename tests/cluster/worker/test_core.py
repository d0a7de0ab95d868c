"""The worker without its sockets: a fake platform, a fake bus, a fake clock, messages by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from shardrunner.bus import protocol as bp
from shardrunner.cluster import messages as m
from shardrunner.cluster.worker.core import Worker, describe, describe_modes
from shardrunner.gateway.connection import NotReady
from shardrunner.protocol.envelope import Event, SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from tests.fakes import FakeClock, FakePlatform

OLD = [ConnKey("discord", 0, s, 4) for s in range(4)]
NEW = [ConnKey("discord", 1, s, 8) for s in range(8)]


class FakeRouter:
    def __init__(self) -> None:
        self.held: dict[tuple[ConnKey, str], int] = {}
        self.stats: list[bp.GroupStats] = []
        self.modes: dict[ConnKey, bp.Delivery] = {}
        self.withheld: dict[ConnKey, int] = {}
        self.owed = 0
        self.filtered = 0
        self.rejected = 0

    def low_water(self) -> dict[tuple[ConnKey, str], int]:
        return dict(self.held)

    def group_stats(self) -> list[bp.GroupStats]:
        return list(self.stats)

    def set_delivery(self, modes: Mapping[ConnKey, bp.Delivery], window: float | None = None) -> None:
        if window is not None:
            self.window = window
        for conn, mode in modes.items():
            if mode is bp.Delivery.LIVE:
                self.modes.pop(conn, None)
            else:
                self.modes[conn] = mode

    def undelivered(self) -> int:
        return self.owed


class FakeBus:
    def __init__(self) -> None:
        self.router = FakeRouter()
        self.events: list[Event] = []
        self.drained: list[tuple[float, bool]] = []
        #: The connections of each drain that named them (a release).
        self.drained_conns: list[set[ConnKey]] = []
        self.fences: list[float] = []
        #: Holds a drain until set (the bots take their time).
        self.drain_gate: asyncio.Event | None = None
        self.drain_error: Exception | None = None
        self.closed = False

    def publish(self, event: Event) -> None:
        self.events.append(event)

    async def drain(self, timeout: float, *, absent: bool = False, conns: Any = None) -> bool:
        self.drained.append((timeout, absent))
        if conns is not None:
            self.drained_conns.append(set(conns))
        if self.drain_gate is not None:
            await self.drain_gate.wait()
        if self.drain_error is not None:
            raise self.drain_error
        return True

    async def run(self) -> None:
        await asyncio.Event().wait()

    def fence(self, until: float) -> None:
        self.fences.append(until)

    def close(self) -> None:
        self.closed = True


def said(worker: Worker) -> list[m.Message]:
    out = []
    while not worker.outbox.empty():
        out.append(worker.outbox.get_nowait())
    return out


def assign(
    *sets: list[ConnKey],
    snapshots: list[SessionSnapshot] | None = None,
    delivery: list[tuple[ConnKey, bp.Delivery]] | None = None,
    delivery_version: int = 0,
) -> m.Assign:
    parts = [m.PlatformPart("discord", conns, f"config of {len(conns)}".encode()) for conns in sets]
    return m.Assign(
        parts=parts,
        snapshots=snapshots or [],
        bus_endpoint="ipc://bus.test",
        delivery=delivery or [],
        delivery_version=delivery_version,
    )


@pytest.fixture
async def rig() -> Any:
    platform, bus, clock = FakePlatform(), FakeBus(), FakeClock(fixed_random=0.5)
    worker = Worker(2, 7, make_bus=lambda a, conns: bus, load=lambda name: platform, clock=clock)
    yield worker, platform, bus, clock
    for key in list(worker.conns):
        await worker.conns.entries[key].conn.close()
    worker.close()


async def test_worker_when_two_discord_sets_of_4_and_8_run_side_by_side_keeps_them_apart(rig: Any) -> None:
    worker, platform, _, clock = rig
    snap = SessionSnapshot(conn=OLD[1], session_id="old-1", seq=9, resume_url="wss://r")
    worker.start(assign(OLD, NEW, snapshots=[snap]))
    await clock.settle()
    assert sorted(worker.conns) == sorted(OLD + NEW), "12 connections, shards 0-3 twice without collision"
    assert platform.configs == [b"config of 4", b"config of 8"]
    assert platform.latest(OLD[1]).resumed_from == snap
    assert platform.latest(NEW[1]).resumed_from is None
    report = worker.report()
    assert report is not None
    assert sorted(r.conn for r in report.conns) == sorted(OLD + NEW)
    worker.handle(m.Ping(1))
    assert said(worker)[-1] == m.Pong(1, ready=True)
    # A command addressed to a connection reaches that one, not the same shard of the other set.
    assert await worker.conns.command(bp.Command(1, "discord", {"op": 3, "d": {}}, conn=OLD[0])) == (
        None,
        None,
    )
    assert platform.latest(OLD[0]).commands == [{"op": 3, "d": {}}]
    assert platform.latest(NEW[0]).commands == []
    # Addressed by routing key, the newest set that holds the key gets it.
    guild = 5 << 22
    assert await worker.conns.command(bp.Command(2, "discord", {"op": 8, "d": {}}, key=guild)) == (None, None)
    assert platform.latest(NEW[5]).commands == [{"op": 8, "d": {}}]
    # Identify grants go to the connection they name.
    waiting = asyncio.ensure_future(worker.queue.acquire(NEW[2]))
    await clock.settle()
    assert said(worker) == [m.IdentifyRequest(NEW[2])]
    worker.handle(m.IdentifyGrant(NEW[2]))
    await asyncio.wait_for(waiting, 1)


async def test_worker_when_a_command_cannot_go_out_answers_with_a_sentence(rig: Any) -> None:
    worker, platform, _, clock = rig
    worker.start(assign(OLD))
    await clock.settle()
    platform.latest(OLD[2]).refuse = NotReady("discord:2/4 is not ready (resuming); op 3 not sent")
    cases = [
        (
            bp.Command(1, "discord", {}, conn=NEW[0]),
            "discord:0/8@1 is not on this worker (it may be moving: retry)",
        ),
        (bp.Command(2, "twitch", {}, key="chan"), "this worker runs no twitch connections"),
        (bp.Command(3, "discord", {}, key="x"), "'x' is not a discord routing key"),
        (bp.Command(4, "discord", {}, conn=OLD[2]), "discord:2/4 is not ready (resuming); op 3 not sent"),
    ]
    for command, error in cases:
        assert await worker.conns.command(command) == (error, None)


async def test_worker_when_handing_off_answers_pings_while_it_drains(rig: Any) -> None:
    worker, platform, bus, clock = rig
    worker.start(assign(OLD))
    await clock.settle()
    gate = asyncio.Event()
    for conn in OLD:
        platform.latest(conn).close_gate = gate  # the connections take their time to close
    platform.latest(OLD[0]).seq = 40
    bus.router.held = {(OLD[0], f"session-{OLD[0]}"): 31}
    said(worker)
    worker.handle(m.Handoff(exit=True))
    await clock.settle()
    worker.handle(m.Ping(5))
    worker.handle(m.Ping(6))
    assert said(worker) == [m.Pong(5, ready=False), m.Pong(6, ready=False)], "alive, not ready, meanwhile"
    assert not worker.stopped.is_set()
    gate.set()
    await asyncio.wait_for(worker.stopped.wait(), 1)
    await clock.settle()
    (handed,) = said(worker)
    assert isinstance(handed, m.HandedOff)
    seqs = {s.conn: s.seq for s in handed.snapshots}
    assert seqs[OLD[0]] == 30, "resumed just before the oldest event a group still holds"
    assert bus.drained == [(3.0, False)], "a handoff waits for the groups that have members"
    assert not worker.conns
    assert all(platform.latest(c).closed_with == [True] for c in OLD)


async def test_worker_when_handoff_is_asked_twice_hands_off_once_and_answers_both(rig: Any) -> None:
    worker, platform, _, clock = rig
    worker.start(assign(OLD))
    await clock.settle()
    first = worker.handoff(exit=False)
    second = worker.handoff(exit=False)
    await asyncio.gather(first, second)
    answers = [x for x in said(worker) if isinstance(x, m.HandedOff)]
    assert len(answers) == 2
    assert answers[0] == answers[1]
    assert all(platform.latest(c).closed_with == [True] for c in OLD)
    assert not worker.stopped.is_set(), "without exit the worker stays up, idle"
    worker.handle(assign(OLD, snapshots=answers[0].snapshots))  # an aborted reload hands them back
    await clock.settle()
    assert sorted(worker.conns) == OLD
    assert all(platform.latest(c).resumed_from is not None for c in OLD)


async def test_worker_when_reporting_asks_the_router_for_low_water_and_groups(rig: Any) -> None:
    worker, platform, bus, clock = rig
    worker.start(assign(OLD))
    await clock.settle()
    platform.latest(OLD[3]).counters.set_keys([7, 9])
    platform.latest(OLD[3]).counters.bytes_in, platform.latest(OLD[3]).counters.reconnects = 4096, 2
    platform.latest(OLD[3]).counters.decode_errors = 5
    bus.router.held = {(OLD[3], f"session-{OLD[3]}"): 12, (OLD[2], "an-older-session"): 3}
    bus.router.stats = [bp.GroupStats("bots", None, 1, 2, 3, 4, 5)]
    bus.router.filtered = 41
    bus.router.rejected = 3
    report = worker.report()
    assert report is not None
    assert report.low_water == [(OLD[3], 12)], "only the current session's low water"
    assert report.groups == bus.router.stats
    assert report.filtered == 41, "what a controller's filter dropped"
    assert report.bus_rejected == 3, "what the bus refused of the bots' messages"
    by_conn = {r.conn: r for r in report.conns}
    assert (by_conn[OLD[3]].key_count, by_conn[OLD[3]].keys) == (2, [7, 9])
    assert (by_conn[OLD[3]].bytes_in, by_conn[OLD[3]].reconnects) == (4096, 2)
    assert by_conn[OLD[3]].decode_errors == 5
    again = worker.report()
    assert again is not None
    assert all(r.keys is None for r in again.conns), "keys only when they changed"


async def test_worker_report_loop_when_its_loop_woke_late_reports_the_lag(rig: Any) -> None:
    worker, _, _, clock = rig
    worker.start(assign(OLD))
    loop = asyncio.ensure_future(worker.report_loop())
    await clock.settle()
    assert [x.loop_lag for x in said(worker) if isinstance(x, m.Report)] == [0.0]
    clock.now += 0.8  # the loop was busy 0.3 s past the report timer's 0.5 s
    await clock.advance(0)
    assert [x.loop_lag for x in said(worker) if isinstance(x, m.Report)] == [pytest.approx(0.3)]
    loop.cancel()


async def test_worker_when_the_supervisor_goes_silent_hands_off_and_stops(rig: Any) -> None:
    worker, _, _, clock = rig
    worker.start(assign(OLD))
    loop = asyncio.ensure_future(worker.report_loop())
    await clock.advance(29.0)
    assert not worker.stopped.is_set()
    assert any(isinstance(x, m.Report) for x in said(worker))
    await clock.advance(2.0)
    await asyncio.wait_for(worker.stopped.wait(), 1)
    assert isinstance(said(worker)[-1], m.HandedOff)
    await asyncio.wait_for(loop, 1)


async def test_worker_when_assigned_during_a_handoff_starts_after_answering_it(rig: Any) -> None:
    worker, platform, _, clock = rig
    worker.start(assign(OLD))
    await clock.settle()
    gate = asyncio.Event()
    platform.latest(OLD[0]).close_gate = gate
    said(worker)
    handing = worker.handoff(exit=False)
    await clock.settle()
    worker.handle(assign(NEW))
    await clock.settle()
    assert sorted(worker.conns) == OLD, "nothing new starts while the old connections close"
    gate.set()
    await asyncio.wait_for(handing, 1)
    await clock.settle()
    assert isinstance(said(worker)[0], m.HandedOff)
    assert sorted(worker.conns) == NEW


def test_describe_when_two_sets_names_each_span() -> None:
    assert describe(OLD + NEW[2:5]) == "discord:0-3/4, discord:2-4/8@1"
    assert describe([]) == "nothing"
    modes = {**{c: bp.Delivery.HOLD for c in NEW}, OLD[0]: bp.Delivery.LIVE, OLD[1]: bp.Delivery.LIVE}
    assert describe_modes(modes) == "hold discord:0-7/8@1; live discord:0-1/4"


HOLD, DEDUPE, MUTE, LIVE = bp.Delivery.HOLD, bp.Delivery.DEDUPE, bp.Delivery.MUTE, bp.Delivery.LIVE


async def test_worker_when_assigned_with_delivery_modes_sets_them_before_any_connection_is_built() -> None:
    bus, clock = FakeBus(), FakeClock(fixed_random=0.5)
    at_build: dict[ConnKey, bp.Delivery | None] = {}

    class Recording(FakePlatform):
        def build(self, conns: list[ConnKey], *args: Any) -> Any:
            at_build.update({c: bus.router.modes.get(c) for c in conns})
            return super().build(conns, *args)

    platform = Recording()
    bus.router.modes[OLD[0]] = MUTE  # left over from before: the assignment says OLD[0] is live
    worker = Worker(2, 7, make_bus=lambda a, conns: bus, load=lambda name: platform, clock=clock)
    worker.start(assign(OLD, NEW, delivery=[(c, HOLD) for c in NEW], delivery_version=3))
    try:
        assert at_build == {**{c: None for c in OLD}, **{c: HOLD for c in NEW}}
        assert worker.delivery == {c: HOLD for c in NEW}
        assert worker.delivery_version == 3
    finally:
        for key in list(worker.conns):
            await worker.conns.entries[key].conn.close()
        worker.close()


async def test_worker_when_set_delivery_comes_changes_only_the_named_connections_and_answers(
    rig: Any,
) -> None:
    worker, _, bus, clock = rig
    worker.start(assign(OLD, NEW, delivery=[(c, HOLD) for c in NEW], delivery_version=1))
    await clock.settle()
    said(worker)
    worker.handle(m.SetDelivery(2, [(c, DEDUPE) for c in OLD]))
    assert said(worker) == [m.DeliverySet(2)]
    assert bus.router.modes == {**{c: DEDUPE for c in OLD}, **{c: HOLD for c in NEW}}
    worker.handle(m.SetDelivery(3, [(NEW[0], LIVE), (OLD[1], MUTE)]))
    assert said(worker) == [m.DeliverySet(3)]
    assert bus.router.modes[OLD[1]] is MUTE
    assert NEW[0] not in bus.router.modes, "live is the default: no entry"
    assert bus.router.modes[NEW[1]] is HOLD, "not named: kept"
    assert (worker.delivery, worker.delivery_version) == (bus.router.modes, 3)


@pytest.mark.parametrize(("assign_version", "expected"), [(4, MUTE), (6, HOLD)])
async def test_worker_when_set_delivery_comes_before_its_assignment_the_newer_version_stands(
    rig: Any, assign_version: int, expected: bp.Delivery
) -> None:
    worker, _, bus, clock = rig
    worker.handle(m.SetDelivery(5, [(NEW[0], MUTE)]))  # no connections, no bus yet
    assert said(worker) == [m.DeliverySet(5)]
    worker.start(assign(NEW, delivery=[(NEW[0], HOLD)], delivery_version=assign_version))
    await clock.settle()
    assert bus.router.modes == {NEW[0]: expected}
    assert worker.delivery_version == max(5, assign_version)


async def test_worker_when_reporting_gives_each_connection_its_pending_keys_and_withheld_events(
    rig: Any,
) -> None:
    worker, platform, bus, clock = rig
    worker.start(assign(OLD, NEW))
    await clock.settle()
    platform.latest(NEW[2]).counters.expect_keys([1, 2, 3])
    platform.latest(NEW[2]).counters.key_arrived(2)
    bus.router.withheld = {NEW[2]: 17, NEW[5]: 1}
    report = worker.report()
    assert report is not None
    by_conn = {r.conn: (r.keys_pending, r.withheld) for r in report.conns}
    assert by_conn[NEW[2]] == (2, 17)
    assert by_conn[NEW[5]] == (0, 1)
    assert by_conn[OLD[2]] == (0, 0), "the same shard of the other set is not mixed up"


async def test_worker_when_finishing_ends_the_sessions_waits_for_absent_groups_and_answers(rig: Any) -> None:
    worker, platform, bus, clock = rig
    worker.start(assign(OLD))
    await clock.settle()
    bus.router.stats = [bp.GroupStats("bots", None, 0, 12, 1200, 0, 0)]
    bus.router.owed = 12
    bus.drain_gate = asyncio.Event()
    said(worker)
    worker.handle(m.Finish(drain_timeout=7.5))
    await clock.settle()
    assert all(platform.latest(c).closed_with == [False] for c in OLD), "sessions end (1000), no handoff"
    assert bus.drained == [(7.5, True)], "durable groups without members are waited for too"
    worker.handle(m.Ping(8))
    assert said(worker) == [m.Pong(8, ready=False)], "pings answered while it drains"
    report = worker.report()
    assert report == m.Report([], groups=bus.router.stats), "no connections, still the groups"
    assert not worker.stopped.is_set()
    bus.drain_gate.set()
    await asyncio.wait_for(worker.stopped.wait(), 1)
    assert said(worker) == [m.Finished(undelivered=12)]
    assert not worker.conns
    worker.handle(m.Finish(drain_timeout=1.0))  # asked again once done: answered at once
    assert said(worker) == [m.Finished(undelivered=12)]
    assert bus.drained == [(7.5, True)]


async def test_worker_when_a_handoff_comes_during_a_finish_waits_for_it_and_hands_off_nothing(
    rig: Any,
) -> None:
    worker, platform, bus, clock = rig
    worker.start(assign(OLD))
    await clock.settle()
    bus.drain_gate = asyncio.Event()
    said(worker)
    worker.handle(m.Finish(drain_timeout=5.0))
    await clock.settle()
    worker.handle(m.Handoff(exit=True))
    worker.handle(m.Finish(drain_timeout=5.0))  # a second one shares the first
    worker.handle(assign(NEW))  # nothing starts on a finishing worker
    await clock.settle()
    assert said(worker) == []
    bus.drain_gate.set()
    await asyncio.wait_for(worker.stopped.wait(), 1)
    await clock.settle()
    assert said(worker) == [m.Finished(0), m.HandedOff([]), m.Finished(0)]
    assert all(platform.latest(c).closed_with == [False] for c in OLD), "closed once, not resumably"
    assert bus.drained == [(5.0, True)]
    assert sorted(platform.built) == OLD


async def test_worker_when_its_finish_fails_still_answers_and_stops(rig: Any) -> None:
    worker, _, bus, clock = rig
    worker.start(assign(OLD))
    await clock.settle()
    bus.drain_error = RuntimeError("the socket is gone")
    said(worker)
    worker.handle(m.Finish(drain_timeout=1.0))
    await asyncio.wait_for(worker.stopped.wait(), 1)
    assert said(worker) == [m.Finished(undelivered=0)], "the supervisor is not left waiting"
    assert worker.exit_code == 1


async def test_worker_when_a_budget_is_asked_relays_it_and_its_use_to_the_supervisor(rig: Any) -> None:
    worker, _, _, clock = rig
    waiting = asyncio.ensure_future(worker.budgets.acquire("twitch.join", "bot", 10))
    await clock.settle()
    assert said(worker) == [m.BudgetRequest(1, "twitch.join", "bot", 10)]
    worker.handle(m.BudgetGrant(1))
    ticket = await asyncio.wait_for(waiting, 1)
    ticket.used()
    assert said(worker) == [m.BudgetUsed(1)]
    refused = asyncio.ensure_future(worker.budgets.acquire("twitch.join", "bot", 30))
    await clock.settle()
    worker.handle(m.BudgetGrant(2, refused="30 uses at once cannot fit a limit of 20"))
    with pytest.raises(ValueError, match="cannot fit"):
        await asyncio.wait_for(refused, 1)
