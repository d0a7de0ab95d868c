"""The worker's connection table: one connection's crash restarts it alone, resuming, with backoff."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from shardrunner.bus import protocol as bp
from shardrunner.cluster import messages as m
from shardrunner.cluster.worker.core import Worker
from shardrunner.gateway.connection import ConnFatalError, ConnState
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from tests.fakes import FakeClock, FakePlatform

OLD = [ConnKey("discord", 0, s, 4) for s in range(4)]
NEW = [ConnKey("discord", 1, s, 8) for s in range(8)]


@pytest.fixture
async def rig() -> Any:
    platform, clock = FakePlatform(), FakeClock(fixed_random=0.5)
    worker = Worker(0, 1, load=lambda name: platform, clock=clock)
    parts = [m.PlatformPart("discord", OLD, b"a"), m.PlatformPart("discord", NEW, b"b")]
    worker.start(m.Assign(parts=parts))
    await clock.settle()
    yield worker, platform, clock
    await worker.conns.close_all()
    worker.close()


def reports(worker: Worker) -> dict[ConnKey, m.ConnReport]:
    return {r.conn: r for r in worker.conns.reports()}


async def test_conns_when_one_crashes_restarts_it_alone_resuming_after_backoff(
    rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    worker, platform, clock = rig
    caplog.set_level(logging.ERROR, "shardrunner.worker")
    crashed = platform.latest(NEW[1])
    crashed.seq = 77
    crashed.counters.events_in = 500
    others = {c: platform.latest(c) for c in OLD + NEW if c != NEW[1]}
    crashed.crash(RuntimeError("boom"))
    await clock.settle()
    assert "discord:1/8@1 crashed" in caplog.text
    assert "RuntimeError: boom" in caplog.text
    report = reports(worker)[NEW[1]]
    assert (report.crashes, report.last_error, report.state) == (1, "RuntimeError: boom", "reconnecting")
    assert all(c.state is ConnState.READY for c in others.values()), "the others run on"
    assert all(platform.latest(c) is fake for c, fake in others.items()), "and are not rebuilt"
    worker.handle(m.Ping(1))
    assert worker.outbox.get_nowait() == m.Pong(1, ready=False)
    await clock.advance(0.4)
    assert len(platform.built[NEW[1]]) == 1, "waits out its backoff first"
    await clock.advance(0.2)
    fresh = platform.latest(NEW[1])
    assert fresh is not crashed
    assert fresh.resumed_from is not None
    assert (fresh.resumed_from.session_id, fresh.resumed_from.seq) == (crashed.session_id, 77)
    assert platform.configs[-1] == b"b", "rebuilt from its own part's config"
    assert fresh.state is ConnState.READY
    report = reports(worker)[NEW[1]]
    assert (report.crashes, report.state, report.events_in) == (1, "ready", 500)
    assert not worker.stopped.is_set()
    # A second crash waits longer.
    fresh.crash(ValueError("again"))
    await clock.advance(0.6)
    assert platform.latest(NEW[1]) is fresh
    await clock.advance(0.5)
    assert platform.latest(NEW[1]) is not fresh
    assert reports(worker)[NEW[1]].crashes == 2
    assert reports(worker)[NEW[1]].last_error == "ValueError: again"


async def test_conns_when_one_closes_fatally_reports_it_and_does_not_restart(rig: Any) -> None:
    worker, platform, clock = rig
    platform.latest(OLD[0]).crash(ConnFatalError(OLD[0], 4004, "Discord rejected the token"))
    await clock.advance(120)
    assert worker.outbox.get_nowait() == m.ConnFailed(OLD[0], 4004, "discord:0/4: Discord rejected the token")
    assert len(platform.built[OLD[0]]) == 1
    assert reports(worker)[OLD[0]].crashes == 0


async def test_conns_when_handed_off_during_a_restart_backoff_hands_the_crashed_session_on(rig: Any) -> None:
    worker, platform, clock = rig
    crashed = platform.latest(OLD[2])
    crashed.seq = 12
    crashed.crash(RuntimeError("boom"))
    await clock.settle()
    snapshots = await asyncio.wait_for(worker.conns.close_all(), 1)
    assert {s.conn: s.seq for s in snapshots}[OLD[2]] == 12
    assert len(snapshots) == 12
    await clock.advance(120)
    assert len(platform.built[OLD[2]]) == 1, "no restart once closing"


class StatePlatform(FakePlatform):
    """A fake platform that keeps state for some connections (a StatefulPlatform)."""

    def __init__(self, kept: dict[ConnKey, tuple[str, int]]) -> None:
        super().__init__()
        self.kept = kept

    def state_events(self, conn: ConnKey) -> list[Event]:
        session, seq = self.kept[conn]
        return [
            Event(conn, session, 1, "READY", None, b"{}"),
            Event(conn, session, seq, "GUILD_CREATE", 1, b"{}"),
        ]

    def state_mark(self, conn: ConnKey) -> tuple[str, int] | None:
        return self.kept.get(conn)


async def test_conns_state_when_asked_gives_each_kept_connection_in_order_with_its_mark() -> None:
    platform = StatePlatform({OLD[2]: ("b", 9), OLD[0]: ("a", 4)})
    clock = FakeClock(fixed_random=0.5)
    worker = Worker(0, 1, load=lambda name: platform, clock=clock)
    worker.start(m.Assign(parts=[m.PlatformPart("discord", [OLD[2], OLD[1], OLD[0]], b"a")]))
    await clock.settle()
    try:
        events, marks = worker.conns.state("discord")
        assert [(e.conn, e.name) for e in events] == [
            (OLD[0], "READY"), (OLD[0], "GUILD_CREATE"), (OLD[2], "READY"), (OLD[2], "GUILD_CREATE"),
        ]  # fmt: skip
        assert marks == [bp.StateMark(OLD[0], "a", 4), bp.StateMark(OLD[2], "b", 9)]
        assert worker.conns.state("twitch") == ([], [])
    finally:
        await worker.conns.close_all()
        worker.close()


async def test_conns_state_when_the_platform_keeps_none_gives_nothing(rig: Any) -> None:
    worker, _, _ = rig
    assert worker.conns.state("discord") == ([], [])
